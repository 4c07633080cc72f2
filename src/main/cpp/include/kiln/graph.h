// Symbol graphs and the passes run at bind time: JSON loading, topological indexing, the
// gradient pass, bidirectional shape/type inference and the static memory planner
// (spec: executor-and-memory-planner.md sections 1.1-1.6).
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "kiln/json.h"
#include "kiln/op.h"

namespace kiln {

/// A graph = its output entries (MXNet's Symbol).
struct Graph {
  std::vector<NodeEntry> outputs;
};

/// Loads MXNet symbol JSON (current format; "attr"/"param" of older files are merged into the
/// attributes). Validates indices (inputs must refer to earlier nodes, so graphs are acyclic),
/// operators ("operator X is not supported") and parameters. Heads are the visible outputs.
Graph load_graph(const std::string& json);

/// Nodes reachable from `outputs` in depth-first post-order (inputs in order, then control
/// dependencies). Iterative: deep graphs cannot overflow the stack.
std::vector<NodePtr> topo_order(const std::vector<NodeEntry>& outputs);

/// Variables in DFS order split into arguments (not mutated by any op) and aux states.
void list_inputs(const std::vector<NodePtr>& topo, std::vector<NodePtr>* args, std::vector<NodePtr>* aux);

/// "<node>_<output name>" or the variable's name.
std::string entry_name(const NodeEntry& e);

/// Topologically indexed graph: node ids in DFS post-order, entries numbered consecutively
/// per node (MXNet's node_row_ptr).
struct IndexedGraph {
  std::vector<NodePtr> nodes;
  std::unordered_map<const Node*, uint32_t> node_id;
  std::vector<uint32_t> row_ptr;  // entry id of output 0 of node i; size nodes+1
  std::vector<uint32_t> outputs;  // entry ids of the graph outputs
  explicit IndexedGraph(const std::vector<NodeEntry>& outs);
  uint32_t eid(const NodeEntry& e) const { return row_ptr[node_id.at(e.node.get())] + e.index; }
  uint32_t num_entries() const { return row_ptr.back(); }
  int num_outputs(uint32_t nid) const { return (int)(row_ptr[nid + 1] - row_ptr[nid]); }
};

/// Gradient pass: returns one gradient entry per x (aggregated, zero-pruned, de-duplicated
/// through _copy so that every entry is distinct and produced by an op). `accumulate[k]` marks
/// x_k's gradient as accumulated (grad_req add); such an entry gets its own _copy when other
/// nodes read it.
std::vector<NodeEntry> build_gradients(const std::vector<NodeEntry>& ys, const std::vector<NodeEntry>& head_grads,
                                       const std::vector<NodeEntry>& xs, const std::vector<bool>& accumulate = {});

/// Shape and dtype of every entry, filled in place. `fixed_like[eid]` (optional) says an entry
/// must equal another entry (head gradients equal their forward outputs). Throws on conflicts
/// with a message naming the node, the op, the argument and both shapes.
void infer_shapes(const IndexedGraph& g, std::vector<Shape>* shapes, const std::vector<std::pair<uint32_t, uint32_t>>& same);
void infer_types(const IndexedGraph& g, std::vector<DType>* types, const std::vector<std::pair<uint32_t, uint32_t>>& same);

// ---- memory planner --------------------------------------------------------------------------

constexpr int kStorageUnassigned = -1;
constexpr int kStorageExternal = -2;  // arguments, aux, head grads, requested gradients
constexpr int kStorageNone = -4;      // never read and not allocated (refined planner)
constexpr int kInplaceNeverRead = -2;

struct PlanOptions {
  bool mxnet_compatible = false;  // 4 bytes/element, never-read outputs get a block, one r = 16
  int match_range = 16;           // 0 = no reuse
  bool inplace = true;
  bool search = true;             // try r in {1,2,4,...,match_range}, keep the smallest (refined only)
};

struct MemoryPlan {
  std::vector<int> storage;        // per entry: block id >= 0 or a kStorage* code
  std::vector<int> inplace_index;  // per entry: input position it aliases, -1, or kInplaceNeverRead
  std::vector<size_t> block_bytes; // per block
  std::vector<OpReq> req;          // per entry (outputs of op nodes)
  std::vector<bool> skip_node;     // per node: _grad_add rewritten to add-to
  size_t total_bytes = 0;
  int match_range = 16;
};

/// Runs the planner of spec 1.6 over the whole (forward + backward) graph.
/// `external[eid]` marks entries owned elsewhere; `grad_req[eid]` overrides req of gradient outputs.
MemoryPlan plan_memory(const IndexedGraph& g, const std::vector<Shape>& shapes, const std::vector<DType>& types,
                       const std::vector<bool>& external, const std::unordered_map<uint32_t, OpReq>& grad_req,
                       const PlanOptions& opt);

}  // namespace kiln
