// Shared pieces of the optimizer update operators (ops/optimizer/*.cc): parameter declarations
// with MXNet's names, defaults and descriptions, the kernels' parameter reading and gradient
// preprocessing (GradPrep), MXNet's clip/sign helpers, write-request store policies, float16
// storage, the blocked loop that keeps kernels with square roots vectorized, and the OpDef of an
// update operator (update_op). The files that include it compile without FMA contraction.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/low_precision.h"
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
/// `head`, then wd, rescale_grad and clip_gradient (MXNet's order for most update operators),
/// then `tail`.
inline std::vector<ParamDef> grad_params(std::vector<ParamDef> head, const std::vector<ParamDef>& tail = {}) {
  head.push_back(wd_param());
  head.push_back(rescale_param());
  head.push_back(clip_param());
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
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

// ---- kernel parameters ---------------------------------------------------------------------------

/// A parameter that MXNet declares float32 (real_t), applied in the data's type: DType(float(value)).
template <typename T>
inline T f32_param(const Attrs& a, const char* name) {
  return simd::float_param<T>(a.f(name));
}

/// rescale_grad, wd and the gradient clip bound of an update kernel, with the gradient forms
/// the kernels share; clipped(x) is clip(x, bound) when clipping, else x.
template <typename T>
struct GradPrep {
  T rescale, wd, bound;
  bool clipping;

  /// MXNet's operators: float32 parameters (DType(float(param))); clipping when the bound is >= 0.
  static GradPrep mxnet(const Attrs& a, const char* clip_name = "clip_gradient") {
    const T c = f32_param<T>(a, clip_name);
    return {f32_param<T>(a, "rescale_grad"), f32_param<T>(a, "wd"), c, c >= T(0)};
  }
  /// Kiln's operators for MXNet's Python optimizers: double parameters applied as DType(value);
  /// clipping when clip_gradient >= 0 (as a double).
  static GradPrep python(const Attrs& a) {
    const double c = a.f("clip_gradient");
    return {static_cast<T>(a.f("rescale_grad")), static_cast<T>(a.f("wd")), static_cast<T>(c), c >= 0};
  }

  T clipped(T x) const { return clipping ? clip(x, bound) : x; }
  /// clip(rescale_grad * grad)
  T operator()(T g) const { return clipped(rescale * g); }
  /// clip(rescale_grad * grad + wd * weight): weight decay inside the clip
  T operator()(T g, T w) const { return clipped(rescale * g + wd * w); }
  /// a * G in the order of MXNet's SGD/Signum kernels: a * clip(rescale_grad * grad) when
  /// clipping, else (a * rescale_grad) * grad.
  T scaled(T a, T g) const { return clipping ? a * (*this)(g) : (a * rescale) * g; }
};

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

/// sqrt_blocks writing the output: `post(i, s0, s1)` returns the new value of element i, which
/// is stored into y (kernel output [n]) under req; the states are written whatever req.
template <typename T, int K, class Pre, class Post>
inline void sqrt_update(OpReq req, T* y, int64_t n, const Pre& pre, const Post& post) {
  with_store(req, [&](auto st) {
    sqrt_blocks<T, K>(n, pre, [=](int64_t i, T s0, T s1) { st(y, i, post(i, s0, s1)); });
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

// ---- registration --------------------------------------------------------------------------------

/// An update operator: inputs `inputs` (weight first), one output "output" that overwrites weight
/// (in-place pair weight -> output) unless !inplace, the inputs `mutated` updated in place
/// (mutate_inputs), every input shaped like the output, not differentiable, computed by `cpu`.
inline OpDef update_op(const std::string& name, const std::string& desc, std::vector<ParamDef> params,
                       std::vector<std::string> inputs, std::vector<int> mutated, Kernel cpu, bool inplace = true) {
  OpDef d;
  d.name = name;
  d.description = desc;
  d.params = std::move(params);
  d.input_names_ = std::move(inputs);
  d.output_names_ = {"output"};
  if (!mutated.empty()) d.mutate_inputs = [mutated](const Attrs&) { return mutated; };
  d.infer_shape = infer_same_shape;
  d.cpu = std::move(cpu);
  d.non_differentiable = true;
  if (inplace) d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}}; };
  return d;
}

// One registration function per file:

void register_momentum_ops(OpRegistry& reg);         // momentum.cc: nag_mom_update, signsgd_update, signum_update
void register_adaptive_ops(OpRegistry& reg);         // adaptive.cc: adam, rmsprop, rmspropalex, ftrl, ftml, lamb
void register_mixed_precision_ops(OpRegistry& reg);  // mixed_precision.cc: mp_sgd_update, mp_sgd_mom_update, mp_nag_mom_update,
                                                     // all_finite, multi_all_finite
void register_kiln_optimizer_ops(OpRegistry& reg);   // kiln_updates.cc: _kiln_adagrad/adadelta/adamax/nadam_update

}  // namespace optim
}  // namespace kiln
