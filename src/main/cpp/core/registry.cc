// The operator registry, parameter parsing, and the helpers op definitions use.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <sstream>

#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/low_precision.h"
#ifdef KILN_CUDA
#include "kiln/cuda_api.h"
#endif

namespace kiln {

// ---- threads ---------------------------------------------------------------------------------

namespace {
std::atomic<int> g_threads{0};
}
int num_threads() {
  int n = g_threads.load(std::memory_order_relaxed);
  if (n <= 0) {
    n = std::max(1, omp_get_max_threads());
    g_threads.store(n);
  }
  return n;
}
void set_num_threads(int n) {
  KILN_CHECK(n >= 1 && n <= 1024, "thread count must be in [1, 1024], got " + std::to_string(n));
  g_threads.store(n);
}

// ---- registry --------------------------------------------------------------------------------

OpRegistry& OpRegistry::get() {
  static OpRegistry* r = [] {
    // OpenBLAS runs single-threaded inside Kiln's OpenMP workers (core/blas.cc)
    openblas_set_num_threads(1);
    auto* reg = new OpRegistry();
    register_internal_ops(*reg);
    register_nn_ops(*reg);
    register_elemwise_ops(*reg);
    register_shape_ops(*reg);
    register_optimizer_ops(*reg);
    register_conv_ops(*reg);
    register_pool_ops(*reg);
    register_norm_ops(*reg);
    register_index_ops(*reg);
    register_seq_ops(*reg);
    register_contrib_ops(*reg);
    register_random_ops(*reg);
#ifdef KILN_CUDA
    cuda::register_gpu_kernels(*reg);
#endif
    install_low_precision_wrappers(*reg);  // after every kernel is set
    return reg;
  }();
  return *r;
}

OpDef& OpRegistry::add(OpDef def) {
  if (by_name_.count(def.name)) throw KilnError("operator " + def.name + " registered twice");
  auto p = std::make_unique<OpDef>(std::move(def));
  OpDef* raw = p.get();
  by_name_[raw->name] = raw;
  for (auto& a : raw->aliases) {
    if (by_name_.count(a)) throw KilnError("alias " + a + " of " + raw->name + " already registered");
    by_name_[a] = raw;
  }
  ops_[raw->name] = std::move(p);
  return *raw;
}

const OpDef* OpRegistry::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const OpDef& OpRegistry::at(const std::string& name) const {
  const OpDef* d = find(name);
  if (!d) throw KilnError("operator " + name + " is not supported");
  return *d;
}

OpDef* OpRegistry::find_mutable(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const OpDef*> OpRegistry::all() const {
  std::vector<const OpDef*> v;
  for (auto& kv : ops_) v.push_back(kv.second.get());
  return v;
}

// ---- parameters ------------------------------------------------------------------------------

const ParamValue& Attrs::get(const std::string& name) const {
  if (op) {
    for (size_t i = 0; i < op->params.size() && i < values.size(); ++i)
      if (op->params[i].name == name) return values[i];
  }
  throw KilnError("internal: operator " + std::string(op ? op->name : "?") + " has no parameter '" + name + "'");
}

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r"), e = s.find_last_not_of(" \t\n\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

bool parse_int(const std::string& s, int64_t* out) {
  std::string t = trim(s);
  if (t.empty()) return false;
  // accept "3L" (python 2 longs in old files) and "3.0"
  if (t.back() == 'L') t.pop_back();
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno == 0 && end && *end == 0) { *out = v; return true; }
  double d = std::strtod(t.c_str(), &end);
  if (end && *end == 0 && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18) { *out = (int64_t)d; return true; }
  return false;
}

}  // namespace

bool parse_shape_tuple(const std::string& s, std::vector<int64_t>* out) {
  std::string t = trim(s);
  out->clear();
  if (t.empty()) return false;
  if (t.front() == '(' || t.front() == '[') {
    char close = t.front() == '(' ? ')' : ']';
    if (t.back() != close) return false;
    t = t.substr(1, t.size() - 2);
  }
  std::stringstream ss(t);
  std::string item;
  while (std::getline(ss, item, ',')) {
    std::string it = trim(item);
    if (it.empty()) continue;  // "(2,)"
    if (it == "None") { out->push_back(-1); continue; }
    int64_t v;
    if (!parse_int(it, &v)) return false;
    out->push_back(v);
  }
  return true;
}

namespace {

std::string describe_params(const OpDef& op) {
  std::string s;
  for (auto& p : op.params) s += (s.empty() ? "" : ", ") + p.name;
  return s.empty() ? "none" : s;
}

}  // namespace

Attrs parse_attrs(const OpDef& op, const std::map<std::string, std::string>& dict) {
  Attrs a;
  a.dict = dict;
  a.op = &op;
  a.values.resize(op.params.size());
  for (auto& kv : dict) {
    const std::string& k = kv.first;
    if (k.size() >= 4 && k.compare(0, 2, "__") == 0 && k.compare(k.size() - 2, 2, "__") == 0) continue;
    bool known = false;
    for (auto& p : op.params) known |= p.name == k;
    if (!known)
      throw KilnError("operator " + op.name + ": unknown parameter '" + k + "' (value '" + kv.second +
                      "'); valid parameters: " + describe_params(op));
  }
  for (size_t i = 0; i < op.params.size(); ++i) {
    const ParamDef& p = op.params[i];
    ParamValue& v = a.values[i];
    auto it = dict.find(p.name);
    std::string text;
    if (it != dict.end()) text = it->second;
    else if (p.default_value.empty())
      throw KilnError("operator " + op.name + ": required parameter '" + p.name + "' is missing (" + p.description + ")");
    else text = p.default_value;
    if (trim(text) == "None" && p.type != ParamType::kString) {
      // a boolean None means its default (docs/mxnet-differences.md; MXNet's parser refuses it);
      // other None values leave the parameter unset (MXNet's optional<>: axis=None flattens, ...)
      if (p.type != ParamType::kBool || p.default_value.empty() || trim(p.default_value) == "None") {
        v.str = text;
        v.set = false;
        continue;
      }
      text = p.default_value;
    }
    v.str = text;
    v.set = true;
    auto bad = [&](const std::string& why) {
      return KilnError("operator " + op.name + ": invalid value '" + text + "' for parameter '" + p.name + "': " + why);
    };
    switch (p.type) {
      case ParamType::kInt: {
        int64_t x;
        if (!parse_int(text, &x)) throw bad("expected an integer");
        if (x < p.lower || x > p.upper)
          throw bad("must be in [" + std::to_string((long long)p.lower) + ", " + std::to_string((long long)p.upper) + "]");
        v.num = (double)x;
        break;
      }
      case ParamType::kFloat: {
        std::string t = trim(text);
        char* end = nullptr;
        double x = std::strtod(t.c_str(), &end);
        if (t.empty() || !end || *end != 0) throw bad("expected a number");
        if (std::isnan(x)) throw bad("NaN is not allowed");
        if (x < p.lower || x > p.upper) {
          std::ostringstream os;
          os << "must be in [" << p.lower << ", " << p.upper << "]";
          throw bad(os.str());
        }
        v.num = x;
        break;
      }
      case ParamType::kBool: {
        std::string t = trim(text);
        if (t == "True" || t == "true" || t == "1") v.num = 1;
        else if (t == "False" || t == "false" || t == "0") v.num = 0;
        else throw bad("expected True or False");
        break;
      }
      case ParamType::kEnum: {
        std::string t = trim(text);
        // MXNet writes enum strings bare; old files sometimes quote them
        if (t.size() >= 2 && (t.front() == '\'' || t.front() == '"') && t.back() == t.front()) t = t.substr(1, t.size() - 2);
        if (std::find(p.choices.begin(), p.choices.end(), t) == p.choices.end()) {
          std::string c;
          for (auto& ch : p.choices) c += (c.empty() ? "" : ", ") + ch;
          throw bad("expected one of {" + c + "}");
        }
        v.str = t;
        break;
      }
      case ParamType::kShape: {
        if (!parse_shape_tuple(text, &v.tuple)) throw bad("expected a tuple of integers such as (2, 2)");
        break;
      }
      case ParamType::kString:
        break;
    }
  }
  return a;
}

// ---- graph helpers ---------------------------------------------------------------------------

NodePtr make_node(const std::string& op, const std::string& name, const std::map<std::string, std::string>& attrs,
                  const std::vector<NodeEntry>& inputs) {
  const OpDef& def = OpRegistry::get().at(op);
  auto n = std::make_shared<Node>();
  n->op = &def;
  n->name = name;
  n->attrs = parse_attrs(def, attrs);
  n->inputs = inputs;
  return n;
}

std::vector<NodeEntry> make_backward(const std::string& op, const NodePtr& fwd, const std::vector<NodeEntry>& inputs) {
  const OpDef& def = OpRegistry::get().at(op);
  auto n = std::make_shared<Node>();
  n->op = &def;
  n->name = fwd->name + "_backward";
  n->attrs = fwd->attrs;  // parsed against the forward op: backward kernels read the same params
  n->inputs = inputs;
  n->control_deps.push_back(fwd);
  int nout = def.num_outputs(n->attrs);
  std::vector<NodeEntry> out;
  for (int i = 0; i < nout; ++i) out.push_back(NodeEntry{n, (uint32_t)i});
  return out;
}

NodeEntry no_gradient() {
  static NodePtr n = [] {
    auto x = std::make_shared<Node>();
    x->op = &OpRegistry::get().at("_NoGradient");
    x->name = "_NoGradient";
    x->attrs.op = x->op;
    return x;
  }();
  return NodeEntry{n, 0};
}

bool is_no_gradient(const NodeEntry& e) { return e.node && e.node->op && e.node->op->name == "_NoGradient"; }

NodeEntry zeros_like(const NodeEntry& e, const std::string& name) {
  return NodeEntry{make_node("zeros_like", name, {}, {e}), 0};
}

bool is_zero_entry(const NodeEntry& e) {
  if (!e.node || !e.node->op) return false;
  const std::string& n = e.node->op->name;
  return n == "zeros_like" || n == "_zeros" || n == "_zeros_without_dtype";
}

// ---- shape helpers ---------------------------------------------------------------------------

bool shape_assign(Shape* dst, const Shape& src) {
  if (!src.rank_known()) return true;
  if (!dst->rank_known()) { *dst = src; return true; }
  if (dst->ndim() != src.ndim()) return false;
  for (int i = 0; i < src.ndim(); ++i) {
    if (src[i] < 0) continue;
    if ((*dst)[i] < 0) (*dst)[i] = src[i];
    else if ((*dst)[i] != src[i]) return false;
  }
  return true;
}

void assign_in(std::vector<Shape>* in, int i, const Shape& s) {
  Shape cur = (*in)[i];
  if (!shape_assign(&(*in)[i], s))
    throw InferError(true, i, "Shape inconsistent, Provided = " + cur.str() + ", inferred shape = " + s.str());
}

void assign_out(std::vector<Shape>* out, int i, const Shape& s) {
  Shape cur = (*out)[i];
  if (!shape_assign(&(*out)[i], s))
    throw InferError(false, i, "Shape inconsistent, Provided = " + cur.str() + ", inferred shape = " + s.str());
}

void infer_same_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  Shape merged;
  auto merge = [&](const Shape& s, bool is_in, int idx) {
    Shape before = merged;
    if (!shape_assign(&merged, s))
      throw InferError(is_in, idx, "Shape inconsistent, Provided = " + s.str() + ", inferred shape = " + before.str());
  };
  for (size_t i = 0; i < in->size(); ++i) merge((*in)[i], true, (int)i);
  for (size_t i = 0; i < out->size(); ++i) merge((*out)[i], false, (int)i);
  for (size_t i = 0; i < in->size(); ++i) assign_in(in, (int)i, merged);
  for (size_t i = 0; i < out->size(); ++i) assign_out(out, (int)i, merged);
}

void infer_same_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  DType t = DType::kUnknown;
  for (auto x : *out) if (x != DType::kUnknown) { t = x; break; }
  if (t == DType::kUnknown)
    for (auto x : *in) if (x != DType::kUnknown) { t = x; break; }
  if (t == DType::kUnknown) return;
  for (size_t i = 0; i < in->size(); ++i) {
    if ((*in)[i] != DType::kUnknown && (*in)[i] != t)
      throw InferError(true, (int)i, std::string("Type inconsistent, Provided = ") + dtype_name((*in)[i]) + ", inferred type = " + dtype_name(t));
    (*in)[i] = t;
  }
  for (size_t i = 0; i < out->size(); ++i) {
    if ((*out)[i] != DType::kUnknown && (*out)[i] != t)
      throw InferError(false, (int)i, std::string("Type inconsistent, Provided = ") + dtype_name((*out)[i]) + ", inferred type = " + dtype_name(t));
    (*out)[i] = t;
  }
}

}  // namespace kiln
