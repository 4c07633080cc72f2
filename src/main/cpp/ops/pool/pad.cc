// Pad and _backward_Pad (MXNet 1.9.1 src/operator/pad.cc, pad-inl.h).
//
// 4-D [N, C, H, W] or 5-D [N, C, D, H, W] data; pad_width = (before_0, after_0, ..., before_r,
// after_r) with zero padding on N and C. The kernels view the data as [N*C planes, D, H, W]
// (D = 1 for 4-D) and map every output index to its source along each dim:
//   constant: outside the input -> constant_value; edge: clamp to [0, n); reflect: mirror
//   without repeating the edge (numpy 'reflect'; each pad must be < n).
// Backward adds every output gradient to its source element (constant padding drops it).
#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

enum PadMode { kConstant = 0, kEdge = 1, kReflect = 2 };

int pad_mode_of(const Attrs& a) {
  const std::string& m = a.s("mode");
  return m == "constant" ? kConstant : m == "edge" ? kEdge : kReflect;
}

/// Validates and returns the output shape (unknown input dims stay unknown).
Shape pad_out_shape(const Attrs& a, const Shape& d) {
  const int nd = d.ndim();
  const auto& pw = a.t("pad_width");
  KILN_CHECK(nd == 4 || nd == 5, "Pad: Current implementation only supports 4-D or 5-D input; got data shape " + d.str());
  KILN_CHECK((int)pw.size() == 2 * nd, "Pad: Input shape vs. pad_width mismatch: pad_width=" + tuple_str(pw) +
                                           " needs 2 * " + std::to_string(nd) + " values for data shape " + d.str());
  KILN_CHECK(pw[0] == 0 && pw[1] == 0 && pw[2] == 0 && pw[3] == 0,
             "Pad: Current implementation expects padding on the first two axes to be zero; got pad_width=" +
                 tuple_str(pw));
  for (int64_t v : pw) KILN_CHECK(v >= 0, "Pad: pad_width=" + tuple_str(pw) + " must be non-negative");
  const int mode = pad_mode_of(a);
  Shape o = d;
  for (int i = 0; i < nd; ++i) {
    if (d[i] < 0) continue;
    if (mode == kReflect && i >= 2)
      KILN_CHECK(pw[2 * i] < d[i] && pw[2 * i + 1] < d[i],
                 "Pad: Current implementation of reflection padding only supports padding sizes smaller than the "
                 "input size; got pad_width=" + tuple_str(pw) + " for data shape " + d.str());
    if (mode == kEdge && i >= 2 && (pw[2 * i] > 0 || pw[2 * i + 1] > 0))
      KILN_CHECK(d[i] > 0, "Pad: edge padding of an empty dimension in data shape " + d.str());
    o[i] = d[i] + pw[2 * i] + pw[2 * i + 1];
  }
  return o;
}

void pad_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  Shape o;
  try {
    o = pad_out_shape(a, d);
  } catch (const InferError&) {
    throw;
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  assign_out(out, 0, o);
}

struct PadGeom {
  int64_t planes;
  int64_t in[3], out[3], before[3];
  int mode;
};

PadGeom pad_geom(const Attrs& a, const Shape& x, const Shape& y) {
  // x [N, C, (D,) H, W], y [N, C, (D',) H', W']
  PadGeom g;
  const int nd = x.ndim();
  KILN_CHECK((nd == 4 || nd == 5) && y.ndim() == nd, "Pad: bad shapes " + x.str() + ", " + y.str());
  const auto& pw = a.t("pad_width");
  g.planes = x[0] * x[1];
  g.mode = pad_mode_of(a);
  for (int i = 0; i < 3; ++i) {
    const int j = i - (5 - nd) + 2;  // data dim, < 2 for the padding dim of 4-D data
    if (j < 2) {
      g.in[i] = g.out[i] = 1;
      g.before[i] = 0;
    } else {
      g.in[i] = x[j];
      g.out[i] = y[j];
      g.before[i] = pw[2 * j];
    }
  }
  return g;
}

/// Source index along one dim for output index o, or -1 for a constant pad.
inline int64_t pad_src(int64_t o, int64_t before, int64_t n, int mode) {
  int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  if (mode == kConstant || n == 0) return -1;
  if (mode == kEdge) return i < 0 ? 0 : n - 1;
  // reflect (|pad| < n, so one mirror suffices)
  return i < 0 ? -i : 2 * (n - 1) - i;
}

template <typename DT>
void pad_forward(const PadGeom& g, const DT* x, DT* y, DT cv, OpReq req) {
  // x [planes, in0, in1, in2], y [planes, out0, out1, out2]
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.in[0] * g.in[1] * g.in[2], op = g.out[0] * g.out[1] * g.out[2];
  const int nt = omp_threads(g.planes * op);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const DT* xp = x + pl * ip;  // [in0, in1, in2]
    DT* yp = y + pl * op;        // [out0, out1, out2]
    for (int64_t a = 0; a < g.out[0]; ++a) {
      const int64_t sa = pad_src(a, g.before[0], g.in[0], g.mode);
      for (int64_t b = 0; b < g.out[1]; ++b) {
        const int64_t sb = pad_src(b, g.before[1], g.in[1], g.mode);
        DT* yr = yp + (a * g.out[1] + b) * g.out[2];  // [out2]
        for (int64_t c = 0; c < g.out[2]; ++c) {
          const int64_t sc = pad_src(c, g.before[2], g.in[2], g.mode);
          const DT v = (sa < 0 || sb < 0 || sc < 0) ? cv : xp[(sa * g.in[1] + sb) * g.in[2] + sc];
          assign_req(yr[c], req, v);
        }
      }
    }
  }
}

template <typename DT>
void pad_backward(const PadGeom& g, const DT* dy, DT* dx, OpReq req) {
  // dy [planes, out0, out1, out2], dx [planes, in0, in1, in2]
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.in[0] * g.in[1] * g.in[2], op = g.out[0] * g.out[1] * g.out[2];
  const int nt = omp_threads(g.planes * op);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const DT* dyp = dy + pl * op;  // [out0, out1, out2]
    DT* dxp = dx + pl * ip;        // [in0, in1, in2]
    zero_unless_add(req, ip, dxp);
    for (int64_t a = 0; a < g.out[0]; ++a) {
      const int64_t sa = pad_src(a, g.before[0], g.in[0], g.mode);
      if (sa < 0) continue;
      for (int64_t b = 0; b < g.out[1]; ++b) {
        const int64_t sb = pad_src(b, g.before[1], g.in[1], g.mode);
        if (sb < 0) continue;
        const DT* dyr = dyp + (a * g.out[1] + b) * g.out[2];  // [out2]
        DT* dxr = dxp + (sa * g.in[1] + sb) * g.in[2];        // [in2]
        for (int64_t c = 0; c < g.out[2]; ++c) {
          const int64_t sc = pad_src(c, g.before[2], g.in[2], g.mode);
          if (sc >= 0) dxr[sc] += dyr[c];
        }
      }
    }
  }
}

void pad_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const PadGeom g = pad_geom(a, in[0].shape, out[0].shape);
  const double cv = a.f("constant_value");
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    pad_forward<T>(g, in[0].dptr<T>(), out[0].dptr<T>(), (T)cv, req[0]);
  });
}

void pad_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: dy; out: dx
  const PadGeom g = pad_geom(a, out[0].shape, in[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    pad_backward<T>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

}  // namespace

void register_pad(OpRegistry& r) {
  OpDef d;
  d.name = "Pad";
  d.aliases = {"pad"};
  d.description =
      "Pads an input array (4-D or 5-D, no padding on the first two axes) with a constant or edge values of the "
      "array, or by reflection. Output dim i = data dim i + pad_width[2i] + pad_width[2i+1].";
  d.params = {
      param_enum("mode", "", {"constant", "edge", "reflect"},
                 "Padding type to use. \"constant\" pads with `constant_value` \"edge\" pads using the edge values of "
                 "the input array \"reflect\" pads by reflecting values with respect to the edges."),
      param("pad_width", ParamType::kShape, "",
            "Widths of the padding regions applied to the edges of each axis. It is a tuple of integer padding "
            "widths for each axis of the format ``(before_1, after_1, ... , before_N, after_N)``. It should be of "
            "length ``2*N`` where ``N`` is the number of dimensions of the array.This is equivalent to pad_width in "
            "numpy.pad, but flattened."),
      param("constant_value", ParamType::kFloat, "0", "The value used for padding when `mode` is \"constant\"."),
  };
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = pad_infer_shape;
  d.cpu = pad_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_Pad", n, {og[0]});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_Pad", fwd);
  bw.input_names_ = {"ograd"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = pad_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
