// SVMOutput (MXNet src/operator/svm_output-inl.h): a loss layer; the forward passes data through,
// the backward (ignoring the output gradient) is the hinge loss's gradient, L1 (use_linear) or
// squared (L2), for data viewed as [N, C] (C its last dim) and one label per row, label shape
// data.shape[:-1] (kiln/svm_output.h, shared with the GPU kernel). The label gets a zero gradient.
#include "kiln/svm_output.h"
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

/// label = data.shape[:-1] (one label per row of data viewed as [rows, last dim]); out = data.
void svm_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& d = (*in)[0];
  if (!d.rank_known()) return;
  if (d.ndim() < 2) throw InferError(true, 0, "SVMOutput: data must have at least two dimensions, got " + d.str());
  assign_in(in, 1, Shape(std::vector<int64_t>(d.d.begin(), d.d.end() - 1)));
  assign_out(out, 0, d);
}

void svm_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [N, C]
    T* y = out[0].dptr<T>();       // [N, C] (may alias x)
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return x[i]; });
  });
}

/// Inputs: label [N], output [N, C] (= data); outputs: d_data [N, C], d_label [N] (zeros).
void svm_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const TBlob& y = in[1];
  const int64_t n = in[0].size(), c = n > 0 ? y.size() / n : 0;
  KILN_CHECK(n * c == y.size(), "SVMOutput: label " + in[0].shape.str() + " does not match data " + y.shape.str());
  KILN_FLOAT_SWITCH(y.dtype, T, {
    const T* label = in[0].dptr<T>();  // [N]
    const T* x = y.dptr<T>();          // [N, C]
    T* dx = out[0].dptr<T>();          // [N, C] (may alias x)
    const T margin = (T)a.f("margin"), coef = (T)(a.f("regularization_coefficient") * ctx.loss_scale);
    const bool linear = a.b("use_linear");
    if (req[0] != OpReq::kNullOp)
      omp_for(omp_threads(n * c), n, [&](int64_t s) {
        const int64_t k = svm_class(label[s]);
        for (int64_t j = 0; j < c; ++j)
          assign_req(dx[s * c + j], req[0], svm_grad(x[s * c + j], j == k, margin, coef, linear));
      });
    if (req[1] == OpReq::kWriteTo || req[1] == OpReq::kWriteInplace)
      std::fill(out[1].dptr<T>(), out[1].dptr<T>() + out[1].size(), T(0));
  });
}

}  // namespace

void register_svm_output(OpRegistry& r) {
  OpDef d;
  d.name = "SVMOutput";
  d.description =
      "Computes support vector machine based transformation of the input: the forward passes data through, the "
      "backward is the (L1 or squared) hinge loss's gradient with one label per sample.";
  d.params = {
      param("margin", ParamType::kFloat, "1", "The loss function penalizes outputs that lie outside this margin. Default margin is 1."),
      param("regularization_coefficient", ParamType::kFloat, "1", "Regularization parameter for the SVM. This balances the tradeoff between coefficient size and error."),
      param("use_linear", ParamType::kBool, "False", "Whether to use L1-SVM objective. L2-SVM objective is used by default."),
  };
  d.input_names_ = {"data", "label"};
  d.infer_shape = svm_infer_shape;
  d.cpu = svm_forward;
  d.is_loss = true;
  d.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>&) {
    return make_backward("_backward_SVMOutput", f, {f->inputs[1], NodeEntry{f, 0}});
  };
  OpDef b = backward_def("_backward_SVMOutput", d);
  b.input_names_ = {"label", "output"};
  b.output_names_ = {"data_grad", "label_grad"};
  b.cpu = svm_backward;
  b.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{1, 0}}; };
  r.add(std::move(d));
  r.add(std::move(b));
}

}  // namespace nn
}  // namespace kiln
