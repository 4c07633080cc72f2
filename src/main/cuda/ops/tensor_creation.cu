// GPU kernels of the creation operators of ops/index/creation.cc: _ones, _full,
// _zeros_without_dtype, _eye, _linspace. Shapes and element values come from kiln/creation.h, as on
// the CPU; the kernels write float32/float64 (integer outputs go through the float64 kernel, float16
// through float32, by the wrappers of kiln/low_precision.h, as on the CPU).
#include "kiln/creation.h"
#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {
namespace tensor {
namespace {

enum class Fill { kConstant, kEye, kLinspace };

// y: [n]; constant: a; eye: (N, cols) with ones where j - i == k (b = k); linspace: a + b * i
template <typename T>
__global__ void creation_kernel(int64_t n, T* y, int req, Fill kind, double a, double b, int64_t cols, int64_t k) {
  KILN_GRID_STRIDE(i, n) {
    double v;
    if (kind == Fill::kConstant) v = a;
    else if (kind == Fill::kEye) v = eye_value(i / cols, i % cols, k);
    else v = linspace_value(a, b, i);
    assign(y, i, req, (T)v);
  }
}

void launch_creation(const char* name, const OpCtx& ctx, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out, Fill kind, double a, double b, int64_t cols, int64_t k) {
  check_call(name, in, 0, 0, req, out, 1);
  const TBlob& y = out[0];  // [shape]
  const int64_t n = y.size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(y.dtype, T, {
    creation_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, y.dptr<T>(), req_int(req[0]), kind, a, b, cols, k);
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

Kernel constant_op(const char* name, double (*value)(const Attrs&)) {
  return [name, value](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
    launch_creation(name, ctx, in, req, out, Fill::kConstant, value(a), 0, 1, 0);
  };
}

void eye_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const Shape s = eye_shape(a);  // [N, M]
  if (out.size() == 1 && out[0].size() != s.size())
    throw KilnError("_eye (GPU): output shape " + out[0].shape.str() + " differs from " + s.str());
  if (s[1] == 0) return;
  launch_creation("_eye", ctx, in, req, out, Fill::kEye, 0, 0, s[1], a.i("k"));
}

void linspace_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  launch_creation("_linspace", ctx, in, req, out, Fill::kLinspace, a.f("start"), linspace_step(a), 1, 0);  // out: [num]
}

}  // namespace

void register_tensor_creation_gpu(OpRegistry& r) {
  set_gpu(r, "_ones", constant_op("_ones", [](const Attrs&) { return 1.0; }));
  set_gpu(r, "_full", constant_op("_full", [](const Attrs& a) { return a.f("value"); }));
  set_gpu(r, "_zeros_without_dtype", constant_op("_zeros_without_dtype", [](const Attrs&) { return 0.0; }));
  set_gpu(r, "_eye", eye_forward);
  set_gpu(r, "_linspace", linspace_forward);
}

}  // namespace tensor
}  // namespace cuda
}  // namespace kiln
