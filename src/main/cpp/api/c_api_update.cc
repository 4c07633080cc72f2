// The native side of dev.kiln.optimizer.FusedUpdate: a plan of registered-operator calls (one
// optimizer update per parameter) that runs in ONE native call per training step.
//
// kiln_fused_add does all the parsing and checking once: the op is looked up, its attributes are
// parsed against its ParamDefs (the dynamic ones with a placeholder), the argument count, shapes,
// types and devices are inferred and checked, output requests are fixed (kWriteInplace where an
// output is an input, e.g. the weight), hidden outputs and workspace are allocated. A run then
// only (1) resolves every handle through the handle table, rejecting closed arrays before any
// kernel runs, (2) writes the dynamic values straight into the parsed attributes (range-checked,
// no string parsing) and (3) calls the kernels in order. Same error convention as c_api.cc:
// status 0 / -1 and a thread-local message; nothing escapes.
//
// On a GPU (every call on one device, no random op) a run is recorded as a CUDA graph when its
// dynamic values (bit for bit), its arrays and the TF32 setting are those of the run before it; the
// graph is replayed while they stay the same (SGD at a constant learning rate: every step after the
// second is one graph launch). A run with other values runs eagerly and drops the graph (Adam's
// bias-corrected learning rate changes every step, so Adam runs eagerly). Eager runs and replays
// use the legacy stream, as imperative operators (ordered with the executors' blocking stream);
// recording happens on a non-blocking stream of the plan's own, so another thread's kernels on the
// device's stream are never swallowed by it, and its copies on the legacy stream go on meanwhile.
// KILN_CUDA_GRAPHS=0: always eager; KILN_CUDA_SYNC=1: always
// eager, waiting for the device after each call so that an asynchronous fault names it.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "c_api_internal.h"
#include "kiln/c_api.h"
#include "kiln/cuda_api.h"
#include "kiln/json.h"
#include "kiln/kernel_common.h"
#include "kiln/op.h"

using namespace kiln;

namespace {

/// One op call of a plan.
struct FusedCall {
  const OpDef* op = nullptr;
  Attrs attrs;                       // parsed once; dynamic entries patched per run
  std::vector<std::string> dyn_keys;
  std::vector<int> dyn_param;        // index into op->params / attrs.values per dynamic key
  std::vector<int64_t> in_h, out_h;  // borrowed NDArray handles (resolved at every run)
  std::vector<Shape> in_shape, out_shape;
  std::vector<DType> in_type, out_type;
  std::vector<NDArray> hidden;       // outputs past the visible ones, owned by the plan
  std::vector<OpReq> req;
  Context ctx;
  StoragePtr workspace;
  size_t workspace_bytes = 0;
  std::string label;                 // "call 3 (adam_update)"
  std::vector<double> checked;       // dynamic values last found to keep the planned shapes
};

/// The CUDA graph of a GPU plan's run (see the file comment).
struct FusedGraph {
  void* exec = nullptr;        // cuda graph handle (cuda_api.h), null when none is recorded
  void* stream = nullptr;      // the stream recordings are made on (created at the first one)
  int device = -1;
  std::vector<double> dyn;     // the dynamic values of the last run, then the TF32 setting (0 / 1)
  std::vector<void*> ptrs;     // the device pointers of the last run (arrays, hidden outputs, workspaces)
  bool disabled = false;       // a random op, or recording / replaying failed GraphRetry::kTries times: always eager
  std::string why;
  cuda::GraphRetry retry;      // after a failed recording or replay

  /// Notes a failed recording or replay (GraphRetry; at once for good when `always`).
  void failed(const std::string& reason, bool always = false) { retry.failed(reason, always, &disabled, &why); }

  void drop() noexcept {
#ifdef KILN_CUDA
    if (exec != nullptr) cuda::graph_destroy(device, exec);
#endif
    exec = nullptr;
  }
  ~FusedGraph() {
    drop();
#ifdef KILN_CUDA
    cuda::stream_destroy(device, stream);
#endif
  }
};

struct FusedPlan {
  std::vector<FusedCall> calls;
  int num_dynamic = 0;
  FusedGraph graph;
};

#ifdef KILN_CUDA
/// The same values, bit for bit (-0.0 and 0.0 differ; so may the kernels' results).
bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}
#endif

FusedPlan& plan(const capi::FusedUse& use) { return *static_cast<FusedPlan*>(use.plan()); }

std::string fmt(double v) {
  char b[64];
  snprintf(b, sizeof b, "%.17g", v);
  return b;
}

std::map<std::string, std::string> parse_dict(const char* json, const std::string& what) {
  std::map<std::string, std::string> m;
  if (!json || !*json) return m;
  JValue v = parse_json(json);
  if (v.kind != JValue::kObj) throw KilnError(what + ": attributes must be a JSON object");
  for (auto& kv : v.obj) {
    if (kv.second.kind == JValue::kStr) m[kv.first] = kv.second.str;
    else if (kv.second.kind == JValue::kNum) m[kv.first] = fmt(kv.second.num);
    else if (kv.second.kind == JValue::kBool) m[kv.first] = kv.second.b ? "True" : "False";
    else throw KilnError(what + ": attribute '" + kv.first + "' must be a string or a number");
  }
  return m;
}

std::vector<std::string> parse_keys(const char* json, const std::string& what) {
  std::vector<std::string> keys;
  if (!json || !*json) return keys;
  JValue v = parse_json(json);
  if (v.kind != JValue::kArr) throw KilnError(what + ": dynamic keys must be a JSON array of strings");
  for (auto& x : v.arr) keys.push_back(x.as_str(what + ": dynamic key"));
  return keys;
}

/// A value inside the parameter's bounds, to parse the static attributes before any run.
std::string placeholder(const ParamDef& p) {
  if (!p.default_value.empty() && p.default_value != "None") return p.default_value;
  if (p.type == ParamType::kBool) return "False";
  double v = std::min(std::max(0.0, p.lower), p.upper);
  if (p.type == ParamType::kInt) v = std::ceil(v);
  return fmt(v);
}

std::string arg_name(const FusedCall& c, bool input, size_t i) {
  auto names = input ? c.op->input_names(c.attrs) : c.op->output_names(c.attrs);
  return (input ? "input '" : "output '") + (i < names.size() ? names[i] : std::to_string(i)) + "'";
}

/// Resolves a borrowed handle, naming the call and the argument when it is no longer live or no
/// longer the array that was added. (Messages are built only on failure: this runs every step.)
const NDArray& resolve(const FusedCall& c, int64_t h, bool input, size_t i) {
  const NDArray* a;
  try {
    a = &capi::ndarray(h);
  } catch (const KilnError&) {
    throw KilnError("FusedUpdate " + c.label + ": " + arg_name(c, input, i) + " is closed (its NDArray handle is no longer valid)");
  }
  const Shape& want = input ? c.in_shape[i] : c.out_shape[i];
  DType want_t = input ? c.in_type[i] : c.out_type[i];
  if (!(a->shape == want) || a->dtype != want_t || !(a->ctx == c.ctx))
    throw KilnError("FusedUpdate " + c.label + ": " + arg_name(c, input, i) + " changed since it was added (now " +
                    a->shape.str() + " " + dtype_name(a->dtype) + ", was " + want.str() + " " + dtype_name(want_t) + ")");
  return *a;
}

/// Checks that the call's dynamic values, just patched into c.attrs (v: the same values), keep its
/// planned shapes, types and workspace size: a value such as one_hot's depth or take's axis can
/// change them, and the kernels trust the planned sizes. Remembers the last values checked, so a
/// run with the same values (an SGD step at a constant learning rate) is not inferred again; the
/// messages are only built on failure (Adam's learning rate changes every step).
void check_planned_shapes(FusedCall& c, const double* v) {
  const size_t n = c.dyn_keys.size();
  if (n == 0 || (c.checked.size() == n && std::equal(v, v + n, c.checked.begin()))) return;
  const OpDef& d = *c.op;
  std::vector<Shape> want = c.out_shape;
  std::vector<DType> want_t = c.out_type;
  for (const NDArray& x : c.hidden) {
    want.push_back(x.shape);
    want_t.push_back(x.dtype);
  }
  // seeded with the planned shapes and types, as kiln_fused_add infers them: a conflict throws
  std::vector<Shape> ishape = c.in_shape, oshape = want;
  std::vector<DType> itype = c.in_type, otype = want_t;
  auto what = [&] {
    std::string values;
    for (size_t k = 0; k < n; ++k) values += (k ? ", " : "") + c.dyn_keys[k] + "=" + fmt(v[k]);
    return "FusedUpdate " + c.label + ": dynamic values " + values;
  };
  try {
    d.infer_shape(c.attrs, &ishape, &oshape);
    if (d.infer_type) d.infer_type(c.attrs, &itype, &otype);
    else infer_same_type(c.attrs, &itype, &otype);
  } catch (const std::exception& e) {
    throw KilnError(what() + " do not fit the arrays it was added with (a dynamic value may not change shapes): " +
                    e.what());
  }
  for (size_t j = 0; j < want.size(); ++j)
    if (!(oshape[j] == want[j]) || otype[j] != want_t[j])
      throw KilnError(what() + " make output " + std::to_string(j) + " " + oshape[j].str() + " " + dtype_name(otype[j]) +
                      ", but it was added as " + want[j].str() + " " + dtype_name(want_t[j]) +
                      " (a dynamic value may not change shapes)");
  for (size_t i = 0; i < ishape.size(); ++i)
    if (!(ishape[i] == c.in_shape[i]))
      throw KilnError(what() + " need input " + std::to_string(i) + " to be " + ishape[i].str() + ", it is " +
                      c.in_shape[i].str());
  if (d.workspace && d.workspace(c.attrs, ishape, oshape) > c.workspace_bytes)
    throw KilnError(what() + " need a larger workspace than planned (a dynamic value may not change shapes)");
  c.checked.assign(v, v + n);
}

}  // namespace

#define KILN_API_BEGIN try {
#define KILN_API_END                                                      \
  }                                                                       \
  catch (const std::bad_alloc&) {                                         \
    capi::set_last_error("out of memory: a native allocation failed");   \
    return -1;                                                            \
  }                                                                       \
  catch (const std::exception& e) {                                       \
    capi::set_last_error(e.what());                                       \
    return -1;                                                            \
  }                                                                       \
  catch (...) {                                                           \
    capi::set_last_error("unknown native error");                         \
    return -1;                                                            \
  }                                                                       \
  return 0;

int kiln_fused_create(int64_t* out) {
  KILN_API_BEGIN
  KILN_CHECK(out != nullptr, "null output pointer");
  auto p = std::make_unique<FusedPlan>();
  *out = capi::register_fused(p.get());
  p.release();
  KILN_API_END
}

int kiln_fused_add(int64_t h, const char* op, const char* attrs_json, const char* dynamic_keys_json, int nin,
                   const int64_t* inputs, int nout, const int64_t* outputs, int* index) {
  KILN_API_BEGIN
  capi::FusedUse use(h);
  FusedPlan& p = plan(use);
  KILN_CHECK(op && *op, "null or empty operator name");
  KILN_CHECK(nin >= 0 && nout >= 0 && (nin == 0 || inputs) && (nout == 0 || outputs), "null argument arrays");
  FusedCall c;
  c.op = &OpRegistry::get().at(op);
  const OpDef& d = *c.op;
  c.label = "call " + std::to_string(p.calls.size()) + " (" + d.name + ")";
  const std::string what = "FusedUpdate " + c.label;
  KILN_CHECK(!d.is_backward, what + ": backward operators cannot be called directly");
  auto dict = parse_dict(attrs_json, what);
  c.dyn_keys = parse_keys(dynamic_keys_json, what);
  for (size_t k = 0; k < c.dyn_keys.size(); ++k) {
    const std::string& key = c.dyn_keys[k];
    for (size_t j = 0; j < k; ++j) KILN_CHECK(c.dyn_keys[j] != key, what + ": dynamic key '" + key + "' is given twice");
    KILN_CHECK(!dict.count(key), what + ": '" + key + "' is both a static and a dynamic attribute");
    int idx = -1;
    for (size_t j = 0; j < d.params.size(); ++j)
      if (d.params[j].name == key) idx = (int)j;
    if (idx < 0) {
      std::string names;
      for (auto& q : d.params) names += (names.empty() ? "" : ", ") + q.name;
      throw KilnError(what + ": '" + key + "' is not a parameter of " + d.name + " (parameters: " + names + ")");
    }
    ParamType t = d.params[idx].type;
    KILN_CHECK(t == ParamType::kFloat || t == ParamType::kInt || t == ParamType::kBool,
               what + ": parameter '" + key + "' is not numeric and cannot be dynamic");
    dict[key] = placeholder(d.params[idx]);
    c.dyn_param.push_back(idx);
  }
  try {
    c.attrs = parse_attrs(d, dict);
  } catch (const KilnError& e) {
    throw KilnError(what + ": " + e.what());
  }
  const int want_in = d.num_inputs(c.attrs), n_all = d.num_outputs(c.attrs), n_vis = d.num_visible_outputs(c.attrs);
  KILN_CHECK(nin == want_in, what + ": expects " + std::to_string(want_in) + " inputs, got " + std::to_string(nin));
  KILN_CHECK(nout == n_vis, what + ": expects " + std::to_string(n_vis) + " output arrays, got " + std::to_string(nout));
  std::vector<NDArray> in, out;
  for (int i = 0; i < nin; ++i) {
    try {
      in.push_back(capi::ndarray(inputs[i]));
    } catch (const KilnError&) {
      throw KilnError(what + ": input " + std::to_string(i) + " is not a live NDArray handle (closed?)");
    }
  }
  for (int j = 0; j < nout; ++j) {
    try {
      out.push_back(capi::ndarray(outputs[j]));
    } catch (const KilnError&) {
      throw KilnError(what + ": output " + std::to_string(j) + " is not a live NDArray handle (closed?)");
    }
  }
  c.ctx = nin ? in[0].ctx : (nout ? out[0].ctx : Context());
  for (auto& x : in) KILN_CHECK(x.ctx == c.ctx, what + ": inputs are on different devices");
  for (auto& x : out) KILN_CHECK(x.ctx == c.ctx, what + ": outputs must be on the inputs' device " + c.ctx.str());
  std::vector<Shape> ishape, oshape(n_all);
  std::vector<DType> itype, otype(n_all, DType::kUnknown);
  for (auto& x : in) { ishape.push_back(x.shape); itype.push_back(x.dtype); }
  for (int j = 0; j < nout; ++j) { oshape[j] = out[j].shape; otype[j] = out[j].dtype; }
  std::vector<Shape> ishape0 = ishape;
  try {
    d.infer_shape(c.attrs, &ishape, &oshape);
    if (d.infer_type) d.infer_type(c.attrs, &itype, &otype);
    else infer_same_type(c.attrs, &itype, &otype);
  } catch (const InferError& e) {
    auto names = e.input ? d.input_names(c.attrs) : d.output_names(c.attrs);
    std::string arg = (e.index >= 0 && e.index < (int)names.size()) ? names[e.index] : std::to_string(e.index);
    std::string shapes;
    for (auto& s : ishape0) shapes += (shapes.empty() ? "" : ", ") + s.str();
    throw KilnError(what + " with input shapes " + shapes + ": " + (e.input ? "input '" : "output '") + arg + "': " + e.what());
  }
  auto in_names = d.input_names(c.attrs);
  for (int i = 0; i < nin; ++i)
    KILN_CHECK(ishape[i] == in[i].shape && itype[i] == in[i].dtype,
               what + ": input '" + in_names[i] + "' must be " + ishape[i].str() + " " + dtype_name(itype[i]) + ", got " +
                   in[i].shape.str() + " " + dtype_name(in[i].dtype));
  for (int j = 0; j < n_all; ++j) {
    KILN_CHECK(oshape[j].known(), what + ": cannot infer the shape of output " + std::to_string(j));
    if (j < nout)
      KILN_CHECK(out[j].shape == oshape[j] && out[j].dtype == otype[j],
                 what + ": output " + std::to_string(j) + " must be " + oshape[j].str() + " " + dtype_name(otype[j]) +
                     ", got " + out[j].shape.str() + " " + dtype_name(out[j].dtype));
    else
      c.hidden.push_back(make_ndarray(oshape[j], otype[j], c.ctx));
  }
  const Kernel& k = c.ctx.type == DevType::kGPU ? d.gpu : d.cpu;
  KILN_CHECK((bool)k, what + ": operator has no kernel for " + c.ctx.str() + " yet");
  c.req.assign(n_all, OpReq::kWriteTo);
  for (int j = 0; j < nout; ++j)
    for (auto& x : in)
      if (x.data() == out[j].data()) c.req[j] = OpReq::kWriteInplace;
  if (d.workspace) {
    c.workspace_bytes = d.workspace(c.attrs, ishape, oshape);
    if (c.workspace_bytes) c.workspace = alloc_storage(c.ctx, c.workspace_bytes, false);
  }
  c.in_h.assign(inputs, inputs + nin);
  c.out_h.assign(outputs, outputs + nout);
  c.in_shape = ishape;
  c.in_type = itype;
  c.out_shape.assign(oshape.begin(), oshape.begin() + nout);
  c.out_type.assign(otype.begin(), otype.begin() + nout);
  p.num_dynamic += (int)c.dyn_keys.size();
  p.calls.push_back(std::move(c));
  if (index) *index = (int)p.calls.size() - 1;
  KILN_API_END
}

int kiln_fused_info(int64_t h, int* out) {
  KILN_API_BEGIN
  KILN_CHECK(out != nullptr, "null output pointer");
  capi::FusedUse use(h);
  FusedPlan& p = plan(use);
  out[0] = (int)p.calls.size();
  out[1] = p.num_dynamic;
  KILN_API_END
}

int kiln_fused_run(int64_t h, int n, const double* dyn) {
  KILN_API_BEGIN
  capi::FusedUse use(h);  // not while another thread runs or frees the plan
  FusedPlan& p = plan(use);
  KILN_CHECK(n == p.num_dynamic, "FusedUpdate run: " + std::to_string(p.num_dynamic) + " dynamic values expected, " +
                                     std::to_string(n) + " given");
  KILN_CHECK(n == 0 || dyn, "FusedUpdate run: null dynamic values");
  // 1. resolve every handle and check every dynamic value before any kernel runs
  std::vector<std::vector<TBlob>> ib(p.calls.size()), ob(p.calls.size());
  int d = 0;
  for (size_t ci = 0; ci < p.calls.size(); ++ci) {
    FusedCall& c = p.calls[ci];
    for (size_t i = 0; i < c.in_h.size(); ++i) ib[ci].push_back(resolve(c, c.in_h[i], true, i).blob());
    for (size_t j = 0; j < c.out_h.size(); ++j) ob[ci].push_back(resolve(c, c.out_h[j], false, j).blob());
    for (auto& x : c.hidden) ob[ci].push_back(x.blob());
    for (size_t k = 0; k < c.dyn_keys.size(); ++k, ++d) {
      const ParamDef& pd = c.op->params[c.dyn_param[k]];
      const double v = dyn[d];
      if (std::isnan(v) || v < pd.lower || v > pd.upper)
        throw KilnError("FusedUpdate " + c.label + ": dynamic value " + fmt(v) + " of '" + pd.name + "' is out of range [" +
                        fmt(pd.lower) + ", " + fmt(pd.upper) + "]");
      if (pd.type != ParamType::kFloat && v != std::floor(v))
        throw KilnError("FusedUpdate " + c.label + ": dynamic value " + fmt(v) + " of '" + pd.name + "' must be an integer");
    }
  }
  // 2. patch the dynamic values, and check that they keep the planned shapes (a call that fails
  // leaves its values patched, which is harmless: every run patches all of them before any kernel)
  d = 0;
  for (FusedCall& c : p.calls) {
    const int first = d;
    for (size_t k = 0; k < c.dyn_keys.size(); ++k, ++d) {
      ParamValue& pv = c.attrs.values[c.dyn_param[k]];
      pv.num = c.op->params[c.dyn_param[k]].type == ParamType::kBool ? (dyn[d] != 0 ? 1.0 : 0.0) : dyn[d];
      pv.set = true;
    }
    check_planned_shapes(c, dyn + first);
  }
  // 3. run the kernels in order (on `stream`: null = the legacy stream)
  static thread_local std::mt19937_64 rng(0);
  auto run_all = [&](void* stream) {
    for (size_t ci = 0; ci < p.calls.size(); ++ci) {
      FusedCall& c = p.calls[ci];
      OpCtx oc;
      oc.ctx = c.ctx;
      oc.rng = &rng;
      oc.stream = stream;
      if (c.workspace) {
        oc.workspace = c.workspace->ptr;
        oc.workspace_bytes = c.workspace_bytes;
      }
      const Kernel& k = c.ctx.type == DevType::kGPU ? c.op->gpu : c.op->cpu;
      try {
        k(oc, c.attrs, ib[ci], c.req, ob[ci]);
#ifdef KILN_CUDA
        if (c.ctx.type == DevType::kGPU && stream == nullptr && cuda::sync_each_kernel()) cuda::synchronize(c.ctx.id);
#endif
      } catch (const std::bad_alloc&) {
        throw;
      } catch (const std::exception& e) {
        rethrow_with_context(e, "FusedUpdate " + c.label + ": " + e.what() +
                                    (ci ? " (calls 0.." + std::to_string(ci - 1) + " of this run were applied)" : ""));
      }
    }
  };
#ifdef KILN_CUDA
  // 4. on one GPU: a CUDA graph while the values and arrays stay the same
  int dev = -1;
  bool one_gpu = !p.calls.empty();
  for (const FusedCall& c : p.calls) {
    if (c.ctx.type != DevType::kGPU || (dev >= 0 && c.ctx.id != dev)) one_gpu = false;
    dev = c.ctx.id;
  }
  FusedGraph& g = p.graph;
  if (one_gpu && !g.disabled)
    for (const FusedCall& c : p.calls)
      if (c.op->random(c.attrs, false)) {  // a replay would repeat the recorded seed (fused plans run with is_train false)
        g.disabled = true;
        g.why = "random operator " + c.op->name;
      }
  if (one_gpu && !g.disabled && cuda::graphs_enabled() && !cuda::sync_each_kernel()) {
    std::vector<void*> ptrs;
    for (size_t ci = 0; ci < p.calls.size(); ++ci) {
      for (const TBlob& b : ib[ci]) ptrs.push_back(b.ptr);
      for (const TBlob& b : ob[ci]) ptrs.push_back(b.ptr);
      ptrs.push_back(p.calls[ci].workspace ? p.calls[ci].workspace->ptr : nullptr);
    }
    std::vector<double> values(dyn, dyn + n);
    values.push_back(cuda::tf32_allowed() ? 1.0 : 0.0);  // an op of the plan may use cuBLAS
    const bool same = same_bits(values, g.dyn) && ptrs == g.ptrs;
    // false when the launch was refused: nothing of the run happened, so it runs eagerly below (a
    // fault that the device keeps, from earlier work, fails the eager run too and is reported there)
    auto launch = [&] {
      try {
        cuda::graph_launch(dev, g.exec, nullptr);
        g.retry.succeeded();
        return true;
      } catch (const KilnError& e) {
        g.drop();
        g.failed(std::string("replay failed: ") + e.what());
        return false;
      }
    };
    if (g.exec != nullptr && same) {
      if (launch()) return 0;
    }
    g.drop();
    if (same && !g.disabled && g.retry.may_try()) {  // the second run in a row with these values: record it, then launch the recording
      bool recorded = false;
      try {
        if (g.stream == nullptr) {
          g.stream = cuda::stream_create(dev);
          g.device = dev;
        }
        cuda::capture_begin(dev, g.stream);
        try {
          run_all(g.stream);
        } catch (...) {
          cuda::capture_abort(dev, g.stream);
          throw;
        }
        std::string why;
        g.exec = cuda::capture_end(dev, g.stream, &why);
        if (g.exec == nullptr) {
          g.failed("recording failed: " + why);
        } else {
          recorded = true;
          g.why.clear();
        }
      } catch (const RecordingUnsupported& e) {  // an operator that copies or waits: it always will
        g.failed(std::string("recording failed: ") + e.what(), true);
      } catch (const KilnError& e) {  // nothing ran while recording: the eager run below reports real errors
        g.failed(std::string("recording failed: ") + e.what());
      }
      if (recorded && launch()) return 0;
    }
    g.dyn = std::move(values);
    g.ptrs = std::move(ptrs);
  }
#endif
  run_all(nullptr);
  KILN_API_END
}

int kiln_fused_graph(int64_t h, int* out) {
  KILN_API_BEGIN
  KILN_CHECK(out != nullptr, "null output pointer");
  capi::FusedUse use(h);
  const FusedPlan& p = plan(use);
  *out = p.graph.disabled ? -1 : p.graph.exec != nullptr ? 1 : 0;
  KILN_API_END
}

int kiln_fused_free(int64_t h) {
  KILN_API_BEGIN
  delete static_cast<FusedPlan*>(capi::unregister_fused(h));
  KILN_API_END
}
