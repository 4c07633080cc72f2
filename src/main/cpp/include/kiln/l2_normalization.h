// L2Normalization's view of its data, one definition for the CPU kernels (ops/norm/l2_normalization.cc)
// and the GPU kernels (cuda/ops/norm_l2.cu): data is [outer, K, inner] and every (outer, inner)
// vector of K elements is divided by its norm sqrt(sum x^2 + eps).
//   instance  (N, ...):      outer = N,     K = the rest,      inner = 1    norm: (N,)
//   channel   (N, C, ...):   outer = N,     K = C,             inner = rest norm: (N, d2, ...)
//   spatial   (N, C, ...):   outer = N * C, K = d2 * ...,      inner = 1    norm: (N, C)
// channel and spatial need 3 or more dimensions (as MXNet).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/op.h"

namespace kiln {

struct L2View {
  int64_t outer = 1, K = 1, inner = 1;
};

/// The view of data `s` for `mode` ("instance", "channel", "spatial"); throws KilnError for a rank
/// the mode cannot take.
inline L2View l2_view(const std::string& mode, const Shape& s) {
  if (mode != "instance" && s.ndim() < 3)
    throw KilnError("L2Normalization: " + mode + " mode needs data of 3 or more dimensions, got " + s.str());
  if (s.ndim() < 1) throw KilnError("L2Normalization: data needs at least 1 dimension, got " + s.str());
  if (mode == "instance") return {s[0], s.prod(1, s.ndim()), 1};
  if (mode == "channel") return {s[0], s[1], s.prod(2, s.ndim())};
  return {s[0] * s[1], s.prod(2, s.ndim()), 1};
}

/// The shape of the hidden output `norm` for data `s`.
inline Shape l2_norm_shape(const std::string& mode, const Shape& s) {
  if (mode == "instance") return Shape{s[0]};
  if (mode == "spatial") return Shape{s[0], s[1]};
  std::vector<int64_t> d{s[0]};
  for (int i = 2; i < s.ndim(); ++i) d.push_back(s[i]);
  return Shape(d);
}

}  // namespace kiln
