// Registration of the ops/conv family (issue 4): each operator file defines its ops in one place
// and this function adds them to the registry.
#include "conv_common.h"

namespace kiln {

void register_conv_ops(OpRegistry& reg) {
  conv::register_convolution(reg);
  conv::register_deconvolution(reg);
}

}  // namespace kiln
