// Gathers by index on the GPU: take, pick, one_hot, Embedding and the backward ops of take, pick
// and Embedding (CPU: index/take.cc, seq/embedding.cc). where, argmax/argmin and _arange are in
// tensor_misc.cu / tensor_reduce.cu.
//
// Index arrays of any dtype are first turned into int64 positions (fix_indices_kernel: truncation
// toward zero, then clip / wrap / raise / Embedding's clip, as on the CPU). mode='raise' copies an
// error position back to the host (one stream synchronization) and throws like the CPU kernel.
// The scattering gradients (take, Embedding) are deterministic without atomics: the (position,
// index number) pairs are radix-sorted (stable, CUB), then each gradient element sums its
// contributions in ascending index order (the CPU's order), so repeated runs are bit-identical.
#include <cub/device/device_radix_sort.cuh>

#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {
namespace shape {
namespace {

enum : int { kModeClip = 0, kModeWrap = 1, kModeRaise = 2, kModeEmbed = 3, kModeRaw = 4 };

int parse_mode(const std::string& s) { return s == "wrap" ? kModeWrap : s == "raise" ? kModeRaise : kModeClip; }

// idx: [k] (any dtype), out: [k] positions in [0, n) (raw values under kModeRaw), bad: [1] first
// out-of-range position under kModeRaise (its raw value is left in out)
template <typename I>
__global__ void fix_indices_kernel(int64_t k, const I* idx, int64_t n, int mode, int64_t* out,
                                   unsigned long long* bad) {
  KILN_GRID_STRIDE(q, k) {
    int64_t v;
    if (mode == kModeEmbed) {
      const double d = to_d(idx[q]);
      v = !(d >= 1) ? 0 : (d >= (double)n ? n - 1 : (int64_t)d);
    } else {
      const int64_t j = index_value(idx[q]);
      if (mode == kModeClip) {
        v = j < 0 ? 0 : (j >= n ? n - 1 : j);
      } else if (mode == kModeWrap) {
        if (j == INT64_MIN) v = 0;
        else {
          const int64_t r = j % n;
          v = r < 0 ? r + n : r;
        }
      } else if (mode == kModeRaise) {
        v = j;
        if (j < 0 || j >= n) atomicMin(bad, (unsigned long long)q);
      } else {
        v = j;
      }
    }
    out[q] = v;
  }
}

/// Index positions of `idx` (any dtype) in `out` ([k] int64 on the device). Under kModeRaise
/// checks them on the host after one synchronization and throws for an out-of-range index.
void fix_indices(const char* op, cudaStream_t s, const TBlob& idx, int64_t n, int mode, int64_t* out,
                 unsigned long long* bad) {
  const int64_t k = idx.size();
  if (k == 0) return;
  if (mode == kModeRaise) KILN_CUDA_CHECK(cudaMemsetAsync(bad, 0xff, sizeof(unsigned long long), s));
  any_switch(idx.dtype, [&](auto z) {
    using I = decltype(z);
    fix_indices_kernel<I><<<grid_for(k), kBlock, 0, s>>>(k, idx.dptr<I>(), n, mode, out, bad);
  });
  KILN_CUDA_LAUNCH_CHECK(op);
  if (mode != kModeRaise) return;
  unsigned long long pos = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&pos, bad, sizeof(pos), cudaMemcpyDeviceToHost, s));
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));
  if (pos == ~0ULL) return;
  int64_t raw = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&raw, out + pos, sizeof(raw), cudaMemcpyDeviceToHost, s));
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));
  throw KilnError(std::string(op) + ": index " + (raw == INT64_MIN ? std::string("(not a number)") : std::to_string(raw)) +
                  " is out of bounds for an axis of size " + std::to_string(n) + " (mode='raise')");
}

/// Device scratch for k positions plus the raise flag.
struct IndexScratch {
  int64_t k;
  DeviceScratch mem;  // [k + 1] int64: the positions, then the raise flag
  IndexScratch(int dev, int64_t n) : k(n), mem(dev, (size_t)(n + 1) * sizeof(int64_t)) {}
  int64_t* pos() const { return mem.as<int64_t>(); }
  unsigned long long* bad() const { return reinterpret_cast<unsigned long long*>(mem.as<int64_t>() + k); }
};

// x: [outer, n, inner], j: [k] positions, y: [outer, k, inner]
template <typename T>
__global__ void take_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k, const T* x, const int64_t* j, T* y,
                            int req) {
  const int64_t total = outer * k * inner;
  KILN_GRID_STRIDE(e, total) {
    const int64_t i = e % inner, r = e / inner, q = r % k, o = r / k;
    put(y, e, req, x[(o * n + j[q]) * inner + i]);
  }
}

// out: [k] = 0, 1, ..., k-1
__global__ void iota_kernel(int64_t k, int64_t* out) {
  KILN_GRID_STRIDE(q, k) { out[q] = q; }
}

// keys: [k] sorted, returns the first position with keys[p] >= v (strict: > v)
__device__ __forceinline__ int64_t bound(const int64_t* keys, int64_t k, int64_t v, bool strict) {
  int64_t lo = 0, hi = k;
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (strict ? keys[mid] <= v : keys[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// dy: [outer, k, inner]; keys/order: [k] sorted positions and their index numbers;
// dx: [outer, n, inner] (req) sum over index numbers q with position == row of dy[o, q, :]
template <typename T>
__global__ void take_grad_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k, const T* dy, const int64_t* keys,
                                 const int64_t* order, T* dx, int req) {
  const int64_t total = outer * n * inner;
  KILN_GRID_STRIDE(e, total) {
    const int64_t i = e % inner, r = e / inner, row = r % n, o = r / n;
    const int64_t lo = bound(keys, k, row, false), hi = bound(keys, k, row, true);
    T acc = T(0);
    for (int64_t s = lo; s < hi; ++s) acc += dy[(o * k + order[s]) * inner + i];
    assign(dx, e, req, acc);
  }
}

/// dx [outer, n, inner] (req) the scatter-add of dy [outer, k, inner] at positions j [k] (device).
void take_grad(const char* op, int dev, cudaStream_t s, int64_t outer, int64_t n, int64_t inner, int64_t k,
               const int64_t* j, const TBlob& dy, const TBlob& dx, OpReq req) {
  const int64_t total = outer * n * inner;
  if (total == 0) return;
  int bits = 1;
  while (bits < 63 && (int64_t(1) << bits) < n) ++bits;
  size_t temp = 0;
  if (k > INT_MAX) throw KilnError(std::string(op) + " (GPU): more than 2^31 indices");
  if (k > 0)
    KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp, (const int64_t*)nullptr, (int64_t*)nullptr,
                                                    (const int64_t*)nullptr, (int64_t*)nullptr, (int)k, 0, bits, s));
  const size_t arrays = (size_t)std::max<int64_t>(k, 1) * sizeof(int64_t);
  DeviceScratch mem(dev, 3 * arrays + temp + 256);
  char* base = mem.as<char>();
  int64_t* keys = reinterpret_cast<int64_t*>(base);
  int64_t* iota = reinterpret_cast<int64_t*>(base + arrays);
  int64_t* order = reinterpret_cast<int64_t*>(base + 2 * arrays);
  void* tmp = base + 3 * arrays;
  if (k > 0) {
    iota_kernel<<<grid_for(k), kBlock, 0, s>>>(k, iota);
    KILN_CUDA_LAUNCH_CHECK(op);
    KILN_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(tmp, temp, j, keys, iota, order, (int)k, 0, bits, s));
  }
  KILN_FLOAT_SWITCH(dx.dtype, T, {
    take_grad_kernel<T><<<grid_for(total), kBlock, 0, s>>>(outer, n, inner, k, dy.dptr<T>(), keys, order,
                                                           dx.dptr<T>(), req_int(req));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- take ----------------------------------------------------------------------------------------

struct TakeDims {
  int64_t outer, n, inner, k;  // a: [outer, n, inner], indices: [k], out: [outer, k, inner]
};

TakeDims take_dims(const char* op, const Attrs& a, const Shape& x, const Shape& idx) {
  const int ax = norm_axis(a.i("axis"), x.ndim());
  if (ax < 0) throw KilnError(std::string(op) + " (GPU): axis out of range for " + x.str());
  return {x.prod(0, ax), x[ax], x.prod(ax + 1, x.ndim()), idx.size()};
}

void take_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "take";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const TBlob& x = in[0];   // [outer, n, inner]
  const TBlob& y = out[0];  // [outer, k, inner]
  if (req[0] == OpReq::kNullOp) return;
  const TakeDims d = take_dims(op, a, x.shape, in[1].shape);
  if (d.outer * d.k * d.inner == 0) return;
  if (d.n <= 0) throw KilnError("take: cannot take from an empty axis");
  if (x.dtype != y.dtype || y.size() != d.outer * d.k * d.inner)
    throw KilnError("take (GPU): output " + y.shape.str() + " does not match data " + x.shape.str());
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  IndexScratch j(dev, d.k);
  fix_indices(op, s, in[1], d.n, parse_mode(a.s("mode")), j.pos(), j.bad());
  const int64_t total = d.outer * d.k * d.inner;
  move_switch(op, y.dtype, req[0], [&](auto z) {
    using T = decltype(z);
    take_kernel<T><<<grid_for(total), kBlock, 0, s>>>(d.outer, d.n, d.inner, d.k, static_cast<const T*>(x.ptr),
                                                      j.pos(), static_cast<T*>(y.ptr), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

/// Inputs: dy [outer, k, inner], indices [k]; outputs: da [outer, n, inner], dindices (zeros).
void take_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_backward_take";
  prologue(op, in, 2, 2, req, out, 1, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  if (out.size() > 1) zero_unless_add(s, out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const TBlob& dx = out[0];
  const TakeDims d = take_dims(op, a, dx.shape, in[1].shape);
  if (!is_float(dx.dtype) || in[0].dtype != dx.dtype)
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(dx.dtype) + " is not supported (float32, float64)");
  if (in[0].size() != d.outer * d.k * d.inner)  // dy [outer, k, inner], read by take_grad
    throw KilnError(std::string(op) + " (GPU): output gradient " + in[0].shape.str() + " does not match data " +
                    dx.shape.str() + " taken at indices " + in[1].shape.str());
  if (d.outer * d.k * d.inner == 0) {
    zero_unless_add(s, dx, req[0]);
    return;
  }
  if (d.n <= 0) throw KilnError("take: cannot take from an empty axis");
  int mode = parse_mode(a.s("mode"));
  if (mode == kModeRaise) mode = kModeClip;  // the CPU backward clips under raise too
  IndexScratch j(dev, d.k);
  fix_indices(op, s, in[1], d.n, mode, j.pos(), j.bad());
  take_grad(op, dev, s, d.outer, d.n, d.inner, d.k, j.pos(), in[0], dx, req[0]);
}

// ---- Embedding -----------------------------------------------------------------------------------

void check_table(const Attrs& a, const Shape& w, const char* what) {
  const int64_t V = a.i("input_dim"), D = a.i("output_dim");
  if (!(w.ndim() == 2 && w[0] == V && w[1] == D))
    throw KilnError(std::string("Embedding (GPU): ") + what + " " + w.str() +
                    " does not match (input_dim, output_dim) = (" + std::to_string(V) + ", " + std::to_string(D) + ")");
}

void embedding_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const char* op = "Embedding";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const TBlob& w = in[1];   // [V, D]
  const TBlob& y = out[0];  // [K, D]
  if (req[0] == OpReq::kNullOp) return;
  check_table(a, w.shape, "weight");
  const int64_t V = w.shape[0], D = w.shape[1], K = in[0].size();
  if (y.size() != K * D || y.dtype != w.dtype)
    throw KilnError("Embedding (GPU): output " + y.shape.str() + " does not hold data " + in[0].shape.str() +
                    " x output_dim " + std::to_string(D));
  if (K * D == 0) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  IndexScratch j(dev, K);
  fix_indices(op, s, in[0], V, kModeEmbed, j.pos(), j.bad());
  move_switch(op, y.dtype, req[0], [&](auto z) {
    using T = decltype(z);
    take_kernel<T><<<grid_for(K * D), kBlock, 0, s>>>(1, V, D, K, static_cast<const T*>(w.ptr), j.pos(),
                                                      static_cast<T*>(y.ptr), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

/// Inputs: dy [K, D], data [K]; outputs: ddata [K] (zeros), dweight [V, D].
void embedding_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* op = "_backward_Embedding";
  prologue(op, in, 2, 2, req, out, 2, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  zero_unless_add(s, out[0], req[0]);
  if (req[1] == OpReq::kNullOp) return;
  const TBlob& dw = out[1];  // [V, D]
  check_table(a, dw.shape, "weight gradient");
  const int64_t V = dw.shape[0], D = dw.shape[1], K = in[1].size();
  if (in[0].size() != K * D || in[0].dtype != dw.dtype)
    throw KilnError("Embedding (GPU): output gradient " + in[0].shape.str() + " does not match data " +
                    in[1].shape.str() + " x output_dim " + std::to_string(D));
  if (!is_float(dw.dtype))
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(dw.dtype) + " is not supported (float32, float64)");
  IndexScratch j(dev, K);
  fix_indices(op, s, in[1], V, kModeEmbed, j.pos(), j.bad());
  take_grad(op, dev, s, 1, V, D, K, j.pos(), in[0], dw, req[1]);
}

// ---- pick ----------------------------------------------------------------------------------------

struct PickDims {
  int64_t outer, n, inner;  // data [outer, n, inner], index/out [outer, inner]
};

PickDims pick_dims(const char* op, const Attrs& a, const Shape& x) {
  const int ax = norm_axis(a.i("axis"), x.ndim());
  if (ax < 0) throw KilnError(std::string(op) + " (GPU): axis out of range for " + x.str());
  return {x.prod(0, ax), x[ax], x.prod(ax + 1, x.ndim())};
}

// x: [outer, n, inner], j: [outer * inner] positions, y: [outer, inner]
template <typename T>
__global__ void pick_kernel(int64_t outer, int64_t n, int64_t inner, const T* x, const int64_t* j, T* y, int req) {
  const int64_t total = outer * inner;
  KILN_GRID_STRIDE(r, total) {
    const int64_t o = r / inner, i = r % inner;
    put(y, r, req, x[(o * n + j[r]) * inner + i]);
  }
}

// dy: [outer, inner], j: [outer * inner] positions, dx: [outer, n, inner] (req) dy where picked, else 0
template <typename T>
__global__ void pick_grad_kernel(int64_t outer, int64_t n, int64_t inner, const T* dy, const int64_t* j, T* dx,
                                 int req) {
  const int64_t total = outer * n * inner;
  KILN_GRID_STRIDE(e, total) {
    const int64_t i = e % inner, r = e / inner, kk = r % n, o = r / n;
    const int64_t q = o * inner + i;
    assign(dx, e, req, j[q] == kk ? dy[q] : T(0));
  }
}

void pick_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "pick";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const TBlob& x = in[0];   // [outer, n, inner]
  const TBlob& y = out[0];  // [outer, inner]
  if (req[0] == OpReq::kNullOp) return;
  const PickDims d = pick_dims(op, a, x.shape);
  if (d.outer * d.inner == 0) return;
  if (d.n <= 0) throw KilnError("pick: cannot pick from an empty axis");
  if (in[1].size() != d.outer * d.inner || y.size() != d.outer * d.inner || y.dtype != x.dtype)
    throw KilnError("pick (GPU): index " + in[1].shape.str() + " / output " + y.shape.str() + " do not match data " +
                    x.shape.str());
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  IndexScratch j(dev, d.outer * d.inner);
  fix_indices(op, s, in[1], d.n, parse_mode(a.s("mode")), j.pos(), j.bad());
  move_switch(op, y.dtype, req[0], [&](auto z) {
    using T = decltype(z);
    pick_kernel<T><<<grid_for(d.outer * d.inner), kBlock, 0, s>>>(d.outer, d.n, d.inner, static_cast<const T*>(x.ptr),
                                                                  j.pos(), static_cast<T*>(y.ptr), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

/// Inputs: dy [outer, inner], index [outer, inner]; outputs: dx [outer, n, inner], dindex (zeros).
void pick_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_backward_pick";
  prologue(op, in, 2, 2, req, out, 1, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  if (out.size() > 1) zero_unless_add(s, out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const TBlob& dx = out[0];
  const PickDims d = pick_dims(op, a, dx.shape);
  if (!is_float(dx.dtype) || in[0].dtype != dx.dtype)
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(dx.dtype) + " is not supported (float32, float64)");
  const int64_t total = d.outer * d.n * d.inner;
  if (total == 0) return;
  if (in[1].size() != d.outer * d.inner || in[0].size() != d.outer * d.inner)
    throw KilnError(std::string(op) + " (GPU): index " + in[1].shape.str() + " / gradient " + in[0].shape.str() +
                    " do not match data " + dx.shape.str());
  IndexScratch j(dev, d.outer * d.inner);
  fix_indices(op, s, in[1], d.n, parse_mode(a.s("mode")), j.pos(), j.bad());
  KILN_FLOAT_SWITCH(dx.dtype, T, {
    pick_grad_kernel<T><<<grid_for(total), kBlock, 0, s>>>(d.outer, d.n, d.inner, in[0].dptr<T>(), j.pos(),
                                                           dx.dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- one_hot -------------------------------------------------------------------------------------

// j: [n] raw indices, y: [n, depth] (req) on where c == j[r], else off
template <typename T>
__global__ void one_hot_kernel(int64_t n, int64_t depth, const int64_t* j, T on, T off, T* y, int req) {
  const int64_t total = n * depth;
  KILN_GRID_STRIDE(e, total) {
    const int64_t r = e / depth, c = e % depth;
    put(y, e, req, c == j[r] ? on : off);
  }
}

void one_hot_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = "one_hot";
  prologue(op, in, 1, 1, req, out, 1, 1);
  const TBlob& y = out[0];  // [n, depth]
  if (req[0] == OpReq::kNullOp) return;
  const int64_t depth = a.i("depth"), n = in[0].size();
  if (y.size() != n * depth) throw KilnError("one_hot (GPU): output " + y.shape.str() + " does not match the indices");
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("one_hot: accumulation needs float32/float64");
  if (n * depth == 0) return;
  const double on = a.f("on_value"), off = a.f("off_value");
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  IndexScratch j(dev, n);
  fix_indices(op, s, in[0], depth, kModeRaw, j.pos(), j.bad());
  // on/off converted on the host as the CPU's (T) cast; float16 through float
  auto launch = [&](auto on_t, auto off_t) {
    using T = decltype(on_t);
    one_hot_kernel<T><<<grid_for(n * depth), kBlock, 0, s>>>(n, depth, j.pos(), on_t, off_t, y.dptr<T>(),
                                                             req_int(req[0]));
  };
  switch (y.dtype) {
    case DType::kFloat32: launch((float)on, (float)off); break;
    case DType::kFloat64: launch(on, off); break;
    case DType::kFloat16: launch(__double2half(on), __double2half(off)); break;
    case DType::kUint8: launch((uint8_t)on, (uint8_t)off); break;
    case DType::kInt32: launch((int32_t)on, (int32_t)off); break;
    case DType::kInt8: launch((int8_t)on, (int8_t)off); break;
    case DType::kInt64: launch((int64_t)on, (int64_t)off); break;
    default: throw KilnError(std::string("one_hot (GPU): unsupported dtype ") + dtype_name(y.dtype));
  }
  KILN_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void register_index_gather_gpu(OpRegistry& r) {
  set_gpu(r, "take", take_forward);
  set_gpu(r, "_backward_take", take_backward);
  set_gpu(r, "Embedding", embedding_forward);
  set_gpu(r, "_backward_Embedding", embedding_backward);
  set_gpu(r, "pick", pick_forward);
  set_gpu(r, "_backward_pick", pick_backward);
  set_gpu(r, "one_hot", one_hot_forward);
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
