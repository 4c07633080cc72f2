// Per-device allocators with byte accounting. CPU: 64-byte aligned, zero-filled on request.
// GPU (KILN_CUDA): the CUDA library's caching allocator.
#include "kiln/alloc.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>

#ifdef KILN_CUDA
#include "kiln/cuda_api.h"
#endif

namespace kiln {

namespace {
struct DeviceAccount {
  std::mutex mu;
  MemStats stats;
};
std::mutex g_accounts_mu;
std::unordered_map<int, DeviceAccount*>& accounts() {
  static auto* m = new std::unordered_map<int, DeviceAccount*>();  // never destroyed: used at exit
  return *m;
}
DeviceAccount& account(Context ctx) {
  int key = (int)ctx.type * 1024 + ctx.id;
  std::lock_guard<std::mutex> lock(g_accounts_mu);
  auto& m = accounts();
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(key, new DeviceAccount()).first;
  return *it->second;
}
std::string human(size_t bytes) {
  char buf[64];
  if (bytes >= ((size_t)1 << 30)) snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  else if (bytes >= ((size_t)1 << 20)) snprintf(buf, sizeof buf, "%.2f MiB", bytes / 1048576.0);
  else snprintf(buf, sizeof buf, "%zu bytes", bytes);
  return buf;
}
}  // namespace

void* device_alloc(Context ctx, size_t bytes) {
  if (ctx.type == DevType::kCPU) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) throw OutOfMemoryError("out of memory: cannot allocate " + std::to_string(bytes) + " bytes (" + human(bytes) + ") on " + ctx.str());
    return p;
  }
#ifdef KILN_CUDA
  return cuda::malloc(ctx.id, bytes);
#else
  throw KilnError("no CUDA support in this build (rebuild with mvn -Pcuda): cannot allocate on " + ctx.str());
#endif
}

void device_free(Context ctx, void* p, size_t bytes) {
  if (!p) return;
  if (ctx.type == DevType::kCPU) { std::free(p); return; }
#ifdef KILN_CUDA
  try { cuda::free(ctx.id, p, bytes); } catch (...) {}
#endif
}

void device_memset0(Context ctx, void* p, size_t bytes) {
  if (bytes == 0) return;
  if (ctx.type == DevType::kCPU) { std::memset(p, 0, bytes); return; }
#ifdef KILN_CUDA
  cuda::memset0(ctx.id, p, bytes);
#else
  throw KilnError("no CUDA support in this build");
#endif
}

void copy_bytes(Context dst_ctx, void* dst, Context src_ctx, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  if (dst_ctx.type == DevType::kCPU && src_ctx.type == DevType::kCPU) { std::memmove(dst, src, bytes); return; }
#ifdef KILN_CUDA
  if (src_ctx.type == DevType::kCPU) cuda::memcpy(dst_ctx.id, dst, src, bytes, 0);
  else if (dst_ctx.type == DevType::kCPU) cuda::memcpy(src_ctx.id, dst, src, bytes, 1);
  else if (dst_ctx.id == src_ctx.id) cuda::memcpy(dst_ctx.id, dst, src, bytes, 2);
  else cuda::memcpy_peer(dst_ctx.id, dst, src_ctx.id, src, bytes);
#else
  throw KilnError("no CUDA support in this build");
#endif
}

StoragePtr alloc_storage(Context ctx, size_t bytes, bool zero) {
  if (bytes > kMaxAllocBytes)
    throw OutOfMemoryError("out of memory: refusing to allocate " + std::to_string(bytes) + " bytes (" + human(bytes) +
                           ") on " + ctx.str() + ", above the 1 TiB limit of one allocation");
  void* p = device_alloc(ctx, bytes);
  if (zero) {
    try { device_memset0(ctx, p, bytes); } catch (...) { device_free(ctx, p, bytes); throw; }
  }
  auto s = std::make_shared<Storage>();
  s->ptr = p;
  s->bytes = bytes;
  s->ctx = ctx;
  DeviceAccount& a = account(ctx);
  std::lock_guard<std::mutex> lock(a.mu);
  a.stats.current += (int64_t)bytes;
  a.stats.outstanding += 1;
  a.stats.total_allocs += 1;
  if (a.stats.current > a.stats.peak) a.stats.peak = a.stats.current;
  return s;
}

Storage::~Storage() {
  device_free(ctx, ptr, bytes);
  DeviceAccount& a = account(ctx);
  std::lock_guard<std::mutex> lock(a.mu);
  a.stats.current -= (int64_t)bytes;
  a.stats.outstanding -= 1;
}

MemStats mem_stats(Context ctx) {
  DeviceAccount& a = account(ctx);
  std::lock_guard<std::mutex> lock(a.mu);
  return a.stats;
}

void reset_peak(Context ctx) {
  DeviceAccount& a = account(ctx);
  std::lock_guard<std::mutex> lock(a.mu);
  a.stats.peak = a.stats.current;
}

NDArray make_ndarray(const Shape& s, DType t, Context ctx) {
  KILN_CHECK(s.known(), "cannot allocate an array of unknown shape " + s.str());
  for (auto x : s.d) KILN_CHECK(x >= 0, "negative dimension in shape " + s.str());
  size_t es = dtype_size(t);
  KILN_CHECK(es > 0, "unknown dtype");
  // overflow-safe size computation
  long double total = es;
  for (auto x : s.d) total *= (long double)x;
  if (total > (long double)kMaxAllocBytes)
    throw OutOfMemoryError("out of memory: an array of shape " + s.str() + " and dtype " + dtype_name(t) + " needs " +
                           human((size_t)std::min<long double>(total, 1e19L)) + ", above the 1 TiB limit");
  NDArray a;
  a.shape = s;
  a.dtype = t;
  a.ctx = ctx;
  a.storage = alloc_storage(ctx, (size_t)total, true);
  return a;
}

}  // namespace kiln
