// The static memory planner (spec 1.6): reference counts, in-place reuse, a size-bucketed pool
// with a match range, forward/backward sharing in one sweep, and the add-to rewrite of
// _grad_add chains. MXNet's exact behaviour is available (mxnet_compatible) so plans can be
// compared byte for byte; the default adds real byte sizes, no memory for outputs nobody reads,
// and a search over match ranges.
#include <algorithm>
#include <map>
#include <numeric>

#include "kiln/graph.h"

namespace kiln {

namespace {

struct Pool {
  int match_range;
  std::multimap<size_t, int> free_;  // bytes -> block
  std::vector<size_t>* bytes;
  int request(size_t size) {
    if (match_range == 0) return fresh(size);
    auto mid = free_.lower_bound(size);
    auto end = free_.upper_bound(size * (size_t)match_range);
    if (mid != end) {  // smallest block in [size, size * r]
      int id = mid->second;
      free_.erase(mid);
      return id;
    }
    auto begin = free_.lower_bound(size / (size_t)match_range);
    if (mid != begin) {  // largest block in [size / r, size), grown to size
      auto it = std::prev(mid);
      int id = it->second;
      free_.erase(it);
      (*bytes)[id] = std::max((*bytes)[id], size);
      return id;
    }
    return fresh(size);
  }
  int fresh(size_t size) {
    bytes->push_back(size);
    return (int)bytes->size() - 1;
  }
  void release(int id) { free_.emplace((*bytes)[id], id); }
};

MemoryPlan plan_once(const IndexedGraph& g, const std::vector<Shape>& shapes, const std::vector<DType>& types,
                     const std::vector<bool>& external, const std::unordered_map<uint32_t, OpReq>& grad_req,
                     const PlanOptions& opt, int match_range) {
  const uint32_t ne = g.num_entries();
  MemoryPlan p;
  p.match_range = match_range;
  p.storage.assign(ne, kStorageUnassigned);
  p.inplace_index.assign(ne, -1);
  p.req.assign(ne, OpReq::kWriteTo);
  p.skip_node.assign(g.nodes.size(), false);
  auto elems = [&](uint32_t e) -> size_t { return (size_t)std::max<int64_t>(shapes[e].size(), 0); };
  auto entry_bytes = [&](uint32_t e) -> size_t {
    return opt.mxnet_compatible ? elems(e) * 4 : elems(e) * dtype_size(types[e]);
  };

  // Reference counts: readers (minus ignored inputs) + graph outputs.
  std::vector<int> ref(ne, 0);
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid) {
    const NodePtr& n = g.nodes[nid];
    if (n->is_variable()) continue;
    std::vector<int> ign = n->op->ignore_inputs ? n->op->ignore_inputs(n->attrs) : std::vector<int>{};
    for (size_t i = 0; i < n->inputs.size(); ++i)
      if (std::find(ign.begin(), ign.end(), (int)i) == ign.end()) ref[g.eid(n->inputs[i])]++;
  }
  for (uint32_t o : g.outputs) ref[o]++;
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid)
    if (g.nodes[nid]->is_variable()) p.storage[g.row_ptr[nid]] = kStorageExternal;
  for (uint32_t e = 0; e < ne; ++e)
    if (external[e]) p.storage[e] = kStorageExternal;

  Pool pool{match_range, {}, &p.block_bytes};
  std::vector<int> live;  // per block
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid) {
    const NodePtr& n = g.nodes[nid];
    if (n->is_variable() || n->op->name == "_NoGradient") continue;
    int nout = g.num_outputs(nid);
    std::vector<int> ign = n->op->ignore_inputs ? n->op->ignore_inputs(n->attrs) : std::vector<int>{};
    bool ignores_all = !n->inputs.empty() && ign.size() >= n->inputs.size();
    // A. in place
    if (opt.inplace && n->op->inplace) {
      std::vector<bool> taken(n->inputs.size(), false);
      for (auto pr : n->op->inplace(n->attrs)) {
        int i = pr.first, o = pr.second;
        if (i < 0 || i >= (int)n->inputs.size() || o < 0 || o >= nout || taken[i]) continue;
        uint32_t ein = g.eid(n->inputs[i]), eout = g.row_ptr[nid] + o;
        int s = p.storage[ein];
        if (p.storage[eout] != kStorageUnassigned || s < 0) continue;
        bool same_size = elems(ein) == elems(eout);
        bool same_type = types[ein] == types[eout] || dtype_size(types[ein]) == dtype_size(types[eout]);
        bool identity = n->op->inplace_identity && same_size && types[ein] == types[eout];
        if (((live[s] == 1 && !ignores_all) || identity) && ref[eout] > 0 && same_size && same_type) {
          p.storage[eout] = s;
          live[s] += ref[eout];
          p.inplace_index[eout] = i;
          taken[i] = true;
        }
      }
    }
    // B. fresh blocks, largest first
    std::vector<uint32_t> todo;
    for (int j = 0; j < nout; ++j) {
      uint32_t e = g.row_ptr[nid] + j;
      if (p.storage[e] != kStorageUnassigned) continue;
      if (!opt.mxnet_compatible && ref[e] == 0 && !n->op->always_written(n->attrs)) {
        p.storage[e] = kStorageNone;
        p.inplace_index[e] = kInplaceNeverRead;
        continue;
      }
      todo.push_back(e);
    }
    std::stable_sort(todo.begin(), todo.end(), [&](uint32_t a, uint32_t b) { return elems(a) > elems(b); });
    for (uint32_t e : todo) {
      int s = pool.request(std::max<size_t>(entry_bytes(e), 1));
      if ((int)live.size() <= s) live.resize(s + 1, 0);
      p.storage[e] = s;
      live[s] = ref[e];
    }
    // C. release inputs whose last reader this was
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      if (std::find(ign.begin(), ign.end(), (int)i) != ign.end()) continue;
      int s = p.storage[g.eid(n->inputs[i])];
      if (s < 0) continue;
      if (--live[s] == 0) pool.release(s);
    }
    // D. outputs nobody reads
    for (int j = 0; j < nout; ++j) {
      uint32_t e = g.row_ptr[nid] + j;
      int s = p.storage[e];
      if (s >= 0 && live[s] == 0) {
        pool.release(s);
        p.inplace_index[e] = kInplaceNeverRead;
      }
    }
  }

  // Add-to rewrite of _grad_add chains (spec 1.6.6).
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid) {
    const NodePtr& n = g.nodes[nid];
    if (n->is_variable() || n->op->name != "_grad_add") continue;
    uint32_t out = g.row_ptr[nid], a = g.eid(n->inputs[0]), b = g.eid(n->inputs[1]);
    if (p.storage[out] < 0 || p.storage[out] != p.storage[a]) continue;
    const NodePtr& pa = n->inputs[0].node;
    const NodePtr& pb = n->inputs[1].node;
    if (pa->is_variable() || pb->is_variable() || ref[b] != 1) continue;
    if (g.node_id.at(pa.get()) >= g.node_id.at(pb.get())) continue;
    p.storage[b] = p.storage[out];
    p.req[b] = OpReq::kAddTo;
    p.inplace_index[b] = -1;
    p.skip_node[nid] = true;
  }

  // Requests.
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid) {
    if (g.nodes[nid]->is_variable()) continue;
    for (int j = 0; j < g.num_outputs(nid); ++j) {
      uint32_t e = g.row_ptr[nid] + j;
      if (p.req[e] == OpReq::kAddTo) continue;
      if (p.inplace_index[e] >= 0) p.req[e] = OpReq::kWriteInplace;
      else if (p.inplace_index[e] == kInplaceNeverRead) p.req[e] = OpReq::kNullOp;
      else p.req[e] = OpReq::kWriteTo;
    }
  }
  for (auto& kv : grad_req) p.req[kv.first] = kv.second;
  // Aliasing a null-req input makes the consumer read garbage: an in-place output whose input
  // was never written is impossible because inputs with readers are never kNullOp.
  p.total_bytes = std::accumulate(p.block_bytes.begin(), p.block_bytes.end(), (size_t)0);
  return p;
}

}  // namespace

MemoryPlan plan_memory(const IndexedGraph& g, const std::vector<Shape>& shapes, const std::vector<DType>& types,
                       const std::vector<bool>& external, const std::unordered_map<uint32_t, OpReq>& grad_req,
                       const PlanOptions& opt) {
  if (opt.mxnet_compatible || !opt.search || opt.match_range <= 1)
    return plan_once(g, shapes, types, external, grad_req, opt, opt.match_range);
  MemoryPlan best;
  bool have = false;
  for (int r = 1; r <= opt.match_range; r *= 2) {
    MemoryPlan p = plan_once(g, shapes, types, external, grad_req, opt, r);
    if (!have || p.total_bytes < best.total_bytes) { best = std::move(p); have = true; }
  }
  return best;
}

}  // namespace kiln
