// Activation: relu, sigmoid, tanh, softrelu, softsign, and its backward
// (MXNet src/operator/nn/activation.cc). Every tensor here is data-shaped, [n] flat.
//
// The backward is written in terms of the output y wherever possible, so only softsign keeps
// the forward input alive (MXNet 1.x passes x for sigmoid/tanh/softrelu too, which blocks the
// forward in-place; see spec 1.6.5):
//   relu      y = max(x, 0)                 dx = dy * [y > 0]
//   sigmoid   y = 1 / (1 + e^-x)            dx = dy * y * (1 - y)
//   tanh      y = tanh(x)                   dx = dy * (1 - y^2)
//   softrelu  y = log(1 + e^x) (x > 20: x)  dx = dy * (1 - e^-y)
//   softsign  y = x / (1 + |x|)             dx = dy / (1 + |x|)^2
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

enum class Act { kRelu, kSigmoid, kTanh, kSoftrelu, kSoftsign };

Act act_of(const Attrs& a) {
  const std::string& t = a.s("act_type");
  if (t == "relu") return Act::kRelu;
  if (t == "sigmoid") return Act::kSigmoid;
  if (t == "tanh") return Act::kTanh;
  if (t == "softrelu") return Act::kSoftrelu;
  if (t == "softsign") return Act::kSoftsign;
  throw KilnError("Activation: unknown act_type '" + t + "'");
}

template <typename DT>
void act_forward(Act act, int64_t n, const DT* x, DT* y, OpReq req) {
  // x [n], y [n] (may alias x)
  switch (act) {
    case Act::kRelu:  // NaN passes through, as MXNet's relu
      write_elementwise(req, n, y, [x](int64_t i) { return x[i] > DT(0) || x[i] != x[i] ? x[i] : DT(0); });
      break;
    case Act::kSigmoid:
      write_elementwise(req, n, y, [x](int64_t i) { return DT(1) / (DT(1) + std::exp(-x[i])); });
      break;
    case Act::kTanh:
      write_elementwise(req, n, y, [x](int64_t i) { return std::tanh(x[i]); });
      break;
    case Act::kSoftrelu:
      write_elementwise(req, n, y, [x](int64_t i) { return x[i] > DT(20) ? x[i] : std::log1p(std::exp(x[i])); });
      break;
    case Act::kSoftsign:
      write_elementwise(req, n, y, [x](int64_t i) { return x[i] / (DT(1) + std::abs(x[i])); });
      break;
  }
}

template <typename DT>
void act_backward(Act act, int64_t n, const DT* dy, const DT* y, const DT* x, DT* dx, OpReq req) {
  // dy [n], y [n], x [n] (softsign only, else null); dx [n] (may alias dy)
  switch (act) {
    case Act::kRelu:  // NaN output propagates
      write_elementwise(req, n, dx,
                        [dy, y](int64_t i) { return y[i] > DT(0) ? dy[i] : (y[i] != y[i] ? y[i] : DT(0)); });
      break;
    case Act::kSigmoid:
      write_elementwise(req, n, dx, [dy, y](int64_t i) { return dy[i] * y[i] * (DT(1) - y[i]); });
      break;
    case Act::kTanh:
      write_elementwise(req, n, dx, [dy, y](int64_t i) { return dy[i] * (DT(1) - y[i] * y[i]); });
      break;
    case Act::kSoftrelu:
      write_elementwise(req, n, dx, [dy, y](int64_t i) { return dy[i] * -std::expm1(-y[i]); });
      break;
    case Act::kSoftsign:
      write_elementwise(req, n, dx, [dy, x](int64_t i) {
        const DT d = DT(1) + std::abs(x[i]);
        return dy[i] / (d * d);
      });
      break;
  }
}

void act_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const Act act = act_of(a);
  KILN_FLOAT_SWITCH(in[0].dtype, DT,
                    { act_forward<DT>(act, in[0].size(), in[0].dptr<DT>(), out[0].dptr<DT>(), req[0]); });
}

void act_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: dy, y[, x]; out: dx
  const Act act = act_of(a);
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    act_backward<DT>(act, in[0].size(), in[0].dptr<DT>(), in[1].dptr<DT>(),
                     act == Act::kSoftsign ? in[2].dptr<DT>() : nullptr, out[0].dptr<DT>(), req[0]);
  });
}

}  // namespace

void register_activation(OpRegistry& r) {
  OpDef op;
  op.name = "Activation";
  op.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
  op.description =
      "Applies an activation function element-wise to the input: relu max(x, 0), sigmoid 1/(1+exp(-x)), tanh, "
      "softrelu log(1+exp(x)), softsign x/(1+|x|).";
  op.params = {param_enum("act_type", "", {"relu", "sigmoid", "softrelu", "softsign", "tanh"},
                          "Activation function to be applied.")};
  op.input_names_ = {"data"};
  op.output_names_ = {"output"};
  op.infer_shape = infer_same_shape;
  op.cpu = act_forward_cpu;
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    std::vector<NodeEntry> in = {og[0], NodeEntry{n, 0}};
    if (n->attrs.s("act_type") == "softsign") in.push_back(n->inputs[0]);
    return make_backward("_backward_Activation", n, in);
  };
  op.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_Activation", fwd);
  bw.input_names_fn = [](const Attrs& a) {
    return a.s("act_type") == "softsign" ? std::vector<std::string>{"ograd", "output", "data"}
                                         : std::vector<std::string>{"ograd", "output"};
  };
  bw.output_names_ = {"data_grad"};
  bw.cpu = act_backward_cpu;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };  // dy -> dx
  r.add(bw);
}

}  // namespace nn
}  // namespace kiln
