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

/// Sum over one row of x (double): simd::reduce_run (64 independent accumulators) on long rows; on
/// short ones (ResNet's 4x4 images: 16 pixels) its set-up costs more than the row, and one `omp
/// simd` accumulator is faster (4x4 x 512, batch 32: BatchNorm 1.65 -> 0.85 ms).
template <typename DT>
double row_sum(const DT* xr, int64_t n) {
  if (n >= 128) return simd::reduce_run(simd::SumReducer<DT>{}, xr, n);
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += (double)xr[i];
  return s;
}

/// Sum over one row of (x - mu)^2 (double), as row_sum.
template <typename DT>
double row_sq_dev(const DT* xr, int64_t n, double mu) {
  if (n >= 128) return simd::reduce_run(SqDevReducer<DT>{mu}, xr, n);
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    const double d = (double)xr[i] - mu;
    s += d * d;
  }
  return s;
}

template <typename DT>
void bn_forward(const AxisView& v, const Attrs& a, bool batch_stats, const DT* x, DT* gamma, const DT* beta,
                const DT* mm, const DT* mv, DT* y, DT* mean, DT* invstd, OpReq req) {
  // x [outer, C, inner], y [outer, C, inner] (may be null for kNullOp), gamma/beta/mm/mv/mean/invstd [C];
  // gamma is overwritten with 1 under fix_gamma
  const double eps = a.f("eps");
  const bool fix_gamma = a.b("fix_gamma");
  const int64_t M = v.outer * v.inner, C = v.C;
  // Each thread takes a range of channels and walks it in memory order (image by image), which
  // reads x as a few long streams instead of one 4 KB row per image and channel (ResNet's 32x32
  // layers: a channel's rows are 256 KB apart). Every channel still sums its rows image by image,
  // so the results do not depend on the thread count.
  std::vector<double> stats((size_t)(3 * C));
  double* sum = stats.data();  // [C]: the sums, then the means
  double* sq = sum + C;        // [C]: the squared deviations, then the inverse std
  double* shift = sq + C;      // [C]
  const int nt = omp_threads(v.outer * C * v.inner);
  const int64_t parts = std::min<int64_t>(std::max(nt, 1), std::max<int64_t>(C, 1));
  omp_for(nt, parts, [&](int64_t part) {
    const int64_t c0 = C * part / parts, c1 = C * (part + 1) / parts;
    for (int64_t c = c0; c < c1; ++c) sum[c] = sq[c] = 0;
    if (batch_stats) {
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t c = c0; c < c1; ++c) sum[c] += row_sum(x + (o * C + c) * v.inner, v.inner);
      for (int64_t c = c0; c < c1; ++c) sum[c] = M > 0 ? sum[c] / (double)M : 0.0;
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t c = c0; c < c1; ++c) sq[c] += row_sq_dev(x + (o * C + c) * v.inner, v.inner, sum[c]);
    }
    for (int64_t c = c0; c < c1; ++c) {
      double mu, inv;
      if (batch_stats) {
        mu = sum[c];
        if (sq[c] == 0 && eps == 0) inv = 0;  // as MXNet: no division by zero
        else inv = 1.0 / std::sqrt((M > 0 ? sq[c] / (double)M : 0.0) + eps);
      } else {
        mu = (double)mm[c];
        inv = 1.0 / std::sqrt((double)mv[c] + eps);
      }
      mean[c] = (DT)mu;
      invstd[c] = (DT)inv;
      if (fix_gamma) gamma[c] = DT(1);
      const double g = fix_gamma ? 1.0 : (double)gamma[c];
      sq[c] = g * inv;                          // the scale
      shift[c] = (double)beta[c] - mu * sq[c];
    }
    if (req == OpReq::kNullOp) return;
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t c = c0; c < c1; ++c) {
        const DT* xr = x + (o * C + c) * v.inner;  // [inner]
        DT* yr = y + (o * C + c) * v.inner;        // [inner]
        const double scale = sq[c], sh = shift[c];
        if (req == OpReq::kAddTo)
          simd::run(0, v.inner, [=](int64_t i) { yr[i] += (DT)((double)xr[i] * scale + sh); });
        else
          simd::run(0, v.inner, [=](int64_t i) { yr[i] = (DT)((double)xr[i] * scale + sh); });
      }
  });
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

/// sum(dy) and sum((x - mu) dy) over one row (double), 16 partial sums each so that long rows are
/// not one dependent add chain.
template <typename DT>
void row_grad_sums(const DT* dyr, const DT* xr, int64_t n, double mu, double* sd, double* dp) {
  constexpr int W = 16;
  double s[W] = {}, p[W] = {};
  int64_t i = 0;
  for (; i + W <= n; i += W) {
#pragma omp simd
    for (int j = 0; j < W; ++j) {
      s[j] += (double)dyr[i + j];
      p[j] += ((double)xr[i + j] - mu) * (double)dyr[i + j];
    }
  }
  double ts = 0, tp = 0;
  for (; i < n; ++i) {
    ts += (double)dyr[i];
    tp += ((double)xr[i] - mu) * (double)dyr[i];
  }
  for (int j = 0; j < W; ++j) {
    ts += s[j];
    tp += p[j];
  }
  *sd += ts;
  *dp += tp;
}

template <typename DT>
void bn_backward(const AxisView& v, const Attrs& a, bool batch_stats, const DT* dy, const DT* smean,
                 const DT* sinv, const DT* x, const DT* gamma, DT* mm, DT* mv, DT* dx, DT* dgamma, DT* dbeta,
                 const std::vector<OpReq>& req) {
  // dy, x, dx [outer, C, inner]; smean, sinv (saved mean / inverse std), gamma, mm, mv, dgamma, dbeta [C]
  const double eps = a.f("eps"), momentum = a.f("momentum");
  const bool fix_gamma = a.b("fix_gamma");
  const int64_t M = v.outer * v.inner, C = v.C;
  // Channel ranges per thread, walked in memory order as in bn_forward.
  std::vector<double> stats((size_t)(4 * C));
  double* mus = stats.data();  // [C]
  double* invs = mus + C;      // [C]
  double* sum_dy = invs + C;   // [C]
  double* dotp = sum_dy + C;   // [C]
  const int nt = omp_threads(v.outer * C * v.inner);
  const int64_t parts = std::min<int64_t>(std::max(nt, 1), std::max<int64_t>(C, 1));
  omp_for(nt, parts, [&](int64_t part) {
    const int64_t c0 = C * part / parts, c1 = C * (part + 1) / parts;
    for (int64_t c = c0; c < c1; ++c) {
      if (batch_stats) {
        mus[c] = (double)smean[c];
        invs[c] = (double)sinv[c];
        const double var = 1.0 / (invs[c] * invs[c]) - eps;  // the biased batch variance
        mm[c] = (DT)((double)mm[c] * momentum + mus[c] * (1.0 - momentum));
        mv[c] = (DT)((double)mv[c] * momentum + var * (1.0 - momentum));
      } else {
        mus[c] = (double)mm[c];
        invs[c] = 1.0 / std::sqrt((double)mv[c] + eps);
      }
      sum_dy[c] = dotp[c] = 0;
    }
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = (o * C + c) * v.inner;
        row_grad_sums(dy + off, x + off, v.inner, mus[c], &sum_dy[c], &dotp[c]);
      }
    if (req[0] != OpReq::kNullOp) {
      const bool add = req[0] == OpReq::kAddTo;
      for (int64_t o = 0; o < v.outer; ++o)
        for (int64_t c = c0; c < c1; ++c) {
          const double mu = mus[c], inv = invs[c], iw = inv * (fix_gamma ? 1.0 : (double)gamma[c]);
          const double k = batch_stats && M > 0 ? dotp[c] * inv * inv / (double)M : 0.0;
          const double gmean = batch_stats && M > 0 ? sum_dy[c] / (double)M : 0.0;
          const int64_t off = (o * C + c) * v.inner;
          const DT* dyr = dy + off;  // [inner]
          const DT* xr = x + off;    // [inner]
          DT* dxr = dx + off;        // [inner]
          if (add)
            simd::run(0, v.inner, [=](int64_t i) { dxr[i] += (DT)(((double)dyr[i] - gmean - ((double)xr[i] - mu) * k) * iw); });
          else
            simd::run(0, v.inner, [=](int64_t i) { dxr[i] = (DT)(((double)dyr[i] - gmean - ((double)xr[i] - mu) * k) * iw); });
        }
    }
    for (int64_t c = c0; c < c1; ++c) {
      if (dgamma) assign_req(dgamma[c], req[1], (DT)(fix_gamma ? 0.0 : dotp[c] * invs[c]));
      if (dbeta) assign_req(dbeta[c], req[2], (DT)sum_dy[c]);
    }
  });
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
  op.backward_always_runs = true;  // the moving statistics are updated there, even behind a stop_gradient
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
