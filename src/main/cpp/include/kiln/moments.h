// moments' reduction geometry, one definition for its CPU kernels (ops/tensor/moments.cc) and GPU
// kernels (cuda/ops/tensor_reduce.cu). MXNet src/operator/nn/moments-inl.h: mean and variance
// (population, mean((x - mean)^2)) over `axes` (None: every axis), keepdims as the reductions.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/op.h"

namespace kiln {

/// Which axes moments reduces; InferError for duplicates or axes out of range (MXNet's messages).
inline std::vector<bool> moments_axes(const Attrs& a, const Shape& x) {
  const int n = x.ndim();
  std::vector<bool> red((size_t)n, !a.has("axes") || a.t("axes").empty());
  if (!a.has("axes") || a.t("axes").empty()) return red;
  for (int64_t ax : a.t("axes")) {
    if (ax < -n || ax >= n)
      throw InferError(true, 0, "moments: axis " + std::to_string(ax) + " exceeds input dimensions " + x.str());
    const int i = (int)(ax < 0 ? ax + n : ax);
    if (red[(size_t)i]) throw InferError(true, 0, "moments: reduction axes have duplicates " + Shape(a.t("axes")).str());
    red[(size_t)i] = true;
  }
  return red;
}

/// The outputs' shape: x with 1 on the reduced axes (keepdims) or without them ((1,) when none is kept).
inline Shape moments_out_shape(const Attrs& a, const Shape& x) {
  const std::vector<bool> red = moments_axes(a, x);
  std::vector<int64_t> d;
  for (int i = 0; i < x.ndim(); ++i) {
    if (!red[(size_t)i]) d.push_back(x[i]);
    else if (a.b("keepdims")) d.push_back(1);
  }
  if (d.empty()) d.push_back(1);
  return Shape(d);
}

/// x's shape with 1 on the reduced axes (the outputs' elements in the same order).
inline Shape moments_kept(const Attrs& a, const Shape& x) {
  const std::vector<bool> red = moments_axes(a, x);
  Shape k = x;
  for (int i = 0; i < x.ndim(); ++i)
    if (red[(size_t)i]) k[i] = 1;
  return k;
}

/// Input element e's output element, dims walked right to left: o = sum_d c_d * ostride_d with
/// ostride_d = 0 on reduced dims. Up to kMomentsDims dims.
constexpr int kMomentsDims = 16;
struct MomentsMap {
  int nd = 0;
  int64_t dim[kMomentsDims];
  int64_t ostride[kMomentsDims];
  int64_t istride[kMomentsDims];
  int64_t outputs = 1, count = 1;  // outputs, and inputs per output (N)
};

inline MomentsMap moments_map(const Attrs& a, const Shape& x) {
  const Shape k = moments_kept(a, x);
  MomentsMap m;
  if (x.ndim() > kMomentsDims) throw KilnError("moments: at most 16 dimensions");
  m.nd = x.ndim();
  int64_t os = 1, is = 1;
  for (int d = m.nd - 1; d >= 0; --d) {
    m.dim[d] = x[d];
    m.istride[d] = is;
    is *= x[d];
    m.ostride[d] = k[d] == 1 && x[d] != 1 ? 0 : os;
    if (m.ostride[d] != 0) os *= x[d];
  }
  m.outputs = k.size();
  m.count = k.size() > 0 ? x.size() / k.size() : 0;
  return m;
}

}  // namespace kiln
