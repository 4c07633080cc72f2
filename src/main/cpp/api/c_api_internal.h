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
/// Holds a fused-update plan for the duration of one C-API call: a call from a second thread
/// while it is held, or a free (unregister_fused), throws instead of racing on the plan.
class FusedUse {
 public:
  /// Throws KilnError for a freed or unknown handle, or one another thread holds.
  explicit FusedUse(int64_t h);
  ~FusedUse();
  FusedUse(const FusedUse&) = delete;
  FusedUse& operator=(const FusedUse&) = delete;
  void* plan() const { return plan_; }

 private:
  int64_t h_;
  void* plan_;
};
/// Removes a plan handle and returns its plan; throws KilnError when it is not a live plan handle
/// or another thread holds it (FusedUse).
void* unregister_fused(int64_t h);
/// Sets the message kiln_last_error() returns on this thread.
void set_last_error(const std::string& message);

}  // namespace capi
}  // namespace kiln
