// Native memory: per-device allocators with byte accounting, reference-counted storage blocks,
// and NDArray (a typed view on a storage block). Java handles point at heap NDArray objects.
#pragma once
#include <atomic>
#include <memory>

#include "kiln/tensor.h"

namespace kiln {

/// Byte accounting of one device's allocator.
struct MemStats {
  int64_t current = 0;      // bytes held now
  int64_t peak = 0;         // largest `current` seen
  int64_t outstanding = 0;  // number of live blocks
  int64_t total_allocs = 0; // blocks ever allocated
};

/// A block of device memory, freed when the last owner (arrays, executors) lets go.
struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Context ctx;
  uint64_t pool = 0;  // an executor arena: its MemoryPool::id (the C API guards reads against runs), else 0
  ~Storage();
};
using StoragePtr = std::shared_ptr<Storage>;

/// Allocates `bytes` on `ctx` (64-byte aligned on the CPU), zero-filled when `zero`.
/// Throws OutOfMemoryError naming the size when the request cannot be served.
StoragePtr alloc_storage(Context ctx, size_t bytes, bool zero = true);
MemStats mem_stats(Context ctx);
void reset_peak(Context ctx);

/// Upper bound on one allocation (guards against absurd sizes before malloc is even tried).
constexpr size_t kMaxAllocBytes = (size_t)1 << 40;  // 1 TiB

/// An n-dimensional array: storage + byte offset + shape + dtype. Views share storage.
struct NDArray {
  StoragePtr storage;
  size_t offset = 0;
  Shape shape;
  DType dtype = DType::kFloat32;
  Context ctx;
  void* data() const { return storage ? (char*)storage->ptr + offset : nullptr; }
  size_t bytes() const { return (size_t)shape.size() * dtype_size(dtype); }
  TBlob blob() const { TBlob b; b.ptr = data(); b.shape = shape; b.dtype = dtype; b.ctx = ctx; return b; }
};

/// New zero-filled array.
NDArray make_ndarray(const Shape& s, DType t, Context ctx);

// Device hooks used by the CUDA build (no-ops / errors without it).
void* device_alloc(Context ctx, size_t bytes);
void device_free(Context ctx, void* p, size_t bytes);
void device_memset0(Context ctx, void* p, size_t bytes);
/// Copies between any two devices (host<->device, device<->device, host<->host).
void copy_bytes(Context dst_ctx, void* dst, Context src_ctx, const void* src, size_t bytes);

}  // namespace kiln
