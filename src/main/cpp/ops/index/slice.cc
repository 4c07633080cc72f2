// slice (begin/end/step with None entries), slice_axis and slice_like (the leading part of the
// data, as large as a second array on the chosen axes), with their backward ops
// (MXNet src/operator/tensor/matrix_op-inl.h: GetIndexRange, SetSliceOpOutputDimSize,
// GetSliceAxisParams, SliceLikeShape). Both are one strided view: per dim a begin b_i, a step s_i and an output
// length n_i; y[j_0, .., j_k] = x[b_0 + j_0 s_0, .., b_k + j_k s_k]. The backward writes zeros
// and scatters dy into that view (or adds it into dx under kAddTo).
#include <string>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

struct View {
  std::vector<int64_t> begin, step, len;  // per input dim
};

/// Parses "(1, None, -2)" keeping None apart from -1: has[i] = false for None.
void parse_opt_tuple(const std::string& op, const std::string& name, const std::string& text,
                     std::vector<int64_t>* v, std::vector<bool>* has) {
  std::string t;
  for (char c : text)
    if (c != ' ' && c != '\t' && c != '\n') t += c;
  if (!t.empty() && (t.front() == '(' || t.front() == '[')) t = t.substr(1);
  if (!t.empty() && (t.back() == ')' || t.back() == ']')) t.pop_back();
  v->clear();
  has->clear();
  size_t p = 0;
  while (p < t.size()) {
    size_t q = t.find(',', p);
    if (q == std::string::npos) q = t.size();
    std::string item = t.substr(p, q - p);
    p = q + 1;
    if (item.empty()) {
      if (q == t.size()) break;
      throw KilnError("operator " + op + ": invalid value '" + text + "' for parameter '" + name + "'");
    }
    if (item == "None") { v->push_back(0); has->push_back(false); continue; }
    char* end = nullptr;
    long long x = std::strtoll(item.c_str(), &end, 10);
    if (!end || *end != 0)
      throw KilnError("operator " + op + ": invalid value '" + text + "' for parameter '" + name + "'");
    v->push_back(x);
    has->push_back(true);
  }
}

/// MXNet GetIndexRange + SetSliceOpOutputDimSize on a known-rank input shape (dims may be -1).
View slice_view(const Attrs& a, const Shape& x) {
  std::vector<int64_t> b, e, s;
  std::vector<bool> hb, he, hs;
  parse_opt_tuple("slice", "begin", a.get("begin").str, &b, &hb);
  parse_opt_tuple("slice", "end", a.get("end").str, &e, &he);
  parse_opt_tuple("slice", "step", a.get("step").str, &s, &hs);
  const int nd = x.ndim();
  if (b.size() != e.size())
    throw InferError(true, 0, "slice: begin and end must have the same length (begin " + a.get("begin").str + ", end " +
                                  a.get("end").str + ")");
  if (!s.empty() && s.size() != b.size())
    throw InferError(true, 0, "slice: step must be empty or as long as begin (step " + a.get("step").str + ")");
  if ((int)b.size() > nd)
    throw InferError(true, 0, "slice: begin " + a.get("begin").str + " has more entries than the input has dims " +
                                  x.str());
  View v;
  for (int i = 0; i < nd; ++i) {
    int64_t st = 1, bb = 0, ee = 0;
    const int64_t len = x[i];
    if (i >= (int)b.size()) {
      v.begin.push_back(0);
      v.step.push_back(1);
      v.len.push_back(len);
      continue;
    }
    if (i < (int)s.size() && hs[i]) {
      st = s[i];
      if (st == 0) throw InferError(true, 0, "slice: step[" + std::to_string(i) + "] cannot be 0");
    }
    if (len < 0) {
      v.begin.push_back(0);
      v.step.push_back(st);
      v.len.push_back(-1);
      continue;
    }
    if (len > 0) {
      bb = hb[i] ? b[i] : (st < 0 ? len - 1 : 0);
      ee = he[i] ? e[i] : (st < 0 ? -1 : len);
      if (bb < 0) bb += len;
      if (ee < 0 && he[i]) ee += len;
      bb = (bb < 0 && st > 0) ? 0 : bb;
      bb = (bb > len - 1 && st < 0) ? len - 1 : bb;
      bb = (bb < 0 || bb > len - 1) ? -1 : bb;
      ee = ee > -1 ? ee : -1;
      ee = ee > len ? len : ee;
    }
    int64_t n = 0;
    if (ee != bb && bb >= 0) {
      if (st > 0) n = ee > bb ? (ee - bb - 1) / st + 1 : 0;
      else n = ee < bb ? (bb - ee - 1) / (-st) + 1 : 0;
    }
    v.begin.push_back(bb < 0 ? 0 : bb);
    v.step.push_back(st);
    v.len.push_back(n);
  }
  return v;
}

/// MXNet GetSliceAxisParams.
View slice_axis_view(const Attrs& a, const Shape& x) {
  const int nd = x.ndim();
  const int ax = norm_axis(a.i("axis"), nd);
  if (ax < 0)
    throw InferError(true, 0, "slice_axis: axis=" + std::to_string(a.i("axis")) + " is out of range for input shape " +
                                  x.str());
  View v;
  for (int i = 0; i < nd; ++i) {
    v.begin.push_back(0);
    v.step.push_back(1);
    v.len.push_back(x[i]);
  }
  const int64_t size = x[ax];
  if (size < 0) return v;
  int64_t b = a.i("begin"), e = -1;
  if (b < 0) b += size;
  if (size > 0) {
    if (!a.has("end")) e = size;
    else {
      e = a.i("end");
      if (e < 0) e += size;
    }
    if (e > size)
      throw InferError(true, 0, "slice_axis: Invalid end for end=" + std::to_string(e) + " as axis_size is " +
                                    std::to_string(size));
    if (!(b < e))
      throw InferError(true, 0, "slice_axis: Invalid begin, end, get begin=" + std::to_string(b) +
                                    ", end=" + std::to_string(e));
  } else {
    b = 0;
    e = 0;
  }
  if (e < 0 || b < 0)
    throw InferError(true, 0, "slice_axis: Invalid begin, end, get begin=" + std::to_string(b) +
                                  ", end=" + std::to_string(e) + " for input shape " + x.str());
  v.begin[ax] = b;
  v.len[ax] = e - b;
  return v;
}

template <View (*ViewFn)(const Attrs&, const Shape&)>
void view_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  if (x.ndim() == 0) throw InferError(true, 0, "slicing a zero-dimensional array is not supported");
  View v = ViewFn(a, x);
  assign_out(out, 0, Shape(v.len));
}

/// Strided copy between x [dims] and y [v.len]: forward y = x[view], backward x[view] (+)= y.
template <typename T>
void strided(T* x, const Shape& xs, T* y, const View& v, bool scatter, OpReq req) {
  const int nd = xs.ndim();
  std::vector<int64_t> xstride(nd, 1);
  for (int i = nd - 2; i >= 0; --i) xstride[i] = xstride[i + 1] * xs[i + 1];
  const int64_t inner = nd ? v.len[nd - 1] : 1;
  int64_t rows = 1;
  for (int i = 0; i + 1 < nd; ++i) rows *= v.len[i];
  if (inner == 0 || rows == 0) return;
  const int64_t s_last = nd ? v.step[nd - 1] * xstride[nd - 1] : 0;
  const int64_t b_last = nd ? v.begin[nd - 1] : 0;
  const int nt = omp_threads(rows * inner);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, off = b_last;  // off in x elements
    for (int i = nd - 2; i >= 0; --i) {
      const int64_t j = rem % v.len[i];
      rem /= v.len[i];
      off += (v.begin[i] + j * v.step[i]) * xstride[i];
    }
    T* yr = y + r * inner;  // [inner]
    if (!scatter) {
      for (int64_t j = 0; j < inner; ++j) assign_req(yr[j], req, x[off + j * s_last]);
    } else {
      for (int64_t j = 0; j < inner; ++j) x[off + j * s_last] += yr[j];
    }
  }
}

template <View (*ViewFn)(const Attrs&, const Shape&)>
void view_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [d0, .., dk]
  const TBlob& y = out[0];  // [n0, .., nk]
  if (req[0] == OpReq::kNullOp) return;
  View v = ViewFn(a, x.shape);
  KILN_CHECK(Shape(v.len) == y.shape, "slice: output shape " + y.shape.str() + " differs from " + Shape(v.len).str());
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype))
    throw KilnError("slice: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    strided<T>(x.dptr<T>(), x.shape, y.dptr<T>(), v, false, req[0]);
  });
}

template <View (*ViewFn)(const Attrs&, const Shape&)>
void view_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];   // [n0, .., nk]
  const TBlob& dx = out[0];  // [d0, .., dk]
  if (req[0] == OpReq::kNullOp) return;
  View v = ViewFn(a, dx.shape);
  KILN_CHECK(Shape(v.len) == dy.shape, "slice backward: gradient shape " + dy.shape.str() + " differs from " +
                                          Shape(v.len).str());
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    zero_unless_add(dx, req[0]);
    strided<T>(dx.dptr<T>(), dx.shape, dy.dptr<T>(), v, true, req[0]);
  });
}

void add_view_op(OpRegistry& r, const std::string& name, const std::string& desc, const std::vector<ParamDef>& params,
                 InferShapeFn shape, Kernel fwd, Kernel bwd) {
  {
    OpDef d;
    d.name = name;
    if (name == "slice") d.aliases = {"crop"};  // MXNet 1.9.1 alias (Crop, capitalised, is another op)
    d.description = desc;
    d.params = params;
    d.infer_shape = shape;
    d.cpu = fwd;
    const std::string bname = "_backward_" + name;
    d.gradient = [bname](const NodePtr& f, const std::vector<NodeEntry>& og) { return make_backward(bname, f, {og[0]}); };
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_backward_" + name;
    d.description = "Backward of " + name + ": scatters the output gradient into zeros.";
    d.params = params;
    d.input_names_ = {"ograd"};
    d.output_names_ = {"data_grad"};
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = bwd;
    r.add(std::move(d));
  }
}

// ---- slice_like -------------------------------------------------------------------------------

/// MXNet SliceLikeShape: with axes=() every axis takes shape_like's size (both arrays need the same
/// rank); otherwise only the named axes (negative: from the end of data) do. The data must be at
/// least as large on every sliced axis.
void slice_like_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  const Shape& like = (*in)[1];
  if (!x.rank_known() || !like.rank_known()) return;
  const std::vector<int64_t>& axes = a.t("axes");
  const int nd = x.ndim();
  Shape y = x;
  auto take = [&](int ax) {
    if (x[ax] >= 0 && like[ax] > x[ax])
      throw InferError(true, 1, "slice_like: Slice axis " + std::to_string(ax) + " with size " + std::to_string(like[ax]) +
                                    " exceeds limit of input with size " + std::to_string(x[ax]) + " (data shape " +
                                    x.str() + ", shape_like shape " + like.str() + ")");
    y[ax] = like[ax];
  };
  if (axes.empty()) {
    if (nd != like.ndim())
      throw InferError(true, 1, "slice_like: By default slice_like performs slice on all axes, but ndim mismatch for "
                                "inputs: " + std::to_string(nd) + " vs. " + std::to_string(like.ndim()) + " (data shape " +
                                    x.str() + ", shape_like shape " + like.str() + ")");
    for (int i = 0; i < nd; ++i) take(i);
  } else {
    for (int64_t v : axes) {
      const int64_t ax = v < 0 ? v + nd : v;
      if (ax < 0) throw InferError(true, 0, "slice_like: Slice axis: " + std::to_string(v) + " too small for data shape " + x.str());
      if (ax >= nd)
        throw InferError(true, 0, "slice_like: Slice axis: " + std::to_string(ax) + " exceeds first input: " +
                                      std::to_string(nd) + " dimensions (data shape " + x.str() + ")");
      if (ax >= like.ndim())
        throw InferError(true, 1, "slice_like: Slice axis: " + std::to_string(ax) + " exceeds second input: " +
                                      std::to_string(like.ndim()) + " dimensions (shape_like shape " + like.str() + ")");
      take((int)ax);
    }
  }
  assign_out(out, 0, y);
}

/// The view of the data the output covers: from 0, step 1, as long as the output on each axis.
View leading_view(const Shape& x, const Shape& y) {
  KILN_CHECK(x.ndim() == y.ndim(), "slice_like: data " + x.str() + " and output " + y.str() + " differ in rank");
  View v;
  for (int i = 0; i < x.ndim(); ++i) {
    KILN_CHECK(y[i] <= x[i], "slice_like: output " + y.str() + " exceeds the data " + x.str());
    v.begin.push_back(0);
    v.step.push_back(1);
    v.len.push_back(y[i]);
  }
  return v;
}

/// The output has the data's dtype; shape_like only lends its shape (any dtype).
void data_type_only(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  std::vector<DType> data = {(*in)[0]};
  infer_same_type(a, &data, out);
  (*in)[0] = data[0];
}

void slice_like_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [d0, .., dk]; in[1] (shape_like) is not read
  const TBlob& y = out[0];  // [n0, .., nk], n_i <= d_i
  if (req[0] == OpReq::kNullOp) return;
  const View v = leading_view(x.shape, y.shape);
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("slice_like: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    strided<T>(x.dptr<T>(), x.shape, y.dptr<T>(), v, false, req[0]);
  });
}

/// in: dy [n0, .., nk]; out: ddata [d0, .., dk] (dy in its leading part, zeros elsewhere),
/// dshape_like (zeros).
void slice_like_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];     // [n0, .., nk]
  const TBlob& dx = out[0];    // [d0, .., dk]
  const TBlob& dlike = out[1]; // shape_like's shape, any dtype
  zero_unless_add(dlike, req[1]);
  if (req[0] == OpReq::kNullOp) return;
  const View v = leading_view(dx.shape, dy.shape);
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    zero_unless_add(dx, req[0]);
    strided<T>(dx.dptr<T>(), dx.shape, dy.dptr<T>(), v, true, req[0]);
  });
}

}  // namespace

void register_slice_ops(OpRegistry& r) {
  add_view_op(r, "slice",
              "Slices a region of the array: begin/end/step per leading axis, None for the default of that axis.",
              {param("begin", ParamType::kShape, "", "starting indices for the slice operation, supports negative indices."),
               param("end", ParamType::kShape, "", "ending indices for the slice operation, supports negative indices."),
               param("step", ParamType::kShape, "()", "step for the slice operation, supports negative values.")},
              view_infer_shape<slice_view>, view_forward<slice_view>, view_backward<slice_view>);
  add_view_op(r, "slice_axis", "Slices along a given axis.",
              {param("axis", ParamType::kInt, "", "Axis along which to be sliced, supports negative indexes."),
               param("begin", ParamType::kInt, "", "The beginning index along the axis to be sliced,  supports negative indexes."),
               param("end", ParamType::kInt, "", "The ending index along the axis to be sliced,  supports negative indexes.")},
              view_infer_shape<slice_axis_view>, view_forward<slice_axis_view>, view_backward<slice_axis_view>);
  {
    OpDef d;
    d.name = "slice_like";
    d.description = "Slices like the shape of another array: data[0:shape_like.shape[i]] on the given axes (all axes "
                    "by default).";
    d.params = {param("axes", ParamType::kShape, "()",
                      "List of axes on which input data will be sliced according to the corresponding size of the "
                      "second input. By default will slice on all axes. Negative axes are supported.")};
    d.input_names_ = {"data", "shape_like"};
    d.infer_shape = slice_like_infer_shape;
    d.infer_type = data_type_only;
    d.cpu = slice_like_forward;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      return make_backward("_backward_slice_like", f, {og[0]});
    };
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{1}; };  // shape_like: its shape only
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_backward_slice_like";
    d.description = "Backward of slice_like: the output gradient in the data's leading part, zeros elsewhere; "
                    "shape_like gets zeros.";
    d.input_names_ = {"ograd"};
    d.output_names_ = {"data_grad", "shape_like_grad"};
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = slice_like_backward;
    r.add(std::move(d));
  }
}

}  // namespace index_ops
}  // namespace kiln
