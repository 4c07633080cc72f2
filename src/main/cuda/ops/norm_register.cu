// Registration of the norm family's GPU kernels: BatchNorm (ops/norm_batch.cu), LayerNorm and
// InstanceNorm (ops/norm_layer.cu), LRN (ops/norm_lrn.cu), each with its _backward_ op.
#include "ops/norm_common.cuh"

namespace kiln {
namespace cuda {

void register_norm_gpu(OpRegistry& r) {
  norm_detail::register_batch_norm(r);
  norm_detail::register_layer_instance(r);
  norm_detail::register_lrn(r);
}

}  // namespace cuda
}  // namespace kiln
