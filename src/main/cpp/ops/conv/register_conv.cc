// Registration of the ops/conv family (issue 4): each operator file defines its ops in one place
// and this function adds them to the registry.
#include "kiln/op.h"

namespace kiln {

void register_conv_ops(OpRegistry& reg) {
  (void)reg;
}

}  // namespace kiln
