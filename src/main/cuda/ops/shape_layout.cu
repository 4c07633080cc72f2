// Layout operators on the GPU: Flatten, Reshape, expand_dims, squeeze, reshape_like and
// _backward_reshape (a copy), transpose, Concat / SliceChannel / stack and their backward ops (row
// pieces of a [outer, W] view), slice and slice_axis (a strided view; backward: zeros + scatter
// into the view), tile and repeat (a gather; backward: per input element, the sum over its copies
// in a fixed order).
// Same inputs, outputs, parameters and dtypes as the CPU kernels (shape_reshape.cc,
// shape_transpose.cc, shape_concat.cc, index/slice.cc, index/reorder.cc): data movement accepts
// every dtype, accumulation (kAddTo) and the summing backward ops need float32/float64.
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {
namespace shape {

// ---- generic kernels -----------------------------------------------------------------------------

// x: [any, read through m], y: [n]
template <typename T>
__global__ void gather_kernel(GatherMap m, int64_t n, const T* x, T* y, int req) {
  KILN_GRID_STRIDE(i, n) { put(y, i, req, x[gather_offset(m, i)]); }
}

// dy: [n], dx: [any]; dx[gather_offset(m, i)] += dy[i] (the map is injective: no conflicts)
template <typename T>
__global__ void scatter_add_kernel(GatherMap m, int64_t n, const T* dy, T* dx) {
  KILN_GRID_STRIDE(i, n) { dx[gather_offset(m, i)] += dy[i]; }
}

void launch_gather(const char* op, cudaStream_t s, const GatherMap& m, int64_t n, const TBlob& x, const TBlob& y,
                   OpReq req) {
  if (req == OpReq::kNullOp || n == 0) return;
  move_switch(op, y.dtype, req, [&](auto z) {
    using T = decltype(z);
    gather_kernel<T><<<grid_for(n), kBlock, 0, s>>>(m, n, static_cast<const T*>(x.ptr), static_cast<T*>(y.ptr),
                                                    req_int(req));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

GatherMap permute_map(const char* op, const std::vector<int64_t>& xdims, const std::vector<int>& perm) {
  // drop size-1 axes, then merge output-adjacent axes that are input-adjacent (fewer divisions)
  const std::vector<int64_t> xs = strides_of(xdims);
  std::vector<int64_t> dims, strides;
  for (size_t j = 0; j < perm.size(); ++j) {
    const int64_t d = xdims[perm[j]], st = xs[perm[j]];
    if (d == 1) continue;
    if (!dims.empty() && strides.back() == st * d) {
      dims.back() *= d;
      strides.back() = st;
    } else {
      dims.push_back(d);
      strides.push_back(st);
    }
  }
  if (dims.size() > (size_t)kMaxDims)
    throw KilnError(std::string(op) + " (GPU): at most " + std::to_string(kMaxDims) +
                    " dimensions are supported, got " + std::to_string(dims.size()));
  GatherMap m;
  m.nd = (int)dims.size();
  for (int d = 0; d < m.nd; ++d) {
    m.dims[d] = dims[d];
    m.div[d] = 1;
    m.mod[d] = 0;
    m.stride[d] = strides[d];
  }
  return m;
}

namespace {

// x: [n], y: [n]; y += x
template <typename T>
__global__ void add_kernel(int64_t n, const T* x, T* y) {
  KILN_GRID_STRIDE(i, n) { y[i] += x[i]; }
}

// src: [rows, spitch], dst: [rows, dpitch]; dst[r, c] += src[r, c] for c < w
template <typename T>
__global__ void add2d_kernel(int64_t rows, int64_t w, const T* src, int64_t spitch, T* dst, int64_t dpitch) {
  const int64_t n = rows * w;
  KILN_GRID_STRIDE(i, n) {
    const int64_t r = i / w, c = i % w;
    dst[r * dpitch + c] += src[r * spitch + c];
  }
}

/// For each output element i over dims (nd), the sum over the rep space (reps, row-major) of
/// src[sum_d (c_d * a_d + r_d * b_d) * stride_d]: the backward of tile and repeat.
struct SumMap {
  int nd = 0;
  int64_t dims[kMaxDims], reps[kMaxDims], a[kMaxDims], b[kMaxDims], stride[kMaxDims];
  int64_t nreps = 1;
};

// dy: [any, read through m], dx: [n]
template <typename T>
__global__ void sum_gather_kernel(SumMap m, int64_t n, const T* dy, T* dx, int req) {
  KILN_GRID_STRIDE(i, n) {
    int64_t base = 0, rem = i;
    for (int d = m.nd - 1; d >= 0; --d) {
      base += (rem % m.dims[d]) * m.a[d] * m.stride[d];
      rem /= m.dims[d];
    }
    T acc = T(0);
    for (int64_t r = 0; r < m.nreps; ++r) {
      int64_t off = base, rr = r;
      for (int d = m.nd - 1; d >= 0; --d) {
        off += (rr % m.reps[d]) * m.b[d] * m.stride[d];
        rr /= m.reps[d];
      }
      acc += dy[off];
    }
    assign(dx, i, req, acc);
  }
}

void check_dims(const char* op, size_t nd) {
  if (nd > (size_t)kMaxDims)
    throw KilnError(std::string(op) + " (GPU): at most " + std::to_string(kMaxDims) + " dimensions are supported, got " +
                    std::to_string(nd));
}

// ---- Flatten / Reshape / expand_dims / squeeze / reshape_like / _backward_reshape ---------------

/// y = x (+= under kAddTo); `nin` inputs, of which only the first is read (reshape_like's rhs lends
/// its shape only).
Kernel identity_op(const char* op, size_t nin = 1) {
  return [op, nin](const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
    prologue(op, in, nin, nin, req, out, 1, 1);
    const TBlob& x = in[0];   // [S] under any shape
    const TBlob& y = out[0];  // [S] under another shape
    if (req[0] == OpReq::kNullOp) return;
    if (x.size() != y.size() || x.dtype != y.dtype)
      throw KilnError(std::string(op) + " (GPU): input " + x.shape.str() + " and output " + y.shape.str() +
                      " differ in element count or dtype");
    const int64_t n = y.size();
    if (n == 0) return;
    DeviceGuard g(device_of(ctx, in, out));
    cudaStream_t s = stream_of(ctx);
    if (req[0] != OpReq::kAddTo) {
      if (x.ptr != y.ptr) KILN_CUDA_CHECK(cudaMemcpyAsync(y.ptr, x.ptr, y.bytes(), cudaMemcpyDeviceToDevice, s));
      return;
    }
    move_switch(op, y.dtype, req[0], [&](auto z) {
      using T = decltype(z);
      add_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, x.dptr<T>(), y.dptr<T>());
    });
    KILN_CUDA_LAUNCH_CHECK(op);
  };
}

// ---- transpose -----------------------------------------------------------------------------------

std::vector<int> make_perm(const std::vector<int64_t>& axes, int nd, const std::string& shape) {
  std::vector<int> perm(nd);
  if (axes.empty()) {
    for (int j = 0; j < nd; ++j) perm[j] = nd - 1 - j;
    return perm;
  }
  if ((int)axes.size() != nd)
    throw KilnError("transpose (GPU): axes has " + std::to_string(axes.size()) + " entries, but the input shape " +
                    shape + " has " + std::to_string(nd) + " dims");
  std::vector<bool> seen(nd, false);
  for (int j = 0; j < nd; ++j) {
    int64_t a = axes[j] < 0 ? axes[j] + nd : axes[j];
    if (a < 0 || a >= nd || seen[a])
      throw KilnError("transpose (GPU): axes is not a permutation of the " + std::to_string(nd) +
                      " axes of input shape " + shape);
    seen[a] = true;
    perm[j] = (int)a;
  }
  return perm;
}

void transpose_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const char* op = "transpose";
  prologue(op, in, 1, 1, req, out, 1, 1);
  const TBlob& x = in[0];   // [d_0, ..., d_{n-1}]
  const TBlob& y = out[0];  // [d_perm[0], ..., d_perm[n-1]]
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  if (x.dtype != y.dtype || x.size() != y.size())
    throw KilnError("transpose (GPU): input " + x.shape.str() + " and output " + y.shape.str() + " do not match");
  const std::vector<int> perm = make_perm(a.t("axes"), x.shape.ndim(), x.shape.str());
  DeviceGuard g(device_of(ctx, in, out));
  launch_gather(op, stream_of(ctx), permute_map(op, x.shape.d, perm), y.size(), x, y, req[0]);
}

// ---- Concat / SliceChannel / stack ---------------------------------------------------------------

struct Piece {
  void* ptr;       // [outer, width] elements
  int64_t width;   // elements per row of this piece
  int64_t offset;  // first column of this piece in the big tensor's rows
  OpReq req;       // request on the destination (the piece when splitting)
};

/// gather = true : whole[:, off_p : off_p + w_p] (whole_req) piece_p   (concatenate)
/// gather = false: piece_p (piece_p.req) whole[:, off_p : off_p + w_p] (split)
void move_pieces(const char* op, cudaStream_t s, void* whole, int64_t outer, int64_t W,
                 const std::vector<Piece>& pieces, bool gather, OpReq whole_req, DType dt) {
  // whole: [outer, W]
  const size_t es = dtype_size(dt);
  for (const Piece& p : pieces) {
    const OpReq r = gather ? whole_req : p.req;
    if (r == OpReq::kNullOp || outer == 0 || p.width == 0) continue;
    char* w = static_cast<char*>(whole) + (size_t)p.offset * es;
    char* q = static_cast<char*>(p.ptr);
    char* dst = gather ? w : q;
    const char* src = gather ? q : w;
    const int64_t dpitch = gather ? W : p.width, spitch = gather ? p.width : W;
    if (r != OpReq::kAddTo) {
      if (dst == src && dpitch == spitch) continue;
      KILN_CUDA_CHECK(cudaMemcpy2DAsync(dst, (size_t)dpitch * es, src, (size_t)spitch * es, (size_t)p.width * es,
                                        (size_t)outer, cudaMemcpyDeviceToDevice, s));
      continue;
    }
    move_switch(op, dt, r, [&](auto z) {
      using T = decltype(z);
      add2d_kernel<T><<<grid_for(outer * p.width), kBlock, 0, s>>>(outer, p.width, reinterpret_cast<const T*>(src),
                                                                    spitch, reinterpret_cast<T*>(dst), dpitch);
    });
    KILN_CUDA_LAUNCH_CHECK(op);
  }
}

void check_same_dtype(const char* op, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  const DType t = out.empty() ? in[0].dtype : out[0].dtype;
  for (const auto* v : {&in, &out})
    for (const auto& b : *v)
      if (b.dtype != t)
        throw KilnError(std::string(op) + " (GPU): mixed dtypes " + dtype_name(t) + " and " + dtype_name(b.dtype));
}

int axis_or_throw(const char* op, int64_t axis, const Shape& s) {
  const int ax = norm_axis(axis, s.ndim());
  if (ax < 0) throw KilnError(std::string(op) + " (GPU): axis " + std::to_string(axis) + " out of range for " + s.str());
  return ax;
}

/// Defence in depth before move_pieces: piece i (what) must hold exactly outer x width elements of
/// the [outer, W] view of whole, or the 2-D copies read or write past it.
void check_piece(const char* op, const char* what, size_t i, const TBlob& p, int64_t outer, int64_t width,
                 const Shape& whole) {
  if (p.size() != outer * width)
    throw KilnError(std::string(op) + " (GPU): " + what + " " + std::to_string(i) + " has shape " + p.shape.str() +
                    ", expected " + std::to_string(outer) + " x " + std::to_string(width) + " elements of " +
                    whole.str());
}

/// Concat's pieces share the whole's rank (their dim `axis` is read from their own shape).
void check_piece_rank(const char* op, const char* what, size_t i, const TBlob& p, const Shape& whole) {
  if (p.shape.ndim() != whole.ndim())
    throw KilnError(std::string(op) + " (GPU): " + what + " " + std::to_string(i) + " has shape " + p.shape.str() +
                    ", expected the rank of " + whole.str());
}

void concat_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "Concat";
  prologue(op, in, 1, 1u << 30, req, out, 1, 1);
  check_same_dtype(op, in, out);
  const TBlob& y = out[0];  // [d0, .., sum_i n_i, .., dk]
  if (req[0] == OpReq::kNullOp) return;
  const int nd = y.shape.ndim();
  const int axis = axis_or_throw(op, a.i("dim"), y.shape);
  const int64_t outer = y.shape.prod(0, axis), inner = y.shape.prod(axis + 1, nd);
  std::vector<Piece> pieces;
  int64_t off = 0;
  for (size_t i = 0; i < in.size(); ++i) {  // x_i: [d0, .., n_i, .., dk]
    const TBlob& x = in[i];
    check_piece_rank(op, "input", i, x, y.shape);
    const int64_t w = x.shape[axis] * inner;
    check_piece(op, "input", i, x, outer, w, y.shape);
    pieces.push_back({x.ptr, w, off, OpReq::kWriteTo});
    off += w;
  }
  if (off != y.shape[axis] * inner)
    throw KilnError("Concat (GPU): inputs do not add up to the output " + y.shape.str());
  DeviceGuard g(device_of(ctx, in, out));
  move_pieces(op, stream_of(ctx), y.ptr, outer, y.shape[axis] * inner, pieces, true, req[0], y.dtype);
}

void concat_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = "_backward_Concat";
  prologue(op, in, 1, 1, req, out, 1, 1u << 30);
  check_same_dtype(op, in, out);
  const TBlob& dy = in[0];  // [d0, .., sum_i n_i, .., dk]
  const int nd = dy.shape.ndim();
  const int axis = axis_or_throw(op, a.i("dim"), dy.shape);
  const int64_t outer = dy.shape.prod(0, axis), inner = dy.shape.prod(axis + 1, nd);
  std::vector<Piece> pieces;
  int64_t off = 0;
  for (size_t i = 0; i < out.size(); ++i) {  // dx_i: [d0, .., n_i, .., dk]
    check_piece_rank(op, "gradient", i, out[i], dy.shape);
    const int64_t w = out[i].shape[axis] * inner;
    check_piece(op, "gradient", i, out[i], outer, w, dy.shape);
    pieces.push_back({out[i].ptr, w, off, req[i]});
    off += w;
  }
  if (off != dy.shape[axis] * inner)
    throw KilnError("_backward_Concat (GPU): input gradients do not add up to the output gradient " + dy.shape.str());
  DeviceGuard g(device_of(ctx, in, out));
  move_pieces(op, stream_of(ctx), dy.ptr, outer, dy.shape[axis] * inner, pieces, false, OpReq::kWriteTo, dy.dtype);
}

void split_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "SliceChannel";
  prologue(op, in, 1, 1, req, out, 1, 1u << 30);
  check_same_dtype(op, in, out);
  const TBlob& x = in[0];  // [d0, .., n*m, .., dk]
  const int nd = x.shape.ndim();
  const int axis = axis_or_throw(op, a.i("axis"), x.shape);
  const int64_t outer = x.shape.prod(0, axis), inner = x.shape.prod(axis + 1, nd);
  const int64_t W = x.shape[axis] * inner;
  const int64_t w = W / (int64_t)out.size();
  std::vector<Piece> pieces;
  for (size_t i = 0; i < out.size(); ++i) {  // y_i: [d0, .., m, .., dk] ([d0, .., dk] with squeeze_axis)
    check_piece(op, "output", i, out[i], outer, w, x.shape);
    pieces.push_back({out[i].ptr, w, (int64_t)i * w, req[i]});
  }
  DeviceGuard g(device_of(ctx, in, out));
  move_pieces(op, stream_of(ctx), x.ptr, outer, W, pieces, false, OpReq::kWriteTo, x.dtype);
}

void split_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "_backward_SliceChannel";
  prologue(op, in, 1, 1u << 30, req, out, 1, 1);
  check_same_dtype(op, in, out);
  const TBlob& dx = out[0];  // [d0, .., n*m, .., dk]
  if (req[0] == OpReq::kNullOp) return;
  const int nd = dx.shape.ndim();
  const int axis = axis_or_throw(op, a.i("axis"), dx.shape);
  const int64_t outer = dx.shape.prod(0, axis), inner = dx.shape.prod(axis + 1, nd);
  const int64_t W = dx.shape[axis] * inner;
  const int64_t w = W / (int64_t)in.size();
  std::vector<Piece> pieces;
  for (size_t i = 0; i < in.size(); ++i) {  // dy_i: [d0, .., m, .., dk]
    check_piece(op, "output gradient", i, in[i], outer, w, dx.shape);
    pieces.push_back({in[i].ptr, w, (int64_t)i * w, OpReq::kWriteTo});
  }
  DeviceGuard g(device_of(ctx, in, out));
  move_pieces(op, stream_of(ctx), dx.ptr, outer, W, pieces, true, req[0], dx.dtype);
}

/// stack: whole [outer, num_args, inner], piece k [outer, inner] at column k * inner.
void stack_move(const char* op, const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& pieces_b,
                const TBlob& whole, bool gather, const std::vector<OpReq>& req) {
  const int ax = axis_or_throw(op, a.i("axis"), whole.shape);
  const int64_t outer = whole.shape.prod(0, ax), n = whole.shape[ax];
  const int64_t inner = whole.shape.prod(ax + 1, whole.shape.ndim());
  if ((int64_t)pieces_b.size() != n)
    throw KilnError(std::string(op) + " (GPU): " + std::to_string(pieces_b.size()) + " pieces for " +
                    whole.shape.str() + " along axis " + std::to_string(ax));
  std::vector<Piece> pieces;
  for (int64_t k = 0; k < n; ++k) {  // piece k: [outer, inner]
    check_piece(op, gather ? "input" : "gradient", (size_t)k, pieces_b[k], outer, inner, whole.shape);
    pieces.push_back({pieces_b[k].ptr, inner, k * inner, gather ? OpReq::kWriteTo : req[k]});
  }
  move_pieces(op, stream_of(ctx), whole.ptr, outer, n * inner, pieces, gather, gather ? req[0] : OpReq::kWriteTo,
              whole.dtype);
}

void stack_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "stack";
  prologue(op, in, 1, 1u << 30, req, out, 1, 1);
  check_same_dtype(op, in, out);
  if (req[0] == OpReq::kNullOp) return;
  DeviceGuard g(device_of(ctx, in, out));
  stack_move(op, ctx, a, in, out[0], true, req);  // x_i: [outer, inner], y: [outer, n, inner]
}

void stack_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "_backward_stack";
  prologue(op, in, 1, 1, req, out, 1, 1u << 30);
  check_same_dtype(op, in, out);
  DeviceGuard g(device_of(ctx, in, out));
  stack_move(op, ctx, a, out, in[0], false, req);  // dy: [outer, n, inner], dx_i: [outer, inner]
}

// ---- slice / slice_axis --------------------------------------------------------------------------

struct View {
  std::vector<int64_t> begin, step, len;  // per input dim
};

/// Parses "(1, None, -2)" keeping None apart from -1: has[i] = false for None (as index/slice.cc).
void parse_opt_tuple(const std::string& name, const std::string& text, std::vector<int64_t>* v,
                     std::vector<bool>* has) {
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
      throw KilnError("operator slice: invalid value '" + text + "' for parameter '" + name + "'");
    }
    if (item == "None") {
      v->push_back(0);
      has->push_back(false);
      continue;
    }
    char* end = nullptr;
    long long x = std::strtoll(item.c_str(), &end, 10);
    if (!end || *end != 0) throw KilnError("operator slice: invalid value '" + text + "' for parameter '" + name + "'");
    v->push_back(x);
    has->push_back(true);
  }
}

/// MXNet GetIndexRange + SetSliceOpOutputDimSize (index/slice.cc slice_view) on a known shape.
View slice_view(const Attrs& a, const Shape& x) {
  std::vector<int64_t> b, e, s;
  std::vector<bool> hb, he, hs;
  parse_opt_tuple("begin", a.get("begin").str, &b, &hb);
  parse_opt_tuple("end", a.get("end").str, &e, &he);
  parse_opt_tuple("step", a.get("step").str, &s, &hs);
  const int nd = x.ndim();
  if (b.size() != e.size() || (!s.empty() && s.size() != b.size()) || (int)b.size() > nd)
    throw KilnError("slice (GPU): begin/end/step do not fit input shape " + x.str());
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
      if (st == 0) throw KilnError("slice (GPU): step[" + std::to_string(i) + "] cannot be 0");
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

/// MXNet GetSliceAxisParams (index/slice.cc slice_axis_view).
View slice_axis_view(const Attrs& a, const Shape& x) {
  const int nd = x.ndim();
  const int ax = norm_axis(a.i("axis"), nd);
  if (ax < 0) throw KilnError("slice_axis (GPU): axis out of range for input shape " + x.str());
  View v;
  for (int i = 0; i < nd; ++i) {
    v.begin.push_back(0);
    v.step.push_back(1);
    v.len.push_back(x[i]);
  }
  const int64_t size = x[ax];
  int64_t b = a.i("begin"), e = -1;
  if (b < 0) b += size;
  if (size > 0) {
    if (!a.has("end")) e = size;
    else {
      e = a.i("end");
      if (e < 0) e += size;
    }
    if (e > size || !(b < e))
      throw KilnError("slice_axis (GPU): invalid begin " + std::to_string(b) + ", end " + std::to_string(e) +
                      " for input shape " + x.str());
  } else {
    b = 0;
    e = 0;
  }
  if (e < 0 || b < 0)
    throw KilnError("slice_axis (GPU): invalid begin " + std::to_string(b) + ", end " + std::to_string(e) +
                    " for input shape " + x.str());
  v.begin[ax] = b;
  v.len[ax] = e - b;
  return v;
}

/// The strided view as a GatherMap over the output [v.len] into x [xs].
GatherMap view_map(const char* op, const View& v, const Shape& xs) {
  check_dims(op, v.len.size());
  const std::vector<int64_t> st = strides_of(xs.d);
  GatherMap m;
  m.nd = (int)v.len.size();
  for (int d = 0; d < m.nd; ++d) {
    m.dims[d] = v.len[d];
    m.div[d] = 1;
    m.mod[d] = 0;
    m.stride[d] = v.step[d] * st[d];
    m.base += v.begin[d] * st[d];
  }
  return m;
}

template <View (*ViewFn)(const Attrs&, const Shape&)>
Kernel view_forward(const char* op) {
  return [op](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
              const std::vector<TBlob>& out) {
    prologue(op, in, 1, 1, req, out, 1, 1);
    check_same_dtype(op, in, out);
    const TBlob& x = in[0];   // [d0, .., dk]
    const TBlob& y = out[0];  // [n0, .., nk]
    if (req[0] == OpReq::kNullOp) return;
    const View v = ViewFn(a, x.shape);
    if (!(Shape(v.len) == y.shape))
      throw KilnError(std::string(op) + " (GPU): output shape " + y.shape.str() + " differs from " + Shape(v.len).str());
    DeviceGuard g(device_of(ctx, in, out));
    launch_gather(op, stream_of(ctx), view_map(op, v, x.shape), y.size(), x, y, req[0]);
  };
}

template <View (*ViewFn)(const Attrs&, const Shape&)>
Kernel view_backward(const char* op) {
  return [op](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
              const std::vector<TBlob>& out) {
    prologue(op, in, 1, 1, req, out, 1, 1);
    check_same_dtype(op, in, out);
    const TBlob& dy = in[0];   // [n0, .., nk]
    const TBlob& dx = out[0];  // [d0, .., dk]
    if (req[0] == OpReq::kNullOp) return;
    const View v = ViewFn(a, dx.shape);
    if (!(Shape(v.len) == dy.shape))
      throw KilnError(std::string(op) + " (GPU): gradient shape " + dy.shape.str() + " differs from " +
                      Shape(v.len).str());
    const GatherMap m = view_map(op, v, dx.shape);
    DeviceGuard g(device_of(ctx, in, out));
    cudaStream_t s = stream_of(ctx);
    KILN_FLOAT_SWITCH(dx.dtype, T, {
      zero_unless_add(s, dx, req[0]);
      const int64_t n = dy.size();
      if (n > 0) {
        scatter_add_kernel<T><<<grid_for(n), kBlock, 0, s>>>(m, n, dy.dptr<T>(), dx.dptr<T>());
        KILN_CUDA_LAUNCH_CHECK(op);
      }
    });
  };
}

// ---- tile ----------------------------------------------------------------------------------------

/// Input dims and reps right-aligned (missing ones are 1); out[i] = x[i] * reps[i] (reorder.cc).
void tile_dims(const Attrs& a, const Shape& x, std::vector<int64_t>* xd, std::vector<int64_t>* od) {
  const auto& reps = a.t("reps");
  if (reps.empty()) {
    *xd = x.d;
    *od = x.d;
    return;
  }
  const int nd = std::max<int>(x.ndim(), (int)reps.size());
  xd->assign(nd, 1);
  od->assign(nd, 1);
  for (int i = 0; i < nd; ++i) {
    const int xi = i - (nd - x.ndim()), ri = i - (nd - (int)reps.size());
    const int64_t d = xi >= 0 ? x[xi] : 1;
    const int64_t r = ri >= 0 ? reps[ri] : 1;
    (*xd)[i] = d;
    (*od)[i] = d * r;
  }
}

/// Defence in depth: y (tile's output, or dy) must have the tiled shape od of x, or the gather reads
/// (or the backward's sums read) past a blob.
void check_tiled(const char* op, const char* what, const TBlob& y, const std::vector<int64_t>& od, const Shape& x) {
  const Shape want(od);
  if (y.size() != want.size())
    throw KilnError(std::string(op) + " (GPU): " + what + " has shape " + y.shape.str() + ", expected the size of " +
                    want.str() + " (input " + x.str() + " tiled)");
}

void tile_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "tile";
  prologue(op, in, 1, 1, req, out, 1, 1);
  check_same_dtype(op, in, out);
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  std::vector<int64_t> xd, od;
  tile_dims(a, in[0].shape, &xd, &od);
  check_dims(op, od.size());
  check_tiled(op, "output", out[0], od, in[0].shape);
  const std::vector<int64_t> xs = strides_of(xd);
  GatherMap m;  // y [od] reads x [xd] at (c_d mod xd_d)
  m.nd = (int)od.size();
  for (int d = 0; d < m.nd; ++d) {
    m.dims[d] = od[d];
    m.div[d] = 1;
    m.mod[d] = xd[d];
    m.stride[d] = xs[d];
  }
  DeviceGuard g(device_of(ctx, in, out));
  launch_gather(op, stream_of(ctx), m, out[0].size(), in[0], out[0], req[0]);
}

void launch_sum_gather(const char* op, cudaStream_t s, const SumMap& m, const TBlob& dy, const TBlob& dx, OpReq req) {
  const int64_t n = dx.size();
  if (req == OpReq::kNullOp || n == 0) return;
  KILN_FLOAT_SWITCH(dx.dtype, T, {
    sum_gather_kernel<T><<<grid_for(n), kBlock, 0, s>>>(m, n, dy.dptr<T>(), dx.dptr<T>(), req_int(req));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void tile_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_backward_tile";
  prologue(op, in, 1, 1, req, out, 1, 1);
  check_same_dtype(op, in, out);
  if (req[0] == OpReq::kNullOp) return;
  std::vector<int64_t> xd, od;
  tile_dims(a, out[0].shape, &xd, &od);
  check_dims(op, od.size());
  check_tiled(op, "output gradient", in[0], od, out[0].shape);
  const std::vector<int64_t> ys = strides_of(od);
  SumMap m;  // dx [xd] = sum over reps r of dy [od] at (c_d + r_d * xd_d)
  m.nd = (int)od.size();
  for (int d = 0; d < m.nd; ++d) {
    m.dims[d] = xd[d];
    m.reps[d] = xd[d] == 0 ? 1 : od[d] / xd[d];
    m.a[d] = 1;
    m.b[d] = xd[d];
    m.stride[d] = ys[d];
    m.nreps *= m.reps[d];
  }
  DeviceGuard g(device_of(ctx, in, out));
  launch_sum_gather(op, stream_of(ctx), m, in[0], out[0], req[0]);
}

// ---- repeat --------------------------------------------------------------------------------------

struct RepDims {
  int64_t outer, n, inner, rep;  // x [outer, n, inner], y [outer, n*rep, inner]
};

RepDims repeat_dims(const char* op, const Attrs& a, const Shape& x) {
  if (!a.has("axis")) return {1, x.size(), 1, a.i("repeats")};
  const int ax = axis_or_throw(op, a.i("axis"), x);
  return {x.prod(0, ax), x[ax], x.prod(ax + 1, x.ndim()), a.i("repeats")};
}

/// Defence in depth: y (repeat's output, or dy) must hold outer x (n * rep) x inner elements of the
/// input x, or the gather (or the backward's sums) read past a blob.
void check_repeated(const char* op, const char* what, const TBlob& y, const RepDims& d, const Shape& x) {
  if (y.size() != d.outer * d.n * d.rep * d.inner)
    throw KilnError(std::string(op) + " (GPU): " + what + " has shape " + y.shape.str() + ", expected " +
                    std::to_string(d.outer * d.n * d.rep * d.inner) + " elements (input " + x.str() + " repeated " +
                    std::to_string(d.rep) + " times)");
}

void repeat_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "repeat";
  prologue(op, in, 1, 1, req, out, 1, 1);
  check_same_dtype(op, in, out);
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const RepDims d = repeat_dims(op, a, in[0].shape);
  check_repeated(op, "output", out[0], d, in[0].shape);
  GatherMap m;  // y [outer, n*rep, inner] reads x [outer, n, inner] at (o, c / rep, i)
  m.nd = 3;
  const int64_t dims[3] = {d.outer, d.n * d.rep, d.inner}, divs[3] = {1, d.rep, 1};
  const int64_t strides[3] = {d.n * d.inner, d.inner, 1};
  for (int k = 0; k < 3; ++k) {
    m.dims[k] = dims[k];
    m.div[k] = divs[k];
    m.mod[k] = 0;
    m.stride[k] = strides[k];
  }
  DeviceGuard g(device_of(ctx, in, out));
  launch_gather(op, stream_of(ctx), m, out[0].size(), in[0], out[0], req[0]);
}

void repeat_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = "_backward_repeat";
  prologue(op, in, 1, 1, req, out, 1, 1);
  check_same_dtype(op, in, out);
  if (req[0] == OpReq::kNullOp) return;
  const RepDims d = repeat_dims(op, a, out[0].shape);
  check_repeated(op, "output gradient", in[0], d, out[0].shape);
  SumMap m;  // dx [outer, n, inner] = sum over r < rep of dy [outer, n*rep, inner] at (o, k*rep + r, i)
  m.nd = 3;
  const int64_t dims[3] = {d.outer, d.n, d.inner}, reps[3] = {1, d.rep, 1}, as[3] = {1, d.rep, 1};
  const int64_t strides[3] = {d.n * d.rep * d.inner, d.inner, 1};
  for (int k = 0; k < 3; ++k) {
    m.dims[k] = dims[k];
    m.reps[k] = std::max<int64_t>(reps[k], 1);
    m.a[k] = as[k];
    m.b[k] = 1;
    m.stride[k] = strides[k];
  }
  m.nreps = d.rep;  // 0 repeats: zero gradient
  DeviceGuard g(device_of(ctx, in, out));
  launch_sum_gather(op, stream_of(ctx), m, in[0], out[0], req[0]);
}

}  // namespace

void register_shape_layout_gpu(OpRegistry& r) {
  set_gpu(r, "Flatten", identity_op("Flatten"));
  set_gpu(r, "Reshape", identity_op("Reshape"));
  set_gpu(r, "expand_dims", identity_op("expand_dims"));
  set_gpu(r, "squeeze", identity_op("squeeze"));
  set_gpu(r, "reshape_like", identity_op("reshape_like", 2));
  set_gpu(r, "_backward_reshape", identity_op("_backward_reshape"));
  set_gpu(r, "transpose", transpose_forward);
  set_gpu(r, "Concat", concat_forward);
  set_gpu(r, "_backward_Concat", concat_backward);
  set_gpu(r, "SliceChannel", split_forward);
  set_gpu(r, "_backward_SliceChannel", split_backward);
  set_gpu(r, "stack", stack_forward);
  set_gpu(r, "_backward_stack", stack_backward);
  set_gpu(r, "slice", view_forward<slice_view>("slice"));
  set_gpu(r, "_backward_slice", view_backward<slice_view>("_backward_slice"));
  set_gpu(r, "slice_axis", view_forward<slice_axis_view>("slice_axis"));
  set_gpu(r, "_backward_slice_axis", view_backward<slice_axis_view>("_backward_slice_axis"));
  set_gpu(r, "tile", tile_forward);
  set_gpu(r, "_backward_tile", tile_backward);
  set_gpu(r, "repeat", repeat_forward);
  set_gpu(r, "_backward_repeat", repeat_backward);
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
