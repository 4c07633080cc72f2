// float16 and bfloat16: element conversions, and how every operator computes in them.
//
// Storage. float16 is IEEE binary16 (_Float16, F16C on the CPU, __half on the GPU); bfloat16 is
// the upper 16 bits of a float32 (MXNet's type flag 12). Conversions to either round to nearest
// even; NaN stays NaN; overflow gives Inf (float16 above 65504).
//
// Compute. An operator whose kernel does not handle a low-precision type itself runs through a
// promoting wrapper (core/low_precision.cc, installed on every OpDef after registration): its
// float16/bfloat16 inputs are widened to float32 scratch, the float32 kernel runs, and each
// float16/bfloat16 output is rounded once from the float32 result (grad_req add: rounded once
// from old + new). So a low-precision op accumulates in float32 and rounds per output, as MXNet's
// half_t kernels with a float32 accumulation type do. Kernels that take a low-precision type
// natively say so in OpDef::native_low_precision_{cpu,gpu} (Cast, amp_cast, amp_multicast, the
// mp_* updates, all_finite), and the wrapper leaves those blobs alone.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "kiln/op.h"

namespace kiln {

/// Bits of OpDef::native_low_precision_{cpu,gpu}.
constexpr uint8_t kNativeFloat16 = 1;
constexpr uint8_t kNativeBfloat16 = 2;
constexpr uint8_t kNativeLowPrecision = kNativeFloat16 | kNativeBfloat16;

inline bool is_low_precision(DType t) { return t == DType::kFloat16 || t == DType::kBfloat16; }
/// float16, bfloat16, float32 or float64.
inline bool is_float_type(DType t) { return is_low_precision(t) || t == DType::kFloat32 || t == DType::kFloat64; }

/// bfloat16 bits -> float32 (exact).
inline float bf16_to_float(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN.
inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/// dst[0:n] = float(src[0:n]) for a float16 or bfloat16 source (host memory; OpenMP).
void low_precision_to_float(const void* src, DType st, float* dst, int64_t n);
/// dst[0:n] = round(src[0:n]) (or round(float(dst) + src) when accumulate) for a float16 or
/// bfloat16 destination (host memory; OpenMP).
void float_to_low_precision(const float* src, void* dst, DType dt, int64_t n, bool accumulate);

/// Runs `k` (a kernel of `op`) with every float16/bfloat16 blob whose type is not in `native`
/// widened to float32 around it, as the promoting wrapper does: for kernels that take a
/// low-precision type natively but fall back to their float32 path for some calls (a convolution
/// cuDNN declines). Scratch comes from the host or from the device's caching allocator.
void call_widened(const OpDef& op, const Kernel& k, uint8_t native, const OpCtx& ctx, const Attrs& a,
                  const std::vector<TBlob>& in, const std::vector<OpReq>& req, const std::vector<TBlob>& out);

/// Wraps every OpDef's cpu and gpu kernel in the promoting wrapper described above (called once,
/// after every operator and GPU kernel is registered).
void install_low_precision_wrappers(OpRegistry& r);

}  // namespace kiln
