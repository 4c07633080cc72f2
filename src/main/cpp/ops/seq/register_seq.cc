// Registration of the ops/seq family (issue 5): each operator file defines its ops in one place
// and this function adds them to the registry (one register_* per file, seq_ops.h).
#include "seq_ops.h"

namespace kiln {

void register_seq_ops(OpRegistry& r) {
  seq::register_embedding(r);
  seq::register_sequence(r);
  seq::register_rnn(r);
}

}  // namespace kiln
