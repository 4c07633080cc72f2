// UpSampling (sample_type=nearest) and _backward_UpSampling (MXNet 1.9.1
// src/operator/nn/upsampling.cc, upsampling-inl.h). bilinear (a Deconvolution with a fixed
// weight in MXNet) is not supported and fails with a clear message.
//
// Inputs arg0..arg{n-1}, each [N, C_i, H_i, W_i]. The output is [N, C, H_0*scale, W_0*scale];
// input i is upsampled by s_i = H_out / H_i (which must also equal W_out / W_i):
//   out[n, c, y, x] = in_i[n, c, y / s_i, x / s_i]
// concat mode stacks the upsampled inputs along channels (C = sum C_i), sum mode adds them
// (every C_i equal). Backward: dx_i[n, c, y, x] = sum of dy over the s_i x s_i block.
#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

void check_nearest(const Attrs& a) {
  KILN_CHECK(a.s("sample_type") == "nearest",
             "UpSampling: sample_type='bilinear' is not supported by Kiln yet (only 'nearest')");
}

std::vector<std::string> up_input_names(const Attrs& a) {
  if (a.s("sample_type") != "nearest") return {"data", "weight"};
  std::vector<std::string> v;
  for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i));
  return v;
}

void up_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  try {
    check_nearest(a);
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  const int64_t scale = a.i("scale");
  const bool sum = a.s("multi_input_mode") == "sum";
  for (size_t i = 0; i < in->size(); ++i)
    if (!(*in)[i].known()) return;  // as MXNet: every input shape must be known first
  const Shape& d0 = (*in)[0];
  Shape o(std::vector<int64_t>(4, 0));
  for (size_t i = 0; i < in->size(); ++i) {
    const Shape& s = (*in)[i];
    if (s.ndim() != 4)
      throw InferError(true, (int)i, "UpSamplingNearest: Input data should be 4D in (batch, channel, y, x); got " + s.str());
    if (i == 0) continue;
    if (s[0] != d0[0])
      throw InferError(true, (int)i, "UpSamplingNearest: input " + std::to_string(i) + " has batch size " +
                                         std::to_string(s[0]) + ", input 0 has " + std::to_string(d0[0]));
  }
  const int64_t oh = d0[2] * scale, ow = d0[3] * scale;
  for (size_t i = 0; i < in->size(); ++i) {
    const Shape& s = (*in)[i];
    if (s[2] <= 0 || s[3] <= 0 || oh % s[2] != 0 || ow % s[3] != 0 || oh / s[2] != ow / s[3])
      throw InferError(true, (int)i, "UpSamplingNearest: input " + std::to_string(i) + " of shape " + s.str() +
                                         " cannot be upsampled by one integer factor to the output size (" +
                                         std::to_string(oh) + ", " + std::to_string(ow) + ")");
    if (sum) {
      if (i > 0 && s[1] != d0[1])
        throw InferError(true, (int)i, "UpSamplingNearest: Number of filters must be the same for sum mode; input " +
                                           std::to_string(i) + " has shape " + s.str() + ", input 0 " + d0.str());
      o[1] = s[1];
    } else {
      o[1] += s[1];
    }
  }
  o[0] = d0[0];
  o[2] = oh;
  o[3] = ow;
  assign_out(out, 0, o);
}

/// One input's place in the output: channel offset and scale.
struct UpPiece {
  int64_t C, H, W, c_off, s;
};

std::vector<UpPiece> up_pieces(const Attrs& a, const std::vector<Shape>& ins, const Shape& y) {
  std::vector<UpPiece> p;
  const bool sum = a.s("multi_input_mode") == "sum";
  int64_t off = 0;
  for (const Shape& s : ins) {
    KILN_CHECK(s.ndim() == 4 && s[2] > 0 && y[2] % s[2] == 0, "UpSampling: bad input shape " + s.str());
    p.push_back({s[1], s[2], s[3], sum ? 0 : off, y[2] / s[2]});
    off += s[1];
  }
  return p;
}

template <typename DT>
void up_forward(const std::vector<UpPiece>& ps, const std::vector<const DT*>& xs, DT* y, int64_t N, int64_t C,
                int64_t OH, int64_t OW, bool sum, OpReq req) {
  // x_i [N, C_i, H_i, W_i], y [N, C, OH, OW]
  if (req == OpReq::kNullOp) return;
  const int64_t total = N * C * OH * OW;
  for (size_t i = 0; i < ps.size(); ++i) {
    const UpPiece p = ps[i];
    const DT* x = xs[i];
    // the first input writes by req; later ones add in sum mode, write their channels in concat mode
    const OpReq r = (sum && i > 0) ? OpReq::kAddTo : req;
    const int nt = omp_threads(total);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t nc = 0; nc < N * p.C; ++nc) {
      const int64_t n = nc / p.C, c = nc % p.C;
      const DT* xp = x + nc * p.H * p.W;                   // [H_i, W_i]
      DT* yp = y + ((n * C) + p.c_off + c) * OH * OW;      // [OH, OW]
      for (int64_t oy = 0; oy < OH; ++oy) {
        const DT* xr = xp + (oy / p.s) * p.W;  // [W_i]
        DT* yr = yp + oy * OW;                 // [OW]
        for (int64_t ox = 0; ox < OW; ++ox) assign_req(yr[ox], r, xr[ox / p.s]);
      }
    }
  }
}

template <typename DT>
void up_backward(const std::vector<UpPiece>& ps, const DT* dy, const std::vector<DT*>& dxs,
                 const std::vector<OpReq>& req, int64_t N, int64_t C, int64_t OH, int64_t OW) {
  // dy [N, C, OH, OW], dx_i [N, C_i, H_i, W_i]
  for (size_t i = 0; i < ps.size(); ++i) {
    if (req[i] == OpReq::kNullOp) continue;
    const UpPiece p = ps[i];
    DT* dx = dxs[i];
    const int nt = omp_threads(N * p.C * OH * OW);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t nc = 0; nc < N * p.C; ++nc) {
      const int64_t n = nc / p.C, c = nc % p.C;
      DT* dxp = dx + nc * p.H * p.W;                         // [H_i, W_i]
      const DT* dyp = dy + ((n * C) + p.c_off + c) * OH * OW;  // [OH, OW]
      for (int64_t h = 0; h < p.H; ++h)
        for (int64_t w = 0; w < p.W; ++w) {
          DT s = 0;
          for (int64_t a = 0; a < p.s; ++a) {
            const DT* dyr = dyp + (h * p.s + a) * OW + w * p.s;  // [s]
            for (int64_t b = 0; b < p.s; ++b) s += dyr[b];
          }
          assign_req(dxp[h * p.W + w], req[i], s);
        }
    }
  }
}

void up_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  check_nearest(a);
  const Shape& y = out[0].shape;  // [N, C, OH, OW]
  std::vector<Shape> shapes;
  for (auto& t : in) shapes.push_back(t.shape);
  const auto ps = up_pieces(a, shapes, y);
  const bool sum = a.s("multi_input_mode") == "sum";
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    std::vector<const T*> xs;
    for (auto& t : in) xs.push_back(t.dptr<T>());
    up_forward<T>(ps, xs, out[0].dptr<T>(), y[0], y[1], y[2], y[3], sum, req[0]);
  });
}

void up_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: dy; out: dx_0..dx_{n-1}
  check_nearest(a);
  const Shape& y = in[0].shape;
  std::vector<Shape> shapes;
  for (auto& t : out) shapes.push_back(t.shape);
  const auto ps = up_pieces(a, shapes, y);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    std::vector<T*> dxs;
    for (auto& t : out) dxs.push_back(t.dptr<T>());
    up_backward<T>(ps, in[0].dptr<T>(), dxs, req, y[0], y[1], y[2], y[3]);
  });
}

}  // namespace

void register_upsampling(OpRegistry& r) {
  OpDef d;
  d.name = "UpSampling";
  d.description =
      "Upsamples the given input data (nearest neighbour: each pixel repeated scale x scale times). With several "
      "inputs, each is upsampled to input 0's size times scale and they are concatenated along channels "
      "(multi_input_mode=concat) or summed (sum). sample_type=bilinear is not supported.";
  d.params = {
      param("scale", ParamType::kInt, "", "Up sampling scale", 1, 1e9),
      param("num_filter", ParamType::kInt, "0",
            "Input filter. Only used by bilinear sample_type.Since bilinear upsampling uses deconvolution, num_filters "
            "is set to the number of channels.", 0, 1e9),
      param_enum("sample_type", "", {"bilinear", "nearest"}, "upsampling method"),
      param_enum("multi_input_mode", "concat", {"concat", "sum"},
                 "How to handle multiple input. concat means concatenate upsampled images along the channel "
                 "dimension. sum means add all images together, only available for nearest neighbor upsampling."),
      param("num_args", ParamType::kInt, "",
            "Number of inputs to be upsampled. For nearest neighbor upsampling, this can be 1-N; the size of output "
            "will be(scale*h_0,scale*w_0) and all other inputs will be upsampled to thesame size. For bilinear "
            "upsampling this must be 2; 1 input and 1 weight.", 1, kMaxArity),
      param("workspace", ParamType::kInt, "512", "Tmp workspace for deconvolution (MB)", 0, 8192),
  };
  d.input_names_fn = up_input_names;
  d.output_names_ = {"output"};
  d.infer_shape = up_infer_shape;
  d.cpu = up_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_UpSampling", n, {og[0]});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_UpSampling", fwd);
  bw.input_names_ = {"ograd"};
  bw.output_names_fn = [](const Attrs& a) {
    std::vector<std::string> v;
    for (auto& s : up_input_names(a)) v.push_back(s + "_grad");
    return v;
  };
  bw.cpu = up_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
