// Registration of the ops/norm family (issue 4): each operator file defines its ops in one place
// and this function adds them to the registry (one register_* per file, norm_ops.h).
#include "norm_ops.h"

namespace kiln {

void register_norm_ops(OpRegistry& r) {
  norm::register_batch_norm(r);
  norm::register_layer_norm(r);
  norm::register_instance_norm(r);
  norm::register_group_norm(r);
  norm::register_l2_normalization(r);
  norm::register_lrn(r);
}

}  // namespace kiln
