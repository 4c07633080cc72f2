// LRN (local response normalization across channels) and _backward_LRN on the GPU, with the CPU
// kernel's contract (src/main/cpp/ops/norm/lrn.cc). data (N, C, H, W) as [N, C, S], S = H * W;
// window W(c) = [c - nsize/2, c + nsize/2] clipped to [0, C), nsize odd:
//   forward   tmp_norm = knorm + alpha/nsize * sum_{cc in W(c)} x[n, cc, s]^2 (written whatever the
//             output's request), y = x * tmp_norm^-beta
//   backward  dx = dy * tmp_norm^-beta - 2 beta alpha/nsize x sum_{cc in W(c)} (dy x tmp_norm^(-beta-1))[cc]
// One thread per element; math in double as the CPU kernel. The backward first writes
// t = dy x tmp_norm^(-beta-1) to scratch, so dx may be written in place over dy.
#include <cmath>

#include "ops/norm_common.cuh"

namespace kiln {
namespace cuda {
namespace norm_detail {
namespace {

struct LrnDims {
  int64_t N, C, S;
};

__device__ __forceinline__ void lrn_window(int64_t c, int64_t C, int64_t nsize, int64_t* b, int64_t* e) {
  const int64_t half = nsize / 2;
  *b = c < half ? 0 : c - half;
  *e = c + half + 1 < C ? c + half + 1 : C;
}

// x, y: [N, C, S] (y null for kNullOp; never aliases x, the op has no in-place pair); norm: [N, C, S]
template <typename T>
__global__ void lrn_fwd_kernel(LrnDims d, int64_t nsize, double salpha, double beta, double knorm, const T* x, T* y,
                               int req, T* norm) {
  const int64_t n_el = d.N * d.C * d.S;
  KILN_GRID_STRIDE(idx, n_el) {
    const int64_t s = idx % d.S, nc = idx / d.S, c = nc % d.C, n = nc / d.C;
    int64_t b, e;
    lrn_window(c, d.C, nsize, &b, &e);
    double acc = 0;
    for (int64_t cc = b; cc < e; ++cc) {
      const double v = (double)x[(n * d.C + cc) * d.S + s];
      acc += v * v;
    }
    const T nr = (T)(knorm + salpha * acc);
    norm[idx] = nr;
    if (y != nullptr) assign(y, idx, req, (T)((double)x[idx] * pow((double)nr, -beta)));
  }
}

// dy, x, norm: [N, C, S]; t: [N, C, S] scratch
template <typename T>
__global__ void lrn_bwd_t_kernel(int64_t n_el, double beta, const T* dy, const T* x, const T* norm,
                                 double* __restrict__ t) {
  KILN_GRID_STRIDE(i, n_el) { t[i] = (double)dy[i] * (double)x[i] * pow((double)norm[i], -beta - 1.0); }
}

// dy, x, norm, dx: [N, C, S] (dx may alias dy); t: [N, C, S]
template <typename T>
__global__ void lrn_bwd_kernel(LrnDims d, int64_t nsize, double salpha, double beta, const T* dy, const T* x,
                               const T* norm, const double* __restrict__ t, T* dx, int req) {
  const int64_t n_el = d.N * d.C * d.S;
  KILN_GRID_STRIDE(idx, n_el) {
    const int64_t s = idx % d.S, nc = idx / d.S, c = nc % d.C, n = nc / d.C;
    int64_t b, e;
    lrn_window(c, d.C, nsize, &b, &e);
    double acc = 0;
    for (int64_t cc = b; cc < e; ++cc) acc += t[(n * d.C + cc) * d.S + s];
    const double g = (double)dy[idx] * pow((double)norm[idx], -beta) - 2.0 * beta * salpha * acc * (double)x[idx];
    assign(dx, idx, req, (T)g);
  }
}

LrnDims lrn_dims(const char* op, const Shape& s) {
  if (s.ndim() != 4) throw KilnError(std::string(op) + " only accepts 4D input (N, C, H, W), got " + s.str());
  return LrnDims{s[0], s[1], s[2] * s[3]};
}

int64_t lrn_nsize(const char* op, const Attrs& a) {
  const int64_t nsize = a.i("nsize");
  if (nsize < 1 || nsize % 2 == 0)
    throw KilnError(std::string(op) + ": nsize must be odd (and positive), got " + std::to_string(nsize));
  return nsize;
}

void lrn_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "LRN";
  prologue(op, in, 1, req, out, 2);
  const LrnDims d = lrn_dims(op, in[0].shape);
  const int64_t n = in[0].size();
  expect_size(op, "output", out[0], n);
  expect_size(op, "tmp_norm", out[1], n);
  if (out[1].ptr == nullptr)
    throw KilnError("LRN: the tmp_norm output has no memory (the op declares outputs_always_written)");
  const int64_t nsize = lrn_nsize(op, a);
  if (n == 0) return;
  const double salpha = a.f("alpha") / (double)nsize, beta = a.f("beta"), knorm = a.f("knorm");
  DeviceGuard guard(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    lrn_fwd_kernel<T><<<grid_for(n), kBlock, 0, s>>>(d, nsize, salpha, beta, knorm, in[0].dptr<T>(),
                                                     out_ptr<T>(out[0], req[0]), req_int(req[0]), out[1].dptr<T>());
    KILN_CUDA_LAUNCH_CHECK("LRN");
  });
}

void lrn_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "_backward_LRN";
  prologue(op, in, 3, req, out, 1);
  const LrnDims d = lrn_dims(op, in[1].shape);
  const int64_t n = in[1].size();
  expect_size(op, "ograd", in[0], n);
  expect_size(op, "tmp_norm", in[2], n);
  if (req[0] == OpReq::kNullOp || n == 0) return;
  expect_size(op, "data grad", out[0], n);
  const int64_t nsize = lrn_nsize(op, a);
  const double salpha = a.f("alpha") / (double)nsize, beta = a.f("beta");
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  cudaStream_t s = stream_of(ctx);
  DeviceScratch scratch(dev, sizeof(double) * (size_t)n);
  double* t = scratch.as<double>();  // [N, C, S]
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    const T* dy = in[0].dptr<T>();
    const T* x = in[1].dptr<T>();
    const T* norm = in[2].dptr<T>();
    lrn_bwd_t_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, beta, dy, x, norm, t);
    KILN_CUDA_LAUNCH_CHECK("_backward_LRN window terms");
    lrn_bwd_kernel<T><<<grid_for(n), kBlock, 0, s>>>(d, nsize, salpha, beta, dy, x, norm, t, out[0].dptr<T>(),
                                                     req_int(req[0]));
    KILN_CUDA_LAUNCH_CHECK("_backward_LRN");
  });
}

}  // namespace

void register_lrn(OpRegistry& r) {
  set_gpu(r, "LRN", lrn_forward);
  set_gpu(r, "_backward_LRN", lrn_backward);
}

}  // namespace norm_detail
}  // namespace cuda
}  // namespace kiln
