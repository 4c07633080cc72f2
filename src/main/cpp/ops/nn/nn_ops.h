// The nn operator family (FullyConnected, Activation, LeakyReLU, the softmax family, the loss
// outputs, Dropout): one register_* function per file, plus small kernel helpers the files share.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"

namespace kiln {
namespace nn {

void register_fully_connected(OpRegistry& r);   // fully_connected.cc
void register_activation(OpRegistry& r);        // activation.cc
void register_leaky_relu(OpRegistry& r);        // leaky_relu.cc
void register_softmax(OpRegistry& r);           // softmax.cc: softmax, log_softmax, SoftmaxActivation
void register_softmax_output(OpRegistry& r);    // softmax_output.cc
void register_regression_output(OpRegistry& r); // regression_output.cc
void register_dropout(OpRegistry& r);           // dropout.cc
void register_svm_output(OpRegistry& r);        // svm_output.cc
void register_softmax_cross_entropy(OpRegistry& r);  // softmax_cross_entropy.cc

// ---- registration helpers ------------------------------------------------------------------

/// A number with inclusive bounds.
inline ParamDef param_range(const std::string& name, ParamType type, const std::string& def, double lower,
                            double upper, const std::string& desc) {
  ParamDef p = param(name, type, def, desc);
  p.lower = lower;
  p.upper = upper;
  return p;
}
/// Throws when a dimension does not fit the int arguments of BLAS.
inline int blas_int(int64_t v, const char* what) {
  KILN_CHECK(v >= 0 && v <= 0x7fffffff, std::string(what) + " = " + std::to_string(v) + " exceeds the BLAS int range");
  return (int)v;
}

/// Product of dims [begin, end), or -1 when one of them is unknown.
inline int64_t prod_or_unknown(const Shape& s, int begin, int end) {
  int64_t p = 1;
  for (int i = begin; i < end; ++i) {
    if (s[i] < 0) return -1;
    p *= s[i];
  }
  return p;
}

// ---- elementwise helpers -------------------------------------------------------------------

/// out[i] = f(i) (write / write-in-place) or out[i] += f(i) (add-to) for i < n; nothing for
/// kNullOp. f(i) reads only index i of its inputs, so out may alias them. Runs on the
/// vectorized leaves of kiln/simd.h (AVX-512 or AVX2, OpenMP chunks): a plain loop here left
/// relu's backward select as a branch, 7x slower on LeNet's first layer.
template <typename DT, typename F>
inline void write_elementwise(OpReq req, int64_t n, DT* out, F f) {
  simd::map(n, req, out, f);
}

/// For kernels that produce a whole result at once: compute(dst) writes n values into dst.
/// Write requests compute straight into out; add-to computes into a temporary, then adds.
template <typename DT, typename F>
inline void compute_with_req(OpReq req, int64_t n, DT* out, F compute) {
  if (req == OpReq::kNullOp) return;
  if (req != OpReq::kAddTo) {
    compute(out);
    return;
  }
  std::vector<DT> tmp((size_t)n);
  compute(tmp.data());
  const DT* t = tmp.data();
  write_elementwise(OpReq::kAddTo, n, out, [t](int64_t i) { return t[i]; });
}

/// Copies src into dst by request (a no-op for a write in place on the same memory).
template <typename DT>
inline void copy_with_req(OpReq req, int64_t n, const DT* src, DT* dst) {
  if (req != OpReq::kAddTo && src == dst) return;
  write_elementwise(req, n, dst, [src](int64_t i) { return src[i]; });
}

// ---- softmax along one axis (softmax, log_softmax, SoftmaxActivation, SoftmaxOutput) -------
//
// The tensor is viewed as [outer, K, inner] and normalized along K. inner == 1 (the last axis)
// is the common case and walks contiguous rows; otherwise a block of up to kSoftmaxChunk
// positions along inner is processed at once so the inner loops stay contiguous.

constexpr int64_t kSoftmaxChunk = 64;
/// Rows at least this long take the vectorized float path (JMH OpBench, 128 rows, 1 thread: K = 1000
/// 542 -> 101 us; at K = 10 the vector path's fixed costs made it 3x slower than the scalar loop).
constexpr int64_t kSoftmaxVectorK = 64;

/// One float row of softmax (vectorized): y = exp((x - mx) * inv_t) / sum, the sum in double. y may alias x.
inline void softmax_row_vec(const float* x, float* y, int64_t K, float mx, float inv_t) {
  simd::run(0, K, [=](int64_t k) { y[k] = (x[k] - mx) * inv_t; });
  simd::exp_range(y, y, K, false);
  const float inv = (float)(1.0 / simd::reduce_run(simd::SumReducer<float>{}, y, K));
  simd::run(0, K, [=](int64_t k) { y[k] *= inv; });
}

/// y = softmax(x * inv_t) (log: y = x * inv_t - logsumexp(x * inv_t)) along K; softmin is
/// inv_t < 0. y may alias x.
template <typename DT>
void softmax_forward(const DT* x, DT* y, int64_t outer, int64_t K, int64_t inner, DT inv_t, bool log) {
  if (outer * K * inner == 0) return;
  const bool neg = inv_t < DT(0);
  const int nt = omp_threads(outer * K * inner);
  if (inner == 1) {
    omp_for(nt, outer, [&](int64_t o) {
      const DT* xr = x + o * K;  // [K]
      DT* yr = y + o * K;        // [K]
      const bool vec = std::is_same<DT, float>::value && K >= kSoftmaxVectorK;
      DT mx = xr[0];  // the largest x * inv_t comes from max(x), or min(x) when inv_t < 0 (softmin)
      if (vec) mx = neg ? simd::reduce_run(simd::MinReducer<DT>{}, xr, K) : simd::reduce_run(simd::MaxReducer<DT>{}, xr, K);
      else for (int64_t k = 1; k < K; ++k) mx = (neg ? xr[k] < mx : xr[k] > mx) ? xr[k] : mx;
      DT sum = 0;
      if (log) {
        for (int64_t k = 0; k < K; ++k) sum += std::exp((xr[k] - mx) * inv_t);
        const DT lse = std::log(sum);
        for (int64_t k = 0; k < K; ++k) yr[k] = (xr[k] - mx) * inv_t - lse;
      } else if (vec) {
        if constexpr (std::is_same<DT, float>::value) softmax_row_vec(xr, yr, K, mx, inv_t);
      } else {
        for (int64_t k = 0; k < K; ++k) {
          const DT e = std::exp((xr[k] - mx) * inv_t);
          yr[k] = e;
          sum += e;
        }
        const DT inv = DT(1) / sum;
        for (int64_t k = 0; k < K; ++k) yr[k] *= inv;
      }
    });
    return;
  }
  const int64_t nchunk = (inner + kSoftmaxChunk - 1) / kSoftmaxChunk;
  omp_for(nt, outer * nchunk, [&](int64_t t) {
    const int64_t o = t / nchunk, i0 = (t % nchunk) * kSoftmaxChunk;
    const int64_t w = std::min(kSoftmaxChunk, inner - i0);
    const DT* xb = x + o * K * inner + i0;  // [K, inner] (row stride inner), w columns used
    DT* yb = y + o * K * inner + i0;        // [K, inner]
    DT mx[kSoftmaxChunk], sum[kSoftmaxChunk];
    for (int64_t j = 0; j < w; ++j) { mx[j] = xb[j]; sum[j] = 0; }
    for (int64_t k = 1; k < K; ++k)
      for (int64_t j = 0; j < w; ++j) {
        const DT v = xb[k * inner + j];
        mx[j] = (neg ? v < mx[j] : v > mx[j]) ? v : mx[j];
      }
    if (log) {
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < w; ++j) sum[j] += std::exp((xb[k * inner + j] - mx[j]) * inv_t);
      for (int64_t j = 0; j < w; ++j) sum[j] = std::log(sum[j]);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < w; ++j) yb[k * inner + j] = (xb[k * inner + j] - mx[j]) * inv_t - sum[j];
    } else {
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < w; ++j) {
          const DT e = std::exp((xb[k * inner + j] - mx[j]) * inv_t);
          yb[k * inner + j] = e;
          sum[j] += e;
        }
      for (int64_t j = 0; j < w; ++j) sum[j] = DT(1) / sum[j];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < w; ++j) yb[k * inner + j] *= sum[j];
    }
  });
}

/// Gradient of softmax_forward from its output y along K:
///   softmax:     dx = y * (dy - sum_K(dy * y)) * inv_t
///   log_softmax: dx = (dy - exp(y) * sum_K(dy)) * inv_t
/// Honours req; dx may alias dy or y (each element is written after the sums are taken).
template <typename DT>
void softmax_backward(const DT* dy, const DT* y, DT* dx, int64_t outer, int64_t K, int64_t inner, DT inv_t,
                      bool log, OpReq req) {
  if (req == OpReq::kNullOp || outer * K * inner == 0) return;
  const bool add = req == OpReq::kAddTo;
  const int nt = omp_threads(outer * K * inner);
  if (inner == 1) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t o = 0; o < outer; ++o) {
      const DT* dyr = dy + o * K;  // [K]
      const DT* yr = y + o * K;    // [K]
      DT* dxr = dx + o * K;        // [K]
      DT s = 0;
      if (log) {
        for (int64_t k = 0; k < K; ++k) s += dyr[k];
        for (int64_t k = 0; k < K; ++k) {
          const DT g = (dyr[k] - std::exp(yr[k]) * s) * inv_t;
          dxr[k] = add ? dxr[k] + g : g;
        }
      } else {
        for (int64_t k = 0; k < K; ++k) s += dyr[k] * yr[k];
        for (int64_t k = 0; k < K; ++k) {
          const DT g = yr[k] * (dyr[k] - s) * inv_t;
          dxr[k] = add ? dxr[k] + g : g;
        }
      }
    }
    return;
  }
  const int64_t nchunk = (inner + kSoftmaxChunk - 1) / kSoftmaxChunk;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t t = 0; t < outer * nchunk; ++t) {
    const int64_t o = t / nchunk, i0 = (t % nchunk) * kSoftmaxChunk;
    const int64_t w = std::min(kSoftmaxChunk, inner - i0);
    const int64_t base = o * K * inner + i0;
    const DT* dyb = dy + base;  // [K, inner]
    const DT* yb = y + base;    // [K, inner]
    DT* dxb = dx + base;        // [K, inner]
    DT s[kSoftmaxChunk];
    for (int64_t j = 0; j < w; ++j) s[j] = 0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < w; ++j) s[j] += log ? dyb[k * inner + j] : dyb[k * inner + j] * yb[k * inner + j];
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < w; ++j) {
        const int64_t i = k * inner + j;
        const DT g = log ? (dyb[i] - std::exp(yb[i]) * s[j]) * inv_t : yb[i] * (dyb[i] - s[j]) * inv_t;
        dxb[i] = add ? dxb[i] + g : g;
      }
  }
}

}  // namespace nn
}  // namespace kiln
