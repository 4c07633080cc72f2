// Shared pieces of the optimizer update operators (ops/optimizer/*.cc): parameter declarations
// with MXNet's names, defaults and descriptions, MXNet's clip/sign helpers, write-request store
// policies, float16 storage, and the blocked loop that keeps kernels with square roots
// vectorized.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"

namespace kiln {
namespace optim {

using InplacePairs = std::vector<std::pair<int, int>>;

/// IEEE binary16 storage of float16 arrays (conversions round to nearest even, F16C).
using half = _Float16;
static_assert(sizeof(half) == 2, "float16 storage must be 2 bytes");

// ---- parameters --------------------------------------------------------------------------------

inline ParamDef fparam(const std::string& name, const std::string& def, const std::string& desc, double lo = -1e300,
                       double hi = 1e300) {
  ParamDef p;
  p.name = name;
  p.type = ParamType::kFloat;
  p.default_value = def;
  p.description = desc;
  p.lower = lo;
  p.upper = hi;
  return p;
}

inline ParamDef iparam(const std::string& name, const std::string& def, const std::string& desc) {
  ParamDef p = fparam(name, def, desc);
  p.type = ParamType::kInt;
  return p;
}

inline ParamDef bparam(const std::string& name, const std::string& def, const std::string& desc) {
  ParamDef p = fparam(name, def, desc);
  p.type = ParamType::kBool;
  return p;
}

// MXNet's descriptions of the parameters every optimizer shares.
inline ParamDef lr_param() { return fparam("lr", "", "Learning rate"); }
inline ParamDef wd_param(const std::string& def = "0") {
  return fparam("wd", def,
                "Weight decay augments the objective function with a regularization term that penalizes large "
                "weights. The penalty scales with the square of the magnitude of each weight.");
}
inline ParamDef rescale_param() { return fparam("rescale_grad", "1", "Rescale gradient to grad = rescale_grad*grad."); }
inline ParamDef clip_param(const std::string& name = "clip_gradient") {
  return fparam(name, "-1",
                "Clip gradient to the range of [-clip_gradient, clip_gradient] If clip_gradient <= 0, gradient "
                "clipping is turned off. grad = max(min(grad, clip_gradient), -clip_gradient).");
}
inline ParamDef momentum_param() { return fparam("momentum", "0", "The decay rate of momentum estimates at each epoch."); }
inline ParamDef lazy_param(const std::string& desc = "If true, lazy updates are applied if gradient's stype is row_sparse.") {
  return bparam("lazy_update", "True", desc);
}
inline ParamDef clip_weights_param() {
  return fparam("clip_weights", "-1",
                "Clip weights to the range of [-clip_weights, clip_weights] If clip_weights <= 0, weight clipping is "
                "turned off. weights = max(min(weights, clip_weights), -clip_weights).");
}

// ---- MXNet's scalar helpers ----------------------------------------------------------------------

/// mshadow_op::clip: x clipped to [-c, c] (NaN passes through).
template <typename T>
inline T clip(T x, T c) {
  return x > c ? c : (x < -c ? -c : x);
}

/// mshadow_op::sign and the `(x > 0) - (x < 0)` of the sign optimizers: 1, -1 or 0 (NaN -> 0).
template <typename T>
inline T sign(T x) {
  return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
}

// ---- write requests ------------------------------------------------------------------------------

/// Store policies for the weight output: y[i] = v (kWriteTo / kWriteInplace), y[i] += v (kAddTo)
/// or nothing (kNullOp). The states of an update are always written; only the output honours req.
struct StoreSet {
  template <typename Y, typename V>
  void operator()(Y* y, int64_t i, V v) const { y[i] = static_cast<Y>(v); }
};
struct StoreAdd {
  template <typename Y, typename V>
  void operator()(Y* y, int64_t i, V v) const { y[i] = static_cast<Y>(y[i] + v); }
};
struct StoreNull {
  template <typename Y, typename V>
  void operator()(Y*, int64_t, V) const {}
};

/// Calls f(store) with the store policy for req (so the request is resolved outside the loops).
template <class F>
inline void with_store(OpReq req, F&& f) {
  switch (req) {
    case OpReq::kNullOp: f(StoreNull{}); break;
    case OpReq::kAddTo: f(StoreAdd{}); break;
    default: f(StoreSet{}); break;
  }
}

// ---- loops ---------------------------------------------------------------------------------------

constexpr int64_t kSqrtBlock = 256;

/// Elementwise update with K (1 or 2) square roots per element, vectorized despite std::sqrt
/// (which GCC does not vectorize under -fmath-errno): each thread's chunk runs in blocks of
/// kSqrtBlock elements; pass 1 `pre(i, r0, r1)` updates what it can and writes the radicands to
/// *r0 (and *r1), simd::sqrt_range takes their roots, pass 2 `post(i, s0, s1)` finishes element i
/// with the roots. Both passes touch index i only, so an output may alias an input exactly.
/// Parallel above kOmpMinWork elements. pre/post must not throw.
template <typename T, int K, class Pre, class Post>
inline void sqrt_blocks(int64_t n, const Pre& pre, const Post& post) {
  static_assert(K == 1 || K == 2, "one or two radicands per element");
  simd::parallel_chunks(n, [&](int64_t b, int64_t e) {
    alignas(64) T buf0[kSqrtBlock];  // [kSqrtBlock] radicands, then roots
    alignas(64) T buf1[kSqrtBlock];  // [kSqrtBlock] second radicands (K == 2)
    T* r0 = buf0;
    T* r1 = buf1;
    for (int64_t s = b; s < e; s += kSqrtBlock) {
      const int64_t m = std::min<int64_t>(kSqrtBlock, e - s);
      simd::run(0, m, [=](int64_t j) { pre(s + j, r0 + j, r1 + j); });
      simd::sqrt_range(r0, r0, m, false);
      if (K == 2) simd::sqrt_range(r1, r1, m, false);
      simd::run(0, m, [=](int64_t j) { post(s + j, r0[j], r1[j]); });
    }
  });
}

// ---- inference -----------------------------------------------------------------------------------

/// MXNet's MP_InferType<n_in, 1, total>: inputs [0, n_in) and the output share one type (any
/// float type, float16 included); inputs [n_in, total) are float32 (master weights, states).
inline InferTypeFn mp_infer_type(int n_in) {
  return [n_in](const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
    for (int i = n_in; i < (int)in->size(); ++i) {
      if ((*in)[i] != DType::kUnknown && (*in)[i] != DType::kFloat32)
        throw InferError(true, i, std::string("Type inconsistent, Provided = ") + dtype_name((*in)[i]) +
                                      ", inferred type = float32");
      (*in)[i] = DType::kFloat32;
    }
    std::vector<DType> head(in->begin(), in->begin() + n_in);
    infer_same_type(a, &head, out);
    std::copy(head.begin(), head.end(), in->begin());
  };
}

/// Calls f(Y{}) with Y = half, float or double for the weight type of a mixed-precision op.
template <typename F>
inline void mp_switch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat16: f(half{}); break;
    case DType::kFloat32: f(float{}); break;
    case DType::kFloat64: f(double{}); break;
    default:
      throw KilnError(std::string("dtype ") + dtype_name(t) + " is not supported by this kernel (float16, float32, float64)");
  }
}

// ---- registration (one function per file) --------------------------------------------------------

void register_momentum_ops(OpRegistry& reg);         // momentum.cc: nag_mom_update, signsgd_update, signum_update
void register_adaptive_ops(OpRegistry& reg);         // adaptive.cc: adam, rmsprop, rmspropalex, ftrl, ftml, lamb
void register_mixed_precision_ops(OpRegistry& reg);  // mixed_precision.cc: mp_sgd_update, mp_sgd_mom_update, mp_nag_mom_update
void register_kiln_optimizer_ops(OpRegistry& reg);   // kiln_updates.cc: _kiln_adagrad/adadelta/adamax/nadam_update

}  // namespace optim
}  // namespace kiln
