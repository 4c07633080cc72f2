// Registration of the shape family's GPU kernels: layout ops (shape_layout.cu), dot / batch_dot
// (shape_dot.cu), gathers by index (index_gather.cu), sort / topk (index_sort.cu), the
// Sequence* ops (shape_sequence.cu), SwapAxis / depth_to_space / space_to_depth / reverse /
// slice_like / shape_array / size_array (shape_rearrange.cu) and the broadcast_* ops
// (shape_broadcast.cu).
#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {

void register_shape_gpu(OpRegistry& r) {
  shape::register_shape_layout_gpu(r);
  shape::register_shape_dot_gpu(r);
  shape::register_index_gather_gpu(r);
  shape::register_index_sort_gpu(r);
  shape::register_shape_seq_gpu(r);
  shape::register_shape_rearrange_gpu(r);
  shape::register_shape_broadcast_gpu(r);
}

}  // namespace cuda
}  // namespace kiln
