// Internal hooks of c_api.cc shared with the other files of the C boundary (c_api_update.cc):
// the one handle table (so kiln_live_handles counts every kind of handle and NDArray handles are
// validated the same way everywhere) and the thread-local error message. Not part of the C API.
#pragma once
#include <cstdint>
#include <string>

#include "kiln/alloc.h"

namespace kiln {
namespace capi {

/// The live NDArray behind a handle; throws KilnError for a closed, freed or unknown handle.
NDArray& ndarray(int64_t h);
/// Registers a fused-update plan (counted by kiln_live_handles) and returns its handle.
int64_t register_fused(void* plan);
/// The plan behind a handle; throws KilnError for a freed or unknown handle.
void* lookup_fused(int64_t h);
/// Removes a plan handle; false when it is not a live plan handle.
bool unregister_fused(int64_t h);
/// Sets the message kiln_last_error() returns on this thread.
void set_last_error(const std::string& message);

}  // namespace capi
}  // namespace kiln
