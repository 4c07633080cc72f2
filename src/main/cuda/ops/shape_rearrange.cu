// Rearranging operators on the GPU: SwapAxis (swapaxes), depth_to_space and space_to_depth (the
// permutation gather of transpose on a view of the input), reverse (a gather with mirrored
// coordinates), slice_like (a gather of the data's leading part; backward: zeros + scatter),
// shape_array and size_array (the input's shape or size as int64, written by one small kernel).
// Same inputs, outputs, parameters and dtypes as the CPU kernels (ops/tensor/shape_transpose.cc,
// ops/index/reorder.cc, ops/index/slice.cc, ops/tensor/shape_info.cc): data movement accepts every
// dtype, accumulation (kAddTo) and the scattering backward need float32/float64.
#include <string>
#include <vector>

#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {
namespace shape {
namespace {

// ---- SwapAxis / depth_to_space / space_to_depth --------------------------------------------------

void swapaxes_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const char* op = "SwapAxis";
  prologue(op, in, 1, 1, req, out, 1, 1);
  const TBlob& x = in[0];   // [.., d1, .., d2, ..]
  const TBlob& y = out[0];  // [.., d2, .., d1, ..]
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  const int nd = x.shape.ndim();
  if (x.dtype != y.dtype || x.size() != y.size())
    throw KilnError("SwapAxis (GPU): input " + x.shape.str() + " and output " + y.shape.str() + " do not match");
  int ax[2];
  const char* names[2] = {"dim1", "dim2"};
  for (int k = 0; k < 2; ++k) {
    ax[k] = norm_axis(a.i(names[k]), nd);
    if (ax[k] < 0)
      throw KilnError(std::string("SwapAxis (GPU): ") + names[k] + "=" + std::to_string(a.i(names[k])) +
                      " is out of bounds for input shape " + x.shape.str());
  }
  std::vector<int> perm(nd);
  for (int j = 0; j < nd; ++j) perm[j] = j;
  std::swap(perm[ax[0]], perm[ax[1]]);
  DeviceGuard g(device_of(ctx, in, out));
  launch_gather(op, stream_of(ctx), permute_map(op, x.shape.d, perm), y.size(), x, y, req[0]);
}

/// depth_to_space: x viewed as (N, b, b, C', H, W), axes (0, 3, 4, 1, 5, 2); space_to_depth: x
/// viewed as (N, C, H', b, W', b), axes (0, 3, 5, 1, 2, 4) (as shape_transpose.cc).
template <bool kToSpace>
void d2s_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = kToSpace ? "depth_to_space" : "space_to_depth";
  prologue(op, in, 1, 1, req, out, 1, 1);
  const TBlob& x = in[0];   // [N, C, H, W]
  const TBlob& y = out[0];  // [N, C / b^2, H b, W b] (depth_to_space) or [N, C b^2, H / b, W / b]
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  const int64_t b = a.i("block_size");
  const Shape& s = x.shape;
  if (s.ndim() != 4 || b < 1 || x.dtype != y.dtype || x.size() != y.size() ||
      (kToSpace ? s[1] % (b * b) != 0 : (s[2] % b != 0 || s[3] % b != 0)))
    throw KilnError(std::string(op) + " (GPU): input " + s.str() + " and output " + y.shape.str() +
                    " do not fit block_size " + std::to_string(b));
  const std::vector<int64_t> view = kToSpace ? std::vector<int64_t>{s[0], b, b, s[1] / (b * b), s[2], s[3]}
                                             : std::vector<int64_t>{s[0], s[1], s[2] / b, b, s[3] / b, b};
  const std::vector<int> perm = kToSpace ? std::vector<int>{0, 3, 4, 1, 5, 2} : std::vector<int>{0, 3, 5, 1, 2, 4};
  DeviceGuard g(device_of(ctx, in, out));
  launch_gather(op, stream_of(ctx), permute_map(op, view, perm), y.size(), x, y, req[0]);
}

// ---- reverse -------------------------------------------------------------------------------------

void reverse_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = "reverse";
  prologue(op, in, 1, 1, req, out, 1, 1);
  const TBlob& x = in[0];   // [s]
  const TBlob& y = out[0];  // [s]
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  if (!(x.shape == y.shape) || x.dtype != y.dtype)
    throw KilnError("reverse (GPU): input " + x.shape.str() + " and output " + y.shape.str() + " differ");
  if (x.ptr == y.ptr && x.size() > 1) throw KilnError("reverse (GPU): the output cannot alias the input");
  const int nd = x.shape.ndim();
  std::vector<bool> flip(nd, false);
  for (int64_t v : a.t("axis")) {  // an axis named twice is reversed twice (MXNet): not at all
    const int ax = norm_axis(v, nd);
    if (ax < 0) throw KilnError("reverse (GPU): axis " + std::to_string(v) + " is out of range for " + x.shape.str());
    flip[ax] = !flip[ax];
  }
  // drop size-1 dims, merge neighbours reversed alike (mirroring both coordinates of a row-major
  // block mirrors its flat index); a reversed dim reads from its end with a negative stride
  const std::vector<int64_t> xs = strides_of(x.shape.d);
  std::vector<int64_t> dims, strides;
  std::vector<bool> rev;
  for (int d = 0; d < nd; ++d) {
    if (x.shape[d] == 1) continue;
    if (!dims.empty() && rev.back() == flip[d]) {
      dims.back() *= x.shape[d];
      strides.back() = xs[d];
    } else {
      dims.push_back(x.shape[d]);
      strides.push_back(xs[d]);
      rev.push_back(flip[d]);
    }
  }
  if (dims.size() > (size_t)kMaxDims)
    throw KilnError("reverse (GPU): at most " + std::to_string(kMaxDims) + " alternating dimensions are supported, got " +
                    std::to_string(dims.size()));
  GatherMap m;  // y[c] reads x[sum_d (rev_d ? dims_d - 1 - c_d : c_d) * strides_d]
  m.nd = (int)dims.size();
  for (int d = 0; d < m.nd; ++d) {
    m.dims[d] = dims[d];
    m.div[d] = 1;
    m.mod[d] = 0;
    m.stride[d] = rev[d] ? -strides[d] : strides[d];
    if (rev[d]) m.base += (dims[d] - 1) * strides[d];
  }
  DeviceGuard g(device_of(ctx, in, out));
  launch_gather(op, stream_of(ctx), m, y.size(), x, y, req[0]);
}

// ---- slice_like ----------------------------------------------------------------------------------

/// The leading part of x [xs] that y [ys] covers, as a gather over y's index space.
GatherMap leading_map(const char* op, const Shape& xs, const Shape& ys) {
  if (xs.ndim() != ys.ndim() || xs.ndim() > kMaxDims)
    throw KilnError(std::string(op) + " (GPU): data " + xs.str() + " and output " + ys.str() + " do not fit");
  const std::vector<int64_t> st = strides_of(xs.d);
  GatherMap m;
  m.nd = xs.ndim();
  for (int d = 0; d < m.nd; ++d) {
    if (ys[d] > xs[d]) throw KilnError(std::string(op) + " (GPU): output " + ys.str() + " exceeds the data " + xs.str());
    m.dims[d] = ys[d];
    m.div[d] = 1;
    m.mod[d] = 0;
    m.stride[d] = st[d];
  }
  return m;
}

void slice_like_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  const char* op = "slice_like";
  prologue(op, in, 2, 2, req, out, 1, 1);
  const TBlob& x = in[0];   // [d0, .., dk]; in[1] (shape_like) is not read
  const TBlob& y = out[0];  // [n0, .., nk], n_i <= d_i
  if (req[0] == OpReq::kNullOp || y.size() == 0) return;
  if (x.dtype != y.dtype) throw KilnError("slice_like (GPU): data and output differ in dtype");
  const GatherMap m = leading_map(op, x.shape, y.shape);
  DeviceGuard g(device_of(ctx, in, out));
  launch_gather(op, stream_of(ctx), m, y.size(), x, y, req[0]);
}

// dy: [n], dx: [any]; dx[gather_offset(m, i)] += dy[i] (the map is injective: no conflicts)
template <typename T>
__global__ void scatter_add_kernel(GatherMap m, int64_t n, const T* dy, T* dx) {
  KILN_GRID_STRIDE(i, n) { dx[gather_offset(m, i)] += dy[i]; }
}

void slice_like_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  const char* op = "_backward_slice_like";
  prologue(op, in, 1, 1, req, out, 2, 2);
  const TBlob& dy = in[0];     // [n0, .., nk]
  const TBlob& dx = out[0];    // [d0, .., dk]
  const TBlob& dlike = out[1]; // shape_like's shape, any dtype: zeros
  DeviceGuard g(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  zero_unless_add(s, dlike, req[1]);
  if (req[0] == OpReq::kNullOp) return;
  if (dx.dtype != dy.dtype) throw KilnError("_backward_slice_like (GPU): gradients differ in dtype");
  const GatherMap m = leading_map(op, dx.shape, dy.shape);
  KILN_FLOAT_SWITCH(dx.dtype, T, {
    zero_unless_add(s, dx, req[0]);
    const int64_t n = dy.size();
    if (n > 0) {
      scatter_add_kernel<T><<<grid_for(n), kBlock, 0, s>>>(m, n, dy.dptr<T>(), dx.dptr<T>());
      KILN_CUDA_LAUNCH_CHECK(op);
    }
  });
}

// ---- shape_array / size_array --------------------------------------------------------------------

/// Up to 32 int64 values passed by value (the CPU's rank limit).
struct Values {
  int n = 0;
  int64_t v[32];
};

// y: int64 [vals.n]; y[i] (=|+=) vals.v[i]
__global__ void write_values_kernel(Values vals, int64_t* y, int req) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < vals.n) assign(y, i, req, vals.v[i]);
}

template <bool kSize>
void info_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = kSize ? "size_array" : "shape_array";
  prologue(op, in, 1, 1, req, out, 1, 1);
  const TBlob& x = in[0];   // only its shape is read
  const TBlob& y = out[0];  // int64 [ndim] or [1]
  if (req[0] == OpReq::kNullOp) return;
  const std::vector<int64_t> v = kSize ? std::vector<int64_t>{x.shape.size()} : x.shape.d;
  if (y.dtype != DType::kInt64 || y.size() != (int64_t)v.size() || v.size() > 32)
    throw KilnError(std::string(op) + " (GPU): output " + y.shape.str() + " " + dtype_name(y.dtype) +
                    " for input shape " + x.shape.str());
  if (v.empty()) return;
  Values vals;
  vals.n = (int)v.size();
  for (size_t i = 0; i < v.size(); ++i) vals.v[i] = v[i];
  DeviceGuard g(device_of(ctx, in, out));
  write_values_kernel<<<1, 32, 0, stream_of(ctx)>>>(vals, y.dptr<int64_t>(), req_int(req[0]));
  KILN_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void register_shape_rearrange_gpu(OpRegistry& r) {
  set_gpu(r, "SwapAxis", swapaxes_forward);
  set_gpu(r, "depth_to_space", d2s_forward<true>);
  set_gpu(r, "space_to_depth", d2s_forward<false>);
  set_gpu(r, "reverse", reverse_forward);
  set_gpu(r, "slice_like", slice_like_forward);
  set_gpu(r, "_backward_slice_like", slice_like_backward);
  set_gpu(r, "shape_array", info_forward<false>);
  set_gpu(r, "size_array", info_forward<true>);
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
