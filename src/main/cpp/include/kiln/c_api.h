// The one C boundary between Java (JavaCPP) and the native core.
//
// Rules: every function returns 0 on success and -1 on failure; on failure
// kiln_last_error() returns a thread-local message naming the op, the argument and the shapes.
// Functions that produce text store it thread-locally; read it with kiln_last_string() before
// the next call on the same thread. Handles are opaque int64 values; a handle that is not live
// (never created, already freed) is rejected with an error, never dereferenced.
// Nothing here aborts, exits or lets a C++ exception escape.
#pragma once
#include <cstdint>

const char* kiln_last_error();
const char* kiln_last_string();

// ---- runtime --------------------------------------------------------------------------------
int kiln_init();                                        // registry self-check at load
int kiln_set_num_threads(int n);
int kiln_get_num_threads(int* out);
int kiln_set_conv_algo(int algo);                       // 0 auto, 1 im2col + GEMM, 2 direct, 3 Winograd (where they apply)
int kiln_get_conv_algo(int* out);
int kiln_simd_isa();                                    // string: "avx512f" | "avx2" | "scalar"
int kiln_blas_config();                                 // string: OpenBLAS configuration
/// out[0..3] = current bytes, peak bytes, outstanding blocks, total blocks for a device.
int kiln_memory_stats(int dev_type, int dev_id, int64_t* out);
int kiln_memory_reset_peak(int dev_type, int dev_id);
int kiln_live_handles(int64_t* out);                    // live NDArray + executor + fused-update handles
int kiln_cuda_device_count(int* out);                   // 0 with a message string when none
int kiln_cuda_describe();                               // string: devices or why there are none
int kiln_cuda_set_tf32(int on);                         // allow TF32 for float32 cuDNN/cuBLAS (no-op without CUDA)
int kiln_cuda_tf32(int* out);                           // 1 when TF32 is allowed
int kiln_cuda_cache_stats(int device, int64_t* out);    // out[4]: held, cached, peak held bytes, cudaMalloc calls
int kiln_cuda_empty_cache(int device);                  // cached blocks back to the driver
int kiln_nccl_describe();                               // string: NCCL version and path, or why it is not available
/// A batch of `keys` collectives over the same n GPUs, through NCCL as a few group calls and one
/// wait. Collective k's arrays are handles[k * n .. k * n + n): NDArrays on n distinct GPUs, of one
/// dtype and size, on the same GPUs in the same order for every k. *done = 0, with the reason as
/// the string, when NCCL cannot take the batch (no CUDA build, NCCL missing, an array on the CPU,
/// a dtype NCCL lacks): nothing was changed, and the caller sums or copies another way.
/// reduce_sum: outs[k] (=) the sum of collective k's parts; outs[k] on the GPU of one of them.
int kiln_nccl_reduce_sum(int keys, int n, const int64_t* parts, const int64_t* outs, int* done);
/// broadcast: each array of collective k = its array roots[k].
int kiln_nccl_broadcast(int keys, int n, const int64_t* arrays, const int* roots, int* done);

// ---- registry -------------------------------------------------------------------------------
int kiln_op_list();                                     // string: JSON array of op names (aliases included)
/// string: JSON {"name","inputs":[...],"outputs":[...],"visible_outputs":n,"mutate":[...],
/// "params":[{"name","type","default","description","choices"}], "backward": bool, ...}
/// for the given attributes (JSON object of strings; variable-arity ops need theirs).
int kiln_op_info(const char* op, const char* attrs_json);
int kiln_registry_selftest();                           // string: report; fails if an op is incomplete

// ---- NDArray --------------------------------------------------------------------------------
int kiln_nd_create(int dev_type, int dev_id, int dtype, int ndim, const int64_t* shape, int64_t* out);
int kiln_nd_free(int64_t h);
/// out = [dtype, dev_type, dev_id, ndim, dims...]; cap is the length of out (>= 4 + ndim).
int kiln_nd_info(int64_t h, int64_t* out, int cap);
/// Copies nbytes from host memory; nbytes must equal the array's byte size.
int kiln_nd_write(int64_t h, const void* src, int64_t nbytes);
int kiln_nd_read(int64_t h, void* dst, int64_t nbytes);
/// New handle viewing the same storage with another shape of the same size.
int kiln_nd_reshape(int64_t h, int ndim, const int64_t* shape, int64_t* out);
/// New handle viewing rows [begin, end) of axis 0.
int kiln_nd_slice(int64_t h, int64_t begin, int64_t end, int64_t* out);
int kiln_nd_copy_to(int64_t src, int64_t dst);          // same shape, any device / dtype conversion
int kiln_nd_fill(int64_t h, double value);
/// dist 0 = uniform(a, b), 1 = normal(mean a, std b); deterministic for a seed.
int kiln_nd_random(int64_t h, int dist, double a, double b, int64_t seed);

// ---- imperative operator call ---------------------------------------------------------------
/// Runs one op. inputs: nin handles. outputs: nout_cap slots; a nonzero slot is written in place
/// (kWriteTo), a zero slot gets a new array. *nout = number of visible outputs. When the op has
/// more visible outputs than nout_cap, nothing runs: the call returns 0 with *nout > nout_cap, and
/// the caller calls again with that many slots.
int kiln_op_invoke(const char* op, const char* attrs_json, int nin, const int64_t* inputs, int nout_cap,
                   int64_t* outputs, int* nout);

// ---- symbol graphs --------------------------------------------------------------------------
/// Shape and type inference. graph_json: MXNet symbol JSON (current format). known_json:
/// {"shapes":{"name":[dims]...},"types":{"name":"float32"...},"partial":bool}. string: JSON
/// {"arg_shapes":[...],"out_shapes":[...],"aux_shapes":[...],"arg_types":...,"complete":bool};
/// unknown dims are -1, an unknown rank is null.
int kiln_infer(const char* graph_json, const char* known_json);

// ---- executor -------------------------------------------------------------------------------
/// Binds a graph. args/aux: handles in list_arguments / list_auxiliary_states order. grads:
/// one per argument, 0 where grad_reqs[i] == 0 (null); grad_reqs: 0 null, 1 write, 3 add.
/// options_json: {"mxnet_compatible_plan":bool,"match_range":int,"inplace":bool,"seed":int}.
int kiln_exec_bind(const char* graph_json, int dev_type, int dev_id, int narg, const int64_t* args,
                   const int64_t* grads, const int* grad_reqs, int naux, const int64_t* aux,
                   const char* options_json, int64_t* out);
/// Like kiln_exec_bind; shared_exec (0: none) is an executor whose memory pool (arenas and
/// workspace) the new one joins: it borrows what fits and adds only what does not. The two
/// must run one at a time. Either may be freed first.
int kiln_exec_bind_shared(const char* graph_json, int dev_type, int dev_id, int narg, const int64_t* args,
                          const int64_t* grads, const int* grad_reqs, int naux, const int64_t* aux,
                          const char* options_json, int64_t shared_exec, int64_t* out);
int kiln_exec_forward(int64_t ex, int is_train);
/// head grads: one handle per output or nhead == 0 (loss-terminated graphs).
int kiln_exec_backward(int64_t ex, int nhead, const int64_t* head_grads);
int kiln_exec_forward_backward(int64_t ex);
/// Loss scaling (Executor::set_loss_scale): the loss operators' gradients are multiplied by scale.
int kiln_exec_set_loss_scale(int64_t ex, double scale);
int kiln_exec_loss_scale(int64_t ex, double* out);
/// New view handles of the visible outputs (caller owns and frees them).
int kiln_exec_outputs(int64_t ex, int cap, int64_t* out, int* n);
int kiln_exec_report(int64_t ex);                      // string: memory report JSON
int kiln_exec_free(int64_t ex);
/// Monitor (MXNet's executor monitor callback, taken as snapshots): mode 0 off (no memory, no
/// copies), 1 every op output is copied into an executor-owned snapshot after the op runs,
/// 2 every op input too, before the op runs (monitor_all).
int kiln_exec_set_monitor(int64_t ex, int mode);
/// Snapshots of the last forward and the backward after it, in execution order. *n = their
/// number. When cap >= *n: out receives new view handles (caller frees them) and the string is
/// a JSON array of their MXNet names; when cap < *n nothing else is written (call again).
int kiln_exec_monitor_entries(int64_t ex, int cap, int64_t* out, int* n);

// ---- fused updates (api/c_api_update.cc; dev.kiln.optimizer.FusedUpdate) --------------------
/// A new, empty plan of op calls run together by kiln_fused_run (an optimizer step).
int kiln_fused_create(int64_t* out);
/// Appends one call of a registered op. attrs_json: static attributes (JSON object);
/// dynamic_keys_json: JSON array of the names of numeric parameters whose values each run
/// supplies. inputs/outputs: nin / nout borrowed NDArray handles (nout = the op's visible
/// outputs); an output that is one of the inputs is updated in place (e.g. the weight). Everything
/// is parsed and checked here (attributes, counts, shapes, types, devices). *index = call index.
int kiln_fused_add(int64_t plan, const char* op, const char* attrs_json, const char* dynamic_keys_json, int nin,
                   const int64_t* inputs, int nout, const int64_t* outputs, int* index);
/// out[0] = number of calls, out[1] = number of dynamic values a run takes.
int kiln_fused_info(int64_t plan, int* out);
/// Runs every call in order. dyn: n values, those of call 0 first, each call's in the order of
/// its dynamic keys. Every handle is resolved (closed arrays are an error) and every value range-
/// checked before the first kernel runs; a kernel failure leaves the earlier calls applied.
int kiln_fused_run(int64_t plan, int n, const double* dyn);
/// *out = 1 when the plan's runs replay a CUDA graph, 0 when they run eagerly (CPU, or not yet
/// recorded), -1 when recording failed or cannot apply (always eager).
int kiln_fused_graph(int64_t plan, int* out);
int kiln_fused_free(int64_t plan);
