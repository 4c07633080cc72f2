// AVX-512 register helpers shared by kernels that are compiled with KILN_SIMD_AVX512_TARGET (simd.h)
// and run only where simd::use_avx512() holds.
#pragma once
#include <immintrin.h>

#include "kiln/simd.h"

namespace kiln {
namespace simd {

// GCC 12's _mm512_undefined_ps initializes itself from itself, which -Wmaybe-uninitialized reports
// at every shuffle intrinsic below (a known false positive; the lanes are all overwritten).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/// Transposes the 16 x 16 matrix held in r (r[i] = row i) in place: afterwards r[j] holds column j.
/// Three rounds of shuffles: pairs of rows interleaved, 2 x 2 blocks of those (each 128-bit lane then
/// holds a transposed 4 x 4), then the 4 x 4 grid of 128-bit lanes transposed in two steps.
KILN_SIMD_AVX512_TARGET inline __attribute__((always_inline)) void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 8; ++i) {
    const int a = (i / 4) * 8 + i % 4;  // rows a and a + 4
    t[a] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0x88);
    t[a + 4] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
}

#pragma GCC diagnostic pop

}  // namespace simd
}  // namespace kiln
