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

#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"
#include "optimizer_common.h"

namespace kiln {

namespace {

using InplacePairs = std::vector<std::pair<int, int>>;

template <typename T>
inline T clip_grad(T v, T c) {
  return v > c ? c : (v < -c ? -c : v);
}

// in: weight [n], grad [n]; out: new weight [n] (usually aliases weight).
void sgd_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T lr = simd::float_param<T>(attrs.f("lr")), wd = simd::float_param<T>(attrs.f("wd"));
    const T rescale = simd::float_param<T>(attrs.f("rescale_grad"));
    const T clip = simd::float_param<T>(attrs.f("clip_gradient"));
    const T decay = T(1) - lr * wd;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* y = out[0].dptr<T>();       // [n]
    const int64_t n = out[0].size();
    if (clip >= T(0)) {
      simd::map(n, req[0], y, [=](int64_t i) { return decay * w[i] - lr * clip_grad(rescale * g[i], clip); });
    } else {
      const T lr_rescale = lr * rescale;  // MXNet's order without clipping: (lr * rescale_grad) * grad
      simd::map(n, req[0], y, [=](int64_t i) { return decay * w[i] - lr_rescale * g[i]; });
    }
  });
}

// in: weight [n], grad [n], mom [n] (updated in place); out: new weight [n] (usually aliases weight).
void sgd_mom_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T lr = simd::float_param<T>(attrs.f("lr")), wd = simd::float_param<T>(attrs.f("wd"));
    const T momentum = simd::float_param<T>(attrs.f("momentum"));
    const T rescale = simd::float_param<T>(attrs.f("rescale_grad"));
    const T clip = simd::float_param<T>(attrs.f("clip_gradient"));
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* m = in[2].dptr<T>();        // mom [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    const int64_t n = out[0].size();
    const OpReq r = req[0];
    // The momentum is always updated (it is state, not an output); the weight honours req.
    // Operation order as MXNet's SGDMomKernel: with clipping lr * clip(rescale * grad), without
    // it (lr * rescale) * grad.
    const bool clipping = clip >= T(0);
    const T lr_rescale = lr * rescale;
    auto step = [=](int64_t i, auto store) {
      const T wi = w[i];
      const T lg = clipping ? lr * clip_grad(rescale * g[i], clip) : lr_rescale * g[i];
      const T mi = momentum * m[i] - lr * wd * wi - lg;
      m[i] = mi;
      store(i, wi + mi);
    };
    if (r == OpReq::kNullOp) {
      simd::parallel_for(n, [=](int64_t i) { step(i, [](int64_t, T) {}); });
    } else if (r == OpReq::kAddTo) {
      simd::parallel_for(n, [=](int64_t i) { step(i, [y](int64_t j, T v) { y[j] += v; }); });
    } else {
      simd::parallel_for(n, [=](int64_t i) { step(i, [y](int64_t j, T v) { y[j] = v; }); });
    }
  });
}

ParamDef fparam(const std::string& name, const std::string& def, const std::string& desc) {
  ParamDef p;
  p.name = name;
  p.type = ParamType::kFloat;
  p.default_value = def;
  p.description = desc;
  return p;
}

std::vector<ParamDef> sgd_params(bool with_momentum) {
  std::vector<ParamDef> ps;
  ps.push_back(fparam("lr", "", "Learning rate"));
  if (with_momentum) ps.push_back(fparam("momentum", "0", "The decay rate of momentum estimates at each epoch."));
  ps.push_back(fparam("wd", "0",
                      "Weight decay augments the objective function with a regularization term that penalizes "
                      "large weights. The penalty scales with the square of the magnitude of each weight."));
  ps.push_back(fparam("rescale_grad", "1", "Rescale gradient to grad = rescale_grad*grad."));
  ps.push_back(fparam("clip_gradient", "-1",
                      "Clip gradient to the range of [-clip_gradient, clip_gradient] If clip_gradient <= 0, "
                      "gradient clipping is turned off. grad = max(min(grad, clip_gradient), -clip_gradient)."));
  ParamDef lazy;
  lazy.name = "lazy_update";
  lazy.type = ParamType::kBool;
  lazy.default_value = "True";
  lazy.description = "If true, lazy updates are applied if gradient's stype is row_sparse.";
  ps.push_back(lazy);
  return ps;
}

}  // namespace

// Every optimizer update operator: the SGD pair here, the others in the files of this directory.
void register_optimizer_ops(OpRegistry& reg) {
  optim::register_momentum_ops(reg);
  optim::register_adaptive_ops(reg);
  optim::register_mixed_precision_ops(reg);
  optim::register_kiln_optimizer_ops(reg);
  {
    OpDef d;
    d.name = "sgd_update";
    d.description = "Update function for Stochastic Gradient Descent (SGD) optimizer: "
                    "weight = weight - lr * (rescale_grad * grad + wd * weight), gradient clipped when "
                    "clip_gradient >= 0.";
    d.params = sgd_params(false);
    d.input_names_ = {"weight", "grad"};
    d.output_names_ = {"output"};
    d.infer_shape = infer_same_shape;
    d.cpu = sgd_update_cpu;
    d.non_differentiable = true;
    d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}}; };
    reg.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "sgd_mom_update";
    d.description = "Momentum update function for Stochastic Gradient Descent (SGD) optimizer: "
                    "mom = momentum * mom - lr * (rescale_grad * grad + wd * weight); weight = weight + mom.";
    d.params = sgd_params(true);
    d.input_names_ = {"weight", "grad", "mom"};
    d.output_names_ = {"output"};
    d.mutate_inputs = [](const Attrs&) { return std::vector<int>{2}; };
    d.infer_shape = infer_same_shape;
    d.cpu = sgd_mom_update_cpu;
    d.non_differentiable = true;
    d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}}; };
    reg.add(std::move(d));
  }
}

}  // namespace kiln
