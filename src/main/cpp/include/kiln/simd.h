// Vectorized elementwise machinery for the CPU kernels of the elementwise, broadcast, reduction and
// optimizer ops: AVX-512 / AVX2 loop leaves chosen at run time, OpenMP chunking, write requests,
// vectorizable float exp/log, a NumPy-broadcast engine and an axis-reduction engine.
//
// How the two ISAs are produced. The library is built for x86-64-v3 (AVX2 + FMA). Every hot loop
// goes through one of two "leaves" (`loop`, `reduce_run`) that exist twice: in namespace
// `isa_avx512` compiled with `target("avx512f,avx512dq,avx512bw,avx512vl,prefer-vector-width=512")`
// and in `isa_avx2` compiled for the baseline. A leaf takes the loop body as a functor (usually a
// lambda capturing raw pointers by value); GCC inlines the body into each leaf (a baseline callee
// may be inlined into an AVX-512 caller) and vectorizes it under `#pragma omp simd`, so the same
// lambda runs in zmm registers on AVX-512 CPUs and in ymm registers elsewhere. `run()` picks the
// leaf once per call from `has_avx512()` (cached), which honours KILN_SIMD=avx2 in the environment
// to force the AVX2 path (for A/B tests and benchmarks).
//
// Rules for loop bodies passed to `run` / `parallel_for` / `map`:
//   * iteration i reads and writes index i only (plus loop-invariant values). `omp simd` then lets
//     an output alias an input exactly (the memory planner's in-place pairs), because every value
//     of an iteration is loaded before that iteration stores;
//   * no calls that cannot be inlined (std::exp on double, std::pow: the loop then simply runs
//     scalar, still correct) and nothing that throws (they run inside OpenMP regions);
//   * std::sqrt does not vectorize with GCC's default -fmath-errno: use sqrt_range() below;
//   * for the AVX2 leaf, never feed a select with a constant arm into FP arithmetic
//     (`g * (c ? 1 : 0)`): GCC's PRE turns it into a branch holding `g * 0`, and without AVX-512
//     masking it will not if-convert FP arithmetic under the default -ftrapping-math, so the loop
//     stays scalar. Select between computed values instead (`c ? g : copysign(0, g)`).
// The test harness that checked every instantiation for zmm / ymm code did so by forcing the
// leaves out of line; only libm calls (pow, double exp/log) remain scalar.
//
// Parallelism: `parallel_chunks` splits [0, n) into one contiguous chunk per thread (chunk
// boundaries on multiples of 16 elements = 64 bytes of float) and stays serial for
// n <= kOmpMinWork; thread count = kiln::num_threads().
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "kiln/kernel_common.h"

namespace kiln {
namespace simd {

/// has_avx512(), evaluated once.
inline bool use_avx512() {
  static const bool v = has_avx512();
  return v;
}

// ------------------------------------------------------------------------------------------
// Leaves (compiled once per ISA)
// ------------------------------------------------------------------------------------------

#define KILN_SIMD_AVX512_TARGET \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,prefer-vector-width=512")))

// loop:       for i in [b, e): f(i)                       (f writes its own outputs)
// reduce_run: r.step-fold of p[0..n) into 64 independent accumulators, merged at the end. The
//             accumulator update is itself an `omp simd` loop, so it is loop-vectorized (with
//             if-conversion for max/min) rather than left to the SLP vectorizer, which handled
//             the select-based reducers 15-30x slower. The summation order therefore differs
//             from a sequential loop.
#define KILN_SIMD_DEFINE_LEAVES(TARGET)                                              \
  template <class F>                                                                 \
  TARGET void loop(int64_t b, int64_t e, F f) {                                      \
    _Pragma("omp simd") for (int64_t i = b; i < e; ++i) { f(i); }                   \
  }                                                                                  \
  template <class R, class T>                                                        \
  TARGET typename R::Acc reduce_run(R r, const T* p, int64_t n) {                    \
    constexpr int W = 64;                                                            \
    typename R::Acc acc[W];                                                          \
    for (int j = 0; j < W; ++j) { acc[j] = r.init(); }                               \
    const int64_t nw = n - n % W;                                                    \
    int64_t i = 0;                                                                   \
    for (; i < nw; i += W) {                                                         \
      const T* q = p + i;                                                            \
      _Pragma("omp simd") for (int j = 0; j < W; ++j) { acc[j] = r.step(acc[j], q[j]); } \
    }                                                                                \
    typename R::Acc a = r.init();                                                    \
    for (int j = 0; j < W; ++j) { a = r.merge(a, acc[j]); }                          \
    for (; i < n; ++i) { a = r.step(a, p[i]); }                                     \
    return a;                                                                        \
  }

namespace isa_avx512 {
KILN_SIMD_DEFINE_LEAVES(KILN_SIMD_AVX512_TARGET)
}
namespace isa_avx2 {
KILN_SIMD_DEFINE_LEAVES()
}
#undef KILN_SIMD_DEFINE_LEAVES

/// Runs f(i) for i in [b, e) on the best leaf for this CPU (serial).
template <class F>
inline void run(int64_t b, int64_t e, const F& f) {
  if (b >= e) return;
  if (use_avx512()) isa_avx512::loop(b, e, f);
  else isa_avx2::loop(b, e, f);
}

/// Folds p[0..n) with reducer r on the best leaf (serial).
template <class R, class T>
inline typename R::Acc reduce_run(const R& r, const T* p, int64_t n) {
  return use_avx512() ? isa_avx512::reduce_run(r, p, n) : isa_avx2::reduce_run(r, p, n);
}

/// sqrt over a range: y[i] = sqrt(x[i]) (or += when add). Explicit intrinsics (simd.cc), since
/// std::sqrt does not vectorize under -fmath-errno. y may alias x exactly.
void sqrt_range(const float* x, float* y, int64_t n, bool add);    // x, y: [n]
void sqrt_range(const double* x, double* y, int64_t n, bool add);  // x, y: [n]

/// y[i] = exp(x[i]) / log(x[i]) (or += when add) for float, bit-identical to simd::exp / simd::log
/// below: the AVX-512 leaf vectorizes those inline functions, the AVX2 path uses intrinsics that
/// repeat their operation sequence (GCC cannot vectorize them without AVX-512 masking, see
/// below). y may alias x exactly.
void exp_range(const float* x, float* y, int64_t n, bool add);  // x, y: [n]
void log_range(const float* x, float* y, int64_t n, bool add);  // x, y: [n]

/// (T)(float)v: a parameter that MXNet declares as float32 (real_t), applied in the data's dtype.
/// The empty asm pins the float rounding: GCC 12.2's basic-block SLP vectorizer was seen to pair
/// two such conversions and store the unrounded doubles (clip's a_min/a_max, float64 data).
template <typename T>
inline T float_param(double v) {
  float f = (float)v;
  __asm__("" : "+x"(f));
  return (T)f;
}

// ------------------------------------------------------------------------------------------
// OpenMP chunking
// ------------------------------------------------------------------------------------------

/// Number of chunks parallel_chunks uses for n elements (1 = serial).
inline int64_t num_chunks(int64_t n) {
  if (n <= kOmpMinWork) return 1;
  const int nt = num_threads();
  if (nt <= 1) return 1;
  return std::max<int64_t>(1, std::min<int64_t>(nt, n / 4096));
}

/// Calls body(begin, end) on contiguous chunks covering [0, n), one chunk per thread, in
/// parallel when n > kOmpMinWork. Boundaries fall on multiples of `align` elements. body must not
/// throw.
template <class Body>
inline void parallel_chunks(int64_t n, const Body& body, int64_t align = 16) {
  if (n <= 0) return;
  const int64_t chunks = num_chunks(n);
  if (chunks <= 1) {
    body(int64_t(0), n);
    return;
  }
  const int nt = num_threads();
#pragma omp parallel for num_threads(nt) schedule(static) if (n > kOmpMinWork)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
    b -= b % align;
    if (c + 1 < chunks) e -= e % align;
    else e = n;
    if (b < e) body(b, e);
  }
}

/// f(i) for every i in [0, n): vectorized, and parallel when n > kOmpMinWork.
template <class F>
inline void parallel_for(int64_t n, const F& f) {
  parallel_chunks(n, [&](int64_t b, int64_t e) { run(b, e, f); });
}

// ------------------------------------------------------------------------------------------
// Maps with write requests
// ------------------------------------------------------------------------------------------

/// out[i] = f(i) (kWriteTo / kWriteInplace), out[i] += f(i) (kAddTo), nothing (kNullOp).
/// out: [n]. f reads what it needs at index i; out may alias any of those inputs exactly.
template <typename T, class F>
inline void map(int64_t n, OpReq req, T* out, const F& f) {
  if (req == OpReq::kNullOp || n <= 0) return;
  if (req == OpReq::kAddTo) parallel_for(n, [=](int64_t i) { out[i] += f(i); });
  else parallel_for(n, [=](int64_t i) { out[i] = f(i); });
}

/// Two outputs from one pass (backward of binary ops): v0 = f0(i), v1 = f1(i), then both are
/// stored with their requests. out0, out1: [n]; either may alias an input read by f0/f1.
template <typename T, class F0, class F1>
inline void map2(int64_t n, OpReq req0, T* out0, OpReq req1, T* out1, const F0& f0, const F1& f1) {
  const bool w0 = req0 != OpReq::kNullOp, w1 = req1 != OpReq::kNullOp;
  if (!w0) { map(n, req1, out1, f1); return; }
  if (!w1) { map(n, req0, out0, f0); return; }
  const bool a0 = req0 == OpReq::kAddTo, a1 = req1 == OpReq::kAddTo;
  if (!a0 && !a1) {
    parallel_for(n, [=](int64_t i) { T v0 = f0(i), v1 = f1(i); out0[i] = v0; out1[i] = v1; });
  } else if (a0 && !a1) {
    parallel_for(n, [=](int64_t i) { T v0 = f0(i), v1 = f1(i); out0[i] += v0; out1[i] = v1; });
  } else if (!a0 && a1) {
    parallel_for(n, [=](int64_t i) { T v0 = f0(i), v1 = f1(i); out0[i] = v0; out1[i] += v1; });
  } else {
    parallel_for(n, [=](int64_t i) { T v0 = f0(i), v1 = f1(i); out0[i] += v0; out1[i] += v1; });
  }
}

// ------------------------------------------------------------------------------------------
// Vectorizable math (float: polynomial, inlined into the loop bodies; double: libm, scalar)
// ------------------------------------------------------------------------------------------

inline float bits_to_float(int32_t b) { float f; std::memcpy(&f, &b, 4); return f; }
inline int32_t float_to_bits(float f) { int32_t b; std::memcpy(&b, &f, 4); return b; }

// Writing rules that keep these inlinable bodies vectorizable by GCC 12 without -ffast-math on
// AVX-512. On AVX2 GCC still leaves the clamps / special cases as branches that it may not
// if-convert (no masked arithmetic, -ftrapping-math), so kernels call exp_range / log_range,
// whose AVX2 half is written with intrinsics. The rules:
//  * no result is selected against a constant (`c ? k : y`): GCC would sink the computation of
//    y into one arm, and under -ftrapping-math it never speculates FP arithmetic back out of an
//    arm. Special inputs are therefore folded in arithmetically (NaN propagates by itself; log's
//    specials are added as -inf / +inf / NaN to the regular result);
//  * selects choose between values that are computed anyway, and test a single comparison
//    (combined masks such as `a && b` fail on AVX-512 mask registers);
//  * no int <-> float conversions (they may trap too): integers move in and out of floats with
//    the 1.5 * 2^23 trick, and bit patterns are built in uint32 (no signed overflow).

/// e^x for float, Cephes expf scheme: n = round(x/ln2), r = x - n*ln2 (two-constant Cody-Waite),
/// degree-6 polynomial for e^r, then scaling by 2^n in two exact steps so that results in the
/// subnormal range round once. Max error 1.01 ulp over all floats (checked exhaustively against
/// double exp); overflow -> +inf, underflow -> 0, NaN -> NaN.
inline float exp(float x) {
  float xc = x < -104.0f ? -104.0f : x;  // NaN passes both clamps and propagates to the result
  xc = xc > 89.0f ? 89.0f : xc;
  const float t = xc * 1.44269504088896341f + 12582912.0f;  // 1.5*2^23 + n, n = round(x/ln2)
  const uint32_t n = (uint32_t)float_to_bits(t) - 0x4B400000u;  // in [-150, 129] (mod 2^32)
  const float fn = t - 12582912.0f;
  float r = std::fma(fn, -0.693359375f, xc);
  r = std::fma(fn, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  p = std::fma(p, r * r, r) + 1.0f;
  // 2^n as 2^n1 * 2^n2 with n1 = floor(n/2), n2 = n - n1, each in [-75, 65] (normal floats).
  const uint32_t n1 = (uint32_t)((int32_t)n >> 1), n2 = n - n1;
  return p * bits_to_float((int32_t)((n1 + 127u) << 23)) * bits_to_float((int32_t)((n2 + 127u) << 23));
}
inline double exp(double x) { return std::exp(x); }

/// Natural log for float, Cephes logf scheme: x = m * 2^e with m in [sqrt(1/2), sqrt(2)),
/// degree-8 polynomial in (m - 1). Subnormals are rescaled first. log(0) = -inf, log(x<0) = NaN,
/// log(inf) = inf, NaN -> NaN. Max error 0.83 ulp over all floats (checked exhaustively).
inline float log(float x) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  float xv = x > 0.0f ? x : 1.0f;  // regular path on a valid input; specials are added below
  xv = xv < inf ? xv : 1.0f;
  const bool denorm = xv < 1.17549435e-38f;
  const float scaled = xv * 8388608.0f;  // * 2^23
  const float xs = denorm ? scaled : xv;
  const int32_t bits = float_to_bits(xs);
  int32_t e = ((bits >> 23) & 0xff) - 126 - (denorm ? 23 : 0);
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  const float m_small = m + m - 1.0f, m_big = m - 1.0f;
  m = small ? m_small : m_big;
  const float fe = bits_to_float(0x4B400000 + e) - 12582912.0f;  // (float)e
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = std::fma(y, m, -1.1514610310e-1f);
  y = std::fma(y, m, 1.1676998740e-1f);
  y = std::fma(y, m, -1.2420140846e-1f);
  y = std::fma(y, m, 1.4249322787e-1f);
  y = std::fma(y, m, -1.6668057665e-1f);
  y = std::fma(y, m, 2.0000714765e-1f);
  y = std::fma(y, m, -2.4999993993e-1f);
  y = std::fma(y, m, 3.3333331174e-1f);
  y = y * m * z;
  y = std::fma(fe, -2.12194440e-4f, y);
  y = std::fma(z, -0.5f, y);
  float r = m + y;
  r = std::fma(fe, 0.693359375f, r);
  float special = x == 0.0f ? -inf : 0.0f;  // a finite r plus -inf, +inf or NaN
  special = x < 0.0f ? nan : special;
  special = x == inf ? inf : special;
  special = x != x ? nan : special;
  return r + special;
}
inline double log(double x) { return std::log(x); }

// ------------------------------------------------------------------------------------------
// NumPy broadcasting engine
// ------------------------------------------------------------------------------------------

constexpr int kMaxDims = 32;

/// An output shape and up to 3 operand shapes (right-aligned; each operand dim equals the output
/// dim or is 1), collapsed to the fewest dims: size-1 output dims vanish and adjacent dims merge
/// when every operand is full on both or broadcast on both.
struct BcastPlan {
  int nd = 0;                   // collapsed rank (0: a single element)
  int nops = 0;                 // number of operands
  int64_t total = 0;            // number of output elements
  int64_t dim[kMaxDims];        // collapsed output dims
  int64_t stride[3][kMaxDims];  // element stride of operand k on each collapsed dim (0 = broadcast)
  bool full[3];                 // operand k has the output's size (no broadcast at all)
};

inline BcastPlan make_bcast_plan(const Shape& out, const std::vector<Shape>& ops) {
  BcastPlan p;
  p.nops = (int)ops.size();
  KILN_CHECK(p.nops >= 1 && p.nops <= 3, "make_bcast_plan: 1 to 3 operands");
  KILN_CHECK(out.ndim() <= kMaxDims, "broadcast: rank " + std::to_string(out.ndim()) + " exceeds " + std::to_string(kMaxDims));
  const int n = out.ndim();
  p.total = out.size();
  bool flags[kMaxDims][3];
  for (int i = 0; i < n; ++i) {
    if (out[i] == 1) continue;
    bool f[3] = {false, false, false};
    for (int k = 0; k < p.nops; ++k) {
      const int nk = ops[k].ndim(), j = i - (n - nk);
      const int64_t dk = j >= 0 ? ops[k][j] : 1;
      KILN_CHECK(dk == 1 || dk == out[i], "broadcast: operand shape " + ops[k].str() + " does not broadcast to " + out.str());
      f[k] = dk != 1;
    }
    if (p.nd > 0 && std::equal(f, f + 3, flags[p.nd - 1])) {
      p.dim[p.nd - 1] *= out[i];
    } else {
      p.dim[p.nd] = out[i];
      std::copy(f, f + 3, flags[p.nd]);
      ++p.nd;
    }
  }
  for (int k = 0; k < 3; ++k) {
    int64_t s = 1;
    for (int d = p.nd - 1; d >= 0; --d) {
      const bool f = k < p.nops && flags[d][k];
      p.stride[k][d] = f ? s : 0;
      if (f) s *= p.dim[d];
    }
    p.full[k] = k < p.nops && s == p.total;
  }
  return p;
}

namespace detail {

template <int K, int Mask, typename T, class F>
inline T bcast_eval(const F& f, const T* p0, const T* p1, const T* p2, int64_t j) {
  if constexpr (K == 1) {
    return f((Mask & 1) ? p0[j] : p0[0]);
  } else if constexpr (K == 2) {
    return f((Mask & 1) ? p0[j] : p0[0], (Mask & 2) ? p1[j] : p1[0]);
  } else {
    return f((Mask & 1) ? p0[j] : p0[0], (Mask & 2) ? p1[j] : p1[0], (Mask & 4) ? p2[j] : p2[0]);
  }
}

// One row of the innermost dim: o[j] (=|+=) f(operands at j), j in [0, len). Bit k of Mask says
// operand k advances along the row (stride 1) rather than staying put (stride 0).
template <bool Add, int K, int Mask, typename T, class F>
inline void bcast_row(int64_t len, T* o, const T* p0, const T* p1, const T* p2, const F& f) {
  run(0, len, [=](int64_t j) {
    const T v = bcast_eval<K, Mask>(f, p0, p1, p2, j);
    if constexpr (Add) o[j] += v;
    else o[j] = v;
  });
}

template <bool Add, int K, typename T, class F>
inline void bcast_row_dispatch(int mask, int64_t len, T* o, const T* p0, const T* p1, const T* p2, const F& f) {
  if constexpr (K == 1) {
    if (mask & 1) bcast_row<Add, 1, 1>(len, o, p0, p1, p2, f);
    else bcast_row<Add, 1, 0>(len, o, p0, p1, p2, f);
  } else if constexpr (K == 2) {
    switch (mask & 3) {
      case 0: bcast_row<Add, 2, 0>(len, o, p0, p1, p2, f); break;
      case 1: bcast_row<Add, 2, 1>(len, o, p0, p1, p2, f); break;
      case 2: bcast_row<Add, 2, 2>(len, o, p0, p1, p2, f); break;
      default: bcast_row<Add, 2, 3>(len, o, p0, p1, p2, f); break;
    }
  } else {  // K == 3: operand 0 is always full (checked by bcast_apply)
    switch (mask & 7) {
      case 1: bcast_row<Add, 3, 1>(len, o, p0, p1, p2, f); break;
      case 3: bcast_row<Add, 3, 3>(len, o, p0, p1, p2, f); break;
      case 5: bcast_row<Add, 3, 5>(len, o, p0, p1, p2, f); break;
      default: bcast_row<Add, 3, 7>(len, o, p0, p1, p2, f); break;
    }
  }
}

template <bool Add, int K, typename T, class F>
inline void bcast_apply_impl(const BcastPlan& p, T* out, const T* in0, const T* in1, const T* in2, const F& f) {
  if (p.total <= 0) return;
  if (p.nd == 0) {  // a single element
    const T v = bcast_eval<K, 0>(f, in0, in1, in2, 0);
    if constexpr (Add) out[0] += v;
    else out[0] = v;
    return;
  }
  const T* in[3] = {in0, in1, in2};
  const int last = p.nd - 1;
  const int64_t L = p.dim[last];
  int mask = 0;
  for (int k = 0; k < K; ++k)
    if (p.stride[k][last] != 0) mask |= 1 << k;
  parallel_chunks(p.total, [&](int64_t b, int64_t e) {
    // Odometer over the outer dims for the row holding element b.
    int64_t idx[kMaxDims];
    int64_t off[3] = {0, 0, 0};
    int64_t row = b / L, col = b % L;
    for (int d = last - 1; d >= 0; --d) {
      idx[d] = row % p.dim[d];
      row /= p.dim[d];
      for (int k = 0; k < K; ++k) off[k] += idx[d] * p.stride[k][d];
    }
    int64_t pos = b;
    while (pos < e) {
      const int64_t len = std::min(L - col, e - pos);
      const T* q[3] = {nullptr, nullptr, nullptr};
      for (int k = 0; k < K; ++k) q[k] = in[k] + off[k] + (p.stride[k][last] ? col : 0);
      bcast_row_dispatch<Add, K>(mask, len, out + pos, q[0], q[1], q[2], f);
      pos += len;
      col = 0;
      for (int d = last - 1; d >= 0; --d) {
        for (int k = 0; k < K; ++k) off[k] += p.stride[k][d];
        if (++idx[d] < p.dim[d]) break;
        for (int k = 0; k < K; ++k) off[k] -= p.stride[k][d] * p.dim[d];
        idx[d] = 0;
      }
    }
  });
}

}  // namespace detail

/// out[j] (=|+=|nothing by req) f(in0[bj], ...) over the plan's output index space, with
/// K = plan.nops operands (1 to 3; unused operand pointers are ignored); f takes K values of T.
/// out: [plan.total] contiguous, operand k: its own shape. out may alias an operand that is full
/// (same index); for K == 3, operand 0 must be full.
template <int K, typename T, class F>
inline void bcast_apply(const BcastPlan& p, OpReq req, T* out, const T* in0, const T* in1, const T* in2, const F& f) {
  static_assert(K >= 1 && K <= 3, "bcast_apply: 1 to 3 operands");
  KILN_CHECK(p.nops == K, "bcast_apply: plan has " + std::to_string(p.nops) + " operands, kernel " + std::to_string(K));
  KILN_CHECK(K < 3 || p.full[0], "bcast_apply: with three operands the first must be full");
  if (req == OpReq::kNullOp) return;
  if (K < 2) in1 = in0;
  if (K < 3) in2 = in0;
  if (req == OpReq::kAddTo) detail::bcast_apply_impl<true, K>(p, out, in0, in1, in2, f);
  else detail::bcast_apply_impl<false, K>(p, out, in0, in1, in2, f);
}

// ------------------------------------------------------------------------------------------
// Axis reductions
// ------------------------------------------------------------------------------------------

/// Sum (accumulated in double) with a final out = acc * alpha / divisor (mean: divisor = count,
/// negated gradient: alpha = -1).
template <typename T>
struct SumReducer {
  using Acc = double;
  double alpha = 1.0, divisor = 1.0;
  static Acc init() { return 0.0; }
  static Acc step(Acc a, T x) { return a + (Acc)x; }
  static Acc merge(Acc a, Acc b) { return a + b; }
  T finish(Acc a) const { return (T)(a * alpha / divisor); }
};

/// Max with MXNet's NaN propagation (mshadow red::maximum: `if (!isnan(dst) && !(dst >= src))
/// dst = src`, i.e. once NaN, stays NaN; ties keep dst). Written as one select: take x when it is
/// larger or NaN; a NaN accumulator is never replaced since no x compares greater. Empty -> -inf.
template <typename T>
struct MaxReducer {
  using Acc = T;
  static Acc init() { return -std::numeric_limits<T>::infinity(); }
  static Acc step(Acc a, T x) {
    const bool take = (x > a) | (x != x);
    return take ? x : a;
  }
  static Acc merge(Acc a, Acc b) { return step(a, b); }
  T finish(Acc a) const { return a; }
};

/// Min with the same NaN propagation. Empty -> +inf.
template <typename T>
struct MinReducer {
  using Acc = T;
  static Acc init() { return std::numeric_limits<T>::infinity(); }
  static Acc step(Acc a, T x) {
    const bool take = (x < a) | (x != x);
    return take ? x : a;
  }
  static Acc merge(Acc a, Acc b) { return step(a, b); }
  T finish(Acc a) const { return a; }
};

/// An input shape and the shape it reduces to, collapsed: size-1 input dims vanish and adjacent
/// dims with the same role (kept / reduced) merge.
struct ReducePlan {
  int nd = 0;
  int64_t dim[kMaxDims];      // collapsed input dims
  bool red[kMaxDims];         // reduced?
  int64_t ostride[kMaxDims];  // output stride per collapsed dim (0 on reduced dims)
  int64_t M = 1;              // number of outputs
  int64_t R = 1;              // inputs per output
  int64_t total = 0;          // number of inputs
};

/// `kept` is the reduced shape with the input's rank (1 on reduced axes, i.e. keepdims form) or
/// a right-aligned shorter shape (a broadcast operand): each of its dims equals the input's or is 1.
inline ReducePlan make_reduce_plan(const Shape& in, const Shape& kept) {
  ReducePlan p;
  const int n = in.ndim();
  KILN_CHECK(n <= kMaxDims, "reduce: rank " + std::to_string(n) + " exceeds " + std::to_string(kMaxDims));
  KILN_CHECK(kept.ndim() <= n, "reduce: " + kept.str() + " has more dims than " + in.str());
  p.total = in.size();
  for (int i = 0; i < n; ++i) {
    if (in[i] == 1) continue;
    const int j = i - (n - kept.ndim());
    const int64_t kd = j >= 0 ? kept[j] : 1;
    KILN_CHECK(kd == 1 || kd == in[i], "reduce: " + kept.str() + " is not a reduction of " + in.str());
    const bool r = kd == 1;
    if (p.nd > 0 && p.red[p.nd - 1] == r) {
      p.dim[p.nd - 1] *= in[i];
    } else {
      p.dim[p.nd] = in[i];
      p.red[p.nd] = r;
      ++p.nd;
    }
  }
  int64_t s = 1;
  for (int d = p.nd - 1; d >= 0; --d) {
    p.ostride[d] = p.red[d] ? 0 : s;
    if (p.red[d]) p.R *= p.dim[d];
    else s *= p.dim[d];
  }
  p.M = s;
  if (p.total == 0) {  // some dim is 0: recount outputs from the kept shape
    p.M = kept.size();
    p.R = 0;
  }
  return p;
}

namespace detail {

// Folds input elements [fa, fb) (flat, contiguous) into acc (indexed by output offset).
template <typename T, class R>
inline void reduce_range(const ReducePlan& p, const R& r, const T* in, typename R::Acc* acc, int64_t fa, int64_t fb) {
  using Acc = typename R::Acc;
  const int last = p.nd - 1;
  const int64_t L = p.dim[last];
  const bool inner_red = p.red[last];
  int64_t idx[kMaxDims];
  int64_t ooff = 0;
  int64_t row = fa / L, col = fa % L;
  for (int d = last - 1; d >= 0; --d) {
    idx[d] = row % p.dim[d];
    row /= p.dim[d];
    ooff += idx[d] * p.ostride[d];
  }
  int64_t pos = fa;
  while (pos < fb) {
    const int64_t len = std::min(L - col, fb - pos);
    const T* x = in + pos;  // [len]
    if (inner_red) {
      acc[ooff] = r.merge(acc[ooff], reduce_run(r, x, len));
    } else {
      Acc* a = acc + ooff + col;  // [len]
      run(0, len, [=](int64_t j) { a[j] = r.step(a[j], x[j]); });
    }
    pos += len;
    col = 0;
    for (int d = last - 1; d >= 0; --d) {
      ooff += p.ostride[d];
      if (++idx[d] < p.dim[d]) break;
      ooff -= p.ostride[d] * p.dim[d];
      idx[d] = 0;
    }
  }
}

}  // namespace detail

/// out (=|+=|nothing by req) r.finish(fold of the inputs mapped to each output).
/// in: [p.total] contiguous; out: [p.M] contiguous in the kept dims' order. out must not alias in
/// unless nothing is reduced.
template <typename T, class R>
inline void reduce_apply(const ReducePlan& p, const R& r, const T* in, OpReq req, T* out) {
  using Acc = typename R::Acc;
  if (req == OpReq::kNullOp || p.M <= 0) return;
  if (p.R == 0) {  // empty reduction
    const T v = r.finish(R::init());
    map(p.M, req, out, [=](int64_t) { return v; });
    return;
  }
  if (p.nd == 0 || p.R == 1) {  // nothing reduced: elementwise (safe in place)
    map(p.M, req, out, [=](int64_t i) { return r.finish(R::step(R::init(), in[i])); });
    return;
  }
  std::vector<Acc> acc((size_t)p.M, R::init());
  Acc* a = acc.data();
  const int64_t chunks = num_chunks(p.total);
  if (chunks <= 1) {
    detail::reduce_range(p, r, in, a, 0, p.total);
  } else if (p.M <= (int64_t(1) << 14)) {
    // Few outputs: every chunk folds a flat slice of the input into its own partial array.
    std::vector<Acc> part((size_t)(chunks * p.M), R::init());
    Acc* pp = part.data();
    const int nt = num_threads();
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      detail::reduce_range(p, r, in, pp + c * p.M, p.total * c / chunks, p.total * (c + 1) / chunks);
    }
    const int64_t M = p.M;
    for (int64_t c = 0; c < chunks; ++c) {
      const Acc* q = pp + c * M;
      run(0, M, [=](int64_t i) { a[i] = R::merge(a[i], q[i]); });
    }
  } else {
    // Many outputs: split the largest kept dim s; slices with distinct indices on s fold into
    // distinct outputs, so all threads share one accumulator array.
    int s = -1;
    for (int d = 0; d < p.nd; ++d)
      if (!p.red[d] && (s < 0 || p.dim[d] > p.dim[s])) s = d;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < s; ++d) outer *= p.dim[d];
    for (int d = s + 1; d < p.nd; ++d) inner *= p.dim[d];
    const int64_t S = p.dim[s];
    const int64_t parts = std::min<int64_t>(chunks, S);
    const int nt = num_threads();
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < parts; ++c) {
      const int64_t sa = S * c / parts, sb = S * (c + 1) / parts;
      for (int64_t o = 0; o < outer; ++o) {
        const int64_t base = o * S * inner;
        detail::reduce_range(p, r, in, a, base + sa * inner, base + sb * inner);
      }
    }
  }
  map(p.M, req, out, [=](int64_t i) { return r.finish(a[i]); });
}

}  // namespace simd
}  // namespace kiln
