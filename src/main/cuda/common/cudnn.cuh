// cuDNN (cudnn_dl.cc, opened with dlopen) as the conv family uses it: the legacy convolution API
// on NCHW / NCDHW tensors. Host code only; included by .cc and .cu files. No cuDNN header is
// needed: cudnn_dl.cc declares the few entry points it calls itself.
//
// Environment:
//   KILN_CUDNN=0      never load cuDNN: Convolution and Deconvolution run the im2col/col2im +
//                     cuBLAS kernels (ops/conv_register.cu) on every GPU.
//   KILN_CUDA_LIBDIRS directories searched for libcudnn.so.9 first (':'-separated), as for cuBLAS.
//   MXNET_CUDNN_AUTOTUNE_DEFAULT  cudnn_tune for ops that leave it None: 0 off, 1 limited_workspace
//                     (default, as MXNet), 2 fastest.
//   KILN_CUDNN_DETERMINISTIC=0  nondeterministic algorithms are not put last.
#pragma once
#include <cstdint>
#include <string>

#include "common/cuda_check.cuh"

namespace kiln {
namespace cuda {

/// "" when cuDNN is loaded and usable, else why not (disabled by KILN_CUDNN=0, not found, ...).
const std::string& cudnn_status();
/// One line for describe(): the cuDNN version and path, or why the im2col + cuBLAS path is used.
std::string cudnn_describe();

/// A convolution x [N, C, D...] * w [O, C/G, k...] -> y [N, O, Q...] with the spatial dims padded
/// to 3 (leading entries: size 1, kernel 1, stride 1, dilation 1, pad 0), as the CPU's Geo.
struct CudnnConv {
  int nsp = 2;                       // spatial dims handed to cuDNN: 2 (1-D and 2-D) or 3
  int64_t N = 0, C = 0, O = 0, G = 1;
  int64_t D[3] = {1, 1, 1}, Q[3] = {1, 1, 1};
  int64_t k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1}, p[3] = {0, 0, 0};
  // How the algorithm is chosen (the op's MXNet parameters, not geometry): tune -1 = cudnn_tune
  // None (MXNET_CUDNN_AUTOTUNE_DEFAULT, default 1), 0 'off' (heuristics), 1 'limited_workspace'
  // (timed, workspace <= ws_limit), 2 'fastest' (timed, any workspace up to cuDNN's cap);
  // ws_limit = the op's `workspace` in bytes; cudnn_off: never cuDNN (the fallback kernels).
  int tune = -1;
  size_t ws_limit = size_t(1024) << 20;
  bool cudnn_off = false;
};

// Each function returns false, having done nothing, when cuDNN cannot take the call (not loaded,
// disabled, a geometry or dtype it rejects, sizes over its 32-bit limits); the caller then runs
// the fallback kernels. Errors while running (after a successful setup) throw KilnError naming
// `op` and the cuDNN status. `add` selects beta = 1 (kAddTo). dt is kFloat32 or kFloat64, or for the convolution passes
// kFloat16 / kBfloat16 (float accumulation, tensor-op math; the bias functions decline those).

/// y (=|+=) conv(x, w).   x: [N, C, D...], w: [O, C/G, k...], y: [N, O, Q...]
bool cudnn_conv_forward(const char* op, int device, const OpCtx& ctx, DType dt, const CudnnConv& g, const void* x,
                        const void* w, void* y, bool add);
/// dx (=|+=) conv^T(dy, w).   dy: [N, O, Q...], w: [O, C/G, k...], dx: [N, C, D...]
bool cudnn_conv_backward_data(const char* op, int device, const OpCtx& ctx, DType dt, const CudnnConv& g,
                              const void* dy, const void* w, void* dx, bool add);
/// dw (=|+=) sum_n dy[n] (x) x[n].   x: [N, C, D...], dy: [N, O, Q...], dw: [O, C/G, k...]
bool cudnn_conv_backward_filter(const char* op, int device, const OpCtx& ctx, DType dt, const CudnnConv& g,
                                const void* x, const void* dy, void* dw, bool add);
/// y[n, c, ...] += b[c].   y: [N, C, sp[0], sp[1], sp[2]], b: [C]; nsp as CudnnConv::nsp
bool cudnn_add_bias(const char* op, int device, const OpCtx& ctx, DType dt, int nsp, int64_t N, int64_t C,
                    const int64_t* sp, const void* b, void* y);
/// db[c] (=|+=) sum over n and space of dy[n, c, ...].   dy: [N, C, sp...], db: [C]
bool cudnn_bias_grad(const char* op, int device, const OpCtx& ctx, DType dt, int nsp, int64_t N, int64_t C,
                     const int64_t* sp, const void* dy, void* db, bool add);

}  // namespace cuda
}  // namespace kiln
