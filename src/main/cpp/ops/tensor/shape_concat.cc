// Concatenation and splitting along one axis: Concat (concat) with _backward_Concat, and
// SliceChannel (split) with _backward_SliceChannel. Concat's backward is a split and
// SliceChannel's backward is a concatenation, so all four kernels share move_pieces().
// Layout: the big tensor along axis `a` is viewed as [outer, W] with outer = prod(dims[:a]) and
// W = dims[a] * inner, inner = prod(dims[a+1:]); piece p is [outer, w_p] and occupies columns
// [off_p, off_p + w_p) of every row. Data moves as raw bytes (any dtype) unless a request is
// kAddTo, which needs float32/float64.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace {

// ---- helpers ----------------------------------------------------------------------------------

/// Normalizes a possibly negative axis against `ndim`, or returns -1 when out of [-ndim, ndim).
int norm_axis(int64_t axis, int ndim) {
  if (axis < -ndim || axis >= ndim) return -1;
  return (int)(axis < 0 ? axis + ndim : axis);
}

bool is_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat64; }

/// dst[0:n] (req) src[0:n], elements of `esize` bytes.
void seg_move(char* dst, const char* src, int64_t n, size_t esize, OpReq req, DType dt) {
  if (req == OpReq::kNullOp || n <= 0) return;
  if (req != OpReq::kAddTo) {
    if (dst != src) std::memcpy(dst, src, (size_t)n * esize);
    return;
  }
  if (dt == DType::kFloat32) {
    float* d = reinterpret_cast<float*>(dst);
    const float* s = reinterpret_cast<const float*>(src);
    for (int64_t i = 0; i < n; ++i) d[i] += s[i];
  } else {
    double* d = reinterpret_cast<double*>(dst);
    const double* s = reinterpret_cast<const double*>(src);
    for (int64_t i = 0; i < n; ++i) d[i] += s[i];
  }
}

struct Piece {
  char* ptr;       // [outer, width] elements
  int64_t width;   // elements per row of this piece
  int64_t offset;  // first column of this piece in the big tensor's rows
  OpReq req;       // request on the destination (the piece when splitting)
};

/// gather = true : whole[:, off_p : off_p + w_p] (whole_req) piece_p   (concatenate)
/// gather = false: piece_p (piece_p.req) whole[:, off_p : off_p + w_p] (split)
void move_pieces(char* whole, int64_t outer, int64_t W, const std::vector<Piece>& pieces, bool gather,
                 OpReq whole_req, DType dt) {
  // whole: [outer, W] elements of esize bytes
  const size_t esize = dtype_size(dt);
  bool any_add = gather ? whole_req == OpReq::kAddTo : false;
  if (!gather)
    for (auto& p : pieces) any_add |= p.req == OpReq::kAddTo;
  if (any_add && !is_float(dt))
    throw KilnError(std::string("dtype ") + dtype_name(dt) + " is not supported for accumulation (float32, float64)");
  if (gather && whole_req == OpReq::kNullOp) return;
  if (outer == 0 || W == 0) return;
  auto move_row_piece = [&](int64_t r, const Piece& p, int64_t c0, int64_t c1) {
    char* w = whole + ((size_t)r * (size_t)W + (size_t)(p.offset + c0)) * esize;
    char* q = p.ptr + ((size_t)r * (size_t)p.width + (size_t)c0) * esize;
    if (gather) seg_move(w, q, c1 - c0, esize, whole_req, dt);
    else seg_move(q, w, c1 - c0, esize, p.req, dt);
  };
  const int64_t total = outer * W;
  const int nt = total < kOmpMinWork ? 1 : std::max(1, num_threads());
  if (nt == 1) {
    for (int64_t r = 0; r < outer; ++r)
      for (auto& p : pieces) move_row_piece(r, p, 0, p.width);
    return;
  }
  if (outer >= 4 * (int64_t)nt) {
    // many rows: one row (all pieces) per iteration
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < outer; ++r)
      for (auto& p : pieces) move_row_piece(r, p, 0, p.width);
    return;
  }
  // few long rows (e.g. axis 0): cut every (row, piece) segment into chunks
  struct Task { int64_t r; size_t p; int64_t c0, c1; };
  std::vector<Task> tasks;
  const int64_t chunk = std::max<int64_t>(kOmpMinWork / 4, total / (8 * (int64_t)nt));
  for (int64_t r = 0; r < outer; ++r)
    for (size_t p = 0; p < pieces.size(); ++p)
      for (int64_t c = 0; c < pieces[p].width; c += chunk)
        tasks.push_back({r, p, c, std::min(pieces[p].width, c + chunk)});
  const int64_t nt_tasks = (int64_t)tasks.size();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t t = 0; t < nt_tasks; ++t) move_row_piece(tasks[t].r, pieces[tasks[t].p], tasks[t].c0, tasks[t].c1);
}

// ---- Concat -----------------------------------------------------------------------------------

std::vector<std::string> concat_input_names(const Attrs& a) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i));
  return v;
}

/// MXNet ConcatShape: every dim except `dim` is unified across the inputs and the output; the
/// output's size on `dim` is the sum once every input's size there is known (an unknown input
/// size on `dim` is not back-inferred).
void concat_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t dim = a.i("dim");
  const int n = (int)in->size();
  Shape common;  // every dim except `dim`; `dim` itself stays unknown
  int axis = -1;
  int64_t sum = 0;
  bool sum_known = true;
  auto axis_of = [&](const Shape& s, bool is_in, int idx) {
    if (s.ndim() == 0)
      throw InferError(is_in, idx, "Concat: zero-dimensional arrays cannot be concatenated (shape " + s.str() + ")");
    int ax = norm_axis(dim, s.ndim());
    if (ax < 0)
      throw InferError(is_in, idx, "Concat: dim=" + std::to_string(dim) + " is out of range for shape " + s.str());
    return ax;
  };
  for (int i = 0; i < n; ++i) {
    Shape s = (*in)[i];
    if (!s.rank_known()) { sum_known = false; continue; }
    axis = axis_of(s, true, i);
    if (s[axis] < 0) sum_known = false;
    else sum += s[axis];
    s[axis] = -1;
    const Shape before = common;
    if (!shape_assign(&common, s))
      throw InferError(true, i, "Concat: input " + std::to_string(i) + " has shape " + (*in)[i].str() +
                                    ", incompatible with " + before.str() + " (all dims except dim=" +
                                    std::to_string(dim) + " must match)");
  }
  if ((*out)[0].rank_known()) {
    Shape s = (*out)[0];
    axis = axis_of(s, false, 0);
    s[axis] = -1;
    const Shape before = common;
    if (!shape_assign(&common, s))
      throw InferError(false, 0, "Concat: output shape " + (*out)[0].str() + " is incompatible with the inputs " +
                                     before.str() + " (all dims except dim=" + std::to_string(dim) + " must match)");
  }
  if (!common.rank_known()) return;
  for (int i = 0; i < n; ++i) {
    const Shape before = (*in)[i];
    if (!shape_assign(&(*in)[i], common))
      throw InferError(true, i, "Concat: Incompatible input shape: expected " + common.str() + ", got " + before.str());
  }
  if (sum_known) common[axis] = sum;
  const Shape before = (*out)[0];
  if (!shape_assign(&(*out)[0], common))
    throw InferError(false, 0, "Concat: Incompatible output shape: expected " + common.str() + ", got " + before.str());
}

/// y = concat(x_0, ..., x_{n-1}) along dim.
void concat_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const TBlob& y = out[0];  // [d0, .., sum_i n_i, .., dk]
  if (req[0] == OpReq::kNullOp) return;
  const int nd = y.shape.ndim();
  const int axis = norm_axis(a.i("dim"), nd);
  KILN_CHECK(axis >= 0, "Concat: dim out of range for output " + y.shape.str());
  const int64_t outer = y.shape.prod(0, axis), inner = y.shape.prod(axis + 1, nd);
  std::vector<Piece> pieces;
  int64_t off = 0;
  for (const TBlob& x : in) {  // x_i: [d0, .., n_i, .., dk]
    KILN_CHECK(x.dtype == y.dtype, "Concat: inputs and output must share a dtype");
    const int64_t w = x.shape[axis] * inner;
    pieces.push_back({static_cast<char*>(x.ptr), w, off, OpReq::kWriteTo});
    off += w;
  }
  move_pieces(static_cast<char*>(y.ptr), outer, y.shape[axis] * inner, pieces, true, req[0], y.dtype);
}

/// dx_i = dy[.., off_i : off_i + n_i, ..] along dim; reads only dy.
void concat_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];  // [d0, .., sum_i n_i, .., dk]
  const int nd = dy.shape.ndim();
  const int axis = norm_axis(a.i("dim"), nd);
  KILN_CHECK(axis >= 0, "_backward_Concat: dim out of range for " + dy.shape.str());
  const int64_t outer = dy.shape.prod(0, axis), inner = dy.shape.prod(axis + 1, nd);
  std::vector<Piece> pieces;
  int64_t off = 0;
  for (size_t i = 0; i < out.size(); ++i) {  // dx_i: [d0, .., n_i, .., dk]
    const int64_t w = out[i].shape[axis] * inner;
    pieces.push_back({static_cast<char*>(out[i].ptr), w, off, req[i]});
    off += w;
  }
  move_pieces(static_cast<char*>(dy.ptr), outer, dy.shape[axis] * inner, pieces, false, OpReq::kWriteTo, dy.dtype);
}

std::vector<NodeEntry> concat_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  return make_backward("_backward_Concat", fwd, {ograds[0]});
}

// ---- SliceChannel -----------------------------------------------------------------------------

std::vector<std::string> split_output_names(const Attrs& a) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < a.i("num_outputs"); ++i) v.push_back("output" + std::to_string(i));
  return v;
}

/// Every output is the input with dim `axis` divided by num_outputs (dropped with squeeze_axis,
/// which needs that dim to equal num_outputs). Backward: outputs unified with each other, then
/// the input from them (its split dim = num_outputs * the outputs' dim).
void split_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t n = a.i("num_outputs");
  const int64_t axis_param = a.i("axis");
  const bool squeeze = a.b("squeeze_axis");
  int nd = (*in)[0].rank_known() ? (*in)[0].ndim() : -1;
  if (nd < 0) {
    for (auto& o : *out)
      if (o.rank_known()) { nd = o.ndim() + (squeeze ? 1 : 0); break; }
    if (nd < 0) return;
    assign_in(in, 0, Shape::unknown_dims(nd));
  }
  const Shape& x = (*in)[0];
  if (nd == 0) throw InferError(true, 0, "SliceChannel: cannot split a zero-dimensional array (shape " + x.str() + ")");
  const int ax = norm_axis(axis_param, nd);
  if (ax < 0)
    throw InferError(true, 0, "SliceChannel: axis=" + std::to_string(axis_param) + " is out of range for input shape " +
                                  x.str());
  if (x[ax] >= 0 && x[ax] % n != 0)
    throw InferError(true, 0, "SliceChannel: You are trying to split the " + std::to_string(ax) +
                                  "-th axis of input tensor with shape " + x.str() + " into num_outputs=" +
                                  std::to_string(n) + " evenly sized chunks, but this is not possible because " +
                                  std::to_string(n) + " does not evenly divide " + std::to_string(x[ax]));
  if (squeeze && x[ax] >= 0 && x[ax] != n)
    throw InferError(true, 0, "SliceChannel: If squeeze axis is True, the size of the sliced axis must be the same as "
                              "num_outputs. Input shape=" + x.str() + ", axis=" + std::to_string(ax) +
                                  ", num_outputs=" + std::to_string(n) + ".");
  // forward: one output shape
  std::vector<int64_t> od;
  for (int i = 0; i < nd; ++i) {
    if (i != ax) od.push_back(x[i]);
    else if (!squeeze) od.push_back(x[i] >= 0 ? x[i] / n : -1);
  }
  Shape o(od);
  // unify with every provided output
  for (size_t i = 0; i < out->size(); ++i) {
    const Shape before = o;
    if (!shape_assign(&o, (*out)[i]))
      throw InferError(false, (int)i, "SliceChannel: output " + std::to_string(i) + " has shape " + (*out)[i].str() +
                                          ", but splitting input " + x.str() + " along axis " + std::to_string(ax) +
                                          " into " + std::to_string(n) + " gives " + before.str());
  }
  for (size_t i = 0; i < out->size(); ++i) assign_out(out, (int)i, o);
  // backward: the input from the (unified) output shape
  Shape back = Shape::unknown_dims(nd);
  for (int i = 0, j = 0; i < nd; ++i) {
    if (i == ax) {
      if (squeeze) back[i] = n;
      else back[i] = o[j] >= 0 ? o[j] * n : -1;
      if (!squeeze) ++j;
    } else {
      back[i] = o[j++];
    }
  }
  assign_in(in, 0, back);
}

/// y_i = x[.., i*m : (i+1)*m, ..] along axis, m = x.shape[axis] / num_outputs.
void split_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const TBlob& x = in[0];  // [d0, .., n*m, .., dk]
  const int nd = x.shape.ndim();
  const int axis = norm_axis(a.i("axis"), nd);
  KILN_CHECK(axis >= 0, "SliceChannel: axis out of range for input " + x.shape.str());
  const int64_t outer = x.shape.prod(0, axis), inner = x.shape.prod(axis + 1, nd);
  const int64_t W = x.shape[axis] * inner;
  const int64_t w = W / (int64_t)out.size();
  std::vector<Piece> pieces;
  for (size_t i = 0; i < out.size(); ++i)  // y_i: [d0, .., m, .., dk] ([d0, .., dk] with squeeze_axis)
    pieces.push_back({static_cast<char*>(out[i].ptr), w, (int64_t)i * w, req[i]});
  move_pieces(static_cast<char*>(x.ptr), outer, W, pieces, false, OpReq::kWriteTo, x.dtype);
}

/// dx = concat(dy_0, ..., dy_{n-1}) along axis; outputs that got no gradient arrive as zeros.
void split_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const TBlob& dx = out[0];  // [d0, .., n*m, .., dk]
  if (req[0] == OpReq::kNullOp) return;
  const int nd = dx.shape.ndim();
  const int axis = norm_axis(a.i("axis"), nd);
  KILN_CHECK(axis >= 0, "_backward_SliceChannel: axis out of range for " + dx.shape.str());
  const int64_t outer = dx.shape.prod(0, axis), inner = dx.shape.prod(axis + 1, nd);
  const int64_t W = dx.shape[axis] * inner;
  const int64_t w = W / (int64_t)in.size();
  std::vector<Piece> pieces;
  for (size_t i = 0; i < in.size(); ++i)  // dy_i: [d0, .., m, .., dk] ([d0, .., dk] with squeeze_axis)
    pieces.push_back({static_cast<char*>(in[i].ptr), w, (int64_t)i * w, OpReq::kWriteTo});
  move_pieces(static_cast<char*>(dx.ptr), outer, W, pieces, true, req[0], dx.dtype);
}

std::vector<NodeEntry> split_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  return make_backward("_backward_SliceChannel", fwd, ograds);
}

}  // namespace

void register_shape_concat_ops(OpRegistry& r) {
  const std::vector<ParamDef> concat_params = {
      param("num_args", ParamType::kInt, "", "Number of inputs to be concated.", 1, kMaxArity),
      param("dim", ParamType::kInt, "1", "the dimension to be concated."),
  };
  const std::vector<ParamDef> split_params = {
      param("num_outputs", ParamType::kInt, "",
            "Number of splits. Note that this should evenly divide the length of the `axis`.", 1, kMaxArity),
      param("axis", ParamType::kInt, "1", "Axis along which to split."),
      param("squeeze_axis", ParamType::kBool, "False",
            "If true, Removes the axis with length 1 from the shapes of the output arrays. **Note** that setting "
            "`squeeze_axis` to ``true`` removes axis with length 1 only along the `axis` which it is split. Also "
            "`squeeze_axis` can be set to ``true`` only if ``input.shape[axis] == num_outputs``."),
  };
  {
    OpDef d;
    d.name = "Concat";
    d.aliases = {"concat"};
    d.description = "Joins input arrays along a given axis. The dimensions of the input arrays should be the same "
                    "except the axis along which they will be concatenated.";
    d.params = concat_params;
    d.input_names_fn = concat_input_names;
    d.infer_shape = concat_infer_shape;
    d.cpu = concat_forward;
    d.gradient = concat_grad;
    r.add(std::move(d));
  }
  {
    // Input: dy (the Concat output's gradient); outputs: dx_0..dx_{n-1}.
    OpDef d;
    d.name = "_backward_Concat";
    d.description = "Backward of Concat: splits the output gradient along dim.";
    d.params = concat_params;
    d.input_names_ = {"ograd"};
    d.output_names_fn = [](const Attrs& a) {
      std::vector<std::string> v;
      for (int64_t i = 0; i < a.i("num_args"); ++i) v.push_back("arg" + std::to_string(i) + "_grad");
      return v;
    };
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = concat_backward;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "SliceChannel";
    d.aliases = {"split"};
    d.description = "Splits an array along a particular axis into multiple sub-arrays.";
    d.params = split_params;
    d.input_names_ = {"data"};
    d.output_names_fn = split_output_names;
    d.infer_shape = split_infer_shape;
    d.cpu = split_forward;
    d.gradient = split_grad;
    r.add(std::move(d));
  }
  {
    // Inputs: dy_0..dy_{n-1} (zeros_like entries for outputs without a gradient); output: dx.
    OpDef d;
    d.name = "_backward_SliceChannel";
    d.description = "Backward of SliceChannel: concatenates the output gradients along axis.";
    d.params = split_params;
    d.input_names_fn = [](const Attrs& a) {
      std::vector<std::string> v;
      for (int64_t i = 0; i < a.i("num_outputs"); ++i) v.push_back("ograd" + std::to_string(i));
      return v;
    };
    d.output_names_ = {"data_grad"};
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = split_backward;
    r.add(std::move(d));
  }
}

}  // namespace kiln
