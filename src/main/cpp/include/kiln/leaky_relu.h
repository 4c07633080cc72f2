// LeakyReLU's attribute rules, one definition for its CPU kernels and gradient (ops/nn/leaky_relu.cc)
// and its GPU kernels (cuda/ops/nn_elemwise.cu).
#pragma once
#include <string>

#include "kiln/op.h"

namespace kiln {

/// True when the backward reads the forward output (else it reads the forward data): leaky/elu
/// with slope >= 0, selu and rrelu with bounds >= 0, where y > 0 exactly when x > 0.
inline bool lrelu_bwd_reads_output(const Attrs& a) {
  const std::string& t = a.s("act_type");
  return t == "selu" || ((t == "leaky" || t == "elu") && a.f("slope") >= 0) ||
         (t == "rrelu" && a.f("lower_bound") >= 0 && a.f("upper_bound") >= 0);
}

/// rrelu's slope at inference: (lower_bound + upper_bound) / 2 in float, as MXNet's kernel.
inline float rrelu_mean_slope(const Attrs& a) { return ((float)a.f("lower_bound") + (float)a.f("upper_bound")) / 2.0f; }

}  // namespace kiln
