// Gathers by index on the GPU: take, pick, one_hot, Embedding, batch_take, gather_nd, scatter_nd,
// ravel_multi_index, unravel_index, diag, khatri_rao and the backward ops of take, pick, Embedding,
// batch_take, gather_nd, diag and khatri_rao (CPU: index/take.cc, index/gather_nd.cc, index/ravel.cc,
// index/diag.cc, index/khatri_rao.cc, seq/embedding.cc). where, argmax/argmin and _arange are in tensor_misc.cu / tensor_reduce.cu.
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

#include "kiln/diag.h"
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

// ---- batch_take ----------------------------------------------------------------------------------

// x: [n, M], j: [n] int32 (clipped into [0, M)), y: [n]
template <typename T>
__global__ void batch_take_kernel(int64_t n, int64_t M, const T* x, const int32_t* j, T* y, int req) {
  KILN_GRID_STRIDE(i, n) {
    const int64_t q = j[i] < 0 ? 0 : (j[i] >= M ? M - 1 : (int64_t)j[i]);
    put(y, i, req, x[i * M + q]);
  }
}

// dy: [n], j: [n] int32, dx: [n, M] (req) dy[i] at the clipped index of row i, else 0
template <typename T>
__global__ void batch_take_grad_kernel(int64_t n, int64_t M, const T* dy, const int32_t* j, T* dx, int req) {
  KILN_GRID_STRIDE(e, n * M) {
    const int64_t i = e / M, c = e % M;
    const int64_t q = j[i] < 0 ? 0 : (j[i] >= M ? M - 1 : (int64_t)j[i]);
    assign(dx, e, req, c == q ? dy[i] : T(0));
  }
}

void batch_take_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* op = "batch_take";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const TBlob& x = in[0];   // [n, M]
  const TBlob& y = out[0];  // [n]
  if (req[0] == OpReq::kNullOp) return;
  const int64_t M = x.shape[x.shape.ndim() - 1], n = y.size();
  if (n == 0) return;
  if (M <= 0 || x.size() != n * M || in[1].size() != n || in[1].dtype != DType::kInt32 || x.dtype != y.dtype)
    throw KilnError("batch_take (GPU): data " + x.shape.str() + " does not match int32 indices " + in[1].shape.str());
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  move_switch(op, y.dtype, req[0], [&](auto z) {
    using T = decltype(z);
    batch_take_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, M, static_cast<const T*>(x.ptr), in[1].dptr<int32_t>(),
                                                        static_cast<T*>(y.ptr), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

/// Inputs: dy [n], indices [n]; outputs: da [n, M], dindices (zeros).
void batch_take_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  const char* op = "_backward_batch_take";
  prologue(op, in, 2, 2, req, out, 1, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  if (out.size() > 1) zero_unless_add(s, out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const TBlob& dx = out[0];  // [n, M]
  const int64_t M = dx.shape[dx.shape.ndim() - 1], n = in[0].size();
  if (dx.size() != n * M || in[1].size() != n || in[1].dtype != DType::kInt32 || in[0].dtype != dx.dtype)
    throw KilnError(std::string(op) + " (GPU): gradient " + dx.shape.str() + " does not match " + in[0].shape.str());
  if (n * M == 0) return;
  KILN_FLOAT_SWITCH(dx.dtype, T, {
    batch_take_grad_kernel<T><<<grid_for(n * M), kBlock, 0, s>>>(n, M, in[0].dptr<T>(), in[1].dptr<int32_t>(),
                                                                 dx.dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- gather_nd / scatter_nd ----------------------------------------------------------------------
// As ops/index/gather_nd.cc: indices [m, n]; the indexed array as rows [prod sizes, k]; a coordinate
// v along an axis of size S is valid when -S <= v <= S - 1 and addresses trunc(v + S) mod S.

constexpr int kMaxNd = 10;

struct NdGeom {
  int m = 0;
  int64_t n = 0, k = 0, rows = 1;  // indices [m, n], X [rows, k]
  int64_t sizes[kMaxNd];
};

NdGeom nd_geom(const char* op, const Shape& x, const Shape& idx) {
  if (!(idx.ndim() >= 1 && idx[0] >= 1 && idx[0] <= x.ndim() && idx[0] <= kMaxNd))
    throw KilnError(std::string(op) + " (GPU): indices " + idx.str() + " do not fit the indexed shape " + x.str());
  NdGeom g;
  g.m = (int)idx[0];
  g.n = idx.prod(1, idx.ndim());
  g.k = x.prod(g.m, x.ndim());
  for (int j = 0; j < g.m; ++j) {
    g.sizes[j] = x[j];
    g.rows *= x[j];
  }
  return g;
}

template <typename I>
__device__ __forceinline__ int64_t nd_coord(I v, int64_t size) {
  if constexpr (std::is_integral<I>::value) {
    const int64_t j = (int64_t)v;
    if (j < -size || j >= size) return -1;
    return j < 0 ? j + size : j;
  } else {
    const double d = to_d(v);
    if (!(d >= -(double)size && d <= (double)(size - 1))) return -1;
    return ((int64_t)(d + (double)size)) % size;
  }
}

// idx: [m, n] any dtype; rows: [n] row numbers; bad: [1] the first invalid element (j * n + i)
template <typename I>
__global__ void nd_rows_kernel(NdGeom g, const I* idx, int64_t* rows, unsigned long long* bad) {
  KILN_GRID_STRIDE(i, g.n) {
    int64_t row = 0;
    for (int j = 0; j < g.m; ++j) {
      const int64_t c = nd_coord(idx[j * g.n + i], g.sizes[j]);
      if (c < 0) {
        atomicMin(bad, (unsigned long long)(j * g.n + i));
        row = 0;
        break;
      }
      row = row * g.sizes[j] + c;
    }
    rows[i] = row;
  }
}

template <typename I>
double host_value(I v) { return (double)v; }
template <>
double host_value<__half>(__half v) { return (double)__half2float(v); }

/// Row numbers of the n positions into `rows` ([n + 1] int64 on the device: positions, then the
/// error flag); one synchronization, then the CPU's error for an invalid coordinate.
void nd_rows(const char* op, cudaStream_t s, const TBlob& idx, const NdGeom& g, const IndexScratch& rows) {
  if (g.n == 0) return;
  KILN_CUDA_CHECK(cudaMemsetAsync(rows.bad(), 0xff, sizeof(unsigned long long), s));
  any_switch(idx.dtype, [&](auto z) {
    using I = decltype(z);
    nd_rows_kernel<I><<<grid_for(g.n), kBlock, 0, s>>>(g, idx.dptr<I>(), rows.pos(), rows.bad());
  });
  KILN_CUDA_LAUNCH_CHECK(op);
  unsigned long long pos = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&pos, rows.bad(), sizeof(pos), cudaMemcpyDeviceToHost, s));
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));
  if (pos == ~0ULL) return;
  double v = 0;
  any_switch(idx.dtype, [&](auto z) {
    using I = decltype(z);
    I raw;
    KILN_CUDA_CHECK(cudaMemcpy(&raw, idx.dptr<I>() + pos, sizeof(I), cudaMemcpyDeviceToHost));
    v = host_value(raw);
  });
  const int axis = (int)(pos / (unsigned long long)g.n);
  std::string text = v != v ? std::string("(not a number)") : std::to_string(v);
  if (v == v && v == (double)(int64_t)v) text = std::to_string((int64_t)v);
  throw KilnError(std::string(op) + ": index " + text + " is out of bounds for axis " + std::to_string(axis) +
                  " with size " + std::to_string(g.sizes[axis]));
}

// x: [rows, k], r: [n] row numbers, y: [n, k]
template <typename T>
__global__ void gather_nd_kernel(int64_t n, int64_t k, const T* x, const int64_t* r, T* y, int req) {
  KILN_GRID_STRIDE(e, n * k) { put(y, e, req, x[r[e / k] * k + e % k]); }
}

// r: [n] row numbers; last: [rows] (1 + the largest position writing the row, 0 for none)
__global__ void scatter_last_kernel(int64_t n, const int64_t* r, unsigned long long* last) {
  KILN_GRID_STRIDE(i, n) { atomicMax(last + r[i], (unsigned long long)(i + 1)); }
}

// x: [n, k], last: [rows], y: [rows, k] (req) x[last - 1] where a position wins, else 0 (untouched on add)
template <typename T>
__global__ void scatter_nd_kernel(int64_t rows, int64_t k, const T* x, const unsigned long long* last, T* y, int req) {
  KILN_GRID_STRIDE(e, rows * k) {
    const unsigned long long w = last[e / k];
    if (w) put(y, e, req, x[(int64_t)(w - 1) * k + e % k]);
    else if (req != kReqAdd) y[e] = T(0);
  }
}

void gather_nd_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const char* op = "gather_nd";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const TBlob& x = in[0];   // [rows, k]
  const TBlob& y = out[0];  // [n, k]
  if (req[0] == OpReq::kNullOp) return;
  const NdGeom g = nd_geom(op, x.shape, in[1].shape);
  if (g.n * g.k == 0) return;
  if (y.size() != g.n * g.k || y.dtype != x.dtype)
    throw KilnError("gather_nd (GPU): output " + y.shape.str() + " does not match data " + x.shape.str());
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t s = stream_of(ctx);
  IndexScratch rows(dev, g.n);
  nd_rows(op, s, in[1], g, rows);
  move_switch(op, y.dtype, req[0], [&](auto z) {
    using T = decltype(z);
    gather_nd_kernel<T><<<grid_for(g.n * g.k), kBlock, 0, s>>>(g.n, g.k, static_cast<const T*>(x.ptr), rows.pos(),
                                                               static_cast<T*>(y.ptr), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

/// Inputs: dy [n, k], indices [m, n]; outputs: dx [rows, k] (scatter-add, in index order), dindices (zeros).
void gather_nd_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* op = "_backward_gather_nd";
  prologue(op, in, 2, 2, req, out, 1, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t s = stream_of(ctx);
  if (out.size() > 1) zero_unless_add(s, out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const TBlob& dx = out[0];
  const NdGeom g = nd_geom(op, dx.shape, in[1].shape);
  if (!is_float(dx.dtype) || in[0].dtype != dx.dtype)
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(dx.dtype) + " is not supported (float32, float64)");
  if (in[0].size() != g.n * g.k)
    throw KilnError(std::string(op) + " (GPU): output gradient " + in[0].shape.str() + " does not match " +
                    dx.shape.str() + " indexed by " + in[1].shape.str());
  if (g.n * g.k == 0) {
    zero_unless_add(s, dx, req[0]);
    return;
  }
  IndexScratch rows(dev, g.n);
  nd_rows("gather_nd", s, in[1], g, rows);
  take_grad(op, dev, s, 1, g.rows, g.k, g.n, rows.pos(), in[0], dx, req[0]);
}

void scatter_nd_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* op = "scatter_nd";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const TBlob& x = in[0];   // [n, k]
  const TBlob& y = out[0];  // [rows, k]
  if (req[0] == OpReq::kNullOp) return;
  const NdGeom g = nd_geom(op, y.shape, in[1].shape);
  if (x.size() != g.n * g.k || y.dtype != x.dtype)
    throw KilnError("scatter_nd (GPU): data " + x.shape.str() + " does not match the output " + y.shape.str());
  if (g.rows * g.k == 0) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t s = stream_of(ctx);
  IndexScratch rows(dev, g.n);
  nd_rows(op, s, in[1], g, rows);
  DeviceScratch last(dev, (size_t)g.rows * sizeof(unsigned long long));  // [rows]
  KILN_CUDA_CHECK(cudaMemsetAsync(last.as<unsigned long long>(), 0, last.bytes(), s));
  if (g.n > 0) {
    scatter_last_kernel<<<grid_for(g.n), kBlock, 0, s>>>(g.n, rows.pos(), last.as<unsigned long long>());
    KILN_CUDA_LAUNCH_CHECK(op);
  }
  move_switch(op, y.dtype, req[0], [&](auto z) {
    using T = decltype(z);
    scatter_nd_kernel<T><<<grid_for(g.rows * g.k), kBlock, 0, s>>>(
        g.rows, g.k, static_cast<const T*>(x.ptr), last.as<unsigned long long>(), static_cast<T*>(y.ptr),
        req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- ravel_multi_index / unravel_index -----------------------------------------------------------
// As ops/index/ravel.cc: MXNet's arithmetic, no range check (the results are numbers).

/// ret * s + v in v's type (float16 through float), truncated.
template <typename T>
__device__ __forceinline__ int64_t ravel_step(int64_t ret, int64_t s, T v) {
  if constexpr (std::is_integral<T>::value) return (int64_t)((uint64_t)ret * (uint64_t)s + (uint64_t)(int64_t)v);
  else if constexpr (std::is_same<T, __half>::value) return index_value((float)(ret * s) + __half2float(v));
  else return index_value((T)((T)(ret * s) + v));
}

// x: [m, n], s: [m] the shape, y: [n]
template <typename T>
__global__ void ravel_kernel(int64_t m, int64_t n, const T* x, const int64_t* s, T* y, int req) {
  KILN_GRID_STRIDE(i, n) {
    int64_t r = 0;
    for (int64_t j = 0; j < m; ++j) r = ravel_step(r, s[j], x[j * n + i]);
    put(y, i, req, from_i<T>(r));
  }
}

// x: [n], s: [m] the shape, y: [m, n] the mixed-radix digits of trunc(x[i]) (C division, as MXNet),
// the leading one unbounded
template <typename T>
__global__ void unravel_kernel(int64_t m, int64_t n, const T* x, const int64_t* s, T* y, int req) {
  KILN_GRID_STRIDE(i, n) {
    int64_t idx = index_value(x[i]);
    for (int64_t j = m - 1; j >= 1; --j) {
      const int64_t q = idx / s[j];
      put(y, j * n + i, req, from_i<T>(idx - q * s[j]));
      idx = q;
    }
    put(y, i, req, from_i<T>(idx));  // the leading coordinate: the quotient left
  }
}

template <bool kRavel>
void ravel_op(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
              const std::vector<TBlob>& out) {
  const char* op = kRavel ? "ravel_multi_index" : "unravel_index";
  prologue(op, in, 1, 1, req, out, 1, 1);
  if (req[0] == OpReq::kNullOp) return;
  const std::vector<int64_t> shape = a.t("shape");
  const int64_t m = (int64_t)shape.size();
  const int64_t n = kRavel ? out[0].size() : in[0].size();
  for (int64_t v : shape)
    if (v < 1) throw KilnError(std::string(op) + ": shape entries must be positive");
  if ((kRavel ? in[0].size() : out[0].size()) != m * n || in[0].dtype != out[0].dtype)
    throw KilnError(std::string(op) + " (GPU): " + in[0].shape.str() + " -> " + out[0].shape.str() +
                    " does not match shape " + Shape(shape).str());
  if (req[0] == OpReq::kAddTo && !is_float(out[0].dtype))
    throw KilnError(std::string(op) + ": accumulation needs float32/float64");
  if (m * n == 0) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  DeviceScratch dims(dev, (size_t)m * sizeof(int64_t));  // [m]
  KILN_CUDA_CHECK(cudaMemcpyAsync(dims.as<int64_t>(), shape.data(), (size_t)m * sizeof(int64_t), cudaMemcpyHostToDevice, s));
  any_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    if constexpr (kRavel)
      ravel_kernel<T><<<grid_for(n), kBlock, 0, s>>>(m, n, in[0].dptr<T>(), dims.as<int64_t>(), out[0].dptr<T>(),
                                                     req_int(req[0]));
    else
      unravel_kernel<T><<<grid_for(n), kBlock, 0, s>>>(m, n, in[0].dptr<T>(), dims.as<int64_t>(), out[0].dptr<T>(),
                                                       req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));  // `shape` (pageable host memory) must outlive the copy
}

// ---- diag -----------------------------------------------------------------------------------------
// As ops/index/diag.cc (geometry in kiln/diag.h): D [outer, len] holds the diagonals of M.

// m: the matrix side, base: [outer], d: [outer, len] (req) the diagonal elements
template <typename T>
__global__ void diag_extract_kernel(int64_t outer, int64_t len, int64_t first, int64_t step, const int64_t* base,
                                    const T* m, T* d, int req) {
  KILN_GRID_STRIDE(e, outer * len) { put(d, e, req, m[base[e / len] + first + (e % len) * step]); }
}

// d: [outer, len], m: the matrix side (req) d on the diagonals (zeroed before unless adding)
template <typename T>
__global__ void diag_place_kernel(int64_t outer, int64_t len, int64_t first, int64_t step, const int64_t* base,
                                  const T* d, T* m, int req) {
  KILN_GRID_STRIDE(e, outer * len) {
    const int64_t p = base[e / len] + first + (e % len) * step;
    put(m, p, req, d[e]);
  }
}

/// kExtract: out = the diagonals of in; else out = in placed on the diagonals (zero elsewhere).
void diag_move(const char* op, const OpCtx& ctx, const DiagGeom& g, bool extract, const TBlob& src, const TBlob& dst,
               OpReq req) {
  if (req == OpReq::kNullOp) return;
  if (src.dtype != dst.dtype) throw KilnError(std::string(op) + " (GPU): input and output types differ");
  const int dev = device_of(ctx, {src}, {dst});
  DeviceGuard dg(dev);
  cudaStream_t s = stream_of(ctx);
  if (!extract) zero_unless_add(s, dst, req);
  const int64_t total = g.outer() * g.len;
  if (total == 0) return;
  DeviceScratch base(dev, (size_t)g.outer() * sizeof(int64_t));  // [outer]
  KILN_CUDA_CHECK(cudaMemcpyAsync(base.as<int64_t>(), g.base.data(), base.bytes(), cudaMemcpyHostToDevice, s));
  const int64_t first = g.r0 * g.s1 + g.c0 * g.s2, step = g.s1 + g.s2;
  move_switch(op, dst.dtype, req, [&](auto z) {
    using T = decltype(z);
    const T* in = static_cast<const T*>(src.ptr);
    T* out = static_cast<T*>(dst.ptr);
    // placing writes only the diagonals, over the zeros written above: an add-request there
    if (extract)
      diag_extract_kernel<T><<<grid_for(total), kBlock, 0, s>>>(g.outer(), g.len, first, step, base.as<int64_t>(), in, out,
                                                                req_int(req));
    else
      diag_place_kernel<T><<<grid_for(total), kBlock, 0, s>>>(g.outer(), g.len, first, step, base.as<int64_t>(), in, out,
                                                              req_int(req));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));  // g.base (host memory) must outlive the copy
}

void diag_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  prologue("diag", in, 1, 1, req, out, 1, 1);
  const DiagGeom g = diag_geom(a, in[0].shape);
  if (out[0].shape != diag_out_shape(a, in[0].shape))
    throw KilnError("diag (GPU): output " + out[0].shape.str() + " does not match input " + in[0].shape.str());
  diag_move("diag", ctx, g, in[0].shape.ndim() > 1, in[0], out[0], req[0]);
}

void diag_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  prologue("_backward_diag", in, 1, 1, req, out, 1, 1);
  if (!is_float(out[0].dtype)) throw KilnError("_backward_diag (GPU): dtype must be float32/float64");
  const DiagGeom g = diag_geom(a, out[0].shape);
  if (in[0].shape != diag_out_shape(a, out[0].shape))
    throw KilnError("_backward_diag (GPU): gradient " + in[0].shape.str() + " does not match " + out[0].shape.str());
  diag_move("_backward_diag", ctx, g, out[0].shape.ndim() == 1, in[0], out[0], req[0]);
}

// ---- khatri_rao ------------------------------------------------------------------------------------
// As ops/index/khatri_rao.cc: mats [n] device pointers to A_j [r_j, k]; out [rows, k]; the backward
// gives each dA_j element its sum over the output rows with that row of A_j, in row order.

// y: [rows, k] = prod_j A_j[i_j, c]
template <typename T>
__global__ void kr_kernel(int n, int64_t rows, int64_t k, const T* const* mats, const int64_t* r, T* y, int req) {
  KILN_GRID_STRIDE(e, rows * k) {
    int64_t rem = e / k;
    const int64_t c = e % k;
    T p = T(1);
    for (int j = n - 1; j >= 0; --j) {
      p *= mats[j][(rem % r[j]) * k + c];
      rem /= r[j];
    }
    assign(y, e, req, p);
  }
}

// g: [rows, k]; dA_j: [r_j, k]
template <typename T>
__global__ void kr_grad_kernel(int n, int j, int64_t k, int64_t outer, int64_t inner, const T* const* mats,
                               const int64_t* r, const T* g, T* dA, int req) {
  const int64_t rj = r[j];
  KILN_GRID_STRIDE(e, rj * k) {
    const int64_t i = e / k, c = e % k;
    T acc = T(0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t q = 0; q < inner; ++q) {
        const int64_t row = (o * rj + i) * inner + q;
        int64_t rem = row;
        T p = g[row * k + c];
        for (int l = n - 1; l >= 0; --l) {
          if (l != j) p *= mats[l][(rem % r[l]) * k + c];
          rem /= r[l];
        }
        acc += p;
      }
    assign(dA, e, req, acc);
  }
}

/// The inputs' device pointers and row counts on the device: [n] pointers, then [n] int64.
struct KrTable {
  DeviceScratch mem;
  int n;
  int64_t rows = 1, k = 0;
  std::vector<int64_t> r;
  KrTable(int dev, cudaStream_t s, const std::vector<TBlob>& mats)
      : mem(dev, mats.size() * (sizeof(void*) + sizeof(int64_t)) + 16), n((int)mats.size()) {
    std::vector<const void*> ptrs;
    for (const TBlob& m : mats) {
      if (m.shape.ndim() != 2 || m.dtype != mats[0].dtype || m.shape[1] != mats[0].shape[1])
        throw KilnError("khatri_rao (GPU): inputs must be matrices of one type with one column count");
      ptrs.push_back(m.ptr);
      r.push_back(m.shape[0]);
      rows *= m.shape[0];
    }
    k = mats.empty() ? 0 : mats[0].shape[1];
    KILN_CUDA_CHECK(cudaMemcpyAsync(mem.as<char>(), ptrs.data(), n * sizeof(void*), cudaMemcpyHostToDevice, s));
    KILN_CUDA_CHECK(cudaMemcpyAsync(rdev(), r.data(), n * sizeof(int64_t), cudaMemcpyHostToDevice, s));
    KILN_CUDA_CHECK(cudaStreamSynchronize(s));  // the host vectors must outlive the copies
  }
  template <typename T>
  const T* const* mats() const { return reinterpret_cast<const T* const*>(mem.as<char>()); }
  int64_t* rdev() const { return reinterpret_cast<int64_t*>(mem.as<char>() + n * sizeof(void*)); }
};

void kr_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = "khatri_rao";
  prologue(op, in, 1, 1 << 20, req, out, 1, 1);
  if (req[0] == OpReq::kNullOp) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  KrTable t(dev, s, in);
  if (out[0].size() != t.rows * t.k || out[0].dtype != in[0].dtype)
    throw KilnError("khatri_rao (GPU): output " + out[0].shape.str() + " does not match the inputs");
  if (t.rows * t.k == 0) return;
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    kr_kernel<T><<<grid_for(t.rows * t.k), kBlock, 0, s>>>(t.n, t.rows, t.k, t.mats<T>(), t.rdev(), out[0].dptr<T>(),
                                                          req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

/// Inputs: g [rows, k], A_0 .. A_{n-1}; outputs: dA_0 .. dA_{n-1}.
void kr_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_khatri_rao";
  prologue(op, in, 2, 1 << 20, req, out, 1, 1 << 20);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  const std::vector<TBlob> mats(in.begin() + 1, in.end());
  KrTable t(dev, s, mats);
  if (in[0].size() != t.rows * t.k || out.size() != mats.size())
    throw KilnError("_backward_khatri_rao (GPU): gradient " + in[0].shape.str() + " does not match the inputs");
  for (int j = 0; j < t.n; ++j) {
    if (req[j] == OpReq::kNullOp || t.r[j] * t.k == 0) continue;
    int64_t inner = 1;
    for (int l = j + 1; l < t.n; ++l) inner *= t.r[l];
    const int64_t outer = t.rows / std::max<int64_t>(1, t.r[j] * inner);
    KILN_FLOAT_SWITCH(out[j].dtype, T, {
      kr_grad_kernel<T><<<grid_for(t.r[j] * t.k), kBlock, 0, s>>>(t.n, j, t.k, outer, inner, t.mats<T>(), t.rdev(),
                                                                 in[0].dptr<T>(), out[j].dptr<T>(), req_int(req[j]));
    });
    KILN_CUDA_LAUNCH_CHECK(op);
  }
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
  set_gpu(r, "batch_take", batch_take_forward);
  set_gpu(r, "_backward_batch_take", batch_take_backward);
  set_gpu(r, "gather_nd", gather_nd_forward);
  set_gpu(r, "_backward_gather_nd", gather_nd_backward);
  set_gpu(r, "scatter_nd", scatter_nd_forward);
  set_gpu(r, "_ravel_multi_index", ravel_op<true>);
  set_gpu(r, "_unravel_index", ravel_op<false>);
  set_gpu(r, "diag", diag_forward);
  set_gpu(r, "_backward_diag", diag_backward);
  set_gpu(r, "khatri_rao", kr_forward);
  set_gpu(r, "_backward_khatri_rao", kr_backward);
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
