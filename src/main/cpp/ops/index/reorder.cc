// argmax, argmin, tile, repeat, reverse (flip), stack and batch_dot (MXNet src/operator/tensor/
// broadcast_reduce_op_index.cc, matrix_op-inl.h, dot-inl.h). Layouts are written as
// [outer, n, inner] views around the axis an op works on.
#include <climits>
#include <string>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

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

// ---- argmax / argmin --------------------------------------------------------------------------

/// axis=None: (1,) (all ones with keepdims); otherwise the axis is removed (kept as 1), and a 1-D
/// input gives (1,) as in MXNet 1.x's legacy shapes (no zero-dimensional results), like the reductions.
void arg_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  if (!a.has("axis")) {
    assign_out(out, 0, a.b("keepdims") ? Shape(std::vector<int64_t>(x.ndim(), 1)) : Shape({1}));
    return;
  }
  if (x.ndim() == 0) throw InferError(true, 0, "argmax/argmin: a zero-dimensional input needs axis=None");
  const int ax = norm_axis(a.i("axis"), x.ndim());
  if (ax < 0)
    throw InferError(true, 0, "argmax/argmin: axis=" + std::to_string(a.i("axis")) + " is out of range for input shape " +
                                  x.str());
  if (x[ax] == 0) throw InferError(true, 0, "argmax/argmin: cannot reduce an empty axis of " + x.str());
  std::vector<int64_t> od;
  for (int i = 0; i < x.ndim(); ++i) {
    if (i != ax) od.push_back(x[i]);
    else if (a.b("keepdims")) od.push_back(1);
  }
  if (od.empty()) od.push_back(1);
  assign_out(out, 0, Shape(od));
}

template <bool kMax>
void arg_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [outer, n, inner]
  const TBlob& y = out[0];  // [outer, inner]
  if (req[0] == OpReq::kNullOp) return;
  int64_t outer = 1, n = x.size(), inner = 1;
  if (a.has("axis")) {
    const int ax = norm_axis(a.i("axis"), x.shape.ndim());
    KILN_CHECK(ax >= 0, "argmax/argmin: axis out of range");
    outer = x.shape.prod(0, ax);
    n = x.shape[ax];
    inner = x.shape.prod(ax + 1, x.shape.ndim());
  }
  KILN_CHECK(n > 0, "argmax/argmin: cannot reduce an empty array");
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("argmax/argmin: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    T* yp = y.dptr<T>();
    const int nt = omp_threads(outer * n * inner);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < outer * inner; ++r) {
      const int64_t o = r / inner, i = r % inner;
      const T* p = xp + o * n * inner + i;  // stride inner
      // the first NaN wins (MXNet 1.9 and NumPy), else the first extremum
      int64_t best = 0;
      T bv = p[0];
      for (int64_t k = 1; k < n && bv == bv; ++k) {
        const T v = p[k * inner];
        if (v != v || (kMax ? (v > bv) : (v < bv))) { bv = v; best = k; }
      }
      assign_req(yp[r], req[0], (T)best);
    }
  });
}

/// argmax's attributes for argmax_channel: axis=1, keepdims=False.
const Attrs& argmax_channel_attrs() {
  static const Attrs a = parse_attrs(OpRegistry::get().at("argmax"), {{"axis", "1"}});
  return a;
}

// ---- tile -------------------------------------------------------------------------------------

/// Input dims and reps right-aligned (missing ones are 1); out[i] = x[i] * reps[i].
void tile_dims(const Attrs& a, const Shape& x, std::vector<int64_t>* xd, std::vector<int64_t>* od) {
  const auto& reps = a.t("reps");
  const int nd = std::max<int>(x.ndim(), (int)reps.size());
  xd->assign(nd, 1);
  od->assign(nd, 1);
  if (reps.empty()) {
    *xd = x.d;
    *od = x.d;
    return;
  }
  for (int i = 0; i < nd; ++i) {
    const int xi = i - (nd - x.ndim()), ri = i - (nd - (int)reps.size());
    const int64_t d = xi >= 0 ? x[xi] : 1;
    const int64_t r = ri >= 0 ? reps[ri] : 1;
    (*xd)[i] = d;
    (*od)[i] = d < 0 ? -1 : d * r;
  }
}

void tile_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  for (auto r : a.t("reps"))
    if (r <= 0) throw InferError(true, 0, "tile: each dim size of reps must be a positive integer, got " + a.get("reps").str);
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  std::vector<int64_t> xd, od;
  tile_dims(a, x, &xd, &od);
  assign_out(out, 0, Shape(od));
}

/// Forward: y[j] = x[j mod xd]; backward: dx[j mod xd] += dy[j] (serial: overlapping writes).
template <typename T>
void tile_loop(T* x, const std::vector<int64_t>& xd, T* y, const std::vector<int64_t>& od, bool backward, OpReq req) {
  const int nd = (int)od.size();
  int64_t total = 1;
  for (auto d : od) total *= d;
  if (total == 0) return;
  std::vector<int64_t> xs(nd, 1);
  for (int i = nd - 2; i >= 0; --i) xs[i] = xs[i + 1] * xd[i + 1];
  const int64_t inner = nd ? od[nd - 1] : 1, xin = nd ? xd[nd - 1] : 1;
  const int64_t rows = total / inner;
  auto row_base = [&](int64_t r) {
    int64_t rem = r, off = 0;
    for (int i = nd - 2; i >= 0; --i) {
      off += (rem % od[i]) % xd[i] * xs[i];
      rem /= od[i];
    }
    return off;
  };
  if (!backward) {
    const int nt = omp_threads(total);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* src = x + row_base(r);  // [xin]
      T* dst = y + r * inner;          // [inner]
      for (int64_t j = 0; j < inner; ++j) assign_req(dst[j], req, src[j % xin]);
    }
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      T* dst = x + row_base(r);        // [xin]
      const T* src = y + r * inner;    // [inner]
      for (int64_t j = 0; j < inner; ++j) dst[j % xin] += src[j];
    }
  }
}

void tile_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  std::vector<int64_t> xd, od;
  tile_dims(a, in[0].shape, &xd, &od);
  if (req[0] == OpReq::kAddTo && !is_float(out[0].dtype)) throw KilnError("tile: accumulation needs float32/float64");
  any_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    tile_loop<T>(in[0].dptr<T>(), xd, out[0].dptr<T>(), od, false, req[0]);  // x [xd], y [od]
  });
}

void tile_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  std::vector<int64_t> xd, od;
  tile_dims(a, out[0].shape, &xd, &od);
  float_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    zero_unless_add(out[0], req[0]);
    tile_loop<T>(out[0].dptr<T>(), xd, in[0].dptr<T>(), od, true, req[0]);  // dx [xd], dy [od]
  });
}

// ---- repeat -----------------------------------------------------------------------------------

void repeat_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t rep = a.i("repeats");
  if (rep < 0) throw InferError(true, 0, "repeat: repeats can not be a negative number, got " + std::to_string(rep));
  const Shape& x = (*in)[0];
  int ax = -1;
  if (a.has("axis") && x.rank_known()) {  // checked first, even for repeats=0 (MXNet's GetRepeatParams)
    if (x.ndim() == 0) throw InferError(true, 0, "repeat: a zero-dimensional input needs axis=None");
    ax = norm_axis(a.i("axis"), x.ndim());
    if (ax < 0)
      throw InferError(true, 0, "repeat: axis=" + std::to_string(a.i("axis")) + " is out of range for input shape " +
                                    x.str());
  }
  if (rep == 0) {  // MXNet: an empty 1-D output whatever the axis
    assign_out(out, 0, Shape({0}));
    return;
  }
  if (!x.rank_known()) return;
  if (!a.has("axis")) {
    assign_out(out, 0, Shape({x.known() ? x.size() * rep : -1}));
    return;
  }
  Shape o = x;
  if (o[ax] >= 0) o[ax] *= rep;
  assign_out(out, 0, o);
}

struct RepDims {
  int64_t outer, n, inner, rep;  // x [outer, n, inner], y [outer, n*rep, inner]
};

RepDims repeat_dims(const Attrs& a, const Shape& x) {
  if (!a.has("axis")) return {1, x.size(), 1, a.i("repeats")};
  const int ax = norm_axis(a.i("axis"), x.ndim());
  KILN_CHECK(ax >= 0, "repeat: axis out of range");
  return {x.prod(0, ax), x[ax], x.prod(ax + 1, x.ndim()), a.i("repeats")};
}

void repeat_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const RepDims d = repeat_dims(a, in[0].shape);
  if (req[0] == OpReq::kAddTo && !is_float(out[0].dtype)) throw KilnError("repeat: accumulation needs float32/float64");
  any_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    const T* x = in[0].dptr<T>();  // [outer, n, inner]
    T* y = out[0].dptr<T>();       // [outer, n*rep, inner]
    const int64_t rows = d.outer * d.n * d.rep;
    const int nt = omp_threads(rows * d.inner);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t o = r / (d.n * d.rep), k = (r % (d.n * d.rep)) / d.rep;
      const T* src = x + (o * d.n + k) * d.inner;
      T* dst = y + r * d.inner;
      for (int64_t i = 0; i < d.inner; ++i) assign_req(dst[i], req[0], src[i]);
    }
  });
}

void repeat_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const RepDims d = repeat_dims(a, out[0].shape);
  float_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    const T* g = in[0].dptr<T>();  // [outer, n*rep, inner]
    T* dx = out[0].dptr<T>();      // [outer, n, inner]
    const int64_t rows = d.outer * d.n;
    const int nt = omp_threads(rows * d.rep * d.inner);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      T* dst = dx + r * d.inner;
      for (int64_t i = 0; i < d.inner; ++i) {
        T s = 0;
        for (int64_t k = 0; k < d.rep; ++k) s += g[(r * d.rep + k) * d.inner + i];
        assign_req(dst[i], req[0], s);
      }
    }
  });
}

// ---- reverse (flip) ---------------------------------------------------------------------------

/// Which dims `axis` reverses: MXNet reverses once per entry, so an axis named twice is not
/// reversed. Negative axes count from the end (MXNet's kernel refuses them).
std::vector<bool> reversed_dims(const Attrs& a, int nd, const std::string& shape) {
  std::vector<bool> flip(nd, false);
  for (int64_t v : a.t("axis")) {
    const int ax = norm_axis(v, nd);
    if (ax < 0)
      throw InferError(true, 0, "reverse: axis " + std::to_string(v) + " is out of range for input shape " + shape +
                                    " (" + std::to_string(nd) + " dimensions)");
    flip[ax] = !flip[ax];
  }
  return flip;
}

void reverse_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  infer_same_shape(a, in, out);
  const Shape& x = (*in)[0];
  if (x.rank_known()) reversed_dims(a, x.ndim(), x.str());
}

/// y[j] = x[j with the coordinates of the reversed dims mirrored]; rows along the last dim.
/// x, y: [s_0, .., s_{n-1}].
template <typename T>
void reverse_loop(const T* x, T* y, const Shape& s, const std::vector<bool>& flip, OpReq req) {
  const int nd = s.ndim();
  const int64_t total = s.size();
  if (total == 0) return;
  if (nd == 0) {
    assign_req(y[0], req, x[0]);
    return;
  }
  std::vector<int64_t> xs(nd, 1);
  for (int i = nd - 2; i >= 0; --i) xs[i] = xs[i + 1] * s[i + 1];
  const int64_t inner = s[nd - 1], rows = total / inner;
  const bool flip_last = flip[nd - 1];
  const int nt = omp_threads(total);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, off = 0;
    for (int d = nd - 2; d >= 0; --d) {
      const int64_t j = rem % s[d];
      rem /= s[d];
      off += (flip[d] ? s[d] - 1 - j : j) * xs[d];
    }
    const T* src = x + off;       // [inner]
    T* dst = y + r * inner;       // [inner]
    if (flip_last) {
      for (int64_t k = 0; k < inner; ++k) assign_req(dst[k], req, src[inner - 1 - k]);
    } else {
      for (int64_t k = 0; k < inner; ++k) assign_req(dst[k], req, src[k]);
    }
  }
}

void reverse_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [s]
  const TBlob& y = out[0];  // [s]
  if (req[0] == OpReq::kNullOp) return;
  KILN_CHECK(x.shape == y.shape && x.dtype == y.dtype, "reverse: input " + x.shape.str() + " and output " +
                                                          y.shape.str() + " differ");
  KILN_CHECK(x.ptr != y.ptr || x.size() <= 1, "reverse: the output cannot alias the input");
  const std::vector<bool> flip = reversed_dims(a, x.shape.ndim(), x.shape.str());
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("reverse: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    reverse_loop<T>(x.dptr<T>(), y.dptr<T>(), x.shape, flip, req[0]);
  });
}

/// dx = reverse(dy) on the same axes (MXNet: the gradient node is reverse itself).
std::vector<NodeEntry> reverse_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  std::string axes = "(";
  for (int64_t v : fwd->attrs.t("axis")) axes += std::to_string(v) + ",";
  NodePtr n = make_node("reverse", fwd->name + "_backward", {{"axis", axes + ")"}}, {ograds[0]});
  n->control_deps.push_back(fwd);
  return {NodeEntry{n, 0}};
}

// ---- stack ------------------------------------------------------------------------------------

std::vector<std::string> stack_input_names(const Attrs& a) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i));
  return v;
}

/// Every input has one shape; the output inserts num_args at axis (in [-(ndim+1), ndim]).
void stack_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t n = a.i("num_args");
  Shape common;
  for (size_t i = 0; i < in->size(); ++i) {
    const Shape before = common;
    if (!shape_assign(&common, (*in)[i]))
      throw InferError(true, (int)i, "stack: input " + std::to_string(i) + " has shape " + (*in)[i].str() +
                                         ", but the other inputs have " + before.str());
  }
  const int64_t axis = a.i("axis");
  const Shape& y = (*out)[0];
  if (y.rank_known()) {
    const int ax = norm_axis(axis, y.ndim());
    if (ax < 0) throw InferError(false, 0, "stack: axis=" + std::to_string(axis) + " is out of range for " + y.str());
    std::vector<int64_t> d;
    for (int i = 0; i < y.ndim(); ++i)
      if (i != ax) d.push_back(y[i]);
    const Shape before = common;
    if (!shape_assign(&common, Shape(d)))
      throw InferError(false, 0, "stack: output shape " + y.str() + " does not match the inputs " + before.str());
  }
  if (!common.rank_known()) return;
  const int ax = norm_axis(axis, common.ndim() + 1);
  if (ax < 0)
    throw InferError(true, 0, "stack: axis=" + std::to_string(axis) + " is out of range for inputs of shape " +
                                  common.str());
  for (size_t i = 0; i < in->size(); ++i) assign_in(in, (int)i, common);
  std::vector<int64_t> od = common.d;
  od.insert(od.begin() + ax, n);
  assign_out(out, 0, Shape(od));
}

/// forward: y [outer, num_args, inner] from x_i [outer, inner]; backward: dx_i = dy[:, i, :].
void stack_move(const Attrs& a, const std::vector<TBlob>& pieces, const TBlob& whole, bool gather,
                const std::vector<OpReq>& req) {
  const int ax = norm_axis(a.i("axis"), whole.shape.ndim());
  KILN_CHECK(ax >= 0, "stack: axis out of range");
  const int64_t outer = whole.shape.prod(0, ax), n = whole.shape[ax], inner = whole.shape.prod(ax + 1, whole.shape.ndim());
  for (OpReq q : req)
    if (q == OpReq::kAddTo && !is_float(whole.dtype)) throw KilnError("stack: accumulation needs float32/float64");
  any_switch(whole.dtype, [&](auto z) {
    using T = decltype(z);
    T* w = whole.dptr<T>();
    const int nt = omp_threads(outer * n * inner);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < outer * n; ++r) {
      const int64_t o = r / n, k = r % n;
      T* p = pieces[k].dptr<T>() + o * inner;  // [inner]
      T* q = w + r * inner;                    // [inner]
      if (gather) {
        for (int64_t i = 0; i < inner; ++i) assign_req(q[i], req[0], p[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) assign_req(p[i], req[k], q[i]);
      }
    }
  });
}

void stack_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  stack_move(a, in, out[0], true, req);
}

void stack_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  stack_move(a, out, in[0], false, req);
}

// ---- batch_dot --------------------------------------------------------------------------------

void check_stype(const Attrs& a) {
  if (a.has("forward_stype") && a.s("forward_stype") != "default")
    throw InferError(false, 0, "batch_dot: forward_stype='" + a.s("forward_stype") + "' is not supported (dense only)");
}

/// lhs [B.., M, K] ([B.., K, M] with transpose_a), rhs [B.., K, N] ([B.., N, K]); out [B.., M, N].
void batch_dot_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  check_stype(a);
  const Shape l = (*in)[0], r = (*in)[1];
  if (!l.rank_known() || !r.rank_known()) return;
  if (l.ndim() < 3 || r.ndim() < 3 || l.ndim() != r.ndim())
    throw InferError(true, 0, "batch_dot currently only support N-D*N-D array (N >= 3, same N), got " + l.str() +
                                  " and " + r.str());
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  const int nd = l.ndim();
  Shape nl = l, nr = r;
  std::vector<int64_t> od;
  for (int i = 0; i < nd - 2; ++i) {
    if (l[i] >= 0 && r[i] >= 0 && l[i] != r[i])
      throw InferError(true, 1, "batch_dot: batch dimensions differ: " + l.str() + " vs " + r.str());
    const int64_t b = l[i] >= 0 ? l[i] : r[i];
    nl[i] = nr[i] = b;
    od.push_back(b);
  }
  const int lk = ta ? nd - 2 : nd - 1, lm = ta ? nd - 1 : nd - 2;
  const int rk = tb ? nd - 1 : nd - 2, rn = tb ? nd - 2 : nd - 1;
  if (l[lk] >= 0 && r[rk] >= 0 && l[lk] != r[rk])
    throw InferError(true, 1, "batch_dot: shape mismatch " + l.str() + " X " + r.str() + " (transpose_a=" +
                                  (ta ? "True" : "False") + ", transpose_b=" + (tb ? "True" : "False") + ")");
  if (nl[lk] < 0) nl[lk] = r[rk];
  if (nr[rk] < 0) nr[rk] = l[lk];
  od.push_back(l[lm]);
  od.push_back(r[rn]);
  assign_in(in, 0, nl);
  assign_in(in, 1, nr);
  assign_out(out, 0, Shape(od));
}

struct BD {
  int64_t batch, m, n, k;
};

BD bd_dims(const Attrs& a, const Shape& l, const Shape& r) {
  const int nd = l.ndim();
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  BD d;
  d.batch = l.prod(0, nd - 2);
  d.m = ta ? l[nd - 1] : l[nd - 2];
  d.k = ta ? l[nd - 2] : l[nd - 1];
  d.n = tb ? r[nd - 2] : r[nd - 1];
  KILN_CHECK(d.m < INT_MAX && d.n < INT_MAX && d.k < INT_MAX, "batch_dot: matrix dims exceed the BLAS int range");
  return d;
}

template <typename T>
void gemm_req(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c, OpReq req) {
  if (req == OpReq::kNullOp || m == 0 || n == 0) return;
  if (k == 0) {
    if (req != OpReq::kAddTo) std::fill(c, c + m * n, T(0));
    return;
  }
  gemm(ta, tb, (int)m, (int)n, (int)k, T(1), a, b, req == OpReq::kAddTo ? T(1) : T(0), c);
}

void batch_dot_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const BD d = bd_dims(a, in[0].shape, in[1].shape);
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  float_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    const T* A = in[0].dptr<T>();  // [batch, M, K] or [batch, K, M]
    const T* B = in[1].dptr<T>();  // [batch, K, N] or [batch, N, K]
    T* C = out[0].dptr<T>();       // [batch, M, N]
    for (int64_t b = 0; b < d.batch; ++b)
      gemm_req<T>(ta, tb, d.m, d.n, d.k, A + b * d.m * d.k, B + b * d.k * d.n, C + b * d.m * d.n, req[0]);
  });
}

/// Inputs: dC, A, B; outputs: dA, dB (per batch, the formulas of _backward_dot).
void batch_dot_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const BD d = bd_dims(a, in[1].shape, in[2].shape);
  const bool ta = a.b("transpose_a"), tb = a.b("transpose_b");
  float_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    const T* dC = in[0].dptr<T>();  // [batch, M, N]
    const T* A = in[1].dptr<T>();   // [batch, M, K] or [batch, K, M]
    const T* B = in[2].dptr<T>();   // [batch, K, N] or [batch, N, K]
    T* dA = out[0].dptr<T>();       // like A
    T* dB = out[1].dptr<T>();       // like B
    const int64_t sa = d.m * d.k, sb = d.k * d.n, sc = d.m * d.n;
    for (int64_t b = 0; b < d.batch; ++b) {
      const T* g = dC + b * sc;
      if (!ta) gemm_req<T>(false, !tb, d.m, d.k, d.n, g, B + b * sb, dA + b * sa, req[0]);
      else gemm_req<T>(tb, true, d.k, d.m, d.n, B + b * sb, g, dA + b * sa, req[0]);
      if (!tb) gemm_req<T>(!ta, false, d.k, d.n, d.m, A + b * sa, g, dB + b * sb, req[1]);
      else gemm_req<T>(true, ta, d.n, d.k, d.m, g, A + b * sa, dB + b * sb, req[1]);
    }
  });
}

}  // namespace

void register_reorder_ops(OpRegistry& r) {
  const std::vector<ParamDef> arg_params = {
      param("axis", ParamType::kInt, "None", "The axis along which to perform the reduction. Negative values means indexing from right to left. ``Requires axis to be set as int, because global reduction is not supported yet.``"),
      param("keepdims", ParamType::kBool, "False", "If this is set to `True`, the reduced axis is left in the result as dimension with size one."),
  };
  for (int mx = 0; mx < 2; ++mx) {
    OpDef d;
    d.name = mx ? "argmax" : "argmin";
    d.description = mx ? "Returns indices of the maximum values along an axis." : "Returns indices of the minimum values along an axis.";
    d.params = arg_params;
    d.infer_shape = arg_infer_shape;
    d.cpu = mx ? Kernel(arg_forward<true>) : Kernel(arg_forward<false>);
    d.gradient = zero_grads;
    r.add(std::move(d));
  }
  {
    // argmax_channel: argmax over axis 1, keepdims off (MXNet fixes its ReduceAxisParam so);
    // argmax's inference and kernel run with those attributes
    OpDef d;
    d.name = "argmax_channel";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.description = "Returns argmax indices of each channel (axis 1) from the input array.";
    d.infer_shape = [](const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
      arg_infer_shape(argmax_channel_attrs(), in, out);
    };
    d.cpu = [](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
               const std::vector<TBlob>& out) { arg_forward<true>(ctx, argmax_channel_attrs(), in, req, out); };
    d.gradient = zero_grads;
    r.add(std::move(d));
  }
  {
    const std::vector<ParamDef> params = {param("reps", ParamType::kShape, "",
                                                "The number of times for repeating the tensor a. Each dim size of reps must be a positive integer. If reps has length d, the result will have dimension of max(d, a.ndim); If a.ndim < d, a is promoted to be d-dimensional by prepending new axes. If a.ndim > d, reps is promoted to a.ndim by pre-pending 1's to it.")};
    OpDef d;
    d.name = "tile";
    d.description = "Repeats the whole array multiple times.";
    d.params = params;
    d.infer_shape = tile_infer_shape;
    d.cpu = tile_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) { return make_backward("_backward_tile", f, {og[0]}); };
    r.add(std::move(d));
    r.add(backward_def("_backward_tile", params, {"ograd"}, {"data_grad"}, tile_backward));
  }
  {
    const std::vector<ParamDef> params = {
        param("repeats", ParamType::kInt, "", "The number of repetitions for each element."),
        param("axis", ParamType::kInt, "None", "The axis along which to repeat values. The negative numbers are interpreted counting from the backward. By default, use the flattened input array, and return a flat output array."),
    };
    OpDef d;
    d.name = "repeat";
    d.description = "Repeats elements of an array.";
    d.params = params;
    d.infer_shape = repeat_infer_shape;
    d.cpu = repeat_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) { return make_backward("_backward_repeat", f, {og[0]}); };
    r.add(std::move(d));
    r.add(backward_def("_backward_repeat", params, {"ograd"}, {"data_grad"}, repeat_backward));
  }
  {
    OpDef d;
    d.name = "reverse";
    d.aliases = {"flip"};
    d.description = "Reverses the order of elements along given axis while preserving array shape.";
    d.params = {param("axis", ParamType::kShape, "", "The axis which to reverse elements.")};
    d.infer_shape = reverse_infer_shape;
    d.cpu = reverse_forward;
    d.gradient = reverse_grad;
    r.add(std::move(d));
  }
  {
    const std::vector<ParamDef> params = {
        param("axis", ParamType::kInt, "0", "The axis in the result array along which the input arrays are stacked."),
        param("num_args", ParamType::kInt, "", "Number of inputs to be stacked.", 1, kMaxArity),
    };
    OpDef d;
    d.name = "stack";
    d.description = "Join a sequence of arrays along a new axis.";
    d.params = params;
    d.input_names_fn = stack_input_names;
    d.infer_shape = stack_infer_shape;
    d.cpu = stack_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) { return make_backward("_backward_stack", f, {og[0]}); };
    r.add(std::move(d));
    OpDef b = backward_def("_backward_stack", params, {"ograd"}, {}, stack_backward);
    b.output_names_fn = [](const Attrs& a) {
      std::vector<std::string> v;
      for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i) + "_grad");
      return v;
    };
    r.add(std::move(b));
  }
  {
    const std::vector<ParamDef> params = {
        param("transpose_a", ParamType::kBool, "False", "If true then transpose the first input before dot."),
        param("transpose_b", ParamType::kBool, "False", "If true then transpose the second input before dot."),
        param_enum("forward_stype", "None", {"csr", "default", "row_sparse"},
                   "The desired storage type of the forward output given by user, if thecombination of input storage types and this hint does not matchany implemented ones, the dot operator will perform fallback operationand still produce an output of the desired storage type."),
    };
    OpDef d;
    d.name = "batch_dot";
    d.description = "Batchwise dot product.";
    d.params = params;
    d.input_names_ = {"lhs", "rhs"};
    d.infer_shape = batch_dot_infer_shape;
    d.cpu = batch_dot_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      return make_backward("_backward_batch_dot", f, {og[0], f->inputs[0], f->inputs[1]});
    };
    r.add(std::move(d));
    r.add(backward_def("_backward_batch_dot", params, {"ograd", "lhs", "rhs"}, {"lhs_grad", "rhs_grad"}, batch_dot_backward));
  }
}

}  // namespace index_ops
}  // namespace kiln
