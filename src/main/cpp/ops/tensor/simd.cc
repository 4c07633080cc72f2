// Run-time ISA selection for the elementwise kernels (kiln::simd_isa, kiln::has_avx512) and the
// one leaf that needs explicit intrinsics: sqrt (std::sqrt keeps a scalar errno path under GCC's
// default -fmath-errno and therefore never vectorizes). See kiln/simd.h for the scheme.
#include <immintrin.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

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

// exp / log on 8 floats with AVX2 + FMA: the operation sequence of simd::exp / simd::log
// (kiln/simd.h), so results are bit-identical to the AVX-512 path and to the scalar tail.
// (The build uses ISO C++, hence -ffp-contract=off: a * b + c in the inline functions is a
// multiply then an add, mirrored here; std::fma is mirrored by _mm256_fmadd_ps.)
inline __m256 blend_if(__m256 mask, __m256 if_true, __m256 if_false) {
  return _mm256_blendv_ps(if_false, if_true, mask);
}

__m256 exp8(__m256 x) {
  __m256 xc = blend_if(_mm256_cmp_ps(x, _mm256_set1_ps(-104.0f), _CMP_LT_OQ), _mm256_set1_ps(-104.0f), x);
  xc = blend_if(_mm256_cmp_ps(xc, _mm256_set1_ps(89.0f), _CMP_GT_OQ), _mm256_set1_ps(89.0f), xc);
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 t = _mm256_add_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)), magic);
  const __m256i n = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(0x4B400000));
  const __m256 fn = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fmadd_ps(fn, _mm256_set1_ps(-0.693359375f), xc);
  r = _mm256_fmadd_ps(fn, _mm256_set1_ps(2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

__m256 log8(__m256 x) {
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 xv = blend_if(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ), x, one);
  xv = blend_if(_mm256_cmp_ps(xv, inf, _CMP_LT_OQ), xv, one);
  const __m256 denorm = _mm256_cmp_ps(xv, _mm256_set1_ps(1.17549435e-38f), _CMP_LT_OQ);
  const __m256 xs = blend_if(denorm, _mm256_mul_ps(xv, _mm256_set1_ps(8388608.0f)), xv);
  const __m256i bits = _mm256_castps_si256(xs);
  __m256i e = _mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff)),
                               _mm256_set1_epi32(126));
  e = _mm256_sub_epi32(e, _mm256_and_si256(_mm256_castps_si256(denorm), _mm256_set1_epi32(23)));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                 _mm256_set1_epi32(0x3f000000)));
  const __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_add_epi32(e, _mm256_castps_si256(small));  // mask is -1 where small
  m = blend_if(small, _mm256_sub_ps(_mm256_add_ps(m, m), one), _mm256_sub_ps(m, one));
  const __m256 fe = _mm256_sub_ps(_mm256_castsi256_ps(_mm256_add_epi32(_mm256_set1_epi32(0x4B400000), e)),
                                  _mm256_set1_ps(12582912.0f));
  const __m256 z = _mm256_mul_ps(m, m);
  __m256 y = _mm256_set1_ps(7.0376836292e-2f);
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.1514610310e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.1676998740e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.2420140846e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.4249322787e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.6668057665e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(2.0000714765e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-2.4999993993e-1f));
  y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(3.3333331174e-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
  y = _mm256_fmadd_ps(fe, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fmadd_ps(z, _mm256_set1_ps(-0.5f), y);
  __m256 r = _mm256_add_ps(m, y);
  r = _mm256_fmadd_ps(fe, _mm256_set1_ps(0.693359375f), r);
  const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
  __m256 special = blend_if(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ), _mm256_set1_ps(-INFINITY),
                            _mm256_setzero_ps());
  special = blend_if(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ), nan, special);
  special = blend_if(_mm256_cmp_ps(x, inf, _CMP_EQ_OQ), inf, special);
  special = blend_if(_mm256_cmp_ps(x, x, _CMP_UNORD_Q), nan, special);
  return _mm256_add_ps(r, special);
}

template <__m256 (*F8)(__m256), float (*F1)(float)>
void range_avx2(const float* x, float* y, int64_t n, bool add) {
  int64_t i = 0;
  if (add) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), F8(_mm256_loadu_ps(x + i))));
    for (; i < n; ++i) y[i] += F1(x[i]);
  } else {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, F8(_mm256_loadu_ps(x + i)));
    for (; i < n; ++i) y[i] = F1(x[i]);
  }
}

float exp1(float v) { return simd::exp(v); }
float log1(float v) { return simd::log(v); }

}  // namespace

void exp_range(const float* x, float* y, int64_t n, bool add) {
  if (n <= 0) return;
  if (use_avx512()) {
    if (add) isa_avx512::loop(0, n, [=](int64_t i) { y[i] += simd::exp(x[i]); });
    else isa_avx512::loop(0, n, [=](int64_t i) { y[i] = simd::exp(x[i]); });
  } else {
    range_avx2<exp8, exp1>(x, y, n, add);
  }
}

void log_range(const float* x, float* y, int64_t n, bool add) {
  if (n <= 0) return;
  if (use_avx512()) {
    if (add) isa_avx512::loop(0, n, [=](int64_t i) { y[i] += simd::log(x[i]); });
    else isa_avx512::loop(0, n, [=](int64_t i) { y[i] = simd::log(x[i]); });
  } else {
    range_avx2<log8, log1>(x, y, n, add);
  }
}

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
