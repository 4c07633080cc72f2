// What the core calls in the CUDA library (src/main/cuda, built only with -Pcuda / KILN_CUDA).
// Plain C++: no CUDA headers, so the core compiles with g++ alone. All functions throw
// kiln::KilnError (never abort) and are safe to call on a machine without a GPU or driver.
#pragma once
#include <cstddef>
#include <string>

#include "kiln/op.h"

namespace kiln {
namespace cuda {

/// Number of usable devices; 0 and a reason in *why when there is no driver or device.
int device_count(std::string* why);
/// Human-readable description of the devices (or of why there are none), cuBLAS/cuDNN status.
std::string describe();

// Device memory through the caching allocator (blocks are kept for reuse, keyed by size).
void* malloc(int device, size_t bytes);
void free(int device, void* p, size_t bytes);
void memset0(int device, void* p, size_t bytes);
/// kind: 0 host->device, 1 device->host, 2 device->device (synchronous on the default stream).
void memcpy(int device, void* dst, const void* src, size_t bytes, int kind);
void synchronize(int device);

/// Sets OpDef::gpu on every operator that has a CUDA kernel (called once at registry init).
void register_gpu_kernels(OpRegistry& r);

}  // namespace cuda
}  // namespace kiln
