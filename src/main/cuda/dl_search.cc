// The library search of common/dl_search.h, shared by cublas_dl.cc and cudnn_dl.cc.
#include "common/dl_search.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace kiln {
namespace cuda {
namespace {

std::mutex g_dirs_mu;
std::string g_extra_dirs;

std::vector<std::string> split_dirs(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    std::string d = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!d.empty()) out.push_back(d);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

/// Places 1 and 2 of the search order.
std::vector<std::string> first_dirs() {
  std::vector<std::string> dirs;
  {
    std::lock_guard<std::mutex> lk(g_dirs_mu);
    dirs = split_dirs(g_extra_dirs);
  }
  if (const char* env = std::getenv("KILN_CUDA_LIBDIRS")) {
    for (auto& d : split_dirs(env)) dirs.push_back(d);
  }
  return dirs;
}

}  // namespace

void set_library_dirs(const std::string& dirs) {
  std::lock_guard<std::mutex> lk(g_dirs_mu);
  g_extra_dirs = dirs;
}

void* open_library(const char* soname, std::string* where, std::string* dir, std::string* errors) {
  for (const auto& d : first_dirs()) {
    std::string path = d + "/" + soname;
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      *where = path;
      *dir = d;
      return h;
    }
    const char* e = dlerror();
    // a file that exists but does not load (missing dependency) is worth reporting
    if (e && std::string(e).find("No such file") == std::string::npos) *errors += std::string(e) + "; ";
  }
  if (void* h = dlopen(soname, RTLD_NOW | RTLD_GLOBAL)) {
    *where = std::string(soname) + " (loader search path)";
    dir->clear();
    return h;
  }
  const char* e = dlerror();
  *errors += e ? e : soname;
  for (const char* d : {"/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"}) {
    std::string path = std::string(d) + "/" + soname;
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
      *where = path;
      *dir = d;
      return h;
    }
    (void)dlerror();
  }
  return nullptr;
}

const char* library_search_text() { return "searched KILN_CUDA_LIBDIRS, LD_LIBRARY_PATH and /usr/local/cuda/lib64"; }

}  // namespace cuda
}  // namespace kiln
