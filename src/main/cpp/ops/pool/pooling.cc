// Pooling and _backward_Pooling (MXNet 1.9.1 src/operator/nn/pooling.cc, pool.h).
//
// Data is channel-first, [N, C, W] (NCW), [N, C, H, W] (NCHW) or [N, C, D, H, W] (NCDHW), or
// channel-last with layout NWC, NHWC or NDHWC ([N, W, C], ...), as MXNet's CPU kernels take both.
// The kernels view every layout as [N*C planes, D, H, W] with the missing leading spatial dims of
// size 1 (kernel 1, stride 1, pad 0), so one loop nest serves 1-D, 2-D and 3-D pooling, and
// OpenMP splits the N*C planes; a channel-last plane is strided (element stride C, plane (n, c)
// starting at n*D*H*W*C + c).
//
// Windows are MXNet's: for output index o along a dim, start = o*stride - pad,
// end_pad = min(start + kernel, in + pad) (the avg divisor with count_include_pad),
// [max(start, 0), min(end_pad, in)) are the input elements read. Empty windows give
// lowest() for max and 0 for avg/sum/lp, as MXNet's CPU kernels (MKL-DNN for avg).
#include <immintrin.h>

#include <limits>

#include "kiln/pool_layout.h"
#include "kiln/simd.h"
#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

enum PoolType { kMax = 0, kAvg = 1, kSum = 2, kLp = 3 };

int pool_type_of(const Attrs& a) {
  const std::string& t = a.s("pool_type");
  if (t == "max") return kMax;
  if (t == "avg") return kAvg;
  if (t == "sum") return kSum;
  return kLp;
}

/// Everything a kernel needs, spatial dims right-aligned into 3 (leading ones are trivial).
struct PoolGeom {
  int64_t planes = 0;              // N * C
  int64_t C = 1;                   // channel-last: the channels (planes interleave, element stride C); else 1
  int64_t in[3], out[3], k[3], s[3], p[3];
  int type = kMax;
  int pval = 1;                    // lp only
  bool include_pad = true;         // avg only
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  int64_t out_plane() const { return out[0] * out[1] * out[2]; }
};

/// Validates the parameters against the data shape and returns the output shape (dims of the
/// input that are unknown stay unknown). Throws KilnError with MXNet-style messages.
Shape pool_out_shape(const Attrs& a, const Shape& d) {
  const int nd = d.ndim();
  const int type = pool_type_of(a);
  if (type == kLp) {
    KILN_CHECK(a.has("p_value"), "Pooling: pool_type='lp' requires p_value (1, 2 or 3)");
    const int64_t pv = a.i("p_value");
    KILN_CHECK(pv >= 1 && pv <= 3, "Pooling: p value of " + std::to_string(pv) +
                                       " is not supported yet (lp pooling supports p_value 1, 2 and 3)");
  }
  const std::string& conv = a.s("pooling_convention");
  if (conv == "same") {
    KILN_CHECK(nd == 3, "Pooling: Input data should be 3D in (batch, channel, x). Currently 'same' supports 1-D "
                        "pooling only; got data shape " + d.str());
    for (int64_t v : a.t("pad"))
      KILN_CHECK(v == 0, "Pooling: Same pooling convention disables the use of pad parameter; got pad=" +
                             tuple_str(a.t("pad")));
  }
  KILN_CHECK(nd >= 3 && nd <= 5, "Pooling: Input data should be 3D in (batch, channel, x) Or 4D in (batch, channel, "
                                 "y, x) Or 5D in (batch, channel, d, y, x); got data shape " + d.str());
  if (a.has("layout")) {
    const std::string& l = a.s("layout");
    KILN_CHECK((int)l.size() == nd, "Pooling: layout=" + l + " does not match the " + std::to_string(nd) +
                                        "-D data shape " + d.str());
  }
  const int nsp = nd - 2;
  const int sp0 = pool_layout(a, nd).spatial0;
  Shape o = d;
  if (a.b("global_pool")) {
    for (int i = 0; i < nsp; ++i) o[sp0 + i] = 1;
    return o;
  }
  const auto& k = a.t("kernel");
  const auto& s = a.t("stride");
  const auto& p = a.t("pad");
  KILN_CHECK(!k.empty(), "Pooling: kernel is required unless global_pool=True (data shape " + d.str() + ")");
  KILN_CHECK((int)k.size() == nsp, "Pooling: kernel=" + tuple_str(k) + " has " + std::to_string(k.size()) +
                                       " dims but the data shape " + d.str() + " has " + std::to_string(nsp) +
                                       " spatial dims (1-D: (batch, channel, x), 2-D: (batch, channel, y, x), 3-D: "
                                       "(batch, channel, d, y, x))");
  KILN_CHECK(s.empty() || s.size() == k.size(), "Pooling: stride=" + tuple_str(s) + " must have as many dims as kernel=" + tuple_str(k));
  const bool same = conv == "same";  // pad must be all zeros there (checked above), any length
  KILN_CHECK(same || p.empty() || p.size() == k.size(), "Pooling: pad=" + tuple_str(p) + " must have as many dims as kernel=" + tuple_str(k));
  for (int i = 0; i < nsp; ++i) {
    const int64_t ki = k[i], si = s.empty() ? 1 : s[i], pi = (same || p.empty()) ? 0 : p[i];
    KILN_CHECK(ki > 0, "Pooling: kernel=" + tuple_str(k) + " must be positive");
    KILN_CHECK(si > 0, "Pooling: stride=" + tuple_str(s) + " must be positive");
    KILN_CHECK(pi >= 0, "Pooling: pad=" + tuple_str(p) + " must be non-negative");
    const int64_t x = d[sp0 + i];
    if (x < 0) { o[sp0 + i] = -1; continue; }
    KILN_CHECK(ki <= x + 2 * pi, "Pooling: kernel size (" + std::to_string(ki) + ") exceeds input (" +
                                     std::to_string(x) + " padded to " + std::to_string(x + 2 * pi) + ") in data shape " +
                                     d.str());
    if (conv == "valid") o[sp0 + i] = 1 + (x + 2 * pi - ki) / si;
    else if (conv == "full") o[sp0 + i] = 1 + (int64_t)std::ceil((float)(x + 2 * pi - ki) / (float)si);
    else o[sp0 + i] = (int64_t)std::ceil((float)(x + 2 * pi) / (float)si);
  }
  return o;
}

void pool_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;  // as MXNet: nothing is inferred before data's rank is known
  Shape o;
  try {
    o = pool_out_shape(a, d);
  } catch (const InferError&) {
    throw;
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  assign_out(out, 0, o);
}

PoolGeom pool_geom(const Attrs& a, const Shape& x, const Shape& y) {
  // x [N, C, spatial...], y [N, C, pooled spatial...]; channel-last: x [N, spatial..., C], y [N, pooled..., C]
  PoolGeom g;
  const int nd = x.ndim(), nsp = nd - 2;
  const PoolLayout l = pool_layout(a, nd);
  const int sp0 = l.spatial0, cd = l.channel;
  KILN_CHECK(nsp >= 1 && nsp <= 3 && y.ndim() == nd && y[0] == x[0] && y[cd] == x[cd],
             "Pooling: bad data/output shapes " + x.str() + ", " + y.str());
  g.planes = x[0] * x[cd];
  g.C = l.channel_last ? x[cd] : 1;
  g.type = pool_type_of(a);
  g.pval = (g.type == kLp && a.has("p_value")) ? (int)a.i("p_value") : 1;
  g.include_pad = a.has("count_include_pad") ? a.b("count_include_pad") : true;
  const bool global = a.b("global_pool");
  const auto& k = a.t("kernel");
  const auto& s = a.t("stride");
  const auto& p = a.t("pad");
  for (int i = 0; i < 3; ++i) {
    const int j = i - (3 - nsp);  // spatial index, < 0 for the padding dims
    if (j < 0) {
      g.in[i] = g.out[i] = g.k[i] = g.s[i] = 1;
      g.p[i] = 0;
      continue;
    }
    g.in[i] = x[sp0 + j];
    g.out[i] = y[sp0 + j];
    if (global) {
      g.k[i] = g.in[i];
      g.s[i] = 1;
      g.p[i] = 0;
    } else {
      g.k[i] = k[j];
      g.s[i] = s.empty() ? 1 : s[j];
      g.p[i] = (p.empty() || a.s("pooling_convention") == "same") ? 0 : p[j];
    }
  }
  return g;
}

/// One window along every dim: elements [lo, hi) are read; `pad_size` is the divisor that
/// counts padding, `in_size` the one that does not.
struct Window {
  int64_t lo[3], hi[3];
  int64_t pad_size, in_size;
};

inline Window window(const PoolGeom& g, const int64_t o[3]) {
  Window w;
  w.pad_size = 1;
  w.in_size = 1;
  for (int i = 0; i < 3; ++i) {
    const int64_t st = o[i] * g.s[i] - g.p[i];
    const int64_t ep = std::min(st + g.k[i], g.in[i] + g.p[i]);
    w.pad_size *= ep - st;
    w.lo[i] = std::max<int64_t>(st, 0);
    w.hi[i] = std::min(ep, g.in[i]);
    w.in_size *= w.hi[i] - w.lo[i];
  }
  return w;
}

template <typename DT>
inline DT pow_p(DT v, int p) {
  return p == 1 ? v : p == 2 ? v * v : v * v * v;
}
template <typename DT>
inline DT root_p(DT v, int p) {
  return p == 1 ? v : p == 2 ? (DT)std::sqrt(v) : (DT)std::cbrt(v);
}
/// d y / d x * dy for lp pooling, y = (sum x^p)^(1/p).
template <typename DT>
inline DT lp_grad(DT dy, DT x, DT y, int p) {
  return p == 1 ? dy : p == 2 ? dy * x / y : dy * x * x / (y * y);
}

/// Where plane pl of a tensor with `plane` elements a plane starts; its elements are cs apart
/// (channel-first: pl * plane, cs 1; channel-last: (n * plane) * C + c, cs C).
template <bool Last>
inline int64_t plane_base(const PoolGeom& g, int64_t pl, int64_t plane) {
  return Last ? (pl / g.C) * plane * g.C + pl % g.C : pl * plane;
}

template <typename DT, bool Last>
void pool_forward(const PoolGeom& g, const DT* x, DT* y, OpReq req) {
  // x [planes, in0, in1, in2], y [planes, out0, out1, out2] (Last: planes strided, element stride C)
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.in_plane(), op = g.out_plane(), cs = Last ? g.C : 1;
  const int nt = omp_threads(g.planes * op * g.k[0] * g.k[1] * g.k[2]);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const DT* xp = x + plane_base<Last>(g, pl, ip);  // [in0, in1, in2] (stride cs)
    DT* yp = y + plane_base<Last>(g, pl, op);        // [out0, out1, out2] (stride cs)
    int64_t o[3];
    for (o[0] = 0; o[0] < g.out[0]; ++o[0])
      for (o[1] = 0; o[1] < g.out[1]; ++o[1])
        for (o[2] = 0; o[2] < g.out[2]; ++o[2]) {
          const Window w = window(g, o);
          DT v;
          if (g.type == kMax) {
            v = std::numeric_limits<DT>::lowest();
            for (int64_t a = w.lo[0]; a < w.hi[0]; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1]; ++b) {
                const DT* row = xp + (a * g.in[1] + b) * g.in[2] * cs;  // [in2] (stride cs)
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) v = row[c * cs] > v ? row[c * cs] : v;
              }
          } else {
            DT sum = 0;
            for (int64_t a = w.lo[0]; a < w.hi[0]; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1]; ++b) {
                const DT* row = xp + (a * g.in[1] + b) * g.in[2] * cs;  // [in2] (stride cs)
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) sum += pow_p(row[c * cs], g.pval);
              }
            // avg: a window with nothing to count (entirely in the padding) gives 0, as MXNet's
            // MKL-DNN kernels (its native kernel gives 0 / 0 = NaN there)
            const int64_t cnt = g.include_pad ? w.pad_size : w.in_size;
            if (g.type == kAvg) v = cnt > 0 ? sum / DT(cnt) : DT(0);
            else v = g.type == kLp ? root_p(sum, g.pval) : sum;
          }
          assign_req(yp[((o[0] * g.out[1] + o[1]) * g.out[2] + o[2]) * cs], req, v);
        }
  }
}

template <typename DT, bool Last>
void pool_backward(const PoolGeom& g, const DT* dy, const DT* x, const DT* y, DT* dx, OpReq req) {
  // dy, y [planes, out0, out1, out2]; x, dx [planes, in0, in1, in2] (Last: planes strided, element stride C)
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.in_plane(), op = g.out_plane(), cs = Last ? g.C : 1;
  if (Last) zero_unless_add(req, g.planes * ip, dx);  // planes interleave: all of dx at once
  const int nt = omp_threads(g.planes * op * g.k[0] * g.k[1] * g.k[2]);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const DT* xp = x + plane_base<Last>(g, pl, ip);    // [in0, in1, in2] (stride cs)
    DT* dxp = dx + plane_base<Last>(g, pl, ip);        // [in0, in1, in2] (stride cs)
    const DT* yp = y + plane_base<Last>(g, pl, op);    // [out0, out1, out2] (stride cs)
    const DT* dyp = dy + plane_base<Last>(g, pl, op);  // [out0, out1, out2] (stride cs)
    if (!Last) zero_unless_add(req, ip, dxp);
    int64_t o[3];
    for (o[0] = 0; o[0] < g.out[0]; ++o[0])
      for (o[1] = 0; o[1] < g.out[1]; ++o[1])
        for (o[2] = 0; o[2] < g.out[2]; ++o[2]) {
          const int64_t oi = (o[0] * g.out[1] + o[1]) * g.out[2] + o[2];
          const Window w = window(g, o);
          const DT gy = dyp[oi * cs], yv = yp[oi * cs];
          if (g.type == kMax) {
            // the first element equal to the max (in row-major window order) gets the gradient
            int64_t arg = -1;
            for (int64_t a = w.lo[0]; a < w.hi[0] && arg < 0; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1] && arg < 0; ++b)
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) {
                  const int64_t i = (a * g.in[1] + b) * g.in[2] + c;
                  if (xp[i * cs] == yv) { arg = i; break; }
                }
            if (arg >= 0) dxp[arg * cs] += gy;
          } else {
            const DT size = g.type == kAvg ? DT(g.include_pad ? w.pad_size : w.in_size) : DT(1);
            for (int64_t a = w.lo[0]; a < w.hi[0]; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1]; ++b)
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) {
                  const int64_t i = ((a * g.in[1] + b) * g.in[2] + c) * cs;
                  dxp[i] += (g.type == kLp ? lp_grad(gy, xp[i], yv, g.pval) : gy) / size;
                }
          }
        }
  }
}

// ---- fast path: 2x2 max pooling with stride 2 and no padding, float32, AVX-512 ----------------
// The generic loops above spend most of their time on window bookkeeping; LeNet's pool1 took
// 1.4 ms forward and 2.1 ms backward per batch of 128 there. This path computes 16 outputs of a
// row at once with the same comparison order as the generic kernel, so results are identical:
// v = lowest, then v = (x > v ? x : v) over (r0[2j], r0[2j+1], r1[2j], r1[2j+1]) (that is
// _mm512_max_ps(x, v), which also skips NaN as the scalar compare does), and the gradient goes to
// the first of those four equal to the output.

/// _mm512_max_ps as its full-mask maskz form (same instruction, no undefined source operand that
/// trips GCC 12's -Wmaybe-uninitialized).
KILN_SIMD_AVX512_TARGET inline __m512 vmax(__m512 a, __m512 b) { return _mm512_maskz_max_ps((__mmask16)0xffff, a, b); }

/// p[0..cnt) = v's first cnt lanes (cnt <= 16). Whole 512/256-bit stores where the count allows:
/// masked stores (and small memcpy calls) made the backward row 3x slower on Zen 4. The halves
/// come from maskz extracts: the plain cast/extract intrinsics carry an undefined source operand
/// that GCC 12 warns about.
KILN_SIMD_AVX512_TARGET inline void store_first(float* p, __m512 v, int64_t cnt) {
  const __m256 lo = _mm512_maskz_extractf32x8_ps((__mmask8)0xff, v, 0);
  if (cnt == 16) {
    _mm512_storeu_ps(p, v);
  } else if (cnt >= 8) {
    _mm256_storeu_ps(p, lo);
    if (cnt > 8)
      _mm256_mask_storeu_ps(p + 8, (__mmask8)((1u << (cnt - 8)) - 1), _mm512_maskz_extractf32x8_ps((__mmask8)0xff, v, 1));
  } else {
    _mm256_mask_storeu_ps(p, (__mmask8)((1u << cnt) - 1), lo);
  }
}

bool is_max2x2(const PoolGeom& g) {
  return g.type == kMax && g.C == 1 && g.in[0] == 1 && g.k[1] == 2 && g.k[2] == 2 && g.s[1] == 2 && g.s[2] == 2 && g.p[1] == 0 &&
         g.p[2] == 0 && 2 * g.out[1] <= g.in[1] && 2 * g.out[2] <= g.in[2];
}

/// Masks for 16 outputs starting at column 2*ox of the input rows: n outputs need 2n inputs,
/// the first min(2n, 16) in the low vector, the rest in the high one.
inline void pair_masks(int64_t n, __mmask16* m, __mmask16* mlo, __mmask16* mhi) {
  *m = (__mmask16)((1u << n) - 1);
  *mlo = (__mmask16)(n >= 8 ? 0xffffu : (1u << (2 * n)) - 1);
  *mhi = (__mmask16)(n > 8 ? (1u << (2 * n - 16)) - 1 : 0u);
}

KILN_SIMD_AVX512_TARGET void max2x2_forward_row(const float* r0, const float* r1, float* y, int64_t ow, bool add) {
  // r0, r1 [>= 2*ow]: the two input rows of output row y [ow]
  const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512 lowest = _mm512_set1_ps(std::numeric_limits<float>::lowest());
  for (int64_t ox = 0; ox < ow; ox += 16) {
    __mmask16 m, mlo, mhi;
    pair_masks(std::min<int64_t>(16, ow - ox), &m, &mlo, &mhi);
    const __m512 a0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * ox), a1 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * ox + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * ox), b1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * ox + 16);
    __m512 v = vmax(_mm512_permutex2var_ps(a0, ie, a1), lowest);
    v = vmax(_mm512_permutex2var_ps(a0, io, a1), v);
    v = vmax(_mm512_permutex2var_ps(b0, ie, b1), v);
    v = vmax(_mm512_permutex2var_ps(b0, io, b1), v);
    if (add) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + ox), v);
    store_first(y + ox, v, std::min<int64_t>(16, ow - ox));
  }
}

KILN_SIMD_AVX512_TARGET void max2x2_backward_row(const float* r0, const float* r1, const float* yv, const float* gy,
                                                 float* d0, float* d1, int64_t ow, bool add) {
  // r0, r1, d0, d1 [>= 2*ow]: input rows and their gradient rows; yv, gy [ow]: output row and its gradient
  const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t ox = 0; ox < ow; ox += 16) {
    __mmask16 m, mlo, mhi;
    pair_masks(std::min<int64_t>(16, ow - ox), &m, &mlo, &mhi);
    const __m512 a0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * ox), a1 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * ox + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * ox), b1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * ox + 16);
    const __m512 y = _mm512_maskz_loadu_ps(m, yv + ox), g = _mm512_maskz_loadu_ps(m, gy + ox);
    const __mmask16 k0 = _mm512_cmp_ps_mask(_mm512_permutex2var_ps(a0, ie, a1), y, _CMP_EQ_OQ);
    const __mmask16 k1 = _mm512_cmp_ps_mask(_mm512_permutex2var_ps(a0, io, a1), y, _CMP_EQ_OQ) & ~k0;
    const __mmask16 k2 = _mm512_cmp_ps_mask(_mm512_permutex2var_ps(b0, ie, b1), y, _CMP_EQ_OQ) & ~(k0 | k1);
    const __mmask16 k3 = _mm512_cmp_ps_mask(_mm512_permutex2var_ps(b0, io, b1), y, _CMP_EQ_OQ) & ~(k0 | k1 | k2);
    // 0 + gy as the generic kernel computes it (turns -0 into +0)
    const __m512 g0 = _mm512_maskz_add_ps(k0, g, zero), g1 = _mm512_maskz_add_ps(k1, g, zero);
    const __m512 g2 = _mm512_maskz_add_ps(k2, g, zero), g3 = _mm512_maskz_add_ps(k3, g, zero);
    __m512 lo0 = _mm512_permutex2var_ps(g0, il, g1), hi0 = _mm512_permutex2var_ps(g0, ih, g1);
    __m512 lo1 = _mm512_permutex2var_ps(g2, il, g3), hi1 = _mm512_permutex2var_ps(g2, ih, g3);
    if (add) {
      lo0 = _mm512_add_ps(_mm512_maskz_loadu_ps(mlo, d0 + 2 * ox), lo0);
      hi0 = _mm512_add_ps(_mm512_maskz_loadu_ps(mhi, d0 + 2 * ox + 16), hi0);
      lo1 = _mm512_add_ps(_mm512_maskz_loadu_ps(mlo, d1 + 2 * ox), lo1);
      hi1 = _mm512_add_ps(_mm512_maskz_loadu_ps(mhi, d1 + 2 * ox + 16), hi1);
    }
    const int64_t n2 = 2 * std::min<int64_t>(16, ow - ox);  // floats of each input row covered
    store_first(d0 + 2 * ox, lo0, std::min<int64_t>(16, n2));
    store_first(d1 + 2 * ox, lo1, std::min<int64_t>(16, n2));
    if (n2 > 16) {
      store_first(d0 + 2 * ox + 16, hi0, n2 - 16);
      store_first(d1 + 2 * ox + 16, hi1, n2 - 16);
    }
  }
}

/// y [planes, oh, ow] from x [planes, ih, iw] (is_max2x2(g)).
void max2x2_forward(const PoolGeom& g, const float* x, float* y, OpReq req) {
  const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2], rows = g.planes * oh;
  const bool add = req == OpReq::kAddTo;
  const int nt = omp_threads(g.planes * ih * iw);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t pl = r / oh, oy = r % oh;
    const float* r0 = x + (pl * ih + 2 * oy) * iw;  // [iw]
    max2x2_forward_row(r0, r0 + iw, y + r * ow, ow, add);
  }
}

/// dx [planes, ih, iw] from dy, y [planes, oh, ow] and x (is_max2x2(g)).
void max2x2_backward(const PoolGeom& g, const float* dy, const float* x, const float* y, float* dx, OpReq req) {
  const int64_t ih = g.in[1], iw = g.in[2], oh = g.out[1], ow = g.out[2], rows = g.planes * oh;
  const bool add = req == OpReq::kAddTo;
  // inputs outside every window (odd sizes) get no gradient
  if (!add && (2 * oh != ih || 2 * ow != iw)) zero_unless_add(req, g.planes * ih * iw, dx);
  const int nt = omp_threads(g.planes * ih * iw);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t pl = r / oh, oy = r % oh, off = (pl * ih + 2 * oy) * iw;
    max2x2_backward_row(x + off, x + off + iw, y + r * ow, dy + r * ow, dx + off, dx + off + iw, ow, add);
  }
}

void pool_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const PoolGeom g = pool_geom(a, in[0].shape, out[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same<T, float>::value) {
      if (is_max2x2(g) && simd::use_avx512() && req[0] != OpReq::kNullOp)
        return max2x2_forward(g, in[0].dptr<float>(), out[0].dptr<float>(), req[0]);
    }
    if (g.C > 1) pool_forward<T, true>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
    else pool_forward<T, false>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

void pool_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  // in: dy, x, y; out: dx
  const PoolGeom g = pool_geom(a, in[1].shape, in[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same<T, float>::value) {
      if (is_max2x2(g) && simd::use_avx512() && req[0] != OpReq::kNullOp)
        return max2x2_backward(g, in[0].dptr<float>(), in[1].dptr<float>(), in[2].dptr<float>(), out[0].dptr<float>(),
                               req[0]);
    }
    if (g.C > 1) pool_backward<T, true>(g, in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), req[0]);
    else pool_backward<T, false>(g, in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

}  // namespace

void register_pooling(OpRegistry& r) {
  OpDef d;
  d.name = "Pooling";
  d.description =
      "Performs pooling on the input (1-D NCW, 2-D NCHW, 3-D NCDHW, or channel-last with layout NWC, NHWC, NDHWC). pool_type max/avg/sum/lp; out = f(in, kernel, "
      "pad, stride): valid: floor((x+2p-k)/s)+1, full: ceil((x+2p-k)/s)+1, same (1-D): ceil((x+2p)/s); global_pool "
      "reduces every spatial dim to 1 and ignores kernel.";
  d.params = {
      param("kernel", ParamType::kShape, "()", "Pooling kernel size: (y, x) or (d, y, x)"),
      param_enum("pool_type", "max", {"avg", "lp", "max", "sum"}, "Pooling type to be applied."),
      param("global_pool", ParamType::kBool, "False",
            "Ignore kernel size, do global pooling based on current input feature map. "),
      param("cudnn_off", ParamType::kBool, "False", "Turn off cudnn pooling and use MXNet pooling operator. "),
      param_enum("pooling_convention", "valid", {"full", "same", "valid"}, "Pooling convention to be applied."),
      param("stride", ParamType::kShape, "()", "Stride: for pooling (y, x) or (d, y, x). Defaults to 1 for each dimension."),
      param("pad", ParamType::kShape, "()", "Pad for pooling: (y, x) or (d, y, x). Defaults to no padding."),
      param("p_value", ParamType::kInt, "None", "Value of p for Lp pooling, can be 1 or 2, required for Lp Pooling."),
      param("count_include_pad", ParamType::kBool, "None",
            "Only used for AvgPool, specify whether to count padding elements for averagecalculation. For example, "
            "with a 5*5 kernel on a 3*3 corner of a image,the sum of the 9 valid elements will be divided by 25 if "
            "this is set to true,or it will be divided by 9 if this is set to false. Defaults to true."),
      param_enum("layout", "None", {"NCDHW", "NCHW", "NCW", "NDHWC", "NHWC", "NWC"},
                 "Set layout for input and output. Empty for default layout: NCW for 1d, NCHW for 2d and NCDHW for 3d."),
  };
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = pool_infer_shape;
  d.cpu = pool_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_Pooling", n, {og[0], n->inputs[0], NodeEntry{n, 0}});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_Pooling", fwd);
  bw.input_names_ = {"ograd", "data", "output"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = pool_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
