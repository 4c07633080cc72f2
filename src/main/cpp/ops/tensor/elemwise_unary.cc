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
// Shapes: x, y, ograd, grad: [n].
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

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

}  // namespace

void register_unary(OpRegistry& reg) {
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
