// L2Normalization and its backward (MXNet 1.9.1 src/operator/l2_normalization{-inl.h,.cc}):
//   y = x / norm,  norm = sqrt(sum_K x^2 + eps)   over the vectors of kiln/l2_normalization.h's view
//   dx = (dy - y * sum_K(dy * y)) / norm
// The hidden output `norm` (one value per vector) is what the backward reads, with y and dy.
// Sums accumulate in double. Shapes: x, y, dy, dx [outer, K, inner]; norm [outer, inner].
#include "kiln/l2_normalization.h"
#include "norm_ops.h"

namespace kiln {
namespace norm {
namespace {

void l2_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  try {
    l2_view(a.s("mode"), d);
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  assign_out(out, 0, d);
  if (d.known()) assign_out(out, 1, l2_norm_shape(a.s("mode"), d));
  assign_in(in, 0, (*out)[0]);
}

template <typename DT>
void l2_forward(const L2View& v, double eps, const DT* x, DT* y, DT* norm, OpReq req) {
  // x, y [outer, K, inner] (y may alias x); norm [outer, inner]
  const int64_t rows = v.outer * v.inner;
  const int nt = omp_threads(rows * v.K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = (r / v.inner) * v.K * v.inner + r % v.inner;
    const DT* xr = x + off;  // [K] with stride inner
    double ss = 0;
    for (int64_t k = 0; k < v.K; ++k) ss += (double)xr[k * v.inner] * (double)xr[k * v.inner];
    const double n = std::sqrt(ss + eps);
    norm[r] = (DT)n;
    if (req == OpReq::kNullOp) continue;
    DT* yr = y + off;  // [K] with stride inner
    for (int64_t k = 0; k < v.K; ++k) assign_req(yr[k * v.inner], req, (DT)((double)xr[k * v.inner] / n));
  }
}

void l2_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  // in: data; out: output, norm
  const L2View v = l2_view(a.s("mode"), in[0].shape);
  KILN_CHECK(out[1].ptr != nullptr, "L2Normalization: the norm output has no memory (outputs_always_written)");
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    l2_forward<DT>(v, a.f("eps"), in[0].dptr<DT>(), out[0].dptr<DT>(), out[1].dptr<DT>(), req[0]);
  });
}

template <typename DT>
void l2_backward(const L2View& v, const DT* dy, const DT* y, const DT* norm, DT* dx, OpReq req) {
  // dy, y, dx [outer, K, inner] (dx may alias dy); norm [outer, inner]
  if (req == OpReq::kNullOp) return;
  const int64_t rows = v.outer * v.inner;
  const int nt = omp_threads(rows * v.K);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = (r / v.inner) * v.K * v.inner + r % v.inner;
    const DT* dyr = dy + off;  // [K] with stride inner
    const DT* yr = y + off;    // [K] with stride inner
    DT* dxr = dx + off;        // [K] with stride inner
    double s = 0;
    for (int64_t k = 0; k < v.K; ++k) s += (double)dyr[k * v.inner] * (double)yr[k * v.inner];
    const double inv = 1.0 / (double)norm[r];
    for (int64_t k = 0; k < v.K; ++k)
      assign_req(dxr[k * v.inner], req, (DT)(((double)dyr[k * v.inner] - (double)yr[k * v.inner] * s) * inv));
  }
}

void l2_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: ograd, output, norm; out: data grad
  const L2View v = l2_view(a.s("mode"), in[1].shape);
  KILN_FLOAT_SWITCH(in[1].dtype, DT, {
    l2_backward<DT>(v, in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), out[0].dptr<DT>(), req[0]);
  });
}

}  // namespace

void register_l2_normalization(OpRegistry& r) {
  OpDef op;
  op.name = "L2Normalization";
  op.description =
      "Normalizes data to unit L2 norm: y = x / sqrt(sum(x^2) + eps), the sum over all non-batch elements of "
      "each instance (mode=instance), over the channels at each position (channel), or over the positions of "
      "each channel (spatial). The hidden output norm holds the divisors.";
  op.params = {
      param("eps", ParamType::kFloat, "1e-10", "A small constant for numerical stability."),
      param_enum("mode", "instance", {"channel", "instance", "spatial"},
                 "Specify the dimension along which to compute L2 norm."),
  };
  op.input_names_ = {"data"};
  op.output_names_ = {"output", "norm"};
  op.num_visible_outputs_fn = [](const Attrs&) { return 1; };
  op.infer_shape = l2_infer_shape;
  op.cpu = l2_forward_cpu;
  op.outputs_always_written = true;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_L2Normalization", n, {og[0], NodeEntry{n, 0}, NodeEntry{n, 1}});
  };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_L2Normalization", fwd);
  bw.input_names_ = {"ograd", "output", "norm"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = l2_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace norm
}  // namespace kiln
