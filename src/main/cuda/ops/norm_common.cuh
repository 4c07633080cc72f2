// Shared pieces of the norm family's GPU kernels (ops/norm_*.cu; nvcc only): the [outer, C, inner]
// view of a tensor around its channel axis, deterministic per-channel reductions (fixed partition
// into partial sums, each block reduced in a fixed order, partials summed in order by one thread per
// channel; no atomics), per-row reductions by a warp or a block, and the host prologue checks.
// Every sum is accumulated in double, as the CPU kernels (src/main/cpp/ops/norm) do.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/kernels.cuh"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace norm_detail {

/// A tensor viewed as [outer, C, inner] around its channel axis.
struct View {
  int64_t outer = 1, C = 1, inner = 1;
};

inline View view_of(const Shape& s, int ax) {
  View v;
  v.outer = s.prod(0, ax);
  v.C = s[ax];
  v.inner = s.prod(ax + 1, s.ndim());
  return v;
}

/// Resolves a possibly negative axis against rank nd; -1 when out of range.
inline int resolve_axis(int64_t axis, int nd) {
  const int64_t a = axis < 0 ? axis + nd : axis;
  return (a < 0 || a >= nd) ? -1 : (int)a;
}

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kRedBlock = 256;         // threads of a per-channel / per-row block reduction
constexpr int kRedWarps = kRedBlock / 32;
constexpr int kTileCols = 32;          // channels per block of the channel-last (inner == 1) reduction
constexpr int kTileRows = 8;           // row lanes of that block
// Target number of blocks of a channel reduction. 512 blocks of 256 threads left an H100/H200 (132
// SMs, 2048 threads each) under half occupied on ResNet-50's 56x56 BatchNorms (about 8 blocks per
// channel at C = 64); 4096 gives each block about 4096 elements there. A constant, so the partition,
// and with it the bits, depend on the shape only.
constexpr int kMaxBlocks = 4096;

/// Warp butterfly sum: every lane ends with the same (bitwise identical) value.
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFullMask, v, off);
  return v;
}

/// Sums v[0..NV) over a 1-D block of kRedBlock threads; every thread ends with the totals.
/// sh: shared [NV * kRedWarps]. Contains __syncthreads: call from block-uniform control flow.
template <int NV>
__device__ __forceinline__ void block_sum(double* v, double* sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    v[k] = warp_sum(v[k]);
    if (lane == 0) sh[k * kRedWarps + warp] = v[k];
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    double s = 0;
    for (int w = 0; w < kRedWarps; ++w) s += sh[k * kRedWarps + w];
    v[k] = s;
  }
  __syncthreads();  // sh may be reused right after
}

// ---- per-channel reductions ---------------------------------------------------------------------
//
// F is a functor `void operator()(double* acc, int64_t o, int64_t c, int64_t i, int64_t idx) const`
// adding its NV terms of element (o, c, i) (flat index idx = (o * C + c) * inner + i) to acc.
// The result is part: [C, P, NV] partial sums; the P partials of a channel are summed in order by
// the op's finalize kernel (sum_parts).

// Channels with inner > 1: blockIdx.x = channel, blockIdx.y = chunk p of its outer*inner elements.
template <int NV, typename F>
__global__ void __launch_bounds__(kRedBlock) chan_partial_kernel(View v, int P, F f, double* __restrict__ part) {
  __shared__ double sh[NV * kRedWarps];
  const int64_t c = blockIdx.x;
  const int p = blockIdx.y;
  const int64_t M = v.outer * v.inner;
  const int64_t b = M * p / P, e = M * (p + 1) / P;
  double acc[NV];
#pragma unroll
  for (int k = 0; k < NV; ++k) acc[k] = 0;
  int64_t j = b + threadIdx.x;
  if (j < e) {
    int64_t o = j / v.inner, i = j - o * v.inner;
    for (; j < e; j += blockDim.x) {
      f(acc, o, c, i, (o * v.C + c) * v.inner + i);
      i += blockDim.x;
      if (i >= v.inner) {  // wrap into the next outer row(s); no division while inside a row
        o += i / v.inner;
        i %= v.inner;
      }
    }
  }
  block_sum<NV>(acc, sh);
  if (threadIdx.x == 0) {
#pragma unroll
    for (int k = 0; k < NV; ++k) part[(c * P + p) * NV + k] = acc[k];
  }
}

// Channel-last data (inner == 1, i.e. [outer, C]): blockIdx.x = tile of kTileCols channels,
// blockIdx.y = chunk p of the outer rows; a warp reads kTileCols consecutive channels of one row.
template <int NV, typename F>
__global__ void __launch_bounds__(kTileCols* kTileRows)
    col_partial_kernel(View v, int P, F f, double* __restrict__ part) {
  __shared__ double sh[NV][kTileRows][kTileCols + 1];
  const int64_t c = (int64_t)blockIdx.x * kTileCols + threadIdx.x;
  const int p = blockIdx.y;
  const int64_t b = v.outer * p / P, e = v.outer * (p + 1) / P;
  double acc[NV];
#pragma unroll
  for (int k = 0; k < NV; ++k) acc[k] = 0;
  if (c < v.C)
    for (int64_t o = b + threadIdx.y; o < e; o += kTileRows) f(acc, o, c, 0, o * v.C + c);
#pragma unroll
  for (int k = 0; k < NV; ++k) sh[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && c < v.C) {
#pragma unroll
    for (int k = 0; k < NV; ++k) {
      double s = 0;
      for (int r = 0; r < kTileRows; ++r) s += sh[k][r][threadIdx.x];
      part[(c * P + p) * NV + k] = s;
    }
  }
}

/// Number of partials per channel for view v (depends on the shape only, so results are
/// reproducible from run to run and across devices).
inline int chan_parts(const View& v) {
  int64_t P;
  if (v.inner == 1) {
    const int64_t tiles = (v.C + kTileCols - 1) / kTileCols;
    P = std::min<int64_t>((v.outer + 63) / 64, kMaxBlocks / std::max<int64_t>(tiles, 1));
  } else {
    P = std::min<int64_t>((v.outer * v.inner + 4095) / 4096, kMaxBlocks / std::max<int64_t>(v.C, 1));
  }
  return (int)std::max<int64_t>(1, std::min<int64_t>(P, kMaxBlocks));
}

/// Launches the per-channel reduction of functor f over view v (C > 0) into part: [C, P, NV].
template <int NV, typename F>
void chan_partials(cudaStream_t s, const View& v, int P, F f, double* part, const char* name) {
  if (v.inner == 1) {
    dim3 grid((unsigned)((v.C + kTileCols - 1) / kTileCols), (unsigned)P);
    col_partial_kernel<NV><<<grid, dim3(kTileCols, kTileRows), 0, s>>>(v, P, f, part);
  } else {
    dim3 grid((unsigned)v.C, (unsigned)P);
    chan_partial_kernel<NV><<<grid, kRedBlock, 0, s>>>(v, P, f, part);
  }
  KILN_CUDA_LAUNCH_CHECK(name);
}

/// Sum, in order, of the P partials of channel c (part: [C, P, NV]) into out[0..NV).
template <int NV>
__device__ __forceinline__ void sum_parts(const double* part, int64_t c, int P, double* out) {
#pragma unroll
  for (int k = 0; k < NV; ++k) out[k] = 0;
  for (int p = 0; p < P; ++p)
#pragma unroll
    for (int k = 0; k < NV; ++k) out[k] += part[(c * P + p) * NV + k];
}

// ---- per-row reductions (a row = L contiguous elements) -------------------------------------------
//
// Group<32>: one warp per row, blocks of (32, kRowsPerBlock) threads, for short rows;
// Group<256>: one block per row, for long rows. Rows are visited with a grid-stride loop.
constexpr int kRowsPerBlock = 8;
constexpr int64_t kLongRow = 2048;  // rows at least this long get a whole block

template <int G>
struct Group;

template <>
struct Group<32> {
  static dim3 block() { return dim3(32, kRowsPerBlock); }
  static unsigned grid(int64_t rows) {
    return (unsigned)std::max<int64_t>(1, std::min<int64_t>((rows + kRowsPerBlock - 1) / kRowsPerBlock, 65535LL * 8));
  }
  __device__ static int lane() { return threadIdx.x; }
  __device__ static int64_t first_row() { return (int64_t)blockIdx.x * kRowsPerBlock + threadIdx.y; }
  __device__ static int64_t row_step() { return (int64_t)gridDim.x * kRowsPerBlock; }
  template <int NV>
  __device__ static void sum(double* v, double*) {
#pragma unroll
    for (int k = 0; k < NV; ++k) v[k] = warp_sum(v[k]);
  }
};

template <>
struct Group<kRedBlock> {
  static dim3 block() { return dim3(kRedBlock); }
  static unsigned grid(int64_t rows) { return (unsigned)std::max<int64_t>(1, std::min<int64_t>(rows, 65535LL * 8)); }
  __device__ static int lane() { return threadIdx.x; }
  __device__ static int64_t first_row() { return blockIdx.x; }
  __device__ static int64_t row_step() { return gridDim.x; }
  template <int NV>
  __device__ static void sum(double* v, double* sh) {
    block_sum<NV>(v, sh);
  }
};

/// Mean and biased variance, two passes in double, of row x: [L] (stride 1) by a group of G threads.
template <int G, typename T>
__device__ __forceinline__ void row_moments(const T* x, int64_t L, double* sh, double* mu, double* var) {
  double s[1] = {0};
  for (int64_t j = Group<G>::lane(); j < L; j += G) s[0] += (double)x[j];
  Group<G>::template sum<1>(s, sh);
  const double m = L > 0 ? s[0] / (double)L : 0.0;
  double q[1] = {0};
  for (int64_t j = Group<G>::lane(); j < L; j += G) {
    const double d = (double)x[j] - m;
    q[0] += d * d;
  }
  Group<G>::template sum<1>(q, sh);
  *mu = m;
  *var = L > 0 ? q[0] / (double)L : 0.0;
}

// ---- host helpers -------------------------------------------------------------------------------

/// Arity, placement and dtype checks shared by the ops: every non-empty blob is float32/float64 and
/// of the same dtype as blob 0 of `in`.
inline void prologue(const char* op, const std::vector<TBlob>& in, size_t nin, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out, size_t nout) {
  check_arity(op, in, nin, nin, out, req, nout, nout);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  const DType t = in[0].dtype;
  if (t != DType::kFloat32 && t != DType::kFloat64)
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(t) +
                    " is not supported by this kernel (float32, float64)");
  for (const auto* v : {&in, &out})
    for (const auto& b : *v)
      if (b.ptr != nullptr && b.dtype != t)
        throw KilnError(std::string(op) + " (GPU): mixed dtypes " + dtype_name(t) + " and " + dtype_name(b.dtype));
}

/// BatchNorm's dtype rule: the blobs at positions `data_in` / `data_out` (data, output, gradients)
/// share one dtype D (float32, float64, float16 or bfloat16); every other non-empty blob (gamma, beta,
/// statistics) is float32 when D is 16-bit, else D (kiln's bn_infer_type, MXNet's cuDNN rule).
/// Arity and placement as prologue. Returns D.
inline DType prologue_data_params(const char* op, const std::vector<TBlob>& in, size_t nin,
                                  const std::vector<OpReq>& req, const std::vector<TBlob>& out, size_t nout,
                                  std::initializer_list<size_t> data_in, std::initializer_list<size_t> data_out) {
  check_arity(op, in, nin, nin, out, req, nout, nout);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  const DType d = in[*data_in.begin()].dtype;
  const bool low = d == DType::kFloat16 || d == DType::kBfloat16;
  if (d != DType::kFloat32 && d != DType::kFloat64 && !low)
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(d) +
                    " is not supported by this kernel (float32, float64, float16, bfloat16)");
  const DType p = low ? DType::kFloat32 : d;
  auto check = [&](const std::vector<TBlob>& blobs, std::initializer_list<size_t> data, const char* what) {
    for (size_t i = 0; i < blobs.size(); ++i) {
      if (blobs[i].ptr == nullptr) continue;
      const DType want = std::find(data.begin(), data.end(), i) != data.end() ? d : p;
      if (blobs[i].dtype != want)
        throw KilnError(std::string(op) + " (GPU): " + what + " " + std::to_string(i) + " is " +
                        dtype_name(blobs[i].dtype) + ", expected " + dtype_name(want) + " (data " + dtype_name(d) + ")");
    }
  };
  check(in, data_in, "input");
  check(out, data_out, "output");
  return d;
}

inline void expect_size(const char* op, const char* what, const TBlob& b, int64_t n) {
  if (b.size() != n)
    throw KilnError(std::string(op) + " (GPU): " + what + " has shape " + b.shape.str() + ", expected " +
                    std::to_string(n) + " elements");
}

/// Blob pointer, or null when the request is kNullOp (such outputs may have no memory).
template <typename T>
T* out_ptr(const TBlob& b, OpReq r) {
  return r == OpReq::kNullOp ? nullptr : b.dptr<T>();
}

void register_batch_norm(OpRegistry& r);     // norm_batch.cu
void register_layer_instance(OpRegistry& r); // norm_layer.cu: LayerNorm, InstanceNorm, GroupNorm
void register_l2_normalization(OpRegistry& r); // norm_l2.cu: L2Normalization
void register_lrn(OpRegistry& r);            // norm_lrn.cu

}  // namespace norm_detail
}  // namespace cuda
}  // namespace kiln
