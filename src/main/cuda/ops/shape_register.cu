// Registration of the shape family's GPU kernels: layout ops (shape_layout.cu), dot / batch_dot
// (shape_dot.cu), gathers by index (index_gather.cu), sort / topk (index_sort.cu) and the
// Sequence* ops (shape_sequence.cu).
#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {

void register_shape_gpu(OpRegistry& r) {
  shape::register_shape_layout_gpu(r);
  shape::register_shape_dot_gpu(r);
  shape::register_index_gather_gpu(r);
  shape::register_index_sort_gpu(r);
  shape::register_shape_seq_gpu(r);
}

}  // namespace cuda
}  // namespace kiln
