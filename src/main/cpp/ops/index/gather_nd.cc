// gather_nd, scatter_nd and gather_nd's backward (MXNet src/operator/tensor/indexing_op.h).
//
// indices [M, N...] hold M coordinates for each of the N = prod(N...) positions. The indexed
// array X [X0, ..., X_{D-1}] (gather_nd's data, scatter_nd's output) is viewed as rows
// [X0 * ... * X_{M-1}, K] with K = X_M * ... * X_{D-1}: position i addresses row
// sum_j c_j * (X_{j+1} * ... * X_{M-1}), c_j its coordinate j.
//
// Coordinates follow MXNet 1.9's gather_nd: any index dtype, a coordinate v along an axis of
// size S is valid when -S <= v <= S - 1 and then addresses trunc(v + S) mod S (negative values
// count from the end; a float -0.5 addresses S - 1 as in MXNet), anything else (NaN included) is an
// error naming the value and the axis. MXNet's scatter_nd and _backward_gather_nd check nothing and
// read negative coordinates as they are (out-of-bounds writes); Kiln applies gather_nd's rule to
// all three (docs/mxnet-differences.md).
//
// scatter_nd with repeated positions: the last position in index order wins (MXNet: undefined,
// its OpenMP threads race); gather_nd's backward sums them in index order.
#include <sstream>
#include <string>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

constexpr int kMaxNdIndex = 10;  // MXNet: "gather_nd supports indexing along at most 10 dimensions"

/// The coordinate v (of any index dtype) along an axis of size S, in [0, S), or -1 when invalid.
template <typename I>
inline int64_t nd_coord(I v, int64_t size) {
  if constexpr (std::is_integral<I>::value) {
    const int64_t j = (int64_t)v;
    if (j < -size || j >= size) return -1;
    return j < 0 ? j + size : j;
  } else {
    const double d = (double)v;
    if (!(d >= -(double)size && d <= (double)(size - 1))) return -1;
    return ((int64_t)(d + (double)size)) % size;
  }
}

std::string index_text(double v) {
  if (v != v) return "(not a number)";
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

struct NdDims {
  int64_t m = 0, n = 0, k = 0;  // indices [m, n], X as rows [prod sizes, k]
  std::vector<int64_t> sizes;    // X0 .. X_{m-1}
  int64_t rows() const {
    int64_t r = 1;
    for (int64_t s : sizes) r *= s;
    return r;
  }
};

/// Dimensions of indexing `x` (gather_nd's data, scatter_nd's output) with `idx`.
NdDims nd_dims(const char* op, const Shape& x, const Shape& idx) {
  KILN_CHECK(idx.ndim() >= 1 && idx[0] >= 1 && idx[0] <= x.ndim(),
             std::string(op) + ": indices " + idx.str() + " do not fit the indexed shape " + x.str());
  NdDims d;
  d.m = idx[0];
  d.n = idx.prod(1, idx.ndim());
  d.k = x.prod((int)d.m, x.ndim());
  for (int j = 0; j < d.m; ++j) d.sizes.push_back(x[j]);
  return d;
}

/// Row number of every position ([n]); throws for an invalid coordinate.
std::vector<int64_t> nd_rows(const char* op, const TBlob& idx, const NdDims& d) {
  std::vector<int64_t> rows((size_t)d.n, 0);
  any_switch(idx.dtype, [&](auto z) {
    using I = decltype(z);
    const I* p = idx.dptr<I>();  // [m, n]
    for (int64_t j = 0; j < d.m; ++j)
      for (int64_t i = 0; i < d.n; ++i) {
        const int64_t c = nd_coord(p[j * d.n + i], d.sizes[j]);
        if (c < 0)
          throw KilnError(std::string(op) + ": index " + index_text((double)p[j * d.n + i]) +
                          " is out of bounds for axis " + std::to_string(j) + " with size " +
                          std::to_string(d.sizes[j]));
        rows[i] = rows[i] * d.sizes[j] + c;
      }
  });
  return rows;
}

/// Checks of the index array shared by both ops' inference: rank >= 2 (MXNet's rule), 1 <= M <= min(rank, 10).
void check_nd_indices(const char* op, const Shape& idx, int xndim, bool idx_is_input1) {
  if (idx.ndim() < 2)
    throw InferError(true, 1, std::string(op) + " requires index tensor to have at least 2 dimensions (got " + idx.str() + ")");
  if (idx[0] < 0) return;
  if (idx[0] < 1 || idx[0] > xndim)
    throw InferError(true, 1, std::string(op) + ": indices " + idx.str() + " give " + std::to_string(idx[0]) +
                                  " coordinates for an array of rank " + std::to_string(xndim) +
                                  (idx_is_input1 ? " (data)" : " (shape)"));
  if (idx[0] > kMaxNdIndex)
    throw InferError(true, 1, std::string(op) + " supports indexing along at most 10 dimensions (indices " +
                                  idx.str() + ")");
}

/// out = indices.shape[1:] + data.shape[M:].
void gather_nd_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  const Shape& idx = (*in)[1];
  if (!x.rank_known() || !idx.rank_known()) return;
  check_nd_indices("gather_nd", idx, x.ndim(), true);
  if (idx[0] < 0) return;
  std::vector<int64_t> od(idx.d.begin() + 1, idx.d.end());
  for (int i = (int)idx[0]; i < x.ndim(); ++i) od.push_back(x[i]);
  assign_out(out, 0, Shape(od));
}

/// Output type = data type (both ways); indices of any type, the data's when unknown.
void nd_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  const DType t = (*in)[0] != DType::kUnknown ? (*in)[0] : (*out)[0];
  if (t == DType::kUnknown) return;
  if ((*in)[0] != DType::kUnknown && (*out)[0] != DType::kUnknown && (*in)[0] != (*out)[0])
    throw InferError(false, 0, std::string("output type ") + dtype_name((*out)[0]) + " differs from the data type " +
                                   dtype_name((*in)[0]));
  (*in)[0] = (*out)[0] = t;
  if ((*in)[1] == DType::kUnknown) (*in)[1] = t;
}

void gather_nd_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [rows, k]
  const TBlob& y = out[0];  // [n, k]
  if (req[0] == OpReq::kNullOp) return;
  const NdDims d = nd_dims("gather_nd", x.shape, in[1].shape);
  if (d.n * d.k == 0) return;
  const std::vector<int64_t> rows = nd_rows("gather_nd", in[1], d);  // [n]
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("gather_nd: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    omp_for(omp_threads(d.n * d.k), d.n, [&](int64_t i) {
      const T* src = xp + rows[i] * d.k;  // [k]
      T* dst = yp + i * d.k;              // [k]
      for (int64_t c = 0; c < d.k; ++c) assign_req(dst[c], req[0], src[c]);
    });
  });
}

/// Inputs: dy [n, k], indices [m, n]; outputs: dx [rows, k] (the scatter-add of dy), dindices (zeros).
void gather_nd_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];
  const TBlob& dx = out[0];
  if (req.size() > 1 && req[1] != OpReq::kNullOp && req[1] != OpReq::kAddTo) zero_unless_add(out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const NdDims d = nd_dims("_backward_gather_nd", dx.shape, in[1].shape);
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    zero_unless_add(dx, req[0]);
    if (d.n * d.k == 0) return;
    const std::vector<int64_t> rows = nd_rows("gather_nd", in[1], d);  // [n]
    const T* g = dy.dptr<T>();
    T* gx = dx.dptr<T>();
    // parallel over columns: each thread owns dx[:, c] and sums in index order
    const int64_t k = d.k;
    omp_for(omp_threads(d.n * d.k), k, [&](int64_t c) {
      for (int64_t i = 0; i < d.n; ++i) gx[rows[i] * k + c] += g[i * k + c];
    });
  });
}

/// data = indices.shape[1:] + shape[M:], out = shape.
void scatter_nd_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape s(a.t("shape"));
  for (int64_t v : s.d)
    if (v < 1) throw InferError(false, 0, "scatter_nd: shape " + s.str() + " must have positive dimensions");
  if (s.ndim() < 1) throw InferError(false, 0, "scatter_nd: shape must have at least one dimension");
  assign_out(out, 0, s);
  const Shape& idx = (*in)[1];
  if (!idx.rank_known()) return;
  check_nd_indices("scatter_nd", idx, s.ndim(), false);
  if (idx[0] < 0) return;
  std::vector<int64_t> dd(idx.d.begin() + 1, idx.d.end());
  for (int i = (int)idx[0]; i < s.ndim(); ++i) dd.push_back(s[i]);
  assign_in(in, 0, Shape(dd));
}

/// out [rows, k]: row r = data[i] for the last position i with row r, else 0 (or untouched under kAddTo).
void scatter_nd_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [n, k]
  const TBlob& y = out[0];  // [rows, k]
  if (req[0] == OpReq::kNullOp) return;
  const NdDims d = nd_dims("scatter_nd", y.shape, in[1].shape);
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("scatter_nd: accumulation needs float32/float64");
  const std::vector<int64_t> rows = nd_rows("scatter_nd", in[1], d);  // [n]
  std::vector<int64_t> last((size_t)d.rows(), -1);                    // [rows] the winning position
  for (int64_t i = 0; i < d.n; ++i) last[rows[i]] = i;
  any_switch(y.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    omp_for(omp_threads(y.size()), d.rows(), [&](int64_t r) {
      T* dst = yp + r * d.k;  // [k]
      const int64_t i = last[r];
      if (i >= 0) {
        const T* src = xp + i * d.k;  // [k]
        for (int64_t c = 0; c < d.k; ++c) assign_req(dst[c], req[0], src[c]);
      } else if (req[0] != OpReq::kAddTo) {
        for (int64_t c = 0; c < d.k; ++c) dst[c] = T(0);
      }
    });
  });
}

}  // namespace

void register_gather_nd_ops(OpRegistry& r) {
  {
    OpDef d;
    d.name = "gather_nd";
    d.description =
        "Gathers elements or slices from data into an array of shape indices.shape[1:] + data.shape[M:], "
        "M = indices.shape[0]: output[y0, ..., x...] = data[indices[0, y0, ...], ..., indices[M-1, y0, ...], x...].";
    d.input_names_ = {"data", "indices"};
    d.infer_shape = gather_nd_infer_shape;
    d.infer_type = nd_infer_type;
    d.cpu = gather_nd_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      // the indices' gradient is a zeros_like node, as MXNet's
      std::vector<NodeEntry> g = make_backward("_backward_gather_nd", f, {og[0], f->inputs[1]});
      g[1] = zeros_like(f->inputs[1], f->name + "_backward_indices");
      return g;
    };
    r.add(std::move(d));
    OpDef b;
    b.name = "_backward_gather_nd";
    b.description = "Backward of gather_nd: the scatter-add of the output gradient.";
    b.input_names_ = {"ograd", "indices"};
    b.output_names_ = {"data_grad", "indices_grad"};
    b.is_backward = true;
    b.non_differentiable = true;
    b.cpu = gather_nd_backward;
    r.add(std::move(b));
  }
  {
    OpDef d;
    d.name = "scatter_nd";
    d.description =
        "Scatters data into a new array of the given shape (zeros elsewhere): the inverse of gather_nd. With "
        "repeated indices the last one (in index order) wins.";
    d.params = {param("shape", ParamType::kShape, "", "Shape of output.")};
    d.input_names_ = {"data", "indices"};
    d.infer_shape = scatter_nd_infer_shape;
    d.infer_type = nd_infer_type;
    d.cpu = scatter_nd_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      // MXNet's: gather_nd of the output gradient; zeros for the indices
      NodeEntry g;
      g.node = make_node("gather_nd", f->name + "_backward", {}, {og[0], f->inputs[1]});
      return std::vector<NodeEntry>{g, zeros_like(f->inputs[1], f->name + "_backward_indices")};
    };
    r.add(std::move(d));
  }
}

}  // namespace index_ops
}  // namespace kiln
