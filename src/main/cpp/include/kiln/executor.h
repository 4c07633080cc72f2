// A bound graph: shapes inferred, memory planned and materialized in one arena, and a flat
// list of kernel calls with pre-bound pointers. forward / backward / forward_backward each run
// the list (or its part) in one native call.
//
// Thread-safety: an Executor is used by one thread at a time. Ownership: it holds references
// to the argument, gradient and aux arrays it was bound to (their storage outlives it).
#pragma once
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kiln/alloc.h"
#include "kiln/cuda_api.h"
#include "kiln/graph.h"

namespace kiln {

struct BindOptions {
  PlanOptions plan;
  uint64_t seed = 0;
};

/// Intermediate memory shared by executors that never run at the same time (MXNet's
/// `shared_exec` data pool, spec executor-and-memory-planner.md 1.10): the arenas that hold the
/// executors' planned blocks and one temp workspace. An executor bound with a shared executor
/// places its blocks into the pool's arenas (first fit, largest block first) and allocates one
/// new arena only for the blocks that do not fit, which then joins the pool; the workspace grows
/// to the largest request. So the memory of a set of bucket executors is that of the largest one.
/// Not thread-safe: the executors sharing a pool must run one at a time (they overwrite each
/// other's intermediates and outputs).
struct MemoryPool {
  MemoryPool();
  const uint64_t id;  // unique for the process (never reused, unlike the address): Storage::pool
  std::vector<StoragePtr> arenas;
  StoragePtr workspace;
};

class Executor {
 public:
  /// grad_reqs: per argument 0 = null, 1 = write, 3 = add (grads[i] ignored when 0).
  /// shared: an executor whose memory pool this one joins (nullptr: a pool of its own).
  Executor(const std::string& graph_json, Context ctx, const std::vector<NDArray>& args, const std::vector<NDArray>& grads,
           const std::vector<int>& grad_reqs, const std::vector<NDArray>& aux, const BindOptions& opt,
           const Executor* shared = nullptr);
  /// With KILN_PROFILE=1 in the environment, prints the per-operator time table to stderr.
  ~Executor();
  void forward(bool is_train);
  void backward(const std::vector<NDArray>& head_grads);
  void forward_backward();
  /// Visible outputs (views into the arena or the bound arrays).
  std::vector<NDArray> outputs() const;
  /// Identity of the memory pool this executor uses (shared with the executors bound to it or
  /// with it; see MemoryPool): executors with the same key must not run at the same time.
  uint64_t pool_key() const { return pool_->id; }
  /// The other memory pools that bound arrays live in (another executor's outputs bound as an
  /// argument, auxiliary state or gradient): the C API holds them against runs during a call.
  std::vector<uint64_t> bound_pools() const;
  /// JSON memory report (planned, naive and MXNet-compatible bytes; blocks and their entries).
  std::string report() const;

  // ---- monitor (MXNet's executor monitor callback; spec module-api.md 8.1) ----
  // MXNet calls a callback with every op output (and, with monitor_all, every op input) while
  // the pass runs. Kiln's arena reuses buffers, so instead the executor snapshots those tensors
  // into an arena of its own while the pass runs, and the caller reads them afterwards.
  /// 0: off (the default: no snapshot memory, no copies), 1: each op's outputs after it runs,
  /// 2: also each op's inputs before it runs (monitor_all). Switching mode drops the snapshots;
  /// switching it on allocates the snapshot arena once (counted by the allocator).
  void set_monitor(int mode);
  /// Loss scaling: the gradients of the graph's loss operators (is_loss: SoftmaxOutput, the
  /// regression outputs, MakeLoss) are multiplied by `scale` from the next backward on, and so are
  /// the head gradients passed to backward for outputs that are not losses; every gradient of the
  /// pass, input gradients included, is then `scale` times the true one (the update divides by
  /// it). A recorded CUDA graph of a pass with backward steps is recorded again.
  /// Throws for a scale that is not finite and positive.
  void set_loss_scale(double scale);
  double loss_scale() const { return loss_scale_; }
  int monitor_mode() const { return mon_mode_; }
  /// The snapshots of the last forward and of the backward after it (a backward alone when no
  /// forward ran since the monitor was switched on), in execution order, named as MXNet names
  /// them: `<node>_<output name>` (backward nodes `<node>_output` / `<node>_output<i>`), inputs
  /// `<node>_<input name>` or `<node>_input<i>`, preceded by the variable's own name for a
  /// variable input. The arrays view the executor's snapshot arena (valid until the next pass
  /// changes them or the mode changes; the storage itself lives as long as any view).
  std::vector<std::pair<std::string, NDArray>> monitor_entries() const;

 private:
  struct Step {
    uint32_t nid;
    const Kernel* kernel;
    const Attrs* attrs;
    std::vector<TBlob> in, out;
    std::vector<OpReq> req;
  };
  void run(size_t begin, size_t end, bool is_train);
  /// Runs steps [begin, end) one kernel after another (the eager path).
  void run_steps(size_t begin, size_t end, const OpCtx& oc, bool monitor, bool profile);
  /// GPU: replays (or records, then replays) the steps as a CUDA graph. False when the eager path
  /// must run instead (first pass, graphs off, monitor/profile on, random ops, recording failed).
  bool run_graph(size_t begin, size_t end, bool is_train, const OpCtx& oc);

  // GPU state (null / empty on the CPU): the device's stream (cuda::device_stream), and the
  // recorded CUDA graph of each pass kind (forward train / inference, backward, forward+backward).
  struct GraphSlot {
    int eager_runs = 0;            // passes run eagerly so far (recording starts with the second)
    void* exec = nullptr;          // cuda graph handle (cuda_api.h), null until recorded
    void* workspace = nullptr;     // workspace pointer baked into the recording
    double loss_scale = 1.0;       // loss scale baked into the recording
    bool tf32 = false;             // cuda::tf32_allowed() when recorded (its algorithms are baked in)
    bool disabled = false;         // this pass always runs eagerly
    std::string why;               // ... because of this (or why the last recording or replay failed)
    cuda::GraphRetry retry;        // after a failed recording or replay
    /// Notes a failed recording or replay: records again later, or stays eager after the last try
    /// (at once when `always`: the failure would recur).
    void failed(const std::string& reason, bool always = false) { retry.failed(reason, always, &disabled, &why); }
  };
  void* stream_ = nullptr;
  void* capture_stream_ = nullptr;  // the graphs are recorded on it (cuda::stream_create), at the first recording
  std::vector<std::pair<std::tuple<size_t, size_t, bool>, GraphSlot>> graphs_;
  /// The graph slot of pass [begin, end) (train or not), or null before its first run.
  GraphSlot* graph_slot(size_t begin, size_t end, bool is_train);
  /// KILN_PROFILE=1: wall time per step (ns) and calls, summed over the executor's life.
  std::vector<double> prof_ns_;
  std::vector<long> prof_calls_;
  void print_profile() const;

  // Monitor state (all empty while the mode is 0).
  struct MonCopy {
    uint32_t pos;   // input or output position in the step
    uint32_t slot;  // index into mon_slots_
  };
  struct MonStep {
    std::vector<MonCopy> in, out;  // copied before / after the kernel
  };
  struct MonSlot {
    size_t offset;  // bytes into mon_arena_
    Shape shape;
    DType dtype;
  };
  struct MonRecord {
    std::string name;
    uint32_t slot;
  };
  void monitor_copy(const std::vector<TBlob>& blobs, const std::vector<MonCopy>& copies);
  void restore_step_outputs();
  int mon_mode_ = 0;
  double loss_scale_ = 1.0;
  StoragePtr mon_arena_;
  std::vector<MonSlot> mon_slots_;
  std::vector<MonStep> mon_steps_;      // parallel to steps_
  std::vector<MonRecord> mon_records_;  // execution order: records of forward steps first
  size_t mon_fwd_records_ = 0;          // how many records belong to forward steps
  bool mon_fwd_valid_ = false, mon_bwd_valid_ = false;

  Context ctx_;
  Graph graph_;
  std::vector<NodePtr> arg_nodes_, aux_nodes_;  // variables in list_arguments / list_auxiliary_states order
  std::unique_ptr<IndexedGraph> ig_;
  std::vector<NDArray> args_, grads_, aux_, head_grads_;
  std::vector<bool> head_scaled_;  // per output: its head gradient gets the loss scale (not a loss op)
  void scale_head_grad(size_t i);
  /// head_grads_[i] = Cast(h): a head gradient of another dtype (any device), as MXNet's copy converts.
  void cast_head_grad(const NDArray& h, size_t i);
  /// One op's kernel of in's device on in -> out (the executor's stream there, else the host), for
  /// the head gradients; `what` completes the error when that device has no such kernel.
  void run_head_op(const char* op, const std::map<std::string, std::string>& attrs, const TBlob& in,
                   OpReq req, const TBlob& out, const std::string& what);
  std::vector<uint32_t> fwd_out_eids_;
  std::vector<Shape> shapes_;
  std::vector<DType> types_;
  MemoryPlan plan_;
  size_t mxnet_plan_bytes_ = 0, naive_bytes_ = 0;
  std::vector<size_t> block_bytes_, block_offset_;
  std::vector<StoragePtr> block_arena_;  // per block: the pool arena holding it (at block_offset_)
  std::shared_ptr<MemoryPool> pool_;
  size_t own_arena_bytes_ = 0;   // bytes of the arena this executor added to the pool (0: all blocks borrowed)
  size_t own_workspace_bytes_ = 0;  // bytes of the workspace this executor allocated (0: the pool's was big enough)
  bool shared_pool_ = false;
  size_t workspace_bytes_ = 0;
  std::vector<TBlob> blobs_;  // per entry
  std::vector<Step> steps_;
  size_t num_fwd_steps_ = 0;
  bool has_backward_ = false, needs_head_grads_ = false, forward_done_train_ = false;
  std::mt19937_64 rng_;
};

}  // namespace kiln
