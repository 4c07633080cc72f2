// Embedding: a row gather from a [V, D] table, and its backward, a scatter-add into the table
// (MXNet src/operator/tensor/indexing_op{.cc,.h}).
//
// data [...] (K indices of any dtype, any shape), weight [V, D], output [..., D]
// (V = input_dim, D = output_dim, K = data.size()). Indices are truncated toward zero and
// clipped to [0, V-1] (MXNet's Take<clip=true>); NaN maps to row 0.
// Backward: dweight[idx[k]] += dy[k] over k in ascending order (deterministic, independent of
// the thread count); data gets a zero gradient (MXNet refuses a data gradient request).
#include <cstring>
#include <numeric>
#include <utility>

#include "seq_common.h"

namespace kiln {
namespace seq {
namespace {

const char* kOp = "Embedding";

void embedding_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t V = a.i("input_dim"), D = a.i("output_dim");
  assign_in(in, 1, Shape{V, D});
  // data -> output = data.shape + (D,)
  const Shape& x = (*in)[0];
  if (x.rank_known()) {
    std::vector<int64_t> od = x.d;
    od.push_back(D);
    assign_out(out, 0, Shape(od));
  }
  // output -> data (back-inference, e.g. from a known head shape)
  const Shape& y = (*out)[0];
  if (y.rank_known()) {
    if (y.ndim() < 1)
      throw InferError(false, 0, std::string(kOp) + ": output " + y.str() + " must have rank >= 1 (data.shape + (" +
                                     std::to_string(D) + ",))");
    if (y[y.ndim() - 1] >= 0 && y[y.ndim() - 1] != D)
      throw InferError(false, 0, std::string(kOp) + ": output " + y.str() + " must end in output_dim=" + std::to_string(D));
    assign_in(in, 0, Shape(std::vector<int64_t>(y.d.begin(), y.d.end() - 1)));
  }
}

/// weight and output have one type: the weight's or the output's when known (they must agree),
/// else `dtype` (MXNet's EmbeddingOpType: dtype is only the default); the indices may have any
/// type (default: that type).
void embedding_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  const DType param = dtype_from_name(a.s("dtype"));
  DType t = param;
  const DType w = (*in)[1], y = (*out)[0];
  if (w != DType::kUnknown && y != DType::kUnknown && w != y)
    throw InferError(false, 0, std::string(kOp) + ": output type " + dtype_name(y) + " differs from the weight type " +
                                   dtype_name(w));
  if (w != DType::kUnknown) t = w;
  else if (y != DType::kUnknown) t = y;
  (*in)[1] = t;
  (*out)[0] = t;
  // indices of unknown type default to `dtype` (a float16 weight's indices would not be exact)
  if ((*in)[0] == DType::kUnknown) (*in)[0] = param;
}

/// The K indices of `data` as rows of a V-row table: truncated toward zero, then clipped to
/// [0, V-1]; NaN -> 0 (compared as double, so huge values clip by sign).
std::vector<int64_t> embedding_rows(const TBlob& data, int64_t V) {
  std::vector<int64_t> j((size_t)data.size());  // [K]
  index_ops::any_switch(data.dtype, [&](auto z) {
    using I = decltype(z);
    const I* p = data.dptr<I>();  // [K]
    for (size_t k = 0; k < j.size(); ++k) {
      const double d = (double)p[k];
      j[k] = !(d >= 1) ? 0 : (d >= (double)V ? V - 1 : (int64_t)d);
    }
  });
  return j;
}

/// Checks the table against the parameters (the shape functions already did at bind time;
/// this guards direct kernel calls).
void check_table(const Attrs& a, const Shape& w, const char* what) {
  const int64_t V = a.i("input_dim"), D = a.i("output_dim");
  KILN_CHECK(w.ndim() == 2 && w[0] == V && w[1] == D, std::string(kOp) + ": " + what + " " + w.str() +
                                                          " does not match (input_dim, output_dim) = (" +
                                                          std::to_string(V) + ", " + std::to_string(D) + ")");
}

void embedding_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const TBlob& w = in[1];   // [V, D]
  const TBlob& y = out[0];  // [K, D]
  if (req[0] == OpReq::kNullOp) return;
  check_table(a, w.shape, "weight");
  const int64_t V = w.shape[0], D = w.shape[1];
  const int64_t K = in[0].size();
  KILN_CHECK(y.size() == K * D, std::string(kOp) + ": output " + y.shape.str() + " does not hold data " +
                                    in[0].shape.str() + " x output_dim " + std::to_string(D));
  if (K * D == 0) return;
  const std::vector<int64_t> j = embedding_rows(in[0], V);  // [K]
  const bool add = req[0] == OpReq::kAddTo;
  index_ops::any_switch(w.dtype, [&](auto z) {
    using T = decltype(z);
    const T* wp = w.dptr<T>();  // [V, D]
    T* yp = y.dptr<T>();        // [K, D]
    const int nt = omp_threads(K * D);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t k = 0; k < K; ++k) {
      const T* src = wp + j[k] * D;  // [D]
      T* dst = yp + k * D;           // [D]
      if (add) {
        for (int64_t i = 0; i < D; ++i) dst[i] += src[i];
      } else {
        std::memcpy(dst, src, (size_t)D * sizeof(T));
      }
    }
  });
}

/// Inputs: dy [K, D], data [K]; outputs: ddata [K] (zeros), dweight [V, D].
///
/// The (row, k) pairs are sorted by row (stably, so k stays ascending within a row); each
/// distinct row is then summed by one thread in ascending k, which is exactly the serial
/// order: results do not depend on the number of threads.
void embedding_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];   // [K, D]
  const TBlob& dw = out[1];  // [V, D]
  // data is an index array: its gradient is zero (MXNet fails such a request instead)
  if (req[0] == OpReq::kWriteTo || req[0] == OpReq::kWriteInplace) std::memset(out[0].ptr, 0, out[0].bytes());
  if (req[1] == OpReq::kNullOp) return;
  check_table(a, dw.shape, "weight gradient");
  const int64_t V = dw.shape[0], D = dw.shape[1];
  const int64_t K = in[1].size();
  KILN_CHECK(dy.size() == K * D, std::string(kOp) + ": output gradient " + dy.shape.str() + " does not match data " +
                                     in[1].shape.str() + " x output_dim " + std::to_string(D));
  float_switch(dw.dtype, [&](auto z) {
    using T = decltype(z);
    const T* g = dy.dptr<T>();  // [K, D]
    T* gw = dw.dptr<T>();       // [V, D]
    if (req[1] != OpReq::kAddTo) {
      const int nt = omp_threads(V * D);
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t v = 0; v < V; ++v) std::memset(gw + v * D, 0, (size_t)D * sizeof(T));
    }
    if (K * D == 0) return;
    const std::vector<int64_t> j = embedding_rows(in[1], V);  // [K]
    std::vector<int64_t> order((size_t)K);                      // positions sorted by row
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t p, int64_t q) { return j[p] < j[q]; });
    std::vector<int64_t> starts;  // first position in `order` of each distinct row, plus K
    for (int64_t s = 0; s < K; ++s)
      if (s == 0 || j[order[s]] != j[order[s - 1]]) starts.push_back(s);
    starts.push_back(K);
    const int64_t nrows = (int64_t)starts.size() - 1;
    const int nt = omp_threads(K * D);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (int64_t r = 0; r < nrows; ++r) {
      T* __restrict dst = gw + j[order[starts[r]]] * D;  // [D]
      for (int64_t s = starts[r]; s < starts[r + 1]; ++s) {
        const T* __restrict src = g + order[s] * D;      // [D]
        for (int64_t i = 0; i < D; ++i) dst[i] += src[i];
      }
    }
  });
}

}  // namespace

void register_embedding(OpRegistry& r) {
  OpDef d;
  d.name = kOp;
  d.description =
      "Maps integer indices to vector representations (embeddings): output = weight[clip(data)], "
      "shape data.shape + (output_dim,). Indices are truncated toward zero and clipped to "
      "[0, input_dim - 1].";
  d.params = {
      param_range("input_dim", ParamType::kInt, "", 1, 2147483647.0, "Vocabulary size of the input indices."),
      param_range("output_dim", ParamType::kInt, "", 1, 2147483647.0, "Dimension of the embedding vectors."),
      param_enum("dtype", "float32", {"bfloat16", "float16", "float32", "float64", "int32", "int64", "int8", "uint8"},
                 "Data type of weight."),
      param("sparse_grad", ParamType::kBool, "False",
            "Compute row_sparse gradient in the backward calculation. If set to True, the grad's storage type is "
            "row_sparse. Kiln accepts True and computes the same values as a dense gradient."),
  };
  d.input_names_ = {"data", "weight"};
  d.infer_shape = embedding_infer_shape;
  d.infer_type = embedding_infer_type;
  d.cpu = embedding_forward;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_Embedding", n, {og[0], n->inputs[0]});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_Embedding", fwd);
  bw.input_names_ = {"ograd", "data"};
  bw.output_names_ = {"data_grad", "weight_grad"};
  bw.cpu = embedding_backward;
  r.add(bw);
}

}  // namespace seq
}  // namespace kiln
