// broadcast_to, broadcast_like, broadcast_axis and their common gradient _broadcast_backward on
// the GPU, on the tensor family's broadcasting and reduction engines (ops/tensor_common.cuh): the
// forward broadcasts one operand (data moves as raw elements of the dtype's size; kAddTo needs
// float32/float64), the backward sums the output gradient over the broadcast axes (in double, in an
// order fixed by the shapes). Same inputs, outputs and dtypes as the CPU kernels
// (ops/tensor/shape_broadcast.cc).
#include <string>
#include <vector>

#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {
namespace shape {
namespace {

using tensor::BPlan;
using tensor::RPlan;

struct Identity {
  template <typename T>
  __device__ T operator()(T v) const { return v; }
};

/// y = x broadcast (same rank, each x dim 1 or y's); `nin` inputs of which only the first is read
/// (broadcast_like's rhs lends its shape only). x: [d_0, .., d_k], y: [n_0, .., n_k].
Kernel broadcast_forward(const char* op, size_t nin) {
  return [op, nin](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
    tensor::check_call(op, in, nin, nin, req, out, 1);
    const TBlob& x = in[0];   // [d_0, .., d_k], d_i in {1, n_i}
    const TBlob& y = out[0];  // [n_0, .., n_k]
    if (req[0] == OpReq::kNullOp || y.size() == 0) return;
    tensor::check_dtype(op, x, y.dtype, "input");
    if (x.shape.ndim() != y.shape.ndim())
      throw KilnError(std::string(op) + " (GPU): input " + x.shape.str() + " and output " + y.shape.str() +
                      " differ in rank");
    const BPlan p = tensor::make_bplan(op, y.shape, {x.shape});
    DeviceGuard g(device_of(ctx, in, out));
    auto run = [&](auto zero) {
      using T = decltype(zero);
      tensor::launch_bcast<1>(ctx, p, req[0], y.dptr<T>(), x.dptr<T>(), (const T*)nullptr, (const T*)nullptr,
                              Identity(), op);
    };
    if (req[0] == OpReq::kAddTo) {
      if (y.dtype == DType::kFloat32) run(float{});
      else if (y.dtype == DType::kFloat64) run(double{});
      else throw KilnError(std::string(op) + ": accumulation (req add) needs float32/float64, got " + dtype_name(y.dtype));
      return;
    }
    switch (dtype_size(y.dtype)) {
      case 1: run(uint8_t{}); break;
      case 2: run(uint16_t{}); break;
      case 4: run(uint32_t{}); break;
      case 8: run(uint64_t{}); break;
      default: throw KilnError(std::string(op) + " (GPU): unsupported dtype " + dtype_name(y.dtype));
    }
  };
}

/// dx = dy summed over the axes where x has 1 and y more. in: dy [n_0, .., n_k]; out: dx [d_0, .., d_k].
void broadcast_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* op = "_broadcast_backward";
  tensor::check_call(op, in, 1, 1, req, out, 1);
  const TBlob& dy = in[0];   // [n_0, .., n_k]
  const TBlob& dx = out[0];  // [d_0, .., d_k], d_i in {1, n_i}
  if (req[0] == OpReq::kNullOp || dx.size() == 0) return;
  tensor::check_dtype(op, dy, dx.dtype, "output gradient");
  if (dx.shape.ndim() != dy.shape.ndim())
    throw KilnError("_broadcast_backward (GPU): gradient " + dy.shape.str() + " and input " + dx.shape.str() +
                    " differ in rank");
  const RPlan rp = tensor::make_rplan(op, dy.shape, dx.shape);
  const int device = device_of(ctx, in, out);
  DeviceGuard g(device);
  KILN_FLOAT_SWITCH(dx.dtype, T, {
    tensor::launch_reduce(ctx, device, rp, dy.dptr<T>(), tensor::SumRed<T>(),
                          tensor::SumWrite<T>{dx.dptr<T>(), req_int(req[0]), 1.0, 1.0}, op);
  });
}

}  // namespace

void register_shape_broadcast_gpu(OpRegistry& r) {
  set_gpu(r, "broadcast_to", broadcast_forward("broadcast_to", 1));
  set_gpu(r, "broadcast_like", broadcast_forward("broadcast_like", 2));
  set_gpu(r, "broadcast_axis", broadcast_forward("broadcast_axis", 1));
  set_gpu(r, "_broadcast_backward", broadcast_backward);
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
