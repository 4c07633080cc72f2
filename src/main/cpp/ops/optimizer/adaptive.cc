// Adaptive-rate update operators (MXNet 1.9.1 src/operator/optimizer_op-inl.h): dense kernels,
// not differentiable, float32/float64. Parameters are float32 in MXNet (applied as
// DType(float(param))) except ftml_update's epsilon (double) and the int update counts t; every
// formula keeps MXNet's operation order. clip(x) = clip(x, clip_gradient) when clip_gradient >= 0,
// else x. States are mutated in place (mutate_inputs) whatever the output request.
//
//   adam_update(weight, grad, mean, var; lr, beta1=0.9, beta2=0.999, epsilon=1e-8, wd=0,
//               rescale_grad=1, clip_gradient=-1, lazy_update=True)
//     G = clip(grad * rescale_grad + weight * wd)
//     mean = beta1 * mean + (1 - beta1) * G;  var = beta2 * var + (1 - beta2) * G * G
//     out = weight - lr * mean / (sqrt(var) + epsilon)        (lr already bias-corrected by the caller)
//
//   rmsprop_update(weight, grad, n; lr, gamma1=0.95, epsilon=1e-8, wd=0, rescale_grad=1,
//                  clip_gradient=-1, clip_weights=-1)
//     G = clip(rescale_grad * grad + wd * weight);  n = (1 - gamma1) * G^2 + gamma1 * n
//     out = weight - lr * (G / sqrt(n + epsilon)), clipped to +-clip_weights when clip_weights >= 0
//
//   rmspropalex_update(weight, grad, n, g, delta; lr, gamma1=0.95, gamma2=0.9, epsilon=1e-8, wd=0,
//                      rescale_grad=1, clip_gradient=-1, clip_weights=-1)
//     G as rmsprop;  n = (1 - gamma1) * G * G + gamma1 * n;  g = (1 - gamma1) * G + gamma1 * g
//     delta = gamma2 * delta - lr * G / sqrt(n - g * g + epsilon)
//     out = weight + delta (clipped to +-clip_weights when clip_weights >= 0)
//
//   ftrl_update(weight, grad, z, n; lr, lamda1=0.01, beta=1, wd=0, rescale_grad=1, clip_gradient=-1)
//     G = clip(grad * rescale_grad)
//     z += G - (sqrt(n + G^2) - sqrt(n)) * weight / lr;  n += G^2
//     out = (sign(z) * lamda1 - z) / ((beta + sqrt(n)) / lr + wd) * (|z| > lamda1)
//
//   ftml_update(weight, grad, d, v, z; lr, beta1=0.6, beta2=0.999, epsilon=1e-8 (double), t,
//               wd=0, rescale_grad=1, clip_grad=-1)
//     G = clip(rescale_grad * grad + wd * weight, clip_grad);  v = beta2 * v + (1 - beta2) * G^2
//     d_t = (1 - beta1^t) / lr * (sqrt(v / (1 - beta2^t)) + epsilon)
//     z = beta1 * z + (1 - beta1) * G - (d_t - beta1 * d) * weight;  d = d_t;  out = -z / d_t
//
//   lamb_update_phase1(weight, grad, mean, var; beta1=0.9, beta2=0.999, epsilon=1e-6, t,
//                      bias_correction=True, wd, rescale_grad=1, clip_gradient=-1) -> g
//     G = clip(grad * rescale_grad);  mean, var as adam
//     g = mean^ / (sqrt(var^) + epsilon) + wd * weight, with mean^ = mean / (1 - beta1^t) and
//     var^ = var / (1 - beta2^t) under bias_correction, else mean and var
//   lamb_update_phase2(weight, g, r1, r2; lr, lower_bound=-1, upper_bound=-1)
//     r1' = r1 clamped to [lower_bound, upper_bound] (each bound only when >= 0)
//     out = weight - lr * (r1' == 0 || r2 == 0 ? 1 : r1' / r2) * g       (r1, r2: [1], the norms)
//
// The output aliases weight (in-place pair weight -> output) except for lamb_update_phase1,
// whose output is the new array g. Shapes: weight, grad, states, output: [n]; r1, r2: [1].
// MXNet's CPU build does not contract a * b + c into fused multiply-adds; neither do these
// kernels (x86-64-v3 has FMA), so every update rounds exactly as MXNet's does.
#pragma GCC optimize("fp-contract=off")

#include <cmath>
#include <string>
#include <vector>

#include "optimizer_common.h"

namespace kiln {
namespace optim {

namespace {

// in: weight [n], grad [n], mean [n], var [n] (both mutated); out: new weight [n].
void adam_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr"), eps = f32_param<T>(attrs, "epsilon");
    const T b1 = f32_param<T>(attrs, "beta1"), b2 = f32_param<T>(attrs, "beta2");
    const T ob1 = T(1) - b1, ob2 = T(1) - b2;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* mean = in[2].dptr<T>();     // mean [n], mutated
    T* var = in[3].dptr<T>();      // var [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 1>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T*) {
          const T G = gp(g[i], w[i]);
          mean[i] = b1 * mean[i] + ob1 * G;
          const T v = b2 * var[i] + ob2 * G * G;
          var[i] = v;
          *r0 = v;
        },
        [=](int64_t i, T s, T) { return w[i] - lr * mean[i] / (s + eps); });
  });
}

// rmsprop_update and rmspropalex_update: with clip_weights >= 0 the new weight is clipped.
template <typename T>
struct RmsWeightClip {
  T bound;
  bool on;
  explicit RmsWeightClip(const Attrs& a) : bound(f32_param<T>(a, "clip_weights")), on(bound >= T(0)) {}
  T operator()(T w) const { return on ? clip(w, bound) : w; }
};

// in: weight [n], grad [n], n [n] (mutated); out: new weight [n].
void rmsprop_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const RmsWeightClip<T> clip_w(attrs);
    const T lr = f32_param<T>(attrs, "lr"), eps = f32_param<T>(attrs, "epsilon");
    const T g1 = f32_param<T>(attrs, "gamma1"), og1 = T(1) - g1;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* sn = in[2].dptr<T>();       // n [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 1>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T*) {
          const T G = gp(g[i], w[i]);
          const T v = og1 * (G * G) + g1 * sn[i];
          sn[i] = v;
          *r0 = v + eps;
        },
        [=](int64_t i, T s, T) { return clip_w(w[i] - lr * (gp(g[i], w[i]) / s)); });
  });
}

// in: weight [n], grad [n], n [n], g [n], delta [n] (states mutated); out: new weight [n].
void rmspropalex_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                            const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const RmsWeightClip<T> clip_w(attrs);
    const T lr = f32_param<T>(attrs, "lr"), eps = f32_param<T>(attrs, "epsilon");
    const T g1 = f32_param<T>(attrs, "gamma1"), g2 = f32_param<T>(attrs, "gamma2"), og1 = T(1) - g1;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* sn = in[2].dptr<T>();       // n [n], mutated
    T* sg = in[3].dptr<T>();       // g [n], mutated
    T* delta = in[4].dptr<T>();    // delta [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 1>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T*) {
          const T G = gp(g[i], w[i]);
          const T nv = og1 * G * G + g1 * sn[i];
          const T gv = og1 * G + g1 * sg[i];
          sn[i] = nv;
          sg[i] = gv;
          *r0 = nv - gv * gv + eps;
        },
        [=](int64_t i, T s, T) {
          const T d = g2 * delta[i] - (lr * gp(g[i], w[i]) / s);
          delta[i] = d;
          return clip_w(w[i] + d);
        });
  });
}

// in: weight [n], grad [n], z [n], n [n] (states mutated); out: new weight [n].
void ftrl_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr"), wd = gp.wd;
    const T l1 = f32_param<T>(attrs, "lamda1"), beta = f32_param<T>(attrs, "beta");
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* z = in[2].dptr<T>();        // z [n], mutated
    T* sn = in[3].dptr<T>();       // n [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 2>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T* r1) {
          const T G = gp(g[i]);
          *r0 = sn[i] + G * G;  // the new n: its root serves both z and the output
          *r1 = sn[i];
        },
        [=](int64_t i, T s_new, T s_old) {
          const T G = gp(g[i]);
          const T zi = z[i] + (G - (s_new - s_old) * w[i] / lr);
          z[i] = zi;
          sn[i] = sn[i] + G * G;
          const T v = (sign(zi) * l1 - zi) / ((beta + s_new) / lr + wd);
          return std::fabs(zi) > l1 ? v : v * T(0);  // MXNet: v * gt(|z|, lamda1)
        });
  });
}

// in: weight [n], grad [n], d [n], v [n], z [n] (states mutated); out: new weight [n].
void ftml_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs, "clip_grad");
    const T lr = f32_param<T>(attrs, "lr");
    const T b1 = f32_param<T>(attrs, "beta1"), b2 = f32_param<T>(attrs, "beta2");
    const T eps = (T)attrs.f("epsilon");  // a double parameter in MXNet
    const T t = (T)attrs.i("t");
    // MXNet evaluates these per element in DType (powf for float32); they are loop-invariant.
    const T pb1 = std::pow(b1, t), pb2 = std::pow(b2, t);
    const T dscale = (T(1) - pb1) / lr, vcorr = T(1) - pb2;
    const T ob1 = T(1) - b1, ob2 = T(1) - b2;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* d = in[2].dptr<T>();        // d [n], mutated
    T* v = in[3].dptr<T>();        // v [n], mutated
    T* z = in[4].dptr<T>();        // z [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 1>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T*) {
          const T G = gp(g[i], w[i]);
          const T vi = b2 * v[i] + ob2 * (G * G);
          v[i] = vi;
          *r0 = vi / vcorr;
        },
        [=](int64_t i, T s, T) {
          const T G = gp(g[i], w[i]);
          const T d_t = dscale * (s + eps);
          const T zi = b1 * z[i] + ob1 * G - (d_t - b1 * d[i]) * w[i];
          z[i] = zi;
          d[i] = d_t;
          return -zi / d_t;
        });
  });
}

// in: weight [n], grad [n], mean [n], var [n] (both mutated); out: g [n].
void lamb_phase1_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::mxnet(attrs);
    const float b1f = (float)attrs.f("beta1"), b2f = (float)attrs.f("beta2");
    const T b1 = simd::float_param<T>(b1f), b2 = simd::float_param<T>(b2f);
    const T eps = f32_param<T>(attrs, "epsilon"), wd = gp.wd;
    const bool bias = attrs.b("bias_correction");
    const double t = (double)attrs.i("t");
    // MXNet: DType beta1_t = std::pow(param.beta1, param.t) (float, int -> double pow)
    const T b1t = (T)std::pow((double)b1f, t), b2t = (T)std::pow((double)b2f, t);
    const double mcorr = 1. - (double)b1t;  // mean / (1. - beta1_t) is computed in double
    const T vcorr = T(1) - b2t;
    const T ob1 = T(1) - b1, ob2 = T(1) - b2;
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* mean = in[2].dptr<T>();     // mean [n], mutated
    T* var = in[3].dptr<T>();      // var [n], mutated
    T* y = out[0].dptr<T>();       // g [n]
    sqrt_update<T, 1>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T*) {
          const T G = gp(g[i]);
          mean[i] = b1 * mean[i] + ob1 * G;
          const T v = b2 * var[i] + ob2 * G * G;
          var[i] = v;
          *r0 = bias ? v / vcorr : v;
        },
        [=](int64_t i, T s, T) {
          const T m = bias ? (T)((double)mean[i] / mcorr) : mean[i];
          return m / (s + eps) + wd * w[i];
        });
  });
}

// in: weight [n], g [n], r1 [1], r2 [1]; out: new weight [n].
void lamb_phase2_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    T lr = f32_param<T>(attrs, "lr");
    const T lb = f32_param<T>(attrs, "lower_bound"), ub = f32_param<T>(attrs, "upper_bound");
    const T* w = in[0].dptr<T>();   // weight [n]
    const T* gv = in[1].dptr<T>();  // g [n]
    const T r1 = in[2].dptr<T>()[0];  // r1 [1]: norm of weight
    const T r2 = in[3].dptr<T>()[0];  // r2 [1]: norm of g
    T nr1 = r1;
    if (lb >= T(0)) nr1 = nr1 > lb ? nr1 : lb;
    if (ub >= T(0)) nr1 = nr1 < ub ? nr1 : ub;
    lr = (nr1 == T(0) || r2 == T(0)) ? lr * T(1) : lr * nr1 / r2;
    T* y = out[0].dptr<T>();  // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return w[i] - lr * gv[i]; });
  });
}

// weight and g share a shape with the output; r1, r2 hold one value each.
void lamb_phase2_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  std::vector<Shape> head{(*in)[0], (*in)[1]};
  infer_same_shape(a, &head, out);
  (*in)[0] = head[0];
  (*in)[1] = head[1];
  for (int i = 2; i < 4; ++i) {
    const Shape& s = (*in)[i];
    if (s.rank_known() && s.ndim() >= 1 && s[0] >= 0 && s[0] != 1)
      throw InferError(true, i, std::string(i == 2 ? "r1" : "r2") + " shape incorrect: " + s.str() + ", expected (1,)");
    if (s.rank_known() && s.ndim() == 0) throw InferError(true, i, "r" + std::to_string(i - 1) + " must have shape (1,), got ()");
    if (!s.rank_known()) assign_in(in, i, Shape(std::vector<int64_t>{1}));
  }
}

ParamDef eps_param(const std::string& def) { return fparam("epsilon", def, "A small constant for numerical stability."); }
ParamDef beta1_param() { return fparam("beta1", "0.9", "The decay rate for the 1st moment estimates."); }
ParamDef beta2_param() { return fparam("beta2", "0.999", "The decay rate for the 2nd moment estimates."); }

}  // namespace

void register_adaptive_ops(OpRegistry& reg) {
  reg.add(update_op("adam_update",
                    "Update function for Adam optimizer: grad = clip(rescale_grad * grad + wd * weight); "
                    "mean = beta1 * mean + (1 - beta1) * grad; var = beta2 * var + (1 - beta2) * grad^2; "
                    "weight = weight - lr * mean / (sqrt(var) + epsilon).",
                    grad_params({lr_param(), beta1_param(), beta2_param(), eps_param("1e-08")},
                                {lazy_param("If true, lazy updates are applied if gradient's stype is row_sparse and all "
                                            "of w, m and v have the same stype")}),
                    {"weight", "grad", "mean", "var"}, {2, 3}, adam_update_cpu));
  reg.add(update_op("rmsprop_update",
                    "Update function for RMSProp optimizer (Tieleman & Hinton, 2012): n = (1 - gamma1) * grad^2 + "
                    "gamma1 * n; weight = weight - lr * grad / sqrt(n + epsilon).",
                    grad_params({lr_param(), fparam("gamma1", "0.95", "The decay rate of momentum estimates."),
                                 eps_param("1e-08")},
                                {clip_weights_param()}),
                    {"weight", "grad", "n"}, {2}, rmsprop_update_cpu));
  reg.add(update_op("rmspropalex_update",
                    "Update function for RMSPropAlex optimizer (Graves, 2013): n = (1 - gamma1) * grad^2 + gamma1 * n; "
                    "g = (1 - gamma1) * grad + gamma1 * g; delta = gamma2 * delta - lr * grad / "
                    "sqrt(n - g^2 + epsilon); weight = weight + delta.",
                    grad_params({lr_param(), fparam("gamma1", "0.95", "Decay rate."), fparam("gamma2", "0.9", "Decay rate."),
                                 eps_param("1e-08")},
                                {clip_weights_param()}),
                    {"weight", "grad", "n", "g", "delta"}, {2, 3, 4}, rmspropalex_update_cpu));
  reg.add(update_op("ftrl_update",
                    "Update function for Ftrl optimizer: z += grad - (sqrt(n + grad^2) - sqrt(n)) * weight / lr; "
                    "n += grad^2; weight = (sign(z) * lamda1 - z) / ((beta + sqrt(n)) / lr + wd) * (|z| > lamda1).",
                    grad_params({lr_param(), fparam("lamda1", "0.01", "The L1 regularization coefficient."),
                                 fparam("beta", "1", "Per-Coordinate Learning Rate beta.")}),
                    {"weight", "grad", "z", "n"}, {2, 3}, ftrl_update_cpu));
  // ftml_update names its clip bound clip_grad.
  reg.add(update_op("ftml_update",
                    "The FTML optimizer (Follow the Moving Leader): v = beta2 * v + (1 - beta2) * grad^2; "
                    "d_t = (1 - beta1^t) / lr * (sqrt(v / (1 - beta2^t)) + epsilon); "
                    "z = beta1 * z + (1 - beta1) * grad - (d_t - beta1 * d) * weight; d = d_t; weight = -z / d_t.",
                    {lr_param(), fparam("beta1", "0.6", "Generally close to 0.5.", 0, 1),
                     fparam("beta2", "0.999", "Generally close to 1.", 0, 1),
                     fparam("epsilon", "9.9999999392252903e-09", "Epsilon to prevent div 0."),
                     iparam("t", "", "Number of update."), wd_param(), rescale_param(), clip_param("clip_grad")},
                    {"weight", "grad", "d", "v", "z"}, {2, 3, 4}, ftml_update_cpu));
  // lamb_update_phase1 requires wd and writes a new array g (no in-place pair).
  reg.add(update_op("lamb_update_phase1",
                    "Phase I of the LAMB update: mean and var as Adam (without weight decay in the gradient); "
                    "g = mean_hat / (sqrt(var_hat) + epsilon) + wd * weight, bias-corrected when "
                    "bias_correction.",
                    {beta1_param(), beta2_param(), eps_param("1e-06"), iparam("t", "", "Index update count."),
                     bparam("bias_correction", "True", "Whether to use bias correction."), wd_param(""),
                     rescale_param(), clip_param()},
                    {"weight", "grad", "mean", "var"}, {2, 3}, lamb_phase1_cpu, /*inplace=*/false));
  OpDef lamb2 = update_op("lamb_update_phase2",
                          "Phase II of the LAMB update: r1 = clamp(r1, lower_bound, upper_bound); "
                          "weight = weight - lr * (r1 / r2 if both are nonzero, else 1) * g.",
                          {lr_param(),
                           fparam("lower_bound", "-1", "Lower limit of norm of weight. If lower_bound <= 0, Lower limit is not set"),
                           fparam("upper_bound", "-1", "Upper limit of norm of weight. If upper_bound <= 0, Upper limit is not set")},
                          {"weight", "g", "r1", "r2"}, {}, lamb_phase2_cpu);
  lamb2.infer_shape = lamb_phase2_shape;
  reg.add(std::move(lamb2));
}

}  // namespace optim
}  // namespace kiln
