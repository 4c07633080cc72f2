// Finding the run-time CUDA libraries (cuBLAS, cuDNN) that Kiln opens with dlopen. Host code only
// (dl_search.cc). Search order for a soname:
//   1. directories given to set_library_dirs() (':'-separated),
//   2. the KILN_CUDA_LIBDIRS environment variable (':'-separated; gpu-check.sh's run.sh sets it
//      from python3's site-packages/nvidia/*/lib),
//   3. the dynamic loader's own search (LD_LIBRARY_PATH, ldconfig cache, RUNPATH),
//   4. the toolkit directories /usr/local/cuda/lib64 and /usr/local/cuda/targets/x86_64-linux/lib.
#pragma once
#include <string>

namespace kiln {
namespace cuda {

/// Extra directories (':'-separated) searched first; only effective before a library's first use.
void set_library_dirs(const std::string& dirs);

/// Opens `soname` (RTLD_NOW | RTLD_GLOBAL) from the first place in the search order that has it.
/// *where gets the path that worked, *dir its directory ("" for the loader's search); failures
/// worth reporting (a file that exists but does not load, the loader's own error) are appended to
/// *errors. Returns nullptr when nothing loads.
void* open_library(const char* soname, std::string* where, std::string* dir, std::string* errors);

/// "searched KILN_CUDA_LIBDIRS, LD_LIBRARY_PATH and /usr/local/cuda/lib64", for "not found" messages.
const char* library_search_text();

}  // namespace cuda
}  // namespace kiln
