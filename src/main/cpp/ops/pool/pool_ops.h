// The pool operator family (Pooling, UpSampling, Pad, Crop, BilinearResize2D, AdaptiveAvgPooling2D, ROIPooling): one register_* function per file,
// plus the small registration and kernel helpers the files share.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace pool {

void register_pooling(OpRegistry& r);     // pooling.cc
void register_upsampling(OpRegistry& r);  // upsampling.cc
void register_pad(OpRegistry& r);         // pad.cc
void register_crop(OpRegistry& r);        // crop.cc
void register_bilinear_resize(OpRegistry& r);  // bilinear_resize.cc: _contrib_BilinearResize2D
void register_adaptive_pool(OpRegistry& r);    // adaptive_pool.cc: _contrib_AdaptiveAvgPooling2D
void register_roi_pooling(OpRegistry& r);      // roi_pooling.cc: ROIPooling

/// Zeroes n values unless req is kAddTo / kNullOp (the start of an accumulating backward).
template <typename DT>
inline void zero_unless_add(OpReq req, int64_t n, DT* p) {
  if (req == OpReq::kWriteTo || req == OpReq::kWriteInplace) std::fill(p, p + n, DT(0));
}

}  // namespace pool
}  // namespace kiln
