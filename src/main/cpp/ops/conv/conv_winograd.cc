// Winograd F(2x2, 3x3) convolution for 3x3 layers with stride 1, dilation 1 and one group (float32):
// the forward and the data gradient (a 3x3 convolution of dy with the flipped, transposed weights).
//
// Each 2x2 output tile needs a 4x4 input tile d; with the transforms
//   U = G g G^T (weights, 4x4), V = B^T d B (input, 4x4), Y = A^T (sum_c U .* V) A (output, 2x2)
// the 36 multiplies per tile and channel pair of a direct 3x3 convolution become 16, and the sum over
// input channels becomes 16 GEMMs: M[xi] [Co, T] = U[xi] [Co, Ci] . V[xi] [Ci, T] for the 16
// positions xi of the 4x4 tile and T tiles. Tiles are processed in chunks sized to keep V and M of
// one chunk near the caches; chunks are spread over OpenMP threads (single-threaded GEMMs inside).
#include <algorithm>
#include <cstring>
#include <vector>

#include "conv_winograd.h"
#include "conv_winograd_common.h"

namespace kiln {
namespace conv {

namespace {

using wino::carve;
using wino::PassGeo;
using wino::Scratch;
using wino::Segment;

/// An F(2x2) pass (PassGeo) with its 2x2 tiles and chunks.
struct WGeo : PassGeo {
  int64_t tiles_h() const { return (OH + 1) / 2; }
  int64_t tiles_w() const { return (OW + 1) / 2; }
  int64_t tiles() const { return N * tiles_h() * tiles_w(); }
  /// Tiles per chunk: V [16, Ci, Tc] and M [16, Co, Tc] together about 4 MB, whole 16-tile blocks.
  int64_t chunk() const {
    const int64_t t = std::max<int64_t>(16, (int64_t(1) << 16) / std::max<int64_t>(1, Ci + Co) / 16 * 16);
    return std::min(t, std::max<int64_t>(1, tiles()));
  }
  int64_t chunks() const { return (tiles() + chunk() - 1) / chunk(); }
  /// Threads a pass plans for: one chunk each at least.
  int threads() const { return (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks())); }
  size_t per_thread() const { return (size_t)(16 * (Ci + Co) * chunk()); }
  size_t weights() const { return (size_t)(16 * Co * Ci); }
};

/// Forward and data gradient: U [16, Co, Ci] shared, V [16, Ci, Tc] and M [16, Co, Tc] per thread.
Scratch data_scratch(const WGeo& wg) { return {wg.weights(), wg.per_thread()}; }
/// Weight gradient: V, dM [16, Co, Tc] and a private dU [16, Co, Ci] per thread.
Scratch weight_scratch(const WGeo& wg) { return {0, wg.per_thread() + wg.weights()}; }

WGeo forward_geo(const Geo& g) { return {PassGeo::forward(g)}; }
WGeo backward_geo(const Geo& g) { return {PassGeo::backward(g)}; }

/// U [16, Co, Ci] = G g G^T of each 3x3 filter; flip: the data gradient's filters, g'[c][o] = rot180(w[o][c]).
void transform_weights(const WGeo& wg, const float* w, bool flip, float* U, int nt) {
  // w [O, C, 3, 3] with (O, C) = (Co, Ci) forward, (Ci, Co) for the data gradient
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t co = 0; co < wg.Co; ++co) {
    for (int64_t ci = 0; ci < wg.Ci; ++ci) {
      const float* f = flip ? w + (ci * wg.Co + co) * 9 : w + (co * wg.Ci + ci) * 9;  // [3, 3]
      float g[3][3];
      for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) g[i][j] = flip ? f[(2 - i) * 3 + (2 - j)] : f[i * 3 + j];
      float t[4][3];  // G g, G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
      for (int j = 0; j < 3; ++j) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; ++i) {
        const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; ++j) U[((size_t)(i * 4 + j) * wg.Co + co) * wg.Ci + ci] = u[j];
      }
    }
  }
}

/// Calls f(segment) for the tile rows that tiles t0 .. t0+tc cover, in order.
template <typename F>
void for_segments(const WGeo& wg, int64_t t0, int64_t tc, F f) {
  wino::for_segments(wg.tiles_h(), wg.tiles_w(), t0, tc, f);
}

/// V [16, Ci, Tc] = B^T d B for tiles t0 .. t0+tc of in [N, Ci, IH, IW] (zeros outside the image).
/// Per tile row: the four input rows are copied with their padding into P [4, L], B^T is applied
/// down the rows (R [4, L], contiguous, vectorized), then B along each tile's four columns.
void transform_input(const WGeo& wg, const float* in, int64_t t0, int64_t tc, int64_t ld, float* V) {
  const int64_t L_max = 2 * wg.tiles_w() + 2, step = wg.Ci * ld;
  std::vector<float> buf(8 * (size_t)L_max);
  float* P = buf.data();           // [4, L]: padded input rows of one tile row
  float* R = P + 4 * L_max;        // [4, L]: B^T applied down the rows
  for (int64_t c = 0; c < wg.Ci; ++c) {
    for_segments(wg, t0, tc, [&](const Segment& sg) {
      const float* img = in + (sg.n * wg.Ci + c) * wg.IH * wg.IW;  // [IH, IW]
      const int64_t y0 = 2 * sg.th - wg.ph, x0 = 2 * sg.tw0 - wg.pw, L = 2 * sg.cnt + 2;
      const int64_t lo = std::max<int64_t>(0, -x0), hi = std::min<int64_t>(L, wg.IW - x0);  // valid columns
      for (int i = 0; i < 4; ++i) {
        float* p = P + i * L_max;  // [L]
        const int64_t y = y0 + i;
        if (y < 0 || y >= wg.IH || hi <= lo) {
          std::fill(p, p + L, 0.f);
          continue;
        }
        std::fill(p, p + lo, 0.f);
        std::memcpy(p + lo, img + y * wg.IW + x0 + lo, sizeof(float) * (size_t)(hi - lo));
        std::fill(p + hi, p + L, 0.f);
      }
      const float *p0 = P, *p1 = P + L_max, *p2 = P + 2 * L_max, *p3 = P + 3 * L_max;
      float *r0 = R, *r1 = R + L_max, *r2 = R + 2 * L_max, *r3 = R + 3 * L_max;
      for (int64_t x = 0; x < L; ++x) {  // B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
        r0[x] = p0[x] - p2[x];
        r1[x] = p1[x] + p2[x];
        r2[x] = p2[x] - p1[x];
        r3[x] = p1[x] - p3[x];
      }
      for (int i = 0; i < 4; ++i) {
        const float* r = R + i * L_max;           // [L]
        float* v = V + c * ld + sg.k + 4 * i * step;  // V[4i + j][c][k ..] at v + j * step
        for (int64_t t = 0; t < sg.cnt; ++t) {    // B along the tile's columns 2t .. 2t+3
          v[t] = r[2 * t] - r[2 * t + 2];
          v[step + t] = r[2 * t + 1] + r[2 * t + 2];
          v[2 * step + t] = r[2 * t + 2] - r[2 * t + 1];
          v[3 * step + t] = r[2 * t + 1] - r[2 * t + 3];
        }
      }
    });
  }
}

/// out (=|+=) A^T M A (+ bias) for tiles t0 .. t0+tc, from M [16, Co, Tc]; the tiles' parts outside
/// out are dropped. Per tile row the 2x2 results are computed for all its tiles at once (contiguous
/// reads of M, vectorized), then interleaved into the two output rows.
void transform_output(const WGeo& wg, const float* M, const float* bias, int64_t t0, int64_t tc, int64_t ld, bool add,
                      float* out) {
  const int64_t step = wg.Co * ld, T_max = wg.tiles_w();
  std::vector<float> buf(4 * (size_t)T_max);
  for (int64_t o = 0; o < wg.Co; ++o) {
    const float b = bias ? bias[o] : 0.f;
    for_segments(wg, t0, tc, [&](const Segment& sg) {
      const float* m = M + o * ld + sg.k;  // M[xi][o][k ..] at m + xi * step
      float *e0 = buf.data(), *o0 = e0 + T_max, *e1 = o0 + T_max, *o1 = e1 + T_max;  // [cnt] each
      for (int64_t t = 0; t < sg.cnt; ++t) {  // A^T = [1 1 1 0; 0 1 -1 -1]
        float s0[4], s1[4];
        for (int j = 0; j < 4; ++j) {
          const float m0 = m[j * step + t], m1 = m[(4 + j) * step + t], m2 = m[(8 + j) * step + t],
                      m3 = m[(12 + j) * step + t];
          s0[j] = m0 + m1 + m2;
          s1[j] = m1 - m2 - m3;
        }
        e0[t] = s0[0] + s0[1] + s0[2] + b;
        o0[t] = s0[1] - s0[2] - s0[3] + b;
        e1[t] = s1[0] + s1[1] + s1[2] + b;
        o1[t] = s1[1] - s1[2] - s1[3] + b;
      }
      float* img = out + (sg.n * wg.Co + o) * wg.OH * wg.OW;  // [OH, OW]
      const int64_t x0 = 2 * sg.tw0, w = std::min<int64_t>(2 * sg.cnt, wg.OW - x0);
      for (int r = 0; r < 2; ++r) {
        const int64_t y = 2 * sg.th + r;
        if (y >= wg.OH) break;
        const float *ev = r == 0 ? e0 : e1, *od = r == 0 ? o0 : o1;
        float* row = img + y * wg.OW + x0;  // [w]
        if (add) {
          for (int64_t x = 0; x < w; ++x) row[x] += (x & 1) ? od[x >> 1] : ev[x >> 1];
        } else {
          for (int64_t x = 0; x < w; ++x) row[x] = (x & 1) ? od[x >> 1] : ev[x >> 1];
        }
      }
    });
  }
}

/// The Winograd pass: out [N, Co, OH, OW] (=|+=) conv3x3(in [N, Ci, IH, IW], w) (+ bias).
void winograd(const OpCtx& ctx, const WGeo& wg, const float* in, const float* w, bool flip, const float* bias, bool add,
              float* out) {
  const int64_t T = wg.tiles(), Tc = wg.chunk(), chunks = wg.chunks();
  const size_t per = wg.per_thread(), uw = wg.weights();
  std::vector<float> fallback;
  float* ws;
  const int nt = carve(ctx, wg.threads(), data_scratch(wg), &fallback, &ws);
  float* U = ws;  // [16, Co, Ci]
  transform_weights(wg, w, flip, U, nt);
  // sizes checked here: an exception must not leave the OpenMP region below
  const int co = bint(wg.Co, "channels"), ci = bint(wg.Ci, "channels"), ld = bint(Tc, "tiles");
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t t0 = ch * Tc, tc = std::min(Tc, T - t0);
    float* V = ws + uw + (size_t)omp_thread() * per;  // [16, Ci, Tc]
    float* M = V + 16 * wg.Ci * Tc;                    // [16, Co, Tc]
    transform_input(wg, in, t0, tc, Tc, V);
    const int n = (int)tc;  // tc <= Tc
    for (int xi = 0; xi < 16; ++xi) {
      const float* Ux = U + (size_t)xi * wg.Co * wg.Ci;  // [Co, Ci]
      const float* Vx = V + (size_t)xi * wg.Ci * Tc;     // [Ci, tc] of [Ci, Tc]
      float* Mx = M + (size_t)xi * wg.Co * Tc;           // [Co, tc] of [Co, Tc]
      // Kiln's strided GEMM (core/blas.cc) where the CPU has AVX-512: OpenBLAS packs U and V
      // again for each of the 16 products (see use_winograd for the times)
      if (!gemm_strided_a(co, n, ci, Ux, ci, 1, Vx, ld, Mx, ld, false))
        cblas_sgemm(KilnCblasRowMajor, KilnCblasNoTrans, KilnCblasNoTrans, co, n, ci, 1.f, Ux, ci, Vx, ld, 0.f, Mx, ld);
    }
    transform_output(wg, M, bias, t0, tc, Tc, add, out);
  }
}

/// dM [16, Co, Tc] = A e A^T for tiles t0 .. t0+tc of the output gradient dy [N, Co, OH, OW], e being
/// a tile's 2x2 block (zeros outside dy). A = [1 0; 1 1; 1 -1; 0 -1] is the transpose of the forward's A^T.
void transform_dy(const WGeo& wg, const float* dy, int64_t t0, int64_t tc, int64_t ld, float* dM) {
  const int64_t step = wg.Co * ld;
  for (int64_t o = 0; o < wg.Co; ++o) {
    for_segments(wg, t0, tc, [&](const Segment& sg) {
      const float* img = dy + (sg.n * wg.Co + o) * wg.OH * wg.OW;  // [OH, OW]
      float* m = dM + o * ld + sg.k;                                // dM[xi][o][k ..] at m + xi * step
      const int64_t y0 = 2 * sg.th;
      const float* r0 = img + y0 * wg.OW;                                  // [OW]
      const float* r1 = y0 + 1 < wg.OH ? img + (y0 + 1) * wg.OW : nullptr;  // [OW] or past the bottom
      for (int64_t t = 0; t < sg.cnt; ++t) {
        const int64_t x = 2 * (sg.tw0 + t);
        const bool right = x + 1 < wg.OW;
        const float e00 = r0[x], e01 = right ? r0[x + 1] : 0.f;
        const float e10 = r1 ? r1[x] : 0.f, e11 = r1 && right ? r1[x + 1] : 0.f;
        const float a[4][2] = {{e00, e01}, {e00 + e10, e01 + e11}, {e00 - e10, e01 - e11}, {-e10, -e11}};  // A e
        for (int i = 0; i < 4; ++i) {  // (A e) A^T
          m[(4 * i + 0) * step + t] = a[i][0];
          m[(4 * i + 1) * step + t] = a[i][0] + a[i][1];
          m[(4 * i + 2) * step + t] = a[i][0] - a[i][1];
          m[(4 * i + 3) * step + t] = -a[i][1];
        }
      }
    });
  }
}

/// dw [Co, Ci, 3, 3] (=|+=) G^T dU G, dU [16, Co, Ci] the gradient of the transformed weights.
void transform_weight_grad(const WGeo& wg, const float* dU, bool add, float* dw) {
  const size_t plane = (size_t)(wg.Co * wg.Ci);
  for (int64_t oc = 0; oc < wg.Co * wg.Ci; ++oc) {
    float u[4][4];
    for (int xi = 0; xi < 16; ++xi) u[xi / 4][xi % 4] = dU[xi * plane + oc];
    float t[3][4];  // G^T u, G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1]
    for (int j = 0; j < 4; ++j) {
      t[0][j] = u[0][j] + 0.5f * (u[1][j] + u[2][j]);
      t[1][j] = 0.5f * (u[1][j] - u[2][j]);
      t[2][j] = 0.5f * (u[1][j] + u[2][j]) + u[3][j];
    }
    float* d = dw + oc * 9;  // [3, 3]
    for (int i = 0; i < 3; ++i) {
      const float v[3] = {t[i][0] + 0.5f * (t[i][1] + t[i][2]), 0.5f * (t[i][1] - t[i][2]), 0.5f * (t[i][1] + t[i][2]) + t[i][3]};
      for (int k = 0; k < 3; ++k) d[i * 3 + k] = add ? d[i * 3 + k] + v[k] : v[k];
    }
  }
}

/// dw (=|+=) the weight gradient: dU[xi] = sum over tiles of dM[xi] . V[xi]^T (16 GEMMs per chunk
/// with the tiles as the inner dimension), summed over threads, then G^T dU G.
void winograd_weight_grad(const OpCtx& ctx, const WGeo& wg, const float* x, const float* dy, bool add, float* dw) {
  const int64_t T = wg.tiles(), Tc = wg.chunk(), chunks = wg.chunks();
  const size_t per = weight_scratch(wg).per, uw = wg.weights();
  std::vector<float> fallback;
  float* ws;
  const int nt = carve(ctx, wg.threads(), weight_scratch(wg), &fallback, &ws);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int me = omp_thread(), team = omp_team();
    float* V = ws + (size_t)me * per;   // [16, Ci, Tc]
    float* dM = V + 16 * wg.Ci * Tc;    // [16, Co, Tc]
    float* dU = dM + 16 * wg.Co * Tc;   // [16, Co, Ci]
    bool first = true;
    for (int64_t ch = me; ch < chunks; ch += team) {
      const int64_t t0 = ch * Tc, tc = std::min(Tc, T - t0);
      transform_input(wg, x, t0, tc, Tc, V);
      transform_dy(wg, dy, t0, tc, Tc, dM);
      for (int xi = 0; xi < 16; ++xi)
        cblas_sgemm(KilnCblasRowMajor, KilnCblasNoTrans, KilnCblasTrans, bint(wg.Co, "channels"), bint(wg.Ci, "channels"),
                    bint(tc, "tiles"), 1.f, dM + (size_t)xi * wg.Co * Tc, bint(Tc, "tiles"), V + (size_t)xi * wg.Ci * Tc,
                    bint(Tc, "tiles"), first ? 0.f : 1.f, dU + (size_t)xi * uw / 16, bint(wg.Ci, "channels"));
      first = false;
    }
    if (first) std::fill(dU, dU + uw, 0.f);  // a thread without chunks
  }
  float* dU0 = ws + wg.per_thread();  // thread 0's dU; add the others into it
  for (int t = 1; t < nt; ++t) {
    const float* dUt = ws + (size_t)t * per + wg.per_thread();
    for (size_t i = 0; i < uw; ++i) dU0[i] += dUt[i];
  }
  transform_weight_grad(wg, dU0, add, dw);
}

}  // namespace

bool winograd_supported(const Geo& g, WinogradPass pass) {
  const bool shape = g.G == 1 && g.D[0] == 1 && g.k[0] == 1 && g.k[1] == 3 && g.k[2] == 3 && g.s[1] == 1 && g.s[2] == 1 &&
                     g.d[1] == 1 && g.d[2] == 1 && g.C > 0 && g.O > 0 && g.Q[1] > 0 && g.Q[2] > 0;
  // the data gradient pads dy by 2 - pad, so it needs pad <= 2
  return shape && (pass != kWinogradData || (g.p[1] <= 2 && g.p[2] <= 2));
}

bool use_winograd4(const Geo& g, WinogradPass pass) {
  const int a = conv_algo();
  if (!winograd4_supported(g, pass)) return false;
  if (a == kConvWinograd4) return true;
  if (a != kConvAuto) return false;
  // Measured per pass (ResNet-18 CIFAR layers, batch 32, 1 thread with OpenBLAS at 1 thread too,
  // Zen 4, ms, im2col / F(2x2) / F(4x4); benchmarks/native/conv_layers.cc): 32x32 x 64 forward
  // 26.1 / 21.8 / 8.4, data grad 26.4 / 21.8 / 8.3, weight grad 29.5 / 42.4 / 8.5; 16x16 x 128
  // 23.9 / 17.2 / 7.3, 23.0 / 17.2 / 7.4, 27.8 / 27.0 / 7.9; 8x8 x 256 23.5 / 17.3 / 7.9,
  // 22.2 / 17.9 / 7.9, 26.8 / 20.7 / 8.3; 4x4 x 512 23.8 / 24.4 / 9.3, 23.8 / 22.9 / 9.6,
  // 27.0 / 21.3 / 9.7. Every pass wins where the 6x6 tiles do at most half the multiplies of a
  // direct convolution (36 per tile against 9 per output pixel): images of 3x3 and up except 5x5
  // (four tiles, mostly padding), which stay with F(2x2) or im2col.
  // Both Winograd kernels transform all weights on every call, which costs about as much as a
  // direct convolution of ~100 output pixels (4x4 x 512, 1 thread, F(4x4) / im2col forward: batch 1
  // 2.6 / 0.7 ms, batch 4 2.9 / 2.9, batch 8 4.6 / 5.9; 8x8 x 256 at batch 1 0.7 / 0.7): a batch of
  // fewer pixels stays on im2col.
  if (g.N * g.Q[1] * g.Q[2] < kWinogradMinPixels) return false;
  const int64_t tiles = ((g.Q[1] + 3) / 4) * ((g.Q[2] + 3) / 4);
  return 36 * tiles * 2 <= 9 * g.Q[1] * g.Q[2];
}

bool use_winograd(const Geo& g, WinogradPass pass) {
  const int a = conv_algo();
  if (!winograd_supported(g, pass) || use_winograd4(g, pass)) return false;
  if (a == kConvWinograd || a == kConvWinograd4) return true;
  if (a != kConvAuto || g.C < kWinogradMinChannels || g.O < kWinogradMinChannels) return false;
  if (g.N * g.Q[1] * g.Q[2] < kWinogradMinPixels) return false;  // see use_winograd4
  // Measured per pass (ResNet-18 CIFAR layers, batch 32, 1 thread, Zen 5, OpenBLAS's Cooperlake
  // kernels, ms: im2col / Winograd with OpenBLAS's GEMM / Winograd with Kiln's strided GEMM;
  // im2col's products run the strided GEMM too, conv_common.h):
  //   32x32 x 64 ch:  forward 14.6 / 15.3-16.3 / 12.9-13.5, data grad 16.1 / 15.5-15.9 / 13.3-14.4,
  //                   weight grad 18.3 / 34.0
  //   16x16 x 128:    forward 15.0 / 12.1-12.8 / 10.3-10.6, data grad 14.1 / 12.0-13.1 / 10.6,
  //                   weight grad 17.3 / 21.0
  //    8x8  x 256:    forward 12.9 / 12.1-13.3 / 10.9, data grad 12.8 / 12.1-13.3 / 10.9-11.0,
  //                   weight grad 15.0 / 13.7
  //    4x4  x 512:    forward 14.2 / 21.1 / 20.7, data grad 13.2 / 21.4 / 20.7, weight grad 15.2 / 13.4
  // (with the Haswell kernels this machine kind's environment selects, Winograd with OpenBLAS
  // takes 18-21 ms on the first three). Forward and data gradient win while an image has many
  // tiles; the weight gradient (whose 16 GEMMs have only Co x Ci outputs) wins only on small images.
  const int64_t tiles = ((g.Q[1] + 1) / 2) * ((g.Q[2] + 1) / 2);
  return pass == kWinogradWeight ? tiles <= kWinogradAutoTiles : tiles >= kWinogradAutoTiles;
}

size_t winograd_workspace_bytes(const Geo& g, bool backward) {
  if (g.N == 0) return 0;
  size_t floats = 0;
  if (!backward && use_winograd(g, kWinogradForward)) floats = data_scratch(forward_geo(g)).floats(forward_geo(g).threads());
  if (backward && use_winograd(g, kWinogradData))
    floats = std::max(floats, data_scratch(backward_geo(g)).floats(backward_geo(g).threads()));
  if (backward && use_winograd(g, kWinogradWeight))
    floats = std::max(floats, weight_scratch(forward_geo(g)).floats(forward_geo(g).threads()));
  return floats * sizeof(float);
}

void conv_winograd_forward(const OpCtx& ctx, const Geo& g, const float* x, const float* w, const float* b, float* y,
                           OpReq req) {
  if (req == OpReq::kNullOp || g.N == 0) return;
  winograd(ctx, forward_geo(g), x, w, false, b, req == OpReq::kAddTo, y);
}

void conv_winograd_backward_data(const OpCtx& ctx, const Geo& g, const float* dy, const float* w, float* dx, OpReq req) {
  if (req == OpReq::kNullOp || g.N == 0) return;
  winograd(ctx, backward_geo(g), dy, w, true, nullptr, req == OpReq::kAddTo, dx);
}

void conv_winograd_backward_weight(const OpCtx& ctx, const Geo& g, const float* dy, const float* x, float* dw, OpReq req) {
  if (req == OpReq::kNullOp) return;
  if (g.N == 0) {
    if (req == OpReq::kWriteTo) std::fill(dw, dw + g.O * g.C * 9, 0.f);
    return;
  }
  winograd_weight_grad(ctx, forward_geo(g), x, dy, req == OpReq::kAddTo, dw);
}

}  // namespace conv
}  // namespace kiln
