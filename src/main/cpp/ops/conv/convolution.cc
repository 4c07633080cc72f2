// Convolution: 1-D (NCW), 2-D (NCHW) and 3-D (NCDHW) grouped convolution and its backward
// (MXNet src/operator/nn/convolution.cc, convolution-inl.h).
//
// data [N, C, spatial...], weight [num_filter, C / num_group, kernel...], bias [num_filter],
// output [N, num_filter, out...] with out = (in + 2 pad - (dilate (kernel - 1) + 1)) / stride + 1.
// Kernels: im2col + GEMM per image (conv_common.h), images spread over OpenMP threads; thin
// float32 layers (few C * KH * KW taps) run the direct AVX-512 forward kernel of conv_direct.cc
// (Engine.setConvolutionAlgorithm overrides the choice; its direct weight-gradient kernel is
// selectable but measured slower than the GEMM).
#include "conv_direct.h"
#include "conv_winograd.h"

namespace kiln {
namespace conv {
namespace {

const char* kOp = "Convolution";

/// The MXNet shape function (ConvolutionShape), with -1 for unknown dims.
void conv_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const ConvParam c = parse_conv_param(kOp, a, false);
  const int n = c.nsp;
  const Shape dshp = (*in)[0];
  if (!dshp.rank_known()) return;
  static const char* kDesc[] = {"", "3D in batch-num_filter-x", "4D in batch-num_filter-y-x",
                                "5D in batch-num_filter-depth-y-x"};
  if (dshp.ndim() != n + 2)
    throw InferError(true, 0, std::string("Convolution: input data should be ") + kDesc[n] + " for a " +
                                  std::to_string(n) + "-D kernel, got " + dshp.str());
  const int64_t C = dshp[1], O = c.num_filter, G = c.num_group;
  if (C >= 0 && C % G != 0)
    throw InferError(true, 0, "Convolution: input num_filter must divide group size: channels " + std::to_string(C) +
                                  " are not divisible by num_group " + std::to_string(G));
  if (O % G != 0)
    throw InferError(false, 0, "Convolution: output num_filter must divide group size: num_filter " + std::to_string(O) +
                                   " is not divisible by num_group " + std::to_string(G));
  Shape w = Shape::unknown_dims(n + 2);
  w[0] = O;
  w[1] = C >= 0 ? C / G : -1;
  for (int i = 0; i < n; ++i) w[2 + i] = c.k[3 - n + i];
  assign_in(in, 1, w);
  if (!c.no_bias) assign_in(in, 2, Shape{O});

  Shape o = Shape::unknown_dims(n + 2);
  o[0] = dshp[0];
  o[1] = O;
  for (int i = 0; i < n; ++i) {
    const int j = 3 - n + i;
    const int64_t x = dshp[2 + i];
    if (x < 0) continue;
    if (c.dk(j) > x + 2 * c.p[j])
      throw InferError(true, 0, "Convolution: kernel size exceed input: dilated kernel " + std::to_string(c.dk(j)) +
                                    " is larger than the padded input " + std::to_string(x + 2 * c.p[j]) +
                                    " along spatial axis " + std::to_string(i) + " of data " + dshp.str());
    o[2 + i] = (x + 2 * c.p[j] - c.dk(j)) / c.s[j] + 1;
  }
  assign_out(out, 0, o);

  // back-fill data: the batch always, a spatial dim where the stride is 1
  const Shape& oo = (*out)[0];
  Shape d = Shape::unknown_dims(n + 2);
  d[0] = oo[0];
  for (int i = 0; i < n; ++i) {
    const int j = 3 - n + i;
    if (oo[2 + i] >= 0 && c.s[j] == 1) d[2 + i] = oo[2 + i] + c.dk(j) - 1 - 2 * c.p[j];
  }
  assign_in(in, 0, d);
}

/// The kernel geometry from the data and output shapes.
Geo conv_geo(const ConvParam& c, const Shape& data, const Shape& outp) {
  KILN_CHECK(data.ndim() == c.nsp + 2 && outp.ndim() == c.nsp + 2,
             std::string(kOp) + ": data " + data.str() + " and output " + outp.str() + " do not match the kernel rank");
  Geo g;
  g.N = data[0];
  g.C = data[1];
  g.O = c.num_filter;
  g.G = c.num_group;
  KILN_CHECK(g.C % g.G == 0 && g.O % g.G == 0, std::string(kOp) + ": channels and num_filter must divide num_group");
  spatial3(data, c.nsp, g.D);
  spatial3(outp, c.nsp, g.Q);
  for (int i = 0; i < 3; ++i) {
    g.k[i] = c.k[i];
    g.s[i] = c.s[i];
    g.d[i] = c.d[i];
    g.p[i] = c.p[i];
  }
  return g;
}

void conv_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const ConvParam c = parse_conv_param(kOp, a, false);
  const Geo g = conv_geo(c, in[0].shape, out[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same<T, float>::value) {
      if (use_winograd4(g, kWinogradForward))
        return conv_winograd4_forward(ctx, g, in[0].dptr<float>(), in[1].dptr<float>(),
                                      c.no_bias ? nullptr : in[2].dptr<float>(), out[0].dptr<float>(), req[0]);
      if (use_winograd(g, kWinogradForward))
        return conv_winograd_forward(ctx, g, in[0].dptr<float>(), in[1].dptr<float>(),
                                     c.no_bias ? nullptr : in[2].dptr<float>(), out[0].dptr<float>(), req[0]);
      if (use_direct(g, false))
        return conv_direct_forward(ctx, g, in[0].dptr<float>(), in[1].dptr<float>(),
                                   c.no_bias ? nullptr : in[2].dptr<float>(), out[0].dptr<float>(), req[0]);
    }
    conv_forward<T>(ctx, g, in[0].dptr<T>(), in[1].dptr<T>(), c.no_bias ? nullptr : in[2].dptr<T>(), out[0].dptr<T>(),
                    req[0]);
  });
}

void conv_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  // in: dy [N, O, out...], data [N, C, in...], weight [O, C/G, k...]; out: ddata, dweight[, dbias]
  const ConvParam c = parse_conv_param(kOp, a, false);
  const Geo g = conv_geo(c, in[1].shape, in[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* dy = in[0].dptr<T>();
    bool weight_done = false;  // by a float32 kernel (Winograd or direct) instead of im2col + GEMM
    if constexpr (std::is_same<T, float>::value) {
      if (use_winograd4(g, kWinogradWeight)) {
        weight_done = true;
        conv_winograd4_backward_weight(ctx, g, dy, in[1].dptr<float>(), out[1].dptr<float>(), req[1]);
      } else if (use_winograd(g, kWinogradWeight)) {
        weight_done = true;
        conv_winograd_backward_weight(ctx, g, dy, in[1].dptr<float>(), out[1].dptr<float>(), req[1]);
      } else if (use_direct(g, true)) {
        weight_done = true;
        conv_direct_backward_weight(ctx, g, dy, in[1].dptr<float>(), out[1].dptr<float>(), req[1]);
      }
    }
    if (!weight_done) conv_backward_weight<T>(ctx, g, dy, in[1].dptr<T>(), out[1].dptr<T>(), req[1]);
    if (!c.no_bias) bias_backward<T>(g.N, g.O, g.out_size(), dy, out[2].dptr<T>(), req[2]);
    if constexpr (std::is_same<T, float>::value) {
      if (use_winograd4(g, kWinogradData))
        return conv_winograd4_backward_data(ctx, g, dy, in[2].dptr<float>(), out[0].dptr<float>(), req[0]);
      if (use_winograd(g, kWinogradData))
        return conv_winograd_backward_data(ctx, g, dy, in[2].dptr<float>(), out[0].dptr<float>(), req[0]);
    }
    conv_backward_data<T>(ctx, g, dy, in[2].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

/// Scratch: one im2col buffer (plus a private weight-gradient accumulator) per thread, in
/// float64 elements (the widest dtype the kernels take).
size_t conv_workspace(const Attrs& a, const std::vector<Shape>& in, const std::vector<Shape>& out, bool backward) {
  const ConvParam c = parse_conv_param(kOp, a, false);
  const Shape& data = backward ? in[1] : in[0];
  const Shape& outp = backward ? in[0] : out[0];
  if (!data.known() || !outp.known() || data.ndim() != c.nsp + 2 || outp.ndim() != c.nsp + 2) return 0;
  const Geo g = conv_geo(c, data, outp);
  return std::max({conv_workspace_bytes(g, backward), direct_workspace_bytes(g, backward),
                   winograd_workspace_bytes(g, backward), winograd4_workspace_bytes(g, backward)});
}

}  // namespace

std::vector<ParamDef> conv_params(bool deconv) {
  std::vector<ParamDef> p = {
      param("kernel", ParamType::kShape, "",
            deconv ? "Deconvolution kernel size: (w,), (h, w) or (d, h, w). This is same as the kernel size used for "
                     "the corresponding convolution"
                   : "Convolution kernel size: (w,), (h, w) or (d, h, w)"),
      param("stride", ParamType::kShape, "[]",
            "Convolution stride: (w,), (h, w) or (d, h, w). Defaults to 1 for each dimension."),
      param("dilate", ParamType::kShape, "[]",
            "Convolution dilate: (w,), (h, w) or (d, h, w). Defaults to 1 for each dimension."),
      param("pad", ParamType::kShape, "[]",
            "Zero pad for convolution: (w,), (h, w) or (d, h, w). Defaults to no padding."),
  };
  if (deconv) {
    p.push_back(param("adj", ParamType::kShape, "[]",
                      "Adjustment for output shape: (w,), (h, w) or (d, h, w). If `target_shape` is set, `adj` will be "
                      "ignored and computed accordingly."));
    p.push_back(param("target_shape", ParamType::kShape, "[]", "Shape of the output tensor: (w,), (h, w) or (d, h, w)."));
    p.push_back(param("num_filter", ParamType::kInt, "", "Number of output filters.", 1, 100000));
    p.push_back(param("num_group", ParamType::kInt, "1", "Number of groups partition.", 1, 4294967295.0));
    p.push_back(param("workspace", ParamType::kInt, "512",
                      "Maximum temporary workspace allowed (MB) in deconvolution. On the GPU, the limit on the "
                      "workspace of the cuDNN algorithm chosen (except with cudnn_tune='fastest'); the CPU sizes its "
                      "scratch space itself.",
                      0, 8192));
    p.push_back(param("no_bias", ParamType::kBool, "True", "Whether to disable bias parameter."));
  } else {
    p.push_back(param("num_filter", ParamType::kInt, "", "Convolution filter(channel) number", 1, 4294967295.0));
    p.push_back(param("num_group", ParamType::kInt, "1", "Number of group partitions.", 1, 4294967295.0));
    p.push_back(param("workspace", ParamType::kInt, "1024",
                      "Maximum temporary workspace allowed (MB) in convolution. On the GPU, the limit on the "
                      "workspace of the cuDNN algorithm chosen (except with cudnn_tune='fastest'); the CPU sizes its "
                      "scratch space itself.",
                      0));
    p.push_back(param("no_bias", ParamType::kBool, "False", "Whether to disable bias parameter."));
  }
  p.push_back(param_enum("cudnn_tune", "None", {"fastest", "limited_workspace", "off"},
                         "Whether to pick convolution algo by running performance test. GPU only: 'off' takes cuDNN's "
                         "heuristics, 'limited_workspace' times the algorithms at the first call and takes the "
                         "fastest within `workspace`, 'fastest' the fastest; None follows "
                         "MXNET_CUDNN_AUTOTUNE_DEFAULT (0, 1 = limited_workspace (default), 2)."));
  p.push_back(param("cudnn_off", ParamType::kBool, "False", "Turn off cudnn for this layer. GPU only: the layer runs Kiln's im2col + cuBLAS kernels."));
  p.push_back(param_enum("layout", "None", {"NCDHW", "NCHW", "NCW", "NDHWC", "NHWC"},
                         "Set layout for input, output and weight. Empty for default layout: NCW for 1d, NCHW for 2d "
                         "and NCDHW for 3d. Only the default layouts are supported on the CPU."));
  return p;
}

void register_conv_family(OpRegistry& r, const ConvFamilyOp& op) {
  OpDef d;
  d.name = op.name;
  d.description = op.description;
  d.params = conv_params(op.deconv);
  d.input_names_fn = [](const Attrs& a) {
    return a.b("no_bias") ? std::vector<std::string>{"data", "weight"}
                          : std::vector<std::string>{"data", "weight", "bias"};
  };
  d.output_names_ = {"output"};
  d.infer_shape = op.infer_shape;
  d.cpu = op.forward;
  auto ws = op.workspace;
  d.workspace = [ws](const Attrs& a, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    return ws(a, in, out, false);
  };
  const std::string bname = "_backward_" + op.name;
  d.gradient = [bname](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward(bname, n, {og[0], n->inputs[0], n->inputs[1]});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw;
  bw.name = bname;
  bw.description = "Backward of " + op.name + ".";
  bw.params = fwd.params;
  bw.is_backward = true;
  bw.non_differentiable = true;
  bw.input_names_ = {"ograd", "data", "weight"};
  bw.output_names_fn = [](const Attrs& a) {
    return a.b("no_bias") ? std::vector<std::string>{"data_grad", "weight_grad"}
                          : std::vector<std::string>{"data_grad", "weight_grad", "bias_grad"};
  };
  bw.cpu = op.backward;
  bw.workspace = [ws](const Attrs& a, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    return ws(a, in, out, true);
  };
  r.add(bw);
}

void register_convolution(OpRegistry& r) {
  ConvFamilyOp op;
  op.name = "Convolution";
  op.description =
      "Compute N-D convolution on (N+2)-D input: data (batch, channel, spatial...), weight (num_filter, "
      "channel / num_group, kernel...), bias (num_filter,), output (batch, num_filter, out...) with "
      "out = floor((x + 2 pad - dilate (kernel - 1) - 1) / stride) + 1.";
  op.deconv = false;
  op.infer_shape = conv_infer_shape;
  op.forward = conv_forward_cpu;
  op.backward = conv_backward_cpu;
  op.workspace = conv_workspace;
  register_conv_family(r, op);
}

}  // namespace conv
}  // namespace kiln
