// dot, batch_dot and their backward ops on the GPU: cuBLAS gemm / strided-batched gemm
// (cublas_dl.cc), with the CPU kernels' matrix views (shape_dot.cc, index/reorder.cc):
//   dot: lhs as A [ma, na] (A^T used with transpose_a), rhs as B [mb, nb]; C = op(A) op(B) [M, N].
//   batch_dot: lhs [B.., M, K] ([B.., K, M] with transpose_a), rhs [B.., K, N] ([B.., N, K]);
//   out [B.., M, N]. float32 and float64.
#include <string>

#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {
namespace shape {
namespace {

struct DotDims {
  int64_t ma, na, mb, nb, M, N, K;
};

DotDims dot_dims(const Shape& l, const Shape& r, bool ta, bool tb) {
  DotDims d;
  const int p = l.ndim(), q = r.ndim();
  if (ta) { d.ma = l[0]; d.na = l.prod(1, p); }
  else { d.na = l[p - 1]; d.ma = l.prod(0, p - 1); }
  if (tb) { d.nb = r[q - 1]; d.mb = r.prod(0, q - 1); }
  else { d.mb = r[0]; d.nb = r.prod(1, q); }
  d.M = ta ? d.na : d.ma;
  d.K = ta ? d.ma : d.na;
  d.N = tb ? d.mb : d.nb;
  return d;
}

void check_float_same(const char* op, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  const DType t = in[0].dtype;
  if (!is_float(t)) throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(t) + " is not supported (float32, float64)");
  for (const auto* v : {&in, &out})
    for (const auto& b : *v)
      if (b.dtype != t)
        throw KilnError(std::string(op) + " (GPU): mixed dtypes " + dtype_name(t) + " and " + dtype_name(b.dtype));
}

void expect(const char* op, const char* what, const TBlob& b, int64_t n) {
  if (b.size() != n)
    throw KilnError(std::string(op) + " (GPU): " + what + " " + b.shape.str() + " should hold " + std::to_string(n) +
                    " elements");
}

/// c [m, n] (req) op(a) op(b) on the device's stream.
template <typename T>
void gemm_req(int dev, cudaStream_t s, bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, const T* b,
              T* c, OpReq req) {
  if (req == OpReq::kNullOp || m == 0 || n == 0) return;
  gemm(dev, s, ta, tb, m, n, k, T(1), a, b, req == OpReq::kAddTo ? T(1) : T(0), c);
}

// g: [1] (device), v: [K], d: [K]; d (req) g[0] * v
template <typename T>
__global__ void scale_by_kernel(int64_t n, const T* g, const T* v, T* d, int req) {
  KILN_GRID_STRIDE(i, n) { assign(d, i, req, g[0] * v[i]); }
}

void dot_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "dot";
  prologue(op, in, 2, 2, req, out, 1, 1);
  check_float_same(op, in, out);
  const TBlob& lhs = in[0];
  const TBlob& rhs = in[1];
  const TBlob& y = out[0];
  if (req[0] == OpReq::kNullOp) return;
  const bool ta = attrs.b("transpose_a"), tb = attrs.b("transpose_b");
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(y.dtype, T, {
    const T* A = lhs.dptr<T>();  // [ma, na]
    const T* B = rhs.dptr<T>();  // [mb, nb]
    T* C = y.dptr<T>();          // [M, N] (1-D x 1-D: [1])
    if (lhs.shape.ndim() == 1 && rhs.shape.ndim() == 1) {
      if (lhs.size() != rhs.size()) throw KilnError("dot (GPU): vectors " + lhs.shape.str() + " and " + rhs.shape.str() + " differ");
      expect(op, "output", y, 1);
      gemm_req<T>(dev, s, false, false, 1, 1, lhs.shape[0], A, B, C, req[0]);
    } else {
      const DotDims d = dot_dims(lhs.shape, rhs.shape, ta, tb);
      if ((tb ? d.nb : d.mb) != d.K)
        throw KilnError("dot (GPU): shapes " + lhs.shape.str() + " and " + rhs.shape.str() + " do not contract");
      expect(op, "output", y, d.M * d.N);
      gemm_req<T>(dev, s, ta, tb, d.M, d.N, d.K, A, B, C, req[0]);
    }
  });
}

void dot_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "_backward_dot";
  prologue(op, in, 3, 3, req, out, 2, 2);
  check_float_same(op, in, out);
  const TBlob& dy = in[0];   // dC: [M, N]
  const TBlob& lhs = in[1];  // A: [ma, na]
  const TBlob& rhs = in[2];  // B: [mb, nb]
  const bool ta = attrs.b("transpose_a"), tb = attrs.b("transpose_b");
  expect(op, "lhs gradient", out[0], lhs.size());
  expect(op, "rhs gradient", out[1], rhs.size());
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(dy.dtype, T, {
    const T* dC = dy.dptr<T>();
    const T* A = lhs.dptr<T>();
    const T* B = rhs.dptr<T>();
    T* dA = out[0].dptr<T>();  // like A
    T* dB = out[1].dptr<T>();  // like B
    if (lhs.shape.ndim() == 1 && rhs.shape.ndim() == 1) {
      const int64_t K = lhs.shape[0];  // dA = dC[0] B, dB = dC[0] A
      if (K > 0 && req[0] != OpReq::kNullOp) {
        scale_by_kernel<T><<<grid_for(K), kBlock, 0, s>>>(K, dC, B, dA, req_int(req[0]));
        KILN_CUDA_LAUNCH_CHECK(op);
      }
      if (K > 0 && req[1] != OpReq::kNullOp) {
        scale_by_kernel<T><<<grid_for(K), kBlock, 0, s>>>(K, dC, A, dB, req_int(req[1]));
        KILN_CUDA_LAUNCH_CHECK(op);
      }
    } else {
      const DotDims d = dot_dims(lhs.shape, rhs.shape, ta, tb);
      expect(op, "output gradient", dy, d.M * d.N);
      if (!ta) gemm_req<T>(dev, s, false, !tb, d.M, d.K, d.N, dC, B, dA, req[0]);  // dA [M, K]
      else gemm_req<T>(dev, s, tb, true, d.K, d.M, d.N, B, dC, dA, req[0]);        // dA [K, M]
      if (!tb) gemm_req<T>(dev, s, !ta, false, d.K, d.N, d.M, A, dC, dB, req[1]);  // dB [K, N]
      else gemm_req<T>(dev, s, true, ta, d.N, d.K, d.M, dC, A, dB, req[1]);        // dB [N, K]
    }
  });
}

// ---- batch_dot -----------------------------------------------------------------------------------

struct BD {
  int64_t batch, m, n, k;
};

BD bd_dims(const char* op, const Attrs& a, const Shape& l, const Shape& r) {
  const int nd = l.ndim();
  if (nd < 3 || r.ndim() != nd)
    throw KilnError(std::string(op) + " (GPU): needs N-D x N-D inputs with N >= 3, got " + l.str() + " and " + r.str());
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  BD d;
  d.batch = l.prod(0, nd - 2);
  d.m = ta ? l[nd - 1] : l[nd - 2];
  d.k = ta ? l[nd - 2] : l[nd - 1];
  d.n = tb ? r[nd - 2] : r[nd - 1];
  const int64_t rk = tb ? r[nd - 1] : r[nd - 2];
  if (r.prod(0, nd - 2) != d.batch || rk != d.k)
    throw KilnError(std::string(op) + " (GPU): shapes " + l.str() + " and " + r.str() + " do not match");
  return d;
}

/// c_i [m, n] (req) op(a_i) op(b_i) for every batch entry, one strided-batched gemm.
template <typename T>
void bgemm_req(int dev, cudaStream_t s, bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k, const T* a,
               int64_t sa, const T* b, int64_t sb, T* c, int64_t sc, OpReq req) {
  if (req == OpReq::kNullOp || m == 0 || n == 0 || batch == 0) return;
  gemm_strided_batched(dev, s, ta, tb, batch, m, n, k, T(1), a, sa, b, sb, req == OpReq::kAddTo ? T(1) : T(0), c, sc);
}

void batch_dot_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const char* op = "batch_dot";
  prologue(op, in, 2, 2, req, out, 1, 1);
  check_float_same(op, in, out);
  const BD d = bd_dims(op, a, in[0].shape, in[1].shape);
  expect(op, "output", out[0], d.batch * d.m * d.n);
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* A = in[0].dptr<T>();  // [batch, M, K] or [batch, K, M]
    const T* B = in[1].dptr<T>();  // [batch, K, N] or [batch, N, K]
    T* C = out[0].dptr<T>();       // [batch, M, N]
    bgemm_req<T>(dev, stream_of(ctx), ta, tb, d.batch, d.m, d.n, d.k, A, d.m * d.k, B, d.k * d.n, C, d.m * d.n,
                 req[0]);
  });
}

void batch_dot_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* op = "_backward_batch_dot";
  prologue(op, in, 3, 3, req, out, 2, 2);
  check_float_same(op, in, out);
  const BD d = bd_dims(op, a, in[1].shape, in[2].shape);
  expect(op, "output gradient", in[0], d.batch * d.m * d.n);
  expect(op, "lhs gradient", out[0], in[1].size());
  expect(op, "rhs gradient", out[1], in[2].size());
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* dC = in[0].dptr<T>();  // [batch, M, N]
    const T* A = in[1].dptr<T>();   // [batch, M, K] or [batch, K, M]
    const T* B = in[2].dptr<T>();   // [batch, K, N] or [batch, N, K]
    T* dA = out[0].dptr<T>();       // like A
    T* dB = out[1].dptr<T>();       // like B
    const int64_t sa = d.m * d.k, sb = d.k * d.n, sc = d.m * d.n;
    if (!ta) bgemm_req<T>(dev, s, false, !tb, d.batch, d.m, d.k, d.n, dC, sc, B, sb, dA, sa, req[0]);
    else bgemm_req<T>(dev, s, tb, true, d.batch, d.k, d.m, d.n, B, sb, dC, sc, dA, sa, req[0]);
    if (!tb) bgemm_req<T>(dev, s, !ta, false, d.batch, d.k, d.n, d.m, A, sa, dC, sc, dB, sb, req[1]);
    else bgemm_req<T>(dev, s, true, ta, d.batch, d.n, d.k, d.m, dC, sc, A, sa, dB, sb, req[1]);
  });
}

}  // namespace

void register_shape_dot_gpu(OpRegistry& r) {
  set_gpu(r, "dot", dot_forward);
  set_gpu(r, "_backward_dot", dot_backward);
  set_gpu(r, "batch_dot", batch_dot_forward);
  set_gpu(r, "_backward_batch_dot", batch_dot_backward);
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
