// GPU kernels of the random operators of ops/random/random.cc: the _random_* samplers (one seed per
// call from the executor's generator, then the counter-based streams of kiln/sampling.h, so a seed
// gives the CPU's draws) and _shuffle (the CPU's permutation, made on the host from the executor's
// generator, then a row gather on the device).
#include "common/kernels.cuh"
#include "kiln/kernel_common.h"
#include "kiln/sampling.h"

namespace kiln {
namespace cuda {
namespace {

// y: [n] float samples of p for element indices 0..n-1
template <typename T>
__global__ void sample_kernel(int64_t n, T* y, int req, SampleParams p, uint64_t seed) {
  KILN_GRID_STRIDE(i, n) { assign(y, i, req, sample_as<T>(p, sample_value(p, seed, i))); }
}

// y: [n] integers uniform in [lo, hi) (int32: the int64 value modulo 2^32, as on the CPU)
template <typename I>
__global__ void randint_kernel(int64_t n, I* y, int req, int64_t lo, int64_t hi, uint64_t seed) {
  KILN_GRID_STRIDE(i, n) {
    ElementRng g(seed, i);
    assign(y, i, req, (I)g.randint(lo, hi));
  }
}

Kernel sample_op(const char* name, Dist dist) {
  return [name, dist](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
    check_arity(name, in, 0, 1, out, req, 1, 1);
    check_on_gpu(name, out, "output");
    const TBlob& y = out[0];  // [shape] (the _like ops' input is not read)
    const SampleParams p = sample_params(name, dist, a);
    if (ctx.rng == nullptr) throw KilnError(std::string(name) + ": no random generator in the op context");
    const uint64_t seed = (*ctx.rng)();
    const int64_t n = y.size();
    if (req[0] == OpReq::kNullOp || n == 0) return;
    DeviceGuard dg(device_of(ctx, in, out));
    cudaStream_t s = stream_of(ctx);
    if (dist == Dist::kRandInt) {
      if (y.dtype == DType::kInt32)
        randint_kernel<int32_t><<<grid_for(n), kBlock, 0, s>>>(n, y.dptr<int32_t>(), req_int(req[0]), p.lo, p.hi, seed);
      else if (y.dtype == DType::kInt64)
        randint_kernel<int64_t><<<grid_for(n), kBlock, 0, s>>>(n, y.dptr<int64_t>(), req_int(req[0]), p.lo, p.hi, seed);
      else
        throw KilnError(std::string(name) + " (GPU): the output must be int32 or int64, got " + dtype_name(y.dtype));
    } else {
      KILN_FLOAT_SWITCH(y.dtype, T, { sample_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, y.dptr<T>(), req_int(req[0]), p, seed); });
    }
    KILN_CUDA_LAUNCH_CHECK(name);
  };
}

// x, y: [rows, words] of W; y[i, :] = x[perm[i], :]
template <typename W>
__global__ void gather_rows_kernel(int64_t rows, int64_t words, const W* x, W* y, const int64_t* perm) {
  KILN_GRID_STRIDE(e, rows * words) {
    const int64_t i = e / words, w = e % words;
    y[e] = x[perm[i] * words + w];
  }
}

template <typename W>
void gather_rows(cudaStream_t s, int64_t rows, size_t row_bytes, const void* x, void* y, const int64_t* perm) {
  const int64_t words = (int64_t)(row_bytes / sizeof(W));
  gather_rows_kernel<W><<<grid_for(rows * words), kBlock, 0, s>>>(rows, words, static_cast<const W*>(x), static_cast<W*>(y), perm);
}

void shuffle_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* name = "_shuffle";
  check_arity(name, in, 1, 1, out, req, 1, 1);
  check_on_gpu(name, in, "input");
  check_on_gpu(name, out, "output");
  const TBlob& x = in[0];   // [rows, ...] (a scalar is one row)
  const TBlob& y = out[0];  // same shape, not in place
  if (req[0] == OpReq::kAddTo) throw KilnError("_shuffle: accumulation (grad_req add) is not supported, as in MXNet");
  if (y.bytes() != x.bytes()) throw KilnError("_shuffle (GPU): output " + y.shape.str() + " differs from the input " + x.shape.str());
  if (ctx.rng == nullptr) throw KilnError("_shuffle: no random generator in the op context");
  const int64_t rows = x.shape.ndim() > 0 ? x.shape[0] : 1;
  if (req[0] == OpReq::kNullOp || x.size() == 0) return;
  const std::vector<int64_t> perm = shuffle_permutation(*ctx.rng, rows);  // the CPU's order
  const int device = device_of(ctx, in, out);
  DeviceGuard dg(device);
  cudaStream_t s = stream_of(ctx);
  DeviceScratch dperm(device, perm.size() * sizeof(int64_t));  // [rows]
  // pageable source: staged before the call returns, so perm may go out of scope afterwards
  KILN_CUDA_CHECK(cudaMemcpyAsync(dperm.as<int64_t>(), perm.data(), perm.size() * sizeof(int64_t), cudaMemcpyHostToDevice, s));
  const size_t row_bytes = x.bytes() / (size_t)rows;
  const int64_t* p = dperm.as<int64_t>();
  if (row_bytes % 8 == 0) gather_rows<uint64_t>(s, rows, row_bytes, x.ptr, y.ptr, p);
  else if (row_bytes % 4 == 0) gather_rows<uint32_t>(s, rows, row_bytes, x.ptr, y.ptr, p);
  else if (row_bytes % 2 == 0) gather_rows<uint16_t>(s, rows, row_bytes, x.ptr, y.ptr, p);
  else gather_rows<uint8_t>(s, rows, row_bytes, x.ptr, y.ptr, p);
  KILN_CUDA_LAUNCH_CHECK(name);
}

}  // namespace

void register_random_gpu(OpRegistry& r) {
  set_gpu(r, "_random_uniform", sample_op("_random_uniform", Dist::kUniform));
  set_gpu(r, "_random_normal", sample_op("_random_normal", Dist::kNormal));
  set_gpu(r, "_random_randint", sample_op("_random_randint", Dist::kRandInt));
  set_gpu(r, "_random_exponential", sample_op("_random_exponential", Dist::kExponential));
  set_gpu(r, "_random_gamma", sample_op("_random_gamma", Dist::kGamma));
  set_gpu(r, "_random_poisson", sample_op("_random_poisson", Dist::kPoisson));
  set_gpu(r, "_random_uniform_like", sample_op("_random_uniform_like", Dist::kUniform));
  set_gpu(r, "_random_normal_like", sample_op("_random_normal_like", Dist::kNormal));
  set_gpu(r, "_shuffle", shuffle_forward, kNativeLowPrecision);  // rows are copied as bytes
}

}  // namespace cuda
}  // namespace kiln
