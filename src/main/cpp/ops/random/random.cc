// The random operators of MXNet 1.9.1 (src/operator/random/sample_op.cc, shuffle_op.cc):
//   _random_uniform, _random_normal, _random_randint, _random_exponential, _random_gamma,
//   _random_poisson: no inputs, an array of the `shape` parameter (as _zeros) of samples;
//   _random_uniform_like, _random_normal_like: samples with the input's shape and type (the input's
//   data is not read; its gradient is zero);
//   _shuffle: the input's rows (axis 0) in a random order; not differentiable.
// Every call draws one seed from the executor's seeded generator and samples with the
// counter-based streams of kiln/sampling.h (shared with cuda/ops/random.cu), so a seed gives the
// same values on every thread count and on the GPU. CUDA-graph capture is off for these ops
// (needs_random).
#include <cstring>

#include "kiln/creation.h"
#include "kiln/kernel_common.h"
#include "kiln/low_precision.h"
#include "kiln/sampling.h"

namespace kiln {
namespace {

uint64_t draw_seed(const OpCtx& ctx, const std::string& op) {
  if (ctx.rng == nullptr) throw KilnError(op + ": no random generator in the op context");
  return (*ctx.rng)();
}

/// Fills out[0] with samples of `dist` (float32/float64, float16 through the promoting wrapper;
/// randint: int32/int64), honouring the request.
void sample_cpu(const std::string& op, Dist dist, const OpCtx& ctx, const Attrs& a, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const TBlob& y = out[0];  // [shape]
  const SampleParams p = sample_params(op, dist, a);
  const uint64_t seed = draw_seed(ctx, op);
  const int64_t n = y.size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  const OpReq r = req[0];
  if (dist == Dist::kRandInt) {
    auto fill = [&](auto zero_) {
      using I = decltype(zero_);
      I* yp = y.dptr<I>();
#pragma omp parallel for num_threads(omp_threads(n))
      for (int64_t i = 0; i < n; ++i) {
        ElementRng g(seed, i);
        assign_req(yp[i], r, (I)g.randint(p.lo, p.hi));  // int32: the int64 value modulo 2^32, as MXNet's cast
      }
    };
    if (y.dtype == DType::kInt32) fill(int32_t{});
    else if (y.dtype == DType::kInt64) fill(int64_t{});
    else throw KilnError(op + ": the output must be int32 or int64, got " + dtype_name(y.dtype));
    return;
  }
  float_switch(y.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    T* yp = y.dptr<T>();
    // gamma and poisson draw several numbers per element: threads pay off earlier
#pragma omp parallel for num_threads(omp_threads(n * 8))
    for (int64_t i = 0; i < n; ++i) assign_req(yp[i], r, sample_as<T>(p, sample_value(p, seed, i)));
  });
}

/// MXNet's SampleOpType: a type already inferred for the output wins (dtype, when given, must
/// equal it), else dtype, else float32 (int32 for randint); only float16/32/64 (int32/int64 for
/// randint) are allowed.
InferTypeFn sample_infer_type(const std::string& op, bool integer) {
  return [op, integer](const Attrs& a, std::vector<DType>*, std::vector<DType>* out) {
    const std::string& name = a.s("dtype");
    const DType want = name == "None" ? DType::kUnknown : dtype_from_name(name);
    DType& o = (*out)[0];
    if (o == DType::kUnknown) o = want != DType::kUnknown ? want : integer ? DType::kInt32 : DType::kFloat32;
    if (want != DType::kUnknown && o != want)
      throw InferError(false, 0, op + ": the output type " + dtype_name(o) + " does not match dtype=" + name);
    const bool ok = integer ? (o == DType::kInt32 || o == DType::kInt64)
                            : (o == DType::kFloat16 || o == DType::kFloat32 || o == DType::kFloat64);
    if (!ok)
      throw InferError(false, 0, op + ": the output type must be " + (integer ? "int32 or int64" : "float16, float32 or float64") +
                                     ", got " + dtype_name(o));
  };
}

/// The _like samplers: the input's type, a float one (bfloat16 too: computed in float32).
void like_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  DType& t = (*in)[0];
  if (t == DType::kUnknown) t = (*out)[0];
  if (t == DType::kUnknown) return;
  if (t != DType::kFloat16 && t != DType::kBfloat16 && t != DType::kFloat32 && t != DType::kFloat64)
    throw InferError(true, 0, a.op->name + ": the input must be float16, bfloat16, float32 or float64 (its type is the output's), got " +
                                  dtype_name(t));
  if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
    throw InferError(false, 0, a.op->name + ": the output type " + std::string(dtype_name((*out)[0])) + " differs from the input's " +
                                   dtype_name(t));
  (*out)[0] = t;
}

std::vector<NodeEntry> zero_input_grad(const NodePtr& fwd, const std::vector<NodeEntry>&) {
  return {zeros_like(fwd->inputs[0], fwd->name + "_data_backward")};
}

/// The parameters every no-input sampler ends with (MXNet's shape, ctx, dtype).
void add_init_params(OpDef& d, bool integer) {
  d.params.push_back(param("shape", ParamType::kShape, "()", "Shape of the output."));
  d.params.push_back(param("ctx", ParamType::kString, "None",
                           "Context of output, in format [cpu|gpu|cpu_pinned](n). Only used for imperative calls."));
  if (integer)
    d.params.push_back(param_enum("dtype", "None", {"None", "int32", "int64"},
                                  "DType of the output in case this can't be inferred. Defaults to int32 if not defined (dtype=None)."));
  else
    d.params.push_back(param_enum("dtype", "None", {"None", "float32", "float64", "float16"},
                                  "DType of the output in case this can't be inferred. Defaults to float32 if not defined (dtype=None)."));
}

/// A sampler with no input (the `shape` parameter gives the output) or, with `like`, one input
/// whose shape and type the output takes.
OpDef sampler_def(const std::string& name, std::vector<std::string> aliases, Dist dist, std::vector<ParamDef> dist_params,
                  bool like, const std::string& description) {
  OpDef d;
  d.name = name;
  d.aliases = std::move(aliases);
  d.description = description;
  d.params = std::move(dist_params);
  const bool integer = dist == Dist::kRandInt;
  if (like) {
    d.input_names_ = {"data"};
    d.infer_shape = infer_same_shape;
    d.infer_type = like_infer_type;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{0}; };
    d.gradient = zero_input_grad;
  } else {
    add_init_params(d, integer);
    d.input_names_ = {};
    d.infer_shape = [name](const Attrs& a, std::vector<Shape>*, std::vector<Shape>* out) {
      init_infer_shape(name, a.t("shape"), out);
    };
    d.infer_type = sample_infer_type(name, integer);
    d.non_differentiable = true;
  }
  d.cpu = [name, dist](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>&, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) { sample_cpu(name, dist, ctx, a, req, out); };
  d.needs_random = true;
  return d;
}

ParamDef fparam(const char* name, const char* def, const char* desc) { return param(name, ParamType::kFloat, def, desc); }

/// _shuffle: y[i, ...] = x[perm[i], ...] for a random permutation of the rows; any type.
void shuffle_cpu(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [n, ...] (a scalar is one row)
  const TBlob& y = out[0];  // same shape, not in place
  if (req[0] == OpReq::kAddTo) throw KilnError("_shuffle: accumulation (grad_req add) is not supported, as in MXNet");
  if (ctx.rng == nullptr) throw KilnError("_shuffle: no random generator in the op context");
  const int64_t rows = x.shape.ndim() > 0 ? x.shape[0] : 1;
  if (req[0] == OpReq::kNullOp || x.size() == 0) return;
  const std::vector<int64_t> perm = shuffle_permutation(*ctx.rng, rows);
  const size_t row_bytes = x.bytes() / (size_t)rows;
  const char* xp = static_cast<const char*>(x.ptr);  // [rows, row_bytes]
  char* yp = static_cast<char*>(y.ptr);               // [rows, row_bytes]
  for (int64_t i = 0; i < rows; ++i) std::memcpy(yp + (size_t)i * row_bytes, xp + (size_t)perm[(size_t)i] * row_bytes, row_bytes);
}

}  // namespace

void register_random_ops(OpRegistry& r) {
  const ParamDef low = fparam("low", "0", "Lower bound of the distribution.");
  const ParamDef high = fparam("high", "1", "Upper bound of the distribution.");
  const ParamDef loc = fparam("loc", "0", "Mean of the distribution.");
  const ParamDef scale = fparam("scale", "1", "Standard deviation of the distribution.");
  r.add(sampler_def("_random_uniform", {"uniform", "random_uniform"}, Dist::kUniform, {low, high}, false,
                    "Draw random samples from a uniform distribution over the half-open interval [low, high)."));
  r.add(sampler_def("_random_normal", {"normal", "random_normal"}, Dist::kNormal, {loc, scale}, false,
                    "Draw random samples from a normal (Gaussian) distribution of mean loc and standard deviation scale."));
  r.add(sampler_def("_random_randint", {"random_randint"}, Dist::kRandInt,
                    {param("low", ParamType::kInt, "", "Lower bound of the distribution."),
                     param("high", ParamType::kInt, "", "Upper bound of the distribution.")},
                    false, "Draw random samples from a discrete uniform distribution over the half-open interval [low, high)."));
  r.add(sampler_def("_random_exponential", {"random_exponential"}, Dist::kExponential,
                    {fparam("lam", "1", "Lambda parameter (rate) of the exponential distribution.")}, false,
                    "Draw random samples from an exponential distribution of rate lam."));
  r.add(sampler_def("_random_gamma", {"random_gamma"}, Dist::kGamma,
                    {fparam("alpha", "1", "Alpha parameter (shape) of the gamma distribution."),
                     fparam("beta", "1", "Beta parameter (scale) of the gamma distribution.")},
                    false, "Draw random samples from a gamma distribution of shape alpha and scale beta."));
  r.add(sampler_def("_random_poisson", {"random_poisson"}, Dist::kPoisson,
                    {fparam("lam", "1", "Lambda parameter (rate) of the Poisson distribution.")}, false,
                    "Draw random samples from a Poisson distribution of rate lam (as floating point values)."));
  r.add(sampler_def("_random_uniform_like", {}, Dist::kUniform, {low, high}, true,
                    "Draw random samples from a uniform distribution over [low, high), with the input array's shape and type."));
  r.add(sampler_def("_random_normal_like", {}, Dist::kNormal, {loc, scale}, true,
                    "Draw random samples from a normal distribution, with the input array's shape and type."));
  {
    OpDef d;
    d.name = "_shuffle";
    d.aliases = {"shuffle"};
    d.description =
        "Randomly shuffle the elements along the first axis: the rows change order, the elements within a row do not.";
    d.infer_shape = infer_same_shape;
    d.cpu = shuffle_cpu;
    d.native_low_precision_cpu = kNativeLowPrecision;  // rows are copied as bytes
    d.non_differentiable = true;
    d.needs_random = true;
    r.add(std::move(d));
  }
}

}  // namespace kiln
