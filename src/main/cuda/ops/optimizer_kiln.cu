// GPU kernels of Kiln's fused updates for MXNet's Python optimizers (CPU: src/main/cpp/ops/optimizer/
// kiln_updates.cc): _kiln_adagrad_update, _kiln_adadelta_update, _kiln_adamax_update,
// _kiln_nadam_update. float32/float64; the hyper-parameters are doubles combined on the host in
// double and applied as DType(value), as the CPU kernels do; the formulas keep the CPU kernels'
// operation order (see optimizer_common.cuh for the rounding). States (and AdaDelta's grad) are
// mutated in place whatever the request. Shapes: every input and the output: [n].
#include <cmath>
#include <vector>

#include "ops/optimizer_common.cuh"

namespace kiln {
namespace cuda {
namespace optim {
namespace {

template <typename T>
inline T sc(double v) {  // a Python float applied by a scalar NDArray op: DType(value)
  return static_cast<T>(v);
}

// G = clip(rescale * grad); history += G^2; out = weight + (G / sqrt(history + eps) + weight * wd) * -lr
template <typename T>
struct Adagrad {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* h;        // history: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T neg_lr, wd, eps;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F G = gp(g[i]);
    const F hi = F(h[i]) + G * G;
    h[i] = hi.v;
    const F s = nc_sqrt(hi + F(eps));
    const F wi = w[i];
    st(y, i, (wi + (G / s + wi * F(wd)) * F(neg_lr)).v);
  }
};

// grad *= rescale (in place); G = clip(grad); acc_g = acc_g * rho + (1 - rho) * G^2;
// d = sqrt(acc_delta + eps) / sqrt(acc_g + eps) * G; acc_delta = acc_delta * rho + (1 - rho) * d^2;
// out = weight - (d + wd * weight)
template <typename T>
struct Adadelta {
  const T* w;  // weight: [n]
  T* g;        // grad: [n], overwritten with rescale_grad * grad
  T* ag;       // acc_g: [n], mutated
  T* ad;       // acc_delta: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T rho, orho, wd, eps;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F gi = F(g[i]) * F(gp.rescale);
    const F G = gp.clipped(gi);
    const F agi = F(ag[i]) * F(rho) + F(orho) * G * G;
    ag[i] = agi.v;
    const F adi = ad[i];
    const F d = nc_sqrt(adi + F(eps)) / nc_sqrt(agi + F(eps)) * G;
    ad[i] = (adi * F(rho) + F(orho) * d * d).v;
    g[i] = gi.v;
    const F wi = w[i];
    st(y, i, (wi - (d + F(wd) * wi)).v);
  }
};

// G = clip(rescale * grad + wd * weight); m = m * b1 + (1 - b1) * G; u = max(b2 * u, |G|);
// out = weight - lr_t * m / u
template <typename T>
struct Adamax {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* m;        // m: [n], mutated
  T* u;        // u: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T lr_t, b1, ob1, b2;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F G = gp(g[i], wi);
    const F mi = F(m[i]) * F(b1) + F(ob1) * G;
    const F a = F(b2) * F(u[i]), ag = nc_abs(G);
    const F ui = a > ag ? a : ag;  // NDArray maximum
    m[i] = mi.v;
    u[i] = ui.v;
    st(y, i, (wi - F(lr_t) * mi / ui).v);
  }
};

// G = clip(rescale * grad + wd * weight); m = m * b1 + (1 - b1) * G; v = v * b2 + (1 - b2) * G^2;
// m_bar = (1 - momentum_t) * G / gcorr + momentum_t_1 * m / mcorr;
// out = weight - lr * m_bar / (sqrt(v / vcorr) + eps)
template <typename T>
struct Nadam {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* m;        // m: [n], mutated
  T* v;        // v: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T lr, eps, b1, ob1, b2, ob2, gcorr, mcorr, vcorr, omt, mt1;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F G = gp(g[i], wi);
    const F mi = F(m[i]) * F(b1) + F(ob1) * G;
    const F vi = F(v[i]) * F(b2) + F(ob2) * G * G;
    m[i] = mi.v;
    v[i] = vi.v;
    const F s = nc_sqrt(vi / F(vcorr));
    const F mbar = F(omt) * (G / F(gcorr)) + F(mt1) * (mi / F(mcorr));
    st(y, i, (wi - F(lr) * mbar / (s + F(eps))).v);
  }
};

// in: weight [n], grad [n], history [n] (mutated); out: new weight [n].
void adagrad_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                    const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_kiln_adagrad_update";
  check_update(name, in, 3, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const auto gp = GradPrep<T>::python(attrs);
    Adagrad<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), gp,
                  sc<T>(-attrs.f("lr")), gp.wd, sc<T>(attrs.f("epsilon"))};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n] (rescaled in place), acc_g [n], acc_delta [n] (mutated); out: new weight [n].
void adadelta_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                     const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_kiln_adadelta_update";
  check_update(name, in, 4, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const auto gp = GradPrep<T>::python(attrs);
    const double rho_d = attrs.f("rho");
    Adadelta<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(), gp,
                   sc<T>(rho_d), sc<T>(1. - rho_d), gp.wd, sc<T>(attrs.f("epsilon"))};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n], m [n], u [n] (mutated); out: new weight [n].
void adamax_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                   const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_kiln_adamax_update";
  check_update(name, in, 4, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const double b1d = attrs.f("beta1");
    const T lr_t = sc<T>(attrs.f("lr") / (1. - std::pow(b1d, (double)attrs.i("t"))));
    Adamax<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(),
                 GradPrep<T>::python(attrs), lr_t, sc<T>(b1d), sc<T>(1. - b1d), sc<T>(attrs.f("beta2"))};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n], m [n], v [n] (mutated); out: new weight [n].
void nadam_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                  const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "_kiln_nadam_update";
  check_update(name, in, 4, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const double b1d = attrs.f("beta1"), b2d = attrs.f("beta2");
    const double t = (double)attrs.i("t");
    const double mt = attrs.f("momentum_t"), mt1 = attrs.f("momentum_t_1"), ms = attrs.f("m_schedule");
    const double ms_next = ms * mt1;
    Nadam<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(),
                GradPrep<T>::python(attrs), sc<T>(attrs.f("lr")), sc<T>(attrs.f("epsilon")), sc<T>(b1d),
                sc<T>(1. - b1d), sc<T>(b2d), sc<T>(1. - b2d), sc<T>(1. - ms), sc<T>(1. - ms_next),
                sc<T>(1. - std::pow(b2d, t)), sc<T>(1. - mt), sc<T>(mt1)};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

}  // namespace

void register_kiln_updates_gpu(OpRegistry& r) {
  set_gpu(r, "_kiln_adagrad_update", adagrad_update);
  set_gpu(r, "_kiln_adadelta_update", adadelta_update);
  set_gpu(r, "_kiln_adamax_update", adamax_update);
  set_gpu(r, "_kiln_nadam_update", nadam_update);
}

}  // namespace optim
}  // namespace cuda
}  // namespace kiln
