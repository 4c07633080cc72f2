// LayerNorm, InstanceNorm, GroupNorm and their backward ops on the GPU, with the CPU kernels' contracts
// (src/main/cpp/ops/norm/layer_norm.cc, instance_norm.cc):
//
//   LayerNorm      data [outer, C, inner] normalized along `axis` (length C): rows r = o * inner + i;
//                  gamma, beta [C]; hidden outputs mean, std [outer, inner] (std = sqrt(var + eps)).
//   InstanceNorm   data (N, C, spatial...) as [N * C, S]: each row normalized over S; gamma, beta [C];
//                  hidden outputs mean, var [N, C] (the variance).
//   GroupNorm      the InstanceNorm kernels on [N * G, (C / G) * S] rows, gamma, beta [G]; outputs mean,
//                  std [N, G] (std = sqrt(var + eps), the statistic the backward reads).
//   backward       in: ograd, data, gamma, mean, std|var; out: data, gamma, beta grads.
//
// Row statistics: one warp per row (rows shorter than kLongRow), one block per row (longer ones),
// or, for LayerNorm on a non-last axis (inner > 1), one thread per row walking C strided elements
// (neighbouring threads read neighbouring addresses). gamma / beta grads: per-channel reductions
// (chan_partials) finished in order by one thread per channel. All sums in double; deterministic.
// The data grad pass runs last, so it may be written in place over ograd.
#include <cmath>

#include "ops/norm_common.cuh"

namespace kiln {
namespace cuda {
namespace norm_detail {
namespace {

// ---- LayerNorm forward ----------------------------------------------------------------------------

// inner == 1. x, y: [rows, C] (y null for kNullOp); gamma, beta: [C]; mean, sd: [rows]
template <int G, typename T>
__global__ void ln_fwd_rows_kernel(int64_t rows, int64_t C, double eps, const T* x, const T* __restrict__ gamma,
                                   const T* __restrict__ beta, T* y, int req, T* __restrict__ mean,
                                   T* __restrict__ sd) {
  __shared__ double sh[kRedWarps];
  for (int64_t r = Group<G>::first_row(); r < rows; r += Group<G>::row_step()) {
    const T* xr = x + r * C;  // [C]
    double mu, var;
    row_moments<G>(xr, C, sh, &mu, &var);
    const double sdv = sqrt(var + eps);
    if (Group<G>::lane() == 0) {
      mean[r] = (T)mu;
      sd[r] = (T)sdv;
    }
    if (y == nullptr) continue;
    const double inv = 1.0 / sdv;
    T* yr = y + r * C;  // [C]
    for (int64_t c = Group<G>::lane(); c < C; c += G)
      assign(yr, c, req, (T)(((double)xr[c] - mu) * inv * (double)gamma[c] + (double)beta[c]));
  }
}

// inner > 1: one thread per row r = o * inner + i. x, y: [outer, C, inner]; gamma, beta: [C]; mean, sd: [rows]
template <typename T>
__global__ void ln_fwd_cols_kernel(View v, double eps, const T* x, const T* __restrict__ gamma,
                                   const T* __restrict__ beta, T* y, int req, T* __restrict__ mean,
                                   T* __restrict__ sd) {
  const int64_t rows = v.outer * v.inner;
  KILN_GRID_STRIDE(r, rows) {
    const int64_t o = r / v.inner, i = r - o * v.inner;
    const int64_t off = o * v.C * v.inner + i;
    const T* xr = x + off;  // [C] with stride inner
    double s = 0;
    for (int64_t c = 0; c < v.C; ++c) s += (double)xr[c * v.inner];
    const double mu = v.C > 0 ? s / (double)v.C : 0.0;
    double ss = 0;
    for (int64_t c = 0; c < v.C; ++c) {
      const double d = (double)xr[c * v.inner] - mu;
      ss += d * d;
    }
    const double sdv = sqrt((v.C > 0 ? ss / (double)v.C : 0.0) + eps);
    mean[r] = (T)mu;
    sd[r] = (T)sdv;
    if (y == nullptr) continue;
    const double inv = 1.0 / sdv;
    T* yr = y + off;  // [C] with stride inner
    for (int64_t c = 0; c < v.C; ++c)
      assign(yr, c * v.inner, req, (T)(((double)xr[c * v.inner] - mu) * inv * (double)gamma[c] + (double)beta[c]));
  }
}

// ---- LayerNorm backward ---------------------------------------------------------------------------

template <typename T>
struct LnGradF {  // dy, x: [outer, C, inner]; mean, sd: [outer, inner]
  const T* dy;
  const T* x;
  const T* mean;
  const T* sd;
  int64_t inner;
  __device__ void operator()(double* acc, int64_t o, int64_t, int64_t i, int64_t idx) const {
    const int64_t r = o * inner + i;
    acc[0] += (double)dy[idx];
    acc[1] += (double)dy[idx] * ((double)x[idx] - (double)mean[r]) / (double)sd[r];
  }
};

// part: [C, P, 2] (sum dy, sum dy * xhat); dgamma, dbeta: [C] (null for kNullOp)
template <typename T>
__global__ void gb_finalize_kernel(int64_t C, int P, const double* __restrict__ part, T* dgamma, int req_g,
                                   T* dbeta, int req_b) {
  KILN_GRID_STRIDE(c, C) {
    double s[2];
    sum_parts<2>(part, c, P, s);
    if (dgamma) assign(dgamma, c, req_g, (T)s[1]);
    if (dbeta) assign(dbeta, c, req_b, (T)s[0]);
  }
}

// inner == 1. dy, x, dx: [rows, C] (dx may alias dy); gamma: [C]; mean, sd: [rows]
template <int G, typename T>
__global__ void ln_bwd_rows_kernel(int64_t rows, int64_t C, const T* dy, const T* x, const T* __restrict__ gamma,
                                   const T* __restrict__ mean, const T* __restrict__ sd, T* dx, int req) {
  __shared__ double sh[2 * kRedWarps];
  for (int64_t r = Group<G>::first_row(); r < rows; r += Group<G>::row_step()) {
    const T* dyr = dy + r * C;  // [C]
    const T* xr = x + r * C;    // [C]
    T* dxr = dx + r * C;        // [C]
    const double mu = (double)mean[r], inv = 1.0 / (double)sd[r];
    double s[2] = {0, 0};
    for (int64_t c = Group<G>::lane(); c < C; c += G) {
      const double g = (double)dyr[c] * (double)gamma[c];
      s[0] += g;
      s[1] += g * ((double)xr[c] - mu) * inv;
    }
    Group<G>::template sum<2>(s, sh);
    const double mg = C > 0 ? s[0] / (double)C : 0.0, mgx = C > 0 ? s[1] / (double)C : 0.0;
    for (int64_t c = Group<G>::lane(); c < C; c += G) {
      const double xh = ((double)xr[c] - mu) * inv;
      assign(dxr, c, req, (T)(((double)dyr[c] * (double)gamma[c] - mg - xh * mgx) * inv));
    }
  }
}

// inner > 1: one thread per row. dy, x, dx: [outer, C, inner]; gamma: [C]; mean, sd: [outer, inner]
template <typename T>
__global__ void ln_bwd_cols_kernel(View v, const T* dy, const T* x, const T* __restrict__ gamma,
                                   const T* __restrict__ mean, const T* __restrict__ sd, T* dx, int req) {
  const int64_t rows = v.outer * v.inner;
  KILN_GRID_STRIDE(r, rows) {
    const int64_t o = r / v.inner, i = r - o * v.inner;
    const int64_t off = o * v.C * v.inner + i;
    const T* dyr = dy + off;  // [C] with stride inner
    const T* xr = x + off;    // [C] with stride inner
    T* dxr = dx + off;        // [C] with stride inner
    const double mu = (double)mean[r], inv = 1.0 / (double)sd[r];
    double sg = 0, sgx = 0;
    for (int64_t c = 0; c < v.C; ++c) {
      const double g = (double)dyr[c * v.inner] * (double)gamma[c];
      sg += g;
      sgx += g * ((double)xr[c * v.inner] - mu) * inv;
    }
    const double mg = v.C > 0 ? sg / (double)v.C : 0.0, mgx = v.C > 0 ? sgx / (double)v.C : 0.0;
    for (int64_t c = 0; c < v.C; ++c) {
      const double xh = ((double)xr[c * v.inner] - mu) * inv;
      assign(dxr, c * v.inner, req, (T)(((double)dyr[c * v.inner] * (double)gamma[c] - mg - xh * mgx) * inv));
    }
  }
}

// ---- InstanceNorm ---------------------------------------------------------------------------------

// x, y: [N * C, S] (y null for kNullOp); gamma, beta: [C]; mean, var: [N * C] (var holds sqrt(var + eps)
// when std_stat: GroupNorm, whose C is the number of groups)
template <int G, typename T>
__global__ void in_fwd_kernel(int64_t rows, int64_t C, int64_t S, double eps, bool std_stat, const T* x,
                              const T* __restrict__ gamma, const T* __restrict__ beta, T* y, int req,
                              T* __restrict__ mean, T* __restrict__ var) {
  __shared__ double sh[kRedWarps];
  for (int64_t r = Group<G>::first_row(); r < rows; r += Group<G>::row_step()) {
    const T* xr = x + r * S;  // [S]
    double mu, v;
    row_moments<G>(xr, S, sh, &mu, &v);
    if (Group<G>::lane() == 0) {
      mean[r] = (T)mu;
      var[r] = (T)(std_stat ? sqrt(v + eps) : v);
    }
    if (y == nullptr) continue;
    const int64_t c = r % C;
    const double scale = (double)gamma[c] / sqrt(v + eps), shift = (double)beta[c] - mu * scale;
    T* yr = y + r * S;  // [S]
    for (int64_t j = Group<G>::lane(); j < S; j += G) assign(yr, j, req, (T)((double)xr[j] * scale + shift));
  }
}

/// 1 / sqrt(var + eps) from the stored statistic (var, or the std itself when std_stat).
__device__ __forceinline__ double inv_sd(double stat, double eps, bool std_stat) {
  return std_stat ? 1.0 / stat : 1.0 / sqrt(stat + eps);
}

template <typename T>
struct InGradF {  // dy, x: [N, C, S]; mean, var: [N, C]
  const T* dy;
  const T* x;
  const T* mean;
  const T* var;
  int64_t C;
  double eps;
  bool std_stat;
  __device__ void operator()(double* acc, int64_t n, int64_t c, int64_t, int64_t idx) const {
    const int64_t r = n * C + c;
    const double inv = inv_sd((double)var[r], eps, std_stat);
    acc[0] += (double)dy[idx];
    acc[1] += (double)dy[idx] * ((double)x[idx] - (double)mean[r]) * inv;
  }
};

// dy, x, dx: [N * C, S] (dx may alias dy); gamma: [C]; mean, var: [N * C]
template <int G, typename T>
__global__ void in_bwd_kernel(int64_t rows, int64_t C, int64_t S, double eps, bool std_stat, const T* dy, const T* x,
                              const T* __restrict__ gamma, const T* __restrict__ mean, const T* __restrict__ var, T* dx,
                              int req) {
  __shared__ double sh[2 * kRedWarps];
  for (int64_t r = Group<G>::first_row(); r < rows; r += Group<G>::row_step()) {
    const T* dyr = dy + r * S;  // [S]
    const T* xr = x + r * S;    // [S]
    T* dxr = dx + r * S;        // [S]
    const double mu = (double)mean[r], inv = inv_sd((double)var[r], eps, std_stat);
    double s[2] = {0, 0};
    for (int64_t j = Group<G>::lane(); j < S; j += G) {
      s[0] += (double)dyr[j];
      s[1] += (double)dyr[j] * ((double)xr[j] - mu) * inv;
    }
    Group<G>::template sum<2>(s, sh);
    const double mg = S > 0 ? s[0] / (double)S : 0.0, mgx = S > 0 ? s[1] / (double)S : 0.0;
    const double gi = (double)gamma[r % C] * inv;
    for (int64_t j = Group<G>::lane(); j < S; j += G)
      assign(dxr, j, req, (T)(((double)dyr[j] - mg - ((double)xr[j] - mu) * inv * mgx) * gi));
  }
}

// ---- host side ---------------------------------------------------------------------------------------

/// Launches row kernel K<G> for `rows` rows of length L: a warp per row when short, else a block.
#define NORM_LAUNCH_ROWS(kernel, T, rows, L, s, ...)                                         \
  do {                                                                                       \
    if ((L) < kLongRow)                                                                      \
      kernel<32, T><<<Group<32>::grid(rows), Group<32>::block(), 0, s>>>(__VA_ARGS__);       \
    else                                                                                     \
      kernel<kRedBlock, T><<<Group<kRedBlock>::grid(rows), Group<kRedBlock>::block(), 0, s>>>(__VA_ARGS__); \
  } while (0)

int ln_axis(const char* op, const Attrs& a, const Shape& data) {
  const int ax = resolve_axis(a.i("axis"), data.ndim());
  if (ax < 0)
    throw KilnError(std::string(op) + ": axis " + std::to_string(a.i("axis")) + " out of range for data of shape " +
                    data.str());
  return ax;
}

void ln_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = "LayerNorm";
  prologue(op, in, 3, req, out, 3);
  const View v = view_of(in[0].shape, ln_axis(op, a, in[0].shape));
  const int64_t n = in[0].size(), rows = v.outer * v.inner;
  expect_size(op, "gamma", in[1], v.C);
  expect_size(op, "beta", in[2], v.C);
  expect_size(op, "output", out[0], n);
  expect_size(op, "mean", out[1], rows);
  expect_size(op, "std", out[2], rows);
  if (out[1].ptr == nullptr || out[2].ptr == nullptr)
    throw KilnError("LayerNorm: the mean/std outputs have no memory (the op declares outputs_always_written)");
  if (rows == 0) return;
  const double eps = a.f("eps");
  DeviceGuard guard(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* x = in[0].dptr<T>();
    T* y = out_ptr<T>(out[0], req[0]);
    const int rq = req_int(req[0]);
    if (v.inner == 1) {
      NORM_LAUNCH_ROWS(ln_fwd_rows_kernel, T, rows, v.C, s, rows, v.C, eps, x, in[1].dptr<T>(), in[2].dptr<T>(), y,
                       rq, out[1].dptr<T>(), out[2].dptr<T>());
    } else {
      ln_fwd_cols_kernel<T><<<grid_for(rows), kBlock, 0, s>>>(v, eps, x, in[1].dptr<T>(), in[2].dptr<T>(), y, rq,
                                                              out[1].dptr<T>(), out[2].dptr<T>());
    }
    KILN_CUDA_LAUNCH_CHECK("LayerNorm");
  });
}

void ln_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_LayerNorm";
  prologue(op, in, 5, req, out, 3);
  const View v = view_of(in[1].shape, ln_axis(op, a, in[1].shape));
  const int64_t n = in[1].size(), rows = v.outer * v.inner;
  expect_size(op, "ograd", in[0], n);
  expect_size(op, "gamma", in[2], v.C);
  expect_size(op, "mean", in[3], rows);
  expect_size(op, "std", in[4], rows);
  if (req[0] != OpReq::kNullOp) expect_size(op, "data grad", out[0], n);
  if (req[1] != OpReq::kNullOp) expect_size(op, "gamma grad", out[1], v.C);
  if (req[2] != OpReq::kNullOp) expect_size(op, "beta grad", out[2], v.C);
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    const T* dy = in[0].dptr<T>();     // [outer, C, inner]
    const T* x = in[1].dptr<T>();      // [outer, C, inner]
    const T* gamma = in[2].dptr<T>();  // [C]
    const T* mean = in[3].dptr<T>();   // [outer, inner]
    const T* sd = in[4].dptr<T>();     // [outer, inner]
    if ((req[1] != OpReq::kNullOp || req[2] != OpReq::kNullOp) && v.C > 0) {
      const int P = chan_parts(v);
      DeviceScratch scratch(dev, sizeof(double) * (size_t)(v.C * P * 2));
      double* part = scratch.as<double>();  // [C, P, 2]
      chan_partials<2>(s, v, P, LnGradF<T>{dy, x, mean, sd, v.inner}, part, "_backward_LayerNorm gamma/beta sums");
      gb_finalize_kernel<T><<<grid_for(v.C), kBlock, 0, s>>>(v.C, P, part, out_ptr<T>(out[1], req[1]),
                                                             req_int(req[1]), out_ptr<T>(out[2], req[2]),
                                                             req_int(req[2]));
      KILN_CUDA_LAUNCH_CHECK("_backward_LayerNorm gamma/beta grads");
    }
    // data grad last: it may be written in place over dy, which the gamma / beta sums read
    if (req[0] != OpReq::kNullOp && rows > 0) {
      T* dx = out[0].dptr<T>();
      const int rq = req_int(req[0]);
      if (v.inner == 1) {
        NORM_LAUNCH_ROWS(ln_bwd_rows_kernel, T, rows, v.C, s, rows, v.C, dy, x, gamma, mean, sd, dx, rq);
      } else {
        ln_bwd_cols_kernel<T><<<grid_for(rows), kBlock, 0, s>>>(v, dy, x, gamma, mean, sd, dx, rq);
      }
      KILN_CUDA_LAUNCH_CHECK("_backward_LayerNorm data grad");
    }
  });
}

/// Rows [N * C, S] of InstanceNorm (C channels, statistic var) or GroupNorm (C groups, std_stat).
struct InDims {
  int64_t N, C, S;
  bool std_stat = false;
};

InDims in_dims(const char* op, const Shape& s) {
  if (s.ndim() < 3)
    throw KilnError(std::string(op) + " only accepts input of 3 or more dimensions, got " + s.str());
  return InDims{s[0], s[1], s.prod(2, s.ndim())};
}

/// GroupNorm's rows: [N * num_groups, (C / num_groups) * d2 * ...], with the std as statistic.
InDims gn_dims(const char* op, const Attrs& a, const Shape& s) {
  const int64_t G = a.i("num_groups");
  if (s.ndim() < 3) throw KilnError(std::string(op) + " only accepts input of 3 or more dimensions, got " + s.str());
  if (G < 1 || s[1] % G != 0)
    throw KilnError(std::string(op) + ": the channels of data " + s.str() + " are not divisible by num_groups=" +
                    std::to_string(G));
  return InDims{s[0], G, (s[1] / G) * s.prod(2, s.ndim()), true};
}

// in: data, gamma, beta; out: output, mean, var (std for GroupNorm)
void rows_forward(const char* op, const InDims& d, const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
                  const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  prologue(op, in, 3, req, out, 3);
  const int64_t rows = d.N * d.C;
  expect_size(op, "gamma", in[1], d.C);
  expect_size(op, "beta", in[2], d.C);
  expect_size(op, "output", out[0], rows * d.S);
  expect_size(op, "mean", out[1], rows);
  expect_size(op, d.std_stat ? "std" : "var", out[2], rows);
  if (out[1].ptr == nullptr || out[2].ptr == nullptr)
    throw KilnError(std::string(op) + ": the mean/var outputs have no memory (the op declares outputs_always_written)");
  if (rows == 0) return;
  const double eps = a.f("eps");
  DeviceGuard guard(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    NORM_LAUNCH_ROWS(in_fwd_kernel, T, rows, d.S, s, rows, d.C, d.S, eps, d.std_stat, in[0].dptr<T>(),
                     in[1].dptr<T>(), in[2].dptr<T>(), out_ptr<T>(out[0], req[0]), req_int(req[0]), out[1].dptr<T>(),
                     out[2].dptr<T>());
    KILN_CUDA_LAUNCH_CHECK(op);
  });
}

// in: ograd, data, gamma, mean, var (std for GroupNorm); out: data, gamma, beta grads
void rows_backward(const char* op, const InDims& d, const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
                   const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  prologue(op, in, 5, req, out, 3);
  const int64_t rows = d.N * d.C;
  expect_size(op, "ograd", in[0], rows * d.S);
  expect_size(op, "gamma", in[2], d.C);
  expect_size(op, "mean", in[3], rows);
  expect_size(op, d.std_stat ? "std" : "var", in[4], rows);
  if (req[0] != OpReq::kNullOp) expect_size(op, "data grad", out[0], rows * d.S);
  if (req[1] != OpReq::kNullOp) expect_size(op, "gamma grad", out[1], d.C);
  if (req[2] != OpReq::kNullOp) expect_size(op, "beta grad", out[2], d.C);
  const double eps = a.f("eps");
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    const T* dy = in[0].dptr<T>();     // [N, C, S]
    const T* x = in[1].dptr<T>();      // [N, C, S]
    const T* gamma = in[2].dptr<T>();  // [C]
    const T* mean = in[3].dptr<T>();   // [N, C]
    const T* var = in[4].dptr<T>();    // [N, C]
    if ((req[1] != OpReq::kNullOp || req[2] != OpReq::kNullOp) && d.C > 0) {
      View v;
      v.outer = d.N;
      v.C = d.C;
      v.inner = d.S;
      const int P = chan_parts(v);
      DeviceScratch scratch(dev, sizeof(double) * (size_t)(v.C * P * 2));
      double* part = scratch.as<double>();  // [C, P, 2]
      chan_partials<2>(s, v, P, InGradF<T>{dy, x, mean, var, d.C, eps, d.std_stat}, part, op);
      gb_finalize_kernel<T><<<grid_for(v.C), kBlock, 0, s>>>(v.C, P, part, out_ptr<T>(out[1], req[1]),
                                                             req_int(req[1]), out_ptr<T>(out[2], req[2]),
                                                             req_int(req[2]));
      KILN_CUDA_LAUNCH_CHECK(op);
    }
    // data grad last: it may be written in place over dy, which the gamma / beta sums read
    if (req[0] != OpReq::kNullOp && rows > 0) {
      NORM_LAUNCH_ROWS(in_bwd_kernel, T, rows, d.S, s, rows, d.C, d.S, eps, d.std_stat, dy, x, gamma, mean, var,
                       out[0].dptr<T>(), req_int(req[0]));
      KILN_CUDA_LAUNCH_CHECK(op);
    }
  });
}

void in_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  rows_forward("InstanceNorm", in_dims("InstanceNorm", in[0].shape), ctx, a, in, req, out);
}

void in_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_InstanceNorm";
  if (in.size() < 2) throw KilnError(std::string(op) + ": expected 5 inputs, got " + std::to_string(in.size()));
  rows_backward(op, in_dims(op, in[1].shape), ctx, a, in, req, out);
}

void gn_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  if (in.empty()) throw KilnError("GroupNorm: expected 3 inputs, got 0");
  rows_forward("GroupNorm", gn_dims("GroupNorm", a, in[0].shape), ctx, a, in, req, out);
}

void gn_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_GroupNorm";
  if (in.size() < 2) throw KilnError(std::string(op) + ": expected 5 inputs, got " + std::to_string(in.size()));
  rows_backward(op, gn_dims(op, a, in[1].shape), ctx, a, in, req, out);
}

#undef NORM_LAUNCH_ROWS

}  // namespace

void register_layer_instance(OpRegistry& r) {
  set_gpu(r, "LayerNorm", ln_forward);
  set_gpu(r, "_backward_LayerNorm", ln_backward);
  set_gpu(r, "InstanceNorm", in_forward);
  set_gpu(r, "_backward_InstanceNorm", in_backward);
  set_gpu(r, "GroupNorm", gn_forward);
  set_gpu(r, "_backward_GroupNorm", gn_backward);
}

}  // namespace norm_detail
}  // namespace cuda
}  // namespace kiln
