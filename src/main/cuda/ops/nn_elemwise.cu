// GPU kernels of the nn family's elementwise ops, mirroring src/main/cpp/ops/nn/leaky_relu.cc,
// regression_output.cc and dropout.cc:
//   LeakyReLU (leaky, elu, selu, gelu, prelu, rrelu) and _backward_LeakyReLU (prelu's gamma gradient:
//     one block per channel, double accumulation, no atomics; rrelu's training mask from the
//     counter-based generator, as Dropout's);
//   LinearRegressionOutput / LogisticRegressionOutput / MAERegressionOutput and their backward ops;
//   Dropout and _backward_Dropout: the mask comes from a counter-based generator (k_uniform,
//     common/kernels.cuh: splitmix64 of a 64-bit seed drawn from the executor's generator once per
//     call, and the element index), so a run is reproducible for a given executor seed, but the
//     values differ from the CPU's mt19937 draws.
//   SVMOutput (svm_output.cc) and softmax_cross_entropy (softmax_cross_entropy.cc) with their backward ops.
// Outputs may alias inputs (in place): each element is read before it is written, by the same thread.
#include <string>

#include "kiln/leaky_relu.h"
#include "kiln/svm_output.h"
#include "ops/nn_common.cuh"

namespace kiln {
namespace cuda {
namespace nn_gpu {
namespace {

constexpr double kSeluAlpha = 1.6732632423543772;
constexpr double kSeluLambda = 1.0507009873554805;
constexpr double kSqrtHalf = 0.70710678118654752;    // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143268;  // 1 / sqrt(2 pi)

// x: [n], y: [n]
template <typename T, typename F>
__global__ void unary_kernel(int64_t n, const T* x, T* y, int req, F f) {
  KILN_GRID_STRIDE(i, n) { assign(y, i, req, f(x[i])); }
}

// a: [n], b: [n], y: [n]
template <typename T, typename F>
__global__ void binary_kernel(int64_t n, const T* a, const T* b, T* y, int req, F f) {
  KILN_GRID_STRIDE(i, n) { assign(y, i, req, f(a[i], b[i])); }
}

template <typename T, typename F>
void launch_unary(const OpCtx& ctx, int64_t n, const T* x, T* y, OpReq req, F f, const char* name) {
  if (req == OpReq::kNullOp || n == 0) return;
  unary_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, x, y, req_int(req), f);
  KILN_CUDA_LAUNCH_CHECK(name);
}

template <typename T, typename F>
void launch_binary(const OpCtx& ctx, int64_t n, const T* a, const T* b, T* y, OpReq req, F f, const char* name) {
  if (req == OpReq::kNullOp || n == 0) return;
  binary_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, a, b, y, req_int(req), f);
  KILN_CUDA_LAUNCH_CHECK(name);
}

struct Identity { template <typename T> __device__ T operator()(T a) const { return a; } };
struct Sigmoid { template <typename T> __device__ T operator()(T a) const { return T(1) / (T(1) + k_exp(-a)); } };

/// y = x (copy by request; nothing to do for a write in place on the same memory).
template <typename T>
void copy_req(const OpCtx& ctx, int64_t n, const T* x, T* y, OpReq req, const char* name) {
  if (req != OpReq::kAddTo && (const void*)x == (const void*)y) return;
  launch_unary(ctx, n, x, y, req, Identity(), name);
}

// ---- LeakyReLU -------------------------------------------------------------------------------------

template <typename T> struct Leaky { T slope; __device__ T operator()(T x) const { return x > T(0) ? x : slope * x; } };
template <typename T> struct Elu { T slope; __device__ T operator()(T x) const { return x > T(0) ? x : slope * k_expm1(x); } };
template <typename T> struct Selu {
  __device__ T operator()(T x) const { return x > T(0) ? T(kSeluLambda) * x : T(kSeluLambda * kSeluAlpha) * k_expm1(x); }
};
template <typename T> struct Gelu {
  __device__ T operator()(T x) const { return T(0.5) * x * (T(1) + k_erf(x * T(kSqrtHalf))); }
};

// backward functors: (dy, r), r = forward output or data as chosen by lrelu_bwd_reads_output (kiln/leaky_relu.h)
template <typename T> struct LeakyGrad { T slope; __device__ T operator()(T g, T r) const { return r > T(0) ? g : slope * g; } };
template <typename T> struct EluGradY { T slope; __device__ T operator()(T g, T y) const { return y > T(0) ? g : g * (y + slope); } };
template <typename T> struct EluGradX {
  T slope;
  __device__ T operator()(T g, T x) const { return x > T(0) ? g : g * slope * k_exp(x); }
};
template <typename T> struct SeluGrad {
  __device__ T operator()(T g, T y) const {
    return y > T(0) ? T(kSeluLambda) * g : g * (y + T(kSeluLambda * kSeluAlpha));
  }
};
template <typename T> struct GeluGrad {
  __device__ T operator()(T g, T x) const {
    const T cdf = T(0.5) * (T(1) + k_erf(x * T(kSqrtHalf)));
    const T pdf = T(kInvSqrt2Pi) * k_exp(T(-0.5) * x * x);
    return g * (cdf + x * pdf);
  }
};

std::string lrelu_act(const Attrs& a) {
  const std::string t = a.s("act_type");
  if (t != "leaky" && t != "elu" && t != "selu" && t != "gelu" && t != "prelu" && t != "rrelu")
    throw KilnError("LeakyReLU: unknown act_type '" + t + "'");
  return t;
}

// x, y, mask: [n] (y may alias x). Training: mask = lo + (hi - lo) * u, u uniform in [0, 1) from
// (seed, index); inference: mask = mean (the CPU's float (lo + hi) / 2). y = x > 0 ? x : x * mask
template <typename T>
__global__ void rrelu_forward_kernel(int64_t n, const T* x, T* y, T* mask, int req, bool train, uint64_t seed, double lo,
                                     double hi, T mean) {
  KILN_GRID_STRIDE(i, n) {
    const T m = train ? T(lo + (hi - lo) * k_uniform(seed, i)) : mean;
    mask[i] = m;
    const T v = x[i];
    if (req != (int)OpReq::kNullOp) assign(y, i, req, v > T(0) ? v : v * m);  // the mask is written whatever the request
  }
}

// dy, r, mask, dx: [n] (dx may alias dy); r = output or data (lrelu_bwd_reads_output)
template <typename T>
__global__ void rrelu_backward_kernel(int64_t n, const T* dy, const T* r, const T* mask, T* dx, int req) {
  KILN_GRID_STRIDE(i, n) {
    const T g = dy[i];
    assign(dx, i, req, r[i] > T(0) ? g : g * mask[i]);
  }
}

struct PreluDims {
  int64_t outer, C, inner;
};
PreluDims prelu_dims(const Shape& s) {
  if (s.ndim() < 2) return {s.size(), 1, 1};
  return {s[0], s[1], s.prod(2, s.ndim())};
}

// x, y: [outer, C, inner] (y may alias x); gamma: [C] or [1]
template <typename T>
__global__ void prelu_forward_kernel(int64_t n, int64_t C, int64_t inner, bool shared, const T* x, const T* gamma, T* y,
                                     int req) {
  KILN_GRID_STRIDE(i, n) {
    const T g = gamma[shared ? 0 : (i / inner) % C];
    const T v = x[i];
    assign(y, i, req, v > T(0) ? v : g * v);
  }
}

// dy, x: [outer, C, inner]; dgamma: [C] (one block per channel) or [1] (one block, every element)
// dgamma[c] = sum over the channel of (x > 0 ? 0 : x * dy), accumulated in double
template <typename T>
__global__ void prelu_dgamma_kernel(int64_t outer, int64_t C, int64_t inner, bool shared, const T* dy, const T* x,
                                    T* dgamma, int req) {
  __shared__ double smem[32];
  const int64_t c = blockIdx.x;
  const int64_t m = shared ? outer * C * inner : outer * inner;
  double acc = 0;
  for (int64_t t = threadIdx.x; t < m; t += blockDim.x) {
    const int64_t i = shared ? t : ((t / inner) * C + c) * inner + t % inner;
    const T xv = x[i];
    acc += xv > T(0) ? 0.0 : (double)xv * (double)dy[i];
  }
  acc = block_reduce(acc, SumOp(), smem);
  if (threadIdx.x == 0) assign(dgamma, c, req, T(acc));
}

// dy, x, dx: [outer, C, inner] (dx may alias dy); gamma: [C] or [1]
template <typename T>
__global__ void prelu_dx_kernel(int64_t n, int64_t C, int64_t inner, bool shared, const T* dy, const T* x,
                                const T* gamma, T* dx, int req) {
  KILN_GRID_STRIDE(i, n) {
    const T g = gamma[shared ? 0 : (i / inner) % C];
    const T gy = dy[i];
    assign(dx, i, req, x[i] > T(0) ? gy : g * gy);
  }
}

void check_gamma(const char* op, const PreluDims& d, const TBlob& gamma) {
  if (gamma.size() != 1 && gamma.size() != d.C)
    throw KilnError(std::string(op) + " (GPU): gamma has shape " + gamma.shape.str() + ", expected (" +
                    std::to_string(d.C) + ",) or (1,)");
}

void lrelu_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "LeakyReLU";
  const std::string act = lrelu_act(a);
  // in: data[, gamma]; out: output (data-shaped)[, mask (rrelu, data-shaped, always written)]
  const bool rrelu = act == "rrelu";
  prologue(op, in, act == "prelu" ? 2 : 1, act == "prelu" ? 2 : 1, req, out, rrelu ? 2 : 1, rrelu ? 2 : 1);
  const int64_t n = in[0].size();
  expect_size(op, "output", out[0], n);
  if (rrelu) {
    expect_size(op, "mask", out[1], n);
    if (out[1].ptr == nullptr && n > 0) throw KilnError("LeakyReLU: rrelu's mask output has no memory");
  }
  if ((req[0] == OpReq::kNullOp && !rrelu) || n == 0) return;
  DeviceGuard g(device_of(ctx, in, out));
  const double slope = a.f("slope");
  uint64_t seed = 0;
  if (rrelu && ctx.is_train) {
    if (ctx.rng == nullptr) throw KilnError("LeakyReLU: rrelu has no random generator in the op context");
    seed = (*ctx.rng)();
  }
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [n]
    T* y = out[0].dptr<T>();       // [n]
    if (rrelu) {
      rrelu_forward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, x, y, out[1].dptr<T>(), req_int(req[0]),
                                                                          ctx.is_train, seed, a.f("lower_bound"),
                                                                          a.f("upper_bound"), T(rrelu_mean_slope(a)));
      KILN_CUDA_LAUNCH_CHECK("LeakyReLU(rrelu)");
    } else if (act == "prelu") {
      const PreluDims d = prelu_dims(in[0].shape);
      check_gamma(op, d, in[1]);
      prelu_forward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, d.C, d.inner, in[1].size() == 1, x,
                                                                          in[1].dptr<T>(), y, req_int(req[0]));
      KILN_CUDA_LAUNCH_CHECK("LeakyReLU(prelu)");
    } else if (act == "leaky") {
      launch_unary(ctx, n, x, y, req[0], Leaky<T>{T(slope)}, "LeakyReLU(leaky)");
    } else if (act == "elu") {
      launch_unary(ctx, n, x, y, req[0], Elu<T>{T(slope)}, "LeakyReLU(elu)");
    } else if (act == "selu") {
      launch_unary(ctx, n, x, y, req[0], Selu<T>(), "LeakyReLU(selu)");
    } else {
      launch_unary(ctx, n, x, y, req[0], Gelu<T>(), "LeakyReLU(gelu)");
    }
  });
}

void lrelu_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "_backward_LeakyReLU";
  const std::string act = lrelu_act(a);
  const bool prelu = act == "prelu", rrelu = act == "rrelu";
  // in: ograd, (output | data)  or, for prelu, ograd, data, gamma, for rrelu ograd, (output | data), mask;
  // out: data_grad[, gamma_grad]
  prologue(op, in, prelu || rrelu ? 3 : 2, prelu || rrelu ? 3 : 2, req, out, prelu ? 2 : 1, prelu ? 2 : 1);
  const int64_t n = in[1].size();
  expect_size(op, "ograd", in[0], n);
  expect_size(op, "data_grad", out[0], n);
  DeviceGuard g(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  const double slope = a.f("slope");
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* dy = in[0].dptr<T>();  // [n]
    const T* r = in[1].dptr<T>();   // [n]
    T* dx = out[0].dptr<T>();       // [n] (may alias dy)
    if (rrelu) {
      expect_size(op, "mask", in[2], n);
      if (req[0] != OpReq::kNullOp && n > 0) {
        rrelu_backward_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, dy, r, in[2].dptr<T>(), dx, req_int(req[0]));
        KILN_CUDA_LAUNCH_CHECK("_backward_LeakyReLU(rrelu)");
      }
    } else if (prelu) {
      const PreluDims d = prelu_dims(in[1].shape);
      check_gamma(op, d, in[2]);
      const bool shared = in[2].size() == 1;
      expect_size(op, "gamma_grad", out[1], in[2].size());
      // dgamma first: dx may overwrite dy (same stream, issue order)
      if (req[1] != OpReq::kNullOp && in[2].size() > 0) {
        prelu_dgamma_kernel<T><<<(unsigned)in[2].size(), 1024, 0, s>>>(d.outer, d.C, d.inner, shared, dy, r,
                                                                       out[1].dptr<T>(), req_int(req[1]));
        KILN_CUDA_LAUNCH_CHECK("_backward_LeakyReLU(prelu gamma)");
      }
      if (req[0] != OpReq::kNullOp && n > 0) {
        prelu_dx_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, d.C, d.inner, shared, dy, r, in[2].dptr<T>(), dx,
                                                          req_int(req[0]));
        KILN_CUDA_LAUNCH_CHECK("_backward_LeakyReLU(prelu)");
      }
    } else if (act == "leaky") {
      launch_binary(ctx, n, dy, r, dx, req[0], LeakyGrad<T>{T(slope)}, "_backward_LeakyReLU(leaky)");
    } else if (act == "elu") {
      if (lrelu_bwd_reads_output(a)) launch_binary(ctx, n, dy, r, dx, req[0], EluGradY<T>{T(slope)}, "_backward_LeakyReLU(elu)");
      else launch_binary(ctx, n, dy, r, dx, req[0], EluGradX<T>{T(slope)}, "_backward_LeakyReLU(elu)");
    } else if (act == "selu") {
      launch_binary(ctx, n, dy, r, dx, req[0], SeluGrad<T>(), "_backward_LeakyReLU(selu)");
    } else {
      launch_binary(ctx, n, dy, r, dx, req[0], GeluGrad<T>(), "_backward_LeakyReLU(gelu)");
    }
  });
}

// ---- regression outputs ------------------------------------------------------------------------------

enum class Reg { kLinear, kLogistic, kMAE };

template <typename T> struct RegGrad { T scale; __device__ T operator()(T label, T y) const { return (y - label) * scale; } };
template <typename T> struct MaeGrad {
  T scale;
  __device__ T operator()(T label, T y) const { return (y - label > T(0) ? T(1) : T(-1)) * scale; }
};

template <Reg kKind>
void reg_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = kKind == Reg::kLinear ? "LinearRegressionOutput"
                   : kKind == Reg::kLogistic ? "LogisticRegressionOutput" : "MAERegressionOutput";
  // in: data [n], label; out: output [n] (may alias data)
  prologue(op, in, 2, 2, req, out, 1, 1);
  const int64_t n = in[0].size();
  expect_size(op, "output", out[0], n);
  DeviceGuard g(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    if (kKind == Reg::kLogistic) launch_unary(ctx, n, in[0].dptr<T>(), out[0].dptr<T>(), req[0], Sigmoid(), op);
    else copy_req(ctx, n, in[0].dptr<T>(), out[0].dptr<T>(), req[0], op);
  });
}

template <Reg kKind>
void reg_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = kKind == Reg::kLinear ? "_backward_linear_reg_out"
                   : kKind == Reg::kLogistic ? "_backward_logistic_reg_out" : "_backward_mae_reg_out";
  // in: label [n], output [n]; out: data_grad [n] (may alias output), label_grad
  prologue(op, in, 2, 2, req, out, 2, 2);
  const TBlob& label = in[0];
  const int64_t n = in[1].size();
  if (label.size() != n)
    throw KilnError("regression output: label " + label.shape.str() +
                    " does not have the element count of the output " + in[1].shape.str());
  expect_size(op, "data_grad", out[0], n);
  const int64_t per_sample = label.shape.ndim() >= 1 && label.shape[0] > 0 ? label.size() / label.shape[0] : 1;
  const double scale = loss_grad_scale(ctx, a) / (double)per_sample;
  DeviceGuard g(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    if (kKind == Reg::kMAE)
      launch_binary(ctx, n, label.dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], MaeGrad<T>{T(scale)}, op);
    else
      launch_binary(ctx, n, label.dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], RegGrad<T>{T(scale)}, op);
  });
  zero_unless_add(ctx, req[1], out[1]);  // the label gets no gradient
}

// ---- Dropout ---------------------------------------------------------------------------------------------

constexpr int kMaxDims = 8;

/// Flat index of the data -> flat index of the mask broadcast to it (mask dims equal or 1, same rank).
struct Bcast {
  int nd = 0;
  bool same = true;  // mask has the data's size: identity
  int64_t dims[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};  // the mask's strides, 0 on broadcast dims
  __device__ int64_t operator()(int64_t i) const {
    if (same) return i;
    int64_t j = 0;
    for (int d = nd - 1; d >= 0; --d) {
      j += (i % dims[d]) * strides[d];
      i /= dims[d];
    }
    return j;
  }
};

Bcast make_bcast(const char* op, const Shape& full, const Shape& small) {
  Bcast b;
  b.same = small.size() == full.size();
  if (b.same) return b;
  if (full.ndim() > kMaxDims || small.ndim() != full.ndim())
    throw KilnError(std::string(op) + " (GPU): mask " + small.str() + " cannot broadcast to data " + full.str() +
                    " (rank <= 8)");
  b.nd = full.ndim();
  int64_t s = 1;
  for (int i = b.nd - 1; i >= 0; --i) {
    if (small[i] != 1 && small[i] != full[i])
      throw KilnError(std::string(op) + " (GPU): mask " + small.str() + " cannot broadcast to data " + full.str());
    b.dims[i] = full[i];
    b.strides[i] = small[i] == 1 ? 0 : s;
    s *= small[i];
  }
  return b;
}

// mask: [nm]; active: Bernoulli(pkeep) / pkeep from (seed, index); inactive: 1
template <typename T>
__global__ void dropout_mask_kernel(int64_t nm, T* mask, bool active, uint64_t seed, double pkeep, T scale) {
  KILN_GRID_STRIDE(i, nm) {
    if (!active) {
      mask[i] = T(1);
    } else {
      mask[i] = k_uniform(seed, i) < pkeep ? scale : T(0);
    }
  }
}

// x, y: [data shape] (y may alias x); mask: [data shape with 1 on `axes`]
template <typename T>
__global__ void mul_mask_kernel(int64_t n, const T* x, const T* mask, T* y, int req, Bcast b) {
  KILN_GRID_STRIDE(i, n) { assign(y, i, req, x[i] * mask[b(i)]); }
}

void dropout_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = "Dropout";
  // in: data; out: output (data-shaped, may alias data), mask (always written)
  prologue(op, in, 1, 1, req, out, 2, 2);
  const int64_t n = in[0].size();
  expect_size(op, "output", out[0], n);
  if (out[1].ptr == nullptr && out[1].size() > 0)
    throw KilnError("Dropout: the mask output has no memory (the op declares outputs_always_written)");
  const double p = a.f("p");
  const bool active = (ctx.is_train || a.s("mode") == "always") && p > 0;
  const Bcast b = make_bcast(op, in[0].shape, out[1].shape);
  uint64_t seed = 0;
  if (active) {
    if (ctx.rng == nullptr) throw KilnError("Dropout: no random generator in the op context");
    seed = (*ctx.rng)();
  }
  const double pkeep = 1.0 - p;
  const int64_t nm = out[1].size();
  DeviceGuard g(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    T* mask = out[1].dptr<T>();
    if (nm > 0) {
      dropout_mask_kernel<T><<<grid_for(nm), kBlock, 0, s>>>(nm, mask, active, seed, pkeep,
                                                            pkeep > 0 ? T(1.0 / pkeep) : T(0));
      KILN_CUDA_LAUNCH_CHECK("Dropout (mask)");
    }
    if (!active) {
      copy_req(ctx, n, in[0].dptr<T>(), out[0].dptr<T>(), req[0], op);
    } else if (req[0] != OpReq::kNullOp && n > 0) {
      mul_mask_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, in[0].dptr<T>(), mask, out[0].dptr<T>(), req_int(req[0]), b);
      KILN_CUDA_LAUNCH_CHECK(op);
    }
  });
}

void dropout_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const char* op = "_backward_Dropout";
  // in: ograd [data shape], mask [data shape or broadcast]; out: data_grad [data shape] (may alias ograd)
  prologue(op, in, 2, 2, req, out, 1, 1);
  const int64_t n = in[0].size();
  expect_size(op, "data_grad", out[0], n);
  if (req[0] == OpReq::kNullOp || n == 0) return;
  const Bcast b = make_bcast(op, in[0].shape, in[1].shape);
  DeviceGuard g(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    mul_mask_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, in[0].dptr<T>(), in[1].dptr<T>(),
                                                                    out[0].dptr<T>(), req_int(req[0]), b);
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- SVMOutput -------------------------------------------------------------------------------------
// As ops/nn/svm_output.cc (the gradient's formula in kiln/svm_output.h).

// label: [n], x: [n, c] (the output = data), dx: [n, c]
template <typename T>
__global__ void svm_grad_kernel(int64_t n, int64_t c, const T* label, const T* x, T* dx, T margin, T coef, bool linear,
                                int req) {
  KILN_GRID_STRIDE(e, n * c) {
    const int64_t s = e / c, j = e % c;
    assign(dx, e, req, svm_grad(x[e], j == svm_class(label[s]), margin, coef, linear));
  }
}

void svm_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "SVMOutput";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const int64_t n = in[0].size();
  expect_size(op, "output", out[0], n);
  DeviceGuard g(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, { copy_req(ctx, n, in[0].dptr<T>(), out[0].dptr<T>(), req[0], op); });
}

/// Inputs: label [n], output [n, c]; outputs: data_grad [n, c] (may alias output), label_grad (zeros).
void svm_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "_backward_SVMOutput";
  prologue(op, in, 2, 2, req, out, 2, 2);
  const int64_t n = in[0].size(), total = in[1].size(), c = n > 0 ? total / n : 0;
  if (n * c != total) throw KilnError("SVMOutput: label " + in[0].shape.str() + " does not match data " + in[1].shape.str());
  expect_size(op, "data_grad", out[0], total);
  DeviceGuard g(device_of(ctx, in, out));
  zero_unless_add(ctx, req[1], out[1]);  // the label gets no gradient
  if (req[0] == OpReq::kNullOp || total == 0) return;
  const double coef = a.f("regularization_coefficient") * ctx.loss_scale;
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    svm_grad_kernel<T><<<grid_for(total), kBlock, 0, stream_of(ctx)>>>(n, c, in[0].dptr<T>(), in[1].dptr<T>(),
                                                                       out[0].dptr<T>(), (T)a.f("margin"), (T)coef,
                                                                       a.b("use_linear"), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- softmax_cross_entropy -------------------------------------------------------------------------
// As ops/nn/softmax_cross_entropy.cc: per-row statistics in double (one thread per row), the total
// summed in row order by one thread, the gradient per element.

// x: [n, c], label: [n]; per row: max, sum of exp(x - max), loss term, class; bad: first bad sample
template <typename T>
__global__ void sce_rows_kernel(int64_t n, int64_t c, const T* x, const T* label, double* mx, double* sum, double* term,
                                int64_t* cls, unsigned long long* bad) {
  KILN_GRID_STRIDE(s, n) {
    const double v = (double)label[s];
    int64_t k = 0;
    if (!(v > -1.0 && v < (double)c)) atomicMin(bad, (unsigned long long)s);
    else k = (int64_t)v;
    const T* row = x + s * c;
    double m = (double)row[0];
    for (int64_t j = 1; j < c; ++j) m = fmax(m, (double)row[j]);
    double e = 0;
    for (int64_t j = 0; j < c; ++j) e += exp((double)row[j] - m);
    mx[s] = m;
    sum[s] = e;
    cls[s] = k;
    term[s] = log(e) - ((double)row[k] - m);
  }
}

// term: [n] -> y [1] (req) their sum in order
template <typename T>
__global__ void sce_total_kernel(int64_t n, const double* term, T* y, int req) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    double t = 0;
    for (int64_t s = 0; s < n; ++s) t += term[s];
    assign(y, 0, req, (T)t);
  }
}

// g: [1], x / dx: [n, c], row statistics [n]; dx (req) g * (softmax - one_hot)
template <typename T>
__global__ void sce_grad_kernel(int64_t n, int64_t c, const T* g, const T* x, const double* mx, const double* sum,
                                const int64_t* cls, T* dx, int req) {
  KILN_GRID_STRIDE(e, n * c) {
    const int64_t s = e / c, j = e % c;
    const double p = exp((double)x[e] - mx[s]) / sum[s];
    assign(dx, e, req, (T)((double)g[0] * (p - (j == cls[s] ? 1.0 : 0.0))));
  }
}

/// Row statistics of x [n, c] with labels [n] into scratch; throws the CPU's error for a bad label.
struct SceRows {
  DeviceScratch mem;  // [n] max, [n] sum, [n] term, [n] class, then the error flag
  int64_t n;
  SceRows(int dev, int64_t rows) : mem(dev, (size_t)(4 * std::max<int64_t>(rows, 1) + 1) * 8), n(std::max<int64_t>(rows, 1)) {}
  double* mx() const { return mem.as<double>(); }
  double* sum() const { return mem.as<double>() + n; }
  double* term() const { return mem.as<double>() + 2 * n; }
  int64_t* cls() const { return reinterpret_cast<int64_t*>(mem.as<double>() + 3 * n); }
  unsigned long long* bad() const { return reinterpret_cast<unsigned long long*>(mem.as<double>() + 4 * n); }
};

template <typename T>
void sce_rows(const char* op, cudaStream_t s, int64_t n, int64_t c, const T* x, const T* label, const SceRows& r) {
  KILN_CUDA_CHECK(cudaMemsetAsync(r.bad(), 0xff, sizeof(unsigned long long), s));
  sce_rows_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, c, x, label, r.mx(), r.sum(), r.term(), r.cls(), r.bad());
  KILN_CUDA_LAUNCH_CHECK(op);
  unsigned long long pos = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&pos, r.bad(), sizeof(pos), cudaMemcpyDeviceToHost, s));
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));
  if (pos == ~0ULL) return;
  T v;
  KILN_CUDA_CHECK(cudaMemcpy(&v, label + pos, sizeof(T), cudaMemcpyDeviceToHost));
  throw KilnError("softmax_cross_entropy: label " + std::to_string((double)v) + " of sample " + std::to_string(pos) +
                  " is out of range for " + std::to_string(c) + " classes");
}

void sce_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "softmax_cross_entropy";
  prologue(op, in, 2, 2, req, out, 1, 1);
  if (req[0] == OpReq::kNullOp) return;
  if (in[0].shape.ndim() != 2 || in[1].size() != in[0].shape[0])
    throw KilnError("softmax_cross_entropy (GPU): data " + in[0].shape.str() + " / label " + in[1].shape.str());
  const int64_t n = in[0].shape[0], c = in[0].shape[1];
  if (n > 0 && c == 0) throw KilnError("softmax_cross_entropy: data " + in[0].shape.str() + " has no classes");
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  SceRows rows(dev, n);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    if (n > 0) sce_rows<T>(op, s, n, c, in[0].dptr<T>(), in[1].dptr<T>(), rows);
    sce_total_kernel<T><<<1, 1, 0, s>>>(n, rows.term(), out[0].dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

/// Inputs: g [1], data [n, c], label [n]; outputs: d data [n, c], d label (zeros).
void sce_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "_backward_softmax_cross_entropy";
  prologue(op, in, 3, 3, req, out, 2, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  zero_unless_add(ctx, req[1], out[1]);
  const int64_t n = in[1].shape[0], c = in[1].shape.ndim() == 2 ? in[1].shape[1] : 0;
  if (req[0] == OpReq::kNullOp || n * c == 0) return;
  expect_size(op, "data_grad", out[0], n * c);
  SceRows rows(dev, n);
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    sce_rows<T>(op, s, n, c, in[1].dptr<T>(), in[2].dptr<T>(), rows);
    sce_grad_kernel<T><<<grid_for(n * c), kBlock, 0, s>>>(n, c, in[0].dptr<T>(), in[1].dptr<T>(), rows.mx(), rows.sum(),
                                                          rows.cls(), out[0].dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void register_elemwise(OpRegistry& r) {
  set_gpu(r, "LeakyReLU", lrelu_forward);
  set_gpu(r, "_backward_LeakyReLU", lrelu_backward);
  set_gpu(r, "LinearRegressionOutput", reg_forward<Reg::kLinear>);
  set_gpu(r, "_backward_linear_reg_out", reg_backward<Reg::kLinear>);
  set_gpu(r, "LogisticRegressionOutput", reg_forward<Reg::kLogistic>);
  set_gpu(r, "_backward_logistic_reg_out", reg_backward<Reg::kLogistic>);
  set_gpu(r, "MAERegressionOutput", reg_forward<Reg::kMAE>);
  set_gpu(r, "_backward_mae_reg_out", reg_backward<Reg::kMAE>);
  set_gpu(r, "Dropout", dropout_forward);
  set_gpu(r, "_backward_Dropout", dropout_backward);
  set_gpu(r, "SVMOutput", svm_forward);
  set_gpu(r, "_backward_SVMOutput", svm_backward);
  set_gpu(r, "softmax_cross_entropy", sce_forward);
  set_gpu(r, "_backward_softmax_cross_entropy", sce_backward);
}

}  // namespace nn_gpu
}  // namespace cuda
}  // namespace kiln
