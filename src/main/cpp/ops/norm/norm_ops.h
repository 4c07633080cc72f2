// The norm operator family (BatchNorm, LayerNorm, InstanceNorm, LRN): one register_* function per
// file, plus the view of a tensor around one axis that the kernels share. Parameter and backward
// helpers come from the nn family (nn_ops.h).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../nn/nn_ops.h"

namespace kiln {
namespace norm {

using nn::param_range;

void register_batch_norm(OpRegistry& r);     // batch_norm.cc
void register_layer_norm(OpRegistry& r);     // layer_norm.cc
void register_instance_norm(OpRegistry& r);  // instance_norm.cc
void register_group_norm(OpRegistry& r);     // instance_norm.cc
void register_l2_normalization(OpRegistry& r);  // l2_normalization.cc
void register_lrn(OpRegistry& r);            // lrn.cc

/// A tensor viewed as [outer, C, inner] around axis `ax` (already made non-negative).
struct AxisView {
  int64_t outer = 1, C = 1, inner = 1;
};
inline AxisView axis_view(const Shape& s, int ax) {
  AxisView v;
  v.outer = s.prod(0, ax);
  v.C = s[ax];
  v.inner = s.prod(ax + 1, s.ndim());
  return v;
}

/// Resolves a possibly negative axis against rank nd; -1 when out of range.
inline int resolve_axis(int64_t axis, int nd) {
  const int64_t a = axis < 0 ? axis + nd : axis;
  return (a < 0 || a >= nd) ? -1 : (int)a;
}

}  // namespace norm
}  // namespace kiln
