// Internal operators the gradient pass, the planner and user graphs rely on:
// identity/_copy, _identity_with_attr_like_rhs, BlockGrad, zeros_like, ones_like, _zeros,
// ElementWiseSum (add_n), _grad_add, _NoGradient.
#include <cstring>

#include "kiln/kernel_common.h"

namespace kiln {
namespace {

// out = in (or out += in), skipping the copy when the planner put out in place on in.
void copy_kernel(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [any]
  const TBlob& y = out[0];  // same shape as x
  if (req[0] == OpReq::kNullOp) return;
  if (req[0] != OpReq::kAddTo) {
    if (x.ptr != y.ptr) std::memcpy(y.ptr, x.ptr, y.bytes());
    return;
  }
  float_switch(y.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    int64_t n = y.size();
#pragma omp parallel for num_threads(num_threads()) if (n > kOmpMinWork)
    for (int64_t i = 0; i < n; ++i) yp[i] += xp[i];
  });
}

template <int kValue>
void fill_kernel(const OpCtx&, const Attrs&, const std::vector<TBlob>&, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const TBlob& y = out[0];
  if (req[0] == OpReq::kNullOp) return;
  if (req[0] == OpReq::kAddTo && kValue == 0) return;
  float_switch(y.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    T* yp = y.dptr<T>();
    int64_t n = y.size();
    for (int64_t i = 0; i < n; ++i) assign_req(yp[i], req[0], (T)kValue);
  });
}

// y = sum_k x_k over num_args inputs; in-place on input 0 allowed.
void elementwise_sum_kernel(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                            const std::vector<TBlob>& out) {
  const TBlob& y = out[0];  // same shape as every input
  if (req[0] == OpReq::kNullOp) return;
  float_switch(y.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    T* yp = y.dptr<T>();
    int64_t n = y.size();
    size_t k = in.size();
    std::vector<const T*> xs(k);
    for (size_t j = 0; j < k; ++j) xs[j] = in[j].dptr<T>();
    bool add = req[0] == OpReq::kAddTo;
#pragma omp parallel for num_threads(num_threads()) if (n * (int64_t)k > kOmpMinWork)
    for (int64_t i = 0; i < n; ++i) {
      T s = xs[0][i];
      for (size_t j = 1; j < k; ++j) s += xs[j][i];
      yp[i] = add ? yp[i] + s : s;
    }
  });
}

std::vector<NodeEntry> pass_through_grad(const NodePtr& fwd, const std::vector<NodeEntry>& og) {
  return std::vector<NodeEntry>(fwd->inputs.size(), og[0]);
}

std::vector<NodeEntry> zero_grad(const NodePtr& fwd, const std::vector<NodeEntry>&) {
  std::vector<NodeEntry> g;
  for (size_t i = 0; i < fwd->inputs.size(); ++i)
    g.push_back(zeros_like(fwd->inputs[i], fwd->name + (fwd->inputs.size() > 1 ? "_in" + std::to_string(i) : "") + "_backward"));
  return g;
}

std::vector<std::pair<int, int>> inplace00(const Attrs&) { return {{0, 0}}; }

// MakeLoss backward: d data = grad_scale / norm everywhere (the head gradient is not read);
// norm = 1 (null), batch size (batch), or the number of outputs above valid_thresh (valid, >= 1).
void make_loss_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const TBlob& y = in[0];   // forward output, [N, ...]
  const TBlob& dx = out[0]; // same shape
  if (req[0] == OpReq::kNullOp) return;
  float_switch(dx.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    const T* yp = y.dptr<T>();
    T* dp = dx.dptr<T>();
    int64_t n = dx.size();
    double norm = 1;
    const std::string& mode = a.s("normalization");
    if (mode == "batch") norm = y.shape.ndim() > 0 ? (double)y.shape[0] : 1.0;
    if (mode == "valid") {
      int64_t cnt = 0;
      for (int64_t i = 0; i < n; ++i) cnt += yp[i] > (T)a.f("valid_thresh");
      norm = cnt > 0 ? (double)cnt : 1.0;
    }
    T g = (T)(loss_grad_scale(ctx, a) / norm);
    for (int64_t i = 0; i < n; ++i) assign_req(dp[i], req[0], g);
  });
}

}  // namespace

void register_internal_ops(OpRegistry& r) {
  {
    OpDef d;
    d.name = "identity";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.aliases = {"_copy"};
    d.description = "Returns a copy of the input (an alias of it when the planner allows).";
    d.infer_shape = infer_same_shape;
    d.cpu = copy_kernel;
    d.gradient = pass_through_grad;
    d.inplace = inplace00;
    d.inplace_identity = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_identity_with_attr_like_rhs";
    d.description = "Identity of lhs whose shape and type are taken from rhs (head-gradient placeholder).";
    d.input_names_ = {"lhs", "rhs"};
    d.infer_shape = infer_same_shape;
    d.cpu = copy_kernel;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      return std::vector<NodeEntry>{og[0], zeros_like(fwd->inputs[1], fwd->name + "_rhs_backward")};
    };
    d.inplace = inplace00;
    d.inplace_identity = true;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{1}; };
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "BlockGrad";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.aliases = {"stop_gradient"};
    d.description = "Identity in the forward pass; stops gradients from flowing to the input.";
    d.infer_shape = infer_same_shape;
    d.cpu = copy_kernel;
    d.gradient = zero_grad;
    d.inplace = inplace00;
    d.inplace_identity = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "zeros_like";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.integers_via_float64 = true;  // integer types through the float64 fill (kiln/low_precision.h)
    d.description = "An array of zeros with the shape and type of the input (whose data is not read).";
    d.infer_shape = infer_same_shape;
    d.cpu = fill_kernel<0>;
    d.gradient = zero_grad;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{0}; };
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "ones_like";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.integers_via_float64 = true;  // integer types through the float64 fill (kiln/low_precision.h)
    d.description = "An array of ones with the shape and type of the input (whose data is not read).";
    d.infer_shape = infer_same_shape;
    d.cpu = fill_kernel<1>;
    d.gradient = zero_grad;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{0}; };
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_zeros";
    d.integers_via_float64 = true;  // integer types through the float64 fill (kiln/low_precision.h)
    d.description = "An array of zeros of a given shape; unknown (0) dims are inferred from consumers.";
    d.input_names_ = {};
    d.params = {
        {"shape", ParamType::kShape, "()", "Shape of the output; 0 = unknown, filled in by inference"},
        {"ctx", ParamType::kString, "", "Context (ignored: the executor's device is used)"},
        {"dtype", ParamType::kEnum, "float32", "Output data type", 0, 0, {"float32", "float64", "float16", "uint8", "int32", "int8", "int64"}},
    };
    d.params[1].default_value = "cpu(0)";
    d.infer_shape = [](const Attrs& a, std::vector<Shape>*, std::vector<Shape>* out) {
      const auto& t = a.t("shape");
      if (t.empty()) return;
      std::vector<int64_t> dims(t);
      for (auto& x : dims) if (x == 0) x = -1;
      Shape s(dims);
      assign_out(out, 0, s);
    };
    d.infer_type = [](const Attrs& a, std::vector<DType>*, std::vector<DType>* out) {
      (*out)[0] = dtype_from_name(a.s("dtype"));
    };
    d.cpu = fill_kernel<0>;
    d.non_differentiable = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "ElementWiseSum";
    d.integers_via_float64 = true;  // integer sums wrap as MXNet's (kiln/low_precision.h)
    d.aliases = {"add_n"};
    d.description = "Sum of num_args arrays of the same shape.";
    d.params = {{"num_args", ParamType::kInt, "", "Number of inputs", 1, kMaxArity}};
    d.input_names_fn = [](const Attrs& a) {
      std::vector<std::string> v;
      for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i));
      return v;
    };
    d.infer_shape = infer_same_shape;
    d.cpu = elementwise_sum_kernel;
    d.gradient = pass_through_grad;
    d.inplace = inplace00;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_grad_add";
    d.integers_via_float64 = true;  // integer sums wrap as MXNet's (kiln/low_precision.h)
    d.description = "lhs + rhs in a gradient-accumulation chain (rewritten to add-to by the planner).";
    d.input_names_ = {"lhs", "rhs"};
    d.infer_shape = infer_same_shape;
    d.cpu = elementwise_sum_kernel;
    d.gradient = pass_through_grad;
    d.inplace = inplace00;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "MakeLoss";
    d.aliases = {"make_loss"};
    d.description = "Marks its input as a loss: identity forward; the gradient is grad_scale / norm whatever the head gradient.";
    d.params = {
        {"grad_scale", ParamType::kFloat, "1.0", "Gradient scale"},
        {"valid_thresh", ParamType::kFloat, "0.0", "Outputs above this count as valid (normalization=valid)"},
        {"normalization", ParamType::kEnum, "null", "Divide the gradient by 1 (null), the batch size (batch) or the valid count (valid)", 0, 0,
         {"null", "batch", "valid"}},
    };
    d.infer_shape = infer_same_shape;
    d.cpu = copy_kernel;
    d.is_loss = true;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>&) {
      return make_backward("_backward_MakeLoss", fwd, {NodeEntry{fwd, 0}});
    };
    d.inplace = inplace00;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_backward_MakeLoss";
    d.description = "Gradient of MakeLoss.";
    d.is_backward = true;
    d.input_names_ = {"output"};
    d.output_names_ = {"data_grad"};
    d.cpu = make_loss_backward;
    d.inplace = inplace00;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_NoGradient";
    d.description = "Placeholder gradient of inputs that receive none (aux states); never executed.";
    d.input_names_ = {};
    d.infer_shape = [](const Attrs&, std::vector<Shape>*, std::vector<Shape>*) {};
    d.cpu = [](const OpCtx&, const Attrs&, const std::vector<TBlob>&, const std::vector<OpReq>&, const std::vector<TBlob>&) {
      throw KilnError("internal: _NoGradient executed");
    };
    d.non_differentiable = true;
    r.add(std::move(d));
  }
}

}  // namespace kiln
