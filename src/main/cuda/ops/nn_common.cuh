// Internal helpers of the nn family's GPU files (ops/nn_*.cu, ops/pool_*.cu): the per-file
// registration entry points (called by register_nn_gpu only), host-side checks, device reductions.
#pragma once
#include <string>

#include "common/kernels.cuh"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace nn_gpu {

void register_softmax(OpRegistry& r);     // ops/nn_softmax.cu: softmax, log_softmax, SoftmaxActivation, SoftmaxOutput
void register_elemwise(OpRegistry& r);    // ops/nn_elemwise.cu: LeakyReLU, regression outputs, Dropout
void register_pooling(OpRegistry& r);     // ops/pool_pooling.cu: Pooling
void register_pad_crop_up(OpRegistry& r); // ops/pool_misc.cu: Pad, Crop, UpSampling
void register_image_pool(OpRegistry& r);  // ops/pool_image.cu: _contrib_BilinearResize2D, _contrib_AdaptiveAvgPooling2D, ROIPooling

/// Arity + every blob on the GPU + one float dtype for every input and output.
inline void prologue(const char* op, const std::vector<TBlob>& in, size_t nin_min, size_t nin_max,
                     const std::vector<OpReq>& req, const std::vector<TBlob>& out, size_t nout_min, size_t nout_max) {
  check_arity(op, in, nin_min, nin_max, out, req, nout_min, nout_max);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  const DType t = in[0].dtype;
  for (const auto* v : {&in, &out})
    for (const auto& b : *v)
      if (b.dtype != t)
        throw KilnError(std::string(op) + " (GPU): mixed dtypes " + dtype_name(t) + " and " + dtype_name(b.dtype));
}

inline void expect_size(const char* op, const char* what, const TBlob& b, int64_t n) {
  if (b.size() != n)
    throw KilnError(std::string(op) + " (GPU): " + what + " has shape " + b.shape.str() + ", expected " +
                    std::to_string(n) + " elements");
}

/// Zeroes a blob (all-zero bytes are 0.0 in float32/float64) unless req is kAddTo / kNullOp.
inline void zero_unless_add(const OpCtx& ctx, OpReq req, const TBlob& b) {
  if ((req == OpReq::kWriteTo || req == OpReq::kWriteInplace) && b.size() > 0)
    KILN_CUDA_CHECK(cudaMemsetAsync(b.ptr, 0, (size_t)b.size() * dtype_size(b.dtype), stream_of(ctx)));
}

template <typename T>
__device__ __forceinline__ T lowest_of();
template <>
__device__ __forceinline__ float lowest_of<float>() { return -3.402823466e+38f; }
template <>
__device__ __forceinline__ double lowest_of<double>() { return -1.7976931348623157e+308; }

__device__ __forceinline__ float k_erf(float x) { return erff(x); }
__device__ __forceinline__ double k_erf(double x) { return erf(x); }
__device__ __forceinline__ float k_cbrt(float x) { return cbrtf(x); }
__device__ __forceinline__ double k_cbrt(double x) { return cbrt(x); }

struct SumOp {
  template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {  // NaN in b is skipped as in the CPU's `x > m ? x : m`
  template <typename T> __device__ T operator()(T a, T b) const { return b > a ? b : a; }
};

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

/// Reduction over a block of blockDim.x (a multiple of 32, <= 1024) threads; every thread gets the
/// result. `smem` holds 32 values. Ends with a barrier, so the block may reuse smem right after.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T* smem) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  T r = smem[0];
  for (int w = 1; w < nwarps; ++w) r = op(r, smem[w]);
  __syncthreads();
  return r;
}

}  // namespace nn_gpu
}  // namespace cuda
}  // namespace kiln
