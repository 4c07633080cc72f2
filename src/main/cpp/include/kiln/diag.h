// diag's geometry, one definition for its CPU kernels (ops/index/diag.cc) and GPU kernels
// (cuda/ops/index_gather.cu). MXNet src/operator/tensor/diag_op-inl.h:
//   1-D data [n]: out [n + |k|, n + |k|], zero except the k-th diagonal, which holds data;
//   data of rank >= 2: the k-th diagonal of the (axis1, axis2) planes, out = data's shape without
//   axis1 and axis2, then the diagonal's length min(rows - max(-k, 0), cols - max(k, 0)) (0: an empty
//   diagonal; an error when negative: "Diagonal does not exist", as MXNet).
// Either way one array is "the matrix side" M and the other "the diagonal side" D, and diagonal
// element (o, i) of D ([outer, len]) sits at M[base[o] + (i + r0) * s1 + (i + c0) * s2].
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/op.h"

namespace kiln {

struct DiagGeom {
  std::vector<int64_t> base;  // [outer] offsets in M of the kept positions, in D's order
  int64_t len = 0;            // diagonal length
  int64_t s1 = 0, s2 = 0;     // M's strides along axis1 / axis2
  int64_t r0 = 0, c0 = 0;     // the diagonal's first (row, column)
  int64_t outer() const { return (int64_t)base.size(); }
};

/// The output shape of diag for `x`; InferError for a rank-0 input, bad or equal axes.
inline Shape diag_out_shape(const Attrs& a, const Shape& x) {
  const int64_t k = a.i("k");
  const int nd = x.ndim();
  if (nd == 0) throw InferError(true, 0, "diag: the input must have at least one dimension");
  if (nd == 1) {
    const int64_t n = x[0] + (k < 0 ? -k : k);
    return Shape({n, n});
  }
  int64_t x1 = a.i("axis1"), x2 = a.i("axis2");
  if (x1 < -nd || x1 >= nd || x2 < -nd || x2 >= nd)
    throw InferError(true, 0, "diag: axis1=" + std::to_string(x1) + " / axis2=" + std::to_string(x2) +
                                  " out of range for input shape " + x.str());
  if (x1 < 0) x1 += nd;
  if (x2 < 0) x2 += nd;
  if (x1 == x2) throw InferError(true, 0, "diag: axis1 and axis2 cannot refer to the same axis " + std::to_string(x1));
  const int64_t h = x[(int)x1] - (k < 0 ? -k : 0), w = x[(int)x2] - (k > 0 ? k : 0);
  if (std::min(h, w) < 0)  // k just past a corner (length 0) gives an empty diagonal, as MXNet
    throw InferError(true, 0, "diag: Diagonal does not exist: k=" + std::to_string(k) + " for the planes (" +
                                  std::to_string(x[(int)x1]) + ", " + std::to_string(x[(int)x2]) + ") of " + x.str());
  std::vector<int64_t> od;
  for (int i = 0; i < nd; ++i)
    if (i != x1 && i != x2) od.push_back(x[i]);
  od.push_back(std::min(h, w));
  return Shape(od);
}

/// The geometry of diag over data shape `x` (already checked by diag_out_shape).
inline DiagGeom diag_geom(const Attrs& a, const Shape& x) {
  const int64_t k = a.i("k");
  DiagGeom g;
  g.r0 = k < 0 ? -k : 0;
  g.c0 = k > 0 ? k : 0;
  const int nd = x.ndim();
  if (nd == 1) {  // M is the output [N, N]
    const int64_t n = x[0] + g.r0 + g.c0;
    g.base = {0};
    g.len = x[0];
    g.s1 = n;
    g.s2 = 1;
    return g;
  }
  int x1 = (int)a.i("axis1"), x2 = (int)a.i("axis2");
  if (x1 < 0) x1 += nd;
  if (x2 < 0) x2 += nd;
  std::vector<int64_t> stride((size_t)nd, 1);
  for (int i = nd - 2; i >= 0; --i) stride[i] = stride[i + 1] * x[i + 1];
  g.s1 = stride[x1];
  g.s2 = stride[x2];
  g.len = std::max<int64_t>(0, std::min(x[x1] - g.r0, x[x2] - g.c0));
  std::vector<int> kept;
  for (int i = 0; i < nd; ++i)
    if (i != x1 && i != x2) kept.push_back(i);
  int64_t outer = 1;
  for (int i : kept) outer *= x[i];
  g.base.assign((size_t)outer, 0);
  for (int64_t o = 0; o < outer; ++o) {  // row-major over the kept axes
    int64_t rem = o, off = 0;
    for (int j = (int)kept.size() - 1; j >= 0; --j) {
      off += (rem % x[kept[j]]) * stride[kept[j]];
      rem /= x[kept[j]];
    }
    g.base[(size_t)o] = off;
  }
  return g;
}

}  // namespace kiln
