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

#include "conv_winograd.h"

namespace kiln {
namespace conv {

namespace {

/// Geometry of one Winograd pass: in [N, Ci, IH, IW] -> out [N, Co, OH, OW], padding ph, pw.
struct WGeo {
  int64_t N, Ci, Co, IH, IW, OH, OW, ph, pw;
  int64_t tiles_h() const { return (OH + 1) / 2; }
  int64_t tiles_w() const { return (OW + 1) / 2; }
  int64_t tiles() const { return N * tiles_h() * tiles_w(); }
  /// Tiles per chunk: V [16, Ci, Tc] and M [16, Co, Tc] together about 4 MB, whole 16-tile blocks.
  int64_t chunk() const {
    const int64_t t = std::max<int64_t>(16, (int64_t(1) << 16) / std::max<int64_t>(1, Ci + Co) / 16 * 16);
    return std::min(t, std::max<int64_t>(1, tiles()));
  }
  size_t per_thread() const { return (size_t)(16 * (Ci + Co) * chunk()); }
  size_t weights() const { return (size_t)(16 * Co * Ci); }
};

/// The pass for the forward (data -> output) or the data gradient (dy -> dx).
WGeo forward_geo(const Geo& g) { return {g.N, g.C, g.O, g.D[1], g.D[2], g.Q[1], g.Q[2], g.p[1], g.p[2]}; }
WGeo backward_geo(const Geo& g) { return {g.N, g.O, g.C, g.Q[1], g.Q[2], g.D[1], g.D[2], 2 - g.p[1], 2 - g.p[2]}; }

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

/// V [16, Ci, Tc] = B^T d B for tiles t0 .. t0+tc of in [N, Ci, IH, IW] (zeros outside the image).
void transform_input(const WGeo& wg, const float* in, int64_t t0, int64_t tc, int64_t ld, float* V) {
  const int64_t th_n = wg.tiles_h(), tw_n = wg.tiles_w();
  for (int64_t c = 0; c < wg.Ci; ++c) {
    for (int64_t k = 0; k < tc; ++k) {
      const int64_t ti = t0 + k, n = ti / (th_n * tw_n), r = ti % (th_n * tw_n);
      const int64_t y0 = (r / tw_n) * 2 - wg.ph, x0 = (r % tw_n) * 2 - wg.pw;
      const float* src = in + (n * wg.Ci + c) * wg.IH * wg.IW;  // [IH, IW]
      float d[4][4];
      const bool inside = y0 >= 0 && x0 >= 0 && y0 + 4 <= wg.IH && x0 + 4 <= wg.IW;
      for (int i = 0; i < 4; ++i) {
        const int64_t y = y0 + i;
        const float* row = src + y * wg.IW;  // [IW]
        for (int j = 0; j < 4; ++j) {
          const int64_t x = x0 + j;
          d[i][j] = inside || (y >= 0 && y < wg.IH && x >= 0 && x < wg.IW) ? row[x] : 0.f;
        }
      }
      float t[4][4];  // B^T d, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
      for (int j = 0; j < 4; ++j) {
        t[0][j] = d[0][j] - d[2][j];
        t[1][j] = d[1][j] + d[2][j];
        t[2][j] = d[2][j] - d[1][j];
        t[3][j] = d[1][j] - d[3][j];
      }
      float* v = V + c * ld + k;  // V[xi] at v + xi * Ci * ld
      const int64_t step = wg.Ci * ld;
      for (int i = 0; i < 4; ++i) {
        v[(i * 4 + 0) * step] = t[i][0] - t[i][2];
        v[(i * 4 + 1) * step] = t[i][1] + t[i][2];
        v[(i * 4 + 2) * step] = t[i][2] - t[i][1];
        v[(i * 4 + 3) * step] = t[i][1] - t[i][3];
      }
    }
  }
}

/// out (=|+=) A^T M A (+ bias) for tiles t0 .. t0+tc, from M [16, Co, Tc]; the tiles' parts outside out are dropped.
void transform_output(const WGeo& wg, const float* M, const float* bias, int64_t t0, int64_t tc, int64_t ld, bool add,
                      float* out) {
  const int64_t th_n = wg.tiles_h(), tw_n = wg.tiles_w(), step = wg.Co * ld;
  for (int64_t o = 0; o < wg.Co; ++o) {
    const float b = bias ? bias[o] : 0.f;
    for (int64_t k = 0; k < tc; ++k) {
      const int64_t ti = t0 + k, n = ti / (th_n * tw_n), r = ti % (th_n * tw_n);
      const int64_t y0 = (r / tw_n) * 2, x0 = (r % tw_n) * 2;
      const float* m = M + o * ld + k;  // M[xi] at m + xi * Co * ld
      float s[2][4];                    // A^T m, A^T = [1 1 1 0; 0 1 -1 -1]
      for (int j = 0; j < 4; ++j) {
        const float m0 = m[(0 * 4 + j) * step], m1 = m[(1 * 4 + j) * step], m2 = m[(2 * 4 + j) * step],
                    m3 = m[(3 * 4 + j) * step];
        s[0][j] = m0 + m1 + m2;
        s[1][j] = m1 - m2 - m3;
      }
      float* dst = out + (n * wg.Co + o) * wg.OH * wg.OW;  // [OH, OW]
      for (int i = 0; i < 2 && y0 + i < wg.OH; ++i) {
        const float v[2] = {s[i][0] + s[i][1] + s[i][2] + b, s[i][1] - s[i][2] - s[i][3] + b};
        for (int j = 0; j < 2 && x0 + j < wg.OW; ++j) {
          float& y = dst[(y0 + i) * wg.OW + x0 + j];
          y = add ? y + v[j] : v[j];
        }
      }
    }
  }
}

/// The Winograd pass: out [N, Co, OH, OW] (=|+=) conv3x3(in [N, Ci, IH, IW], w) (+ bias).
void winograd(const OpCtx& ctx, const WGeo& wg, const float* in, const float* w, bool flip, const float* bias, bool add,
              float* out) {
  const int64_t T = wg.tiles(), Tc = wg.chunk(), chunks = (T + Tc - 1) / Tc;
  const size_t per = wg.per_thread(), uw = wg.weights();
  int nt = (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks));
  std::vector<float> fallback;
  float* ws;
  const size_t fit = ctx.workspace && ctx.workspace_bytes / sizeof(float) > uw
                         ? (ctx.workspace_bytes / sizeof(float) - uw) / per
                         : 0;
  if (fit >= 1) {
    ws = static_cast<float*>(ctx.workspace);
    nt = (int)std::min<size_t>((size_t)nt, fit);
  } else {
    fallback.resize(uw + per * (size_t)nt);
    ws = fallback.data();
  }
  float* U = ws;  // [16, Co, Ci]
  transform_weights(wg, w, flip, U, nt);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t t0 = ch * Tc, tc = std::min(Tc, T - t0);
    float* V = ws + uw + (size_t)omp_thread() * per;  // [16, Ci, Tc]
    float* M = V + 16 * wg.Ci * Tc;                    // [16, Co, Tc]
    transform_input(wg, in, t0, tc, Tc, V);
    for (int xi = 0; xi < 16; ++xi)
      cblas_sgemm(KilnCblasRowMajor, KilnCblasNoTrans, KilnCblasNoTrans, bint(wg.Co, "channels"), bint(tc, "tiles"),
                  bint(wg.Ci, "channels"), 1.f, U + (size_t)xi * wg.Co * wg.Ci, bint(wg.Ci, "channels"),
                  V + (size_t)xi * wg.Ci * Tc, bint(Tc, "tiles"), 0.f, M + (size_t)xi * wg.Co * Tc, bint(Tc, "tiles"));
    transform_output(wg, M, bias, t0, tc, Tc, add, out);
  }
}

}  // namespace

bool winograd_supported(const Geo& g, bool data_grad) {
  const bool shape = g.G == 1 && g.D[0] == 1 && g.k[0] == 1 && g.k[1] == 3 && g.k[2] == 3 && g.s[1] == 1 && g.s[2] == 1 &&
                     g.d[1] == 1 && g.d[2] == 1 && g.C > 0 && g.O > 0 && g.Q[1] > 0 && g.Q[2] > 0;
  // the data gradient pads dy by 2 - pad, so it needs pad <= 2
  return shape && (!data_grad || (g.p[1] <= 2 && g.p[2] <= 2));
}

bool use_winograd(const Geo& g, bool data_grad) {
  const int a = conv_algo();
  if (!winograd_supported(g, data_grad)) return false;
  if (a == kConvWinograd) return true;
  return a == kConvAuto && g.C >= kWinogradMinChannels && g.O >= kWinogradMinChannels;
}

size_t winograd_workspace_bytes(const Geo& g, bool backward) {
  if (g.N == 0 || !use_winograd(g, backward)) return 0;
  const WGeo wg = backward ? backward_geo(g) : forward_geo(g);
  const int64_t chunks = (wg.tiles() + wg.chunk() - 1) / wg.chunk();
  const int nt = (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), chunks));
  return (wg.weights() + wg.per_thread() * (size_t)nt) * sizeof(float);
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

}  // namespace conv
}  // namespace kiln
