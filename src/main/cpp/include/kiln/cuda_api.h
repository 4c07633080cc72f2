// What the core calls in the CUDA library (src/main/cuda, built only with -Pcuda / KILN_CUDA).
// Plain C++: no CUDA headers, so the core compiles with g++ alone. All functions throw
// kiln::KilnError (never abort) and are safe to call on a machine without a GPU or driver.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/op.h"

namespace kiln {
namespace cuda {

/// Whether float32 convolutions (cuDNN) and GEMMs (cuBLAS) may round their operands to TF32 on
/// tensor cores (Ampere and later), as PyTorch's allow_tf32 flags. Off unless KILN_CUDA_TF32=1 is
/// set or set_tf32_allowed(true) is called: float32 then matches the CPU to ~1e-6 relative. Takes
/// effect at the next call (cuDNN algorithm choices are cached per setting); thread-safe.
bool tf32_allowed();
void set_tf32_allowed(bool on);

/// Number of usable devices; 0 and a reason in *why when there is no driver or device.
int device_count(std::string* why);
/// Human-readable description of the devices (or of why there are none), cuBLAS/cuDNN status.
std::string describe();

// Device memory through the caching allocator (blocks are kept for reuse, keyed by size).
void* malloc(int device, size_t bytes);
void free(int device, void* p, size_t bytes);
void memset0(int device, void* p, size_t bytes);
/// kind: 0 host->device, 1 device->host, 2 device->device (both on `device`), on the legacy default
/// stream. Host copies go through page-locked staging slots (KILN_CUDA_PINNED=0: plain
/// cudaMemcpy): a copy to the device returns once `src` is copied into a slot, before the DMA; a
/// copy to the host returns with the data (after the work queued before it).
void memcpy(int device, void* dst, const void* src, size_t bytes, int kind);
/// A copy between two devices (cudaMemcpyPeer): ordered after the work queued on both devices'
/// streams before it, and before the work queued after it.
void memcpy_peer(int dst_device, void* dst, int src_device, const void* src, size_t bytes);
void synchronize(int device);

// ---- streams and CUDA graphs (the executor's) ---------------------------------------------
// A stream here is a cudaStream_t passed as void*. Every executor of a device issues its kernels
// on that device's one stream, in issue order, so memory the caching allocator hands from one
// executor to another (freed arenas, scratch, a shared pool's blocks) is never used by two kernels
// at once. The stream is *blocking*: it is ordered with the legacy default stream that NDArray
// copies and imperative operators use, so data copied in before a pass and results copied out
// after it need no extra synchronization. Graphs are recorded on streams of their own
// (stream_create), where nothing runs; their replays run on the device's stream (or the legacy one).

/// The device's stream (created on first use, kept for the life of the process).
void* device_stream(int device);
/// A new non-blocking stream of the device, for recording a CUDA graph away from the device's
/// stream: neither the legacy stream nor the device's stream waits for it, so other threads' passes
/// and copies go on while one thread records on it. Freed with stream_destroy (never throws).
void* stream_create(int device);
void stream_destroy(int device, void* stream) noexcept;
/// Blocks until the stream's work is done; throws the first asynchronous error.
void stream_synchronize(int device, void* stream);

/// KILN_CUDA_SYNC=1: the executor waits for each GPU kernel, so an asynchronous fault names its
/// operator (nothing is recorded as a CUDA graph then).
bool sync_each_kernel();
/// True unless KILN_CUDA_GRAPHS=0 is set in the environment.
bool graphs_enabled();
/// Starts recording the kernels launched on `stream` (relaxed capture mode), a stream from
/// stream_create. Capture is per stream: kernels another thread launched on `stream` would be
/// recorded too, so each recorder has a stream of its own. While recording, device blocks freed by
/// this thread are kept for the graph instead of being reused, so scratch memory recorded in the
/// graph stays valid for every replay; this thread's memset0 / memcpy / synchronize throw (on the
/// legacy stream they would run at once instead of being recorded); other threads' synchronize and
/// cache releases wait until the recording ends (CUDA refuses them during a capture).
void capture_begin(int device, void* stream);
/// Whether this thread, since the last call, took another way because a different thread was
/// recording on the device: a convolution that skipped cuDNN's algorithm timing (uncached
/// heuristic choice) or, without a cuDNN handle yet, ran the fallback kernels (or a copy that did
/// not grow a staging slot while any device recorded). An eager pass that
/// did should not be the one a recording follows (its choices would be frozen into the graph).
bool take_stepped_aside();
/// Ends recording and instantiates the graph: an executable graph handle, or nullptr with the
/// reason in *why when recording failed (an unsupported call was made while recording).
void* capture_end(int device, void* stream, std::string* why);
/// Ends a recording after an exception, discarding it (never throws).
void capture_abort(int device, void* stream) noexcept;
/// Replays a graph from capture_end on `stream`.
void graph_launch(int device, void* graph, void* stream);
/// Frees a graph and the scratch blocks it kept (never throws).
void graph_destroy(int device, void* graph) noexcept;

/// When a pass whose recording or replay failed tries again. A failure may pass (device memory ran
/// out while recording, another thread released the cache meanwhile), so the pass runs eagerly for
/// kWait runs and then records again, kTries failures in a row at most; after that it stays eager.
/// Failures that always recur (a random operator, KILN_CUDA_SYNC, a RecordingUnsupported call) do
/// not come here: they disable the graph at once. Not thread-safe (as its owner).
struct GraphRetry {
  static constexpr int kTries = 3;
  static constexpr int kWait = 16;
  int failures = 0;  // in a row: a replay that runs clears them
  int wait = 0;      // eager runs left before the next try
  /// Notes a failure for `reason`: *disabled when no try is left, or at once when `always` (the
  /// failure would recur), and *why the reason with the tries so far.
  void failed(const std::string& reason, bool always, bool* disabled, std::string* why) {
    wait = kWait;
    *disabled = always || ++failures >= kTries;
    *why = always ? reason : reason + " " + text();
  }
  /// Notes a replay that ran.
  void succeeded() { failures = 0; }
  /// Whether a recording may be tried at this run; otherwise counts the run down.
  bool may_try() {
    if (wait == 0) return true;
    --wait;
    return false;
  }
  /// "(try 1 of 3; again after 16 eager runs)" or "(tried 3 times)", for the reason shown.
  std::string text() const {
    return failures >= kTries ? "(tried " + std::to_string(kTries) + " times)"
                              : "(try " + std::to_string(failures) + " of " + std::to_string(kTries) +
                                    "; again after " + std::to_string(kWait) + " eager runs)";
  }
};

/// Low-precision conversions queued on `stream` (kiln/low_precision.h): dst [n] = float(src [n])
/// for a float16/bfloat16 source; dst [n] = round(src [n]) (round(float(dst) + src) when
/// accumulate) for a float16/bfloat16 destination.
void low_precision_to_float(int device, void* stream, const void* src, DType st, float* dst, int64_t n);
void float_to_low_precision(int device, void* stream, const float* src, void* dst, DType dt, int64_t n, bool accumulate);
/// The integer wrapper's conversions on the device (kiln/low_precision.h): integer -> float64, and
/// float64 -> integer by wrap_to_int (kiln/int_convert.h), adding to dst when accumulate.
void int_to_double(int device, void* stream, const void* src, DType st, double* dst, int64_t n);
void double_to_int(int device, void* stream, const double* src, void* dst, DType dt, int64_t n, bool accumulate);

// ---- NCCL (nccl_dl.cc, opened at run time; KILN_NCCL=0 disables it) ------------------------

/// "NCCL 2.x.y from <path>" or why NCCL is not available.
std::string nccl_describe();
/// One collective of a batch over the devices devs (NcclCall::bufs[i] on devs[i], count elements
/// of dtype each).
struct NcclCall {
  std::vector<void*> bufs;  // reduce: the addends; broadcast: bufs[root] is copied to the others
  void* recv = nullptr;     // reduce: the sum, on devs[root]
  int root = 0;
  DType dtype = DType::kFloat32;
  size_t count = 0;
};
/// For every call, recv = the sum of bufs (one per distinct device), through ncclReduce on each
/// device's stream: as few NCCL group calls as NCCL takes (2048 per-rank calls each), then one
/// wait. False, with *why, when NCCL is not available or has no type of a call (the caller sums
/// another way; nothing was issued); throws KilnError for an NCCL failure or bad arguments.
bool nccl_reduce_sum(const std::vector<int>& devs, const std::vector<NcclCall>& calls, std::string* why);
/// For every call, bufs[i] = bufs[root], through ncclBroadcast; batched, false / throws as nccl_reduce_sum.
bool nccl_broadcast(const std::vector<int>& devs, const std::vector<NcclCall>& calls, std::string* why);

/// The caching allocator of `device`: bytes handed out and not yet freed, bytes kept in its free
/// lists for reuse (both rounded to its buckets), the peak of the first, and the number of
/// cudaMalloc calls made so far.
struct CacheStats {
  int64_t held = 0, cached = 0, peak_held = 0, driver_allocs = 0;
};
CacheStats cache_stats(int device);
/// Returns every cached block of `device` to the driver (waiting for other threads' CUDA graph
/// recordings of the device to end; throws when this thread records).
void empty_cache(int device);

/// Sets OpDef::gpu on every operator that has a CUDA kernel (called once at registry init).
void register_gpu_kernels(OpRegistry& r);

}  // namespace cuda
}  // namespace kiln
