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

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "optimizer_common.h"

namespace kiln {
namespace optim {

namespace {

// in: weight [n] (Y), grad [n] (Y), weight32 [n] (float32, mutated); out: new weight [n] (Y).
void mp_sgd_update_cpu(const OpCtx&, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const auto gp = GradPrep<float>::mxnet(attrs);
  const float lr = f32_param<float>(attrs, "lr"), decay = 1.f - lr * gp.wd;
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    const Y* g = in[1].dptr<Y>();     // grad [n]
    float* w32 = in[2].dptr<float>();  // weight32 [n], mutated
    Y* y = out[0].dptr<Y>();          // [n]
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const float w = decay * w32[i] - gp.scaled(lr, static_cast<float>(g[i]));
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
  const auto gp = GradPrep<float>::mxnet(attrs);
  const float lr = f32_param<float>(attrs, "lr"), lr_wd = lr * gp.wd, momentum = f32_param<float>(attrs, "momentum");
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    const Y* g = in[1].dptr<Y>();      // grad [n]
    float* m = in[2].dptr<float>();    // mom [n], mutated
    float* w32 = in[3].dptr<float>();  // weight32 [n], mutated
    Y* y = out[0].dptr<Y>();           // [n]
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const float w = w32[i];
        const float mi = momentum * m[i] - lr_wd * w - gp.scaled(lr, static_cast<float>(g[i]));
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
  const auto gp = GradPrep<float>::mxnet(attrs);
  const float lr = f32_param<float>(attrs, "lr"), wd = gp.wd, momentum = f32_param<float>(attrs, "momentum");
  mp_switch(out[0].dtype, [&](auto zero) {
    using Y = decltype(zero);
    const Y* g = in[1].dptr<Y>();      // grad [n]
    float* m = in[2].dptr<float>();    // mom [n], mutated
    float* w32 = in[3].dptr<float>();  // weight32 [n], mutated
    Y* y = out[0].dptr<Y>();           // [n]
    with_store(req[0], [&](auto st) {
      simd::parallel_for(out[0].size(), [=](int64_t i) {
        const float G = gp(static_cast<float>(g[i]));
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

// The mixed-precision operators: weight and grad of any float type, the states float32.
OpDef mp_op(const std::string& name, const std::string& desc, std::vector<ParamDef> params, std::vector<std::string> inputs,
            std::vector<int> mutated, Kernel cpu) {
  OpDef d = update_op(name, desc, std::move(params), std::move(inputs), std::move(mutated), std::move(cpu));
  d.infer_type = mp_infer_type(2);
  d.native_low_precision_cpu = kNativeFloat16;  // bfloat16 weights go through float32 (low_precision.h)
  return d;
}

// ---- all_finite, multi_all_finite (MXNet src/operator/contrib/all_finite.cc) ------------------
//
// The overflow check of dynamic loss scaling: out [1] (float32) = 1 when every element of every
// input is finite, else 0. With init_output=False the output is only ever lowered to 0, so one
// output can gather several calls (MXNet's LossScaler checks its gradients 200 at a time).

/// out[0] [1] (float32) = (init_output ? 1 : out[0]) and 0 if any element of any input [any shape]
/// is Inf or NaN.
void all_finite_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  float* o = out[0].dptr<float>();  // [1]
  if (a.b("init_output")) *o = 1.f;
  for (const TBlob& x : in) {
    bool finite = true;
    mp_switch(x.dtype, [&](auto zero) {
      using T = decltype(zero);
      const T* p = x.dptr<T>();  // [size]
      for (int64_t i = 0; i < x.size() && finite; ++i) finite = std::isfinite((double)p[i]);
    });
    if (!finite) {
      *o = 0.f;
      return;
    }
  }
}

void all_finite_infer_shape(const Attrs&, std::vector<Shape>*, std::vector<Shape>* out) { assign_out(out, 0, Shape{1}); }

void all_finite_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  for (size_t i = 0; i < in->size(); ++i) {
    const DType t = (*in)[i];
    if (t != DType::kUnknown && !is_float_type(t))
      throw InferError(true, (int)i, std::string("all_finite: inputs must be float16, bfloat16, float32 or float64, got ") + dtype_name(t));
  }
  (*out)[0] = DType::kFloat32;
}

OpDef all_finite_op(const std::string& name, const std::string& desc, std::vector<ParamDef> params,
                    std::function<std::vector<std::string>(const Attrs&)> inputs) {
  OpDef d;
  d.name = name;
  d.description = desc;
  d.params = std::move(params);
  d.input_names_fn = std::move(inputs);
  d.infer_shape = all_finite_infer_shape;
  d.infer_type = all_finite_infer_type;
  d.cpu = all_finite_cpu;
  d.native_low_precision_cpu = kNativeFloat16;
  d.non_differentiable = true;
  return d;
}

}  // namespace

void register_mixed_precision_ops(OpRegistry& reg) {
  const ParamDef init_output = bparam("init_output", "True", "Initialize output to 1.");
  reg.add(all_finite_op("all_finite", "Check if all the float numbers in the array are finite (used for AMP)", {init_output},
                        [](const Attrs&) { return std::vector<std::string>{"data"}; }));
  reg.add(all_finite_op("multi_all_finite", "Check if all the float numbers in all the arrays are finite (used for AMP)",
                        {param("num_arrays", ParamType::kInt, "1", "Number of arrays.", 1, kMaxArity), init_output},
                        [](const Attrs& a) {
                          std::vector<std::string> v;
                          for (int64_t i = 0; i < a.i("num_arrays"); ++i) v.push_back("array" + std::to_string(i));
                          return v;
                        }));
  reg.add(mp_op("mp_sgd_update",
                "Updater function for multi-precision sgd optimizer: weight32 = weight32 - lr * (rescale_grad * "
                "grad + wd * weight32); weight = weight32 (cast).",
                grad_params({lr_param()}, {lazy_param()}), {"weight", "grad", "weight32"}, {2}, mp_sgd_update_cpu));
  reg.add(mp_op("mp_sgd_mom_update",
                "Updater function for multi-precision sgd optimizer with momentum: mom = momentum * mom - lr * "
                "(rescale_grad * grad + wd * weight32); weight32 += mom; weight = weight32 (cast).",
                grad_params({lr_param(), momentum_param()}, {lazy_param()}), {"weight", "grad", "mom", "weight32"},
                {2, 3}, mp_sgd_mom_update_cpu));
  reg.add(mp_op("mp_nag_mom_update",
                "Update function for multi-precision Nesterov Accelerated Gradient (NAG) optimizer, on the float32 "
                "master copy weight32; weight = weight32 (cast).",
                grad_params({lr_param(), momentum_param()}), {"weight", "grad", "mom", "weight32"}, {2, 3},
                mp_nag_mom_update_cpu));
}

}  // namespace optim
}  // namespace kiln
