// transpose: permutes the axes of an array (axes=() reverses them). Its gradient is transpose
// with the inverse permutation (reads only dy). The other permutations of this file run on the same
// kernel: SwapAxis (swapaxes) exchanges two axes (its gradient swaps them back), depth_to_space and
// space_to_depth are a transpose of a 6-D view of an NCHW array (MXNet's DCR order; each one's
// gradient is the other).
// Kernel: the permutation is first simplified (size-1 axes dropped, runs of axes that stay
// adjacent merged), then either rows of the innermost axis are copied (the last axis stays
// last) or 32x32 tiles of the two innermost axes (input-contiguous vs output-contiguous) are
// transposed for every index of the remaining axes. Data moves as raw elements of the dtype's
// size; kAddTo needs float32/float64.
#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace {

/// The permutation for rank `nd`: out axis j reads input axis perm[j]. Empty axes = reversed.
/// Negative axes count from the end. Throws InferError (naming `shape`) when not a permutation.
std::vector<int> make_perm(const std::vector<int64_t>& axes, int nd, const std::string& shape) {
  std::vector<int> perm(nd);
  if (axes.empty()) {
    for (int j = 0; j < nd; ++j) perm[j] = nd - 1 - j;
    return perm;
  }
  if ((int)axes.size() != nd)
    throw InferError(true, 0, "transpose: axes=" + tuple_str(axes) + " has " + std::to_string(axes.size()) +
                                  " entries, but the input shape " + shape + " has " + std::to_string(nd) + " dims");
  std::vector<bool> seen(nd, false);
  for (int j = 0; j < nd; ++j) {
    int64_t a = axes[j] < 0 ? axes[j] + nd : axes[j];
    if (a < 0 || a >= nd || seen[a])
      throw InferError(true, 0, "transpose: axes=" + tuple_str(axes) + " is not a permutation of the " +
                                    std::to_string(nd) + " axes of input shape " + shape);
    seen[a] = true;
    perm[j] = (int)a;
  }
  return perm;
}

/// out.shape[j] = in.shape[perm[j]] and back (MXNet TransposeShape, without its 6-dim limit).
void transpose_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  const Shape& y = (*out)[0];
  if (!x.rank_known() && !y.rank_known()) return;
  if (x.rank_known() && y.rank_known() && x.ndim() != y.ndim())
    throw InferError(false, 0, "transpose: input shape " + x.str() + " and output shape " + y.str() +
                                   " have different ranks");
  const int nd = x.rank_known() ? x.ndim() : y.ndim();
  if (nd == 0) throw InferError(true, 0, "transpose: Number of dimensions cannot be 0 (shape " + x.str() + ")");
  const std::vector<int> perm = make_perm(a.t("axes"), nd, x.rank_known() ? x.str() : y.str());
  Shape y_from_x = Shape::unknown_dims(nd), x_from_y = Shape::unknown_dims(nd);
  for (int j = 0; j < nd; ++j) {
    if (x.rank_known()) y_from_x[j] = x[perm[j]];
    if (y.rank_known()) x_from_y[perm[j]] = y[j];
  }
  const Shape x_before = x, y_before = y;
  if (!shape_assign(&(*in)[0], x_from_y) || !shape_assign(&(*out)[0], y_from_x))
    throw InferError(false, 0, "transpose: input shape " + x_before.str() + " permuted by axes=" +
                                   tuple_str(a.t("axes")) + " does not match output shape " + y_before.str());
}

/// Simplified problem: input dims D (row-major) and permutation P with out axis j = in axis P[j].
void simplify(const Shape& s, const std::vector<int>& perm, std::vector<int64_t>* D, std::vector<int>* P) {
  const int nd = s.ndim();
  // 1. drop size-1 axes
  std::vector<int> keep_index(nd, -1);
  std::vector<int64_t> d1;
  for (int i = 0; i < nd; ++i)
    if (s[i] != 1) { keep_index[i] = (int)d1.size(); d1.push_back(s[i]); }
  std::vector<int> p1;
  for (int j = 0; j < nd; ++j)
    if (keep_index[perm[j]] >= 0) p1.push_back(keep_index[perm[j]]);
  // 2. merge output-adjacent axes that are also input-adjacent, in order: groups [start, len)
  std::vector<std::pair<int, int>> groups;  // in output order: (first input axis, number of axes)
  for (size_t j = 0; j < p1.size(); ++j) {
    if (!groups.empty() && groups.back().first + groups.back().second == p1[j]) ++groups.back().second;
    else groups.push_back({p1[j], 1});
  }
  std::vector<int> order(groups.size());  // groups sorted by input position
  for (size_t g = 0; g < groups.size(); ++g) order[g] = (int)g;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return groups[a].first < groups[b].first; });
  std::vector<int> rank_of(groups.size());
  D->clear();
  for (size_t k = 0; k < order.size(); ++k) {
    const auto& g = groups[order[k]];
    int64_t len = 1;
    for (int i = g.first; i < g.first + g.second; ++i) len *= d1[i];
    D->push_back(len);
    rank_of[order[k]] = (int)k;
  }
  P->assign(groups.size(), 0);
  for (size_t g = 0; g < groups.size(); ++g) (*P)[g] = rank_of[g];
}

template <typename T, bool kAdd>
inline void put(T* dst, T v) {
  if (kAdd) *dst += v;
  else *dst = v;
}

/// y = permute(x). D, P: the simplified problem (see simplify), ndim n >= 2 and P not identity.
template <typename T, bool kAdd>
void transpose_run(const T* x, T* y, const std::vector<int64_t>& D, const std::vector<int>& P) {
  // x: [D[0], ..., D[n-1]]; y: [D[P[0]], ..., D[P[n-1]]]
  const int n = (int)D.size();
  std::vector<int64_t> is(n), O(n), os(n);  // input strides, output dims and strides
  is[n - 1] = 1;
  for (int i = n - 2; i >= 0; --i) is[i] = is[i + 1] * D[i + 1];
  for (int j = 0; j < n; ++j) O[j] = D[P[j]];
  os[n - 1] = 1;
  for (int j = n - 2; j >= 0; --j) os[j] = os[j + 1] * O[j + 1];
  int64_t total = 1;
  for (int64_t v : D) total *= v;
  if (total == 0) return;
  const int nt = total < kOmpMinWork ? 1 : std::max(1, num_threads());
  const int jl = n - 1;  // output-contiguous axis
  int jb = 0;            // output axis that reads the input-contiguous axis
  for (int j = 0; j < n; ++j)
    if (P[j] == n - 1) jb = j;
  // batch axes: all output axes except jl (and jb when tiling), decomposed row-major
  std::vector<int> batch_axes;
  const bool rows = P[jl] == n - 1;  // the last axis stays last: copy whole rows
  for (int j = 0; j < n; ++j)
    if (j != jl && (rows || j != jb)) batch_axes.push_back(j);
  auto bases = [&](int64_t b, int64_t* ib, int64_t* ob) {
    int64_t i0 = 0, o0 = 0;
    for (int k = (int)batch_axes.size() - 1; k >= 0; --k) {
      const int j = batch_axes[k];
      const int64_t idx = b % O[j];
      b /= O[j];
      i0 += idx * is[P[j]];
      o0 += idx * os[j];
    }
    *ib = i0;
    *ob = o0;
  };
  if (rows) {
    const int64_t inner = O[jl], nrows = total / inner;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t r = 0; r < nrows; ++r) {
      int64_t ib, ob;
      bases(r, &ib, &ob);
      for (int64_t k = 0; k < inner; ++k) put<T, kAdd>(y + ob + k, x[ib + k]);
    }
    return;
  }
  constexpr int64_t kTile = 32;
  const int64_t A = O[jb], B = O[jl];  // A: input-contiguous length, B: output-contiguous length
  const int64_t sA_out = os[jb], sB_in = is[P[jl]];
  const int64_t ta = (A + kTile - 1) / kTile, tb = (B + kTile - 1) / kTile;
  const int64_t nbatch = total / (A * B), ntasks = nbatch * ta * tb;
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t t = 0; t < ntasks; ++t) {
    const int64_t b = t / (ta * tb), rem = t % (ta * tb);
    const int64_t a0 = (rem / tb) * kTile, b0 = (rem % tb) * kTile;
    const int64_t a1 = std::min(A, a0 + kTile), b1 = std::min(B, b0 + kTile);
    int64_t ib, ob;
    bases(b, &ib, &ob);
    for (int64_t ia = a0; ia < a1; ++ia) {
      const T* xs = x + ib + ia;          // stride sB_in along B
      T* yr = y + ob + ia * sA_out;       // contiguous along B
      for (int64_t k = b0; k < b1; ++k) put<T, kAdd>(yr + k, xs[k * sB_in]);
    }
  }
}

template <typename T, bool kAdd>
void contiguous_run(const T* x, T* y, int64_t n) {
#pragma omp parallel for num_threads(num_threads()) schedule(static) if (n >= kOmpMinWork)
  for (int64_t i = 0; i < n; ++i) put<T, kAdd>(y + i, x[i]);
}

template <typename T, bool kAdd>
void dispatch(const TBlob& x, const TBlob& y, const std::vector<int64_t>& D, const std::vector<int>& P) {
  const T* xp = static_cast<const T*>(x.ptr);  // [in dims]
  T* yp = static_cast<T*>(y.ptr);              // [in dims permuted]
  if (D.size() <= 1) {
    if (!kAdd) {
      if (xp != yp) std::memcpy(yp, xp, y.bytes());
      return;
    }
    contiguous_run<T, kAdd>(xp, yp, y.size());
    return;
  }
  transpose_run<T, kAdd>(xp, yp, D, P);
}

}  // namespace

/// y (req) x permuted: y's axis j is x's axis perm[j], x viewed with the dims `xdims` (any view of
/// x's elements, e.g. the 6-D view of depth_to_space). Shared by the permuting ops of this file.
void transpose_blob(const char* op, const TBlob& x, const std::vector<int64_t>& xdims, const std::vector<int>& perm,
                    OpReq req, const TBlob& y) {
  if (req == OpReq::kNullOp || y.size() == 0) return;
  KILN_CHECK(x.dtype == y.dtype, std::string(op) + ": input and output must share a dtype");
  const Shape xs(xdims);
  KILN_CHECK(xs.size() == x.size() && y.size() == x.size(),
             std::string(op) + ": input " + x.shape.str() + " viewed as " + xs.str() + " does not match output " +
                 y.shape.str());
  std::vector<int64_t> D;
  std::vector<int> P;
  simplify(xs, perm, &D, &P);
  if (req == OpReq::kAddTo) {
    if (x.dtype == DType::kFloat32) dispatch<float, true>(x, y, D, P);
    else if (x.dtype == DType::kFloat64) dispatch<double, true>(x, y, D, P);
    else throw KilnError(std::string(op) + ": dtype " + dtype_name(x.dtype) +
                         " is not supported for accumulation (float32, float64)");
    return;
  }
  switch (dtype_size(x.dtype)) {
    case 1: dispatch<uint8_t, false>(x, y, D, P); break;
    case 2: dispatch<uint16_t, false>(x, y, D, P); break;
    case 4: dispatch<uint32_t, false>(x, y, D, P); break;
    case 8: dispatch<uint64_t, false>(x, y, D, P); break;
    default: throw KilnError(std::string(op) + ": unsupported dtype " + dtype_name(x.dtype));
  }
}

namespace {

void transpose_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [d_0, ..., d_{n-1}]
  const TBlob& y = out[0];  // [d_perm[0], ..., d_perm[n-1]]
  transpose_blob("transpose", x, x.shape.d, make_perm(a.t("axes"), x.shape.ndim(), x.shape.str()), req[0], y);
}

/// dx = transpose(dy, inverse(perm)); axes=() is its own inverse.
std::vector<NodeEntry> transpose_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  const std::vector<int64_t>& axes = fwd->attrs.t("axes");
  std::map<std::string, std::string> attrs;
  if (!axes.empty()) {
    const int nd = (int)axes.size();
    std::vector<int64_t> inv(nd, -1);
    bool valid = true;
    for (int j = 0; j < nd && valid; ++j) {
      const int64_t a = axes[j] < 0 ? axes[j] + nd : axes[j];
      valid = a >= 0 && a < nd && inv[a] < 0;
      if (valid) inv[a] = j;
    }
    // an invalid `axes` is reported by the forward node's shape inference; keep it as is here
    attrs["axes"] = valid ? tuple_str(inv) : tuple_str(axes);
  }
  NodePtr n = make_node("transpose", fwd->name + "_backward", attrs, {ograds[0]});
  n->control_deps.push_back(fwd);  // ordered after the forward node, as MXNet's MakeGradNode does
  return {NodeEntry{n, 0}};
}

// ---- SwapAxis (swapaxes) ------------------------------------------------------------------------

/// dim1/dim2 of a rank-`nd` array (negative: from the end), as MXNet's SwapAxisShape checks them.
std::pair<int, int> swap_dims(const Attrs& a, int nd, const std::string& shape) {
  int ax[2];
  const char* names[2] = {"dim1", "dim2"};
  for (int k = 0; k < 2; ++k) {
    const int64_t v = a.i(names[k]);
    const int64_t n = v < 0 ? v + nd : v;
    if (n < 0 || n >= nd)
      throw InferError(true, 0, std::string("SwapAxis: ") + names[k] + "=" + std::to_string(v) +
                                    " is out of bounds for array of ndim " + std::to_string(nd) + " (shape " + shape + ")");
    ax[k] = (int)n;
  }
  return {ax[0], ax[1]};
}

std::vector<int> swap_perm(const Attrs& a, int nd, const std::string& shape) {
  std::vector<int> perm(nd);
  for (int j = 0; j < nd; ++j) perm[j] = j;
  const auto d = swap_dims(a, nd, shape);
  std::swap(perm[d.first], perm[d.second]);
  return perm;
}

/// The two dims exchange their sizes, in either direction.
void swapaxes_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  const Shape& y = (*out)[0];
  if (!x.rank_known() && !y.rank_known()) return;
  if (x.rank_known() && y.rank_known() && x.ndim() != y.ndim())
    throw InferError(false, 0, "SwapAxis: input shape " + x.str() + " and output shape " + y.str() + " differ in rank");
  const int nd = x.rank_known() ? x.ndim() : y.ndim();
  if (nd == 0) throw InferError(true, 0, "SwapAxis: a zero-dimensional input has no axes to swap");
  const std::vector<int> perm = swap_perm(a, nd, x.rank_known() ? x.str() : y.str());
  Shape y_from_x = Shape::unknown_dims(nd), x_from_y = Shape::unknown_dims(nd);
  for (int j = 0; j < nd; ++j) {
    if (x.rank_known()) y_from_x[j] = x[perm[j]];
    if (y.rank_known()) x_from_y[perm[j]] = y[j];
  }
  assign_in(in, 0, x_from_y);
  assign_out(out, 0, y_from_x);
}

void swapaxes_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [.., d1, .., d2, ..]
  const TBlob& y = out[0];  // [.., d2, .., d1, ..]
  transpose_blob("SwapAxis", x, x.shape.d, swap_perm(a, x.shape.ndim(), x.shape.str()), req[0], y);
}

/// A node of `op` named "<fwd>_backward" on dy with the given attributes, ordered after the
/// forward node (MXNet's MakeGradNode): the permuting ops' gradients are forward ops themselves.
std::vector<NodeEntry> grad_node(const std::string& op, const NodePtr& fwd, const std::map<std::string, std::string>& attrs,
                                 const NodeEntry& dy) {
  NodePtr n = make_node(op, fwd->name + "_backward", attrs, {dy});
  n->control_deps.push_back(fwd);
  return {NodeEntry{n, 0}};
}

/// dx = swapaxes(dy) with the same two dims.
std::vector<NodeEntry> swapaxes_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  return grad_node("SwapAxis", fwd,
                   {{"dim1", std::to_string(fwd->attrs.i("dim1"))}, {"dim2", std::to_string(fwd->attrs.i("dim2"))}},
                   ograds[0]);
}

// ---- depth_to_space / space_to_depth ------------------------------------------------------------

/// depth_to_space: (N, C, H, W) -> (N, C / b^2, H b, W b); space_to_depth the inverse. Unknown dims
/// are completed from the other side when they can be.
template <bool kToSpace>
void d2s_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const char* op = kToSpace ? "depth_to_space" : "space_to_depth";
  const int64_t b = a.i("block_size");
  if (b < 1) throw InferError(true, 0, std::string(op) + ": block_size must be a positive integer value, got " + std::to_string(b));
  const Shape& x = (*in)[0];
  const Shape& y = (*out)[0];
  if (!x.rank_known() && !y.rank_known()) return;
  const std::string what = kToSpace ? "Depth To Space" : "Space To Depth";
  if ((x.rank_known() && x.ndim() != 4) || (y.rank_known() && y.ndim() != 4))
    throw InferError(true, 0, std::string(op) + ": Operation " + what + " requires exactly 4D tensor, got input shape " +
                                  x.str() + (y.rank_known() ? " and output shape " + y.str() : std::string()));
  // the "depth" side D = (N, C b^2, H, W) and the "space" side S = (N, C, H b, W b)
  const Shape& deep = kToSpace ? x : y;
  const Shape& flat = kToSpace ? y : x;
  const auto fail = [&](const std::string& why) {
    return InferError(true, 0, std::string(op) + ": Cannot perform " + what + " operation on the specified tensor. " +
                                   why + " (block_size=" + std::to_string(b) + ", input shape " + x.str() + ")");
  };
  Shape d = deep.rank_known() ? deep : Shape::unknown_dims(4);
  Shape f = flat.rank_known() ? flat : Shape::unknown_dims(4);
  if (d.rank_known() && d[1] >= 0 && d[1] % (b * b) != 0)
    throw fail("Dimension:1(depth dimension) should be a multiple of 'block^2'");
  for (int k = 2; k < 4; ++k)
    if (f[k] >= 0 && f[k] % b != 0)
      throw fail("Dimension:" + std::to_string(k) + "(" + (k == 2 ? "1st" : "2nd") +
                 " space dimension) should be a multiple of 'block'");
  Shape f_from_d = Shape::unknown_dims(4), d_from_f = Shape::unknown_dims(4);
  f_from_d[0] = d[0];
  d_from_f[0] = f[0];
  f_from_d[1] = d[1] >= 0 ? d[1] / (b * b) : -1;
  d_from_f[1] = f[1] >= 0 ? f[1] * b * b : -1;
  for (int k = 2; k < 4; ++k) {
    f_from_d[k] = d[k] >= 0 ? d[k] * b : -1;
    d_from_f[k] = f[k] >= 0 ? f[k] / b : -1;
  }
  if (kToSpace) {
    assign_out(out, 0, f_from_d);
    assign_in(in, 0, d_from_f);
  } else {
    assign_out(out, 0, d_from_f);
    assign_in(in, 0, f_from_d);
  }
}

/// depth_to_space: x viewed as (N, b, b, C', H, W), axes (0, 3, 4, 1, 5, 2) -> (N, C', H, b, W, b):
/// y[n, c, h b + i, w b + j] = x[n, (i b + j) C' + c, h, w]. space_to_depth: x viewed as
/// (N, C, H', b, W', b), axes (0, 3, 5, 1, 2, 4) -> (N, b, b, C, H', W').
template <bool kToSpace>
void d2s_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = kToSpace ? "depth_to_space" : "space_to_depth";
  const TBlob& x = in[0];   // [N, C, H, W]
  const TBlob& y = out[0];  // [N, C / b^2, H b, W b] (depth_to_space) or [N, C b^2, H / b, W / b]
  const int64_t b = a.i("block_size");
  KILN_CHECK(x.shape.ndim() == 4 && b >= 1, std::string(op) + ": needs a 4-D input and a positive block_size");
  const Shape& s = x.shape;
  if (kToSpace) {
    transpose_blob(op, x, {s[0], b, b, s[1] / (b * b), s[2], s[3]}, {0, 3, 4, 1, 5, 2}, req[0], y);
  } else {
    transpose_blob(op, x, {s[0], s[1], s[2] / b, b, s[3] / b, b}, {0, 3, 5, 1, 2, 4}, req[0], y);
  }
}

/// The gradient of each is the other with the same block_size (MXNet).
template <bool kToSpace>
std::vector<NodeEntry> d2s_grad(const NodePtr& fwd, const std::vector<NodeEntry>& ograds) {
  return grad_node(kToSpace ? "space_to_depth" : "depth_to_space", fwd,
                   {{"block_size", std::to_string(fwd->attrs.i("block_size"))}}, ograds[0]);
}

}  // namespace

void register_shape_transpose_ops(OpRegistry& r) {
  OpDef d;
  d.name = "transpose";
  d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
  d.description = "Permutes the dimensions of an array.";
  ParamDef axes;
  axes.name = "axes";
  axes.type = ParamType::kShape;
  axes.default_value = "()";
  axes.description = "Target axis order. By default the axes will be inverted.";
  d.params = {axes};
  d.input_names_ = {"data"};
  d.infer_shape = transpose_infer_shape;
  d.cpu = transpose_forward;
  d.gradient = transpose_grad;
  r.add(std::move(d));
  {
    OpDef w;
    w.name = "SwapAxis";
    w.aliases = {"swapaxes"};
    w.description = "Interchanges two axes of an array.";
    w.params = {param("dim1", ParamType::kInt, "0", "the first axis to be swapped."),
                param("dim2", ParamType::kInt, "0", "the second axis to be swapped.")};
    w.input_names_ = {"data"};
    w.infer_shape = swapaxes_infer_shape;
    w.cpu = swapaxes_forward;
    w.gradient = swapaxes_grad;
    r.add(std::move(w));
  }
  for (bool to_space : {true, false}) {
    OpDef s;
    s.name = to_space ? "depth_to_space" : "space_to_depth";
    s.description = to_space ? "Rearranges(permutes) data from depth into blocks of spatial data (NCHW, DCR order): "
                               "(N, C, H, W) -> (N, C / (block_size^2), H * block_size, W * block_size)."
                             : "Rearranges(permutes) blocks of spatial data into depth (NCHW, the inverse of "
                               "depth_to_space): (N, C, H, W) -> (N, C * (block_size^2), H / block_size, W / block_size).";
    s.params = {param("block_size", ParamType::kInt, "", "Blocks of [block_size. block_size] are moved")};
    s.input_names_ = {"data"};
    s.infer_shape = to_space ? InferShapeFn(d2s_infer_shape<true>) : InferShapeFn(d2s_infer_shape<false>);
    s.cpu = to_space ? Kernel(d2s_forward<true>) : Kernel(d2s_forward<false>);
    s.gradient = to_space ? GradFn(d2s_grad<true>) : GradFn(d2s_grad<false>);
    r.add(std::move(s));
  }
}

}  // namespace kiln
