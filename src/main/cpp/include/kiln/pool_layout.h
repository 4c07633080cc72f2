// Pooling's data layout, one definition for its CPU kernels and shape inference (ops/pool/pooling.cc)
// and its GPU kernels (cuda/ops/pool_pooling.cu).
#pragma once

#include "kiln/op.h"

namespace kiln {

/// Where Pooling's channel and spatial dims sit in data of rank nd: channel-first (NCW, NCHW,
/// NCDHW, the default) or channel-last (NWC, NHWC, NDHWC, as MXNet's CPU kernels take).
struct PoolLayout {
  bool channel_last;
  int spatial0;  // the first spatial dim
  int channel;   // the channel dim
};

inline PoolLayout pool_layout(const Attrs& a, int nd) {
  const bool last = a.has("layout") && !a.s("layout").empty() && a.s("layout").back() == 'C';
  return {last, last ? 1 : 2, last ? nd - 1 : 1};
}

}  // namespace kiln
