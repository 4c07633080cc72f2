// GPU kernels of the mixed-precision SGD/NAG update operators (CPU: src/main/cpp/ops/optimizer/
// mixed_precision.cc): mp_sgd_update, mp_sgd_mom_update, mp_nag_mom_update; and of all_finite /
// multi_all_finite, the loss scaler's overflow check. weight, grad and the
// output have one type Y (float16 as __half, float32 or float64, the CPU's mp_switch); the master
// weight weight32 and mom are float32 and mutated in place whatever the request. The update runs in
// float32 (the CPU kernels' formulas and order, see optimizer_common.cuh for the rounding) and the new
// master weight is stored into the output cast to Y (round to nearest even). Shapes: all [n].
#include <vector>

#include "ops/optimizer_common.cuh"

namespace kiln {
namespace cuda {
namespace optim {
namespace {

using F = Nc<float>;

/// A grad element as float32 (the CPU's static_cast<float>(g[i])).
template <typename Y>
__device__ __forceinline__ float f32(Y x) { return static_cast<float>(widen(x)); }

// weight32 = (1 - lr * wd) * weight32 - lr * G; out = weight32
template <typename Y>
struct MpSgd {
  const Y* g;  // grad: [n]
  float* w32;  // weight32: [n], mutated
  Y* y;        // output: [n]
  GradPrep<float> gp;
  float lr, decay;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    const F w = F(decay) * F(w32[i]) - gp.scaled(lr, f32(g[i]));
    w32[i] = w.v;
    st(y, i, w.v);
  }
};

// mom = momentum * mom - lr * wd * weight32 - lr * G; weight32 += mom; out = weight32
template <typename Y>
struct MpSgdMom {
  const Y* g;  // grad: [n]
  float* m;    // mom: [n], mutated
  float* w32;  // weight32: [n], mutated
  Y* y;        // output: [n]
  GradPrep<float> gp;
  float lr, lr_wd, momentum;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    const F w = w32[i];
    const F mi = F(momentum) * F(m[i]) - F(lr_wd) * w - gp.scaled(lr, f32(g[i]));
    m[i] = mi.v;
    const F wn = w + mi;
    w32[i] = wn.v;
    st(y, i, wn.v);
  }
};

// m1 = momentum * mom; w = weight32 - m1 + (momentum + 1) * (m1 - lr * (G + wd * weight32));
// mom = m1 - lr * (G + wd * w) (the NEW master weight); weight32 = w; out = w
template <typename Y>
struct MpNagMom {
  const Y* g;  // grad: [n]
  float* m;    // mom: [n], mutated
  float* w32;  // weight32: [n], mutated
  Y* y;        // output: [n]
  GradPrep<float> gp;
  float lr, wd, momentum;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    const F G = gp(f32(g[i]));
    const F mo = momentum, l = lr, d = wd;
    const F m1 = mo * F(m[i]);
    F w = w32[i];
    w = w - m1 + (mo + F(1.f)) * (m1 - l * (G + d * w));
    m[i] = (m1 - l * (G + d * w)).v;
    w32[i] = w.v;
    st(y, i, w.v);
  }
};

/// Arity, devices, sizes; weight and grad of the output's type, the float32 inputs [first_f32, nin).
void check_mp(const char* name, const std::vector<TBlob>& in, size_t nin, const std::vector<OpReq>& req,
              const std::vector<TBlob>& out) {
  check_update(name, in, nin, req, out);
  check_dtypes(name, in, 0, 2, out[0].dtype, "weight and grad have the output's dtype");
  check_dtypes(name, in, 2, nin, DType::kFloat32, "the states and weight32 are float32");
}

// in: weight [n] (Y), grad [n] (Y), weight32 [n] (float32, mutated); out: new weight [n] (Y).
void mp_sgd_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                   const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "mp_sgd_update";
  check_mp(name, in, 3, req, out);
  const auto gp = GradPrep<float>::mxnet(attrs);
  const float lr = f32_param<float>(attrs, "lr"), decay = 1.f - lr * gp.wd;
  DeviceGuard dg(device_of(ctx, in, out));
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    MpSgd<Y> op{in[1].dptr<Y>(), in[2].dptr<float>(), out[0].dptr<Y>(), gp, lr, decay};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n] (Y), grad [n] (Y), mom [n], weight32 [n] (float32, mutated); out: new weight [n] (Y).
void mp_sgd_mom_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                       const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "mp_sgd_mom_update";
  check_mp(name, in, 4, req, out);
  const auto gp = GradPrep<float>::mxnet(attrs);
  const float lr = f32_param<float>(attrs, "lr"), lr_wd = lr * gp.wd, momentum = f32_param<float>(attrs, "momentum");
  DeviceGuard dg(device_of(ctx, in, out));
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    MpSgdMom<Y> op{in[1].dptr<Y>(), in[2].dptr<float>(), in[3].dptr<float>(), out[0].dptr<Y>(), gp, lr, lr_wd,
                   momentum};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n] (Y), grad [n] (Y), mom [n], weight32 [n] (float32, mutated); out: new weight [n] (Y).
void mp_nag_mom_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                       const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "mp_nag_mom_update";
  check_mp(name, in, 4, req, out);
  const auto gp = GradPrep<float>::mxnet(attrs);
  const float lr = f32_param<float>(attrs, "lr"), wd = gp.wd, momentum = f32_param<float>(attrs, "momentum");
  DeviceGuard dg(device_of(ctx, in, out));
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    MpNagMom<Y> op{in[1].dptr<Y>(), in[2].dptr<float>(), in[3].dptr<float>(), out[0].dptr<Y>(), gp, lr, wd,
                   momentum};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// ---- all_finite, multi_all_finite ----------------------------------------------------------------

/// *out = value (float32 [1]).
__global__ void set_flag_kernel(float* out, float value) { *out = value; }

/// *out = 0 if any of x [n] is Inf or NaN (every writer stores the same 0, so the race is benign).
template <typename T>
__global__ void all_finite_kernel(int64_t n, const T* x, float* out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    if (!isfinite(widen(x[i]))) *out = 0.f;  // in the element's own precision (a float64 above FLT_MAX is finite)
}

// in: arrays of any shape (float16, bfloat16, float32, float64); out: flag [1] (float32) = (init_output ? 1 : flag) and 0
// if any element is not finite. Stays on the device: the caller copies one float back.
void all_finite(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* name = "all_finite";
  check_arity(name, in, 1, in.size(), out, req, 1, 1);  // any number of inputs, at least one
  check_on_gpu(name, in, "input");
  check_on_gpu(name, out, "output");
  if (req[0] == OpReq::kNullOp) return;
  if (out[0].size() != 1 || out[0].dtype != DType::kFloat32 || out[0].ptr == nullptr)  // the kernels write one float
    throw KilnError(std::string(name) + " (GPU): output flag is " + dtype_name(out[0].dtype) + " " +
                    out[0].shape.str() + ", expected float32 (1,)");
  DeviceGuard dg(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  float* flag = out[0].dptr<float>();
  if (a.b("init_output")) {
    set_flag_kernel<<<1, 1, 0, s>>>(flag, 1.f);
    KILN_CUDA_LAUNCH_CHECK(name);
  }
  for (const TBlob& x : in) {
    const int64_t n = x.size();
    if (n == 0) continue;
    if (x.dtype == DType::kBfloat16) {  // bfloat16 gradients read in place (no float32 copies of them all)
      all_finite_kernel<__nv_bfloat16><<<grid_for(n), kBlock, 0, s>>>(n, x.dptr<__nv_bfloat16>(), flag);
    } else {
      mp_switch(x.dtype, [&](auto zero) {
        using T = decltype(zero);
        all_finite_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, x.dptr<T>(), flag);
      });
    }
    KILN_CUDA_LAUNCH_CHECK(name);
  }
}

}  // namespace

void register_mixed_precision_gpu(OpRegistry& r) {
  set_gpu(r, "mp_sgd_update", mp_sgd_update, kNativeFloat16);
  set_gpu(r, "mp_sgd_mom_update", mp_sgd_mom_update, kNativeFloat16);
  set_gpu(r, "mp_nag_mom_update", mp_nag_mom_update, kNativeFloat16);
  set_gpu(r, "all_finite", all_finite, kNativeLowPrecision);
  set_gpu(r, "multi_all_finite", all_finite, kNativeLowPrecision);
}

}  // namespace optim
}  // namespace cuda
}  // namespace kiln
