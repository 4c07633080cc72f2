// _contrib_BilinearResize2D and _backward_contrib_BilinearResize2D (MXNet 1.9.1
// src/operator/contrib/bilinear_resize-inl.h, bilinear_resize.cc).
//
// data [N, C, H, W] is resized to [N, C, OH, OW] by bilinear interpolation. The output size by mode:
//   size          (height, width), or with scale_height given int(scale_height * H) and
//                 int(scale_width * W) (MXNet reads scale_width whenever scale_height is given);
//   odd_scale     int(H * scale) for even H, int((H - 1) * scale) + 1 for odd H (same for W);
//   like          the H, W of the second input `like` [*, *, OH, OW];
//   to_even_down / to_even_up / to_odd_down / to_odd_up   H (W) rounded to the nearest even / odd
//                 size below / above (unchanged when it already is).
// MXNet stores the new size in an int16; Kiln refuses sizes that do not fit instead of wrapping.
//
// Each output (oh, ow) reads rows i0, i0 + sh and columns j0, j0 + sw of its plane with weights
// from kiln/image_ops.h (coordinates in float, as MXNet):
//   y = h0 * (w0 * x[i0, j0] + w1 * x[i0, j0 + sw]) + h1 * (w0 * x[i0 + sh, j0] + w1 * x[i0 + sh, j0 + sw])
// and when OH == H and OW == W the output is a copy (MXNet's special case). Backward scatters
// h*w*dy to the same four places (the copy case: dy), plane by plane in output order; `like` gets 0.
#include "kiln/image_ops.h"
#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

bool like_mode(const Attrs& a) { return a.s("mode") == "like"; }

std::vector<std::string> resize_input_names(const Attrs& a) {
  if (like_mode(a)) return {"data", "like"};
  return {"data"};
}

/// The largest size MXNet's shape inference holds (int16_t new_height / new_width).
constexpr int64_t kMaxResizeDim = 32767;

/// One output dim from a float product, as MXNet's int conversion; refuses what int16 cannot hold.
int64_t scaled_dim(const char* what, double v) {
  KILN_CHECK(v == v && v > -1.0 && v < (double)kMaxResizeDim + 1.0,
             std::string("_contrib_BilinearResize2D: the output ") + what + " " + std::to_string(v) +
                 " is out of range [0, 32767] (MXNet stores it in an int16)");
  return (int64_t)v;  // toward zero, as static_cast<int>
}

/// The output height and width for data [N, C, H, W] (H, W known) and, in like mode, like's shape.
void resize_out_hw(const Attrs& a, const Shape& d, const Shape* like, int64_t* oh, int64_t* ow) {
  const std::string& m = a.s("mode");
  const int64_t H = d[2], W = d[3];
  if (m == "size") {
    if (a.has("scale_height")) {
      KILN_CHECK(a.has("scale_width"),
                 "_contrib_BilinearResize2D: mode='size' with scale_height also needs scale_width (MXNet reads it)");
      *oh = scaled_dim("height", (double)((float)a.f("scale_height") * (float)H));
      *ow = scaled_dim("width", (double)((float)a.f("scale_width") * (float)W));
    } else {
      *oh = a.i("height");
      *ow = a.i("width");
    }
  } else if (m == "odd_scale") {
    KILN_CHECK(a.has("scale_height") && a.has("scale_width"),
               "_contrib_BilinearResize2D: mode='odd_scale' needs scale_height and scale_width");
    const float sh = (float)a.f("scale_height"), sw = (float)a.f("scale_width");
    *oh = H % 2 == 0 ? scaled_dim("height", (double)((float)H * sh)) : scaled_dim("height", (double)((float)(H - 1) * sh)) + 1;
    *ow = W % 2 == 0 ? scaled_dim("width", (double)((float)W * sw)) : scaled_dim("width", (double)((float)(W - 1) * sw)) + 1;
  } else if (m == "like") {
    KILN_CHECK(like != nullptr && like->ndim() == 4,
               "_contrib_BilinearResize2D: mode='like' resizes data to the height and width of the 4-D input like; got "
               "like of shape " + (like ? like->str() : std::string("?")));
    *oh = (*like)[2];
    *ow = (*like)[3];
  } else {
    const bool even = m == "to_even_down" || m == "to_even_up", up = m == "to_even_up" || m == "to_odd_up";
    auto fix = [&](int64_t x) { return (x % 2 == 0) == even ? x : (up ? x + 1 : x - 1); };
    *oh = fix(H);
    *ow = fix(W);
  }
  KILN_CHECK(*oh <= kMaxResizeDim && *ow <= kMaxResizeDim,
             "_contrib_BilinearResize2D: output size (" + std::to_string(*oh) + ", " + std::to_string(*ow) +
                 ") exceeds 32767 (MXNet stores it in an int16)");
}

void resize_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  if (d.ndim() != 4)
    throw InferError(true, 0, "_contrib_BilinearResize2D: data should be 4D in (batch, channel, height, width); got " + d.str());
  const bool like = like_mode(a);
  // size without scales needs neither H nor W; like needs like's rank; the other modes need H and W
  const bool fixed = a.s("mode") == "size" && !a.has("scale_height");
  const bool ready = like ? (*in)[1].rank_known() : (fixed || (d[2] >= 0 && d[3] >= 0));
  Shape o(std::vector<int64_t>{d[0], d[1], -1, -1});
  if (ready) {
    int64_t oh = -1, ow = -1;
    try {
      resize_out_hw(a, d, like ? &(*in)[1] : nullptr, &oh, &ow);
    } catch (const KilnError& e) {
      throw InferError(true, like ? 1 : 0, e.what());
    }
    if (!like && (oh < 0 || ow < 0))
      throw InferError(true, 0, "_contrib_BilinearResize2D: mode='" + a.s("mode") + "' gives data " + d.str() +
                                    " the negative output size (" + std::to_string(oh) + ", " + std::to_string(ow) + ")");
    if (d[0] * d[1] * oh * ow > 0 && (d[2] == 0 || d[3] == 0))
      throw InferError(true, 0, "_contrib_BilinearResize2D: cannot resize the empty data " + d.str() + " to (" +
                                    std::to_string(oh) + ", " + std::to_string(ow) + ")");
    o[2] = oh;  // like: unknown (-1) while like's dims are
    o[3] = ow;
  }
  assign_out(out, 0, o);
}

/// The shapes a kernel works on: planes of [H, W] in, [OH, OW] out.
struct ResizeGeom {
  int64_t planes, H, W, OH, OW;
  bool align;
};

ResizeGeom resize_geom(const Attrs& a, const Shape& x, const Shape& y) {
  // x [N, C, H, W], y [N, C, OH, OW]
  KILN_CHECK(x.ndim() == 4 && y.ndim() == 4 && x[0] == y[0] && x[1] == y[1],
             "_contrib_BilinearResize2D: bad data/output shapes " + x.str() + ", " + y.str());
  ResizeGeom g{x[0] * x[1], x[2], x[3], y[2], y[3], a.b("align_corners")};
  KILN_CHECK(g.planes * g.OH * g.OW == 0 || (g.H > 0 && g.W > 0),
             "_contrib_BilinearResize2D: cannot resize the empty data " + x.str() + " to " + y.str());
  return g;
}

template <typename DT>
void resize_forward(const ResizeGeom& g, const DT* x, DT* y, OpReq req) {
  // x [planes, H, W], y [planes, OH, OW]
  if (req == OpReq::kNullOp || g.planes * g.OH * g.OW == 0) return;
  const int64_t ip = g.H * g.W, op = g.OH * g.OW;
  const int nt = omp_threads(g.planes * op * 4);
  if (g.H == g.OH && g.W == g.OW) {  // MXNet's special case: a copy
    omp_for(nt, g.planes, [&](int64_t p) {
      for (int64_t i = 0; i < op; ++i) assign_req(y[p * op + i], req, x[p * ip + i]);
    });
    return;
  }
  const float sh = image::bilinear_scale(g.H, g.OH, g.align), sw = image::bilinear_scale(g.W, g.OW, g.align);
  std::vector<image::BilinearTap> rows(g.OH), cols(g.OW);
  for (int64_t o = 0; o < g.OH; ++o) rows[o] = image::bilinear_tap(sh, o, g.H, g.align);
  for (int64_t o = 0; o < g.OW; ++o) cols[o] = image::bilinear_tap(sw, o, g.W, g.align);
  omp_for(nt, g.planes, [&](int64_t p) {
    const DT* xp = x + p * ip;  // [H, W]
    DT* yp = y + p * op;        // [OH, OW]
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const image::BilinearTap r = rows[oh];
      const DT h1 = (DT)r.l1, h0 = (DT)1 - h1;
      const DT* x0 = xp + r.i0 * g.W;  // [W], row i0
      const DT* x1 = x0 + r.step * g.W;  // [W], row i0 + step
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const image::BilinearTap c = cols[ow];
        const DT w1 = (DT)c.l1, w0 = (DT)1 - w1;
        const DT v = h0 * (w0 * x0[c.i0] + w1 * x0[c.i0 + c.step]) + h1 * (w0 * x1[c.i0] + w1 * x1[c.i0 + c.step]);
        assign_req(yp[oh * g.OW + ow], req, v);
      }
    }
  });
}

template <typename DT>
void resize_backward(const ResizeGeom& g, const DT* dy, DT* dx, OpReq req) {
  // dy [planes, OH, OW], dx [planes, H, W]
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.H * g.W, op = g.OH * g.OW;
  const int nt = omp_threads(g.planes * (op + ip) * 4);
  if (g.planes * op == 0) {
    zero_unless_add(req, g.planes * ip, dx);
    return;
  }
  const bool copy = g.H == g.OH && g.W == g.OW;
  const float sh = image::bilinear_scale(g.H, g.OH, g.align), sw = image::bilinear_scale(g.W, g.OW, g.align);
  std::vector<image::BilinearTap> rows(copy ? 0 : g.OH), cols(copy ? 0 : g.OW);
  for (size_t o = 0; o < rows.size(); ++o) rows[o] = image::bilinear_tap(sh, (int64_t)o, g.H, g.align);
  for (size_t o = 0; o < cols.size(); ++o) cols[o] = image::bilinear_tap(sw, (int64_t)o, g.W, g.align);
  omp_for(nt, g.planes, [&](int64_t p) {
    DT* dxp = dx + p * ip;         // [H, W]
    const DT* dyp = dy + p * op;   // [OH, OW]
    zero_unless_add(req, ip, dxp);
    if (copy) {
      for (int64_t i = 0; i < ip; ++i) dxp[i] += dyp[i];
      return;
    }
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const image::BilinearTap r = rows[oh];
      const DT h1 = (DT)r.l1, h0 = (DT)1 - h1;
      DT* d0 = dxp + r.i0 * g.W;      // [W], row i0
      DT* d1 = d0 + r.step * g.W;     // [W], row i0 + step
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const image::BilinearTap c = cols[ow];
        const DT w1 = (DT)c.l1, w0 = (DT)1 - w1;
        const DT v = dyp[oh * g.OW + ow];
        d0[c.i0] += h0 * w0 * v;
        d0[c.i0 + c.step] += h0 * w1 * v;
        d1[c.i0] += h1 * w0 * v;
        d1[c.i0 + c.step] += h1 * w1 * v;
      }
    }
  });
}

void resize_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  // in: data [N, C, H, W][, like]; out: [N, C, OH, OW]
  const ResizeGeom g = resize_geom(a, in[0].shape, out[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    resize_forward<T>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

void resize_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  // in: ograd [N, C, OH, OW]; out: data_grad [N, C, H, W][, like_grad (zeros)]
  const ResizeGeom g = resize_geom(a, out[0].shape, in[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    resize_backward<T>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
    if (out.size() > 1) zero_unless_add(req[1], out[1].size(), out[1].dptr<T>());
  });
}

}  // namespace

void register_bilinear_resize(OpRegistry& r) {
  OpDef d;
  d.name = "_contrib_BilinearResize2D";
  d.description =
      "Resizes 4-D data (N, C, H, W) by bilinear interpolation to (N, C, height, width), to scaled sizes, to even/odd "
      "sizes, or to the height and width of a second input (mode=like). align_corners maps the corner pixels onto "
      "each other.";
  d.params = {
      param("height", ParamType::kInt, "1",
            "output height (required, but ignored if scale_height is defined or mode is not \"size\")", 1, 10000),
      param("width", ParamType::kInt, "1",
            "output width (required, but ignored if scale_width is defined or mode is not \"size\")", 1, 10000),
      param("scale_height", ParamType::kFloat, "None",
            "sampling scale of the height (optional, used in modes \"scale\" and \"odd_scale\")"),
      param("scale_width", ParamType::kFloat, "None",
            "sampling scale of the width (optional, used in modes \"scale\" and \"odd_scale\")"),
      param_enum("mode", "size", {"like", "odd_scale", "size", "to_even_down", "to_even_up", "to_odd_down", "to_odd_up"},
                 "resizing mode. \"simple\" - output height equals parameter \"height\" if \"scale_height\" parameter "
                 "is not defined or input height multiplied by \"scale_height\" otherwise. Same for width;\"odd_scale\" "
                 "- if original height or width is odd, then result height is calculated like result_h = (original_h "
                 "- 1) * scale + 1; \"like\" - resize first input to the height and width of second input; "
                 "\"to_even_down\" / \"to_even_up\" / \"to_odd_down\" / \"to_odd_up\" - resize input to the nearest "
                 "even / odd height and width below / above"),
      param("align_corners", ParamType::kBool, "True",
            "With align_corners = True, the interpolating doesn't proportionally align theoutput and input pixels, and "
            "thus the output values can depend on the input size."),
  };
  d.input_names_fn = resize_input_names;
  d.output_names_ = {"output"};
  d.infer_shape = resize_infer_shape;
  d.cpu = resize_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_contrib_BilinearResize2D", n, {og[0]});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_contrib_BilinearResize2D", fwd);
  bw.input_names_ = {"ograd"};
  bw.output_names_fn = [](const Attrs& a) {
    std::vector<std::string> v;
    for (auto& s : resize_input_names(a)) v.push_back(s + "_grad");
    return v;
  };
  bw.cpu = resize_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
