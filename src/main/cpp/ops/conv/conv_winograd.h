// Winograd F(2x2, 3x3) kernels for 3x3 convolutions (conv_winograd.cc): the forward and the data
// gradient; the weight gradient stays on im2col + GEMM.
#pragma once
#include "conv_direct.h"

namespace kiln {
namespace conv {

/// Smallest input and output channel counts the automatic choice sends to Winograd (thinner layers
/// have too little GEMM work per transformed tile; ResNet's first layer, C = 3, stays on im2col).
constexpr int64_t kWinogradMinChannels = 16;

/// Winograd applies: 2-D, 3x3, stride 1, dilation 1, one group (float32 is checked by the caller);
/// the data gradient also needs padding <= 2.
bool winograd_supported(const Geo& g, bool data_grad);
/// The current choice for this geometry and pass (kConvWinograd: wherever supported; auto: also
/// both channel counts >= kWinogradMinChannels).
bool use_winograd(const Geo& g, bool data_grad);
/// Workspace of the chosen Winograd pass: transformed weights [16, Co, Ci] plus per-thread tile
/// buffers (0 when Winograd is not chosen; a later switch to it falls back to a heap buffer).
size_t winograd_workspace_bytes(const Geo& g, bool backward);

/// y (=|+=) conv(x, w) + b. x [N, C, H, W], w [O, C, 3, 3], b [O] or null, y [N, O, OH, OW].
void conv_winograd_forward(const OpCtx& ctx, const Geo& g, const float* x, const float* w, const float* b, float* y,
                           OpReq req);
/// dx (=|+=) conv^T(dy, w). dy [N, O, OH, OW], w [O, C, 3, 3], dx [N, C, H, W].
void conv_winograd_backward_data(const OpCtx& ctx, const Geo& g, const float* dy, const float* w, float* dx, OpReq req);

}  // namespace conv
}  // namespace kiln
