// Tensors as kernels see them: Shape, DType, Context, TBlob, and the error type used everywhere
// inside the native core. Nothing here allocates; storage lives in alloc.h.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln {

/// Every failure inside the native core is a KilnError; the C API turns it into a status + message.
struct KilnError : std::runtime_error {
  explicit KilnError(const std::string& m) : std::runtime_error(m) {}
};
/// Thrown when an allocation cannot be served; the message names the bytes requested.
struct OutOfMemoryError : KilnError {
  explicit OutOfMemoryError(const std::string& m) : KilnError(m) {}
};
/// Thrown when a thread recording a CUDA graph makes a call that cannot be recorded (a copy or a
/// synchronize of its own): the pass will never record, so it stays eager at once (GraphRetry).
struct RecordingUnsupported : KilnError {
  explicit RecordingUnsupported(const std::string& m) : KilnError(m) {}
};
/// Throws `message` (e's text with context added by the caller) as a KilnError, or as a
/// RecordingUnsupported when e was one, so the recorder still tells that failure apart.
[[noreturn]] inline void rethrow_with_context(const std::exception& e, const std::string& message) {
  if (dynamic_cast<const RecordingUnsupported*>(&e) != nullptr) throw RecordingUnsupported(message);
  throw KilnError(message);
}

#define KILN_CHECK(cond, msg)                                   \
  do {                                                          \
    if (!(cond)) throw ::kiln::KilnError(std::string() + (msg));  \
  } while (0)

/// MXNet's type flags (mshadow): the numbers are part of the .params file format.
enum class DType : int { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kUint8 = 3, kInt32 = 4, kInt8 = 5, kInt64 = 6, kBfloat16 = 12, kUnknown = -1 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kFloat16: return 2;
    case DType::kUint8: return 1;
    case DType::kInt32: return 4;
    case DType::kInt8: return 1;
    case DType::kInt64: return 8;
    case DType::kBfloat16: return 2;
    default: return 0;
  }
}
const char* dtype_name(DType t);         // "float32", ...
DType dtype_from_name(const std::string& s);  // throws on unknown names

enum class DevType : int { kCPU = 1, kGPU = 2 };  // MXNet's dev_type numbers (also in .params files)
struct Context {
  DevType type = DevType::kCPU;
  int id = 0;
  bool operator==(const Context& o) const { return type == o.type && id == o.id; }
  std::string str() const { return std::string(type == DevType::kCPU ? "cpu(" : "gpu(") + std::to_string(id) + ")"; }
};

/// A shape whose rank and dims may be unknown during inference: ndim == -1 means unknown rank,
/// a dim of -1 means that dim is unknown. A known shape of rank 0 is a scalar.
struct Shape {
  int ndim_ = -1;
  std::vector<int64_t> d;
  Shape() = default;
  Shape(std::initializer_list<int64_t> l) : ndim_((int)l.size()), d(l) {}
  explicit Shape(const std::vector<int64_t>& v) : ndim_((int)v.size()), d(v) {}
  static Shape unknown_rank() { return Shape(); }
  static Shape unknown_dims(int n) { Shape s; s.ndim_ = n; s.d.assign(n, -1); return s; }
  int ndim() const { return ndim_; }
  bool rank_known() const { return ndim_ >= 0; }
  bool known() const {
    if (ndim_ < 0) return false;
    for (auto x : d) if (x < 0) return false;
    return true;
  }
  /// Number of unknown dims (1 for an unknown rank), used to detect inference progress.
  int num_unknown() const {
    if (ndim_ < 0) return 1;
    int n = 0;
    for (auto x : d) n += x < 0;
    return n;
  }
  int64_t operator[](int i) const { return d[i]; }
  int64_t& operator[](int i) { return d[i]; }
  /// Product of dims; only meaningful when known().
  int64_t size() const { int64_t s = 1; for (auto x : d) s *= x; return s; }
  /// Product of dims [begin, end).
  int64_t prod(int begin, int end) const { int64_t s = 1; for (int i = begin; i < end; ++i) s *= d[i]; return s; }
  bool operator==(const Shape& o) const { return ndim_ == o.ndim_ && d == o.d; }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  /// MXNet style: "(64,784)", "(10,)", "[?]" for unknown rank, "-1" for an unknown dim... we print "?".
  std::string str() const;
};

/// A parameter tuple as MXNet prints it: "(2,-1,0)", "(5,)", "()" (negative values kept, where
/// Shape::str prints an unknown dim as "?").
inline std::string tuple_str(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  if (v.size() == 1) s += ",";
  return s + ")";
}

/// A typed view of memory handed to kernels. The kernel never owns it.
struct TBlob {
  void* ptr = nullptr;
  Shape shape;
  DType dtype = DType::kFloat32;
  Context ctx;
  template <typename T> T* dptr() const { return static_cast<T*>(ptr); }
  int64_t size() const { return shape.size(); }
  size_t bytes() const { return (size_t)shape.size() * dtype_size(dtype); }
};

}  // namespace kiln
