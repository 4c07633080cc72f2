// The operator registry: every operator is one OpDef, filled in one place (its ops/<family>/*.cc
// file), read by the graph passes (gradient, shape/type inference, memory planner) and by the
// executor. See docs/adding-an-op.md.
#pragma once
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

// ------------------------------------------------------------------------------------------
// Parameters
// ------------------------------------------------------------------------------------------

enum class ParamType { kInt, kFloat, kBool, kEnum, kShape, kString };

/// The upper bound of every arity parameter (num_args, num_outputs, num_arrays): the most inputs or
/// outputs one variable-arity operator may have. Their name lists are built from the attributes,
/// so a larger count (say 2^31 - 1 from a malformed JSON) would exhaust memory instead of failing.
constexpr double kMaxArity = 65536;

/// One declared parameter: its MXNet name, type, default (as MXNet prints it; "" = required,
/// "None" = optional and unset), bounds for numbers, choices for enums, and a description.
struct ParamDef {
  std::string name;
  ParamType type = ParamType::kFloat;
  std::string default_value;             // "" = required
  std::string description;
  double lower = -1e300, upper = 1e300;  // inclusive bounds for kInt / kFloat
  std::vector<std::string> choices;      // for kEnum
};

/// Parsed value of one parameter.
struct ParamValue {
  bool set = false;             // false only for an optional ("None") parameter left unset
  double num = 0;               // kInt, kFloat, kBool
  std::string str;              // kEnum, kString (and the raw text of every value)
  std::vector<int64_t> tuple;   // kShape, e.g. "(2, 2)" or "(-1, 0)"
};

struct OpDef;

/// A node's attributes: the raw MXNet string dictionary (kept for JSON round trips) and the
/// values parsed from it against the op's ParamDefs (defaults filled in, bounds checked).
/// Accessors throw KilnError for a name the op did not declare.
struct Attrs {
  std::map<std::string, std::string> dict;   // as in the symbol JSON "attrs"
  const OpDef* op = nullptr;
  std::vector<ParamValue> values;            // parallel to op->params

  const ParamValue& get(const std::string& name) const;
  int64_t i(const std::string& name) const { return (int64_t)get(name).num; }
  double f(const std::string& name) const { return get(name).num; }
  bool b(const std::string& name) const { return get(name).num != 0; }
  const std::string& s(const std::string& name) const { return get(name).str; }
  const std::vector<int64_t>& t(const std::string& name) const { return get(name).tuple; }
  /// False for an optional parameter whose value is None.
  bool has(const std::string& name) const { return get(name).set; }
};

// ------------------------------------------------------------------------------------------
// Graph (shared by the gradient pass and the executor)
// ------------------------------------------------------------------------------------------

struct Node;
using NodePtr = std::shared_ptr<Node>;

/// Output `index` of `node`.
struct NodeEntry {
  NodePtr node;
  uint32_t index = 0;
};

/// An operator application, or a variable when op == nullptr.
struct Node {
  const OpDef* op = nullptr;
  std::string name;
  Attrs attrs;
  std::vector<NodeEntry> inputs;
  std::vector<NodePtr> control_deps;  // for a backward node, control_deps[0] is its forward node
  bool is_variable() const { return op == nullptr; }
};

// ------------------------------------------------------------------------------------------
// Kernels
// ------------------------------------------------------------------------------------------

/// What a kernel must do with each output (MXNet's OpReqType).
enum class OpReq : int { kNullOp = 0, kWriteTo = 1, kWriteInplace = 2, kAddTo = 3 };

/// Per-call context given to every kernel.
struct OpCtx {
  bool is_train = false;
  Context ctx;
  void* workspace = nullptr;      // at least OpDef::workspace bytes, 64-byte aligned, scratch only
  size_t workspace_bytes = 0;
  std::mt19937_64* rng = nullptr; // the executor's seeded generator (Dropout)
  void* stream = nullptr;         // cudaStream_t on the GPU, null on the CPU
  double loss_scale = 1.0;        // dynamic loss scaling: loss operators multiply their gradient by it
};

/// A loss operator's gradient factor: its grad_scale attribute times the executor's loss scale
/// (Executor::set_loss_scale). Every is_loss operator's backward uses this, on every device.
inline double loss_grad_scale(const OpCtx& ctx, const Attrs& a) { return a.f("grad_scale") * ctx.loss_scale; }

using Kernel = std::function<void(const OpCtx&, const Attrs&, const std::vector<TBlob>& in,
                                  const std::vector<OpReq>& req, const std::vector<TBlob>& out)>;

/// Thrown by shape/type inference. `input` tells whether `index` counts inputs or outputs; the
/// graph pass adds the node name, the op and the argument name to the message.
struct InferError : KilnError {
  bool input;
  int index;
  InferError(bool is_input, int idx, const std::string& m) : KilnError(m), input(is_input), index(idx) {}
};

/// Bidirectional shape inference: refine unknown dims of `in` and `out` from each other; throw
/// InferError on a conflict. Return value is ignored (completion is judged by the pass).
using InferShapeFn = std::function<void(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out)>;
using InferTypeFn = std::function<void(const Attrs&, std::vector<DType>* in, std::vector<DType>* out)>;
/// Builds the gradient of every input from the gradients of every output. Returns one entry per
/// input of `fwd` (use no_gradient() for aux states / integer inputs).
using GradFn = std::function<std::vector<NodeEntry>(const NodePtr& fwd, const std::vector<NodeEntry>& ograds)>;
using WorkspaceFn = std::function<size_t(const Attrs&, const std::vector<Shape>& in, const std::vector<Shape>& out)>;

// ------------------------------------------------------------------------------------------
// The operator definition
// ------------------------------------------------------------------------------------------

struct OpDef {
  std::string name;
  std::vector<std::string> aliases;
  std::string description;
  std::vector<ParamDef> params;

  // Inputs and outputs. Variable-arity ops override the functions; fixed ones set the lists.
  std::vector<std::string> input_names_ = {"data"};
  std::vector<std::string> output_names_ = {"output"};
  std::function<std::vector<std::string>(const Attrs&)> input_names_fn;   // optional
  std::function<std::vector<std::string>(const Attrs&)> output_names_fn;  // optional
  std::function<int(const Attrs&)> num_visible_outputs_fn;                // optional; default all
  std::function<std::vector<int>(const Attrs&)> mutate_inputs;            // aux-state inputs
  std::vector<std::string> input_names(const Attrs& a) const { return input_names_fn ? input_names_fn(a) : input_names_; }
  std::vector<std::string> output_names(const Attrs& a) const { return output_names_fn ? output_names_fn(a) : output_names_; }
  int num_inputs(const Attrs& a) const { return (int)input_names(a).size(); }
  int num_outputs(const Attrs& a) const { return (int)output_names(a).size(); }
  int num_visible_outputs(const Attrs& a) const { return num_visible_outputs_fn ? num_visible_outputs_fn(a) : num_outputs(a); }

  // Inference. A backward op (is_backward) needs neither: output j takes the shape/type of
  // input j of its forward node (control_deps[0]).
  InferShapeFn infer_shape;
  InferTypeFn infer_type;  // default: every input and output has the same type

  // Kernels per device, indexed by DevType (kCPU = 1, kGPU = 2).
  Kernel cpu;
  Kernel gpu;  // set by the CUDA build; empty = "not on GPU yet"
  /// Low-precision types (kNativeFloat16 | kNativeBfloat16, kiln/low_precision.h) the kernel takes
  /// itself; blobs of the other ones are widened to float32 around it by the promoting wrapper.
  uint8_t native_low_precision_cpu = 0;
  uint8_t native_low_precision_gpu = 0;
  /// Integer types (uint8, int8, int32, int64) go through the float64 kernel by the integer
  /// wrapper (kiln/low_precision.h): integer inputs are widened to float64, each integer output is
  /// truncated and wrapped into its type as MXNet's integer arithmetic does. False: the kernel
  /// sees integer blobs itself (and most refuse them). `integer_params`: the float parameters
  /// MXNet applies as DType(param) (a scalar op's `scalar`), converted to the integer type first.
  bool integers_via_float64 = false;
  std::vector<std::string> integer_params;
  /// MXNet 1.9 registers the op without FListInputNames, so its monitor calls the inputs input0,
  /// input1, ... (Executor's monitor follows; checked in dev.kiln.mxnet.MonitorOracleTest). Input
  /// names for Symbol composition are input_names_ either way.
  bool mxnet_unnamed_inputs = false;

  // Gradient: exactly one of gradient / non_differentiable.
  GradFn gradient;
  bool non_differentiable = false;
  /// Loss ops compute their gradient without the output gradient; zero-propagation must not
  /// replace them by zeros_like.
  bool is_loss = false;
  bool is_backward = false;  // a _backward_X op created by a GradFn
  /// The backward has a side effect (BatchNorm's moving statistics are updated there, as in MXNet
  /// 1.x), so the gradient pass builds it even when every output gradient is zero (behind a
  /// stop_gradient), as MXNet's BatchNormGrad does, instead of pruning it to zeros_like.
  bool backward_always_runs = false;

  // Memory planner inputs.
  std::function<std::vector<std::pair<int, int>>(const Attrs&)> inplace;  // (input, output) pairs
  bool inplace_identity = false;  // outputs alias inputs exactly (Reshape, Flatten, identity)
  std::function<std::vector<int>(const Attrs&)> ignore_inputs;            // data not read
  WorkspaceFn workspace;          // scratch bytes per call
  bool needs_random = false;
  std::function<bool(const Attrs&, bool is_train)> needs_random_fn;  // optional: random for some calls only
  /// Whether a call with these attributes may draw from the generator (so a CUDA-graph replay,
  /// which repeats the recorded seed, cannot stand in for it).
  bool random(const Attrs& a, bool is_train) const {
    return needs_random || (needs_random_fn && needs_random_fn(a, is_train));
  }
  /// Hidden outputs the kernel always writes even under kNullOp (must get memory).
  bool outputs_always_written = false;
  std::function<bool(const Attrs&)> outputs_always_written_fn;  // optional: for some attributes only
  bool always_written(const Attrs& a) const {
    return outputs_always_written || (outputs_always_written_fn && outputs_always_written_fn(a));
  }
};

/// Global registry of operators; filled once at library load, read-only afterwards.
class OpRegistry {
 public:
  static OpRegistry& get();
  /// Adds an op (and its aliases). Returns the stored definition for further edits.
  OpDef& add(OpDef def);
  /// nullptr when unknown.
  const OpDef* find(const std::string& name) const;
  /// Like find but throws "operator X is not supported".
  const OpDef& at(const std::string& name) const;
  OpDef* find_mutable(const std::string& name);
  std::vector<const OpDef*> all() const;
 private:
  std::map<std::string, std::unique_ptr<OpDef>> ops_;
  std::map<std::string, OpDef*> by_name_;  // names and aliases
};

/// Parses a string dictionary against the op's parameters (defaults, bounds, enum choices, no
/// unknown keys except "__dunder__" attributes). Errors name the op, the parameter and the value.
Attrs parse_attrs(const OpDef& op, const std::map<std::string, std::string>& dict);
/// Parses MXNet's tuple text ("(2, 2)", "[2,2]", "(3,)", "()", a bare "2"; "None" items become -1).
/// Returns false on malformed text.
bool parse_shape_tuple(const std::string& text, std::vector<int64_t>* out);

// ---- helpers for gradient rules -----------------------------------------------------------

/// A new node of registered op `op` with the given name, raw attributes and inputs.
NodePtr make_node(const std::string& op, const std::string& name, const std::map<std::string, std::string>& attrs,
                  const std::vector<NodeEntry>& inputs);
/// A `_backward_X` node: same attribute dictionary as `fwd`, name "<fwd>_backward",
/// control_deps = {fwd}. Returns its outputs 0..n-1 (n = number of outputs of `op`).
std::vector<NodeEntry> make_backward(const std::string& op, const NodePtr& fwd, const std::vector<NodeEntry>& inputs);
/// Entry used as the "gradient" of inputs that get none (aux states, labels of losses use
/// their backward's extra output instead). Never executed, never allocated.
NodeEntry no_gradient();
bool is_no_gradient(const NodeEntry& e);
/// zeros_like(e), named name.
NodeEntry zeros_like(const NodeEntry& e, const std::string& name);
/// True when e is produced by zeros_like / _zeros / _zeros_without_dtype.
bool is_zero_entry(const NodeEntry& e);

// ---- helpers for shape inference ----------------------------------------------------------

/// Merge `src` into `*dst` (MXNet shape_assign). Returns false on a conflict.
bool shape_assign(Shape* dst, const Shape& src);
/// shape_assign on input i / output i; throws InferError "Shape inconsistent, Provided = <dst>,
/// inferred shape = <src>" on conflict.
void assign_in(std::vector<Shape>* in, int i, const Shape& s);
void assign_out(std::vector<Shape>* out, int i, const Shape& s);
/// Same-shape rule for elementwise ops: all inputs and outputs unified dim by dim.
void infer_same_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out);
/// Same-type rule (the default).
// ---- builders shared by the operator families' registrations -----------------------------

/// A parameter declaration; numbers get inclusive bounds [lower, upper], enums their choices.
inline ParamDef param(const std::string& name, ParamType type, const std::string& def, const std::string& desc,
                      double lower = -1e300, double upper = 1e300, std::vector<std::string> choices = {}) {
  ParamDef p;
  p.name = name;
  p.type = type;
  p.default_value = def;
  p.description = desc;
  p.lower = lower;
  p.upper = upper;
  p.choices = std::move(choices);
  return p;
}

/// A string parameter restricted to `choices`.
inline ParamDef param_enum(const std::string& name, const std::string& def, std::vector<std::string> choices,
                           const std::string& desc) {
  return param(name, ParamType::kEnum, def, desc, -1e300, 1e300, std::move(choices));
}

/// The skeleton of `_backward_<fwd>`: the backward node carries the forward node's attribute
/// dictionary, so it declares the same parameters.
inline OpDef backward_def(const std::string& name, const OpDef& fwd) {
  OpDef d;
  d.name = name;
  d.description = "Backward of " + fwd.name + ".";
  d.params = fwd.params;
  d.is_backward = true;
  d.non_differentiable = true;
  return d;
}

void infer_same_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out);

/// Registration of every op family; each ops/<family>/*.cc defines one.
void register_internal_ops(OpRegistry&);  // ops/internal: identity, _copy, zeros_like, ones_like, _zeros, BlockGrad, ElementWiseSum, _grad_add, _NoGradient
void register_nn_ops(OpRegistry&);        // ops/nn: FullyConnected, Activation, LeakyReLU, softmax family, losses, Dropout
void register_elemwise_ops(OpRegistry&);  // ops/tensor/elemwise*.cc: binary, broadcast, scalar, unary, clip, reductions
void register_shape_ops(OpRegistry&);     // ops/tensor/shape*.cc: Flatten, Reshape, Concat, SliceChannel, transpose, expand_dims, dot
void register_optimizer_ops(OpRegistry&); // ops/optimizer: MXNet 1.9.1 update ops (sgd/nag/adam/rmsprop/ftrl/ftml/signum/lamb, mp_*) + _kiln_* (AdaGrad, AdaDelta, Adamax, Nadam)
void register_conv_ops(OpRegistry&);      // ops/conv: Convolution, Deconvolution
void register_pool_ops(OpRegistry&);      // ops/pool: Pooling, UpSampling, Pad, Crop, _contrib_BilinearResize2D, _contrib_AdaptiveAvgPooling2D, ROIPooling
void register_norm_ops(OpRegistry&);      // ops/norm: BatchNorm, InstanceNorm, LayerNorm, LRN
void register_seq_ops(OpRegistry&);       // ops/seq: Embedding, RNN, SequenceMask, SequenceLast, SequenceReverse
void register_index_ops(OpRegistry&);     // ops/index: slice, take, one_hot, pick, where, tile, repeat, stack, batch_dot, arg*, topk, sort, Cast, _arange
void register_contrib_ops(OpRegistry&);   // ops/contrib: _contrib_box_iou, _contrib_box_nms, _contrib_bipartite_matching, _contrib_box_encode, _contrib_box_decode
void register_random_ops(OpRegistry&);    // ops/random: _random_* samplers (uniform, normal, randint, exponential, gamma, poisson, *_like), _shuffle

}  // namespace kiln
