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
#include <vector>

#include "kiln/alloc.h"
#include "kiln/graph.h"

namespace kiln {

struct BindOptions {
  PlanOptions plan;
  uint64_t seed = 0;
};

class Executor {
 public:
  /// grad_reqs: per argument 0 = null, 1 = write, 3 = add (grads[i] ignored when 0).
  Executor(const std::string& graph_json, Context ctx, const std::vector<NDArray>& args, const std::vector<NDArray>& grads,
           const std::vector<int>& grad_reqs, const std::vector<NDArray>& aux, const BindOptions& opt);
  void forward(bool is_train);
  void backward(const std::vector<NDArray>& head_grads);
  void forward_backward();
  /// Visible outputs (views into the arena or the bound arrays).
  std::vector<NDArray> outputs() const;
  /// JSON memory report (planned, naive and MXNet-compatible bytes; blocks and their entries).
  std::string report() const;

 private:
  struct Step {
    uint32_t nid;
    const Kernel* kernel;
    const Attrs* attrs;
    std::vector<TBlob> in, out;
    std::vector<OpReq> req;
  };
  void run(size_t begin, size_t end, bool is_train);

  Context ctx_;
  Graph graph_;
  std::vector<NodePtr> arg_nodes_, aux_nodes_;  // variables in list_arguments / list_auxiliary_states order
  std::unique_ptr<IndexedGraph> ig_;
  std::vector<NDArray> args_, grads_, aux_, head_grads_;
  std::vector<uint32_t> fwd_out_eids_;
  std::vector<Shape> shapes_;
  std::vector<DType> types_;
  MemoryPlan plan_;
  size_t mxnet_plan_bytes_ = 0, naive_bytes_ = 0;
  std::vector<size_t> block_bytes_, block_offset_;
  StoragePtr arena_, workspace_;
  size_t workspace_bytes_ = 0;
  std::vector<TBlob> blobs_;  // per entry
  std::vector<Step> steps_;
  size_t num_fwd_steps_ = 0;
  bool has_backward_ = false, needs_head_grads_ = false, forward_done_train_ = false;
  std::mt19937_64 rng_;
};

}  // namespace kiln
