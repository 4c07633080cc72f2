// The ops/seq family (issue 5): Embedding, the fused RNN op, SequenceMask, SequenceLast,
// SequenceReverse. One register_* per operator file; register_seq.cc calls them all.
#pragma once
#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace seq {

void register_embedding(OpRegistry& r);  // embedding.cc: Embedding, _backward_Embedding
void register_sequence(OpRegistry& r);   // sequence.cc: SequenceMask, SequenceLast, SequenceReverse (+ backward)
void register_rnn(OpRegistry& r);        // rnn.cc: RNN, _backward_RNN

}  // namespace seq
}  // namespace kiln
