// Unary elementwise operators: input `data`, output of the same shape, in place data -> output.
//   negative   y = -x                      grad: negative(ograd)
//   exp        y = e^x                     grad: elemwise_mul(ograd, y)     (MXNet: _mul, UseOut)
//   log        y = ln x                    grad: _backward_log(ograd, x)    = ograd / x
//   sqrt       y = sqrt(x)                 grad: _backward_sqrt(ograd, y)   = ograd * 0.5 / y
//   square     y = x^2                     grad: _backward_square(ograd, x) = ograd * 2x
//   abs        y = |x|                     grad: _backward_abs(ograd, x)    = ograd * sign(x)
//   clip       y = min(max(x, a_min), a_max)
//              grad: _backward_clip(ograd, x) = ograd where a_min <= x <= a_max, else 0
//              (MXNet's clip_grad zeroes only x > a_max and x < a_min: the bounds are inclusive).
// float exp/log use the vectorized polynomials of kiln/simd.h (exp_range / log_range, max error
// ~1 ulp); double uses libm (scalar loop), which keeps the float64 gradient checks at full precision.
// The MXNet math ops of kiln/elemwise_math.h (relu, sigmoid, tanh, softsign, the trigonometric
// and hyperbolic functions and their inverses, degrees, radians, reciprocal, rsqrt, cbrt, rcbrt,
// log10, log2, log1p, expm1, erf, erfinv, gamma, gammaln, hard_sigmoid; zero gradient: floor,
// ceil, round, rint, fix, trunc, sign, logical_not) are registered here from their functors
// (add_math): y = F.fwd(x); _backward_<op>(ograd, x or y) = ograd * F.deriv(x or y).
// Shapes: x, y, ograd, grad: [n].
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/elemwise_math.h"
#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"

namespace kiln {
namespace elemwise {

// Shared helpers (elemwise_ops.cc).
bool all_zero(const std::vector<NodeEntry>& ograds);
std::vector<NodeEntry> zero_grads(const NodePtr& fwd);
NodeEntry grad_op(const std::string& op, const NodePtr& fwd, const std::map<std::string, std::string>& attrs,
                  const std::vector<NodeEntry>& inputs);
std::vector<NodeEntry> backward_or_zeros(const std::string& op, const NodePtr& fwd, const std::vector<NodeEntry>& ograds,
                                         const std::vector<NodeEntry>& inputs);

namespace {

using InplacePairs = std::vector<std::pair<int, int>>;

// ------------------------------------------------------------------------------------------
// Functors: fwd(x); grad(g, v) with v the forward input or output, as listed above.
// ------------------------------------------------------------------------------------------

struct NegativeOp { template <typename T> static T fwd(T x) { return -x; } };
struct ExpOp { template <typename T> static T fwd(T x) { return simd::exp(x); } };
struct LogOp {
  template <typename T> static T fwd(T x) { return simd::log(x); }
  template <typename T> static T grad(T g, T x) { return g / x; }
};
struct SqrtOp {  // forward through simd::sqrt_range
  template <typename T> static T grad(T g, T y) { return g * (T(0.5) / y); }
};
struct SquareOp {
  template <typename T> static T fwd(T x) { return x * x; }
  template <typename T> static T grad(T g, T x) { return g * (T(2) * x); }
};
struct AbsOp {
  template <typename T> static T fwd(T x) { return std::abs(x); }
  // MXNet: g * sign(x), sign(0) = sign(NaN) = 0. Written as selects so that it vectorizes on AVX2
  // (same bits for finite g; a non-finite g gives +-0 where MXNet gives NaN).
  template <typename T> static T grad(T g, T x) {
    return x > T(0) ? g : (x < T(0) ? -g : std::copysign(T(0), g));
  }
};

// y = Op(x). in: data [n]; out: [n] (may alias data).
template <class Op>
void unary_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return Op::fwd(x[i]); });
  });
}

// exp / log: float through simd::exp_range / log_range (vectorized on both ISAs), double through
// libm. in: data [n]; out: [n] (may alias data).
template <class Op>
void explog_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  if (out[0].dtype != DType::kFloat32) {
    unary_forward<Op>(ctx, attrs, in, req, out);
    return;
  }
  if (req[0] == OpReq::kNullOp) return;
  const bool add = req[0] == OpReq::kAddTo;
  const float* x = in[0].dptr<float>();  // [n]
  float* y = out[0].dptr<float>();       // [n]
  simd::parallel_chunks(out[0].size(), [=](int64_t b, int64_t e) {
    if (std::is_same<Op, ExpOp>::value) simd::exp_range(x + b, y + b, e - b, add);
    else simd::log_range(x + b, y + b, e - b, add);
  });
}

// y = sqrt(x) with the intrinsic leaf, chunked over threads. in: data [n]; out: [n] (may alias).
void sqrt_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const bool add = req[0] == OpReq::kAddTo;
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::parallel_chunks(out[0].size(), [=](int64_t b, int64_t e) { simd::sqrt_range(x + b, y + b, e - b, add); });
  });
}

// _backward_<op>: in: ograd [n], v [n] (forward input, or output for sqrt); out: data grad [n]
// (may alias ograd or v).
template <class Op>
void unary_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [n]
    const T* v = in[1].dptr<T>();  // [n]
    T* dx = out[0].dptr<T>();      // [n]
    simd::map(out[0].size(), req[0], dx, [=](int64_t i) { return Op::grad(g[i], v[i]); });
  });
}

// clip: MXNet's ClipParam holds float (real_t) bounds, converted to DType.
void clip_forward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T lo = simd::float_param<T>(attrs.f("a_min")), hi = simd::float_param<T>(attrs.f("a_max"));
    const T* x = in[0].dptr<T>();  // [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) {
      const T v = x[i];
      return v > hi ? hi : (v < lo ? lo : v);  // NaN passes through
    });
  });
}

// _backward_clip: in: ograd [n], x [n]; out: data grad [n]. Gradient passes where
// a_min <= x <= a_max (and for NaN x), as MXNet's clip_grad.
void clip_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T lo = simd::float_param<T>(attrs.f("a_min")), hi = simd::float_param<T>(attrs.f("a_max"));
    const T* g = in[0].dptr<T>();  // ograd [n]
    const T* x = in[1].dptr<T>();  // [n]
    T* dx = out[0].dptr<T>();      // [n]
    simd::map(out[0].size(), req[0], dx, [=](int64_t i) {
      const T v = x[i];
      return (v > hi || v < lo) ? T(0) : g[i];
    });
  });
}

// y = F.fwd(x) for a kiln/elemwise_math.h functor. in: data [n]; out: [n] (may alias data).
template <class F>
void math_forward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const F f = F::from(attrs);
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return f.fwd(x[i]); });
  });
}

// _backward_<op>: dx = g * F.deriv(v). in: ograd [n], v [n] (forward input or output, F::kFrom);
// out: data grad [n] (may alias ograd or v).
template <class F>
void math_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const F f = F::from(attrs);
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [n]
    const T* v = in[1].dptr<T>();  // [n]
    T* dx = out[0].dptr<T>();      // [n]
    simd::map(out[0].size(), req[0], dx, [=](int64_t i) { return g[i] * f.deriv(v[i]); });
  });
}

// ------------------------------------------------------------------------------------------
// Registration
// ------------------------------------------------------------------------------------------

OpDef unary_def(const std::string& name, const std::string& desc) {
  OpDef d;
  d.name = name;
  d.description = desc;
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = infer_same_shape;
  d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}}; };
  d.integers_via_float64 = true;  // integer arrays as MXNet's (kiln/low_precision.h)
  d.mxnet_unnamed_inputs = true;
  return d;
}

OpDef unary_backward_def(const std::string& name, const std::string& second_input) {
  OpDef d;
  d.name = name;
  d.description = "Backward of " + name.substr(std::string("_backward_").size()) + ".";
  d.input_names_ = {"ograd", second_input};
  d.output_names_ = {"data_grad"};
  d.is_backward = true;
  d.non_differentiable = true;
  d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}, {1, 0}}; };
  return d;
}

NodeEntry output_of(const NodePtr& fwd) {
  NodeEntry e;
  e.node = fwd;
  e.index = 0;
  return e;
}

GradFn use_in(const std::string& bw) {
  return [bw](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    return backward_or_zeros(bw, fwd, og, {og[0], fwd->inputs[0]});
  };
}
GradFn use_out(const std::string& bw) {
  return [bw](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    return backward_or_zeros(bw, fwd, og, {og[0], output_of(fwd)});
  };
}

std::vector<ParamDef> clip_params() {
  ParamDef lo;
  lo.name = "a_min";
  lo.type = ParamType::kFloat;
  lo.default_value = "";
  lo.description = "Minimum value";
  ParamDef hi = lo;
  hi.name = "a_max";
  hi.description = "Maximum value";
  return {lo, hi};
}

std::vector<ParamDef> hard_sigmoid_params() {
  ParamDef alpha;
  alpha.name = "alpha";
  alpha.type = ParamType::kFloat;
  alpha.default_value = "0.2";
  alpha.description = "Slope of hard sigmoid";
  ParamDef beta = alpha;
  beta.name = "beta";
  beta.default_value = "0.5";
  beta.description = "Bias of hard sigmoid.";
  return {alpha, beta};
}

/// Registers `name` (y = F.fwd(x)) and, unless its gradient is zero, `_backward_<name>`.
template <class F>
void add_math(OpRegistry& reg, const std::string& name, const std::string& desc,
              const std::vector<ParamDef>& params = {}) {
  OpDef d = unary_def(name, desc);
  d.params = params;
  d.cpu = math_forward<F>;
  if constexpr (F::kFrom == math::From::kNone) {
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>&) { return zero_grads(fwd); };
    reg.add(std::move(d));
  } else {
    const std::string bw = "_backward_" + name;
    const bool out = F::kFrom == math::From::kOutput;
    d.gradient = out ? use_out(bw) : use_in(bw);
    reg.add(std::move(d));
    OpDef b = unary_backward_def(bw, out ? "output" : "data");
    b.params = params;
    b.cpu = math_backward<F>;
    reg.add(std::move(b));
  }
}

/// A straight-through estimator (MXNet contrib/stes_op.cc): y = F.fwd(x), gradient the output
/// gradient unchanged.
template <class F>
void add_ste(OpRegistry& reg, const std::string& name, const std::string& desc) {
  OpDef d = unary_def(name, desc);
  d.cpu = math_forward<F>;
  d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    if (all_zero(og)) return zero_grads(fwd);
    return std::vector<NodeEntry>{og[0]};
  };
  reg.add(std::move(d));
}

/// The MXNet math ops of kiln/elemwise_math.h.
void register_unary_math(OpRegistry& reg) {
  using namespace math;
  add_math<Relu>(reg, "relu", "Rectified linear unit, element-wise: y = max(x, 0); NaN passes through.");
  add_math<Sigmoid>(reg, "sigmoid", "Logistic sigmoid, element-wise: y = 1 / (1 + exp(-x)).");
  add_math<Tanh>(reg, "tanh", "Hyperbolic tangent, element-wise.");
  add_math<Softsign>(reg, "softsign", "Softsign, element-wise: y = x / (1 + |x|).");
  add_math<Sin>(reg, "sin", "Sine, element-wise (radians).");
  add_math<Cos>(reg, "cos", "Cosine, element-wise (radians).");
  add_math<Tan>(reg, "tan", "Tangent, element-wise (radians).");
  add_math<Arcsin>(reg, "arcsin", "Inverse sine, element-wise, in [-pi/2, pi/2].");
  add_math<Arccos>(reg, "arccos", "Inverse cosine, element-wise, in [0, pi].");
  add_math<Arctan>(reg, "arctan", "Inverse tangent, element-wise, in (-pi/2, pi/2).");
  add_math<Sinh>(reg, "sinh", "Hyperbolic sine, element-wise.");
  add_math<Cosh>(reg, "cosh", "Hyperbolic cosine, element-wise.");
  add_math<Arcsinh>(reg, "arcsinh", "Inverse hyperbolic sine, element-wise.");
  add_math<Arccosh>(reg, "arccosh", "Inverse hyperbolic cosine, element-wise.");
  add_math<Arctanh>(reg, "arctanh", "Inverse hyperbolic tangent, element-wise.");
  add_math<Degrees>(reg, "degrees", "Radians to degrees, element-wise: y = x * 180 / pi.");
  add_math<Radians>(reg, "radians", "Degrees to radians, element-wise: y = x * pi / 180.");
  add_math<Reciprocal>(reg, "reciprocal", "Reciprocal, element-wise: y = 1 / x.");
  add_math<Rsqrt>(reg, "rsqrt", "Reciprocal square root, element-wise: y = 1 / sqrt(x).");
  add_math<Cbrt>(reg, "cbrt", "Cube root, element-wise.");
  add_math<Rcbrt>(reg, "rcbrt", "Reciprocal cube root, element-wise: y = 1 / cbrt(x).");
  add_math<Log10>(reg, "log10", "Base-10 logarithm, element-wise.");
  add_math<Log2>(reg, "log2", "Base-2 logarithm, element-wise.");
  add_math<Log1p>(reg, "log1p", "log(1 + x), element-wise, accurate for small x.");
  add_math<Expm1>(reg, "expm1", "exp(x) - 1, element-wise, accurate for small x.");
  add_math<Erf>(reg, "erf", "Gauss error function, element-wise.");
  add_math<Erfinv>(reg, "erfinv", "Inverse Gauss error function, element-wise: erfinv(+-1) = +-inf.");
  add_math<Gamma>(reg, "gamma", "Gamma function, element-wise.");
  add_math<Gammaln>(reg, "gammaln", "Natural logarithm of the absolute value of the gamma function, element-wise.");
  add_math<HardSigmoid>(reg, "hard_sigmoid", "Hard sigmoid, element-wise: y = max(0, min(1, alpha * x + beta)).",
                        hard_sigmoid_params());
  add_math<Floor>(reg, "floor", "Largest integer <= x, element-wise. Zero gradient.");
  add_math<Ceil>(reg, "ceil", "Smallest integer >= x, element-wise. Zero gradient.");
  add_math<Round>(reg, "round", "Nearest integer, halves away from zero, element-wise. Zero gradient.");
  add_math<Rint>(reg, "rint", "Nearest integer, element-wise, halves down (n.5 gives n, as MXNet). Zero gradient.");
  add_math<Trunc>(reg, "trunc", "Integer part (toward zero), element-wise. Zero gradient.");
  add_math<Trunc>(reg, "fix", "Nearest integer toward zero, element-wise (as trunc). Zero gradient.");
  add_math<Sign>(reg, "sign", "Sign, element-wise: -1, 0 or 1 (0 for NaN, as MXNet). Zero gradient.");
  add_ste<Round>(reg, "_contrib_round_ste",
                 "Straight-through estimator of round: y = round(x) (halves away from zero), gradient passed through.");
  add_ste<Sign>(reg, "_contrib_sign_ste", "Straight-through estimator of sign: y = sign(x), gradient passed through.");
  add_math<LogicalNot>(reg, "logical_not", "Logical not, element-wise: 1 where x == 0, else 0. Zero gradient.");
}

}  // namespace

void register_unary(OpRegistry& reg) {
  register_unary_math(reg);
  {
    OpDef d = unary_def("negative", "Numerical negative of the argument, element-wise: y = -x.");
    d.cpu = unary_forward<NegativeOp>;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      if (all_zero(og)) return zero_grads(fwd);
      return std::vector<NodeEntry>{grad_op("negative", fwd, {}, {og[0]})};
    };
    reg.add(std::move(d));
  }
  {
    OpDef d = unary_def("exp", "Exponential of the input, element-wise: y = e^x.");
    d.cpu = explog_forward<ExpOp>;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      if (all_zero(og)) return zero_grads(fwd);
      return std::vector<NodeEntry>{grad_op("elemwise_mul", fwd, {}, {og[0], output_of(fwd)})};
    };
    reg.add(std::move(d));
  }
  {
    OpDef d = unary_def("log", "Natural logarithm, element-wise: y = ln(x).");
    d.cpu = explog_forward<LogOp>;
    d.gradient = use_in("_backward_log");
    reg.add(std::move(d));
    OpDef b = unary_backward_def("_backward_log", "data");
    b.cpu = unary_backward<LogOp>;
    reg.add(std::move(b));
  }
  {
    OpDef d = unary_def("sqrt", "Square root, element-wise: y = sqrt(x).");
    d.cpu = sqrt_forward;
    d.gradient = use_out("_backward_sqrt");
    reg.add(std::move(d));
    OpDef b = unary_backward_def("_backward_sqrt", "output");
    b.cpu = unary_backward<SqrtOp>;
    reg.add(std::move(b));
  }
  {
    OpDef d = unary_def("square", "Square, element-wise: y = x^2.");
    d.cpu = unary_forward<SquareOp>;
    d.gradient = use_in("_backward_square");
    reg.add(std::move(d));
    OpDef b = unary_backward_def("_backward_square", "data");
    b.cpu = unary_backward<SquareOp>;
    reg.add(std::move(b));
  }
  {
    OpDef d = unary_def("abs", "Absolute value, element-wise: y = |x|.");
    d.cpu = unary_forward<AbsOp>;
    d.gradient = use_in("_backward_abs");
    reg.add(std::move(d));
    OpDef b = unary_backward_def("_backward_abs", "data");
    b.cpu = unary_backward<AbsOp>;
    reg.add(std::move(b));
  }
  {
    OpDef d = unary_def("clip",
                        "Clips (limits) the values in an array: y = a_max if x > a_max, a_min if x < a_min, else x. "
                        "The gradient passes where a_min <= x <= a_max.");
    d.params = clip_params();
    d.cpu = clip_forward;
    d.gradient = use_in("_backward_clip");
    reg.add(std::move(d));
    OpDef b = unary_backward_def("_backward_clip", "data");
    b.params = clip_params();
    b.cpu = clip_backward;
    reg.add(std::move(b));
  }
}

}  // namespace elemwise
}  // namespace kiln
