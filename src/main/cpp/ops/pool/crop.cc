// Crop (the legacy MXNet 1.9.1 operator, src/operator/crop-inl.h) and _backward_Crop.
//
// data [N, C, H, W] is cropped to [N, C, h, w]: (h, w) = h_w with num_args=1, or the last two
// dims of the second input (crop_like [*, *, h, w]) with num_args=2. The window starts at
// offset = (y, x), or at ((H - h) / 2, (W - w) / 2) with center_crop=True.
// Backward: the output gradient goes back into its window, zeros elsewhere; crop_like gets 0.
#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

std::vector<std::string> crop_input_names(const Attrs& a) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i));
  return v;
}

/// The window of a crop: output size and offset in the data.
struct CropWin {
  int64_t h, w, y0, x0;
};

/// Validates; crop_like may be null (num_args=1). Throws KilnError.
CropWin crop_window(const Attrs& a, const Shape& d, const Shape* like) {
  KILN_CHECK(d.ndim() == 4, "Crop: Input data should be 4D in batch-num_filter-y-x; got " + d.str());
  CropWin c;
  if (a.i("num_args") == 1) {
    const auto& hw = a.t("h_w");
    KILN_CHECK(hw.size() == 2, "Crop: h_w=" + tuple_str(hw) + " must have 2 values (height, width)");
    KILN_CHECK(hw[0] >= 1, "Crop: the crop height(h_w[0]) should be set (num_args=1); got h_w=" + tuple_str(hw));
    KILN_CHECK(hw[1] >= 1, "Crop: the crop width(h_w[1]) should be set (num_args=1); got h_w=" + tuple_str(hw));
    c.h = hw[0];
    c.w = hw[1];
  } else {
    KILN_CHECK(like->ndim() == 4, "Crop: Input shape of the second argument should be 4D in batch-num_filter-y-x; got " +
                                      like->str());
    c.h = (*like)[2];
    c.w = (*like)[3];
  }
  if (d[2] < 0 || d[3] < 0 || c.h < 0 || c.w < 0) {
    c.y0 = c.x0 = 0;
    return c;
  }
  KILN_CHECK(d[2] >= c.h, "Crop: data_h must be larger than crop_h: data " + d.str() + ", crop height " + std::to_string(c.h));
  KILN_CHECK(d[3] >= c.w, "Crop: data_w must be larger than crop_w: data " + d.str() + ", crop width " + std::to_string(c.w));
  if (a.b("center_crop")) {
    c.y0 = (d[2] - c.h) / 2;
    c.x0 = (d[3] - c.w) / 2;
  } else {
    const auto& off = a.t("offset");
    KILN_CHECK(off.size() == 2, "Crop: offset=" + tuple_str(off) + " must have 2 values (y, x)");
    c.y0 = off[0];
    c.x0 = off[1];
    KILN_CHECK(c.y0 >= 0 && c.x0 >= 0 && c.y0 + c.h <= d[2] && c.x0 + c.w <= d[3],
               "Crop: offset=" + tuple_str(off) + " with crop size (" + std::to_string(c.h) + ", " + std::to_string(c.w) +
                   ") exceeds the data shape " + d.str());
  }
  return c;
}

void crop_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  const bool two = a.i("num_args") == 2;
  if (two && !(*in)[1].rank_known()) return;
  CropWin c;
  try {
    c = crop_window(a, d, two ? &(*in)[1] : nullptr);
  } catch (const InferError&) {
    throw;
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  assign_out(out, 0, Shape{d[0], d[1], c.h, c.w});
}

template <typename DT>
void crop_forward(const DT* x, DT* y, int64_t planes, int64_t H, int64_t W, const CropWin& c, OpReq req) {
  // x [planes, H, W], y [planes, h, w] = the window of x
  if (req == OpReq::kNullOp) return;
  const int nt = omp_threads(planes * c.h * c.w);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t p = 0; p < planes; ++p) {
    const DT* xp = x + p * H * W;  // [H, W]
    DT* yp = y + p * c.h * c.w;    // [h, w]
    for (int64_t i = 0; i < c.h; ++i)
      for (int64_t j = 0; j < c.w; ++j) assign_req(yp[i * c.w + j], req, xp[(c.y0 + i) * W + c.x0 + j]);
  }
}

template <typename DT>
void crop_backward(const DT* dy, DT* dx, int64_t planes, int64_t H, int64_t W, const CropWin& c, OpReq req) {
  // dy [planes, h, w], dx [planes, H, W]: dy inside the window, zeros outside
  if (req == OpReq::kNullOp) return;
  const int nt = omp_threads(planes * H * W);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t p = 0; p < planes; ++p) {
    const DT* dyp = dy + p * c.h * c.w;  // [h, w]
    DT* dxp = dx + p * H * W;            // [H, W]
    zero_unless_add(req, H * W, dxp);
    for (int64_t i = 0; i < c.h; ++i)
      for (int64_t j = 0; j < c.w; ++j) dxp[(c.y0 + i) * W + c.x0 + j] += dyp[i * c.w + j];
  }
}

void crop_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const Shape& d = in[0].shape;  // [N, C, H, W]
  const CropWin c = crop_window(a, d, in.size() > 1 ? &in[1].shape : nullptr);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    crop_forward<T>(in[0].dptr<T>(), out[0].dptr<T>(), d[0] * d[1], d[2], d[3], c, req[0]);
  });
}

void crop_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  // in: dy [N, C, h, w]; out: d_data [N, C, H, W] (, d_crop_like: zeros)
  const Shape& d = out[0].shape;
  const CropWin c = crop_window(a, d, out.size() > 1 ? &out[1].shape : nullptr);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    crop_backward<T>(in[0].dptr<T>(), out[0].dptr<T>(), d[0] * d[1], d[2], d[3], c, req[0]);
    if (out.size() > 1) zero_unless_add(req[1], out[1].size(), out[1].dptr<T>());
  });
}

}  // namespace

void register_crop(OpRegistry& r) {
  OpDef d;
  d.name = "Crop";
  d.description =
      "Crops a 4-D array [N, C, H, W] to [N, C, h, w]: (h, w) = h_w (num_args=1) or the last two dims of the second "
      "input (num_args=2), starting at offset or centred (center_crop).";
  d.params = {
      param("num_args", ParamType::kInt, "",
            "Number of inputs for crop, if equals one, then we will use the h_wfor crop height and width, else if "
            "equals two, then we will use the heightand width of the second input symbol, we name crop_like here", 1, 2),
      param("offset", ParamType::kShape, "(0,0)", "crop offset coordinate: (y, x)"),
      param("h_w", ParamType::kShape, "(0,0)", "crop height and width: (h, w)"),
      param("center_crop", ParamType::kBool, "False",
            "If set to true, then it will use be the center_crop,or it will crop using the shape of crop_like"),
  };
  d.input_names_fn = crop_input_names;
  d.output_names_ = {"output"};
  d.infer_shape = crop_infer_shape;
  d.cpu = crop_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_Crop", n, {og[0]});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_Crop", fwd);
  bw.input_names_ = {"ograd"};
  bw.output_names_fn = [](const Attrs& a) {
    std::vector<std::string> v;
    for (auto& s : crop_input_names(a)) v.push_back(s + "_grad");
    return v;
  };
  bw.cpu = crop_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
