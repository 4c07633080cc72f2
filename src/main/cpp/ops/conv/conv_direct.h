// Direct AVX-512 convolution kernels for thin layers (conv_direct.cc) and the process-wide
// algorithm choice between them and im2col + GEMM (Engine.setConvolutionAlgorithm in Java).
#pragma once
#include "conv_common.h"

namespace kiln {
namespace conv {

/// Values of kiln::set_conv_algo (kernel_common.h; thread-safe). kConvDirect and kConvWinograd
/// still fall back to im2col where their kernels do not apply (direct_supported, winograd_supported);
/// kConvWinograd4 (F(4x4, 3x3)) to F(2x2, 3x3), then im2col.
enum ConvAlgo { kConvAuto = 0, kConvIm2col = 1, kConvDirect = 2, kConvWinograd = 3, kConvWinograd4 = 4 };

/// The direct kernels apply: AVX-512 CPU, float32 (checked by the caller), one group, 1-D/2-D,
/// stride 1, dilation 1 (any padding).
bool direct_supported(const Geo& g);
/// The current choice for this geometry and pass: direct when supported and chosen, or, under
/// auto, for the forward of a layer with few taps (C * KH * KW); the weight gradient (weight_grad)
/// stays on im2col + GEMM under auto (measured faster, see conv_direct.cc).
bool use_direct(const Geo& g, bool weight_grad);
/// Workspace the direct kernels want under the current choice (0 when they are not chosen; a
/// later switch to them falls back to a heap buffer).
size_t direct_workspace_bytes(const Geo& g, bool backward);

/// y (=|+=) conv(x, w) + b. x [N, C, H, W], w [O, C, KH, KW], b [O] or null, y [N, O, OH, OW].
void conv_direct_forward(const OpCtx& ctx, const Geo& g, const float* x, const float* w, const float* b, float* y,
                         OpReq req);
/// dw (=|+=) the weight gradient. dy [N, O, OH, OW], x [N, C, H, W], dw [O, C, KH, KW].
void conv_direct_backward_weight(const OpCtx& ctx, const Geo& g, const float* dy, const float* x, float* dw,
                                 OpReq req);

}  // namespace conv
}  // namespace kiln
