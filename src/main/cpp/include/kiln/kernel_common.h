// Helpers shared by CPU kernels: dtype dispatch, write requests, OpenMP thresholds, BLAS.
#pragma once
#include <cmath>
#include <cstdint>

#include "kiln/op.h"

// OpenBLAS (from the org.bytedeco:openblas preset; linked by the JavaCPP build). Declared here
// so the build needs no include path into the JavaCPP cache.
extern "C" {
enum KilnCblasOrder { KilnCblasRowMajor = 101, KilnCblasColMajor = 102 };
enum KilnCblasTranspose { KilnCblasNoTrans = 111, KilnCblasTrans = 112 };
void cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);
void cblas_dgemm(int order, int transa, int transb, int m, int n, int k, double alpha, const double* a, int lda,
                 const double* b, int ldb, double beta, double* c, int ldc);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
}

namespace kiln {

/// Row-major C[m,n] = alpha * op(A) * op(B) + beta * C, op = transpose when ta/tb.
/// A is [m,k] (or [k,m] when ta), B is [k,n] (or [n,k] when tb).
/// With several threads the product is split into row (or column) blocks computed by Kiln's
/// OpenMP threads, each calling single-threaded OpenBLAS: one thread pool for the whole engine,
/// so OpenMP workers never spin against OpenBLAS's own threads (core/blas.cc).
void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b, float beta, float* c);
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, const double* b, double beta, double* c);

/// Kiln's own AVX-512 kernel, no packing: C[m,n] (+= when accumulate, else =) A B with
/// A(i, p) = a[i * sa + p * sp] (so A or A^T of a row-major array alike), b [k, n] rows ldb apart,
/// c [m, n] rows ldc apart. For the per-image products of convolutions and FullyConnected's
/// backward (core/blas.cc says where it beats OpenBLAS). Called outside a parallel region with
/// several threads, large products split their columns between Kiln's threads; each element is one
/// chain of k FMAs in order of p, so its bits do not depend on m, on the split or on the thread
/// count. Returns false, touching nothing, when the CPU has no AVX-512 (KILN_SIMD=avx2).
bool gemm_strided_a(int m, int n, int k, const float* a, int64_t sa, int64_t sp, const float* b, int64_t ldb, float* c,
                    int64_t ldc, bool accumulate);

/// dst [cols, rows] = src [rows, cols]^T (both row-major, not overlapping): 16 x 16 tiles
/// transposed in AVX-512 registers (scalar where there is no AVX-512, and at the edges).
/// 128 x 784 floats take 14 us on one core where a scalar tiled loop takes 55.
void transpose_f32(const float* src, int64_t rows, int64_t cols, float* dst);

/// C[m, n] (+= when accumulate, else =) A B for bfloat16 operands given as their bits, float32 C
/// (rows ldc apart): A(i, p) = a[i sa + p sp], B(p, j) = b[p sbp + j sbj]. AVX512-BF16 dot products
/// of pairs: every product exact, sums in float32 in a fixed order (pairs of p, then p ascending),
/// the same for any thread count. Returns false, touching nothing, when the CPU lacks AVX512-BF16
/// (or KILN_SIMD=avx2): the caller computes another way.
bool gemm_bf16(int m, int n, int k, const uint16_t* a, int64_t sa, int64_t sp, const uint16_t* b, int64_t sbp, int64_t sbj,
               float* c, int64_t ldc, bool accumulate);
/// True when gemm_bf16 runs (the CPU has AVX512-BF16 and AVX-512 is in use).
bool has_avx512_bf16();

/// Calls f(T{}) with T = float or double for the dtype; other dtypes throw. Kernels compute in
/// float32 and float64 (float64 is what the gradient checks use). Prefer this over the macro
/// below when the body has `#pragma omp` lines (pragmas cannot appear inside macro arguments):
///   float_switch(y.dtype, [&](auto zero) { using T = decltype(zero); ... });
template <typename F>
inline void float_switch(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: f(float{}); break;
    case DType::kFloat64: f(double{}); break;
    default:
      throw KilnError(std::string("dtype ") + dtype_name(t) + " is not supported by this kernel (float32, float64)");
  }
}

/// Runs `body` with `DType` bound to float or double; other dtypes throw. (No pragmas inside.)
#define KILN_FLOAT_SWITCH(dtype, DT, ...)                                                  \
  do {                                                                                     \
    switch (dtype) {                                                                       \
      case ::kiln::DType::kFloat32: { typedef float DT; __VA_ARGS__; break; }              \
      case ::kiln::DType::kFloat64: { typedef double DT; __VA_ARGS__; break; }             \
      default: throw ::kiln::KilnError(std::string("dtype ") + ::kiln::dtype_name(dtype) + \
                                       " is not supported by this kernel (float32, float64)"); \
    }                                                                                      \
  } while (0)

/// out = v, out += v or nothing, by request.
template <typename T>
inline void assign_req(T& out, OpReq req, T v) {
  if (req == OpReq::kAddTo) out += v;
  else if (req != OpReq::kNullOp) out = v;
}

/// A uniform double in [0, 1) from the op context's generator (53 random bits), as every random
/// kernel draws it (Dropout's and the RNN's masks, rrelu's slopes).
inline double uniform01(std::mt19937_64& rng) { return (double)(rng() >> 11) * 0x1.0p-53; }

/// Below this many elements a loop stays single-threaded (thread wake-up costs more).
constexpr int64_t kOmpMinWork = 1 << 15;

/// Number of threads the CPU kernels use (kiln_set_num_threads); also set in OpenBLAS.
int num_threads();
void set_num_threads(int n);
/// Threads for a kernel loop doing `work` element operations: 1 below kOmpMinWork, else all.
inline int omp_threads(int64_t work) { return work < kOmpMinWork ? 1 : std::max(1, num_threads()); }
/// f(i) for i in [0, n), split statically over nt OpenMP threads; nt <= 1 runs inline without
/// entering OpenMP (libgomp's `if (false)` region still costs about 0.3 us, a third of a batch-1
/// SoftmaxOutput).
template <typename F>
inline void omp_for(int nt, int64_t n, const F& f) {
  if (nt <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t i = 0; i < n; ++i) f(i);
}
/// Process-wide CPU convolution kernel choice: 0 auto, 1 im2col + GEMM, 2 direct where it applies
/// (ops/conv/conv_direct.cc; throws KilnError for other values).
void set_conv_algo(int algo);
int conv_algo();

/// Which vector ISA the elementwise kernels take on this CPU: "avx512f", "avx2" or "scalar".
const char* simd_isa();
bool has_avx512();

}  // namespace kiln
