// LeakyReLU: leaky, elu, selu, gelu, prelu (learned per-channel slope) and rrelu (random slope),
// and its backward (MXNet src/operator/leaky_relu.cc).
//
//   leaky  y = x > 0 ? x : slope * x
//   elu    y = x > 0 ? x : slope * (e^x - 1)
//   selu   y = lambda * (x > 0 ? x : alpha * (e^x - 1))
//   gelu   y = 0.5 * x * (1 + erf(x / sqrt(2)))
//   prelu  y = x > 0 ? x : gamma[c] * x       (c = index on axis 1; gamma is (C,) or (1,))
//   rrelu  y = x > 0 ? x : mask * x; in training mask ~ uniform(lower_bound, upper_bound) per
//          element (the executor's generator), else mask = (lower_bound + upper_bound) / 2 (float
//          arithmetic, as MXNet); the mask is a second output, visible as in MXNet (select the
//          output with get(0) to compose), always written (MXNet leaves it unwritten at inference),
//          that the backward reads (dx = dy * (x > 0 ? 1 : mask))
//
// What the backward reads is chosen per act_type so that as little as possible stays alive:
// leaky/elu with slope >= 0, selu and rrelu with bounds >= 0 need only the output y (y > 0
// exactly when x > 0, and dy/dx = y + slope, resp. y + lambda * alpha, for x <= 0), which keeps
// the forward in-place usable. A negative slope breaks the sign test on y, so then x is read, as
// for gelu. prelu reads x and gamma.
#include "kiln/leaky_relu.h"
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

constexpr double kSeluAlpha = 1.6732632423543772;
constexpr double kSeluLambda = 1.0507009873554805;
constexpr double kSqrtHalf = 0.70710678118654752;     // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143268;   // 1 / sqrt(2 pi)

enum class LRelu { kLeaky, kElu, kSelu, kGelu, kPrelu, kRrelu };

LRelu lrelu_of(const Attrs& a) {
  const std::string& t = a.s("act_type");
  if (t == "leaky") return LRelu::kLeaky;
  if (t == "elu") return LRelu::kElu;
  if (t == "selu") return LRelu::kSelu;
  if (t == "gelu") return LRelu::kGelu;
  if (t == "prelu") return LRelu::kPrelu;
  if (t == "rrelu") return LRelu::kRrelu;
  throw KilnError("LeakyReLU: unknown act_type '" + t + "'");
}

/// prelu's view of data as [outer, C, inner]: C = shape[1] (1 for rank < 2).
struct PreluDims {
  int64_t outer, C, inner;
};
PreluDims prelu_dims(const Shape& s) {
  if (s.ndim() < 2) return {s.size(), 1, 1};
  return {s[0], s[1], s.prod(2, s.ndim())};
}

void lrelu_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const LRelu act = lrelu_of(a);
  assign_in(in, 0, (*out)[0]);
  assign_out(out, 0, (*in)[0]);
  if (act == LRelu::kRrelu) assign_out(out, 1, (*in)[0]);  // the mask
  if (act != LRelu::kPrelu) return;
  const Shape& d = (*in)[0];
  if (!d.rank_known()) return;
  const int64_t C = d.ndim() >= 2 ? d[1] : 1;
  const Shape& g = (*in)[1];
  if (g.ndim() == 1 && g[0] == 1) return;  // one slope shared by all channels
  assign_in(in, 1, Shape{C});
}

// ---- kernels ---------------------------------------------------------------------------------

template <typename DT>
void lrelu_forward(LRelu act, DT slope, int64_t n, const DT* x, DT* y, OpReq req) {
  // x [n], y [n] (may alias x)
  switch (act) {
    case LRelu::kLeaky:
      write_elementwise(req, n, y, [=](int64_t i) { return x[i] > DT(0) ? x[i] : slope * x[i]; });
      break;
    case LRelu::kElu:
      write_elementwise(req, n, y, [=](int64_t i) { return x[i] > DT(0) ? x[i] : slope * std::expm1(x[i]); });
      break;
    case LRelu::kSelu: {
      const DT lambda = DT(kSeluLambda), la = DT(kSeluLambda * kSeluAlpha);
      write_elementwise(req, n, y, [=](int64_t i) { return x[i] > DT(0) ? lambda * x[i] : la * std::expm1(x[i]); });
      break;
    }
    case LRelu::kGelu:
      write_elementwise(req, n, y,
                        [=](int64_t i) { return DT(0.5) * x[i] * (DT(1) + std::erf(x[i] * DT(kSqrtHalf))); });
      break;
    case LRelu::kPrelu:
    case LRelu::kRrelu:
      throw KilnError("LeakyReLU: prelu and rrelu go through their own kernels");
  }
}

template <typename DT>
void rrelu_forward(const OpCtx& ctx, const Attrs& a, int64_t n, const DT* x, DT* y, DT* mask, OpReq req) {
  // x [n], y [n] (may alias x), mask [n] (always written)
  KILN_CHECK(mask != nullptr || n == 0, "LeakyReLU: rrelu's mask output has no memory");
  if (ctx.is_train) {
    KILN_CHECK(ctx.rng != nullptr, "LeakyReLU: rrelu has no random generator in the op context");
    const double lo = a.f("lower_bound"), hi = a.f("upper_bound");
    std::mt19937_64& rng = *ctx.rng;
    for (int64_t i = 0; i < n; ++i) {
      mask[i] = DT(lo + (hi - lo) * uniform01(rng));
    }
  } else {
    std::fill(mask, mask + n, DT(rrelu_mean_slope(a)));
  }
  write_elementwise(req, n, y, [=](int64_t i) { return x[i] > DT(0) ? x[i] : x[i] * mask[i]; });
}

template <typename DT>
void prelu_forward(const PreluDims& d, int64_t ngamma, const DT* x, const DT* gamma, DT* y, OpReq req) {
  // x [outer, C, inner], gamma [C] or [1], y [outer, C, inner] (may alias x)
  if (req == OpReq::kNullOp) return;
  const bool add = req == OpReq::kAddTo;
  const int nt = omp_threads(d.outer * d.C * d.inner);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < d.outer * d.C; ++t) {
    const DT g = gamma[ngamma == 1 ? 0 : t % d.C];
    const DT* xr = x + t * d.inner;  // [inner]
    DT* yr = y + t * d.inner;        // [inner]
    for (int64_t i = 0; i < d.inner; ++i) {
      const DT v = xr[i] > DT(0) ? xr[i] : g * xr[i];
      yr[i] = add ? yr[i] + v : v;
    }
  }
}

/// Backward of leaky/elu/selu/gelu. r is the output y when lrelu_bwd_reads_output, else the data x.
template <typename DT>
void lrelu_backward(LRelu act, bool r_is_output, DT slope, int64_t n, const DT* dy, const DT* r, DT* dx, OpReq req) {
  // dy [n], r [n], dx [n] (may alias dy)
  switch (act) {
    case LRelu::kLeaky:  // the sign test holds on y (slope >= 0) and on x
      write_elementwise(req, n, dx, [=](int64_t i) { return r[i] > DT(0) ? dy[i] : slope * dy[i]; });
      break;
    case LRelu::kElu:
      if (r_is_output)
        write_elementwise(req, n, dx, [=](int64_t i) { return r[i] > DT(0) ? dy[i] : dy[i] * (r[i] + slope); });
      else
        write_elementwise(req, n, dx, [=](int64_t i) { return r[i] > DT(0) ? dy[i] : dy[i] * slope * std::exp(r[i]); });
      break;
    case LRelu::kSelu: {  // always from y
      const DT lambda = DT(kSeluLambda), la = DT(kSeluLambda * kSeluAlpha);
      write_elementwise(req, n, dx, [=](int64_t i) { return r[i] > DT(0) ? lambda * dy[i] : dy[i] * (r[i] + la); });
      break;
    }
    case LRelu::kGelu: {  // always from x: d/dx = Phi(x) + x * phi(x)
      const DT inv_sqrt_2pi = DT(kInvSqrt2Pi);
      write_elementwise(req, n, dx, [=](int64_t i) {
        const DT xv = r[i];
        const DT cdf = DT(0.5) * (DT(1) + std::erf(xv * DT(kSqrtHalf)));
        const DT pdf = inv_sqrt_2pi * std::exp(DT(-0.5) * xv * xv);
        return dy[i] * (cdf + xv * pdf);
      });
      break;
    }
    case LRelu::kPrelu:
    case LRelu::kRrelu:
      throw KilnError("LeakyReLU: prelu and rrelu go through their own kernels");
  }
}

template <typename DT>
void prelu_backward(const PreluDims& d, int64_t ngamma, const DT* dy, const DT* x, const DT* gamma, DT* dx,
                    DT* dgamma, OpReq req_dx, OpReq req_dgamma) {
  // dy [outer, C, inner], x [outer, C, inner], gamma [C] or [1];
  // dx [outer, C, inner] (may alias dy), dgamma [C] or [1]
  const int64_t total = d.outer * d.C * d.inner;
  const int nt = omp_threads(total);
  // dgamma first: dx may overwrite dy.
  if (req_dgamma != OpReq::kNullOp) {
    const bool add = req_dgamma == OpReq::kAddTo;
    if (ngamma == 1) {
      double acc = 0;
#pragma omp parallel for num_threads(nt) schedule(static) reduction(+ : acc) if (nt > 1)
      for (int64_t i = 0; i < total; ++i) acc += x[i] > DT(0) ? 0.0 : (double)x[i] * (double)dy[i];
      dgamma[0] = add ? dgamma[0] + DT(acc) : DT(acc);
    } else {
      const int ntc = (int)std::min<int64_t>(nt, d.C);
#pragma omp parallel for num_threads(ntc) schedule(static) if (ntc > 1)
      for (int64_t c = 0; c < d.C; ++c) {
        double acc = 0;
        for (int64_t o = 0; o < d.outer; ++o) {
          const DT* xr = x + (o * d.C + c) * d.inner;    // [inner]
          const DT* dyr = dy + (o * d.C + c) * d.inner;  // [inner]
          for (int64_t i = 0; i < d.inner; ++i) acc += xr[i] > DT(0) ? 0.0 : (double)xr[i] * (double)dyr[i];
        }
        dgamma[c] = add ? dgamma[c] + DT(acc) : DT(acc);
      }
    }
  }
  if (req_dx != OpReq::kNullOp) {
    const bool add = req_dx == OpReq::kAddTo;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < d.outer * d.C; ++t) {
      const DT g = gamma[ngamma == 1 ? 0 : t % d.C];
      const DT* xr = x + t * d.inner;    // [inner]
      const DT* dyr = dy + t * d.inner;  // [inner]
      DT* dxr = dx + t * d.inner;        // [inner]
      for (int64_t i = 0; i < d.inner; ++i) {
        const DT v = xr[i] > DT(0) ? dyr[i] : g * dyr[i];
        dxr[i] = add ? dxr[i] + v : v;
      }
    }
  }
}

void lrelu_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  // in: data[, gamma]; out: output[, mask (rrelu)]
  const LRelu act = lrelu_of(a);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    if (act == LRelu::kRrelu)
      rrelu_forward<DT>(ctx, a, in[0].size(), in[0].dptr<DT>(), out[0].dptr<DT>(), out[1].dptr<DT>(), req[0]);
    else if (act == LRelu::kPrelu)
      prelu_forward<DT>(prelu_dims(in[0].shape), in[1].size(), in[0].dptr<DT>(), in[1].dptr<DT>(), out[0].dptr<DT>(),
                        req[0]);
    else
      lrelu_forward<DT>(act, DT(a.f("slope")), in[0].size(), in[0].dptr<DT>(), out[0].dptr<DT>(), req[0]);
  });
}

void lrelu_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  // in: dy, (y | x)  or, for prelu, dy, x, gamma, for rrelu dy, (y | x), mask; out: dx[, dgamma]
  const LRelu act = lrelu_of(a);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    if (act == LRelu::kRrelu) {
      const DT* dy = in[0].dptr<DT>();  // [n]
      const DT* r = in[1].dptr<DT>();   // [n]
      const DT* m = in[2].dptr<DT>();   // [n]
      write_elementwise(req[0], in[0].size(), out[0].dptr<DT>(), [=](int64_t i) { return r[i] > DT(0) ? dy[i] : dy[i] * m[i]; });
    } else if (act == LRelu::kPrelu)
      prelu_backward<DT>(prelu_dims(in[1].shape), in[2].size(), in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(),
                         out[0].dptr<DT>(), out[1].dptr<DT>(), req[0], req[1]);
    else
      lrelu_backward<DT>(act, lrelu_bwd_reads_output(a), DT(a.f("slope")), in[0].size(), in[0].dptr<DT>(),
                         in[1].dptr<DT>(), out[0].dptr<DT>(), req[0]);
  });
}

}  // namespace

void register_leaky_relu(OpRegistry& r) {
  OpDef op;
  op.name = "LeakyReLU";
  op.description =
      "Applies a leaky rectified linear unit and its variants element-wise: leaky (x > 0 ? x : slope*x), "
      "elu (slope*(exp(x)-1) for x <= 0), selu, gelu (erf form), prelu (learned slope gamma per channel on "
      "axis 1) and rrelu (slope drawn uniformly from [lower_bound, upper_bound] per element in training, their "
      "mean at inference).";
  op.params = {
      param_enum("act_type", "leaky", {"elu", "gelu", "leaky", "prelu", "rrelu", "selu"},
                 "Activation function to be applied."),
      param("slope", ParamType::kFloat, "0.25", "Init slope for the activation. (For leaky and elu only)"),
      param("lower_bound", ParamType::kFloat, "0.125", "Lower bound of random slope. (For rrelu only)"),
      param("upper_bound", ParamType::kFloat, "0.334", "Upper bound of random slope. (For rrelu only)"),
  };
  op.input_names_fn = [](const Attrs& a) {
    return a.s("act_type") == "prelu" ? std::vector<std::string>{"data", "gamma"} : std::vector<std::string>{"data"};
  };
  op.output_names_fn = [](const Attrs& a) {
    return a.s("act_type") == "rrelu" ? std::vector<std::string>{"output", "mask"} : std::vector<std::string>{"output"};
  };
  op.needs_random_fn = [](const Attrs& a, bool is_train) { return is_train && a.s("act_type") == "rrelu"; };
  op.outputs_always_written_fn = [](const Attrs& a) { return a.s("act_type") == "rrelu"; };  // the mask the backward reads
  op.infer_shape = lrelu_infer_shape;
  op.cpu = lrelu_forward_cpu;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    const Attrs& a = n->attrs;
    if (a.s("act_type") == "prelu")
      return make_backward("_backward_LeakyReLU", n, {og[0], n->inputs[0], n->inputs[1]});
    if (a.s("act_type") == "rrelu")
      return make_backward("_backward_LeakyReLU", n, {og[0], lrelu_bwd_reads_output(a) ? NodeEntry{n, 0} : n->inputs[0], NodeEntry{n, 1}});
    if (lrelu_bwd_reads_output(a)) return make_backward("_backward_LeakyReLU", n, {og[0], NodeEntry{n, 0}});
    return make_backward("_backward_LeakyReLU", n, {og[0], n->inputs[0]});
  };
  op.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_LeakyReLU", fwd);
  bw.input_names_fn = [](const Attrs& a) {
    if (a.s("act_type") == "prelu") return std::vector<std::string>{"ograd", "data", "gamma"};
    if (a.s("act_type") == "rrelu")
      return std::vector<std::string>{"ograd", lrelu_bwd_reads_output(a) ? "output" : "data", "mask"};
    if (lrelu_bwd_reads_output(a)) return std::vector<std::string>{"ograd", "output"};
    return std::vector<std::string>{"ograd", "data"};
  };
  bw.output_names_fn = [](const Attrs& a) {
    return a.s("act_type") == "prelu" ? std::vector<std::string>{"data_grad", "gamma_grad"}
                                      : std::vector<std::string>{"data_grad"};
  };
  bw.cpu = lrelu_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace nn
}  // namespace kiln
