// Bidirectional shape and dtype inference (spec 1.5): alternating forward and backward sweeps
// until no unknown dim is resolved any more.
#include <sstream>
#include <type_traits>

#include "kiln/graph.h"

namespace kiln {

namespace {

template <typename V>
struct Traits;
template <>
struct Traits<Shape> {
  static int unknown(const Shape& s) { return s.num_unknown(); }
  static std::string str(const Shape& s) { return s.str(); }
  static bool assign(Shape* dst, const Shape& src) { return shape_assign(dst, src); }
  static const char* word() { return "Shape"; }
};
template <>
struct Traits<DType> {
  static int unknown(const DType& t) { return t == DType::kUnknown; }
  static std::string str(const DType& t) { return dtype_name(t); }
  static bool assign(DType* dst, const DType& src) {
    if (src == DType::kUnknown) return true;
    if (*dst == DType::kUnknown) { *dst = src; return true; }
    return *dst == src;
  }
  static const char* word() { return "Type"; }
};

template <typename V>
void merge_or_throw(V* dst, const V& src, const std::string& context) {
  V before = *dst;
  if (!Traits<V>::assign(dst, src))
    throw KilnError(context + ": " + Traits<V>::word() + " inconsistent, Provided = " + Traits<V>::str(before) +
                    ", inferred " + (std::string(Traits<V>::word()) == "Shape" ? "shape" : "type") + " = " + Traits<V>::str(src));
}

template <typename V>
std::string describe_node(const IndexedGraph& g, uint32_t nid, const std::vector<V>& vals) {
  const NodePtr& n = g.nodes[nid];
  std::ostringstream os;
  os << "Error in operator " << n->name << " (" << n->op->name << ")";
  auto names = n->op->input_names(n->attrs);
  os << " with inputs";
  for (size_t i = 0; i < n->inputs.size(); ++i) {
    os << (i ? ", " : " ") << (i < names.size() ? names[i] : "?") << "=" << entry_name(n->inputs[i])
       << (std::is_same<V, DType>::value ? ":" : "")  // data(2,4) but data:float32
       << Traits<V>::str(vals[g.eid(n->inputs[i])]);
  }
  return os.str();
}

template <typename V, typename Fn>
void infer_pass(const IndexedGraph& g, std::vector<V>* vals, const std::vector<std::pair<uint32_t, uint32_t>>& same,
                Fn op_fn) {
  auto& v = *vals;
  const size_t nn = g.nodes.size();
  int last_unknown = -1;
  for (int iter = 0; iter < 64; ++iter) {
    bool fwd = iter % 2 == 0;
    for (size_t k = 0; k < nn; ++k) {
      uint32_t nid = fwd ? (uint32_t)k : (uint32_t)(nn - 1 - k);
      const NodePtr& n = g.nodes[nid];
      if (n->is_variable()) continue;
      if (n->op->is_backward) {
        // output j <-> input j of the forward node
        const NodePtr& f = n->control_deps.at(0);
        auto it = g.node_id.find(f.get());
        if (it == g.node_id.end()) continue;
        int nout = g.num_outputs(nid);
        for (int j = 0; j < nout && j < (int)f->inputs.size(); ++j) {
          uint32_t oe = g.row_ptr[nid] + j, fe = g.eid(f->inputs[j]);
          std::string ctx = "Error in operator " + n->name + " (" + n->op->name + "): gradient of input " + std::to_string(j) +
                            " (" + entry_name(f->inputs[j]) + ") must match the forward shape";
          merge_or_throw(&v[oe], v[fe], ctx);
          merge_or_throw(&v[fe], v[oe], ctx);
        }
        continue;
      }
      std::vector<V> in, out;
      for (auto& e : n->inputs) in.push_back(v[g.eid(e)]);
      int nout = g.num_outputs(nid);
      for (int j = 0; j < nout; ++j) out.push_back(v[g.row_ptr[nid] + j]);
      try {
        op_fn(n, &in, &out);
      } catch (const InferError& e) {
        auto names = e.input ? n->op->input_names(n->attrs) : n->op->output_names(n->attrs);
        std::string arg = (e.index >= 0 && e.index < (int)names.size()) ? names[e.index] : std::to_string(e.index);
        std::string ent;
        if (e.input && e.index >= 0 && e.index < (int)n->inputs.size()) ent = " (" + entry_name(n->inputs[e.index]) + ")";
        throw KilnError(describe_node(g, nid, v) + ": " + (e.input ? "input '" : "output '") + arg + "'" + ent + ": " + e.what());
      } catch (const KilnError& e) {
        throw KilnError(describe_node(g, nid, v) + ": " + e.what());
      }
      for (size_t i = 0; i < in.size(); ++i) {
        uint32_t ie = g.eid(n->inputs[i]);
        merge_or_throw(&v[ie], in[i], describe_node(g, nid, v) + ": input " + std::to_string(i));
      }
      for (int j = 0; j < nout; ++j) merge_or_throw(&v[g.row_ptr[nid] + j], out[j], describe_node(g, nid, v) + ": output " + std::to_string(j));
    }
    for (auto& p : same) {
      merge_or_throw(&v[p.first], v[p.second], "head gradient " + std::to_string(p.first));
      merge_or_throw(&v[p.second], v[p.first], "head gradient " + std::to_string(p.first));
    }
    int unknown = 0;
    for (auto& x : v) unknown += Traits<V>::unknown(x);
    if (unknown == 0) break;
    if (iter > 0 && unknown == last_unknown && iter % 2 == 1) break;  // a full fwd+bwd round made no progress
    last_unknown = unknown;
  }
}

}  // namespace

void infer_shapes(const IndexedGraph& g, std::vector<Shape>* shapes, const std::vector<std::pair<uint32_t, uint32_t>>& same) {
  infer_pass<Shape>(g, shapes, same, [](const NodePtr& n, std::vector<Shape>* in, std::vector<Shape>* out) {
    if (!n->op->infer_shape) throw KilnError("operator " + n->op->name + " has no shape function");
    n->op->infer_shape(n->attrs, in, out);
  });
}

void infer_types(const IndexedGraph& g, std::vector<DType>* types, const std::vector<std::pair<uint32_t, uint32_t>>& same) {
  infer_pass<DType>(g, types, same, [](const NodePtr& n, std::vector<DType>* in, std::vector<DType>* out) {
    if (n->op->infer_type) n->op->infer_type(n->attrs, in, out);
    else infer_same_type(n->attrs, in, out);
  });
}

}  // namespace kiln
