// BatchNorm and its backward (MXNet 1.9.1 src/operator/nn/batch_norm.cc, CPU kernels).
//
// data is viewed as [outer, C, inner] around the channel axis; gamma, beta, moving_mean,
// moving_var and the hidden outputs mean, var are [C]. MXNet's CPU semantics, kept on purpose:
//  * the `var` output holds the inverse standard deviation 1/sqrt(var + eps), not the variance;
//  * training (is_train and not use_global_stats) normalizes with the batch mean and the biased
//    batch variance; otherwise with moving_mean / moving_var;
//  * the moving statistics are updated in the BACKWARD pass (as MXNet's CPU and MKL-DNN kernels
//    do): moving = moving * momentum + batch * (1 - momentum), with the biased batch variance
//    recovered from the saved inverse std. A training forward without backward leaves them alone,
//    so re-running a forward (mirroring) never updates them twice;
//  * fix_gamma: gamma is read as 1 and its gradient is 0, and, as MXNet's CPU forward does, 1 is
//    written into the gamma array (so a checkpoint saved after training holds gamma = 1).
#include "kiln/simd.h"
#include "norm_ops.h"
#include "kiln/low_precision.h"

namespace kiln {
namespace norm {
namespace {

int bn_axis(const Attrs& a, const Shape& data) {
  const int ax = resolve_axis(a.i("axis"), data.ndim());
  KILN_CHECK(ax >= 0, "BatchNorm: Channel axis out of range: " + std::to_string(a.i("axis")) + " for data of shape " +
                          data.str());
  return ax;
}

void bn_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape dshape = (*in)[0];
  if (!dshape.rank_known()) return;
  const int nd = dshape.ndim();
  const int ax = resolve_axis(a.i("axis"), nd);
  if (nd == 0 || ax < 0)
    throw InferError(true, 0, "BatchNorm: Channel axis out of range: " + std::to_string(a.i("axis")) +
                                  " for data of shape " + dshape.str());
  const Shape c{dshape[ax]};
  for (int i = 1; i <= 4; ++i) assign_in(in, i, c);
  assign_out(out, 0, dshape);
  assign_out(out, 1, c);
  assign_out(out, 2, c);
  // the channel count can come back from a parameter, the other dims from the output
  Shape back = (*out)[0];
  Shape ch = Shape::unknown_dims(nd);
  ch[ax] = (*in)[1][0];
  assign_in(in, 0, back);
  assign_in(in, 0, ch);
}

void bn_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  const DType d = (*in)[0];
  if (d == DType::kUnknown) return;
  // float16/bfloat16 data keeps its parameters and statistics in float32 (as MXNet, for cuDNN)
  const DType p = is_low_precision(d) ? DType::kFloat32 : d;
  for (size_t i = 1; i < in->size(); ++i) {
    if ((*in)[i] == DType::kUnknown) (*in)[i] = p;
    else if ((*in)[i] != p)
      throw InferError(true, (int)i, std::string("BatchNorm: parameter type ") + dtype_name((*in)[i]) +
                                         " does not match the expected " + dtype_name(p));
  }
  (*out)[0] = d;
  (*out)[1] = p;
  (*out)[2] = p;
}

/// Sum of squared deviations from mu, in double (the batch variance's numerator).
template <typename DT>
struct SqDevReducer {
  using Acc = double;
  double mu;
  static Acc init() { return 0.0; }
  Acc step(Acc a, DT x) const {
    const double d = (double)x - mu;
    return a + d * d;
  }
  static Acc merge(Acc a, Acc b) { return a + b; }
};

template <typename DT>
void bn_forward(const AxisView& v, const Attrs& a, bool batch_stats, const DT* x, DT* gamma, const DT* beta,
                const DT* mm, const DT* mv, DT* y, DT* mean, DT* invstd, OpReq req) {
  // x [outer, C, inner], y [outer, C, inner] (may be null for kNullOp), gamma/beta/mm/mv/mean/invstd [C];
  // gamma is overwritten with 1 under fix_gamma
  const double eps = a.f("eps");
  const bool fix_gamma = a.b("fix_gamma");
  const int64_t M = v.outer * v.inner;
  const int nt = omp_threads(v.outer * v.C * v.inner);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t c = 0; c < v.C; ++c) {
    double mu, inv;
    if (batch_stats) {
      // double sums per row: simd::reduce_run (64 independent accumulators) on long rows; on short
      // ones (ResNet's 4x4 images: 16 pixels) its set-up costs more than the row, and one `omp simd`
      // accumulator (a dependent add every 4 elements) is faster. 4x4 x 512, batch 32: 1.65 -> 0.85 ms.
      const bool short_rows = v.inner < 128;
      double s = 0;
      for (int64_t o = 0; o < v.outer; ++o) {
        const DT* xr = x + (o * v.C + c) * v.inner;  // [inner]
        if (!short_rows) {
          s += simd::reduce_run(simd::SumReducer<DT>{}, xr, v.inner);
          continue;
        }
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < v.inner; ++i) s += (double)xr[i];
      }
      mu = M > 0 ? s / (double)M : 0.0;
      double ss = 0;
      for (int64_t o = 0; o < v.outer; ++o) {
        const DT* xr = x + (o * v.C + c) * v.inner;  // [inner]
        if (!short_rows) {
          ss += simd::reduce_run(SqDevReducer<DT>{mu}, xr, v.inner);
          continue;
        }
#pragma omp simd reduction(+ : ss)
        for (int64_t i = 0; i < v.inner; ++i) {
          const double d = (double)xr[i] - mu;
          ss += d * d;
        }
      }
      if (ss == 0 && eps == 0) inv = 0;  // as MXNet: no division by zero
      else inv = 1.0 / std::sqrt((M > 0 ? ss / (double)M : 0.0) + eps);
    } else {
      mu = (double)mm[c];
      inv = 1.0 / std::sqrt((double)mv[c] + eps);
    }
    mean[c] = (DT)mu;
    invstd[c] = (DT)inv;
    if (fix_gamma) gamma[c] = DT(1);
    if (req == OpReq::kNullOp) continue;
    const double g = fix_gamma ? 1.0 : (double)gamma[c];
    const double scale = g * inv, shift = (double)beta[c] - mu * scale;
    for (int64_t o = 0; o < v.outer; ++o) {
      const DT* xr = x + (o * v.C + c) * v.inner;  // [inner]
      DT* yr = y + (o * v.C + c) * v.inner;        // [inner]
      if (req == OpReq::kAddTo)
        simd::run(0, v.inner, [=](int64_t i) { yr[i] += (DT)((double)xr[i] * scale + shift); });
      else
        simd::run(0, v.inner, [=](int64_t i) { yr[i] = (DT)((double)xr[i] * scale + shift); });
    }
  }
}

void bn_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  // in: data, gamma, beta, moving_mean, moving_var; out: output, mean, var (inverse std)
  const AxisView v = axis_view(in[0].shape, bn_axis(a, in[0].shape));
  KILN_CHECK(out[1].ptr != nullptr && out[2].ptr != nullptr,
             "BatchNorm: the mean/var outputs have no memory (the op declares outputs_always_written)");
  const bool batch_stats = ctx.is_train && !a.b("use_global_stats");
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    bn_forward<DT>(v, a, batch_stats, in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), in[3].dptr<DT>(),
                   in[4].dptr<DT>(), out[0].dptr<DT>(), out[1].dptr<DT>(), out[2].dptr<DT>(), req[0]);
  });
}

template <typename DT>
void bn_backward(const AxisView& v, const Attrs& a, bool batch_stats, const DT* dy, const DT* smean,
                 const DT* sinv, const DT* x, const DT* gamma, DT* mm, DT* mv, DT* dx, DT* dgamma, DT* dbeta,
                 const std::vector<OpReq>& req) {
  // dy, x, dx [outer, C, inner]; smean, sinv (saved mean / inverse std), gamma, mm, mv, dgamma, dbeta [C]
  const double eps = a.f("eps"), momentum = a.f("momentum");
  const bool fix_gamma = a.b("fix_gamma");
  const int64_t M = v.outer * v.inner;
  const int nt = omp_threads(v.outer * v.C * v.inner);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t c = 0; c < v.C; ++c) {
    const double w = fix_gamma ? 1.0 : (double)gamma[c];
    double mu, inv;
    if (batch_stats) {
      mu = (double)smean[c];
      inv = (double)sinv[c];
      const double var = 1.0 / (inv * inv) - eps;  // the biased batch variance
      mm[c] = (DT)((double)mm[c] * momentum + mu * (1.0 - momentum));
      mv[c] = (DT)((double)mv[c] * momentum + var * (1.0 - momentum));
    } else {
      mu = (double)mm[c];
      inv = 1.0 / std::sqrt((double)mv[c] + eps);
    }
    double sum_dy = 0, dotp = 0;
    for (int64_t o = 0; o < v.outer; ++o) {
      const int64_t off = (o * v.C + c) * v.inner;
      const DT* dyr = dy + off;  // [inner]
      const DT* xr = x + off;    // [inner]
      double sd = 0, dp = 0;
#pragma omp simd reduction(+ : sd, dp)
      for (int64_t i = 0; i < v.inner; ++i) {
        sd += (double)dyr[i];
        dp += ((double)xr[i] - mu) * (double)dyr[i];
      }
      sum_dy += sd;
      dotp += dp;
    }
    if (req[0] != OpReq::kNullOp) {
      const bool add = req[0] == OpReq::kAddTo;
      const double iw = inv * w;
      const double k = batch_stats && M > 0 ? dotp * inv * inv / (double)M : 0.0;
      const double gmean = batch_stats && M > 0 ? sum_dy / (double)M : 0.0;
      for (int64_t o = 0; o < v.outer; ++o) {
        const int64_t off = (o * v.C + c) * v.inner;
        const DT* dyr = dy + off;  // [inner]
        const DT* xr = x + off;    // [inner]
        DT* dxr = dx + off;        // [inner]
        if (add)
          simd::run(0, v.inner, [=](int64_t i) { dxr[i] += (DT)(((double)dyr[i] - gmean - ((double)xr[i] - mu) * k) * iw); });
        else
          simd::run(0, v.inner, [=](int64_t i) { dxr[i] = (DT)(((double)dyr[i] - gmean - ((double)xr[i] - mu) * k) * iw); });
      }
    }
    if (dgamma) assign_req(dgamma[c], req[1], (DT)(fix_gamma ? 0.0 : dotp * inv));
    if (dbeta) assign_req(dbeta[c], req[2], (DT)sum_dy);
  }
}

void bn_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: ograd, mean, var (inverse std), data, gamma, moving_mean, moving_var; out: data, gamma, beta grads
  const AxisView v = axis_view(in[3].shape, bn_axis(a, in[3].shape));
  const bool batch_stats = ctx.is_train && !a.b("use_global_stats");
  KILN_FLOAT_SWITCH(in[3].dtype, DT, {
    bn_backward<DT>(v, a, batch_stats, in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), in[3].dptr<DT>(),
                    in[4].dptr<DT>(), in[5].dptr<DT>(), in[6].dptr<DT>(), out[0].dptr<DT>(), out[1].dptr<DT>(),
                    out[2].dptr<DT>(), req);
  });
}

}  // namespace

void register_batch_norm(OpRegistry& r) {
  OpDef op;
  op.name = "BatchNorm";
  op.description =
      "Batch normalization: normalizes data per channel (axis) by the batch mean and variance in training, by "
      "moving_mean / moving_var otherwise, then scales by gamma and shifts by beta. moving_mean and moving_var are "
      "auxiliary states, updated (moving = moving * momentum + batch * (1 - momentum)) by the backward pass. The "
      "hidden outputs mean and var hold the mean and the inverse standard deviation used.";
  op.params = {
      param("eps", ParamType::kFloat, "0.001",
            "Epsilon to prevent div 0. Must be no less than CUDNN_BN_MIN_EPSILON defined in cudnn.h when using cudnn "
            "(usually 1e-5)"),
      param("momentum", ParamType::kFloat, "0.9", "Momentum for moving average"),
      param("fix_gamma", ParamType::kBool, "True", "Fix gamma while training"),
      param("use_global_stats", ParamType::kBool, "False",
            "Whether use global moving statistics instead of local batch-norm. This will force change batch-norm "
            "into a scale shift operator."),
      param("output_mean_var", ParamType::kBool, "False", "Output the mean and inverse std "),
      param("axis", ParamType::kInt, "1", "Specify which shape axis the channel is specified"),
      param("cudnn_off", ParamType::kBool, "False", "Do not select CUDNN operator, if available"),
      param("min_calib_range", ParamType::kFloat, "None",
            "The minimum scalar value in the form of float32 obtained through calibration (quantization only)."),
      param("max_calib_range", ParamType::kFloat, "None",
            "The maximum scalar value in the form of float32 obtained through calibration (quantization only)."),
  };
  op.input_names_ = {"data", "gamma", "beta", "moving_mean", "moving_var"};
  op.output_names_ = {"output", "mean", "var"};
  op.num_visible_outputs_fn = [](const Attrs& a) { return a.b("output_mean_var") ? 3 : 1; };
  op.mutate_inputs = [](const Attrs&) { return std::vector<int>{3, 4}; };
  op.infer_shape = bn_infer_shape;
  op.infer_type = bn_infer_type;
  op.cpu = bn_forward_cpu;
  op.outputs_always_written = true;  // mean / var are written (and read by the backward) whatever the request
  // data -> output in place (as MXNet's planner allows): each channel's statistics are read before
  // that channel's output is written, and the planner only pairs them when nothing else reads data
  op.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    std::vector<NodeEntry> g = make_backward(
        "_backward_BatchNorm", n,
        {og[0], NodeEntry{n, 1}, NodeEntry{n, 2}, n->inputs[0], n->inputs[1], n->inputs[3], n->inputs[4]});
    g.resize(3);
    g.push_back(no_gradient());  // moving_mean (aux)
    g.push_back(no_gradient());  // moving_var (aux)
    return g;
  };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_BatchNorm", fwd);
  bw.input_names_ = {"ograd", "mean", "var", "data", "gamma", "moving_mean", "moving_var"};
  bw.output_names_ = {"data_grad", "gamma_grad", "beta_grad"};
  bw.cpu = bn_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace norm
}  // namespace kiln
