// Floating point to integer, defined for every value on the CPU and the GPU alike. C++'s
// static_cast is undefined for NaN and for values outside the integer type, and the two
// processors disagree there (x86 gives INT_MIN for NaN and wraps 8-bit results: -1.0 -> uint8 255;
// CUDA saturates: 0). Kiln picks one rule for both: NaN -> 0, values beyond the type's range
// (infinities included) saturate to its minimum or maximum, the others truncate toward zero.
// (MXNet leaves it to the compiler: docs/mxnet-differences.md.)
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif

namespace kiln {

/// The range of an integer storage type, as doubles (hi of int64 is 2^63, one past its maximum).
template <typename I> struct IntRange;
template <> struct IntRange<int8_t> { static constexpr double lo = -128.0, hi = 127.0; };
template <> struct IntRange<uint8_t> { static constexpr double lo = 0.0, hi = 255.0; };
template <> struct IntRange<int32_t> { static constexpr double lo = -2147483648.0, hi = 2147483647.0; };
template <> struct IntRange<int64_t> { static constexpr double lo = -9223372036854775808.0, hi = 9223372036854775808.0; };

/// x (any float value) as the integer type I, by the rule above.
template <typename I>
KILN_HOST_DEVICE inline I saturate_to_int(double x) {
  if (x != x) return I(0);
  if (x <= IntRange<I>::lo) return (I)IntRange<I>::lo;
  if (x >= IntRange<I>::hi) {
    if constexpr (sizeof(I) == 8) return (I)INT64_MAX;
    else return (I)IntRange<I>::hi;
  }
  return (I)x;
}

/// An integer result computed in double (the integer path of the elementwise operators,
/// kiln/low_precision.h) stored as I the way MXNet's integer arithmetic leaves it: truncated toward
/// zero and wrapped modulo 2^bits (two's complement), so sums, differences and products equal the
/// native integer operations while the double is exact (|x| < 2^53). No number (NaN or an infinity:
/// a division by zero, log 0, sqrt of a negative) gives 0, as NumPy's integer division by zero;
/// finite values beyond int64 saturate to int64 before wrapping.
/// A result within 2 ulp of an integer is that integer (a device pow may be 2 ulp off: 3^3 must not
/// truncate to 26); exact quotients of 32-bit integers are never that close to another integer.
template <typename I>
KILN_HOST_DEVICE inline I wrap_to_int(double x) {
  if (!(x - x == 0)) return I(0);  // NaN or +-inf
  const double r = x < 0 ? -floor(-x + 0.5) : floor(x + 0.5);
  if (r != x && (x - r <= 0 ? r - x : x - r) <= (x < 0 ? -x : x) * 4.5e-16) x = r;
  return (I)(uint64_t)saturate_to_int<int64_t>(x);
}

/// A class label held as a float (SoftmaxOutput's label), as a class index: truncated toward zero
/// and saturated as above, except that NaN names no class (INT32_MIN, which no class and no
/// usual ignore_label equals; x86's conversion gave it on the CPU, CUDA's gave class 0).
KILN_HOST_DEVICE inline int32_t label_class(double x) {
  return x != x ? INT32_MIN : saturate_to_int<int32_t>(x);
}

}  // namespace kiln
