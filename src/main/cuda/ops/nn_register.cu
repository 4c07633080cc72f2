// Registration of the nn family's GPU kernels: softmax family and losses (ops/nn_softmax.cu),
// LeakyReLU / regression outputs / Dropout (ops/nn_elemwise.cu), Pooling (ops/pool_pooling.cu),
// Pad / Crop / UpSampling (ops/pool_misc.cu), BilinearResize2D / AdaptiveAvgPooling2D / ROIPooling
// (ops/pool_image.cu).
#include "ops/nn_common.cuh"

namespace kiln {
namespace cuda {

void register_nn_gpu(OpRegistry& r) {
  nn_gpu::register_softmax(r);
  nn_gpu::register_elemwise(r);
  nn_gpu::register_pooling(r);
  nn_gpu::register_pad_crop_up(r);
  nn_gpu::register_image_pool(r);
}

}  // namespace cuda
}  // namespace kiln
