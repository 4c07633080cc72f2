// Registration of the ops/pool family (issue 4): each operator file defines its ops in one place
// and this function adds them to the registry.
#include "pool_ops.h"

namespace kiln {

void register_pool_ops(OpRegistry& reg) {
  pool::register_pooling(reg);
  pool::register_upsampling(reg);
  pool::register_pad(reg);
  pool::register_crop(reg);
  pool::register_bilinear_resize(reg);
  pool::register_adaptive_pool(reg);
  pool::register_roi_pooling(reg);
}

}  // namespace kiln
