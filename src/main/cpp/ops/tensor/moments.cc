// moments (MXNet src/operator/nn/moments-inl.h): mean and population variance of data over `axes`
// (None: all), outputs `mean` and `var` of the reduced shape (keepdims keeps the axes as 1; reducing
// everything without keepdims gives (1,)). The mean is rounded to the data's type before the
// variance uses it, as MXNet; sums accumulate in double.
//   _backward_moments(og_mean, og_var, data, mean): dx = og_mean / N + og_var * 2 (x - mean) / N
// (N inputs per output). The geometry is kiln/moments.h, shared with the GPU kernels.
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/moments.h"
#include "kiln/op.h"

namespace kiln {
namespace elemwise {
namespace {

/// f(e, o) for every input element e in order, o its output element.
template <typename F>
void for_each_element(const MomentsMap& m, int64_t n, const F& f) {
  int64_t c[kMomentsDims] = {0};
  int64_t o = 0;
  for (int64_t e = 0; e < n; ++e) {
    f(e, o);
    for (int d = m.nd - 1; d >= 0; --d) {  // next coordinate, right to left
      o += m.ostride[d];
      if (++c[d] < m.dim[d]) break;
      o -= m.ostride[d] * m.dim[d];
      c[d] = 0;
    }
  }
}

void moments_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  if (!(*in)[0].rank_known()) return;
  const Shape o = moments_out_shape(a, (*in)[0]);
  assign_out(out, 0, o);
  assign_out(out, 1, o);
}

void moments_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const TBlob& x = in[0];  // [x]
  const MomentsMap m = moments_map(a, x.shape);
  float_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* mean = out[0].dptr<T>();  // [K]
    T* var = out[1].dptr<T>();   // [K]
    const double n = (double)m.count;
    std::vector<double> acc((size_t)m.outputs, 0.0);
    for_each_element(m, x.size(), [&](int64_t e, int64_t o) { acc[o] += (double)xp[e]; });
    std::vector<T> mu((size_t)m.outputs);
    for (int64_t o = 0; o < m.outputs; ++o) mu[o] = (T)(acc[o] / n);
    std::fill(acc.begin(), acc.end(), 0.0);
    for_each_element(m, x.size(), [&](int64_t e, int64_t o) {
      const T d = xp[e] - mu[o];
      acc[o] += (double)(d * d);
    });
    for (int64_t o = 0; o < m.outputs; ++o) {  // an output with a null request may have no memory
      if (req[0] != OpReq::kNullOp) assign_req(mean[o], req[0], mu[o]);
      if (req[1] != OpReq::kNullOp) assign_req(var[o], req[1], (T)(acc[o] / n));
    }
  });
}

/// Inputs: og_mean [K], og_var [K], data [x], mean [K]; output: dx [x].
void moments_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const TBlob& dx = out[0];
  const MomentsMap m = moments_map(a, dx.shape);
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    const T* gm = in[0].dptr<T>();  // [K]
    const T* gv = in[1].dptr<T>();  // [K]
    const T* xp = in[2].dptr<T>();  // [x]
    const T* mu = in[3].dptr<T>();  // [K]
    T* g = dx.dptr<T>();            // [x]
    const T n = (T)m.count;
    for_each_element(m, dx.size(), [&](int64_t e, int64_t o) {
      assign_req(g[e], req[0], gm[o] / n + gv[o] * T(2) * (xp[e] - mu[o]) / n);
    });
  });
}

}  // namespace

void register_moments(OpRegistry& reg) {
  OpDef d;
  d.name = "moments";
  d.description = "Calculates the mean and variance of data over the given axes.";
  d.params = {
      param("axes", ParamType::kShape, "None", "Array of ints. Axes along which to compute mean and variance."),
      param("keepdims", ParamType::kBool, "False", "produce moments with the same dimensionality as the input."),
  };
  d.output_names_ = {"output0", "output1"};  // the mean and the variance; MXNet names them by position
  d.infer_shape = moments_infer_shape;
  d.cpu = moments_forward;
  d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
    NodeEntry mean;
    mean.node = f;
    mean.index = 0;
    return make_backward("_backward_moments", f, {og[0], og[1], f->inputs[0], mean});
  };
  OpDef b = backward_def("_backward_moments", d);
  b.input_names_ = {"ograd_mean", "ograd_var", "data", "mean"};
  b.output_names_ = {"data_grad"};
  b.cpu = moments_backward;
  reg.add(std::move(d));
  reg.add(std::move(b));
}

}  // namespace elemwise
}  // namespace kiln
