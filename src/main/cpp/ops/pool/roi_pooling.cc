// ROIPooling and _backward_ROIPooling (MXNet 1.9.1 src/operator/roi_pooling-inl.h, roi_pooling.cc).
//
// data [N, C, H, W], rois [R, 5] = (batch_index, x1, y1, x2, y2) in image coordinates. Each roi is
// scaled by spatial_scale, rounded (half away from zero), forced to at least one element, and
// divided into pooled_size = (PH, PW) bins (kiln/image_ops.h); output [R, C, PH, PW] is the max of
// each bin on plane (batch_index, c). A bin outside the data is 0. The hidden output maxidx
// [R, C, PH, PW] (int64) holds the flat index into data of the element each output took (the first
// largest in row-major bin order, NaN skipped, -1 for an empty bin or one with nothing above
// -FLT_MAX, whose output stays -FLT_MAX as MXNet's). Backward: dy goes to data at maxidx, rois get 0.
//
// Unlike MXNet (which reads outside data), a batch index that does not truncate into [0, N) and a
// NaN coordinate are refused; infinite coordinates are clamped (far outside the map).
#include <cfloat>

#include "kiln/image_ops.h"
#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

/// (PH, PW) from pooled_size; throws KilnError.
void roi_pooled(const Attrs& a, int64_t* ph, int64_t* pw) {
  const auto& p = a.t("pooled_size");
  KILN_CHECK(p.size() == 2 && p[0] >= 1 && p[1] >= 1,
             "ROIPooling: pooled_size=" + tuple_str(p) + " must be two positive sizes (height, width)");
  *ph = p[0];
  *pw = p[1];
}

void roi_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0], b = (*in)[1];
  int64_t ph = 0, pw = 0;
  try {
    roi_pooled(a, &ph, &pw);
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  if (d.rank_known() && d.ndim() != 4)
    throw InferError(true, 0, "ROIPooling: data should be a 4D tensor (batch, channel, height, width); got " + d.str());
  if (b.rank_known() && (b.ndim() != 2 || (b[1] >= 0 && b[1] != 5)))
    throw InferError(true, 1, "ROIPooling: rois should be a 2D tensor of shape [num_rois, 5] (batch_index, x1, y1, x2, "
                              "y2); got " + b.str());
  assign_in(in, 1, Shape(std::vector<int64_t>{b.rank_known() ? b[0] : -1, 5}));
  if (!d.rank_known()) return;
  const Shape o(std::vector<int64_t>{(*in)[1][0], d[1], ph, pw});
  assign_out(out, 0, o);
  assign_out(out, 1, o);
}

void roi_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  DType t = (*in)[0] != DType::kUnknown ? (*in)[0] : (*in)[1];
  if (t == DType::kUnknown) t = (*out)[0];
  if (t == DType::kUnknown) return;
  for (int i = 0; i < 2; ++i)
    if ((*in)[i] != DType::kUnknown && (*in)[i] != t)
      throw InferError(true, i, std::string("ROIPooling: data and rois must have the same type; got ") +
                                    dtype_name((*in)[0]) + " and " + dtype_name((*in)[1]));
  (*in)[0] = (*in)[1] = t;
  if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
    throw InferError(false, 0, std::string("ROIPooling: output type ") + dtype_name((*out)[0]) + " differs from " + dtype_name(t));
  if ((*out)[1] != DType::kUnknown && (*out)[1] != DType::kInt64)
    throw InferError(false, 1, std::string("ROIPooling: maxidx is int64, not ") + dtype_name((*out)[1]));
  (*out)[0] = t;
  (*out)[1] = DType::kInt64;
}

struct RoiGeom {
  int64_t N, C, H, W, R, PH, PW;
};

RoiGeom roi_geom(const Attrs& a, const Shape& x, const Shape& rois, const Shape& y) {
  // x [N, C, H, W], rois [R, 5], y [R, C, PH, PW]
  RoiGeom g;
  roi_pooled(a, &g.PH, &g.PW);
  KILN_CHECK(x.ndim() == 4 && rois.ndim() == 2 && rois[1] == 5 && y.ndim() == 4 && y[0] == rois[0] && y[1] == x[1] &&
                 y[2] == g.PH && y[3] == g.PW,
             "ROIPooling: bad data/rois/output shapes " + x.str() + ", " + rois.str() + ", " + y.str());
  g.N = x[0];
  g.C = x[1];
  g.H = x[2];
  g.W = x[3];
  g.R = rois[0];
  return g;
}

/// Refuses rois whose batch index or coordinates the kernels cannot use (see the file comment).
template <typename DT>
void check_rois(const RoiGeom& g, const DT* rois) {
  // rois [R, 5]
  for (int64_t r = 0; r < g.R; ++r) {
    const DT* roi = rois + r * 5;
    KILN_CHECK(image::roi_batch_ok(roi[0], g.N),
               "ROIPooling: rois[" + std::to_string(r) + "] has batch index " + std::to_string((double)roi[0]) +
                   ", outside the data's batch of " + std::to_string(g.N));
    KILN_CHECK(image::roi_coords_ok(roi), "ROIPooling: rois[" + std::to_string(r) + "] has a coordinate that is not a number");
  }
}

template <typename DT>
void roi_forward(const RoiGeom& g, float scale, const DT* x, const DT* rois, DT* y, int64_t* arg, OpReq req) {
  // x [N, C, H, W], rois [R, 5], y [R, C, PH, PW], arg [R, C, PH, PW] (always written)
  check_rois(g, rois);
  const int64_t plane = g.H * g.W, pp = g.PH * g.PW;
  const int nt = omp_threads(g.R * g.C * pp * 4);
  omp_for(nt, g.R * g.C, [&](int64_t rc) {
    const int64_t r = rc / g.C, c = rc % g.C;
    const DT* roi = rois + r * 5;
    const image::RoiBox<DT> box = image::roi_box(roi, scale, g.PH, g.PW);
    const int64_t base = ((int64_t)roi[0] * g.C + c) * plane;  // plane (batch, c) in x
    const DT* xp = x + base;                                   // [H, W]
    for (int64_t ph = 0; ph < g.PH; ++ph) {
      int64_t h0, h1;
      image::roi_bin(ph, box.bin_h, box.y0, g.H, &h0, &h1);
      for (int64_t pw = 0; pw < g.PW; ++pw) {
        int64_t w0, w1;
        image::roi_bin(pw, box.bin_w, box.x0, g.W, &w0, &w1);
        DT v = (h1 <= h0 || w1 <= w0) ? DT(0) : (DT)-FLT_MAX;
        int64_t at = -1;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w)
            if (xp[h * g.W + w] > v) {
              v = xp[h * g.W + w];
              at = base + h * g.W + w;
            }
        const int64_t o = rc * pp + ph * g.PW + pw;
        assign_req(y[o], req, v);
        arg[o] = at;
      }
    }
  });
}

template <typename DT>
void roi_backward(const RoiGeom& g, const DT* dy, const int64_t* arg, DT* dx, OpReq req) {
  // dy [R, C, PH, PW], arg [R, C, PH, PW], dx [N, C, H, W]
  if (req == OpReq::kNullOp) return;
  const int64_t plane = g.H * g.W, pp = g.PH * g.PW, n = g.N * g.C * plane;
  zero_unless_add(req, n, dx);
  // the outputs of channel c only point into channel c's planes: channels run in parallel, each
  // accumulates in output order
  const int nt = omp_threads(g.R * g.C * pp);
  omp_for(nt, g.C, [&](int64_t c) {
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t o = (r * g.C + c) * pp;
      for (int64_t i = 0; i < pp; ++i) {
        const int64_t at = arg[o + i];
        if (at >= 0 && at < n && (at / plane) % g.C == c) dx[at] += dy[o + i];
      }
    }
  });
}

void roi_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: data, rois; out: output, maxidx (int64)
  const RoiGeom g = roi_geom(a, in[0].shape, in[1].shape, out[0].shape);
  KILN_CHECK(out[1].dtype == DType::kInt64 && out[1].shape == out[0].shape && in[1].dtype == in[0].dtype,
             "ROIPooling: bad dtypes or maxidx shape");
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    roi_forward<T>(g, (float)a.f("spatial_scale"), in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(),
                   out[1].dptr<int64_t>(), req[0]);
  });
}

void roi_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: ograd [R, C, PH, PW], rois [R, 5], maxidx [R, C, PH, PW] (int64); out: data_grad, rois_grad (zeros)
  const RoiGeom g = roi_geom(a, out[0].shape, in[1].shape, in[0].shape);
  KILN_CHECK(in[2].dtype == DType::kInt64 && in[2].shape == in[0].shape, "_backward_ROIPooling: bad maxidx " + in[2].shape.str());
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    roi_backward<T>(g, in[0].dptr<T>(), in[2].dptr<int64_t>(), out[0].dptr<T>(), req[0]);
    zero_unless_add(req[1], out[1].size(), out[1].dptr<T>());
  });
}

}  // namespace

void register_roi_pooling(OpRegistry& r) {
  OpDef d;
  d.name = "ROIPooling";
  d.description =
      "Performs region of interest (ROI) max pooling: data (N, C, H, W), rois (R, 5) = [batch_index, x1, y1, x2, y2] "
      "in image coordinates, scaled by spatial_scale and rounded; output (R, C, pooled_h, pooled_w). The hidden "
      "output maxidx holds where each maximum was taken.";
  d.params = {
      param("pooled_size", ParamType::kShape, "", "ROI pooling output shape (h,w) "),
      param("spatial_scale", ParamType::kFloat, "",
            "Ratio of input feature map height (or w) to raw image height (or w). Equals the reciprocal of total stride "
            "in convolutional layers", 0.0, 1.0),
  };
  d.input_names_ = {"data", "rois"};
  d.output_names_ = {"output", "maxidx"};
  d.num_visible_outputs_fn = [](const Attrs&) { return 1; };
  d.outputs_always_written = true;
  d.infer_shape = roi_infer_shape;
  d.infer_type = roi_infer_type;
  d.cpu = roi_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_ROIPooling", n, {og[0], n->inputs[1], NodeEntry{n, 1}});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_ROIPooling", fwd);
  bw.input_names_ = {"ograd", "rois", "maxidx"};
  bw.output_names_ = {"data_grad", "rois_grad"};
  bw.cpu = roi_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
