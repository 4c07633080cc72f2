// SGD update operators (MXNet src/operator/optimizer_op*): dense kernels, not differentiable.
//
//   sgd_update(weight, grad; lr, wd=0, rescale_grad=1, clip_gradient=-1, lazy_update=True)
//     g = clip(rescale_grad * grad, clip_gradient)
//     out = (1 - lr*wd) * weight - lr * g                       (= weight - lr*(g + wd*weight))
//
//   sgd_mom_update(weight, grad, mom; lr, momentum=0, wd=0, rescale_grad=1, clip_gradient=-1,
//                  lazy_update=True)
//     mom = momentum*mom - lr*wd*weight - lr*g                  (mom is mutated in place)
//     out = weight + mom
//
// clip(v, c) = max(min(v, c), -c) when c >= 0; c < 0 turns clipping off (MXNet tests
// clip_gradient >= 0, so 0 clips every gradient to 0). The parameters are float32 in MXNet and
// are applied as DType(float(param)), in MXNet's operation order. lazy_update only matters for
// row_sparse gradients, which Kiln does not have; it is accepted and ignored.
// The output aliases weight (in-place pair weight -> output): the usual call writes the new
// weight over the old one. Shapes: weight, grad, mom, out: [n].
// MXNet's CPU build does not contract a * b + c into fused multiply-adds; neither do these
// kernels (x86-64-v3 has FMA), so every update rounds exactly as MXNet's does.
#pragma GCC optimize("fp-contract=off")

#include <string>
#include <vector>

#include "optimizer_common.h"

namespace kiln {
namespace optim {

namespace {

// in: weight [n], grad [n]; out: new weight [n] (usually aliases weight).
void sgd_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr"), decay = T(1) - lr * gp.wd;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return decay * w[i] - gp.scaled(lr, g[i]); });
  });
}

// in: weight [n], grad [n], mom [n] (mutated); out: new weight [n] (usually aliases weight).
void sgd_mom_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr"), wd = gp.wd, momentum = f32_param<T>(attrs, "momentum");
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* m = in[2].dptr<T>();        // mom [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const T wi = w[i];
        const T mi = momentum * m[i] - lr * wd * wi - gp.scaled(lr, g[i]);
        m[i] = mi;
        st(y, i, wi + mi);
      });
    });
  });
}

}  // namespace
}  // namespace optim

// Every optimizer update operator: the SGD pair here, the others in the files of this directory.
void register_optimizer_ops(OpRegistry& reg) {
  using namespace optim;
  register_momentum_ops(reg);
  register_adaptive_ops(reg);
  register_mixed_precision_ops(reg);
  register_kiln_optimizer_ops(reg);
  // MXNet registers sgd_update and sgd_mom_update without input names (its monitor: input0, ...)
  OpDef sgd = update_op("sgd_update",
                    "Update function for Stochastic Gradient Descent (SGD) optimizer: "
                    "weight = weight - lr * (rescale_grad * grad + wd * weight), gradient clipped when "
                    "clip_gradient >= 0.",
                    grad_params({lr_param()}, {lazy_param()}), {"weight", "grad"}, {}, sgd_update_cpu);
  sgd.mxnet_unnamed_inputs = true;
  reg.add(std::move(sgd));
  OpDef mom = update_op("sgd_mom_update",
                    "Momentum update function for Stochastic Gradient Descent (SGD) optimizer: "
                    "mom = momentum * mom - lr * (rescale_grad * grad + wd * weight); weight = weight + mom.",
                    grad_params({lr_param(), momentum_param()}, {lazy_param()}), {"weight", "grad", "mom"}, {2},
                    sgd_mom_update_cpu);
  mom.mxnet_unnamed_inputs = true;
  reg.add(std::move(mom));
}

}  // namespace kiln
