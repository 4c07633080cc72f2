// GPU kernels of softmax, log_softmax, softmin (softmax of -x/T), SoftmaxActivation and SoftmaxOutput (and their backward ops),
// mirroring src/main/cpp/ops/nn/softmax.cc and softmax_output.cc.
//
// Every op normalizes data viewed as [outer, K, inner] along K. A "row" is one (outer, inner)
// position: K elements at stride inner starting at o*K*inner + j. Three launch shapes share one
// device routine (deterministic: fixed reduction trees, no atomics):
//   - a warp per row       (K <= 512, and inner == 1 or few rows)
//   - a block per row      (K > 512, and inner == 1 or few rows)
//   - a thread per row     (inner > 1 with many rows: consecutive threads read consecutive j, coalesced)
// Outputs may alias inputs (forward in place, backward dx over dy or y): every pass that writes
// reads the same index in the same thread, after all the reductions.
#include <memory>
#include <string>

#include "ops/nn_common.cuh"
#include "kiln/int_convert.h"

namespace kiln {
namespace cuda {
namespace nn_gpu {
namespace {

constexpr int kWarpRowsMaxK = 512;     // rows up to this long take a warp each
constexpr int64_t kColumnRows = 2048;  // inner > 1 with at least this many rows: a thread per row

struct WarpRed {
  template <typename T, typename Op> __device__ T operator()(T v, Op op) const { return warp_reduce(v, op); }
};
template <typename T>
struct BlockRed {
  T* smem;  // [32]
  template <typename Op> __device__ T operator()(T v, Op op) const { return block_reduce(v, op, smem); }
};
struct NoRed {
  template <typename T, typename Op> __device__ T operator()(T v, Op) const { return v; }
};

/// Row r of [outer, K, inner] starts at (r / inner) * K * inner + r % inner, stride inner.
__device__ __forceinline__ int64_t row_base(int64_t r, int64_t K, int64_t inner) {
  return inner == 1 ? r * K : (r / inner) * K * inner + r % inner;
}

/// One row of softmax (log softmax): this thread handles k = t, t + nt, ...; red combines the
/// partial results of the nt threads of the row.
template <typename T, bool kLog, typename R>
__device__ void fwd_row(const T* x, T* y, int64_t K, int64_t st, int t, int nt, T inv_t, int req, R red) {
  // x: [K] at stride st, y: [K] at stride st (may alias x)
  // the largest x * inv_t: max(x), or min(x) = -max(-x) when inv_t < 0 (softmin); negation is exact
  const T sg = inv_t < T(0) ? T(-1) : T(1);
  T mx = lowest_of<T>();
  for (int64_t k = t; k < K; k += nt) mx = MaxOp()(mx, sg * x[k * st]);
  mx = sg * red(mx, MaxOp());
  T sum = T(0);
  for (int64_t k = t; k < K; k += nt) sum += k_exp((x[k * st] - mx) * inv_t);
  sum = red(sum, SumOp());
  if (kLog) {
    const T lse = k_log(sum);
    for (int64_t k = t; k < K; k += nt) assign(y, k * st, req, (x[k * st] - mx) * inv_t - lse);
  } else {
    const T inv = T(1) / sum;
    for (int64_t k = t; k < K; k += nt) assign(y, k * st, req, k_exp((x[k * st] - mx) * inv_t) * inv);
  }
}

/// One row of the backward: softmax dx = y (dy - sum(dy y)) / T; log_softmax dx = (dy - e^y sum(dy)) / T.
template <typename T, bool kLog, typename R>
__device__ void bwd_row(const T* dy, const T* y, T* dx, int64_t K, int64_t st, int t, int nt, T inv_t, int req, R red) {
  // dy, y, dx: [K] at stride st (dx may alias dy or y)
  T s = T(0);
  for (int64_t k = t; k < K; k += nt) s += kLog ? dy[k * st] : dy[k * st] * y[k * st];
  s = red(s, SumOp());
  for (int64_t k = t; k < K; k += nt) {
    const int64_t i = k * st;
    const T g = kLog ? (dy[i] - k_exp(y[i]) * s) * inv_t : y[i] * (dy[i] - s) * inv_t;
    assign(dx, i, req, g);
  }
}

// ---- forward kernels; x, y: [outer, K, inner], rows = outer * inner ----------------------------------

template <typename T, bool kLog>
__global__ void fwd_warp_kernel(int64_t rows, int64_t K, int64_t inner, const T* x, T* y, T inv_t, int req) {
  const int lane = threadIdx.x & 31;
  const int64_t w0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t r = w0; r < rows; r += nw) {  // uniform per warp
    const int64_t b = row_base(r, K, inner);
    fwd_row<T, kLog>(x + b, y + b, K, inner, lane, 32, inv_t, req, WarpRed());
  }
}

template <typename T, bool kLog>
__global__ void fwd_block_kernel(int64_t rows, int64_t K, int64_t inner, const T* x, T* y, T inv_t, int req) {
  __shared__ T smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t b = row_base(r, K, inner);
    fwd_row<T, kLog>(x + b, y + b, K, inner, threadIdx.x, blockDim.x, inv_t, req, BlockRed<T>{smem});
  }
}

template <typename T, bool kLog>
__global__ void fwd_thread_kernel(int64_t rows, int64_t K, int64_t inner, const T* x, T* y, T inv_t, int req) {
  KILN_GRID_STRIDE(r, rows) {
    const int64_t b = row_base(r, K, inner);
    fwd_row<T, kLog>(x + b, y + b, K, inner, 0, 1, inv_t, req, NoRed());
  }
}

// ---- backward kernels; dy, y, dx: [outer, K, inner] ----------------------------------------------------

template <typename T, bool kLog>
__global__ void bwd_warp_kernel(int64_t rows, int64_t K, int64_t inner, const T* dy, const T* y, T* dx, T inv_t,
                                int req) {
  const int lane = threadIdx.x & 31;
  const int64_t w0 = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const int64_t nw = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t r = w0; r < rows; r += nw) {
    const int64_t b = row_base(r, K, inner);
    bwd_row<T, kLog>(dy + b, y + b, dx + b, K, inner, lane, 32, inv_t, req, WarpRed());
  }
}

template <typename T, bool kLog>
__global__ void bwd_block_kernel(int64_t rows, int64_t K, int64_t inner, const T* dy, const T* y, T* dx, T inv_t,
                                 int req) {
  __shared__ T smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t b = row_base(r, K, inner);
    bwd_row<T, kLog>(dy + b, y + b, dx + b, K, inner, threadIdx.x, blockDim.x, inv_t, req, BlockRed<T>{smem});
  }
}

template <typename T, bool kLog>
__global__ void bwd_thread_kernel(int64_t rows, int64_t K, int64_t inner, const T* dy, const T* y, T* dx, T inv_t,
                                  int req) {
  KILN_GRID_STRIDE(r, rows) {
    const int64_t b = row_base(r, K, inner);
    bwd_row<T, kLog>(dy + b, y + b, dx + b, K, inner, 0, 1, inv_t, req, NoRed());
  }
}

struct Dims {
  int64_t outer, K, inner;
};

enum class Shape3 { kWarp, kBlock, kThread };

Shape3 pick(const Dims& d) {
  const int64_t rows = d.outer * d.inner;
  if (d.inner > 1 && rows >= kColumnRows) return Shape3::kThread;
  return d.K <= kWarpRowsMaxK ? Shape3::kWarp : Shape3::kBlock;
}

unsigned blocks_for_rows(int64_t rows, int64_t rows_per_block) {
  const int64_t b = (rows + rows_per_block - 1) / rows_per_block;
  return (unsigned)std::max<int64_t>(1, std::min<int64_t>(b, 1LL << 20));
}

/// y = softmax(x * inv_t) (log softmax when log) along K; x, y: [outer, K, inner].
void launch_forward(const OpCtx& ctx, const Dims& d, const TBlob& x, const TBlob& y, OpReq req, double inv_t, bool log,
                    const char* name) {
  const int64_t rows = d.outer * d.inner;
  if (req == OpReq::kNullOp || rows * d.K == 0) return;
  cudaStream_t s = stream_of(ctx);
  const int rq = req_int(req);
  KILN_FLOAT_SWITCH(x.dtype, T, {
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    const T it = T(inv_t);
    switch (pick(d)) {
      case Shape3::kWarp:
        if (log) fwd_warp_kernel<T, true><<<blocks_for_rows(rows, kBlock / 32), kBlock, 0, s>>>(rows, d.K, d.inner, xp, yp, it, rq);
        else fwd_warp_kernel<T, false><<<blocks_for_rows(rows, kBlock / 32), kBlock, 0, s>>>(rows, d.K, d.inner, xp, yp, it, rq);
        break;
      case Shape3::kBlock:
        if (log) fwd_block_kernel<T, true><<<blocks_for_rows(rows, 1), kBlock, 0, s>>>(rows, d.K, d.inner, xp, yp, it, rq);
        else fwd_block_kernel<T, false><<<blocks_for_rows(rows, 1), kBlock, 0, s>>>(rows, d.K, d.inner, xp, yp, it, rq);
        break;
      case Shape3::kThread:
        if (log) fwd_thread_kernel<T, true><<<grid_for(rows), kBlock, 0, s>>>(rows, d.K, d.inner, xp, yp, it, rq);
        else fwd_thread_kernel<T, false><<<grid_for(rows), kBlock, 0, s>>>(rows, d.K, d.inner, xp, yp, it, rq);
        break;
    }
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

/// dx from (dy, y) along K; all [outer, K, inner].
void launch_backward(const OpCtx& ctx, const Dims& d, const TBlob& dy, const TBlob& y, const TBlob& dx, OpReq req,
                     double inv_t, bool log, const char* name) {
  const int64_t rows = d.outer * d.inner;
  if (req == OpReq::kNullOp || rows * d.K == 0) return;
  cudaStream_t s = stream_of(ctx);
  const int rq = req_int(req);
  KILN_FLOAT_SWITCH(dy.dtype, T, {
    const T* g = dy.dptr<T>();
    const T* yp = y.dptr<T>();
    T* o = dx.dptr<T>();
    const T it = T(inv_t);
    switch (pick(d)) {
      case Shape3::kWarp:
        if (log) bwd_warp_kernel<T, true><<<blocks_for_rows(rows, kBlock / 32), kBlock, 0, s>>>(rows, d.K, d.inner, g, yp, o, it, rq);
        else bwd_warp_kernel<T, false><<<blocks_for_rows(rows, kBlock / 32), kBlock, 0, s>>>(rows, d.K, d.inner, g, yp, o, it, rq);
        break;
      case Shape3::kBlock:
        if (log) bwd_block_kernel<T, true><<<blocks_for_rows(rows, 1), kBlock, 0, s>>>(rows, d.K, d.inner, g, yp, o, it, rq);
        else bwd_block_kernel<T, false><<<blocks_for_rows(rows, 1), kBlock, 0, s>>>(rows, d.K, d.inner, g, yp, o, it, rq);
        break;
      case Shape3::kThread:
        if (log) bwd_thread_kernel<T, true><<<grid_for(rows), kBlock, 0, s>>>(rows, d.K, d.inner, g, yp, o, it, rq);
        else bwd_thread_kernel<T, false><<<grid_for(rows), kBlock, 0, s>>>(rows, d.K, d.inner, g, yp, o, it, rq);
        break;
    }
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- softmax / log_softmax ---------------------------------------------------------------------------

Dims softmax_dims(const char* op, const Attrs& a, const Shape& s) {
  const int64_t axis = a.i("axis");
  const int64_t ax = axis < 0 ? axis + s.ndim() : axis;
  if (ax < 0 || ax >= s.ndim())
    throw KilnError(std::string(op) + ": axis " + std::to_string(axis) + " is out of range for an input of shape " +
                    s.str());
  return {s.prod(0, (int)ax), s[(int)ax], s.prod((int)ax + 1, s.ndim())};
}

double inv_temperature(const Attrs& a) { return a.has("temperature") ? 1.0 / a.f("temperature") : 1.0; }

/// x's scale inside the exponential: 1/T, or -1/T for softmin.
template <bool kMin>
double exp_scale(const Attrs& a) { return kMin ? -inv_temperature(a) : inv_temperature(a); }

template <bool kLog, bool kMin = false>
void softmax_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = kMin ? "softmin" : kLog ? "log_softmax" : "softmax";
  // in: data [outer, K, inner]; out: output [outer, K, inner]
  if (a.b("use_length")) throw KilnError(std::string(op) + ": use_length=True is not supported yet");
  prologue(op, in, 1, 1, req, out, 1, 1);
  expect_size(op, "output", out[0], in[0].size());
  const Dims d = softmax_dims(op, a, in[0].shape);
  DeviceGuard g(device_of(ctx, in, out));
  launch_forward(ctx, d, in[0], out[0], req[0], exp_scale<kMin>(a), kLog, op);
}

template <bool kLog, bool kMin = false>
void softmax_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const char* op = kMin ? "_backward_softmin" : kLog ? "_backward_log_softmax" : "_backward_softmax";
  // in: ograd, output; out: data_grad; all [outer, K, inner]
  prologue(op, in, 2, 2, req, out, 1, 1);
  expect_size(op, "ograd", in[0], in[1].size());
  expect_size(op, "data_grad", out[0], in[1].size());
  const Dims d = softmax_dims(op, a, in[1].shape);
  DeviceGuard g(device_of(ctx, in, out));
  launch_backward(ctx, d, in[0], in[1], out[0], req[0], exp_scale<kMin>(a), kLog, op);
}

// ---- SoftmaxActivation ---------------------------------------------------------------------------------

Dims softmax_activation_dims(const Attrs& a, const Shape& s) {
  const int64_t n = s.ndim() >= 1 ? s[0] : 1;
  if (a.s("mode") == "instance") return {n, n == 0 ? 0 : s.size() / n, 1};
  if (s.ndim() < 3)
    throw KilnError("SoftmaxActivation: the input needs at least 3 dimensions when mode=channel, got " + s.str());
  return {n, s[1], s.prod(2, s.ndim())};
}

void softmax_activation_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
                                const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* op = "SoftmaxActivation";
  prologue(op, in, 1, 1, req, out, 1, 1);
  expect_size(op, "output", out[0], in[0].size());
  const Dims d = softmax_activation_dims(a, in[0].shape);
  DeviceGuard g(device_of(ctx, in, out));
  launch_forward(ctx, d, in[0], out[0], req[0], 1.0, false, op);
}

void softmax_activation_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
                                 const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* op = "_backward_SoftmaxActivation";
  prologue(op, in, 2, 2, req, out, 1, 1);
  expect_size(op, "ograd", in[0], in[1].size());
  expect_size(op, "data_grad", out[0], in[1].size());
  const Dims d = softmax_activation_dims(a, in[1].shape);
  DeviceGuard g(device_of(ctx, in, out));
  launch_backward(ctx, d, in[0], in[1], out[0], req[0], 1.0, false, op);
}

// ---- SoftmaxOutput ---------------------------------------------------------------------------------------

Dims so_dims(const Attrs& a, const Shape& s) {
  const int nd = s.ndim();
  if (nd < 1) throw KilnError("SoftmaxOutput: data must have at least one dimension, got " + s.str());
  if (a.b("multi_output")) {
    if (nd < 2) throw KilnError("SoftmaxOutput: multi_output needs data of rank >= 2, got " + s.str());
    return {s[0], s[1], s.prod(2, nd)};
  }
  if (a.b("preserve_shape")) return {s.prod(0, nd - 1), s[nd - 1], 1};
  return {s[0], s.prod(1, nd), 1};
}

// p, label, ograd (optional), dx: [n]; dx = (p - label) * grad_scale (* ograd)
template <typename T>
__global__ void so_prob_grad_kernel(int64_t n, const T* p, const T* label, const T* ograd, T* dx, int req, T gs) {
  KILN_GRID_STRIDE(i, n) {
    T v = (p[i] - label[i]) * gs;
    if (ograd != nullptr) v *= ograd[i];
    assign(dx, i, req, v);
  }
}

// label: [nlabel] -> *count = number of labels whose int value != ignore (one block)
template <typename T>
__global__ void so_valid_count_kernel(int64_t nlabel, const T* label, int ignore, long long* count) {
  __shared__ long long smem[32];
  long long c = 0;
  for (int64_t i = threadIdx.x; i < nlabel; i += blockDim.x) c += label_class((double)label[i]) != ignore ? 1 : 0;
  c = block_reduce(c, SumOp(), smem);
  if (threadIdx.x == 0) *count = c;
}

// p, ograd (optional), dx: [outer, K, inner]; label: [outer, inner] (class indices as floats)
// dx = (p - target) * factor (* ograd), 0 for ignored labels; factor = scale, or scale / max(1, *count)
template <typename T>
__global__ void so_class_grad_kernel(int64_t n, int64_t K, int64_t inner, const T* p, const T* label, const T* ograd,
                                     T* dx, int req, int ignore, bool use_ignore, T on, T off, double scale,
                                     const long long* count) {
  T factor;
  if (count != nullptr) {
    const long long c = *count;
    factor = T(scale / (c == 0 ? 1.0 : (double)c));
  } else {
    factor = T(scale);
  }
  KILN_GRID_STRIDE(i, n) {
    const int64_t j = i % inner, k = (i / inner) % K, o = i / (inner * K);
    const int lab = label_class((double)label[o * inner + j]);  // kiln/int_convert.h
    T v = (use_ignore && lab == ignore) ? T(0) : (p[i] - (k == lab ? on : off)) * factor;
    if (ograd != nullptr) v *= ograd[i];
    assign(dx, i, req, v);
  }
}

void so_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = "SoftmaxOutput";
  // in: data [outer, K, inner], label; out: output (data-shaped)
  prologue(op, in, 2, 2, req, out, 1, 1);
  expect_size(op, "output", out[0], in[0].size());
  const Dims d = so_dims(a, in[0].shape);
  DeviceGuard g(device_of(ctx, in, out));
  launch_forward(ctx, d, in[0], out[0], req[0], 1.0, false, op);
}

void so_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_SoftmaxOutput";
  // in: output p (data-shaped), label[, ograd (data-shaped)]; out: data_grad (data-shaped, may alias p), label_grad
  const bool out_grad = a.b("out_grad");
  prologue(op, in, out_grad ? 3 : 2, out_grad ? 3 : 2, req, out, 2, 2);
  const TBlob& pb = in[0];
  const TBlob& lb = in[1];
  const int64_t n = pb.size();
  expect_size(op, "data_grad", out[0], n);
  if (out_grad) expect_size(op, "ograd", in[2], n);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  if (req[0] != OpReq::kNullOp && n > 0) {
    const double gs = loss_grad_scale(ctx, a);
    if (lb.shape == pb.shape) {  // probability labels: no ignore, no normalization
      KILN_FLOAT_SWITCH(pb.dtype, T, {
        so_prob_grad_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, pb.dptr<T>(), lb.dptr<T>(),
                                                              out_grad ? in[2].dptr<T>() : nullptr, out[0].dptr<T>(),
                                                              req_int(req[0]), T(gs));
      });
      KILN_CUDA_LAUNCH_CHECK(op);
    } else {
      const bool multi = a.b("multi_output");
      const Dims d = so_dims(a, pb.shape);
      const int64_t nlabel = d.outer * d.inner;
      if (lb.size() != nlabel)
        throw KilnError("SoftmaxOutput: " + std::to_string(lb.size()) + " labels for " + std::to_string(nlabel) +
                        " softmax rows (label " + lb.shape.str() + ", data " + pb.shape.str() + ")");
      const int ignore = (int)a.f("ignore_label");
      const bool use_ignore = a.b("use_ignore");
      const std::string norm = a.s("normalization");
      double scale = gs;
      if (norm == "batch") scale /= multi ? (double)d.outer : (double)nlabel;
      if (multi && norm != "valid") scale /= (double)d.inner;
      const double alpha = multi ? 0.0 : a.f("smooth_alpha");  // MXNet smooths only without multi_output
      const double on = 1.0 - alpha, off = d.K > 1 ? alpha / (double)(d.K - 1) : 0.0;
      std::unique_ptr<DeviceScratch> cnt;
      if (norm == "valid") cnt.reset(new DeviceScratch(dev, sizeof(long long)));
      KILN_FLOAT_SWITCH(pb.dtype, T, {
        const T* label = lb.dptr<T>();  // [outer, inner]
        if (cnt) {
          so_valid_count_kernel<T><<<1, 1024, 0, s>>>(nlabel, label, ignore, cnt->as<long long>());
          KILN_CUDA_LAUNCH_CHECK("_backward_SoftmaxOutput (valid count)");
        }
        so_class_grad_kernel<T><<<grid_for(n), kBlock, 0, s>>>(
            n, d.K, d.inner, pb.dptr<T>(), label, out_grad ? in[2].dptr<T>() : nullptr, out[0].dptr<T>(),
            req_int(req[0]), ignore, use_ignore, T(on), T(off), scale, cnt ? cnt->as<long long>() : nullptr);
      });
      KILN_CUDA_LAUNCH_CHECK(op);
    }
  }
  zero_unless_add(ctx, req[1], out[1]);  // the label gets no gradient
}

}  // namespace

void register_softmax(OpRegistry& r) {
  set_gpu(r, "softmax", softmax_forward<false>);
  set_gpu(r, "_backward_softmax", softmax_backward<false>);
  set_gpu(r, "log_softmax", softmax_forward<true>);
  set_gpu(r, "_backward_log_softmax", softmax_backward<true>);
  set_gpu(r, "softmin", softmax_forward<false, true>);
  set_gpu(r, "_backward_softmin", softmax_backward<false, true>);
  set_gpu(r, "SoftmaxActivation", softmax_activation_forward);
  set_gpu(r, "_backward_SoftmaxActivation", softmax_activation_backward);
  set_gpu(r, "SoftmaxOutput", so_forward);
  set_gpu(r, "_backward_SoftmaxOutput", so_backward);
}

}  // namespace nn_gpu
}  // namespace cuda
}  // namespace kiln
