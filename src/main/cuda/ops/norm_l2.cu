// L2Normalization and its backward on the GPU, with the CPU kernels' contract
// (src/main/cpp/ops/norm/l2_normalization.cc) and the shared view of kiln/l2_normalization.h:
//   y = x / norm, norm = sqrt(sum_K x^2 + eps);   dx = (dy - y * sum_K(dy * y)) / norm
// over the vectors (rows) of data viewed as [outer, K, inner]. inner == 1 (instance, spatial): one
// warp per row, or one block for long rows; inner > 1 (channel): one thread per row walking K
// strided elements (neighbouring threads read neighbouring addresses). Sums in double, fixed
// reduction trees (deterministic). Outputs may alias inputs (y over x, dx over dy): each row is
// read in full before it is written.
#include "kiln/l2_normalization.h"
#include "ops/norm_common.cuh"

namespace kiln {
namespace cuda {
namespace norm_detail {
namespace {

// inner == 1. x, y: [rows, K] (y null for kNullOp); norm: [rows]
template <int G, typename T>
__global__ void l2_fwd_rows_kernel(int64_t rows, int64_t K, double eps, const T* x, T* y, int req,
                                   T* __restrict__ norm) {
  __shared__ double sh[kRedWarps];
  for (int64_t r = Group<G>::first_row(); r < rows; r += Group<G>::row_step()) {
    const T* xr = x + r * K;  // [K]
    double s[1] = {0};
    for (int64_t k = Group<G>::lane(); k < K; k += G) s[0] += (double)xr[k] * (double)xr[k];
    Group<G>::template sum<1>(s, sh);
    const double n = sqrt(s[0] + eps);
    if (Group<G>::lane() == 0) norm[r] = (T)n;
    if (y == nullptr) continue;
    T* yr = y + r * K;  // [K]
    for (int64_t k = Group<G>::lane(); k < K; k += G) assign(yr, k, req, (T)((double)xr[k] / n));
  }
}

// inner > 1: one thread per row r = o * inner + i. x, y: [outer, K, inner]; norm: [outer * inner]
template <typename T>
__global__ void l2_fwd_cols_kernel(L2View v, double eps, const T* x, T* y, int req, T* __restrict__ norm) {
  KILN_GRID_STRIDE(r, v.outer * v.inner) {
    const int64_t off = (r / v.inner) * v.K * v.inner + r % v.inner;
    const T* xr = x + off;  // [K] with stride inner
    double s = 0;
    for (int64_t k = 0; k < v.K; ++k) s += (double)xr[k * v.inner] * (double)xr[k * v.inner];
    const double n = sqrt(s + eps);
    norm[r] = (T)n;
    if (y == nullptr) continue;
    for (int64_t k = 0; k < v.K; ++k) assign(y + off, k * v.inner, req, (T)((double)xr[k * v.inner] / n));
  }
}

// inner == 1. dy, y, dx: [rows, K] (dx may alias dy); norm: [rows]
template <int G, typename T>
__global__ void l2_bwd_rows_kernel(int64_t rows, int64_t K, const T* dy, const T* y, const T* __restrict__ norm,
                                   T* dx, int req) {
  __shared__ double sh[kRedWarps];
  for (int64_t r = Group<G>::first_row(); r < rows; r += Group<G>::row_step()) {
    const T* dyr = dy + r * K;  // [K]
    const T* yr = y + r * K;    // [K]
    double s[1] = {0};
    for (int64_t k = Group<G>::lane(); k < K; k += G) s[0] += (double)dyr[k] * (double)yr[k];
    Group<G>::template sum<1>(s, sh);
    const double inv = 1.0 / (double)norm[r];
    T* dxr = dx + r * K;  // [K]
    for (int64_t k = Group<G>::lane(); k < K; k += G)
      assign(dxr, k, req, (T)(((double)dyr[k] - (double)yr[k] * s[0]) * inv));
  }
}

// inner > 1: one thread per row. dy, y, dx: [outer, K, inner]; norm: [outer * inner]
template <typename T>
__global__ void l2_bwd_cols_kernel(L2View v, const T* dy, const T* y, const T* __restrict__ norm, T* dx, int req) {
  KILN_GRID_STRIDE(r, v.outer * v.inner) {
    const int64_t off = (r / v.inner) * v.K * v.inner + r % v.inner;
    double s = 0;
    for (int64_t k = 0; k < v.K; ++k) s += (double)dy[off + k * v.inner] * (double)y[off + k * v.inner];
    const double inv = 1.0 / (double)norm[r];
    for (int64_t k = 0; k < v.K; ++k) {
      const int64_t i = off + k * v.inner;
      assign(dx, i, req, (T)(((double)dy[i] - (double)y[i] * s) * inv));
    }
  }
}

/// Launches row kernel K<G> for `rows` rows of length L: a warp per row when short, else a block.
#define L2_LAUNCH_ROWS(kernel, T, rows, L, s, ...)                                                          \
  do {                                                                                                    \
    if ((L) < kLongRow)                                                                                   \
      kernel<32, T><<<Group<32>::grid(rows), Group<32>::block(), 0, s>>>(__VA_ARGS__);                    \
    else                                                                                                  \
      kernel<kRedBlock, T><<<Group<kRedBlock>::grid(rows), Group<kRedBlock>::block(), 0, s>>>(__VA_ARGS__); \
  } while (0)

// in: data; out: output, norm
void l2_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = "L2Normalization";
  prologue(op, in, 1, req, out, 2);
  const L2View v = l2_view(a.s("mode"), in[0].shape);
  const int64_t rows = v.outer * v.inner;
  expect_size(op, "output", out[0], in[0].size());
  expect_size(op, "norm", out[1], rows);
  if (out[1].ptr == nullptr) throw KilnError("L2Normalization: the norm output has no memory (outputs_always_written)");
  if (rows == 0) return;
  const double eps = a.f("eps");
  DeviceGuard guard(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    T* y = out_ptr<T>(out[0], req[0]);
    if (v.inner == 1) {
      L2_LAUNCH_ROWS(l2_fwd_rows_kernel, T, rows, v.K, s, rows, v.K, eps, in[0].dptr<T>(), y, req_int(req[0]),
                     out[1].dptr<T>());
    } else {
      l2_fwd_cols_kernel<T><<<grid_for(rows), kBlock, 0, s>>>(v, eps, in[0].dptr<T>(), y, req_int(req[0]),
                                                              out[1].dptr<T>());
    }
    KILN_CUDA_LAUNCH_CHECK(op);
  });
}

// in: ograd, output, norm; out: data grad
void l2_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_L2Normalization";
  prologue(op, in, 3, req, out, 1);
  const L2View v = l2_view(a.s("mode"), in[1].shape);
  const int64_t rows = v.outer * v.inner;
  expect_size(op, "ograd", in[0], in[1].size());
  expect_size(op, "norm", in[2], rows);
  if (req[0] == OpReq::kNullOp || rows == 0) return;
  expect_size(op, "data grad", out[0], in[1].size());
  DeviceGuard guard(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    if (v.inner == 1) {
      L2_LAUNCH_ROWS(l2_bwd_rows_kernel, T, rows, v.K, s, rows, v.K, in[0].dptr<T>(), in[1].dptr<T>(),
                     in[2].dptr<T>(), out[0].dptr<T>(), req_int(req[0]));
    } else {
      l2_bwd_cols_kernel<T><<<grid_for(rows), kBlock, 0, s>>>(v, in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(),
                                                              out[0].dptr<T>(), req_int(req[0]));
    }
    KILN_CUDA_LAUNCH_CHECK(op);
  });
}

#undef L2_LAUNCH_ROWS

}  // namespace

void register_l2_normalization(OpRegistry& r) {
  set_gpu(r, "L2Normalization", l2_forward);
  set_gpu(r, "_backward_L2Normalization", l2_backward);
}

}  // namespace norm_detail
}  // namespace cuda
}  // namespace kiln
