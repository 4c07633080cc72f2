// Placeholder: filled in by the issue 5 work (registers nothing yet).
#include "seq_ops.h"

namespace kiln {
namespace seq {

void register_rnn(OpRegistry& r) { (void)r; }

}  // namespace seq
}  // namespace kiln
