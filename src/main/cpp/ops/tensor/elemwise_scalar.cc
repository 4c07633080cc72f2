// Array-with-scalar operators (MXNet elemwise_binary_scalar_op*): input `data`, parameter
// `scalar`, output of data's shape, in place data -> output.
//   _plus_scalar (_PlusScalar)        y = x + s        grad: ograd passed through
//   _minus_scalar (_MinusScalar)      y = x - s        grad: ograd passed through
//   _rminus_scalar (_RMinusScalar)    y = s - x        grad: negative(ograd)
//   _mul_scalar (_MulScalar)          y = x * s        grad: _mul_scalar(ograd, s)
//   _div_scalar (_DivScalar)          y = x / s        grad: _div_scalar(ograd, s)
//   _rdiv_scalar (_RDivScalar)        y = s / x        grad: _backward_rdiv_scalar(ograd, x)
//   _maximum_scalar (_MaximumScalar)  y = max(x, s)    grad: _backward_maximum_scalar(ograd, x)
//   _minimum_scalar (_MinimumScalar)  y = min(x, s)    grad: _backward_minimum_scalar(ograd, x)
//   _power_scalar (_PowerScalar)      y = x ^ s        grad: _backward_power_scalar(ograd, x)
//   _rpower_scalar (_RPowerScalar)    y = s ^ x        grad: _backward_rpower_scalar(ograd, y)
//   _mod_scalar (_ModScalar)          y = x mod s      grad: ograd passed through
//   _rmod_scalar (_RModScalar)        y = s mod x      grad: _backward_rmod_scalar(ograd, x)
//   _hypot_scalar (_HypotScalar)      y = hypot(x, s)  grad: _backward_hypot_scalar(ograd, x)
//   smooth_l1                         sigma = s        grad: _backward_smooth_l1(ograd, x)
//   _equal_scalar (_EqualScalar), _not_equal_scalar, _greater_scalar, _greater_equal_scalar,
//   _lesser_scalar, _lesser_equal_scalar, _logical_and_scalar, _logical_or_scalar,
//   _logical_xor_scalar: 1 or 0 in the data's type, zero gradient.
// mod, hypot, smooth_l1 and the comparisons are kiln/elemwise_math.h's functors.
// The scalar is a double (MXNet parses it with stod) applied as DType(scalar).
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
// Functors: fwd(x, s) and, for the ops with a _backward_ op, grad(g, v, s) where v is the forward
// input (or the forward output for _rpower_scalar).
// ------------------------------------------------------------------------------------------

struct PlusS { template <typename T> static T fwd(T x, T s) { return x + s; } };
struct MinusS { template <typename T> static T fwd(T x, T s) { return x - s; } };
struct RMinusS { template <typename T> static T fwd(T x, T s) { return s - x; } };
struct MulS { template <typename T> static T fwd(T x, T s) { return x * s; } };
struct DivS { template <typename T> static T fwd(T x, T s) { return x / s; } };
struct LhsS { template <typename T> static T fwd(T x, T) { return x; } };  // _contrib_gradientmultiplier

// d(s/x)/dx = -s / x^2
struct RDivS {
  template <typename T> static T fwd(T x, T s) { return s / x; }
  template <typename T> static T grad(T g, T x, T s) { return g * (-s / (x * x)); }
};
// MXNet: g * (x >= s). Written as a select (vectorizes on AVX2; copysign keeps the sign of g * 0,
// a non-finite g gives +-0 where MXNet gives NaN).
struct MaxS {
  template <typename T> static T fwd(T x, T s) { return (x > s || x != x) ? x : s; }  // NaN stays NaN (MXNet)
  template <typename T> static T grad(T g, T x, T s) { return x >= s ? g : std::copysign(T(0), g); }
};
// MXNet: g * (x <= s).
struct MinS {
  template <typename T> static T fwd(T x, T s) { return (x < s || x != x) ? x : s; }  // NaN stays NaN (MXNet)
  template <typename T> static T grad(T g, T x, T s) { return x <= s ? g : std::copysign(T(0), g); }
};
// d(x^s)/dx = x^(s-1) * s
struct PowS {
  template <typename T> static T fwd(T x, T s) { return std::pow(x, s); }
  template <typename T> static T grad(T g, T x, T s) { return g * (std::pow(x, s - T(1)) * s); }
};
// y = s^x, dy/dx = y * log(s): grad(g, y, log_s) with log(s) computed once per call.
struct RPowS {
  template <typename T> static T fwd(T x, T s) { return std::pow(s, x); }
  template <typename T> static T grad(T g, T y, T log_s) { return g * (log_s * y); }
};

// d(s mod x)/dx = -floor(s / x)
struct RModS {
  template <typename T> static T fwd(T x, T s) { return math::Mod::fwd(s, x); }
  template <typename T> static T grad(T g, T x, T s) { return math::Mod::rgrad(g, s, x); }
};
struct HypotS {
  template <typename T> static T fwd(T x, T s) { return math::Hypot::fwd(x, s); }
  template <typename T> static T grad(T g, T x, T s) { return math::Hypot::lgrad(g, x, s); }
};
struct SmoothL1S {
  template <typename T> static T fwd(T x, T s) { return math::SmoothL1{double(s)}.fwd(x); }
  template <typename T> static T grad(T g, T x, T s) { return g * math::SmoothL1{double(s)}.deriv(x); }
};

// y = Op(x, s). in: data [n]; out: [n] (may alias data).
template <class Op>
void scalar_forward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T s = (T)attrs.f("scalar");
    const T* x = in[0].dptr<T>();  // [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return Op::fwd(x[i], s); });
  });
}

/// _contrib_div_sqrt_dim: y = x / T(sqrt(D)), D = x.shape[-1] (MXNet's DivSqrtDimForward_: the
/// divisor converted to the data's type first, so integer data divides by the truncated root).
void div_sqrt_dim_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                          const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [rows, D]
  const TBlob& y = out[0];  // [rows, D]
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  KILN_CHECK(x.shape.ndim() >= 1, "_contrib_div_sqrt_dim needs an input with at least one dimension");
  const double root = std::sqrt((double)x.shape[x.shape.ndim() - 1]);
  const int64_t n = y.size();
  auto run = [&](auto z) {
    using T = decltype(z);
    const T d = (T)root;
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    if constexpr (std::is_floating_point<T>::value) {
      simd::map(n, req[0], yp, [=](int64_t i) { return xp[i] / d; });
    } else {
      if (req[0] == OpReq::kAddTo) throw KilnError("_contrib_div_sqrt_dim: accumulation needs float32/float64");
      for (int64_t i = 0; i < n; ++i) yp[i] = (T)(xp[i] / d);
    }
  };
  switch (y.dtype) {
    case DType::kFloat32: run(float{}); break;
    case DType::kFloat64: run(double{}); break;
    case DType::kInt32: run(int32_t{}); break;
    case DType::kInt64: run(int64_t{}); break;
    case DType::kInt8: run(int8_t{}); break;
    case DType::kUint8: run(uint8_t{}); break;
    default: throw KilnError(std::string("_contrib_div_sqrt_dim: dtype ") + dtype_name(y.dtype) + " is not supported");
  }
}

// x^s: s = 2 and s = 1 take exact vectorized paths (pow(x, 2) == x*x, pow(x, 1) == x for every x,
// NaN included); other exponents call libm pow element by element.
void power_scalar_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                          const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const double sc = attrs.f("scalar");
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [n]
    T* y = out[0].dptr<T>();       // [n]
    const int64_t n = out[0].size();
    if ((T)sc == T(2)) simd::map(n, req[0], y, [=](int64_t i) { return x[i] * x[i]; });
    else if ((T)sc == T(1)) simd::map(n, req[0], y, [=](int64_t i) { return x[i]; });
    else scalar_forward<PowS>(ctx, attrs, in, req, out);
  });
}

// _backward_<op>_scalar: in: ograd [n], x [n]; out: data grad [n] (may alias ograd or x).
template <class Op>
void scalar_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T s = (T)attrs.f("scalar");
    const T* g = in[0].dptr<T>();  // ograd [n]
    const T* x = in[1].dptr<T>();  // forward input [n]
    T* dx = out[0].dptr<T>();      // [n]
    const int64_t n = out[0].size();
    if constexpr (std::is_same<Op, PowS>::value) {
      if (s == T(2)) {  // exact vectorized path: 2 * x^1
        simd::map(n, req[0], dx, [=](int64_t i) { return g[i] * (x[i] * T(2)); });
        return;
      }
    }
    simd::map(n, req[0], dx, [=](int64_t i) { return Op::grad(g[i], x[i], s); });
  });
}

// _backward_rpower_scalar: in: ograd [n], y = s^x [n] (forward output); out: data grad [n].
void rpower_scalar_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in,
                            const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T log_s = std::log((T)attrs.f("scalar"));
    const T* g = in[0].dptr<T>();  // ograd [n]
    const T* y = in[1].dptr<T>();  // forward output [n]
    T* dx = out[0].dptr<T>();      // [n]
    simd::map(out[0].size(), req[0], dx, [=](int64_t i) { return RPowS::grad(g[i], y[i], log_s); });
  });
}

// ------------------------------------------------------------------------------------------
// Registration
// ------------------------------------------------------------------------------------------

std::vector<ParamDef> scalar_params() {
  ParamDef s;
  s.name = "scalar";
  s.type = ParamType::kFloat;
  s.default_value = "1";  // MXNet 1.9's NumpyBinaryScalarParam: scalar defaults to 1 (checked against 1.9.1)
  s.description = "Scalar input value";
  ParamDef is_int;
  is_int.name = "is_int";
  is_int.type = ParamType::kBool;
  is_int.default_value = "True";
  is_int.description =
      "Accepted for symbol files written by newer MXNet versions (whether the scalar is an integer); ignored: "
      "the scalar is always applied as the data's dtype.";
  return {s, is_int};
}

OpDef scalar_def(const std::string& name, const std::string& alias, const std::string& desc) {
  OpDef d;
  d.name = name;
  if (!alias.empty()) d.aliases = {alias};
  d.description = desc;
  d.params = scalar_params();
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = infer_same_shape;
  d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}}; };
  // integer arrays as MXNet's integer arithmetic, with the scalar converted as DType(scalar)
  d.integers_via_float64 = true;
  d.integer_params = {"scalar"};
  d.mxnet_unnamed_inputs = true;
  return d;
}

// _backward_X_scalar: inputs (ograd, x or y), one output; MXNET_OPERATOR_REGISTER_BINARY in-place.
OpDef scalar_backward_def(const std::string& name, const std::string& second_input) {
  OpDef d;
  d.name = name;
  d.description = "Backward of " + name.substr(std::string("_backward_").size()) + ".";
  d.params = scalar_params();
  d.input_names_ = {"ograd", second_input};
  d.output_names_ = {"data_grad"};
  d.is_backward = true;
  d.non_differentiable = true;
  d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}, {1, 0}}; };
  return d;
}

/// Gradient rules.
GradFn pass_through() {
  return [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    if (all_zero(og)) return zero_grads(fwd);
    return std::vector<NodeEntry>{og[0]};
  };
}
GradFn via_op(const std::string& op, bool with_attrs) {
  return [op, with_attrs](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    if (all_zero(og)) return zero_grads(fwd);
    const std::map<std::string, std::string> none;
    return std::vector<NodeEntry>{grad_op(op, fwd, with_attrs ? fwd->attrs.dict : none, {og[0]})};
  };
}
GradFn use_in(const std::string& bw) {
  return [bw](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    return backward_or_zeros(bw, fwd, og, {og[0], fwd->inputs[0]});
  };
}
GradFn use_out(const std::string& bw) {
  return [bw](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    NodeEntry y;
    y.node = fwd;
    y.index = 0;
    return backward_or_zeros(bw, fwd, og, {og[0], y});
  };
}

template <class Op>
void add_with_backward(OpRegistry& reg, const std::string& name, const std::string& alias, const std::string& desc) {
  const std::string bw = "_backward_" + name;
  OpDef d = scalar_def(name, alias, desc);
  d.cpu = scalar_forward<Op>;
  d.gradient = use_in(bw);
  reg.add(std::move(d));
  OpDef b = scalar_backward_def(bw, "data");
  b.cpu = scalar_backward<Op>;
  reg.add(std::move(b));
}

}  // namespace

void register_scalar(OpRegistry& reg) {
  {
    OpDef d = scalar_def("_plus_scalar", "_PlusScalar", "Adds a scalar to every element: y = x + scalar.");
    d.cpu = scalar_forward<PlusS>;
    d.gradient = pass_through();
    reg.add(std::move(d));
  }
  {
    OpDef d = scalar_def("_minus_scalar", "_MinusScalar", "Subtracts a scalar from every element: y = x - scalar.");
    d.cpu = scalar_forward<MinusS>;
    d.gradient = pass_through();
    reg.add(std::move(d));
  }
  {
    OpDef d = scalar_def("_rminus_scalar", "_RMinusScalar", "Subtracts every element from a scalar: y = scalar - x.");
    d.cpu = scalar_forward<RMinusS>;
    d.gradient = via_op("negative", false);
    reg.add(std::move(d));
  }
  {
    OpDef d = scalar_def("_mul_scalar", "_MulScalar", "Multiplies every element by a scalar: y = x * scalar.");
    d.cpu = scalar_forward<MulS>;
    d.gradient = via_op("_mul_scalar", true);
    reg.add(std::move(d));
  }
  {
    OpDef d = scalar_def("_div_scalar", "_DivScalar", "Divides every element by a scalar: y = x / scalar.");
    d.cpu = scalar_forward<DivS>;
    d.gradient = via_op("_div_scalar", true);
    reg.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_contrib_div_sqrt_dim";
    d.description = "Rescales the input by the square root of its last dimension: y = x / sqrt(x.shape[-1]).";
    d.infer_shape = [](const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
      if ((*in)[0].rank_known() && (*in)[0].ndim() == 0)
        throw InferError(true, 0, "_contrib_div_sqrt_dim needs an input with at least one dimension");
      infer_same_shape(a, in, out);
    };
    d.cpu = div_sqrt_dim_forward;
    d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}}; };
    d.gradient = via_op("_contrib_div_sqrt_dim", false);  // MXNet's: the same rescaling of the gradient
    d.mxnet_unnamed_inputs = true;
    reg.add(std::move(d));
  }
  {
    OpDef d = scalar_def("_contrib_gradientmultiplier", "",
                         "Identity forward; the backward multiplies the gradient by scalar (a negative scalar makes "
                         "a gradient reversal layer).");
    d.cpu = scalar_forward<LhsS>;
    d.gradient = via_op("_mul_scalar", true);
    reg.add(std::move(d));
  }
  add_with_backward<RDivS>(reg, "_rdiv_scalar", "_RDivScalar", "Divides a scalar by every element: y = scalar / x.");
  add_with_backward<MaxS>(reg, "_maximum_scalar", "_MaximumScalar",
                          "Element-wise maximum with a scalar; the gradient passes where x >= scalar.");
  add_with_backward<MinS>(reg, "_minimum_scalar", "_MinimumScalar",
                          "Element-wise minimum with a scalar; the gradient passes where x <= scalar.");
  {
    const std::string bw = "_backward_power_scalar";
    OpDef d = scalar_def("_power_scalar", "_PowerScalar", "Raises every element to a scalar power: y = x ^ scalar.");
    d.cpu = power_scalar_forward;
    d.gradient = use_in(bw);
    reg.add(std::move(d));
    OpDef b = scalar_backward_def(bw, "data");
    b.cpu = scalar_backward<PowS>;
    reg.add(std::move(b));
  }
  {
    const std::string bw = "_backward_rpower_scalar";
    OpDef d = scalar_def("_rpower_scalar", "_RPowerScalar", "Raises a scalar to the power of every element: y = scalar ^ x.");
    d.cpu = scalar_forward<RPowS>;
    d.gradient = use_out(bw);
    reg.add(std::move(d));
    OpDef b = scalar_backward_def(bw, "output");
    b.cpu = rpower_scalar_backward;
    reg.add(std::move(b));
  }
  {
    OpDef d = scalar_def("_mod_scalar", "_ModScalar",
                         "Remainder of x / scalar with the sign of scalar (Python's %); 0 when scalar is 0.");
    d.cpu = scalar_forward<math::Mod>;
    d.gradient = pass_through();
    reg.add(std::move(d));
  }
  add_with_backward<RModS>(reg, "_rmod_scalar", "_RModScalar",
                           "Remainder of scalar / x with the sign of x (Python's %); 0 where x is 0.");
  add_with_backward<HypotS>(reg, "_hypot_scalar", "_HypotScalar", "sqrt(x^2 + scalar^2), element-wise.");
  add_with_backward<SmoothL1S>(reg, "smooth_l1", "",
                               "Smooth L1 loss with sigma = scalar: 0.5 (sigma x)^2 where |x| < 1 / sigma^2, else "
                               "|x| - 0.5 / sigma^2.");
  const struct {
    const char* name;
    const char* alias;
    const char* desc;
    Kernel cpu;
  } comparisons[] = {
      {"_equal_scalar", "_EqualScalar", "x == scalar", scalar_forward<math::Equal>},
      {"_not_equal_scalar", "_NotEqualScalar", "x != scalar", scalar_forward<math::NotEqual>},
      {"_greater_scalar", "_GreaterScalar", "x > scalar", scalar_forward<math::Greater>},
      {"_greater_equal_scalar", "_GreaterEqualScalar", "x >= scalar", scalar_forward<math::GreaterEqual>},
      {"_lesser_scalar", "_LesserScalar", "x < scalar", scalar_forward<math::Lesser>},
      {"_lesser_equal_scalar", "_LesserEqualScalar", "x <= scalar", scalar_forward<math::LesserEqual>},
      {"_logical_and_scalar", "_LogicalAndScalar", "x and scalar (nonzero is true)", scalar_forward<math::LogicalAnd>},
      {"_logical_or_scalar", "_LogicalOrScalar", "x or scalar (nonzero is true)", scalar_forward<math::LogicalOr>},
      {"_logical_xor_scalar", "_LogicalXorScalar", "x xor scalar (nonzero is true)", scalar_forward<math::LogicalXor>},
  };
  for (const auto& c : comparisons) {
    OpDef d = scalar_def(c.name, c.alias,
                         std::string(c.desc) + ", element-wise: 1 or 0 in the data's dtype. Zero gradient.");
    d.cpu = c.cpu;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>&) { return zero_grads(fwd); };
    reg.add(std::move(d));
  }
}

}  // namespace elemwise
}  // namespace kiln
