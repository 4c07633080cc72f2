// What the two Winograd kernels share (conv_winograd.cc F(2x2, 3x3), conv_winograd4.cc F(4x4, 3x3)):
// the geometry of a pass, the carving of its scratch and the walk over the tile rows of a chunk.
// Internal to ops/conv.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv_direct.h"

namespace kiln {
namespace conv {
namespace wino {

/// Geometry of one pass: in [N, Ci, IH, IW] -> out [N, Co, OH, OW] with padding ph, pw. The data
/// gradient is the forward of dy with flipped weights: in = dy, out = dx, padding 2 - pad.
struct PassGeo {
  int64_t N, Ci, Co, IH, IW, OH, OW, ph, pw;
  /// The forward (data -> output) and the weight gradient's pass.
  static PassGeo forward(const Geo& g) { return {g.N, g.C, g.O, g.D[1], g.D[2], g.Q[1], g.Q[2], g.p[1], g.p[2]}; }
  /// The data gradient (dy -> dx).
  static PassGeo backward(const Geo& g) {
    return {g.N, g.O, g.C, g.Q[1], g.Q[2], g.D[1], g.D[2], 2 - g.p[1], 2 - g.p[2]};
  }
};

/// Scratch of a pass in floats: `shared`, then `per` for each thread.
struct Scratch {
  size_t shared, per;
  size_t floats(int nt) const { return shared + per * (size_t)nt; }
};

/// Carves `s` for up to `threads` threads from the op's workspace when it holds at least one
/// thread's share, else from `fallback`; returns the number of threads that got a share.
inline int carve(const OpCtx& ctx, int threads, const Scratch& s, std::vector<float>* fallback, float** base) {
  const size_t avail = ctx.workspace ? ctx.workspace_bytes / sizeof(float) : 0;
  if (avail >= s.floats(1)) {
    *base = static_cast<float*>(ctx.workspace);
    return (int)std::min<size_t>((size_t)threads, (avail - s.shared) / s.per);
  }
  fallback->resize(s.floats(threads));
  *base = fallback->data();
  return threads;
}

/// A run of consecutive tiles of one tile row: image n, tile row th, tile columns tw0 .. tw0+cnt,
/// at position k of the chunk.
struct Segment {
  int64_t n, th, tw0, cnt, k;
};

/// Calls f(segment) for the tile rows that tiles t0 .. t0+tc cover, in order (tiles_h x tiles_w
/// tiles per image, numbered image by image, row by row).
template <typename F>
void for_segments(int64_t tiles_h, int64_t tiles_w, int64_t t0, int64_t tc, F f) {
  const int64_t per_image = tiles_h * tiles_w;
  for (int64_t k = 0; k < tc;) {
    const int64_t t = t0 + k, n = t / per_image, r = t % per_image, tw0 = r % tiles_w;
    const int64_t cnt = std::min(tiles_w - tw0, tc - k);
    f(Segment{n, r / tiles_w, tw0, cnt, k});
    k += cnt;
  }
}

}  // namespace wino
}  // namespace conv
}  // namespace kiln
