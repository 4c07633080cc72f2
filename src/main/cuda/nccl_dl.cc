// NCCL opened with dlopen (libnccl.so.2, found as common/dl_search.h describes): the multi-GPU sum
// and broadcast behind KVStore 'device'. Neither NCCL's header nor its library is needed to build;
// we declare the few entry points we call (stable C ABI of NCCL 2.x).
//
// One communicator set ("clique", ncclCommInitAll) per list of devices, made on first use and kept
// for the life of the process (as the handles of cuBLAS and cuDNN), unless a collective on it fails:
// then it is aborted (ncclCommAbort) and dropped, and the call throws. A batch of collectives (one
// per KVStore key) is issued from the calling thread as NCCL group calls (up to 2048 per-rank calls
// each) on each device's Kiln stream, then waited for once by polling
// an event recorded after it on each device's stream and NCCL's asynchronous errors (a failed peer
// is reported, not waited on forever), so
// the buffers are ordered with the executors' kernels before and after it. KILN_NCCL=0 disables NCCL.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/cuda_check.cuh"
#include "common/dl_search.h"
#include "kiln/cuda_api.h"

namespace kiln {
namespace cuda {
namespace {

// ---- our own declarations of the NCCL C API ---------------------------------------------------
typedef struct ncclComm* ncclComm_t;
typedef int ncclResult_t;  // ncclSuccess = 0
// ncclDataType_t and ncclRedOp_t values
enum { kNcclInt8 = 0, kNcclUint8 = 1, kNcclInt32 = 2, kNcclInt64 = 4, kNcclFloat16 = 6, kNcclFloat32 = 7,
       kNcclFloat64 = 8, kNcclBfloat16 = 9 };
enum { kNcclSum = 0 };
typedef ncclResult_t (*ncclCommInitAll_fn)(ncclComm_t* comms, int ndev, const int* devlist);
typedef ncclResult_t (*ncclReduce_fn)(const void* send, void* recv, size_t count, int datatype, int op, int root,
                                      ncclComm_t comm, cudaStream_t stream);
typedef ncclResult_t (*ncclBroadcast_fn)(const void* send, void* recv, size_t count, int datatype, int root,
                                         ncclComm_t comm, cudaStream_t stream);
typedef ncclResult_t (*ncclGroup_fn)();
typedef const char* (*ncclGetErrorString_fn)(ncclResult_t);
typedef ncclResult_t (*ncclGetVersion_fn)(int* version);
typedef ncclResult_t (*ncclCommGetAsyncError_fn)(ncclComm_t comm, ncclResult_t* async_error);  // NCCL >= 2.4
typedef ncclResult_t (*ncclCommAbort_fn)(ncclComm_t comm);                                     // NCCL >= 2.4
enum { kNcclInProgress = 7 };  // ncclInProgress: not an error

struct Nccl {
  std::once_flag once;
  std::string status = "NCCL not loaded yet";  // "" when usable
  std::string found_at;
  int version = 0;
  void* lib = nullptr;
  ncclCommInitAll_fn init_all = nullptr;
  ncclReduce_fn reduce = nullptr;
  ncclBroadcast_fn broadcast = nullptr;
  ncclGroup_fn group_start = nullptr;
  ncclGroup_fn group_end = nullptr;
  ncclGetErrorString_fn error_string = nullptr;
  ncclGetVersion_fn get_version = nullptr;
  ncclCommGetAsyncError_fn async_error = nullptr;  // optional
  ncclCommAbort_fn abort = nullptr;                // optional
  std::mutex mu;  // guards cliques and serializes the collectives
  std::map<std::vector<int>, std::vector<ncclComm_t>> cliques;
};

// Never destroyed: communicators must not be torn down after the CUDA runtime at process exit.
Nccl& state() {
  static Nccl* s = new Nccl();
  return *s;
}

void load(Nccl& s) {
  const char* off = std::getenv("KILN_NCCL");
  if (off != nullptr && off[0] == '0') {
    s.status = "NCCL disabled by KILN_NCCL=0";
    return;
  }
  std::string where, dir, err;
  s.lib = open_library("libnccl.so.2", &where, &dir, &err);
  if (!s.lib) {
    s.status = "NCCL not available: libnccl.so.2 not found (" + err + "); " + library_search_text();
    return;
  }
  s.init_all = (ncclCommInitAll_fn)dlsym(s.lib, "ncclCommInitAll");
  s.reduce = (ncclReduce_fn)dlsym(s.lib, "ncclReduce");
  s.broadcast = (ncclBroadcast_fn)dlsym(s.lib, "ncclBroadcast");
  s.group_start = (ncclGroup_fn)dlsym(s.lib, "ncclGroupStart");
  s.group_end = (ncclGroup_fn)dlsym(s.lib, "ncclGroupEnd");
  s.error_string = (ncclGetErrorString_fn)dlsym(s.lib, "ncclGetErrorString");
  s.get_version = (ncclGetVersion_fn)dlsym(s.lib, "ncclGetVersion");
  s.async_error = (ncclCommGetAsyncError_fn)dlsym(s.lib, "ncclCommGetAsyncError");
  s.abort = (ncclCommAbort_fn)dlsym(s.lib, "ncclCommAbort");
  std::string missing;
  if (!s.init_all) missing += " ncclCommInitAll";
  if (!s.reduce) missing += " ncclReduce";
  if (!s.broadcast) missing += " ncclBroadcast";
  if (!s.group_start) missing += " ncclGroupStart";
  if (!s.group_end) missing += " ncclGroupEnd";
  if (!missing.empty()) {
    s.status = "NCCL not available: " + where + " lacks" + missing;
    return;
  }
  if (s.get_version) s.get_version(&s.version);
  s.found_at = where;
  s.status.clear();
}

Nccl& loaded() {
  Nccl& s = state();
  std::call_once(s.once, [&] { load(s); });
  return s;
}

/// "<NCCL's name of r> (r)".
std::string result_text(Nccl& s, ncclResult_t r) {
  const char* p = s.error_string ? s.error_string(r) : nullptr;
  std::string name = p != nullptr ? p : "";
  return (name.empty() ? "NCCL error" : name) + " (" + std::to_string(r) + ")";
}

void check(Nccl& s, ncclResult_t r, const std::string& what) {
  if (r != 0) throw KilnError(what + ": " + result_text(s, r));
}

bool nccl_type(DType t, int* out) {
  switch (t) {
    case DType::kFloat32: *out = kNcclFloat32; return true;
    case DType::kFloat64: *out = kNcclFloat64; return true;
    case DType::kFloat16: *out = kNcclFloat16; return true;
    case DType::kBfloat16: *out = kNcclBfloat16; return true;
    case DType::kInt32: *out = kNcclInt32; return true;
    case DType::kInt64: *out = kNcclInt64; return true;
    case DType::kInt8: *out = kNcclInt8; return true;
    case DType::kUint8: *out = kNcclUint8; return true;
    default: return false;
  }
}

/// Runs f() once no other thread records a CUDA graph on devs[i..], holding their new recordings
/// back until it returns (f() at once when this thread records: it would wait for itself).
void when_none_recording(const std::vector<int>& devs, size_t i, const std::function<void()>& f) {
  if (i == devs.size()) return f();
  if (!when_others_not_recording(devs[i], [&] { when_none_recording(devs, i + 1, f); })) f();
}

/// The communicators of `devs` (in that order), made on first use: ncclCommInitAll allocates and
/// synchronizes, which would spoil another thread's CUDA graph recording on one of the devices, so
/// it waits for those to end. Caller holds s.mu (no recording needs it).
const std::vector<ncclComm_t>& clique(Nccl& s, const std::vector<int>& devs) {
  auto it = s.cliques.find(devs);
  if (it != s.cliques.end()) return it->second;
  std::vector<ncclComm_t> comms(devs.size(), nullptr);
  std::string list;
  for (int d : devs) list += (list.empty() ? "" : ",") + std::to_string(d);
  ncclResult_t r = 0;
  when_none_recording(devs, 0, [&] { r = s.init_all(comms.data(), (int)devs.size(), devs.data()); });
  check(s, r, "ncclCommInitAll(gpu " + list + ")");
  return s.cliques.emplace(devs, std::move(comms)).first->second;
}

/// After a failed collective: the communicators of `devs` are aborted (their kernels, which may be
/// waiting for a peer, are stopped) and dropped, so the next call makes new ones; then throws.
/// Caller holds s.mu.
[[noreturn]] void fail_clique(Nccl& s, const std::vector<int>& devs, const std::string& what) {
  auto it = s.cliques.find(devs);
  if (it != s.cliques.end()) {
    if (s.abort != nullptr)
      for (ncclComm_t c : it->second) (void)s.abort(c);
    s.cliques.erase(it);
  }
  (void)cudaGetLastError();
  throw KilnError(what + " (the communicators of these GPUs were aborted; the next call makes new ones)");
}

/// Waits for the collective just issued on every device's stream, polling an event recorded after
/// it on each and NCCL's asynchronous errors instead of blocking in cudaStreamSynchronize: a
/// communicator that failed (a peer that faulted, a network error) is aborted and reported instead
/// of hanging the thread.
/// Caller holds s.mu.
void wait_for(Nccl& s, const std::vector<int>& devs, const char* what) {
  const std::vector<ncclComm_t>& comms = s.cliques.at(devs);
  // one event per device recorded after the collective: later work that other threads queue on the
  // device's stream is not waited for (a query of the stream itself would)
  struct Events {
    std::vector<int> devs;
    std::vector<cudaEvent_t> ev;
    ~Events() {
      for (size_t i = 0; i < ev.size(); ++i) {
        if (ev[i] == nullptr) continue;
        try {
          DeviceGuard g(devs[i]);
          (void)cudaEventDestroy(ev[i]);
        } catch (...) {
        }
      }
      (void)cudaGetLastError();
    }
  } events{devs, std::vector<cudaEvent_t>(devs.size(), nullptr)};
  for (size_t i = 0; i < devs.size(); ++i) {
    DeviceGuard g(devs[i]);
    cudaError_t e = cudaEventCreateWithFlags(&events.ev[i], cudaEventDisableTiming);
    if (e == cudaSuccess) e = cudaEventRecord(events.ev[i], static_cast<cudaStream_t>(device_stream(devs[i])));
    if (e != cudaSuccess)
      fail_clique(s, devs, std::string(what) + " on gpu(" + std::to_string(devs[i]) + "): " + error_text(e, "cudaEventRecord"));
  }
  std::vector<bool> done(devs.size(), false);
  size_t left = devs.size();
  for (long spins = 0; left > 0; ++spins) {
    for (size_t i = 0; i < devs.size(); ++i) {
      if (done[i]) continue;
      cudaError_t e;
      {
        DeviceGuard g(devs[i]);
        e = cudaEventQuery(events.ev[i]);
      }
      if (e == cudaSuccess) {
        done[i] = true;
        --left;
      } else if (e != cudaErrorNotReady) {
        fail_clique(s, devs, std::string(what) + " on gpu(" + std::to_string(devs[i]) + "): " + error_text(e, "cudaEventQuery"));
      }
    }
    if (left == 0) break;
    if (s.async_error != nullptr) {
      for (size_t i = 0; i < comms.size(); ++i) {
        ncclResult_t ae = 0;
        if (s.async_error(comms[i], &ae) == 0 && ae != 0 && ae != kNcclInProgress)
          fail_clique(s, devs, std::string(what) + ": NCCL reported " + result_text(s, ae) + " on gpu(" +
                                   std::to_string(devs[i]) + ")");
      }
    }
    if (spins < 1000) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

/// Common checks; false with *why when NCCL cannot take the call (the caller falls back).
bool usable(Nccl& s, const std::vector<int>& devs, int root, DType t, int* type, std::string* why) {
  if (!s.status.empty()) {
    *why = s.status;
    return false;
  }
  if (devs.empty() || root < 0 || root >= (int)devs.size()) throw KilnError("NCCL: no devices, or root out of range");
  if (std::set<int>(devs.begin(), devs.end()).size() != devs.size())
    throw KilnError("NCCL: each array must be on a different GPU");
  if (!nccl_type(t, type)) {
    *why = std::string("NCCL has no type for ") + dtype_name(t);
    return false;
  }
  if (t == DType::kBfloat16 && s.version < 21000) {  // ncclBfloat16 came with NCCL 2.10
    *why = "NCCL " + std::to_string(s.version) + " has no bfloat16 (2.10 and later)";
    return false;
  }
  return true;
}

}  // namespace

std::string nccl_describe() {
  Nccl& s = loaded();
  if (!s.status.empty()) return s.status;
  return "NCCL " + std::to_string(s.version / 10000) + "." + std::to_string(s.version / 100 % 100) + "." +
         std::to_string(s.version % 100) + " from " + s.found_at;
}

namespace {
// NCCL takes at most 2048 calls between ncclGroupStart and ncclGroupEnd (each rank's call counts).
constexpr size_t kMaxGroupCalls = 2048;

/// The collectives of `calls` over `devs`, as few group calls as NCCL takes, then one wait for all
/// of them. Every call is checked before any is issued, so a bad one issues none.
bool run_batch(const std::vector<int>& devs, const std::vector<NcclCall>& calls, bool broadcast, std::string* why) {
  Nccl& s = loaded();
  const char* what = broadcast ? "ncclBroadcast" : "ncclReduce";
  std::vector<int> types(calls.size());
  for (size_t c = 0; c < calls.size(); ++c) {
    const NcclCall& k = calls[c];
    if (!usable(s, devs, k.root, k.dtype, &types[c], why)) return false;
    if (k.bufs.size() != devs.size())
      throw KilnError(std::string("NCCL ") + (broadcast ? "broadcast" : "reduce") + ": one buffer per device expected");
  }
  if (calls.empty()) return true;
  std::lock_guard<std::mutex> lk(s.mu);
  const std::vector<ncclComm_t>& comms = clique(s, devs);
  const size_t per_group = std::max<size_t>(1, kMaxGroupCalls / devs.size());
  // every device's stream before any group opens: creating one may throw, and nothing between
  // ncclGroupStart and ncclGroupEnd may (an open group defers every later NCCL call of this thread)
  std::vector<cudaStream_t> streams(devs.size());
  for (size_t i = 0; i < devs.size(); ++i) streams[i] = static_cast<cudaStream_t>(device_stream(devs[i]));
  for (size_t from = 0; from < calls.size(); from += per_group) {
    check(s, s.group_start(), "ncclGroupStart");
    ncclResult_t first = 0;
    for (size_t c = from; c < std::min(calls.size(), from + per_group); ++c) {
      const NcclCall& k = calls[c];
      for (size_t i = 0; i < devs.size(); ++i) {
        cudaStream_t st = streams[i];
        ncclResult_t r;
        if (broadcast) {
          r = s.broadcast(k.bufs[k.root], k.bufs[i], k.count, types[c], k.root, comms[i], st);
        } else {
          // recv is only written on the root; the others pass their own buffer, which NCCL ignores
          void* out = (int)i == k.root ? k.recv : k.bufs[i];
          r = s.reduce(k.bufs[i], out, k.count, types[c], kNcclSum, k.root, comms[i], st);
        }
        if (first == 0) first = r;
      }
    }
    const ncclResult_t end = s.group_end();
    for (ncclResult_t r : {end, first})
      if (r != 0) fail_clique(s, devs, std::string(what) + ": " + result_text(s, r));
  }
  wait_for(s, devs, what);
  return true;
}
}  // namespace

bool nccl_reduce_sum(const std::vector<int>& devs, const std::vector<NcclCall>& calls, std::string* why) {
  return run_batch(devs, calls, false, why);
}

bool nccl_broadcast(const std::vector<int>& devs, const std::vector<NcclCall>& calls, std::string* why) {
  return run_batch(devs, calls, true, why);
}

}  // namespace cuda
}  // namespace kiln
