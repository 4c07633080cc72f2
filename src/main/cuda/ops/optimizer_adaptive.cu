// GPU kernels of the adaptive-rate update operators (CPU: src/main/cpp/ops/optimizer/adaptive.cc):
// adam_update, rmsprop_update, rmspropalex_update, ftrl_update, ftml_update, lamb_update_phase1,
// lamb_update_phase2. float32/float64, the CPU kernels' formulas in their operation order (see
// optimizer_common.cuh for the rounding); loop-invariant scalars (powers of beta, corrections) are
// computed on the host as the CPU kernels compute them. States are mutated in place whatever the
// request. Shapes: weight, grad, states, output: [n]; lamb_update_phase2's r1, r2: [1] (read on the
// device by every thread: no host copy).
#include <cmath>
#include <vector>

#include "ops/optimizer_common.cuh"

namespace kiln {
namespace cuda {
namespace optim {
namespace {

// G = clip(rescale * grad + wd * weight); mean = b1 * mean + (1 - b1) * G;
// var = b2 * var + (1 - b2) * G * G; out = weight - lr * mean / (sqrt(var) + eps)
template <typename T>
struct Adam {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* mean;     // mean: [n], mutated
  T* var;      // var: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T lr, eps, b1, b2, ob1, ob2;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F G = gp(g[i], wi);
    const F mi = F(b1) * F(mean[i]) + F(ob1) * G;
    const F v = F(b2) * F(var[i]) + F(ob2) * G * G;
    mean[i] = mi.v;
    var[i] = v.v;
    st(y, i, (wi - F(lr) * mi / (nc_sqrt(v) + F(eps))).v);
  }
};

/// rmsprop(alex)'s clip_weights: the new weight clipped when the bound is >= 0.
template <typename T>
struct WeightClip {
  T bound;
  bool on;
  __device__ __forceinline__ Nc<T> operator()(Nc<T> w) const { return on ? clip(w, Nc<T>(bound)) : w; }
};

template <typename T>
WeightClip<T> weight_clip(const Attrs& a) {
  const T b = f32_param<T>(a, "clip_weights");
  return {b, b >= T(0)};
}

// G = clip(rescale * grad + wd * weight); n = (1 - g1) * G^2 + g1 * n;
// out = clip_w(weight - lr * (G / sqrt(n + eps)))
template <typename T>
struct RmsProp {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* sn;       // n: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  WeightClip<T> clip_w;
  T lr, eps, g1, og1;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F G = gp(g[i], wi);
    const F v = F(og1) * (G * G) + F(g1) * F(sn[i]);
    sn[i] = v.v;
    const F s = nc_sqrt(v + F(eps));
    st(y, i, clip_w(wi - F(lr) * (G / s)).v);
  }
};

// n = (1 - g1) * G * G + g1 * n; g = (1 - g1) * G + g1 * g;
// delta = g2 * delta - lr * G / sqrt(n - g * g + eps); out = clip_w(weight + delta)
template <typename T>
struct RmsPropAlex {
  const T* w;   // weight: [n]
  const T* g;   // grad: [n]
  T* sn;        // n: [n], mutated
  T* sg;        // g: [n], mutated
  T* delta;     // delta: [n], mutated
  T* y;         // output: [n]
  GradPrep<T> gp;
  WeightClip<T> clip_w;
  T lr, eps, g1, g2, og1;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F G = gp(g[i], wi);
    const F nv = F(og1) * G * G + F(g1) * F(sn[i]);
    const F gv = F(og1) * G + F(g1) * F(sg[i]);
    sn[i] = nv.v;
    sg[i] = gv.v;
    const F s = nc_sqrt(nv - gv * gv + F(eps));
    const F d = F(g2) * F(delta[i]) - (F(lr) * G / s);
    delta[i] = d.v;
    st(y, i, clip_w(wi + d).v);
  }
};

// G = clip(rescale * grad); z += G - (sqrt(n + G^2) - sqrt(n)) * weight / lr; n += G^2;
// out = (sign(z) * l1 - z) / ((beta + sqrt(n)) / lr + wd) * (|z| > l1)
template <typename T>
struct Ftrl {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* z;        // z: [n], mutated
  T* sn;       // n: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T lr, wd, l1, beta;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F G = gp(g[i]);
    const F ni = sn[i];
    const F n_new = ni + G * G;
    const F s_new = nc_sqrt(n_new), s_old = nc_sqrt(ni);
    const F zi = F(z[i]) + (G - (s_new - s_old) * F(w[i]) / F(lr));
    z[i] = zi.v;
    sn[i] = n_new.v;
    const F v = (sign(zi) * F(l1) - zi) / ((F(beta) + s_new) / F(lr) + F(wd));
    st(y, i, (nc_abs(zi) > F(l1) ? v : v * F(T(0))).v);  // MXNet: v * gt(|z|, lamda1)
  }
};

// G = clip(rescale * grad + wd * weight, clip_grad); v = b2 * v + (1 - b2) * G^2;
// d_t = dscale * (sqrt(v / vcorr) + eps); z = b1 * z + (1 - b1) * G - (d_t - b1 * d) * weight;
// d = d_t; out = -z / d_t
template <typename T>
struct Ftml {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* d;        // d: [n], mutated
  T* v;        // v: [n], mutated
  T* z;        // z: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T eps, b1, b2, ob1, ob2, dscale, vcorr;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F G = gp(g[i], wi);
    const F vi = F(b2) * F(v[i]) + F(ob2) * (G * G);
    v[i] = vi.v;
    const F d_t = F(dscale) * (nc_sqrt(vi / F(vcorr)) + F(eps));
    const F zi = F(b1) * F(z[i]) + F(ob1) * G - (d_t - F(b1) * F(d[i])) * wi;
    z[i] = zi.v;
    d[i] = d_t.v;
    st(y, i, (-zi / d_t).v);
  }
};

// G = clip(rescale * grad); mean, var as adam; out (g) = mean^ / (sqrt(var^) + eps) + wd * weight
template <typename T>
struct LambPhase1 {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* mean;     // mean: [n], mutated
  T* var;      // var: [n], mutated
  T* y;        // output g: [n]
  GradPrep<T> gp;
  T eps, wd, b1, b2, ob1, ob2, vcorr;
  double mcorr;  // mean / (1. - beta1_t) is computed in double
  bool bias;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F G = gp(g[i]);
    const F mi = F(b1) * F(mean[i]) + F(ob1) * G;
    const F v = F(b2) * F(var[i]) + F(ob2) * G * G;
    mean[i] = mi.v;
    var[i] = v.v;
    const F s = nc_sqrt(bias ? v / F(vcorr) : v);
    const F m = bias ? F(static_cast<T>(div_rn(static_cast<double>(mi.v), mcorr))) : mi;
    st(y, i, (m / (s + F(eps)) + F(wd) * F(w[i])).v);
  }
};

// r1' = clamp(r1[0], lower_bound, upper_bound); out = weight - lr * (r1' == 0 || r2[0] == 0 ? 1 : r1' / r2[0]) * g
template <typename T>
struct LambPhase2 {
  const T* w;   // weight: [n]
  const T* gv;  // g: [n]
  const T* r1;  // r1: [1], the norm of weight
  const T* r2;  // r2: [1], the norm of g
  T* y;         // output: [n]
  T lr, lb, ub;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F a = r1[0], b = r2[0], zero = T(0);
    F nr1 = a;
    if (F(lb) >= zero) nr1 = nr1 > F(lb) ? nr1 : F(lb);
    if (F(ub) >= zero) nr1 = nr1 < F(ub) ? nr1 : F(ub);
    const F l = (nr1 == zero || b == zero) ? F(lr) * F(T(1)) : F(lr) * nr1 / b;
    st(y, i, (F(w[i]) - l * F(gv[i])).v);
  }
};

// in: weight [n], grad [n], mean [n], var [n] (both mutated); out: new weight [n].
void adam_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* name = "adam_update";
  check_update(name, in, 4, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T b1 = f32_param<T>(attrs, "beta1"), b2 = f32_param<T>(attrs, "beta2");
    Adam<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(),
               GradPrep<T>::mxnet(attrs), f32_param<T>(attrs, "lr"), f32_param<T>(attrs, "epsilon"),
               b1, b2, T(1) - b1, T(1) - b2};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n], n [n] (mutated); out: new weight [n].
void rmsprop_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                    const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "rmsprop_update";
  check_update(name, in, 3, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T g1 = f32_param<T>(attrs, "gamma1");
    RmsProp<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), GradPrep<T>::mxnet(attrs),
                  weight_clip<T>(attrs), f32_param<T>(attrs, "lr"), f32_param<T>(attrs, "epsilon"), g1, T(1) - g1};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n], n [n], g [n], delta [n] (states mutated); out: new weight [n].
void rmspropalex_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                        const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "rmspropalex_update";
  check_update(name, in, 5, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T g1 = f32_param<T>(attrs, "gamma1");
    RmsPropAlex<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), in[4].dptr<T>(),
                      out[0].dptr<T>(), GradPrep<T>::mxnet(attrs), weight_clip<T>(attrs),
                      f32_param<T>(attrs, "lr"), f32_param<T>(attrs, "epsilon"), g1, f32_param<T>(attrs, "gamma2"),
                      T(1) - g1};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n], z [n], n [n] (states mutated); out: new weight [n].
void ftrl_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* name = "ftrl_update";
  check_update(name, in, 4, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const auto gp = GradPrep<T>::mxnet(attrs);
    Ftrl<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(), gp,
               f32_param<T>(attrs, "lr"), gp.wd, f32_param<T>(attrs, "lamda1"), f32_param<T>(attrs, "beta")};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n], d [n], v [n], z [n] (states mutated); out: new weight [n].
void ftml_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* name = "ftml_update";
  check_update(name, in, 5, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T lr = f32_param<T>(attrs, "lr");
    const T b1 = f32_param<T>(attrs, "beta1"), b2 = f32_param<T>(attrs, "beta2");
    const T eps = (T)attrs.f("epsilon");  // a double parameter in MXNet
    const T t = (T)attrs.i("t");
    const T pb1 = std::pow(b1, t), pb2 = std::pow(b2, t);  // as the CPU kernel (powf for float32)
    const T dscale = (T(1) - pb1) / lr, vcorr = T(1) - pb2;
    Ftml<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), in[4].dptr<T>(),
               out[0].dptr<T>(), GradPrep<T>::mxnet(attrs, "clip_grad"), eps, b1, b2, T(1) - b1, T(1) - b2, dscale,
               vcorr};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n], mean [n], var [n] (both mutated); out: g [n].
void lamb_update_phase1(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                        const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "lamb_update_phase1";
  check_update(name, in, 4, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const auto gp = GradPrep<T>::mxnet(attrs);
    const float b1f = (float)attrs.f("beta1"), b2f = (float)attrs.f("beta2");
    const T b1 = (T)b1f, b2 = (T)b2f;
    const double t = (double)attrs.i("t");
    // MXNet: DType beta1_t = std::pow(param.beta1, param.t) (float, int -> double pow)
    const T b1t = (T)std::pow((double)b1f, t), b2t = (T)std::pow((double)b2f, t);
    LambPhase1<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(), gp,
                     f32_param<T>(attrs, "epsilon"), gp.wd, b1, b2, T(1) - b1, T(1) - b2, T(1) - b2t,
                     1. - (double)b1t, attrs.b("bias_correction")};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], g [n], r1 [1], r2 [1]; out: new weight [n].
void lamb_update_phase2(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                        const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "lamb_update_phase2";
  check_update(name, in, 4, req, out, {2, 3});
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    LambPhase2<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), in[3].dptr<T>(), out[0].dptr<T>(),
                     f32_param<T>(attrs, "lr"), f32_param<T>(attrs, "lower_bound"),
                     f32_param<T>(attrs, "upper_bound")};
    launch_update(ctx, name, out[0].size(), req[0], op, /*states=*/false);
  });
}

}  // namespace

void register_adaptive_gpu(OpRegistry& r) {
  set_gpu(r, "adam_update", adam_update);
  set_gpu(r, "rmsprop_update", rmsprop_update);
  set_gpu(r, "rmspropalex_update", rmspropalex_update);
  set_gpu(r, "ftrl_update", ftrl_update);
  set_gpu(r, "ftml_update", ftml_update);
  set_gpu(r, "lamb_update_phase1", lamb_update_phase1);
  set_gpu(r, "lamb_update_phase2", lamb_update_phase2);
}

}  // namespace optim
}  // namespace cuda
}  // namespace kiln
