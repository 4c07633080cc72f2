// Deconvolution (transposed convolution), 1-D (NCW) and 2-D (NCHW), and its backward
// (MXNet src/operator/nn/deconvolution.cc, deconvolution-inl.h).
//
// data [N, C, in...], weight [C, num_filter / num_group, kernel...], bias [num_filter] (no_bias
// defaults to True), output [N, num_filter, out...] with
//   out = stride (in - 1) + dilate (kernel - 1) + 1 - 2 pad + adj,
// or, with target_shape, the pad/adj that give exactly target_shape (MXNet's InferPad).
//
// It is the adjoint of a Convolution whose input is the deconvolution's output: forward is the
// convolution's backward-data (GEMM + col2im), backward-data the convolution's forward, and
// the weight gradient the convolution's weight gradient with data and output swapped.
#include "conv_common.h"

namespace kiln {
namespace conv {
namespace {

const char* kOp = "Deconvolution";

/// MXNet's DeconvolutionParam::InferPad for known input dims `x` (padded numbering, -1 unknown).
void infer_pad(const ConvParam& c, const int64_t* x, int64_t* pad, int64_t* adj) {
  for (int i = 0; i < 3; ++i) {
    pad[i] = c.p[i];
    adj[i] = c.adj[i];
  }
  if (!c.has_target) return;
  for (int i = 3 - c.nsp; i < 3; ++i) {
    if (x[i] < 0) continue;
    int64_t total = c.s[i] * (x[i] - 1) + c.dk(i);
    KILN_CHECK(total >= c.target[i], std::string(kOp) + ": too big target shape: target_shape entry " +
                                         std::to_string(c.target[i]) + " exceeds the largest output " +
                                         std::to_string(total) + " for input size " + std::to_string(x[i]));
    total -= c.target[i];
    adj[i] = total % 2;
    pad[i] = (total + 1) / 2;
  }
}

void deconv_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const ConvParam c = parse_conv_param(kOp, a, true);
  const int n = c.nsp;
  const Shape dshp = (*in)[0];
  if (!dshp.rank_known()) return;
  static const char* kDesc[] = {"", "3D in batch-num_filter-x", "4D in batch-num_filter-y-x"};
  if (dshp.ndim() != n + 2)
    throw InferError(true, 0, std::string("Deconvolution: input data should be ") + kDesc[n] + " for a " +
                                  std::to_string(n) + "-D kernel, got " + dshp.str());
  const int64_t C = dshp[1], F = c.num_filter, G = c.num_group;
  if (C >= 0 && C % G != 0)
    throw InferError(true, 0, "Deconvolution: input num_filter must divide group size: channels " + std::to_string(C) +
                                  " are not divisible by num_group " + std::to_string(G));
  if (F % G != 0)
    throw InferError(false, 0, "Deconvolution: output num_filter must divide group size: num_filter " +
                                   std::to_string(F) + " is not divisible by num_group " + std::to_string(G));
  Shape w = Shape::unknown_dims(n + 2);
  w[0] = C;
  w[1] = F / G;
  for (int i = 0; i < n; ++i) w[2 + i] = c.k[3 - n + i];
  assign_in(in, 1, w);
  if (!c.no_bias) assign_in(in, 2, Shape{F});

  int64_t x[3] = {1, 1, 1}, pad[3], adj[3];
  for (int i = 0; i < n; ++i) x[3 - n + i] = dshp[2 + i];
  try {
    infer_pad(c, x, pad, adj);
  } catch (const InferError&) {
    throw;
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  Shape o = Shape::unknown_dims(n + 2);
  o[0] = dshp[0];
  o[1] = F;
  static const char* kAxis[] = {"d", "y", "x"};
  for (int i = 0; i < n; ++i) {
    const int j = 3 - n + i;
    if (adj[j] > c.s[j] - 1)
      throw InferError(true, 0, std::string("Deconvolution: adj(") + kAxis[j] + ") must be smaller than stride[" +
                                    std::to_string(i) + "]: adj " + std::to_string(adj[j]) + ", stride " +
                                    std::to_string(c.s[j]));
    if (x[j] < 0) continue;
    const int64_t od = c.s[j] * (x[j] - 1) + c.dk(j) - 2 * pad[j] + adj[j];
    if (od <= 0)
      throw InferError(true, 0, "Deconvolution: output size " + std::to_string(od) + " along spatial axis " +
                                    std::to_string(i) + " is not positive (pad too large for data " + dshp.str() + ")");
    if (c.target[j] > 0 && c.target[j] != od)
      throw InferError(true, 0, "Deconvolution: target_shape[" + std::to_string(i) + "] = " + std::to_string(c.target[j]) +
                                    " was not reasonable, please set it carefully (output would be " +
                                    std::to_string(od) + ")");
    o[2 + i] = od;
  }
  assign_out(out, 0, o);
  // as MXNet: only the batch flows back from the output
  Shape d = Shape::unknown_dims(n + 2);
  d[0] = (*out)[0][0];
  assign_in(in, 0, d);
}

/// The convolution geometry whose input is the deconvolution's output y [N, F, out...] and
/// whose output is the deconvolution's data x [N, C, in...].
Geo deconv_geo(const ConvParam& c, const Shape& data, const Shape& outp) {
  KILN_CHECK(data.ndim() == c.nsp + 2 && outp.ndim() == c.nsp + 2,
             std::string(kOp) + ": data " + data.str() + " and output " + outp.str() + " do not match the kernel rank");
  Geo g;
  g.N = data[0];
  g.C = outp[1];
  g.O = data[1];
  g.G = c.num_group;
  KILN_CHECK(g.C % g.G == 0 && g.O % g.G == 0, std::string(kOp) + ": channels and num_filter must divide num_group");
  spatial3(outp, c.nsp, g.D);
  spatial3(data, c.nsp, g.Q);
  int64_t pad[3], adj[3];
  infer_pad(c, g.Q, pad, adj);
  for (int i = 0; i < 3; ++i) {
    g.k[i] = c.k[i];
    g.s[i] = c.s[i];
    g.d[i] = c.d[i];
    g.p[i] = pad[i];
  }
  return g;
}

void deconv_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  // in: data [N, C, in...], weight [C, F/G, k...][, bias [F]]; out: [N, F, out...]
  const ConvParam c = parse_conv_param(kOp, a, true);
  const Geo g = deconv_geo(c, in[0].shape, out[0].shape);
  if (req[0] == OpReq::kNullOp) return;
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    T* y = out[0].dptr<T>();  // [N, F, Dout]
    if (g.N > 0 && g.O == 0 && req[0] != OpReq::kAddTo) std::fill(y, y + g.N * g.C * g.in_size(), T(0));
    conv_backward_data<T>(ctx, g, in[0].dptr<T>(), in[1].dptr<T>(), y, req[0]);
    if (!c.no_bias) {
      const T* b = in[2].dptr<T>();  // [F]
      const int64_t P = g.in_size();
      const int nt = g.N * g.C * P < kOmpMinWork ? 1 : num_threads();
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
      for (int64_t r = 0; r < g.N * g.C; ++r) {
        T* row = y + r * P;  // [Dout]
        const T bo = b[r % g.C];
        for (int64_t q = 0; q < P; ++q) row[q] += bo;
      }
    }
  });
}

void deconv_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  // in: dy [N, F, out...], data [N, C, in...], weight [C, F/G, k...]; out: ddata, dweight[, dbias]
  const ConvParam c = parse_conv_param(kOp, a, true);
  const Geo g = deconv_geo(c, in[1].shape, in[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* dy = in[0].dptr<T>();
    // dW[c, f, k] = sum_n x[n] . im2col(dy[n])^T: the convolution weight gradient with the
    // deconvolution's data as "output gradient" and its output gradient as "input"
    conv_backward_weight<T>(ctx, g, in[1].dptr<T>(), dy, out[1].dptr<T>(), req[1]);
    if (!c.no_bias) bias_backward<T>(g.N, g.C, g.in_size(), dy, out[2].dptr<T>(), req[2]);
    conv_forward<T>(ctx, g, dy, in[2].dptr<T>(), nullptr, out[0].dptr<T>(), req[0]);
  });
}

size_t deconv_workspace(const Attrs& a, const std::vector<Shape>& in, const std::vector<Shape>& out, bool backward) {
  const ConvParam c = parse_conv_param(kOp, a, true);
  const Shape& data = backward ? in[1] : in[0];
  const Shape& outp = backward ? in[0] : out[0];
  if (!data.known() || !outp.known() || data.ndim() != c.nsp + 2 || outp.ndim() != c.nsp + 2) return 0;
  return conv_workspace_bytes(deconv_geo(c, data, outp), backward);
}

}  // namespace

void register_deconvolution(OpRegistry& r) {
  ConvFamilyOp op;
  op.name = "Deconvolution";
  op.description =
      "Computes 1-D or 2-D transposed convolution (aka fractionally strided convolution) of the input tensor: the "
      "gradient of Convolution with respect to its input. data (batch, channel, spatial...), weight (channel, "
      "num_filter / num_group, kernel...), bias (num_filter,) when no_bias=False, output (batch, num_filter, out...) "
      "with out = stride (x - 1) + dilate (kernel - 1) + 1 - 2 pad + adj, or target_shape when given.";
  op.deconv = true;
  op.infer_shape = deconv_infer_shape;
  op.forward = deconv_forward_cpu;
  op.backward = deconv_backward_cpu;
  op.workspace = deconv_workspace;
  register_conv_family(r, op);
}

}  // namespace conv
}  // namespace kiln
