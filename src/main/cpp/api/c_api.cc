// The C boundary. Every entry is wrapped in KILN_API_BEGIN / KILN_API_END: exceptions become a
// -1 status and a thread-local message; nothing escapes, nothing aborts.
#include "kiln/c_api.h"
#include "c_api_internal.h"
#include "kiln/low_precision.h"

#include <atomic>
#include <algorithm>
#include <mutex>
#include <new>
#include <random>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "kiln/alloc.h"
#include "kiln/executor.h"
#include "kiln/graph.h"
#include "kiln/kernel_common.h"
#ifdef KILN_CUDA
#include "kiln/cuda_api.h"
#endif

using namespace kiln;

namespace {

thread_local std::string t_error;
thread_local std::string t_string;

enum class HandleKind { kNDArray, kExecutor, kFused };  // kFused: c_api_update.cc
std::mutex g_handles_mu;
std::unordered_map<int64_t, HandleKind>& handles() {
  static auto* m = new std::unordered_map<int64_t, HandleKind>();
  return *m;
}

int64_t register_handle(void* p, HandleKind k) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  handles()[(int64_t)(intptr_t)p] = k;
  return (int64_t)(intptr_t)p;
}

template <typename T>
T* lookup(int64_t h, HandleKind k, const char* what) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  auto it = handles().find(h);
  if (h == 0 || it == handles().end() || it->second != k)
    throw KilnError(std::string("invalid ") + what + " handle (closed, freed or never created)");
  return reinterpret_cast<T*>((intptr_t)h);
}

bool unregister_handle(int64_t h, HandleKind k) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  auto it = handles().find(h);
  if (it == handles().end() || it->second != k) return false;
  handles().erase(it);
  return true;
}

// Executors whose handle a C-API call is inside right now. An executor is not thread-safe: a
// call from a second thread while one runs (or a free during a run) is rejected with an error
// instead of racing on the executor's memory. Guarded by g_handles_mu.
std::unordered_set<int64_t>& busy_executors() {
  static auto* s = new std::unordered_set<int64_t>();
  return *s;
}

/// Memory pools (Executor::pool_key) an executor of which a C-API call is inside right now:
/// executors bound with a shared executor (shared_module, reshape, BucketingModule) overwrite
/// each other's intermediates, so a second thread entering any executor of a busy pool is
/// rejected as well. Guarded by g_handles_mu.
std::unordered_set<uint64_t>& busy_pools() {
  static auto* s = new std::unordered_set<uint64_t>();
  return *s;
}

/// Memory pools whose arrays (executor outputs and their views) C-API calls are reading, copying,
/// writing or computing on right now, with the number of such calls (PoolUse): an executor of the
/// pool does not run meanwhile. Guarded by g_handles_mu.
std::unordered_map<uint64_t, int>& used_pools() {
  static auto* s = new std::unordered_map<uint64_t, int>();
  return *s;
}

/// Holds, for the duration of one C-API call, the memory pools that its arrays live in (an
/// executor's outputs and their views are in its pool's arenas: Storage::pool): such an array is
/// not read, copied, written or computed on while another thread runs an executor of that pool
/// (which rewrites the arena as it goes); the call is rejected instead, and an executor call of the
/// pool meanwhile is rejected as well. Calls of several threads on one pool's arrays may overlap.
class PoolUse {
 public:
  explicit PoolUse(std::initializer_list<const NDArray*> arrays) : PoolUse(std::vector<const NDArray*>(arrays)) {}
  /// `except`: a pool this call already holds as an executor's (ExecUse), not held again.
  explicit PoolUse(const std::vector<const NDArray*>& arrays, uint64_t except = 0) {
    for (const NDArray* a : arrays) {
      const uint64_t p = a->storage ? a->storage->pool : 0;
      if (p != 0 && p != except && std::find(want_.begin(), want_.end(), p) == want_.end()) want_.push_back(p);
    }
    hold();
  }
  explicit PoolUse(const std::vector<uint64_t>& pools) : want_(pools) { hold(); }
  ~PoolUse() {
    if (held_.empty()) return;
    std::lock_guard<std::mutex> lock(g_handles_mu);
    release();
  }
  PoolUse(const PoolUse&) = delete;
  PoolUse& operator=(const PoolUse&) = delete;

 private:
  void hold() {
    if (want_.empty()) return;
    std::lock_guard<std::mutex> lock(g_handles_mu);
    for (uint64_t p : want_) {
      if (busy_pools().count(p)) {
        release();
        throw KilnError("the array is an executor's output (or a view of one) and another thread is running an "
                        "executor of its memory pool, which rewrites it: read executor outputs on the thread that "
                        "runs the executor, or once its call has returned");
      }
      ++used_pools()[p];
      held_.push_back(p);
    }
  }
  /// Caller holds g_handles_mu.
  void release() noexcept {
    for (uint64_t p : held_) {
      auto it = used_pools().find(p);
      if (it != used_pools().end() && --it->second == 0) used_pools().erase(it);
    }
    held_.clear();
  }
  std::vector<uint64_t> want_, held_;
};

/// Holds an executor and its memory pool for the duration of one C-API call (see
/// busy_executors, busy_pools).
class ExecUse {
 public:
  explicit ExecUse(int64_t h) : h_(h) {
    std::lock_guard<std::mutex> lock(g_handles_mu);
    auto it = handles().find(h);
    if (h == 0 || it == handles().end() || it->second != HandleKind::kExecutor)
      throw KilnError("invalid executor handle (closed, freed or never created)");
    if (!busy_executors().insert(h).second)
      throw KilnError("executor is in use by another thread: executors are not thread-safe; use one executor per thread "
                      "(executors may share read-only parameter arrays)");
    pool_ = reinterpret_cast<const Executor*>((intptr_t)h)->pool_key();
    if (used_pools().count(pool_)) {
      busy_executors().erase(h);
      throw KilnError("another thread is reading, copying or computing on this executor's outputs (or those of an "
                      "executor sharing its memory pool), which a run would rewrite: run it once that call has returned");
    }
    if (!busy_pools().insert(pool_).second) {
      busy_executors().erase(h);
      throw KilnError("executor shares its memory pool with an executor another thread is running (bound with a shared "
                      "executor: shared_module, reshape or BucketingModule); executors of one pool must run one at a time");
    }
    bound_ = reinterpret_cast<const Executor*>((intptr_t)h)->bound_pools();
  }
  /// Holds the pools of the arrays bound to the executor (bound_pools) for the call; a separate
  /// step, taken after the constructor released g_handles_mu.
  ExecUse& with_bound() {
    if (!bound_.empty()) {
      try {
        bound_use_.reset(new PoolUse(bound_));
      } catch (...) {
        release();
        throw;
      }
    }
    return *this;
  }
  uint64_t pool() const { return pool_; }
  ~ExecUse() {
    bound_use_.reset();
    release();
  }
  ExecUse(const ExecUse&) = delete;
  ExecUse& operator=(const ExecUse&) = delete;
  Executor* operator->() const { return reinterpret_cast<Executor*>((intptr_t)h_); }

 private:
  void release() noexcept {
    if (h_ == 0) return;
    std::lock_guard<std::mutex> lock(g_handles_mu);
    busy_executors().erase(h_);
    busy_pools().erase(pool_);
    h_ = 0;
  }
  int64_t h_;
  uint64_t pool_ = 0;
  std::vector<uint64_t> bound_;
  std::unique_ptr<PoolUse> bound_use_;
};


NDArray& nd(int64_t h) { return *lookup<NDArray>(h, HandleKind::kNDArray, "NDArray"); }
int64_t new_nd(const NDArray& a) { return register_handle(new NDArray(a), HandleKind::kNDArray); }

Context make_ctx(int dev_type, int dev_id) {
  KILN_CHECK(dev_type == 1 || dev_type == 2, "device type must be 1 (cpu) or 2 (gpu), got " + std::to_string(dev_type));
  KILN_CHECK(dev_id >= 0 && dev_id < 1024, "device id out of range: " + std::to_string(dev_id));
  Context c;
  c.type = (DevType)dev_type;
  c.id = dev_id;
  if (c.type == DevType::kGPU) {
#ifdef KILN_CUDA
    std::string why;
    int n = cuda::device_count(&why);
    if (dev_id >= n) throw KilnError(n == 0 ? why : "gpu(" + std::to_string(dev_id) + ") does not exist: " + std::to_string(n) + " CUDA devices");
#else
    throw KilnError("gpu(" + std::to_string(dev_id) + ") requested, but this build of Kiln has no CUDA support (build with mvn -Pcuda)");
#endif
  }
  return c;
}

Shape make_shape(int ndim, const int64_t* dims) {
  KILN_CHECK(ndim >= 0 && ndim <= 32, "rank must be in [0, 32], got " + std::to_string(ndim));
  KILN_CHECK(ndim == 0 || dims, "null shape pointer");
  std::vector<int64_t> d(dims, dims + ndim);
  for (auto x : d) KILN_CHECK(x >= 0, "negative dimension " + std::to_string(x) + " in shape " + Shape(d).str());
  return Shape(d);
}

std::map<std::string, std::string> parse_attr_dict(const char* json) {
  std::map<std::string, std::string> m;
  if (!json || !*json) return m;
  JValue v = parse_json(json);
  if (v.kind != JValue::kObj) throw KilnError("attributes must be a JSON object");
  for (auto& kv : v.obj) {
    if (kv.second.kind == JValue::kStr) m[kv.first] = kv.second.str;
    else if (kv.second.kind == JValue::kNum) {
      char b[64];
      snprintf(b, sizeof b, "%.17g", kv.second.num);
      m[kv.first] = b;
    } else if (kv.second.kind == JValue::kBool) m[kv.first] = kv.second.b ? "True" : "False";
    else throw KilnError("attribute '" + kv.first + "' must be a string or a number");
  }
  return m;
}

std::string shape_json(const Shape& s) {
  if (!s.rank_known()) return "null";
  std::string o = "[";
  for (int i = 0; i < s.ndim(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

const char* type_name(ParamType t) {
  switch (t) {
    case ParamType::kInt: return "int";
    case ParamType::kFloat: return "float";
    case ParamType::kBool: return "boolean";
    case ParamType::kEnum: return "enum";
    case ParamType::kShape: return "shape";
    case ParamType::kString: return "string";
  }
  return "?";
}

template <typename T>
void convert_loop(const void* src, DType st, T* dst, int64_t n) {
  switch (st) {
    case DType::kFloat32: for (int64_t i = 0; i < n; ++i) dst[i] = (T)((const float*)src)[i]; break;
    case DType::kFloat64: for (int64_t i = 0; i < n; ++i) dst[i] = (T)((const double*)src)[i]; break;
    case DType::kFloat16: for (int64_t i = 0; i < n; ++i) dst[i] = (T)(float)((const _Float16*)src)[i]; break;
    case DType::kBfloat16: for (int64_t i = 0; i < n; ++i) dst[i] = (T)bf16_to_float(((const uint16_t*)src)[i]); break;
    case DType::kUint8: for (int64_t i = 0; i < n; ++i) dst[i] = (T)((const uint8_t*)src)[i]; break;
    case DType::kInt32: for (int64_t i = 0; i < n; ++i) dst[i] = (T)((const int32_t*)src)[i]; break;
    case DType::kInt8: for (int64_t i = 0; i < n; ++i) dst[i] = (T)((const int8_t*)src)[i]; break;
    case DType::kInt64: for (int64_t i = 0; i < n; ++i) dst[i] = (T)((const int64_t*)src)[i]; break;
    default: throw KilnError(std::string("conversion from ") + dtype_name(st) + " is not supported");
  }
}

/// Element conversion between any two dtypes (static_cast semantics; to float16 rounds to nearest
/// even from the exact value, to bfloat16 rounds through float32).
void convert(const void* src, DType st, void* dst, DType dt, int64_t n) {
  switch (dt) {
    case DType::kFloat32: convert_loop(src, st, (float*)dst, n); break;
    case DType::kFloat64: convert_loop(src, st, (double*)dst, n); break;
    case DType::kFloat16: convert_loop(src, st, (_Float16*)dst, n); break;
    case DType::kBfloat16: {
      std::vector<float> f((size_t)n);
      convert_loop(src, st, f.data(), n);
      float_to_low_precision(f.data(), dst, dt, n, false);
      break;
    }
    case DType::kUint8: convert_loop(src, st, (uint8_t*)dst, n); break;
    case DType::kInt32: convert_loop(src, st, (int32_t*)dst, n); break;
    case DType::kInt8: convert_loop(src, st, (int8_t*)dst, n); break;
    case DType::kInt64: convert_loop(src, st, (int64_t*)dst, n); break;
    default: throw KilnError(std::string("conversion to ") + dtype_name(dt) + " is not supported");
  }
}

/// Which tensors the gradient of a forward op reads ("ograd:k", "input:<name>", "output:<name>"),
/// found by running its gradient rule on placeholder inputs: this is what keeps forward tensors
/// alive in the memory plan.
std::vector<std::string> backward_reads(const OpDef& d, const Attrs& a) {
  std::vector<std::string> reads;
  if (d.is_backward || d.non_differentiable || !d.gradient) return reads;
  auto fwd = std::make_shared<Node>();
  fwd->op = &d;
  fwd->name = "fwd";
  fwd->attrs = a;
  auto in_names = d.input_names(a);
  auto out_names = d.output_names(a);
  std::vector<NodePtr> vars, ograds;
  for (auto& n : in_names) {
    auto v = std::make_shared<Node>();
    v->name = n;
    vars.push_back(v);
    fwd->inputs.push_back(NodeEntry{v, 0});
  }
  std::vector<NodeEntry> og;
  for (size_t k = 0; k < out_names.size(); ++k) {
    auto v = std::make_shared<Node>();
    v->name = "ograd:" + out_names[k];
    ograds.push_back(v);
    og.push_back(NodeEntry{v, 0});
  }
  std::vector<NodeEntry> g = d.gradient(fwd, og);
  std::vector<const Node*> stack;
  std::unordered_map<const Node*, bool> seen;
  std::unordered_set<std::string> listed;  // (hash lookups: ops may have thousands of inputs or outputs)
  std::unordered_map<const Node*, std::string> leaf;  // input variables and output gradients by node
  for (size_t i = 0; i < vars.size(); ++i) leaf[vars[i].get()] = "input:" + in_names[i];
  for (auto& o : ograds) leaf[o.get()] = o->name;
  auto add = [&](const std::string& s) {
    if (listed.insert(s).second) reads.push_back(s);
  };
  auto visit_entry = [&](const NodeEntry& e) {
    const Node* n = e.node.get();
    if (n == fwd.get()) { add("output:" + (e.index < out_names.size() ? out_names[e.index] : std::to_string(e.index))); return; }
    auto it = leaf.find(n);
    if (it != leaf.end()) { add(it->second); return; }
    if (!seen[n]) { seen[n] = true; stack.push_back(n); }
  };
  for (auto& e : g) if (!is_no_gradient(e)) visit_entry(e);
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (n->is_variable()) continue;
    std::vector<int> ign = n->op->ignore_inputs ? n->op->ignore_inputs(n->attrs) : std::vector<int>{};
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (std::find(ign.begin(), ign.end(), (int)i) == ign.end()) visit_entry(n->inputs[i]);
  }
  return reads;
}

}  // namespace

#define KILN_API_BEGIN try {
#define KILN_API_END                                        \
  }                                                         \
  catch (const std::bad_alloc&) {                           \
    t_error = "out of memory: a native allocation failed";  \
    return -1;                                              \
  }                                                         \
  catch (const std::exception& e) {                         \
    t_error = e.what();                                     \
    return -1;                                              \
  }                                                         \
  catch (...) {                                             \
    t_error = "unknown native error";                       \
    return -1;                                              \
  }                                                         \
  return 0;

#define KILN_CHECK_OUT(p) KILN_CHECK((p) != nullptr, "null output pointer")

const char* kiln_last_error() { return t_error.c_str(); }
const char* kiln_last_string() { return t_string.c_str(); }

int kiln_init() {
  KILN_API_BEGIN
  OpRegistry::get();
  KILN_API_END
}

int kiln_set_num_threads(int n) {
  KILN_API_BEGIN
  set_num_threads(n);
  KILN_API_END
}

int kiln_get_num_threads(int* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  *out = num_threads();
  KILN_API_END
}

int kiln_set_conv_algo(int algo) {
  KILN_API_BEGIN
  set_conv_algo(algo);
  KILN_API_END
}

int kiln_get_conv_algo(int* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  *out = conv_algo();
  KILN_API_END
}

int kiln_simd_isa() {
  KILN_API_BEGIN
  t_string = simd_isa();
  KILN_API_END
}

int kiln_blas_config() {
  KILN_API_BEGIN
  const char* c = openblas_get_config();
  t_string = c ? c : "";
  KILN_API_END
}

int kiln_memory_stats(int dev_type, int dev_id, int64_t* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  Context c;
  c.type = (DevType)dev_type;
  c.id = dev_id;
  MemStats s = mem_stats(c);
  out[0] = s.current;
  out[1] = s.peak;
  out[2] = s.outstanding;
  out[3] = s.total_allocs;
  KILN_API_END
}

int kiln_memory_reset_peak(int dev_type, int dev_id) {
  KILN_API_BEGIN
  Context c;
  c.type = (DevType)dev_type;
  c.id = dev_id;
  reset_peak(c);
  KILN_API_END
}

int kiln_live_handles(int64_t* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  std::lock_guard<std::mutex> lock(g_handles_mu);
  *out = (int64_t)handles().size();
  KILN_API_END
}

int kiln_cuda_device_count(int* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
#ifdef KILN_CUDA
  std::string why;
  *out = cuda::device_count(&why);
  t_string = why;
#else
  *out = 0;
  t_string = "no CUDA device: this build of Kiln has no CUDA support (build with mvn -Pcuda)";
#endif
  KILN_API_END
}

int kiln_cuda_describe() {
  KILN_API_BEGIN
#ifdef KILN_CUDA
  t_string = cuda::describe();
#else
  t_string = "no CUDA device: this build of Kiln has no CUDA support (build with mvn -Pcuda)";
#endif
  KILN_API_END
}

#ifndef KILN_CUDA
namespace {
std::atomic<bool> g_tf32{false};  // kept for Engine.cudaTf32() in a build without CUDA (nothing reads it)
}
#endif

int kiln_cuda_set_tf32(int on) {
  KILN_API_BEGIN
#ifdef KILN_CUDA
  cuda::set_tf32_allowed(on != 0);
#else
  g_tf32.store(on != 0);
#endif
  KILN_API_END
}

int kiln_cuda_tf32(int* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
#ifdef KILN_CUDA
  *out = cuda::tf32_allowed() ? 1 : 0;
#else
  *out = g_tf32.load() ? 1 : 0;
#endif
  KILN_API_END
}

int kiln_cuda_cache_stats(int device, int64_t* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
#ifdef KILN_CUDA
  const cuda::CacheStats st = cuda::cache_stats(device);
  out[0] = st.held;
  out[1] = st.cached;
  out[2] = st.peak_held;
  out[3] = st.driver_allocs;
#else
  (void)device;
  throw KilnError("no CUDA device: this build of Kiln has no CUDA support (build with mvn -Pcuda)");
#endif
  KILN_API_END
}

int kiln_cuda_empty_cache(int device) {
  KILN_API_BEGIN
#ifdef KILN_CUDA
  cuda::empty_cache(device);
#else
  (void)device;
  throw KilnError("no CUDA device: this build of Kiln has no CUDA support (build with mvn -Pcuda)");
#endif
  KILN_API_END
}

int kiln_nccl_describe() {
  KILN_API_BEGIN
#ifdef KILN_CUDA
  t_string = cuda::nccl_describe();
#else
  t_string = "NCCL not available: this build of Kiln has no CUDA support (build with mvn -Pcuda)";
#endif
  KILN_API_END
}

namespace {
/// The NDArrays of a batch of `keys` collectives over n GPUs (handles[k * n + i]: collective k's
/// array on its i-th GPU), checked: non-null, each collective's on n distinct GPUs and of one dtype
/// and size, every collective over the same GPUs in the same order (one NCCL clique). Returns false
/// with *why when one is not on a GPU (the caller falls back).
bool collective_arrays(int keys, int n, const int64_t* handles, std::vector<NDArray*>* arrays, std::vector<int>* devs,
                       std::string* why) {
  KILN_CHECK(keys >= 1 && n >= 1 && handles != nullptr, "NCCL: need at least one array");
  KILN_CHECK(keys <= INT32_MAX / n, "NCCL: " + std::to_string(keys) + " collectives of " + std::to_string(n) +
                                        " arrays each are too many");
  for (int k = 0; k < keys; ++k) {
    const std::string which = keys == 1 ? "" : "collective " + std::to_string(k) + ", ";
    const size_t base = (size_t)k * n;
    for (int i = 0; i < n; ++i) {
      NDArray& a = nd(handles[base + i]);
      if (a.ctx.type != DevType::kGPU) {
        *why = "NCCL needs GPU arrays; " + which + "array " + std::to_string(i) + " is on " + a.ctx.str();
        return false;
      }
      const NDArray* first = i > 0 ? (*arrays)[base] : &a;
      KILN_CHECK(a.dtype == first->dtype && a.shape.size() == first->shape.size(),
                 "NCCL: " + which + "array " + std::to_string(i) + " is " + a.shape.str() + " " + dtype_name(a.dtype) +
                     ", array 0 is " + first->shape.str() + " " + dtype_name(first->dtype));
      if (k == 0) {
        for (int d : *devs)
          KILN_CHECK(d != a.ctx.id, "NCCL: arrays " + std::to_string(i) + " and another are both on " + a.ctx.str() +
                                        "; each must be on its own GPU");
        devs->push_back(a.ctx.id);
      } else {
        KILN_CHECK(a.ctx.id == (*devs)[i], "NCCL: " + which + "array " + std::to_string(i) + " is on " + a.ctx.str() +
                                               ", collective 0's on gpu(" + std::to_string((*devs)[i]) +
                                               "); one batch runs over one list of GPUs");
      }
      arrays->push_back(&a);
    }
  }
  return true;
}
}  // namespace

int kiln_nccl_reduce_sum(int keys, int n, const int64_t* parts, const int64_t* outs, int* done) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(done);
  *done = 0;
  std::vector<NDArray*> arrays;
  std::vector<int> devs;
  std::string why;
  if (collective_arrays(keys, n, parts, &arrays, &devs, &why)) {
    KILN_CHECK(outs != nullptr, "NCCL reduce: null outs");
    std::vector<NDArray*> out;
    for (int k = 0; k < keys; ++k) out.push_back(&nd(outs[k]));
    std::vector<const NDArray*> touched(arrays.begin(), arrays.end());
    touched.insert(touched.end(), out.begin(), out.end());
    PoolUse use(touched);  // executor outputs among them: not while another thread runs that executor
    std::vector<int> roots;
    for (int k = 0; k < keys && why.empty(); ++k) {
      const NDArray& o = *out[k];
      const NDArray& p = *arrays[(size_t)k * n];
      const std::string which = keys == 1 ? "" : " (collective " + std::to_string(k) + ")";
      KILN_CHECK(o.dtype == p.dtype && o.shape.size() == p.shape.size(),
                 "NCCL reduce: out" + which + " is " + o.shape.str() + " " + dtype_name(o.dtype) + ", the parts " +
                     p.shape.str() + " " + dtype_name(p.dtype));
      roots.push_back(-1);
      for (int i = 0; i < n; ++i)
        if (o.ctx.type == DevType::kGPU && devs[i] == o.ctx.id) roots.back() = i;
      if (roots.back() < 0) why = "NCCL reduce: out" + which + " is on " + o.ctx.str() + ", not on the GPU of a part";
    }
    if (why.empty()) {
#ifdef KILN_CUDA
      std::vector<cuda::NcclCall> calls(keys);
      for (int k = 0; k < keys; ++k) {
        for (int i = 0; i < n; ++i) calls[k].bufs.push_back(arrays[(size_t)k * n + i]->data());
        calls[k].recv = out[k]->data();
        calls[k].root = roots[k];
        calls[k].dtype = out[k]->dtype;
        calls[k].count = (size_t)out[k]->shape.size();
      }
      *done = cuda::nccl_reduce_sum(devs, calls, &why) ? 1 : 0;
#else
      why = "NCCL not available: this build of Kiln has no CUDA support";
#endif
    }
  }
  t_string = *done ? "" : why;
  KILN_API_END
}

int kiln_nccl_broadcast(int keys, int n, const int64_t* handles, const int* roots, int* done) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(done);
  *done = 0;
  KILN_CHECK(roots != nullptr || keys < 1, "NCCL broadcast: null roots");
  for (int k = 0; k < keys; ++k)
    KILN_CHECK(roots[k] >= 0 && roots[k] < n, "NCCL broadcast: root " + std::to_string(roots[k]) + " out of range for " +
                                                  std::to_string(n) + " arrays" +
                                                  (keys == 1 ? "" : " (collective " + std::to_string(k) + ")"));
  std::vector<NDArray*> arrays;
  std::vector<int> devs;
  std::string why;
  if (collective_arrays(keys, n, handles, &arrays, &devs, &why)) {
    PoolUse use(std::vector<const NDArray*>(arrays.begin(), arrays.end()));
#ifdef KILN_CUDA
    std::vector<cuda::NcclCall> calls(keys);
    for (int k = 0; k < keys; ++k) {
      for (int i = 0; i < n; ++i) calls[k].bufs.push_back(arrays[(size_t)k * n + i]->data());
      calls[k].root = roots[k];
      calls[k].dtype = arrays[(size_t)k * n]->dtype;
      calls[k].count = (size_t)arrays[(size_t)k * n]->shape.size();
    }
    *done = cuda::nccl_broadcast(devs, calls, &why) ? 1 : 0;
#else
    why = "NCCL not available: this build of Kiln has no CUDA support";
#endif
  }
  t_string = *done ? "" : why;
  KILN_API_END
}

// ---- registry --------------------------------------------------------------------------------

int kiln_op_list() {
  KILN_API_BEGIN
  std::string o = "[";
  bool first = true;
  for (auto* d : OpRegistry::get().all()) {
    if (d->is_backward) continue;
    o += (first ? "" : ",") + json_str(d->name);
    first = false;
    for (auto& a : d->aliases) o += "," + json_str(a);
  }
  t_string = o + "]";
  KILN_API_END
}

int kiln_op_info(const char* op, const char* attrs_json) {
  KILN_API_BEGIN
  KILN_CHECK(op, "null operator name");
  const OpDef& d = OpRegistry::get().at(op);
  // Parse leniently: only the attributes that shape the signature must be valid.
  auto dict = parse_attr_dict(attrs_json);
  Attrs a;
  try {
    a = parse_attrs(d, dict);
  } catch (const KilnError&) {
    // required params may be missing when only the signature is asked for; fill what we can
    std::map<std::string, std::string> filled = dict;
    for (auto& p : d.params)
      if (!filled.count(p.name) && p.default_value.empty())
        filled[p.name] = p.type == ParamType::kInt ? "1" : p.type == ParamType::kFloat ? "0" : p.type == ParamType::kShape ? "(1,)" :
                         p.type == ParamType::kEnum && !p.choices.empty() ? p.choices[0] : "";
    a = parse_attrs(d, filled);
  }
  std::ostringstream os;
  os << "{\"name\":" << json_str(d.name) << ",\"aliases\":[";
  for (size_t i = 0; i < d.aliases.size(); ++i) os << (i ? "," : "") << json_str(d.aliases[i]);
  os << "],\"description\":" << json_str(d.description) << ",\"inputs\":[";
  auto ins = d.input_names(a);
  for (size_t i = 0; i < ins.size(); ++i) os << (i ? "," : "") << json_str(ins[i]);
  os << "],\"outputs\":[";
  auto outs = d.output_names(a);
  for (size_t i = 0; i < outs.size(); ++i) os << (i ? "," : "") << json_str(outs[i]);
  os << "],\"visible_outputs\":" << d.num_visible_outputs(a) << ",\"mutate\":[";
  if (d.mutate_inputs) {
    auto m = d.mutate_inputs(a);
    for (size_t i = 0; i < m.size(); ++i) os << (i ? "," : "") << m[i];
  }
  os << "],\"params\":[";
  for (size_t i = 0; i < d.params.size(); ++i) {
    const ParamDef& p = d.params[i];
    os << (i ? "," : "") << "{\"name\":" << json_str(p.name) << ",\"type\":\"" << type_name(p.type) << "\",\"default\":"
       << json_str(p.default_value) << ",\"required\":" << (p.default_value.empty() ? "true" : "false")
       << ",\"description\":" << json_str(p.description) << ",\"choices\":[";
    for (size_t k = 0; k < p.choices.size(); ++k) os << (k ? "," : "") << json_str(p.choices[k]);
    os << "]}";
  }
  os << "],\"backward_reads\":[";
  auto br = backward_reads(d, a);
  for (size_t i = 0; i < br.size(); ++i) os << (i ? "," : "") << json_str(br[i]);
  os << "],\"backward\":" << (d.is_backward ? "true" : "false") << ",\"differentiable\":" << (d.non_differentiable ? "false" : "true")
     << ",\"loss\":" << (d.is_loss ? "true" : "false") << ",\"gpu\":" << (d.gpu ? "true" : "false") << "}";
  t_string = os.str();
  KILN_API_END
}

int kiln_registry_selftest() {
  KILN_API_BEGIN
  std::ostringstream os, problems, nogpu;
  int count = 0;
  for (auto* d : OpRegistry::get().all()) {
    ++count;
    std::string name = d->name;
    if (!d->cpu) problems << name << ": no CPU kernel; ";
    if (!d->is_backward && !d->infer_shape) problems << name << ": no shape function; ";
    if (!d->is_backward && !d->gradient && !d->non_differentiable) problems << name << ": neither a gradient nor non_differentiable; ";
    if (d->gradient && d->non_differentiable) problems << name << ": both a gradient and non_differentiable; ";
    if (d->description.empty()) problems << name << ": no description; ";
    for (auto& p : d->params) {
      if (p.description.empty()) problems << name << "." << p.name << ": no description; ";
      if (p.type == ParamType::kEnum && p.choices.empty()) problems << name << "." << p.name << ": enum without choices; ";
    }
    if (!d->gpu) nogpu << (nogpu.tellp() > 0 ? ", " : "") << name;
  }
  std::string prob = problems.str();
  os << "{\"ops\":" << count << ",\"ok\":" << (prob.empty() ? "true" : "false") << ",\"problems\":" << json_str(prob)
     << ",\"not_on_gpu_yet\":" << json_str(nogpu.str()) << "}";
  t_string = os.str();
  if (!prob.empty()) throw KilnError("registry self-test failed: " + prob);
  KILN_API_END
}

// ---- NDArray ---------------------------------------------------------------------------------

int kiln_nd_create(int dev_type, int dev_id, int dtype, int ndim, const int64_t* shape, int64_t* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  KILN_CHECK((dtype >= 0 && dtype <= 6) || dtype == (int)DType::kBfloat16, "unknown dtype id " + std::to_string(dtype));
  Context c = make_ctx(dev_type, dev_id);
  *out = new_nd(make_ndarray(make_shape(ndim, shape), (DType)dtype, c));
  KILN_API_END
}

int kiln_nd_free(int64_t h) {
  KILN_API_BEGIN
  if (!unregister_handle(h, HandleKind::kNDArray)) throw KilnError("invalid NDArray handle (already freed or never created)");
  delete reinterpret_cast<NDArray*>((intptr_t)h);
  KILN_API_END
}

int kiln_nd_info(int64_t h, int64_t* out, int cap) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  NDArray& a = nd(h);
  KILN_CHECK(cap >= 4 + a.shape.ndim(), "info buffer too small");
  out[0] = (int64_t)a.dtype;
  out[1] = (int64_t)a.ctx.type;
  out[2] = a.ctx.id;
  out[3] = a.shape.ndim();
  for (int i = 0; i < a.shape.ndim(); ++i) out[4 + i] = a.shape[i];
  KILN_API_END
}

int kiln_nd_write(int64_t h, const void* src, int64_t nbytes) {
  KILN_API_BEGIN
  NDArray& a = nd(h);
  PoolUse use{&a};
  KILN_CHECK(src || nbytes == 0, "null source");
  KILN_CHECK(nbytes == (int64_t)a.bytes(), "write: " + std::to_string(nbytes) + " bytes given for an array of shape " + a.shape.str() +
                                               " " + dtype_name(a.dtype) + " (" + std::to_string(a.bytes()) + " bytes)");
  Context host;
  copy_bytes(a.ctx, a.data(), host, src, a.bytes());
  KILN_API_END
}

int kiln_nd_read(int64_t h, void* dst, int64_t nbytes) {
  KILN_API_BEGIN
  NDArray& a = nd(h);
  PoolUse use{&a};
  KILN_CHECK(dst || nbytes == 0, "null destination");
  KILN_CHECK(nbytes == (int64_t)a.bytes(), "read: " + std::to_string(nbytes) + " bytes requested from an array of shape " +
                                               a.shape.str() + " " + dtype_name(a.dtype) + " (" + std::to_string(a.bytes()) + " bytes)");
  Context host;
  copy_bytes(host, dst, a.ctx, a.data(), a.bytes());
  KILN_API_END
}

int kiln_nd_reshape(int64_t h, int ndim, const int64_t* shape, int64_t* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  NDArray a = nd(h);
  Shape s = make_shape(ndim, shape);
  KILN_CHECK(s.size() == a.shape.size(), "reshape: cannot view an array of shape " + a.shape.str() + " as " + s.str() + " (sizes differ)");
  a.shape = s;
  *out = new_nd(a);
  KILN_API_END
}

int kiln_nd_slice(int64_t h, int64_t begin, int64_t end, int64_t* out) {
  KILN_API_BEGIN
  KILN_CHECK_OUT(out);
  NDArray a = nd(h);
  KILN_CHECK(a.shape.ndim() >= 1, "slice: a scalar cannot be sliced");
  KILN_CHECK(begin >= 0 && begin <= end && end <= a.shape[0],
             "slice [" + std::to_string(begin) + ", " + std::to_string(end) + ") is out of range for shape " + a.shape.str());
  int64_t row = a.shape.prod(1, a.shape.ndim()) * (int64_t)dtype_size(a.dtype);
  a.offset += (size_t)(begin * row);
  a.shape[0] = end - begin;
  *out = new_nd(a);
  KILN_API_END
}

// Runs fill(p) on a's bytes: in place for a host array; for a device array p is a host buffer that is
// then copied over a (fill, random and dtype-converting copies on the GPU are initialisation-time
// edges, so one staging copy is fine, and random draws are the same numbers as on the CPU).
template <class Fill>
static void write_via_host(NDArray& a, Fill fill) {
  if (a.ctx.type == DevType::kCPU) {
    fill(a.data());
    return;
  }
  std::vector<char> host(a.bytes());
  fill(host.data());
  copy_bytes(a.ctx, a.data(), Context{}, host.data(), a.bytes());
}

int kiln_nd_copy_to(int64_t src, int64_t dst) {
  KILN_API_BEGIN
  NDArray& s = nd(src);
  NDArray& d = nd(dst);
  PoolUse use{&s, &d};
  KILN_CHECK(s.shape.size() == d.shape.size(), "copy: shapes " + s.shape.str() + " and " + d.shape.str() + " differ in size");
  if (s.dtype == d.dtype) {
    copy_bytes(d.ctx, d.data(), s.ctx, s.data(), s.bytes());
  } else if (s.ctx.type == DevType::kCPU) {
    write_via_host(d, [&](void* dst) { convert(s.data(), s.dtype, dst, d.dtype, s.shape.size()); });
  } else {
    std::vector<char> src(s.bytes());  // device source: read it to the host, then convert into d
    copy_bytes(Context{}, src.data(), s.ctx, s.data(), s.bytes());
    write_via_host(d, [&](void* dst) { convert(src.data(), s.dtype, dst, d.dtype, s.shape.size()); });
  }
  KILN_API_END
}

int kiln_nd_fill(int64_t h, double value) {
  KILN_API_BEGIN
  NDArray& a = nd(h);
  PoolUse use{&a};
  int64_t n = a.shape.size();
  write_via_host(a, [&](void* dst) {
    switch (a.dtype) {
      case DType::kFloat32: { float* p = (float*)dst; for (int64_t i = 0; i < n; ++i) p[i] = (float)value; break; }
      case DType::kFloat64: { double* p = (double*)dst; for (int64_t i = 0; i < n; ++i) p[i] = value; break; }
      default:
        for (int64_t i = 0; i < n; ++i) convert(&value, DType::kFloat64, (char*)dst + i * dtype_size(a.dtype), a.dtype, 1);
    }
  });
  KILN_API_END
}

int kiln_nd_random(int64_t h, int dist, double a, double b, int64_t seed) {
  KILN_API_BEGIN
  NDArray& arr = nd(h);
  PoolUse use{&arr};
  KILN_CHECK(dist == 0 || dist == 1, "unknown distribution");
  KILN_CHECK(dist == 0 ? a <= b : b >= 0, dist == 0 ? "uniform: low must not exceed high" : "normal: scale must be >= 0");
  std::mt19937_64 rng((uint64_t)seed);
  int64_t n = arr.shape.size();
  std::vector<double> v(n);
  if (dist == 0) {
    std::uniform_real_distribution<double> u(a, b);
    for (auto& x : v) x = u(rng);
  } else {
    std::normal_distribution<double> nm(a, b);
    for (auto& x : v) x = nm(rng);
  }
  write_via_host(arr, [&](void* dst) { convert(v.data(), DType::kFloat64, dst, arr.dtype, n); });
  KILN_API_END
}

// ---- imperative calls ------------------------------------------------------------------------

int kiln_op_invoke(const char* op, const char* attrs_json, int nin, const int64_t* inputs, int nout_cap, int64_t* outputs,
                   int* nout) {
  KILN_API_BEGIN
  KILN_CHECK(op && nout && (nin == 0 || inputs) && (nout_cap == 0 || outputs), "null argument");
  const OpDef& d = OpRegistry::get().at(op);
  KILN_CHECK(!d.is_backward, "backward operators cannot be invoked directly");
  Attrs a = parse_attrs(d, parse_attr_dict(attrs_json));
  int want = d.num_inputs(a);
  KILN_CHECK(nin == want, "operator " + d.name + " expects " + std::to_string(want) + " inputs, got " + std::to_string(nin));
  std::vector<NDArray> in;
  for (int i = 0; i < nin; ++i) in.push_back(nd(inputs[i]));
  Context ctx = nin ? in[0].ctx : Context();
  for (auto& x : in) KILN_CHECK(x.ctx == ctx, "operator " + d.name + ": inputs are on different devices");
  int n_all = d.num_outputs(a), n_vis = d.num_visible_outputs(a);
  if (nout_cap < n_vis) {  // the caller retries with n_vis slots (c_api.h)
    *nout = n_vis;
    return 0;
  }
  std::vector<Shape> ishape, oshape(n_all);
  std::vector<DType> itype, otype(n_all, DType::kUnknown);
  for (auto& x : in) { ishape.push_back(x.shape); itype.push_back(x.dtype); }
  for (int j = 0; j < n_vis; ++j)
    if (outputs[j]) { oshape[j] = nd(outputs[j]).shape; otype[j] = nd(outputs[j]).dtype; }
  std::vector<Shape> ishape0 = ishape;
  try {
    d.infer_shape(a, &ishape, &oshape);
    if (d.infer_type) d.infer_type(a, &itype, &otype);
    else infer_same_type(a, &itype, &otype);
  } catch (const InferError& e) {
    auto names = e.input ? d.input_names(a) : d.output_names(a);
    std::string arg = (e.index >= 0 && e.index < (int)names.size()) ? names[e.index] : std::to_string(e.index);
    std::string shapes;
    for (auto& s : ishape0) shapes += (shapes.empty() ? "" : ", ") + s.str();
    throw KilnError("operator " + d.name + " with input shapes " + shapes + ": " + (e.input ? "input '" : "output '") + arg + "': " + e.what());
  }
  for (int i = 0; i < nin; ++i)
    KILN_CHECK(ishape[i] == in[i].shape && itype[i] == in[i].dtype,
               "operator " + d.name + ": input " + std::to_string(i) + " must be " + ishape[i].str() + " " + dtype_name(itype[i]) +
                   ", got " + in[i].shape.str() + " " + dtype_name(in[i].dtype));
  std::vector<NDArray> out(n_all);
  std::vector<TBlob> iblob, oblob;
  std::vector<OpReq> req(n_all, OpReq::kWriteTo);
  for (int j = 0; j < n_all; ++j) {
    KILN_CHECK(oshape[j].known(), "operator " + d.name + ": cannot infer the shape of output " + std::to_string(j));
    if (j < n_vis && outputs[j]) {
      out[j] = nd(outputs[j]);
      KILN_CHECK(out[j].shape == oshape[j] && out[j].dtype == otype[j] && out[j].ctx == ctx,
                 "operator " + d.name + ": output " + std::to_string(j) + " must be " + oshape[j].str() + " " + dtype_name(otype[j]));
    } else {
      out[j] = make_ndarray(oshape[j], otype[j], ctx);
    }
  }
  std::vector<const NDArray*> touched;
  for (const auto* v : {&in, &out})
    for (const NDArray& x : *v) touched.push_back(&x);
  PoolUse use(touched);
  for (auto& x : in) iblob.push_back(x.blob());
  for (auto& x : out) oblob.push_back(x.blob());
  for (int j = 0; j < n_all; ++j)
    for (auto& x : in) if (x.data() == out[j].data()) req[j] = OpReq::kWriteInplace;
  const Kernel& k = ctx.type == DevType::kGPU ? d.gpu : d.cpu;
  KILN_CHECK((bool)k, "operator " + d.name + " has no kernel for " + ctx.str() + " yet");
  StoragePtr ws;
  OpCtx oc;
  oc.ctx = ctx;
  if (d.workspace) {
    size_t wb = d.workspace(a, ishape, oshape);
    if (wb) { ws = alloc_storage(ctx, wb, false); oc.workspace = ws->ptr; oc.workspace_bytes = wb; }
  }
  static thread_local std::mt19937_64 rng(0);
  oc.rng = &rng;
  k(oc, a, iblob, req, oblob);
  *nout = n_vis;
  for (int j = 0; j < n_vis; ++j)
    if (!outputs[j]) outputs[j] = new_nd(out[j]);
  KILN_API_END
}

// ---- graphs ----------------------------------------------------------------------------------

int kiln_infer(const char* graph_json, const char* known_json) {
  KILN_API_BEGIN
  KILN_CHECK(graph_json, "null graph");
  Graph g = load_graph(graph_json);
  IndexedGraph ig(g.outputs);
  std::vector<NodePtr> args, aux;
  list_inputs(ig.nodes, &args, &aux);
  std::vector<Shape> shapes(ig.num_entries());
  std::vector<DType> types(ig.num_entries(), DType::kUnknown);
  bool partial = false;
  std::unordered_map<std::string, uint32_t> var_eid;
  for (auto& n : ig.nodes)
    if (n->is_variable()) var_eid[n->name] = ig.eid(NodeEntry{n, 0});
  // hints stored on variables
  for (auto& n : ig.nodes) {
    if (!n->is_variable()) continue;
    uint32_t e = ig.eid(NodeEntry{n, 0});
    auto it = n->attrs.dict.find("__shape__");
    if (it != n->attrs.dict.end()) {
      std::vector<int64_t> dims;  // a malformed hint is ignored, as an absent one
      if (parse_shape_tuple(it->second, &dims) && !dims.empty()) {
        for (auto& x : dims) if (x == 0) x = -1;  // 0 = unknown in MXNet's legacy shapes
        shapes[e] = Shape(dims);
      }
    }
    auto dt = n->attrs.dict.find("__dtype__");
    if (dt != n->attrs.dict.end()) {
      char* end = nullptr;
      long v = std::strtol(dt->second.c_str(), &end, 10);
      if (end && *end == 0 && ((v >= 0 && v <= 6) || v == (long)DType::kBfloat16)) types[e] = (DType)v;
      else types[e] = dtype_from_name(dt->second);
    }
  }
  if (known_json && *known_json) {
    JValue k = parse_json(known_json);
    if (const JValue* p = k.get("partial")) partial = p->kind == JValue::kBool && p->b;
    if (const JValue* s = k.get("shapes")) {
      for (auto& kv : s->obj) {
        auto it = var_eid.find(kv.first);
        if (it == var_eid.end()) {
          std::string names;
          for (auto& n : args) names += (names.empty() ? "" : ", ") + n->name;
          throw KilnError("infer_shape: '" + kv.first + "' is not an input of the graph; inputs are: " + names);
        }
        if (kv.second.kind != JValue::kArr) throw KilnError("infer_shape: shape of '" + kv.first + "' must be an array");
        std::vector<int64_t> dims;
        for (auto& x : kv.second.arr) {
          int64_t v = x.as_int("shape of " + kv.first);
          dims.push_back(v == 0 ? -1 : v);
        }
        Shape sh(dims);
        if (!shape_assign(&shapes[it->second], sh))
          throw KilnError("infer_shape: shape " + sh.str() + " given for '" + kv.first + "' conflicts with its __shape__ " + shapes[it->second].str());
      }
    }
    if (const JValue* t = k.get("types"))
      for (auto& kv : t->obj) {
        auto it = var_eid.find(kv.first);
        if (it == var_eid.end()) throw KilnError("infer_type: '" + kv.first + "' is not an input of the graph");
        types[it->second] = dtype_from_name(kv.second.as_str("type of " + kv.first));
      }
  }
  infer_shapes(ig, &shapes, {});
  // dtype defaults to float32 for unconstrained inputs, as MXNet's simple_bind does
  bool any_type = false;
  for (auto t : types) any_type |= t != DType::kUnknown;
  if (!any_type)
    for (auto& n : args) types[ig.eid(NodeEntry{n, 0})] = DType::kFloat32;
  infer_types(ig, &types, {});
  bool complete = true;
  std::string missing;
  for (auto& n : args) {
    uint32_t e = ig.eid(NodeEntry{n, 0});
    if (!shapes[e].known()) { complete = false; missing += (missing.empty() ? "" : ", ") + n->name + shapes[e].str(); }
  }
  for (auto o : ig.outputs) complete = complete && shapes[o].known();
  if (!complete && !partial)
    throw KilnError("infer_shape: cannot infer the shapes of " + (missing.empty() ? std::string("some outputs") : missing) +
                    "; provide the input shapes");
  std::ostringstream os;
  auto list = [&](const char* key, const std::vector<uint32_t>& eids) {
    os << "\"" << key << "_shapes\":[";
    for (size_t i = 0; i < eids.size(); ++i) os << (i ? "," : "") << shape_json(shapes[eids[i]]);
    os << "],\"" << key << "_types\":[";
    for (size_t i = 0; i < eids.size(); ++i) os << (i ? "," : "") << (types[eids[i]] == DType::kUnknown ? "null" : json_str(dtype_name(types[eids[i]])));
    os << "],\"" << key << "_names\":[";
    for (size_t i = 0; i < eids.size(); ++i) os << (i ? "," : "") << "\"\"";
    os << "],";
  };
  std::vector<uint32_t> ae, xe;
  for (auto& n : args) ae.push_back(ig.eid(NodeEntry{n, 0}));
  for (auto& n : aux) xe.push_back(ig.eid(NodeEntry{n, 0}));
  os << "{";
  list("arg", ae);
  list("out", ig.outputs);
  list("aux", xe);
  os << "\"complete\":" << (complete ? "true" : "false") << "}";
  t_string = os.str();
  KILN_API_END
}

// ---- executors -------------------------------------------------------------------------------

int kiln_exec_bind(const char* graph_json, int dev_type, int dev_id, int narg, const int64_t* args, const int64_t* grads,
                   const int* grad_reqs, int naux, const int64_t* aux, const char* options_json, int64_t* out) {
  return kiln_exec_bind_shared(graph_json, dev_type, dev_id, narg, args, grads, grad_reqs, naux, aux, options_json, 0, out);
}

int kiln_exec_bind_shared(const char* graph_json, int dev_type, int dev_id, int narg, const int64_t* args, const int64_t* grads,
                          const int* grad_reqs, int naux, const int64_t* aux, const char* options_json, int64_t shared_exec,
                          int64_t* out) {
  KILN_API_BEGIN
  // binding into a pool may grow its arenas and workspace: no executor of that pool may be running
  std::unique_ptr<ExecUse> shared_use;
  if (shared_exec) shared_use = std::make_unique<ExecUse>(shared_exec);
  const Executor* shared = shared_exec ? lookup<Executor>(shared_exec, HandleKind::kExecutor, "shared executor") : nullptr;
  KILN_CHECK(graph_json && out, "null argument");
  KILN_CHECK(narg >= 0 && naux >= 0 && (narg == 0 || (args && grads && grad_reqs)) && (naux == 0 || aux), "null argument arrays");
  Context ctx = make_ctx(dev_type, dev_id);
  std::vector<NDArray> a, g, x;
  std::vector<int> r(grad_reqs, grad_reqs + narg);
  for (int i = 0; i < narg; ++i) {
    a.push_back(nd(args[i]));
    g.push_back(r[i] ? nd(grads[i]) : NDArray());
  }
  for (int i = 0; i < naux; ++i) x.push_back(nd(aux[i]));
  BindOptions opt;
  if (options_json && *options_json) {
    JValue o = parse_json(options_json);
    if (const JValue* v = o.get("mxnet_compatible_plan")) opt.plan.mxnet_compatible = v->kind == JValue::kBool && v->b;
    if (const JValue* v = o.get("match_range")) {
      int64_t m = v->as_int("match_range");
      KILN_CHECK(m >= 0 && m <= 1024, "match_range must be in [0, 1024]");
      opt.plan.match_range = (int)m;
    }
    if (const JValue* v = o.get("inplace")) opt.plan.inplace = !(v->kind == JValue::kBool && !v->b);
    if (const JValue* v = o.get("search")) opt.plan.search = !(v->kind == JValue::kBool && !v->b);
    if (const JValue* v = o.get("seed")) opt.seed = (uint64_t)v->as_int("seed");
  }
  auto* ex = new Executor(graph_json, ctx, a, g, r, x, opt, shared);
  *out = register_handle(ex, HandleKind::kExecutor);
  KILN_API_END
}

int kiln_exec_forward(int64_t ex, int is_train) {
  KILN_API_BEGIN
  ExecUse e(ex);
  e.with_bound()->forward(is_train != 0);
  KILN_API_END
}

int kiln_exec_backward(int64_t ex, int nhead, const int64_t* head_grads) {
  KILN_API_BEGIN
  ExecUse e(ex);
  e.with_bound();
  KILN_CHECK(nhead >= 0 && (nhead == 0 || head_grads), "null head gradients");
  std::vector<NDArray> h;
  for (int i = 0; i < nhead; ++i) h.push_back(nd(head_grads[i]));
  std::vector<const NDArray*> hp;
  for (const NDArray& x : h) hp.push_back(&x);
  PoolUse heads(hp, e.pool());  // head gradients from another executor's outputs
  e->backward(h);
  KILN_API_END
}

int kiln_exec_forward_backward(int64_t ex) {
  KILN_API_BEGIN
  ExecUse e(ex);
  e.with_bound()->forward_backward();
  KILN_API_END
}

int kiln_exec_set_loss_scale(int64_t ex, double scale) {
  KILN_API_BEGIN
  ExecUse(ex)->set_loss_scale(scale);
  KILN_API_END
}

int kiln_exec_loss_scale(int64_t ex, double* out) {
  KILN_API_BEGIN
  KILN_CHECK(out, "null output");
  *out = ExecUse(ex)->loss_scale();
  KILN_API_END
}

int kiln_exec_outputs(int64_t ex, int cap, int64_t* out, int* n) {
  KILN_API_BEGIN
  KILN_CHECK(out && n, "null argument");
  auto outs = ExecUse(ex)->outputs();
  KILN_CHECK(cap >= (int)outs.size(), "output buffer too small");
  for (size_t i = 0; i < outs.size(); ++i) out[i] = new_nd(outs[i]);
  *n = (int)outs.size();
  KILN_API_END
}

int kiln_exec_report(int64_t ex) {
  KILN_API_BEGIN
  t_string = ExecUse(ex)->report();
  KILN_API_END
}

int kiln_exec_set_monitor(int64_t ex, int mode) {
  KILN_API_BEGIN
  ExecUse(ex)->set_monitor(mode);
  KILN_API_END
}

int kiln_exec_monitor_entries(int64_t ex, int cap, int64_t* out, int* n) {
  KILN_API_BEGIN
  KILN_CHECK(n && (cap == 0 || out) && cap >= 0, "null argument");
  auto entries = ExecUse(ex)->monitor_entries();
  *n = (int)entries.size();
  if (cap < (int)entries.size()) return 0;
  std::string names = "[";
  for (size_t i = 0; i < entries.size(); ++i) names += (i ? "," : "") + json_str(entries[i].first);
  t_string = names + "]";
  for (size_t i = 0; i < entries.size(); ++i) out[i] = new_nd(entries[i].second);
  KILN_API_END
}

int kiln_exec_free(int64_t ex) {
  KILN_API_BEGIN
  {
    std::lock_guard<std::mutex> lock(g_handles_mu);
    auto it = handles().find(ex);
    if (it == handles().end() || it->second != HandleKind::kExecutor)
      throw KilnError("invalid executor handle (already freed or never created)");
    if (busy_executors().count(ex))
      throw KilnError("cannot free an executor while another thread is using it (executors are not thread-safe)");
    handles().erase(it);
  }
  delete reinterpret_cast<Executor*>((intptr_t)ex);
  KILN_API_END
}

// ---- hooks for the other C-boundary files (c_api_internal.h) ----------------------------------

namespace kiln {
namespace capi {
NDArray& ndarray(int64_t h) { return nd(h); }
int64_t register_fused(void* plan) { return register_handle(plan, HandleKind::kFused); }

// Fused-update plans a C-API call is inside right now (FusedUse). Guarded by g_handles_mu.
std::unordered_set<int64_t>& busy_fused() {
  static auto* s = new std::unordered_set<int64_t>();
  return *s;
}

FusedUse::FusedUse(int64_t h) : h_(h) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  auto it = handles().find(h);
  if (h == 0 || it == handles().end() || it->second != HandleKind::kFused)
    throw KilnError("invalid fused update handle (closed, freed or never created)");
  if (!busy_fused().insert(h).second)
    throw KilnError("fused update is in use by another thread: a FusedUpdate is not thread-safe; use one per thread");
  plan_ = reinterpret_cast<void*>((intptr_t)h);
}

FusedUse::~FusedUse() {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  busy_fused().erase(h_);
}

void* unregister_fused(int64_t h) {
  std::lock_guard<std::mutex> lock(g_handles_mu);
  auto it = handles().find(h);
  if (h == 0 || it == handles().end() || it->second != HandleKind::kFused)
    throw KilnError("invalid fused update handle (already freed or never created)");
  if (busy_fused().count(h))
    throw KilnError("cannot free a fused update while another thread is using it (a FusedUpdate is not thread-safe)");
  handles().erase(it);
  return reinterpret_cast<void*>((intptr_t)h);
}
void set_last_error(const std::string& message) { t_error = message; }
}  // namespace capi
}  // namespace kiln
