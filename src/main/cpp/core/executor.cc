#include "kiln/executor.h"

#ifdef KILN_CUDA
#include "kiln/cuda_api.h"
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace kiln {

MemoryPool::MemoryPool() : id([] {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1);
}()) {}

namespace {
const char* req_name(OpReq r) {
  switch (r) {
    case OpReq::kNullOp: return "null";
    case OpReq::kWriteTo: return "write";
    case OpReq::kWriteInplace: return "inplace";
    case OpReq::kAddTo: return "add";
  }
  return "?";
}
/// Forward ops that MXNet 1.9 registers without FListInputNames (OpDef::mxnet_unnamed_inputs): its
/// monitor calls their inputs `input0`, `input1`, ... (checked against MXNet in
/// dev.kiln.mxnet.MonitorOracleTest). Every other forward op uses Kiln's input names, which are
/// MXNet's. Backward ops never have names.
bool mxnet_unnamed_inputs(const OpDef& op) { return op.is_backward || op.mxnet_unnamed_inputs; }

/// MXNet's monitor name of output j of an op node (nnvm Symbol::ListOutputNames): the op's
/// output names for forward ops; backward ops have none, so `_output` / `_output<j>`.
std::string monitor_output_name(const NodePtr& n, int j, int nout) {
  if (n->op->is_backward) return n->name + "_output" + (nout > 1 ? std::to_string(j) : std::string());
  return entry_name(NodeEntry{n, (uint32_t)j});
}

void check_array(const NDArray& a, const std::string& what, Context ctx) {
  KILN_CHECK(a.storage, what + " is not a live array");
  KILN_CHECK(a.ctx == ctx, what + " is on " + a.ctx.str() + " but the executor is bound to " + ctx.str());
}
}  // namespace

Executor::Executor(const std::string& graph_json, Context ctx, const std::vector<NDArray>& args,
                   const std::vector<NDArray>& grads, const std::vector<int>& grad_reqs, const std::vector<NDArray>& aux,
                   const BindOptions& opt, const Executor* shared)
    : ctx_(ctx), args_(args), grads_(grads), aux_(aux), rng_(opt.seed) {
  if (shared)
    KILN_CHECK(shared->ctx_ == ctx, "bind: the shared executor is bound to " + shared->ctx_.str() + " but this one to " + ctx.str());
  graph_ = load_graph(graph_json);
  list_inputs(topo_order(graph_.outputs), &arg_nodes_, &aux_nodes_);
  const std::vector<NodePtr>& arg_nodes = arg_nodes_;
  const std::vector<NodePtr>& aux_nodes = aux_nodes_;
  if (args.size() != arg_nodes.size() || grad_reqs.size() != arg_nodes.size() || grads.size() != arg_nodes.size())
    throw KilnError("bind: the graph has " + std::to_string(arg_nodes.size()) + " arguments but " + std::to_string(args.size()) +
                    " arrays (" + std::to_string(grads.size()) + " gradients, " + std::to_string(grad_reqs.size()) + " grad_reqs) were given");
  if (aux.size() != aux_nodes.size())
    throw KilnError("bind: the graph has " + std::to_string(aux_nodes.size()) + " auxiliary states but " +
                    std::to_string(aux.size()) + " arrays were given");
  for (size_t i = 0; i < args.size(); ++i) {
    check_array(args[i], "argument '" + arg_nodes[i]->name + "'", ctx);
    KILN_CHECK(grad_reqs[i] == 0 || grad_reqs[i] == 1 || grad_reqs[i] == 3,
               "bind: grad_req of '" + arg_nodes[i]->name + "' must be null, write or add");
    if (grad_reqs[i]) {
      check_array(grads[i], "gradient of '" + arg_nodes[i]->name + "'", ctx);
      KILN_CHECK(grads[i].shape == args[i].shape && grads[i].dtype == args[i].dtype,
                 "bind: gradient of '" + arg_nodes[i]->name + "' has shape " + grads[i].shape.str() + " " + dtype_name(grads[i].dtype) +
                     " but the argument is " + args[i].shape.str() + " " + dtype_name(args[i].dtype));
    }
  }
  for (size_t i = 0; i < aux.size(); ++i) check_array(aux[i], "auxiliary state '" + aux_nodes[i]->name + "'", ctx);

  // Gradient graph.
  std::vector<NodeEntry> xs;
  std::vector<size_t> x_arg;
  for (size_t i = 0; i < arg_nodes.size(); ++i)
    if (grad_reqs[i]) { xs.push_back(NodeEntry{arg_nodes[i], 0}); x_arg.push_back(i); }
  std::vector<NodeEntry> all_outputs = graph_.outputs;
  std::vector<NodePtr> head_vars;
  std::vector<NodeEntry> grad_entries;
  if (!xs.empty()) {
    std::vector<NodeEntry> heads;
    for (size_t i = 0; i < graph_.outputs.size(); ++i) {
      auto v = std::make_shared<Node>();
      v->name = "_head_grad_" + std::to_string(i);
      head_vars.push_back(v);
      heads.push_back(NodeEntry{v, 0});
    }
    std::vector<bool> accumulate;
    for (size_t k = 0; k < xs.size(); ++k) accumulate.push_back(grad_reqs[x_arg[k]] == 3);
    grad_entries = build_gradients(graph_.outputs, heads, xs, accumulate);
    all_outputs.insert(all_outputs.end(), grad_entries.begin(), grad_entries.end());
    has_backward_ = true;
  }
  ig_ = std::make_unique<IndexedGraph>(all_outputs);
  const IndexedGraph& g = *ig_;
  uint32_t num_fwd_nodes = 0;
  for (auto& o : graph_.outputs) {
    fwd_out_eids_.push_back(g.eid(o));
    num_fwd_nodes = std::max(num_fwd_nodes, g.node_id.at(o.node.get()) + 1);
  }

  // Shapes and types.
  const uint32_t ne = g.num_entries();
  shapes_.assign(ne, Shape());
  types_.assign(ne, DType::kUnknown);
  for (size_t i = 0; i < arg_nodes.size(); ++i) {
    uint32_t e = g.eid(NodeEntry{arg_nodes[i], 0});
    shapes_[e] = args[i].shape;
    types_[e] = args[i].dtype;
  }
  for (size_t i = 0; i < aux_nodes.size(); ++i) {
    uint32_t e = g.eid(NodeEntry{aux_nodes[i], 0});
    shapes_[e] = aux[i].shape;
    types_[e] = aux[i].dtype;
  }
  std::vector<std::pair<uint32_t, uint32_t>> same;
  std::vector<uint32_t> head_eids;
  for (size_t i = 0; i < head_vars.size(); ++i) {
    auto it = g.node_id.find(head_vars[i].get());
    if (it == g.node_id.end()) { head_eids.push_back(UINT32_MAX); continue; }
    needs_head_grads_ = true;
    uint32_t he = g.row_ptr[it->second];
    head_eids.push_back(he);
    same.emplace_back(he, fwd_out_eids_[i]);
  }
  infer_shapes(g, &shapes_, same);
  infer_types(g, &types_, same);
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid) {
    if (g.nodes[nid]->is_variable() || g.nodes[nid]->op->name == "_NoGradient") continue;
    for (int j = 0; j < g.num_outputs(nid); ++j) {
      uint32_t e = g.row_ptr[nid] + j;
      NodeEntry ent{g.nodes[nid], (uint32_t)j};
      if (!shapes_[e].known())
        throw KilnError("bind: cannot infer the shape of " + entry_name(ent) + " (got " + shapes_[e].str() + ")");
      if (types_[e] == DType::kUnknown) throw KilnError("bind: cannot infer the type of " + entry_name(ent));
    }
  }

  // Memory plan.
  std::vector<bool> external(ne, false);
  std::unordered_map<uint32_t, OpReq> greq;
  for (size_t k = 0; k < grad_entries.size(); ++k) {
    uint32_t e = g.eid(grad_entries[k]);
    external[e] = true;
    greq[e] = grad_reqs[x_arg[k]] == 3 ? OpReq::kAddTo : OpReq::kWriteTo;
  }
  plan_ = plan_memory(g, shapes_, types_, external, greq, opt.plan);
  {
    PlanOptions compat;
    compat.mxnet_compatible = true;
    compat.match_range = 16;
    mxnet_plan_bytes_ = plan_memory(g, shapes_, types_, external, greq, compat).total_bytes;
  }
  // Blocks hold their largest entry in real bytes; 64-byte aligned offsets in one arena.
  block_bytes_ = plan_.block_bytes;
  for (uint32_t e = 0; e < ne; ++e) {
    int s = plan_.storage[e];
    if (s >= 0) block_bytes_[s] = std::max(block_bytes_[s], (size_t)shapes_[e].size() * dtype_size(types_[e]));
    // naive: every planned entry its own buffer (variables and caller-owned gradients are external)
    if (s != kStorageExternal) naive_bytes_ += (size_t)shapes_[e].size() * dtype_size(types_[e]);
  }
  // Placement (spec 1.10 "intermediate pool"). With a shared executor, blocks go into its pool's
  // arenas, largest block first, each into the first arena with room left (arenas fill from
  // their start, 64-byte aligned); the blocks that fit nowhere get one new arena, laid out in
  // block order, which joins the pool when the bind succeeds. Without one, every block goes into
  // a new arena of a new pool.
  const size_t nb = block_bytes_.size();
  auto aligned = [](size_t b) { return (b + 63) / 64 * 64; };
  block_offset_.assign(nb, 0);
  block_arena_.assign(nb, nullptr);
  std::vector<size_t> rest;
  if (shared) {
    pool_ = shared->pool_;
    shared_pool_ = true;
    std::vector<size_t> order(nb);
    for (size_t b = 0; b < nb; ++b) order[b] = b;
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return block_bytes_[x] > block_bytes_[y]; });
    std::vector<size_t> cursor(pool_->arenas.size(), 0);
    for (size_t b : order) {
      bool placed = false;
      for (size_t a = 0; a < pool_->arenas.size() && !placed; ++a) {
        if (cursor[a] + aligned(block_bytes_[b]) > pool_->arenas[a]->bytes) continue;
        block_arena_[b] = pool_->arenas[a];
        block_offset_[b] = cursor[a];
        cursor[a] += aligned(block_bytes_[b]);
        placed = true;
      }
      if (!placed) rest.push_back(b);
    }
    std::sort(rest.begin(), rest.end());
  } else {
    pool_ = std::make_shared<MemoryPool>();
    for (size_t b = 0; b < nb; ++b) rest.push_back(b);
  }
  StoragePtr new_arena;
  if (!rest.empty() || !shared) {
    size_t total = 0;
    for (size_t b : rest) {
      block_offset_[b] = total;
      total += aligned(block_bytes_[b]);
    }
    new_arena = alloc_storage(ctx, std::max<size_t>(total, 64), false);
    new_arena->pool = pool_->id;
    for (size_t b : rest) block_arena_[b] = new_arena;
    own_arena_bytes_ = new_arena->bytes;
  }

  // Head gradients (only when the backward pass reads them: graphs not ending in a loss). Those of
  // outputs that are not losses get the loss scale at backward (a loss operator's own backward
  // applies it, out_grad=True included).
  for (size_t i = 0; i < head_eids.size(); ++i) {
    const NodePtr& out = graph_.outputs[i].node;
    head_scaled_.push_back(!(out->op && out->op->is_loss));
    if (head_eids[i] == UINT32_MAX) { head_grads_.push_back(NDArray()); continue; }
    head_grads_.push_back(make_ndarray(shapes_[fwd_out_eids_[i]], types_[fwd_out_eids_[i]], ctx));
  }

  // Entry blobs.
  blobs_.assign(ne, TBlob());
  for (uint32_t e = 0; e < ne; ++e) {
    blobs_[e].shape = shapes_[e];
    blobs_[e].dtype = types_[e];
    blobs_[e].ctx = ctx;
    int s = plan_.storage[e];
    if (s >= 0) blobs_[e].ptr = (char*)block_arena_[s]->ptr + block_offset_[s];
  }
  for (size_t i = 0; i < arg_nodes.size(); ++i) blobs_[g.eid(NodeEntry{arg_nodes[i], 0})].ptr = args[i].data();
  for (size_t i = 0; i < aux_nodes.size(); ++i) blobs_[g.eid(NodeEntry{aux_nodes[i], 0})].ptr = aux[i].data();
  for (size_t i = 0; i < head_eids.size(); ++i)
    if (head_eids[i] != UINT32_MAX) blobs_[head_eids[i]].ptr = head_grads_[i].data();
  for (size_t k = 0; k < grad_entries.size(); ++k) blobs_[g.eid(grad_entries[k])].ptr = grads[x_arg[k]].data();

  // Kernel list.
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid) {
    const NodePtr& n = g.nodes[nid];
    if (n->is_variable() || n->op->name == "_NoGradient" || plan_.skip_node[nid]) continue;
    Step st;
    st.nid = nid;
    st.kernel = ctx.type == DevType::kGPU ? &n->op->gpu : &n->op->cpu;
    if (!*st.kernel)
      throw KilnError("operator " + n->op->name + " ('" + n->name + "') has no " + (ctx.type == DevType::kGPU ? "GPU" : "CPU") + " kernel yet");
    st.attrs = &n->attrs;
    for (auto& in : n->inputs) st.in.push_back(blobs_[g.eid(in)]);
    for (int j = 0; j < g.num_outputs(nid); ++j) {
      uint32_t e = g.row_ptr[nid] + j;
      st.out.push_back(blobs_[e]);
      st.req.push_back(plan_.req[e]);
    }
    if (n->op->workspace) {
      std::vector<Shape> ins, outs;
      for (auto& b : st.in) ins.push_back(b.shape);
      for (auto& b : st.out) outs.push_back(b.shape);
      workspace_bytes_ = std::max(workspace_bytes_, n->op->workspace(n->attrs, ins, outs));
    }
    if (nid < num_fwd_nodes) num_fwd_steps_++;
    steps_.push_back(std::move(st));
  }
  // Commit: the new arena joins the pool; the pool's workspace grows to this executor's request
  // (the executors sharing it read it at run time, so the old one is freed once unreferenced).
  StoragePtr new_workspace;
  if (workspace_bytes_ && (!pool_->workspace || pool_->workspace->bytes < workspace_bytes_))
    new_workspace = alloc_storage(ctx, workspace_bytes_, false);
#ifdef KILN_CUDA
  // before the shared pool changes: a failed bind leaves it (and its other executors' recorded
  // graphs, which bake in the workspace pointer) as they were
  if (ctx.type == DevType::kGPU) stream_ = cuda::device_stream(ctx.id);
#endif
  if (new_workspace) {
    pool_->workspace = std::move(new_workspace);
    own_workspace_bytes_ = workspace_bytes_;
  }
  if (new_arena) pool_->arenas.push_back(new_arena);
}

void Executor::run(size_t begin, size_t end, bool is_train) {
  OpCtx oc;
  oc.is_train = is_train;
  oc.ctx = ctx_;
  oc.workspace = pool_->workspace ? pool_->workspace->ptr : nullptr;
  oc.workspace_bytes = workspace_bytes_;
  oc.rng = &rng_;
  oc.stream = stream_;
  oc.loss_scale = loss_scale_;
  const bool monitor = mon_mode_ != 0;
  static const bool profile = [] {
    const char* v = std::getenv("KILN_PROFILE");
    return v != nullptr && v[0] != 0 && v[0] != '0';
  }();
  if (profile && prof_ns_.size() != steps_.size()) {
    prof_ns_.assign(steps_.size(), 0.0);
    prof_calls_.assign(steps_.size(), 0);
  }
  const bool graphs = ctx_.type == DevType::kGPU && !monitor && !profile;
#ifdef KILN_CUDA
  if (graphs) (void)cuda::take_stepped_aside();
#endif
  if (graphs && run_graph(begin, end, is_train, oc)) return;
  run_steps(begin, end, oc, monitor, profile);
#ifdef KILN_CUDA
  // this eager pass stepped aside for another thread's recording (a convolution's algorithm
  // untimed, or no cuDNN yet): the next pass runs eagerly too, so that the recording follows a
  // pass with the settled choices
  if (graphs && cuda::take_stepped_aside()) {
    GraphSlot* g = graph_slot(begin, end, is_train);
    if (g != nullptr && g->exec == nullptr) g->eager_runs = 0;
  }
#endif
}

std::vector<uint64_t> Executor::bound_pools() const {
  std::vector<uint64_t> out;
  for (const auto* list : {&args_, &grads_, &aux_})
    for (const NDArray& a : *list) {
      const uint64_t p = a.storage ? a.storage->pool : 0;
      if (p != 0 && p != pool_->id && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
  return out;
}

Executor::GraphSlot* Executor::graph_slot(size_t begin, size_t end, bool is_train) {
  const auto key = std::make_tuple(begin, end, is_train);
  for (auto& kv : graphs_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Executor::run_steps(size_t begin, size_t end, const OpCtx& oc, bool monitor, bool profile) {
#ifdef KILN_CUDA
  const bool sync_each = cuda::sync_each_kernel();
#endif
  for (size_t i = begin; i < end; ++i) {
    Step& st = steps_[i];
    try {
      if (monitor) monitor_copy(st.in, mon_steps_[i].in);
      if (profile) {
        const auto t0 = std::chrono::steady_clock::now();
        (*st.kernel)(oc, *st.attrs, st.in, st.req, st.out);
#ifdef KILN_CUDA
        if (stream_ != nullptr) cuda::stream_synchronize(ctx_.id, stream_);  // time the kernel, not its launch
#endif
        prof_ns_[i] += (double)std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
        prof_calls_[i]++;
      } else {
        (*st.kernel)(oc, *st.attrs, st.in, st.req, st.out);
#ifdef KILN_CUDA
        if (sync_each && stream_ != nullptr) cuda::stream_synchronize(ctx_.id, stream_);
#endif
      }
      if (monitor) monitor_copy(st.out, mon_steps_[i].out);
    } catch (const KilnError& e) {
      const NodePtr& n = ig_->nodes[st.nid];
      std::string shapes;
      for (auto& b : st.in) shapes += (shapes.empty() ? "" : ", ") + b.shape.str();
      rethrow_with_context(e, "operator " + n->op->name + " ('" + n->name + "') with inputs " + shapes + ": " + e.what());
    }
  }
}

bool Executor::run_graph(size_t begin, size_t end, bool is_train, const OpCtx& oc) {
#ifdef KILN_CUDA
  if (stream_ == nullptr || begin >= end || !cuda::graphs_enabled()) return false;
  GraphSlot* g = graph_slot(begin, end, is_train);
  if (g == nullptr) {
    graphs_.emplace_back(std::make_tuple(begin, end, is_train), GraphSlot());
    g = &graphs_.back().second;
  }
  if (g->disabled) return false;
  if (cuda::sync_each_kernel()) {  // waiting after each kernel cannot be recorded
    g->disabled = true;
    g->why = "KILN_CUDA_SYNC=1";
    return false;
  }
  const bool tf32 = cuda::tf32_allowed();
  // only a backward step reads the loss scale (the loss operators' backward)
  const bool scale_changed = end > num_fwd_steps_ && g->loss_scale != oc.loss_scale;
  if (g->exec != nullptr && (g->workspace != oc.workspace || scale_changed || g->tf32 != tf32)) {
    // the shared pool's workspace grew (another executor joined it), the loss scale changed (a
    // pass with backward steps), or TF32 was switched (other cuBLAS/cuDNN choices): record again
    cuda::graph_destroy(ctx_.id, g->exec);
    g->exec = nullptr;
    g->eager_runs = 0;
  }
  if (g->exec == nullptr) {
    // The first pass runs eagerly: it creates the cuBLAS/cuDNN handles, picks (times) the
    // convolution algorithms and fills the allocator's cache, none of which may happen while
    // recording. TF32 switched since that pass: its choices are not the ones to record, so run
    // eagerly once more. (Switching it while another thread runs a pass is not supported.)
    if (g->eager_runs > 0 && g->tf32 != tf32) g->eager_runs = 0;
    g->tf32 = tf32;
    if (g->eager_runs++ < 1 || !g->retry.may_try()) return false;
    for (size_t i = begin; i < end; ++i) {
      const NodePtr& n = ig_->nodes[steps_[i].nid];
      // a random op's kernel may draw its seed from the host generator on every call (in training,
      // and Dropout(mode='always') at inference); a replay would repeat the first draw
      if (n->op->random(n->attrs, is_train)) {
        g->disabled = true;
        g->why = "random operator " + n->op->name + " ('" + n->name + "')";
        return false;
      }
    }
    // Recorded on a stream of this executor's own, not on the device's: another thread's passes
    // on the device's stream meanwhile run (instead of being recorded into this graph), and its
    // copies on the legacy stream go on (the capture stream is non-blocking). The recording only
    // records; its replays run on the device's stream, in issue order as the eager passes.
    try {
      if (capture_stream_ == nullptr) capture_stream_ = cuda::stream_create(ctx_.id);
      cuda::capture_begin(ctx_.id, capture_stream_);
    } catch (const KilnError& e) {
      g->failed(std::string("recording could not start: ") + e.what());
      return false;
    }
    OpCtx rec = oc;
    rec.stream = capture_stream_;
    try {
      run_steps(begin, end, rec, false, false);
    } catch (const RecordingUnsupported& e) {  // an operator that copies or waits: it always will
      cuda::capture_abort(ctx_.id, capture_stream_);
      g->failed(std::string("recording failed: ") + e.what(), true);
      return false;
    } catch (const KilnError& e) {
      // nothing ran while recording: the eager pass that follows reports a real error again
      cuda::capture_abort(ctx_.id, capture_stream_);
      g->failed(std::string("recording failed: ") + e.what());
      return false;
    } catch (...) {
      // any other exception (std::bad_alloc, ...) must not leave the stream capturing and this
      // thread's capture hold set: every later pass would be recorded into a dead capture
      cuda::capture_abort(ctx_.id, capture_stream_);
      g->failed("recording failed: unexpected exception");
      throw;
    }
    std::string why;
    void* exec = cuda::capture_end(ctx_.id, capture_stream_, &why);
    if (exec == nullptr) {
      g->failed("recording failed: " + why);
      return false;
    }
    g->exec = exec;
    g->workspace = oc.workspace;
    g->loss_scale = oc.loss_scale;
    g->why.clear();
  }
  try {
    cuda::graph_launch(ctx_.id, g->exec, stream_);
    g->retry.succeeded();
  } catch (const KilnError& e) {
    // the launch was refused, so nothing of the pass ran: drop the graph and run it eagerly (a
    // fault that the device keeps, from earlier work, fails the eager pass too and is reported there)
    cuda::graph_destroy(ctx_.id, g->exec);
    g->exec = nullptr;
    g->eager_runs = 0;
    g->failed(std::string("replay failed: ") + e.what());
    return false;
  }
  return true;
#else
  (void)begin, (void)end, (void)is_train, (void)oc;
  return false;
#endif
}

Executor::~Executor() {
  if (!prof_ns_.empty()) print_profile();
#ifdef KILN_CUDA
  for (auto& kv : graphs_)
    if (kv.second.exec != nullptr) cuda::graph_destroy(ctx_.id, kv.second.exec);
  cuda::stream_destroy(ctx_.id, capture_stream_);  // only ever recorded on: nothing runs there
#endif
}

void Executor::print_profile() const {
  double total = 0;
  for (double t : prof_ns_) total += t;
  std::fprintf(stderr, "# kiln profile: %zu steps, %.3f ms in kernels over all passes\n", steps_.size(), total / 1e6);
  std::fprintf(stderr, "# %-40s %-28s %10s %10s %6s\n", "node", "op", "calls", "us/call", "%");
  for (size_t i = 0; i < steps_.size(); ++i) {
    if (prof_calls_[i] == 0) continue;
    const NodePtr& n = ig_->nodes[steps_[i].nid];
    std::fprintf(stderr, "  %-40s %-28s %10ld %10.1f %6.2f\n", n->name.c_str(), n->op->name.c_str(), prof_calls_[i],
                 prof_ns_[i] / 1e3 / (double)prof_calls_[i], total > 0 ? 100.0 * prof_ns_[i] / total : 0.0);
  }
}

void Executor::forward(bool is_train) {
  mon_fwd_valid_ = mon_bwd_valid_ = false;
  run(0, num_fwd_steps_, is_train);
  forward_done_train_ = is_train;
  mon_fwd_valid_ = mon_mode_ != 0;
}

void Executor::backward(const std::vector<NDArray>& head_grads) {
  if (!has_backward_) return;
  if (needs_head_grads_) {
    if (head_grads.size() != head_grads_.size())
      throw KilnError("backward: the graph's outputs are not losses, so one head gradient per output is needed (" +
                      std::to_string(head_grads_.size()) + " outputs, " + std::to_string(head_grads.size()) +
                      " given); pass them or end the graph in a loss such as SoftmaxOutput or MakeLoss");
    for (size_t i = 0; i < head_grads.size(); ++i) {
      if (!head_grads_[i].storage) continue;
      const NDArray& h = head_grads[i];
      KILN_CHECK(h.storage && h.shape == head_grads_[i].shape,
                 "backward: head gradient " + std::to_string(i) + " must have shape " + head_grads_[i].shape.str() + " (" +
                     dtype_name(head_grads_[i].dtype) + ", or any type, converted), got " + h.shape.str() + " " +
                     dtype_name(h.dtype));
      if (h.dtype == head_grads_[i].dtype) copy_bytes(ctx_, head_grads_[i].data(), h.ctx, h.data(), h.bytes());
      else cast_head_grad(h, i);
      if (loss_scale_ != 1.0 && head_scaled_[i]) scale_head_grad(i);
    }
  }
  mon_bwd_valid_ = false;
  run(num_fwd_steps_, steps_.size(), true);
  mon_bwd_valid_ = mon_mode_ != 0;
}

/// head_grads_[i] *= loss_scale_, by the _mul_scalar kernel of the executor's device (on its
/// stream), so that a backward from given head gradients yields loss-scaled gradients as a loss
/// operator's backward does (the update divides by the scale).
void Executor::scale_head_grad(size_t i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", loss_scale_);
  const TBlob b = head_grads_[i].blob();
  run_head_op("_mul_scalar", {{"scalar", buf}}, b, OpReq::kWriteInplace, b, "scale head gradient " + std::to_string(i));
}

void Executor::cast_head_grad(const NDArray& h, size_t i) {
  // on the executor's device straight into the head buffer; from the host through a converted host
  // copy (no device temporary whose reuse another stream could race)
  const NDArray& head = head_grads_[i];
  const std::string what = "convert head gradient " + std::to_string(i);
  if (h.ctx == ctx_) return run_head_op("Cast", {{"dtype", dtype_name(head.dtype)}}, h.blob(), OpReq::kWriteTo, head.blob(), what);
  KILN_CHECK(h.ctx.type == DevType::kCPU, "backward: head gradient " + std::to_string(i) + " is " + dtype_name(h.dtype) +
                                              " on " + h.ctx.str() + "; convert it to " + dtype_name(head.dtype) +
                                              " or copy it to " + ctx_.str() + " first");
  const NDArray host = make_ndarray(head.shape, head.dtype, h.ctx);
  run_head_op("Cast", {{"dtype", dtype_name(head.dtype)}}, h.blob(), OpReq::kWriteTo, host.blob(), what);
  copy_bytes(ctx_, head.data(), h.ctx, host.data(), host.bytes());
}

void Executor::run_head_op(const char* op, const std::map<std::string, std::string>& attrs, const TBlob& in,
                           OpReq req, const TBlob& out, const std::string& what) {
  const OpDef& d = OpRegistry::get().at(op);
  const Kernel& k = in.ctx.type == DevType::kGPU ? d.gpu : d.cpu;
  KILN_CHECK((bool)k, std::string("backward: no ") + op + " kernel on " + in.ctx.str() + " to " + what);
  OpCtx oc;
  oc.ctx = in.ctx;
  if (in.ctx == ctx_) oc.stream = stream_;
  oc.rng = &rng_;
  k(oc, parse_attrs(d, attrs), {in}, {req}, {out});
}

void Executor::set_loss_scale(double scale) {
  KILN_CHECK(std::isfinite(scale) && scale > 0, "loss scale must be finite and positive, got " + std::to_string(scale));
  loss_scale_ = scale;
}

void Executor::forward_backward() {
  if (needs_head_grads_)
    throw KilnError("forward_backward: the graph's outputs are not losses; call forward and backward with head gradients");
  mon_fwd_valid_ = mon_bwd_valid_ = false;
  run(0, steps_.size(), true);
  mon_fwd_valid_ = mon_bwd_valid_ = mon_mode_ != 0;
}

// ---- monitor ---------------------------------------------------------------------------------

void Executor::monitor_copy(const std::vector<TBlob>& blobs, const std::vector<MonCopy>& copies) {
  for (const MonCopy& c : copies) {
    const TBlob& b = blobs[c.pos];
    copy_bytes(ctx_, (char*)mon_arena_->ptr + mon_slots_[c.slot].offset, ctx_, b.ptr, b.bytes());
  }
}

void Executor::restore_step_outputs() {
  const IndexedGraph& g = *ig_;
  for (Step& st : steps_)
    for (size_t j = 0; j < st.out.size(); ++j) {
      uint32_t e = g.row_ptr[st.nid] + (uint32_t)j;
      st.out[j].ptr = blobs_[e].ptr;
      st.req[j] = plan_.req[e];
    }
}

void Executor::set_monitor(int mode) {
  KILN_CHECK(mode >= 0 && mode <= 2,
             "monitor mode must be 0 (off), 1 (op outputs) or 2 (op inputs and outputs), got " + std::to_string(mode));
  if (mode == mon_mode_) return;
  // Off first: outputs the monitor redirected go back to the plan, the snapshots are released.
  restore_step_outputs();
  mon_mode_ = 0;
  mon_arena_.reset();
  mon_slots_.clear();
  mon_steps_.clear();
  mon_records_.clear();
  mon_fwd_records_ = 0;
  mon_fwd_valid_ = mon_bwd_valid_ = false;
  if (mode == 0) return;

  const IndexedGraph& g = *ig_;
  std::vector<MonSlot> slots;
  std::vector<MonStep> msteps(steps_.size());
  std::vector<MonRecord> records;
  struct Redirect {
    size_t step, pos;
    uint32_t slot;
  };
  std::vector<Redirect> redirect;  // outputs the kernel writes straight into their slot
  size_t total = 0, fwd_records = 0;
  auto new_slot = [&](const TBlob& b) {
    slots.push_back(MonSlot{total, b.shape, b.dtype});
    total += (b.bytes() + 63) / 64 * 64;
    return (uint32_t)(slots.size() - 1);
  };
  for (size_t i = 0; i < steps_.size(); ++i) {
    const Step& st = steps_[i];
    const NodePtr& n = g.nodes[st.nid];
    if (mode == 2) {
      const bool unnamed = mxnet_unnamed_inputs(*n->op);
      const std::vector<std::string> in_names = unnamed ? std::vector<std::string>{} : n->op->input_names(n->attrs);
      for (size_t k = 0; k < st.in.size(); ++k) {
        uint32_t slot = new_slot(st.in[k]);
        msteps[i].in.push_back(MonCopy{(uint32_t)k, slot});
        const NodePtr& src = n->inputs[k].node;
        if (src->is_variable()) records.push_back(MonRecord{src->name, slot});
        std::string in_name = unnamed || k >= in_names.size() ? "input" + std::to_string(k) : in_names[k];
        records.push_back(MonRecord{n->name + "_" + in_name, slot});
      }
    }
    const int nout = (int)st.out.size();
    for (int j = 0; j < nout; ++j) {
      uint32_t slot = new_slot(st.out[j]);
      // An output nobody reads is not computed (kNullOp); MXNet computes it, so while monitoring
      // the kernel writes it straight into its snapshot.
      if (st.req[j] == OpReq::kNullOp) redirect.push_back(Redirect{i, (size_t)j, slot});
      else msteps[i].out.push_back(MonCopy{(uint32_t)j, slot});
      records.push_back(MonRecord{monitor_output_name(n, j, nout), slot});
    }
    if (i + 1 == num_fwd_steps_) fwd_records = records.size();
  }
  StoragePtr arena = alloc_storage(ctx_, std::max<size_t>(total, 64), true);
  // Commit (nothing below throws).
  for (const Redirect& r : redirect) {
    Step& st = steps_[r.step];
    st.out[r.pos].ptr = (char*)arena->ptr + slots[r.slot].offset;
    st.req[r.pos] = OpReq::kWriteTo;
  }
  mon_arena_ = std::move(arena);
  mon_slots_ = std::move(slots);
  mon_steps_ = std::move(msteps);
  mon_records_ = std::move(records);
  mon_fwd_records_ = fwd_records;
  mon_mode_ = mode;
}

std::vector<std::pair<std::string, NDArray>> Executor::monitor_entries() const {
  std::vector<std::pair<std::string, NDArray>> out;
  if (!mon_mode_) return out;
  auto add = [&](size_t begin, size_t end) {
    for (size_t r = begin; r < end; ++r) {
      const MonSlot& s = mon_slots_[mon_records_[r].slot];
      NDArray a;
      a.storage = mon_arena_;
      a.offset = s.offset;
      a.shape = s.shape;
      a.dtype = s.dtype;
      a.ctx = ctx_;
      out.emplace_back(mon_records_[r].name, a);
    }
  };
  if (mon_fwd_valid_) add(0, mon_fwd_records_);
  if (mon_bwd_valid_) add(mon_fwd_records_, mon_records_.size());
  return out;
}

std::vector<NDArray> Executor::outputs() const {
  std::vector<NDArray> out;
  for (size_t i = 0; i < fwd_out_eids_.size(); ++i) {
    uint32_t e = fwd_out_eids_[i];
    NDArray a;
    a.shape = shapes_[e];
    a.dtype = types_[e];
    a.ctx = ctx_;
    int s = plan_.storage[e];
    if (s >= 0) {
      a.storage = block_arena_[s];
      a.offset = block_offset_[s];
    } else {
      // a variable (or external entry) listed as an output: find the bound array
      const NodeEntry& ent = graph_.outputs[i];
      bool found = false;
      for (size_t k = 0; k < arg_nodes_.size() && !found; ++k)
        if (arg_nodes_[k] == ent.node) { a = args_[k]; found = true; }
      for (size_t k = 0; k < aux_nodes_.size() && !found; ++k)
        if (aux_nodes_[k] == ent.node) { a = aux_[k]; found = true; }
      KILN_CHECK(found, "internal: output " + entry_name(ent) + " has no storage");
    }
    out.push_back(a);
  }
  return out;
}

std::string Executor::report() const {
  const IndexedGraph& g = *ig_;
  std::ostringstream os;
  size_t planned = 0;
  for (size_t b : block_bytes_) planned += b;
  size_t bound = 0;
  for (auto& a : args_) bound += a.bytes();
  for (auto& a : grads_) if (a.storage) bound += a.bytes();
  for (auto& a : aux_) bound += a.bytes();
  size_t arena_bytes = 0, pool_bytes = 0;
  {
    std::vector<const Storage*> seen;
    for (const StoragePtr& a : block_arena_)
      if (std::find(seen.begin(), seen.end(), a.get()) == seen.end()) {
        seen.push_back(a.get());
        arena_bytes += a->bytes;
      }
    for (const StoragePtr& a : pool_->arenas) pool_bytes += a->bytes;
    if (pool_->workspace) pool_bytes += pool_->workspace->bytes;
  }
  os << "{\"planned_bytes\":" << planned << ",\"arena_bytes\":" << arena_bytes << ",\"own_arena_bytes\":" << own_arena_bytes_
     << ",\"own_workspace_bytes\":" << own_workspace_bytes_ << ",\"pool_bytes\":" << pool_bytes
     << ",\"shared_pool\":" << (shared_pool_ ? "true" : "false") << ",\"naive_bytes\":" << naive_bytes_
     << ",\"mxnet_planned_bytes\":" << mxnet_plan_bytes_ << ",\"workspace_bytes\":" << workspace_bytes_
     << ",\"bound_array_bytes\":" << bound << ",\"match_range\":" << plan_.match_range << ",\"num_blocks\":" << block_bytes_.size()
     << ",\"num_steps\":" << steps_.size() << ",\"num_forward_steps\":" << num_fwd_steps_ << ",\"monitor_mode\":" << mon_mode_
     << ",\"monitor_bytes\":" << (mon_arena_ ? mon_arena_->bytes : 0) << ",\"cuda_graphs\":[";
  for (size_t i = 0; i < graphs_.size(); ++i) {
    const auto& k = graphs_[i].first;
    const GraphSlot& gs = graphs_[i].second;
    os << (i ? "," : "") << "{\"steps\":[" << std::get<0>(k) << "," << std::get<1>(k) << "],\"train\":"
       << (std::get<2>(k) ? "true" : "false") << ",\"recorded\":" << (gs.exec ? "true" : "false")
       << ",\"eager_runs\":" << gs.eager_runs << ",\"eager_because\":" << json_str(gs.why) << "}";
  }
  os << "],\"blocks\":[";
  for (size_t b = 0; b < block_bytes_.size(); ++b) {
    os << (b ? "," : "") << "{\"id\":" << b << ",\"bytes\":" << block_bytes_[b] << ",\"offset\":" << block_offset_[b] << ",\"entries\":[";
    bool first = true;
    for (uint32_t nid = 0; nid < g.nodes.size(); ++nid)
      for (int j = 0; j < g.num_outputs(nid); ++j)
        if (plan_.storage[g.row_ptr[nid] + j] == (int)b) {
          os << (first ? "" : ",") << json_str(entry_name(NodeEntry{g.nodes[nid], (uint32_t)j}));
          first = false;
        }
    os << "]}";
  }
  os << "],\"entries\":[";
  bool first = true;
  for (uint32_t nid = 0; nid < g.nodes.size(); ++nid) {
    const NodePtr& n = g.nodes[nid];
    for (int j = 0; j < g.num_outputs(nid); ++j) {
      uint32_t e = g.row_ptr[nid] + j;
      int s = plan_.storage[e];
      std::string storage = s >= 0 ? std::to_string(s) : s == kStorageNone ? "\"none\"" : "\"external\"";
      os << (first ? "" : ",") << "{\"name\":" << json_str(entry_name(NodeEntry{n, (uint32_t)j})) << ",\"node\":" << nid
         << ",\"op\":" << json_str(n->is_variable() ? "null" : n->op->name) << ",\"shape\":" << json_str(shapes_[e].str())
         << ",\"dtype\":\"" << dtype_name(types_[e]) << "\",\"storage\":" << storage
         << ",\"req\":\"" << (n->is_variable() ? "-" : req_name(plan_.req[e])) << "\",\"inplace\":" << plan_.inplace_index[e] << "}";
      first = false;
    }
  }
  os << "]}";
  return os.str();
}

}  // namespace kiln
