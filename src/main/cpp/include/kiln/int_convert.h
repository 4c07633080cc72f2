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

/// x as the integer type I the way MXNet's integer arithmetic and x86's DType(x) leave it: truncated
/// toward zero and wrapped modulo 2^bits (two's complement), so results of the integer path of the
/// elementwise operators (computed in double, kiln/low_precision.h) equal the native integer
/// operations while the double is exact (|x| < 2^53); parameters given as numbers (a scalar op's
/// scalar, _arange's start and step) convert the same way. No number (NaN or an infinity: a
/// division by zero, log 0, sqrt of a negative) gives 0, as NumPy's integer division by zero;
/// finite values beyond int64 saturate to int64 before wrapping. The double must be the exact
/// result where one exists: the GPU's pow computes integer powers of integers exactly for this
/// (k_pow, ops/tensor_common.cuh), as glibc's pow (within 0.52 ulp) does. Transcendental results
/// (exp, log) are the libraries' roundings, which may differ by an ulp between the CPU and the GPU.
template <typename I>
KILN_HOST_DEVICE inline I wrap_to_int(double x) {
  if (!(x - x == 0)) return I(0);  // NaN or +-inf
  return (I)(uint64_t)saturate_to_int<int64_t>(x);
}

/// A class label held as a float (SoftmaxOutput's label), as a class index: truncated toward zero
/// and saturated as above, except that NaN names no class (INT32_MIN, which no class and no
/// usual ignore_label equals; x86's conversion gave it on the CPU, CUDA's gave class 0).
KILN_HOST_DEVICE inline int32_t label_class(double x) {
  return x != x ? INT32_MIN : saturate_to_int<int32_t>(x);
}

}  // namespace kiln
