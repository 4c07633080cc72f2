// ravel_multi_index (alias _ravel_multi_index) and unravel_index (alias _unravel_index), MXNet
// src/operator/tensor/ravel.h: conversions between coordinate tuples and flat positions in an
// array of the given shape, computed as MXNet's kernels do (no range check: the results are
// numbers, nothing is read at them):
//   ravel:   data [M, N] -> out [N],    out[i] = ((c0 * s1 + c1) * s2 + c2) ...  (each step truncated)
//   unravel: data [N]    -> out [M, N], digits of trunc(data[i]) in the mixed radix shape, last first;
//            the leading coordinate is the quotient left (so it may exceed shape[0])
// Kiln refuses shape entries below 1 (MXNet divides by them: SIGFPE for 0).
#include <string>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

std::vector<int64_t> ravel_shape(const char* op, const Attrs& a) {
  const std::vector<int64_t>& s = a.t("shape");
  if (s.empty()) throw InferError(false, 0, std::string("Empty shape parameter for ") + op + " operator.");
  for (int64_t v : s)
    if (v < 1) throw InferError(false, 0, std::string(op) + ": shape " + Shape(s).str() + " must have positive entries");
  return s;
}

void ravel_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t m = (int64_t)ravel_shape("ravel_multi_index", a).size();
  const Shape& x = (*in)[0];
  if (x.rank_known()) {
    if (x.ndim() != 2)
      throw InferError(true, 0, "Input to ravel_multi_index must be two-dimensional, got " + x.str());
    if (x[0] >= 0 && x[0] != m)
      throw InferError(true, 0, "ravel_multi_index: the first dimension of the input " + x.str() +
                                    " does not match the " + std::to_string(m) + " entries of shape");
    assign_in(in, 0, Shape({m, x[1]}));
    assign_out(out, 0, Shape({x[1]}));
  } else if ((*out)[0].rank_known()) {
    if ((*out)[0].ndim() != 1) throw InferError(false, 0, "Output of ravel_multi_index must be one-dimensional");
    assign_in(in, 0, Shape({m, (*out)[0][0]}));
  }
}

void unravel_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t m = (int64_t)ravel_shape("unravel_index", a).size();
  const Shape& x = (*in)[0];
  if (x.rank_known()) {
    if (x.ndim() != 1) throw InferError(true, 0, "Input to unravel_index must be one-dimensional, got " + x.str());
    assign_out(out, 0, Shape({m, x[0]}));
  } else if ((*out)[0].rank_known()) {
    if ((*out)[0].ndim() != 2) throw InferError(false, 0, "Output of unravel_index must be two-dimensional");
    assign_in(in, 0, Shape({(*out)[0][1]}));
  }
}

/// MXNet's ravel step: ret * s + v in v's type (index_t arithmetic for integers), truncated.
template <typename T>
inline int64_t ravel_step(int64_t ret, int64_t s, T v) {
  if constexpr (std::is_integral<T>::value) return (int64_t)((uint64_t)ret * (uint64_t)s + (uint64_t)(int64_t)v);
  else return index_value((T)((T)(ret * s) + v));
}

void ravel_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [m, n]
  const TBlob& y = out[0];  // [n]
  if (req[0] == OpReq::kNullOp) return;
  const std::vector<int64_t> s = a.t("shape");
  const int64_t m = (int64_t)s.size(), n = y.size();
  KILN_CHECK(x.size() == m * n, "ravel_multi_index: input " + x.shape.str() + " does not match shape " + Shape(s).str());
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("ravel_multi_index: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    omp_for(omp_threads(m * n), n, [&](int64_t i) {
      int64_t r = 0;
      for (int64_t j = 0; j < m; ++j) r = ravel_step(r, s[j], xp[j * n + i]);
      assign_req(yp[i], req[0], (T)r);
    });
  });
}

void unravel_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [n]
  const TBlob& y = out[0];  // [m, n]
  if (req[0] == OpReq::kNullOp) return;
  const std::vector<int64_t> s = a.t("shape");
  const int64_t m = (int64_t)s.size(), n = x.size();
  KILN_CHECK(y.size() == m * n, "unravel_index: output " + y.shape.str() + " does not match shape " + Shape(s).str());
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("unravel_index: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    omp_for(omp_threads(m * n), n, [&](int64_t i) {
      int64_t idx = index_value(xp[i]);
      for (int64_t j = m - 1; j >= 1; --j) {
        const int64_t q = idx / s[j];  // C division: a negative flat index gives negative digits, as MXNet
        assign_req(yp[j * n + i], req[0], (T)(idx - q * s[j]));
        idx = q;
      }
      assign_req(yp[i], req[0], (T)idx);  // the leading coordinate is what remains (beyond shape[0] too)
    });
  });
}

}  // namespace

void register_ravel_ops(OpRegistry& r) {
  const std::vector<ParamDef> params = {
      param("shape", ParamType::kShape, "()", "Shape of the array into which the multi-indices apply."),
  };
  {
    OpDef d;
    d.name = "_ravel_multi_index";
    d.aliases = {"ravel_multi_index"};
    d.description = "Converts a batch of index arrays ([M, N]) into an array of flat indices ([N]) for the given shape.";
    d.params = params;
    d.infer_shape = ravel_infer_shape;
    d.cpu = ravel_forward;
    d.gradient = zero_grads;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_unravel_index";
    d.aliases = {"unravel_index"};
    d.description = "Converts an array of flat indices ([N]) into a batch of index arrays ([M, N]) for the given shape.";
    d.params = params;
    d.infer_shape = unravel_infer_shape;
    d.cpu = unravel_forward;
    d.gradient = zero_grads;
    r.add(std::move(d));
  }
}

}  // namespace index_ops
}  // namespace kiln
