// Shared machinery of the tensor family's GPU kernels (ops/tensor_*.cu): dtype dispatch over every
// storage type (float16 as __half), flat elementwise kernels, the NumPy broadcasting engine
// (collapsed plan passed by value) and a deterministic axis-reduction engine (shared-memory tree
// per output, optional split of long reductions into segments whose partials are merged in a
// fixed order by a second kernel; no atomics, so repeated runs give identical bits).
//
// Host + device code; nvcc only. Everything is internal to the family (namespace
// kiln::cuda::tensor); the per-file register functions are declared at the end.
#pragma once
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "common/kernels.cuh"
#include "kiln/int_convert.h"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace tensor {

/// The CPU's rank limit (kiln/simd.h kMaxDims).
constexpr int kMaxDims = 32;

// ---- dtype dispatch ----------------------------------------------------------------------------

/// Runs the body with DT bound to the device storage type of `dtype` (every MXNet dtype).
#define KILN_ANY_SWITCH(dtype, DT, ...)                                                              \
  do {                                                                                               \
    switch (dtype) {                                                                                 \
      case ::kiln::DType::kFloat32: { typedef float DT; __VA_ARGS__; break; }                         \
      case ::kiln::DType::kFloat64: { typedef double DT; __VA_ARGS__; break; }                        \
      case ::kiln::DType::kFloat16: { typedef __half DT; __VA_ARGS__; break; }                        \
      case ::kiln::DType::kUint8: { typedef uint8_t DT; __VA_ARGS__; break; }                         \
      case ::kiln::DType::kInt32: { typedef int32_t DT; __VA_ARGS__; break; }                         \
      case ::kiln::DType::kInt8: { typedef int8_t DT; __VA_ARGS__; break; }                           \
      case ::kiln::DType::kInt64: { typedef int64_t DT; __VA_ARGS__; break; }                         \
      default: throw ::kiln::KilnError(std::string("dtype ") + ::kiln::dtype_name(dtype) +            \
                                       " is not supported by this kernel");                          \
    }                                                                                                \
  } while (0)

inline bool is_float_dtype(DType t) { return t == DType::kFloat32 || t == DType::kFloat64; }

/// static_cast semantics between any two storage types, except that floating point to integer
/// follows kiln/int_convert.h (NaN 0, saturating), as on the CPU; conversions to float16 round to
/// nearest even from the exact value (through double), float16 is widened exactly through float.
template <typename D, typename S>
__device__ __forceinline__ D convert(S s) {
  if constexpr (std::is_same<D, S>::value) {
    return s;
  } else if constexpr (std::is_same<D, __half>::value) {
    return __double2half((double)s);
  } else if constexpr (std::is_same<S, __half>::value) {
    return convert<D>(__half2float(s));
  } else if constexpr (std::is_integral<D>::value && !std::is_integral<S>::value) {
    return saturate_to_int<D>((double)s);
  } else {
    return static_cast<D>(s);
  }
}

/// Comparison type of a storage type (float16 compares as float, exactly).
template <typename T> struct CmpType { typedef T type; };
template <> struct CmpType<__half> { typedef float type; };
template <typename T>
__device__ __forceinline__ typename CmpType<T>::type cmp_value(T v) { return convert<typename CmpType<T>::type>(v); }

// ---- math overloads not in common/kernels.cuh --------------------------------------------------

__device__ __forceinline__ float k_pow(float a, float b) { return powf(a, b); }
// CUDA's double pow may be 2 ulp off; glibc's is within 0.52 ulp, so exact wherever the result is
// a double. An integer power (0..64) of an integer whose value is below 2^53 is computed exactly by
// squaring instead (every partial product is an integer no larger than the result), so integer
// arrays truncate it as on the CPU (kiln/int_convert.h) and float64 ones get the CPU's value.
__device__ __forceinline__ double k_pow(double a, double b) {
  const double p = pow(a, b);
  if (!(b >= 0 && b <= 64 && b == floor(b) && a == floor(a) && fabs(p) < 9007199254740992.0)) return p;
  double r = 1, x = a;
  for (unsigned e = (unsigned)b; e != 0; e >>= 1) {
    if (e & 1) r *= x;
    if (e > 1) x *= x;
  }
  return r;
}
__device__ __forceinline__ float k_copysign(float a, float b) { return copysignf(a, b); }
__device__ __forceinline__ double k_copysign(double a, double b) { return copysign(a, b); }

/// MXNet's g * (cond ? 1 : 0) as the CPU writes it: g, or a zero with g's sign.
template <typename T>
__device__ __forceinline__ T pass_if(bool cond, T g) { return cond ? g : k_copysign(T(0), g); }

/// (T)(float)v: a parameter MXNet declares as float32, applied in the data's dtype.
template <typename T>
inline T float_param(double v) {
  volatile float f = (float)v;
  return (T)f;
}

// ---- prologue ----------------------------------------------------------------------------------

/// Arity and device checks of every kernel here.
inline void check_call(const char* op, const std::vector<TBlob>& in, size_t nin_min, size_t nin_max,
                       const std::vector<OpReq>& req, const std::vector<TBlob>& out, size_t nout) {
  check_arity(op, in, nin_min, nin_max, out, req, nout, nout);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
}

inline void check_size(const char* op, const TBlob& b, int64_t n, const char* what, const Shape& ref) {
  if (b.size() != n)
    throw KilnError(std::string(op) + " (GPU): " + what + " has shape " + b.shape.str() + ", expected the size of " +
                    ref.str());
}

inline void check_dtype(const char* op, const TBlob& b, DType t, const char* what) {
  if (b.dtype != t)
    throw KilnError(std::string(op) + " (GPU): " + what + " is " + dtype_name(b.dtype) + ", expected " + dtype_name(t));
}

// ---- flat elementwise kernels --------------------------------------------------------------------

// x: [n], y: [n] (may alias x)
template <typename T, typename F>
__global__ void map1_kernel(int64_t n, const T* x, T* y, int req, F f) {
  KILN_GRID_STRIDE(i, n) { assign(y, i, req, f(x[i])); }
}

// a: [n], b: [n], y: [n] (may alias a or b)
template <typename T, typename F>
__global__ void map2_kernel(int64_t n, const T* a, const T* b, T* y, int req, F f) {
  KILN_GRID_STRIDE(i, n) { assign(y, i, req, f(a[i], b[i])); }
}

template <typename T, typename F>
void launch_map1(const OpCtx& ctx, int64_t n, const T* x, T* y, OpReq req, F f, const char* name) {
  if (req == OpReq::kNullOp || n <= 0) return;
  map1_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, x, y, req_int(req), f);
  KILN_CUDA_LAUNCH_CHECK(name);
}

template <typename T, typename F>
void launch_map2(const OpCtx& ctx, int64_t n, const T* a, const T* b, T* y, OpReq req, F f, const char* name) {
  if (req == OpReq::kNullOp || n <= 0) return;
  map2_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, a, b, y, req_int(req), f);
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- broadcasting ------------------------------------------------------------------------------

/// An output shape and 1 to 3 operand shapes (right-aligned; each operand dim equals the output's
/// or is 1), collapsed as kiln/simd.h's BcastPlan: size-1 output dims vanish, adjacent dims merge
/// when every operand is full on both or broadcast on both. Passed to kernels by value.
struct BPlan {
  int nd = 0;                   // collapsed rank (0: a single element)
  int nops = 0;
  int64_t total = 0;            // output elements
  int64_t dim[kMaxDims];        // collapsed output dims
  int64_t stride[3][kMaxDims];  // element stride of operand k per collapsed dim (0 = broadcast)
  bool full[3];                 // operand k is not broadcast at all
};

inline BPlan make_bplan(const char* op, const Shape& out, const std::vector<Shape>& ops) {
  BPlan p;
  p.nops = (int)ops.size();
  if (out.ndim() > kMaxDims)
    throw KilnError(std::string(op) + " (GPU): rank " + std::to_string(out.ndim()) + " exceeds " +
                    std::to_string(kMaxDims));
  const int n = out.ndim();
  p.total = out.size();
  bool flags[kMaxDims][3];
  for (int i = 0; i < n; ++i) {
    if (out[i] == 1) continue;
    bool f[3] = {false, false, false};
    for (int k = 0; k < p.nops; ++k) {
      const int nk = ops[k].ndim(), j = i - (n - nk);
      const int64_t dk = j >= 0 ? ops[k][j] : 1;
      if (dk != 1 && dk != out[i])
        throw KilnError(std::string(op) + " (GPU): operand shape " + ops[k].str() + " does not broadcast to " +
                        out.str());
      f[k] = dk != 1;
    }
    if (p.nd > 0 && std::equal(f, f + 3, flags[p.nd - 1])) {
      p.dim[p.nd - 1] *= out[i];
    } else {
      p.dim[p.nd] = out[i];
      std::copy(f, f + 3, flags[p.nd]);
      ++p.nd;
    }
  }
  for (int k = 0; k < 3; ++k) {
    int64_t s = 1;
    for (int d = p.nd - 1; d >= 0; --d) {
      const bool f = k < p.nops && flags[d][k];
      p.stride[k][d] = f ? s : 0;
      if (f) s *= p.dim[d];
    }
    p.full[k] = k < p.nops && s == p.total;
  }
  return p;
}

// y: [p.total] (=|+= by req) f(operands at the broadcast positions); operand k: its own shape.
// I: index type (uint32_t when p.total < 2^31: cheaper divisions).
template <int K, typename I, typename T, typename F>
__global__ void bcast_kernel(BPlan p, T* y, int req, const T* a, const T* b, const T* c, F f) {
  KILN_GRID_STRIDE(i, p.total) {
    I rem = (I)i;
    I off0 = 0, off1 = 0, off2 = 0;
    for (int d = p.nd - 1; d >= 0; --d) {
      const I dd = (I)p.dim[d];
      const I q = rem / dd;
      const I id = rem - q * dd;
      rem = q;
      off0 += id * (I)p.stride[0][d];
      if (K > 1) off1 += id * (I)p.stride[1][d];
      if (K > 2) off2 += id * (I)p.stride[2][d];
    }
    T v;
    if constexpr (K == 1) v = f(a[off0]);
    else if constexpr (K == 2) v = f(a[off0], b[off1]);
    else v = f(a[off0], b[off1], c[off2]);
    assign(y, i, req, v);
  }
}

/// y (=|+=|nothing by req) f over the plan's output space with K = p.nops operands.
template <int K, typename T, typename F>
void launch_bcast(const OpCtx& ctx, const BPlan& p, OpReq req, T* y, const T* a, const T* b, const T* c, F f,
                  const char* name) {
  if (req == OpReq::kNullOp || p.total <= 0) return;
  const unsigned grid = grid_for(p.total);
  if (p.total < (int64_t(1) << 31))
    bcast_kernel<K, uint32_t, T><<<grid, kBlock, 0, stream_of(ctx)>>>(p, y, req_int(req), a, b, c, f);
  else
    bcast_kernel<K, int64_t, T><<<grid, kBlock, 0, stream_of(ctx)>>>(p, y, req_int(req), a, b, c, f);
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- reductions --------------------------------------------------------------------------------

/// An input shape reduced to `kept` (same rank with 1 on reduced axes, or right-aligned shorter),
/// collapsed as simd.h's ReducePlan, then split into the kept dims (which index the outputs, in
/// order) and the reduced dims (which index the R inputs of one output), each with its input
/// strides. Passed to kernels by value.
struct RPlan {
  int nk = 0, nr = 0;
  int64_t kdim[kMaxDims], kstride[kMaxDims];  // kept dims, outer to inner, and their input strides
  int64_t rdim[kMaxDims], rstride[kMaxDims];  // reduced dims, outer to inner, and their input strides
  int64_t M = 1;                              // outputs
  int64_t R = 1;                              // inputs per output
  int64_t total = 0;                          // inputs
  bool inner_reduced = false;                 // the innermost collapsed dim is reduced (rows are contiguous)
};

inline RPlan make_rplan(const char* op, const Shape& in, const Shape& kept) {
  RPlan p;
  const int n = in.ndim();
  if (n > kMaxDims)
    throw KilnError(std::string(op) + " (GPU): rank " + std::to_string(n) + " exceeds " + std::to_string(kMaxDims));
  if (kept.ndim() > n) throw KilnError(std::string(op) + " (GPU): " + kept.str() + " has more dims than " + in.str());
  p.total = in.size();
  int nd = 0;
  int64_t dim[kMaxDims];
  bool red[kMaxDims];
  for (int i = 0; i < n; ++i) {
    if (in[i] == 1) continue;
    const int j = i - (n - kept.ndim());
    const int64_t kd = j >= 0 ? kept[j] : 1;
    if (kd != 1 && kd != in[i])
      throw KilnError(std::string(op) + " (GPU): " + kept.str() + " is not a reduction of " + in.str());
    const bool r = kd == 1;
    if (nd > 0 && red[nd - 1] == r) {
      dim[nd - 1] *= in[i];
    } else {
      dim[nd] = in[i];
      red[nd] = r;
      ++nd;
    }
  }
  int64_t stride[kMaxDims];
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; --d) {
    stride[d] = s;
    s *= dim[d];
  }
  for (int d = 0; d < nd; ++d) {
    if (red[d]) {
      p.rdim[p.nr] = dim[d];
      p.rstride[p.nr++] = stride[d];
      p.R *= dim[d];
    } else {
      p.kdim[p.nk] = dim[d];
      p.kstride[p.nk++] = stride[d];
      p.M *= dim[d];
    }
  }
  p.inner_reduced = nd > 0 && red[nd - 1];
  if (p.total == 0) {  // some dim is 0: outputs counted from the kept shape, nothing to fold
    p.M = kept.size();
    p.R = 0;
  }
  return p;
}

/// Input offset of output m (kept dims).
__device__ __forceinline__ int64_t kept_offset(const RPlan& p, int64_t m) {
  if (p.nk == 1) return m * p.kstride[0];
  int64_t off = 0;
  for (int d = p.nk - 1; d >= 0; --d) {
    const int64_t q = m / p.kdim[d];
    off += (m - q * p.kdim[d]) * p.kstride[d];
    m = q;
  }
  return off;
}

/// Input offset of the r-th element of an output's reduction (reduced dims).
__device__ __forceinline__ int64_t red_offset(const RPlan& p, int64_t r) {
  if (p.nr == 1) return r * p.rstride[0];
  int64_t off = 0;
  for (int d = p.nr - 1; d >= 0; --d) {
    const int64_t q = r / p.rdim[d];
    off += (r - q * p.rdim[d]) * p.rstride[d];
    r = q;
  }
  return off;
}

// A reducer R: typedef Acc; init(); step(acc, x, r) folds the r-th input of an output;
// merge(a, b) combines the folds of two consecutive runs (a before b). A writer W:
// operator()(m, acc) stores output m.

/// Sum accumulated in double (as the CPU's SimD SumReducer).
template <typename T>
struct SumRed {
  typedef double Acc;
  __device__ Acc init() const { return 0.0; }
  __device__ Acc step(Acc a, T x, int64_t) const { return a + (double)x; }
  __device__ Acc merge(Acc a, Acc b) const { return a + b; }
};

/// Max / min with MXNet's NaN propagation (simd.h MaxReducer / MinReducer): take x when it is
/// better or NaN; a NaN accumulator is never replaced.
template <typename T, bool kMax>
struct ExtRed {
  typedef T Acc;
  __device__ Acc init() const { return kMax ? -INFINITY : INFINITY; }
  __device__ Acc step(Acc a, T x, int64_t) const {
    const bool take = (kMax ? (x > a) : (x < a)) || (x != x);
    return take ? x : a;
  }
  __device__ Acc merge(Acc a, Acc b) const { return step(a, b, 0); }
};

/// out[m] (=|+=) (T)(acc * alpha / divisor).
template <typename T>
struct SumWrite {
  T* y;
  int req;
  double alpha, divisor;
  __device__ void operator()(int64_t m, double a) const { assign(y, m, req, (T)(a * alpha / divisor)); }
};

template <typename T>
struct PlainWrite {
  T* y;
  int req;
  __device__ void operator()(int64_t m, T a) const { assign(y, m, req, a); }
};

// Row reduction (innermost collapsed dim reduced): groups of G threads (G | blockDim.x) fold one
// (output, segment) unit each, striding over the segment (coalesced), then a shared-memory tree.
// x: [p.total]; partial: [S, p.M] when S > 1 (else the writer stores the result).
template <typename T, class Red, class W>
__global__ void reduce_rows_kernel(RPlan p, const T* x, Red r, W w, int G, int64_t S, int64_t seg,
                                   typename Red::Acc* partial) {
  typedef typename Red::Acc Acc;
  extern __shared__ __align__(16) unsigned char kiln_reduce_smem[];
  Acc* sh = reinterpret_cast<Acc*>(kiln_reduce_smem);
  const int groups = blockDim.x / G;
  const int lane = threadIdx.x % G, grp = threadIdx.x / G;
  const int64_t units = p.M * S;
  for (int64_t base = (int64_t)blockIdx.x * groups; base < units; base += (int64_t)gridDim.x * groups) {
    const int64_t u = base + grp;
    Acc acc = r.init();
    int64_t m = 0, s = 0;
    if (u < units) {
      m = u / S;
      s = u - m * S;
      const int64_t ob = kept_offset(p, m);
      const int64_t r0 = s * seg, r1 = min(p.R, r0 + seg);
      for (int64_t k = r0 + lane; k < r1; k += G) acc = r.step(acc, x[ob + red_offset(p, k)], k);
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int st = G / 2; st > 0; st >>= 1) {
      if (lane < st) sh[threadIdx.x] = r.merge(sh[threadIdx.x], sh[threadIdx.x + st]);
      __syncthreads();
    }
    if (lane == 0 && u < units) {
      if (S == 1) w(m, sh[threadIdx.x]);
      else partial[s * p.M + m] = sh[threadIdx.x];
    }
    __syncthreads();
  }
}

// Column reduction (innermost collapsed dim kept): one thread per output (consecutive outputs are
// consecutive in memory), folding segment blockIdx.y of its reduction serially.
// x: [p.total]; partial: [S, p.M] when S > 1.
template <typename T, class Red, class W>
__global__ void reduce_cols_kernel(RPlan p, const T* x, Red r, W w, int64_t S, int64_t seg,
                                   typename Red::Acc* partial) {
  typedef typename Red::Acc Acc;
  const int64_t s = blockIdx.y;
  KILN_GRID_STRIDE(m, p.M) {
    const int64_t ob = kept_offset(p, m);
    const int64_t r0 = s * seg, r1 = min(p.R, r0 + seg);
    Acc acc = r.init();
    for (int64_t k = r0; k < r1; ++k) acc = r.step(acc, x[ob + red_offset(p, k)], k);
    if (S == 1) w(m, acc);
    else partial[s * p.M + m] = acc;
  }
}

// Merges the S partials of each output in segment order. partial: [S, M].
template <class Red, class W>
__global__ void reduce_finish_kernel(int64_t M, int64_t S, const typename Red::Acc* partial, Red r, W w) {
  KILN_GRID_STRIDE(m, M) {
    typename Red::Acc a = partial[m];
    for (int64_t s = 1; s < S; ++s) a = r.merge(a, partial[s * M + m]);
    w(m, a);
  }
}

// Empty reductions: every output gets the fold of nothing.
template <class Red, class W>
__global__ void reduce_empty_kernel(int64_t M, Red r, W w) {
  KILN_GRID_STRIDE(m, M) { w(m, r.init()); }
}

/// Reduces x (p's input) into p.M outputs through the writer. The launch geometry (and so the
/// summation order) depends only on the shapes: results are bitwise reproducible.
template <typename T, class Red, class W>
void launch_reduce(const OpCtx& ctx, int device, const RPlan& p, const T* x, Red r, W w, const char* name) {
  typedef typename Red::Acc Acc;
  cudaStream_t st = stream_of(ctx);
  if (p.M <= 0) return;
  if (p.R == 0) {
    reduce_empty_kernel<<<grid_for(p.M), kBlock, 0, st>>>(p.M, r, w);
    KILN_CUDA_LAUNCH_CHECK(name);
    return;
  }
  if (p.inner_reduced) {
    const int G = p.R <= 32 ? 32 : p.R <= 64 ? 64 : p.R <= 128 ? 128 : 256;
    const int64_t groups = kBlock / G;
    int64_t S = 1;
    if (p.R > 8192 && p.M < 1024) S = std::min<int64_t>((p.R + 4095) / 4096, std::max<int64_t>(1, 2048 / p.M));
    const int64_t seg = (p.R + S - 1) / S;
    S = (p.R + seg - 1) / seg;
    const int64_t units = p.M * S;
    const unsigned blocks = (unsigned)std::min<int64_t>((units + groups - 1) / groups, 65535LL * 8);
    if (S == 1) {
      reduce_rows_kernel<T><<<blocks, kBlock, kBlock * sizeof(Acc), st>>>(p, x, r, w, G, S, seg, (Acc*)nullptr);
      KILN_CUDA_LAUNCH_CHECK(name);
    } else {
      DeviceScratch part(device, (size_t)(S * p.M) * sizeof(Acc));
      reduce_rows_kernel<T><<<blocks, kBlock, kBlock * sizeof(Acc), st>>>(p, x, r, w, G, S, seg, part.as<Acc>());
      KILN_CUDA_LAUNCH_CHECK(name);
      reduce_finish_kernel<<<grid_for(p.M), kBlock, 0, st>>>(p.M, S, part.as<Acc>(), r, w);
      KILN_CUDA_LAUNCH_CHECK(name);
    }
  } else {
    const int64_t mblocks = (p.M + kBlock - 1) / kBlock;
    int64_t S = 1;
    if (p.R > 64 && mblocks < 256)
      S = std::min<int64_t>({(p.R + 31) / 32, std::max<int64_t>(1, 1024 / mblocks), 65535});
    const int64_t seg = (p.R + S - 1) / S;
    S = (p.R + seg - 1) / seg;
    const dim3 grid(grid_for(p.M), (unsigned)S);
    if (S == 1) {
      reduce_cols_kernel<T><<<grid, kBlock, 0, st>>>(p, x, r, w, S, seg, (Acc*)nullptr);
      KILN_CUDA_LAUNCH_CHECK(name);
    } else {
      DeviceScratch part(device, (size_t)(S * p.M) * sizeof(Acc));
      reduce_cols_kernel<T><<<grid, kBlock, 0, st>>>(p, x, r, w, S, seg, part.as<Acc>());
      KILN_CUDA_LAUNCH_CHECK(name);
      reduce_finish_kernel<<<grid_for(p.M), kBlock, 0, st>>>(p.M, S, part.as<Acc>(), r, w);
      KILN_CUDA_LAUNCH_CHECK(name);
    }
  }
}

// ---- registration of the family's files ----------------------------------------------------------
void register_tensor_binary_gpu(OpRegistry& r);  // tensor_binary.cu
void register_tensor_unary_gpu(OpRegistry& r);   // tensor_unary.cu
void register_tensor_math_gpu(OpRegistry& r);    // tensor_math.cu
void register_tensor_reduce_gpu(OpRegistry& r);  // tensor_reduce.cu
void register_tensor_misc_gpu(OpRegistry& r);    // tensor_misc.cu
void register_tensor_creation_gpu(OpRegistry& r);  // tensor_creation.cu

}  // namespace tensor
}  // namespace cuda
}  // namespace kiln
