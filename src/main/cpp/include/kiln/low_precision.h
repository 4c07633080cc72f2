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

/// Wraps every OpDef's cpu and gpu kernel in the promoting wrapper described above, and the
/// kernels of every OpDef with integers_via_float64 in the integer wrapper (below); called once,
/// after every operator and GPU kernel is registered.
void install_low_precision_wrappers(OpRegistry& r);

// Integers. The elementwise families (binary, broadcast, scalar, unary, reductions, fills, sums)
// take uint8/int8/int32/int64 arrays as MXNet does, through their float64 kernels: integer inputs
// are widened to float64 scratch, the kernel runs, and each integer output is truncated toward zero
// and wrapped into its type (wrap_to_int, kiln/int_convert.h), so +, -, *, sums, max and min equal
// MXNet's native integer arithmetic (wrapping included) while the values are exact in double
// (|x| < 2^53), and division truncates as C's does. Parameters MXNet applies as DType(p) are
// converted first (_mul_scalar(int, 0.5) multiplies by 0). Where MXNet's integer arithmetic has no
// defined answer, Kiln gives 0 for a result that is no number (integer division by zero, which
// kills MXNet's process with SIGFPE; log 0; sqrt of a negative). Ops opt in with
// OpDef::integers_via_float64.

/// dst[0:n] = double(src[0:n]) for an integer source; dst = wrap_to_int(src) (or the wrapped sum
/// with dst's old values when accumulate) for an integer destination (host memory).
void int_to_double(const void* src, DType st, double* dst, int64_t n);
void double_to_int(const double* src, void* dst, DType dt, int64_t n, bool accumulate);
/// uint8, int8, int32 or int64.
inline bool is_integer_type(DType t) {
  return t == DType::kUint8 || t == DType::kInt8 || t == DType::kInt32 || t == DType::kInt64;
}

/// f(I{}) for an integer storage type I; other types throw "<what>: <type> is not an integer type".
/// (Host code; the integer wrapper's host and device conversions both dispatch through it.)
template <typename F>
void int_switch(DType t, const char* what, F&& f) {
  switch (t) {
    case DType::kUint8: f(uint8_t{}); break;
    case DType::kInt8: f(int8_t{}); break;
    case DType::kInt32: f(int32_t{}); break;
    case DType::kInt64: f(int64_t{}); break;
    default: throw KilnError(std::string(what) + ": " + dtype_name(t) + " is not an integer type");
  }
}

}  // namespace kiln
