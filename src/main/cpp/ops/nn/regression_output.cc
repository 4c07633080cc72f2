// LinearRegressionOutput, LogisticRegressionOutput, MAERegressionOutput
// (MXNet src/operator/regression_output.cc). Losses: the backward ignores the head gradient.
//
//   forward   linear y = x      logistic y = 1 / (1 + e^-x)      MAE y = x
//   backward  dx = f(y, label) * grad_scale / m,   m = label.size / label.shape[0]
//             f = y - label (linear, logistic);  f = sign(y - label) with 0 -> -1 (MAE)
// m is the number of outputs per sample, not the batch size. Every tensor is [n] flat; the
// label has the data's element count (shape (N,) for data (N, 1)).
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

enum class Reg { kLinear, kLogistic, kMAE };

void reg_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  assign_in(in, 0, (*out)[0]);
  assign_out(out, 0, (*in)[0]);
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  const Shape l = (*in)[1];
  if (!l.rank_known()) {
    // (N, 1) data -> (N,) label, else the data's shape
    if (d.ndim() == 2 && d[1] == 1) (*in)[1] = Shape{d[0]};
    else (*in)[1] = d;
    return;
  }
  // A known label must have the data's first dim and element count.
  if (d.ndim() >= 1 && l.ndim() >= 1) {
    Shape lb = Shape::unknown_dims(l.ndim()), db = Shape::unknown_dims(d.ndim());
    lb[0] = d[0];
    db[0] = l[0];
    Shape lt = l, dt = d;
    if (shape_assign(&lt, lb) && shape_assign(&dt, db)) {
      (*in)[1] = lt;
      (*in)[0] = dt;
      assign_out(out, 0, dt);
    }
  }
  const Shape& lk = (*in)[1];
  const Shape& dk = (*in)[0];
  if (lk.known() && dk.known() &&
      (lk.ndim() == 0 || dk.ndim() == 0 || lk[0] != dk[0] || lk.size() != dk.size()))
    throw InferError(true, 1, "Shape inconsistent, Provided = " + lk.str() + ", inferred shape = " + dk.str());
}

template <typename DT>
void reg_forward(Reg kind, int64_t n, const DT* x, DT* y, OpReq req) {
  // x [n], y [n] (may alias x)
  if (kind == Reg::kLogistic)
    write_elementwise(req, n, y, [x](int64_t i) { return DT(1) / (DT(1) + std::exp(-x[i])); });
  else
    copy_with_req(req, n, x, y);
}

template <typename DT>
void reg_backward(Reg kind, int64_t n, DT scale, const DT* label, const DT* y, DT* dx, OpReq req) {
  // label [n], y [n], dx [n] (may alias y)
  if (kind == Reg::kMAE)
    write_elementwise(req, n, dx, [=](int64_t i) { return (y[i] - label[i] > DT(0) ? DT(1) : DT(-1)) * scale; });
  else
    write_elementwise(req, n, dx, [=](int64_t i) { return (y[i] - label[i]) * scale; });
}

template <Reg kKind>
void reg_forward_cpu(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(in[0].dtype, DT,
                    { reg_forward<DT>(kKind, in[0].size(), in[0].dptr<DT>(), out[0].dptr<DT>(), req[0]); });
}

template <Reg kKind>
void reg_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: label, y; out: d_data, d_label
  const TBlob& label = in[0];
  const int64_t per_sample = label.shape.ndim() >= 1 && label.shape[0] > 0 ? label.size() / label.shape[0] : 1;
  KILN_CHECK(label.size() == in[1].size(), "regression output: label " + label.shape.str() +
                                               " does not have the element count of the output " + in[1].shape.str());
  KILN_FLOAT_SWITCH(in[1].dtype, DT, {
    reg_backward<DT>(kKind, in[1].size(), DT(loss_grad_scale(ctx, a) / (double)per_sample), label.dptr<DT>(),
                     in[1].dptr<DT>(), out[0].dptr<DT>(), req[0]);
    // The label gets no gradient; write zeros rather than leave garbage.
    if (req[1] == OpReq::kWriteTo || req[1] == OpReq::kWriteInplace)
      std::fill(out[1].dptr<DT>(), out[1].dptr<DT>() + out[1].size(), DT(0));
  });
}

template <Reg kKind>
void add_regression(OpRegistry& r, const std::string& name, const std::string& bw_name, const std::string& desc) {
  OpDef op;
  op.name = name;
  op.description = desc;
  op.params = {param("grad_scale", ParamType::kFloat, "1", "Scale the gradient by a float factor")};
  op.input_names_ = {"data", "label"};
  op.output_names_ = {"output"};
  op.infer_shape = reg_infer_shape;
  op.cpu = reg_forward_cpu<kKind>;
  op.is_loss = true;
  op.gradient = [bw_name](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward(bw_name, n, {n->inputs[1], NodeEntry{n, 0}});
  };
  op.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def(bw_name, fwd);
  bw.input_names_ = {"label", "output"};
  bw.output_names_ = {"data_grad", "label_grad"};
  bw.cpu = reg_backward_cpu<kKind>;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{1, 0}}; };  // y -> d_data
  r.add(bw);
}

}  // namespace

void register_regression_output(OpRegistry& r) {
  add_regression<Reg::kLinear>(
      r, "LinearRegressionOutput", "_backward_linear_reg_out",
      "Computes and optimizes for squared loss during backward propagation. Just outputs ``data`` during forward "
      "propagation. The gradient is (output - label) * grad_scale / m, m = number of outputs per sample "
      "(label.size / label.shape[0]).");
  add_regression<Reg::kMAE>(
      r, "MAERegressionOutput", "_backward_mae_reg_out",
      "Computes mean absolute error of the input. Just outputs ``data`` during forward propagation. The gradient is "
      "sign(output - label) * grad_scale / m (a zero difference counts as -1), m = number of outputs per sample.");
  add_regression<Reg::kLogistic>(
      r, "LogisticRegressionOutput", "_backward_logistic_reg_out",
      "Applies a logistic function to the input, 1 / (1 + exp(-x)), and optimizes the log loss in the backward "
      "pass: the gradient is (output - label) * grad_scale / m, m = number of outputs per sample.");
}

}  // namespace nn
}  // namespace kiln
