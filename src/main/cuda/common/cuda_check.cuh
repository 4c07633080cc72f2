// Host-side helpers shared by every file of the CUDA library (src/main/cuda): error checking that
// throws kiln::KilnError (never aborts), the current-device guard, and the internal interfaces
// between runtime.cc, cublas_dl.cc and the op files. Host code only: included by .cc files
// (compiled by g++) as well as by .cu files (compiled by nvcc).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <functional>
#include <string>

#include "kiln/low_precision.h"
#include "kiln/op.h"
#include "kiln/tensor.h"

namespace kiln {
namespace cuda {

/// "what: <CUDA error string> (<code>)", and clears the (non-sticky) error state.
inline std::string error_text(cudaError_t e, const char* what) {
  std::string s = std::string(what) + ": " + cudaGetErrorString(e) + " (" + std::to_string((int)e) + ")";
  (void)cudaGetLastError();
  return s;
}

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what) { throw KilnError(error_text(e, what)); }

}  // namespace cuda
}  // namespace kiln

/// Checks a CUDA runtime call; throws KilnError "cudaXxx(...): <error string> (<code>)".
#define KILN_CUDA_CHECK(call)                                                   \
  do {                                                                          \
    cudaError_t kiln_cuda_e_ = (call);                                          \
    if (kiln_cuda_e_ != cudaSuccess) ::kiln::cuda::throw_cuda(kiln_cuda_e_, #call); \
  } while (0)

/// After a <<<...>>> launch: reports configuration / launch errors (asynchronous faults surface
/// at the next synchronizing call, which is checked too).
#define KILN_CUDA_LAUNCH_CHECK(name)                                                        \
  do {                                                                                      \
    cudaError_t kiln_cuda_e_ = cudaGetLastError();                                          \
    if (kiln_cuda_e_ != cudaSuccess)                                                        \
      ::kiln::cuda::throw_cuda(kiln_cuda_e_, (std::string("launch of ") + (name)).c_str()); \
  } while (0)

namespace kiln {
namespace cuda {

/// Makes `device` current for the calling thread for the guard's lifetime.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    KILN_CUDA_CHECK(cudaGetDevice(&prev_));
    if (prev_ != device) KILN_CUDA_CHECK(cudaSetDevice(device));
    switched_ = prev_ != device;
  }
  ~DeviceGuard() {
    if (switched_) (void)cudaSetDevice(prev_);  // best effort; destructors must not throw
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
  bool switched_ = false;
};

/// The stream a kernel runs on: OpCtx::stream (a cudaStream_t), null = the legacy default stream.
inline cudaStream_t stream_of(const OpCtx& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

/// Device id of a kernel call: the blobs' context when they are on the GPU, else OpCtx's.
inline int device_of(const OpCtx& ctx, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  for (const auto& b : out)
    if (b.ctx.type == DevType::kGPU) return b.ctx.id;
  for (const auto& b : in)
    if (b.ctx.type == DevType::kGPU) return b.ctx.id;
  return ctx.ctx.id;
}

/// Checks that the blobs live on a GPU (a CPU pointer handed to a kernel would fault the context).
inline void check_on_gpu(const char* op, const std::vector<TBlob>& blobs, const char* what) {
  for (size_t i = 0; i < blobs.size(); ++i)
    if (blobs[i].ptr != nullptr && blobs[i].ctx.type != DevType::kGPU)
      throw KilnError(std::string(op) + ": GPU kernel got " + what + " " + std::to_string(i) + " on " +
                      blobs[i].ctx.str());
}

inline void check_arity(const char* op, const std::vector<TBlob>& in, size_t nin_min, size_t nin_max,
                        const std::vector<TBlob>& out, const std::vector<OpReq>& req, size_t nout_min,
                        size_t nout_max) {
  if (in.size() < nin_min || in.size() > nin_max || out.size() < nout_min || out.size() > nout_max ||
      req.size() != out.size())
    throw KilnError(std::string(op) + " (GPU): got " + std::to_string(in.size()) + " inputs, " +
                    std::to_string(out.size()) + " outputs and " + std::to_string(req.size()) + " requests");
}

/// True when the attributes' op declares parameter `name` (a backward op may carry its forward
/// op's dictionary without declaring the parameters; Attrs accessors throw for those).
inline bool declared(const Attrs& a, const std::string& name) {
  if (a.op == nullptr) return false;
  for (const auto& p : a.op->params)
    if (p.name == name) return true;
  return false;
}

/// A string parameter: parsed value when declared, else the raw dictionary entry, else throws.
inline std::string attr_str(const char* op, const Attrs& a, const std::string& name) {
  if (declared(a, name)) return a.s(name);
  auto it = a.dict.find(name);
  if (it != a.dict.end()) return it->second;
  throw KilnError(std::string(op) + " (GPU): parameter '" + name + "' is missing");
}

// ---- cuBLAS (cublas_dl.cc) -----------------------------------------------------------------

/// Opens libcublas.so.13 (+ libcublasLt.so.13) once; "" when usable, else the reason.
const std::string& cublas_status();
/// "cuBLAS 13.0.0 from <path>" or the reason it is not available.
std::string cublas_describe();
/// Row-major C[m,n] = alpha * op(A) * op(B) + beta * C on `stream` of the current device;
/// op = transpose when ta/tb. A is [m,k] (or [k,m] when ta), B is [k,n] (or [n,k] when tb).
/// beta == 0 never reads C. Throws KilnError naming the cuBLAS status.
void gemm(int device, cudaStream_t stream, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, const float* b, float beta, float* c);
void gemm(int device, cudaStream_t stream, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, const double* b, double beta, double* c);
/// gemm on float16 or bfloat16 (t) A, B and C with float32 accumulation and float alpha/beta
/// (cublasGemmEx, CUBLAS_COMPUTE_32F: tensor cores); C is rounded once to t.
void gemm_low_precision(int device, cudaStream_t stream, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const void* a, const void* b, float beta, void* c, DType t);
/// Batched row-major gemm: for i in [0, batch), C_i = alpha * op(A_i) * op(B_i) + beta * C_i with
/// A_i = a + i * stride_a (elements), likewise B_i and C_i; shapes and ta/tb as gemm.
void gemm_strided_batched(int device, cudaStream_t stream, bool ta, bool tb, int64_t batch, int64_t m, int64_t n,
                          int64_t k, float alpha, const float* a, int64_t stride_a, const float* b, int64_t stride_b,
                          float beta, float* c, int64_t stride_c);
void gemm_strided_batched(int device, cudaStream_t stream, bool ta, bool tb, int64_t batch, int64_t m, int64_t n,
                          int64_t k, double alpha, const double* a, int64_t stride_a, const double* b,
                          int64_t stride_b, double beta, double* c, int64_t stride_c);

/// Runs f() unless a thread (this one included) records a CUDA graph on `device` (-1: on any
/// device) now: false, without running it, then (and, when another thread's recording was the
/// reason, take_stepped_aside() says so). No recording of
/// the device starts while f() runs. For work that conflicts with a capture and is done under a lock
/// a recording may need (cuDNN's algorithm timing and handle creation, staging growth), so that it
/// takes another way instead of waiting (runtime.cc). f() must not start a recording.
bool unless_recording(int device, const std::function<void()>& f);
/// Runs f() once no other thread records a CUDA graph on `device`, holding new recordings of the
/// device back until it returns; false, without running it, when this thread records (waiting
/// would never end). For rare work that a capture in progress does not allow and that is done with
/// no lock a recording may need (cuBLAS handle creation). f() must not start a recording.
bool when_others_not_recording(int device, const std::function<void()>& f);

// ---- device scratch -----------------------------------------------------------------------------

/// Temporary device memory for one kernel call, from the caching allocator (cheap after the first
/// call of a size). Freed blocks are reused at once, which is safe because every kernel of a device
/// runs on one stream in issue order. Owns its block; not copyable.
class DeviceScratch {
 public:
  DeviceScratch(int device, size_t bytes);
  ~DeviceScratch();
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  int device_;
  void* ptr_;
  size_t bytes_;
};

/// Sets the GPU kernel of registered operator `name` (a backward op included); throws for a name the
/// registry does not know, so a misspelt registration fails loudly in the -Pcuda build.
/// `native_low_precision`: the kiln/low_precision.h types the kernel takes itself (the others are
/// widened to float32 around it).
inline void set_gpu(OpRegistry& r, const char* name, Kernel k, uint8_t native_low_precision = 0) {
  OpDef* op = r.find_mutable(name);
  if (op == nullptr) throw KilnError(std::string("GPU kernel registered for unknown operator '") + name + "'");
  op->gpu = std::move(k);
  op->native_low_precision_gpu = native_low_precision;
}

// ---- op families (ops/*.cu); each file registers its GPU kernels with OpDef::gpu ------------------
void register_elemwise_gpu(OpRegistry& r);         // ops/elemwise.cu
void register_fully_connected_gpu(OpRegistry& r);  // ops/fully_connected.cu
void register_tensor_gpu(OpRegistry& r);           // ops/tensor_*.cu: broadcast, reductions, the rest of elemwise
void register_shape_gpu(OpRegistry& r);            // ops/shape_*.cu, ops/index_*.cu: shape, index, dot, sequence
void register_nn_gpu(OpRegistry& r);               // ops/nn_*.cu: softmax family, losses, LeakyReLU, Dropout, pooling, pad, LRN
void register_norm_gpu(OpRegistry& r);             // ops/norm_*.cu: BatchNorm, LayerNorm, InstanceNorm
void register_conv_gpu(OpRegistry& r);             // ops/conv_*.cu (+ cudnn_dl.cc): Convolution, Deconvolution
void register_optimizer_gpu(OpRegistry& r);        // ops/optimizer_*.cu: every *_update op
void register_rnn_gpu(OpRegistry& r);              // ops/rnn_*.cu: RNN (LSTM, GRU, rnn_relu, rnn_tanh)
void register_contrib_gpu(OpRegistry& r);          // ops/contrib_*.cu: _contrib_box_iou / box_nms / bipartite_matching / box_encode / box_decode
void register_random_gpu(OpRegistry& r);           // ops/random.cu: _random_* samplers, _shuffle

}  // namespace cuda
}  // namespace kiln
