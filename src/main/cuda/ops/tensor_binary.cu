// GPU kernels of the binary elementwise operators beyond elemwise.cu's four (CPU:
// src/main/cpp/ops/tensor/elemwise_binary.cc): _maximum, _minimum, _power and the backward ops
// of the same-shape family (_backward_mul/div/maximum/minimum/power), and the NumPy-broadcast
// family broadcast_add/sub/mul/div/maximum/minimum/power with their backward ops (the gradient
// of a broadcast input is the elementwise gradient summed over its broadcast axes, through the
// deterministic reduction engine of tensor_common.cuh). float32 and float64, every OpReq.
//
// Shapes: n = output elements. Same-shape ops: lhs, rhs, out, ograd, grads all [n]. Broadcast
// ops: lhs and rhs right-aligned, each dim equal to the output's or 1; out / ograd: the
// broadcast shape [n]; lhs_grad / rhs_grad: lhs's / rhs's shape.
// Also the functors of kiln/elemwise_math.h: _mod / _hypot and broadcast_mod / broadcast_hypot
// (with backward ops), and the comparisons and logical ops (_equal ... _logical_xor,
// broadcast_equal ... broadcast_logical_xor), which have no backward op.
#include <string>

#include "kiln/elemwise_math.h"
#include "ops/tensor_common.cuh"

namespace kiln {
namespace cuda {
namespace tensor {
namespace {

// ---- functors (MXNet mshadow_op semantics, as the CPU's) ----------------------------------------
// fwd(a, b); lgrad(g, a, b) = g * d fwd / d a; rgrad(g, a, b) = g * d fwd / d b.
// kUsesInputs = false: the backward reads only g (lgrad = kLScale * g, rgrad = kRScale * g; only
// those ops declare the scales).

struct AddOp {
  static constexpr bool kUsesInputs = false;
  static constexpr double kLScale = 1.0, kRScale = 1.0;
  template <typename T> __device__ static T fwd(T a, T b) { return a + b; }
  template <typename T> __device__ static T lgrad(T g, T, T) { return g; }
  template <typename T> __device__ static T rgrad(T g, T, T) { return g; }
};
struct SubOp {
  static constexpr bool kUsesInputs = false;
  static constexpr double kLScale = 1.0, kRScale = -1.0;
  template <typename T> __device__ static T fwd(T a, T b) { return a - b; }
  template <typename T> __device__ static T lgrad(T g, T, T) { return g; }
  template <typename T> __device__ static T rgrad(T g, T, T) { return -g; }
};
struct MulOp {
  static constexpr bool kUsesInputs = true;
  template <typename T> __device__ static T fwd(T a, T b) { return a * b; }
  template <typename T> __device__ static T lgrad(T g, T, T b) { return g * b; }
  template <typename T> __device__ static T rgrad(T g, T a, T) { return g * a; }
};
struct DivOp {
  static constexpr bool kUsesInputs = true;
  template <typename T> __device__ static T fwd(T a, T b) { return a / b; }
  template <typename T> __device__ static T lgrad(T g, T, T b) { return g / b; }
  template <typename T> __device__ static T rgrad(T g, T a, T b) { return g * (-a / (b * b)); }
};
// maximum: NaN if either is NaN (as MXNet 1.9 and the CPU), else the larger; gradient to lhs where a >= b
// (ties), to rhs where a < b.
struct MaxOp {
  static constexpr bool kUsesInputs = true;
  template <typename T> __device__ static T fwd(T a, T b) { return (a > b || a != a) ? a : b; }
  template <typename T> __device__ static T lgrad(T g, T a, T b) { return pass_if(a >= b, g); }
  template <typename T> __device__ static T rgrad(T g, T a, T b) { return pass_if(a < b, g); }
};
// minimum: NaN if either is NaN, else the smaller; gradient to lhs where a <= b, to rhs where a > b.
struct MinOp {
  static constexpr bool kUsesInputs = true;
  template <typename T> __device__ static T fwd(T a, T b) { return (a < b || a != a) ? a : b; }
  template <typename T> __device__ static T lgrad(T g, T a, T b) { return pass_if(a <= b, g); }
  template <typename T> __device__ static T rgrad(T g, T a, T b) { return pass_if(a > b, g); }
};
// a^b; d/da = b * a^(b-1); d/db = a^b * log(a) (NaN for a < 0, as MXNet).
struct PowOp {
  static constexpr bool kUsesInputs = true;
  template <typename T> __device__ static T fwd(T a, T b) { return k_pow(a, b); }
  template <typename T> __device__ static T lgrad(T g, T a, T b) { return g * (k_pow(a, b - T(1)) * b); }
  template <typename T> __device__ static T rgrad(T g, T a, T b) { return g * (k_pow(a, b) * k_log(a)); }
};

template <class Op>
struct Fwd {
  template <typename T> __device__ T operator()(T a, T b) const { return Op::fwd(a, b); }
};
template <class Op>
struct LGrad {
  template <typename T> __device__ T operator()(T g, T a, T b) const { return Op::lgrad(g, a, b); }
};
template <class Op>
struct RGrad {
  template <typename T> __device__ T operator()(T g, T a, T b) const { return Op::rgrad(g, a, b); }
};
template <typename T> struct Scale { T s; __device__ T operator()(T g) const { return s * g; } };

// Both gradients in one pass; every input element is read before either output is written, so
// an output may alias ograd (in place {0, 1}).
// g: [n], a: [n], b: [n], da: [n], db: [n]
template <class Op, typename T>
__global__ void binary_grad_kernel(int64_t n, const T* g, const T* a, const T* b, T* da, int reqa, T* db, int reqb) {
  KILN_GRID_STRIDE(i, n) {
    const T gv = g[i], av = a[i], bv = b[i];
    const T l = Op::lgrad(gv, av, bv), r = Op::rgrad(gv, av, bv);
    if (reqa != kReqNull) assign(da, i, reqa, l);
    if (reqb != kReqNull) assign(db, i, reqb, r);
  }
}

// Scaled ograd into both outputs in one pass (add / sub without broadcasting).
// g: [n], da: [n], db: [n] (either may alias g)
template <typename T>
__global__ void scale_grad_kernel(int64_t n, const T* g, T sl, T sr, T* da, int reqa, T* db, int reqb) {
  KILN_GRID_STRIDE(i, n) {
    const T gv = g[i];
    if (reqa != kReqNull) assign(da, i, reqa, sl * gv);
    if (reqb != kReqNull) assign(db, i, reqb, sr * gv);
  }
}

// ---- same-shape ops -------------------------------------------------------------------------------

template <class Op>
void binary_forward(const char* name, const OpCtx& ctx, const std::vector<TBlob>& in,
                    const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  check_call(name, in, 2, 2, req, out, 1);
  const int64_t n = out[0].size();
  for (int k = 0; k < 2; ++k) {
    check_size(name, in[k], n, k == 0 ? "lhs" : "rhs", out[0].shape);
    check_dtype(name, in[k], out[0].dtype, k == 0 ? "lhs" : "rhs");
  }
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    launch_map2(ctx, n, in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), req[0], Fwd<Op>(), name);
  });
}

// in: ograd [n], lhs [n], rhs [n]; out: lhs_grad [n], rhs_grad [n]
template <class Op>
void binary_backward(const char* name, const OpCtx& ctx, const std::vector<TBlob>& in,
                     const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  check_call(name, in, 3, 3, req, out, 2);
  const int64_t n = in[0].size();
  for (int k = 1; k < 3; ++k) check_size(name, in[k], n, "input", in[0].shape);
  for (int k = 0; k < 2; ++k) check_size(name, out[k], n, "gradient", in[0].shape);
  if ((req[0] == OpReq::kNullOp && req[1] == OpReq::kNullOp) || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    binary_grad_kernel<Op, T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        n, in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), req_int(req[0]), out[1].dptr<T>(),
        req_int(req[1]));
  });
  KILN_CUDA_LAUNCH_CHECK(name);
}

// ---- broadcast ops --------------------------------------------------------------------------------

// in: lhs, rhs (broadcastable); out: [n] (may alias an input of the same size)
template <class Op>
void broadcast_forward(const char* name, const OpCtx& ctx, const std::vector<TBlob>& in,
                       const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  check_call(name, in, 2, 2, req, out, 1);
  for (int k = 0; k < 2; ++k) check_dtype(name, in[k], out[0].dtype, k == 0 ? "lhs" : "rhs");
  const int64_t n = out[0].size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* a = in[0].dptr<T>();  // lhs
    const T* b = in[1].dptr<T>();  // rhs
    T* y = out[0].dptr<T>();       // [n]
    if (in[0].size() == n && in[1].size() == n) {
      launch_map2(ctx, n, a, b, y, req[0], Fwd<Op>(), name);
    } else {
      const BPlan p = make_bplan(name, out[0].shape, {in[0].shape, in[1].shape});
      launch_bcast<2>(ctx, p, req[0], y, a, b, (const T*)nullptr, Fwd<Op>(), name);
    }
  });
}

// _backward_broadcast_<op>. in: ograd [n] (+ lhs, rhs when Op::kUsesInputs); out: lhs_grad, rhs_grad.
// Order as the CPU: gradients that need a reduction first (they read every input in full), the
// full-size ones last, so that a full-size output may alias ograd.
template <class Op>
void broadcast_backward(const char* name, const OpCtx& ctx, const std::vector<TBlob>& in,
                        const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  check_call(name, in, Op::kUsesInputs ? 3 : 1, Op::kUsesInputs ? 3 : 1, req, out, 2);
  const int64_t n = in[0].size();
  if (req[0] == OpReq::kNullOp && req[1] == OpReq::kNullOp) return;
  // n == 0 still writes a non-empty broadcast input's gradient (a sum over nothing: zeros), as the
  // CPU: lhs [1, 3] + rhs [0, 3] gives lhs_grad = 0 (the reduction engine handles the empty input)
  if (n == 0 && out[0].size() == 0 && out[1].size() == 0) return;
  const int device = device_of(ctx, in, out);
  DeviceGuard dg(device);
  cudaStream_t st = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* g = in[0].dptr<T>();                               // ograd [n]
    const T* a = Op::kUsesInputs ? in[1].dptr<T>() : nullptr;  // lhs
    const T* b = Op::kUsesInputs ? in[2].dptr<T>() : nullptr;  // rhs
    const bool full0 = out[0].size() == n, full1 = out[1].size() == n;
    if (full0 && full1) {  // no broadcasting at all: one pass (n > 0 here)
      if constexpr (Op::kUsesInputs) {
        binary_grad_kernel<Op, T><<<grid_for(n), kBlock, 0, st>>>(n, g, a, b, out[0].dptr<T>(), req_int(req[0]),
                                                                    out[1].dptr<T>(), req_int(req[1]));
      } else {
        scale_grad_kernel<T><<<grid_for(n), kBlock, 0, st>>>(n, g, (T)Op::kLScale, (T)Op::kRScale, out[0].dptr<T>(),
                                                              req_int(req[0]), out[1].dptr<T>(), req_int(req[1]));
      }
      KILN_CUDA_LAUNCH_CHECK(name);
      return;
    }
    const Shape& gs = in[0].shape;
    BPlan plan3;
    if constexpr (Op::kUsesInputs) plan3 = make_bplan(name, gs, {gs, out[0].shape, out[1].shape});
    // 1. outputs that are reductions of the full-size gradient
    for (int k = 0; k < 2; ++k) {
      if (req[k] == OpReq::kNullOp || out[k].size() == n) continue;
      T* dk = out[k].dptr<T>();  // lhs or rhs shape
      const RPlan rp = make_rplan(name, gs, out[k].shape);
      if constexpr (Op::kUsesInputs) {
        DeviceScratch tmp(device, (size_t)n * sizeof(T));
        T* t = tmp.as<T>();  // [n] elementwise gradient before the reduction
        if (k == 0) launch_bcast<3>(ctx, plan3, OpReq::kWriteTo, t, g, a, b, LGrad<Op>(), name);
        else launch_bcast<3>(ctx, plan3, OpReq::kWriteTo, t, g, a, b, RGrad<Op>(), name);
        launch_reduce(ctx, device, rp, (const T*)t, SumRed<T>(), SumWrite<T>{dk, req_int(req[k]), 1.0, 1.0}, name);
      } else {
        const double alpha = k == 0 ? Op::kLScale : Op::kRScale;
        launch_reduce(ctx, device, rp, g, SumRed<T>(), SumWrite<T>{dk, req_int(req[k]), alpha, 1.0}, name);
      }
    }
    // 2. full-size outputs (the other input is broadcast)
    for (int k = 0; k < 2; ++k) {
      if (req[k] == OpReq::kNullOp || out[k].size() != n) continue;
      T* dk = out[k].dptr<T>();  // [n]
      if constexpr (Op::kUsesInputs) {
        if (k == 0) launch_bcast<3>(ctx, plan3, req[k], dk, g, a, b, LGrad<Op>(), name);
        else launch_bcast<3>(ctx, plan3, req[k], dk, g, a, b, RGrad<Op>(), name);
      } else {
        launch_map1(ctx, n, g, dk, req[k], Scale<T>{(T)(k == 0 ? Op::kLScale : Op::kRScale)}, name);
      }
    }
  });
}

/// The kernel of op `name` (named in every error message).
template <class Op, bool kBroadcast, bool kBackward>
Kernel kernel(const char* name) {
  return [name](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
    if constexpr (kBroadcast && kBackward) broadcast_backward<Op>(name, ctx, in, req, out);
    else if constexpr (kBroadcast) broadcast_forward<Op>(name, ctx, in, req, out);
    else if constexpr (kBackward) binary_backward<Op>(name, ctx, in, req, out);
    else binary_forward<Op>(name, ctx, in, req, out);
  };
}

/// A comparison (no backward op): the same-shape and the broadcast op.
template <class Op>
void set_comparison(OpRegistry& r, const char* same, const char* broadcast) {
  set_gpu(r, same, kernel<Op, false, false>(same));
  set_gpu(r, broadcast, kernel<Op, true, false>(broadcast));
}

}  // namespace

void register_tensor_binary_gpu(OpRegistry& r) {
  set_gpu(r, "_maximum", kernel<MaxOp, false, false>("_maximum"));
  set_gpu(r, "_minimum", kernel<MinOp, false, false>("_minimum"));
  set_gpu(r, "_power", kernel<PowOp, false, false>("_power"));
  set_gpu(r, "_backward_mul", kernel<MulOp, false, true>("_backward_mul"));
  set_gpu(r, "_backward_div", kernel<DivOp, false, true>("_backward_div"));
  set_gpu(r, "_backward_maximum", kernel<MaxOp, false, true>("_backward_maximum"));
  set_gpu(r, "_backward_minimum", kernel<MinOp, false, true>("_backward_minimum"));
  set_gpu(r, "_backward_power", kernel<PowOp, false, true>("_backward_power"));

  set_gpu(r, "broadcast_add", kernel<AddOp, true, false>("broadcast_add"));
  set_gpu(r, "broadcast_sub", kernel<SubOp, true, false>("broadcast_sub"));
  set_gpu(r, "broadcast_mul", kernel<MulOp, true, false>("broadcast_mul"));
  set_gpu(r, "broadcast_div", kernel<DivOp, true, false>("broadcast_div"));
  set_gpu(r, "broadcast_maximum", kernel<MaxOp, true, false>("broadcast_maximum"));
  set_gpu(r, "broadcast_minimum", kernel<MinOp, true, false>("broadcast_minimum"));
  set_gpu(r, "broadcast_power", kernel<PowOp, true, false>("broadcast_power"));
  set_gpu(r, "_backward_broadcast_add", kernel<AddOp, true, true>("_backward_broadcast_add"));
  set_gpu(r, "_backward_broadcast_sub", kernel<SubOp, true, true>("_backward_broadcast_sub"));
  set_gpu(r, "_backward_broadcast_mul", kernel<MulOp, true, true>("_backward_broadcast_mul"));
  set_gpu(r, "_backward_broadcast_div", kernel<DivOp, true, true>("_backward_broadcast_div"));
  set_gpu(r, "_backward_broadcast_maximum", kernel<MaxOp, true, true>("_backward_broadcast_maximum"));
  set_gpu(r, "_backward_broadcast_minimum", kernel<MinOp, true, true>("_backward_broadcast_minimum"));
  set_gpu(r, "_backward_broadcast_power", kernel<PowOp, true, true>("_backward_broadcast_power"));

  set_gpu(r, "_mod", kernel<math::Mod, false, false>("_mod"));
  set_gpu(r, "_hypot", kernel<math::Hypot, false, false>("_hypot"));
  set_gpu(r, "_backward_mod", kernel<math::Mod, false, true>("_backward_mod"));
  set_gpu(r, "_backward_hypot", kernel<math::Hypot, false, true>("_backward_hypot"));
  set_gpu(r, "broadcast_mod", kernel<math::Mod, true, false>("broadcast_mod"));
  set_gpu(r, "broadcast_hypot", kernel<math::Hypot, true, false>("broadcast_hypot"));
  set_gpu(r, "_backward_broadcast_mod", kernel<math::Mod, true, true>("_backward_broadcast_mod"));
  set_gpu(r, "_backward_broadcast_hypot", kernel<math::Hypot, true, true>("_backward_broadcast_hypot"));
  set_comparison<math::Equal>(r, "_equal", "broadcast_equal");
  set_comparison<math::NotEqual>(r, "_not_equal", "broadcast_not_equal");
  set_comparison<math::Greater>(r, "_greater", "broadcast_greater");
  set_comparison<math::GreaterEqual>(r, "_greater_equal", "broadcast_greater_equal");
  set_comparison<math::Lesser>(r, "_lesser", "broadcast_lesser");
  set_comparison<math::LesserEqual>(r, "_lesser_equal", "broadcast_lesser_equal");
  set_comparison<math::LogicalAnd>(r, "_logical_and", "broadcast_logical_and");
  set_comparison<math::LogicalOr>(r, "_logical_or", "broadcast_logical_or");
  set_comparison<math::LogicalXor>(r, "_logical_xor", "broadcast_logical_xor");
}

}  // namespace tensor
}  // namespace cuda
}  // namespace kiln
