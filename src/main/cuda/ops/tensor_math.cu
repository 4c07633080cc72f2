// GPU kernels of the MXNet math ops of one input (CPU: src/main/cpp/ops/tensor/elemwise_unary.cc),
// from the functors both devices share (kiln/elemwise_math.h): relu, sigmoid, tanh, softsign, the
// trigonometric and hyperbolic functions and their inverses, degrees, radians, reciprocal, rsqrt,
// cbrt, rcbrt, log10, log2, log1p, expm1, erf, erfinv, gamma, gammaln, hard_sigmoid, and the
// zero-gradient floor, ceil, round, rint, fix, trunc, sign, logical_not; each differentiable op's
// _backward_<op>(ograd, x or y) = ograd * F.deriv(x or y).
// float32 and float64 (16-bit types through the executor's float32 wrapper), every OpReq;
// outputs may alias inputs (each element is read before it is written, by the same thread).
// Shapes: x, y, ograd, grad: [n].
#include <string>

#include "kiln/elemwise_math.h"
#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {
namespace tensor {
namespace {

template <class F> struct Fwd {
  F f;
  template <typename T> __device__ T operator()(T x) const { return f.fwd(x); }
};
template <class F> struct Bwd {
  F f;
  template <typename T> __device__ T operator()(T g, T v) const { return g * f.deriv(v); }
};

/// y = F.fwd(x). in: data [n]; out: [n].
template <class F>
Kernel math_fwd(const char* name) {
  return [name](const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    check_call(name, in, 1, 1, req, out, 1);
    check_size(name, in[0], out[0].size(), "data", out[0].shape);
    check_dtype(name, in[0], out[0].dtype, "data");
    if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
    const Fwd<F> f{F::from(attrs)};
    DeviceGuard dg(device_of(ctx, in, out));
    KILN_FLOAT_SWITCH(out[0].dtype, T, {
      launch_map1(ctx, out[0].size(), in[0].dptr<T>(), out[0].dptr<T>(), req[0], f, name);
    });
  };
}

/// dx = ograd * F.deriv(v). in: ograd [n], v [n] (forward input or output, F::kFrom); out: dx [n].
template <class F>
Kernel math_bwd(const char* name) {
  return [name](const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    check_call(name, in, 2, 2, req, out, 1);
    for (int k = 0; k < 2; ++k) {
      check_size(name, in[k], out[0].size(), k == 0 ? "ograd" : "input", out[0].shape);
      check_dtype(name, in[k], out[0].dtype, k == 0 ? "ograd" : "input");
    }
    if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
    const Bwd<F> f{F::from(attrs)};
    DeviceGuard dg(device_of(ctx, in, out));
    KILN_FLOAT_SWITCH(out[0].dtype, T, {
      launch_map2(ctx, out[0].size(), in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], f, name);
    });
  };
}

/// The forward op `name` and, unless its gradient is zero, `_backward_<name>` (names as the CPU's).
template <class F>
void set_math(OpRegistry& r, const char* name, const char* backward_name = nullptr) {
  set_gpu(r, name, math_fwd<F>(name));
  if constexpr (F::kFrom != math::From::kNone) set_gpu(r, backward_name, math_bwd<F>(backward_name));
}

}  // namespace

void register_tensor_math_gpu(OpRegistry& r) {
  using namespace math;
  set_math<Relu>(r, "relu", "_backward_relu");
  set_math<Sigmoid>(r, "sigmoid", "_backward_sigmoid");
  set_math<Tanh>(r, "tanh", "_backward_tanh");
  set_math<Softsign>(r, "softsign", "_backward_softsign");
  set_math<Sin>(r, "sin", "_backward_sin");
  set_math<Cos>(r, "cos", "_backward_cos");
  set_math<Tan>(r, "tan", "_backward_tan");
  set_math<Arcsin>(r, "arcsin", "_backward_arcsin");
  set_math<Arccos>(r, "arccos", "_backward_arccos");
  set_math<Arctan>(r, "arctan", "_backward_arctan");
  set_math<Sinh>(r, "sinh", "_backward_sinh");
  set_math<Cosh>(r, "cosh", "_backward_cosh");
  set_math<Arcsinh>(r, "arcsinh", "_backward_arcsinh");
  set_math<Arccosh>(r, "arccosh", "_backward_arccosh");
  set_math<Arctanh>(r, "arctanh", "_backward_arctanh");
  set_math<Degrees>(r, "degrees", "_backward_degrees");
  set_math<Radians>(r, "radians", "_backward_radians");
  set_math<Reciprocal>(r, "reciprocal", "_backward_reciprocal");
  set_math<Rsqrt>(r, "rsqrt", "_backward_rsqrt");
  set_math<Cbrt>(r, "cbrt", "_backward_cbrt");
  set_math<Rcbrt>(r, "rcbrt", "_backward_rcbrt");
  set_math<Log10>(r, "log10", "_backward_log10");
  set_math<Log2>(r, "log2", "_backward_log2");
  set_math<Log1p>(r, "log1p", "_backward_log1p");
  set_math<Expm1>(r, "expm1", "_backward_expm1");
  set_math<Erf>(r, "erf", "_backward_erf");
  set_math<Erfinv>(r, "erfinv", "_backward_erfinv");
  set_math<Gamma>(r, "gamma", "_backward_gamma");
  set_math<Gammaln>(r, "gammaln", "_backward_gammaln");
  set_math<HardSigmoid>(r, "hard_sigmoid", "_backward_hard_sigmoid");
  set_math<Floor>(r, "floor");
  set_math<Ceil>(r, "ceil");
  set_math<Round>(r, "round");
  set_math<Rint>(r, "rint");
  set_math<Trunc>(r, "trunc");
  set_math<Trunc>(r, "fix");
  set_math<Sign>(r, "sign");
  // straight-through estimators: the forward of round / sign (their gradient is the output gradient)
  set_gpu(r, "_contrib_round_ste", math_fwd<Round>("_contrib_round_ste"));
  set_gpu(r, "_contrib_sign_ste", math_fwd<Sign>("_contrib_sign_ste"));
  set_math<LogicalNot>(r, "logical_not");
}

}  // namespace tensor
}  // namespace cuda
}  // namespace kiln
