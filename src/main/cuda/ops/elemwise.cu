// GPU kernels of the elementwise operators: binary (elemwise_add/sub/mul/div), scalar
// (_plus_scalar, _minus_scalar, _rminus_scalar, _mul_scalar, _div_scalar, _rdiv_scalar), unary
// (negative, exp, log, sqrt, square, abs), Activation and _backward_Activation (the SGD updates
// are with the other optimizer updates in ops/optimizer_momentum.cu). Same inputs, outputs and parameters as the CPU
// ops; float32 and float64, and float16 / bfloat16 natively (computed in float32, each output rounded
// once, as the CPU's promoted kernels); every OpReq honoured. The rest of the elementwise family (broadcast,
// the other scalar ops, the unary backward ops, reductions, the internal copy / fill / sum ops)
// lives in ops/tensor_*.cu.
//
// Every array here is flat: all inputs and outputs of one call have the same number of elements n
// (shapes were checked at bind time; we re-check the element counts). Outputs may alias inputs
// (kWriteInplace), so no pointer is __restrict__: each element is read before it is written, by
// the same thread.
#include <string>

#include "common/kernels.cuh"
#include "kiln/kernel_common.h"
#include "kiln/low_precision.h"

namespace kiln {
namespace cuda {
namespace {

// ---- generic kernels ---------------------------------------------------------------------------

// Storage S computed in C: C = S for float32 / float64; C = float for float16 / bfloat16, whose
// operands are widened and each output rounded once (round(float(y) + v) under kAddTo): what the
// CPU computes by widening, running its float32 kernel and narrowing, without float32 copies.

// x: [n] (S), y: [n] (S)
template <typename S, typename C, typename F>
__global__ void unary_kernel(int64_t n, const S* x, S* y, int req, F f) {
  KILN_GRID_STRIDE(i, n) { store_from(y, i, req, f(widen_to<C>(x[i]))); }
}

// a: [n] (S), b: [n] (S), y: [n] (S)
template <typename S, typename C, typename F>
__global__ void binary_kernel(int64_t n, const S* a, const S* b, S* y, int req, F f) {
  KILN_GRID_STRIDE(i, n) { store_from(y, i, req, f(widen_to<C>(a[i]), widen_to<C>(b[i]))); }
}

// ---- functors ------------------------------------------------------------------------------------

struct Add { template <typename T> __device__ T operator()(T a, T b) const { return a + b; } };
struct Sub { template <typename T> __device__ T operator()(T a, T b) const { return a - b; } };
struct Mul { template <typename T> __device__ T operator()(T a, T b) const { return a * b; } };
struct Div { template <typename T> __device__ T operator()(T a, T b) const { return a / b; } };

template <typename T> struct PlusScalar { T s; __device__ T operator()(T a) const { return a + s; } };
template <typename T> struct MinusScalar { T s; __device__ T operator()(T a) const { return a - s; } };
template <typename T> struct RMinusScalar { T s; __device__ T operator()(T a) const { return s - a; } };
template <typename T> struct MulScalar { T s; __device__ T operator()(T a) const { return a * s; } };
template <typename T> struct DivScalar { T s; __device__ T operator()(T a) const { return a / s; } };
template <typename T> struct RDivScalar { T s; __device__ T operator()(T a) const { return s / a; } };

struct Negative { template <typename T> __device__ T operator()(T a) const { return -a; } };
struct Exp { template <typename T> __device__ T operator()(T a) const { return k_exp(a); } };
struct Log { template <typename T> __device__ T operator()(T a) const { return k_log(a); } };
struct Sqrt { template <typename T> __device__ T operator()(T a) const { return k_sqrt(a); } };
struct Square { template <typename T> __device__ T operator()(T a) const { return a * a; } };
struct Abs { template <typename T> __device__ T operator()(T a) const { return k_abs(a); } };

// Activation forward (MXNet mshadow_op definitions)
struct Relu {  // NaN passes through, as MXNet's relu
  template <typename T> __device__ T operator()(T a) const { return a > T(0) || a != a ? a : T(0); }
};
struct Sigmoid { template <typename T> __device__ T operator()(T a) const { return T(1) / (T(1) + k_exp(-a)); } };
struct Tanh { template <typename T> __device__ T operator()(T a) const { return k_tanh(a); } };
struct SoftRelu {  // log(1 + exp(a)), exactly a above 20 (no overflow)
  template <typename T> __device__ T operator()(T a) const { return a > T(20) ? a : k_log1p(k_exp(a)); }
};
struct SoftSign { template <typename T> __device__ T operator()(T a) const { return a / (T(1) + k_abs(a)); } };

// Activation backward: g = output gradient, y = forward output (x = forward input for softsign)
struct ReluGrad {  // a NaN output propagates
  template <typename T> __device__ T operator()(T g, T y) const { return y > T(0) ? g : (y != y ? y : T(0)); }
};
struct SigmoidGrad { template <typename T> __device__ T operator()(T g, T y) const { return g * y * (T(1) - y); } };
struct TanhGrad { template <typename T> __device__ T operator()(T g, T y) const { return g * (T(1) - y * y); } };
struct SoftReluGrad { template <typename T> __device__ T operator()(T g, T y) const { return g * -k_expm1(-y); } };
struct SoftSignGrad {
  template <typename T> __device__ T operator()(T g, T x) const {
    T d = T(1) + k_abs(x);
    return g / (d * d);
  }
};

// ---- host side -----------------------------------------------------------------------------------

void check_same_size(const char* op, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  const int64_t n = out[0].size();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i].size() != n)
      throw KilnError(std::string(op) + " (GPU): input " + std::to_string(i) + " has shape " + in[i].shape.str() +
                      ", output has " + out[0].shape.str());
    if (in[i].dtype != out[0].dtype)
      throw KilnError(std::string(op) + " (GPU): input " + std::to_string(i) + " is " + dtype_name(in[i].dtype) +
                      ", output is " + dtype_name(out[0].dtype));
  }
}

/// Common prologue: arity, devices, sizes. Returns false when there is nothing to do.
bool prologue(const char* op, const std::vector<TBlob>& in, size_t nin_min, size_t nin_max,
              const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  check_arity(op, in, nin_min, nin_max, out, req, 1, 1);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_same_size(op, in, out);
  return req[0] != OpReq::kNullOp && out[0].size() > 0;
}

/// y: [n] = f(x: [n]) with storage S computed in C (the caller dispatched on the dtype).
template <typename S, typename C, typename F>
void launch_unary_t(const OpCtx& ctx, const TBlob& x, OpReq req, const TBlob& y, F f, const char* name) {
  const int64_t n = y.size();
  unary_kernel<S, C><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, x.dptr<S>(), y.dptr<S>(), req_int(req), f);
  KILN_CUDA_LAUNCH_CHECK(name);
}

/// y: [n] = f(x: [n]) for a functor generic in the element type (float for 16-bit blobs).
template <typename F>
void launch_unary(const OpCtx& ctx, const TBlob& x, OpReq req, const TBlob& y, F f, const char* name) {
  if (is_low_precision(y.dtype))
    KILN_LOW_PRECISION_SWITCH(y.dtype, L, { launch_unary_t<L, float>(ctx, x, req, y, f, name); });
  else KILN_FLOAT_SWITCH(y.dtype, T, { launch_unary_t<T, T>(ctx, x, req, y, f, name); });
}

/// y: [n] = f(a: [n], b: [n]) with storage S computed in C.
template <typename S, typename C, typename F>
void launch_binary_t(const OpCtx& ctx, const TBlob& a, const TBlob& b, OpReq req, const TBlob& y, F f,
                     const char* name) {
  const int64_t n = y.size();
  binary_kernel<S, C><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, a.dptr<S>(), b.dptr<S>(), y.dptr<S>(),
                                                                    req_int(req), f);
  KILN_CUDA_LAUNCH_CHECK(name);
}

/// y: [n] = f(a: [n], b: [n]) for a functor generic in the element type (float for 16-bit blobs).
template <typename F>
void launch_binary(const OpCtx& ctx, const TBlob& a, const TBlob& b, OpReq req, const TBlob& y, F f,
                   const char* name) {
  if (is_low_precision(y.dtype))
    KILN_LOW_PRECISION_SWITCH(y.dtype, L, { launch_binary_t<L, float>(ctx, a, b, req, y, f, name); });
  else KILN_FLOAT_SWITCH(y.dtype, T, { launch_binary_t<T, T>(ctx, a, b, req, y, f, name); });
}

template <typename F>
Kernel binary_op(const char* name) {
  return [name](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    if (!prologue(name, in, 2, 2, req, out)) return;
    DeviceGuard g(device_of(ctx, in, out));
    launch_binary(ctx, in[0], in[1], req[0], out[0], F(), name);  // (lhs, rhs)
  };
}

template <typename F>
Kernel unary_op(const char* name) {
  return [name](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    if (!prologue(name, in, 1, 1, req, out)) return;
    DeviceGuard g(device_of(ctx, in, out));
    launch_unary(ctx, in[0], req[0], out[0], F(), name);
  };
}

template <template <typename> class F>
Kernel scalar_op(const char* name) {
  return [name](const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    if (!prologue(name, in, 1, 1, req, out)) return;
    const double s = attrs.f("scalar");
    DeviceGuard g(device_of(ctx, in, out));
    if (is_low_precision(out[0].dtype))
      KILN_LOW_PRECISION_SWITCH(out[0].dtype, L, {
        launch_unary_t<L, float>(ctx, in[0], req[0], out[0], F<float>{float(s)}, name);
      });
    else KILN_FLOAT_SWITCH(out[0].dtype, T, { launch_unary_t<T, T>(ctx, in[0], req[0], out[0], F<T>{T(s)}, name); });
  };
}

void activation_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                        const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "Activation";
  if (!prologue(name, in, 1, 1, req, out)) return;
  const std::string act = attr_str(name, attrs, "act_type");
  DeviceGuard g(device_of(ctx, in, out));
  // in[0] data: [n], out[0]: [n]
  if (act == "relu") launch_unary(ctx, in[0], req[0], out[0], Relu(), "Activation(relu)");
  else if (act == "sigmoid") launch_unary(ctx, in[0], req[0], out[0], Sigmoid(), "Activation(sigmoid)");
  else if (act == "tanh") launch_unary(ctx, in[0], req[0], out[0], Tanh(), "Activation(tanh)");
  else if (act == "softrelu") launch_unary(ctx, in[0], req[0], out[0], SoftRelu(), "Activation(softrelu)");
  else if (act == "softsign") launch_unary(ctx, in[0], req[0], out[0], SoftSign(), "Activation(softsign)");
  else throw KilnError("Activation (GPU): act_type '" + act + "' is not supported");
}

void activation_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                         const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_backward_Activation";
  const std::string act = attr_str(name, attrs, "act_type");
  // in: (ograd [n], output [n]) for relu/sigmoid/tanh/softrelu, (ograd, output, data [n]) for softsign
  // out[0] d_data: [n]
  if (!prologue(name, in, 2, 3, req, out)) return;
  DeviceGuard g(device_of(ctx, in, out));
  if (act == "relu") launch_binary(ctx, in[0], in[1], req[0], out[0], ReluGrad(), "_backward_Activation(relu)");
  else if (act == "sigmoid")
    launch_binary(ctx, in[0], in[1], req[0], out[0], SigmoidGrad(), "_backward_Activation(sigmoid)");
  else if (act == "tanh") launch_binary(ctx, in[0], in[1], req[0], out[0], TanhGrad(), "_backward_Activation(tanh)");
  else if (act == "softrelu")
    launch_binary(ctx, in[0], in[1], req[0], out[0], SoftReluGrad(), "_backward_Activation(softrelu)");
  else if (act == "softsign") {
    if (in.size() < 3) throw KilnError("_backward_Activation (GPU): softsign needs (ograd, output, data)");
    launch_binary(ctx, in[0], in[2], req[0], out[0], SoftSignGrad(), "_backward_Activation(softsign)");
  } else {
    throw KilnError("_backward_Activation (GPU): act_type '" + act + "' is not supported");
  }
}

}  // namespace

void register_elemwise_gpu(OpRegistry& r) {
  set_gpu(r, "elemwise_add", binary_op<Add>("elemwise_add"), kNativeLowPrecision);
  set_gpu(r, "elemwise_sub", binary_op<Sub>("elemwise_sub"), kNativeLowPrecision);
  set_gpu(r, "elemwise_mul", binary_op<Mul>("elemwise_mul"), kNativeLowPrecision);
  set_gpu(r, "elemwise_div", binary_op<Div>("elemwise_div"), kNativeLowPrecision);

  set_gpu(r, "_plus_scalar", scalar_op<PlusScalar>("_plus_scalar"), kNativeLowPrecision);
  set_gpu(r, "_minus_scalar", scalar_op<MinusScalar>("_minus_scalar"), kNativeLowPrecision);
  set_gpu(r, "_rminus_scalar", scalar_op<RMinusScalar>("_rminus_scalar"), kNativeLowPrecision);
  set_gpu(r, "_mul_scalar", scalar_op<MulScalar>("_mul_scalar"), kNativeLowPrecision);
  set_gpu(r, "_div_scalar", scalar_op<DivScalar>("_div_scalar"), kNativeLowPrecision);
  set_gpu(r, "_rdiv_scalar", scalar_op<RDivScalar>("_rdiv_scalar"), kNativeLowPrecision);

  set_gpu(r, "negative", unary_op<Negative>("negative"), kNativeLowPrecision);
  set_gpu(r, "exp", unary_op<Exp>("exp"), kNativeLowPrecision);
  set_gpu(r, "log", unary_op<Log>("log"), kNativeLowPrecision);
  set_gpu(r, "sqrt", unary_op<Sqrt>("sqrt"), kNativeLowPrecision);
  set_gpu(r, "square", unary_op<Square>("square"), kNativeLowPrecision);
  set_gpu(r, "abs", unary_op<Abs>("abs"), kNativeLowPrecision);

  set_gpu(r, "Activation", activation_forward, kNativeLowPrecision);
  set_gpu(r, "_backward_Activation", activation_backward, kNativeLowPrecision);

}

}  // namespace cuda
}  // namespace kiln
