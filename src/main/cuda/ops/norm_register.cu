// Registration of the norm family's GPU kernels: BatchNorm (ops/norm_batch.cu), LayerNorm,
// InstanceNorm and GroupNorm (ops/norm_layer.cu), L2Normalization (ops/norm_l2.cu), LRN (ops/norm_lrn.cu),
// each with its _backward_ op.
#include "ops/norm_common.cuh"

namespace kiln {
namespace cuda {

void register_norm_gpu(OpRegistry& r) {
  norm_detail::register_batch_norm(r);
  norm_detail::register_layer_instance(r);
  norm_detail::register_l2_normalization(r);
  norm_detail::register_lrn(r);
}

}  // namespace cuda
}  // namespace kiln
