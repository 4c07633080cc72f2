// transpose: permutes the axes of an array (axes=() reverses them). Its gradient is transpose
// with the inverse permutation (reads only dy).
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

std::string tuple_str(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  if (v.size() == 1) s += ",";
  return s + ")";
}

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

void transpose_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [d_0, ..., d_{n-1}]
  const TBlob& y = out[0];  // [d_perm[0], ..., d_perm[n-1]]
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  KILN_CHECK(x.dtype == y.dtype, "transpose: input and output must share a dtype");
  const std::vector<int> perm = make_perm(a.t("axes"), x.shape.ndim(), x.shape.str());
  std::vector<int64_t> D;
  std::vector<int> P;
  simplify(x.shape, perm, &D, &P);
  if (req[0] == OpReq::kAddTo) {
    if (x.dtype == DType::kFloat32) dispatch<float, true>(x, y, D, P);
    else if (x.dtype == DType::kFloat64) dispatch<double, true>(x, y, D, P);
    else throw KilnError(std::string("transpose: dtype ") + dtype_name(x.dtype) +
                         " is not supported for accumulation (float32, float64)");
    return;
  }
  switch (dtype_size(x.dtype)) {
    case 1: dispatch<uint8_t, false>(x, y, D, P); break;
    case 2: dispatch<uint16_t, false>(x, y, D, P); break;
    case 4: dispatch<uint32_t, false>(x, y, D, P); break;
    case 8: dispatch<uint64_t, false>(x, y, D, P); break;
    default: throw KilnError(std::string("transpose: unsupported dtype ") + dtype_name(x.dtype));
  }
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

}  // namespace

void register_shape_transpose_ops(OpRegistry& r) {
  OpDef d;
  d.name = "transpose";
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
}

}  // namespace kiln
