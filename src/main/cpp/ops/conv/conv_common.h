// The ops/conv family (Convolution, Deconvolution): parameter parsing, geometry and the im2col +
// GEMM kernels both operators are built from (MXNet src/operator/nn/convolution-inl.h,
// deconvolution-inl.h, im2col.h).
//
// Every kernel works on a convolution "geometry": an input x [N, C, D0, D1, D2] convolved with
// a weight w [O, C/G, K0, K1, K2] (G groups) gives y [N, O, Q0, Q1, Q2]. 1-D and 2-D
// convolutions are the 3-D case with leading spatial dims of 1 (kernel 1, stride 1, pad 0).
// Deconvolution is the same geometry with roles swapped: its forward is the convolution's
// backward-data, its backward-data is the convolution's forward.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include <immintrin.h>
#include <omp.h>

#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"

namespace kiln {
namespace conv {

void register_convolution(OpRegistry& r);    // convolution.cc
void register_deconvolution(OpRegistry& r);  // deconvolution.cc
/// The parameters Convolution (deconv = false) and Deconvolution declare, MXNet order and defaults.
std::vector<ParamDef> conv_params(bool deconv);  // convolution.cc
/// What differs between Convolution and Deconvolution when they are registered.
struct ConvFamilyOp {
  std::string name, description;
  bool deconv = false;
  InferShapeFn infer_shape;
  Kernel forward, backward;
  /// Scratch bytes of the forward (backward = false) or of _backward_<name> (true).
  std::function<size_t(const Attrs&, const std::vector<Shape>&, const std::vector<Shape>&, bool backward)> workspace;
};
/// Registers op.name and _backward_<name> with the family's shared layout: inputs data, weight
/// (, bias unless no_bias); the backward reads (ograd, data, weight) and writes data_grad,
/// weight_grad (, bias_grad). convolution.cc.
void register_conv_family(OpRegistry& r, const ConvFamilyOp& op);

inline int omp_thread() { return omp_get_thread_num(); }
inline int omp_team() { return omp_get_num_threads(); }

// ---- parameters --------------------------------------------------------------------------

/// The parsed spatial parameters, padded to 3 dims (leading dims of 1-D/2-D are identity).
struct ConvParam {
  int nsp = 0;                        // number of spatial dims (kernel.ndim()): 1, 2 or 3
  int64_t k[3], s[3], d[3], p[3];     // kernel, stride, dilate, pad
  int64_t adj[3], target[3];          // Deconvolution only
  bool has_target = false;            // Deconvolution: some target_shape entry is > 0
  int64_t num_filter = 0, num_group = 1;
  bool no_bias = false;
  /// Dilated kernel extent of spatial dim i (0..2 in the padded numbering).
  int64_t dk(int i) const { return 1 + (k[i] - 1) * d[i]; }
};

inline std::string tuple_str(const std::vector<int64_t>& t) {
  std::string s = "(";
  for (size_t i = 0; i < t.size(); ++i) s += (i ? ", " : "") + std::to_string(t[i]);
  return s + (t.size() == 1 ? ",)" : ")");
}

/// Parses and checks kernel/stride/dilate/pad (and adj/target_shape for Deconvolution) as
/// MXNet's ConvolutionParamParser / DeconvolutionParamParser; throws KilnError naming `op`.
inline ConvParam parse_conv_param(const std::string& op, const Attrs& a, bool deconv) {
  ConvParam c;
  const std::vector<int64_t>& kernel = a.t("kernel");
  const int n = (int)kernel.size();
  KILN_CHECK(n >= 1 && n <= 3, op + ": kernel must have 1, 2 or 3 dims ((w,), (h, w) or (d, h, w)), got " +
                                   tuple_str(kernel));
  if (deconv) KILN_CHECK(n <= 2, op + ": only 1-D or 2-D Deconvolution is supported on the CPU (as MXNet without cuDNN), "
                                      "got kernel " + tuple_str(kernel));
  c.nsp = n;
  auto fill = [&](const char* name, int64_t* dst, int64_t def, int64_t min) {
    const std::vector<int64_t>& t = a.t(name);
    KILN_CHECK(t.empty() || (int)t.size() == n,
               op + ": " + name + " must have the same number of dimensions as kernel, but kernel is " +
                   tuple_str(kernel) + " while " + name + " is " + tuple_str(t));
    for (int i = 0; i < 3; ++i) dst[i] = (i < 3 - n) ? (std::string(name) == "pad" || std::string(name) == "adj" ||
                                                        std::string(name) == "target_shape" ? 0 : 1) : def;
    for (int i = 0; i < (int)t.size(); ++i) {
      KILN_CHECK(t[i] >= min, op + ": " + name + " entries must be >= " + std::to_string(min) + ", got " + tuple_str(t));
      dst[3 - n + i] = t[i];
    }
  };
  fill("kernel", c.k, 1, 1);
  fill("stride", c.s, 1, 1);
  fill("dilate", c.d, 1, 1);
  fill("pad", c.p, 0, 0);
  if (deconv) {
    fill("adj", c.adj, 0, 0);
    // target_shape: MXNet accepts a tuple of any length and uses its first kernel.ndim() entries
    const std::vector<int64_t>& t = a.t("target_shape");
    for (int i = 0; i < 3; ++i) c.target[i] = 0;
    if ((int)t.size() >= n)
      for (int i = 0; i < n; ++i) {
        c.target[3 - n + i] = t[i];
        if (t[i] != 0) c.has_target = true;
      }
    else
      for (int64_t x : t) if (x != 0) c.has_target = true;
  } else {
    for (int i = 0; i < 3; ++i) c.adj[i] = c.target[i] = 0;
  }
  if (n == 3) KILN_CHECK(c.d[0] * c.d[1] * c.d[2] == 1, op + ": dilate is not supported in 3d " +
                                                            (deconv ? std::string("deconvolution") : std::string("convolution")));
  c.num_filter = a.i("num_filter");
  c.num_group = a.i("num_group");
  c.no_bias = a.b("no_bias");
  if (a.has("layout")) {
    static const char* kLayouts[] = {"", "NCW", "NCHW", "NCDHW"};
    KILN_CHECK(a.s("layout") == kLayouts[n], op + ": layout " + a.s("layout") + " is not supported for a " +
                                                 std::to_string(n) + "-D kernel on the CPU; only " + kLayouts[n] +
                                                 " (MXNet supports NHWC/NDHWC only on GPU)");
  }
  return c;
}

// ---- geometry ----------------------------------------------------------------------------

/// x [N, C, D0, D1, D2] * w [O, C/G, K0, K1, K2] -> y [N, O, Q0, Q1, Q2].
struct Geo {
  int64_t N = 0, C = 0, O = 0, G = 1;
  int64_t D[3] = {1, 1, 1}, Q[3] = {1, 1, 1};
  int64_t k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, p[3] = {0, 0, 0};
  int64_t in_size() const { return D[0] * D[1] * D[2]; }      // input pixels per channel
  int64_t out_size() const { return Q[0] * Q[1] * Q[2]; }     // output pixels per channel (P)
  int64_t ksize() const { return k[0] * k[1] * k[2]; }
  int64_t Kg() const { return C / G * ksize(); }               // GEMM inner dim per group
  int64_t Mg() const { return O / G; }                         // output channels per group
  int64_t col_size() const { return C * ksize() * out_size(); }  // im2col buffer [C*ksize, P]
};

/// Spatial dims of a [N, C, spatial...] shape padded to 3 (leading 1s).
inline void spatial3(const Shape& sh, int nsp, int64_t* dst) {
  for (int i = 0; i < 3; ++i) dst[i] = i < 3 - nsp ? 1 : sh[2 + i - (3 - nsp)];
}

// ---- im2col / col2im ---------------------------------------------------------------------
//
// Rows of im2col are short (LeNet's conv2: 8 floats), so the per-row overhead matters more than
// the copy: GCC's vectorized loop for `r[q] = xr[q]` with a run-time length adds an alias check,
// a prologue and a scalar epilogue to every 8-element row (im2col and col2im were a third of
// LeNet's training step). The row helpers below copy in exact 8/4/1-element pieces instead.

/// d[0..n) = s[0..n) (d and s do not overlap).
template <typename T>
inline void copy_row(T* __restrict d, const T* __restrict s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = s[i];
}
/// The empty asm statements keep GCC from turning these loops back into memcpy calls (its
/// loop-distribution pass recognizes the pattern), which is what the helper exists to avoid.
template <>
inline void copy_row<float>(float* __restrict d, const float* __restrict s, int64_t n) {
  for (; n >= 8; n -= 8, d += 8, s += 8) {
    __m256 v = _mm256_loadu_ps(s);
    __asm__("" : "+x"(v));
    _mm256_storeu_ps(d, v);
  }
  if (n >= 4) {
    __m128 v = _mm_loadu_ps(s);
    __asm__("" : "+x"(v));
    _mm_storeu_ps(d, v);
    n -= 4, d += 4, s += 4;
  }
  for (; n > 0; --n) {
    float v = *s++;
    __asm__("" : "+x"(v));
    *d++ = v;
  }
}

/// One output row r [n] of im2col: src[q] for q in [lo, hi) (the columns inside the image), zeros
/// elsewhere; a null src is a padding row, all zeros.
template <typename T>
inline void padded_row(T* __restrict r, const T* src, int64_t n, int64_t lo, int64_t hi) {
  if (src == nullptr) {
    for (int64_t q = 0; q < n; ++q) r[q] = T(0);
    return;
  }
  for (int64_t q = 0; q < lo; ++q) r[q] = T(0);
  copy_row(r + lo, src + lo, hi - lo);
  for (int64_t q = hi; q < n; ++q) r[q] = T(0);
}
/// d[0..n) += s[0..n) (d and s do not overlap).
template <typename T>
inline void add_row(T* __restrict d, const T* __restrict s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] += s[i];
}
template <>
inline void add_row<float>(float* __restrict d, const float* __restrict s, int64_t n) {
  for (; n >= 8; n -= 8, d += 8, s += 8) _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_loadu_ps(s)));
  if (n >= 4) {
    _mm_storeu_ps(d, _mm_add_ps(_mm_loadu_ps(d), _mm_loadu_ps(s)));
    n -= 4, d += 4, s += 4;
  }
  for (; n > 0; --n) *d++ += *s++;
}

/// The output positions q in [lo, hi) along one axis whose input index q*s - p + e*dil lies in
/// [0, D).
inline void valid_range(int64_t D, int64_t Q, int64_t s, int64_t p, int64_t off, int64_t* lo, int64_t* hi) {
  // off = e * dil - p; need 0 <= q*s + off < D
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = D - off <= 0 ? 0 : (D - off + s - 1) / s;
  *lo = std::min(l, Q);
  *hi = std::max(*lo, std::min(h, Q));
}

/// The common case gets its own loops: 1-D/2-D, stride 1, dilation 1 (any padding). Everything
/// the loops need is in locals (the generic loops reload Geo fields after every store and divide
/// per row).
inline bool is_plain_2d(const Geo& g) {
  return g.D[0] == 1 && g.k[0] == 1 && g.p[0] == 0 && g.s[1] == 1 && g.s[2] == 1 && g.d[1] == 1 && g.d[2] == 1;
}

/// im2col for is_plain_2d: col [C*KH*KW, OH*OW] (row stride ld) from x [C, H, W].
template <typename T>
void im2col_plain(const Geo& g, const T* __restrict x, T* __restrict col, int64_t ld) {
  const int64_t C = g.C, H = g.D[1], W = g.D[2], KH = g.k[1], KW = g.k[2], OH = g.Q[1], OW = g.Q[2];
  const int64_t ph = g.p[1], pw = g.p[2];
  if constexpr (std::is_same<T, float>::value) {
    if (ph == 0 && pw == 0 && OW % 8 == 0) {
      // No padding and rows of whole ymm vectors (LeNet: 8 and 24): every row is OW / 8 loads and
      // stores, without the per-row range checks (im2col was 15% of LeNet's training step).
      // copy_row instead of the inner loop measured 7% slower on the whole LeNet step.
      const int64_t nv = OW / 8;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t ky = 0; ky < KH; ++ky)
          for (int64_t kx = 0; kx < KW; ++kx) {
            float* row = col + ((c * KH + ky) * KW + kx) * ld;  // [OH, OW]
            const float* xs = x + (c * H + ky) * W + kx;        // x[c, ky + oy, kx + q] = xs[oy * W + q]
            for (int64_t oy = 0; oy < OH; ++oy)
              for (int64_t v = 0; v < nv; ++v) {
                __m256 t = _mm256_loadu_ps(xs + oy * W + v * 8);
                __asm__("" : "+x"(t));  // no memmove call per row (see copy_row)
                _mm256_storeu_ps(row + oy * OW + v * 8, t);
              }
          }
      return;
    }
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ky = 0; ky < KH; ++ky)
      for (int64_t kx = 0; kx < KW; ++kx) {
        T* row = col + ((c * KH + ky) * KW + kx) * ld;  // [OH, OW]
        const int64_t lo = std::min(OW, std::max<int64_t>(0, pw - kx)), hi = std::max(lo, std::min(OW, W + pw - kx));
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy + ky - ph;
          // x row, shifted so that src[q] pairs with the output row's q (null: a padding row)
          const T* src = iy < 0 || iy >= H ? nullptr : x + (c * H + iy) * W + kx - pw;
          padded_row(row + oy * OW, src, OW, lo, hi);
        }
      }
}

/// col2im for is_plain_2d: x [C, H, W] += col [C*KH*KW, OH*OW] (row stride ld) scattered back.
template <typename T>
void col2im_plain_add(const Geo& g, const T* __restrict col, T* __restrict x, int64_t ld) {
  const int64_t C = g.C, H = g.D[1], W = g.D[2], KH = g.k[1], KW = g.k[2], OH = g.Q[1], OW = g.Q[2];
  const int64_t ph = g.p[1], pw = g.p[2];
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ky = 0; ky < KH; ++ky)
      for (int64_t kx = 0; kx < KW; ++kx) {
        const T* row = col + ((c * KH + ky) * KW + kx) * ld;  // [OH, OW]
        const int64_t lo = std::min(OW, std::max<int64_t>(0, pw - kx)), hi = std::max(lo, std::min(OW, W + pw - kx));
        const int64_t oy0 = std::max<int64_t>(0, ph - ky), oy1 = std::min(OH, H + ph - ky);
        for (int64_t oy = oy0; oy < oy1; ++oy) {
          T* xr = x + (c * H + oy + ky - ph) * W + kx - pw;  // x row, shifted so that xr[q] pairs with row[q]
          add_row(xr + lo, row + oy * OW + lo, hi - lo);
        }
      }
}

// Stride 2 along the width (ResNet's 3x3 downsampling convolutions): an output row reads
// every other input element. Each image row is first split into its even and odd elements
// (de [C, H, 2, Wh]); then every output row is a contiguous run of one half, copied (im2col) or
// added (col2im) in whole vectors like the stride-1 rows. ResNet-18's three stride-2 3x3 layers at
// batch 32, 1 thread (32x32, 16x16, 8x8 inputs): im2col 2.79 / 1.73 / 1.61 -> 1.64 / 1.35 / 1.26 ms,
// col2im 2.76 / 1.58 / 1.36 -> 1.37 / 0.93 / 0.83 ms; the three layers' passes 118 -> 111 ms.

/// 2-D, stride 2 and dilation 1 along the width, a kernel at least 2 wide (any stride, dilation and
/// padding along the height). A 1-wide kernel reads one half only: the generic loops do less work.
inline bool is_stride2w_2d(const Geo& g) {
  return g.D[0] == 1 && g.k[0] == 1 && g.p[0] == 0 && g.s[2] == 2 && g.d[2] == 1 && g.k[2] >= 2;
}

/// The split of a width-W row: Wh = ceil(W / 2) slots per half.
inline int64_t half_width(const Geo& g) { return (g.D[2] + 1) / 2; }

/// Per-thread buffer for the even/odd halves of one image, [C, H, 2, Wh] (grown, never shrunk).
template <typename T>
T* stride2w_buffer(const Geo& g) {
  thread_local std::vector<T> buf;
  buf.resize((size_t)(g.C * g.D[1] * 2 * half_width(g)));
  return buf.data();
}

/// For kernel column kx: the half (parity) and offset m with x[2q + kx - pw] = half[q + m].
inline void stride2w_source(const Geo& g, int64_t kx, int64_t* parity, int64_t* m) {
  const int64_t o2 = kx - g.p[2];
  *parity = ((o2 % 2) + 2) % 2;
  *m = (o2 - *parity) / 2;
}

/// im2col for is_stride2w_2d: col [C*KH*KW, OH*OW] (row stride ld) from x [C, H, W].
template <typename T>
void im2col_stride2w(const Geo& g, const T* __restrict x, T* __restrict col, int64_t ld) {
  const int64_t C = g.C, H = g.D[1], W = g.D[2], KH = g.k[1], KW = g.k[2], OH = g.Q[1], OW = g.Q[2];
  const int64_t Wh = half_width(g), sh = g.s[1], dh = g.d[1], ph = g.p[1];
  T* de = stride2w_buffer<T>(g);  // [C, H, 2, Wh]
  for (int64_t r = 0; r < C * H; ++r) {
    const T* xr = x + r * W;       // [W]
    T* ev = de + r * 2 * Wh;       // [Wh] x[0], x[2], ...
    T* od = ev + Wh;               // [Wh] x[1], x[3], ...
    for (int64_t j = 0; j < W / 2; ++j) {
      ev[j] = xr[2 * j];
      od[j] = xr[2 * j + 1];
    }
    if (W % 2) ev[W / 2] = xr[W - 1];
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ky = 0; ky < KH; ++ky)
      for (int64_t kx = 0; kx < KW; ++kx) {
        T* row = col + ((c * KH + ky) * KW + kx) * ld;  // [OH, OW]
        int64_t lo, hi, parity, m;
        valid_range(W, OW, 2, g.p[2], kx - g.p[2], &lo, &hi);
        stride2w_source(g, kx, &parity, &m);
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy * sh + ky * dh - ph;
          // src[q] = x[c, iy, 2q + kx - pw] (null: a padding row)
          const T* src = iy < 0 || iy >= H ? nullptr : de + ((c * H + iy) * 2 + parity) * Wh + m;
          padded_row(row + oy * OW, src, OW, lo, hi);
        }
      }
}

/// col2im for is_stride2w_2d: x [C, H, W] += col [C*KH*KW, OH*OW] (row stride ld) scattered back.
template <typename T>
void col2im_stride2w_add(const Geo& g, const T* __restrict col, T* __restrict x, int64_t ld) {
  const int64_t C = g.C, H = g.D[1], W = g.D[2], KH = g.k[1], KW = g.k[2], OH = g.Q[1], OW = g.Q[2];
  const int64_t Wh = half_width(g), sh = g.s[1], dh = g.d[1], ph = g.p[1];
  T* de = stride2w_buffer<T>(g);  // [C, H, 2, Wh], the halves' sums
  std::fill(de, de + C * H * 2 * Wh, T(0));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ky = 0; ky < KH; ++ky)
      for (int64_t kx = 0; kx < KW; ++kx) {
        const T* row = col + ((c * KH + ky) * KW + kx) * ld;  // [OH, OW]
        int64_t lo, hi, parity, m;
        valid_range(W, OW, 2, g.p[2], kx - g.p[2], &lo, &hi);
        stride2w_source(g, kx, &parity, &m);
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy * sh + ky * dh - ph;
          if (iy < 0 || iy >= H) continue;
          T* dst = de + ((c * H + iy) * 2 + parity) * Wh + m;  // dst[q] sums into x[c, iy, 2q + kx - pw]
          add_row(dst + lo, row + oy * OW + lo, hi - lo);
        }
      }
  for (int64_t r = 0; r < C * H; ++r) {
    T* xr = x + r * W;
    const T* ev = de + r * 2 * Wh;
    const T* od = ev + Wh;
    for (int64_t j = 0; j < W / 2; ++j) {
      xr[2 * j] += ev[j];
      xr[2 * j + 1] += od[j];
    }
    if (W % 2) xr[W - 1] += ev[W / 2];
  }
}

/// col [C * K0*K1*K2, Q0*Q1*Q2] (row stride ld >= Q0*Q1*Q2) from one image x [C, D0, D1, D2]
/// (zero padding).
template <typename T>
void im2col(const Geo& g, const T* x, T* col, int64_t ld) {
  if (is_plain_2d(g)) return im2col_plain(g, x, col, ld);
  if (is_stride2w_2d(g)) return im2col_stride2w(g, x, col, ld);
  const int64_t P = ld, ks = g.ksize(), Din = g.in_size();
  const int64_t Q0 = g.Q[0], Q1 = g.Q[1], Q2 = g.Q[2];
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = x + c * Din;  // [D0, D1, D2]
    for (int64_t kk = 0; kk < ks; ++kk) {
      const int64_t a = kk / (g.k[1] * g.k[2]), b = kk / g.k[2] % g.k[1], e = kk % g.k[2];
      T* row = col + (c * ks + kk) * P;  // [Q0, Q1, Q2]
      const int64_t o0 = a * g.d[0] - g.p[0], o1 = b * g.d[1] - g.p[1], o2 = e * g.d[2] - g.p[2];
      int64_t l2, h2;
      valid_range(g.D[2], Q2, g.s[2], g.p[2], o2, &l2, &h2);
      for (int64_t q0 = 0; q0 < Q0; ++q0) {
        const int64_t i0 = q0 * g.s[0] + o0;
        for (int64_t q1 = 0; q1 < Q1; ++q1) {
          const int64_t i1 = q1 * g.s[1] + o1;
          T* r = row + (q0 * Q1 + q1) * Q2;  // [Q2]
          if (i0 < 0 || i0 >= g.D[0] || i1 < 0 || i1 >= g.D[1]) {
            std::fill(r, r + Q2, T(0));
            continue;
          }
          const T* xr = xc + (i0 * g.D[1] + i1) * g.D[2] + o2;  // x row, shifted by the kernel offset
          for (int64_t q = 0; q < l2; ++q) r[q] = 0;
          if (g.s[2] == 1) {
            copy_row(r + l2, xr + l2, h2 - l2);
          } else {
            const int64_t st = g.s[2];
            for (int64_t q = l2; q < h2; ++q) r[q] = xr[q * st];
          }
          for (int64_t q = h2; q < Q2; ++q) r[q] = 0;
        }
      }
    }
  }
}

/// x [C, D0, D1, D2] += the columns col [C * K0*K1*K2, Q0*Q1*Q2] (row stride ld) scattered back
/// (adjoint of im2col).
template <typename T>
void col2im_add(const Geo& g, const T* col, T* x, int64_t ld) {
  if (is_plain_2d(g)) return col2im_plain_add(g, col, x, ld);
  if (is_stride2w_2d(g)) return col2im_stride2w_add(g, col, x, ld);
  const int64_t P = ld, ks = g.ksize(), Din = g.in_size();
  const int64_t Q0 = g.Q[0], Q1 = g.Q[1], Q2 = g.Q[2];
  for (int64_t c = 0; c < g.C; ++c) {
    T* xc = x + c * Din;  // [D0, D1, D2]
    for (int64_t kk = 0; kk < ks; ++kk) {
      const int64_t a = kk / (g.k[1] * g.k[2]), b = kk / g.k[2] % g.k[1], e = kk % g.k[2];
      const T* row = col + (c * ks + kk) * P;  // [Q0, Q1, Q2]
      const int64_t o0 = a * g.d[0] - g.p[0], o1 = b * g.d[1] - g.p[1], o2 = e * g.d[2] - g.p[2];
      int64_t l2, h2;
      valid_range(g.D[2], Q2, g.s[2], g.p[2], o2, &l2, &h2);
      for (int64_t q0 = 0; q0 < Q0; ++q0) {
        const int64_t i0 = q0 * g.s[0] + o0;
        if (i0 < 0 || i0 >= g.D[0]) continue;
        for (int64_t q1 = 0; q1 < Q1; ++q1) {
          const int64_t i1 = q1 * g.s[1] + o1;
          if (i1 < 0 || i1 >= g.D[1]) continue;
          const T* r = row + (q0 * Q1 + q1) * Q2;               // [Q2]
          T* xr = xc + (i0 * g.D[1] + i1) * g.D[2] + o2;        // x row, shifted by the kernel offset
          const int64_t st = g.s[2];
          if (st == 1) {
            add_row(xr + l2, r + l2, h2 - l2);
          } else {
            for (int64_t q = l2; q < h2; ++q) xr[q * st] += r[q];
          }
        }
      }
    }
  }
}

// ---- scratch -----------------------------------------------------------------------------

/// Per-thread scratch of `per_thread` elements for up to `want` threads: carved from the op's
/// workspace when it is large enough, else from `fallback`. Returns the number of threads
/// that got a slice (>= 1).
template <typename T>
int scratch(const OpCtx& ctx, size_t per_thread, int want, std::vector<T>* fallback, T** base) {
  want = std::max(1, want);
  if (per_thread == 0) {
    *base = nullptr;
    return want;
  }
  const size_t fit = ctx.workspace ? ctx.workspace_bytes / (per_thread * sizeof(T)) : 0;
  if (fit >= 1) {
    *base = static_cast<T*>(ctx.workspace);
    return (int)std::min<size_t>((size_t)want, fit);
  }
  fallback->resize(per_thread * (size_t)want);
  *base = fallback->data();
  return want;
}

/// Threads for a loop over `items` images doing `work` elements of work in total.
inline int conv_threads(int64_t items, int64_t work) {
  if (work < kOmpMinWork) return 1;
  return (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), items));
}

inline int bint(int64_t v, const char* what) {
  KILN_CHECK(v >= 0 && v <= 0x7fffffff, std::string(what) + " = " + std::to_string(v) + " exceeds the BLAS int range");
  return (int)v;
}

// ---- kernels -----------------------------------------------------------------------------
//
// The batch is processed in chunks of B images: the columns of a chunk sit side by side in one
// im2col buffer col [C*ks, B*P], so each group needs one GEMM per chunk with B*P columns
// (instead of B tiny GEMMs when the outputs are small). With P >= kChunkColumns a chunk is one
// image, and the GEMMs then read dy and write y in place (no gather / scatter copies): OpenBLAS
// runs LeNet's conv2 shapes (50 x 64 x 500) within 5% of the 256-column chunks, and the copies
// cost more than that. Chunks are spread over OpenMP threads, each with its own buffers; GEMMs
// inside a parallel region run single-threaded.

#ifndef KILN_CONV_CHUNK_COLUMNS
#define KILN_CONV_CHUNK_COLUMNS 64
#endif
constexpr int64_t kChunkColumns = KILN_CONV_CHUNK_COLUMNS;

/// Images per chunk: about kChunkColumns GEMM columns, at most 4M elements of im2col buffer, and
/// at least one chunk per thread.
inline int64_t chunk_images(const Geo& g, int nt) {
  const int64_t P = std::max<int64_t>(1, g.out_size());
  int64_t B = (kChunkColumns + P - 1) / P;
  B = std::min(B, std::max<int64_t>(1, (int64_t(1) << 22) / std::max<int64_t>(1, g.col_size())));
  if (nt > 1) B = std::min(B, (g.N + nt - 1) / nt);
  return std::max<int64_t>(1, std::min(B, g.N));
}
/// Threads the chunked kernels plan for (also used for workspace sizing).
inline int plan_threads(const Geo& g) { return (int)std::max<int64_t>(1, std::min<int64_t>(num_threads(), g.N)); }
/// Scratch elements per thread: col [C*ks, B*P], a gathered/result block [O, B*P], and (weight
/// gradient with several threads) a private accumulator [O, Kg].
inline size_t per_thread_elems(const Geo& g, int64_t B, bool acc) {
  return (size_t)(B * (g.col_size() + g.O * g.out_size()) + (acc ? g.O * g.Kg() : 0));
}
inline size_t conv_workspace_bytes(const Geo& g, bool backward) {
  if (g.N == 0) return 0;
  const int nt = plan_threads(g);
  const int64_t B = chunk_images(g, nt);
  const int64_t chunks = (g.N + B - 1) / B;
  const int used = (int)std::min<int64_t>(nt, chunks);
  return per_thread_elems(g, B, backward && used > 1) * (size_t)used * sizeof(double);
}

/// The GEMM operand [O, nb*P] for images n0 .. n0+nb of dy [N, O, P]: dy[n0] itself for one
/// image, else those images' rows gathered side by side into scratch [O, nb*P].
template <typename T>
const T* dy_block(const T* dy, int64_t n0, int64_t nb, int64_t O, int64_t P, T* scratch) {
  if (nb == 1) return dy + n0 * O * P;
  const int64_t ld = nb * P;
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t o = 0; o < O; ++o)
      std::memcpy(scratch + o * ld + b * P, dy + ((n0 + b) * O + o) * P, sizeof(T) * (size_t)P);
  return scratch;
}

// ---- Kiln's strided GEMM for the per-image products ---------------------------------------
//
// Float32 products of at least kStridedMinRows filters run gemm_strided_a (core/blas.cc) on one
// thread instead of OpenBLAS, which packs both operands on every call. At 1 thread on Zen 5
// (AVX-512; OpenBLAS 0.3.31 with its Cooperlake kernels / the Haswell ones the environment
// forces), in GFLOPS:
//   LeNet conv2 (50 filters, 500 taps, 64 pixels): forward 190 vs 120 / 68, data gradient 200 vs
//   130 / 81, weight gradient 148 vs 125 / 71;
//   64 filters, 576 taps, 1,024 pixels: 171 vs 141, 173 vs 167, 186 vs 122.
// It loses on few filters (LeNet conv1, 20 filters: 151 vs 199 forward), and its weight gradient,
// which needs dy transposed, loses below 128 taps and above 64 filters; those stay on OpenBLAS.
// Only where the images are already spread over threads (or there is one thread): the kernel
// does not split a product.

constexpr int64_t kStridedMinRows = 32;

inline bool strided_here() { return omp_in_parallel() || num_threads() <= 1; }

/// c [m, n] = op(A) b for the forward (A = w [m, k]) and data-gradient (ta: A = w^T, w [k, m])
/// products, b [k, n]: float32 layers of kStridedMinRows+ filters (m, or k when ta) run
/// gemm_strided_a, reading w or its transpose through strides; the rest gemm().
template <typename T>
void conv_gemm(bool ta, int m, int n, int k, const T* a, const T* b, T* c) {
  if constexpr (std::is_same<T, float>::value)
    if ((ta ? k : m) >= kStridedMinRows && strided_here() &&
        gemm_strided_a(m, n, k, a, ta ? 1 : k, ta ? m : 1, b, n, c, n, false))
      return;
  gemm(ta, false, m, n, k, T(1), a, b, T(0), c);
}

/// The weight gradient of one group (G == 1) of Mg <= 64 filters and Kg >= 128 taps, split over nt threads.
inline bool use_strided_weight(const Geo& g, int nt) {
  return g.G == 1 && g.Mg() <= 64 && g.Kg() >= 128 && simd::use_avx512() && (nt > 1 || num_threads() <= 1);
}

/// y (=|+=) conv(x, w) (+ b). x [N, C, Din], w [O, C/G, ks], b [O] or null, y [N, O, P].
template <typename T>
void conv_forward(const OpCtx& ctx, const Geo& g, const T* x, const T* w, const T* b, T* y, OpReq req) {
  if (req == OpReq::kNullOp || g.N == 0 || g.O == 0) return;
  const int64_t P = g.out_size(), Kg = g.Kg(), Mg = g.Mg(), Din = g.in_size(), colsz = g.col_size();
  const bool add = req == OpReq::kAddTo;
  const int64_t B = chunk_images(g, plan_threads(g));
  const int64_t chunks = (g.N + B - 1) / B;
  const size_t per = per_thread_elems(g, B, false);
  std::vector<T> fb;
  T* ws = nullptr;
  int nt = (int)std::min<int64_t>(conv_threads(g.N, g.N * g.O * P * std::max<int64_t>(1, Kg)), chunks);
  nt = scratch<T>(ctx, per, nt, &fb, &ws);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t n0 = ch * B, nb = std::min(B, g.N - n0), cols = nb * P;
    T* col = ws + (size_t)omp_thread() * per;  // [C*ks, cols]
    // [O, cols]: one image with a write request is computed straight into y[n0]
    const bool direct = nb == 1 && !add;
    T* tmp = direct ? y + n0 * g.O * P : col + B * colsz;
    for (int64_t i = 0; i < nb; ++i) im2col(g, x + (n0 + i) * g.C * Din, col + i * P, cols);
    for (int64_t gi = 0; gi < g.G; ++gi) {
      if (Kg > 0)  // y[g] [Mg, cols] = w[g] [Mg, Kg] . col[g] [Kg, cols]
        conv_gemm(false, bint(Mg, "num_filter / num_group"), bint(cols, "columns"), bint(Kg, "kernel size"),
                  w + gi * Mg * Kg, col + gi * Kg * cols, tmp + gi * Mg * cols);
      else
        std::fill(tmp + gi * Mg * cols, tmp + (gi + 1) * Mg * cols, T(0));
    }
    if (direct) {
      if (b)
        for (int64_t o = 0; o < g.O; ++o) {
          T* yr = tmp + o * P;  // [P]
          const T bo = b[o];
          for (int64_t q = 0; q < P; ++q) yr[q] += bo;
        }
      continue;
    }
    for (int64_t i = 0; i < nb; ++i)
      for (int64_t o = 0; o < g.O; ++o) {
        T* yr = y + ((n0 + i) * g.O + o) * P;  // [P]
        const T* tr = tmp + o * cols + i * P;  // [P]
        const T bo = b ? b[o] : T(0);
        if (add)
          for (int64_t q = 0; q < P; ++q) yr[q] += tr[q] + bo;
        else
          for (int64_t q = 0; q < P; ++q) yr[q] = tr[q] + bo;
      }
  }
}

/// dx (=|+=) conv^T(dy, w). dy [N, O, P], w [O, C/G, ks], dx [N, C, Din].
template <typename T>
void conv_backward_data(const OpCtx& ctx, const Geo& g, const T* dy, const T* w, T* dx, OpReq req) {
  if (req == OpReq::kNullOp || g.N == 0 || g.C == 0) return;
  const int64_t P = g.out_size(), Kg = g.Kg(), Mg = g.Mg(), Din = g.in_size(), colsz = g.col_size();
  const bool add = req == OpReq::kAddTo;
  const int64_t B = chunk_images(g, plan_threads(g));
  const int64_t chunks = (g.N + B - 1) / B;
  const size_t per = per_thread_elems(g, B, false);
  std::vector<T> fb;
  T* ws = nullptr;
  int nt = (int)std::min<int64_t>(conv_threads(g.N, g.N * g.C * Din * std::max<int64_t>(1, Mg)), chunks);
  nt = scratch<T>(ctx, per, nt, &fb, &ws);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t n0 = ch * B, nb = std::min(B, g.N - n0), cols = nb * P;
    T* col = ws + (size_t)omp_thread() * per;  // [C*ks, cols] = [G, Kg, cols]
    const T* blk = dy_block(dy, n0, nb, g.O, P, col + B * colsz);  // [O, cols] = [G, Mg, cols]
    for (int64_t gi = 0; gi < g.G; ++gi) {
      // col[g] [Kg, cols] = w[g]^T [Kg, Mg] . dy[g] [Mg, cols]
      if (Mg > 0)
        conv_gemm(true, bint(Kg, "kernel size"), bint(cols, "columns"), bint(Mg, "num_filter / num_group"), w + gi * Mg * Kg,
                  blk + gi * Mg * cols, col + gi * Kg * cols);
      else
        std::fill(col + gi * Kg * cols, col + (gi + 1) * Kg * cols, T(0));
    }
    for (int64_t i = 0; i < nb; ++i) {
      T* dxn = dx + (n0 + i) * g.C * Din;  // [C, Din]
      if (!add) std::fill(dxn, dxn + g.C * Din, T(0));
      col2im_add(g, col + i * P, dxn, cols);
    }
  }
}

/// conv_backward_weight with gemm_strided_a (one group): per thread, dw^T [Kg, Mk] += col [Kg, cols]
/// . dy^T [cols, Mk] over its chunks, then dw (=|+=) the sum of the threads' dw^T, transposed back.
/// B images per chunk, nt threads. Mk is Mg rounded up to 16 (whole vectors, the padding computed
/// and dropped), except where Mg exceeds a multiple of 16 by at most 4 (LeNet's conv2: 50 = 48 + 2):
/// then Mk is that multiple and the last few filters' rows dw [rem, Kg] += dy [rem, cols] . col^T
/// run the few-row product gemm() (one dot product per element), instead of 14 padded columns in
/// every kernel block (conv2 at batch 128, 1 thread: 5.4 -> 4.4 ms).
inline void conv_backward_weight_strided(const OpCtx& ctx, const Geo& g, int64_t B, int nt, const float* dy, const float* x,
                                         float* dw, OpReq req) {
  const int64_t P = g.out_size(), Kg = g.Kg(), Mg = g.Mg(), Din = g.in_size();
  const int64_t Mp = (Mg + 15) / 16 * 16, chunks = (g.N + B - 1) / B;
  const int64_t rem = Mg % 16 != 0 && Mg % 16 <= 4 && Mg > 16 ? Mg % 16 : 0, Mk = rem ? Mg - rem : Mp;
  // per thread: acc [Kg, Mk], col [Kg, B*P], dyT [B*P, Mk], and for the rest dyr [rem, B*P], accr
  // [rem, Kg]; within conv_workspace_bytes for float
  const size_t accr_at = (size_t)(Kg * Mk + B * P * (Kg + Mk + rem)), per = accr_at + (size_t)(rem * Kg);
  std::vector<float> fb;
  float* ws = nullptr;
  nt = scratch<float>(ctx, per, nt, &fb, &ws);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    const int t = omp_thread(), parts = omp_team();
    float* acc = ws + (size_t)t * per;  // [Kg, Mk]
    float* col = acc + Kg * Mk;         // [Kg, cols]
    float* dyt = col + Kg * B * P;      // [cols, Mk]
    float* dyr = dyt + B * P * Mk;      // [rem, cols]
    float* accr = acc + accr_at;        // [rem, Kg], after dyr
    std::fill(acc, acc + Kg * Mk, 0.f);
    std::fill(accr, accr + rem * Kg, 0.f);
    for (int64_t ch = t; ch < chunks; ch += parts) {
      const int64_t n0 = ch * B, nb = std::min(B, g.N - n0), cols = nb * P;
      for (int64_t i = 0; i < nb; ++i) {
        im2col(g, x + (n0 + i) * g.C * Din, col + i * P, cols);
        const float* dyn = dy + (n0 + i) * g.O * P;  // [O, P]
        if (Mk <= Mg) {
          transpose_f32(dyn, Mk, P, dyt + i * P * Mk);  // rows i*P .. of dyt [cols, Mk]
          for (int64_t j = 0; j < rem; ++j)
            std::memcpy(dyr + j * cols + i * P, dyn + (Mk + j) * P, sizeof(float) * (size_t)P);
          continue;
        }
        for (int64_t q = 0; q < P; ++q) {
          float* r = dyt + (i * P + q) * Mk;  // [Mk]
          for (int64_t o = 0; o < Mg; ++o) r[o] = dyn[o * P + q];
          for (int64_t o = Mg; o < Mk; ++o) r[o] = 0.f;
        }
      }
      gemm_strided_a((int)Kg, (int)Mk, (int)cols, col, cols, 1, dyt, Mk, acc, Mk, true);
      if (rem) gemm(false, true, (int)rem, (int)Kg, (int)cols, 1.f, dyr, col, 1.f, accr);
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t o = 0; o < Mg; ++o)
      for (int64_t k = 0; k < Kg; ++k) {
        float s = req == OpReq::kAddTo ? dw[o * Kg + k] : 0.f;
        for (int u = 0; u < parts; ++u) {
          const float* wu = ws + (size_t)u * per;  // thread u's acc, then its accr further on
          s += o < Mk ? wu[k * Mk + o] : wu[accr_at + (o - Mk) * Kg + k];
        }
        dw[o * Kg + k] = s;
      }
  }
}

/// dw (=|+=) sum_n dy[n] . im2col(x[n])^T. dy [N, O, P], x [N, C, Din], dw [O, C/G, ks].
template <typename T>
void conv_backward_weight(const OpCtx& ctx, const Geo& g, const T* dy, const T* x, T* dw, OpReq req) {
  if (req == OpReq::kNullOp) return;
  const int64_t P = g.out_size(), Kg = g.Kg(), Mg = g.Mg(), Din = g.in_size(), colsz = g.col_size();
  const int64_t wsz = g.O * Kg;  // [G, Mg, Kg]
  const bool add = req == OpReq::kAddTo;
  if (wsz == 0) return;
  if (g.N == 0 || P == 0) {
    if (!add) std::fill(dw, dw + wsz, T(0));
    return;
  }
  const int64_t B = chunk_images(g, plan_threads(g));
  const int64_t chunks = (g.N + B - 1) / B;
  int nt = (int)std::min<int64_t>(conv_threads(g.N, g.N * g.O * P * Kg), chunks);
  if constexpr (std::is_same<T, float>::value)
    if (use_strided_weight(g, nt)) return conv_backward_weight_strided(ctx, g, B, nt, dy, x, dw, req);
  const size_t per = per_thread_elems(g, B, nt > 1);
  std::vector<T> fb;
  T* ws = nullptr;
  nt = scratch<T>(ctx, per, nt, &fb, &ws);
  auto chunk = [&](int64_t ch, T* buf, T* acc, bool first) {
    const int64_t n0 = ch * B, nb = std::min(B, g.N - n0), cols = nb * P;
    T* col = buf;  // [C*ks, cols]
    for (int64_t i = 0; i < nb; ++i) im2col(g, x + (n0 + i) * g.C * Din, col + i * P, cols);
    const T* blk = dy_block(dy, n0, nb, g.O, P, col + B * colsz);  // [O, cols]
    for (int64_t gi = 0; gi < g.G; ++gi)
      gemm(false, true, bint(Mg, "num_filter / num_group"), bint(Kg, "kernel size"), bint(cols, "columns"), T(1),
           blk + gi * Mg * cols, col + gi * Kg * cols, first ? T(0) : T(1), acc + gi * Mg * Kg);
  };
  if (nt == 1) {
    for (int64_t ch = 0; ch < chunks; ++ch) chunk(ch, ws, dw, ch == 0 && !add);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_thread(), parts = omp_team();
    T* acc = ws + (size_t)t * per;  // [O, Kg]
    T* buf = acc + wsz;
    std::fill(acc, acc + wsz, T(0));
    for (int64_t ch = t; ch < chunks; ch += parts) chunk(ch, buf, acc, false);
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t i = 0; i < wsz; ++i) {
      T s = add ? dw[i] : T(0);
      for (int u = 0; u < parts; ++u) s += ws[(size_t)u * per + i];
      dw[i] = s;
    }
  }
}

/// db (=|+=) sum over n, q of dy[n, o, q]. dy [N, O, P], db [O]. Summed in double by the
/// vectorized reducer (a plain float loop is one serial add chain: 1.7 ms for LeNet's conv1).
template <typename T>
void bias_backward(int64_t N, int64_t O, int64_t P, const T* dy, T* db, OpReq req) {
  if (req == OpReq::kNullOp) return;
  const int nt = N * O * P < kOmpMinWork ? 1 : std::max(1, (int)std::min<int64_t>(num_threads(), O));
  const simd::SumReducer<T> r;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t o = 0; o < O; ++o) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += simd::reduce_run(r, dy + (n * O + o) * P, P);  // dy[n, o] [P]
    db[o] = req == OpReq::kAddTo ? T(db[o] + T(s)) : T(s);
  }
}

}  // namespace conv
}  // namespace kiln
