// LayerNorm and its backward (MXNet 1.9.1 src/operator/nn/layer_norm.cc, CPU).
//
// data is viewed as [outer, C, inner] around `axis`; each of the outer*inner vectors of length C
// is normalized: y = (x - mean) / std * gamma + beta with std = sqrt(var + eps) (biased var).
// gamma, beta are [C]; the hidden outputs mean and std have data's shape with 1 on `axis`,
// i.e. [outer, inner].
#include "norm_ops.h"

namespace kiln {
namespace norm {
namespace {

int ln_axis(const Attrs& a, const Shape& data) {
  const int ax = resolve_axis(a.i("axis"), data.ndim());
  KILN_CHECK(ax >= 0, "LayerNorm: axis " + std::to_string(a.i("axis")) + " out of range for data of shape " + data.str());
  return ax;
}

void ln_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape dshape = (*in)[0];
  if (!dshape.rank_known()) return;
  const int nd = dshape.ndim();
  const int ax = resolve_axis(a.i("axis"), nd);
  if (ax < 0)
    throw InferError(true, 0, "LayerNorm: axis " + std::to_string(a.i("axis")) + " exceeds the dimension of data " +
                                  dshape.str());
  assign_in(in, 1, Shape{dshape[ax]});
  assign_in(in, 2, Shape{dshape[ax]});
  Shape moments = dshape;
  moments[ax] = 1;
  assign_out(out, 0, dshape);
  assign_out(out, 1, moments);
  assign_out(out, 2, moments);
  assign_in(in, 0, (*out)[0]);
  Shape ch = Shape::unknown_dims(nd);
  ch[ax] = (*in)[1][0];
  assign_in(in, 0, ch);
}

template <typename DT>
void ln_forward(const AxisView& v, double eps, const DT* x, const DT* gamma, const DT* beta, DT* y, DT* mean, DT* sd,
                OpReq req) {
  // x, y [outer, C, inner]; gamma, beta [C]; mean, sd [outer, inner]
  const int64_t rows = v.outer * v.inner;
  const int nt = omp_threads(rows * v.C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t o = r / v.inner, i = r % v.inner;
    const DT* xr = x + o * v.C * v.inner + i;  // [C] with stride inner
    double s = 0;
    for (int64_t c = 0; c < v.C; ++c) s += xr[c * v.inner];
    const double mu = v.C > 0 ? s / (double)v.C : 0.0;
    double ss = 0;
    for (int64_t c = 0; c < v.C; ++c) ss += ((double)xr[c * v.inner] - mu) * ((double)xr[c * v.inner] - mu);
    const double sdv = std::sqrt((v.C > 0 ? ss / (double)v.C : 0.0) + eps);
    mean[r] = (DT)mu;
    sd[r] = (DT)sdv;
    if (req == OpReq::kNullOp) continue;
    DT* yr = y + o * v.C * v.inner + i;  // [C] with stride inner
    const double inv = 1.0 / sdv;
    for (int64_t c = 0; c < v.C; ++c) {
      const DT val = (DT)(((double)xr[c * v.inner] - mu) * inv * (double)gamma[c] + (double)beta[c]);
      if (req == OpReq::kAddTo) yr[c * v.inner] += val;
      else yr[c * v.inner] = val;
    }
  }
}

void ln_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  // in: data, gamma, beta; out: output, mean, std
  const AxisView v = axis_view(in[0].shape, ln_axis(a, in[0].shape));
  KILN_CHECK(out[1].ptr != nullptr && out[2].ptr != nullptr,
             "LayerNorm: the mean/std outputs have no memory (the op declares outputs_always_written)");
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    ln_forward<DT>(v, a.f("eps"), in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), out[0].dptr<DT>(),
                   out[1].dptr<DT>(), out[2].dptr<DT>(), req[0]);
  });
}

template <typename DT>
void ln_backward(const AxisView& v, const DT* dy, const DT* x, const DT* gamma, const DT* mean, const DT* sd, DT* dx,
                 DT* dgamma, DT* dbeta, const std::vector<OpReq>& req) {
  // dy, x, dx [outer, C, inner]; gamma, dgamma, dbeta [C]; mean, sd [outer, inner]
  const int64_t rows = v.outer * v.inner;
  if (req[1] != OpReq::kNullOp || req[2] != OpReq::kNullOp) {
    const int nt = omp_threads(rows * v.C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t c = 0; c < v.C; ++c) {
      double sg = 0, sb = 0;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t idx = (r / v.inner) * v.C * v.inner + c * v.inner + r % v.inner;
        sb += dy[idx];
        sg += (double)dy[idx] * ((double)x[idx] - (double)mean[r]) / (double)sd[r];
      }
      assign_req(dgamma[c], req[1], (DT)sg);
      assign_req(dbeta[c], req[2], (DT)sb);
    }
  }
  // dx last: it may be written in place over dy, which the gamma / beta sums read
  if (req[0] != OpReq::kNullOp) {
    const bool add = req[0] == OpReq::kAddTo;
    const int nt = omp_threads(rows * v.C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t off = (r / v.inner) * v.C * v.inner + r % v.inner;
      const DT* dyr = dy + off;  // [C] with stride inner
      const DT* xr = x + off;    // [C] with stride inner
      DT* dxr = dx + off;        // [C] with stride inner
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
        const double g = ((double)dyr[c * v.inner] * (double)gamma[c] - mg - xh * mgx) * inv;
        dxr[c * v.inner] = add ? (DT)(dxr[c * v.inner] + g) : (DT)g;
      }
    }
  }
}

void ln_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: ograd, data, gamma, mean, std; out: data, gamma, beta grads
  const AxisView v = axis_view(in[1].shape, ln_axis(a, in[1].shape));
  KILN_FLOAT_SWITCH(in[1].dtype, DT, {
    ln_backward<DT>(v, in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), in[3].dptr<DT>(), in[4].dptr<DT>(),
                    out[0].dptr<DT>(), out[1].dptr<DT>(), out[2].dptr<DT>(), req);
  });
}

}  // namespace

void register_layer_norm(OpRegistry& r) {
  OpDef op;
  op.name = "LayerNorm";
  op.description =
      "Layer normalization: normalizes data along `axis` to zero mean and unit variance, "
      "y = (x - mean) / sqrt(var + eps) * gamma + beta. gamma and beta have the size of data on `axis`; the hidden "
      "outputs mean and std (sqrt(var + eps)) have data's shape with 1 on `axis`.";
  op.params = {
      param("axis", ParamType::kInt, "-1",
            "The axis to perform layer normalization. Usually, this should be be axis of the channel dimension. "
            "Negative values means indexing from right to left."),
      param("eps", ParamType::kFloat, "1e-05", "An `epsilon` parameter to prevent division by 0."),
      param("output_mean_var", ParamType::kBool, "False", "Output the mean and std calculated along the given axis."),
  };
  op.input_names_ = {"data", "gamma", "beta"};
  op.output_names_ = {"output", "mean", "std"};
  op.num_visible_outputs_fn = [](const Attrs& a) { return a.b("output_mean_var") ? 3 : 1; };
  op.infer_shape = ln_infer_shape;
  op.cpu = ln_forward_cpu;
  op.outputs_always_written = true;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_LayerNorm", n,
                         {og[0], n->inputs[0], n->inputs[1], NodeEntry{n, 1}, NodeEntry{n, 2}});
  };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_LayerNorm", fwd);
  bw.input_names_ = {"ograd", "data", "gamma", "mean", "std"};
  bw.output_names_ = {"data_grad", "gamma_grad", "beta_grad"};
  bw.cpu = ln_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace norm
}  // namespace kiln
