// Registers the nn operator family (declared in kiln/op.h; one register_* per file, nn_ops.h).
#include "nn_ops.h"

namespace kiln {

void register_nn_ops(OpRegistry& r) {
  nn::register_fully_connected(r);
  nn::register_activation(r);
  nn::register_leaky_relu(r);
  nn::register_softmax(r);
  nn::register_softmax_output(r);
  nn::register_regression_output(r);
  nn::register_dropout(r);
  nn::register_svm_output(r);
  nn::register_softmax_cross_entropy(r);
}

}  // namespace kiln
