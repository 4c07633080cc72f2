// The creation operators' shapes and values (MXNet 1.9.1 src/operator/tensor/init_op.h), one
// definition for the CPU kernels and inference (ops/index/creation.cc, ops/random/random.cc) and the
// GPU kernels (cuda/ops/tensor_creation.cu, cuda/ops/random.cu).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/int_convert.h"  // KILN_HOST_DEVICE
#include "kiln/op.h"

namespace kiln {

/// The most elements one creation op may describe: far above any allocation, far below int64 overflow.
constexpr double kMaxCreatedElements = 4.0e18;

/// MXNet's InitShape for the `shape` parameter of _zeros, _ones, _full, _zeros_without_dtype and
/// the _random_* samplers: an empty tuple leaves the output's shape to inference, a 0 or -1 dim is
/// unknown (filled in from the consumers). Other negative dims and element counts beyond int64
/// throw InferError.
inline void init_infer_shape(const std::string& op, const std::vector<int64_t>& t, std::vector<Shape>* out) {
  if (t.empty()) return;
  std::vector<int64_t> dims(t);
  double n = 1;
  for (auto& x : dims) {
    if (x < -1) throw InferError(false, 0, op + ": shape " + Shape(t).str() + " has a negative dimension");
    if (x == 0) x = -1;
    if (x > 0) n *= (double)x;
  }
  if (!(n < kMaxCreatedElements)) throw InferError(false, 0, op + ": shape " + Shape(t).str() + " has too many elements");
  assign_out(out, 0, Shape(dims));
}

/// _eye's output shape: (N, M), M <= 0 meaning N (as MXNet).
inline Shape eye_shape(const Attrs& a) {
  const int64_t n = a.i("N"), m = a.i("M") > 0 ? a.i("M") : a.i("N");
  if (!((double)n * (double)m < kMaxCreatedElements))
    throw InferError(false, 0, "_eye: N=" + std::to_string(n) + ", M=" + std::to_string(m) + " give too many elements");
  return Shape({n, m});
}

/// _eye's element (i, j): 1 on the k-th diagonal (j - i == k), 0 elsewhere.
KILN_HOST_DEVICE inline double eye_value(int64_t i, int64_t j, int64_t k) { return j - i == k ? 1.0 : 0.0; }

/// _linspace's spacing: (stop - start) / (num - 1) with the endpoint, / num without; 0 when that
/// count is not positive (num = 1 with the endpoint gives [start]). MXNet computes it in double.
inline double linspace_step(const Attrs& a) {
  const int64_t steps = a.b("endpoint") ? a.i("num") - 1 : a.i("num");
  return steps > 0 ? (a.f("stop") - a.f("start")) / (double)steps : 0.0;
}

/// _linspace's element i: start + step * i in double with the product rounded (no fused
/// multiply-add, on either processor, as MXNet 1.9.1's build: linspace(-1, 1, 64) ends at exactly 1,
/// so its int8 version too), then converted to the output type.
KILN_HOST_DEVICE inline double linspace_value(double start, double step, int64_t i) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(start, __dmul_rn(step, (double)i));
#else
  volatile double prod = step * (double)i;  // volatile: kept apart from the addition
  return start + prod;
#endif
}

}  // namespace kiln
