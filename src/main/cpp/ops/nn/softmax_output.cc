// SoftmaxOutput (alias Softmax): softmax forward, cross-entropy gradient backward
// (MXNet src/operator/softmax_output.cc). A loss: the backward ignores the head gradient
// unless out_grad=True.
//
// The data is viewed as [outer, K, inner] and normalized along K:
//   default          [N, size/N, 1]          label (N,)
//   preserve_shape   [size/last, last, 1]    label data.shape[:-1]
//   multi_output     [N, C, size/(N*C)]      label (N, rest) / (N, rest...) / (N, 1, rest...)
// A label with the data's own shape holds probabilities: grad = (p - label) * grad_scale.
// Otherwise labels are class indices (float, cast to int) and
//   grad = (p - onehot(label)) * grad_scale / norm       (smoothed target with smooth_alpha),
// rows whose label is ignore_label get 0 when use_ignore, norm = 1 (null), the number of
// labels (batch; N for multi_output), or the number of labels != ignore_label (valid, >= 1);
// multi_output additionally divides by the spatial size unless normalization is valid.
#include "kiln/int_convert.h"
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

struct SoftmaxDims {
  int64_t outer, K, inner;
};

SoftmaxDims so_dims(const Attrs& a, const Shape& s) {
  const int nd = s.ndim();
  KILN_CHECK(nd >= 1, "SoftmaxOutput: data must have at least one dimension, got " + s.str());
  if (a.b("multi_output")) {
    KILN_CHECK(nd >= 2, "SoftmaxOutput: multi_output needs data of rank >= 2, got " + s.str());
    return {s[0], s[1], s.prod(2, nd)};
  }
  if (a.b("preserve_shape")) return {s.prod(0, nd - 1), s[nd - 1], 1};
  return {s[0], s.prod(1, nd), 1};
}

void so_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  assign_in(in, 0, (*out)[0]);
  assign_out(out, 0, (*in)[0]);
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  const int nd = d.ndim();
  if (nd < 1) throw InferError(true, 0, "SoftmaxOutput: data must have at least one dimension, got " + d.str());
  const Shape l = (*in)[1];

  // a label of the data's shape: probabilities
  if (l.rank_known() && l.ndim() == nd) {
    Shape t = l;
    if (shape_assign(&t, d)) {
      (*in)[1] = t;
      assign_in(in, 0, t);
      assign_out(out, 0, t);
      return;
    }
  }

  if (a.b("multi_output")) {
    if (nd < 2) throw InferError(true, 0, "SoftmaxOutput: multi_output needs data of rank >= 2, got " + d.str());
    const Shape l1{d[0], prod_or_unknown(d, 2, nd)};  // (N, prod(rest))
    Shape l2 = Shape::unknown_dims(nd - 1);            // (N, rest...)
    l2[0] = d[0];
    for (int i = 2; i < nd; ++i) l2[i - 1] = d[i];
    Shape l3 = d;  // (N, 1, rest...)
    l3[1] = 1;
    if (!l.rank_known()) {
      (*in)[1] = l1;
      return;
    }
    for (const Shape& cand : {l1, l2, l3}) {
      Shape t = l;
      if (shape_assign(&t, cand)) {
        (*in)[1] = t;
        return;
      }
    }
    throw InferError(true, 1, "Expecting " + l1.str() + " or " + l2.str() + ". But got " + l.str());
  }

  // class labels, one per softmax row: (N,) (MXNet infers the data's shape without its last axis,
  // which its kernel reads only the first N values of when the rank is above 2, and which its legacy
  // shapes cannot hold for 1-D data; docs/mxnet-differences.md). For 1-D data (N rows of one class)
  // that is the data's shape, read as probabilities. preserve_shape: the shape without the last axis.
  // MXNet's own label shape (below, with preserve_shape's) is still accepted for forward-only binds
  // (predict, score); a backward reports the label / row mismatch.
  const bool mxnet_label = nd >= 3 && l.rank_known() && l.ndim() == nd - 1;
  if (!a.b("preserve_shape") && !mxnet_label) {
    assign_in(in, 1, Shape({d[0]}));
    Shape back = Shape::unknown_dims(nd);
    back[0] = (*in)[1][0];
    assign_in(in, 0, back);
    assign_out(out, 0, (*in)[0]);
    return;
  }
  Shape ls = Shape::unknown_dims(nd - 1);
  for (int i = 0; i + 1 < nd; ++i) ls[i] = d[i];
  assign_in(in, 1, ls);
  const Shape& lk = (*in)[1];
  Shape back = Shape::unknown_dims(nd);
  for (int i = 0; i + 1 < nd; ++i) back[i] = lk[i];
  assign_in(in, 0, back);
  assign_out(out, 0, (*in)[0]);
}

// ---- kernels ---------------------------------------------------------------------------------

void so_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const SoftmaxDims d = so_dims(a, in[0].shape);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    const DT* x = in[0].dptr<DT>();  // [outer, K, inner]
    compute_with_req(req[0], in[0].size(), out[0].dptr<DT>(),
                     [&](DT* y) { softmax_forward<DT>(x, y, d.outer, d.K, d.inner, DT(1), false); });
  });
}

template <typename DT>
void so_backward(const OpCtx& ctx, const Attrs& a, const TBlob& pb, const TBlob& lb, const DT* ograd, DT* dx, OpReq req) {
  if (req == OpReq::kNullOp) return;
  const DT* p = pb.dptr<DT>();      // data-shaped
  const DT* label = lb.dptr<DT>();  // data-shaped (probabilities) or [outer, inner] (classes)
  const DT grad_scale = DT(loss_grad_scale(ctx, a));

  if (lb.shape == pb.shape) {  // probability labels: no ignore, no normalization
    if (ograd)
      write_elementwise(req, pb.size(), dx, [=](int64_t i) { return (p[i] - label[i]) * grad_scale * ograd[i]; });
    else
      write_elementwise(req, pb.size(), dx, [=](int64_t i) { return (p[i] - label[i]) * grad_scale; });
    return;
  }

  const bool multi = a.b("multi_output");
  const SoftmaxDims d = so_dims(a, pb.shape);
  const int64_t nlabel = d.outer * d.inner;
  KILN_CHECK(lb.size() == nlabel, "SoftmaxOutput: " + std::to_string(lb.size()) + " labels for " +
                                      std::to_string(nlabel) + " softmax rows (label " + lb.shape.str() + ", data " +
                                      pb.shape.str() + ")");
  const int ignore = (int)a.f("ignore_label");
  const bool use_ignore = a.b("use_ignore");
  const std::string& norm = a.s("normalization");

  double count = 1;
  if (norm == "batch") {
    count = multi ? (double)d.outer : (double)nlabel;
  } else if (norm == "valid") {
    int64_t valid = 0;
    for (int64_t i = 0; i < nlabel; ++i) valid += label_class((double)label[i]) != ignore;
    count = valid == 0 ? 1.0 : (double)valid;
  }
  double scale = loss_grad_scale(ctx, a) / count;
  if (multi && norm != "valid") scale /= (double)d.inner;
  const DT factor = DT(scale);

  // target probability of the true class (on) and of every other class (off)
  const double alpha = multi ? 0.0 : a.f("smooth_alpha");  // MXNet smooths only without multi_output
  const DT on = DT(1.0 - alpha), off = DT(d.K > 1 ? alpha / (double)(d.K - 1) : 0.0);
  const bool add = req == OpReq::kAddTo;

  const int nt = omp_threads(pb.size());
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t o = 0; o < d.outer; ++o) {
    const DT* lr = label + o * d.inner;  // [inner]
    for (int64_t k = 0; k < d.K; ++k) {
      const int64_t base = (o * d.K + k) * d.inner;
      const DT* pr = p + base;                            // [inner]
      const DT* gr_in = ograd ? ograd + base : nullptr;  // [inner]
      DT* gr = dx + base;                                 // [inner] (may alias pr)
      for (int64_t j = 0; j < d.inner; ++j) {
        const int lab = label_class((double)lr[j]);  // kiln/int_convert.h
        DT v = (use_ignore && lab == ignore) ? DT(0) : (pr[j] - (k == lab ? on : off)) * factor;
        if (gr_in) v *= gr_in[j];
        gr[j] = add ? gr[j] + v : v;
      }
    }
  }
}

void so_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: p, label[, ograd]; out: d_data, d_label
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    const DT* ograd = a.b("out_grad") ? in[2].dptr<DT>() : nullptr;
    so_backward<DT>(ctx, a, in[0], in[1], ograd, out[0].dptr<DT>(), req[0]);
    // The label gets no gradient; write zeros rather than leave garbage (MXNet leaves it unwritten).
    if (req[1] == OpReq::kWriteTo || req[1] == OpReq::kWriteInplace)
      std::fill(out[1].dptr<DT>(), out[1].dptr<DT>() + out[1].size(), DT(0));
  });
}

}  // namespace

void register_softmax_output(OpRegistry& r) {
  OpDef op;
  op.name = "SoftmaxOutput";
  op.aliases = {"Softmax"};
  op.description =
      "Computes the softmax of the input (over all non-batch elements; over the last axis with preserve_shape; over "
      "axis 1 at every position with multi_output) and, in the backward pass, the gradient of the cross-entropy "
      "loss with respect to the input, without reading the head gradient (unless out_grad). The label holds class "
      "indices, or probabilities when it has the input's shape.";
  op.params = {
      param("grad_scale", ParamType::kFloat, "1", "Scales the gradient by a float factor."),
      param("ignore_label", ParamType::kFloat, "-1",
            "The instances whose `labels` == `ignore_label` will be ignored during backward, if `use_ignore` is set "
            "to ``true``)."),
      param("multi_output", ParamType::kBool, "False",
            "If set to ``true``, the softmax function will be computed along axis ``1``. This is applied when the "
            "shape of input array differs from the shape of label array."),
      param("use_ignore", ParamType::kBool, "False",
            "If set to ``true``, the `ignore_label` value will not contribute to the backward gradient."),
      param("preserve_shape", ParamType::kBool, "False",
            "If set to ``true``, the softmax function will be computed along the last axis (``-1``)."),
      param_enum("normalization", "null", {"batch", "null", "valid"}, "Normalizes the gradient."),
      param("out_grad", ParamType::kBool, "False", "Multiplies gradient with output gradient element-wise."),
      param_range("smooth_alpha", ParamType::kFloat, "0", 0.0, 1.0,
                  "Constant for computing a label smoothed version of cross-entropy for the backwards pass. This "
                  "constant gets subtracted from the one-hot encoding of the gold label and distributed uniformly to "
                  "all other labels."),
  };
  op.input_names_ = {"data", "label"};
  op.output_names_ = {"output"};
  op.infer_shape = so_infer_shape;
  op.cpu = so_forward_cpu;
  op.is_loss = true;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    std::vector<NodeEntry> in = {NodeEntry{n, 0}, n->inputs[1]};
    if (n->attrs.b("out_grad")) in.push_back(og[0]);
    return make_backward("_backward_SoftmaxOutput", n, in);
  };
  op.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_SoftmaxOutput", fwd);
  bw.input_names_fn = [](const Attrs& a) {
    return a.b("out_grad") ? std::vector<std::string>{"output", "label", "ograd"}
                           : std::vector<std::string>{"output", "label"};
  };
  bw.output_names_ = {"data_grad", "label_grad"};
  bw.cpu = so_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // p -> d_data
  r.add(bw);
}

}  // namespace nn
}  // namespace kiln
