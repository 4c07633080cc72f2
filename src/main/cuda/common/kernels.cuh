// Device-side helpers for the op kernels (nvcc only): launch geometry, grid-stride loops,
// write requests, and float/double math overloads.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

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

}  // namespace cuda
}  // namespace kiln
