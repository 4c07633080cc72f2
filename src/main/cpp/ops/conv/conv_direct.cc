// Direct AVX-512 convolution for thin layers (few input channels x kernel taps), float32.
//
// With C * KH * KW small (LeNet's conv1: 1 x 5 x 5 = 25), im2col + GEMM spends its time in the
// copies: im2col writes 25 rows per image, OpenBLAS packs them again, and a K = 25 GEMM never
// reaches its inner-loop speed. The direct kernels read the image itself.
//
// "Wide rows": an output row is computed over the padded input width Wp instead of OW, so output
// position p = oy * Wp + ox reads input position p + ky * Wp + kx for tap (ky, kx) — for every
// tap, consecutive outputs read consecutive inputs, and 16 outputs are one unaligned vector load
// per tap. The Wp - OW columns past each row's end are computed and dropped (LeNet conv1: 4 of
// 28). The last row stops at OW, so no load reads past the (padded) image.
//
//   forward:        yw[o, p] = sum_t w[o, t] * xp[p + off[t]]          (4 channels x 64 outputs / step)
//   weight grad:    dw[o, t] += sum_p dyw[o, p] * xp[p + off[t]]      (4 channels x 4 taps / step)
// with t = (c, ky, kx), off[t] = (c * Hp + ky) * Wp + kx, xp the (zero-padded) image [C, Hp, Wp],
// yw / dyw the wide output (gradient) [O, PV], PV = (OH - 1) * Wp + OW.
//
// The backward-data pass stays on im2col + GEMM: its reduction runs over O * KH * KW (LeNet
// conv1: 500), where the GEMM is efficient.
#include <immintrin.h>

#include <atomic>

#include "conv_direct.h"
#include "kiln/simd.h"

namespace kiln {

namespace {
std::atomic<int> g_algo{conv::kConvAuto};
}  // namespace

void set_conv_algo(int algo) {
  KILN_CHECK(algo >= conv::kConvAuto && algo <= conv::kConvWinograd4,
             "convolution algorithm must be 0 (auto), 1 (im2col + GEMM), 2 (direct), 3 (Winograd F(2x2, 3x3)) or 4 "
             "(Winograd F(4x4, 3x3)), got " +
                 std::to_string(algo));
  g_algo.store(algo);
}
int conv_algo() { return g_algo.load(); }

namespace conv {

namespace {

/// Largest C * KH * KW the automatic choice sends to the direct forward kernel. JMH ConvAlgoBench
/// (LeNet, batch 128, 1 thread, this 2-core Zen 4 VM; us per call, im2col / direct):
///   conv1 (25 taps)  forward 754 / 680, weight+bias gradient 1183 / 1332;
///   conv2 (500 taps) forward 4851 / 4881, backward 9690 / 11471.
/// So auto runs the direct kernel for thin forwards only and keeps im2col + GEMM for the weight
/// gradient (the direct weight-gradient kernel stays available through kConvDirect).
constexpr int64_t kDirectMaxTaps = 64;
}  // namespace

bool direct_supported(const Geo& g) {
  return simd::use_avx512() && g.G == 1 && g.D[0] == 1 && g.k[0] == 1 && g.s[1] == 1 && g.s[2] == 1 &&
         g.d[1] == 1 && g.d[2] == 1 && g.Q[1] > 0 && g.Q[2] > 0 && g.C > 0 && g.O > 0;
}

bool use_direct(const Geo& g, bool weight_grad) {
  const int a = g_algo.load();
  if (a == kConvIm2col || a == kConvWinograd || a == kConvWinograd4 || !direct_supported(g)) return false;
  if (a == kConvDirect) return true;
  return !weight_grad && g.C * g.k[1] * g.k[2] <= kDirectMaxTaps;
}

namespace {

/// Geometry of the wide-row formulation.
struct Wide {
  int64_t Hp, Wp;       // padded input height, width
  int64_t PV;           // wide outputs computed per channel: (OH - 1) * Wp + OW
  int64_t PVr;          // PV rounded up to 64 (scratch row stride)
  int64_t K, K4;        // taps C * KH * KW, rounded up to 4
  int64_t O4;           // output channels rounded up to 4
  bool padded;          // the image needs a zero-padded copy
  std::vector<int64_t> off;  // [K4] input offset of each tap (0 for the padding taps)
};

Wide make_wide(const Geo& g) {
  Wide w;
  w.Hp = g.D[1] + 2 * g.p[1];
  w.Wp = g.D[2] + 2 * g.p[2];
  w.PV = (g.Q[1] - 1) * w.Wp + g.Q[2];
  w.PVr = (w.PV + 63) / 64 * 64;
  w.K = g.C * g.k[1] * g.k[2];
  w.K4 = (w.K + 3) / 4 * 4;
  w.O4 = (g.O + 3) / 4 * 4;
  w.padded = g.p[1] != 0 || g.p[2] != 0;
  w.off.assign((size_t)w.K4, 0);
  for (int64_t c = 0, t = 0; c < g.C; ++c)
    for (int64_t ky = 0; ky < g.k[1]; ++ky)
      for (int64_t kx = 0; kx < g.k[2]; ++kx, ++t) w.off[(size_t)t] = (c * w.Hp + ky) * w.Wp + kx;
  return w;
}

/// xp [C, Hp, Wp] = x [C, H, W] with zero borders.
void pad_image(const Geo& g, const Wide& w, const float* x, float* xp) {
  const int64_t H = g.D[1], W = g.D[2];
  std::fill(xp, xp + g.C * w.Hp * w.Wp, 0.0f);
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t iy = 0; iy < H; ++iy)
      std::memcpy(xp + (c * w.Hp + iy + g.p[1]) * w.Wp + g.p[2], x + (c * H + iy) * W, sizeof(float) * (size_t)W);
}

/// Lanes of the vector starting at wide position p that are real outputs (0..16).
inline __mmask16 lanes(int64_t p, int64_t PV) {
  const int64_t n = PV - p;
  return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

// The micro-kernels keep their 16 accumulators in named variables: with an array of __m512, GCC
// 12 spilled every accumulator to the stack on each iteration (2.5x slower than im2col + GEMM).
// Channel and tap counts are padded to multiples of 4 (zero weights / a dummy tap whose result
// is dropped), so there is one kernel and no tail variants.

#define KILN_FMA4(i, w)                                  \
  a##i##0 = _mm512_fmadd_ps(w, x0, a##i##0);             \
  a##i##1 = _mm512_fmadd_ps(w, x1, a##i##1);             \
  a##i##2 = _mm512_fmadd_ps(w, x2, a##i##2);             \
  a##i##3 = _mm512_fmadd_ps(w, x3, a##i##3);

/// yw[o0 .. o0+4, p0 .. p0+64) = sum_t wt[t, o0 .. o0+4] * xp[p0 + off[t] ..]. wt [K, O4] (taps
/// major, zero-padded channels), xp [C, Hp, Wp], yw [O4, PVr].
KILN_SIMD_AVX512_TARGET void fwd_block(const float* wt, int64_t O4, const float* xp, const int64_t* off, int64_t K,
                                       int64_t p0, int64_t PV, int64_t o0, float* yw, int64_t PVr) {
  __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  const __mmask16 m0 = lanes(p0, PV), m1 = lanes(p0 + 16, PV), m2 = lanes(p0 + 32, PV), m3 = lanes(p0 + 48, PV);
  const float* xb = xp + p0;
  const float* wo = wt + o0;  // [K, O4] from column o0
  for (int64_t t = 0; t < K; ++t, wo += O4) {
    const float* xt = xb + off[t];
    const __m512 x0 = _mm512_maskz_loadu_ps(m0, xt), x1 = _mm512_maskz_loadu_ps(m1, xt + 16);
    const __m512 x2 = _mm512_maskz_loadu_ps(m2, xt + 32), x3 = _mm512_maskz_loadu_ps(m3, xt + 48);
    const __m512 w0 = _mm512_set1_ps(wo[0]), w1 = _mm512_set1_ps(wo[1]);
    KILN_FMA4(0, w0)
    KILN_FMA4(1, w1)
    const __m512 w2 = _mm512_set1_ps(wo[2]), w3 = _mm512_set1_ps(wo[3]);
    KILN_FMA4(2, w2)
    KILN_FMA4(3, w3)
  }
  float* y0 = yw + o0 * PVr + p0;  // 4 rows of [64] (scratch rows are padded to 64)
  _mm512_storeu_ps(y0, a00), _mm512_storeu_ps(y0 + 16, a01), _mm512_storeu_ps(y0 + 32, a02), _mm512_storeu_ps(y0 + 48, a03);
  y0 += PVr;
  _mm512_storeu_ps(y0, a10), _mm512_storeu_ps(y0 + 16, a11), _mm512_storeu_ps(y0 + 32, a12), _mm512_storeu_ps(y0 + 48, a13);
  y0 += PVr;
  _mm512_storeu_ps(y0, a20), _mm512_storeu_ps(y0 + 16, a21), _mm512_storeu_ps(y0 + 32, a22), _mm512_storeu_ps(y0 + 48, a23);
  y0 += PVr;
  _mm512_storeu_ps(y0, a30), _mm512_storeu_ps(y0 + 16, a31), _mm512_storeu_ps(y0 + 32, a32), _mm512_storeu_ps(y0 + 48, a33);
}
#undef KILN_FMA4

/// Horizontal sum of a vector (maskz extracts: the plain cast/extract intrinsics carry an
/// undefined source operand that GCC 12 warns about).
KILN_SIMD_AVX512_TARGET inline float hsum(__m512 v) {
  __m256 s = _mm256_add_ps(_mm512_maskz_extractf32x8_ps((__mmask8)0xff, v, 0), _mm512_maskz_extractf32x8_ps((__mmask8)0xff, v, 1));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

#define KILN_DOT4(i, d)                                  \
  a##i##0 = _mm512_fmadd_ps(d, x0, a##i##0);             \
  a##i##1 = _mm512_fmadd_ps(d, x1, a##i##1);             \
  a##i##2 = _mm512_fmadd_ps(d, x2, a##i##2);             \
  a##i##3 = _mm512_fmadd_ps(d, x3, a##i##3);

/// acc[o0 .. o0+4, t0 .. t0+4) += sum_p dyw[o, p] * xp[p + off[t]]. dyw [O4, PVr] (zero past PV,
/// in the dropped columns and in the padded channels), xp [C, Hp, Wp], acc [O4, K4].
KILN_SIMD_AVX512_TARGET void wgrad_block(const float* dyw, int64_t PVr, const float* xp, const int64_t* off, int64_t PV,
                                         int64_t o0, int64_t t0, float* acc, int64_t K4) {
  __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  const float* d0 = dyw + o0 * PVr;  // 4 rows of [PVr]
  const float *s0 = xp + off[t0], *s1 = xp + off[t0 + 1], *s2 = xp + off[t0 + 2], *s3 = xp + off[t0 + 3];
  for (int64_t p = 0; p < PV; p += 16) {
    const __mmask16 m = lanes(p, PV);
    const __m512 x0 = _mm512_maskz_loadu_ps(m, s0 + p), x1 = _mm512_maskz_loadu_ps(m, s1 + p);
    const __m512 x2 = _mm512_maskz_loadu_ps(m, s2 + p), x3 = _mm512_maskz_loadu_ps(m, s3 + p);
    const __m512 e0 = _mm512_loadu_ps(d0 + p), e1 = _mm512_loadu_ps(d0 + PVr + p);
    KILN_DOT4(0, e0)
    KILN_DOT4(1, e1)
    const __m512 e2 = _mm512_loadu_ps(d0 + 2 * PVr + p), e3 = _mm512_loadu_ps(d0 + 3 * PVr + p);
    KILN_DOT4(2, e2)
    KILN_DOT4(3, e3)
  }
  float* r = acc + o0 * K4 + t0;  // 4 rows of [4]
  r[0] += hsum(a00), r[1] += hsum(a01), r[2] += hsum(a02), r[3] += hsum(a03);
  r += K4;
  r[0] += hsum(a10), r[1] += hsum(a11), r[2] += hsum(a12), r[3] += hsum(a13);
  r += K4;
  r[0] += hsum(a20), r[1] += hsum(a21), r[2] += hsum(a22), r[3] += hsum(a23);
  r += K4;
  r[0] += hsum(a30), r[1] += hsum(a31), r[2] += hsum(a32), r[3] += hsum(a33);
}
#undef KILN_DOT4

/// Scratch floats per thread: padded image, wide rows [O4, PVr] (+ a private dw [O4, K4]).
size_t direct_per_thread(const Geo& g, const Wide& w, bool wgrad) {
  return (size_t)((w.padded ? g.C * w.Hp * w.Wp : 0) + w.O4 * w.PVr + (wgrad ? w.O4 * w.K4 : 0) + 16);
}

}  // namespace

size_t direct_workspace_bytes(const Geo& g, bool backward) {
  if (g.N == 0 || !use_direct(g, backward)) return 0;
  const Wide w = make_wide(g);
  const int nt = (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), g.N));
  return direct_per_thread(g, w, backward) * (size_t)nt * sizeof(float) + sizeof(float) * (size_t)(w.K * w.O4);
}

void conv_direct_forward(const OpCtx& ctx, const Geo& g, const float* x, const float* w, const float* b, float* y,
                         OpReq req) {
  // x [N, C, H, W], w [O, C, KH, KW], b [O] or null, y [N, O, OH, OW]
  if (req == OpReq::kNullOp || g.N == 0) return;
  const Wide wd = make_wide(g);
  const int64_t O = g.O, K = wd.K, OH = g.Q[1], OW = g.Q[2], P = OH * OW, Din = g.in_size();
  const bool add = req == OpReq::kAddTo;
  const size_t per = direct_per_thread(g, wd, false);
  int nt = conv_threads(g.N, g.N * O * P * K);
  std::vector<float> fb;
  float* ws = nullptr;
  // the transposed weights wt [K, O4] (zero columns past O) sit after the per-thread slices
  const size_t total = per * (size_t)nt + (size_t)(K * wd.O4);
  if (ctx.workspace && ctx.workspace_bytes >= total * sizeof(float)) {
    ws = static_cast<float*>(ctx.workspace);
  } else {
    fb.resize(total);
    ws = fb.data();
  }
  float* wt = ws + per * (size_t)nt;  // [K, O4]
  for (int64_t t = 0; t < K; ++t)
    for (int64_t o = 0; o < wd.O4; ++o) wt[t * wd.O4 + o] = o < O ? w[o * K + t] : 0.0f;
  const int64_t* off = wd.off.data();
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t n = 0; n < g.N; ++n) {
    float* buf = ws + (size_t)omp_thread() * per;
    float* xp = buf;                                          // [C, Hp, Wp] when padded
    float* yw = buf + (wd.padded ? g.C * wd.Hp * wd.Wp : 0);  // [O4, PVr]
    const float* xn = x + n * g.C * Din;
    if (wd.padded) pad_image(g, wd, xn, xp);
    const float* src = wd.padded ? xp : xn;
    for (int64_t p0 = 0; p0 < wd.PV; p0 += 64)
      for (int64_t o0 = 0; o0 < O; o0 += 4) fwd_block(wt, wd.O4, src, off, K, p0, wd.PV, o0, yw, wd.PVr);
    // drop the wide columns, add the bias
    for (int64_t o = 0; o < O; ++o) {
      const float bo = b ? b[o] : 0.0f;
      float* yo = y + (n * O + o) * P;  // [OH, OW]
      const float* r = yw + o * wd.PVr;  // [PV]
      for (int64_t oy = 0; oy < OH; ++oy) {
        const float* rr = r + oy * wd.Wp;  // [OW]
        float* yr = yo + oy * OW;          // [OW]
        if (add)
          for (int64_t q = 0; q < OW; ++q) yr[q] += rr[q] + bo;
        else
          for (int64_t q = 0; q < OW; ++q) yr[q] = rr[q] + bo;
      }
    }
  }
}

void conv_direct_backward_weight(const OpCtx& ctx, const Geo& g, const float* dy, const float* x, float* dw,
                                 OpReq req) {
  // dy [N, O, OH, OW], x [N, C, H, W], dw [O, C, KH, KW]
  if (req == OpReq::kNullOp) return;
  const Wide wd = make_wide(g);
  const int64_t O = g.O, K = wd.K, OH = g.Q[1], OW = g.Q[2], P = OH * OW, Din = g.in_size();
  const size_t per = direct_per_thread(g, wd, true);
  int nt = conv_threads(g.N, g.N * O * P * K);
  std::vector<float> fb;
  float* ws = nullptr;
  const size_t total = per * (size_t)nt;
  if (ctx.workspace && ctx.workspace_bytes >= total * sizeof(float)) {
    ws = static_cast<float*>(ctx.workspace);
  } else {
    fb.resize(total);
    ws = fb.data();
  }
  const int64_t* off = wd.off.data();
  const int64_t O4 = wd.O4, K4 = wd.K4;
  const size_t img = (size_t)(wd.padded ? g.C * wd.Hp * wd.Wp : 0), acc_off = img + (size_t)(O4 * wd.PVr);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    float* buf = ws + (size_t)omp_thread() * per;
    float* xp = buf;             // [C, Hp, Wp] when padded
    float* dyw = buf + img;      // [O4, PVr]
    float* acc = buf + acc_off;  // [O4, K4]
    std::fill(acc, acc + O4 * K4, 0.0f);
    std::fill(dyw, dyw + O4 * wd.PVr, 0.0f);  // dropped columns, tail and padded channels stay 0
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      const float* xn = x + n * g.C * Din;
      if (wd.padded) pad_image(g, wd, xn, xp);
      const float* src = wd.padded ? xp : xn;
      for (int64_t o = 0; o < O; ++o)
        for (int64_t oy = 0; oy < OH; ++oy)
          copy_row(dyw + o * wd.PVr + oy * wd.Wp, dy + ((n * O + o) * OH + oy) * OW, OW);
      for (int64_t o0 = 0; o0 < O; o0 += 4)
        for (int64_t t0 = 0; t0 < K; t0 += 4) wgrad_block(dyw, wd.PVr, src, off, wd.PV, o0, t0, acc, K4);
    }
    // sum the per-thread accumulators in thread order (repeatable for a fixed thread count)
#pragma omp barrier
#pragma omp single
    {
      const int parts = omp_team();
      for (int64_t o = 0; o < O; ++o)
        for (int64_t t = 0; t < K; ++t) {
          float s = req == OpReq::kAddTo ? dw[o * K + t] : 0.0f;
          for (int u = 0; u < parts; ++u) s += ws[(size_t)u * per + acc_off + (size_t)(o * K4 + t)];
          dw[o * K + t] = s;
        }
    }
  }
}

}  // namespace conv
}  // namespace kiln
