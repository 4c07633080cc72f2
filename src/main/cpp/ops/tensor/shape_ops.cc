// The shape/tensor-layout operator family: one register function per file.
//   shape_reshape.cc   Flatten (flatten), Reshape (reshape), expand_dims, _backward_reshape
//   shape_concat.cc    Concat (concat), _backward_Concat, SliceChannel (split), _backward_SliceChannel
//   shape_transpose.cc transpose
//   shape_dot.cc       dot, _backward_dot
#include "kiln/op.h"

namespace kiln {

void register_shape_reshape_ops(OpRegistry& r);    // shape_reshape.cc
void register_shape_concat_ops(OpRegistry& r);     // shape_concat.cc
void register_shape_transpose_ops(OpRegistry& r);  // shape_transpose.cc
void register_shape_dot_ops(OpRegistry& r);        // shape_dot.cc

void register_shape_ops(OpRegistry& r) {
  register_shape_reshape_ops(r);
  register_shape_concat_ops(r);
  register_shape_transpose_ops(r);
  register_shape_dot_ops(r);
}

}  // namespace kiln
