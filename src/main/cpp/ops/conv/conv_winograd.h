// Winograd kernels for 3x3 convolutions: F(2x2, 3x3) (conv_winograd.cc) and F(4x4, 3x3) on AVX-512
// for channel counts that are multiples of 16 (conv_winograd4.cc); each with the forward, the data
// gradient and the weight gradient.
#pragma once
#include "conv_direct.h"

namespace kiln {
namespace conv {

/// Smallest input and output channel counts the automatic choice sends to Winograd (thinner layers
/// have too little GEMM work per transformed tile; ResNet's first layer, C = 3, stays on im2col).
constexpr int64_t kWinogradMinChannels = 16;
/// Tiles per image (ceil(OH/2) x ceil(OW/2)) where the automatic choice switches: the forward and
/// the data gradient use Winograd from this many tiles up, the weight gradient up to this many
/// (measurements in conv_winograd.cc, use_winograd).
constexpr int64_t kWinogradAutoTiles = 16;

/// Output pixels over the batch below which the automatic choice keeps im2col (the per-call weight
/// transforms cost more than Winograd saves; measurements in conv_winograd.cc, use_winograd4).
constexpr int64_t kWinogradMinPixels = 128;

/// The three passes of a convolution.
enum WinogradPass { kWinogradForward, kWinogradData, kWinogradWeight };

/// Winograd applies: 2-D, 3x3, stride 1, dilation 1, one group (float32 is checked by the caller);
/// the data gradient also needs padding <= 2.
bool winograd_supported(const Geo& g, WinogradPass pass);
/// F(4x4, 3x3) applies: winograd_supported, both channel counts multiples of 16, and AVX-512.
bool winograd4_supported(const Geo& g, WinogradPass pass);
/// The current choice of F(4x4, 3x3) for this geometry and pass (kConvWinograd4: wherever
/// supported; auto: where it was measured to win, see conv_winograd.cc).
bool use_winograd4(const Geo& g, WinogradPass pass);
/// The current choice of F(2x2, 3x3) (false where use_winograd4 holds; kConvWinograd, and
/// kConvWinograd4 where F(4x4) does not apply: wherever supported; auto: also both channel counts
/// >= kWinogradMinChannels, and the image size that pass wins at).
bool use_winograd(const Geo& g, WinogradPass pass);
/// Workspace of the chosen Winograd passes (forward, or the larger of the two gradients): transformed
/// weights [16, Co, Ci] (or per-thread weight-gradient accumulators) plus per-thread tile buffers (0
/// when Winograd is not chosen; a later switch to it falls back to a heap buffer).
size_t winograd_workspace_bytes(const Geo& g, bool backward);
/// The same for the F(4x4, 3x3) passes.
size_t winograd4_workspace_bytes(const Geo& g, bool backward);

/// y (=|+=) conv(x, w) + b. x [N, C, H, W], w [O, C, 3, 3], b [O] or null, y [N, O, OH, OW].
void conv_winograd_forward(const OpCtx& ctx, const Geo& g, const float* x, const float* w, const float* b, float* y,
                           OpReq req);
/// dx (=|+=) conv^T(dy, w). dy [N, O, OH, OW], w [O, C, 3, 3], dx [N, C, H, W].
void conv_winograd_backward_data(const OpCtx& ctx, const Geo& g, const float* dy, const float* w, float* dx, OpReq req);
/// dw (=|+=) the weight gradient. dy [N, O, OH, OW], x [N, C, H, W], dw [O, C, 3, 3].
void conv_winograd_backward_weight(const OpCtx& ctx, const Geo& g, const float* dy, const float* x, float* dw, OpReq req);

/// The F(4x4, 3x3) versions of the three passes (same arguments; winograd4_supported must hold).
void conv_winograd4_forward(const OpCtx& ctx, const Geo& g, const float* x, const float* w, const float* b, float* y,
                            OpReq req);
void conv_winograd4_backward_data(const OpCtx& ctx, const Geo& g, const float* dy, const float* w, float* dx, OpReq req);
void conv_winograd4_backward_weight(const OpCtx& ctx, const Geo& g, const float* dy, const float* x, float* dw,
                                    OpReq req);

}  // namespace conv
}  // namespace kiln
