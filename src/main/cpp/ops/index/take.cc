// Gathers by index and selection: take, pick, one_hot, where (MXNet src/operator/tensor/
// indexing_op.h, broadcast_reduce_op.h (pick), control_flow_op.h (where)). Index arrays may have
// any dtype; their values are truncated toward zero (MXNet's static_cast) and then clipped,
// wrapped or checked by `mode`.
#include <string>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

enum class Mode { kClip, kWrap, kRaise };

Mode parse_mode(const std::string& s) { return s == "wrap" ? Mode::kWrap : s == "raise" ? Mode::kRaise : Mode::kClip; }

/// Index j into [0, n) by mode; -1 when out of range in raise mode.
inline int64_t fix_index(int64_t j, int64_t n, Mode m) {
  if (m == Mode::kClip) return j < 0 ? 0 : (j >= n ? n - 1 : j);
  if (m == Mode::kWrap) {
    if (j == INT64_MIN) return 0;
    int64_t r = j % n;
    return r < 0 ? r + n : r;
  }
  return (j < 0 || j >= n) ? -1 : j;
}

/// Reads an index array of any dtype as int64.
std::vector<int64_t> read_indices(const TBlob& b) {
  std::vector<int64_t> v((size_t)b.size());
  any_switch(b.dtype, [&](auto z) {
    using I = decltype(z);
    const I* p = b.dptr<I>();  // [n]
    for (size_t i = 0; i < v.size(); ++i) v[i] = index_value(p[i]);
  });
  return v;
}

// ---- take -------------------------------------------------------------------------------------

/// out = a.shape[:axis] + indices.shape + a.shape[axis+1:]
void take_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  const Shape& idx = (*in)[1];
  if (!x.rank_known() || !idx.rank_known()) return;
  if (x.ndim() == 0) throw InferError(true, 0, "take: the data array must have at least one dimension");
  const int ax = norm_axis(a.i("axis"), x.ndim());
  if (ax < 0)
    throw InferError(true, 0, "take: axis=" + std::to_string(a.i("axis")) + " is out of range for data shape " + x.str());
  if (x[ax] == 0 && idx.known() && idx.size() > 0)
    throw InferError(true, 0, "take: cannot take from an empty axis (data shape " + x.str() + ")");
  std::vector<int64_t> od;
  for (int i = 0; i < ax; ++i) od.push_back(x[i]);
  for (int i = 0; i < idx.ndim(); ++i) od.push_back(idx[i]);
  for (int i = ax + 1; i < x.ndim(); ++i) od.push_back(x[i]);
  assign_out(out, 0, Shape(od));
}

/// Output type = data type (both ways); indices default to int32 when unknown.
void take_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  DType t = (*in)[0] != DType::kUnknown ? (*in)[0] : (*out)[0];
  if (t == DType::kUnknown) return;
  if ((*in)[0] != DType::kUnknown && (*out)[0] != DType::kUnknown && (*in)[0] != (*out)[0])
    throw InferError(false, 0, std::string("take: output type ") + dtype_name((*out)[0]) + " differs from data type " +
                                   dtype_name((*in)[0]));
  (*in)[0] = t;
  (*out)[0] = t;
  if ((*in)[1] == DType::kUnknown) (*in)[1] = DType::kInt32;
}

struct TakeDims {
  int64_t outer, n, inner, k;  // a: [outer, n, inner], indices: [k], out: [outer, k, inner]
};

TakeDims take_dims(const Attrs& a, const Shape& x, const Shape& idx) {
  const int ax = norm_axis(a.i("axis"), x.ndim());
  KILN_CHECK(ax >= 0, "take: axis out of range for " + x.str());
  return {x.prod(0, ax), x[ax], x.prod(ax + 1, x.ndim()), idx.size()};
}

/// Indices mapped into [0, n) by mode; raise mode throws on an out-of-range index.
std::vector<int64_t> take_indices(const Attrs& a, const TBlob& idx, int64_t n, bool forward) {
  KILN_CHECK(n > 0, "take: cannot take from an empty axis");
  const Mode m = parse_mode(a.s("mode"));
  std::vector<int64_t> j = read_indices(idx);
  for (auto& v : j) {
    const int64_t raw = v;
    v = fix_index(v, n, (m == Mode::kRaise && !forward) ? Mode::kClip : m);
    if (v < 0)
      throw KilnError("take: index " + (raw == INT64_MIN ? std::string("(not a number)") : std::to_string(raw)) +
                      " is out of bounds for an axis of size " + std::to_string(n) + " (mode='raise')");
  }
  return j;
}

void take_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const TBlob& x = in[0];    // [outer, n, inner]
  const TBlob& y = out[0];   // [outer, k, inner]
  if (req[0] == OpReq::kNullOp) return;
  const TakeDims d = take_dims(a, x.shape, in[1].shape);
  if (d.outer * d.k * d.inner == 0) return;
  const std::vector<int64_t> j = take_indices(a, in[1], d.n, true);  // [k]
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("take: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    const int nt = omp_threads(d.outer * d.k * d.inner);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < d.outer * d.k; ++r) {
      const int64_t o = r / d.k, q = r % d.k;
      const T* src = xp + (o * d.n + j[q]) * d.inner;  // [inner]
      T* dst = yp + r * d.inner;                         // [inner]
      for (int64_t i = 0; i < d.inner; ++i) assign_req(dst[i], req[0], src[i]);
    }
  });
}

/// Inputs: dy [outer, k, inner], indices [k]; outputs: da [outer, n, inner] (scatter-add), dindices (zeros).
void take_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];
  const TBlob& dx = out[0];
  if (req.size() > 1 && req[1] != OpReq::kNullOp && req[1] != OpReq::kAddTo) zero_unless_add(out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const TakeDims d = take_dims(a, dx.shape, in[1].shape);
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    zero_unless_add(dx, req[0]);
    if (d.outer * d.k * d.inner == 0) return;
    const std::vector<int64_t> j = take_indices(a, in[1], d.n, false);
    const T* g = dy.dptr<T>();
    T* gx = dx.dptr<T>();
    const int nt = omp_threads(d.outer * d.k * d.inner);
    // parallel over outer rows: each thread owns dx[o] (no write conflicts)
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t q = 0; q < d.k; ++q) {
        const T* src = g + (o * d.k + q) * d.inner;     // [inner]
        T* dst = gx + (o * d.n + j[q]) * d.inner;       // [inner]
        for (int64_t i = 0; i < d.inner; ++i) dst[i] += src[i];
      }
  });
}

// ---- pick -------------------------------------------------------------------------------------

/// Output: data shape without axis (kept as 1 with keepdims; (1,) for 1-D data, MXNet 1.x's
/// legacy shapes). The index takes either form, whatever keepdims says, as MXNet: the axis kept as
/// 1 when the index has the data's rank (labels of shape (N, 1)), else removed; an index of unknown
/// rank gets the output's form. Both hold the same elements in the same order.
void pick_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  if (!a.has("axis")) throw InferError(true, 0, "pick: axis=None is not supported by pick yet. Must specify an axis.");
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  if (x.ndim() == 0) throw InferError(true, 0, "pick: the data array must have at least one dimension");
  const int ax = norm_axis(a.i("axis"), x.ndim());
  if (ax < 0)
    throw InferError(true, 0, "pick: axis=" + std::to_string(a.i("axis")) + " is out of range for data shape " + x.str());
  std::vector<int64_t> kept, removed;
  for (int i = 0; i < x.ndim(); ++i) {
    kept.push_back(i == ax ? 1 : x[i]);
    if (i != ax) removed.push_back(x[i]);
  }
  if (removed.empty()) removed.push_back(1);
  const Shape& idx = (*in)[1];
  const bool index_kept = idx.rank_known() ? idx.ndim() == x.ndim() : a.b("keepdims");  // unknown: the output's form
  assign_in(in, 1, Shape(index_kept ? kept : removed));
  assign_out(out, 0, Shape(a.b("keepdims") ? kept : removed));
}

void pick_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  DType t = (*in)[0] != DType::kUnknown ? (*in)[0] : (*out)[0];
  if (t == DType::kUnknown) return;
  if ((*in)[0] != DType::kUnknown && (*out)[0] != DType::kUnknown && (*in)[0] != (*out)[0])
    throw InferError(false, 0, "pick: output type differs from the data type");
  (*in)[0] = t;
  (*out)[0] = t;
  if ((*in)[1] == DType::kUnknown) (*in)[1] = t;
}

struct PickDims {
  int64_t outer, n, inner;  // data [outer, n, inner], index/out [outer, inner]
};

PickDims pick_dims(const Attrs& a, const Shape& x) {
  const int ax = norm_axis(a.i("axis"), x.ndim());
  KILN_CHECK(ax >= 0, "pick: axis out of range for " + x.str());
  return {x.prod(0, ax), x[ax], x.prod(ax + 1, x.ndim())};
}

void pick_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [outer, n, inner]
  const TBlob& y = out[0];  // [outer, inner]
  if (req[0] == OpReq::kNullOp) return;
  const PickDims d = pick_dims(a, x.shape);
  if (d.outer * d.inner == 0) return;
  KILN_CHECK(d.n > 0, "pick: cannot pick from an empty axis");
  const Mode m = parse_mode(a.s("mode"));
  const std::vector<int64_t> j = read_indices(in[1]);  // [outer * inner]
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("pick: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    const int nt = omp_threads(d.outer * d.inner);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < d.outer * d.inner; ++r) {
      const int64_t o = r / d.inner, i = r % d.inner;
      const int64_t k = fix_index(j[r], d.n, m);
      assign_req(yp[r], req[0], xp[(o * d.n + k) * d.inner + i]);
    }
  });
}

/// Inputs: dy [outer, inner], index [outer, inner]; outputs: dx [outer, n, inner], dindex (zeros).
void pick_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];
  const TBlob& dx = out[0];
  if (req.size() > 1 && req[1] != OpReq::kNullOp && req[1] != OpReq::kAddTo) zero_unless_add(out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const PickDims d = pick_dims(a, dx.shape);
  const Mode m = parse_mode(a.s("mode"));
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    zero_unless_add(dx, req[0]);
    if (d.outer * d.inner == 0 || d.n == 0) return;
    const std::vector<int64_t> j = read_indices(in[1]);
    const T* g = dy.dptr<T>();
    T* gx = dx.dptr<T>();
    for (int64_t r = 0; r < d.outer * d.inner; ++r) {
      const int64_t o = r / d.inner, i = r % d.inner;
      gx[(o * d.n + fix_index(j[r], d.n, m)) * d.inner + i] += g[r];
    }
  });
}

// ---- one_hot ----------------------------------------------------------------------------------

void one_hot_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& idx = (*in)[0];
  if (!idx.rank_known()) return;
  std::vector<int64_t> od = idx.d;
  od.push_back(a.i("depth"));
  assign_out(out, 0, Shape(od));
}

void one_hot_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  const DType t = dtype_from_name(a.s("dtype"));
  if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
    throw InferError(false, 0, std::string("one_hot: output type ") + dtype_name((*out)[0]) + " differs from dtype=" +
                                   a.s("dtype"));
  (*out)[0] = t;
  if ((*in)[0] == DType::kUnknown) (*in)[0] = DType::kInt32;
}

void one_hot_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const TBlob& y = out[0];  // [n, depth]
  if (req[0] == OpReq::kNullOp) return;
  const int64_t depth = a.i("depth");
  const std::vector<int64_t> j = read_indices(in[0]);  // [n]
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("one_hot: accumulation needs float32/float64");
  const double on = a.f("on_value"), off = a.f("off_value");
  any_switch(y.dtype, [&](auto z) {
    using T = decltype(z);
    T* yp = y.dptr<T>();
    const int64_t n = (int64_t)j.size();
    const int nt = omp_threads(n * depth);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < depth; ++c) assign_req(yp[r * depth + c], req[0], (T)(c == j[r] ? on : off));
  });
}

// ---- where ------------------------------------------------------------------------------------

/// x, y and the output share a shape; condition has that shape or is 1-D of length x.shape[0].
void where_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  Shape s = (*out)[0];
  for (int i = 1; i <= 2; ++i) {
    const Shape before = s;
    if (!shape_assign(&s, (*in)[i]))
      throw InferError(true, i, "where: x and y must have the same shape (got " + before.str() + " and " +
                                    (*in)[i].str() + ")");
  }
  assign_in(in, 1, s);
  assign_in(in, 2, s);
  assign_out(out, 0, s);
  const Shape& c = (*in)[0];
  if (!c.rank_known() || !s.rank_known()) return;
  if (c.ndim() == 1 && s.ndim() >= 1 && c.ndim() != s.ndim()) {
    if (c[0] >= 0 && s[0] >= 0 && c[0] != s[0])
      throw InferError(true, 0, "where: a 1-D condition " + c.str() + " must have the length of x's first dim " +
                                    s.str());
    assign_in(in, 0, Shape({s[0]}));
    return;
  }
  if (c.ndim() == 1 && s.ndim() == 1) {
    assign_in(in, 0, s);
    return;
  }
  if (c.ndim() != s.ndim())
    throw InferError(true, 0, "where: condition " + c.str() + " must have the shape of x " + s.str() +
                                  " or be 1-D of length x.shape[0]");
  assign_in(in, 0, s);
}

/// x, y, out share a type; the condition may have any type (defaults to x's).
void where_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  DType t = (*out)[0];
  for (int i = 1; i <= 2; ++i) {
    if ((*in)[i] == DType::kUnknown) continue;
    if (t != DType::kUnknown && t != (*in)[i])
      throw InferError(true, i, std::string("where: x and y must have the same type (") + dtype_name(t) + " vs " +
                                    dtype_name((*in)[i]) + ")");
    t = (*in)[i];
  }
  if (t == DType::kUnknown) return;
  (*in)[1] = (*in)[2] = (*out)[0] = t;
  if ((*in)[0] == DType::kUnknown) (*in)[0] = t;
}

/// cond [n] (or [rows] with per-row selection), x/y/out [rows, cols].
std::vector<uint8_t> read_cond(const TBlob& c) {
  std::vector<uint8_t> v((size_t)c.size());
  any_switch(c.dtype, [&](auto z) {
    using C = decltype(z);
    const C* p = c.dptr<C>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i] != C(0);
  });
  return v;
}

void where_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const TBlob& o = out[0];  // [rows, cols]
  if (req[0] == OpReq::kNullOp) return;
  const std::vector<uint8_t> c = read_cond(in[0]);
  const int64_t n = o.size();
  const int64_t cols = c.size() == (size_t)n ? 1 : (c.empty() ? 1 : n / (int64_t)c.size());
  if (req[0] == OpReq::kAddTo && !is_float(o.dtype)) throw KilnError("where: accumulation needs float32/float64");
  any_switch(o.dtype, [&](auto z) {
    using T = decltype(z);
    const T* x = in[1].dptr<T>();
    const T* y = in[2].dptr<T>();
    T* op = o.dptr<T>();
    const int nt = omp_threads(n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; ++i) assign_req(op[i], req[0], c[i / cols] ? x[i] : y[i]);
  });
}

/// Inputs: dout, cond; outputs: dcond (zeros), dx = cond ? dout : 0, dy = cond ? 0 : dout.
void where_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const TBlob& g = in[0];
  if (req[0] != OpReq::kNullOp && req[0] != OpReq::kAddTo) zero_unless_add(out[0], req[0]);
  const std::vector<uint8_t> c = read_cond(in[1]);
  const int64_t n = g.size();
  const int64_t cols = c.size() == (size_t)n ? 1 : (c.empty() ? 1 : n / (int64_t)c.size());
  float_switch(g.dtype, [&](auto z) {
    using T = decltype(z);
    const T* gp = g.dptr<T>();
    T* dx = out[1].dptr<T>();
    T* dy = out[2].dptr<T>();
    const int nt = omp_threads(n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const bool s = c[i / cols];
      assign_req(dx[i], req[1], s ? gp[i] : T(0));
      assign_req(dy[i], req[2], s ? T(0) : gp[i]);
    }
  });
}

// ---- batch_take -------------------------------------------------------------------------------

/// out = indices' shape (both ways); a has rank >= 2 and a.size / a.shape[-1] == indices.size.
void batch_take_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  if ((*in)[1].rank_known()) assign_out(out, 0, (*in)[1]);
  else if ((*out)[0].rank_known()) assign_in(in, 1, (*out)[0]);
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  if (x.ndim() < 2) throw InferError(true, 0, "batch_take: the data array must have at least 2 dimensions, got " + x.str());
  const Shape& idx = (*in)[1];
  if (x.known() && idx.known() && x.prod(0, x.ndim() - 1) != idx.size())
    throw InferError(true, 1, "batch_take: indices " + idx.str() + " must have as many elements as data " + x.str() +
                                  " without its last dimension");
}

/// Output type = a's type; indices are int32 (MXNet's batch_take takes no other type).
void batch_take_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  if ((*in)[1] != DType::kUnknown && (*in)[1] != DType::kInt32)
    throw InferError(true, 1, std::string("batch_take: indices must be int32, got ") + dtype_name((*in)[1]));
  (*in)[1] = DType::kInt32;
  const DType t = (*in)[0] != DType::kUnknown ? (*in)[0] : (*out)[0];
  if (t == DType::kUnknown) return;
  if ((*in)[0] != DType::kUnknown && (*out)[0] != DType::kUnknown && (*in)[0] != (*out)[0])
    throw InferError(false, 0, "batch_take: output type differs from the data type");
  (*in)[0] = (*out)[0] = t;
}

/// out[i] = a[i, clip(indices[i], 0, M - 1)] with a viewed as [n, M].
void batch_take_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [n, M]
  const TBlob& y = out[0];  // [n]
  if (req[0] == OpReq::kNullOp) return;
  const int64_t M = x.shape[x.shape.ndim() - 1], n = y.size();
  if (n == 0) return;
  KILN_CHECK(M > 0 && x.size() == n * M, "batch_take: data " + x.shape.str() + " does not match indices " + in[1].shape.str());
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("batch_take: accumulation needs float32/float64");
  const int32_t* j = in[1].dptr<int32_t>();  // [n]
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    omp_for(omp_threads(n), n, [&](int64_t i) { assign_req(yp[i], req[0], xp[i * M + fix_index(j[i], M, Mode::kClip)]); });
  });
}

/// Inputs: dy [n], indices [n]; outputs: da [n, M] (dy at the clipped index, else 0), dindices (zeros).
void batch_take_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];
  const TBlob& dx = out[0];
  if (req.size() > 1 && req[1] != OpReq::kNullOp && req[1] != OpReq::kAddTo) zero_unless_add(out[1], req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const int64_t M = dx.shape[dx.shape.ndim() - 1], n = dy.size();
  KILN_CHECK(dx.size() == n * M, "batch_take: gradient " + dx.shape.str() + " does not match " + dy.shape.str());
  const int32_t* j = in[1].dptr<int32_t>();  // [n]
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    const T* g = dy.dptr<T>();
    T* gx = dx.dptr<T>();
    omp_for(omp_threads(n * M), n, [&](int64_t i) {
      const int64_t k = fix_index(j[i], M, Mode::kClip);
      for (int64_t c = 0; c < M; ++c) assign_req(gx[i * M + c], req[0], c == k ? g[i] : T(0));
    });
  });
}

OpDef backward_def(const std::string& name, const std::vector<ParamDef>& params, std::vector<std::string> ins,
                   std::vector<std::string> outs, Kernel k) {
  OpDef d;
  d.name = name;
  d.description = "Backward of " + name.substr(10) + ".";
  d.params = params;
  d.input_names_ = std::move(ins);
  d.output_names_ = std::move(outs);
  d.is_backward = true;
  d.non_differentiable = true;
  d.cpu = std::move(k);
  return d;
}

}  // namespace

void register_take_ops(OpRegistry& r) {
  {
    const std::vector<ParamDef> params = {
        param("axis", ParamType::kInt, "0", "The axis of input array to be taken. For input tensor of rank r, it could be in the range of [-r, r-1]"),
        param_enum("mode", "clip", {"clip", "raise", "wrap"},
                   "Specify how out-of-bound indices bahave. Default is \"clip\"."),
    };
    OpDef d;
    d.name = "take";
    d.description = "Takes elements from an input array along the given axis.";
    d.params = params;
    d.input_names_ = {"a", "indices"};
    d.infer_shape = take_infer_shape;
    d.infer_type = take_infer_type;
    d.cpu = take_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      return make_backward("_backward_take", f, {og[0], f->inputs[1]});
    };
    r.add(std::move(d));
    r.add(backward_def("_backward_take", params, {"ograd", "indices"}, {"a_grad", "indices_grad"}, take_backward));
  }
  {
    const std::vector<ParamDef> params = {
        param("axis", ParamType::kInt, "-1", "int or None. The axis to picking the elements. Negative values means indexing from right to left. If is `None`, the elements in the index w.r.t the flattened input will be picked."),
        param("keepdims", ParamType::kBool, "False", "If true, the axis where we pick the elements is left in the result as dimension with size one."),
        param_enum("mode", "clip", {"clip", "wrap"}, "Specify how out-of-bound indices behave. Default is \"clip\"."),
    };
    OpDef d;
    d.name = "pick";
    d.aliases = {"choose_element_0index"};
    d.description = "Picks elements from an input array according to the input indices along the given axis.";
    d.params = params;
    d.input_names_ = {"data", "index"};
    d.infer_shape = pick_infer_shape;
    d.infer_type = pick_infer_type;
    d.cpu = pick_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      // the index's gradient is a zeros_like node, as MXNet's: a zero that the gradient pass can
      // see, so nothing non-differentiable before the index needs a gradient
      std::vector<NodeEntry> g = make_backward("_backward_pick", f, {og[0], f->inputs[1]});
      g[1] = zeros_like(f->inputs[1], f->name + "_index_backward");
      return g;
    };
    r.add(std::move(d));
    r.add(backward_def("_backward_pick", params, {"ograd", "index"}, {"data_grad", "index_grad"}, pick_backward));
  }
  {
    OpDef d;
    d.name = "one_hot";
    d.description = "Returns a one-hot array.";
    d.params = {
        param("depth", ParamType::kInt, "", "Depth of the one hot dimension.", 0, 2147483647),
        param("on_value", ParamType::kFloat, "1", "The value assigned to the locations represented by indices."),
        param("off_value", ParamType::kFloat, "0", "The value assigned to the locations not represented by indices."),
        param_enum("dtype", "float32", {"float16", "float32", "float64", "int32", "int64", "int8", "uint8"},
                   "DType of the output"),
    };
    d.input_names_ = {"indices"};
    d.infer_shape = one_hot_infer_shape;
    d.infer_type = one_hot_infer_type;
    d.cpu = one_hot_forward;
    d.gradient = zero_grads;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "batch_take";
    d.description =
        "Takes elements from a data batch: out[i] = a[i, indices[i]] (a viewed as [n, a.shape[-1]], indices "
        "clipped into range).";
    d.input_names_ = {"a", "indices"};
    d.infer_shape = batch_take_infer_shape;
    d.infer_type = batch_take_infer_type;
    d.cpu = batch_take_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      // MXNet 1.9 registers no gradient; Kiln's is pick's: the output gradient at the clipped index
      std::vector<NodeEntry> g = make_backward("_backward_batch_take", f, {og[0], f->inputs[1]});
      g[1] = zeros_like(f->inputs[1], f->name + "_indices_backward");
      return g;
    };
    r.add(std::move(d));
    r.add(backward_def("_backward_batch_take", {}, {"ograd", "indices"}, {"a_grad", "indices_grad"},
                       batch_take_backward));
  }
  {
    OpDef d;
    d.name = "where";
    d.description = "Return the elements, either from x or y, depending on the condition.";
    d.input_names_ = {"condition", "x", "y"};
    d.infer_shape = where_infer_shape;
    d.infer_type = where_infer_type;
    d.cpu = where_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      // the condition's gradient is a zeros_like node, as MXNet's (see pick)
      std::vector<NodeEntry> g = make_backward("_backward_where", f, {og[0], f->inputs[0]});
      g[0] = zeros_like(f->inputs[0], f->name + "_cond_backward");
      return g;
    };
    r.add(std::move(d));
    r.add(backward_def("_backward_where", {}, {"ograd", "condition"}, {"condition_grad", "x_grad", "y_grad"},
                       where_backward));
  }
}

}  // namespace index_ops
}  // namespace kiln
