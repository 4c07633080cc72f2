// The bounding-box arithmetic of the _contrib_box_* operators, one definition for their CPU kernels
// (ops/contrib/bounding_box.cc) and their GPU kernels (cuda/ops/contrib_box.cu). Plain functions of
// values, no memory beyond the pointers given.
//
// Each follows MXNet 1.9.1 (src/operator/contrib/bounding_box-inl.h, bounding_box-common.h),
// comparisons included, so that NaN and infinite coordinates give MXNet's results:
//   a box is 4 values, corner = (xmin, ymin, xmax, ymax) or center = (x, y, width, height);
//   intersect along one dim: min(right) - max(left), 0 unless positive (NaN gives 0);
//   area: width * height, 0 when either is negative;
//   _contrib_box_iou: 0 where the intersection is not positive, else inter / (area_a + area_b - inter);
//   _contrib_box_nms: inter / (area_a + area_b - inter) without the shortcut, a box suppressed when
//       that is above overlap_thresh.
#pragma once
#include <climits>
#include <cmath>
#include <cstdint>

#include "kiln/int_convert.h"  // KILN_HOST_DEVICE

namespace kiln {
namespace box {

/// The overlap along one dim of a = (a1, .., a2) and b = (b1, .., b2) (values 0 and 2 of the
/// pointers): corner boxes or center boxes (centre, .., size).
template <typename T>
KILN_HOST_DEVICE inline T intersect_1d(const T* a, const T* b, bool center) {
  const T a1 = a[0], a2 = a[2], b1 = b[0], b2 = b[2];
  T w;
  if (!center) {
    const T left = a1 > b1 ? a1 : b1;
    const T right = a2 < b2 ? a2 : b2;
    w = right - left;
  } else {
    const T aw = a2 / 2, bw = b2 / 2;
    const T al = a1 - aw, ar = a1 + aw, bl = b1 - bw, br = b1 + bw;
    const T left = bl > al ? bl : al;
    const T right = br < ar ? br : ar;
    w = right - left;
  }
  return w > 0 ? w : T(0);
}

/// The intersection area of boxes a and b (4 values each).
template <typename T>
KILN_HOST_DEVICE inline T intersect(const T* a, const T* b, bool center) {
  T i = intersect_1d(a, b, center);
  i *= intersect_1d(a + 1, b + 1, center);
  return i;
}

/// The area of box b (MXNet's BoxArea): 0 when the width or the height is negative.
template <typename T>
KILN_HOST_DEVICE inline T area(const T* b, bool center) {
  const T w = center ? b[2] : b[2] - b[0];
  const T h = center ? b[3] : b[3] - b[1];
  if (w < 0 || h < 0) return T(0);
  return w * h;
}

/// _contrib_box_iou of boxes a and b.
template <typename T>
KILN_HOST_DEVICE inline T iou(const T* a, const T* b, bool center) {
  const T i = intersect(a, b, center);
  if (i <= 0) return T(0);
  return i / (area(a, center) + area(b, center) - i);
}

/// Whether box_nms suppresses box b after the kept box a: their overlap is above thresh (a float
/// parameter compared in the data type's precision, as MXNet's `iou > thresh`).
template <typename T>
KILN_HOST_DEVICE inline bool nms_overlaps(const T* a, const T* b, bool center, float thresh) {
  const T i = intersect(a, b, center);
  const T v = i / (area(a, center) + area(b, center) - i);
  return v > thresh;
}

/// A class id held as a float, as MXNet's static_cast<int> leaves it on x86: truncated, INT_MIN for
/// NaN and values outside int (no undefined conversion here).
template <typename T>
KILN_HOST_DEVICE inline int class_id(T v) {
  const double d = (double)v;
  if (!(d > -2147483649.0 && d < 2147483648.0)) return INT_MIN;
  return (int)d;
}

/// Whether box_nms keeps box row `row` (width values) as a candidate: score above valid_thresh and,
/// with an id column, an id other than background_id (both compared in the data type).
template <typename T>
KILN_HOST_DEVICE inline bool nms_candidate(const T* row, int score_index, int id_index, float valid_thresh,
                                           int background_id) {
  if (!(row[score_index] > (T)valid_thresh)) return false;
  return id_index < 0 || row[id_index] != (T)background_id;
}

/// box_nms's order of candidates i and j of one batch (scores si, sj, both numbers): descending
/// score, ties by position (MXNet's stable sort).
template <typename T>
KILN_HOST_DEVICE inline bool nms_before(T si, int64_t i, T sj, int64_t j) {
  return si > sj || (si == sj && i < j);
}

/// Converts the 4 coordinates at p of a box_nms output row from corner to center (or back), as
/// MXNet's corner_to_center / center_to_corner: rows whose first coordinate is negative (the -1
/// fill, and kept boxes left of 0) stay as they are.
template <typename T>
KILN_HOST_DEVICE inline void convert_format(T* p, bool to_center) {
  if (p[0] < 0) return;
  if (to_center) {
    const T l = p[0], t = p[1], r = p[2], b = p[3];
    p[0] = (l + r) / 2;
    p[1] = (t + b) / 2;
    p[2] = r - l;
    p[3] = b - t;
  } else {
    const T x = p[0], y = p[1], w = p[2] / 2, h = p[3] / 2;
    p[0] = x - w;
    p[1] = y - h;
    p[2] = x + w;
    p[3] = y + h;
  }
}

/// bipartite_matching's order of score entries (values a at flat position i, b at j of one batch):
/// by value (descending, or ascending with is_ascend), ties by position, NaN last (it never passes
/// the threshold, so the matching stops there).
template <typename T>
KILN_HOST_DEVICE inline bool match_before(T a, int64_t i, T b, int64_t j, bool ascend) {
  const bool an = a != a, bn = b != b;
  if (an || bn) return !an && bn ? true : (an && bn ? i < j : false);
  if (a != b) return ascend ? a < b : a > b;
  return i < j;
}

/// Whether a score passes bipartite_matching's threshold (a float compared in the data type).
template <typename T>
KILN_HOST_DEVICE inline bool match_passes(T s, float threshold, bool ascend) {
  return ascend ? s < (T)threshold : s > (T)threshold;
}

/// _contrib_box_encode of one anchor: targets t[4] and masks m[4] from sample s, anchor a (corner),
/// matched reference ref (corner; read only when the sample is positive), means and stds.
/// MXNet's `w * 0.5` terms are double expressions (a double literal), kept so here.
template <typename T>
KILN_HOST_DEVICE inline void encode(T s, const T* a, const T* ref, const T* means, const T* stds, T* t, T* m) {
  const T valid = s > 0.5 ? T(1) : T(0);
  for (int k = 0; k < 4; ++k) m[k] = valid;
  if (!(valid > T(0.5))) {
    for (int k = 0; k < 4; ++k) t[k] = T(0);
    return;
  }
  const T rw = ref[2] - ref[0], rh = ref[3] - ref[1];
  const T rx = (T)((double)ref[0] + (double)rw * 0.5), ry = (T)((double)ref[1] + (double)rh * 0.5);
  const T aw = a[2] - a[0], ah = a[3] - a[1];
  const T ax = (T)((double)a[0] + (double)aw * 0.5), ay = (T)((double)a[1] + (double)ah * 0.5);
  t[0] = ((rx - ax) / aw - means[0]) / stds[0];
  t[1] = ((ry - ay) / ah - means[1]) / stds[1];
  t[2] = ((T)std::log(rw / aw) - means[2]) / stds[2];
  t[3] = ((T)std::log(rh / ah) - means[3]) / stds[3];
}

/// _contrib_box_decode of one box: offsets x[4] against anchor a (corner or center) into a corner
/// box o[4]; stds and clip (applied when clip > 0: min(d, clip), NaN becoming clip) in the data type.
template <typename T>
KILN_HOST_DEVICE inline void decode(const T* x, const T* a, bool anchor_center, const T* stds, bool has_clip, T clip,
                                    T* o) {
  T ax = a[0], ay = a[1], aw = a[2], ah = a[3];
  if (!anchor_center) {
    aw = aw - ax;
    ah = ah - ay;
    ax = (T)((double)ax + (double)aw * 0.5);
    ay = (T)((double)ay + (double)ah * 0.5);
  }
  const T ox = x[0] * stds[0] * aw + ax;
  const T oy = x[1] * stds[1] * ah + ay;
  T dw = x[2] * stds[2], dh = x[3] * stds[3];
  if (has_clip) {
    dw = dw < clip ? dw : clip;
    dh = dh < clip ? dh : clip;
  }
  dw = (T)std::exp(dw);
  dh = (T)std::exp(dh);
  const T ow = (T)((double)(dw * aw) * 0.5), oh = (T)((double)(dh * ah) * 0.5);
  o[0] = ox - ow;
  o[1] = oy - oh;
  o[2] = ox + ow;
  o[3] = oy + oh;
}

}  // namespace box
}  // namespace kiln
