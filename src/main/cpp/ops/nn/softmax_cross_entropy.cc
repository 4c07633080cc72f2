// softmax_cross_entropy (MXNet src/operator/loss_binary_op-inl.h): data [N, C], label [N] (class
// numbers, truncated toward zero); out (1,) = sum over samples of -log(softmax(data[s])[label[s]]).
// Row statistics (max, sum of exp(x - max)) and the sum accumulate in double. A label outside
// [0, C) (or NaN) is an error naming the sample (MXNet reads past the row). The backward (it takes
// the output gradient g, unlike the loss layers): d data = g * (softmax(data) - one_hot(label)),
// the label gets zeros.
#include <sstream>

#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

void sce_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  assign_out(out, 0, Shape({1}));
  const Shape& d = (*in)[0];
  if (d.rank_known() && d.ndim() != 2)
    throw InferError(true, 0, "softmax_cross_entropy only accepts 2-D data, got " + d.str());
  const Shape& l = (*in)[1];
  if (l.rank_known() && l.ndim() != 1)
    throw InferError(true, 1, "softmax_cross_entropy only accepts a 1-D label, got " + l.str());
  if (d.rank_known()) assign_in(in, 1, Shape({d[0]}));
}

/// The class of every sample ([N]); throws for a label outside [0, C).
template <typename T>
std::vector<int64_t> sce_classes(const T* label, int64_t n, int64_t c) {
  std::vector<int64_t> k((size_t)n);
  for (int64_t s = 0; s < n; ++s) {
    const double v = (double)label[s];
    if (!(v > -1.0 && v < (double)c)) {
      std::ostringstream os;
      os << "softmax_cross_entropy: label ";
      if (v != v) os << "NaN";
      else os << v;
      os << " of sample " << s << " is out of range for " << c << " classes";
      throw KilnError(os.str());
    }
    k[(size_t)s] = (int64_t)v;
  }
  return k;
}

/// Row s of x [N, C]: its max and the sum of exp(x - max).
template <typename T>
void row_stats(const T* x, int64_t c, double* mx, double* sum) {
  double m = (double)x[0];
  for (int64_t j = 1; j < c; ++j) m = std::max(m, (double)x[j]);
  double e = 0;
  for (int64_t j = 0; j < c; ++j) e += std::exp((double)x[j] - m);
  *mx = m;
  *sum = e;
}

void sce_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const int64_t n = in[0].shape[0], c = in[0].shape[1];
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [N, C]
    T* y = out[0].dptr<T>();       // [1]
    if (n > 0) KILN_CHECK(c > 0, "softmax_cross_entropy: data " + in[0].shape.str() + " has no classes");
    const std::vector<int64_t> k = sce_classes(in[1].dptr<T>(), n, c);
    double total = 0;
    for (int64_t s = 0; s < n; ++s) {
      double m, e;
      row_stats(x + s * c, c, &m, &e);
      total += std::log(e) - ((double)x[s * c + k[(size_t)s]] - m);
    }
    assign_req(y[0], req[0], (T)total);
  });
}

/// Inputs: g [1], data [N, C], label [N]; outputs: d data [N, C], d label [N] (zeros).
void sce_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const int64_t n = in[1].shape[0], c = in[1].shape[1];
  KILN_FLOAT_SWITCH(in[1].dtype, T, {
    if (req[1] == OpReq::kWriteTo || req[1] == OpReq::kWriteInplace)
      std::fill(out[1].dptr<T>(), out[1].dptr<T>() + out[1].size(), T(0));
    if (req[0] != OpReq::kNullOp && n * c > 0) {
      const double g = (double)in[0].dptr<T>()[0];
      const T* x = in[1].dptr<T>();  // [N, C]
      T* dx = out[0].dptr<T>();      // [N, C]
      const std::vector<int64_t> k = sce_classes(in[2].dptr<T>(), n, c);
      omp_for(omp_threads(n * c), n, [&](int64_t s) {
        double m, e;
        row_stats(x + s * c, c, &m, &e);
        for (int64_t j = 0; j < c; ++j) {
          const double p = std::exp((double)x[s * c + j] - m) / e;
          assign_req(dx[s * c + j], req[0], (T)(g * (p - (j == k[(size_t)s] ? 1.0 : 0.0))));
        }
      });
    }
  });
}

}  // namespace

void register_softmax_cross_entropy(OpRegistry& r) {
  OpDef d;
  d.name = "softmax_cross_entropy";
  d.description = "Calculate cross entropy of softmax output and one-hot label: the sum over samples of "
                  "-log(softmax(data)[label]), shape (1,).";
  d.input_names_ = {"data", "label"};
  d.infer_shape = sce_infer_shape;
  d.cpu = sce_forward;
  d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_softmax_cross_entropy", f, {og[0], f->inputs[0], f->inputs[1]});
  };
  OpDef b = backward_def("_backward_softmax_cross_entropy", d);
  b.input_names_ = {"ograd", "data", "label"};
  b.output_names_ = {"data_grad", "label_grad"};
  b.cpu = sce_backward;
  r.add(std::move(d));
  r.add(std::move(b));
}

}  // namespace nn
}  // namespace kiln
