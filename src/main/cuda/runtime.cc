// The CUDA runtime side of kiln/cuda_api.h: device discovery, a caching device allocator,
// memset/memcpy/synchronize, and the registration of every GPU kernel. Host code only (g++ against
// the CUDA runtime headers, linked with the static cudart, which dlopens the driver itself: on a
// machine without a driver every call fails with a clean message instead of failing to load).
//
// Streams: memset0 / memcpy use the legacy default stream, which is ordered with every blocking
// stream; the allocator reuses freed blocks immediately, which is safe as long as each device's
// kernels run on one stream (or the default stream), the way the executor issues them. CUDA graphs
// are recorded on non-blocking streams where nothing else runs, and replayed on those two.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/cuda_check.cuh"
#include "kiln/alloc.h"
#include "kiln/cuda_api.h"

namespace kiln {
namespace cuda {
namespace {

constexpr int kMaxDevices = 64;

// ---- device discovery ------------------------------------------------------------------------

struct DeviceInfo {
  int count = 0;
  std::string why;  // "" when count > 0
};

const DeviceInfo& devices() {
  static DeviceInfo* info = [] {
    auto* d = new DeviceInfo();
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    int rt = 0, drv = 0;
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaDriverGetVersion(&drv);
    (void)cudaGetLastError();
    std::string versions = " [runtime " + std::to_string(rt) + ", driver " + std::to_string(drv) + "]";
    if (e != cudaSuccess) {
      d->why = "no CUDA device: " + error_text(e, "cudaGetDeviceCount") + versions;
    } else if (n <= 0) {
      d->why = "no CUDA device: cudaGetDeviceCount returned 0" + versions;
    } else {
      d->count = n < kMaxDevices ? n : kMaxDevices;
    }
    return d;
  }();
  return *info;
}

void check_device(int device) {
  const DeviceInfo& d = devices();
  if (d.count == 0) throw KilnError("gpu(" + std::to_string(device) + "): " + d.why);
  if (device < 0 || device >= d.count)
    throw KilnError("gpu(" + std::to_string(device) + ") does not exist: " + std::to_string(d.count) +
                    " CUDA device(s) present");
}

std::string human_bytes(int64_t b) {
  char buf[64];
  if (b >= (int64_t(1) << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", b / double(int64_t(1) << 30));
  else if (b >= (int64_t(1) << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / double(1 << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lld B", (long long)b);
  return buf;
}

// ---- caching allocator -----------------------------------------------------------------------
//
// Per device: blocks are rounded up to a bucket size (512 B steps up to 1 MiB, then 2 MiB steps)
// and kept in a free list per bucket when released; a request takes a cached block of its bucket
// or calls cudaMalloc. When cudaMalloc runs out of memory the device's cache is returned to the
// driver and the request retried once.

constexpr size_t kSmallStep = 512;
constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kLargeStep = size_t(2) << 20;

size_t bucket_of(size_t bytes) {
  if (bytes == 0) bytes = 1;  // zero-byte arrays still get a valid, distinct pointer
  if (bytes <= kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  return (bytes + kLargeStep - 1) / kLargeStep * kLargeStep;
}

struct Pool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free_lists;  // bucket bytes -> cached blocks
  std::unordered_map<void*, size_t> live;                      // block -> bucket bytes
  int64_t held = 0;     // bytes of live blocks
  int64_t cached = 0;   // bytes in free_lists
  int64_t peak_held = 0;
  int64_t cuda_mallocs = 0;
};

// Never destroyed: at process exit the runtime may already be gone, and the driver frees it all.
Pool& pool(int device) {
  static Pool* pools = new Pool[kMaxDevices];
  return pools[device];
}

/// Returns every cached block to the driver. Caller holds p.mu and has the device current.
void release_cache(Pool& p) {
  for (auto& kv : p.free_lists) {
    std::vector<void*>& v = kv.second;
    size_t kept = 0;  // blocks the driver did not take back stay cached, compacted in place (no allocation)
    for (size_t i = 0; i < v.size(); ++i) {
      if (cudaFree(v[i]) == cudaSuccess) p.cached -= (int64_t)kv.first;
      else v[kept++] = v[i];
    }
    v.resize(kept);
  }
  (void)cudaGetLastError();
}

}  // namespace

// ---- kiln/cuda_api.h -------------------------------------------------------------------------

int device_count(std::string* why) {
  const DeviceInfo& d = devices();
  if (why) *why = d.why;
  return d.count;
}

std::string describe() {
  const DeviceInfo& d = devices();
  std::string s;
  if (d.count == 0) {
    s = d.why + "\n";
  } else {
    int rt = 0, drv = 0;
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaDriverGetVersion(&drv);
    s = "CUDA runtime " + std::to_string(rt) + ", driver " + std::to_string(drv) + ", " + std::to_string(d.count) +
        " device(s)\n";
    for (int i = 0; i < d.count; ++i) {
      cudaDeviceProp prop;
      cudaError_t e = cudaGetDeviceProperties(&prop, i);
      s += "gpu(" + std::to_string(i) + "): ";
      if (e != cudaSuccess) {
        s += error_text(e, "cudaGetDeviceProperties") + "\n";
        continue;
      }
      s += std::string(prop.name) + ", sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
           human_bytes((int64_t)prop.totalGlobalMem) + ", " + std::to_string(prop.multiProcessorCount) + " SMs";
      const CacheStats st = cache_stats(i);
      s += "; allocator: " + human_bytes(st.held) + " in use, " + human_bytes(st.cached) + " cached\n";
    }
  }
  s += cublas_describe() + "\n";
  extern std::string cudnn_describe(); s += cudnn_describe();  // cudnn_dl.cc (common/cudnn.cuh)
  return s;
}

namespace {
// Blocks freed by this thread while it records a CUDA graph (capture_begin .. capture_end): kept
// alive for the graph, because its replays write to them.
thread_local std::vector<std::pair<int, void*>>* t_capture_hold = nullptr;
// Set when a block freed while recording could not be kept (out of host memory): it went back to
// the pool, so the graph must not be kept (capture_end fails).
thread_local bool t_capture_poisoned = false;
// The device this thread records on (valid while t_capture_hold is set).
thread_local int t_capture_device = -1;

// Recordings in progress per device, by any thread. Other threads go on issuing work while one
// records (it records on a non-blocking stream of its own), except for calls that conflict with a
// capture in progress:
//  * a device-wide synchronize and an explicit cache release (empty_cache) wait until no recording
//    of the device is in progress (when_not_recording); they are made with no other lock held;
//  * work done under a lock that a recording may need (cuDNN's algorithm timing and handle
//    creation under cuDNN's lock, staging growth under the staging lock) does not wait: it steps
//    aside while a recording is in progress (unless_recording), and notes that it did;
//  * an allocation that fails releases the cache without waiting (the caller may hold such a lock).
// No recording starts while one of the first two runs (so a stream of recordings cannot starve
// them). Captures::mu itself is only held for the bookkeeping, never while the work runs.
struct Captures {
  std::mutex mu;
  std::condition_variable idle;
  int active[kMaxDevices] = {};   // recordings in progress
  int waiting[kMaxDevices] = {};  // when_not_recording calls waiting or running
  int busy[kMaxDevices] = {};     // unless_recording calls running
  int busy_all = 0;               // ... for every device (device -1)
  int active_all = 0;             // recordings in progress on any device
};

Captures& captures() {
  static Captures* c = new Captures();  // never destroyed, as the pools
  return *c;
}

// Set when unless_recording stepped aside for another thread's recording (take_stepped_aside).
thread_local bool t_stepped_aside = false;

/// Counts one call in `count` (a counter of captures(), whose mutex the constructing caller holds)
/// until it goes out of scope, then wakes the recordings it held back.
struct Counted {
  int& count;
  explicit Counted(int& n) : count(n) { ++count; }
  ~Counted() {
    Captures& c = captures();
    {
      std::lock_guard<std::mutex> lk(c.mu);
      --count;
    }
    c.idle.notify_all();
  }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;
};

/// Rejects a call on the legacy stream while this thread records: the recording is made on a
/// non-blocking stream, so the call would run at once instead of being recorded.
void check_not_recording(int device, const char* what) {
  if (t_capture_hold != nullptr)
    throw RecordingUnsupported(std::string(what) + " on gpu(" + std::to_string(device) +
                               ") while this thread records a CUDA graph (it would not be recorded)");
}

/// Runs f() once no thread records on `device` (see Captures); no recording of the device starts
/// until it returns. For calls made with no other lock held.
template <typename F>
void when_not_recording(int device, const char* what, F&& f) {
  check_not_recording(device, what);
  Captures& c = captures();
  std::optional<Counted> waiting;
  {
    std::unique_lock<std::mutex> lk(c.mu);
    waiting.emplace(c.waiting[device]);  // holds new recordings back from now on
    c.idle.wait(lk, [&] { return c.active[device] == 0; });
  }
  f();
}
}  // namespace

bool unless_recording(int device, const std::function<void()>& f) {
  if (device < -1 || device >= kMaxDevices || t_capture_hold != nullptr) return false;
  Captures& c = captures();
  std::optional<Counted> busy;
  {
    std::lock_guard<std::mutex> lk(c.mu);
    if (device < 0 ? c.active_all > 0 : c.active[device] > 0) {
      t_stepped_aside = true;
      return false;
    }
    busy.emplace(device < 0 ? c.busy_all : c.busy[device]);
  }
  f();
  return true;
}

bool when_others_not_recording(int device, const std::function<void()>& f) {
  if (t_capture_hold != nullptr) return false;
  when_not_recording(device, "", f);
  return true;
}

bool take_stepped_aside() {
  const bool was = t_stepped_aside;
  t_stepped_aside = false;
  return was;
}

void* malloc(int device, size_t bytes) {
  check_device(device);
  if (bytes > kMaxAllocBytes)
    throw OutOfMemoryError("cannot allocate " + std::to_string(bytes) + " bytes on gpu(" + std::to_string(device) +
                           "): larger than the 1 TiB limit");
  size_t b = bucket_of(bytes);
  Pool& p = pool(device);
  std::lock_guard<std::mutex> lk(p.mu);
  void* ptr = nullptr;
  auto it = p.free_lists.find(b);
  if (it != p.free_lists.end() && !it->second.empty()) {
    ptr = it->second.back();
    it->second.pop_back();
    p.cached -= (int64_t)b;
  } else {
    DeviceGuard g(device);
    cudaError_t e = cudaMalloc(&ptr, b);
    if (e == cudaErrorMemoryAllocation && t_capture_hold == nullptr) {
      // (not while this thread records a graph: cudaFree synchronizes, which a capture does not
      // allow; the recording then fails and the eager pass, which may release the cache, runs
      // instead. Another thread's recording is not waited for: the caller may hold a lock that
      // recording needs, such as cuDNN's. Releasing the cache meanwhile may spoil that recording,
      // whose pass then runs eagerly.)
      (void)cudaGetLastError();
      release_cache(p);
      e = cudaMalloc(&ptr, b);
    }
    if (e != cudaSuccess) {
      std::string msg = error_text(e, "cudaMalloc");
      size_t free_b = 0, total_b = 0;
      std::string mem;
      if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
        mem = "; device has " + human_bytes((int64_t)free_b) + " free of " + human_bytes((int64_t)total_b);
      (void)cudaGetLastError();
      std::string text = "cannot allocate " + std::to_string(bytes) + " bytes on gpu(" + std::to_string(device) +
                         "): " + msg + mem + "; Kiln holds " + human_bytes(p.held) + " in use";
      if (e == cudaErrorMemoryAllocation) throw OutOfMemoryError(text);
      throw KilnError(text);
    }
    ++p.cuda_mallocs;
  }
  try {
    p.live[ptr] = b;
  } catch (...) {
    // no host memory to record the block: give it back rather than lose it; to the driver, or,
    // while this thread records a graph (cudaFree would spoil the capture), to the cache
    if (t_capture_hold != nullptr) {
      t_capture_poisoned = true;
      try {
        p.free_lists[b].push_back(ptr);
        p.cached += (int64_t)b;
      } catch (...) {
      }
    } else {
      DeviceGuard g(device);
      (void)cudaFree(ptr);
      (void)cudaGetLastError();
    }
    throw OutOfMemoryError("cannot allocate " + std::to_string(bytes) + " bytes on gpu(" + std::to_string(device) +
                           "): out of host memory for the allocator's records");
  }
  p.held += (int64_t)b;
  if (p.held > p.peak_held) p.peak_held = p.held;
  return ptr;
}

// Called from destructors (Storage): never throws. An unknown pointer is ignored.
void free(int device, void* ptr, size_t bytes) {
  if (ptr == nullptr || device < 0 || device >= kMaxDevices) return;
  if (t_capture_hold != nullptr) {
    try {
      t_capture_hold->emplace_back(device, ptr);
      return;
    } catch (...) {
      // out of host memory: the block goes back to the pool below, so capture_end must not keep
      // the graph (a later owner of the block would share it with the replays)
      t_capture_poisoned = true;
    }
  }
  try {
    Pool& p = pool(device);
    std::lock_guard<std::mutex> lk(p.mu);
    auto it = p.live.find(ptr);
    if (it == p.live.end()) return;
    size_t b = it->second;  // the bucket recorded at malloc, whatever `bytes` says
    bool cached = true;
    try {
      p.free_lists[b].push_back(ptr);
    } catch (...) {
      cached = false;  // no host memory for the cache's list: the block goes back to the driver below
    }
    p.live.erase(it);
    p.held -= (int64_t)b;
    if (cached) {
      p.cached += (int64_t)b;
    } else if (t_capture_hold == nullptr) {  // cudaFree is illegal while this thread records: the block leaks
      DeviceGuard g(device);  // a failure to switch throws into the catch below: the block leaks
      (void)cudaFree(ptr);
      (void)cudaGetLastError();
    }
  } catch (...) {
  }
}

void memset0(int device, void* ptr, size_t bytes) {
  if (bytes == 0) return;
  check_device(device);
  check_not_recording(device, "cudaMemset");
  DeviceGuard g(device);
  KILN_CUDA_CHECK(cudaMemset(ptr, 0, bytes));
}

// ---- pinned staging ----------------------------------------------------------------------------
//
// Host <-> device copies go through page-locked staging slots. A copy to the device returns as soon
// as the data is in a slot: its DMA runs on the legacy stream after the kernels already queued, while
// the host goes on (to the next batch); a plain cudaMemcpy from pageable memory larger than the
// driver's own staging would wait for those kernels first. Both directions also run at page-locked
// bandwidth. Per device: kSlots slots used round robin, each grown to the largest chunk it carried
// (at most kSlotMax; larger copies go in chunks), each with an event recorded after the copy that
// fills or empties it, so a slot is rewritten only after that copy is done. When page-locked memory
// cannot be had, or KILN_CUDA_PINNED=0 is set, copies are plain cudaMemcpy calls.

namespace {

constexpr int kSlots = 4;
constexpr size_t kSlotMax = size_t(64) << 20;
constexpr size_t kSlotMin = size_t(1) << 20;

struct Slot {
  void* buf = nullptr;   // [cap] bytes, page-locked (portable)
  size_t cap = 0;
  cudaEvent_t done = nullptr;  // recorded after the last copy that used buf
};

struct Staging {
  std::mutex mu;
  Slot slot[kSlots];
  int next = 0;
};

Staging& staging(int device) {
  static Staging* st = new Staging[kMaxDevices];  // never destroyed, as the pools
  return st[device];
}

bool staging_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("KILN_CUDA_PINNED");
    return v == nullptr || v[0] != '0';
  }();
  return on;
}

/// The next slot of `st`, its previous copy finished and holding at least `bytes`; nullptr when no
/// page-locked memory can be had, or when the slot would have to grow while a thread records a CUDA
/// graph on any device (the caller copies directly). Caller holds st.mu, device current.
Slot* take_slot(Staging& st, size_t bytes) {
  Slot& s = st.slot[st.next];
  if (s.done == nullptr && cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming) != cudaSuccess) {
    (void)cudaGetLastError();
    s.done = nullptr;
    return nullptr;
  }
  KILN_CUDA_CHECK(cudaEventSynchronize(s.done));  // success at once if never recorded
  if (s.cap < bytes) {
    // not while a thread records on any device (the memory is portable, and cudaFreeHost may
    // synchronize): a direct copy then
    bool grown = false;
    unless_recording(-1, [&] {
      if (s.buf != nullptr) (void)cudaFreeHost(s.buf);
      s.buf = nullptr;
      s.cap = 0;
      size_t want = (std::max(bytes, kSlotMin) + kSlotMin - 1) / kSlotMin * kSlotMin;
      if (cudaHostAlloc(&s.buf, want, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError();
        s.buf = nullptr;
        return;
      }
      s.cap = want;
      grown = true;
    });
    if (!grown) return nullptr;
  }
  st.next = (st.next + 1) % kSlots;
  return &s;
}

/// After a failure once `s` was taken: its buffer may still be read or written by a queued copy
/// that its event does not cover, so the slot gives it up (leaked: page-locked memory is only
/// freed when no copy can use it) and allocates a new one next time.
void retire(Slot& s) {
  s.buf = nullptr;
  s.cap = 0;
}

/// Queues the copy of one chunk through slot `s` and records its event; on failure retires the
/// slot and throws.
void queue_copy(Slot& s, void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  cudaError_t e = cudaMemcpyAsync(dst, src, n, kind, cudaStreamLegacy);
  const char* what = "cudaMemcpyAsync (pinned staging)";
  if (e == cudaSuccess) {
    e = cudaEventRecord(s.done, cudaStreamLegacy);
    what = "cudaEventRecord (pinned staging)";
  }
  if (e != cudaSuccess) {
    retire(s);
    throw_cuda(e, what);
  }
}

// dst [bytes] <- src [bytes] through the slots, chunk by chunk. To the device: returns once every
// chunk is in a slot and its copy is queued. To the host: waits for each chunk (and so for the
// kernels queued before it).
void staged_copy(int device, char* dst, const char* src, size_t bytes, bool to_device) {
  const cudaMemcpyKind kind = to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
  Staging& st = staging(device);
  std::lock_guard<std::mutex> lk(st.mu);
  for (size_t off = 0; off < bytes;) {
    const size_t n = std::min(bytes - off, kSlotMax);
    Slot* s = take_slot(st, n);
    if (s == nullptr) {  // no page-locked memory: the rest directly
      KILN_CUDA_CHECK(cudaMemcpy(dst + off, src + off, bytes - off, kind));
      return;
    }
    if (to_device) {
      std::memcpy(s->buf, src + off, n);
      queue_copy(*s, dst + off, s->buf, n, kind);
    } else {
      queue_copy(*s, s->buf, src + off, n, kind);
      const cudaError_t e = cudaEventSynchronize(s->done);
      if (e != cudaSuccess) {
        retire(*s);
        throw_cuda(e, "cudaEventSynchronize (pinned staging)");
      }
      std::memcpy(dst + off, s->buf, n);
    }
    off += n;
  }
}

}  // namespace

void memcpy(int device, void* dst, const void* src, size_t bytes, int kind) {
  if (bytes == 0) return;
  check_device(device);
  check_not_recording(device, "a copy");
  DeviceGuard g(device);
  const bool staged = staging_enabled();
  switch (kind) {
    case 0:
      if (staged) staged_copy(device, static_cast<char*>(dst), static_cast<const char*>(src), bytes, true);
      else KILN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
      break;
    case 1:
      if (staged) staged_copy(device, static_cast<char*>(dst), static_cast<const char*>(src), bytes, false);
      else KILN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
      break;
    case 2: KILN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice)); break;  // within `device`
    default: throw KilnError("kiln::cuda::memcpy: bad kind " + std::to_string(kind));
  }
}

void memcpy_peer(int dst_device, void* dst, int src_device, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check_device(dst_device);
  check_device(src_device);
  check_not_recording(dst_device, "a copy");
  DeviceGuard g(dst_device);
  KILN_CUDA_CHECK(cudaMemcpyPeer(dst, dst_device, src, src_device, bytes));
}

void synchronize(int device) {
  check_device(device);
  DeviceGuard g(device);
  // a device-wide wait is refused by CUDA while any stream of the device is being recorded
  when_not_recording(device, "cudaDeviceSynchronize", [&] { KILN_CUDA_CHECK(cudaDeviceSynchronize()); });
}

// ---- streams and graphs ------------------------------------------------------------------------

void* device_stream(int device) {
  check_device(device);
  static std::mutex mu;
  static cudaStream_t* streams = new cudaStream_t[kMaxDevices]();  // never destroyed, as the pools
  std::lock_guard<std::mutex> lk(mu);
  if (streams[device] == nullptr) {
    DeviceGuard g(device);
    cudaStream_t s = nullptr;
    KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamDefault));  // blocking: ordered with the legacy stream
    streams[device] = s;
  }
  return streams[device];
}

void* stream_create(int device) {
  check_device(device);
  DeviceGuard g(device);
  cudaStream_t s = nullptr;
  // non-blocking: the legacy stream does not wait for it, so another thread's copies and
  // imperative operators go on while this one records on it (with a blocking stream, CUDA refuses
  // them, or they spoil the recording)
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void stream_destroy(int device, void* stream) noexcept {
  if (stream == nullptr) return;
  try {
    DeviceGuard g(device);
    (void)cudaStreamDestroy(static_cast<cudaStream_t>(stream));  // waits for nothing; freed once idle
    (void)cudaGetLastError();
  } catch (...) {
  }
}

void stream_synchronize(int device, void* stream) {
  check_device(device);
  DeviceGuard g(device);
  KILN_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
}

namespace {
std::atomic<bool>& tf32_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("KILN_CUDA_TF32");
    return v != nullptr && (std::strcmp(v, "1") == 0 || std::strcmp(v, "true") == 0 || std::strcmp(v, "on") == 0);
  }()};
  return on;
}
}  // namespace

bool tf32_allowed() { return tf32_flag().load(std::memory_order_relaxed); }
void set_tf32_allowed(bool on) { tf32_flag().store(on, std::memory_order_relaxed); }

bool sync_each_kernel() {
  static const bool on = [] {
    const char* v = std::getenv("KILN_CUDA_SYNC");
    return v != nullptr && v[0] != 0 && v[0] != '0';
  }();
  return on;
}

bool graphs_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("KILN_CUDA_GRAPHS");
    return v == nullptr || v[0] == 0 || v[0] != '0';
  }();
  return on;
}

namespace {
struct Graph {
  cudaGraphExec_t exec = nullptr;
  std::vector<std::pair<int, void*>> held;  // scratch blocks the recorded kernels use
};

void release_held(std::vector<std::pair<int, void*>>& held) noexcept {
  for (auto& h : held) kiln::cuda::free(h.first, h.second, 0);
  held.clear();
}
}  // namespace

namespace {
/// Ends the capture on `stream` and throws the recording away, clearing the error it leaves.
void discard_capture(void* stream) noexcept {
  cudaGraph_t graph = nullptr;
  (void)cudaStreamEndCapture(static_cast<cudaStream_t>(stream), &graph);
  if (graph) (void)cudaGraphDestroy(graph);
  (void)cudaGetLastError();
}
}  // namespace

void capture_begin(int device, void* stream) {
  if (t_capture_hold != nullptr) throw KilnError("capture_begin: this thread is already recording a CUDA graph");
  check_device(device);
  DeviceGuard g(device);
  auto hold = std::make_unique<std::vector<std::pair<int, void*>>>();  // before the capture starts
  hold->reserve(256);
  Captures& c = captures();
  std::unique_lock<std::mutex> lk(c.mu);
  // a synchronize, cache release, timing, handle creation or staging growth in progress goes first
  c.idle.wait(lk, [&] { return c.waiting[device] == 0 && c.busy[device] == 0 && c.busy_all == 0; });
  KILN_CUDA_CHECK(cudaStreamBeginCapture(static_cast<cudaStream_t>(stream), cudaStreamCaptureModeRelaxed));
  ++c.active[device];
  ++c.active_all;
  t_capture_hold = hold.release();
  t_capture_poisoned = false;
  t_capture_device = device;
}

namespace {
/// This thread's recording is over (ended, failed or aborted): the calls waiting for it may run.
void capture_over() noexcept {
  const int device = t_capture_device;
  t_capture_device = -1;
  if (device < 0) return;
  Captures& c = captures();
  {
    std::lock_guard<std::mutex> lk(c.mu);
    --c.active[device];
    --c.active_all;
  }
  c.idle.notify_all();
}
}  // namespace

void* capture_end(int device, void* stream, std::string* why) {
  // Every way out ends the capture and, without a graph, returns the held blocks to the pool (on
  // leaving this scope, even when building a reason throws bad_alloc; a graph takes them first).
  struct Held {
    std::unique_ptr<std::vector<std::pair<int, void*>>> blocks;
    ~Held() {
      if (blocks) release_held(*blocks);
    }
  } held{std::unique_ptr<std::vector<std::pair<int, void*>>>(t_capture_hold)};
  const bool poisoned = t_capture_poisoned;
  t_capture_hold = nullptr;
  t_capture_poisoned = false;
  auto fail = [&](const std::string& reason) -> void* {
    if (why) *why = reason;
    return nullptr;
  };
  cudaGraph_t graph = nullptr;
  cudaError_t e;
  try {
    DeviceGuard g(device);
    e = cudaStreamEndCapture(static_cast<cudaStream_t>(stream), &graph);
  } catch (const std::exception& ex) {  // the device could not be made current: end it anyway
    discard_capture(stream);
    capture_over();
    return fail(ex.what());
  }
  capture_over();
  if (e != cudaSuccess || graph == nullptr) {
    if (graph) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
    return fail(error_text(e, "cudaStreamEndCapture"));
  }
  if (poisoned) {
    (void)cudaGraphDestroy(graph);
    return fail("out of host memory while recording: a scratch block could not be kept for the graph");
  }
  cudaGraphExec_t exec = nullptr;
  {
    DeviceGuard g(device);  // made current just above, so this does not fail in practice
    e = cudaGraphInstantiateWithFlags(&exec, graph, 0);
  }
  (void)cudaGraphDestroy(graph);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(error_text(e, "cudaGraphInstantiate"));
  }
  Graph* gr = nullptr;
  try {
    gr = new Graph();
    gr->exec = exec;
    if (held.blocks) {
      gr->held = std::move(*held.blocks);
      held.blocks->clear();
    }
  } catch (...) {
    delete gr;
    (void)cudaGraphExecDestroy(exec);
    return fail("out of host memory after recording");
  }
  return gr;
}

void capture_abort(int device, void* stream) noexcept {
  std::unique_ptr<std::vector<std::pair<int, void*>>> held(t_capture_hold);
  t_capture_hold = nullptr;
  t_capture_poisoned = false;
  try {
    DeviceGuard g(device);
    discard_capture(stream);
  } catch (...) {  // the device could not be made current: end the capture anyway
    discard_capture(stream);
  }
  capture_over();
  if (held) release_held(*held);
}

void graph_launch(int device, void* graph, void* stream) {
  auto* gr = static_cast<Graph*>(graph);
  DeviceGuard g(device);
  KILN_CUDA_CHECK(cudaGraphLaunch(gr->exec, static_cast<cudaStream_t>(stream)));
}

void graph_destroy(int device, void* graph) noexcept {
  auto* gr = static_cast<Graph*>(graph);
  if (gr == nullptr) return;
  try {
    DeviceGuard g(device);
    // an in-flight replay completes before CUDA frees the graph; the held blocks go back to the
    // cache at once, which is safe because their next user runs on the device's stream (or the
    // legacy stream, ordered with it) after the replays already issued
    (void)cudaGraphExecDestroy(gr->exec);
    (void)cudaGetLastError();
  } catch (...) {
  }
  release_held(gr->held);
  delete gr;
}

void register_gpu_kernels(OpRegistry& r) {
  register_elemwise_gpu(r);
  register_fully_connected_gpu(r);
  register_tensor_gpu(r);
  register_shape_gpu(r);
  register_nn_gpu(r);
  register_norm_gpu(r);
  register_conv_gpu(r);
  register_optimizer_gpu(r);
  register_rnn_gpu(r);
  register_contrib_gpu(r);
  register_random_gpu(r);
}

DeviceScratch::DeviceScratch(int device, size_t bytes)
    : device_(device), ptr_(kiln::cuda::malloc(device, bytes)), bytes_(bytes) {}

DeviceScratch::~DeviceScratch() { kiln::cuda::free(device_, ptr_, bytes_); }

// ---- allocator statistics and cache release (kiln/cuda_api.h) ---------------------------------

CacheStats cache_stats(int device) {
  check_device(device);
  Pool& p = pool(device);
  std::lock_guard<std::mutex> lk(p.mu);
  CacheStats st;
  st.held = p.held;
  st.cached = p.cached;
  st.peak_held = p.peak_held;
  st.driver_allocs = p.cuda_mallocs;
  return st;
}

void empty_cache(int device) {
  check_device(device);
  Pool& p = pool(device);
  DeviceGuard g(device);
  when_not_recording(device, "cudaFree", [&] {
    std::lock_guard<std::mutex> lk(p.mu);
    release_cache(p);
  });
}

}  // namespace cuda
}  // namespace kiln
