// softmax, log_softmax, softmin (MXNet src/operator/nn/softmax.cc, log_softmax.cc, softmin.cc) and the deprecated
// SoftmaxActivation (src/operator/nn/softmax_activation.cc), with their backward ops.
//
// All of them normalize data viewed as [outer, K, inner] along K (nn_ops.h):
//   softmax(axis)       outer = prod(shape[:axis]), K = shape[axis], inner = prod(shape[axis+1:])
//   SoftmaxActivation   instance: [N, size/N, 1]; channel: [N, C, size/(N*C)]
//   softmax      y = exp(x/T) / sum exp(x/T)     dx = y * (dy - sum(dy * y)) / T
//   log_softmax  y = x/T - log sum exp(x/T)      dx = (dy - exp(y) * sum(dy)) / T
//   softmin      softmax with T negated: y = exp(-x/T) / sum exp(-x/T)
// The backward reads only (dy, y) and may run in place on either.
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

struct SoftmaxDims {
  int64_t outer, K, inner;
};

int softmax_axis(const Attrs& a, const Shape& s) {
  const int64_t axis = a.i("axis");
  const int64_t ax = axis < 0 ? axis + s.ndim() : axis;
  if (ax < 0 || ax >= s.ndim())
    throw KilnError(a.op->name + ": axis " + std::to_string(axis) + " is out of range for an input of shape " +
                    s.str());
  return (int)ax;
}

SoftmaxDims softmax_dims(const Attrs& a, const Shape& s) {
  const int ax = softmax_axis(a, s);
  return {s.prod(0, ax), s[ax], s.prod(ax + 1, s.ndim())};
}

/// softmax / log_softmax features we do not implement.
void check_supported(const Attrs& a) {
  if (a.b("use_length")) throw KilnError(a.op->name + ": use_length=True is not supported yet");
}

void softmax_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  check_supported(a);
  infer_same_shape(a, in, out);
  const Shape& d = (*in)[0];
  if (d.rank_known()) {
    try {
      softmax_axis(a, d);
    } catch (const KilnError& e) {
      throw InferError(true, 0, e.what());
    }
  }
}

/// Output dtype: the input's unless `dtype` is given; only dtype == input type is supported.
void softmax_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  check_supported(a);
  if (!a.has("dtype")) {
    infer_same_type(a, in, out);
    return;
  }
  const DType t = dtype_from_name(a.s("dtype"));
  DType& din = (*in)[0];
  DType& dout = (*out)[0];
  if (din != DType::kUnknown && din != t)
    throw InferError(true, 0, a.op->name + ": dtype=" + a.s("dtype") + " differs from the input type " +
                                  dtype_name(din) + "; an output type other than the input type is not supported yet");
  if (dout != DType::kUnknown && dout != t)
    throw InferError(false, 0, std::string("Type inconsistent, Provided = ") + dtype_name(dout) +
                                   ", inferred type = " + dtype_name(t));
  din = t;
  dout = t;
}

double inv_temperature(const Attrs& a) { return a.has("temperature") ? 1.0 / a.f("temperature") : 1.0; }

/// x's scale inside the exponential: 1/T, or -1/T for softmin.
template <bool kMin>
double exp_scale(const Attrs& a) { return kMin ? -inv_temperature(a) : inv_temperature(a); }

template <bool kLog, bool kMin = false>
void softmax_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  check_supported(a);
  const SoftmaxDims d = softmax_dims(a, in[0].shape);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    const DT* x = in[0].dptr<DT>();  // [outer, K, inner]
    const DT inv_t = DT(exp_scale<kMin>(a));
    compute_with_req(req[0], in[0].size(), out[0].dptr<DT>(),
                     [&](DT* y) { softmax_forward<DT>(x, y, d.outer, d.K, d.inner, inv_t, kLog); });
  });
}

template <bool kLog, bool kMin = false>
void softmax_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                          const std::vector<TBlob>& out) {
  // in: dy, y; out: dx; all [outer, K, inner]
  const SoftmaxDims d = softmax_dims(a, in[1].shape);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    softmax_backward<DT>(in[0].dptr<DT>(), in[1].dptr<DT>(), out[0].dptr<DT>(), d.outer, d.K, d.inner,
                         DT(exp_scale<kMin>(a)), kLog, req[0]);
  });
}

// ---- SoftmaxActivation -------------------------------------------------------------------------

SoftmaxDims softmax_activation_dims(const Attrs& a, const Shape& s) {
  const int64_t n = s.ndim() >= 1 ? s[0] : 1;
  if (a.s("mode") == "instance") return {n, n == 0 ? 0 : s.size() / n, 1};
  KILN_CHECK(s.ndim() >= 3,
             "SoftmaxActivation: the input needs at least 3 dimensions when mode=channel, got " + s.str());
  return {n, s[1], s.prod(2, s.ndim())};
}

void softmax_activation_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  infer_same_shape(a, in, out);
  const Shape& d = (*in)[0];
  if (d.rank_known() && a.s("mode") == "channel" && d.ndim() < 3)
    throw InferError(true, 0,
                     "SoftmaxActivation: the input needs at least 3 dimensions when mode=channel, got " + d.str());
}

void softmax_activation_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in,
                                    const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const SoftmaxDims d = softmax_activation_dims(a, in[0].shape);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    const DT* x = in[0].dptr<DT>();  // [outer, K, inner]
    compute_with_req(req[0], in[0].size(), out[0].dptr<DT>(),
                     [&](DT* y) { softmax_forward<DT>(x, y, d.outer, d.K, d.inner, DT(1), false); });
  });
}

void softmax_activation_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in,
                                     const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  // in: dy, y; out: dx; all [outer, K, inner]
  const SoftmaxDims d = softmax_activation_dims(a, in[1].shape);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    softmax_backward<DT>(in[0].dptr<DT>(), in[1].dptr<DT>(), out[0].dptr<DT>(), d.outer, d.K, d.inner, DT(1), false,
                         req[0]);
  });
}

// ---- registration ------------------------------------------------------------------------------

std::vector<std::pair<int, int>> inplace_00(const Attrs&) { return {{0, 0}}; }
std::vector<std::pair<int, int>> inplace_dy_y(const Attrs&) { return {{0, 0}, {1, 0}}; }

/// `name` and `_backward_<name>` reading (dy, y).
void add_with_backward(OpRegistry& r, OpDef op, Kernel backward) {
  const std::string bw_name = "_backward_" + op.name;
  op.output_names_ = {"output"};
  op.inplace = inplace_00;
  op.gradient = [bw_name](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward(bw_name, n, {og[0], NodeEntry{n, 0}});
  };
  const OpDef& fwd = r.add(std::move(op));

  OpDef bw = backward_def(bw_name, fwd);
  bw.input_names_ = {"ograd", "output"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = std::move(backward);
  bw.inplace = inplace_dy_y;
  r.add(std::move(bw));
}

std::vector<ParamDef> softmax_params() {
  return {
      param("axis", ParamType::kInt, "-1", "The axis along which to compute softmax."),
      param("temperature", ParamType::kFloat, "None", "Temperature parameter in softmax"),
      param_enum("dtype", "None", {"float16", "float32", "float64"},
                 "DType of the output in case this can't be inferred. Defaults to the same as input's dtype if not "
                 "defined (dtype=None). Only the input's dtype is supported."),
      param("use_length", ParamType::kBool, "False",
            "Whether to use the length input as a mask over the data input. Not supported yet."),
  };
}

std::vector<std::string> softmax_inputs(const Attrs& a) {
  return a.b("use_length") ? std::vector<std::string>{"data", "length"} : std::vector<std::string>{"data"};
}

}  // namespace

void register_softmax(OpRegistry& r) {
  {
    OpDef op;
    op.name = "softmax";
    op.description =
        "Applies the softmax function along `axis`: out = exp(x/t) / sum(exp(x/t)), t = temperature (1 by "
        "default). The elements along the axis sum up to 1.";
    op.params = softmax_params();
    op.input_names_fn = softmax_inputs;
    op.infer_shape = softmax_infer_shape;
    op.infer_type = softmax_infer_type;
    op.cpu = softmax_forward_cpu<false>;
    add_with_backward(r, std::move(op), softmax_backward_cpu<false>);
  }
  {
    OpDef op;
    op.name = "log_softmax";
    op.description =
        "Computes the log softmax of the input along `axis`: out = x/t - log(sum(exp(x/t))), t = temperature. "
        "Equivalent to softmax followed by log, but numerically stable.";
    op.params = softmax_params();
    op.input_names_fn = softmax_inputs;
    op.infer_shape = softmax_infer_shape;
    op.infer_type = softmax_infer_type;
    op.cpu = softmax_forward_cpu<true>;
    add_with_backward(r, std::move(op), softmax_backward_cpu<true>);
  }
  {
    OpDef op;
    op.name = "softmin";
    op.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    op.description =
        "Applies the softmin function along `axis`: out = exp(-x/t) / sum(exp(-x/t)), t = temperature (1 by "
        "default). The elements along the axis sum up to 1.";
    op.params = softmax_params();
    op.input_names_fn = softmax_inputs;
    op.infer_shape = softmax_infer_shape;
    op.infer_type = softmax_infer_type;
    op.cpu = softmax_forward_cpu<false, true>;
    add_with_backward(r, std::move(op), softmax_backward_cpu<false, true>);
  }
  {
    OpDef op;
    op.name = "SoftmaxActivation";
    op.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    op.description =
        "Applies softmax activation to the input (deprecated, use softmax). mode=instance: softmax over all "
        "non-batch elements of each instance; mode=channel: softmax across axis 1 at every position of each "
        "instance (input of rank >= 3).";
    op.params = {param_enum("mode", "instance", {"channel", "instance"},
                            "Specifies how to compute the softmax. If set to ``instance``, it computes softmax for "
                            "each instance. If set to ``channel``, It computes cross channel softmax for each "
                            "position of each instance.")};
    op.input_names_ = {"data"};
    op.infer_shape = softmax_activation_infer_shape;
    op.cpu = softmax_activation_forward_cpu;
    add_with_backward(r, std::move(op), softmax_activation_backward_cpu);
  }
}

}  // namespace nn
}  // namespace kiln
