// Helpers shared by the ops/index family: parameter declarations, axis normalisation, dispatch
// over every MXNet dtype (float16 stored as IEEE binary16 via _Float16) and zero-gradient rules.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace index_ops {

/// IEEE binary16 storage of float16 arrays; conversions from float/double round to nearest even.
using half = _Float16;
static_assert(sizeof(half) == 2, "float16 storage must be 2 bytes");

/// Normalizes a possibly negative axis against `ndim`, or returns -1 when out of [-ndim, ndim).
inline int norm_axis(int64_t axis, int ndim) {
  if (axis < -ndim || axis >= ndim) return -1;
  return (int)(axis < 0 ? axis + ndim : axis);
}

inline bool is_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat64; }

/// Calls f(T{}) for every storage type MXNet 1.9.1 has (float16 included).
template <typename F>
inline void any_switch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: f(float{}); break;
    case DType::kFloat64: f(double{}); break;
    case DType::kFloat16: f(half{}); break;
    case DType::kUint8: f(uint8_t{}); break;
    case DType::kInt32: f(int32_t{}); break;
    case DType::kInt8: f(int8_t{}); break;
    case DType::kInt64: f(int64_t{}); break;
    default: throw KilnError(std::string("dtype ") + dtype_name(t) + " is not supported by this kernel");
  }
}

/// Value of an index array element (any dtype) as an integer (truncation toward zero, MXNet's
/// static_cast); NaN and values outside int64 become INT64_MIN (out of every range).
template <typename I>
inline int64_t index_value(I v) {
  if constexpr (std::is_integral<I>::value) {
    return (int64_t)v;
  } else {
    const double d = (double)v;
    if (!(d > -9.2e18 && d < 9.2e18)) return INT64_MIN;
    return (int64_t)d;
  }
}

/// Gradient rule of MXNet's MakeZeroGradNodes: every input gets zeros_like.
inline std::vector<NodeEntry> zero_grads(const NodePtr& fwd, const std::vector<NodeEntry>&) {
  std::vector<NodeEntry> g;
  for (size_t i = 0; i < fwd->inputs.size(); ++i)
    g.push_back(zeros_like(fwd->inputs[i], fwd->name + "_in" + std::to_string(i) + "_backward"));
  return g;
}

/// Fills n elements of a float32/float64 (or any) output with zero unless req is kAddTo/kNullOp.
inline void zero_unless_add(const TBlob& b, OpReq req) {
  if (req == OpReq::kWriteTo || req == OpReq::kWriteInplace) std::memset(b.ptr, 0, b.bytes());
}

void register_cast_ops(OpRegistry& r);
void register_slice_ops(OpRegistry& r);
void register_take_ops(OpRegistry& r);
void register_reorder_ops(OpRegistry& r);
void register_sort_ops(OpRegistry& r);
void register_creation_ops(OpRegistry& r);  // creation.cc: _ones, _full, _zeros_without_dtype, _eye, _linspace
void register_gather_nd_ops(OpRegistry& r);  // gather_nd.cc: gather_nd, scatter_nd
void register_ravel_ops(OpRegistry& r);      // ravel.cc: ravel_multi_index, unravel_index
void register_diag_ops(OpRegistry& r);       // diag.cc: diag
void register_cumsum_ops(OpRegistry& r);     // cumsum.cc: _np_cumsum (cumsum)
void register_khatri_rao_ops(OpRegistry& r); // khatri_rao.cc: khatri_rao

}  // namespace index_ops
}  // namespace kiln
