// cuDNN opened with dlopen, as cuBLAS in cublas_dl.cc: neither cudnn.h nor libcudnn is needed at
// build time, and the JNI library still loads where cuDNN is absent (Convolution and
// Deconvolution then run the im2col + cuBLAS kernels of ops/conv_register.cu). We declare the few
// entry points of the cuDNN 9 legacy convolution API we call ourselves (stable C ABI; all enums
// are passed as int).
//
// libcudnn.so.9 is found as common/dl_search.h describes (on GPU machines usually through
// KILN_CUDA_LIBDIRS, naming python3's site-packages/nvidia/cudnn/lib). When found in a directory, cuDNN 9's sub-libraries (libcudnn_graph, _ops, _cnn, _engines_*,
// _heuristic) are preloaded from that same directory, so that the libcudnn.so.9 shim finds them
// even when the directory is not on the loader's path.
//
// KILN_CUDNN=0 (also "false", "off", "no") keeps cuDNN unloaded: the fallback kernels run.
//
// Algorithms: chosen once per (device, dtype, pass, geometry, tuning) and cached, deterministic
// algorithms first (KILN_CUDNN_DETERMINISTIC=0: in the order cuDNN gives). As MXNet's
// `cudnn_tune`: 'off' takes the cudnnGet*Algorithm_v7 heuristics' first usable algorithm (no timing
// runs); 'limited_workspace' (MXNet's default, through MXNET_CUDNN_AUTOTUNE_DEFAULT=1) times them
// with cudnnFind*AlgorithmEx on the call's own operands at the first eager call and takes the
// fastest whose workspace fits the op's `workspace` (MB); 'fastest' the fastest within
// kMaxWorkspace. Timing never runs while a CUDA graph is recorded on the device, by any thread (the
// heuristics answer, uncached).
// Math type FMA: float32 stays float32 (no TF32 tensor-core rounding), so results match the CPU's
// float32 GEMMs to ~1e-6 relative, unless TF32 is allowed (tf32_allowed(): KILN_CUDA_TF32=1 or
// Engine.setCudaTf32), which gives float32 convolutions cuDNN's default math (TF32 tensor cores on
// Ampere and later), as PyTorch's torch.backends.cudnn.allow_tf32.
#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include "common/cudnn.cuh"
#include "common/dl_search.h"
#include "kiln/cuda_api.h"

namespace kiln {
namespace cuda {
namespace {

// ---- our own declarations of the cuDNN C API ---------------------------------------------------
typedef struct cudnnContext* cudnnHandle_t;
typedef struct cudnnTensorStruct* cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct* cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct* cudnnConvolutionDescriptor_t;
typedef int cudnnStatus_t;  // CUDNN_STATUS_SUCCESS = 0
enum { kDataFloat = 0, kDataDouble = 1, kDataHalf = 2, kDataBfloat16 = 9 };  // cudnnDataType_t
enum { kTensorNCHW = 0 };                                   // cudnnTensorFormat_t
enum { kCrossCorrelation = 1 };                             // cudnnConvolutionMode_t
enum { kDefaultMath = 0, kTensorOpMath = 1, kTensorOpMathAllowConversion = 2, kFmaMath = 3 };  // cudnnMathType_t
enum { kDeterministic = 1 };                                                                      // cudnnDeterminism_t

// cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t (identical layouts)
struct AlgoPerf {
  int algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  int determinism;
  int mathType;
  int reserved[3];
};

typedef size_t (*cudnnGetVersion_fn)();
typedef const char* (*cudnnGetErrorString_fn)(cudnnStatus_t);
typedef cudnnStatus_t (*cudnnCreate_fn)(cudnnHandle_t*);
typedef cudnnStatus_t (*cudnnSetStream_fn)(cudnnHandle_t, cudaStream_t);
typedef cudnnStatus_t (*cudnnCreateTensorDescriptor_fn)(cudnnTensorDescriptor_t*);
typedef cudnnStatus_t (*cudnnDestroyTensorDescriptor_fn)(cudnnTensorDescriptor_t);
typedef cudnnStatus_t (*cudnnSetTensorNdDescriptor_fn)(cudnnTensorDescriptor_t, int dataType, int nbDims,
                                                       const int dimA[], const int strideA[]);
typedef cudnnStatus_t (*cudnnCreateFilterDescriptor_fn)(cudnnFilterDescriptor_t*);
typedef cudnnStatus_t (*cudnnDestroyFilterDescriptor_fn)(cudnnFilterDescriptor_t);
typedef cudnnStatus_t (*cudnnSetFilterNdDescriptor_fn)(cudnnFilterDescriptor_t, int dataType, int format, int nbDims,
                                                       const int filterDimA[]);
typedef cudnnStatus_t (*cudnnCreateConvolutionDescriptor_fn)(cudnnConvolutionDescriptor_t*);
typedef cudnnStatus_t (*cudnnDestroyConvolutionDescriptor_fn)(cudnnConvolutionDescriptor_t);
typedef cudnnStatus_t (*cudnnSetConvolutionNdDescriptor_fn)(cudnnConvolutionDescriptor_t, int arrayLength,
                                                            const int padA[], const int filterStrideA[],
                                                            const int dilationA[], int mode, int computeType);
typedef cudnnStatus_t (*cudnnSetConvolutionGroupCount_fn)(cudnnConvolutionDescriptor_t, int groupCount);
typedef cudnnStatus_t (*cudnnSetConvolutionMathType_fn)(cudnnConvolutionDescriptor_t, int mathType);
// forward: (handle, xDesc, wDesc, convDesc, yDesc, ...)
typedef cudnnStatus_t (*cudnnGetConvolutionForwardAlgorithm_v7_fn)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                                   cudnnFilterDescriptor_t,
                                                                   cudnnConvolutionDescriptor_t,
                                                                   cudnnTensorDescriptor_t, int requested,
                                                                   int* returned, AlgoPerf* perf);
typedef cudnnStatus_t (*cudnnGetConvolutionForwardWorkspaceSize_fn)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                                    cudnnFilterDescriptor_t,
                                                                    cudnnConvolutionDescriptor_t,
                                                                    cudnnTensorDescriptor_t, int algo, size_t*);
typedef cudnnStatus_t (*cudnnConvolutionForward_fn)(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t,
                                                    const void* x, cudnnFilterDescriptor_t, const void* w,
                                                    cudnnConvolutionDescriptor_t, int algo, void* ws,
                                                    size_t ws_bytes, const void* beta, cudnnTensorDescriptor_t,
                                                    void* y);
// backward data: (handle, wDesc, dyDesc, convDesc, dxDesc, ...)
typedef cudnnStatus_t (*cudnnGetConvolutionBackwardDataAlgorithm_v7_fn)(cudnnHandle_t, cudnnFilterDescriptor_t,
                                                                        cudnnTensorDescriptor_t,
                                                                        cudnnConvolutionDescriptor_t,
                                                                        cudnnTensorDescriptor_t, int requested,
                                                                        int* returned, AlgoPerf* perf);
typedef cudnnStatus_t (*cudnnGetConvolutionBackwardDataWorkspaceSize_fn)(cudnnHandle_t, cudnnFilterDescriptor_t,
                                                                         cudnnTensorDescriptor_t,
                                                                         cudnnConvolutionDescriptor_t,
                                                                         cudnnTensorDescriptor_t, int algo, size_t*);
typedef cudnnStatus_t (*cudnnConvolutionBackwardData_fn)(cudnnHandle_t, const void* alpha, cudnnFilterDescriptor_t,
                                                         const void* w, cudnnTensorDescriptor_t, const void* dy,
                                                         cudnnConvolutionDescriptor_t, int algo, void* ws,
                                                         size_t ws_bytes, const void* beta, cudnnTensorDescriptor_t,
                                                         void* dx);
// backward filter: (handle, xDesc, dyDesc, convDesc, dwDesc, ...)
typedef cudnnStatus_t (*cudnnGetConvolutionBackwardFilterAlgorithm_v7_fn)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                                          cudnnTensorDescriptor_t,
                                                                          cudnnConvolutionDescriptor_t,
                                                                          cudnnFilterDescriptor_t, int requested,
                                                                          int* returned, AlgoPerf* perf);
typedef cudnnStatus_t (*cudnnGetConvolutionBackwardFilterWorkspaceSize_fn)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                                           cudnnTensorDescriptor_t,
                                                                           cudnnConvolutionDescriptor_t,
                                                                           cudnnFilterDescriptor_t, int algo,
                                                                           size_t*);
typedef cudnnStatus_t (*cudnnConvolutionBackwardFilter_fn)(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t,
                                                           const void* x, cudnnTensorDescriptor_t, const void* dy,
                                                           cudnnConvolutionDescriptor_t, int algo, void* ws,
                                                           size_t ws_bytes, const void* beta,
                                                           cudnnFilterDescriptor_t, void* dw);
// cudnnFind*AlgorithmEx: time every algorithm on the given operands (outputs are overwritten)
typedef cudnnStatus_t (*cudnnFindConvolutionForwardAlgorithmEx_fn)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                                   const void* x, cudnnFilterDescriptor_t,
                                                                   const void* w, cudnnConvolutionDescriptor_t,
                                                                   cudnnTensorDescriptor_t, void* y, int requested,
                                                                   int* returned, AlgoPerf* perf, void* ws,
                                                                   size_t ws_bytes);
typedef cudnnStatus_t (*cudnnFindConvolutionBackwardDataAlgorithmEx_fn)(cudnnHandle_t, cudnnFilterDescriptor_t,
                                                                        const void* w, cudnnTensorDescriptor_t,
                                                                        const void* dy, cudnnConvolutionDescriptor_t,
                                                                        cudnnTensorDescriptor_t, void* dx,
                                                                        int requested, int* returned, AlgoPerf* perf,
                                                                        void* ws, size_t ws_bytes);
typedef cudnnStatus_t (*cudnnFindConvolutionBackwardFilterAlgorithmEx_fn)(cudnnHandle_t, cudnnTensorDescriptor_t,
                                                                          const void* x, cudnnTensorDescriptor_t,
                                                                          const void* dy,
                                                                          cudnnConvolutionDescriptor_t,
                                                                          cudnnFilterDescriptor_t, void* dw,
                                                                          int requested, int* returned,
                                                                          AlgoPerf* perf, void* ws, size_t ws_bytes);
typedef cudnnStatus_t (*cudnnAddTensor_fn)(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t, const void* a,
                                           const void* beta, cudnnTensorDescriptor_t, void* c);
typedef cudnnStatus_t (*cudnnConvolutionBackwardBias_fn)(cudnnHandle_t, const void* alpha, cudnnTensorDescriptor_t,
                                                         const void* dy, const void* beta, cudnnTensorDescriptor_t,
                                                         void* db);

constexpr int kMaxDevices = 64;
constexpr int kMaxAlgos = 16;                               // more than any pass has (8, 6, 7)
constexpr size_t kMaxWorkspace = size_t(2) << 30;           // algorithms needing more are skipped

/// An algorithm choice for one (device, dtype, pass, geometry); ok == false: cuDNN rejected it.
struct Choice {
  bool ok = false;
  bool timed = false;  // chosen by timing (cudnn_tune), not by the heuristics
  int algo = 0;
  int math = kFmaMath;
  size_t ws = 0;
};

struct Cudnn {
  std::once_flag once;
  std::string status = "cuDNN not loaded yet";  // "" when usable
  std::string found_at;
  size_t version = 0;
  void* lib = nullptr;
  cudnnGetVersion_fn get_version = nullptr;
  cudnnGetErrorString_fn error_string = nullptr;
  cudnnCreate_fn create = nullptr;
  cudnnSetStream_fn set_stream = nullptr;
  cudnnCreateTensorDescriptor_fn create_tensor = nullptr;
  cudnnDestroyTensorDescriptor_fn destroy_tensor = nullptr;
  cudnnSetTensorNdDescriptor_fn set_tensor = nullptr;
  cudnnCreateFilterDescriptor_fn create_filter = nullptr;
  cudnnDestroyFilterDescriptor_fn destroy_filter = nullptr;
  cudnnSetFilterNdDescriptor_fn set_filter = nullptr;
  cudnnCreateConvolutionDescriptor_fn create_conv = nullptr;
  cudnnDestroyConvolutionDescriptor_fn destroy_conv = nullptr;
  cudnnSetConvolutionNdDescriptor_fn set_conv = nullptr;
  cudnnSetConvolutionGroupCount_fn set_groups = nullptr;
  cudnnSetConvolutionMathType_fn set_math = nullptr;
  cudnnGetConvolutionForwardAlgorithm_v7_fn fwd_algo = nullptr;
  cudnnGetConvolutionForwardWorkspaceSize_fn fwd_ws = nullptr;
  cudnnConvolutionForward_fn fwd = nullptr;
  cudnnGetConvolutionBackwardDataAlgorithm_v7_fn bwd_data_algo = nullptr;
  cudnnGetConvolutionBackwardDataWorkspaceSize_fn bwd_data_ws = nullptr;
  cudnnConvolutionBackwardData_fn bwd_data = nullptr;
  cudnnGetConvolutionBackwardFilterAlgorithm_v7_fn bwd_filter_algo = nullptr;
  cudnnGetConvolutionBackwardFilterWorkspaceSize_fn bwd_filter_ws = nullptr;
  cudnnConvolutionBackwardFilter_fn bwd_filter = nullptr;
  cudnnAddTensor_fn add_tensor = nullptr;
  cudnnConvolutionBackwardBias_fn bwd_bias = nullptr;
  cudnnFindConvolutionForwardAlgorithmEx_fn find_fwd = nullptr;          // optional: no timing without
  cudnnFindConvolutionBackwardDataAlgorithmEx_fn find_bwd_data = nullptr;
  cudnnFindConvolutionBackwardFilterAlgorithmEx_fn find_bwd_filter = nullptr;
  std::mutex mu[kMaxDevices];              // guards handle creation and set_stream + the calls
  cudnnHandle_t handle[kMaxDevices] = {};
  std::string handle_error[kMaxDevices];   // cudnnCreate failed on that device: the fallback runs there
  std::mutex info_mu;                      // guards cache, rejected, last_rejection
  std::map<std::vector<int64_t>, Choice> cache;
  int64_t rejected = 0;                    // calls cuDNN declined (run by the fallback kernels)
  std::string last_rejection;
  int64_t timed = 0, heuristic = 0;        // cached choices made by timing / by the heuristics
  std::string last_tune_note;              // why the last timing fell back to the heuristics
};

// Never destroyed: handles must not be torn down after the CUDA runtime at process exit.
Cudnn& state() {
  static Cudnn* s = new Cudnn();
  return *s;
}

/// cuDNN 9's libcudnn.so.9 is a shim that dlopens its sub-libraries by soname; preloading them
/// from `dir` makes those dlopens succeed when `dir` is not on the loader's path. Several passes,
/// since a sub-library loads only once the ones it needs are in. Missing ones are left to the shim.
void preload_sublibraries(const std::string& dir) {
  static const char* kSub[] = {"libcudnn_graph.so.9",        "libcudnn_engines_runtime_compiled.so.9",
                               "libcudnn_engines_precompiled.so.9", "libcudnn_heuristic.so.9",
                               "libcudnn_ops.so.9",          "libcudnn_cnn.so.9"};
  constexpr int n = sizeof(kSub) / sizeof(kSub[0]);
  bool done[n] = {};
  for (int pass = 0; pass < n; ++pass) {
    bool progress = false;
    for (int i = 0; i < n; ++i) {
      if (done[i]) continue;
      std::string path = dir + "/" + kSub[i];
      if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
        done[i] = progress = true;
      } else {
        (void)dlerror();
      }
    }
    if (!progress) break;
  }
}

/// True when environment variable `name` is "0", "false", "off" or "no" (any case).
bool env_off(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return false;
  std::string s(v);
  for (auto& ch : s) ch = (char)std::tolower((unsigned char)ch);
  return s == "0" || s == "false" || s == "off" || s == "no";
}

template <typename F>
void sym(Cudnn& s, F* fn, const char* name, std::string* missing) {
  *fn = (F)dlsym(s.lib, name);
  if (*fn == nullptr) *missing += std::string(" ") + name;
}

void load(Cudnn& s) {
  if (env_off("KILN_CUDNN")) {
    s.status = "cuDNN disabled by KILN_CUDNN=" + std::string(std::getenv("KILN_CUDNN"));
    return;
  }
  std::string where, dir, err;
  s.lib = open_library("libcudnn.so.9", &where, &dir, &err);
  if (!s.lib) {
    s.status = "cuDNN not available: libcudnn.so.9 not found (" + err + "); " + library_search_text();
    return;
  }
  if (!dir.empty()) preload_sublibraries(dir);
  std::string missing;
  sym(s, &s.get_version, "cudnnGetVersion", &missing);
  sym(s, &s.error_string, "cudnnGetErrorString", &missing);
  sym(s, &s.create, "cudnnCreate", &missing);
  sym(s, &s.set_stream, "cudnnSetStream", &missing);
  sym(s, &s.create_tensor, "cudnnCreateTensorDescriptor", &missing);
  sym(s, &s.destroy_tensor, "cudnnDestroyTensorDescriptor", &missing);
  sym(s, &s.set_tensor, "cudnnSetTensorNdDescriptor", &missing);
  sym(s, &s.create_filter, "cudnnCreateFilterDescriptor", &missing);
  sym(s, &s.destroy_filter, "cudnnDestroyFilterDescriptor", &missing);
  sym(s, &s.set_filter, "cudnnSetFilterNdDescriptor", &missing);
  sym(s, &s.create_conv, "cudnnCreateConvolutionDescriptor", &missing);
  sym(s, &s.destroy_conv, "cudnnDestroyConvolutionDescriptor", &missing);
  sym(s, &s.set_conv, "cudnnSetConvolutionNdDescriptor", &missing);
  sym(s, &s.set_groups, "cudnnSetConvolutionGroupCount", &missing);
  sym(s, &s.set_math, "cudnnSetConvolutionMathType", &missing);
  sym(s, &s.fwd_algo, "cudnnGetConvolutionForwardAlgorithm_v7", &missing);
  sym(s, &s.fwd_ws, "cudnnGetConvolutionForwardWorkspaceSize", &missing);
  sym(s, &s.fwd, "cudnnConvolutionForward", &missing);
  sym(s, &s.bwd_data_algo, "cudnnGetConvolutionBackwardDataAlgorithm_v7", &missing);
  sym(s, &s.bwd_data_ws, "cudnnGetConvolutionBackwardDataWorkspaceSize", &missing);
  sym(s, &s.bwd_data, "cudnnConvolutionBackwardData", &missing);
  sym(s, &s.bwd_filter_algo, "cudnnGetConvolutionBackwardFilterAlgorithm_v7", &missing);
  sym(s, &s.bwd_filter_ws, "cudnnGetConvolutionBackwardFilterWorkspaceSize", &missing);
  sym(s, &s.bwd_filter, "cudnnConvolutionBackwardFilter", &missing);
  std::string optional;  // the bias passes use Kiln's kernels without these
  sym(s, &s.add_tensor, "cudnnAddTensor", &optional);
  sym(s, &s.bwd_bias, "cudnnConvolutionBackwardBias", &optional);
  sym(s, &s.find_fwd, "cudnnFindConvolutionForwardAlgorithmEx", &optional);
  sym(s, &s.find_bwd_data, "cudnnFindConvolutionBackwardDataAlgorithmEx", &optional);
  sym(s, &s.find_bwd_filter, "cudnnFindConvolutionBackwardFilterAlgorithmEx", &optional);
  if (!missing.empty()) {
    s.status = "cuDNN not available: " + where + " lacks" + missing;
    return;
  }
  s.version = s.get_version();
  if (s.version < 90000 || s.version >= 100000) {
    s.status = "cuDNN not available: " + where + " reports version " + std::to_string(s.version) +
               ", expected 9.x";
    return;
  }
  s.found_at = where;
  s.status.clear();
}

Cudnn& loaded() {
  Cudnn& s = state();
  std::call_once(s.once, [&] { load(s); });
  return s;
}

std::string status_name(Cudnn& s, cudnnStatus_t st) {
  std::string name;
  if (s.error_string) {
    const char* p = s.error_string(st);
    if (p) name = p;
  }
  if (name.empty()) name = "cuDNN status";
  return name + " (" + std::to_string(st) + ")";
}

/// cuDNN 9 status classes: 2xxx bad parameter, 3xxx not supported (cuDNN 8: 3 and 9). A call that
/// fails with these has done nothing, so the fallback can take over.
bool is_rejection(cudnnStatus_t st) {
  const int cls = st / 1000;
  return cls == 2 || cls == 3 || st == 3 || st == 9;
}

void note_rejection(Cudnn& s, const std::string& why) {
  std::lock_guard<std::mutex> lk(s.info_mu);
  ++s.rejected;
  s.last_rejection = why;
}

/// The handle of `device`, created on first use; null (and the reason noted) when cudnnCreate
/// fails there. Caller holds s.mu[device].
cudnnHandle_t handle_for(Cudnn& s, int device) {
  if (!s.handle[device] && s.handle_error[device].empty()) {
    DeviceGuard g(device);
    // not while a CUDA graph is recorded on the device (cudnnCreate allocates and may synchronize):
    // this call takes the fallback kernels and a later one creates the handle
    unless_recording(device, [&] {
      cudnnHandle_t h = nullptr;
      cudnnStatus_t st = s.create(&h);
      if (st != 0 || h == nullptr) {
        s.handle_error[device] = "cudnnCreate on gpu(" + std::to_string(device) + "): " + status_name(s, st);
        (void)cudaGetLastError();
        return;
      }
      s.handle[device] = h;
    });
  }
  return s.handle[device];
}

// ---- descriptors ----------------------------------------------------------------------------

struct TensorDesc {
  Cudnn& s;
  cudnnTensorDescriptor_t d = nullptr;
  explicit TensorDesc(Cudnn& c) : s(c) {}
  ~TensorDesc() {
    if (d) s.destroy_tensor(d);
  }
};
struct FilterDesc {
  Cudnn& s;
  cudnnFilterDescriptor_t d = nullptr;
  explicit FilterDesc(Cudnn& c) : s(c) {}
  ~FilterDesc() {
    if (d) s.destroy_filter(d);
  }
};
struct ConvDesc {
  Cudnn& s;
  cudnnConvolutionDescriptor_t d = nullptr;
  explicit ConvDesc(Cudnn& c) : s(c) {}
  ~ConvDesc() {
    if (d) s.destroy_conv(d);
  }
};

bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/// dims = [N, C, sp...] with nsp spatial dims taken from the end of sp[3]; false when a dim or
/// the element count exceeds cuDNN's 32-bit limits (or is 0, which it rejects).
bool tensor_dims(int nsp, int64_t N, int64_t C, const int64_t* sp, int* dims, int* strides) {
  int64_t d64[5] = {N, C, 1, 1, 1};
  for (int i = 0; i < nsp; ++i) d64[2 + i] = sp[3 - nsp + i];
  int64_t total = 1;
  for (int i = 0; i < nsp + 2; ++i) {
    if (d64[i] <= 0 || !fits_int(d64[i])) return false;
    total *= d64[i];
    if (total > INT_MAX) return false;
  }
  int64_t stride = 1;
  for (int i = nsp + 1; i >= 0; --i) {
    dims[i] = (int)d64[i];
    strides[i] = (int)stride;
    stride *= d64[i];
  }
  return true;
}

bool make_tensor(Cudnn& s, TensorDesc* t, int dt, int nsp, int64_t N, int64_t C, const int64_t* sp,
                 std::string* why) {
  int dims[5], strides[5];
  if (!tensor_dims(nsp, N, C, sp, dims, strides)) {
    *why = "tensor dims empty or over the 32-bit range";
    return false;
  }
  cudnnStatus_t st = s.create_tensor(&t->d);
  if (st == 0) st = s.set_tensor(t->d, dt, nsp + 2, dims, strides);
  if (st != 0) *why = "cudnnSetTensorNdDescriptor: " + status_name(s, st);
  return st == 0;
}

/// Descriptors of one convolution: x [N, C, D...], w [O, C/G, k...], y [N, O, Q...].
struct ConvDescs {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc c;
  explicit ConvDescs(Cudnn& s) : x(s), y(s), w(s), c(s) {}
};

/// The math type a convolution descriptor starts with: tensor-op for 16-bit data (the heuristics
/// list tensor-core algorithms only then), cuDNN's default for float32 with TF32 allowed (TF32
/// tensor cores on Ampere and later), FMA otherwise (float32 stays float32).
int base_math(int dt, bool tf32) {
  if (dt == kDataHalf || dt == kDataBfloat16) return kTensorOpMath;
  return dt == kDataFloat && tf32 ? kDefaultMath : kFmaMath;
}

bool make_conv(Cudnn& s, int dt, bool tf32, const CudnnConv& g, ConvDescs* d, std::string* why) {
  const int nsp = g.nsp;
  if (nsp != 2 && nsp != 3) {
    *why = "spatial rank " + std::to_string(nsp);
    return false;
  }
  if (g.G <= 0 || g.C % g.G != 0 || g.O % g.G != 0 || !fits_int(g.G)) {
    *why = "bad groups";
    return false;
  }
  if (!make_tensor(s, &d->x, dt, nsp, g.N, g.C, g.D, why)) return false;
  if (!make_tensor(s, &d->y, dt, nsp, g.N, g.O, g.Q, why)) return false;
  int wd[5], ws[5];
  if (!tensor_dims(nsp, g.O, g.C / g.G, g.k, wd, ws)) {
    *why = "weight dims empty or over the 32-bit range";
    return false;
  }
  int pad[3], str[3], dil[3];
  for (int i = 0; i < nsp; ++i) {
    const int j = 3 - nsp + i;
    if (!fits_int(g.p[j]) || !fits_int(g.s[j]) || !fits_int(g.d[j])) {
      *why = "pad/stride/dilate over the 32-bit range";
      return false;
    }
    pad[i] = (int)g.p[j];
    str[i] = (int)g.s[j];
    dil[i] = (int)g.d[j];
  }
  cudnnStatus_t st = s.create_filter(&d->w.d);
  if (st == 0) st = s.set_filter(d->w.d, dt, kTensorNCHW, nsp + 2, wd);
  if (st != 0) {
    *why = "cudnnSetFilterNdDescriptor: " + status_name(s, st);
    return false;
  }
  st = s.create_conv(&d->c.d);
  // float16 / bfloat16 data accumulates in float ("true half" configuration)
  const int compute = dt == kDataHalf || dt == kDataBfloat16 ? kDataFloat : dt;
  if (st == 0) st = s.set_conv(d->c.d, nsp, pad, str, dil, kCrossCorrelation, compute);
  if (st == 0 && g.G != 1) st = s.set_groups(d->c.d, (int)g.G);
  if (st == 0) st = s.set_math(d->c.d, base_math(dt, tf32));
  if (st != 0) {
    *why = "convolution descriptor: " + status_name(s, st);
    return false;
  }
  return true;
}

enum Pass : int64_t { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };
const char* pass_name(Pass p) {
  return p == kForward ? "forward" : p == kBackwardData ? "backward data" : "backward filter";
}
const char* pass_fn(Pass p) { return p == kForward ? "Forward" : p == kBackwardData ? "BackwardData" : "BackwardFilter"; }

/// The math type algorithm entry `p` may run with, or -1 when it may not run here. float32 without
/// TF32 (and float64): FMA math whatever the entry says (CUDNN_DEFAULT_MATH would let Ampere+ round
/// float32 operands to TF32, as PyTorch with allow_tf32 off), tensor-op entries skipped. float32
/// with TF32 and 16-bit data: the entry's own math type, never ALLOW_CONVERSION (which rounds the
/// operands to float16).
int math_for(const AlgoPerf& p, int dt, bool tf32) {
  if (p.mathType == kTensorOpMathAllowConversion) return -1;
  const bool low = dt == kDataHalf || dt == kDataBfloat16;
  if (low || (dt == kDataFloat && tf32)) return p.mathType;
  return p.mathType == kTensorOpMath ? -1 : kFmaMath;
}

/// Workspace bytes algorithm `algo` of `pass` needs with the descriptor's current math type.
cudnnStatus_t workspace_of(Cudnn& s, cudnnHandle_t h, Pass pass, ConvDescs& d, int algo, size_t* ws) {
  *ws = 0;
  if (pass == kForward) return s.fwd_ws(h, d.x.d, d.w.d, d.c.d, d.y.d, algo, ws);
  if (pass == kBackwardData) return s.bwd_data_ws(h, d.w.d, d.y.d, d.c.d, d.x.d, algo, ws);
  return s.bwd_filter_ws(h, d.x.d, d.y.d, d.c.d, d.w.d, algo, ws);
}

/// Whether entry `p` can run here within `limit`: status success, an allowed math type (math_for,
/// into *math) and a workspace query made with that math type (into *ws) that succeeds and fits.
/// Leaves the descriptor's math type set to *math; the caller resets it.
bool usable(Cudnn& s, cudnnHandle_t h, Pass pass, ConvDescs& d, int dt, bool tf32, const AlgoPerf& p, size_t limit,
            int* math, size_t* ws) {
  if (p.status != 0) return false;
  *math = math_for(p, dt, tf32);
  if (*math < 0 || s.set_math(d.c.d, *math) != 0) return false;  // the workspace depends on the math type
  return workspace_of(s, h, pass, d, p.algo, ws) == 0 && *ws <= limit;
}

/// The first usable entry of perf[0, n) (cuDNN's order: the heuristics' preference, or fastest
/// first for timed lists), deterministic algorithms first (KILN_CUDNN_DETERMINISTIC=0: cuDNN's
/// order as it is), so that a pass gives the same bits every time, eager or replayed from a CUDA
/// graph; nondeterministic ones (atomics: backward filter algorithms 0 and 3, say) only when no
/// deterministic one is usable (see usable()). Caller holds s.mu[device].
Choice pick(Cudnn& s, cudnnHandle_t h, Pass pass, ConvDescs& d, int dt, bool tf32, const AlgoPerf* perf, int n,
            size_t limit, std::string* why) {
  static const bool any_order = env_off("KILN_CUDNN_DETERMINISTIC");
  const int m = std::max(0, std::min(n, (int)kMaxAlgos));
  int order[kMaxAlgos];
  std::iota(order, order + m, 0);
  if (!any_order)
    std::stable_partition(order, order + m, [&](int i) { return perf[i].determinism == kDeterministic; });
  Choice c;
  for (int j = 0; j < m; ++j) {
    const AlgoPerf& p = perf[order[j]];
    int math = 0;
    size_t ws = 0;
    if (!usable(s, h, pass, d, dt, tf32, p, limit, &math, &ws)) continue;
    c.ok = true;
    c.algo = p.algo;
    c.math = math;
    c.ws = ws;
    break;
  }
  (void)s.set_math(d.c.d, base_math(dt, tf32));
  if (!c.ok)
    *why = n > 0 ? "none of " + std::to_string(n) + " algorithms usable (math type, workspace limit " +
                       std::to_string(limit >> 20) + " MB)"
                 : "no algorithm";
  return c;
}

/// The heuristics' algorithm list for `pass` (cudnnGet*Algorithm_v7: no timing runs, no
/// allocation), or false with *why.
bool heuristic_list(Cudnn& s, cudnnHandle_t h, Pass pass, ConvDescs& d, AlgoPerf* perf, int* n, std::string* why) {
  cudnnStatus_t st;
  *n = 0;
  if (pass == kForward) st = s.fwd_algo(h, d.x.d, d.w.d, d.c.d, d.y.d, kMaxAlgos, n, perf);
  else if (pass == kBackwardData) st = s.bwd_data_algo(h, d.w.d, d.y.d, d.c.d, d.x.d, kMaxAlgos, n, perf);
  else st = s.bwd_filter_algo(h, d.x.d, d.y.d, d.c.d, d.w.d, kMaxAlgos, n, perf);
  if (st != 0) *why = std::string("cudnnGetConvolution") + pass_fn(pass) + "Algorithm_v7: " + status_name(s, st);
  return st == 0;
}

/// cudnn_tune='off': the heuristics' first usable algorithm. Caller holds s.mu[device].
Choice choose(Cudnn& s, cudnnHandle_t h, Pass pass, ConvDescs& d, int dt, bool tf32, size_t limit, std::string* why) {
  AlgoPerf perf[kMaxAlgos] = {};
  int n = 0;
  if (!heuristic_list(s, h, pass, d, perf, &n, why)) return Choice();
  return pick(s, h, pass, d, dt, tf32, perf, n, limit, why);
}

/// cudaMalloc'd device memory for one timing run, freed with it (not the caching allocator's: the
/// pool is not grown by a one-off workspace of up to `limit`).
struct TimingBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  TimingBuffer() = default;
  TimingBuffer(const TimingBuffer&) = delete;
  TimingBuffer& operator=(const TimingBuffer&) = delete;
  /// Up to `want` bytes, halving after each refusal (not below `at_least`, nor below 1 MiB); false
  /// when nothing could be had and `at_least` > 0 (with at_least == 0 the buffer may stay empty).
  bool take(size_t want, size_t at_least) {
    if (want == 0) return true;
    for (size_t b = want;; b /= 2) {
      if (b < at_least) b = at_least;
      if (cudaMalloc(&ptr, b) == cudaSuccess) {
        bytes = b;
        return true;
      }
      (void)cudaGetLastError();  // clear the allocation error
      ptr = nullptr;
      if (b == at_least || b < (size_t(1) << 20)) return at_least == 0;
    }
  }
  ~TimingBuffer() {
    if (ptr) {
      (void)cudaFree(ptr);
      (void)cudaGetLastError();  // a failed free must not surface at the next launch check
    }
  }
};

/// cudnn_tune='limited_workspace' / 'fastest': times the algorithms with cudnnFind*AlgorithmEx on
/// the call's operands (a, b -> out as run_conv; out is overwritten, so a separate buffer of
/// out_bytes stands in for it under kAddTo) and picks the fastest usable one within `limit`. The
/// workspace handed to the timing is the largest any listed algorithm needs within `limit` (halved
/// until it can be allocated). Falls back to the heuristics, with the reason in *note, when the
/// timing cannot run (*transient: the reason may pass, so the choice is not to be cached). Caller
/// holds s.mu[device] and has set the handle's stream.
Choice choose_timed(Cudnn& s, cudnnHandle_t h, int device, Pass pass, ConvDescs& d, int dt, bool tf32, size_t limit,
                    const void* a, const void* b, void* out, size_t out_bytes, bool add, std::string* why,
                    std::string* note, bool* transient) {
  AlgoPerf perf[kMaxAlgos] = {};
  int n = 0;
  if (!heuristic_list(s, h, pass, d, perf, &n, why)) return Choice();
  size_t need = 0;  // the largest workspace within the limit among the listed algorithms
  for (int i = 0; i < std::min(n, (int)kMaxAlgos); ++i) {
    int math = 0;
    size_t ws = 0;
    if (usable(s, h, pass, d, dt, tf32, perf[i], limit, &math, &ws)) need = std::max(need, ws);
  }
  (void)s.set_math(d.c.d, base_math(dt, tf32));
  DeviceGuard guard(device);  // the timing buffers live on the call's device
  TimingBuffer wsb, outb;
  void* target = out;
  if (add || out == a || out == b) {  // keep the accumulated output (and the operands) intact
    if (!outb.take(out_bytes, out_bytes)) {
      *note = "no device memory for a timing copy of the output";
      *transient = true;  // not cached: a later call times when memory allows
      return pick(s, h, pass, d, dt, tf32, perf, n, limit, why);
    }
    target = outb.ptr;
  }
  (void)wsb.take(need, 0);  // algorithms needing more than was allocated are skipped by the timing
  AlgoPerf timed[kMaxAlgos] = {};
  int m = 0;
  cudnnStatus_t st;
  if (pass == kForward)
    st = s.find_fwd(h, d.x.d, a, d.w.d, b, d.c.d, d.y.d, target, kMaxAlgos, &m, timed, wsb.ptr, wsb.bytes);
  else if (pass == kBackwardData)
    st = s.find_bwd_data(h, d.w.d, b, d.y.d, a, d.c.d, d.x.d, target, kMaxAlgos, &m, timed, wsb.ptr, wsb.bytes);
  else
    st = s.find_bwd_filter(h, d.x.d, a, d.y.d, b, d.c.d, d.w.d, target, kMaxAlgos, &m, timed, wsb.ptr, wsb.bytes);
  (void)s.set_math(d.c.d, base_math(dt, tf32));
  if (st != 0) {
    *note = std::string("cudnnFindConvolution") + pass_fn(pass) + "AlgorithmEx: " + status_name(s, st);
    return pick(s, h, pass, d, dt, tf32, perf, n, limit, why);
  }
  Choice c = pick(s, h, pass, d, dt, tf32, timed, m, std::min(limit, wsb.bytes), why);
  if (!c.ok) {
    *note = std::string("timing found no usable algorithm (") + *why + ")";
    return pick(s, h, pass, d, dt, tf32, perf, n, limit, why);
  }
  c.timed = true;
  return c;
}

std::vector<int64_t> cache_key(int device, int dt, bool tf32, Pass pass, int tune, size_t limit, const CudnnConv& g) {
  std::vector<int64_t> k = {device, dt, tf32, (int64_t)pass, tune, (int64_t)limit, g.nsp, g.N, g.C, g.O, g.G};
  for (const int64_t* a : {g.D, g.Q, g.k, g.s, g.d, g.p}) k.insert(k.end(), a, a + 3);
  return k;
}

int cudnn_dtype(DType dt, bool* ok) {
  *ok = true;
  if (dt == DType::kFloat32) return kDataFloat;
  if (dt == DType::kFloat64) return kDataDouble;
  if (dt == DType::kFloat16) return kDataHalf;
  if (dt == DType::kBfloat16) return kDataBfloat16;
  *ok = false;
  return kDataFloat;
}

size_t dtype_bytes(int dt) { return dt == kDataDouble ? 8 : dt == kDataFloat ? 4 : 2; }

/// MXNet's cudnn_tune for a call: the op's value, or for None MXNET_CUDNN_AUTOTUNE_DEFAULT (0 off,
/// 1 limited_workspace, 2 fastest; default 1, as MXNet).
int resolve_tune(int tune) {
  if (tune >= 0) return std::min(tune, 2);
  static const int env = [] {
    const char* v = std::getenv("MXNET_CUDNN_AUTOTUNE_DEFAULT");
    if (v == nullptr || !*v) return 1;
    char* end = nullptr;
    long x = std::strtol(v, &end, 10);
    return end != v && *end == '\0' && x >= 0 && x <= 2 ? (int)x : 1;
  }();
  return env;
}

bool stream_capturing(cudaStream_t st) {
  cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(st, &cs) != cudaSuccess) {
    (void)cudaGetLastError();
    return true;  // unknown: do not time
  }
  return cs != cudaStreamCaptureStatusNone;
}

/// Workspace of `bytes`: the op's when large enough, else scratch from the caching allocator.
struct Workspace {
  std::unique_ptr<DeviceScratch> own;
  void* ptr = nullptr;
  bool ok = true;  // false: the device had no memory for it (the caller falls back to Kiln's own kernels)
  Workspace(int device, const OpCtx& ctx, size_t bytes) {
    if (bytes == 0) return;
    if (ctx.workspace != nullptr && ctx.workspace_bytes >= bytes) {
      ptr = ctx.workspace;
    } else {
      try {
        own.reset(new DeviceScratch(device, bytes));
        ptr = own->as<void>();
      } catch (const OutOfMemoryError&) {
        // while a CUDA graph records, the allocator cannot release its cache: fail the recording
        // (the pass then runs eagerly, where it can) rather than bake the fallback into the graph
        if (stream_capturing(stream_of(ctx))) throw;
        ok = false;
      }
    }
  }
};

/// One convolution pass: a = the pass's first data operand, b = the second, out = its result
/// (forward: x, w -> y; backward data: dy, w -> dx; backward filter: x, dy -> dw).
bool run_conv(Pass pass, const char* op, int device, const OpCtx& ctx, DType dtype, const CudnnConv& g,
              const void* a, const void* b, void* out, bool add) {
  Cudnn& s = loaded();
  if (!s.status.empty() || device < 0 || device >= kMaxDevices) return false;
  bool dt_ok = false;
  const int dt = cudnn_dtype(dtype, &dt_ok);
  if (!dt_ok) return false;
  if (g.cudnn_off) return false;  // the op's cudnn_off=True: the fallback kernels
  DeviceGuard device_guard(device);  // the ops set it too; handles and workspaces belong to it
  const bool tf32 = dt == kDataFloat && tf32_allowed();
  const int tune = resolve_tune(g.tune);
  const size_t limit = tune == 2 ? kMaxWorkspace : std::min(g.ws_limit, kMaxWorkspace);
  ConvDescs d(s);
  std::string why;
  const std::vector<int64_t> key = cache_key(device, dt, tf32, pass, tune, limit, g);
  if (!make_conv(s, dt, tf32, g, &d, &why)) {
    note_rejection(s, std::string(op) + " " + pass_name(pass) + ": " + why);
    return false;
  }
  std::lock_guard<std::mutex> lk(s.mu[device]);
  cudnnHandle_t h = handle_for(s, device);
  if (h == nullptr) return false;
  cudnnStatus_t st = s.set_stream(h, stream_of(ctx));
  if (st != 0) throw KilnError(std::string(op) + " (GPU): cudnnSetStream: " + status_name(s, st));
  Choice c;
  bool cached = false;
  {
    std::lock_guard<std::mutex> ik(s.info_mu);
    auto it = s.cache.find(key);
    if (it != s.cache.end()) {
      c = it->second;
      cached = true;
    }
  }
  if (!cached) {
    // Timing runs kernels, allocates, frees and synchronizes: never while a CUDA graph is recorded
    // on the device, by this thread (the executor's first pass is eager, so a recorded pass normally
    // finds its choice cached) or another (it would spoil that recording; this thread holds
    // s.mu[device], which the recording may need, so it does not wait, and no recording starts
    // while it times). Such a choice is the heuristics' and is not cached, so the next eager call
    // times.
    const bool can_time = tune > 0 && s.find_fwd && s.find_bwd_data && s.find_bwd_filter;
    std::string note;
    bool transient = false;
    bool capturing = can_time && stream_capturing(stream_of(ctx));
    if (can_time && !capturing) {
      const int64_t elems = pass == kForward ? g.N * g.O * g.Q[0] * g.Q[1] * g.Q[2]
                            : pass == kBackwardData ? g.N * g.C * g.D[0] * g.D[1] * g.D[2]
                                                    : g.O * (g.C / g.G) * g.k[0] * g.k[1] * g.k[2];
      capturing = !unless_recording(device, [&] {
        c = choose_timed(s, h, device, pass, d, dt, tf32, limit, a, b, out, (size_t)elems * dtype_bytes(dt), add,
                         &why, &note, &transient);
      });
    }
    if (!can_time || capturing) c = choose(s, h, pass, d, dt, tf32, limit, &why);
    std::lock_guard<std::mutex> ik(s.info_mu);
    if (!capturing && !transient) {
      s.cache[key] = c;
      ++(c.timed ? s.timed : s.heuristic);
    }
    if (!note.empty()) s.last_tune_note = std::string(op) + " " + pass_name(pass) + ": " + note;
    if (!c.ok) s.last_rejection = std::string(op) + " " + pass_name(pass) + ": " + why;
  }
  if (!c.ok) {
    std::lock_guard<std::mutex> ik(s.info_mu);
    ++s.rejected;
    return false;
  }
  st = s.set_math(d.c.d, c.math);
  if (st != 0) {
    note_rejection(s, std::string(op) + " " + pass_name(pass) + ": cudnnSetConvolutionMathType: " + status_name(s, st));
    return false;
  }
  Workspace ws(device, ctx, c.ws);
  if (!ws.ok) {  // this call only: the choice stays cached for when memory is back
    note_rejection(s, std::string(op) + " " + pass_name(pass) + ": no device memory for a workspace of " +
                          std::to_string(c.ws) + " bytes");
    return false;
  }
  const float f1 = 1.f, fb = add ? 1.f : 0.f;
  const double d1 = 1.0, db = add ? 1.0 : 0.0;
  const void* alpha = dt == kDataDouble ? (const void*)&d1 : (const void*)&f1;
  const void* beta = dt == kDataDouble ? (const void*)&db : (const void*)&fb;
  const char* fname;
  if (pass == kForward) {
    fname = "cudnnConvolutionForward";
    st = s.fwd(h, alpha, d.x.d, a, d.w.d, b, d.c.d, c.algo, ws.ptr, c.ws, beta, d.y.d, out);
  } else if (pass == kBackwardData) {
    fname = "cudnnConvolutionBackwardData";
    st = s.bwd_data(h, alpha, d.w.d, b, d.y.d, a, d.c.d, c.algo, ws.ptr, c.ws, beta, d.x.d, out);
  } else {
    fname = "cudnnConvolutionBackwardFilter";
    st = s.bwd_filter(h, alpha, d.x.d, a, d.y.d, b, d.c.d, c.algo, ws.ptr, c.ws, beta, d.w.d, out);
  }
  if (st != 0) {
    if (is_rejection(st)) {
      note_rejection(s, std::string(op) + ": " + fname + " (algorithm " + std::to_string(c.algo) + "): " +
                            status_name(s, st));
      std::lock_guard<std::mutex> ik(s.info_mu);
      s.cache[key].ok = false;  // the fallback from now on
      return false;
    }
    throw KilnError(std::string(op) + " (GPU): " + fname + " (algorithm " + std::to_string(c.algo) + ", N=" +
                    std::to_string(g.N) + " C=" + std::to_string(g.C) + " O=" + std::to_string(g.O) +
                    " groups=" + std::to_string(g.G) + "): " + status_name(s, st));
  }
  return true;
}

/// Bias: add (y += b broadcast) or gradient (db (=|+=) sums of dy).
bool run_bias(bool grad, const char* op, int device, const OpCtx& ctx, DType dtype, int nsp, int64_t N, int64_t C,
              const int64_t* sp, const void* src, void* dst, bool add) {
  Cudnn& s = loaded();
  if (!s.status.empty() || device < 0 || device >= kMaxDevices || (nsp != 2 && nsp != 3)) return false;
  if (grad ? s.bwd_bias == nullptr : s.add_tensor == nullptr) return false;
  if (dtype != DType::kFloat32 && dtype != DType::kFloat64) return false;  // float16/bfloat16 bias: conv_register.cu
  DeviceGuard device_guard(device);
  bool dt_ok = false;
  const int dt = cudnn_dtype(dtype, &dt_ok);
  if (!dt_ok) return false;
  const int64_t ones[3] = {1, 1, 1};
  TensorDesc big(s), bias(s);
  std::string why;
  if (!make_tensor(s, &big, dt, nsp, N, C, sp, &why) || !make_tensor(s, &bias, dt, nsp, 1, C, ones, &why)) {
    note_rejection(s, std::string(op) + " bias: " + why);
    return false;
  }
  std::lock_guard<std::mutex> lk(s.mu[device]);
  cudnnHandle_t h = handle_for(s, device);
  if (h == nullptr) return false;
  cudnnStatus_t st = s.set_stream(h, stream_of(ctx));
  if (st != 0) throw KilnError(std::string(op) + " (GPU): cudnnSetStream: " + status_name(s, st));
  const float f1 = 1.f, fb = add ? 1.f : 0.f;
  const double d1 = 1.0, db = add ? 1.0 : 0.0;
  const void* one = dt == kDataDouble ? (const void*)&d1 : (const void*)&f1;
  const void* beta = dt == kDataDouble ? (const void*)&db : (const void*)&fb;
  const char* fname = grad ? "cudnnConvolutionBackwardBias" : "cudnnAddTensor";
  // y = 1 * b + 1 * y;  db = 1 * sum(dy) + beta * db
  st = grad ? s.bwd_bias(h, one, big.d, src, beta, bias.d, dst) : s.add_tensor(h, one, bias.d, src, one, big.d, dst);
  if (st != 0) {
    if (is_rejection(st)) {
      note_rejection(s, std::string(op) + ": " + fname + ": " + status_name(s, st));
      return false;
    }
    throw KilnError(std::string(op) + " (GPU): " + fname + ": " + status_name(s, st));
  }
  return true;
}

}  // namespace

const std::string& cudnn_status() { return loaded().status; }

std::string cudnn_describe() {
  Cudnn& s = loaded();
  if (!s.status.empty()) return s.status + "; Convolution/Deconvolution use im2col + cuBLAS";
  const size_t v = s.version;
  std::string out = "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
                    std::to_string(v % 100) + " from " + s.found_at + "; Convolution/Deconvolution use cuDNN";
  for (int i = 0; i < kMaxDevices; ++i) {
    std::lock_guard<std::mutex> lk(s.mu[i]);
    if (!s.handle_error[i].empty()) out += "; " + s.handle_error[i] + ": gpu(" + std::to_string(i) + ") uses im2col + cuBLAS";
  }
  std::lock_guard<std::mutex> ik(s.info_mu);
  out += "; TF32 " + std::string(tf32_allowed() ? "allowed" : "off") + " for float32";
  if (s.timed + s.heuristic > 0) {
    out += "; algorithms: " + std::to_string(s.timed) + " timed (cudnn_tune), " + std::to_string(s.heuristic) +
           " from the heuristics";
    if (!s.last_tune_note.empty()) out += " (last timing fallback: " + s.last_tune_note + ")";
  }
  if (s.rejected > 0)
    out += "; " + std::to_string(s.rejected) + " call(s) declined by cuDNN ran im2col + cuBLAS (last: " +
           s.last_rejection + ")";
  return out;
}

bool cudnn_conv_forward(const char* op, int device, const OpCtx& ctx, DType dt, const CudnnConv& g, const void* x,
                        const void* w, void* y, bool add) {
  return run_conv(kForward, op, device, ctx, dt, g, x, w, y, add);
}

bool cudnn_conv_backward_data(const char* op, int device, const OpCtx& ctx, DType dt, const CudnnConv& g,
                              const void* dy, const void* w, void* dx, bool add) {
  return run_conv(kBackwardData, op, device, ctx, dt, g, dy, w, dx, add);
}

bool cudnn_conv_backward_filter(const char* op, int device, const OpCtx& ctx, DType dt, const CudnnConv& g,
                                const void* x, const void* dy, void* dw, bool add) {
  return run_conv(kBackwardFilter, op, device, ctx, dt, g, x, dy, dw, add);
}

bool cudnn_add_bias(const char* op, int device, const OpCtx& ctx, DType dt, int nsp, int64_t N, int64_t C,
                    const int64_t* sp, const void* b, void* y) {
  return run_bias(false, op, device, ctx, dt, nsp, N, C, sp, b, y, true);
}

bool cudnn_bias_grad(const char* op, int device, const OpCtx& ctx, DType dt, int nsp, int64_t N, int64_t C,
                     const int64_t* sp, const void* dy, void* db, bool add) {
  return run_bias(true, op, device, ctx, dt, nsp, N, C, sp, dy, db, add);
}

}  // namespace cuda
}  // namespace kiln
