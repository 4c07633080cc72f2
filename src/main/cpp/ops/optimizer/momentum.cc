// Momentum and sign update operators (MXNet 1.9.1 src/operator/optimizer_op-inl.h): dense
// kernels, not differentiable, float32/float64. Parameters are float32 in MXNet and applied as
// DType(float(param)), in MXNet's operation order. G = clip(rescale_grad * grad, clip_gradient)
// when clip_gradient >= 0, else rescale_grad * grad.
//
//   nag_mom_update(weight, grad, mom; lr, momentum=0, wd=0, rescale_grad=1, clip_gradient=-1)
//     m1  = momentum * mom
//     out = weight - m1 + (momentum + 1) * (m1 - lr * (G + wd * weight))
//     mom = m1 - lr * (G + wd * weight')
//   MXNet's kernel assigns the output before it updates mom and reads weight again, so with the
//   usual in-place call (out = weight) weight' is the NEW weight; with a separate output it is
//   the old one. Kiln reproduces both.
//
//   signsgd_update(weight, grad; lr, wd=0, rescale_grad=1, clip_gradient=-1)
//     out = (1 - lr * wd) * weight - lr * sign(grad)          (rescale and clip have no effect)
//
//   signum_update(weight, grad, mom; lr, momentum=0, wd=0, rescale_grad=1, clip_gradient=-1, wd_lh=0)
//     mom = momentum * mom - (1 - momentum) * wd * weight - (1 - momentum) * G
//     out = (1 - lr * wd_lh) * weight + lr * sign(mom)
//
// States (mom) are mutated in place (mutate_inputs) whatever the output request; the output
// aliases weight (in-place pair weight -> output). Shapes: every input and the output: [n].
// MXNet's CPU build does not contract a * b + c into fused multiply-adds; neither do these
// kernels (x86-64-v3 has FMA), so every update rounds exactly as MXNet's does.
#pragma GCC optimize("fp-contract=off")

#include <string>
#include <vector>

#include "optimizer_common.h"

namespace kiln {
namespace optim {

namespace {

// in: weight [n], grad [n], mom [n] (mutated); out: new weight [n] (usually aliases weight).
void nag_mom_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr"), wd = gp.wd, momentum = f32_param<T>(attrs, "momentum");
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* m = in[2].dptr<T>();        // mom [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    const bool alias = (const void*)y == (const void*)w;
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const T wi = w[i];
        const T G = gp(g[i]);
        const T m1 = momentum * m[i];
        st(y, i, wi - m1 + (momentum + T(1)) * (m1 - lr * (G + wd * wi)));
        const T w2 = alias ? y[i] : wi;  // MXNet re-reads weight after writing the output
        m[i] = m1 - lr * (G + wd * w2);
      });
    });
  });
}

// in: weight [n], grad [n]; out: new weight [n].
void signsgd_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T lr = f32_param<T>(attrs, "lr"), wd = f32_param<T>(attrs, "wd");
    const T decay = T(1) - lr * wd;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return decay * w[i] - lr * sign(g[i]); });
  });
}

// in: weight [n], grad [n], mom [n] (mutated); out: new weight [n].
void signum_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr"), momentum = f32_param<T>(attrs, "momentum");
    const T om = T(1) - momentum;
    const T om_wd = om * gp.wd;
    const T decay = T(1) - lr * f32_param<T>(attrs, "wd_lh");
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* m = in[2].dptr<T>();        // mom [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const T wi = w[i];
        // MXNet: with clipping (1-momentum) * clip(rescale*grad), without ((1-momentum)*rescale) * grad
        const T mi = momentum * m[i] - om_wd * wi - gp.scaled(om, g[i]);
        m[i] = mi;
        st(y, i, decay * wi + lr * sign(mi));
      });
    });
  });
}

}  // namespace

void register_momentum_ops(OpRegistry& reg) {
  reg.add(update_op("nag_mom_update",
                    "Update function for Nesterov Accelerated Gradient (NAG) optimizer: mom = momentum * mom; "
                    "weight = weight - mom + (momentum + 1) * (mom - lr * (grad + wd * weight)); "
                    "mom = mom - lr * (grad + wd * weight).",
                    grad_params({lr_param(), momentum_param()}), {"weight", "grad", "mom"}, {2}, nag_mom_update_cpu));
  reg.add(update_op("signsgd_update",
                    "Update function for SignSGD optimizer: weight = (1 - lr * wd) * weight - lr * sign(grad). "
                    "rescale_grad and clip_gradient have no effect.",
                    grad_params({lr_param()}), {"weight", "grad"}, {}, signsgd_update_cpu));
  reg.add(update_op("signum_update",
                    "SIGN momentUM (Signum) optimizer: mom = momentum * mom - (1 - momentum) * (wd * weight + "
                    "grad); weight = (1 - lr * wd_lh) * weight + lr * sign(mom).",
                    grad_params({lr_param(), momentum_param()},
                                {fparam("wd_lh", "0",
                                        "The amount of weight decay that does not go into gradient/momentum calculations "
                                        "otherwise do weight decay algorithmically only.")}),
                    {"weight", "grad", "mom"}, {2}, signum_update_cpu));
}

}  // namespace optim
}  // namespace kiln
