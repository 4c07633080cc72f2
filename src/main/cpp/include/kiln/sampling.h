// Random sampling shared by the CPU kernels (ops/random/random.cc) and the GPU kernels
// (cuda/ops/random.cu) of the _random_* operators and _shuffle.
//
// A call draws one 64-bit seed from the executor's seeded generator (OpCtx::rng); element i then
// draws from its own counter-based stream (ElementRng: splitmix64 of a per-element key and a
// counter), so the values depend on the seed and the element index only: the same seed gives the
// same array whatever the thread count, and the CPU and the GPU compute the same draws (the
// float results may differ in the last bits where their log/cos/lgamma do). Values cannot equal
// MXNet's (another generator); the distributions are MXNet's, with its parameter checks.
#pragma once
#include <math.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kiln/int_convert.h"  // KILN_HOST_DEVICE
#include "kiln/op.h"

namespace kiln {

/// The distribution of a sampling operator.
enum class Dist { kUniform, kNormal, kExponential, kGamma, kPoisson, kRandInt };

/// A distribution's parameters, checked: p1/p2 for the float ones (low/high, loc/scale, lam,
/// alpha/beta), lo/hi for randint.
struct SampleParams {
  Dist dist;
  double p1 = 0, p2 = 0;
  int64_t lo = 0, hi = 0;
};

/// The parameters of `op`'s attributes, with MXNet's checks (KilnError with MXNet's message):
/// low <= high (uniform), scale > 0 (normal), lam > 0 (exponential), alpha > 0 and beta > 0
/// (gamma), lam >= 0 (poisson); randint needs low < high (MXNet takes low == high and divides by 0).
/// The float parameters are float32 in MXNet: they are rounded to float first (a scale of 1e-50 is
/// 0 there). Kiln also refuses parameters that are not finite (after that rounding).
inline SampleParams sample_params(const std::string& op, Dist d, const Attrs& a) {
  SampleParams p{d};
  auto finite = [&](const char* name) {
    const double v = (double)(float)a.f(name);
    if (!std::isfinite(v)) throw KilnError(op + ": " + name + " must be finite, got " + std::to_string(v));
    return v;
  };
  auto fail = [&](const std::string& m) { throw KilnError(op + ": " + m); };
  switch (d) {
    case Dist::kUniform:
      p.p1 = finite("low"), p.p2 = finite("high");
      if (!(p.p2 >= p.p1)) fail("low must be less or equal to high in uniform distribution");
      break;
    case Dist::kNormal:
      p.p1 = finite("loc"), p.p2 = finite("scale");
      if (!(p.p2 > 0)) fail("scale parameter in gaussian has to be positive");
      break;
    case Dist::kExponential:
      p.p1 = finite("lam");
      if (!(p.p1 > 0)) fail("lambda parameter in exponential distribution has to be positive");
      break;
    case Dist::kGamma:
      p.p1 = finite("alpha"), p.p2 = finite("beta");
      if (!(p.p1 > 0)) fail("alpha parameter in gamma distribution has to be positive");
      if (!(p.p2 > 0)) fail("beta parameter in gamma distribution has to be positive");
      break;
    case Dist::kPoisson:
      p.p1 = finite("lam");
      if (!(p.p1 >= 0)) fail("lambda parameter in poisson distribution has to be non-negative");
      break;
    case Dist::kRandInt:
      p.lo = a.i("low"), p.hi = a.i("high");
      if (!(p.hi > p.lo)) fail("low must be less than high in randint distribution, got low=" + std::to_string(p.lo) +
                               ", high=" + std::to_string(p.hi));
      break;
  }
  return p;
}

/// floor(r * n / 2^64): a uniform integer in [0, n) from 64 random bits (bias below n / 2^64).
KILN_HOST_DEVICE inline uint64_t mul_high(uint64_t r, uint64_t n) {
#if defined(__CUDA_ARCH__)
  return __umul64hi(r, n);
#else
  return (uint64_t)(((unsigned __int128)r * n) >> 64);
#endif
}

/// The draws of one element: stream key from (seed, index), then splitmix64 of key + counter.
struct ElementRng {
  uint64_t key;
  uint64_t ctr = 0;

  KILN_HOST_DEVICE static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  KILN_HOST_DEVICE ElementRng(uint64_t seed, int64_t i) : key(mix(seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL)) {}

  KILN_HOST_DEVICE uint64_t next() { return mix(key + (++ctr) * 0xD1B54A32D192ED03ULL); }
  /// Uniform in [0, 1), 53 random bits.
  KILN_HOST_DEVICE double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }
  /// Uniform in (0, 1] (for logarithms).
  KILN_HOST_DEVICE double uniform_pos() { return (double)((next() >> 11) + 1) * 0x1.0p-53; }
  /// Standard normal (Box-Muller).
  KILN_HOST_DEVICE double normal() {
    const double r = sqrt(-2.0 * log(uniform_pos()));
    return r * cos(6.283185307179586 * uniform());
  }
  /// Gamma(alpha, scale 1), alpha > 0: Marsaglia and Tsang's method, boosted by u^(1/alpha) below 1.
  KILN_HOST_DEVICE double gamma(double alpha) {
    const double a = alpha < 1 ? alpha + 1 : alpha;
    const double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    double g;
    for (;;) {  // accepts with probability above 0.95 per round
      double x, v;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const double u = uniform_pos();
      if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) {
        g = d * v;
        break;
      }
    }
    return alpha < 1 ? g * pow(uniform_pos(), 1.0 / alpha) : g;
  }
  /// Poisson(lam), lam >= 0 finite: multiplication of uniforms below 12, the rejection method of
  /// Numerical Recipes (as mshadow's sampler) up to 1e12, the normal approximation above (where
  /// the rejection test's lgamma differences lose all precision and would never accept; the
  /// Poisson's skewness is below 1e-6 there).
  KILN_HOST_DEVICE double poisson(double lam) {
    if (lam >= 1e12) return floor(lam + sqrt(lam) * normal() + 0.5);
    if (lam < 12.0) {
      const double limit = exp(-lam);
      double k = -1, prod = 1;
      do {
        k += 1;
        prod *= uniform_pos();
      } while (prod > limit);
      return k;
    }
    const double sq = sqrt(2.0 * lam), alxm = log(lam), g = lam * alxm - lgamma(lam + 1.0);
    double em, t;
    do {
      double y;
      do {
        y = tan(3.141592653589793 * uniform());
        em = sq * y + lam;
      } while (em < 0);
      em = floor(em);
      t = 0.9 * (1.0 + y * y) * exp(em * alxm - lgamma(em + 1.0) - g);
    } while (uniform() > t);
    return em;
  }
  /// Uniform integer in [lo, hi), lo < hi.
  KILN_HOST_DEVICE int64_t randint(int64_t lo, int64_t hi) {
    return (int64_t)((uint64_t)lo + mul_high(next(), (uint64_t)hi - (uint64_t)lo));
  }
};

/// One sample of a float distribution (not randint) for element i of a call with seed `seed`.
KILN_HOST_DEVICE inline double sample_value(const SampleParams& p, uint64_t seed, int64_t i) {
  ElementRng r(seed, i);
  switch (p.dist) {
    case Dist::kUniform: return p.p1 + (p.p2 - p.p1) * r.uniform();
    case Dist::kNormal: return p.p1 + p.p2 * r.normal();
    case Dist::kExponential: return -log(r.uniform_pos()) / p.p1;
    case Dist::kGamma: return r.gamma(p.p1) * p.p2;
    case Dist::kPoisson: return r.poisson(p.p1);
    default: return 0;  // randint: ElementRng::randint
  }
}

/// A float sample stored as T (float or double). Uniform samples stay below high after the
/// rounding to T (the half-open interval [low, high)), unless low == high.
template <typename T>
KILN_HOST_DEVICE inline T sample_as(const SampleParams& p, double v) {
  T t = (T)v;
  if (p.dist == Dist::kUniform && p.p2 > p.p1 && !(t < (T)p.p2)) {
    if constexpr (sizeof(T) == sizeof(float)) t = nextafterf((float)p.p2, -HUGE_VALF);
    else t = nextafter(p.p2, -HUGE_VAL);
    if (t < (T)p.p1) t = (T)p.p1;
  }
  return t;
}

/// _shuffle's permutation of n rows: Fisher-Yates from the executor's generator (host code, used by
/// the CPU and the GPU kernel alike, so both give the same order for a seed).
inline std::vector<int64_t> shuffle_permutation(std::mt19937_64& rng, int64_t n) {
  std::vector<int64_t> perm((size_t)n);
  for (int64_t i = 0; i < n; ++i) perm[(size_t)i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = (int64_t)mul_high(rng(), (uint64_t)i + 1);
    std::swap(perm[(size_t)i], perm[(size_t)j]);
  }
  return perm;
}

}  // namespace kiln
