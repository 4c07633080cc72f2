// Shared pieces of the optimizer family's GPU kernels (ops/optimizer_*.cu), the counterpart of
// src/main/cpp/ops/optimizer/optimizer_common.h: parameter reading (host), gradient preprocessing
// (GradPrep), MXNet's clip/sign, write-request store policies with float16 storage, one generic
// elementwise update kernel, the launch prologue (arity, devices, sizes, dtypes), and the
// registration functions of the family's files.
//
// Rounding: the CPU kernels compile with fp-contract=off (no fused multiply-adds) and take IEEE
// square roots, so every update rounds as MXNet's CPU build does. nvcc contracts a * b + c into an
// FMA by default; the kernels here therefore compute through Nc<T>, whose operators are the
// IEEE round-to-nearest intrinsics (__fmul_rn etc., never contracted), and nc_sqrt (__fsqrt_rn /
// __dsqrt_rn). With the scalars computed on the host exactly as the CPU kernels compute them, the
// GPU results are bit-identical to the CPU's.
#pragma once
#include <cuda_fp16.h>

#include <string>
#include <utility>
#include <vector>

#include "common/kernels.cuh"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace optim {

// ---- non-contracted arithmetic --------------------------------------------------------------------

__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

/// A float or double whose + - * / are separately rounded IEEE operations (never fused), so a
/// formula written with Nc values rounds exactly as the CPU kernels' fp-contract=off code.
/// Converts implicitly from T (T(1) - b works); .v is the value.
template <typename T>
struct Nc {
  T v;
  __host__ __device__ __forceinline__ Nc(T x) : v(x) {}  // NOLINT: implicit on purpose
  friend __device__ __forceinline__ Nc operator+(Nc a, Nc b) { return Nc(add_rn(a.v, b.v)); }
  friend __device__ __forceinline__ Nc operator-(Nc a, Nc b) { return Nc(sub_rn(a.v, b.v)); }
  friend __device__ __forceinline__ Nc operator*(Nc a, Nc b) { return Nc(mul_rn(a.v, b.v)); }
  friend __device__ __forceinline__ Nc operator/(Nc a, Nc b) { return Nc(div_rn(a.v, b.v)); }
  friend __device__ __forceinline__ Nc operator-(Nc a) { return Nc(-a.v); }
  friend __device__ __forceinline__ bool operator>(Nc a, Nc b) { return a.v > b.v; }
  friend __device__ __forceinline__ bool operator<(Nc a, Nc b) { return a.v < b.v; }
  friend __device__ __forceinline__ bool operator>=(Nc a, Nc b) { return a.v >= b.v; }
  friend __device__ __forceinline__ bool operator==(Nc a, Nc b) { return a.v == b.v; }
};

template <typename T>
__device__ __forceinline__ Nc<T> nc_sqrt(Nc<T> x) { return Nc<T>(sqrt_rn(x.v)); }
template <typename T>
__device__ __forceinline__ Nc<T> nc_abs(Nc<T> x) { return Nc<T>(k_abs(x.v)); }

/// mshadow_op::clip: x clipped to [-c, c] (NaN passes through).
template <typename T>
__device__ __forceinline__ Nc<T> clip(Nc<T> x, Nc<T> c) {
  return x > c ? c : (x < -c ? -c : x);
}

/// 1, -1 or 0 (NaN -> 0), as the CPU's optim::sign.
template <typename T>
__device__ __forceinline__ Nc<T> sign(Nc<T> x) {
  return x > Nc<T>(T(0)) ? Nc<T>(T(1)) : (x < Nc<T>(T(0)) ? Nc<T>(T(-1)) : Nc<T>(T(0)));
}

// ---- parameters (host) ----------------------------------------------------------------------------

/// A parameter that MXNet declares float32 (real_t), applied in the data's type: DType(float(value)).
template <typename T>
inline T f32_param(const Attrs& a, const char* name) {
  return static_cast<T>(static_cast<float>(a.f(name)));
}

/// rescale_grad, wd and the gradient clip bound of an update kernel (as the CPU's GradPrep):
/// clipped(x) is clip(x, bound) when clipping, else x. Passed to kernels by value.
template <typename T>
struct GradPrep {
  T rescale, wd, bound;
  bool clipping;

  /// MXNet's operators: float32 parameters (DType(float(param))); clipping when the bound is >= 0.
  static GradPrep mxnet(const Attrs& a, const char* clip_name = "clip_gradient") {
    const T c = f32_param<T>(a, clip_name);
    return {f32_param<T>(a, "rescale_grad"), f32_param<T>(a, "wd"), c, c >= T(0)};
  }
  /// Kiln's operators for MXNet's Python optimizers: DType(double value); clipping when
  /// clip_gradient >= 0 (as a double).
  static GradPrep python(const Attrs& a) {
    const double c = a.f("clip_gradient");
    return {static_cast<T>(a.f("rescale_grad")), static_cast<T>(a.f("wd")), static_cast<T>(c), c >= 0};
  }

  __device__ __forceinline__ Nc<T> clipped(Nc<T> x) const { return clipping ? clip(x, Nc<T>(bound)) : x; }
  /// clip(rescale_grad * grad)
  __device__ __forceinline__ Nc<T> operator()(Nc<T> g) const { return clipped(Nc<T>(rescale) * g); }
  /// clip(rescale_grad * grad + wd * weight)
  __device__ __forceinline__ Nc<T> operator()(Nc<T> g, Nc<T> w) const {
    return clipped(Nc<T>(rescale) * g + Nc<T>(wd) * w);
  }
  /// a * clip(rescale_grad * grad) when clipping, else (a * rescale_grad) * grad (MXNet's SGD/Signum order).
  __device__ __forceinline__ Nc<T> scaled(Nc<T> a, Nc<T> g) const {
    return clipping ? a * (*this)(g) : (a * Nc<T>(rescale)) * g;
  }
};

// ---- float16 storage -------------------------------------------------------------------------------

__device__ __forceinline__ float widen(__half x) { return __half2float(x); }
__device__ __forceinline__ float widen(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ double widen(double x) { return x; }

/// v converted to the storage type Y (float16: round to nearest even, as the CPU's _Float16 cast).
template <typename Y>
struct Narrow {
  template <typename V>
  __device__ __forceinline__ static Y to(V v) { return static_cast<Y>(v); }
};
template <>
struct Narrow<__half> {
  __device__ __forceinline__ static __half to(float v) { return __float2half_rn(v); }
};

// ---- write requests ----------------------------------------------------------------------------

/// Store policies of the output: y[i] = v (kWriteTo / kWriteInplace), y[i] = y[i] + v (kAddTo, added
/// in the wider of the two types, as the CPU's StoreAdd) or nothing (kNullOp: the states of an update
/// are written whatever the request).
struct StoreSet {
  template <typename Y, typename V>
  __device__ __forceinline__ void operator()(Y* y, int64_t i, V v) const { y[i] = Narrow<Y>::to(v); }
};
struct StoreAdd {
  template <typename Y, typename V>
  __device__ __forceinline__ void operator()(Y* y, int64_t i, V v) const {
    using A = decltype(widen(Y()) + V());
    y[i] = Narrow<Y>::to(add_rn(static_cast<A>(widen(y[i])), static_cast<A>(v)));
  }
};
struct StoreNull {
  template <typename Y, typename V>
  __device__ __forceinline__ void operator()(Y*, int64_t, V) const {}
};

// ---- the update kernel ---------------------------------------------------------------------------

/// Every element i of [0, n): op(i, store). The op functor holds its [n] pointers and scalars; it
/// reads element i of every array before it writes it, so the output may alias weight.
template <class Op, class Store>
__global__ void update_kernel(int64_t n, Op op, Store st) {
  KILN_GRID_STRIDE(i, n) { op(i, st); }
}

/// Launches update_kernel over n elements with the store policy of `req` (resolved at compile time).
/// kNullOp still runs (the states are updated) unless `states` is false.
template <class Op>
void launch_update(const OpCtx& ctx, const char* name, int64_t n, OpReq req, const Op& op, bool states = true) {
  if (n <= 0) return;
  cudaStream_t s = stream_of(ctx);
  switch (req) {
    case OpReq::kNullOp:
      if (!states) return;
      update_kernel<<<grid_for(n), kBlock, 0, s>>>(n, op, StoreNull{});
      break;
    case OpReq::kAddTo: update_kernel<<<grid_for(n), kBlock, 0, s>>>(n, op, StoreAdd{}); break;
    default: update_kernel<<<grid_for(n), kBlock, 0, s>>>(n, op, StoreSet{}); break;
  }
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- host-side checks ----------------------------------------------------------------------------

/// Arity (exactly nin inputs, one output), every blob on the GPU, every input (but those in
/// `scalar_inputs`, which hold one element) with the output's element count.
inline void check_update(const char* op, const std::vector<TBlob>& in, size_t nin, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out, std::vector<size_t> scalar_inputs = {}) {
  check_arity(op, in, nin, nin, out, req, 1, 1);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  const int64_t n = out[0].size();
  for (size_t i = 0; i < in.size(); ++i) {
    bool scalar = false;
    for (size_t s : scalar_inputs) scalar = scalar || s == i;
    const int64_t want = scalar ? 1 : n;
    if (in[i].size() != want)
      throw KilnError(std::string(op) + " (GPU): input " + std::to_string(i) + " has shape " + in[i].shape.str() +
                      (scalar ? ", expected (1,)" : ", output has " + out[0].shape.str()));
  }
}

/// Inputs [first, last) must have dtype t.
inline void check_dtypes(const char* op, const std::vector<TBlob>& in, size_t first, size_t last, DType t,
                         const char* whose) {
  for (size_t i = first; i < last && i < in.size(); ++i)
    if (in[i].dtype != t)
      throw KilnError(std::string(op) + " (GPU): input " + std::to_string(i) + " is " + dtype_name(in[i].dtype) +
                      ", expected " + dtype_name(t) + " (" + whose + ")");
}

/// The single-dtype update ops: every input has the output's dtype.
inline void check_same_dtype(const char* op, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  check_dtypes(op, in, 0, in.size(), out[0].dtype, "the output's dtype");
}

/// Calls f(Y{}) with Y = __half, float or double for the weight type of a mixed-precision op
/// (the CPU's mp_switch, same message).
template <typename F>
inline void mp_switch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat16: f(__half{}); break;
    case DType::kFloat32: f(float{}); break;
    case DType::kFloat64: f(double{}); break;
    default:
      throw KilnError(std::string("dtype ") + dtype_name(t) + " is not supported by this kernel (float16, float32, float64)");
  }
}

// ---- the family's files ----------------------------------------------------------------------------

void register_momentum_gpu(OpRegistry& r);         // optimizer_momentum.cu: nag_mom, signsgd, signum
void register_adaptive_gpu(OpRegistry& r);         // optimizer_adaptive.cu: adam, rmsprop(alex), ftrl, ftml, lamb
void register_mixed_precision_gpu(OpRegistry& r);  // optimizer_mp.cu: mp_sgd, mp_sgd_mom, mp_nag_mom
void register_kiln_updates_gpu(OpRegistry& r);     // optimizer_kiln.cu: _kiln_adagrad/adadelta/adamax/nadam

}  // namespace optim
}  // namespace cuda
}  // namespace kiln
