// GEMM on Kiln's thread pool: OpenBLAS runs single-threaded inside OpenMP workers, each on a
// block of rows (or columns) of C. Mixing OpenMP with OpenBLAS's pthread pool makes idle OpenMP
// workers spin on the cores OpenBLAS needs (peers.md: 2-thread runs collapse); one pool avoids it.
#include <omp.h>

#include <algorithm>

#include "kiln/kernel_common.h"

namespace kiln {

namespace {

void blas(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
          float* c, int ldc) {
  cblas_sgemm(KilnCblasRowMajor, ta ? KilnCblasTrans : KilnCblasNoTrans, tb ? KilnCblasTrans : KilnCblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}
void blas(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
          double* c, int ldc) {
  cblas_dgemm(KilnCblasRowMajor, ta ? KilnCblasTrans : KilnCblasNoTrans, tb ? KilnCblasTrans : KilnCblasNoTrans, m, n, k, alpha,
              a, lda, b, ldb, beta, c, ldc);
}

// Below this many multiply-adds one thread is faster than splitting.
constexpr double kSplitMinFlops = 4e6;

template <typename T>
void gemm_impl(bool ta, bool tb, int m, int n, int k, T alpha, const T* a, const T* b, T beta, T* c) {
  // a: [m,k] ([k,m] if ta), b: [k,n] ([n,k] if tb), c: [m,n]
  const int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
  const int nt = num_threads();
  if (nt <= 1 || 2.0 * m * n * k < kSplitMinFlops || (m < 32 && n < 64)) {
    blas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const bool split_rows = m >= n || n < 64;
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), parts = omp_get_num_threads();
    if (split_rows) {
      const int per = ((m + parts - 1) / parts + 7) / 8 * 8;  // blocks of whole 8-row panels
      const int r0 = std::min(m, t * per), r1 = std::min(m, r0 + per);
      if (r1 > r0)
        blas(ta, tb, r1 - r0, n, k, alpha, ta ? a + r0 : a + (size_t)r0 * lda, lda, b, ldb, beta, c + (size_t)r0 * ldc, ldc);
    } else {
      const int per = ((n + parts - 1) / parts + 15) / 16 * 16;  // blocks of whole 16-column panels
      const int c0 = std::min(n, t * per), c1 = std::min(n, c0 + per);
      if (c1 > c0)
        blas(ta, tb, m, c1 - c0, k, alpha, a, lda, tb ? b + (size_t)c0 * ldb : b + c0, ldb, beta, c + c0, ldc);
    }
  }
}

}  // namespace

void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, const float* b, float beta, float* c) {
  gemm_impl(ta, tb, m, n, k, alpha, a, b, beta, c);
}
void gemm(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, const double* b, double beta, double* c) {
  gemm_impl(ta, tb, m, n, k, alpha, a, b, beta, c);
}

}  // namespace kiln
