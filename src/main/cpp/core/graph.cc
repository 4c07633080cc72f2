// Graph loading, traversal, indexing and the gradient pass.
#include "kiln/graph.h"

#include <algorithm>
#include <unordered_set>

namespace kiln {

// ---- loading ---------------------------------------------------------------------------------

namespace {
void merge_attrs(const JValue* v, std::map<std::string, std::string>* out, const std::string& what) {
  if (!v || v->is_null()) return;
  if (v->kind != JValue::kObj) throw KilnError(what + ": attributes must be an object");
  for (auto& kv : v->obj) {
    if (kv.second.kind == JValue::kStr) (*out)[kv.first] = kv.second.str;
    else if (kv.second.kind == JValue::kNum) {
      char b[64];
      snprintf(b, sizeof b, "%.17g", kv.second.num);
      (*out)[kv.first] = b;
    } else throw KilnError(what + ": attribute '" + kv.first + "' must be a string");
  }
}

NodeEntry parse_entry(const JValue& v, const std::vector<NodePtr>& nodes, size_t limit, const std::string& what) {
  if (v.kind != JValue::kArr || v.arr.size() < 2) throw KilnError(what + ": an input entry must be [node, index, version]");
  int64_t nid = v.arr[0].as_int(what), idx = v.arr[1].as_int(what);
  if (nid < 0 || (size_t)nid >= limit)
    throw KilnError(what + ": input refers to node " + std::to_string(nid) + ", which is not an earlier node (graphs must be acyclic and topologically sorted)");
  const NodePtr& n = nodes[nid];
  int nout = n->is_variable() ? 1 : n->op->num_outputs(n->attrs);
  if (idx < 0 || idx >= nout)
    throw KilnError(what + ": output index " + std::to_string(idx) + " of node '" + n->name + "' is out of range (it has " + std::to_string(nout) + ")");
  return NodeEntry{n, (uint32_t)idx};
}
}  // namespace

Graph load_graph(const std::string& text) {
  JValue root = parse_json(text);
  if (root.kind != JValue::kObj) throw KilnError("symbol JSON: the top level must be an object");
  const JValue& jnodes = root.at("nodes", "symbol JSON");
  if (jnodes.kind != JValue::kArr) throw KilnError("symbol JSON: 'nodes' must be an array");
  if (jnodes.arr.size() > 10000000) throw KilnError("symbol JSON: too many nodes");
  std::vector<NodePtr> nodes;
  nodes.reserve(jnodes.arr.size());
  for (size_t i = 0; i < jnodes.arr.size(); ++i) {
    const JValue& jn = jnodes.arr[i];
    std::string what = "symbol JSON node " + std::to_string(i);
    if (jn.kind != JValue::kObj) throw KilnError(what + ": must be an object");
    auto n = std::make_shared<Node>();
    const std::string& op = jn.at("op", what).as_str(what + " op");
    n->name = jn.at("name", what).as_str(what + " name");
    what += " ('" + n->name + "')";
    std::map<std::string, std::string> dict;
    merge_attrs(jn.get("param"), &dict, what);
    merge_attrs(jn.get("attr"), &dict, what);
    merge_attrs(jn.get("attrs"), &dict, what);
    if (op == "null") {
      n->attrs.dict = dict;
    } else {
      const OpDef& def = OpRegistry::get().at(op);
      if (def.is_backward) throw KilnError(what + ": backward operator " + op + " cannot appear in a symbol");
      try {
        n->attrs = parse_attrs(def, dict);
      } catch (const KilnError& e) {
        throw KilnError(what + ": " + e.what());
      }
      n->op = &def;
    }
    const JValue* ins = jn.get("inputs");
    if (ins && ins->kind == JValue::kArr)
      for (auto& e : ins->arr) n->inputs.push_back(parse_entry(e, nodes, i, what));
    if (!n->is_variable()) {
      int want = n->op->num_inputs(n->attrs);
      if ((int)n->inputs.size() != want) {
        std::string names;
        for (auto& s : n->op->input_names(n->attrs)) names += (names.empty() ? "" : ", ") + s;
        throw KilnError(what + ": operator " + n->op->name + " expects " + std::to_string(want) + " inputs (" + names +
                        ") but the node has " + std::to_string(n->inputs.size()));
      }
    } else if (!n->inputs.empty()) {
      throw KilnError(what + ": a variable cannot have inputs");
    }
    const JValue* cds = jn.get("control_deps");
    if (cds && cds->kind == JValue::kArr)
      for (auto& c : cds->arr) {
        int64_t cid = c.as_int(what);
        if (cid < 0 || (size_t)cid >= i) throw KilnError(what + ": control dependency on a later node");
        n->control_deps.push_back(nodes[cid]);
      }
    nodes.push_back(n);
  }
  Graph g;
  const JValue& heads = root.at("heads", "symbol JSON");
  if (heads.kind != JValue::kArr || heads.arr.empty()) throw KilnError("symbol JSON: 'heads' must be a non-empty array");
  for (auto& h : heads.arr) g.outputs.push_back(parse_entry(h, nodes, nodes.size(), "symbol JSON heads"));
  return g;
}

// ---- traversal -------------------------------------------------------------------------------

std::vector<NodePtr> topo_order(const std::vector<NodeEntry>& outputs) {
  std::vector<NodePtr> order;
  std::unordered_set<const Node*> visited;
  // explicit stack of (node, next child index)
  std::vector<std::pair<NodePtr, size_t>> stack;
  for (auto& out : outputs) {
    if (!out.node || visited.count(out.node.get())) continue;
    stack.emplace_back(out.node, 0);
    visited.insert(out.node.get());
    while (!stack.empty()) {
      auto& top = stack.back();
      Node* n = top.first.get();
      size_t nin = n->inputs.size();
      size_t total = nin + n->control_deps.size();
      if (top.second < total) {
        size_t k = top.second++;
        NodePtr child = k < nin ? n->inputs[k].node : n->control_deps[k - nin];
        if (child && !visited.count(child.get())) {
          visited.insert(child.get());
          stack.emplace_back(child, 0);
        }
      } else {
        order.push_back(top.first);
        stack.pop_back();
      }
    }
  }
  return order;
}

void list_inputs(const std::vector<NodePtr>& topo, std::vector<NodePtr>* args, std::vector<NodePtr>* aux) {
  std::unordered_set<const Node*> mutated;
  for (auto& n : topo) {
    if (n->is_variable() || !n->op->mutate_inputs) continue;
    for (int i : n->op->mutate_inputs(n->attrs))
      if (i >= 0 && i < (int)n->inputs.size()) mutated.insert(n->inputs[i].node.get());
  }
  for (auto& n : topo) {
    if (!n->is_variable()) continue;
    (mutated.count(n.get()) ? aux : args)->push_back(n);
  }
}

std::string entry_name(const NodeEntry& e) {
  if (e.node->is_variable()) return e.node->name;
  auto names = e.node->op->output_names(e.node->attrs);
  return e.node->name + "_" + (e.index < names.size() ? names[e.index] : "output" + std::to_string(e.index));
}

IndexedGraph::IndexedGraph(const std::vector<NodeEntry>& outs) {
  nodes = topo_order(outs);
  row_ptr.push_back(0);
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    node_id[nodes[i].get()] = i;
    int nout = nodes[i]->is_variable() ? 1 : nodes[i]->op->num_outputs(nodes[i]->attrs);
    row_ptr.push_back(row_ptr.back() + nout);
  }
  for (auto& o : outs) outputs.push_back(eid(o));
}

// ---- gradient pass ---------------------------------------------------------------------------

namespace {
constexpr size_t kGradSumCap = 8;  // MXNET_EXEC_INPLACE_GRAD_SUM_CAP

NodeEntry aggregate(std::vector<NodeEntry> contrib, const NodeEntry& like, const std::string& name) {
  if (contrib.empty()) return zeros_like(like, name + "_zero_grad");
  std::vector<NodeEntry> nonzero;
  for (auto& c : contrib) if (!is_zero_entry(c)) nonzero.push_back(c);
  if (nonzero.empty()) return contrib[0];
  if (nonzero.size() == 1) return nonzero[0];
  if (nonzero.size() < kGradSumCap) {
    auto n = make_node("ElementWiseSum", name + "_sum_grad", {{"num_args", std::to_string(nonzero.size())}}, nonzero);
    return NodeEntry{n, 0};
  }
  // Long fan-in: a chain of _grad_add that the planner turns into accumulation in place.
  NodeEntry acc = nonzero[0];
  for (size_t i = 1; i < nonzero.size(); ++i) {
    if (!nonzero[i].node->is_variable()) nonzero[i].node->control_deps.push_back(acc.node);
    auto n = make_node("_grad_add", name + "_sum_grad_" + std::to_string(i), {}, {acc, nonzero[i]});
    acc = NodeEntry{n, 0};
  }
  return NodeEntry{make_node("identity", name + "_sum_grad_final", {}, {acc}), 0};
}
}  // namespace

std::vector<NodeEntry> build_gradients(const std::vector<NodeEntry>& ys, const std::vector<NodeEntry>& head_grads,
                                       const std::vector<NodeEntry>& xs, const std::vector<bool>& accumulate) {
  std::vector<NodePtr> topo = topo_order(ys);
  std::unordered_map<const Node*, std::vector<std::vector<NodeEntry>>> contrib;
  auto slot = [&](const NodeEntry& e) -> std::vector<NodeEntry>& {
    auto& v = contrib[e.node.get()];
    int nout = e.node->is_variable() ? 1 : e.node->op->num_outputs(e.node->attrs);
    if ((int)v.size() < nout) v.resize(nout);
    return v[e.index];
  };
  for (size_t i = 0; i < ys.size(); ++i) slot(ys[i]).push_back(head_grads[i]);
  std::unordered_set<const Node*> in_topo;
  for (auto& n : topo) in_topo.insert(n.get());
  for (size_t i = 0; i < xs.size(); ++i)
    if (!in_topo.count(xs[i].node.get()))
      throw KilnError("cannot differentiate with respect to '" + xs[i].node->name + "': it is unreachable from the outputs");

  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const NodePtr& node = *it;
    if (node->is_variable() || node->inputs.empty()) continue;
    int nout = node->op->num_outputs(node->attrs);
    std::vector<NodeEntry> og(nout);
    bool all_zero = true;
    for (int k = 0; k < nout; ++k) {
      NodeEntry self{node, (uint32_t)k};
      og[k] = aggregate(slot(self), self, entry_name(self));
      all_zero = all_zero && is_zero_entry(og[k]);
    }
    std::vector<NodeEntry> ig;
    if (all_zero && !node->op->is_loss && !node->op->backward_always_runs) {
      for (size_t i = 0; i < node->inputs.size(); ++i)
        ig.push_back(zeros_like(node->inputs[i], node->name + (node->inputs.size() > 1 ? "_in" + std::to_string(i) : "") + "_backward"));
    } else if (node->op->gradient) {
      ig = node->op->gradient(node, og);
      if (ig.size() != node->inputs.size())
        throw KilnError("internal: gradient of " + node->op->name + " returned " + std::to_string(ig.size()) +
                        " entries for " + std::to_string(node->inputs.size()) + " inputs");
    } else {
      throw KilnError("operator " + node->op->name + " ('" + node->name + "') is non-differentiable, but a gradient flows through it");
    }
    for (size_t i = 0; i < node->inputs.size(); ++i)
      if (!is_no_gradient(ig[i])) slot(node->inputs[i]).push_back(ig[i]);
  }

  std::vector<NodeEntry> grads;
  std::unordered_set<const Node*> claimed_nodes;
  std::vector<std::pair<const Node*, uint32_t>> claimed;
  for (auto& x : xs) {
    NodeEntry g = aggregate(slot(x), x, x.node->name);
    bool dup = false;
    for (auto& c : claimed) dup |= c.first == g.node.get() && c.second == g.index;
    // Every gradient output must be a distinct entry written by an op (never a variable such as
    // a head gradient, never shared between two arguments).
    if (dup || g.node->is_variable())
      g = NodeEntry{make_node("_copy", g.node->name + "_" + std::to_string(g.index) + "_copy", {}, {g}), 0};
    claimed.emplace_back(g.node.get(), g.index);
    grads.push_back(g);
  }
  // A gradient accumulated into the caller's array (grad_req add) is written with kAddTo there;
  // if other backward nodes also read that entry they would see the running sum, so such
  // gradients get a _copy of their own.
  if (!accumulate.empty()) {
    std::vector<NodeEntry> all = ys;
    all.insert(all.end(), grads.begin(), grads.end());
    std::unordered_map<const Node*, std::vector<int>> readers;
    for (auto& n : topo_order(all)) {
      for (auto& e : n->inputs) {
        auto& v = readers[e.node.get()];
        if (v.size() <= e.index) v.resize(e.index + 1, 0);
        v[e.index]++;
      }
    }
    for (size_t k = 0; k < grads.size(); ++k) {
      if (k >= accumulate.size() || !accumulate[k]) continue;
      auto it = readers.find(grads[k].node.get());
      if (it != readers.end() && it->second.size() > grads[k].index && it->second[grads[k].index] > 0)
        grads[k] = NodeEntry{make_node("_copy", xs[k].node->name + "_grad_copy", {}, {grads[k]}), 0};
    }
  }
  return grads;
}

}  // namespace kiln
