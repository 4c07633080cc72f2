// sort, argsort, topk (every ret_typ: value, indices, both, mask) and _backward_sort /
// _backward_topk on the GPU (CPU: index/sort.cc). The input is viewed as L = outer * inner lines of
// n elements (stride inner) around `axis` (axis=None: one line of every element). Each line is
// ordered by a bitonic network under a strict total order: by value (ascending or descending),
// ties by position, padding last; this is exactly the CPU's std::stable_sort order (for inputs
// without NaN). Lines of up to kSharedMax elements sort in shared memory, one block per line;
// longer lines sort in global memory (one launch per bitonic step). The first k positions of every
// line land in an int64 scratch [L, k]; small kernels then write values, indices (any index
// dtype) or the mask.
#include <climits>
#include <string>
#include <vector>

#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {
namespace shape {
namespace {

constexpr int kSharedMax = 4096;  // line length (padded to a power of 2) sorted in shared memory

/// a (value va at position ia) comes before b: padding (position >= n) last, then by value (NaN
/// the largest), then by position.
template <typename T>
__device__ __forceinline__ bool before(T va, int64_t ia, T vb, int64_t ib, int64_t n, bool ascend) {
  if (ia >= n) return false;
  if (ib >= n) return true;
  if (ascend ? nan_last_less(va, vb) : nan_last_less(vb, va)) return true;
  if (ascend ? nan_last_less(vb, va) : nan_last_less(va, vb)) return false;
  return ia < ib;
}

// x: [outer, n, inner]; order: [L, k] the first k positions of each sorted line (L = outer * inner).
// One block per line; dynamic shared memory: P int positions then P values.
template <typename T>
__global__ void sort_shared_kernel(const T* x, int64_t lines, int64_t n, int64_t inner, int64_t k, int P, bool ascend,
                                   int64_t* order) {
  extern __shared__ __align__(16) unsigned char smem[];
  int* si = reinterpret_cast<int*>(smem);                       // [P] (first: aligned for any P)
  T* sv = reinterpret_cast<T*>(smem + (size_t)P * sizeof(int));  // [P] (P even: 8-byte aligned)
  for (int64_t l = blockIdx.x; l < lines; l += gridDim.x) {
    const int64_t o = l / inner, i = l % inner;
    const T* p = x + o * n * inner + i;  // stride inner
    for (int t = threadIdx.x; t < P; t += blockDim.x) {
      si[t] = t;
      sv[t] = t < n ? p[(int64_t)t * inner] : from_i<T>(0);
    }
    __syncthreads();
    for (int kk = 2; kk <= P; kk <<= 1) {
      for (int j = kk >> 1; j > 0; j >>= 1) {
        for (int t = threadIdx.x; t < P / 2; t += blockDim.x) {
          const int a = (t / j) * 2 * j + (t % j), b = a + j;
          const bool up = (a & kk) == 0;
          const bool swap = up ? before(sv[b], si[b], sv[a], si[a], n, ascend)
                               : before(sv[a], si[a], sv[b], si[b], n, ascend);
          if (swap) {
            const T tv = sv[a];
            sv[a] = sv[b];
            sv[b] = tv;
            const int ti = si[a];
            si[a] = si[b];
            si[b] = ti;
          }
        }
        __syncthreads();
      }
    }
    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) order[l * k + j] = si[j];
    __syncthreads();
  }
}

// x: [outer, n, inner] -> gv, gi: [L, P] (values and positions, padded)
template <typename T>
__global__ void sort_init_kernel(const T* x, int64_t lines, int64_t n, int64_t inner, int64_t P, T* gv, int64_t* gi) {
  const int64_t total = lines * P;
  KILN_GRID_STRIDE(e, total) {
    const int64_t l = e / P, t = e % P, o = l / inner, i = l % inner;
    gi[e] = t;
    gv[e] = t < n ? x[(o * n + t) * inner + i] : from_i<T>(0);
  }
}

// one bitonic step (stage kk, distance j) on every line of gv, gi: [L, P]
template <typename T>
__global__ void sort_step_kernel(int64_t lines, int64_t n, int64_t P, int64_t kk, int64_t j, bool ascend, T* gv,
                                 int64_t* gi) {
  const int64_t half = P / 2, total = lines * half;
  KILN_GRID_STRIDE(e, total) {
    const int64_t l = e / half, t = e % half;
    const int64_t a0 = (t / j) * 2 * j + (t % j);
    const int64_t a = l * P + a0, b = a + j;
    const bool up = (a0 & kk) == 0;
    const bool swap = up ? before(gv[b], gi[b], gv[a], gi[a], n, ascend) : before(gv[a], gi[a], gv[b], gi[b], n, ascend);
    if (swap) {
      const T tv = gv[a];
      gv[a] = gv[b];
      gv[b] = tv;
      const int64_t ti = gi[a];
      gi[a] = gi[b];
      gi[b] = ti;
    }
  }
}

// gi: [L, P] -> order: [L, k]
__global__ void sort_take_kernel(int64_t lines, int64_t P, int64_t k, const int64_t* gi, int64_t* order) {
  const int64_t total = lines * k;
  KILN_GRID_STRIDE(e, total) { order[e] = gi[(e / k) * P + e % k]; }
}

// x: [outer, n, inner], order: [L, k], y: [outer, k, inner] (req) the sorted values
template <typename T>
__global__ void emit_values_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k, const T* x,
                                   const int64_t* order, T* y, int req) {
  const int64_t total = outer * k * inner;
  KILN_GRID_STRIDE(e, total) {
    const int64_t i = e % inner, r = e / inner, j = r % k, o = r / k;
    const int64_t src = order[(o * inner + i) * k + j];
    put(y, e, req, x[(o * n + src) * inner + i]);
  }
}

// order: [L, k], y: [outer, k, inner] (req) the positions as I
template <typename I>
__global__ void emit_indices_kernel(int64_t outer, int64_t inner, int64_t k, const int64_t* order, I* y, int req) {
  const int64_t total = outer * k * inner;
  KILN_GRID_STRIDE(e, total) {
    const int64_t i = e % inner, r = e / inner, j = r % k, o = r / k;
    put(y, e, req, from_i<I>(order[(o * inner + i) * k + j]));
  }
}

// order: [L, k], m: [outer, n, inner]; m at every selected position = 1 (+= 1 under kAddTo)
template <typename T>
__global__ void emit_mask_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k, const int64_t* order, T* m,
                                 int req) {
  const int64_t total = outer * k * inner;
  KILN_GRID_STRIDE(e, total) {
    const int64_t i = e % inner, r = e / inner, j = r % k, o = r / k;
    const int64_t src = order[(o * inner + i) * k + j];
    put(m, (o * n + src) * inner + i, req, from_i<T>(1));
  }
}

// g: [outer, k, inner], idx: [outer, k, inner] positions (any dtype), dx: [outer, n, inner] += g
// at the positions (distinct within a line when they come from the forward op)
template <typename T, typename I>
__global__ void sort_grad_kernel(int64_t outer, int64_t n, int64_t inner, int64_t k, const T* g, const I* idx, T* dx) {
  const int64_t total = outer * k * inner;
  KILN_GRID_STRIDE(q, total) {
    const int64_t i = q % inner, o = q / inner / k;
    const int64_t src = index_value(idx[q]);
    if (src >= 0 && src < n) dx[(o * n + src) * inner + i] += g[q];
  }
}

// ---- configuration (as sort.cc) ------------------------------------------------------------------

struct SortCfg {
  bool has_axis;
  int64_t axis, k;
  std::string ret;  // value, indices, mask, both
  bool ascend;
};

SortCfg topk_cfg(const Attrs& a) {
  return {a.has("axis"), a.has("axis") ? a.i("axis") : 0, a.i("k"), a.s("ret_typ"), a.b("is_ascend")};
}
SortCfg sort_cfg(const Attrs& a) { return {a.has("axis"), a.has("axis") ? a.i("axis") : 0, 0, "value", a.b("is_ascend")}; }
SortCfg argsort_cfg(const Attrs& a) {
  return {a.has("axis"), a.has("axis") ? a.i("axis") : 0, 0, "indices", a.b("is_ascend")};
}

struct Dims {
  int64_t outer, n, inner, k;
};

Dims sort_dims(const char* op, const SortCfg& c, const Shape& x) {
  Dims d{1, x.size(), 1, 0};
  if (c.has_axis) {
    const int ax = norm_axis(c.axis, x.ndim());
    if (ax < 0) throw KilnError(std::string(op) + " (GPU): axis out of range for input shape " + x.str());
    d.n = x[ax];
    d.outer = x.prod(0, ax);
    d.inner = x.prod(ax + 1, x.ndim());
  }
  d.k = c.k < 1 ? d.n : c.k;
  if (c.k >= 1 && c.k > d.n)
    throw KilnError(std::string(op) + ": k must be smaller than " + std::to_string(d.n) + " (got k=" +
                    std::to_string(c.k) + ", input shape " + x.str() + ")");
  return d;
}

/// order [L, k] (device) = the first k positions of every sorted line of x.
void sort_lines(const char* op, int dev, cudaStream_t s, const TBlob& x, const Dims& d, bool ascend, int64_t* order) {
  const int64_t lines = d.outer * d.inner;
  if (lines == 0 || d.k == 0) return;
  int64_t P = 1;
  while (P < d.n) P <<= 1;
  if (P < 2) P = 2;
  if (P <= kSharedMax) {
    any_switch(x.dtype, [&](auto z) {
      using T = decltype(z);
      const size_t shm = (size_t)P * (sizeof(T) + sizeof(int));
      const int threads = (int)std::min<int64_t>(std::max<int64_t>(P / 2, 32), 512);
      const unsigned blocks = (unsigned)std::min<int64_t>(lines, 65535LL * 16);
      sort_shared_kernel<T><<<blocks, threads, shm, s>>>(x.dptr<T>(), lines, d.n, d.inner, d.k, (int)P, ascend, order);
    });
    KILN_CUDA_LAUNCH_CHECK(op);
    return;
  }
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    DeviceScratch mem(dev, (size_t)(lines * P) * (sizeof(T) + sizeof(int64_t)));
    int64_t* gi = mem.as<int64_t>();
    T* gv = reinterpret_cast<T*>(gi + lines * P);
    sort_init_kernel<T><<<grid_for(lines * P), kBlock, 0, s>>>(x.dptr<T>(), lines, d.n, d.inner, P, gv, gi);
    KILN_CUDA_LAUNCH_CHECK(op);
    for (int64_t kk = 2; kk <= P; kk <<= 1)
      for (int64_t j = kk >> 1; j > 0; j >>= 1) {
        sort_step_kernel<T><<<grid_for(lines * P / 2), kBlock, 0, s>>>(lines, d.n, P, kk, j, ascend, gv, gi);
        KILN_CUDA_LAUNCH_CHECK(op);
      }
    sort_take_kernel<<<grid_for(lines * d.k), kBlock, 0, s>>>(lines, P, d.k, gi, order);
    KILN_CUDA_LAUNCH_CHECK(op);
  });
}

void emit_indices(const char* op, cudaStream_t s, const Dims& d, const int64_t* order, const TBlob& y, OpReq req) {
  const int64_t total = d.outer * d.k * d.inner;
  if (req == OpReq::kNullOp || total == 0) return;
  if (y.size() != total) throw KilnError(std::string(op) + " (GPU): index output " + y.shape.str() + " has the wrong size");
  any_switch(y.dtype, [&](auto z) {
    using I = decltype(z);
    emit_indices_kernel<I><<<grid_for(total), kBlock, 0, s>>>(d.outer, d.inner, d.k, order, y.dptr<I>(), req_int(req));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

template <SortCfg (*Cfg)(const Attrs&)>
Kernel sort_forward(const char* op) {
  return [op](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
              const std::vector<TBlob>& out) {
    prologue(op, in, 1, 1, req, out, 1, 2);
    const SortCfg c = Cfg(a);
    const TBlob& x = in[0];  // [outer, n, inner]
    const Dims d = sort_dims(op, c, x.shape);
    for (size_t o = 0; o < out.size(); ++o)
      if (req[o] == OpReq::kAddTo && !is_float(out[o].dtype))
        throw KilnError("topk/sort: accumulation needs float32/float64");
    const bool mask = c.ret == "mask";
    const bool values = c.ret == "value" || c.ret == "both";
    const bool hidden_idx = c.ret == "value";  // output 1 is hidden: written whatever its request
    bool work = false;
    for (size_t o = 0; o < out.size(); ++o) work |= req[o] != OpReq::kNullOp || (hidden_idx && o == 1);
    if (!work) return;
    const int64_t total = d.outer * d.k * d.inner;
    if (values && req[0] != OpReq::kNullOp && (out[0].size() != total || out[0].dtype != x.dtype))
      throw KilnError(std::string(op) + " (GPU): value output " + out[0].shape.str() + " does not match");
    const size_t oi = values ? 1 : 0;  // the index output (hidden for ret_typ=value / sort): checked before any launch
    if (!mask && oi < out.size() && (req[oi] != OpReq::kNullOp || hidden_idx)) {
      if (out[oi].size() != total)
        throw KilnError(std::string(op) + " (GPU): index output " + out[oi].shape.str() + " does not hold " +
                        std::to_string(total) + " indices (input " + x.shape.str() + ", k=" + std::to_string(d.k) +
                        ")");
      if (out[oi].ptr == nullptr && total > 0)
        throw KilnError(std::string(op) +
                        " (GPU): the index output has no memory (the op declares outputs_always_written)");
    }
    const int dev = device_of(ctx, in, out);
    DeviceGuard g(dev);
    cudaStream_t s = stream_of(ctx);
    if (mask) {
      if (out[0].size() != x.size() || out[0].dtype != x.dtype)
        throw KilnError(std::string(op) + " (GPU): mask output " + out[0].shape.str() + " does not match the input");
      zero_unless_add(s, out[0], req[0]);
    }
    const int64_t lines = d.outer * d.inner;
    if (lines * d.k == 0) return;
    DeviceScratch ord(dev, (size_t)(lines * d.k) * sizeof(int64_t));
    int64_t* order = ord.as<int64_t>();  // [L, k]
    sort_lines(op, dev, s, x, d, c.ascend, order);
    if (mask) {
      any_switch(x.dtype, [&](auto z) {
        using T = decltype(z);
        emit_mask_kernel<T><<<grid_for(total), kBlock, 0, s>>>(d.outer, d.n, d.inner, d.k, order, out[0].dptr<T>(),
                                                               req_int(req[0]));
      });
      KILN_CUDA_LAUNCH_CHECK(op);
      return;
    }
    if (values && req[0] != OpReq::kNullOp) {
      any_switch(x.dtype, [&](auto z) {
        using T = decltype(z);
        emit_values_kernel<T><<<grid_for(total), kBlock, 0, s>>>(d.outer, d.n, d.inner, d.k, x.dptr<T>(), order,
                                                                 out[0].dptr<T>(), req_int(req[0]));
      });
      KILN_CUDA_LAUNCH_CHECK(op);
    }
    if (oi < out.size()) {
      const OpReq r = (hidden_idx && req[oi] == OpReq::kNullOp) ? OpReq::kWriteTo : req[oi];
      emit_indices(op, s, d, order, out[oi], r);
    }
  };
}

/// Inputs: dvalue [outer, k, inner], indices [outer, k, inner]; output dx [outer, n, inner].
template <SortCfg (*Cfg)(const Attrs&)>
Kernel sort_backward(const char* op) {
  return [op](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
              const std::vector<TBlob>& out) {
    prologue(op, in, 2, 2, req, out, 1, 1);
    if (req[0] == OpReq::kNullOp) return;
    const SortCfg c = Cfg(a);
    const TBlob& dx = out[0];
    const Dims d = sort_dims(op, c, dx.shape);
    if (!is_float(dx.dtype) || in[0].dtype != dx.dtype)
      throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(dx.dtype) + " is not supported (float32, float64)");
    const int64_t total = d.outer * d.k * d.inner;
    if (in[0].size() != total || in[1].size() != total)
      throw KilnError(std::string(op) + " (GPU): gradient " + in[0].shape.str() + " / indices " + in[1].shape.str() +
                      " do not match " + dx.shape.str());
    if (total > 0 && (in[0].ptr == nullptr || in[1].ptr == nullptr))
      throw KilnError(std::string(op) + " (GPU): the gradient or the (hidden) index input has no memory");
    DeviceGuard g(device_of(ctx, in, out));
    cudaStream_t s = stream_of(ctx);
    zero_unless_add(s, dx, req[0]);
    if (total == 0) return;
    KILN_FLOAT_SWITCH(dx.dtype, T, {
      any_switch(in[1].dtype, [&](auto zi) {
        using I = decltype(zi);
        sort_grad_kernel<T, I><<<grid_for(total), kBlock, 0, s>>>(d.outer, d.n, d.inner, d.k, in[0].dptr<T>(),
                                                                  in[1].dptr<I>(), dx.dptr<T>());
      });
    });
    KILN_CUDA_LAUNCH_CHECK(op);
  };
}

}  // namespace

void register_index_sort_gpu(OpRegistry& r) {
  set_gpu(r, "topk", sort_forward<topk_cfg>("topk"));
  set_gpu(r, "_backward_topk", sort_backward<topk_cfg>("_backward_topk"));
  set_gpu(r, "sort", sort_forward<sort_cfg>("sort"));
  set_gpu(r, "_backward_sort", sort_backward<sort_cfg>("_backward_sort"));
  set_gpu(r, "argsort", sort_forward<argsort_cfg>("argsort"));
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
