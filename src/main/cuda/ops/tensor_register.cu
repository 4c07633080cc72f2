// Registration of the tensor family's GPU kernels: elementwise binary / broadcast / scalar / unary
// ops beyond elemwise.cu's (the math ops of kiln/elemwise_math.h in tensor_math.cu), reductions, argmax/argmin, the internal ops, Cast, where and _arange.
#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {

void register_tensor_gpu(OpRegistry& r) {
  tensor::register_tensor_binary_gpu(r);
  tensor::register_tensor_unary_gpu(r);
  tensor::register_tensor_math_gpu(r);
  tensor::register_tensor_reduce_gpu(r);
  tensor::register_tensor_misc_gpu(r);
  tensor::register_tensor_creation_gpu(r);
}

}  // namespace cuda
}  // namespace kiln
