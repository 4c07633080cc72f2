// Operators that only reinterpret memory: Flatten (flatten), Reshape (reshape), expand_dims, squeeze,
// reshape_like, and their common gradient _backward_reshape. The forward is an identity copy that the planner
// normally removes by aliasing the output onto the input (inplace_identity); the backward copies
// dy into the input's shape (a backward op takes its output shape from the forward input).
// Shapes: S = total number of elements, identical on both sides of every kernel here.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace {

// ---- helpers ----------------------------------------------------------------------------------

std::vector<std::pair<int, int>> inplace00(const Attrs&) { return {{0, 0}}; }

/// y = x, y += x or nothing. x and y hold the same number of elements (their shapes differ).
/// With kWriteTo/kWriteInplace and y aliasing x (the planner's identity in-place) nothing moves.
void identity_kernel(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [S] under any shape
  const TBlob& y = out[0];  // [S] under another shape
  if (req[0] == OpReq::kNullOp) return;
  KILN_CHECK(x.size() == y.size() && x.dtype == y.dtype,
             "reshape-like copy: input " + x.shape.str() + " and output " + y.shape.str() +
                 " differ in element count or dtype");
  const int64_t n = y.size();
  if (n == 0) return;
  if (req[0] != OpReq::kAddTo) {
    if (x.ptr == y.ptr) return;
    // dtype-agnostic byte copy, split into one contiguous slice per thread when large
    const char* src = static_cast<const char*>(x.ptr);  // [S * esize] bytes
    char* dst = static_cast<char*>(y.ptr);              // [S * esize] bytes
    const size_t bytes = y.bytes();
    const int nt = n < kOmpMinWork ? 1 : std::max(1, num_threads());
    if (nt == 1) {
      std::memcpy(dst, src, bytes);
      return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; ++t) {
      size_t b = bytes * (size_t)t / (size_t)nt, e = bytes * (size_t)(t + 1) / (size_t)nt;
      std::memcpy(dst + b, src + b, e - b);
    }
    return;
  }
  float_switch(y.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    const T* xp = x.dptr<T>();  // [S]
    T* yp = y.dptr<T>();        // [S]
#pragma omp parallel for num_threads(num_threads()) schedule(static) if (n >= kOmpMinWork)
    for (int64_t i = 0; i < n; ++i) yp[i] += xp[i];
  });
}

/// Gradient of every op in this file: dx = reshape(dy, x.shape) via _backward_reshape, which
/// reads only dy (so the forward tensors need not stay alive) and may alias dy.
std::vector<NodeEntry> reshape_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  return make_backward("_backward_reshape", fwd, {ograds[0]});
}

/// MXNet ReverseReshapeInferShape: with `out` known and exactly one unknown dim in `in`, that
/// dim is out.size / (product of the known ones). Throws when the sizes cannot match.
void reverse_reshape_fill(std::vector<Shape>* in, const Shape& out, const char* op) {
  const Shape& x = (*in)[0];
  if (!out.known() || !x.rank_known() || x.known()) return;
  int unknown = -1;
  int64_t prod = 1;
  for (int i = 0; i < x.ndim(); ++i) {
    if (x[i] < 0) {
      if (unknown >= 0) return;  // two or more unknown dims: not determined
      unknown = i;
    } else {
      prod *= x[i];
    }
  }
  if (prod == 0) return;  // any value fits a zero-size input: leave it unknown
  if (out.size() % prod != 0)
    throw InferError(true, 0, std::string(op) + ": Target shape size is different to source. Target: " + out.str() +
                                  " (" + std::to_string(out.size()) + " elements), Source: " + x.str() +
                                  " (known dims multiply to " + std::to_string(prod) + ", which does not divide it)");
  Shape filled = x;
  filled[unknown] = out.size() / prod;
  assign_in(in, 0, filled);
}

void check_same_size(const Shape& target, const Shape& source, bool blame_input, const char* op) {
  if (target.known() && source.known() && target.size() != source.size())
    throw InferError(blame_input, 0, std::string(op) + ": Target shape size is different to source. Target: " +
                                         target.str() + " (" + std::to_string(target.size()) +
                                         " elements), Source: " + source.str() + " (" +
                                         std::to_string(source.size()) + " elements)");
}

// ---- Flatten ----------------------------------------------------------------------------------

/// (d0, d1, ..., dk) -> (d0, d1*...*dk); a 1-D input (d0,) gives (d0, 1). Backward: the batch
/// dim, and a single unknown trailing dim from the output's second dim.
void flatten_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  if (!x.rank_known()) {
    const Shape& y = (*out)[0];
    if (y.rank_known() && y.ndim() != 2)
      throw InferError(false, 0, "Flatten: the output is 2-D, but the provided output shape is " + y.str());
    return;
  }
  if (x.ndim() == 0) throw InferError(true, 0, "Flatten: the input needs at least one dimension, got shape " + x.str());
  int64_t rest = 1;
  bool rest_known = true;
  for (int i = 1; i < x.ndim(); ++i) {
    if (x[i] < 0) rest_known = false;
    else rest *= x[i];
  }
  Shape y_from_x{x[0], rest_known ? rest : -1};
  const Shape y_before = (*out)[0];
  if (!shape_assign(&(*out)[0], y_from_x))
    throw InferError(false, 0, "Flatten: input shape " + x.str() + " flattens to " + y_from_x.str() +
                                   ", but the output shape is " + y_before.str());
  const Shape& y = (*out)[0];
  Shape x_from_y = x;
  x_from_y[0] = y[0];
  int unknown = -1, n_unknown = 0;
  int64_t prod = 1;
  for (int i = 1; i < x.ndim(); ++i) {
    if (x[i] < 0) { unknown = i; ++n_unknown; }
    else prod *= x[i];
  }
  if (n_unknown == 1 && y[1] >= 0 && prod > 0) {
    if (y[1] % prod != 0)
      throw InferError(true, 0, "Flatten: output shape " + y.str() + " cannot come from input shape " + x.str());
    x_from_y[unknown] = y[1] / prod;
  }
  assign_in(in, 0, x_from_y);
}

// ---- Reshape ----------------------------------------------------------------------------------

/// MXNet InferReshapeShape: applies the special codes of `spec` to the input dims `dshape`
/// (unknown dims, -1, propagate as unknown). With `reverse`, both lists are read right to left.
///   0 copy one input dim | -1 infer from the total size (consumes one input dim)
///  -2 copy all remaining input dims | -3 merge two input dims | -4 a b: split one input dim into
///   a*b (one of a, b may be -1) | >0 a literal dim (consumes one input dim).
std::vector<int64_t> infer_reshape_shape(const std::vector<int64_t>& spec, const Shape& dshape, bool reverse) {
  std::vector<int64_t> dv(dshape.d.begin(), dshape.d.end());
  std::vector<int64_t> pv = spec;
  if (reverse) {
    std::reverse(dv.begin(), dv.end());
    std::reverse(pv.begin(), pv.end());
  }
  auto fail = [&](const std::string& why) -> InferError {
    return InferError(true, 0, "Reshape: " + why + " (shape=" + tuple_str(spec) + (reverse ? ", reverse=True" : "") +
                                   ", input shape " + dshape.str() + ")");
  };
  std::vector<int64_t> tmp;
  size_t src = 0;
  int inf = -1;  // index into tmp of the -1 code
  for (size_t i = 0; i < pv.size(); ++i) {
    const int64_t p = pv[i];
    if (p == 0) {
      if (src >= dv.size()) throw fail("code 0 at position " + std::to_string(i) + " has no input dimension to copy");
      tmp.push_back(dv[src++]);
    } else if (p == -1) {
      if (inf >= 0) throw fail("One and only one dim can be inferred");
      inf = (int)tmp.size();
      tmp.push_back(1);
      ++src;
    } else if (p == -2) {
      while (src < dv.size()) tmp.push_back(dv[src++]);
    } else if (p == -3) {
      if (src + 1 >= dv.size()) throw fail("code -3 needs two remaining input dimensions to merge");
      const int64_t d1 = dv[src++], d2 = dv[src++];
      tmp.push_back(d1 < 0 || d2 < 0 ? -1 : d1 * d2);
    } else if (p == -4) {
      if (i + 2 >= pv.size()) throw fail("code -4 must be followed by two dimensions");
      if (src >= dv.size()) throw fail("code -4 has no input dimension to split");
      const int64_t d0 = dv[src++];
      int64_t d1 = pv[++i], d2 = pv[++i];
      if (d1 == -1 && d2 == -1) throw fail("Split dims cannot both be -1.");
      if ((d1 != -1 && d1 < 1) || (d2 != -1 && d2 < 1))
        throw fail("the two dims after -4 must be positive or -1, got " + std::to_string(d1) + ", " + std::to_string(d2));
      if (d1 == -1 && d0 >= 0) d1 = d0 / d2;
      if (d2 == -1 && d0 >= 0) d2 = d0 / d1;
      if (d0 >= 0 && d1 * d2 != d0)
        throw fail("Split dims " + std::to_string(d1) + ", " + std::to_string(d2) + " do not divide original dim " +
                   std::to_string(d0));
      tmp.push_back(d1);
      tmp.push_back(d2);
    } else if (p > 0) {
      tmp.push_back(p);
      ++src;
    } else {
      throw fail("invalid code " + std::to_string(p) + " (allowed: positive dims, 0, -1, -2, -3, -4)");
    }
  }
  if (inf >= 0) {
    if (dshape.known()) {
      int64_t prod = 1;
      for (int64_t x : tmp) prod *= x;
      if (prod == 0) throw fail("cannot infer the -1 dimension when another output dimension is 0");
      tmp[inf] = dshape.size() / prod;  // a remainder is caught by the size check
    } else {
      tmp[inf] = -1;
    }
  }
  if (reverse) std::reverse(tmp.begin(), tmp.end());
  return tmp;
}

/// The legacy target_shape is unset at its defaults: empty (MXNet 1.x) or all zeros (the old
/// "(0,0)"). With keep_highest an all-zero target is meaningful: "(0,0)" keeps the first dim and
/// infers the second (a flatten), as in MXNet 0.x; so is "(0,)", one dimension inferred (a flatten
/// to 1-D, as MXNet 1.9 reads it).
bool target_shape_unset(const std::vector<int64_t>& t, bool keep_highest) {
  if (t.empty()) return true;
  if (keep_highest || t.size() == 1) return false;
  for (int64_t x : t)
    if (x != 0) return false;
  return true;
}

void reshape_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const std::vector<int64_t>& spec = a.t("shape");
  const std::vector<int64_t>& target = a.t("target_shape");
  const bool reverse = a.b("reverse");
  const bool keep_highest = a.b("keep_highest");
  const bool use_target = spec.empty() && !target_shape_unset(target, keep_highest);
  if (spec.empty() && !use_target) {
    // No target at all: only the input can be completed from a known output (MXNet).
    reverse_reshape_fill(in, (*out)[0], "Reshape");
    check_same_size((*out)[0], (*in)[0], false, "Reshape");
    return;
  }
  if (!(*in)[0].rank_known()) {
    // MXNet waits for the input rank; a spec of literal dims only determines the output anyway.
    if (!use_target && std::all_of(spec.begin(), spec.end(), [](int64_t x) { return x > 0; }))
      assign_out(out, 0, Shape(spec));
    return;
  }
  const Shape x = (*in)[0];
  Shape y;
  if (!use_target) {
    y = Shape(infer_reshape_shape(spec, x, reverse));
  } else {
    // Deprecated target_shape: one 0 (after the first dim when keep_highest) is inferred.
    std::vector<int64_t> t = target;
    size_t start = keep_highest ? 1 : 0;
    if (keep_highest) {
      if (x.ndim() == 0) throw InferError(true, 0, "Reshape: keep_highest needs an input with at least one dimension");
      t[0] = x[0];
    }
    int zeros = 0;
    size_t zero_at = 0;
    for (size_t i = start; i < t.size(); ++i)
      if (t[i] == 0) { ++zeros; zero_at = i; }
    bool any_unknown = false;
    for (int64_t v : t) any_unknown |= v < 0;
    if (zeros == 1) {
      if (x.known() && !any_unknown) {
        int64_t prod = 1;
        for (size_t i = 0; i < t.size(); ++i)
          if (i != zero_at) prod *= t[i];
        if (prod == 0)
          throw InferError(true, 0, "Reshape: cannot infer the 0 of target_shape=" + tuple_str(target) +
                                        " when another dimension is 0");
        t[zero_at] = x.size() / prod;
      } else {
        t[zero_at] = -1;
      }
    }
    y = Shape(t);
  }
  check_same_size(y, x, true, "Reshape");
  reverse_reshape_fill(in, y, "Reshape");
  const Shape y_before = (*out)[0];
  if (!shape_assign(&(*out)[0], y))
    throw InferError(false, 0, "Reshape: input shape " + x.str() + " reshapes to " + y.str() + " (shape=" +
                                   tuple_str(use_target ? target : spec) + "), but the output shape is " +
                                   y_before.str());
  reverse_reshape_fill(in, (*out)[0], "Reshape");
  check_same_size((*out)[0], (*in)[0], false, "Reshape");
}

// ---- expand_dims ------------------------------------------------------------------------------

/// Inserts a dim of size 1 at `axis` (negative: counted from the end of the output, so the
/// accepted range is [-ndim-1, ndim]). Works from either side (MXNet ExpandDimShape).
void expand_dims_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  const Shape& y = (*out)[0];
  if (!x.rank_known() && !y.rank_known()) return;
  int indim = x.rank_known() ? x.ndim() : y.ndim() - 1;
  if (indim < 0) throw InferError(false, 0, "expand_dims: the output needs at least one dimension, got " + y.str());
  if (x.rank_known() && y.rank_known() && y.ndim() != indim + 1)
    throw InferError(false, 0, "expand_dims: input shape " + x.str() + " and output shape " + y.str() +
                                   " must differ by exactly one dimension");
  const int64_t axis_param = a.i("axis");
  int64_t axis = axis_param < 0 ? axis_param + indim + 1 : axis_param;
  if (axis < 0 || axis > indim)
    throw InferError(true, 0, "expand_dims: axis must be in the range [" + std::to_string(-indim - 1) + ", " +
                                  std::to_string(indim) + "] (" + std::to_string(axis_param) +
                                  " provided) for input shape " + (x.rank_known() ? x.str() : Shape::unknown_dims(indim).str()));
  Shape y_from_x = Shape::unknown_dims(indim + 1);
  for (int i = 0; i < indim + 1; ++i) {
    if (i == axis) y_from_x[i] = 1;
    else if (x.rank_known()) y_from_x[i] = x[i < axis ? i : i - 1];
  }
  const Shape y_before = y;
  if (!shape_assign(&(*out)[0], y_from_x))
    throw InferError(false, 0, "expand_dims: input shape " + (x.rank_known() ? x.str() : std::string("[unknown]")) +
                                   " with axis=" + std::to_string(axis_param) + " gives " + y_from_x.str() +
                                   ", but the output shape is " + y_before.str());
  const Shape& y2 = (*out)[0];
  Shape x_from_y = Shape::unknown_dims(indim);
  for (int i = 0; i < indim + 1; ++i)
    if (i != axis) x_from_y[i < axis ? i : i - 1] = y2[i];
  assign_in(in, 0, x_from_y);
}

// ---- squeeze ----------------------------------------------------------------------------------

/// MXNet SqueezeShape: removes the size-1 dims named by `axis` (negative: from the end; each must
/// be 1, no repeats), or every size-1 dim when axis is None; removing every dim gives (1,).
void squeeze_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  const int nd = x.ndim();
  std::vector<bool> drop(nd, false);
  if (a.has("axis")) {
    const std::vector<int64_t>& axes = a.t("axis");
    Shape x_ones = x;
    for (int64_t ax : axes) {
      const int64_t k = ax < 0 ? ax + nd : ax;
      if (k < 0 || k >= nd)
        throw InferError(true, 0, "squeeze: axis " + std::to_string(ax) + " is out of bounds for array of dimension " +
                                      std::to_string(nd) + " (input shape " + x.str() + ")");
      if (x[k] >= 0 && x[k] != 1)
        throw InferError(true, 0, "squeeze: cannot select an axis to squeeze out which has size=" + std::to_string(x[k]) +
                                      " not equal to one (axis=" + tuple_str(axes) + ", input shape " + x.str() + ")");
      if (drop[k]) throw InferError(true, 0, "squeeze: duplicate value in axis=" + tuple_str(axes));
      drop[k] = true;
      x_ones[k] = 1;
    }
    assign_in(in, 0, x_ones);
  } else {
    if (!x.known()) return;  // which dims are 1 is not known yet
    for (int i = 0; i < nd; ++i) drop[i] = x[i] == 1;
  }
  std::vector<int64_t> od;
  for (int i = 0; i < nd; ++i)
    if (!drop[i]) od.push_back((*in)[0][i]);
  if (od.empty()) od.push_back(1);  // MXNet: squeezing (1, 1) gives (1,)
  assign_out(out, 0, Shape(od));
}

// ---- reshape_like -----------------------------------------------------------------------------

/// MXNet ReshapeLikeRangeCanonicalize: [begin, end) of a rank-`nd` shape, None = 0 / nd, negative
/// values from the end; begin < end is required.
void like_range(const Attrs& a, const char* side, int nd, int64_t* b, int64_t* e) {
  const std::string sb = std::string(side) + "_begin", se = std::string(side) + "_end";
  *b = a.has(sb) ? a.i(sb) : 0;
  if (*b < 0) *b += nd;
  *e = a.has(se) ? a.i(se) : nd;
  if (*e < 0) *e += nd;
  const auto fail = [&](const std::string& why) {
    return InferError(true, std::string(side) == "lhs" ? 0 : 1,
                      "reshape_like: " + why + " (" + side + " has " + std::to_string(nd) + " dimensions)");
  };
  if (*e > nd) throw fail("Invalid end for " + se + "=" + a.get(se).str + " as dimension number is " + std::to_string(nd));
  if (*e < 0) throw fail("Invalid end for " + se + "=" + a.get(se).str);
  if (*b < 0) throw fail("Invalid begin for " + sb + "=" + a.get(sb).str);
  if (!(*b < *e)) throw fail("Invalid begin for " + sb + "=" + a.get(sb).str + ": it must come before " + se);
}

/// Output: lhs dims [0, lhs_begin), rhs dims [rhs_begin, rhs_end), lhs dims [lhs_end, ndim); the
/// element count must stay the lhs's.
void reshape_like_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& l = (*in)[0];
  const Shape& r = (*in)[1];
  if (!l.rank_known() || !r.rank_known()) return;
  int64_t lb, le, rb, re;
  like_range(a, "lhs", l.ndim(), &lb, &le);
  like_range(a, "rhs", r.ndim(), &rb, &re);
  std::vector<int64_t> od;
  for (int64_t i = 0; i < lb; ++i) od.push_back(l[(int)i]);
  for (int64_t i = rb; i < re; ++i) od.push_back(r[(int)i]);
  for (int64_t i = le; i < l.ndim(); ++i) od.push_back(l[(int)i]);
  const Shape y(od);
  if (l.known() && y.known() && l.size() != y.size())
    throw InferError(true, 0, "reshape_like: Cannot reshape lhs with shape " + l.str() + " to new shape " + y.str() +
                                  " because they have different size (rhs shape " + r.str() + ")");
  assign_out(out, 0, y);
}

/// The output has the lhs's dtype; the rhs only lends its shape (any dtype).
void lhs_type_only(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  std::vector<DType> lhs = {(*in)[0]};
  infer_same_type(a, &lhs, out);
  (*in)[0] = lhs[0];
}

/// dlhs = reshape(dy, lhs.shape) via _backward_reshape; the rhs gets zeros (MXNet).
std::vector<NodeEntry> reshape_like_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  std::vector<NodeEntry> g = make_backward("_backward_reshape", fwd, {ograds[0]});
  g.push_back(zeros_like(fwd->inputs[1], fwd->name + "_rhs_backward"));
  return g;
}

}  // namespace

void register_shape_reshape_ops(OpRegistry& r) {
  {
    OpDef d;
    d.name = "Flatten";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.aliases = {"flatten"};
    d.description =
        "Flattens the input array into a 2-D array by collapsing the higher dimensions: (d1, d2, ..., dk) -> "
        "(d1, d2*...*dk).";
    d.input_names_ = {"data"};
    d.infer_shape = flatten_infer_shape;
    d.cpu = identity_kernel;
    d.gradient = reshape_grad;
    d.inplace = inplace00;
    d.inplace_identity = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "Reshape";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.aliases = {"reshape"};
    d.description =
        "Reshapes the input array. Special values in shape: 0 copy a dim, -1 infer a dim, -2 copy the remaining "
        "dims, -3 merge two dims, -4 split a dim into the two values that follow; reverse=True applies them "
        "right to left.";
    d.params = {
        param("shape", ParamType::kShape, "()", "The target shape"),
        param("reverse", ParamType::kBool, "False", "If true then the special values are inferred from right to left"),
        param("target_shape", ParamType::kShape, "(0,0)",
              "(Deprecated! Use ``shape`` instead.) Target new shape. One and only one dim can be 0, in which case it "
              "will be inferred from the rest of dims"),
        param("keep_highest", ParamType::kBool, "False",
              "(Deprecated! Use ``shape`` instead.) Whether keep the highest dim unchanged.If set to true, then the "
              "first dim in target_shape is ignored,and always fixed as input"),
    };
    d.input_names_ = {"data"};
    d.infer_shape = reshape_infer_shape;
    d.cpu = identity_kernel;
    d.gradient = reshape_grad;
    d.inplace = inplace00;
    d.inplace_identity = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "expand_dims";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.description = "Inserts a new axis of size 1 into the array shape.";
    d.params = {param("axis", ParamType::kInt, "",
                      "Position where new axis is to be inserted. Suppose that the input `NDArray`'s dimension is "
                      "`ndim`, the range of the inserted axis is `[-ndim, ndim]`")};
    d.input_names_ = {"data"};
    d.infer_shape = expand_dims_infer_shape;
    d.cpu = identity_kernel;
    d.gradient = reshape_grad;
    d.inplace = inplace00;
    d.inplace_identity = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "squeeze";
    d.description = "Remove single-dimensional entries from the shape of an array.";
    d.params = {param("axis", ParamType::kShape, "None",
                      "Selects a subset of the single-dimensional entries in the shape. If an axis is selected with "
                      "shape entry greater than one, an error is raised.")};
    d.input_names_ = {"data"};
    d.infer_shape = squeeze_infer_shape;
    d.cpu = identity_kernel;
    d.gradient = reshape_grad;
    d.inplace = inplace00;
    d.inplace_identity = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "reshape_like";
    d.description =
        "Reshape some or all dimensions of `lhs` to have the same shape as some or all dimensions of `rhs`: "
        "lhs dims [lhs_begin, lhs_end) are replaced by rhs dims [rhs_begin, rhs_end).";
    const char* range_doc = "Defaults to 0 (begin) or the number of dimensions (end); negative values count from the end.";
    d.params = {param("lhs_begin", ParamType::kInt, "None", std::string("Begin of the lhs dims to replace. ") + range_doc),
                param("lhs_end", ParamType::kInt, "None", std::string("End of the lhs dims to replace. ") + range_doc),
                param("rhs_begin", ParamType::kInt, "None", std::string("Begin of the rhs dims to take. ") + range_doc),
                param("rhs_end", ParamType::kInt, "None", std::string("End of the rhs dims to take. ") + range_doc)};
    d.input_names_ = {"lhs", "rhs"};
    d.infer_shape = reshape_like_infer_shape;
    d.infer_type = lhs_type_only;
    d.cpu = identity_kernel;
    d.gradient = reshape_like_grad;
    d.inplace = inplace00;
    d.inplace_identity = true;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{1}; };  // rhs: its shape only
    r.add(std::move(d));
  }
  {
    // Inputs: dy (shape of the forward output); output: dx (shape of the forward input, copied
    // from the forward node). The attributes are the forward node's (Flatten/Reshape/expand_dims/squeeze/reshape_like).
    OpDef d;
    d.name = "_backward_reshape";
    d.description =
        "Backward of Flatten, Reshape, expand_dims, squeeze and reshape_like: dx = dy viewed in the input's shape.";
    d.input_names_ = {"ograd"};
    d.output_names_ = {"data_grad"};
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = identity_kernel;
    d.inplace = inplace00;
    d.inplace_identity = true;
    r.add(std::move(d));
  }
}

}  // namespace kiln
