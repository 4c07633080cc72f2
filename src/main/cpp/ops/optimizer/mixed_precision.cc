// Mixed-precision SGD/NAG update operators (MXNet 1.9.1 src/operator/optimizer_op-inl.h):
// the weight and gradient are float16 (or float32/float64), the master copy weight32 and the
// momentum are float32; the update runs in float32 on the master copy, which is then cast to
// the weight's type (round to nearest even). G = clip(rescale_grad * float(grad), clip_gradient)
// when clip_gradient >= 0, else rescale_grad * float(grad). All parameters are float32.
//
//   mp_sgd_update(weight, grad, weight32; lr, wd=0, rescale_grad=1, clip_gradient=-1, lazy_update=True)
//     weight32 = (1 - lr * wd) * weight32 - lr * G;  out = weight32
//   mp_sgd_mom_update(weight, grad, mom, weight32; lr, momentum=0, wd=0, rescale_grad=1,
//                     clip_gradient=-1, lazy_update=True)
//     mom = momentum * mom - lr * wd * weight32 - lr * G;  weight32 += mom;  out = weight32
//   mp_nag_mom_update(weight, grad, mom, weight32; lr, momentum=0, wd=0, rescale_grad=1, clip_gradient=-1)
//     m1 = momentum * mom;  w = weight32 - m1 + (momentum + 1) * (m1 - lr * (G + wd * weight32))
//     mom = m1 - lr * (G + wd * w)      (MXNet uses the NEW master weight here)
//     weight32 = w;  out = w
// (Without clipping MXNet multiplies (lr * rescale_grad) * grad in the two SGD kernels.)
// weight32 and mom are mutated in place; the output aliases weight. Shapes: all [n].
// MXNet's CPU build does not contract a * b + c into fused multiply-adds; neither do these
// kernels (x86-64-v3 has FMA), so every update rounds exactly as MXNet's does.
#pragma GCC optimize("fp-contract=off")

#include <string>
#include <vector>

#include "optimizer_common.h"

namespace kiln {
namespace optim {

namespace {

struct MpParams {
  float lr, wd, momentum, rescale, clip;
  bool clipping;
  explicit MpParams(const Attrs& a, bool with_momentum)
      : lr(simd::float_param<float>(a.f("lr"))),
        wd(simd::float_param<float>(a.f("wd"))),
        momentum(with_momentum ? simd::float_param<float>(a.f("momentum")) : 0.f),
        rescale(simd::float_param<float>(a.f("rescale_grad"))),
        clip(simd::float_param<float>(a.f("clip_gradient"))),
        clipping(clip >= 0.f) {}
};

// in: weight [n] (Y), grad [n] (Y), weight32 [n] (float32, mutated); out: new weight [n] (Y).
void mp_sgd_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const MpParams p(attrs, false);
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    const Y* g = in[1].dptr<Y>();     // grad [n]
    float* w32 = in[2].dptr<float>();  // weight32 [n], mutated
    Y* y = out[0].dptr<Y>();          // [n]
    const float decay = 1.f - p.lr * p.wd, lr = p.lr, lr_rescale = p.lr * p.rescale, rescale = p.rescale, c = p.clip;
    const bool clipping = p.clipping;
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const float gi = static_cast<float>(g[i]);
        const float w = clipping ? decay * w32[i] - lr * clip(rescale * gi, c) : decay * w32[i] - lr_rescale * gi;
        w32[i] = w;
        st(y, i, w);
      });
    });
  });
}

// in: weight [n] (Y), grad [n] (Y), mom [n] (float32, mutated), weight32 [n] (float32, mutated);
// out: new weight [n] (Y).
void mp_sgd_mom_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                           const std::vector<TBlob>& out) {
  const MpParams p(attrs, true);
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    const Y* g = in[1].dptr<Y>();      // grad [n]
    float* m = in[2].dptr<float>();    // mom [n], mutated
    float* w32 = in[3].dptr<float>();  // weight32 [n], mutated
    Y* y = out[0].dptr<Y>();           // [n]
    const float lr = p.lr, lr_wd = p.lr * p.wd, lr_rescale = p.lr * p.rescale, momentum = p.momentum;
    const float rescale = p.rescale, c = p.clip;
    const bool clipping = p.clipping;
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const float w = w32[i];
        const float gi = static_cast<float>(g[i]);
        const float lg = clipping ? lr * clip(rescale * gi, c) : lr_rescale * gi;
        const float mi = momentum * m[i] - lr_wd * w - lg;
        m[i] = mi;
        const float wn = w + mi;
        w32[i] = wn;
        st(y, i, wn);
      });
    });
  });
}

// in: weight [n] (Y), grad [n] (Y), mom [n] (float32, mutated), weight32 [n] (float32, mutated);
// out: new weight [n] (Y).
void mp_nag_mom_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                           const std::vector<TBlob>& out) {
  const MpParams p(attrs, true);
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    const Y* g = in[1].dptr<Y>();      // grad [n]
    float* m = in[2].dptr<float>();    // mom [n], mutated
    float* w32 = in[3].dptr<float>();  // weight32 [n], mutated
    Y* y = out[0].dptr<Y>();           // [n]
    const float lr = p.lr, wd = p.wd, momentum = p.momentum, rescale = p.rescale, c = p.clip;
    const bool clipping = p.clipping;
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const float gi = static_cast<float>(g[i]);
        const float G = clipping ? clip(rescale * gi, c) : rescale * gi;
        const float m1 = momentum * m[i];
        float w = w32[i];
        w = w - m1 + (momentum + 1) * (m1 - lr * (G + wd * w));
        m[i] = m1 - lr * (G + wd * w);
        w32[i] = w;
        st(y, i, w);
      });
    });
  });
}

std::vector<ParamDef> mp_params(bool with_momentum, bool with_lazy) {
  std::vector<ParamDef> ps{lr_param()};
  if (with_momentum) ps.push_back(momentum_param());
  ps.push_back(wd_param());
  ps.push_back(rescale_param());
  ps.push_back(clip_param());
  if (with_lazy) ps.push_back(lazy_param());
  return ps;
}

OpDef mp_op(const std::string& name, const std::string& desc, std::vector<ParamDef> params, std::vector<std::string> inputs,
            std::vector<int> mutated) {
  OpDef d;
  d.name = name;
  d.description = desc;
  d.params = std::move(params);
  d.input_names_ = std::move(inputs);
  d.output_names_ = {"output"};
  d.mutate_inputs = [mutated](const Attrs&) { return mutated; };
  d.infer_shape = infer_same_shape;
  d.infer_type = mp_infer_type(2);
  d.non_differentiable = true;
  d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}}; };
  return d;
}

}  // namespace

void register_mixed_precision_ops(OpRegistry& reg) {
  {
    OpDef d = mp_op("mp_sgd_update",
                    "Updater function for multi-precision sgd optimizer: weight32 = weight32 - lr * (rescale_grad * "
                    "grad + wd * weight32); weight = weight32 (cast).",
                    mp_params(false, true), {"weight", "grad", "weight32"}, {2});
    d.cpu = mp_sgd_update_cpu;
    reg.add(std::move(d));
  }
  {
    OpDef d = mp_op("mp_sgd_mom_update",
                    "Updater function for multi-precision sgd optimizer with momentum: mom = momentum * mom - lr * "
                    "(rescale_grad * grad + wd * weight32); weight32 += mom; weight = weight32 (cast).",
                    mp_params(true, true), {"weight", "grad", "mom", "weight32"}, {2, 3});
    d.cpu = mp_sgd_mom_update_cpu;
    reg.add(std::move(d));
  }
  {
    OpDef d = mp_op("mp_nag_mom_update",
                    "Update function for multi-precision Nesterov Accelerated Gradient (NAG) optimizer, on the float32 "
                    "master copy weight32; weight = weight32 (cast).",
                    mp_params(true, false), {"weight", "grad", "mom", "weight32"}, {2, 3});
    d.cpu = mp_nag_mom_update_cpu;
    reg.add(std::move(d));
  }
}

}  // namespace optim
}  // namespace kiln
