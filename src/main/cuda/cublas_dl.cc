// cuBLAS opened with dlopen: neither its headers nor its libraries are needed at build time, and
// the JNI library still loads on machines without any GPU stack. We declare the few entry points
// we use ourselves (stable C ABI of cuBLAS 12/13).
//
// libcublasLt.so.13 / libcublas.so.13 are found as common/dl_search.h describes.
#include <dlfcn.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "common/cuda_check.cuh"
#include "common/dl_search.h"
#include "kiln/cuda_api.h"

namespace kiln {
namespace cuda {
namespace {

// ---- our own declarations of the cuBLAS C API ------------------------------------------------
typedef struct cublasContext* cublasHandle_t;
typedef int cublasStatus_t;  // CUBLAS_STATUS_SUCCESS = 0
enum { kCublasOpN = 0, kCublasOpT = 1 };
typedef cublasStatus_t (*cublasCreate_fn)(cublasHandle_t*);
typedef cublasStatus_t (*cublasSetStream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*cublasSgemm_fn)(cublasHandle_t, int transa, int transb, int m, int n, int k,
                                          const float* alpha, const float* a, int lda, const float* b, int ldb,
                                          const float* beta, float* c, int ldc);
typedef cublasStatus_t (*cublasDgemm_fn)(cublasHandle_t, int transa, int transb, int m, int n, int k,
                                          const double* alpha, const double* a, int lda, const double* b, int ldb,
                                          const double* beta, double* c, int ldc);
typedef cublasStatus_t (*cublasSgemmStridedBatched_fn)(cublasHandle_t, int transa, int transb, int m, int n, int k,
                                                        const float* alpha, const float* a, int lda, long long stride_a,
                                                        const float* b, int ldb, long long stride_b, const float* beta,
                                                        float* c, int ldc, long long stride_c, int batch);
typedef cublasStatus_t (*cublasDgemmStridedBatched_fn)(cublasHandle_t, int transa, int transb, int m, int n, int k,
                                                        const double* alpha, const double* a, int lda,
                                                        long long stride_a, const double* b, int ldb,
                                                        long long stride_b, const double* beta, double* c, int ldc,
                                                        long long stride_c, int batch);
// cublasGemmEx: A/B/C types are cudaDataType_t (CUDA_R_16F = 2, CUDA_R_16BF = 14), computeType a
// cublasComputeType_t (CUBLAS_COMPUTE_32F = 68: float accumulation, float alpha/beta), algo a
// cublasGemmAlgo_t (CUBLAS_GEMM_DEFAULT = -1; tensor cores where the types allow)
enum { kCudaR16F = 2, kCudaR16BF = 14, kCublasCompute32F = 68, kCublasGemmDefault = -1 };
typedef cublasStatus_t (*cublasGemmEx_fn)(cublasHandle_t, int transa, int transb, int m, int n, int k, const void* alpha,
                                           const void* a, int atype, int lda, const void* b, int btype, int ldb,
                                           const void* beta, void* c, int ctype, int ldc, int compute_type, int algo);
typedef const char* (*cublasGetStatusString_fn)(cublasStatus_t);  // optional (cuBLAS >= 11.4)
typedef cublasStatus_t (*cublasSetMathMode_fn)(cublasHandle_t, int mode);  // cublasMath_t
typedef cublasStatus_t (*cublasGetProperty_fn)(int type, int* value);  // MAJOR=0, MINOR=1, PATCH=2
typedef cublasStatus_t (*cublasSetWorkspace_fn)(cublasHandle_t, void* workspace, size_t bytes);  // optional

constexpr int kMaxDevices = 64;
// One workspace per device handed to every call (cublasSetWorkspace), whatever the stream: with
// cuBLAS's own per-stream workspaces, a pass recorded on a capture stream could get other GEMM
// algorithms, and so other bits, than the same pass run eagerly on the device's stream. Sharing it is
// safe because cuBLAS kernels only ever run on the device's stream and the legacy stream, which
// are ordered with each other (capture streams only record). 32 MiB: cuBLAS's own size on Hopper.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

struct Cublas {
  std::once_flag once;
  std::string status = "cuBLAS not loaded yet";  // "" when usable
  std::string found_at;
  void* lt = nullptr;
  void* lib = nullptr;
  cublasCreate_fn create = nullptr;
  cublasSetStream_fn set_stream = nullptr;
  cublasSgemm_fn sgemm = nullptr;
  cublasDgemm_fn dgemm = nullptr;
  cublasSgemmStridedBatched_fn sgemm_batched = nullptr;
  cublasDgemmStridedBatched_fn dgemm_batched = nullptr;
  cublasGemmEx_fn gemm_ex = nullptr;
  cublasGetStatusString_fn status_string = nullptr;
  cublasSetMathMode_fn set_math_mode = nullptr;
  cublasGetProperty_fn get_property = nullptr;
  cublasSetWorkspace_fn set_workspace = nullptr;
  std::mutex mu[kMaxDevices];              // guards handle creation and set_stream + gemm
  cublasHandle_t handle[kMaxDevices] = {};
  void* workspace[kMaxDevices] = {};       // [kWorkspaceBytes] from the caching allocator, never freed (null: cuBLAS's own)
  std::atomic<int> workspace_failures{0};  // handles left with cuBLAS's own workspaces (no device memory)
  int math[kMaxDevices] = {};              // the math mode last set on handle[device]
};

// Never destroyed: handles must not be torn down after the CUDA runtime at process exit.
Cublas& state() {
  static Cublas* s = new Cublas();
  return *s;
}

void load(Cublas& s) {
  std::string where_lt, where, dir, err_lt, err;
  s.lt = open_library("libcublasLt.so.13", &where_lt, &dir, &err_lt);  // libcublas needs it; load it first
  s.lib = open_library("libcublas.so.13", &where, &dir, &err);
  if (!s.lib) {
    s.status = "cuBLAS not available: libcublas.so.13 not found (" + err + "); " + library_search_text();
    if (!s.lt) s.status += "; libcublasLt.so.13 not found either";
    return;
  }
  s.create = (cublasCreate_fn)dlsym(s.lib, "cublasCreate_v2");
  s.set_stream = (cublasSetStream_fn)dlsym(s.lib, "cublasSetStream_v2");
  s.sgemm = (cublasSgemm_fn)dlsym(s.lib, "cublasSgemm_v2");
  s.dgemm = (cublasDgemm_fn)dlsym(s.lib, "cublasDgemm_v2");
  s.sgemm_batched = (cublasSgemmStridedBatched_fn)dlsym(s.lib, "cublasSgemmStridedBatched");
  s.dgemm_batched = (cublasDgemmStridedBatched_fn)dlsym(s.lib, "cublasDgemmStridedBatched");
  s.gemm_ex = (cublasGemmEx_fn)dlsym(s.lib, "cublasGemmEx");
  s.status_string = (cublasGetStatusString_fn)dlsym(s.lib, "cublasGetStatusString");
  s.set_math_mode = (cublasSetMathMode_fn)dlsym(s.lib, "cublasSetMathMode");
  s.get_property = (cublasGetProperty_fn)dlsym(s.lib, "cublasGetProperty");
  s.set_workspace = (cublasSetWorkspace_fn)dlsym(s.lib, "cublasSetWorkspace_v2");
  std::string missing;
  if (!s.create) missing += " cublasCreate_v2";
  if (!s.set_stream) missing += " cublasSetStream_v2";
  if (!s.sgemm) missing += " cublasSgemm_v2";
  if (!s.dgemm) missing += " cublasDgemm_v2";
  if (!s.sgemm_batched) missing += " cublasSgemmStridedBatched";
  if (!s.dgemm_batched) missing += " cublasDgemmStridedBatched";
  if (!s.gemm_ex) missing += " cublasGemmEx";
  if (!s.set_math_mode) missing += " cublasSetMathMode";
  if (!missing.empty()) {
    s.status = "cuBLAS not available: " + where + " lacks" + missing;
    return;
  }
  s.found_at = where;
  s.status.clear();
}

Cublas& loaded() {
  Cublas& s = state();
  std::call_once(s.once, [&] { load(s); });
  return s;
}

std::string status_name(Cublas& s, cublasStatus_t st) {
  std::string name;
  if (s.status_string) {
    const char* p = s.status_string(st);
    if (p) name = p;
  }
  if (name.empty()) {
    switch (st) {
      case 1: name = "CUBLAS_STATUS_NOT_INITIALIZED"; break;
      case 3: name = "CUBLAS_STATUS_ALLOC_FAILED"; break;
      case 7: name = "CUBLAS_STATUS_INVALID_VALUE"; break;
      case 8: name = "CUBLAS_STATUS_ARCH_MISMATCH"; break;
      case 11: name = "CUBLAS_STATUS_MAPPING_ERROR"; break;
      case 13: name = "CUBLAS_STATUS_EXECUTION_FAILED"; break;
      case 14: name = "CUBLAS_STATUS_INTERNAL_ERROR"; break;
      case 15: name = "CUBLAS_STATUS_NOT_SUPPORTED"; break;
      case 16: name = "CUBLAS_STATUS_LICENSE_ERROR"; break;
      default: name = "unknown cuBLAS status"; break;
    }
  }
  return name + " (" + std::to_string(st) + ")";
}

void check_status(Cublas& s, cublasStatus_t st, const char* what) {
  if (st != 0) throw KilnError(std::string(what) + ": " + status_name(s, st));
}

/// The handle of `device`, created on first use (with `device` current). Caller holds s.mu[device].
cublasHandle_t handle_for(Cublas& s, int device) {
  if (!s.handle[device]) {
    DeviceGuard g(device);
    void* ws = nullptr;
    if (s.set_workspace != nullptr) {
      try {
        ws = kiln::cuda::malloc(device, kWorkspaceBytes);
      } catch (const std::exception&) {  // no room: cuBLAS's own workspaces (noted in describe)
        ws = nullptr;
        s.workspace_failures.fetch_add(1);
      }
    }
    cublasHandle_t h = nullptr;
    const cublasStatus_t st = s.create(&h);
    if (st != 0) {
      kiln::cuda::free(device, ws, kWorkspaceBytes);
      check_status(s, st, ("cublasCreate_v2 on gpu(" + std::to_string(device) + ")").c_str());
    }
    s.workspace[device] = ws;
    s.math[device] = -1;  // set by prepare()
    s.handle[device] = h;
  }
  return s.handle[device];
}

void check_dims(int64_t m, int64_t n, int64_t k) {
  if (m < 0 || n < 0 || k < 0 || m > INT_MAX || n > INT_MAX || k > INT_MAX)
    throw KilnError("GPU gemm: dimensions m=" + std::to_string(m) + " n=" + std::to_string(n) +
                    " k=" + std::to_string(k) + " exceed the 32-bit range of cuBLAS");
}

/// The cases of gemm that need no cuBLAS call: an empty C (true), or k == 0, where C = beta C with
/// beta 0 or 1 (true, C zeroed for 0). Throws for a bad device or another beta with k == 0.
bool gemm_trivial(int device, cudaStream_t stream, int64_t m, int64_t n, int64_t k, double beta, void* c, size_t elem) {
  check_dims(m, n, k);
  if (m == 0 || n == 0) return true;
  if (device < 0 || device >= kMaxDevices) throw KilnError("GPU gemm: bad device id " + std::to_string(device));
  if (k != 0) return false;
  if (beta == 0) KILN_CUDA_CHECK(cudaMemsetAsync(c, 0, (size_t)(m * n) * elem, stream));
  else if (beta != 1) throw KilnError("GPU gemm: k == 0 with beta other than 0 or 1");
  return true;
}

/// Points the handle at `stream` and sets its math mode for the current TF32 setting: CUBLAS_DEFAULT_MATH
/// (no TF32 for float32) or, with tf32_allowed(), CUBLAS_TF32_TENSOR_OP_MATH (3), either with
/// CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION (16): float16 / bfloat16 products are summed in
/// float32 all the way, split-K partial sums too. The mode is best effort: a cuBLAS that refuses it
/// keeps its default. Caller holds s.mu[device].
void prepare(Cublas& s, cublasHandle_t h, int device, cudaStream_t stream) {
  check_status(s, s.set_stream(h, stream), "cublasSetStream_v2");
  if (s.workspace[device] != nullptr)  // after set_stream, which resets it to cuBLAS's own
    check_status(s, s.set_workspace(h, s.workspace[device], kWorkspaceBytes), "cublasSetWorkspace_v2");
  const int mode = 16 | (tf32_allowed() ? 3 : 0);
  if (s.math[device] != mode) {  // without the reduction flag when this cuBLAS refuses it; retried next call if both fail
    if (s.set_math_mode(h, mode) == 0 || s.set_math_mode(h, mode & 3) == 0) s.math[device] = mode;
  }
}

/// Makes the handle of `device` if it is not there yet. cublasCreate allocates and may synchronize,
/// which would spoil another thread's CUDA graph recording of the device in progress, so the first
/// handle waits for those to end (the device's lock is not held meanwhile: a recording needs it).
/// A thread that records itself makes it at once; its recording may then fail, and its pass runs
/// eagerly.
void ensure_handle(Cublas& s, int device) {
  {
    std::lock_guard<std::mutex> lk(s.mu[device]);
    if (s.handle[device]) return;
  }
  auto make = [&] {
    std::lock_guard<std::mutex> lk(s.mu[device]);
    handle_for(s, device);
  };
  if (!when_others_not_recording(device, make)) make();
}

/// cuBLAS with the handle of `device` on `stream`, under the device's lock: f(s, h).
template <typename F>
void with_handle(int device, cudaStream_t stream, F&& f) {
  Cublas& s = loaded();
  if (!s.status.empty()) throw KilnError(s.status);
  ensure_handle(s, device);
  DeviceGuard g(device);  // the ops set it too; a handle is bound to its device
  std::lock_guard<std::mutex> lk(s.mu[device]);
  cublasHandle_t h = handle_for(s, device);
  prepare(s, h, device, stream);
  f(s, h);
}

template <typename T, typename Fn>
void gemm_impl(Fn Cublas::*fn, const char* fname, int device, cudaStream_t stream, bool ta, bool tb, int64_t m,
               int64_t n, int64_t k, T alpha, const T* a, const T* b, T beta, T* c) {
  if (gemm_trivial(device, stream, m, n, k, (double)beta, c, sizeof(T))) return;
  with_handle(device, stream, [&](Cublas& s, cublasHandle_t h) {
    // Row-major C[m,n] = op(A) op(B) is column-major C^T[n,m] = op(B)^T op(A)^T: swap the operands.
    // Row-major A is [m,k] (ld k) or [k,m] when ta (ld m); B is [k,n] (ld n) or [n,k] when tb (ld k).
    int lda = (int)(ta ? m : k), ldb = (int)(tb ? k : n);
    check_status(s,
                 (s.*fn)(h, tb ? kCublasOpT : kCublasOpN, ta ? kCublasOpT : kCublasOpN, (int)n, (int)m, (int)k, &alpha,
                         b, ldb, a, lda, &beta, c, (int)n),
                 fname);
  });
}

template <typename T, typename Fn>
void gemm_batched_impl(Fn Cublas::*fn, const char* fname, int device, cudaStream_t stream, bool ta, bool tb,
                       int64_t batch, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t stride_a,
                       const T* b, int64_t stride_b, T beta, T* c, int64_t stride_c) {
  check_dims(m, n, k);
  if (batch < 0 || batch > INT_MAX)
    throw KilnError("GPU batched gemm: batch count " + std::to_string(batch) + " exceeds the 32-bit range of cuBLAS");
  if (m == 0 || n == 0 || batch == 0) return;
  if (device < 0 || device >= kMaxDevices) throw KilnError("GPU gemm: bad device id " + std::to_string(device));
  if (k == 0) {  // C = beta * C; only beta 0 and 1 occur
    if (beta == T(0)) {
      if (stride_c == m * n)
        KILN_CUDA_CHECK(cudaMemsetAsync(c, 0, (size_t)(batch * m * n) * sizeof(T), stream));
      else
        for (int64_t i = 0; i < batch; ++i)
          KILN_CUDA_CHECK(cudaMemsetAsync(c + i * stride_c, 0, (size_t)(m * n) * sizeof(T), stream));
    } else if (beta != T(1)) {
      throw KilnError("GPU batched gemm: k == 0 with beta other than 0 or 1");
    }
    return;
  }
  with_handle(device, stream, [&](Cublas& s, cublasHandle_t h) {
    // Same operand swap as gemm_impl, per batch entry.
    int lda = (int)(ta ? m : k), ldb = (int)(tb ? k : n);
    check_status(s,
                 (s.*fn)(h, tb ? kCublasOpT : kCublasOpN, ta ? kCublasOpT : kCublasOpN, (int)n, (int)m, (int)k, &alpha,
                         b, ldb, (long long)stride_b, a, lda, (long long)stride_a, &beta, c, (int)n,
                         (long long)stride_c, (int)batch),
                 fname);
  });
}

}  // namespace

const std::string& cublas_status() { return loaded().status; }

std::string cublas_describe() {
  Cublas& s = loaded();
  if (!s.status.empty()) return s.status;
  std::string v;
  if (s.get_property) {
    int ma = 0, mi = 0, pa = 0;
    if (s.get_property(0, &ma) == 0 && s.get_property(1, &mi) == 0 && s.get_property(2, &pa) == 0)
      v = " " + std::to_string(ma) + "." + std::to_string(mi) + "." + std::to_string(pa);
  }
  std::string ws = s.set_workspace == nullptr ? "; cublasSetWorkspace_v2 missing: cuBLAS's own per-stream workspaces"
                   : s.workspace_failures.load() > 0
                       ? "; shared workspace not allocated on " + std::to_string(s.workspace_failures.load()) +
                             " device(s) (cuBLAS's own per-stream workspaces there)"
                       : "; one " + std::to_string(kWorkspaceBytes >> 20) + " MiB workspace per device";
  return "cuBLAS" + v + " from " + s.found_at + ws;
}

void gemm(int device, cudaStream_t stream, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, const float* b, float beta, float* c) {
  gemm_impl<float>(&Cublas::sgemm, "cublasSgemm_v2", device, stream, ta, tb, m, n, k, alpha, a, b, beta, c);
}

void gemm(int device, cudaStream_t stream, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, const double* b, double beta, double* c) {
  gemm_impl<double>(&Cublas::dgemm, "cublasDgemm_v2", device, stream, ta, tb, m, n, k, alpha, a, b, beta, c);
}

void gemm_low_precision(int device, cudaStream_t stream, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const void* a, const void* b, float beta, void* c, DType t) {
  if (t != DType::kFloat16 && t != DType::kBfloat16)
    throw KilnError(std::string("GPU gemm_low_precision: ") + dtype_name(t) + " is not float16 or bfloat16");
  if (gemm_trivial(device, stream, m, n, k, beta, c, 2)) return;
  with_handle(device, stream, [&](Cublas& s, cublasHandle_t h) {
    const int ct = t == DType::kFloat16 ? kCudaR16F : kCudaR16BF;
    int lda = (int)(ta ? m : k), ldb = (int)(tb ? k : n);  // the operand swap of gemm_impl
    check_status(s,
                 s.gemm_ex(h, tb ? kCublasOpT : kCublasOpN, ta ? kCublasOpT : kCublasOpN, (int)n, (int)m, (int)k, &alpha,
                           b, ct, ldb, a, ct, lda, &beta, c, ct, (int)n, kCublasCompute32F, kCublasGemmDefault),
                 "cublasGemmEx");
  });
}

void gemm_strided_batched(int device, cudaStream_t stream, bool ta, bool tb, int64_t batch, int64_t m, int64_t n,
                          int64_t k, float alpha, const float* a, int64_t stride_a, const float* b, int64_t stride_b,
                          float beta, float* c, int64_t stride_c) {
  gemm_batched_impl<float>(&Cublas::sgemm_batched, "cublasSgemmStridedBatched", device, stream, ta, tb, batch, m, n, k,
                           alpha, a, stride_a, b, stride_b, beta, c, stride_c);
}

void gemm_strided_batched(int device, cudaStream_t stream, bool ta, bool tb, int64_t batch, int64_t m, int64_t n,
                          int64_t k, double alpha, const double* a, int64_t stride_a, const double* b,
                          int64_t stride_b, double beta, double* c, int64_t stride_c) {
  gemm_batched_impl<double>(&Cublas::dgemm_batched, "cublasDgemmStridedBatched", device, stream, ta, tb, batch, m, n,
                            k, alpha, a, stride_a, b, stride_b, beta, c, stride_c);
}

}  // namespace cuda
}  // namespace kiln
