// Dropout (inverted dropout) and its backward (MXNet src/operator/nn/dropout.cc).
//
// Active when (is_train or mode=always) and p > 0:
//   mask = Bernoulli(1 - p) / (1 - p)   (0 everywhere when p = 1)      y = x * mask
// otherwise y = x and mask = 1. Backward: dx = dy * mask.
// The mask is a hidden output that the kernel always writes (the backward reads it). With
// `axes` (variational dropout) the mask has size 1 on those axes and is broadcast over them.
// Mask draws come from the executor's seeded generator, one per mask element, in order, so a
// run is reproducible for a given seed whatever the thread count.
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

/// The mask's shape: the data's with size 1 on every axis of `axes`.
Shape mask_shape(const Attrs& a, const Shape& data) {
  Shape m = data;
  for (int64_t axis : a.t("axes")) {
    const int64_t ax = axis < 0 ? axis + data.ndim() : axis;
    if (ax < 0 || ax >= data.ndim())
      throw InferError(true, 0, "Dropout: axis " + std::to_string(axis) + " of axes is out of range for data of shape " +
                                    data.str());
    m[(int)ax] = 1;
  }
  return m;
}

void dropout_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  assign_in(in, 0, (*out)[0]);
  assign_out(out, 0, (*in)[0]);
  const Shape& d = (*in)[0];
  if (d.rank_known()) assign_out(out, 1, mask_shape(a, d));
}

/// Maps a flat index of `full` to the flat index of `small` broadcast to it (small's dims are
/// equal to full's or 1, same rank).
struct BroadcastIndex {
  std::vector<int64_t> dims, strides;  // full's dims; small's strides, 0 on broadcast dims
  BroadcastIndex(const Shape& full, const Shape& small) : dims(full.d), strides(full.ndim(), 0) {
    int64_t s = 1;
    for (int i = full.ndim() - 1; i >= 0; --i) {
      strides[i] = small[i] == 1 ? 0 : s;
      s *= small[i];
    }
  }
  int64_t operator()(int64_t i) const {
    int64_t j = 0;
    for (int d = (int)dims.size() - 1; d >= 0; --d) {
      j += (i % dims[d]) * strides[d];
      i /= dims[d];
    }
    return j;
  }
};

/// out = a * b where b has a's shape or is broadcast over some axes (same rank, dims of 1).
template <typename DT>
void mul_maybe_broadcast(OpReq req, const Shape& sa, const DT* a, const Shape& sb, const DT* b, DT* out) {
  // a [sa], b [sb], out [sa] (may alias a)
  const int64_t n = sa.size();
  if (sb.size() == n) {
    write_elementwise(req, n, out, [=](int64_t i) { return a[i] * b[i]; });
  } else {
    const BroadcastIndex bi(sa, sb);
    write_elementwise(req, n, out, [&bi, a, b](int64_t i) { return a[i] * b[bi(i)]; });
  }
}

template <typename DT>
void dropout_forward(const OpCtx& ctx, double p, bool active, const TBlob& x, const TBlob& y, const TBlob& mask,
                     OpReq req) {
  // x [shape], y [shape] (may alias x), mask [shape with 1 on `axes`]
  DT* m = mask.dptr<DT>();
  KILN_CHECK(m != nullptr, "Dropout: the mask output has no memory (the op declares outputs_always_written)");
  const int64_t nm = mask.size();
  if (!active) {
    std::fill(m, m + nm, DT(1));
    copy_with_req(req, x.size(), x.dptr<DT>(), y.dptr<DT>());
    return;
  }
  KILN_CHECK(ctx.rng != nullptr, "Dropout: no random generator in the op context");
  const double pkeep = 1.0 - p;
  const DT scale = pkeep > 0 ? DT(1.0 / pkeep) : DT(0);
  std::mt19937_64& rng = *ctx.rng;
  for (int64_t i = 0; i < nm; ++i) {
    m[i] = uniform01(rng) < pkeep ? scale : DT(0);
  }
  mul_maybe_broadcast<DT>(req, x.shape, x.dptr<DT>(), mask.shape, m, y.dptr<DT>());
}

void dropout_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
                         const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  // in: data; out: output, mask
  const double p = a.f("p");
  const bool active = (ctx.is_train || a.s("mode") == "always") && p > 0;
  KILN_FLOAT_SWITCH(in[0].dtype, DT, { dropout_forward<DT>(ctx, p, active, in[0], out[0], out[1], req[0]); });
}

void dropout_backward_cpu(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                          const std::vector<TBlob>& out) {
  // in: dy [shape], mask [shape or broadcast]; out: dx [shape] (may alias dy)
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    mul_maybe_broadcast<DT>(req[0], in[0].shape, in[0].dptr<DT>(), in[1].shape, in[1].dptr<DT>(), out[0].dptr<DT>());
  });
}

}  // namespace

void register_dropout(OpRegistry& r) {
  OpDef op;
  op.name = "Dropout";
  op.description =
      "Applies dropout to the input: during training each element is set to zero with probability p and the "
      "others are scaled by 1/(1-p); at inference the input passes unchanged unless mode='always'. With `axes` "
      "the same mask is shared along those axes (variational dropout).";
  op.params = {
      param_range("p", ParamType::kFloat, "0.5", 0.0, 1.0,
                  "Fraction of the input that gets dropped out during training time."),
      param_enum("mode", "training", {"always", "training"},
                 "Whether to only turn on dropout during training or to also turn on for inference."),
      param("axes", ParamType::kShape, "()", "Axes for variational dropout kernel."),
      param("cudnn_off", ParamType::kBool, "False",
            "Whether to turn off cudnn in dropout operator. This option is ignored if axes is specified."),
  };
  op.input_names_ = {"data"};
  op.output_names_ = {"output", "mask"};
  op.num_visible_outputs_fn = [](const Attrs&) { return 1; };
  op.infer_shape = dropout_infer_shape;
  op.cpu = dropout_forward_cpu;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_Dropout", n, {og[0], NodeEntry{n, 1}});
  };
  op.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  op.needs_random = true;
  op.outputs_always_written = true;
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_Dropout", fwd);
  bw.input_names_ = {"ograd", "mask"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = dropout_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace nn
}  // namespace kiln
