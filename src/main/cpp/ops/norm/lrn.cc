// LRN (local response normalization across channels) and its backward (MXNet 1.9.1
// src/operator/nn/lrn{-inl.h,.cc}, CPU).
//
// data (N, C, H, W) viewed as [N, C, S], S = H*W:
//   tmp_norm[n,c,s] = knorm + alpha/nsize * sum_{cc in W(c)} x[n,cc,s]^2,  y = x * tmp_norm^-beta
// The channel window is mshadow's chpool<sum>(., nsize): W(c) = [c - nsize/2, c + nsize/2]
// clipped to [0, C). nsize must be odd: mshadow's channel pooling sizes its expression with
// C + 1 channels for an even window, so MXNet reads the wrong (and past the last) elements;
// Kiln rejects an even nsize at shape inference instead.
// Backward: dx = dy * tmp_norm^-beta
//   - 2 * beta * alpha/nsize * x * sum_{cc in W(c)} (dy * x * tmp_norm^(-beta-1))[cc]
// (the window is symmetric, so summing over W(c) is the exact gradient, as MXNet computes it).
#include "norm_ops.h"

namespace kiln {
namespace norm {
namespace {

struct LrnDims {
  int64_t N, C, S;
};
LrnDims lrn_dims(const Shape& s) {
  KILN_CHECK(s.ndim() == 4, "LRN only accepts 4D input (N, C, H, W), got " + s.str());
  return LrnDims{s[0], s[1], s[2] * s[3]};
}

/// The channel window [*b, *e) of channel c.
inline void lrn_window(int64_t c, int64_t C, int64_t nsize, int64_t* b, int64_t* e) {
  const int64_t half = nsize / 2;
  *b = c < half ? 0 : c - half;
  *e = std::min(c + half + 1, C);
}

void lrn_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  if (a.i("nsize") % 2 == 0)
    throw InferError(true, 0, "LRN: nsize must be odd, got " + std::to_string(a.i("nsize")) +
                                  " (MXNet's channel pooling reads out of bounds for an even window)");
  const Shape dshape = (*in)[0];
  if (dshape.rank_known() && dshape.ndim() != 4)
    throw InferError(true, 0, "LRN only accepts 4D input (N, C, H, W), got " + dshape.str());
  assign_out(out, 0, dshape);
  assign_out(out, 1, dshape);
  assign_in(in, 0, (*out)[0]);
  assign_in(in, 0, (*out)[1]);
}

template <typename DT>
void lrn_forward(const LrnDims& d, const Attrs& a, const DT* x, DT* y, DT* norm, OpReq req) {
  // x, y, norm [N, C, S]
  const int64_t nsize = a.i("nsize");
  KILN_CHECK(nsize % 2 == 1, "LRN: nsize must be odd, got " + std::to_string(nsize));
  const double salpha = a.f("alpha") / (double)nsize, beta = a.f("beta"), knorm = a.f("knorm");
  const int nt = omp_threads(d.N * d.C * d.S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < d.N * d.C; ++t) {
    const int64_t n = t / d.C, c = t % d.C;
    int64_t b, e;
    lrn_window(c, d.C, nsize, &b, &e);
    DT* nr = norm + t * d.S;  // [S]
    for (int64_t s = 0; s < d.S; ++s) {
      double acc = 0;
      for (int64_t cc = b; cc < e; ++cc) {
        const double v = x[(n * d.C + cc) * d.S + s];
        acc += v * v;
      }
      nr[s] = (DT)(knorm + salpha * acc);
    }
    if (req == OpReq::kNullOp) continue;
    const DT* xr = x + t * d.S;  // [S]
    DT* yr = y + t * d.S;        // [S]
    for (int64_t s = 0; s < d.S; ++s) {
      const DT v = (DT)((double)xr[s] * std::pow((double)nr[s], -beta));
      if (req == OpReq::kAddTo) yr[s] += v;
      else yr[s] = v;
    }
  }
}

void lrn_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: data; out: output, tmp_norm
  const LrnDims d = lrn_dims(in[0].shape);
  KILN_CHECK(out[1].ptr != nullptr, "LRN: the tmp_norm output has no memory (the op declares outputs_always_written)");
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    lrn_forward<DT>(d, a, in[0].dptr<DT>(), out[0].dptr<DT>(), out[1].dptr<DT>(), req[0]);
  });
}

template <typename DT>
void lrn_backward(const LrnDims& d, const Attrs& a, const DT* dy, const DT* x, const DT* norm, DT* dx, OpReq req) {
  // dy, x, norm, dx [N, C, S]
  if (req == OpReq::kNullOp) return;
  const int64_t nsize = a.i("nsize");
  const double salpha = a.f("alpha") / (double)nsize, beta = a.f("beta");
  const bool add = req == OpReq::kAddTo;
  const int nt = omp_threads(d.N * d.C * d.S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t n = 0; n < d.N; ++n) {
    const int64_t base = n * d.C * d.S;
    std::vector<double> t((size_t)(d.C * d.S));  // [C, S]: dy * x * norm^(-beta-1)
    for (int64_t i = 0; i < d.C * d.S; ++i)
      t[i] = (double)dy[base + i] * (double)x[base + i] * std::pow((double)norm[base + i], -beta - 1.0);
    for (int64_t c = 0; c < d.C; ++c) {
      int64_t b, e;
      lrn_window(c, d.C, nsize, &b, &e);
      for (int64_t s = 0; s < d.S; ++s) {
        double acc = 0;
        for (int64_t cc = b; cc < e; ++cc) acc += t[cc * d.S + s];
        const int64_t i = base + c * d.S + s;
        const double g = (double)dy[i] * std::pow((double)norm[i], -beta) - 2.0 * beta * salpha * acc * (double)x[i];
        dx[i] = add ? (DT)(dx[i] + g) : (DT)g;
      }
    }
  }
}

void lrn_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: ograd, data, tmp_norm; out: data grad
  const LrnDims d = lrn_dims(in[1].shape);
  KILN_FLOAT_SWITCH(in[1].dtype, DT, {
    lrn_backward<DT>(d, a, in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), out[0].dptr<DT>(), req[0]);
  });
}

}  // namespace

void register_lrn(OpRegistry& r) {
  OpDef op;
  op.name = "LRN";
  op.description =
      "Local response normalization across channels of 4D data (N, C, H, W): y = x * (knorm + alpha/nsize * sum of "
      "x^2 over a window of nsize channels)^-beta. The hidden output tmp_norm holds the normalizer.";
  op.params = {
      param("alpha", ParamType::kFloat, "0.0001", "The variance scaling parameter :math:`\\alpha` in the LRN expression."),
      param("beta", ParamType::kFloat, "0.75", "The power parameter :math:`\\beta` in the LRN expression."),
      param("knorm", ParamType::kFloat, "2", "The parameter :math:`k` in the LRN expression."),
      param_range("nsize", ParamType::kInt, "", 1, 4294967295.0, "normalization window width in elements."),
  };
  op.input_names_ = {"data"};
  op.output_names_ = {"output", "tmp_norm"};
  op.num_visible_outputs_fn = [](const Attrs&) { return 1; };
  op.infer_shape = lrn_infer_shape;
  op.cpu = lrn_forward_cpu;
  op.outputs_always_written = true;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_LRN", n, {og[0], n->inputs[0], NodeEntry{n, 1}});
  };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_LRN", fwd);
  bw.input_names_ = {"ograd", "data", "tmp_norm"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = lrn_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace norm
}  // namespace kiln
