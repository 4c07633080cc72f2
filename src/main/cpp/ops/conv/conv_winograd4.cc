// Winograd F(4x4, 3x3) convolution for 3x3 layers with stride 1, dilation 1, one group, float32,
// channel counts that are multiples of 16, on AVX-512: the forward, the data gradient and the
// weight gradient (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// Each 4x4 output tile needs a 6x6 input tile d; with
//   U = G g G^T (weights, 6x6), V = B^T d B (input, 6x6), Y = A^T (sum_c U .* V) A (output, 4x4)
// the 144 multiplies per tile and channel pair of a direct 3x3 convolution become 36 (F(2x2, 3x3)
// in conv_winograd.cc needs 64 per four tiles' worth of outputs, i.e. 1.8x as many), and the sum over
// input channels becomes 36 GEMMs per chunk of tiles: M[xi] [T, Co] = V[xi] [T, Ci] . U[xi] [Ci, Co].
//
// Layout: every transform runs on vectors of 16 channels. Tiles are taken a tile row at a time
// (a segment); the segment's input rows of 16 channels are transposed (16 x 16 in registers) into
// P [6][L][16] so that a tile's 36 inputs are 36 vector loads, and its 16 outputs go through
// Q [4][L][16] and the same transpose back into the NCHW output. The transformed data V, M (and
// the weight gradient's dM) keep channels innermost, so the GEMMs are Kiln's strided GEMM
// (core/blas.cc) with the tiles as rows: U's panel of 64 output channels stays in L1/L2 while the
// chunk's tiles stream past it. Chunks of tiles are spread over OpenMP threads.
//
// The transforms (B^T, G, A^T):
//   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// The weight gradient is dU[xi] = sum over tiles of V[xi]^T dM[xi] with dM = A dY A^T, then
// dg = G^T dU G. Rounding: the points 0, +-1, +-2 put float32 results within about 1e-5 to 2e-5 of
// the magnitude of the outputs (ResNet-18's layers, 64 to 512 channels); ConvolutionAlgorithmTest
// and the sanitizer driver check it against im2col.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "conv_winograd.h"
#include "conv_winograd_common.h"
#include "kiln/avx512.h"

namespace kiln {
namespace conv {

namespace {

#define W4_TARGET KILN_SIMD_AVX512_TARGET
#define W4_INLINE inline __attribute__((always_inline))

using wino::carve;
using wino::PassGeo;
using wino::Scratch;
using wino::Segment;

/// An F(4x4) pass (PassGeo) with its 4x4 tiles, chunks and scratch.
struct W4Geo : PassGeo {
  bool whole = false;  // all tiles in one chunk (weight_geo's choice for the weight gradient)
  int64_t tiles_h() const { return (OH + 3) / 4; }
  int64_t tiles_w() const { return (OW + 3) / 4; }
  int64_t tiles() const { return N * tiles_h() * tiles_w(); }
  /// Columns of the row buffers P and Q: a whole tile row plus the 2-column halo, whole vectors.
  int64_t row_len() const { return (4 * tiles_w() + 2 + 15) / 16 * 16; }
  /// Tiles per chunk: V and M of a chunk (36 Tc (Ci + Co) floats) near 2 MB, at least 48 tiles (the
  /// GEMM's rows: fewer leave U's panels too little reuse, and U is read once per chunk), a multiple
  /// of 6 (the GEMM's row block), then evened out so that every thread gets as many chunks. Measured
  /// on the ResNet-18 layers at batch 32, 1 thread (ms forward; budget 0.5 / 1 / 2 / 4 MB, minimum 24
  /// or 48): 32x32 x 64 8.3-10.2 everywhere, 8x8 x 256 7.8-10.7 (8.3 at 2 MB / 48), 4x4 x 512 (32
  /// tiles) 12.5-13.1 in one chunk, 15.8-17.9 in two.
  int64_t chunk() const {
    const int64_t T = std::max<int64_t>(1, tiles());
    if (whole) return T;
    int64_t t = (int64_t(1) << 19) / (36 * (Ci + Co));
    t = std::max<int64_t>(48, t / 6 * 6);
    // as many chunks as a multiple of the threads (when there are several), all about equal
    const int64_t nt = num_threads(), n = (T + t - 1) / t, even = n > 1 && nt > 1 ? (n + nt - 1) / nt * nt : n;
    return std::min(T, (T + even - 1) / even);
  }
  int64_t chunks() const { return (tiles() + chunk() - 1) / chunk(); }
  int threads() const { return (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks())); }
  /// P [6][row_len][16] (Q [4][row_len][16] reuses it).
  size_t rows_floats() const { return (size_t)(6 * 16 * row_len()); }
  size_t weights() const { return (size_t)(36 * Ci * Co); }
  /// Forward / data gradient, per thread: V [36][Tc][Ci], M [36][Tc][Co], P.
  size_t data_per_thread() const { return (size_t)(36 * chunk() * (Ci + Co)) + rows_floats(); }
  /// One chunk (few tiles, which come with many channels: ResNet's 4x4 x 512 layers): the chunk's
  /// transformed input (and dM) is computed once and shared, and the threads take blocks of kBlock
  /// output channels, each with its own U or dU [36][Ci][kBlock] (4.7 MB where the whole U is 37.7 MB
  /// at 512 channels). 4x4 x 512 at batch 32, 1 thread: forward 12.2 -> 9.2 ms, weight gradient
  /// 12.9 -> 9.0 ms; blocks of 32 or 128 channels measured the same. One chunk of all tiles for the
  /// larger layers' weight gradient was slower or the same (V and dM then leave L2): 32x32 x 64
  /// 8.3 -> 13.0 ms, 8x8 x 256 8.9 -> 8.8-9.6.
  static constexpr int64_t kBlock = 64;
  bool blocked() const { return chunks() == 1; }
  int64_t blocks() const { return (Co + kBlock - 1) / kBlock; }
  int blocked_threads() const { return (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), blocks())); }
  /// Forward / data gradient in one chunk: V and P shared; U [36][Ci][kBlock], M [36][T][kBlock]
  /// and Q per thread.
  size_t blocked_shared() const { return (size_t)(36 * chunk() * Ci) + rows_floats(); }
  size_t blocked_per_thread() const { return (size_t)(36 * kBlock * (Ci + chunk())) + rows_floats(); }
  /// Weight gradient: in one chunk V, dM and P shared and a dU block per thread; over several chunks
  /// V, dM, P and a private dU [36][Ci][Co] per thread (the threads' dU are added at the end).
  size_t weight_shared() const { return blocked() ? data_per_thread() : 0; }
  size_t weight_per_thread() const { return blocked() ? (size_t)(36 * Ci * kBlock) : data_per_thread() + weights(); }
  int weight_threads() const { return blocked() ? blocked_threads() : threads(); }
};

W4Geo forward_geo(const Geo& g) { return {PassGeo::forward(g)}; }
/// The weight gradient's pass: one chunk of all tiles (the blocked loops, dU per block of output
/// channels) wherever the whole batch's V and dM take no more room than the threads' private
/// dU [36][Ci][Co] of the chunked loops. Where both were measured the time is the same or better
/// (8x8 x 256 at batch 32: 1 thread 7.1-8.8 ms in one chunk, 8.3-8.9 in three; 2 threads 4.5-5.0
/// against 5.1-5.3), and layers with many channels and few pixels stay smaller (ResNet-50's 7x7 x
/// 512 at batch 32: 18.9 MB of V and dM against 37.7 MB of dU per thread).
W4Geo weight_geo(const Geo& g) {
  W4Geo w = forward_geo(g);
  w.whole = w.tiles() * (w.Ci + w.Co) <= (int64_t)w.threads() * w.Ci * w.Co;
  return w;
}
W4Geo backward_geo(const Geo& g) { return {PassGeo::backward(g)}; }

/// The tile rows that tiles t0 .. t0+tc cover, in order.
std::vector<Segment> segments(const W4Geo& wg, int64_t t0, int64_t tc) {
  std::vector<Segment> out;
  wino::for_segments(wg.tiles_h(), wg.tiles_w(), t0, tc, [&](const Segment& sg) { out.push_back(sg); });
  return out;
}

// ---- the 1-D transforms, on vectors of 16 channels ---------------------------------------------

/// y = B^T x (6 -> 6).
W4_TARGET W4_INLINE void bt6(const __m512 (&x)[6], __m512 (&y)[6]) {
  const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f);
  const __m512 a = _mm512_fnmadd_ps(four, x[2], x[4]);  // x4 - 4 x2
  const __m512 b = _mm512_fnmadd_ps(four, x[1], x[3]);  // x3 - 4 x1
  const __m512 c = _mm512_sub_ps(x[4], x[2]);
  const __m512 e = _mm512_mul_ps(two, _mm512_sub_ps(x[3], x[1]));
  y[0] = _mm512_fmadd_ps(four, x[0], _mm512_fnmadd_ps(five, x[2], x[4]));
  y[1] = _mm512_add_ps(a, b);
  y[2] = _mm512_sub_ps(a, b);
  y[3] = _mm512_add_ps(c, e);
  y[4] = _mm512_sub_ps(c, e);
  y[5] = _mm512_fmadd_ps(four, x[1], _mm512_fnmadd_ps(five, x[3], x[5]));
}

/// y = A^T x (6 -> 4).
W4_TARGET W4_INLINE void at4(const __m512 (&x)[6], __m512 (&y)[4]) {
  const __m512 s12 = _mm512_add_ps(x[1], x[2]), d12 = _mm512_sub_ps(x[1], x[2]);
  const __m512 s34 = _mm512_add_ps(x[3], x[4]), d34 = _mm512_sub_ps(x[3], x[4]);
  y[0] = _mm512_add_ps(_mm512_add_ps(x[0], s12), s34);
  y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), d34, d12);
  y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), s34, s12);
  y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), d34, d12), x[5]);
}

/// y = A x (4 -> 6), the transpose of at4.
W4_TARGET W4_INLINE void a6(const __m512 (&x)[4], __m512 (&y)[6]) {
  const __m512 s02 = _mm512_add_ps(x[0], x[2]), s13 = _mm512_add_ps(x[1], x[3]);
  const __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(4.f), x[2], x[0]);                       // x0 + 4 x2
  const __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(8.f), x[3], _mm512_add_ps(x[1], x[1]));  // 2 x1 + 8 x3
  y[0] = x[0];
  y[1] = _mm512_add_ps(s02, s13);
  y[2] = _mm512_sub_ps(s02, s13);
  y[3] = _mm512_add_ps(p, q);
  y[4] = _mm512_sub_ps(p, q);
  y[5] = x[3];
}

/// y = G x (3 -> 6).
W4_TARGET W4_INLINE void g6(const __m512 (&x)[3], __m512 (&y)[6]) {
  const __m512 a = _mm512_add_ps(x[0], x[2]);
  const __m512 b = _mm512_fmadd_ps(_mm512_set1_ps(1.f / 24), x[0], _mm512_mul_ps(_mm512_set1_ps(1.f / 6), x[2]));
  const __m512 sixth = _mm512_set1_ps(-1.f / 6), twelfth = _mm512_set1_ps(1.f / 12);
  y[0] = _mm512_mul_ps(_mm512_set1_ps(0.25f), x[0]);
  y[1] = _mm512_mul_ps(sixth, _mm512_add_ps(a, x[1]));
  y[2] = _mm512_mul_ps(sixth, _mm512_sub_ps(a, x[1]));
  y[3] = _mm512_fmadd_ps(twelfth, x[1], b);
  y[4] = _mm512_fnmadd_ps(twelfth, x[1], b);
  y[5] = x[2];
}

/// y = G^T x (6 -> 3), the transpose of g6.
W4_TARGET W4_INLINE void gt3(const __m512 (&x)[6], __m512 (&y)[3]) {
  const __m512 s12 = _mm512_add_ps(x[1], x[2]), s34 = _mm512_add_ps(x[3], x[4]);
  const __m512 sixth = _mm512_set1_ps(1.f / 6);
  y[0] = _mm512_fmadd_ps(_mm512_set1_ps(0.25f), x[0],
                         _mm512_fmadd_ps(_mm512_set1_ps(1.f / 24), s34, _mm512_mul_ps(_mm512_set1_ps(-1.f / 6), s12)));
  y[1] = _mm512_fmadd_ps(sixth, _mm512_sub_ps(x[2], x[1]), _mm512_mul_ps(_mm512_set1_ps(1.f / 12), _mm512_sub_ps(x[3], x[4])));
  y[2] = _mm512_add_ps(_mm512_mul_ps(sixth, _mm512_sub_ps(s34, s12)), x[5]);
}

// ---- rows of 16 channels <-> channel vectors ---------------------------------------------------

/// P[i][x] (16 channels, i < rows, x < len) = src channel l, row y0 + i, column x0 + x for the 16
/// channel planes src [16][H][W] (0 outside the plane). P is [rows][ldp][16]; len <= ldp.
W4_TARGET void gather_rows(const float* src, int64_t H, int64_t W, int64_t y0, int64_t x0, int64_t len, int rows,
                           int64_t ldp, float* P) {
  const int64_t plane = H * W;
  for (int i = 0; i < rows; ++i) {
    float* p = P + (size_t)i * ldp * 16;  // [ldp][16]
    const int64_t y = y0 + i;
    if (y < 0 || y >= H) {
      std::memset(p, 0, sizeof(float) * 16 * (size_t)((len + 15) / 16 * 16));
      continue;
    }
    const float* row = src + y * W;  // channel 0's row y [W]; channel l's at row + l * plane
    for (int64_t xb = 0; xb < len; xb += 16) {
      const int64_t x = x0 + xb, lo = std::max<int64_t>(0, -x), hi = std::min<int64_t>(16, W - x);
      __m512 r[16];
      if (hi <= lo) {
        for (int j = 0; j < 16; ++j) _mm512_storeu_ps(p + (xb + j) * 16, _mm512_setzero_ps());
        continue;
      }
      const __mmask16 mk = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
      if (lo > 0) {  // left padding: the valid columns start at the row's first element
        for (int l = 0; l < 16; ++l) r[l] = _mm512_maskz_expandloadu_ps(mk, row + l * plane);
      } else {
        for (int l = 0; l < 16; ++l) r[l] = _mm512_maskz_loadu_ps(mk, row + l * plane + x);
      }
      simd::transpose16(r);
      for (int j = 0; j < 16; ++j) _mm512_storeu_ps(p + (xb + j) * 16, r[j]);
    }
  }
}

/// dst channel l, row y0 + r, columns x0 .. x0 + len (=|+=) Q[r][x] (16 channels) for the rows
/// inside the plane; dst [16][H][W]. Q is [4][ldq][16].
W4_TARGET void scatter_rows(const float* Q, int64_t ldq, int64_t H, int64_t W, int64_t y0, int64_t x0, int64_t len,
                            bool add, float* dst) {
  const int64_t plane = H * W;
  for (int r = 0; r < 4 && y0 + r < H; ++r) {
    const float* q = Q + (size_t)r * ldq * 16;  // [ldq][16]
    float* row = dst + (y0 + r) * W + x0;       // channel 0's columns x0 .. [len]
    for (int64_t xb = 0; xb < len; xb += 16) {
      const int64_t w = std::min<int64_t>(16, len - xb);
      const __mmask16 mk = (__mmask16)((1u << w) - 1);
      __m512 v[16];
      for (int j = 0; j < 16; ++j) v[j] = _mm512_loadu_ps(q + (xb + j) * 16);
      simd::transpose16(v);
      for (int l = 0; l < 16; ++l) {
        float* o = row + l * plane + xb;
        _mm512_mask_storeu_ps(o, mk, add ? _mm512_add_ps(v[l], _mm512_maskz_loadu_ps(mk, o)) : v[l]);
      }
    }
  }
}

// ---- the 2-D transforms of one chunk -----------------------------------------------------------

/// V [36][ldv][Ci] rows k .. k+tc = B^T d B for tiles t0 .. t0+tc of in [N, Ci, IH, IW].
W4_TARGET void transform_input(const W4Geo& wg, const float* in, const std::vector<Segment>& segs, int64_t ldv, float* V,
                               float* P) {
  const int64_t ldp = wg.row_len(), step = ldv * wg.Ci;  // floats between V[xi] and V[xi + 1]
  for (int64_t c0 = 0; c0 < wg.Ci; c0 += 16) {
    for (const Segment& sg : segs) {
      const float* src = in + (sg.n * wg.Ci + c0) * wg.IH * wg.IW;  // channels c0 .. c0+16 [16][IH][IW]
      gather_rows(src, wg.IH, wg.IW, 4 * sg.th - wg.ph, 4 * sg.tw0 - wg.pw, 4 * sg.cnt + 2, 6, ldp, P);
      for (int64_t t = 0; t < sg.cnt; ++t) {
        const float* p = P + 4 * t * 16;  // the tile's element (i, j) at p + (i ldp + j) 16
        __m512 d[6][6], col[6], y[6];
        for (int j = 0; j < 6; ++j) {  // B^T d, one column at a time
          for (int i = 0; i < 6; ++i) col[i] = _mm512_loadu_ps(p + (i * ldp + j) * 16);
          bt6(col, y);
          for (int i = 0; i < 6; ++i) d[i][j] = y[i];
        }
        float* v = V + (sg.k + t) * wg.Ci + c0;  // V[xi][k + t][c0 ..] at v + xi * step
        for (int i = 0; i < 6; ++i) {            // (B^T d) B, one row at a time
          bt6(d[i], y);
          for (int j = 0; j < 6; ++j) _mm512_storeu_ps(v + (i * 6 + j) * step, y[j]);
        }
      }
    }
  }
}

/// out (=|+=) A^T M A (+ bias) for the segments' tiles and output channels ob .. ob+nb, from M
/// [36][ldm][ldc] holding those channels in its first nb columns; parts of tiles outside out
/// [N, Co, OH, OW] are dropped.
W4_TARGET void transform_output(const W4Geo& wg, const float* M, int64_t ldc, int64_t ob, int64_t nb, const float* bias,
                                const std::vector<Segment>& segs, int64_t ldm, bool add, float* out, float* Q) {
  const int64_t ldq = wg.row_len(), step = ldm * ldc;
  for (int64_t o0 = ob; o0 < ob + nb; o0 += 16) {
    const __m512 b = bias ? _mm512_loadu_ps(bias + o0) : _mm512_setzero_ps();
    for (const Segment& sg : segs) {
      for (int64_t t = 0; t < sg.cnt; ++t) {
        const float* m = M + (sg.k + t) * ldc + (o0 - ob);  // M[xi][k + t][o0 - ob ..] at m + xi * step
        __m512 u[4][6], col[6], y[4];
        for (int j = 0; j < 6; ++j) {  // A^T m, one column at a time
          for (int i = 0; i < 6; ++i) col[i] = _mm512_loadu_ps(m + (i * 6 + j) * step);
          at4(col, y);
          for (int r = 0; r < 4; ++r) u[r][j] = y[r];
        }
        float* q = Q + 4 * t * 16;  // output (r, j) of the tile at q + (r ldq + j) 16
        for (int r = 0; r < 4; ++r) {
          at4(u[r], y);
          for (int j = 0; j < 4; ++j) _mm512_storeu_ps(q + (r * ldq + j) * 16, _mm512_add_ps(y[j], b));
        }
      }
      const int64_t x0 = 4 * sg.tw0;
      float* dst = out + (sg.n * wg.Co + o0) * wg.OH * wg.OW;  // channels o0 .. o0+16 [16][OH][OW]
      scatter_rows(Q, ldq, wg.OH, wg.OW, 4 * sg.th, x0, std::min(4 * sg.cnt, wg.OW - x0), add, dst);
    }
  }
}

/// dM [36][ldm][Co] rows k .. k+tc = A e A^T for tiles t0 .. t0+tc, e being a tile's 4x4 block of
/// dy [N, Co, OH, OW] (zeros outside dy).
W4_TARGET void transform_dy(const W4Geo& wg, const float* dy, const std::vector<Segment>& segs, int64_t ldm, float* dM,
                            float* P) {
  const int64_t ldp = wg.row_len(), step = ldm * wg.Co;
  for (int64_t o0 = 0; o0 < wg.Co; o0 += 16) {
    for (const Segment& sg : segs) {
      const float* src = dy + (sg.n * wg.Co + o0) * wg.OH * wg.OW;  // [16][OH][OW]
      gather_rows(src, wg.OH, wg.OW, 4 * sg.th, 4 * sg.tw0, 4 * sg.cnt, 4, ldp, P);
      for (int64_t t = 0; t < sg.cnt; ++t) {
        const float* p = P + 4 * t * 16;
        __m512 e[6][4], col[4], y[6];
        for (int j = 0; j < 4; ++j) {  // A e, one column at a time
          for (int i = 0; i < 4; ++i) col[i] = _mm512_loadu_ps(p + (i * ldp + j) * 16);
          a6(col, y);
          for (int i = 0; i < 6; ++i) e[i][j] = y[i];
        }
        float* m = dM + (sg.k + t) * wg.Co + o0;
        for (int i = 0; i < 6; ++i) {  // (A e) A^T, one row at a time
          a6(e[i], y);
          for (int j = 0; j < 6; ++j) _mm512_storeu_ps(m + (i * 6 + j) * step, y[j]);
        }
      }
    }
  }
}

/// Lane offsets 0, s, 2 s, .. 15 s (gathers and scatters of 16 output channels s floats apart).
W4_TARGET W4_INLINE __m512i lane_offsets(int64_t s) {
  return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                            _mm512_set1_epi32((int)s));
}

/// p[idx[l]] for the 16 lanes (the masked form: the plain gather's undefined start value trips
/// GCC 12's -Wmaybe-uninitialized).
W4_TARGET W4_INLINE __m512 gather16(__m512i idx, const float* p) {
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), (__mmask16)0xffff, idx, p, 4);
}

/// U [36][Ci][ldu] columns 0 .. nb = G g G^T for the filters of input channel ci and output channels
/// ob .. ob+nb; flip: the data
/// gradient's filters g'[ci][co] = rot180(w[ci][co]) of w [Ci, Co, 3, 3] (the forward's w is
/// [Co, Ci, 3, 3]). 16 output channels per vector, their taps gathered.
W4_TARGET void transform_weights_row(const W4Geo& wg, const float* w, bool flip, int64_t ob, int64_t nb, int64_t ldu,
                                     int64_t ci, float* U) {
  const __m512i idx = lane_offsets(flip ? 9 : wg.Ci * 9);  // taps of output channels o0 + l
  const int64_t step = wg.Ci * ldu;
  for (int64_t o0 = ob; o0 < ob + nb; o0 += 16) {
    const float* f = flip ? w + (ci * wg.Co + o0) * 9 : w + (o0 * wg.Ci + ci) * 9;  // output channel o0's 3x3 taps
    __m512 g[3][3], t[6][3], col[3], y[6], row[3];
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) g[i][j] = gather16(idx, f + (flip ? 8 - 3 * i - j : 3 * i + j));
    for (int j = 0; j < 3; ++j) {  // G g
      for (int i = 0; i < 3; ++i) col[i] = g[i][j];
      g6(col, y);
      for (int i = 0; i < 6; ++i) t[i][j] = y[i];
    }
    float* u = U + ci * ldu + (o0 - ob);  // U[xi][ci][o0 - ob ..] at u + xi * step
    for (int i = 0; i < 6; ++i) {          // (G g) G^T
      for (int j = 0; j < 3; ++j) row[j] = t[i][j];
      g6(row, y);
      for (int j = 0; j < 6; ++j) _mm512_storeu_ps(u + (i * 6 + j) * step, y[j]);
    }
  }
}

/// dw [Co, Ci, 3, 3] (=|+=) G^T dU G for input channel ci and output channels ob .. ob+nb, dU
/// [36][Ci][ldu] holding those channels in its first nb columns; 16 output channels per vector,
/// their taps scattered.
W4_TARGET void transform_weight_grad_row(const W4Geo& wg, const float* dU, int64_t ldu, int64_t ob, int64_t nb, bool add,
                                         int64_t ci, float* dw) {
  const __m512i idx = lane_offsets(wg.Ci * 9);
  const int64_t step = wg.Ci * ldu;
  for (int64_t o0 = ob; o0 < ob + nb; o0 += 16) {
    const float* u = dU + ci * ldu + (o0 - ob);  // dU[xi][ci][o0 - ob ..] at u + xi * step
    __m512 t[3][6], col[6], y[3];
    for (int j = 0; j < 6; ++j) {  // G^T dU
      for (int i = 0; i < 6; ++i) col[i] = _mm512_loadu_ps(u + (i * 6 + j) * step);
      gt3(col, y);
      for (int i = 0; i < 3; ++i) t[i][j] = y[i];
    }
    float* d = dw + (o0 * wg.Ci + ci) * 9;  // tap (i, k) of output channel o0 + l at d + l Ci 9 + 3 i + k
    for (int i = 0; i < 3; ++i) {           // (G^T dU) G
      gt3(t[i], y);
      for (int k = 0; k < 3; ++k) {
        float* dk = d + 3 * i + k;
        _mm512_i32scatter_ps(dk, idx, add ? _mm512_add_ps(y[k], gather16(idx, dk)) : y[k], 4);
      }
    }
  }
}

// ---- the passes --------------------------------------------------------------------------------

/// out [N, Co, OH, OW] (=|+=) conv3x3(in [N, Ci, IH, IW], w) (+ bias).
void winograd4(const OpCtx& ctx, const W4Geo& wg, const float* in, const float* w, bool flip, const float* bias, bool add,
               float* out) {
  const int64_t T = wg.tiles(), Tc = wg.chunk(), chunks = wg.chunks();
  // sizes checked here: an exception must not leave the OpenMP regions below
  const int co = bint(wg.Co, "channels"), ci = bint(wg.Ci, "channels");
  bint(Tc * 36, "tiles");
  std::vector<float> fallback;
  float* ws;
  if (wg.blocked()) {  // one chunk: its input transform once, then blocks of output channels over the threads
    const size_t shared = wg.blocked_shared(), per = wg.blocked_per_thread();
    const int nt = carve(ctx, wg.blocked_threads(), {shared, per}, &fallback, &ws);
    float* V = ws;                    // [36][T][Ci]
    float* P = V + 36 * Tc * wg.Ci;   // row buffer [6][row_len][16]
    const std::vector<Segment> segs = segments(wg, 0, T);
    transform_input(wg, in, segs, Tc, V, P);
    constexpr int64_t kB = W4Geo::kBlock;
    omp_for(nt, wg.blocks(), [&](int64_t b) {
      const int64_t ob = b * kB, nb = std::min(kB, wg.Co - ob);
      float* U = ws + shared + (size_t)omp_thread() * per;  // [36][Ci][kB]
      float* M = U + 36 * wg.Ci * kB;                        // [36][T][kB]
      float* Q = M + 36 * Tc * kB;                           // row buffer [4][row_len][16]
      for (int64_t c = 0; c < wg.Ci; ++c) transform_weights_row(wg, w, flip, ob, nb, kB, c, U);
      for (int xi = 0; xi < 36; ++xi)  // M[xi] [T, nb] = V[xi] [T, Ci] . U[xi] [Ci, nb]
        gemm_strided_a((int)T, (int)nb, ci, V + (size_t)xi * Tc * ci, ci, 1, U + (size_t)xi * ci * kB, kB,
                       M + (size_t)xi * Tc * kB, kB, false);
      transform_output(wg, M, kB, ob, nb, bias, segs, Tc, add, out, Q);
    });
    return;
  }
  const size_t per = wg.data_per_thread(), uw = wg.weights();
  const int nt = carve(ctx, wg.threads(), {uw, per}, &fallback, &ws);
  float* U = ws;  // [36][Ci][Co]
  omp_for(nt, wg.Ci, [&](int64_t c) { transform_weights_row(wg, w, flip, 0, wg.Co, wg.Co, c, U); });
  omp_for(nt, chunks, [&](int64_t ch) {
    const int64_t t0 = ch * Tc, tc = std::min(Tc, T - t0);
    float* V = ws + uw + (size_t)omp_thread() * per;  // [36][Tc][Ci]
    float* M = V + 36 * Tc * wg.Ci;                   // [36][Tc][Co]
    float* P = M + 36 * Tc * wg.Co;                   // row buffer [6][row_len][16]
    const std::vector<Segment> segs = segments(wg, t0, tc);
    transform_input(wg, in, segs, Tc, V, P);
    for (int xi = 0; xi < 36; ++xi)  // M[xi] [tc, Co] = V[xi] [tc, Ci] . U[xi] [Ci, Co]
      gemm_strided_a((int)tc, co, ci, V + (size_t)xi * Tc * ci, ci, 1, U + (size_t)xi * ci * co, co,
                     M + (size_t)xi * Tc * co, co, false);
    transform_output(wg, M, wg.Co, 0, wg.Co, bias, segs, Tc, add, out, P);
  });
}

/// dw (=|+=) the weight gradient: per chunk, dU[xi] [Ci, Co] += V[xi]^T [Ci, tc] . dM[xi] [tc, Co],
/// each thread into its own dU, then the threads' sums added and G^T dU G.
void winograd4_weight_grad(const OpCtx& ctx, const W4Geo& wg, const float* x, const float* dy, bool add, float* dw) {
  const int64_t T = wg.tiles(), Tc = wg.chunk(), chunks = wg.chunks();
  const size_t per = wg.weight_per_thread(), uw = wg.weights(), shared = wg.weight_shared();
  std::vector<float> fallback;
  float* ws;
  const int nt = carve(ctx, wg.weight_threads(), {shared, per}, &fallback, &ws);
  const int co = bint(wg.Co, "channels"), ci = bint(wg.Ci, "channels");
  bint(Tc * 36, "tiles");
  if (wg.blocked()) {  // one chunk: its transforms once, then blocks of output channels over the threads
    float* V = ws;                    // [36][T][Ci]
    float* dM = V + 36 * Tc * wg.Ci;  // [36][T][Co]
    float* P = dM + 36 * Tc * wg.Co;  // row buffer [6][row_len][16]
    const std::vector<Segment> segs = segments(wg, 0, T);
    transform_input(wg, x, segs, Tc, V, P);
    transform_dy(wg, dy, segs, Tc, dM, P);
    omp_for(nt, wg.blocks(), [&](int64_t b) {
      const int64_t ob = b * W4Geo::kBlock, nb = std::min(W4Geo::kBlock, wg.Co - ob);
      float* dU = ws + shared + (size_t)omp_thread() * per;  // [36][Ci][kBlock]
      for (int xi = 0; xi < 36; ++xi)  // dU[xi] [Ci, nb] = V[xi]^T [Ci, T] . dM[xi][.][ob ..] [T, nb]
        gemm_strided_a(ci, (int)nb, (int)T, V + (size_t)xi * Tc * ci, 1, ci, dM + (size_t)xi * Tc * co + ob, co,
                       dU + (size_t)xi * ci * W4Geo::kBlock, (int)W4Geo::kBlock, false);
      for (int64_t c = 0; c < wg.Ci; ++c) transform_weight_grad_row(wg, dU, W4Geo::kBlock, ob, nb, add, c, dw);
    });
    return;
  }
  auto body = [&](int me, int team) {
    float* V = ws + (size_t)me * per;  // [36][Tc][Ci]
    float* dM = V + 36 * Tc * wg.Ci;   // [36][Tc][Co]
    float* P = dM + 36 * Tc * wg.Co;   // row buffer [6][row_len][16]
    float* dU = P + wg.rows_floats();  // [36][Ci][Co]
    bool first = true;
    for (int64_t ch = me; ch < chunks; ch += team) {
      const int64_t t0 = ch * Tc, tc = std::min(Tc, T - t0);
      const std::vector<Segment> segs = segments(wg, t0, tc);
      transform_input(wg, x, segs, Tc, V, P);
      transform_dy(wg, dy, segs, Tc, dM, P);
      for (int xi = 0; xi < 36; ++xi)  // A(i, p) = V[xi][p][i]: rows 1 apart, p Ci apart
        gemm_strided_a(ci, co, (int)tc, V + (size_t)xi * Tc * ci, 1, ci, dM + (size_t)xi * Tc * co, co,
                       dU + (size_t)xi * ci * co, co, !first);
      first = false;
    }
    if (first) std::fill(dU, dU + uw, 0.f);  // a thread without chunks
  };
  if (nt <= 1) {
    body(0, 1);
  } else {
#pragma omp parallel num_threads(nt)
    body(omp_thread(), omp_team());
  }
  float* dU0 = ws + wg.data_per_thread();  // thread 0's dU; the others are added into it
  for (int t = 1; t < nt; ++t) {
    const float* dUt = ws + (size_t)t * per + wg.data_per_thread();
    omp_for(nt, (int64_t)(uw + 4095) / 4096, [&](int64_t b) {
      const size_t i1 = std::min(uw, (size_t)(b + 1) * 4096);
      for (size_t i = (size_t)b * 4096; i < i1; ++i) dU0[i] += dUt[i];
    });
  }
  omp_for(nt, wg.Ci, [&](int64_t c) { transform_weight_grad_row(wg, dU0, wg.Co, 0, wg.Co, add, c, dw); });
}

}  // namespace

bool winograd4_supported(const Geo& g, WinogradPass pass) {
  return winograd_supported(g, pass) && g.C % 16 == 0 && g.O % 16 == 0 && simd::use_avx512();
}

size_t winograd4_workspace_bytes(const Geo& g, bool backward) {
  if (g.N == 0) return 0;
  size_t floats = 0;
  const W4Geo f = forward_geo(g), b = backward_geo(g);
  auto data = [](const W4Geo& w) {
    return w.blocked() ? w.blocked_shared() + w.blocked_per_thread() * w.blocked_threads()
                       : w.weights() + w.data_per_thread() * w.threads();
  };
  if (!backward && use_winograd4(g, kWinogradForward)) floats = data(f);
  if (backward && use_winograd4(g, kWinogradData)) floats = std::max(floats, data(b));
  if (backward && use_winograd4(g, kWinogradWeight)) {
    const W4Geo w = weight_geo(g);
    floats = std::max(floats, w.weight_shared() + w.weight_per_thread() * w.weight_threads());
  }
  return floats * sizeof(float);
}

void conv_winograd4_forward(const OpCtx& ctx, const Geo& g, const float* x, const float* w, const float* b, float* y,
                            OpReq req) {
  if (req == OpReq::kNullOp || g.N == 0) return;
  winograd4(ctx, forward_geo(g), x, w, false, b, req == OpReq::kAddTo, y);
}

void conv_winograd4_backward_data(const OpCtx& ctx, const Geo& g, const float* dy, const float* w, float* dx, OpReq req) {
  if (req == OpReq::kNullOp || g.N == 0) return;
  winograd4(ctx, backward_geo(g), dy, w, true, nullptr, req == OpReq::kAddTo, dx);
}

void conv_winograd4_backward_weight(const OpCtx& ctx, const Geo& g, const float* dy, const float* x, float* dw,
                                    OpReq req) {
  if (req == OpReq::kNullOp) return;
  if (g.N == 0) {
    if (req == OpReq::kWriteTo) std::fill(dw, dw + g.O * g.C * 9, 0.f);
    return;
  }
  winograd4_weight_grad(ctx, weight_geo(g), x, dy, req == OpReq::kAddTo, dw);
}

}  // namespace conv
}  // namespace kiln
