// diag (MXNet src/operator/tensor/diag_op-inl.h): a 1-D input becomes a square matrix with the
// input on its k-th diagonal; a higher-rank input gives the k-th diagonals of its (axis1, axis2)
// planes (kiln/diag.h has the geometry, shared with the GPU kernels). The backward is the same
// movement the other way: _backward_diag takes the output gradient to data's shape.
#include <cstring>
#include <string>
#include <vector>

#include "index_common.h"
#include "kiln/diag.h"

namespace kiln {
namespace index_ops {
namespace {

void diag_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  if (!x.known()) return;
  assign_out(out, 0, diag_out_shape(a, x));
}

/// D [outer, len] (req) the diagonal elements of M.
template <typename T>
void diag_extract(const DiagGeom& g, const T* m, T* d, OpReq req) {
  omp_for(omp_threads(g.outer() * g.len), g.outer(), [&](int64_t o) {
    const T* src = m + g.base[(size_t)o] + g.r0 * g.s1 + g.c0 * g.s2;  // M's diagonal, step s1 + s2
    T* dst = d + o * g.len;                                              // [len]
    for (int64_t i = 0; i < g.len; ++i) assign_req(dst[i], req, src[i * (g.s1 + g.s2)]);
  });
}

/// M [size m] (req) D's elements on the diagonals, zero elsewhere (untouched elsewhere under kAddTo).
template <typename T>
void diag_place(const DiagGeom& g, const T* d, T* m, int64_t m_size, OpReq req) {
  if (req != OpReq::kAddTo) std::memset((void*)m, 0, (size_t)m_size * sizeof(T));
  omp_for(omp_threads(g.outer() * g.len), g.outer(), [&](int64_t o) {
    T* dst = m + g.base[(size_t)o] + g.r0 * g.s1 + g.c0 * g.s2;
    const T* src = d + o * g.len;
    for (int64_t i = 0; i < g.len; ++i) dst[i * (g.s1 + g.s2)] += src[i];
  });
}

void diag_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // data
  const TBlob& y = out[0];  // diag_out_shape(data)
  if (req[0] == OpReq::kNullOp) return;
  const DiagGeom g = diag_geom(a, x.shape);
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("diag: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    if (x.shape.ndim() == 1) diag_place(g, x.dptr<T>(), y.dptr<T>(), y.size(), req[0]);
    else diag_extract(g, x.dptr<T>(), y.dptr<T>(), req[0]);
  });
}

/// Input: dy (the output's shape); output: dx (data's shape).
void diag_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];
  const TBlob& dx = out[0];
  if (req[0] == OpReq::kNullOp) return;
  const DiagGeom g = diag_geom(a, dx.shape);
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    if (dx.shape.ndim() == 1) diag_extract(g, dy.dptr<T>(), dx.dptr<T>(), req[0]);
    else diag_place(g, dy.dptr<T>(), dx.dptr<T>(), dx.size(), req[0]);
  });
}

}  // namespace

void register_diag_ops(OpRegistry& r) {
  OpDef d;
  d.name = "diag";
  d.description =
      "Extracts a diagonal or constructs a diagonal array: 1-D input -> the 2-D array with the input on its k-th "
      "diagonal; higher rank -> the k-th diagonals of the (axis1, axis2) planes, as a last axis.";
  d.params = {
      param("k", ParamType::kInt, "0", "Diagonal in question. The default is 0. Use k>0 for diagonals above the main diagonal, and k<0 for diagonals below the main diagonal. If input has shape (S0 S1) k must be between -S0 and S1"),
      param("axis1", ParamType::kInt, "0", "The first axis of the sub-arrays of interest. Ignored when the input is a 1-D array."),
      param("axis2", ParamType::kInt, "1", "The second axis of the sub-arrays of interest. Ignored when the input is a 1-D array."),
  };
  d.infer_shape = diag_infer_shape;
  d.cpu = diag_forward;
  d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) { return make_backward("_backward_diag", f, {og[0]}); };
  OpDef b = backward_def("_backward_diag", d);
  b.input_names_ = {"ograd"};
  b.output_names_ = {"data_grad"};
  b.cpu = diag_backward;
  r.add(std::move(d));
  r.add(std::move(b));
}

}  // namespace index_ops
}  // namespace kiln
