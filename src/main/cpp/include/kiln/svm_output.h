// SVMOutput's gradient, one definition for its CPU kernel (ops/nn/svm_output.cc) and GPU kernel
// (cuda/ops/nn_elemwise.cu). MXNet src/operator/svm_output-inl.h: data viewed as [N, C], k the
// sample's label truncated to an integer (a label outside [0, C) marks no class as the target):
//   L1 (use_linear): target -(margin > x) * c, others (margin > -x) * c
//   L2:              target -c * (margin > x ? 2 (margin - x) : 0), others -c * (margin > -x ? -2 (margin + x) : 0)
// with c = regularization_coefficient, times the executor's loss scale: the gradients of
// c * max(0, margin - x) (target) and c * max(0, margin + x) (others), squared for L2.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define KILN_SVM_HD __host__ __device__
#else
#define KILN_SVM_HD
#endif

namespace kiln {

/// The gradient of element (sample, class) with value x; is_target: class == the sample's label.
template <typename T>
KILN_SVM_HD inline T svm_grad(T x, bool is_target, T margin, T coef, bool linear) {
  if (linear) return is_target ? -T(margin > x ? 1 : 0) * coef : T(margin > -x ? 1 : 0) * coef;
  if (is_target) return -coef * (margin > x ? T(2) * (margin - x) : T(0));
  return -coef * (margin > -x ? T(-2) * (margin + x) : T(0));
}

/// The label's class (truncation toward zero, MXNet's static_cast<int>), -1 for NaN or beyond int range.
template <typename T>
KILN_SVM_HD inline int64_t svm_class(T label) {
  const double d = (double)label;
  if (!(d > -2147483648.0 && d < 2147483648.0)) return -1;
  return (int64_t)d;
}

}  // namespace kiln
