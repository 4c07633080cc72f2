// dot and _backward_dot (MXNet src/operator/tensor/dot-inl.h, dense CPU path).
// Semantics for N-D inputs: the lhs is viewed as a matrix A and the rhs as B,
//   lhs (l_0..l_{p-1}):  transpose_a=False -> A [prod(l_0..l_{p-2}), l_{p-1}]   (contract the last axis)
//                        transpose_a=True  -> A [l_0, prod(l_1..l_{p-1})], used as A^T (contract the first)
//   rhs (r_0..r_{q-1}):  transpose_b=False -> B [r_0, prod(r_1..r_{q-1})]      (contract the first axis)
//                        transpose_b=True  -> B [prod(r_0..r_{q-2}), r_{q-1}], used as B^T (contract the last)
// and C = op(A) op(B) is [M, N]; the output shape is the lhs's free dims followed by the rhs's
// free dims (a 1-D operand contributes none), e.g. dot(x, y)[i,j,a,b] = sum(x[i,j,:] * y[:,a,b]).
// Two 1-D vectors give shape (1,). Letters: M, N = free sizes, K = contracted size.
#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace {

std::string dims_str(const std::vector<int64_t>& v) { return Shape(v).str(); }

/// Only dense output is produced: forward_stype may be None or "default".
void check_stype(const Attrs& a) {
  if (a.has("forward_stype") && a.s("forward_stype") != "default")
    throw InferError(false, 0, "dot: forward_stype='" + a.s("forward_stype") +
                                   "' is not supported (sparse storage is not implemented; use None or 'default')");
}

/// Bidirectional MXNet DotShape: both ranks must be known; the contracted dims are unified,
/// the output is (lhs free dims) + (rhs free dims), and the free dims flow back from the output.
void dot_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  check_stype(a);
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  const Shape l = (*in)[0], r = (*in)[1];
  if (!l.rank_known() || !r.rank_known()) return;
  if (l.ndim() == 0 || r.ndim() == 0)
    throw InferError(true, l.ndim() == 0 ? 0 : 1,
                     "dot: scalar tensor is not supported by this operator (lhs " + l.str() + ", rhs " + r.str() + ")");
  const int p = l.ndim(), q = r.ndim();
  if (p == 1 && q == 1 && (ta || tb))
    throw InferError(true, 0, "dot: Cannot transpose vectors (lhs " + l.str() + ", rhs " + r.str() + ")");
  // contracted axes and free axes
  const int lc = (p == 1) ? 0 : (ta ? 0 : p - 1);
  const int rc = (q == 1) ? 0 : (tb ? q - 1 : 0);
  std::vector<int> lfree, rfree;
  if (p > 1)
    for (int i = 0; i < p; ++i)
      if (i != lc) lfree.push_back(i);
  if (q > 1)
    for (int i = 0; i < q; ++i)
      if (i != rc) rfree.push_back(i);
  // contracted sizes
  Shape nl = l, nr = r;
  if (l[lc] >= 0 && r[rc] >= 0 && l[lc] != r[rc])
    throw InferError(true, 1, "dot shape error: " + l.str() + " X " + r.str() + " (transpose_a=" +
                                  (ta ? "True" : "False") + ", transpose_b=" + (tb ? "True" : "False") +
                                  "): contracted sizes " + std::to_string(l[lc]) + " and " + std::to_string(r[rc]) +
                                  " differ");
  if (nl[lc] < 0) nl[lc] = r[rc];
  if (nr[rc] < 0) nr[rc] = l[lc];
  // output
  std::vector<int64_t> od;
  if (p == 1 && q == 1) od.push_back(1);
  for (int i : lfree) od.push_back(l[i]);
  for (int i : rfree) od.push_back(r[i]);
  const Shape y_before = (*out)[0];
  if (!shape_assign(&(*out)[0], Shape(od)))
    throw InferError(false, 0, "dot: lhs " + l.str() + " X rhs " + r.str() + " gives " + dims_str(od) +
                                   ", but the output shape is " + y_before.str());
  // back from the output
  const Shape& y = (*out)[0];
  if (!(p == 1 && q == 1)) {
    size_t k = 0;
    for (int i : lfree) nl[i] = y[(int)k++];
    for (int i : rfree) nr[i] = y[(int)k++];
  }
  assign_in(in, 0, nl);
  assign_in(in, 1, nr);
}

/// The 2-D views of a dot problem (see the file comment).
struct DotDims {
  int64_t ma, na;  // A stored [ma, na]: [M, K], or [K, M] when transpose_a
  int64_t mb, nb;  // B stored [mb, nb]: [K, N], or [N, K] when transpose_b
  int64_t M, N, K;
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

int blas_int(int64_t v) {
  KILN_CHECK(v >= 0 && v <= INT_MAX, "dot: dimension " + std::to_string(v) + " exceeds the BLAS int range");
  return (int)v;
}

/// c[m, n] (req) op(a) op(b), with op(a) [m, k] and op(b) [k, n] (kiln::gemm conventions).
template <typename T>
void gemm_req(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c, OpReq req) {
  if (req == OpReq::kNullOp || m == 0 || n == 0) return;
  if (k == 0) {  // empty sum: zeros (BLAS rejects lda = 0)
    if (req != OpReq::kAddTo) std::fill(c, c + m * n, T(0));
    return;
  }
  gemm(ta, tb, blas_int(m), blas_int(n), blas_int(k), T(1), a, b, req == OpReq::kAddTo ? T(1) : T(0), c);
}

/// y = op(A) op(B).
void dot_forward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const TBlob& lhs = in[0];  // A: [ma, na]
  const TBlob& rhs = in[1];  // B: [mb, nb]
  const TBlob& y = out[0];   // C: [M, N] (1-D x 1-D: [1])
  if (req[0] == OpReq::kNullOp) return;
  KILN_CHECK(lhs.dtype == y.dtype && rhs.dtype == y.dtype, "dot: inputs and output must share a dtype");
  const bool ta = attrs.b("transpose_a"), tb = attrs.b("transpose_b");
  float_switch(y.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    const T* A = lhs.dptr<T>();
    const T* B = rhs.dptr<T>();
    T* C = y.dptr<T>();
    if (lhs.shape.ndim() == 1 && rhs.shape.ndim() == 1) {
      // C[0] = sum_k A[k] B[k]: A as [1, K], B as [K, 1]
      gemm_req<T>(false, false, 1, 1, lhs.shape[0], A, B, C, req[0]);
      return;
    }
    const DotDims d = dot_dims(lhs.shape, rhs.shape, ta, tb);
    gemm_req<T>(ta, tb, d.M, d.N, d.K, A, B, C, req[0]);
  });
}

/// Inputs (dC, lhs, rhs); outputs (dlhs, drhs):
///   dA = dC op(B)^T   (A not transposed)      dA = op(B) dC^T   (transpose_a: A stored [K, M])
///   dB = op(A)^T dC   (B not transposed)      dB = dC^T op(A)   (transpose_b: B stored [N, K])
void dot_backward(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];   // dC: [M, N]
  const TBlob& lhs = in[1];  // A: [ma, na]
  const TBlob& rhs = in[2];  // B: [mb, nb]
  const TBlob& dl = out[0];  // dA: [ma, na]
  const TBlob& dr = out[1];  // dB: [mb, nb]
  const bool ta = attrs.b("transpose_a"), tb = attrs.b("transpose_b");
  float_switch(dy.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    const T* dC = dy.dptr<T>();
    const T* A = lhs.dptr<T>();
    const T* B = rhs.dptr<T>();
    T* dA = dl.dptr<T>();
    T* dB = dr.dptr<T>();
    if (lhs.shape.ndim() == 1 && rhs.shape.ndim() == 1) {
      // C = sum_k A[k] B[k]: dA = dC[0] B, dB = dC[0] A
      const int64_t K = lhs.shape[0];
      const T g = dC[0];
      for (int64_t k = 0; k < K; ++k) {
        assign_req(dA[k], req[0], g * B[k]);
        assign_req(dB[k], req[1], g * A[k]);
      }
      return;
    }
    const DotDims d = dot_dims(lhs.shape, rhs.shape, ta, tb);
    if (!ta) gemm_req<T>(false, !tb, d.M, d.K, d.N, dC, B, dA, req[0]);  // dA [M, K]
    else gemm_req<T>(tb, true, d.K, d.M, d.N, B, dC, dA, req[0]);        // dA [K, M]
    if (!tb) gemm_req<T>(!ta, false, d.K, d.N, d.M, A, dC, dB, req[1]);  // dB [K, N]
    else gemm_req<T>(true, ta, d.N, d.K, d.M, dC, A, dB, req[1]);        // dB [N, K]
  });
}

std::vector<NodeEntry> dot_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  return make_backward("_backward_dot", fwd, {ograds[0], fwd->inputs[0], fwd->inputs[1]});
}

}  // namespace

void register_shape_dot_ops(OpRegistry& r) {
  ParamDef stype = param("forward_stype", ParamType::kEnum, "None",
                         "The desired storage type of the forward output given by user, if thecombination of input "
                         "storage types and this hint does not matchany implemented ones, the dot operator will perform "
                         "fallback operationand still produce an output of the desired storage type. (Kiln: dense "
                         "only; None or 'default'.)");
  stype.choices = {"default", "row_sparse", "csr"};
  const std::vector<ParamDef> params = {
      param("transpose_a", ParamType::kBool, "False", "If true then transpose the first input before dot."),
      param("transpose_b", ParamType::kBool, "False", "If true then transpose the second input before dot."),
      stype,
  };
  {
    OpDef d;
    d.name = "dot";
    d.description =
        "Dot product of two arrays: 1-D x 1-D is the inner product, 2-D x 2-D the matrix product, N-D x M-D a sum "
        "product over the last axis of the lhs and the first axis of the rhs (the first/last with transpose_a/b).";
    d.params = params;
    d.input_names_ = {"lhs", "rhs"};
    d.infer_shape = dot_infer_shape;
    d.cpu = dot_forward;
    d.gradient = dot_grad;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_backward_dot";
    d.description = "Backward of dot: reads (output gradient, lhs, rhs), writes (lhs gradient, rhs gradient).";
    d.params = params;
    d.input_names_ = {"ograd", "lhs", "rhs"};
    d.output_names_ = {"lhs_grad", "rhs_grad"};
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = dot_backward;
    r.add(std::move(d));
  }
}

}  // namespace kiln
