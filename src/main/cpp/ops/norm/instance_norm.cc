// InstanceNorm and its backward (MXNet 1.9.1 src/operator/instance_norm{-inl.h,.cc}).
//
// data (N, C, d2, ...) is viewed as [N*C, S] with S = d2 * ...; every row (one instance, one
// channel) is normalized over S: y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], biased
// var. gamma, beta are [C]; the hidden outputs mean and var (the variance) are [N, C].
#include "norm_ops.h"

namespace kiln {
namespace norm {
namespace {

void in_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape dshape = (*in)[0];
  if (!dshape.rank_known()) return;
  if (dshape.ndim() < 3)
    throw InferError(true, 0, "InstanceNorm only accepts input of 3 or more dimensions (N, C, spatial...), got " +
                                  dshape.str());
  assign_in(in, 1, Shape{dshape[1]});
  assign_in(in, 2, Shape{dshape[1]});
  assign_out(out, 0, dshape);
  assign_out(out, 1, Shape{dshape[0], dshape[1]});
  assign_out(out, 2, Shape{dshape[0], dshape[1]});
  assign_in(in, 0, (*out)[0]);
  Shape ch = Shape::unknown_dims(dshape.ndim());
  ch[1] = (*in)[1][0];
  ch[0] = (*out)[1][0];
  assign_in(in, 0, ch);
}

struct InDims {
  int64_t N, C, S;
};
InDims in_dims(const Shape& s) {
  KILN_CHECK(s.ndim() >= 3, "InstanceNorm only accepts input of 3 or more dimensions, got " + s.str());
  return InDims{s[0], s[1], s.prod(2, s.ndim())};
}

template <typename DT>
void in_forward(const InDims& d, double eps, const DT* x, const DT* gamma, const DT* beta, DT* y, DT* mean, DT* var,
                OpReq req) {
  // x, y [N*C, S]; gamma, beta [C]; mean, var [N*C]
  const int64_t rows = d.N * d.C;
  const int nt = omp_threads(rows * d.S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const DT* xr = x + r * d.S;  // [S]
    double s = 0;
    for (int64_t i = 0; i < d.S; ++i) s += xr[i];
    const double mu = d.S > 0 ? s / (double)d.S : 0.0;
    double ss = 0;
    for (int64_t i = 0; i < d.S; ++i) ss += ((double)xr[i] - mu) * ((double)xr[i] - mu);
    const double v = d.S > 0 ? ss / (double)d.S : 0.0;
    mean[r] = (DT)mu;
    var[r] = (DT)v;
    if (req == OpReq::kNullOp) continue;
    const int64_t c = r % d.C;
    const double scale = (double)gamma[c] / std::sqrt(v + eps), shift = (double)beta[c] - mu * scale;
    DT* yr = y + r * d.S;  // [S]
    if (req == OpReq::kAddTo)
      for (int64_t i = 0; i < d.S; ++i) yr[i] += (DT)((double)xr[i] * scale + shift);
    else
      for (int64_t i = 0; i < d.S; ++i) yr[i] = (DT)((double)xr[i] * scale + shift);
  }
}

void in_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  // in: data, gamma, beta; out: output, mean, var
  const InDims d = in_dims(in[0].shape);
  KILN_CHECK(out[1].ptr != nullptr && out[2].ptr != nullptr,
             "InstanceNorm: the mean/var outputs have no memory (the op declares outputs_always_written)");
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    in_forward<DT>(d, a.f("eps"), in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), out[0].dptr<DT>(),
                   out[1].dptr<DT>(), out[2].dptr<DT>(), req[0]);
  });
}

template <typename DT>
void in_backward(const InDims& d, double eps, const DT* dy, const DT* x, const DT* gamma, const DT* mean,
                 const DT* var, DT* dx, DT* dgamma, DT* dbeta, const std::vector<OpReq>& req) {
  // dy, x, dx [N*C, S]; gamma, dgamma, dbeta [C]; mean, var [N*C]
  const int64_t rows = d.N * d.C;
  if (req[1] != OpReq::kNullOp || req[2] != OpReq::kNullOp) {
    const int nt = omp_threads(rows * d.S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t c = 0; c < d.C; ++c) {
      double sg = 0, sb = 0;
      for (int64_t n = 0; n < d.N; ++n) {
        const int64_t r = n * d.C + c;
        const DT* dyr = dy + r * d.S;  // [S]
        const DT* xr = x + r * d.S;    // [S]
        const double mu = (double)mean[r], inv = 1.0 / std::sqrt((double)var[r] + eps);
        for (int64_t i = 0; i < d.S; ++i) {
          sb += dyr[i];
          sg += (double)dyr[i] * ((double)xr[i] - mu) * inv;
        }
      }
      assign_req(dgamma[c], req[1], (DT)sg);
      assign_req(dbeta[c], req[2], (DT)sb);
    }
  }
  // dx last: it may be written in place over dy, which the gamma / beta sums read
  if (req[0] != OpReq::kNullOp) {
    const bool add = req[0] == OpReq::kAddTo;
    const int nt = omp_threads(rows * d.S);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; ++r) {
      const DT* dyr = dy + r * d.S;  // [S]
      const DT* xr = x + r * d.S;    // [S]
      DT* dxr = dx + r * d.S;        // [S]
      const double mu = (double)mean[r], inv = 1.0 / std::sqrt((double)var[r] + eps);
      double sg = 0, sgx = 0;
      for (int64_t i = 0; i < d.S; ++i) {
        sg += dyr[i];
        sgx += (double)dyr[i] * ((double)xr[i] - mu) * inv;
      }
      const double mg = d.S > 0 ? sg / (double)d.S : 0.0, mgx = d.S > 0 ? sgx / (double)d.S : 0.0;
      const double gi = (double)gamma[r % d.C] * inv;
      for (int64_t i = 0; i < d.S; ++i) {
        const double g = ((double)dyr[i] - mg - ((double)xr[i] - mu) * inv * mgx) * gi;
        dxr[i] = add ? (DT)(dxr[i] + g) : (DT)g;
      }
    }
  }
}

void in_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: ograd, data, gamma, mean, var; out: data, gamma, beta grads
  const InDims d = in_dims(in[1].shape);
  KILN_FLOAT_SWITCH(in[1].dtype, DT, {
    in_backward<DT>(d, a.f("eps"), in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), in[3].dptr<DT>(),
                    in[4].dptr<DT>(), out[0].dptr<DT>(), out[1].dptr<DT>(), out[2].dptr<DT>(), req);
  });
}

}  // namespace

void register_instance_norm(OpRegistry& r) {
  OpDef op;
  op.name = "InstanceNorm";
  op.description =
      "Instance normalization: every channel of every instance of data (N, C, spatial...) is normalized over its "
      "spatial positions, y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c]; gamma and beta are (C,).";
  op.params = {
      param("eps", ParamType::kFloat, "0.001", "An `epsilon` parameter to prevent division by 0."),
  };
  op.input_names_ = {"data", "gamma", "beta"};
  op.output_names_ = {"output", "mean", "var"};
  op.num_visible_outputs_fn = [](const Attrs&) { return 1; };
  op.infer_shape = in_infer_shape;
  op.cpu = in_forward_cpu;
  op.outputs_always_written = true;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_InstanceNorm", n,
                         {og[0], n->inputs[0], n->inputs[1], NodeEntry{n, 1}, NodeEntry{n, 2}});
  };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_InstanceNorm", fwd);
  bw.input_names_ = {"ograd", "data", "gamma", "mean", "var"};
  bw.output_names_ = {"data_grad", "gamma_grad", "beta_grad"};
  bw.cpu = in_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace norm
}  // namespace kiln
