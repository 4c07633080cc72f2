// The creation operators of MXNet 1.9.1 (src/operator/tensor/init_op.cc) beside _zeros
// (ops/internal) and _arange (sort.cc): _ones, _full, _zeros_without_dtype, _eye, _linspace. No
// inputs; the output's shape comes from the parameters (kiln/creation.h, shared with the GPU
// kernels in cuda/ops/tensor_creation.cu). Integer outputs go through the float64 kernel
// (integers_via_float64: truncated and wrapped as MXNet's cast), float16 through float32.
#include "index_common.h"
#include "kiln/creation.h"

namespace kiln {
namespace index_ops {
namespace {

/// y[i] = value(i) (or += under kAddTo) in float32/float64.
template <typename F>
void write_values(const TBlob& y, OpReq req, F value) {
  if (req == OpReq::kNullOp) return;
  float_switch(y.dtype, [&](auto zero_) {
    using T = decltype(zero_);
    T* yp = y.dptr<T>();  // [n]
    const int64_t n = y.size();
#pragma omp parallel for num_threads(omp_threads(n))
    for (int64_t i = 0; i < n; ++i) assign_req(yp[i], req, (T)value(i));
  });
}

const std::vector<std::string> kCreationTypes = {"float32", "float64", "float16", "uint8", "int32", "int8", "int64"};

ParamDef shape_param() { return param("shape", ParamType::kShape, "()", "The shape of the output"); }
ParamDef ctx_param() {
  return param("ctx", ParamType::kString, "None", "Context of output, in format [cpu|gpu|cpu_pinned](n).Only used for imperative calls.");
}
ParamDef dtype_param() { return param_enum("dtype", "float32", kCreationTypes, "Target data type."); }

void dtype_infer_type(const Attrs& a, std::vector<DType>*, std::vector<DType>* out) {
  (*out)[0] = dtype_from_name(a.s("dtype"));
}

/// A fill of the `shape` parameter (as _zeros) with value(attrs).
OpDef fill_def(const std::string& name, const std::string& description, double (*value)(const Attrs&)) {
  OpDef d;
  d.name = name;
  d.description = description;
  d.integers_via_float64 = true;
  d.input_names_ = {};
  d.params = {shape_param(), ctx_param(), dtype_param()};
  d.infer_shape = [name](const Attrs& a, std::vector<Shape>*, std::vector<Shape>* out) { init_infer_shape(name, a.t("shape"), out); };
  d.infer_type = dtype_infer_type;
  d.cpu = [value](const OpCtx&, const Attrs& a, const std::vector<TBlob>&, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
    const double v = value(a);
    write_values(out[0], req[0], [v](int64_t) { return v; });
  };
  d.non_differentiable = true;
  return d;
}

}  // namespace

void register_creation_ops(OpRegistry& r) {
  r.add(fill_def("_ones", "An array of ones of a given shape; unknown (0) dims are inferred from consumers.",
                 [](const Attrs&) { return 1.0; }));
  {
    OpDef d = fill_def("_full", "An array of a given shape filled with `value`.", [](const Attrs& a) { return a.f("value"); });
    d.params.push_back(param("value", ParamType::kFloat, "", "Value with which to fill stuff"));
    r.add(std::move(d));
  }
  {
    OpDef d = fill_def("_zeros_without_dtype",
                       "An array of zeros of a given shape whose type, unless dtype is given (an MXNet type number), "
                       "comes from its consumers.",
                       [](const Attrs&) { return 0.0; });
    d.params[2] = param("dtype", ParamType::kInt, "-1", "Target data type (an MXNet type number; -1: inferred).", -1, 6);
    d.infer_type = [](const Attrs& a, std::vector<DType>*, std::vector<DType>* out) {
      if (a.i("dtype") >= 0) (*out)[0] = static_cast<DType>(a.i("dtype"));
    };
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_eye";
    d.description = "Return a 2-D array with ones on the k-th diagonal and zeros elsewhere.";
    d.integers_via_float64 = true;
    d.input_names_ = {};
    d.params = {
        param("N", ParamType::kInt, "", "Number of rows in the output.", 0, kMaxCreatedElements),
        param("M", ParamType::kInt, "0", "Number of columns in the output. If 0, defaults to N", -kMaxCreatedElements,
              kMaxCreatedElements),  // M <= 0 means N, as in MXNet
        param("k", ParamType::kInt, "0",
              "Index of the diagonal. 0 (the default) refers to the main diagonal.A positive value refers to an upper "
              "diagonal.A negative value to a lower diagonal."),
        ctx_param(),
        dtype_param(),
    };
    d.infer_shape = [](const Attrs& a, std::vector<Shape>*, std::vector<Shape>* out) { assign_out(out, 0, eye_shape(a)); };
    d.infer_type = dtype_infer_type;
    d.cpu = [](const OpCtx&, const Attrs& a, const std::vector<TBlob>&, const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
      const TBlob& y = out[0];  // [N, M]
      const int64_t cols = y.shape.ndim() == 2 ? y.shape[1] : 1, k = a.i("k");
      if (cols == 0) return;
      write_values(y, req[0], [cols, k](int64_t i) { return eye_value(i / cols, i % cols, k); });
    };
    d.non_differentiable = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_linspace";
    d.description = "Return num evenly spaced numbers over [start, stop] (endpoint=True) or [start, stop).";
    d.integers_via_float64 = true;
    d.input_names_ = {};
    d.params = {
        param("start", ParamType::kFloat, "", "Start of interval. The interval includes this value."),
        param("stop", ParamType::kFloat, "", "End of interval."),
        param("num", ParamType::kInt, "", "Number of samples to generate. Must be non-negative.", 0, kMaxCreatedElements),
        param("endpoint", ParamType::kBool, "True", "If True, stop is the last sample. Otherwise, it is not included."),
        ctx_param(),
        dtype_param(),
    };
    d.infer_shape = [](const Attrs& a, std::vector<Shape>*, std::vector<Shape>* out) {
      assign_out(out, 0, Shape({a.i("num")}));
    };
    d.infer_type = dtype_infer_type;
    d.cpu = [](const OpCtx&, const Attrs& a, const std::vector<TBlob>&, const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
      const double start = a.f("start"), step = linspace_step(a);
      write_values(out[0], req[0], [start, step](int64_t i) { return linspace_value(start, step, i); });  // out: [num]
    };
    d.non_differentiable = true;
    r.add(std::move(d));
  }
}

}  // namespace index_ops
}  // namespace kiln
