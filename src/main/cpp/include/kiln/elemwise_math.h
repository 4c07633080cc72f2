// The math operators of MXNet's elementwise family, one definition for the CPU kernels
// (ops/tensor/elemwise_math.cc, which registers them) and the GPU kernels
// (cuda/ops/tensor_math.cu). Functors only: no memory, no shapes.
//
// Unary functors (input data x, output y):
//   fwd(x)       the forward value
//   deriv(v)     dy/dx, written in terms of v = x (kFrom == From::kInput) or v = y (From::kOutput);
//                the backward op computes g * deriv(v), as MXNet's unary_bwd. From::kNone: the
//                gradient is zero (the rounding ops, sign, logical_not), as MXNet's
//                MakeZeroGradNodes.
// Functors with parameters (hard_sigmoid, smooth_l1) hold them as members of type double and are
// built on the host from the attributes (`from`).
//
// Binary functors (comparisons, logical ops, mod, hypot): fwd(a, b); the differentiable ones also
// lgrad(g, a, b) / rgrad(g, a, b), as elemwise_binary.cc's.
//
// float32 is computed in float (std::sin(float) is sinf, on the host and in device code), float64
// in double; float16 / bfloat16 are widened to float by their wrappers. The formulas follow MXNet
// 1.9's mshadow_op.h; where it uses float constants for double data (degrees, radians) Kiln uses
// the exact constant of T (docs/mxnet-differences.md).
#pragma once
#include <cmath>

#include "kiln/int_convert.h"  // KILN_HOST_DEVICE

namespace kiln {
namespace math {

enum class From { kInput, kOutput, kNone };

/// Inverse error function, in double: a single-precision start (M. Giles, "Approximating the erfinv
/// function", 2010) refined by two Newton steps on erf, or on erfc in the tails, where erf(x) - y
/// would cancel. -1 -> -inf, 1 -> inf, |y| > 1 and NaN -> NaN.
KILN_HOST_DEVICE inline double erfinv(double y) {
  if (!(y >= -1.0 && y <= 1.0)) return double(NAN);
  if (y == 1.0) return HUGE_VAL;
  if (y == -1.0) return -HUGE_VAL;
  double w = -std::log((1.0 - y) * (1.0 + y)), p;
  if (w < 5.0) {
    w -= 2.5;
    p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w;
    p = -3.5233877e-06 + p * w;
    p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w;
    p = -0.00125372503 + p * w;
    p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w;
    p = 1.50140941 + p * w;
  } else {
    w = std::sqrt(w) - 3.0;
    p = -0.000200214257;
    p = 0.000100950558 + p * w;
    p = 0.00134934322 + p * w;
    p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w;
    p = -0.0076224613 + p * w;
    p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w;
    p = 2.83297682 + p * w;
  }
  double x = p * y;
  const double two_over_sqrt_pi = 1.1283791670955126;
  for (int it = 0; it < 2; ++it) {
    // erf(x) - y, with (1 - y) and (1 + y) exact for |y| >= 0.5 (Sterbenz)
    const double r = y > 0.5 ? (1.0 - y) - std::erfc(x) : (y < -0.5 ? std::erfc(-x) - (1.0 + y) : std::erf(x) - y);
    const double d = two_over_sqrt_pi * std::exp(-x * x);
    if (!(d > 0.0)) break;
    x -= r / d;
  }
  return x;
}

/// Digamma psi(x) = d ln Gamma(x) / dx, in double: reflection below 0, the recurrence
/// psi(x) = psi(x + 1) - 1/x up to 10, then the asymptotic series (truncation below 1e-15). Poles (0, -1, -2, ...) -> NaN.
KILN_HOST_DEVICE inline double digamma(double x) {
  const double kPi = 3.14159265358979323846;
  if (x != x || x == -HUGE_VAL) return double(NAN);
  double acc = 0.0;
  if (x <= 0.0) {
    if (x == std::floor(x)) return double(NAN);
    acc = -kPi / std::tan(kPi * x);  // psi(x) = psi(1 - x) - pi / tan(pi x)
    x = 1.0 - x;
  }
  while (x < 10.0) {
    acc -= 1.0 / x;
    x += 1.0;
  }
  const double r = 1.0 / (x * x);
  const double series =
      r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r * (1.0 / 240 - r * (1.0 / 132 - r * (691.0 / 32760))))));
  return acc + std::log(x) - 0.5 / x - series;
}

// ---- unary functors ------------------------------------------------------------------------------

#define KILN_MATH_FWD(expr) template <typename T> KILN_HOST_DEVICE T fwd(T x) const { return expr; }
#define KILN_MATH_DERIV(expr) template <typename T> KILN_HOST_DEVICE T deriv(T v) const { return expr; }
#define KILN_MATH_NOPARAM(Name) template <class A> static Name from(const A&) { return Name(); }

// relu: NaN passes through (MXNet 1.9); deriv of the output: 1 where y > 0, NaN where y is NaN.
struct Relu {
  static constexpr From kFrom = From::kOutput;
  KILN_MATH_NOPARAM(Relu)
  KILN_MATH_FWD(x > T(0) || x != x ? x : T(0))
  KILN_MATH_DERIV(v != v ? v : (v > T(0) ? T(1) : T(0)))
};
struct Sigmoid {
  static constexpr From kFrom = From::kOutput;
  KILN_MATH_NOPARAM(Sigmoid)
  KILN_MATH_FWD(T(1) / (T(1) + std::exp(-x)))
  KILN_MATH_DERIV(v * (T(1) - v))
};
struct Tanh {
  static constexpr From kFrom = From::kOutput;
  KILN_MATH_NOPARAM(Tanh)
  KILN_MATH_FWD(std::tanh(x))
  KILN_MATH_DERIV(T(1) - v * v)
};
struct Softsign {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Softsign)
  KILN_MATH_FWD(x / (T(1) + std::fabs(x)))
  KILN_MATH_DERIV(T(1) / ((T(1) + std::fabs(v)) * (T(1) + std::fabs(v))))
};
struct Sin {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Sin)
  KILN_MATH_FWD(std::sin(x))
  KILN_MATH_DERIV(std::cos(v))
};
struct Cos {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Cos)
  KILN_MATH_FWD(std::cos(x))
  KILN_MATH_DERIV(-std::sin(v))
};
struct Tan {  // d tan x / dx = 1 + tan^2 x = 1 + y^2
  static constexpr From kFrom = From::kOutput;
  KILN_MATH_NOPARAM(Tan)
  KILN_MATH_FWD(std::tan(x))
  KILN_MATH_DERIV(v * v + T(1))
};
struct Arcsin {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Arcsin)
  KILN_MATH_FWD(std::asin(x))
  KILN_MATH_DERIV(T(1) / std::sqrt(T(1) - v * v))
};
struct Arccos {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Arccos)
  KILN_MATH_FWD(std::acos(x))
  KILN_MATH_DERIV(T(-1) / std::sqrt(T(1) - v * v))
};
struct Arctan {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Arctan)
  KILN_MATH_FWD(std::atan(x))
  KILN_MATH_DERIV(T(1) / (v * v + T(1)))
};
struct Sinh {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Sinh)
  KILN_MATH_FWD(std::sinh(x))
  KILN_MATH_DERIV(std::cosh(v))
};
struct Cosh {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Cosh)
  KILN_MATH_FWD(std::cosh(x))
  KILN_MATH_DERIV(std::sinh(v))
};
struct Arcsinh {  // 1 / sqrt(x^2 + 1) as hypot(x, 1): no overflow for large x
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Arcsinh)
  KILN_MATH_FWD(std::asinh(x))
  KILN_MATH_DERIV(T(1) / std::hypot(v, T(1)))
};
struct Arccosh {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Arccosh)
  KILN_MATH_FWD(std::acosh(x))
  KILN_MATH_DERIV(T(1) / std::sqrt(v * v - T(1)))
};
struct Arctanh {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Arctanh)
  KILN_MATH_FWD(std::atanh(x))
  KILN_MATH_DERIV(T(1) / (T(1) - v * v))
};
struct Degrees {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Degrees)
  KILN_MATH_FWD(T(57.295779513082320876798154814105) * x)
  template <typename T> KILN_HOST_DEVICE T deriv(T) const { return T(57.295779513082320876798154814105); }
};
struct Radians {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Radians)
  KILN_MATH_FWD(T(0.017453292519943295769236907684886) * x)
  template <typename T> KILN_HOST_DEVICE T deriv(T) const { return T(0.017453292519943295769236907684886); }
};
struct Reciprocal {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Reciprocal)
  KILN_MATH_FWD(T(1) / x)
  KILN_MATH_DERIV(T(-1) / (v * v))
};
struct Rsqrt {  // y = 1 / sqrt(x); dy/dx = -1 / (2 x sqrt(x))
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Rsqrt)
  KILN_MATH_FWD(T(1) / std::sqrt(x))
  KILN_MATH_DERIV(T(-0.5) / (std::sqrt(v) * v))
};
struct Cbrt {  // dy/dx = 1 / (3 y^2)
  static constexpr From kFrom = From::kOutput;
  KILN_MATH_NOPARAM(Cbrt)
  KILN_MATH_FWD(std::cbrt(x))
  KILN_MATH_DERIV(T(1) / (T(3) * v * v))
};
struct Rcbrt {  // y = 1 / cbrt(x); dy/dx = -1 / (3 x cbrt(x))
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Rcbrt)
  KILN_MATH_FWD(T(1) / std::cbrt(x))
  KILN_MATH_DERIV(T(-1) / (T(3) * std::cbrt(v) * v))
};
struct Log10 {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Log10)
  KILN_MATH_FWD(std::log10(x))
  KILN_MATH_DERIV(T(1) / (v * T(2.3025850929940456840179914546844)))
};
struct Log2 {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Log2)
  KILN_MATH_FWD(std::log2(x))
  KILN_MATH_DERIV(T(1) / (v * T(0.69314718055994530941723212145818)))
};
struct Log1p {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Log1p)
  KILN_MATH_FWD(std::log1p(x))
  KILN_MATH_DERIV(T(1) / (T(1) + v))
};
struct Expm1 {
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Expm1)
  KILN_MATH_FWD(std::expm1(x))
  KILN_MATH_DERIV(std::exp(v))
};
struct Erf {  // d erf / dx = 2 / sqrt(pi) e^(-x^2)
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Erf)
  KILN_MATH_FWD(std::erf(x))
  KILN_MATH_DERIV(T(1.1283791670955125738961589031215) * std::exp(-(v * v)))
};
struct Erfinv {  // d erfinv / dx = sqrt(pi) / 2 e^(y^2)
  static constexpr From kFrom = From::kOutput;
  KILN_MATH_NOPARAM(Erfinv)
  KILN_MATH_FWD(T(math::erfinv(double(x))))
  KILN_MATH_DERIV(T(0.88622692545275801364908374167057) * std::exp(v * v))
};
struct Gamma {  // d Gamma / dx = Gamma(x) psi(x)
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Gamma)
  KILN_MATH_FWD(std::tgamma(x))
  KILN_MATH_DERIV(std::tgamma(v) * T(math::digamma(double(v))))
};
struct Gammaln {  // d ln|Gamma| / dx = psi(x)
  static constexpr From kFrom = From::kInput;
  KILN_MATH_NOPARAM(Gammaln)
  KILN_MATH_FWD(std::lgamma(x))
  KILN_MATH_DERIV(T(math::digamma(double(v))))
};

// Zero-gradient ops. round: halves away from zero; rint: halves down; fix: toward zero.
struct Floor {
  static constexpr From kFrom = From::kNone;
  KILN_MATH_NOPARAM(Floor)
  KILN_MATH_FWD(std::floor(x))
};
struct Ceil {
  static constexpr From kFrom = From::kNone;
  KILN_MATH_NOPARAM(Ceil)
  KILN_MATH_FWD(std::ceil(x))
};
struct Round {
  static constexpr From kFrom = From::kNone;
  KILN_MATH_NOPARAM(Round)
  KILN_MATH_FWD(std::round(x))
};
struct Rint {  // MXNet's documented rint: n.5 -> n (halves toward -inf, unlike C's rint)
  static constexpr From kFrom = From::kNone;
  KILN_MATH_NOPARAM(Rint)
  KILN_MATH_FWD((x - std::floor(x)) <= (std::ceil(x) - x) ? std::floor(x) : std::ceil(x))
};
struct Trunc {
  static constexpr From kFrom = From::kNone;
  KILN_MATH_NOPARAM(Trunc)
  KILN_MATH_FWD(std::trunc(x))
};
struct Sign {  // MXNet: -1, 1, else 0 (also for NaN)
  static constexpr From kFrom = From::kNone;
  KILN_MATH_NOPARAM(Sign)
  KILN_MATH_FWD(x < T(0) ? T(-1) : (x > T(0) ? T(1) : T(0)))
};
struct LogicalNot {  // 1 where x == 0, else 0 (NaN is true, as in C)
  static constexpr From kFrom = From::kNone;
  KILN_MATH_NOPARAM(LogicalNot)
  KILN_MATH_FWD(x == T(0) ? T(1) : T(0))
};

// hard_sigmoid: y = clip(alpha x + beta, 0, 1); dy/dx = alpha inside (0, 1), else 0. alpha and
// beta are float parameters (MXNet's real_t), applied in T.
struct HardSigmoid {
  static constexpr From kFrom = From::kInput;
  float alpha = 0.2f, beta = 0.5f;
  template <class A> static HardSigmoid from(const A& a) { return HardSigmoid{(float)a.f("alpha"), (float)a.f("beta")}; }
  template <typename T> KILN_HOST_DEVICE T fwd(T x) const {
    const T z = T(alpha) * x + T(beta);
    return z > T(1) ? T(1) : (z < T(0) ? T(0) : z);
  }
  template <typename T> KILN_HOST_DEVICE T deriv(T x) const {
    const T z = T(alpha) * x + T(beta);
    return (z > T(0) && z < T(1)) ? T(alpha) : T(0);
  }
};

// smooth_l1 with sigma = scalar (a double, applied in T): 0.5 (sigma x)^2 where |x| < 1/sigma^2,
// else |x| - 0.5/sigma^2. Gradient sigma^2 x inside, sign(x) outside.
struct SmoothL1 {
  static constexpr From kFrom = From::kInput;
  double sigma = 1.0;
  template <class A> static SmoothL1 from(const A& a) { return SmoothL1{a.f("scalar")}; }
  template <typename T> KILN_HOST_DEVICE T fwd(T x) const {
    const T s2 = T(sigma) * T(sigma), inv = T(1) / s2;
    return x > inv ? x - T(0.5) * inv : (x < -inv ? -x - T(0.5) * inv : T(0.5) * x * x * s2);
  }
  template <typename T> KILN_HOST_DEVICE T deriv(T x) const {
    const T s2 = T(sigma) * T(sigma), inv = T(1) / s2;
    return x > inv ? T(1) : (x < -inv ? T(-1) : s2 * x);
  }
};

#undef KILN_MATH_FWD
#undef KILN_MATH_DERIV
#undef KILN_MATH_NOPARAM

// ---- binary functors -----------------------------------------------------------------------------
// Comparisons and logical ops give 1 or 0 in the data's type and have no gradient. A NaN compares
// false (not_equal: true) and counts as true in the logical ops, as in C and MXNet.

struct Equal { template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return a == b ? T(1) : T(0); } };
struct NotEqual { template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return a != b ? T(1) : T(0); } };
struct Greater { template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return a > b ? T(1) : T(0); } };
struct GreaterEqual { template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return a >= b ? T(1) : T(0); } };
struct Lesser { template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return a < b ? T(1) : T(0); } };
struct LesserEqual { template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return a <= b ? T(1) : T(0); } };
struct LogicalAnd {
  template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return (a != T(0) && b != T(0)) ? T(1) : T(0); }
};
struct LogicalOr {
  template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return (a != T(0) || b != T(0)) ? T(1) : T(0); }
};
struct LogicalXor {
  template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return ((a != T(0)) != (b != T(0))) ? T(1) : T(0); }
};

// mod: the remainder with the sign of the divisor (Python's %, MXNet's mod); b == 0 gives 0.
// d/da = 1; d/db = -floor(a / b).
struct Mod {
  static constexpr bool kUsesInputs = true;
  template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) {
    if (b == T(0)) return T(0);
    const T r = std::fmod(a, b);
    return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? r + b : r;
  }
  template <typename T> KILN_HOST_DEVICE static T lgrad(T g, T, T) { return g; }
  template <typename T> KILN_HOST_DEVICE static T rgrad(T g, T a, T b) { return g * -std::floor(a / b); }
};

// hypot: sqrt(a^2 + b^2) without overflow; d/da = a / hypot, d/db = b / hypot.
struct Hypot {
  static constexpr bool kUsesInputs = true;
  template <typename T> KILN_HOST_DEVICE static T fwd(T a, T b) { return std::hypot(a, b); }
  template <typename T> KILN_HOST_DEVICE static T lgrad(T g, T a, T b) { return g * (a / std::hypot(a, b)); }
  template <typename T> KILN_HOST_DEVICE static T rgrad(T g, T a, T b) { return g * (b / std::hypot(a, b)); }
};

}  // namespace math
}  // namespace kiln
