// BatchNorm and _backward_BatchNorm on the GPU, with the CPU kernel's contract
// (src/main/cpp/ops/norm/batch_norm.cc):
//
//   forward   in: data [outer, C, inner] (channel axis `axis`), gamma, beta, moving_mean, moving_var [C]
//             out: output [outer, C, inner], mean [C], var [C] (the INVERSE std 1/sqrt(var + eps))
//             training (is_train and not use_global_stats): batch mean and biased batch variance
//             (one pass of double sums, shifted by the channel's first element); otherwise
//             moving_mean / moving_var. fix_gamma reads gamma as
//             1 and writes 1 into gamma. mean / var are written whatever output's request.
//   backward  in: ograd [outer, C, inner], mean, var (inverse std) [C], data, gamma, moving_mean,
//                 moving_var [C]
//             out: data grad, gamma grad, beta grad; in training mode also updates the moving
//             statistics (moving = moving * momentum + batch * (1 - momentum)), as the CPU op does.
//
// Per-channel sums: a fixed partition of every channel into P chunks (chan_partials), partial sums
// reduced in order by one thread per channel; then an elementwise pass applies per-channel
// coefficients kept in double. Deterministic; output may alias data, data grad may alias ograd
// (every element is read and written by the same thread of the last pass).
//
// Types: data, output and gradients of one dtype D; gamma, beta and the statistics of W = D, or
// float32 when D is float16 / bfloat16 (bn_infer_type). 16-bit data is read exactly and each 16-bit
// output is the double result rounded to float32, then to D (under kAddTo added to float(y) first):
// what the CPU's promoted kernel computes, without float32 copies of the data.
#include <cmath>

#include "kiln/low_precision.h"
#include "ops/norm_common.cuh"

namespace kiln {
namespace cuda {
namespace norm_detail {
namespace {

// ---- functors of the per-channel reductions -------------------------------------------------------

// The batch statistics in one read of x: sums of d and d^2 with d = x - K_c, K_c = x[0, c, 0] (the
// channel's first element). mean = K + sum(d) / M and var = sum(d^2) / M - (sum(d) / M)^2 then lose
// nothing to cancellation as long as K is within a few standard deviations of the mean, which an
// element of the channel is (the "shifted data" algorithm; plain sums of x and x^2 would cancel
// when |mean| >> std). A channel whose first element is infinite or NaN shifts by 0, so its mean
// is the infinity (or NaN) the CPU's two passes give. x: [outer, C, inner]
template <typename D>
__device__ __forceinline__ double bn_shift(const D* x, int64_t c, int64_t inner) {
  const double k = widen_to<double>(x[c * inner]);
  return isfinite(k) ? k : 0.0;
}

template <typename D>
struct ShiftedSumsF {
  const D* x;
  int64_t inner;
  __device__ void operator()(double* acc, int64_t, int64_t c, int64_t, int64_t idx) const {
    const double d = widen_to<double>(x[idx]) - bn_shift(x, c, inner);
    acc[0] += d;
    acc[1] += d * d;
  }
};

template <typename D, typename W>
struct BwdF {  // dy, x: [outer, C, inner] (D), mu: [C] (W: saved mean or moving mean)
  const D* dy;
  const D* x;
  const W* mu;
  __device__ void operator()(double* acc, int64_t, int64_t c, int64_t, int64_t idx) const {
    const double g = widen_to<double>(dy[idx]);
    acc[0] += g;
    acc[1] += (widen_to<double>(x[idx]) - (double)mu[c]) * g;
  }
};

// ---- per-channel kernels (one thread per channel) ----------------------------------------------

// part: [C, P, 2] shifted sums (ShiftedSumsF; batch_stats), x: [outer, C, inner] (its shifts
// x[0, c, 0], read when M > 0); gamma, beta, mm, mv, mean, invstd: [C]; coef: [C, 2] (scale, shift)
// for the output pass
template <typename D, typename T>
__global__ void bn_fwd_finalize_kernel(int64_t C, int P, int64_t M, int64_t inner, bool batch_stats, bool fix_gamma,
                                       double eps, const double* __restrict__ part, const D* __restrict__ x,
                                       T* gamma, const T* beta, const T* mm, const T* mv, T* mean, T* invstd,
                                       double* __restrict__ coef) {
  KILN_GRID_STRIDE(c, C) {
    double mu, inv;
    if (batch_stats) {
      double s[2];
      sum_parts<2>(part, c, P, s);
      const double m1 = M > 0 ? s[0] / (double)M : 0.0;
      double var = M > 0 ? s[1] / (double)M - m1 * m1 : 0.0;
      if (var < 0) var = 0;  // rounding; a NaN (NaN or opposite infinities in the channel) stays, as on the CPU
      mu = M > 0 ? bn_shift(x, c, inner) + m1 : 0.0;
      if (var == 0 && eps == 0) inv = 0;  // as MXNet: no division by zero
      else inv = 1.0 / sqrt(var + eps);
    } else {
      mu = (double)mm[c];
      inv = 1.0 / sqrt((double)mv[c] + eps);
    }
    mean[c] = (T)mu;
    invstd[c] = (T)inv;
    if (fix_gamma) gamma[c] = T(1);
    const double g = fix_gamma ? 1.0 : (double)gamma[c];
    const double scale = g * inv;
    coef[2 * c] = scale;
    coef[2 * c + 1] = (double)beta[c] - mu * scale;
  }
}

// part: [C, P, 2] (sum dy, sum (x - mu) dy); smean, sinv, gamma, mm, mv, dgamma, dbeta: [C]
// (dgamma / dbeta null for kNullOp); coef: [C, 4] (mu, gmean, k, inv * w) for the data-grad pass
template <typename T>
__global__ void bn_bwd_finalize_kernel(int64_t C, int P, int64_t M, bool batch_stats, bool fix_gamma, double eps,
                                       double momentum, const double* __restrict__ part, const T* smean,
                                       const T* sinv, const T* gamma, T* mm, T* mv, T* dgamma, int req_g, T* dbeta,
                                       int req_b, double* __restrict__ coef) {
  KILN_GRID_STRIDE(c, C) {
    double s[2];
    sum_parts<2>(part, c, P, s);
    const double sum_dy = s[0], dotp = s[1];
    const double w = fix_gamma ? 1.0 : (double)gamma[c];
    double mu, inv;
    if (batch_stats) {
      mu = (double)smean[c];
      inv = (double)sinv[c];
      const double var = 1.0 / (inv * inv) - eps;  // the biased batch variance
      mm[c] = (T)((double)mm[c] * momentum + mu * (1.0 - momentum));
      mv[c] = (T)((double)mv[c] * momentum + var * (1.0 - momentum));
    } else {
      mu = (double)mm[c];
      inv = 1.0 / sqrt((double)mv[c] + eps);
    }
    coef[4 * c] = mu;
    coef[4 * c + 1] = batch_stats && M > 0 ? sum_dy / (double)M : 0.0;
    coef[4 * c + 2] = batch_stats && M > 0 ? dotp * inv * inv / (double)M : 0.0;
    coef[4 * c + 3] = inv * w;
    if (dgamma) assign(dgamma, c, req_g, (T)(fix_gamma ? 0.0 : dotp * inv));
    if (dbeta) assign(dbeta, c, req_b, (T)sum_dy);
  }
}

// ---- elementwise passes ----------------------------------------------------------------------------

// x, y: [outer, C, inner] (D; y may alias x); coef: [C, 2] (scale, shift). I: index type (32-bit when n fits)
template <typename D, typename I>
__global__ void bn_apply_kernel(I n, I C, I inner, const D* x, D* y, int req, const double* __restrict__ coef) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    const I c = (i / inner) % C;
    store_from(y, (int64_t)i, req, widen_to<double>(x[i]) * coef[2 * c] + coef[2 * c + 1]);
  }
}

// dy, x, dx: [outer, C, inner] (D; dx may alias dy); coef: [C, 4] (mu, gmean, k, iw)
template <typename D, typename I>
__global__ void bn_dx_kernel(I n, I C, I inner, const D* dy, const D* x, D* dx, int req,
                             const double* __restrict__ coef) {
  for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    const I c = (i / inner) % C;
    const double* k = coef + 4 * c;
    store_from(dx, (int64_t)i, req, (widen_to<double>(dy[i]) - k[1] - (widen_to<double>(x[i]) - k[0]) * k[2]) * k[3]);
  }
}

// ---- host side ---------------------------------------------------------------------------------------

int bn_axis(const char* op, const Attrs& a, const Shape& data) {
  const int ax = data.ndim() == 0 ? -1 : resolve_axis(a.i("axis"), data.ndim());
  if (ax < 0)
    throw KilnError(std::string(op) + ": Channel axis out of range: " + std::to_string(a.i("axis")) +
                    " for data of shape " + data.str());
  return ax;
}

bool fits32(int64_t n) { return n < (int64_t)0x7fffffff; }

/// The forward's kernels for data type D and parameter type W (see the file comment).
template <typename D, typename W>
void bn_forward_t(cudaStream_t s, const View& v, int P, int64_t n, bool batch_stats, bool fix_gamma, double eps,
                  const std::vector<TBlob>& in, const std::vector<OpReq>& req, const std::vector<TBlob>& out,
                  double* part, double* coef) {
  const int64_t M = v.outer * v.inner;
  const D* x = in[0].dptr<D>();  // [outer, C, inner]
  if (batch_stats) chan_partials<2>(s, v, P, ShiftedSumsF<D>{x, v.inner}, part, "BatchNorm sums");
  bn_fwd_finalize_kernel<D, W><<<grid_for(v.C), kBlock, 0, s>>>(
      v.C, P, M, v.inner, batch_stats, fix_gamma, eps, part, x, in[1].dptr<W>(), in[2].dptr<W>(), in[3].dptr<W>(),
      in[4].dptr<W>(), out[1].dptr<W>(), out[2].dptr<W>(), coef);
  KILN_CUDA_LAUNCH_CHECK("BatchNorm statistics");
  if (req[0] != OpReq::kNullOp && n > 0) {
    D* y = out[0].dptr<D>();  // [outer, C, inner], may alias x
    if (fits32(n))
      bn_apply_kernel<D, uint32_t><<<grid_for(n), kBlock, 0, s>>>((uint32_t)n, (uint32_t)v.C, (uint32_t)v.inner, x, y,
                                                                  req_int(req[0]), coef);
    else
      bn_apply_kernel<D, int64_t><<<grid_for(n), kBlock, 0, s>>>(n, v.C, v.inner, x, y, req_int(req[0]), coef);
    KILN_CUDA_LAUNCH_CHECK("BatchNorm output");
  }
}

void bn_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = "BatchNorm";
  const DType dt = prologue_data_params(op, in, 5, req, out, 3, {0}, {0});
  const View v = view_of(in[0].shape, bn_axis(op, a, in[0].shape));
  const int64_t n = in[0].size();
  for (int i = 1; i <= 4; ++i) expect_size(op, "a parameter / moving statistic", in[i], v.C);
  expect_size(op, "output", out[0], n);
  expect_size(op, "mean", out[1], v.C);
  expect_size(op, "var", out[2], v.C);
  if (out[1].ptr == nullptr || out[2].ptr == nullptr)
    throw KilnError("BatchNorm: the mean/var outputs have no memory (the op declares outputs_always_written)");
  if (v.C == 0) return;
  const bool batch_stats = ctx.is_train && !a.b("use_global_stats");
  const bool fix_gamma = a.b("fix_gamma");
  const double eps = a.f("eps");
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  cudaStream_t s = stream_of(ctx);
  const int P = chan_parts(v);
  // scratch: part [C, P, 2], coef [C, 2]
  DeviceScratch scratch(dev, sizeof(double) * (size_t)(v.C * P * 2 + 2 * v.C));
  double* part = scratch.as<double>();
  double* coef = part + v.C * P * 2;
  if (dt == DType::kFloat16)
    bn_forward_t<__half, float>(s, v, P, n, batch_stats, fix_gamma, eps, in, req, out, part, coef);
  else if (dt == DType::kBfloat16)
    bn_forward_t<__nv_bfloat16, float>(s, v, P, n, batch_stats, fix_gamma, eps, in, req, out, part, coef);
  else
    KILN_FLOAT_SWITCH(dt, T, { bn_forward_t<T, T>(s, v, P, n, batch_stats, fix_gamma, eps, in, req, out, part, coef); });
}

/// The backward's kernels for data type D and parameter type W (see the file comment).
template <typename D, typename W>
void bn_backward_t(cudaStream_t s, const View& v, int P, int64_t n, bool batch_stats, bool fix_gamma, double eps,
                   double momentum, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out, double* part, double* coef) {
  const int64_t M = v.outer * v.inner;
  const D* dy = in[0].dptr<D>();                             // [outer, C, inner]
  const D* x = in[3].dptr<D>();                              // [outer, C, inner]
  W* mm = in[5].dptr<W>();                                   // [C], updated in training
  W* mv = in[6].dptr<W>();                                   // [C], updated in training
  const W* mu = batch_stats ? in[1].dptr<W>() : mm;          // [C]
  chan_partials<2>(s, v, P, BwdF<D, W>{dy, x, mu}, part, "_backward_BatchNorm sums");
  bn_bwd_finalize_kernel<W><<<grid_for(v.C), kBlock, 0, s>>>(
      v.C, P, M, batch_stats, fix_gamma, eps, momentum, part, in[1].dptr<W>(), in[2].dptr<W>(), in[4].dptr<W>(), mm,
      mv, out_ptr<W>(out[1], req[1]), req_int(req[1]), out_ptr<W>(out[2], req[2]), req_int(req[2]), coef);
  KILN_CUDA_LAUNCH_CHECK("_backward_BatchNorm statistics");
  if (req[0] != OpReq::kNullOp && n > 0) {
    D* dx = out[0].dptr<D>();  // [outer, C, inner], may alias dy
    if (fits32(n))
      bn_dx_kernel<D, uint32_t><<<grid_for(n), kBlock, 0, s>>>((uint32_t)n, (uint32_t)v.C, (uint32_t)v.inner, dy, x,
                                                               dx, req_int(req[0]), coef);
    else
      bn_dx_kernel<D, int64_t><<<grid_for(n), kBlock, 0, s>>>(n, v.C, v.inner, dy, x, dx, req_int(req[0]), coef);
    KILN_CUDA_LAUNCH_CHECK("_backward_BatchNorm data grad");
  }
}

void bn_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_BatchNorm";
  const DType dt = prologue_data_params(op, in, 7, req, out, 3, {0, 3}, {0});
  const View v = view_of(in[3].shape, bn_axis(op, a, in[3].shape));
  const int64_t n = in[3].size();
  expect_size(op, "ograd", in[0], n);
  for (int i : {1, 2, 4, 5, 6}) expect_size(op, "a saved / moving statistic or gamma", in[i], v.C);
  if (req[0] != OpReq::kNullOp) expect_size(op, "data grad", out[0], n);
  if (req[1] != OpReq::kNullOp) expect_size(op, "gamma grad", out[1], v.C);
  if (req[2] != OpReq::kNullOp) expect_size(op, "beta grad", out[2], v.C);
  if (v.C == 0) return;
  const bool batch_stats = ctx.is_train && !a.b("use_global_stats");
  const bool fix_gamma = a.b("fix_gamma");
  const double eps = a.f("eps"), momentum = a.f("momentum");
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  cudaStream_t s = stream_of(ctx);
  const int P = chan_parts(v);
  // scratch: part [C, P, 2], coef [C, 4]
  DeviceScratch scratch(dev, sizeof(double) * (size_t)(v.C * P * 2 + 4 * v.C));
  double* part = scratch.as<double>();
  double* coef = part + v.C * P * 2;
  if (dt == DType::kFloat16)
    bn_backward_t<__half, float>(s, v, P, n, batch_stats, fix_gamma, eps, momentum, in, req, out, part, coef);
  else if (dt == DType::kBfloat16)
    bn_backward_t<__nv_bfloat16, float>(s, v, P, n, batch_stats, fix_gamma, eps, momentum, in, req, out, part, coef);
  else
    KILN_FLOAT_SWITCH(dt, T, {
      bn_backward_t<T, T>(s, v, P, n, batch_stats, fix_gamma, eps, momentum, in, req, out, part, coef);
    });
}

}  // namespace

void register_batch_norm(OpRegistry& r) {
  set_gpu(r, "BatchNorm", bn_forward, kNativeLowPrecision);
  set_gpu(r, "_backward_BatchNorm", bn_backward, kNativeLowPrecision);
}

}  // namespace norm_detail
}  // namespace cuda
}  // namespace kiln
