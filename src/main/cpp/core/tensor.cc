#include "kiln/tensor.h"

namespace kiln {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kUint8: return "uint8";
    case DType::kInt32: return "int32";
    case DType::kInt8: return "int8";
    case DType::kInt64: return "int64";
    case DType::kBfloat16: return "bfloat16";
    default: return "unknown";
  }
}

DType dtype_from_name(const std::string& s) {
  for (int i = 0; i <= 6; ++i)
    if (s == dtype_name((DType)i)) return (DType)i;
  if (s == "bfloat16") return DType::kBfloat16;
  throw KilnError("unknown dtype '" + s + "' (expected float32, float64, float16, bfloat16, uint8, int32, int8, int64)");
}

std::string Shape::str() const {
  if (ndim_ < 0) return "[unknown]";
  std::string s = "(";
  for (int i = 0; i < ndim_; ++i) {
    if (i) s += ",";
    s += d[i] < 0 ? std::string("?") : std::to_string(d[i]);
  }
  if (ndim_ == 1) s += ",";
  return s + ")";
}

}  // namespace kiln
