// Registration of the ops/index family (issue 4): each operator file defines its ops in one place
// and this function adds them to the registry.
#include "index_common.h"
#include "kiln/op.h"

namespace kiln {

void register_index_ops(OpRegistry& reg) {
  index_ops::register_cast_ops(reg);
  index_ops::register_slice_ops(reg);
  index_ops::register_take_ops(reg);
  index_ops::register_reorder_ops(reg);
  index_ops::register_sort_ops(reg);
  index_ops::register_creation_ops(reg);
  index_ops::register_gather_nd_ops(reg);
  index_ops::register_ravel_ops(reg);
  index_ops::register_diag_ops(reg);
  index_ops::register_cumsum_ops(reg);
  index_ops::register_khatri_rao_ops(reg);
}

}  // namespace kiln
