#include "kiln/json.h"

#include <cmath>
#include <cstdlib>

namespace kiln {

const JValue* JValue::get(const std::string& key) const {
  if (kind != kObj) return nullptr;
  for (auto& kv : obj) if (kv.first == key) return &kv.second;
  return nullptr;
}

const JValue& JValue::at(const std::string& key, const std::string& what) const {
  const JValue* v = get(key);
  if (!v) throw KilnError(what + ": missing field '" + key + "'");
  return *v;
}

int64_t JValue::as_int(const std::string& what) const {
  if (kind == kNum && std::isfinite(num) && num == std::floor(num) && std::fabs(num) < 9e15) return (int64_t)num;
  if (kind == kStr) {
    char* end = nullptr;
    long long v = std::strtoll(str.c_str(), &end, 10);
    if (!str.empty() && end && *end == 0) return v;
  }
  throw KilnError(what + ": expected an integer");
}

const std::string& JValue::as_str(const std::string& what) const {
  if (kind != kStr) throw KilnError(what + ": expected a string");
  return str;
}

namespace {
struct Parser {
  const std::string& s;
  size_t i = 0;
  int depth = 0;
  [[noreturn]] void fail(const std::string& why) {
    throw KilnError("malformed JSON at offset " + std::to_string(i) + ": " + why);
  }
  void ws() { while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i; }
  bool lit(const char* l) {
    size_t n = strlen(l);
    if (s.compare(i, n, l) == 0) { i += n; return true; }
    return false;
  }
  void hex4(unsigned* cp) {
    if (i + 4 > s.size()) fail("truncated \\u escape");
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s[i++];
      *cp <<= 4;
      if (c >= '0' && c <= '9') *cp |= c - '0';
      else if (c >= 'a' && c <= 'f') *cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') *cp |= c - 'A' + 10;
      else fail("bad \\u escape");
    }
  }
  std::string string() {
    if (i >= s.size() || s[i] != '"') fail("expected a string");
    ++i;
    std::string out;
    while (true) {
      if (i >= s.size()) fail("unterminated string");
      char c = s[i++];
      if (c == '"') break;
      if ((unsigned char)c < 0x20) fail("control character in string");
      if (c != '\\') { out += c; continue; }
      if (i >= s.size()) fail("unterminated escape");
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp;
          hex4(&cp);
          if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            i += 2;
            unsigned lo;
            hex4(&lo);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (cp < 0x80) out += (char)cp;
          else if (cp < 0x800) { out += (char)(0xC0 | (cp >> 6)); out += (char)(0x80 | (cp & 0x3F)); }
          else if (cp < 0x10000) { out += (char)(0xE0 | (cp >> 12)); out += (char)(0x80 | ((cp >> 6) & 0x3F)); out += (char)(0x80 | (cp & 0x3F)); }
          else { out += (char)(0xF0 | (cp >> 18)); out += (char)(0x80 | ((cp >> 12) & 0x3F)); out += (char)(0x80 | ((cp >> 6) & 0x3F)); out += (char)(0x80 | (cp & 0x3F)); }
          break;
        }
        default: fail("bad escape");
      }
    }
    return out;
  }
  JValue value() {
    if (++depth > 256) fail("nesting deeper than 256");
    ws();
    if (i >= s.size()) fail("unexpected end of input");
    JValue v;
    char c = s[i];
    if (c == '{') {
      v.kind = JValue::kObj;
      ++i;
      ws();
      if (i < s.size() && s[i] == '}') { ++i; --depth; return v; }
      while (true) {
        ws();
        std::string k = string();
        ws();
        if (i >= s.size() || s[i] != ':') fail("expected ':'");
        ++i;
        v.obj.emplace_back(k, value());
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == '}') { ++i; break; }
        fail("expected ',' or '}'");
      }
    } else if (c == '[') {
      v.kind = JValue::kArr;
      ++i;
      ws();
      if (i < s.size() && s[i] == ']') { ++i; --depth; return v; }
      while (true) {
        v.arr.push_back(value());
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == ']') { ++i; break; }
        fail("expected ',' or ']'");
      }
    } else if (c == '"') {
      v.kind = JValue::kStr;
      v.str = string();
    } else if (lit("true")) { v.kind = JValue::kBool; v.b = true; }
    else if (lit("false")) { v.kind = JValue::kBool; v.b = false; }
    else if (lit("null")) { v.kind = JValue::kNull; }
    else if (c == '-' || (c >= '0' && c <= '9')) {
      const char* start = s.c_str() + i;
      char* end = nullptr;
      v.kind = JValue::kNum;
      v.num = std::strtod(start, &end);
      if (end == start) fail("bad number");
      i += end - start;
    } else fail(std::string("unexpected character '") + c + "'");
    --depth;
    return v;
  }
};
}  // namespace

JValue parse_json(const std::string& text) {
  Parser p{text};
  JValue v = p.value();
  p.ws();
  if (p.i != text.size()) p.fail("trailing characters");
  return v;
}

void json_escape(std::string* out, const std::string& s) {
  *out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); *out += b; }
        else *out += (char)c;
    }
  }
  *out += '"';
}

std::string json_str(const std::string& s) { std::string o; json_escape(&o, s); return o; }

}  // namespace kiln
