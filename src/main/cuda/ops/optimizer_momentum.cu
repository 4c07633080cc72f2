// GPU kernels of the momentum and sign update operators (CPU: src/main/cpp/ops/optimizer/momentum.cc):
// sgd_update, sgd_mom_update, nag_mom_update, signsgd_update, signum_update. float32/float64, the CPU kernels' formulas in their
// operation order (see optimizer_common.cuh for the rounding), mom mutated in place whatever the
// request. Shapes: every input and the output: [n].
#include <vector>

#include "ops/optimizer_common.cuh"

namespace kiln {
namespace cuda {
namespace optim {
namespace {

// out = (1 - lr * wd) * weight - lr * clip(rescale_grad * grad)   (MXNet's sgd_update order)
template <typename T>
struct Sgd {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* y;        // output: [n] (usually aliases w)
  GradPrep<T> gp;
  T lr, decay;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    st(y, i, (F(decay) * F(w[i]) - gp.scaled(F(lr), F(g[i]))).v);
  }
};

// mom = momentum * mom - lr * wd * weight - lr * clip(rescale_grad * grad); out = weight + mom
template <typename T>
struct SgdMom {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* m;        // mom: [n], mutated
  T* y;        // output: [n] (usually aliases w)
  GradPrep<T> gp;
  T lr, wd, momentum;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F mi = F(momentum) * F(m[i]) - F(lr) * F(wd) * wi - gp.scaled(F(lr), F(g[i]));
    m[i] = mi.v;
    st(y, i, (wi + mi).v);
  }
};

// m1 = momentum * mom; out = weight - m1 + (momentum + 1) * (m1 - lr * (G + wd * weight));
// mom = m1 - lr * (G + wd * weight'), weight' = the output when it aliases weight (MXNet re-reads it).
template <typename T>
struct NagMom {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* m;        // mom: [n], mutated
  T* y;        // output: [n] (usually aliases w)
  GradPrep<T> gp;
  T lr, wd, momentum;
  bool alias;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i], G = gp(g[i]), mo = momentum, l = lr, d = wd;
    const F m1 = mo * F(m[i]);
    st(y, i, (wi - m1 + (mo + F(T(1))) * (m1 - l * (G + d * wi))).v);
    const F w2 = alias ? F(y[i]) : wi;
    m[i] = (m1 - l * (G + d * w2)).v;
  }
};

// out = (1 - lr * wd) * weight - lr * sign(grad)
template <typename T>
struct SignSgd {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* y;        // output: [n]
  T lr, decay;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    st(y, i, (F(decay) * F(w[i]) - F(lr) * sign(F(g[i]))).v);
  }
};

// mom = momentum * mom - (1 - momentum) * wd * weight - (1 - momentum) * G;
// out = (1 - lr * wd_lh) * weight + lr * sign(mom)
template <typename T>
struct Signum {
  const T* w;  // weight: [n]
  const T* g;  // grad: [n]
  T* m;        // mom: [n], mutated
  T* y;        // output: [n]
  GradPrep<T> gp;
  T lr, momentum, om, om_wd, decay;
  template <class St>
  __device__ void operator()(int64_t i, St st) const {
    using F = Nc<T>;
    const F wi = w[i];
    const F mi = F(momentum) * F(m[i]) - F(om_wd) * wi - gp.scaled(om, g[i]);
    m[i] = mi.v;
    st(y, i, (F(decay) * wi + F(lr) * sign(mi)).v);
  }
};

// in: weight [n], grad [n], mom [n] (mutated); out: new weight [n].
// in: weight [n], grad [n]; out: new weight [n].
void sgd_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* name = "sgd_update";
  check_update(name, in, 2, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const GradPrep<T> gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr");
    Sgd<T> op{in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), gp, lr, T(1) - lr * gp.wd};
    launch_update(ctx, name, out[0].size(), req[0], op, /*states=*/false);
  });
}

// in: weight [n], grad [n], mom [n] (mutated whatever the request); out: new weight [n].
void sgd_mom_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* name = "sgd_mom_update";
  check_update(name, in, 3, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const GradPrep<T> gp = GradPrep<T>::mxnet(attrs);
    SgdMom<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), gp,
                 f32_param<T>(attrs, "lr"), gp.wd, f32_param<T>(attrs, "momentum")};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

void nag_mom_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                    const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "nag_mom_update";
  check_update(name, in, 3, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    NagMom<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), GradPrep<T>::mxnet(attrs),
                 f32_param<T>(attrs, "lr"), T(0), f32_param<T>(attrs, "momentum"), false};
    op.wd = op.gp.wd;
    op.alias = (const void*)op.y == (const void*)op.w;
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

// in: weight [n], grad [n]; out: new weight [n].
void signsgd_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                    const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "signsgd_update";
  check_update(name, in, 2, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T lr = f32_param<T>(attrs, "lr"), wd = f32_param<T>(attrs, "wd");
    const T decay = T(1) - lr * wd;
    SignSgd<T> op{in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(), lr, decay};
    launch_update(ctx, name, out[0].size(), req[0], op, /*states=*/false);
  });
}

// in: weight [n], grad [n], mom [n] (mutated); out: new weight [n].
void signum_update(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                   const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* name = "signum_update";
  check_update(name, in, 3, req, out);
  check_same_dtype(name, in, out);
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const auto gp = GradPrep<T>::mxnet(attrs);
    const T lr = f32_param<T>(attrs, "lr"), momentum = f32_param<T>(attrs, "momentum");
    const T om = T(1) - momentum;
    const T om_wd = om * gp.wd;
    const T decay = T(1) - lr * f32_param<T>(attrs, "wd_lh");
    Signum<T> op{in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), gp, lr, momentum, om, om_wd,
                 decay};
    launch_update(ctx, name, out[0].size(), req[0], op);
  });
}

}  // namespace

void register_momentum_gpu(OpRegistry& r) {
  set_gpu(r, "sgd_update", sgd_update);
  set_gpu(r, "sgd_mom_update", sgd_mom_update);
  set_gpu(r, "nag_mom_update", nag_mom_update);
  set_gpu(r, "signsgd_update", signsgd_update);
  set_gpu(r, "signum_update", signum_update);
}

}  // namespace optim
}  // namespace cuda
}  // namespace kiln
