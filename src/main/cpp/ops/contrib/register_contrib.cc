// Registration of the ops/contrib family: each operator file defines its ops in one place and this
// function adds them to the registry.
#include "contrib_ops.h"

namespace kiln {

void register_contrib_ops(OpRegistry& reg) {
  contrib::register_bounding_box(reg);
}

}  // namespace kiln
