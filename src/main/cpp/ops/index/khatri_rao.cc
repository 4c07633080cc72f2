// khatri_rao (MXNet src/operator/contrib/krprod.cc): the column-wise Kronecker product of num_args
// matrices A_j [r_j, k]: out [r_0 * ... * r_{n-1}, k], out[(i_0, ..., i_{n-1}), c] = prod_j A_j[i_j, c]
// with the row index row-major over the inputs (the first slowest). MXNet 1.9 registers no
// gradient; Kiln's: dA_j[i, c] = sum over the output rows with i_j = i of g[row, c] * prod_{l != j}
// A_l[i_l, c] (each dA_j element sums its rows in order, no write conflicts).
#include <string>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

std::vector<std::string> kr_input_names(const Attrs& a) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i));
  return v;
}

void kr_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  int64_t rows = 1, cols = -1;
  bool known = true;
  for (size_t j = 0; j < in->size(); ++j) {
    const Shape& s = (*in)[j];
    if (!s.rank_known()) {
      known = false;
      continue;
    }
    if (s.ndim() != 2)
      throw InferError(true, (int)j, "khatri_rao: every input must be a matrix, input " + std::to_string(j) + " is " + s.str());
    if (cols >= 0 && s[1] >= 0 && s[1] != cols)
      throw InferError(true, (int)j, "khatri_rao: input " + std::to_string(j) + " " + s.str() + " has another number of "
                                     "columns than " + std::to_string(cols));
    if (s[1] >= 0) cols = s[1];
    if (s[0] < 0) known = false;
    else rows *= s[0];
  }
  if (known && cols >= 0) assign_out(out, 0, Shape({rows, cols}));
}

struct KrDims {
  std::vector<int64_t> r;  // rows of each input
  int64_t rows = 1, k = 0;
};

KrDims kr_dims(const std::vector<TBlob>& mats) {
  KrDims d;
  d.k = mats.empty() ? 0 : mats[0].shape[1];
  for (const TBlob& m : mats) {
    d.r.push_back(m.shape[0]);
    d.rows *= m.shape[0];
  }
  return d;
}

void kr_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const KrDims d = kr_dims(in);
  float_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    T* y = out[0].dptr<T>();  // [rows, k]
    omp_for(omp_threads(d.rows * d.k * (int64_t)in.size()), d.rows, [&](int64_t row) {
      for (int64_t c = 0; c < d.k; ++c) {
        int64_t rem = row;
        T p = T(1);
        for (int j = (int)in.size() - 1; j >= 0; --j) {  // A_j [r_j, k]
          p *= in[j].dptr<T>()[(rem % d.r[j]) * d.k + c];
          rem /= d.r[j];
        }
        assign_req(y[row * d.k + c], req[0], p);
      }
    });
  });
}

/// Inputs: g [rows, k], A_0 .. A_{n-1}; outputs: dA_0 .. dA_{n-1}.
void kr_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const std::vector<TBlob> mats(in.begin() + 1, in.end());
  const KrDims d = kr_dims(mats);
  const int n = (int)mats.size();
  float_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    const T* g = in[0].dptr<T>();  // [rows, k]
    for (int j = 0; j < n; ++j) {
      if (req[j] == OpReq::kNullOp) continue;
      T* dA = out[j].dptr<T>();  // [r_j, k]
      int64_t inner = 1;         // rows of the inputs after j
      for (int l = j + 1; l < n; ++l) inner *= d.r[l];
      const int64_t rj = d.r[j], outer = d.rows / std::max<int64_t>(1, rj * inner);
      omp_for(omp_threads(d.rows * d.k), rj, [&](int64_t i) {
        for (int64_t c = 0; c < d.k; ++c) {
          T acc = T(0);
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t q = 0; q < inner; ++q) {
              const int64_t row = (o * rj + i) * inner + q;
              int64_t rem = row;
              T p = g[row * d.k + c];
              for (int l = n - 1; l >= 0; --l) {
                if (l != j) p *= mats[l].dptr<T>()[(rem % d.r[l]) * d.k + c];
                rem /= d.r[l];
              }
              acc += p;
            }
          assign_req(dA[i * d.k + c], req[j], acc);
        }
      });
    }
  });
}

}  // namespace

void register_khatri_rao_ops(OpRegistry& r) {
  OpDef d;
  d.name = "khatri_rao";
  d.description =
      "Computes the Khatri-Rao product of the input matrices: the column-wise Kronecker product, shape "
      "(prod of the row counts, columns).";
  d.params = {param("num_args", ParamType::kInt, "", "Number of input matrices.", 1, kMaxArity)};
  d.input_names_fn = kr_input_names;
  d.infer_shape = kr_infer_shape;
  d.cpu = kr_forward;
  d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
    std::vector<NodeEntry> ins = {og[0]};
    for (const NodeEntry& e : f->inputs) ins.push_back(e);
    return make_backward("_backward_khatri_rao", f, ins);
  };
  OpDef b = backward_def("_backward_khatri_rao", d);
  b.input_names_fn = [](const Attrs& a) {
    std::vector<std::string> v = {"ograd"};
    for (const std::string& s : kr_input_names(a)) v.push_back(s);
    return v;
  };
  b.output_names_fn = [](const Attrs& a) {
    std::vector<std::string> v;
    for (const std::string& s : kr_input_names(a)) v.push_back(s + "_grad");
    return v;
  };
  b.cpu = kr_backward;
  r.add(std::move(d));
  r.add(std::move(b));
}

}  // namespace index_ops
}  // namespace kiln
