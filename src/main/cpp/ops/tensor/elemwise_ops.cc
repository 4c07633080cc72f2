// Entry point of the elementwise family (register_elemwise_ops) and the small helpers the
// family's files share. There is no family header: each elemwise_*.cc repeats the declarations of
// the helpers it uses (namespace kiln::elemwise) next to its includes.
//
// Files of the family:
//   elemwise_binary.cc     elemwise_add/sub/mul/div, _maximum, _minimum, _power (+ backward)
//   elemwise_broadcast.cc  broadcast_add/sub/mul/div/maximum/minimum/power (+ backward)
//   elemwise_scalar.cc     _plus_scalar ... _rpower_scalar (+ backward)
//   elemwise_unary.cc      negative, exp, log, sqrt, square, abs, clip (+ backward)
//   elemwise_reduce.cc     sum, mean, max, min (+ backward)
// The vectorized loops live in kiln/simd.h.
#include <string>
#include <vector>

#include "kiln/op.h"

namespace kiln {

namespace elemwise {

/// MXNet's CheckGradAllZero: every output gradient is a zeros node.
bool all_zero(const std::vector<NodeEntry>& ograds) {
  for (const auto& e : ograds)
    if (!is_zero_entry(e)) return false;
  return !ograds.empty();
}

/// MXNet's MakeZeroGradNodes: zeros_like(input i) named "<fwd>_backward" (one input) or
/// "<fwd>_in<i>_backward".
std::vector<NodeEntry> zero_grads(const NodePtr& fwd) {
  std::vector<NodeEntry> r;
  const size_t n = fwd->inputs.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string name = n == 1 ? fwd->name + "_backward" : fwd->name + "_in" + std::to_string(i) + "_backward";
    r.push_back(zeros_like(fwd->inputs[i], name));
  }
  return r;
}

/// Output 0 of a new node of op `op` named "<fwd>_backward" applied to `inputs`, with attributes
/// `attrs` (the gradient rules that reuse forward ops: negative, elemwise_mul, _mul_scalar...).
NodeEntry grad_op(const std::string& op, const NodePtr& fwd, const std::map<std::string, std::string>& attrs,
                  const std::vector<NodeEntry>& inputs) {
  NodeEntry e;
  e.node = make_node(op, fwd->name + "_backward", attrs, inputs);
  e.index = 0;
  return e;
}

/// MXNet's MakeNonlossGradNode for a `_backward_X` op: zeros_like per input when every output
/// gradient is zero, otherwise the backward node's outputs (one per forward input).
std::vector<NodeEntry> backward_or_zeros(const std::string& op, const NodePtr& fwd, const std::vector<NodeEntry>& ograds,
                                         const std::vector<NodeEntry>& inputs) {
  if (all_zero(ograds)) return zero_grads(fwd);
  return make_backward(op, fwd, inputs);
}

void register_binary(OpRegistry& reg);
void register_broadcast(OpRegistry& reg);
void register_scalar(OpRegistry& reg);
void register_unary(OpRegistry& reg);
void register_reduce(OpRegistry& reg);
void register_moments(OpRegistry& reg);  // moments.cc

}  // namespace elemwise

void register_elemwise_ops(OpRegistry& reg) {
  elemwise::register_binary(reg);
  elemwise::register_broadcast(reg);
  elemwise::register_scalar(reg);
  elemwise::register_unary(reg);
  elemwise::register_reduce(reg);
  elemwise::register_moments(reg);
}

}  // namespace kiln
