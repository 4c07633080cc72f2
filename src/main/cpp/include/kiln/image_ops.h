// The index arithmetic of the image pooling / resizing operators, one definition for their CPU
// kernels and shape inference (ops/pool/bilinear_resize.cc, adaptive_pool.cc, roi_pooling.cc) and
// their GPU kernels (cuda/ops/pool_image.cu). Plain functions of integers and floats, no memory.
//
// Each follows MXNet 1.9.1's arithmetic, types included, so that the sampled positions, windows and
// weights are MXNet's bit for bit:
//   _contrib_BilinearResize2D   (contrib/bilinear_resize-inl.h, bilinear_resize.cc): the source
//       coordinate of an output index is computed in float (for float64 data too);
//   _contrib_AdaptiveAvgPooling2D (contrib/adaptive_avg_pooling.cc): START_IND / END_IND divide in float;
//   ROIPooling (roi_pooling.cc): coordinates are rounded half away from zero after scaling in the data
//       type, bins are computed in the data type.
#pragma once
#include <cmath>
#include <cstdint>

#include "kiln/int_convert.h"  // KILN_HOST_DEVICE

namespace kiln {
namespace image {

// ---- _contrib_BilinearResize2D ----------------------------------------------------------------

/// The ratio of input to output coordinates along one dim (MXNet's area_pixel_compute_scale<float>):
/// align_corners maps the corner pixels' centres onto each other, (in - 1) / (out - 1); otherwise
/// in / out; 0 for an output of one element.
KILN_HOST_DEVICE inline float bilinear_scale(int64_t in, int64_t out, bool align_corners) {
  if (out <= 1) return 0.f;
  return align_corners ? (float)(in - 1) / (float)(out - 1) : (float)in / (float)out;
}

/// The source coordinate of output index o (MXNet's area_pixel_compute_source_index<float>, linear):
/// scale * o with align_corners, else scale * (o + 0.5) - 0.5 (in double, as MXNet's expression is)
/// clamped below at 0.
KILN_HOST_DEVICE inline float bilinear_source(float scale, int64_t o, bool align_corners) {
  if (align_corners) return scale * (float)o;
  const float s = (float)((double)scale * ((double)o + 0.5) - 0.5);
  return s < 0.f ? 0.f : s;
}

/// What output index o reads along one dim: i0 and i0 + step (step 0 at the last input index), with
/// weights 1 - l1 and l1.
struct BilinearTap {
  int64_t i0;
  int64_t step;
  float l1;
};

/// The tap of output index o for an input of `in` (> 0) elements. MXNet truncates the coordinate to
/// int; the index is also clamped to [0, in - 1], which only matters where float cannot hold the
/// coordinates (inputs beyond 2^24 elements), so that no read leaves the input.
KILN_HOST_DEVICE inline BilinearTap bilinear_tap(float scale, int64_t o, int64_t in, bool align_corners) {
  const float r = bilinear_source(scale, o, align_corners);
  int64_t i0 = (int64_t)r;
  if (i0 > in - 1) i0 = in - 1;
  if (i0 < 0) i0 = 0;
  BilinearTap t;
  t.i0 = i0;
  t.step = i0 < in - 1 ? 1 : 0;
  t.l1 = r - (float)i0;
  return t;
}

/// The first output index whose tap's i0 is >= i (out when there is none): i0 does not decrease
/// with o, so the outputs that read input index i are those from first_reader(i - 1) while i0 <= i.
KILN_HOST_DEVICE inline int64_t bilinear_first_reader(float scale, int64_t i, int64_t in, int64_t out,
                                                       bool align_corners) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (bilinear_tap(scale, mid, in, align_corners).i0 < i) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/// The weight with which output index o's tap t reads input index i (0, 1 - l1, l1, or both where
/// i0 + step == i0), in the data type as MXNet computes its lambdas.
template <typename T>
KILN_HOST_DEVICE inline T bilinear_weight(const BilinearTap& t, int64_t i) {
  const T l1 = (T)t.l1, l0 = (T)1 - l1;
  T w = 0;
  if (t.i0 == i) w += l0;
  if (t.i0 + t.step == i) w += l1;
  return w;
}

// ---- _contrib_AdaptiveAvgPooling2D --------------------------------------------------------------

/// The input window [start, end) of output index o of `out` along a dim of `in` elements:
/// floor(o * in / out) and ceil((o + 1) * in / out), divided in float as MXNet's START_IND /
/// END_IND. Clamped to [0, in] (float rounding beyond 2^24 could otherwise reach past the input).
KILN_HOST_DEVICE inline void adaptive_window(int64_t o, int64_t out, int64_t in, int64_t* start, int64_t* end) {
  int64_t s = (int64_t)std::floor((float)(o * in) / (float)out);
  int64_t e = (int64_t)std::ceil((float)((o + 1) * in) / (float)out);
  s = s < 0 ? 0 : (s > in ? in : s);
  e = e < s ? s : (e > in ? in : e);
  *start = s;
  *end = e;
}

// ---- ROIPooling ------------------------------------------------------------------------------------

/// Coordinates beyond this magnitude (after scaling) are clamped to it before rounding: far outside
/// any feature map, and small enough that the window arithmetic below stays exact in int64.
constexpr double kRoiCoordLimit = 1073741824.0;  // 2^30

/// One ROI's box on the feature map: rounded start and end (inclusive) per dim, and the bin sizes.
template <typename T>
struct RoiBox {
  int64_t x0, y0;  // rounded start (w, h)
  T bin_h, bin_w;  // roi height / pooled_h, roi width / pooled_w (roi sizes at least 1)
};

/// The scaled, rounded coordinate v * spatial_scale (MXNet: round(v * spatial_scale) in the data
/// type, half away from zero); NaN must have been rejected by the caller.
template <typename T>
KILN_HOST_DEVICE inline int64_t roi_coord(T v, float spatial_scale) {
  double s = (double)(T)(v * (T)spatial_scale);
  s = s < -kRoiCoordLimit ? -kRoiCoordLimit : (s > kRoiCoordLimit ? kRoiCoordLimit : s);
  return (int64_t)std::round(s);
}

/// The box of roi [batch, x1, y1, x2, y2] (5 values): MXNet forces a malformed roi (end < start) to
/// one element.
template <typename T>
KILN_HOST_DEVICE inline RoiBox<T> roi_box(const T* roi, float spatial_scale, int64_t pooled_h, int64_t pooled_w) {
  RoiBox<T> b;
  b.x0 = roi_coord<T>(roi[1], spatial_scale);
  b.y0 = roi_coord<T>(roi[2], spatial_scale);
  const int64_t x1 = roi_coord<T>(roi[3], spatial_scale), y1 = roi_coord<T>(roi[4], spatial_scale);
  const int64_t h = y1 - b.y0 + 1 > 1 ? y1 - b.y0 + 1 : 1, w = x1 - b.x0 + 1 > 1 ? x1 - b.x0 + 1 : 1;
  b.bin_h = (T)h / (T)pooled_h;
  b.bin_w = (T)w / (T)pooled_w;
  return b;
}

/// The input range [lo, hi) of bin p along one dim: floor(p * bin) + start to ceil((p + 1) * bin) +
/// start, clipped to [0, size].
template <typename T>
KILN_HOST_DEVICE inline void roi_bin(int64_t p, T bin, int64_t start, int64_t size, int64_t* lo, int64_t* hi) {
  int64_t a = (int64_t)std::floor((T)p * bin) + start;
  int64_t b = (int64_t)std::ceil((T)(p + 1) * bin) + start;
  a = a < 0 ? 0 : (a > size ? size : a);
  b = b < 0 ? 0 : (b > size ? size : b);
  *lo = a;
  *hi = b;
}

/// Whether roi value v is a usable batch index for a batch of n: a number that truncates (as
/// MXNet's static_cast<int>) into [0, n).
template <typename T>
KILN_HOST_DEVICE inline bool roi_batch_ok(T v, int64_t n) {
  return v > (T)-1 && v < (T)n;  // false for NaN
}

/// Whether the four coordinates of roi (values 1..4) are numbers (infinities are clamped).
template <typename T>
KILN_HOST_DEVICE inline bool roi_coords_ok(const T* roi) {
  return roi[1] == roi[1] && roi[2] == roi[2] && roi[3] == roi[3] && roi[4] == roi[4];
}

}  // namespace image
}  // namespace kiln
