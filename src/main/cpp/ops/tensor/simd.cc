// Run-time ISA selection for the elementwise kernels (kiln::simd_isa, kiln::has_avx512) and the
// one leaf that needs explicit intrinsics: sqrt (std::sqrt keeps a scalar errno path under GCC's
// default -fmath-errno and therefore never vectorizes). See kiln/simd.h for the scheme.
#include <immintrin.h>

#include <cstdlib>
#include <cstring>

#include "kiln/simd.h"

namespace kiln {

namespace {

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/// KILN_SIMD=avx2 (or "scalar") in the environment disables the AVX-512 leaves.
bool avx512_disabled_by_env() {
  const char* v = std::getenv("KILN_SIMD");
  return v != nullptr && (std::strcmp(v, "avx2") == 0 || std::strcmp(v, "scalar") == 0);
}

}  // namespace

bool has_avx512() {
  static const bool v = cpu_has_avx512() && !avx512_disabled_by_env();
  return v;
}

const char* simd_isa() {
  if (has_avx512()) return "avx512f";
  // The library itself is compiled for x86-64-v3, so this is the floor in practice.
  if (cpu_has_avx2()) return "avx2";
  return "scalar";
}

namespace simd {

namespace {

// Full-mask maskz forms: same instruction as _mm512_sqrt_p*, without the undefined-source operand
// that trips GCC 12's -Wmaybe-uninitialized.
KILN_SIMD_AVX512_TARGET inline __m512 sqrt16(__m512 v) { return _mm512_maskz_sqrt_ps((__mmask16)0xffff, v); }
KILN_SIMD_AVX512_TARGET inline __m512d sqrt8(__m512d v) { return _mm512_maskz_sqrt_pd((__mmask8)0xff, v); }

KILN_SIMD_AVX512_TARGET void sqrt_f32_avx512(const float* x, float* y, int64_t n, bool add) {
  int64_t i = 0;
  if (add) {
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), sqrt16(_mm512_loadu_ps(x + i))));
  } else {
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, sqrt16(_mm512_loadu_ps(x + i)));
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
    __m512 v = sqrt16(_mm512_maskz_loadu_ps(m, x + i));
    if (add) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, y + i));
    _mm512_mask_storeu_ps(y + i, m, v);
  }
}

KILN_SIMD_AVX512_TARGET void sqrt_f64_avx512(const double* x, double* y, int64_t n, bool add) {
  int64_t i = 0;
  if (add) {
    for (; i + 8 <= n; i += 8)
      _mm512_storeu_pd(y + i, _mm512_add_pd(_mm512_loadu_pd(y + i), sqrt8(_mm512_loadu_pd(x + i))));
  } else {
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(y + i, sqrt8(_mm512_loadu_pd(x + i)));
  }
  if (i < n) {
    const __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
    __m512d v = sqrt8(_mm512_maskz_loadu_pd(m, x + i));
    if (add) v = _mm512_add_pd(v, _mm512_maskz_loadu_pd(m, y + i));
    _mm512_mask_storeu_pd(y + i, m, v);
  }
}

// Baseline (AVX2): the tail goes through a scalar loop using the same instruction (sqrtss/sqrtsd
// are correctly rounded like their vector forms).
void sqrt_f32_avx2(const float* x, float* y, int64_t n, bool add) {
  int64_t i = 0;
  if (add) {
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_sqrt_ps(_mm256_loadu_ps(x + i))));
  } else {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
  }
  for (; i < n; ++i) {
    const float v = _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x[i])));
    y[i] = add ? y[i] + v : v;
  }
}

void sqrt_f64_avx2(const double* x, double* y, int64_t n, bool add) {
  int64_t i = 0;
  if (add) {
    for (; i + 4 <= n; i += 4)
      _mm256_storeu_pd(y + i, _mm256_add_pd(_mm256_loadu_pd(y + i), _mm256_sqrt_pd(_mm256_loadu_pd(x + i))));
  } else {
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
  }
  for (; i < n; ++i) {
    const __m128d s = _mm_set_sd(x[i]);
    const double v = _mm_cvtsd_f64(_mm_sqrt_sd(s, s));
    y[i] = add ? y[i] + v : v;
  }
}

}  // namespace

void sqrt_range(const float* x, float* y, int64_t n, bool add) {
  if (n <= 0) return;
  if (use_avx512()) sqrt_f32_avx512(x, y, n, add);
  else sqrt_f32_avx2(x, y, n, add);
}

void sqrt_range(const double* x, double* y, int64_t n, bool add) {
  if (n <= 0) return;
  if (use_avx512()) sqrt_f64_avx512(x, y, n, add);
  else sqrt_f64_avx2(x, y, n, add);
}

}  // namespace simd
}  // namespace kiln
