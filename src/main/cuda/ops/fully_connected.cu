// FullyConnected on the GPU: GEMM through cuBLAS (cublas_dl.cc) plus small kernels for the bias.
//
//   forward   in: data [M, K] (flatten: [N, ...] with M = N, K = prod(rest); no flatten: [..., K]),
//                 weight [H, K], bias [H] (absent when no_bias)
//             out: output [M, H] = data * weight^T + bias
//   backward  in: ograd [M, H], data [M, K], weight [H, K]
//             out: d_data [M, K] = ograd * weight, d_weight [H, K] = ograd^T * data,
//                  d_bias [H] = column sums of ograd (absent when no_bias)
//
// float16 / bfloat16 (all blobs one type): cublasGemmEx with float32 accumulation (tensor cores),
// bias and bias gradient in float math, each output rounded once (the forward under kAddTo rounds
// y + data * weight^T, then adds the bias).
//
// M, K and H are taken from the blobs (weight gives H and K, M = data elements / K), which covers
// both values of `flatten`; num_hidden is checked against the weight.
#include <string>

#include "common/kernels.cuh"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace {

// y: [M, H] += bias: [H] broadcast over rows
template <typename T>
__global__ void add_bias_kernel(int64_t m, int64_t h, const T* __restrict__ bias, T* __restrict__ y) {
  const int64_t n = m * h;
  KILN_GRID_STRIDE(i, n) { y[i] += bias[i % h]; }
}

constexpr int kColTile = 32;  // columns per block (one warp wide: coalesced row reads)
constexpr int kRowLanes = 16; // threads per column walking the rows

// g: [M, H] -> db: [H], db[j] (=|+=) sum_i g[i, j]
template <typename T>
__global__ void column_sum_kernel(int64_t m, int64_t h, const T* __restrict__ g, T* __restrict__ db, int req) {
  __shared__ T partial[kRowLanes][kColTile + 1];
  const int64_t col = (int64_t)blockIdx.x * kColTile + threadIdx.x;
  T acc = T(0);
  if (col < h) {
    for (int64_t row = threadIdx.y; row < m; row += kRowLanes) acc += g[row * h + col];
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < h) {
    T s = T(0);
    for (int r = 0; r < kRowLanes; ++r) s += partial[r][threadIdx.x];
    assign(db, col, req, s);
  }
}

// y: [M, H] (L) = bias: [H] (L) broadcast over rows (a copy: no rounding)
template <typename L>
__global__ void fill_bias_lp_kernel(int64_t m, int64_t h, const L* __restrict__ bias, L* __restrict__ y) {
  const int64_t n = m * h;
  KILN_GRID_STRIDE(i, n) { y[i] = bias[i % h]; }
}

// y: [M, H] (L) = round(y + bias: [H] (L)), broadcast over rows
template <typename L>
__global__ void add_bias_lp_kernel(int64_t m, int64_t h, const L* __restrict__ bias, L* __restrict__ y) {
  const int64_t n = m * h;
  KILN_GRID_STRIDE(i, n) { y[i] = lp_round<L>(lp_float(y[i]) + lp_float(bias[i % h])); }
}

// g: [M, H] (L) -> db: [H] (L), db[j] (=|+=) sum_i g[i, j], summed in float
template <typename L>
__global__ void column_sum_lp_kernel(int64_t m, int64_t h, const L* __restrict__ g, L* __restrict__ db, int req) {
  __shared__ float partial[kRowLanes][kColTile + 1];
  const int64_t col = (int64_t)blockIdx.x * kColTile + threadIdx.x;
  float acc = 0.f;
  if (col < h) {
    for (int64_t row = threadIdx.y; row < m; row += kRowLanes) acc += lp_float(g[row * h + col]);
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < h) {
    float s = 0.f;
    for (int r = 0; r < kRowLanes; ++r) s += partial[r][threadIdx.x];
    lp_assign(db, col, req, s);
  }
}

struct Dims {
  int64_t m, k, h;
};

/// `out_rows` holds M * H elements (the output, or the output gradient): it gives M when K == 0,
/// where the data ([M, 0]) has no elements to count rows with.
Dims fc_dims(const char* op, const Attrs& attrs, const TBlob& data, const TBlob& weight, const TBlob& out_rows) {
  if (weight.shape.ndim() != 2)
    throw KilnError(std::string(op) + " (GPU): weight must be 2-D [num_hidden, K], got " + weight.shape.str());
  Dims d;
  d.h = weight.shape[0];
  d.k = weight.shape[1];
  if (declared(attrs, "num_hidden") && attrs.has("num_hidden") && attrs.i("num_hidden") != d.h)
    throw KilnError(std::string(op) + " (GPU): weight " + weight.shape.str() + " does not match num_hidden=" +
                    std::to_string(attrs.i("num_hidden")));
  if (d.k == 0 ? data.size() != 0 : data.size() % d.k != 0)
    throw KilnError(std::string(op) + " (GPU): data " + data.shape.str() + " does not match weight " +
                    weight.shape.str());
  d.m = d.k != 0 ? data.size() / d.k : (d.h != 0 ? out_rows.size() / d.h : 0);
  return d;
}

void check_dtypes(const char* op, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  const DType t = in[0].dtype;
  for (const auto* v : {&in, &out})
    for (const auto& b : *v)
      if (b.dtype != t)
        throw KilnError(std::string(op) + " (GPU): mixed dtypes " + dtype_name(t) + " and " + dtype_name(b.dtype));
}

void expect_size(const char* op, const char* what, const TBlob& b, int64_t n) {
  if (b.size() != n)
    throw KilnError(std::string(op) + " (GPU): " + what + " has shape " + b.shape.str() + ", expected " +
                    std::to_string(n) + " elements");
}

void fc_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = "FullyConnected";
  check_arity(op, in, 2, 3, out, req, 1, 1);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  const Dims d = fc_dims(op, attrs, in[0], in[1], out[0]);
  const bool has_bias = in.size() == 3;
  expect_size(op, "output", out[0], d.m * d.h);
  if (has_bias) expect_size(op, "bias", in[2], d.h);
  if (req[0] == OpReq::kNullOp || d.m * d.h == 0) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  if (is_low_precision(out[0].dtype)) {
    const DType t = out[0].dtype;
    const bool add = req[0] == OpReq::kAddTo;
    if (has_bias && !add) {
      // y = bias, then y = x w^T + y in float32 inside cuBLAS: each output rounded once, as on the CPU
      KILN_LOW_PRECISION_SWITCH(t, L, {
        fill_bias_lp_kernel<L><<<grid_for(d.m * d.h), kBlock, 0, s>>>(d.m, d.h, in[2].dptr<L>(), out[0].dptr<L>());
      });
      KILN_CUDA_LAUNCH_CHECK("FullyConnected bias");
      gemm_low_precision(dev, s, false, true, d.m, d.h, d.k, 1.f, in[0].ptr, in[1].ptr, 1.f, out[0].ptr, t);
      return;
    }
    // y [M, H] = x [M, K] * w [H, K]^T (+ y under kAddTo), float32 accumulation
    gemm_low_precision(dev, s, false, true, d.m, d.h, d.k, 1.f, in[0].ptr, in[1].ptr, add ? 1.f : 0.f, out[0].ptr, t);
    if (has_bias) {  // kAddTo: y + x w^T rounded, then the bias added (two roundings)
      KILN_LOW_PRECISION_SWITCH(t, L, {
        add_bias_lp_kernel<L><<<grid_for(d.m * d.h), kBlock, 0, s>>>(d.m, d.h, in[2].dptr<L>(), out[0].dptr<L>());
      });
      KILN_CUDA_LAUNCH_CHECK("FullyConnected bias");
    }
    return;
  }
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [M, K]
    const T* w = in[1].dptr<T>();  // [H, K]
    T* y = out[0].dptr<T>();       // [M, H]
    // y = x * w^T (+ y under kAddTo)
    gemm(dev, s, false, true, d.m, d.h, d.k, T(1), x, w, req[0] == OpReq::kAddTo ? T(1) : T(0), y);
    if (has_bias) {
      const T* b = in[2].dptr<T>();  // [H]
      add_bias_kernel<T><<<grid_for(d.m * d.h), kBlock, 0, s>>>(d.m, d.h, b, y);
      KILN_CUDA_LAUNCH_CHECK("FullyConnected bias");
    }
  });
}

void fc_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_FullyConnected";
  check_arity(op, in, 3, 3, out, req, 2, 3);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  const Dims d = fc_dims(op, attrs, in[1], in[2], in[0]);
  expect_size(op, "ograd", in[0], d.m * d.h);
  expect_size(op, "d_data", out[0], d.m * d.k);
  expect_size(op, "d_weight", out[1], d.h * d.k);
  const bool has_bias = out.size() == 3;
  if (has_bias) expect_size(op, "d_bias", out[2], d.h);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  auto beta_of = [](OpReq r) { return r == OpReq::kAddTo ? 1.0 : 0.0; };
  if (is_low_precision(out[0].dtype)) {
    const DType t = out[0].dtype;
    // gy [M, H], x [M, K], w [H, K]; d_weight first (d_data may be in place over data)
    if (req[1] != OpReq::kNullOp)  // dw [H, K] = gy^T x
      gemm_low_precision(dev, s, true, false, d.h, d.k, d.m, 1.f, in[0].ptr, in[1].ptr, (float)beta_of(req[1]), out[1].ptr, t);
    if (has_bias && req[2] != OpReq::kNullOp && d.h > 0) {  // db [H] = column sums of gy
      dim3 block(kColTile, kRowLanes);
      dim3 grid((unsigned)((d.h + kColTile - 1) / kColTile));
      KILN_LOW_PRECISION_SWITCH(t, L, {
        column_sum_lp_kernel<L><<<grid, block, 0, s>>>(d.m, d.h, in[0].dptr<L>(), out[2].dptr<L>(), req_int(req[2]));
      });
      KILN_CUDA_LAUNCH_CHECK("_backward_FullyConnected bias");
    }
    if (req[0] != OpReq::kNullOp)  // dx [M, K] = gy w
      gemm_low_precision(dev, s, false, false, d.m, d.k, d.h, 1.f, in[0].ptr, in[2].ptr, (float)beta_of(req[0]), out[0].ptr, t);
    return;
  }
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* gy = in[0].dptr<T>();  // [M, H]
    const T* x = in[1].dptr<T>();   // [M, K]
    const T* w = in[2].dptr<T>();   // [H, K]
    // d_weight first: the planner may put d_data in place over data (CPU op's inplace pair 1 -> 0);
    // all three run in order on one stream.
    if (req[1] != OpReq::kNullOp) {
      T* dw = out[1].dptr<T>();  // [H, K] = gy^T [H, M] * x [M, K]
      gemm(dev, s, true, false, d.h, d.k, d.m, T(1), gy, x, T(beta_of(req[1])), dw);
    }
    if (has_bias && req[2] != OpReq::kNullOp && d.h > 0) {
      T* db = out[2].dptr<T>();  // [H] = column sums of gy [M, H]
      dim3 block(kColTile, kRowLanes);
      dim3 grid((unsigned)((d.h + kColTile - 1) / kColTile));
      column_sum_kernel<T><<<grid, block, 0, s>>>(d.m, d.h, gy, db, req_int(req[2]));
      KILN_CUDA_LAUNCH_CHECK("_backward_FullyConnected bias");
    }
    if (req[0] != OpReq::kNullOp) {
      T* dx = out[0].dptr<T>();  // [M, K] = gy [M, H] * w [H, K]  (may alias x)
      gemm(dev, s, false, false, d.m, d.k, d.h, T(1), gy, w, T(beta_of(req[0])), dx);
    }
  });
}

}  // namespace

void register_fully_connected_gpu(OpRegistry& r) {
  set_gpu(r, "FullyConnected", fc_forward, kNativeLowPrecision);
  set_gpu(r, "_backward_FullyConnected", fc_backward, kNativeLowPrecision);
}

}  // namespace cuda
}  // namespace kiln
