// GEMM on Kiln's thread pool: OpenBLAS runs single-threaded inside OpenMP workers, each on a
// block of rows (or columns) of C. Mixing OpenMP with OpenBLAS's pthread pool makes idle OpenMP
// workers spin on the cores OpenBLAS needs (peers.md: 2-thread runs collapse); one pool avoids it.
//
// Products with few rows and B transposed (FullyConnected's forward at small batch: y = x W^T + b)
// skip OpenBLAS for a kernel of our own (small_m_nt below). OpenBLAS 0.3.31's speed there depends
// on the core it dispatches to and on beta: with its Haswell kernels (OPENBLAS_CORETYPE=Haswell,
// as this project's machines export) m = 1 with beta = 1 takes 182 us for a 1x784 by 784x512
// product against 21 us with beta = 0; with its Cooperlake kernels m = 1 by 4096x256 takes 332 us;
// and m = 3..8 take 90-170 us on every core because it packs all of B for a few rows. The kernel
// streams B once: 19 us, 62 us and 17-50 us for those products (1 thread, Zen 5). A row of a
// batch of up to 8 therefore differs in its last bits from the same row in a larger batch.
//
// Convolutions' per-image products (a few dozen to a few hundred rows, 64 columns or so, the
// weights reused by every image) and FullyConnected's backward products run gemm_strided_a below:
// OpenBLAS packs both operands on each call, which costs about as much as the arithmetic at these
// sizes.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kiln/avx512.h"
#include "kiln/kernel_common.h"
#include "kiln/simd.h"

namespace kiln {

namespace {

void blas(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
          float* c, int ldc) {
  cblas_sgemm(KilnCblasRowMajor, ta ? KilnCblasTrans : KilnCblasNoTrans, tb ? KilnCblasTrans : KilnCblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}
void blas(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
          double* c, int ldc) {
  cblas_dgemm(KilnCblasRowMajor, ta ? KilnCblasTrans : KilnCblasNoTrans, tb ? KilnCblasTrans : KilnCblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

// Below this many multiply-adds one thread is faster than splitting.
constexpr double kSplitMinFlops = 4e6;

// ---- few rows times a transposed matrix ------------------------------------------------------

/// Rows of A up to which gemm(false, true, ...) on float runs small_m_nt instead of OpenBLAS.
constexpr int kSmallM = 8;

// The kernel is written once with GCC vector types of W floats and always inlined into two entry
// points: one compiled for AVX-512 (W = 16, zmm registers), one for the library's AVX2 baseline
// (W = 8), chosen at run time by has_avx512() (simd.h uses the same scheme).
#define KILN_INLINE inline __attribute__((always_inline))

// Vectors are only ever passed between always-inlined functions, so the ABI note GCC gives for
// 64-byte vector arguments without AVX-512 does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float Floats16 __attribute__((vector_size(64)));
typedef float Floats8 __attribute__((vector_size(32)));
typedef float Floats4 __attribute__((vector_size(16)));
typedef float Floats2 __attribute__((vector_size(8)));

// Lane sums as a tree of half-width adds (a lane-by-lane loop is 16 dependent scalar adds, which
// cost a quarter of a batch-1 FullyConnected).
KILN_INLINE float lane_sum(Floats2 v) { return v[0] + v[1]; }
KILN_INLINE float lane_sum(Floats4 v) { return lane_sum(__builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3)); }
KILN_INLINE float lane_sum(Floats8 v) {
  return lane_sum(__builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7));
}
KILN_INLINE float lane_sum(const Floats16& v) {
  return lane_sum(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                  __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
}
/// The vector of W floats, and an unaligned load of one.
template <int W>
using Floats = std::conditional_t<W == 16, Floats16, Floats8>;
template <int W>
KILN_INLINE Floats<W> load(const float* p) {
  Floats<W> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

/// The lane sums of four vectors at once, {sum a0, sum a1, sum a2, sum a3}: each level adds the
/// two halves of every group, two vectors per shuffle, so four sums cost 5 adds where four
/// separate trees cost 16 (batch-1 FullyConnected: 512 columns a layer, 7% of its time).
KILN_INLINE Floats4 lane_sums4(const Floats16& a0, const Floats16& a1, const Floats16& a2, const Floats16& a3) {
  const Floats16 t01 = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                       __builtin_shufflevector(a0, a1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const Floats16 t23 = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
                       __builtin_shufflevector(a2, a3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  // t01 = [a0: 8 | a1: 8], t23 = [a2: 8 | a3: 8] partial sums
  const Floats16 u = __builtin_shufflevector(t01, t23, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
                     __builtin_shufflevector(t01, t23, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
  const Floats8 v = __builtin_shufflevector(u, u, 0, 1, 4, 5, 8, 9, 12, 13) + __builtin_shufflevector(u, u, 2, 3, 6, 7, 10, 11, 14, 15);
  return __builtin_shufflevector(v, v, 0, 2, 4, 6) + __builtin_shufflevector(v, v, 1, 3, 5, 7);
}
KILN_INLINE Floats4 lane_sums4(const Floats8& a0, const Floats8& a1, const Floats8& a2, const Floats8& a3) {
  const Floats8 t01 = __builtin_shufflevector(a0, a1, 0, 1, 2, 3, 8, 9, 10, 11) + __builtin_shufflevector(a0, a1, 4, 5, 6, 7, 12, 13, 14, 15);
  const Floats8 t23 = __builtin_shufflevector(a2, a3, 0, 1, 2, 3, 8, 9, 10, 11) + __builtin_shufflevector(a2, a3, 4, 5, 6, 7, 12, 13, 14, 15);
  const Floats8 u = __builtin_shufflevector(t01, t23, 0, 1, 4, 5, 8, 9, 12, 13) + __builtin_shufflevector(t01, t23, 2, 3, 6, 7, 10, 11, 14, 15);
  return __builtin_shufflevector(u, u, 0, 2, 4, 6) + __builtin_shufflevector(u, u, 1, 3, 5, 7);
}

/// C[MB rows, NB cols] block: c[i, j] = alpha * dot(a_i, b_j) + beta * c[i, j] (beta == 0: c not read).
/// a [MB, k] rows lda apart, b [NB, k] rows ldb apart, c rows ldc apart; MB * NB vector accumulators.
/// next (or null): the following block of B (NB rows ldb apart), fetched into cache a line per row
/// of this block's, in memory order, while this block computes: the scheme gemv_nt_avx512 measured
/// best at one row (93 GB/s from L3 where no prefetch gives 91 and a prefetch 512 bytes ahead in
/// each row 75-80, on the project's 1 MiB-L2 AVX-512 machine); not timed separately at 2-8 rows.
template <int W, int MB, int NB>
KILN_INLINE void small_block(int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
                             int ldc, const float* next) {
  using V = Floats<W>;
  V acc[MB][NB];
  for (int i = 0; i < MB; ++i)
    for (int j = 0; j < NB; ++j) acc[i][j] = V{};
  const char* pf = reinterpret_cast<const char*>(next);  // the next block, NB rows ldb apart
  int p = 0;
  for (; p + W <= k; p += W) {
    V bv[NB];
    for (int j = 0; j < NB; ++j) {
      bv[j] = load<W>(b + (size_t)j * ldb + p);
      if (next != nullptr) __builtin_prefetch(pf + ((size_t)p * NB + (size_t)j * W) * sizeof(float));
    }
    for (int i = 0; i < MB; ++i) {
      const V av = load<W>(a + (size_t)i * lda + p);
      for (int j = 0; j < NB; ++j) acc[i][j] += av * bv[j];
    }
  }
  for (int i = 0; i < MB; ++i) {
    float d[NB];
    if constexpr (NB == 4) {
      const Floats4 s = lane_sums4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
      for (int j = 0; j < NB; ++j) d[j] = s[j];
    } else {
      for (int j = 0; j < NB; ++j) d[j] = lane_sum(acc[i][j]);
    }
    for (int j = 0; j < NB; ++j) {
      for (int q = p; q < k; ++q) d[j] += a[(size_t)i * lda + q] * b[(size_t)j * ldb + q];
      float* cij = c + (size_t)i * ldc + j;
      *cij = beta == 0.f ? alpha * d[j] : alpha * d[j] + beta * *cij;
    }
  }
}

/// Rows [0, m) of C, the NB columns starting at n0: every block of up to 4 rows of A passes over
/// the same NB rows of B (NB * k floats, in L1 after the first), so B is read from memory once;
/// the first block also fetches `next` (the following NB rows of B, or null) into cache.
template <int W, int NB>
KILN_INLINE void small_cols(int m, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                            float* c, int ldc, int n0, const float* next) {
  int i = 0;
  for (; i + 4 <= m; i += 4, next = nullptr)
    small_block<W, 4, NB>(k, alpha, a + (size_t)i * lda, lda, b, ldb, beta, c + (size_t)i * ldc + n0, ldc, next);
  float* ci = c + (size_t)i * ldc + n0;
  const float* ai = a + (size_t)i * lda;
  switch (m - i) {
    case 3: small_block<W, 3, NB>(k, alpha, ai, lda, b, ldb, beta, ci, ldc, next); break;
    case 2: small_block<W, 2, NB>(k, alpha, ai, lda, b, ldb, beta, ci, ldc, next); break;
    case 1: small_block<W, 1, NB>(k, alpha, ai, lda, b, ldb, beta, ci, ldc, next); break;
    default: break;
  }
}

/// Columns [n0, n1) of C: blocks of 4 columns, then the rest one at a time.
template <int W>
KILN_INLINE void small_run(int m, int n0, int n1, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                           float beta, float* c, int ldc) {
  int j = n0;
  for (; j + 4 <= n1; j += 4) {
    const float* next = j + 8 <= n1 ? b + (size_t)(j + 4) * ldb : nullptr;  // B rows [j + 4, j + 8)
    small_cols<W, 4>(m, k, alpha, a, lda, b + (size_t)j * ldb, ldb, beta, c, ldc, j, next);
  }
  for (; j < n1; ++j) small_cols<W, 1>(m, k, alpha, a, lda, b + (size_t)j * ldb, ldb, beta, c, ldc, j, nullptr);
}

KILN_SIMD_AVX512_TARGET void small_run_avx512(int m, int n0, int n1, int k, float alpha, const float* a, int lda,
                                              const float* b, int ldb, float beta, float* c, int ldc) {
  small_run<16>(m, n0, n1, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void small_run_avx2(int m, int n0, int n1, int k, float alpha, const float* a, int lda, const float* b, int ldb,
                    float beta, float* c, int ldc) {
  small_run<8>(m, n0, n1, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// The batch-1 case of small_run (one row of A, AVX-512): c[j] = alpha * dot(a, b_j) + beta * c[j]
/// for j in [n0, n1); a [k], b rows ldb apart, c [n1]. Four rows of B at a time, masked tails, the
/// next four rows fetched into cache in memory order, one lane_sums4 per four outputs. Written with
/// intrinsics: the vector-extension template above keeps spilling accumulators at MB = 1, and this
/// loop reads the 2.7 MB of the MLP's weights from L3 at 93 GB/s where that one reached 82.
KILN_SIMD_AVX512_TARGET void gemv_nt_avx512(int n0, int n1, int k, float alpha, const float* a, const float* b, int ldb,
                                            float beta, float* c) {
  const int kv = k / 16 * 16;
  const __mmask16 tail = (__mmask16)((1u << (k - kv)) - 1);
  int j = n0;
  for (; j + 4 <= n1; j += 4) {
    const float* b0 = b + (size_t)j * ldb;  // B rows [j, j + 4), each [k]
    const float* b1 = b0 + ldb;
    const float* b2 = b1 + ldb;
    const float* b3 = b2 + ldb;
    // the next four rows (or these again, already cached, for the last block)
    const char* next = reinterpret_cast<const char*>(j + 8 <= n1 ? b0 + 4 * (size_t)ldb : b0);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (int p = 0; p < kv; p += 16) {
      const __m512 av = _mm512_loadu_ps(a + p);  // a [p, p + 16)
      s0 = _mm512_fmadd_ps(_mm512_loadu_ps(b0 + p), av, s0);
      s1 = _mm512_fmadd_ps(_mm512_loadu_ps(b1 + p), av, s1);
      s2 = _mm512_fmadd_ps(_mm512_loadu_ps(b2 + p), av, s2);
      s3 = _mm512_fmadd_ps(_mm512_loadu_ps(b3 + p), av, s3);
      const char* line = next + (size_t)p * 16;  // four 64-byte lines per 16 columns
      _mm_prefetch(line, _MM_HINT_T0);
      _mm_prefetch(line + 64, _MM_HINT_T0);
      _mm_prefetch(line + 128, _MM_HINT_T0);
      _mm_prefetch(line + 192, _MM_HINT_T0);
    }
    if (tail) {
      const __m512 av = _mm512_maskz_loadu_ps(tail, a + kv);
      s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, b0 + kv), av, s0);
      s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, b1 + kv), av, s1);
      s2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, b2 + kv), av, s2);
      s3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, b3 + kv), av, s3);
    }
    const Floats4 d = lane_sums4((Floats16)s0, (Floats16)s1, (Floats16)s2, (Floats16)s3);
    for (int q = 0; q < 4; ++q) c[j + q] = beta == 0.f ? alpha * d[q] : alpha * d[q] + beta * c[j + q];
  }
  for (; j < n1; ++j) {
    const float* bj = b + (size_t)j * ldb;  // B row j [k]
    __m512 s = _mm512_setzero_ps();
    for (int p = 0; p < kv; p += 16) s = _mm512_fmadd_ps(_mm512_loadu_ps(bj + p), _mm512_loadu_ps(a + p), s);
    if (tail) s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, bj + kv), _mm512_maskz_loadu_ps(tail, a + kv), s);
    const float d = lane_sum((Floats16)s);
    c[j] = beta == 0.f ? alpha * d : alpha * d + beta * c[j];
  }
}

/// C[m, n] = alpha * A B^T + beta * C for few rows (m <= kSmallM at the call site; any m works): a [m, k] (lda), b [n, k] (ldb), c [m, n]
/// (ldc); columns split between Kiln's threads in blocks of 16 when the product is large enough.
/// Each element is one dot product in a fixed order, the same for any thread count.
void small_m_nt(int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
                int ldc) {
  const bool avx512 = simd::use_avx512();
  auto cols = [&](int n0, int n1) {
    if (avx512 && m == 1) gemv_nt_avx512(n0, n1, k, alpha, a, b, ldb, beta, c);
    else if (avx512) small_run_avx512(m, n0, n1, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else small_run_avx2(m, n0, n1, k, alpha, a, lda, b, ldb, beta, c, ldc);
  };
  const int nt = num_threads();
  if (nt <= 1 || 2.0 * m * n * k < kSplitMinFlops / 4 || n < 32) {
    cols(0, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), parts = omp_get_num_threads();
    const int per = ((n + parts - 1) / parts + 15) / 16 * 16;
    const int c0 = std::min(n, t * per), c1 = std::min(n, c0 + per);
    if (c1 > c0) cols(c0, c1);
  }
}

// ---- strided A times row-major B, AVX-512 ----------------------------------------------------

/// c [R, 16 NV] (rows ldc apart) = (or +=) the accumulators s; `last` masks the final vector.
template <int R, int NV>
__attribute__((target("avx512f"))) KILN_INLINE void store_block(__m512 (&s)[R][NV], float* c, int64_t ldc, bool accumulate,
                                                                __mmask16 last) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) {
      float* cp = c + r * ldc + 16 * j;  // C row r [16]
      const __mmask16 mk = j == NV - 1 ? last : (__mmask16)0xffff;
      _mm512_mask_storeu_ps(cp, mk, accumulate ? _mm512_add_ps(s[r][j], _mm512_maskz_loadu_ps(mk, cp)) : s[r][j]);
    }
}

/// C[R rows, 16 NV cols] (+)= A B over all k: R x NV zmm accumulators; per p, NV vectors of B's row
/// p and R broadcasts of A(i, p). `last` masks the lanes of the final vector (columns past n).
template <int R, int NV>
KILN_SIMD_AVX512_TARGET KILN_INLINE void strided_block(int k, const float* a, int64_t sa, int64_t sp, const float* b,
                                                       int64_t ldb, float* c, int64_t ldc, bool accumulate, __mmask16 last) {
  __m512 s[R][NV];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) s[r][j] = _mm512_setzero_ps();
  for (int p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;  // B row p [16 NV]
    __m512 bv[NV];
    for (int j = 0; j < NV; ++j) bv[j] = j == NV - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * j) : _mm512_loadu_ps(bp + 16 * j);
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * sa + p * sp]);
      for (int j = 0; j < NV; ++j) s[r][j] = _mm512_fmadd_ps(av, bv[j], s[r][j]);
    }
  }
  store_block<R, NV>(s, c, ldc, accumulate, last);
}

/// All m rows of one column block of 16 NV columns: blocks of R rows (R NV + NV + 1 <= 32
/// registers), then the remaining rows in one smaller block.
template <int NV>
KILN_SIMD_AVX512_TARGET KILN_INLINE void strided_rows(int m, int k, const float* a, int64_t sa, int64_t sp, const float* b,
                                                      int64_t ldb, float* c, int64_t ldc, bool accumulate, __mmask16 last) {
  constexpr int R = NV == 4 ? 6 : 8;
  int i = 0;
  for (; i + R <= m; i += R) strided_block<R, NV>(k, a + i * sa, sa, sp, b, ldb, c + i * ldc, ldc, accumulate, last);
  const float* ai = a + i * sa;  // the last m - i rows of A
  float* ci = c + i * ldc;
  switch (m - i) {
    case 7: strided_block<7, NV>(k, ai, sa, sp, b, ldb, ci, ldc, accumulate, last); break;
    case 6: strided_block<6, NV>(k, ai, sa, sp, b, ldb, ci, ldc, accumulate, last); break;
    case 5: strided_block<5, NV>(k, ai, sa, sp, b, ldb, ci, ldc, accumulate, last); break;
    case 4: strided_block<4, NV>(k, ai, sa, sp, b, ldb, ci, ldc, accumulate, last); break;
    case 3: strided_block<3, NV>(k, ai, sa, sp, b, ldb, ci, ldc, accumulate, last); break;
    case 2: strided_block<2, NV>(k, ai, sa, sp, b, ldb, ci, ldc, accumulate, last); break;
    case 1: strided_block<1, NV>(k, ai, sa, sp, b, ldb, ci, ldc, accumulate, last); break;
    default: break;
  }
}

/// Column blocks of 64 (4 vectors), the last one narrower and masked.
KILN_SIMD_AVX512_TARGET void strided_avx512(int m, int n, int k, const float* a, int64_t sa, int64_t sp, const float* b,
                                            int64_t ldb, float* c, int64_t ldc, bool accumulate) {
  for (int j0 = 0; j0 < n; j0 += 64) {
    const int w = std::min(64, n - j0), nv = (w + 15) / 16, tail = w - 16 * (nv - 1);  // tail in 1..16
    const __mmask16 last = (__mmask16)(tail == 16 ? 0xffffu : (1u << tail) - 1);
    switch (nv) {
      case 4: strided_rows<4>(m, k, a, sa, sp, b + j0, ldb, c + j0, ldc, accumulate, last); break;
      case 3: strided_rows<3>(m, k, a, sa, sp, b + j0, ldb, c + j0, ldc, accumulate, last); break;
      case 2: strided_rows<2>(m, k, a, sa, sp, b + j0, ldb, c + j0, ldc, accumulate, last); break;
      default: strided_rows<1>(m, k, a, sa, sp, b + j0, ldb, c + j0, ldc, accumulate, last); break;
    }
  }
}

template <typename T>
void gemm_impl(bool ta, bool tb, int m, int n, int k, T alpha, const T* a, const T* b, T beta, T* c) {
  // a: [m,k] ([k,m] if ta), b: [k,n] ([n,k] if tb), c: [m,n]
  const int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
  if constexpr (std::is_same_v<T, float>) {
    // Up to 8 rows only. The kernel sums each dot product in another order than OpenBLAS's packed
    // kernel, whose rows come out bit-identical whatever the batch size: at 9-16 rows a row of a
    // batch of 16 would differ in its last bits from the same row in a batch of 32 (enough to
    // send two training runs apart: kvstore-gloo's DistAcceptanceTest says how), and at k = 64
    // (B in L2) OpenBLAS is 1.4-1.6x faster there anyway.
    if (!ta && tb && m > 0 && n > 0 && k > 0 && m <= kSmallM) {
      small_m_nt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
      return;
    }
  }
  const int nt = num_threads();
  if (nt <= 1 || 2.0 * m * n * k < kSplitMinFlops || (m < 32 && n < 64)) {
    blas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const bool split_rows = m >= n || n < 64;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), parts = omp_get_num_threads();
    if (split_rows) {
      const int per = ((m + parts - 1) / parts + 7) / 8 * 8;  // blocks of whole 8-row panels
      const int r0 = std::min(m, t * per), r1 = std::min(m, r0 + per);
      if (r1 > r0)
        blas(ta, tb, r1 - r0, n, k, alpha, ta ? a + r0 : a + (size_t)r0 * lda, lda, b, ldb, beta, c + (size_t)r0 * ldc, ldc);
    } else {
      const int per = ((n + parts - 1) / parts + 15) / 16 * 16;  // blocks of whole 16-column panels
      const int c0 = std::min(n, t * per), c1 = std::min(n, c0 + per);
      if (c1 > c0)
        blas(ta, tb, m, c1 - c0, k, alpha, a, lda, tb ? b + (size_t)c0 * ldb : b + c0, ldb, beta, c + c0, ldc);
    }
  }
}

}  // namespace

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b, float beta, float* c) {
  gemm_impl(ta, tb, m, n, k, alpha, a, b, beta, c);
}
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, const double* b, double beta, double* c) {
  gemm_impl(ta, tb, m, n, k, alpha, a, b, beta, c);
}

bool gemm_strided_a(int m, int n, int k, const float* a, int64_t sa, int64_t sp, const float* b, int64_t ldb, float* c,
                    int64_t ldc, bool accumulate) {
  if (!simd::use_avx512()) return false;
  if (m <= 0 || n <= 0) return true;
  if (k <= 0) {
    if (!accumulate)
      for (int i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.f);
    return true;
  }
  const int nt = num_threads();
  if (omp_in_parallel() || nt <= 1 || 2.0 * m * n * k < kSplitMinFlops || n <= 64) {
    strided_avx512(m, n, k, a, sa, sp, b, ldb, c, ldc, accumulate);
    return true;
  }
  // Whole 64-column blocks per thread; every element is the same chain of k FMAs either way.
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), parts = omp_get_num_threads();
    const int per = ((n + parts - 1) / parts + 63) / 64 * 64;
    const int c0 = std::min(n, t * per), c1 = std::min(n, c0 + per);
    if (c1 > c0) strided_avx512(m, c1 - c0, k, a, sa, sp, b + c0, ldb, c + c0, ldc, accumulate);
  }
  return true;
}

// ---- transpose ---------------------------------------------------------------------------------

namespace {

/// A 16 x 16 tile: dst rows [0, 16) (ldd apart) = columns of src rows [0, 16) (lds apart).
KILN_SIMD_AVX512_TARGET KILN_INLINE void transpose_tile16(const float* src, int64_t lds, float* dst, int64_t ldd) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);  // src row i [16]
  simd::transpose16(r);
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ldd, r[i]);  // dst row i [16]
}

KILN_SIMD_AVX512_TARGET void transpose_avx512(const float* src, int64_t rows, int64_t cols, float* dst) {
  const int64_t R = rows / 16 * 16, C = cols / 16 * 16;
  for (int64_t i0 = 0; i0 < R; i0 += 16)
    for (int64_t j0 = 0; j0 < C; j0 += 16) transpose_tile16(src + i0 * cols + j0, cols, dst + j0 * rows + i0, rows);
  for (int64_t i = 0; i < rows; ++i)  // the right edge of the tiled rows, then the rows below them
    for (int64_t j = i < R ? C : 0; j < cols; ++j) dst[j * rows + i] = src[i * cols + j];
}

}  // namespace

void transpose_f32(const float* src, int64_t rows, int64_t cols, float* dst) {
  if (simd::use_avx512()) {
    transpose_avx512(src, rows, cols, dst);
    return;
  }
  for (int64_t i0 = 0; i0 < rows; i0 += 16)
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      const int64_t i1 = std::min(rows, i0 + 16), j1 = std::min(cols, j0 + 16);
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) dst[j * rows + i] = src[i * cols + j];
    }
}

// ---- bfloat16 pairs, AVX512-BF16 ---------------------------------------------------------------
//
// vdpbf16ps multiplies two bfloat16 pairs per lane and adds both products to a float32 lane: the
// products are exact (8-bit significands), the sums float32. A is packed into pairs along p
// ([m][kp] 32-bit words, the odd tail paired with 0), B into [kp][n] words of the pair (B(2q, j),
// B(2q+1, j)); then the same register blocking as strided_avx512, half the instructions per p.

#define KILN_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512bf16,prefer-vector-width=512")))

template <int R, int NV>
KILN_BF16_TARGET KILN_INLINE void bf16_block(int kp, const uint32_t* ap, const uint32_t* bp, int64_t ldb, float* c,
                                             int64_t ldc, bool accumulate, __mmask16 last) {
  // ap: R rows of [kp] pair words, bp: [kp, >= 16 NV] pair words (row q at bp + q ldb), c: [R, 16 NV]
  __m512 s[R][NV];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) s[r][j] = _mm512_setzero_ps();
  for (int q = 0; q < kp; ++q) {
    const uint32_t* bq = bp + q * ldb;
    __m512i bv[NV];
    for (int j = 0; j < NV; ++j)
      bv[j] = j == NV - 1 ? _mm512_maskz_loadu_epi32(last, bq + 16 * j) : _mm512_loadu_si512(bq + 16 * j);
    for (int r = 0; r < R; ++r) {
      const __m512i av = _mm512_set1_epi32((int)ap[r * kp + q]);
      for (int j = 0; j < NV; ++j) s[r][j] = _mm512_dpbf16_ps(s[r][j], (__m512bh)av, (__m512bh)bv[j]);
    }
  }
  store_block<R, NV>(s, c, ldc, accumulate, last);
}

template <int NV>
KILN_BF16_TARGET void bf16_rows(int m, int kp, const uint32_t* ap, const uint32_t* bp, int64_t ldb, float* c, int64_t ldc,
                                bool accumulate, __mmask16 last) {
  constexpr int R = NV == 4 ? 6 : 8;
  int i = 0;
  for (; i + R <= m; i += R) bf16_block<R, NV>(kp, ap + (int64_t)i * kp, bp, ldb, c + i * ldc, ldc, accumulate, last);
  const uint32_t* ai = ap + (int64_t)i * kp;
  float* ci = c + i * ldc;
  switch (m - i) {
    case 7: bf16_block<7, NV>(kp, ai, bp, ldb, ci, ldc, accumulate, last); break;
    case 6: bf16_block<6, NV>(kp, ai, bp, ldb, ci, ldc, accumulate, last); break;
    case 5: bf16_block<5, NV>(kp, ai, bp, ldb, ci, ldc, accumulate, last); break;
    case 4: bf16_block<4, NV>(kp, ai, bp, ldb, ci, ldc, accumulate, last); break;
    case 3: bf16_block<3, NV>(kp, ai, bp, ldb, ci, ldc, accumulate, last); break;
    case 2: bf16_block<2, NV>(kp, ai, bp, ldb, ci, ldc, accumulate, last); break;
    case 1: bf16_block<1, NV>(kp, ai, bp, ldb, ci, ldc, accumulate, last); break;
    default: break;
  }
}

/// Columns [j0, j1) of C in blocks of 64, the last one masked.
KILN_BF16_TARGET void bf16_cols(int m, int j0, int j1, int kp, const uint32_t* ap, const uint32_t* bp, int64_t ldb, float* c,
                                int64_t ldc, bool accumulate) {
  for (int j = j0; j < j1; j += 64) {
    const int w = std::min(64, j1 - j), nv = (w + 15) / 16, tail = w - 16 * (nv - 1);
    const __mmask16 last = (__mmask16)(tail == 16 ? 0xffffu : (1u << tail) - 1);
    switch (nv) {
      case 4: bf16_rows<4>(m, kp, ap, bp + j, ldb, c + j, ldc, accumulate, last); break;
      case 3: bf16_rows<3>(m, kp, ap, bp + j, ldb, c + j, ldc, accumulate, last); break;
      case 2: bf16_rows<2>(m, kp, ap, bp + j, ldb, c + j, ldc, accumulate, last); break;
      default: bf16_rows<1>(m, kp, ap, bp + j, ldb, c + j, ldc, accumulate, last); break;
    }
  }
}

bool has_avx512_bf16() {
  static const bool yes = simd::use_avx512() && __builtin_cpu_supports("avx512bf16");
  return yes;
}

bool gemm_bf16(int m, int n, int k, const uint16_t* a, int64_t sa, int64_t sp, const uint16_t* b, int64_t sbp, int64_t sbj,
               float* c, int64_t ldc, bool accumulate) {
  if (!has_avx512_bf16()) return false;
  if (m <= 0 || n <= 0) return true;
  if (k <= 0) {
    if (!accumulate)
      for (int i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.f);
    return true;
  }
  const int kp = (k + 1) / 2;
  std::vector<uint32_t> ap((size_t)m * kp), bp((size_t)kp * n);  // A pairs [m, kp], B pairs [kp, n]
  for (int i = 0; i < m; ++i)
    for (int q = 0; q < kp; ++q) {
      const int64_t p = 2 * (int64_t)q;
      const uint32_t lo = a[i * sa + p * sp], hi = p + 1 < k ? a[i * sa + (p + 1) * sp] : 0;
      ap[(size_t)i * kp + q] = lo | hi << 16;
    }
  for (int q = 0; q < kp; ++q) {
    const int64_t p = 2 * (int64_t)q;
    const uint16_t* b0 = b + p * sbp;
    const uint16_t* b1 = p + 1 < k ? b0 + sbp : nullptr;
    uint32_t* row = bp.data() + (size_t)q * n;
    for (int j = 0; j < n; ++j) row[j] = (uint32_t)b0[j * sbj] | (uint32_t)(b1 ? b1[j * sbj] : 0) << 16;
  }
  const int nt = num_threads();
  if (omp_in_parallel() || nt <= 1 || 2.0 * m * n * k < kSplitMinFlops || n <= 64) {
    bf16_cols(m, 0, n, kp, ap.data(), bp.data(), n, c, ldc, accumulate);
    return true;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), parts = omp_get_num_threads();
    const int per = ((n + parts - 1) / parts + 63) / 64 * 64;
    const int c0 = std::min(n, t * per), c1 = std::min(n, c0 + per);
    if (c1 > c0) bf16_cols(m, c0, c1, kp, ap.data(), bp.data(), n, c, ldc, accumulate);
  }
  return true;
}

}  // namespace kiln
