// InstanceNorm and GroupNorm with their backward ops (MXNet 1.9.1 src/operator/instance_norm{-inl.h,.cc},
// src/operator/nn/group_norm{-inl.h,.cc}). They share their kernels:
//
// InstanceNorm: data (N, C, d2, ...) is viewed as [N*C, S] with S = d2 * ...; every row (one
// instance, one channel) is normalized over S: y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c],
// biased var. gamma, beta are [C]; the hidden outputs mean and var (the variance) are [N, C].
//
// GroupNorm(num_groups = G): the C channels of an instance form G groups of C/G consecutive
// channels, so data is the same [N*G, S] rows with S = (C/G) * d2 * ...: y = (x - mean) /
// sqrt(var + eps) * gamma[g] + beta[g]. As in MXNet 1.x, gamma and beta are [G] (one scale per
// group, not per channel), and the outputs mean and std (sqrt(var + eps)) are [N, G], visible
// with output_mean_var=True.
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

/// Rows [N * C, S]: C channels (InstanceNorm) or groups (GroupNorm) of S elements each; the second
/// statistic is the variance (InstanceNorm) or sqrt(var + eps) (GroupNorm, std_stat).
struct InDims {
  int64_t N, C, S;
  bool std_stat = false;
};
InDims in_dims(const Shape& s) {
  KILN_CHECK(s.ndim() >= 3, "InstanceNorm only accepts input of 3 or more dimensions, got " + s.str());
  return InDims{s[0], s[1], s.prod(2, s.ndim())};
}

template <typename DT>
void in_forward(const InDims& d, double eps, const DT* x, const DT* gamma, const DT* beta, DT* y, DT* mean, DT* var,
                OpReq req) {
  // x, y [N*C, S]; gamma, beta [C]; mean, var [N*C] (var: sqrt(var + eps) when d.std_stat)
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
    var[r] = (DT)(d.std_stat ? std::sqrt(v + eps) : v);
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
  // dy, x, dx [N*C, S]; gamma, dgamma, dbeta [C]; mean, var [N*C] (var: std when d.std_stat)
  auto inv_sd = [&](int64_t r) { return d.std_stat ? 1.0 / (double)var[r] : 1.0 / std::sqrt((double)var[r] + eps); };
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
        const double mu = (double)mean[r], inv = inv_sd(r);
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
      const double mu = (double)mean[r], inv = inv_sd(r);
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

// ---- GroupNorm ------------------------------------------------------------------------------------

void gn_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape dshape = (*in)[0];
  const int64_t G = a.i("num_groups");
  assign_in(in, 1, Shape{G});
  assign_in(in, 2, Shape{G});
  if (!dshape.rank_known()) return;
  if (dshape.ndim() < 3)
    throw InferError(true, 0, "GroupNorm only accepts input of 3 or more dimensions (N, C, spatial...), got " +
                                  dshape.str());
  if (dshape[1] >= 0 && dshape[1] % G != 0)
    throw InferError(true, 0, "GroupNorm: the " + std::to_string(dshape[1]) + " channels of data " + dshape.str() +
                                  " are not divisible by num_groups=" + std::to_string(G));
  assign_out(out, 0, dshape);
  assign_out(out, 1, Shape{dshape[0], G});
  assign_out(out, 2, Shape{dshape[0], G});
  assign_in(in, 0, (*out)[0]);
}

InDims gn_dims(const Attrs& a, const Shape& s) {
  const int64_t G = a.i("num_groups");
  KILN_CHECK(s.ndim() >= 3, "GroupNorm only accepts input of 3 or more dimensions, got " + s.str());
  KILN_CHECK(s[1] % G == 0, "GroupNorm: the channels of data " + s.str() + " are not divisible by num_groups=" +
                                std::to_string(G));
  return InDims{s[0], G, (s[1] / G) * s.prod(2, s.ndim()), true};
}

void gn_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  // in: data, gamma [G], beta [G]; out: output, mean [N, G], std [N, G]
  const InDims d = gn_dims(a, in[0].shape);
  KILN_CHECK(out[1].ptr != nullptr && out[2].ptr != nullptr,
             "GroupNorm: the mean/std outputs have no memory (the op declares outputs_always_written)");
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    in_forward<DT>(d, a.f("eps"), in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), out[0].dptr<DT>(),
                   out[1].dptr<DT>(), out[2].dptr<DT>(), req[0]);
  });
}

void gn_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: ograd, data, gamma, mean, std; out: data, gamma, beta grads
  const InDims d = gn_dims(a, in[1].shape);
  KILN_FLOAT_SWITCH(in[1].dtype, DT, {
    in_backward<DT>(d, a.f("eps"), in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), in[3].dptr<DT>(),
                    in[4].dptr<DT>(), out[0].dptr<DT>(), out[1].dptr<DT>(), out[2].dptr<DT>(), req);
  });
}

}  // namespace

void register_group_norm(OpRegistry& r) {
  OpDef op;
  op.name = "GroupNorm";
  op.description =
      "Group normalization: the channels of every instance of data (N, C, spatial...) form num_groups groups of "
      "consecutive channels, each normalized over its channels and positions: y = (x - mean) / sqrt(var + eps) * "
      "gamma[g] + beta[g]. As in MXNet 1.x, gamma and beta are (num_groups,); the outputs mean and std are "
      "(N, num_groups).";
  op.params = {
      param("num_groups", ParamType::kInt, "1", "Total number of groups."),
      param("eps", ParamType::kFloat, "1e-05", "An `epsilon` parameter to prevent division by 0."),
      param("output_mean_var", ParamType::kBool, "False", "Output the mean and std calculated along the given axis."),
  };
  op.params[0].lower = 1;
  op.input_names_ = {"data", "gamma", "beta"};
  op.output_names_ = {"output", "mean", "std"};
  op.num_visible_outputs_fn = [](const Attrs& a) { return a.b("output_mean_var") ? 3 : 1; };
  op.infer_shape = gn_infer_shape;
  op.cpu = gn_forward_cpu;
  op.outputs_always_written = true;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_GroupNorm", n,
                         {og[0], n->inputs[0], n->inputs[1], NodeEntry{n, 1}, NodeEntry{n, 2}});
  };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_GroupNorm", fwd);
  bw.input_names_ = {"ograd", "data", "gamma", "mean", "std"};
  bw.output_names_ = {"data_grad", "gamma_grad", "beta_grad"};
  bw.cpu = gn_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

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
