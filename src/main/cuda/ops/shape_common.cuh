// Shared pieces of the shape family's GPU kernels (ops/shape_*.cu, ops/index_*.cu): dtype dispatch
// over every storage type the CPU index/shape ops accept (float16 as __half), element <-> double
// conversions, index clipping/wrapping, a generic strided gather, and the per-file registration
// functions that register_shape_gpu (shape_register.cu) calls. nvcc only.
#pragma once
#include <cuda_fp16.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/kernels.cuh"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace shape {

// ---- dtype dispatch ------------------------------------------------------------------------------

/// Calls f(T{}) for every storage type (float16 as __half), as index_ops::any_switch on the CPU.
template <typename F>
inline void any_switch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: f(float{}); break;
    case DType::kFloat64: f(double{}); break;
    case DType::kFloat16: f(__half{}); break;
    case DType::kUint8: f(uint8_t{}); break;
    case DType::kInt32: f(int32_t{}); break;
    case DType::kInt8: f(int8_t{}); break;
    case DType::kInt64: f(int64_t{}); break;
    default: throw KilnError(std::string("dtype ") + dtype_name(t) + " is not supported by this GPU kernel");
  }
}

/// Data movement: an unsigned type of the element's size for writes (any dtype), float/double for
/// kAddTo (which needs float32/float64, as on the CPU). `op` names the operator in errors.
template <typename F>
inline void move_switch(const char* op, DType t, OpReq req, F&& f) {
  if (req == OpReq::kAddTo) {
    if (t == DType::kFloat32) f(float{});
    else if (t == DType::kFloat64) f(double{});
    else throw KilnError(std::string(op) + ": accumulation (req add) needs float32/float64, got " + dtype_name(t));
    return;
  }
  switch (dtype_size(t)) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: throw KilnError(std::string(op) + ": unsupported dtype " + dtype_name(t));
  }
}

inline bool is_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat64; }

// ---- element conversions (device) ----------------------------------------------------------------

template <typename T>
__device__ __forceinline__ double to_d(T v) { return (double)v; }
template <>
__device__ __forceinline__ double to_d<__half>(__half v) { return (double)__half2float(v); }

template <typename T>
__device__ __forceinline__ T from_d(double v) { return (T)v; }
template <>
__device__ __forceinline__ __half from_d<__half>(double v) { return __double2half(v); }

/// Value of an index element as an integer (truncation toward zero); NaN and values outside int64
/// become INT64_MIN, as index_ops::index_value.
template <typename I>
__device__ __forceinline__ int64_t index_value(I v) {
  const double d = to_d(v);
  if (!(d > -9.2e18 && d < 9.2e18)) return INT64_MIN;
  return (int64_t)d;
}
template <>
__device__ __forceinline__ int64_t index_value<int64_t>(int64_t v) { return v; }
template <>
__device__ __forceinline__ int64_t index_value<int32_t>(int32_t v) { return v; }
template <>
__device__ __forceinline__ int64_t index_value<uint8_t>(uint8_t v) { return v; }
template <>
__device__ __forceinline__ int64_t index_value<int8_t>(int8_t v) { return v; }

/// a before b in ascending order, NaN after every number (NumPy's order; NaNs tie), for any element
/// type (float16 compared as float); the CPU's sort.cc orders the same way.
template <typename T>
__device__ __forceinline__ bool nan_last_less(T a, T b) { return b != b ? a == a : a < b; }
template <>
__device__ __forceinline__ bool nan_last_less<__half>(__half a, __half b) {
  return nan_last_less(__half2float(a), __half2float(b));
}

/// An integer as element type T ((T)v; float16 rounded to nearest).
template <typename T>
__device__ __forceinline__ T from_i(int64_t v) { return (T)v; }
template <>
__device__ __forceinline__ __half from_i<__half>(int64_t v) { return __double2half((double)v); }

/// y (req) v for any element type; kAddTo only reaches float/double (checked on the host).
template <typename T>
__device__ __forceinline__ void put(T* y, int64_t i, int req, T v) {
  if (req == kReqAdd) y[i] = from_d<T>(to_d(y[i]) + to_d(v));
  else y[i] = v;
}
template <>
__device__ __forceinline__ void put<float>(float* y, int64_t i, int req, float v) { assign(y, i, req, v); }
template <>
__device__ __forceinline__ void put<double>(double* y, int64_t i, int req, double v) { assign(y, i, req, v); }

// ---- generic strided gather ----------------------------------------------------------------------

constexpr int kMaxDims = 10;

/// y[i] (i row-major over dims[0..nd)) reads x[base + sum_d ((c_d / div_d) % mod_d) * stride_d]
/// with c_d the coordinate of i along d; mod_d == 0 means no modulo. Covers transpose (permuted
/// strides), slice (begin in base, step * stride), tile (mod = input dim) and repeat (div = repeats).
struct GatherMap {
  int nd = 0;
  int64_t base = 0;
  int64_t dims[kMaxDims];
  int64_t div[kMaxDims];
  int64_t mod[kMaxDims];
  int64_t stride[kMaxDims];
};

__device__ __forceinline__ int64_t gather_offset(const GatherMap& m, int64_t i) {
  int64_t off = m.base;
  for (int d = m.nd - 1; d >= 0; --d) {
    const int64_t c = i % m.dims[d];
    i /= m.dims[d];
    int64_t v = c / m.div[d];
    if (m.mod[d]) v %= m.mod[d];
    off += v * m.stride[d];
  }
  return off;
}

/// Row-major strides of `dims`.
inline std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = (int)dims.size() - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/// y: [n] (req) x[gather_offset(m, i)] for i < n, any dtype (kAddTo: float32/float64).
void launch_gather(const char* op, cudaStream_t s, const GatherMap& m, int64_t n, const TBlob& x, const TBlob& y,
                   OpReq req);

/// The gather that permutes x (viewed with dims `xdims`): y's axis j is x's axis perm[j]. Size-1
/// axes are dropped and adjacent ones merged; more than kMaxDims remaining axes throw. (transpose,
/// SwapAxis, depth_to_space, space_to_depth)
GatherMap permute_map(const char* op, const std::vector<int64_t>& xdims, const std::vector<int>& perm);

/// Throws unless every blob is on the GPU and the request count matches.
inline void prologue(const char* op, const std::vector<TBlob>& in, size_t nin_min, size_t nin_max,
                     const std::vector<OpReq>& req, const std::vector<TBlob>& out, size_t nout_min, size_t nout_max) {
  check_arity(op, in, nin_min, nin_max, out, req, nout_min, nout_max);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
}

inline int norm_axis(int64_t axis, int ndim) {
  if (axis < -ndim || axis >= ndim) return -1;
  return (int)(axis < 0 ? axis + ndim : axis);
}

/// Zeroes a whole output blob on `s` unless the request is kAddTo / kNullOp.
inline void zero_unless_add(cudaStream_t s, const TBlob& b, OpReq req) {
  if ((req == OpReq::kWriteTo || req == OpReq::kWriteInplace) && b.bytes() > 0)
    KILN_CUDA_CHECK(cudaMemsetAsync(b.ptr, 0, b.bytes(), s));
}

// ---- per-file registration -----------------------------------------------------------------------
void register_shape_layout_gpu(OpRegistry& r);  // shape_layout.cu
void register_shape_dot_gpu(OpRegistry& r);     // shape_dot.cu
void register_index_gather_gpu(OpRegistry& r);  // index_gather.cu
void register_index_sort_gpu(OpRegistry& r);    // index_sort.cu
void register_shape_seq_gpu(OpRegistry& r);     // shape_sequence.cu
void register_shape_rearrange_gpu(OpRegistry& r);  // shape_rearrange.cu
void register_shape_broadcast_gpu(OpRegistry& r);  // shape_broadcast.cu

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
