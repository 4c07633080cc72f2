// A bounded, seeded fuzzer of the imperative operator entry (kiln_op_invoke), run by the sanitizer
// driver under AddressSanitizer and UndefinedBehaviorSanitizer: for every registered operator, a
// number of calls with random attributes (defaults, boundary integers, NaN/huge floats, odd tuples,
// unknown enum values) and random inputs (ranks 0 to 4, empty dimensions, every dtype, NaN and
// out-of-range values). Each call must return 0 or -1 with a message; a memory error or undefined
// behaviour stops the driver with the sanitizer's report. Shapes are inferred first
// (kiln_infer of the one-op graph) and calls whose outputs would exceed kMaxOutElems are not run, so
// the fuzzer never asks for gigabytes on purpose. Each call that runs is run again in a FusedUpdate
// plan with some numeric parameters dynamic, at random values, and bound to an executor for a
// forward and backward pass.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kiln/c_api.h"
#include "kiln/json.h"
#include "kiln/tensor.h"

namespace {

constexpr int64_t kMaxOutElems = 1 << 20;

struct Fuzz {
  std::mt19937_64 rng;
  int* checks;
  int* failures;
  int ran = 0, refused = 0, skipped = 0;
  std::string slowest;
  double slowest_ms = 0;

  explicit Fuzz(uint64_t seed, int* c, int* f) : rng(seed), checks(c), failures(f) {}

  int pick(int n) { return (int)(rng() % (uint64_t)n); }
  bool coin(int one_in) { return pick(one_in) == 0; }

  void fail(const std::string& what) {
    ++*failures;
    std::fprintf(stderr, "FAIL: op fuzz: %s\n", what.c_str());
  }

  std::string number(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", v);
    return b;
  }

  std::string random_int() {
    static const int64_t v[] = {-2147483648LL, -1000, -3, -2, -1, 0, 0, 1, 1, 1, 2, 2, 3, 4, 5, 7, 64, 1 << 20, 2147483647LL};
    return std::to_string(v[pick((int)(sizeof v / sizeof v[0]))]);
  }

  std::string random_float() {
    static const double v[] = {0, 0, 1, 1, 0.5, -0.5, -1, 2, 3, 1e-7, 0.9, 0.999, 1e30, -1e30, NAN, INFINITY, -INFINITY};
    return number(v[pick((int)(sizeof v / sizeof v[0]))]);
  }

  std::string random_tuple() {
    static const char* odd[] = {"()", "(0,)", "(-1,)", "(None,)", "(1, 1, 1, 1, 1, 1, 1, 1, 1)", "(2, -3)", "x", "(1,,2)",
                                "(2147483647, 2)", "[1, 2]", "(None, None)", "(1, None, -1)"};
    if (coin(4)) return odd[pick((int)(sizeof odd / sizeof odd[0]))];
    const int n = pick(4);
    std::string t = "(";
    for (int i = 0; i < n; ++i) t += (i ? ", " : "") + std::to_string(pick(5) - (coin(6) ? 2 : 0));
    return t + (n == 1 ? ",)" : ")");
  }

  /// A value for parameter p (its JSON description from kiln_op_info).
  std::string random_value(const kiln::JValue& p) {
    const std::string type = p.get("type") ? p.get("type")->str : "";
    const kiln::JValue* choices = p.get("choices");
    if (choices && choices->kind == kiln::JValue::kArr && !choices->arr.empty() && !coin(8))
      return choices->arr[pick((int)choices->arr.size())].str;
    if (type == "int") return random_int();
    if (type == "float") return random_float();
    if (type == "bool") return coin(2) ? "True" : (coin(8) ? "maybe" : "False");
    if (type == "shape" || type.find("tuple") != std::string::npos) return random_tuple();
    static const char* s[] = {"", "abc", "None", "float32", "int64", "(1,2)", "-1"};
    return s[pick((int)(sizeof s / sizeof s[0]))];
  }

  std::string attrs_json(const std::vector<std::pair<std::string, std::string>>& attrs) {
    std::string j = "{";
    for (size_t i = 0; i < attrs.size(); ++i)
      j += (i ? "," : "") + kiln::json_str(attrs[i].first) + ":" + kiln::json_str(attrs[i].second);
    return j + "}";
  }

  struct Input {
    std::vector<int64_t> shape;
    int dtype;
  };

  Input random_input() {
    static const int dtypes[] = {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 12};  // float32 mostly; every MXNet type
    Input in;
    const int rank = pick(5);
    for (int d = 0; d < rank; ++d) in.shape.push_back(coin(10) ? 0 : 1 + pick(coin(3) ? 2 : 5));
    in.dtype = dtypes[pick((int)(sizeof dtypes / sizeof dtypes[0]))];
    return in;
  }

  static const char* dtype_name(int t) { return kiln::dtype_name((kiln::DType)t); }  // MXNet's type flags

  /// The output sizes kiln_infer gives for the one-op graph; false when inference fails or leaves
  /// something unknown (the call then runs, and must fail the same way or succeed).
  /// The symbol JSON of one call of op on variables in0..in{nin-1} (its first output as the head).
  static std::string graph_json(const std::string& op, const std::string& attrs, size_t nin) {
    std::string nodes, args, inputs;
    for (size_t i = 0; i < nin; ++i) {
      nodes += "{\"op\":\"null\",\"name\":\"in" + std::to_string(i) + "\",\"inputs\":[]},";
      args += (i ? "," : "") + std::to_string(i);
      inputs += (i ? "," : "") + ("[" + std::to_string(i) + ",0,0]");
    }
    return "{\"nodes\":[" + nodes + "{\"op\":" + kiln::json_str(op) + ",\"name\":\"f\",\"attrs\":" + attrs +
           ",\"inputs\":[" + inputs + "]}],\"arg_nodes\":[" + args + "],\"heads\":[[" + std::to_string(nin) +
           ",0,0]],\"attrs\":{\"mxnet_version\":[\"int\",10901]}}";
  }

  bool output_elems(const std::string& op, const std::string& attrs, const std::vector<Input>& ins, int64_t* total) {
    std::string shapes, types;
    for (size_t i = 0; i < ins.size(); ++i) {
      const std::string name = "in" + std::to_string(i);
      std::string dims;
      for (size_t d = 0; d < ins[i].shape.size(); ++d) dims += (d ? "," : "") + std::to_string(ins[i].shape[d]);
      shapes += (i ? "," : "") + kiln::json_str(name) + ":[" + dims + "]";
      types += (i ? "," : "") + kiln::json_str(name) + ":" + kiln::json_str(dtype_name(ins[i].dtype));
    }
    const std::string graph = graph_json(op, attrs, ins.size());
    const std::string known = "{\"shapes\":{" + shapes + "},\"types\":{" + types + "}}";
    if (kiln_infer(graph.c_str(), known.c_str()) != 0) return false;
    kiln::JValue r;
    try {
      r = kiln::parse_json(kiln_last_string());
    } catch (...) {
      return false;
    }
    const kiln::JValue* outs = r.get("out_shapes");
    if (!outs || outs->kind != kiln::JValue::kArr) return false;
    *total = 0;
    for (const kiln::JValue& s : outs->arr) {
      if (s.kind != kiln::JValue::kArr) return false;
      double n = 1;
      for (const kiln::JValue& d : s.arr) {
        if (d.kind != kiln::JValue::kNum || d.num < 0) return false;
        n *= d.num;
      }
      if (n > (double)kMaxOutElems) {
        *total = kMaxOutElems + 1;
        return true;
      }
      *total += (int64_t)n;
    }
    return true;
  }

  /// An input array: random values (a few NaN, infinite or out of range for integer types)
  /// written as float64 in its shape, then cast by the Cast operator into its type. 0 on failure.
  int64_t make_input(const Input& in) {
    int64_t n = 1;
    for (int64_t d : in.shape) n *= d;
    std::vector<double> v((size_t)n);
    static const double special[] = {NAN, INFINITY, -INFINITY, 1e30, -7, 300, 255.5, -0.0};
    for (auto& x : v) x = coin(12) ? special[pick(8)] : (coin(2) ? (double)(pick(7) - 2) : (double)(rng() % 2001) / 500.0 - 2);
    int64_t wide = 0;
    if (kiln_nd_create(1, 0, 1, (int)in.shape.size(), in.shape.data(), &wide) != 0) return 0;
    int64_t h = 0;
    if (kiln_nd_write(wide, v.data(), n * 8) == 0) {
      const std::string a = std::string("{\"dtype\":\"") + dtype_name(in.dtype) + "\"}";
      int nout = 0;
      if (kiln_op_invoke("Cast", a.c_str(), 1, &wide, 1, &h, &nout) != 0) h = 0;
    }
    kiln_nd_free(wide);
    return h;
  }

  /// The call that just ran, again as a one-op graph bound to an executor (float inputs get
  /// gradients, write or add) and run forward and backward with a head gradient of ones: the
  /// backward kernels under the same random attributes. Ops with auxiliary states are left out.
  void backward_call(const std::string& op, const std::string& aj, const kiln::JValue& info, const std::vector<int64_t>& in) {
    const kiln::JValue* mutate = info.get("mutate");
    if (mutate && mutate->kind == kiln::JValue::kArr && !mutate->arr.empty()) return;
    std::vector<int64_t> grads(in.size(), 0);
    std::vector<int> reqs(in.size(), 0);
    for (size_t i = 0; i < in.size(); ++i) {
      int64_t meta[4 + 32];
      if (kiln_nd_info(in[i], meta, 36) != 0) return;
      const int dtype = (int)meta[0];
      if (dtype != 0 && dtype != 1 && dtype != 2) continue;  // float32, float64, float16
      std::vector<int64_t> shape(meta + 4, meta + 4 + meta[3]);
      if (kiln_nd_create(1, 0, dtype, (int)shape.size(), shape.data(), &grads[i]) != 0) {
        grads[i] = 0;
        continue;
      }
      reqs[i] = coin(4) ? 3 : 1;
    }
    const std::string graph = graph_json(op, aj, in.size());
    int64_t ex = 0;
    ++*checks;
    const int rc = kiln_exec_bind(graph.c_str(), 1, 0, (int)in.size(), in.data(), grads.data(), reqs.data(), 0, nullptr,
                                  "{}", &ex);
    if (rc == 0) {
      ++*checks;
      int r = kiln_exec_forward(ex, 1);
      int64_t outs[8] = {0};
      int nout = 0;
      if (r == 0 && kiln_exec_outputs(ex, 8, outs, &nout) == 0 && nout <= 8) {
        std::vector<int64_t> heads;
        for (int j = 0; j < nout; ++j) {
          int64_t ones = 0;
          int n1 = 0;
          if (kiln_op_invoke("ones_like", "{}", 1, &outs[j], 1, &ones, &n1) == 0) heads.push_back(ones);
          kiln_nd_free(outs[j]);
        }
        if ((int)heads.size() == nout) {
          ++*checks;
          r = kiln_exec_backward(ex, (int)heads.size(), heads.data());
          if (r != 0 && (r != -1 || kiln_last_error()[0] == '\0'))
            fail("backward " + op + " " + aj + ": kiln_exec_backward returned " + std::to_string(r));
        }
        for (int64_t x : heads) kiln_nd_free(x);
      } else if (r != 0 && (r != -1 || kiln_last_error()[0] == '\0')) {
        fail("backward " + op + " " + aj + ": kiln_exec_forward returned " + std::to_string(r));
      }
      if (kiln_exec_free(ex) != 0) fail("kiln_exec_free failed: " + std::string(kiln_last_error()));
    } else if (rc != -1 || kiln_last_error()[0] == '\0') {
      fail("backward " + op + " " + aj + ": kiln_exec_bind returned " + std::to_string(rc));
    }
    for (int64_t g : grads)
      if (g != 0) kiln_nd_free(g);
  }

  /// The call that just ran, again through a FusedUpdate plan with up to two of its numeric
  /// parameters made dynamic and run with random values: a value that would change the planned
  /// shapes must be refused (kiln_fused_run), not written past an output.
  void fused_call(const std::string& op, const std::vector<std::pair<std::string, std::string>>& attrs,
                  const kiln::JValue* params, const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
    if (!params || params->kind != kiln::JValue::kArr || out.empty()) return;
    std::vector<const kiln::JValue*> numeric;
    for (const kiln::JValue& p : params->arr) {
      const std::string type = p.get("type") ? p.get("type")->str : "";
      const std::string name = p.get("name") ? p.get("name")->str : "";
      if ((type == "int" || type == "float" || type == "bool") && name != "num_args") numeric.push_back(&p);
    }
    if (numeric.empty()) return;
    std::vector<std::string> dyn;
    std::vector<const kiln::JValue*> dyn_params;
    for (int k = 0, n = 1 + pick(2); k < n; ++k) {
      const kiln::JValue* p = numeric[pick((int)numeric.size())];
      const std::string& name = p->get("name")->str;
      if (std::find(dyn.begin(), dyn.end(), name) != dyn.end()) continue;
      dyn.push_back(name);
      dyn_params.push_back(p);
    }
    std::vector<std::pair<std::string, std::string>> st;
    for (const auto& a : attrs)
      if (std::find(dyn.begin(), dyn.end(), a.first) == dyn.end()) st.push_back(a);
    std::string keys = "[";
    for (size_t k = 0; k < dyn.size(); ++k) keys += (k ? "," : "") + kiln::json_str(dyn[k]);
    keys += "]";
    int64_t plan = 0;
    if (kiln_fused_create(&plan) != 0) return;
    int index = 0;
    ++*checks;
    const int rc = kiln_fused_add(plan, op.c_str(), attrs_json(st).c_str(), keys.c_str(), (int)in.size(), in.data(),
                                  (int)out.size(), out.data(), &index);
    if (rc == 0) {
      for (int r = 0; r < 3; ++r) {
        std::vector<double> v;
        for (const kiln::JValue* p : dyn_params) {
          const std::string t = p->get("type")->str;
          const std::string x = t == "int" ? random_int() : t == "float" ? random_float() : std::string(coin(2) ? "1" : "0");
          v.push_back(std::strtod(x.c_str(), nullptr));
        }
        ++*checks;
        const int rr = kiln_fused_run(plan, (int)v.size(), v.data());
        if (rr != 0 && (rr != -1 || kiln_last_error()[0] == '\0'))
          fail("fused " + op + " " + keys + ": kiln_fused_run returned " + std::to_string(rr));
      }
    } else if (rc != -1 || kiln_last_error()[0] == '\0') {
      fail("fused " + op + ": kiln_fused_add returned " + std::to_string(rc));
    }
    if (kiln_fused_free(plan) != 0) fail("kiln_fused_free failed: " + std::string(kiln_last_error()));
  }

  void one_call(const std::string& op) {
    // attributes: the op's parameters (variable-arity ops report them for num_args = 1..3)
    std::vector<std::pair<std::string, std::string>> attrs;
    if (kiln_op_info(op.c_str(), "{}") != 0) {
      attrs.push_back({"num_args", std::to_string(1 + pick(3))});
      if (kiln_op_info(op.c_str(), attrs_json(attrs).c_str()) != 0) return;
    }
    kiln::JValue info = kiln::parse_json(kiln_last_string());
    const kiln::JValue* params = info.get("params");
    if (params && params->kind == kiln::JValue::kArr)
      for (const kiln::JValue& p : params->arr) {
        const std::string name = p.get("name") ? p.get("name")->str : "";
        if (name.empty() || name == "num_args") continue;
        const bool required = p.get("default") && p.get("default")->str.empty();
        if (required || coin(3)) attrs.push_back({name, random_value(p)});
      }
    if (coin(30)) attrs.push_back({"no_such_param", "1"});
    const std::string aj = attrs_json(attrs);
    int nin = 0;
    if (kiln_op_info(op.c_str(), aj.c_str()) == 0) {
      kiln::JValue i2 = kiln::parse_json(kiln_last_string());
      const kiln::JValue* names = i2.get("inputs");
      if (names && names->kind == kiln::JValue::kArr) nin = (int)names->arr.size();
    }
    if (coin(15)) nin = pick(4);
    // inputs: mostly one shape shared by all (so elementwise ops get past their checks), some random
    std::vector<Input> ins;
    const Input base = random_input();
    for (int i = 0; i < nin; ++i) ins.push_back(coin(3) ? random_input() : base);
    int64_t total = 0;
    if (output_elems(op, aj, ins, &total) && total > kMaxOutElems) {
      ++skipped;
      return;
    }
    std::vector<int64_t> h;
    for (const Input& in : ins) {
      const int64_t x = make_input(in);
      if (x == 0) {
        for (int64_t y : h) kiln_nd_free(y);
        return;
      }
      h.push_back(x);
    }
    std::vector<int64_t> outs(8, 0);
    int nout = 0;
    const auto t0 = std::chrono::steady_clock::now();
    int rc = kiln_op_invoke(op.c_str(), aj.c_str(), (int)h.size(), h.data(), (int)outs.size(), outs.data(), &nout);
    if (rc == 0 && nout > (int)outs.size()) {  // more outputs than slots: nothing ran, again with enough
      outs.assign((size_t)nout, 0);
      rc = kiln_op_invoke(op.c_str(), aj.c_str(), (int)h.size(), h.data(), (int)outs.size(), outs.data(), &nout);
      if (rc == 0 && nout > (int)outs.size()) fail(op + " " + aj + ": asked for " + std::to_string(nout) + " slots twice");
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++*checks;
    if (rc == 0) {
      ++ran;
      fused_call(op, attrs, params, h, std::vector<int64_t>(outs.begin(), outs.begin() + nout));
      backward_call(op, aj, info, h);
      for (int j = 0; j < nout; ++j)
        if (outs[j] != 0) kiln_nd_free(outs[j]);
    } else if (rc == -1 && kiln_last_error()[0] != '\0') {
      ++refused;
    } else {
      fail(op + " " + aj + ": returned " + std::to_string(rc) + " with message '" + kiln_last_error() + "'");
    }
    if (ms > slowest_ms) {
      slowest_ms = ms;
      slowest = op + " " + aj;
    }
    for (int64_t y : h) kiln_nd_free(y);
  }
};

}  // namespace

/// Runs `per_op` random calls of every registered operator; counts each call in *checks and each
/// call that breaks the C boundary's contract in *failures.
void fuzz_operators(uint64_t seed, int per_op, int* checks, int* failures) {
  Fuzz f(seed, checks, failures);
  if (kiln_op_list() != 0) {
    f.fail("kiln_op_list failed");
    return;
  }
  const kiln::JValue ops = kiln::parse_json(kiln_last_string());
  int nops = 0;
  for (const kiln::JValue& op : ops.arr) {
    ++nops;
    for (int i = 0; i < per_op; ++i) f.one_call(op.str);
  }
  std::printf("op fuzz: %d operators x %d calls: %d ran, %d refused with a message, %d skipped as too large; slowest "
              "%.1f ms (%s)\n",
              nops, per_op, f.ran, f.refused, f.skipped, f.slowest_ms, f.slowest.c_str());
}
