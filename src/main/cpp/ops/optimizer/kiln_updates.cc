// Kiln-internal fused update operators for the optimizers that MXNet 1.9.1 implements in Python
// with NDArray arithmetic (python/mxnet/optimizer/optimizer.py), so that they too run as one
// native kernel per parameter (and inside FusedUpdate). They are not MXNet operators: the
// leading underscore and the _kiln_ prefix keep them out of MXNet's name space. Dense,
// float32/float64, not differentiable.
//
// Scalars follow the Python code: every hyper-parameter is a double, combined in double
// ((1 - beta1), lr / (1 - beta1^t), ...) and applied to the data as DType(value), as MXNet's
// scalar NDArray operators do. clip_gradient >= 0 clips to [-clip_gradient, clip_gradient];
// a negative value turns clipping off. (The Python optimizers below clip whenever clip_gradient
// is not None, so 0 clips every gradient to 0: callers pass -1 for None.) Operation order is
// that of the Python code.
//
//   _kiln_adagrad_update(weight, grad, history; lr, epsilon=1e-7, wd=0, rescale_grad=1, clip_gradient=-1)
//     G = clip(rescale_grad * grad);  history += G^2
//     out = weight + (G / sqrt(history + epsilon) + weight * wd) * -lr
//
//   _kiln_adadelta_update(weight, grad, acc_g, acc_delta; rho=0.9, epsilon=1e-5, wd=0,
//                         rescale_grad=1, clip_gradient=-1)             (AdaDelta has no learning rate)
//     grad *= rescale_grad  (IN PLACE: MXNet's AdaDelta rescales the gradient buffer itself)
//     G = clip(grad);  acc_g = acc_g * rho + (1 - rho) * G^2
//     d = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * G
//     acc_delta = acc_delta * rho + (1 - rho) * d^2;  out = weight - (d + wd * weight)
//
//   _kiln_adamax_update(weight, grad, m, u; lr, t, beta1=0.9, beta2=0.999, wd=0, rescale_grad=1,
//                       clip_gradient=-1)
//     lr_t = lr / (1 - beta1^t);  G = clip(rescale_grad * grad + wd * weight)
//     m = m * beta1 + (1 - beta1) * G;  u = max(beta2 * u, |G|);  out = weight - lr_t * m / u
//
//   _kiln_nadam_update(weight, grad, m, v; lr, t, momentum_t, momentum_t_1, m_schedule,
//                      beta1=0.9, beta2=0.999, epsilon=1e-8, wd=0, rescale_grad=1, clip_gradient=-1)
//     The caller keeps Nadam's schedule (one scalar per optimizer, updated on every call):
//       momentum_t   = beta1 * (1 - 0.5 * 0.96^(t * schedule_decay))
//       momentum_t_1 = beta1 * (1 - 0.5 * 0.96^((t + 1) * schedule_decay))
//       m_schedule   = m_schedule_before * momentum_t          (the value after this update)
//     G = clip(rescale_grad * grad + wd * weight)
//     m = m * beta1 + (1 - beta1) * G;  v = v * beta2 + (1 - beta2) * G^2
//     g' = G / (1 - m_schedule);  m' = m / (1 - m_schedule * momentum_t_1);  v' = v / (1 - beta2^t)
//     m_bar = (1 - momentum_t) * g' + momentum_t_1 * m'
//     out = weight - lr * m_bar / (sqrt(v') + epsilon)
//
// States are mutated in place (mutate_inputs); the output aliases weight (in-place pair
// weight -> output). Shapes: every input and the output: [n].
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

template <typename T>
inline T sc(double v) {  // a Python float applied by a scalar NDArray op: DType(value)
  return static_cast<T>(v);
}

// in: weight [n], grad [n], history [n] (mutated); out: new weight [n].
void adagrad_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::python(attrs);
    const T neg_lr = sc<T>(-attrs.f("lr")), wd = gp.wd, eps = sc<T>(attrs.f("epsilon"));
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* h = in[2].dptr<T>();        // history [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 1>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T*) {
          const T G = gp(g[i]);
          const T hi = h[i] + G * G;
          h[i] = hi;
          *r0 = hi + eps;
        },
        [=](int64_t i, T s, T) {
          const T wi = w[i];
          return wi + (gp(g[i]) / s + wi * wd) * neg_lr;
        });
  });
}

// in: weight [n], grad [n] (rescaled in place), acc_g [n], acc_delta [n] (mutated); out: new weight [n].
void adadelta_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::python(attrs);
    const double rho_d = attrs.f("rho");
    const T rho = sc<T>(rho_d), orho = sc<T>(1. - rho_d);
    const T wd = gp.wd, eps = sc<T>(attrs.f("epsilon"));
    const T* w = in[0].dptr<T>();  // weight [n]
    T* g = in[1].dptr<T>();        // grad [n], overwritten with rescale_grad * grad
    T* ag = in[2].dptr<T>();       // acc_g [n], mutated
    T* ad = in[3].dptr<T>();       // acc_delta [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 2>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T* r1) {
          const T G = gp(g[i]);
          const T agi = ag[i] * rho + orho * G * G;
          ag[i] = agi;
          *r0 = ad[i] + eps;
          *r1 = agi + eps;
        },
        [=](int64_t i, T s_delta, T s_g) {
          const T gi = g[i] * gp.rescale;
          const T d = s_delta / s_g * gp.clipped(gi);
          ad[i] = ad[i] * rho + orho * d * d;
          g[i] = gi;
          const T wi = w[i];
          return wi - (d + wd * wi);
        });
  });
}

// in: weight [n], grad [n], m [n], u [n] (mutated); out: new weight [n].
void adamax_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::python(attrs);
    const double b1d = attrs.f("beta1");
    const T lr_t = sc<T>(attrs.f("lr") / (1. - std::pow(b1d, (double)attrs.i("t"))));
    const T b1 = sc<T>(b1d), ob1 = sc<T>(1. - b1d), b2 = sc<T>(attrs.f("beta2"));
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* m = in[2].dptr<T>();        // m [n], mutated
    T* u = in[3].dptr<T>();        // u [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const T wi = w[i];
        const T G = gp(g[i], wi);
        const T mi = m[i] * b1 + ob1 * G;
        const T a = b2 * u[i], ag = std::fabs(G);
        const T ui = a > ag ? a : ag;  // NDArray maximum
        m[i] = mi;
        u[i] = ui;
        st(y, i, wi - lr_t * mi / ui);
      });
    });
  });
}

// in: weight [n], grad [n], m [n], v [n] (mutated); out: new weight [n].
void nadam_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
               const std::vector<TBlob>& out) {
  float_switch(out[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const auto gp = GradPrep<T>::python(attrs);
    const double b1d = attrs.f("beta1"), b2d = attrs.f("beta2");
    const double t = (double)attrs.i("t");
    const double mt = attrs.f("momentum_t"), mt1 = attrs.f("momentum_t_1"), ms = attrs.f("m_schedule");
    const double ms_next = ms * mt1;
    const T lr = sc<T>(attrs.f("lr")), eps = sc<T>(attrs.f("epsilon"));
    const T b1 = sc<T>(b1d), ob1 = sc<T>(1. - b1d), b2 = sc<T>(b2d), ob2 = sc<T>(1. - b2d);
    const T gcorr = sc<T>(1. - ms), mcorr = sc<T>(1. - ms_next), vcorr = sc<T>(1. - std::pow(b2d, t));
    const T omt = sc<T>(1. - mt), mt1_t = sc<T>(mt1);
    const T* w = in[0].dptr<T>();  // weight [n]
    const T* g = in[1].dptr<T>();  // grad [n]
    T* m = in[2].dptr<T>();        // m [n], mutated
    T* v = in[3].dptr<T>();        // v [n], mutated
    T* y = out[0].dptr<T>();       // [n]
    sqrt_update<T, 1>(
        req[0], y, out[0].size(),
        [=](int64_t i, T* r0, T*) {
          const T G = gp(g[i], w[i]);
          m[i] = m[i] * b1 + ob1 * G;
          const T vi = v[i] * b2 + ob2 * G * G;
          v[i] = vi;
          *r0 = vi / vcorr;
        },
        [=](int64_t i, T s, T) {
          const T gp_i = gp(g[i], w[i]) / gcorr;
          const T mp = m[i] / mcorr;
          const T mbar = omt * gp_i + mt1_t * mp;
          return w[i] - lr * mbar / (s + eps);
        });
  });
}

ParamDef t_param() { return iparam("t", "", "Update count of this parameter (1 on the first update)."); }

}  // namespace

// Each operator takes wd, rescale_grad and clip_gradient after its own parameters.
void register_kiln_optimizer_ops(OpRegistry& reg) {
  reg.add(update_op("_kiln_adagrad_update",
                    "Kiln: dense AdaGrad update (MXNet's Python AdaGrad): grad = clip(rescale_grad * grad); "
                    "history += grad^2; weight -= lr * (grad / sqrt(history + epsilon) + wd * weight).",
                    grad_params({lr_param(),
                                 fparam("epsilon", "1e-07", "Small constant added to the history before the square root.")}),
                    {"weight", "grad", "history"}, {2}, adagrad_cpu));
  reg.add(update_op("_kiln_adadelta_update",
                    "Kiln: AdaDelta update (MXNet's Python AdaDelta; no learning rate). Rescales grad IN PLACE "
                    "(grad *= rescale_grad) as MXNet does; acc_g = rho * acc_g + (1 - rho) * g^2; "
                    "d = sqrt(acc_delta + epsilon) / sqrt(acc_g + epsilon) * g; acc_delta = rho * acc_delta + "
                    "(1 - rho) * d^2; weight -= d + wd * weight.",
                    grad_params({fparam("rho", "0.9", "Decay rate for both squared gradients and delta."),
                                 fparam("epsilon", "1e-05", "Small value to avoid division by 0.")}),
                    {"weight", "grad", "acc_g", "acc_delta"}, {1, 2, 3}, adadelta_cpu));
  reg.add(update_op("_kiln_adamax_update",
                    "Kiln: Adamax update (MXNet's Python Adamax): grad = clip(rescale_grad * grad + wd * weight); "
                    "m = beta1 * m + (1 - beta1) * grad; u = max(beta2 * u, |grad|); "
                    "weight -= lr / (1 - beta1^t) * m / u.",
                    grad_params({lr_param(), t_param(),
                                 fparam("beta1", "0.9", "Exponential decay rate for the first moment estimates."),
                                 fparam("beta2", "0.999", "Exponential decay rate for the exponentially weighted infinity norm.")}),
                    {"weight", "grad", "m", "u"}, {2, 3}, adamax_cpu));
  reg.add(update_op("_kiln_nadam_update",
                    "Kiln: Nadam update (MXNet's Python Nadam) with the momentum schedule supplied by the caller: "
                    "m_bar = (1 - momentum_t) * grad / (1 - m_schedule) + momentum_t_1 * m / (1 - m_schedule * "
                    "momentum_t_1); weight -= lr * m_bar / (sqrt(v / (1 - beta2^t)) + epsilon).",
                    grad_params({lr_param(), t_param(),
                                 fparam("momentum_t", "", "beta1 * (1 - 0.5 * 0.96^(t * schedule_decay)), computed by the caller."),
                                 fparam("momentum_t_1", "",
                                        "beta1 * (1 - 0.5 * 0.96^((t + 1) * schedule_decay)), computed by the caller."),
                                 fparam("m_schedule", "",
                                        "The optimizer's running product of momentum_t values, including this update's."),
                                 fparam("beta1", "0.9", "Exponential decay rate for the first moment estimates."),
                                 fparam("beta2", "0.999", "Exponential decay rate for the second moment estimates."),
                                 fparam("epsilon", "1e-08", "Small value to avoid division by 0.")}),
                    {"weight", "grad", "m", "v"}, {2, 3}, nadam_cpu));
}

}  // namespace optim
}  // namespace kiln
