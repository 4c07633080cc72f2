// GPU kernels of the scalar and unary elementwise operators beyond elemwise.cu's forward ones
// (CPU: src/main/cpp/ops/tensor/elemwise_scalar.cc, elemwise_unary.cc):
//   _maximum_scalar, _minimum_scalar, _power_scalar, _rpower_scalar and
//   _backward__rdiv_scalar, _backward__maximum_scalar, _backward__minimum_scalar (the CPU names
//   them "_backward_" + op name), _backward_power_scalar, _backward_rpower_scalar;
//   _backward_log, _backward_sqrt, _backward_square, _backward_abs; clip and _backward_clip;
//   from kiln/elemwise_math.h's functors: _mod_scalar, _rmod_scalar, _hypot_scalar, smooth_l1
//   (+ _backward__rmod_scalar, _backward__hypot_scalar, _backward_smooth_l1) and the comparisons
//   _equal_scalar ... _logical_xor_scalar.
// float32 and float64, every OpReq; outputs may alias inputs (each element is read before it is
// written, by the same thread). Shapes: x, y, ograd, grad: [n].
#include <cmath>
#include <string>

#include "kiln/elemwise_math.h"
#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {
namespace tensor {
namespace {

// ---- functors ------------------------------------------------------------------------------------

// NaN stays NaN, as MXNet 1.9's maximum/minimum and the CPU
template <typename T> struct MaxS { T s; __device__ T operator()(T x) const { return (x > s || x != x) ? x : s; } };
template <typename T> struct MinS { T s; __device__ T operator()(T x) const { return (x < s || x != x) ? x : s; } };
template <typename T> struct PowS { T s; __device__ T operator()(T x) const { return k_pow(x, s); } };
template <typename T> struct RPowS { T s; __device__ T operator()(T x) const { return k_pow(s, x); } };
template <typename T> struct Square { __device__ T operator()(T x) const { return x * x; } };
template <typename T> struct Ident { __device__ T operator()(T x) const { return x; } };

// backward functors: (g, v) with v the forward input (or output for _rpower_scalar / sqrt)
template <typename T> struct RDivSGrad { T s; __device__ T operator()(T g, T x) const { return g * (-s / (x * x)); } };
template <typename T> struct MaxSGrad { T s; __device__ T operator()(T g, T x) const { return pass_if(x >= s, g); } };
template <typename T> struct MinSGrad { T s; __device__ T operator()(T g, T x) const { return pass_if(x <= s, g); } };
template <typename T> struct PowSGrad {
  T s;
  __device__ T operator()(T g, T x) const { return g * (k_pow(x, s - T(1)) * s); }
};
template <typename T> struct PowS2Grad { __device__ T operator()(T g, T x) const { return g * (x * T(2)); } };
template <typename T> struct RPowSGrad { T log_s; __device__ T operator()(T g, T y) const { return g * (log_s * y); } };

template <typename T> struct LogGrad { __device__ T operator()(T g, T x) const { return g / x; } };
template <typename T> struct SqrtGrad { __device__ T operator()(T g, T y) const { return g * (T(0.5) / y); } };
template <typename T> struct SquareGrad { __device__ T operator()(T g, T x) const { return g * (T(2) * x); } };
template <typename T> struct AbsGrad {  // g * sign(x), sign(0) = sign(NaN) = 0, as the CPU's selects
  __device__ T operator()(T g, T x) const { return x > T(0) ? g : (x < T(0) ? -g : k_copysign(T(0), g)); }
};

// x op s for a binary functor of kiln/elemwise_math.h: Scalar<Op>::Fwd<T> (s op x for Rev)
template <class Op> struct Scalar {
  template <typename T> struct Fwd { T s; __device__ T operator()(T x) const { return Op::fwd(x, s); } };
  template <typename T> struct Rev { T s; __device__ T operator()(T x) const { return Op::fwd(s, x); } };
  template <typename T> struct LGrad { T s; __device__ T operator()(T g, T x) const { return Op::lgrad(g, x, s); } };
  template <typename T> struct RGrad { T s; __device__ T operator()(T g, T x) const { return Op::rgrad(g, s, x); } };
};
template <typename T> struct SmoothL1F {
  T s;
  __device__ T operator()(T x) const { return math::SmoothL1{double(s)}.fwd(x); }
};
template <typename T> struct SmoothL1Grad {
  T s;
  __device__ T operator()(T g, T x) const { return g * math::SmoothL1{double(s)}.deriv(x); }
};

template <typename T> struct Clip {
  T lo, hi;
  __device__ T operator()(T v) const { return v > hi ? hi : (v < lo ? lo : v); }  // NaN passes through
};
template <typename T> struct ClipGrad {
  T lo, hi;
  __device__ T operator()(T g, T v) const { return (v > hi || v < lo) ? T(0) : g; }
};

// ---- host side -----------------------------------------------------------------------------------

/// One input (data [n]) to one output [n]; false when there is nothing to do.
bool unary_prologue(const char* name, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  check_call(name, in, 1, 1, req, out, 1);
  check_size(name, in[0], out[0].size(), "data", out[0].shape);
  check_dtype(name, in[0], out[0].dtype, "data");
  return req[0] != OpReq::kNullOp && out[0].size() > 0;
}

/// (ograd [n], v [n]) to one output [n].
bool grad_prologue(const char* name, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  check_call(name, in, 2, 2, req, out, 1);
  for (int k = 0; k < 2; ++k) {
    check_size(name, in[k], out[0].size(), k == 0 ? "ograd" : "input", out[0].shape);
    check_dtype(name, in[k], out[0].dtype, k == 0 ? "ograd" : "input");
  }
  return req[0] != OpReq::kNullOp && out[0].size() > 0;
}

/// y = F<T>{scalar}(x)
template <template <typename> class F>
Kernel scalar_fwd(const char* name) {
  return [name](const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    if (!unary_prologue(name, in, req, out)) return;
    const double s = attrs.f("scalar");
    DeviceGuard dg(device_of(ctx, in, out));
    KILN_FLOAT_SWITCH(out[0].dtype, T, {
      launch_map1(ctx, out[0].size(), in[0].dptr<T>(), out[0].dptr<T>(), req[0], F<T>{(T)s}, name);
    });
  };
}

/// dx = F<T>{scalar}(ograd, x)
template <template <typename> class F>
Kernel scalar_bwd(const char* name) {
  return [name](const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    if (!grad_prologue(name, in, req, out)) return;
    const double s = attrs.f("scalar");
    DeviceGuard dg(device_of(ctx, in, out));
    KILN_FLOAT_SWITCH(out[0].dtype, T, {
      launch_map2(ctx, out[0].size(), in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], F<T>{(T)s}, name);
    });
  };
}

/// dx = F<T>()(ograd, v)
template <template <typename> class F>
Kernel unary_bwd(const char* name) {
  return [name](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    if (!grad_prologue(name, in, req, out)) return;
    DeviceGuard dg(device_of(ctx, in, out));
    KILN_FLOAT_SWITCH(out[0].dtype, T, {
      launch_map2(ctx, out[0].size(), in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], F<T>(), name);
    });
  };
}

// x^s with the CPU's exact paths for s = 2 (x*x) and s = 1 (x). in: data [n]; out: [n].
void power_scalar_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                          const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_power_scalar";
  if (!unary_prologue(name, in, req, out)) return;
  const double sc = attrs.f("scalar");
  const int64_t n = out[0].size();
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();
    T* y = out[0].dptr<T>();
    if ((T)sc == T(2)) launch_map1(ctx, n, x, y, req[0], Square<T>(), name);
    else if ((T)sc == T(1)) launch_map1(ctx, n, x, y, req[0], Ident<T>(), name);
    else launch_map1(ctx, n, x, y, req[0], PowS<T>{(T)sc}, name);
  });
}

// in: ograd [n], x [n]; out: dx [n]. s = 2 takes the CPU's exact path g * (x * 2).
void power_scalar_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                           const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_backward_power_scalar";
  if (!grad_prologue(name, in, req, out)) return;
  const double sc = attrs.f("scalar");
  const int64_t n = out[0].size();
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* g = in[0].dptr<T>();
    const T* x = in[1].dptr<T>();
    T* dx = out[0].dptr<T>();
    if ((T)sc == T(2)) launch_map2(ctx, n, g, x, dx, req[0], PowS2Grad<T>(), name);
    else launch_map2(ctx, n, g, x, dx, req[0], PowSGrad<T>{(T)sc}, name);
  });
}

// in: ograd [n], y = s^x [n] (forward output); out: dx [n] = g * (log(s) * y), log(s) in T on the host.
void rpower_scalar_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                            const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_backward_rpower_scalar";
  if (!grad_prologue(name, in, req, out)) return;
  const double sc = attrs.f("scalar");
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T log_s = std::log((T)sc);
    launch_map2(ctx, out[0].size(), in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], RPowSGrad<T>{log_s},
                name);
  });
}

// clip: bounds are float32 parameters applied in T. in: data [n]; out: [n].
void clip_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* name = "clip";
  if (!unary_prologue(name, in, req, out)) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const Clip<T> f{float_param<T>(attrs.f("a_min")), float_param<T>(attrs.f("a_max"))};
    launch_map1(ctx, out[0].size(), in[0].dptr<T>(), out[0].dptr<T>(), req[0], f, name);
  });
}

// in: ograd [n], x [n]; out: dx [n], passing where a_min <= x <= a_max (and for NaN x).
void clip_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* name = "_backward_clip";
  if (!grad_prologue(name, in, req, out)) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const ClipGrad<T> f{float_param<T>(attrs.f("a_min")), float_param<T>(attrs.f("a_max"))};
    launch_map2(ctx, out[0].size(), in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], f, name);
  });
}

}  // namespace

void register_tensor_unary_gpu(OpRegistry& r) {
  set_gpu(r, "_maximum_scalar", scalar_fwd<MaxS>("_maximum_scalar"));
  set_gpu(r, "_minimum_scalar", scalar_fwd<MinS>("_minimum_scalar"));
  set_gpu(r, "_power_scalar", power_scalar_forward);
  set_gpu(r, "_rpower_scalar", scalar_fwd<RPowS>("_rpower_scalar"));
  set_gpu(r, "_backward__rdiv_scalar", scalar_bwd<RDivSGrad>("_backward__rdiv_scalar"));
  set_gpu(r, "_backward__maximum_scalar", scalar_bwd<MaxSGrad>("_backward__maximum_scalar"));
  set_gpu(r, "_backward__minimum_scalar", scalar_bwd<MinSGrad>("_backward__minimum_scalar"));
  set_gpu(r, "_backward_power_scalar", power_scalar_backward);
  set_gpu(r, "_backward_rpower_scalar", rpower_scalar_backward);

  set_gpu(r, "_backward_log", unary_bwd<LogGrad>("_backward_log"));
  set_gpu(r, "_backward_sqrt", unary_bwd<SqrtGrad>("_backward_sqrt"));
  set_gpu(r, "_backward_square", unary_bwd<SquareGrad>("_backward_square"));
  set_gpu(r, "_backward_abs", unary_bwd<AbsGrad>("_backward_abs"));
  set_gpu(r, "clip", clip_forward);
  set_gpu(r, "_backward_clip", clip_backward);

  set_gpu(r, "_mod_scalar", scalar_fwd<Scalar<math::Mod>::Fwd>("_mod_scalar"));
  set_gpu(r, "_rmod_scalar", scalar_fwd<Scalar<math::Mod>::Rev>("_rmod_scalar"));
  set_gpu(r, "_backward__rmod_scalar", scalar_bwd<Scalar<math::Mod>::RGrad>("_backward__rmod_scalar"));
  set_gpu(r, "_hypot_scalar", scalar_fwd<Scalar<math::Hypot>::Fwd>("_hypot_scalar"));
  set_gpu(r, "_backward__hypot_scalar", scalar_bwd<Scalar<math::Hypot>::LGrad>("_backward__hypot_scalar"));
  set_gpu(r, "smooth_l1", scalar_fwd<SmoothL1F>("smooth_l1"));
  set_gpu(r, "_backward_smooth_l1", scalar_bwd<SmoothL1Grad>("_backward_smooth_l1"));
  set_gpu(r, "_equal_scalar", scalar_fwd<Scalar<math::Equal>::Fwd>("_equal_scalar"));
  set_gpu(r, "_not_equal_scalar", scalar_fwd<Scalar<math::NotEqual>::Fwd>("_not_equal_scalar"));
  set_gpu(r, "_greater_scalar", scalar_fwd<Scalar<math::Greater>::Fwd>("_greater_scalar"));
  set_gpu(r, "_greater_equal_scalar", scalar_fwd<Scalar<math::GreaterEqual>::Fwd>("_greater_equal_scalar"));
  set_gpu(r, "_lesser_scalar", scalar_fwd<Scalar<math::Lesser>::Fwd>("_lesser_scalar"));
  set_gpu(r, "_lesser_equal_scalar", scalar_fwd<Scalar<math::LesserEqual>::Fwd>("_lesser_equal_scalar"));
  set_gpu(r, "_logical_and_scalar", scalar_fwd<Scalar<math::LogicalAnd>::Fwd>("_logical_and_scalar"));
  set_gpu(r, "_logical_or_scalar", scalar_fwd<Scalar<math::LogicalOr>::Fwd>("_logical_or_scalar"));
  set_gpu(r, "_logical_xor_scalar", scalar_fwd<Scalar<math::LogicalXor>::Fwd>("_logical_xor_scalar"));
}

}  // namespace tensor
}  // namespace cuda
}  // namespace kiln
