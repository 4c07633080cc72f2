// float16 / bfloat16 <-> float32 conversions for the promoting wrapper (kiln/low_precision.h),
// with the host conversions' rounding: to nearest even, NaN stays NaN, float16 overflow -> Inf;
// and the integer wrapper's integer <-> float64 conversions (wrap_to_int, as on the host).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "common/kernels.cuh"
#include "kiln/cuda_api.h"
#include "kiln/int_convert.h"
#include "kiln/low_precision.h"

namespace kiln {
namespace cuda {
namespace {

// x: [n] float16 or bfloat16 (L), y: [n] float32
template <typename L>
__global__ void widen_kernel(int64_t n, const L* x, float* y) {
  KILN_GRID_STRIDE(i, n) {
    if constexpr (std::is_same<L, __half>::value) y[i] = __half2float(x[i]);
    else y[i] = __bfloat162float(x[i]);
  }
}

// x: [n] float32, y: [n] float16 or bfloat16 (L); y = round(x) or round(float(y) + x)
template <typename L>
__global__ void narrow_kernel(int64_t n, const float* x, L* y, bool accumulate) {
  KILN_GRID_STRIDE(i, n) {
    if constexpr (std::is_same<L, __half>::value) {
      const float v = accumulate ? __fadd_rn(__half2float(y[i]), x[i]) : x[i];
      y[i] = __float2half_rn(v);
    } else {
      const float v = accumulate ? __fadd_rn(__bfloat162float(y[i]), x[i]) : x[i];
      y[i] = __float2bfloat16_rn(v);
    }
  }
}

// x: [n] integer I, y: [n] float64
template <typename I>
__global__ void int_widen_kernel(int64_t n, const I* x, double* y) {
  KILN_GRID_STRIDE(i, n) { y[i] = (double)x[i]; }
}

// x: [n] float64, y: [n] integer I; y = wrap(x) or y + wrap(x) (wrapping add)
template <typename I>
__global__ void int_narrow_kernel(int64_t n, const double* x, I* y, bool accumulate) {
  KILN_GRID_STRIDE(i, n) {
    const I v = wrap_to_int<I>(x[i]);
    y[i] = accumulate ? (I)((uint64_t)y[i] + (uint64_t)v) : v;
  }
}

}  // namespace

void int_to_double(int device, void* stream, const void* src, DType st, double* dst, int64_t n) {
  if (n == 0) return;
  DeviceGuard dg(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  int_switch(st, "int_to_double (GPU)", [&](auto z) {
    using I = decltype(z);
    int_widen_kernel<I><<<grid_for(n), kBlock, 0, s>>>(n, (const I*)src, dst);
  });
  KILN_CUDA_LAUNCH_CHECK("int_to_double");
}

void double_to_int(int device, void* stream, const double* src, void* dst, DType dt, int64_t n, bool accumulate) {
  if (n == 0) return;
  DeviceGuard dg(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  int_switch(dt, "double_to_int (GPU)", [&](auto z) {
    using I = decltype(z);
    int_narrow_kernel<I><<<grid_for(n), kBlock, 0, s>>>(n, src, (I*)dst, accumulate);
  });
  KILN_CUDA_LAUNCH_CHECK("double_to_int");
}

void low_precision_to_float(int device, void* stream, const void* src, DType st, float* dst, int64_t n) {
  if (n == 0) return;
  DeviceGuard dg(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (st == DType::kFloat16) widen_kernel<__half><<<grid_for(n), kBlock, 0, s>>>(n, (const __half*)src, dst);
  else if (st == DType::kBfloat16) widen_kernel<__nv_bfloat16><<<grid_for(n), kBlock, 0, s>>>(n, (const __nv_bfloat16*)src, dst);
  else throw KilnError(std::string("low_precision_to_float (GPU): ") + dtype_name(st) + " is not float16 or bfloat16");
  KILN_CUDA_LAUNCH_CHECK("low_precision_to_float");
}

void float_to_low_precision(int device, void* stream, const float* src, void* dst, DType dt, int64_t n, bool accumulate) {
  if (n == 0) return;
  DeviceGuard dg(device);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dt == DType::kFloat16)
    narrow_kernel<__half><<<grid_for(n), kBlock, 0, s>>>(n, src, (__half*)dst, accumulate);
  else if (dt == DType::kBfloat16)
    narrow_kernel<__nv_bfloat16><<<grid_for(n), kBlock, 0, s>>>(n, src, (__nv_bfloat16*)dst, accumulate);
  else throw KilnError(std::string("float_to_low_precision (GPU): ") + dtype_name(dt) + " is not float16 or bfloat16");
  KILN_CUDA_LAUNCH_CHECK("float_to_low_precision");
}

}  // namespace cuda
}  // namespace kiln
