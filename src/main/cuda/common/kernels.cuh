// Device-side helpers for the op kernels (nvcc only): launch geometry, grid-stride loops,
// write requests, and float/double math overloads.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "common/cuda_check.cuh"

namespace kiln {
namespace cuda {

constexpr int kBlock = 256;

/// Blocks for n elements with a grid-stride loop: enough to fill the GPU, never more than needed.
inline unsigned grid_for(int64_t n) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
  return (unsigned)std::max<int64_t>(1, std::min<int64_t>(blocks, 65535LL * 8));
}

#define KILN_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/// Request as an int the kernels can branch on (uniform across the grid, so no divergence).
enum : int { kReqNull = 0, kReqWrite = 1, kReqInplace = 2, kReqAdd = 3 };
inline int req_int(OpReq r) { return (int)r; }

template <typename T>
__device__ __forceinline__ void assign(T* out, int64_t i, int req, T v) {
  if (req == kReqAdd) out[i] += v;
  else out[i] = v;  // kNullOp never reaches a kernel
}

/// Uniform double in [0, 1) from (seed, i): the splitmix64 finalizer of a Weyl sequence. The random
/// kernels (Dropout's and the RNN's masks, rrelu's slopes) draw one seed per call from the
/// executor's generator and this per element, so a pass is reproducible for a seed.
__device__ __forceinline__ double k_uniform(uint64_t seed, int64_t i) {
  uint64_t z = seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

// float / double overloads of the math functions the kernels use
__device__ __forceinline__ float k_exp(float x) { return expf(x); }
__device__ __forceinline__ double k_exp(double x) { return exp(x); }
__device__ __forceinline__ float k_log(float x) { return logf(x); }
__device__ __forceinline__ double k_log(double x) { return log(x); }
__device__ __forceinline__ float k_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double k_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float k_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double k_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float k_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double k_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float k_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double k_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float k_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double k_abs(double x) { return fabs(x); }

// float16 / bfloat16 storage (L) with float math: widen, round to nearest even
__device__ __forceinline__ float lp_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float lp_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename L> __device__ __forceinline__ L lp_round(float v);
template <> __device__ __forceinline__ __half lp_round<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 lp_round<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
/// out[i] = round(v) (or round(float(out[i]) + v) under kReqAdd) for a low-precision out.
template <typename L>
__device__ __forceinline__ void lp_assign(L* out, int64_t i, int req, float v) {
  out[i] = lp_round<L>(req == kReqAdd ? __fadd_rn(lp_float(out[i]), v) : v);
}

/// Whether S is a float16 / bfloat16 storage type.
template <typename S>
constexpr bool kLowPrecision = std::is_same<S, __half>::value || std::is_same<S, __nv_bfloat16>::value;

/// A stored value in compute type C: float16 / bfloat16 widened exactly through float, others converted.
template <typename C, typename S>
__device__ __forceinline__ C widen_to(S v) {
  if constexpr (kLowPrecision<S>) return (C)lp_float(v);
  else return (C)v;
}

/// out[i] (=|+=) v for storage S, the write of a kernel that computes in C: float16 / bfloat16
/// through lp_assign((float)v) (each output rounded once from float, as the CPU's promoted kernels),
/// others assign((S)v).
template <typename S, typename C>
__device__ __forceinline__ void store_from(S* out, int64_t i, int req, C v) {
  if constexpr (kLowPrecision<S>) lp_assign(out, i, req, (float)v);
  else assign(out, i, req, (S)v);
}

/// Runs the body with L bound to __half or __nv_bfloat16 for a low-precision dtype.
#define KILN_LOW_PRECISION_SWITCH(dtype, L, ...)                                                      \
  do {                                                                                              \
    if ((dtype) == ::kiln::DType::kFloat16) { typedef __half L; __VA_ARGS__; }                       \
    else if ((dtype) == ::kiln::DType::kBfloat16) { typedef __nv_bfloat16 L; __VA_ARGS__; }          \
    else throw ::kiln::KilnError(std::string("dtype ") + ::kiln::dtype_name(dtype) + " is not float16 or bfloat16"); \
  } while (0)

}  // namespace cuda
}  // namespace kiln
