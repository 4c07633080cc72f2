// The shape/tensor-layout operator family: one register function per file.
//   shape_reshape.cc   Flatten (flatten), Reshape (reshape), expand_dims, squeeze, reshape_like,
//                      _backward_reshape
//   shape_concat.cc    Concat (concat), _backward_Concat, SliceChannel (split), _backward_SliceChannel
//   shape_transpose.cc transpose, SwapAxis (swapaxes), depth_to_space, space_to_depth
//   shape_dot.cc       dot, _backward_dot
//   shape_broadcast.cc broadcast_to, broadcast_like, broadcast_axis (broadcast_axes), _broadcast_backward
//   shape_info.cc      shape_array, size_array
#include "kiln/op.h"

namespace kiln {

void register_shape_reshape_ops(OpRegistry& r);    // shape_reshape.cc
void register_shape_concat_ops(OpRegistry& r);     // shape_concat.cc
void register_shape_transpose_ops(OpRegistry& r);  // shape_transpose.cc
void register_shape_dot_ops(OpRegistry& r);        // shape_dot.cc
void register_shape_broadcast_ops(OpRegistry& r);  // shape_broadcast.cc
void register_shape_info_ops(OpRegistry& r);       // shape_info.cc

void register_shape_ops(OpRegistry& r) {
  register_shape_reshape_ops(r);
  register_shape_concat_ops(r);
  register_shape_transpose_ops(r);
  register_shape_dot_ops(r);
  register_shape_broadcast_ops(r);
  register_shape_info_ops(r);
}

}  // namespace kiln
