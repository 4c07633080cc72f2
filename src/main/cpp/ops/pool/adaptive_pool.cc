// _contrib_AdaptiveAvgPooling2D and _backward_contrib_AdaptiveAvgPooling2D (MXNet 1.9.1
// src/operator/contrib/adaptive_avg_pooling-inl.h, adaptive_avg_pooling.cc).
//
// data [N, C, H, W] is average-pooled to [N, C, OH, OW]: output_size () gives (1, 1), (s,) gives
// (s, s), (oh, ow) gives (oh, ow) (0 gives an empty output, as MXNet; MXNet reads a longer tuple as
// (1, 1), Kiln refuses it). Output (oh, ow) averages the window [h0, h1) x [w0, w1) with
//   h0 = floor(oh * H / OH), h1 = ceil((oh + 1) * H / OH)   (divided in float, kiln/image_ops.h)
// and the same for w; the sum is divided by the window's width, then by its height, as MXNet.
// Backward: every element of the window gets dy / kh / kw (windows overlap where H % OH != 0;
// each plane accumulates in output order).
#include "kiln/image_ops.h"
#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

/// (OH, OW) from output_size; throws KilnError for a tuple MXNet cannot mean.
void adaptive_out_hw(const Attrs& a, int64_t* oh, int64_t* ow) {
  const auto& s = a.t("output_size");
  KILN_CHECK(s.size() <= 2, "_contrib_AdaptiveAvgPooling2D: output_size=" + tuple_str(s) +
                                " must be () (1x1), one size or (height, width)");
  *oh = s.empty() ? 1 : s[0];
  *ow = s.empty() ? 1 : s.back();
  KILN_CHECK(*oh >= 0 && *ow >= 0,
             "_contrib_AdaptiveAvgPooling2D: output_size=" + tuple_str(s) + " must not be negative");
}

void adaptive_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  int64_t oh = 0, ow = 0;
  try {
    KILN_CHECK(d.ndim() == 4, "_contrib_AdaptiveAvgPooling2D: data should be 4D in (batch, channel, height, width); got " +
                                  d.str());
    adaptive_out_hw(a, &oh, &ow);
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  assign_out(out, 0, Shape(std::vector<int64_t>{d[0], d[1], oh, ow}));
}

struct AdaptiveGeom {
  int64_t planes, H, W, OH, OW;
};

AdaptiveGeom adaptive_geom(const Shape& x, const Shape& y) {
  // x [N, C, H, W], y [N, C, OH, OW]
  KILN_CHECK(x.ndim() == 4 && y.ndim() == 4 && x[0] == y[0] && x[1] == y[1],
             "_contrib_AdaptiveAvgPooling2D: bad data/output shapes " + x.str() + ", " + y.str());
  return {x[0] * x[1], x[2], x[3], y[2], y[3]};
}

template <typename DT>
void adaptive_forward(const AdaptiveGeom& g, const DT* x, DT* y, OpReq req) {
  // x [planes, H, W], y [planes, OH, OW]
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.H * g.W, op = g.OH * g.OW;
  const int nt = omp_threads(g.planes * std::max(ip, op));
  omp_for(nt, g.planes, [&](int64_t p) {
    const DT* xp = x + p * ip;  // [H, W]
    DT* yp = y + p * op;        // [OH, OW]
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0, h1;
      image::adaptive_window(oh, g.OH, g.H, &h0, &h1);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t w0, w1;
        image::adaptive_window(ow, g.OW, g.W, &w0, &w1);
        DT sum = 0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) sum += xp[h * g.W + w];
        // an empty window (an empty input dim) is 0 / 0, NaN, as MXNet's
        assign_req(yp[oh * g.OW + ow], req, sum / (DT)(w1 - w0) / (DT)(h1 - h0));
      }
    }
  });
}

template <typename DT>
void adaptive_backward(const AdaptiveGeom& g, const DT* dy, DT* dx, OpReq req) {
  // dy [planes, OH, OW], dx [planes, H, W]
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.H * g.W, op = g.OH * g.OW;
  const int nt = omp_threads(g.planes * std::max(ip, op));
  omp_for(nt, g.planes, [&](int64_t p) {
    DT* dxp = dx + p * ip;        // [H, W]
    const DT* dyp = dy + p * op;  // [OH, OW]
    zero_unless_add(req, ip, dxp);
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      int64_t h0, h1;
      image::adaptive_window(oh, g.OH, g.H, &h0, &h1);
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        int64_t w0, w1;
        image::adaptive_window(ow, g.OW, g.W, &w0, &w1);
        const DT v = dyp[oh * g.OW + ow] / (DT)(h1 - h0) / (DT)(w1 - w0);
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dxp[h * g.W + w] += v;
      }
    }
  });
}

void adaptive_forward_cpu(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                          const std::vector<TBlob>& out) {
  const AdaptiveGeom g = adaptive_geom(in[0].shape, out[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    adaptive_forward<T>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

void adaptive_backward_cpu(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                           const std::vector<TBlob>& out) {
  // in: ograd [N, C, OH, OW]; out: data_grad [N, C, H, W]
  const AdaptiveGeom g = adaptive_geom(out[0].shape, in[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    adaptive_backward<T>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

}  // namespace

void register_adaptive_pool(OpRegistry& r) {
  OpDef d;
  d.name = "_contrib_AdaptiveAvgPooling2D";
  d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
  d.description =
      "Applies a 2D adaptive average pooling over 4-D data (N, C, H, W): output (N, C, oh, ow) for output_size (oh, "
      "ow), (N, C, s, s) for one size s, (N, C, 1, 1) for (); output (i, j) averages rows [floor(i*H/oh), "
      "ceil((i+1)*H/oh)) and the same columns.";
  d.params = {
      param("output_size", ParamType::kShape, "()", "int (output size) or a tuple of int for output (height, width)."),
  };
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = adaptive_infer_shape;
  d.cpu = adaptive_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_contrib_AdaptiveAvgPooling2D", n, {og[0]});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_contrib_AdaptiveAvgPooling2D", fwd);
  bw.input_names_ = {"ograd"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = adaptive_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
