// A small strict JSON reader/writer for the C API (symbol graphs, option maps, reports).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

struct JValue {
  enum Kind { kNull, kBool, kNum, kStr, kArr, kObj } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<JValue> arr;
  std::vector<std::pair<std::string, JValue>> obj;  // keeps key order

  bool is_null() const { return kind == kNull; }
  /// Member lookup; nullptr when absent or not an object.
  const JValue* get(const std::string& key) const;
  /// Member lookup that throws "<what>: missing field 'key'".
  const JValue& at(const std::string& key, const std::string& what) const;
  int64_t as_int(const std::string& what) const;
  const std::string& as_str(const std::string& what) const;
};

/// Parses text; throws KilnError("malformed JSON at offset N: ...") on any error. Depth limited.
JValue parse_json(const std::string& text);

/// Appends a JSON string literal with escapes.
void json_escape(std::string* out, const std::string& s);
std::string json_str(const std::string& s);

}  // namespace kiln
