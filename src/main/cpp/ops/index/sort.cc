// topk, sort, argsort and _arange (MXNet src/operator/tensor/ordering_op-inl.h, init_op.h).
// topk/sort view the input as [outer, n, inner] around `axis` (axis=None: the flattened array,
// [1, size, 1]); each of the outer*inner lines is ordered by a stable index sort. topk with
// ret_typ=value and sort have a hidden second output (the indices) that their backward reads.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "index_common.h"
#include "kiln/arange.h"
#include "kiln/int_convert.h"

namespace kiln {
namespace index_ops {
namespace {

struct SortCfg {
  bool has_axis;
  int64_t axis, k;
  std::string ret;  // value, indices, mask, both
  bool ascend;
  DType idtype;
};

SortCfg topk_cfg(const Attrs& a) {
  return {a.has("axis"), a.has("axis") ? a.i("axis") : 0, a.i("k"), a.s("ret_typ"), a.b("is_ascend"),
          dtype_from_name(a.s("dtype"))};
}
SortCfg sort_cfg(const Attrs& a) {  // its index output is hidden (int64, see sort_infer_type)
  return {a.has("axis"), a.has("axis") ? a.i("axis") : 0, 0, "value", a.b("is_ascend"), DType::kInt64};
}
SortCfg argsort_cfg(const Attrs& a) {
  return {a.has("axis"), a.has("axis") ? a.i("axis") : 0, 0, "indices", a.b("is_ascend"), dtype_from_name(a.s("dtype"))};
}

struct Dims {
  int64_t outer, n, inner, k;
  int ax;  // -1 for axis=None
};

/// Resolves axis and k against a known-rank shape; throws InferError on bad values.
Dims sort_dims(const SortCfg& c, const Shape& x, const char* op) {
  Dims d{1, -1, 1, 0, -1};
  if (!c.has_axis) {
    d.n = x.known() ? x.size() : -1;
  } else {
    if (x.ndim() == 0) throw InferError(true, 0, std::string(op) + ": a zero-dimensional input needs axis=None");
    d.ax = norm_axis(c.axis, x.ndim());
    if (d.ax < 0)
      throw InferError(true, 0, std::string(op) + ": axis=" + std::to_string(c.axis) + " is out of range for input shape " +
                                    x.str());
    d.n = x[d.ax];
    if (x.known()) {
      d.outer = x.prod(0, d.ax);
      d.inner = x.prod(d.ax + 1, x.ndim());
    }
  }
  d.k = c.k < 1 ? d.n : c.k;
  if (d.n >= 0 && c.k >= 1 && c.k > d.n)
    throw InferError(true, 0, std::string(op) + ": k must be smaller than " + std::to_string(d.n) + " (got k=" +
                                  std::to_string(c.k) + ", input shape " + x.str() + ")");
  // the visible indices must hold every position exactly, as MXNet's documentation promises (a
  // rounded position would name another element, and the gradient would go there)
  const double exact = c.idtype == DType::kFloat16 ? 2048.0
                       : c.idtype == DType::kBfloat16 ? 256.0
                       : c.idtype == DType::kFloat32 ? 16777216.0
                       : c.idtype == DType::kUint8 ? 255.0
                       : c.idtype == DType::kInt8 ? 127.0
                       : c.idtype == DType::kInt32 ? 2147483647.0
                                                   : 9007199254740992.0;  // float64 (2^53), int64
  if ((c.ret == "indices" || c.ret == "both") && d.n > 0 && (double)(d.n - 1) > exact)
    throw InferError(true, 0, std::string(op) + ": dtype=" + dtype_name(c.idtype) + " cannot hold the indices of " +
                                  std::to_string(d.n) + " elements exactly (input shape " + x.str() + "; up to " +
                                  std::to_string((int64_t)exact + 1) + "); choose a wider dtype");
  return d;
}

template <SortCfg (*Cfg)(const Attrs&)>
void sort_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const SortCfg c = Cfg(a);
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  const Dims d = sort_dims(c, x, a.op ? a.op->name.c_str() : "topk");
  if (c.ret == "mask") {
    assign_out(out, 0, x);
    return;
  }
  Shape o;
  if (d.ax < 0) o = Shape({d.k});
  else {
    o = x;
    o[d.ax] = d.k;
  }
  for (size_t i = 0; i < out->size(); ++i) assign_out(out, (int)i, o);
}

template <SortCfg (*Cfg)(const Attrs&)>
void sort_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  const SortCfg c = Cfg(a);
  const DType t = (*in)[0];
  if (c.ret == "indices") {
    if ((*out)[0] != DType::kUnknown && (*out)[0] != c.idtype)
      throw InferError(false, 0, std::string("output type ") + dtype_name((*out)[0]) + " differs from dtype=" + dtype_name(c.idtype));
    (*out)[0] = c.idtype;
    return;
  }
  // value / mask / both: output 0 has the data type, output 1 (if any) the index type
  if (t == DType::kUnknown && (*out)[0] != DType::kUnknown) (*in)[0] = (*out)[0];
  else if (t != DType::kUnknown) {
    if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
      throw InferError(false, 0, std::string("output type ") + dtype_name((*out)[0]) + " differs from the input type " +
                                     dtype_name(t));
    (*out)[0] = t;
  }
  // output 1: the visible indices of 'both' in dtype; the hidden ones of 'value' and sort (for the
  // backward only) in int64, which holds every position exactly whatever the size
  if (out->size() > 1) (*out)[1] = c.ret == "both" ? c.idtype : DType::kInt64;
}

/// a before b in ascending order, NaN after every number (NumPy's order; NaNs tie): a strict weak
/// order even with NaN, which std::stable_sort needs (the GPU's index_sort.cu orders the same way).
template <typename T>
inline bool nan_last_less(T a, T b) {
  return b != b ? a == a : a < b;
}

/// Sorted positions of one line: the first k of a stable sort (descending unless ascend).
template <typename T>
void order_line(const T* p, int64_t n, int64_t stride, bool ascend, std::vector<int64_t>* idx) {
  idx->resize((size_t)n);
  std::iota(idx->begin(), idx->end(), 0);
  if (ascend)
    std::stable_sort(idx->begin(), idx->end(), [&](int64_t a, int64_t b) { return nan_last_less(p[a * stride], p[b * stride]); });
  else
    std::stable_sort(idx->begin(), idx->end(), [&](int64_t a, int64_t b) { return nan_last_less(p[b * stride], p[a * stride]); });
}

template <SortCfg (*Cfg)(const Attrs&)>
void sort_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const SortCfg c = Cfg(a);
  const TBlob& x = in[0];  // [outer, n, inner]
  const Dims d = sort_dims(c, x.shape, a.op ? a.op->name.c_str() : "topk");
  const int64_t n = d.ax < 0 ? x.size() : d.n;
  const int64_t k = d.k;
  for (size_t o = 0; o < out.size(); ++o)
    if (req[o] == OpReq::kAddTo && !is_float(out[o].dtype)) throw KilnError("topk/sort: accumulation needs float32/float64");
  const bool mask = c.ret == "mask";
  const bool values = c.ret == "value" || c.ret == "both";
  // output 0: values [outer, k, inner] (mask: [outer, n, inner], indices: [outer, k, inner]);
  // output 1 (value/both): indices [outer, k, inner]
  if (mask && req[0] == OpReq::kNullOp) return;
  if (mask && req[0] != OpReq::kAddTo) zero_unless_add(out[0], OpReq::kWriteTo);
  const bool hidden_idx = c.ret == "value";  // output 1 is hidden: written whatever its request
  any_switch(x.dtype, [&](auto z) {
    using T = decltype(z);
    const T* xp = x.dptr<T>();
    const int64_t lines = d.outer * d.inner;
    const int nt = omp_threads(lines * n);
#pragma omp parallel num_threads(nt)
    {
      std::vector<int64_t> idx;
#pragma omp for schedule(static)
      for (int64_t l = 0; l < lines; ++l) {
        const int64_t o = l / d.inner, i = l % d.inner;
        const T* p = xp + o * n * d.inner + i;  // stride inner
        order_line(p, n, d.inner, c.ascend, &idx);
        for (int64_t j = 0; j < k; ++j) {
          const int64_t src = idx[j];
          const int64_t dst = (o * k + j) * d.inner + i;
          if (mask) {
            T* m = out[0].dptr<T>();
            assign_req(m[o * n * d.inner + src * d.inner + i], req[0] == OpReq::kAddTo ? OpReq::kAddTo : OpReq::kWriteTo, T(1));
            continue;
          }
          if (values) assign_req(out[0].dptr<T>()[dst], req[0], p[src * d.inner]);
          const int oi = values ? 1 : 0;
          if (oi < (int)out.size()) {
            const OpReq r = (hidden_idx && req[oi] == OpReq::kNullOp) ? OpReq::kWriteTo : req[oi];
            any_switch(out[oi].dtype, [&](auto zi) {
              using I = decltype(zi);
              assign_req(out[oi].dptr<I>()[dst], r, (I)src);
            });
          }
        }
      }
    }
  });
}

/// Inputs: dvalue [outer, k, inner], indices [outer, k, inner]; output dx [outer, n, inner].
template <SortCfg (*Cfg)(const Attrs&)>
void sort_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const SortCfg c = Cfg(a);
  const TBlob& dx = out[0];
  const Dims d = sort_dims(c, dx.shape, "_backward_topk");
  const int64_t n = d.ax < 0 ? dx.size() : d.n;
  const int64_t k = d.k;
  float_switch(dx.dtype, [&](auto z) {
    using T = decltype(z);
    zero_unless_add(dx, req[0]);
    const T* g = in[0].dptr<T>();
    T* gx = dx.dptr<T>();
    any_switch(in[1].dtype, [&](auto zi) {
      using I = decltype(zi);
      const I* ip = in[1].dptr<I>();
      for (int64_t o = 0; o < d.outer; ++o)
        for (int64_t j = 0; j < k; ++j)
          for (int64_t i = 0; i < d.inner; ++i) {
            const int64_t q = (o * k + j) * d.inner + i;
            const int64_t src = index_value(ip[q]);
            if (src >= 0 && src < n) gx[(o * n + src) * d.inner + i] += g[q];
          }
    });
  });
}

// ---- _arange ----------------------------------------------------------------------------------

void arange_infer_shape(const Attrs& a, std::vector<Shape>*, std::vector<Shape>* out) {
  assign_out(out, 0, Shape({arange_range(a).size}));
}

void arange_infer_type(const Attrs& a, std::vector<DType>*, std::vector<DType>* out) {
  const DType t = dtype_from_name(a.s("dtype"));
  if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
    throw InferError(false, 0, std::string("_arange: output type ") + dtype_name((*out)[0]) + " differs from dtype=" +
                                   a.s("dtype"));
  (*out)[0] = t;
}

/// y[i] = start + (i / repeat) * step, computed in the output type (MXNet's range kernel).
/// y [size] = start + (i / repeat) * step in y's type (_arange and _contrib_arange_like).
void arange_fill(const TBlob& y, OpReq req, double start_d, double step_d, int64_t repeat) {
  if (req == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("_arange: accumulation needs float32/float64");
  const int64_t size = y.size();
  any_switch(y.dtype, [&](auto z) {
    using T = decltype(z);
    T* p = y.dptr<T>();  // [size]
    if constexpr (std::is_integral<T>::value) {
      // start and step as T first (MXNet's DType(start): truncated and wrapped, as the integer
      // scalar ops' parameters, kiln/int_convert.h), then start + j * step in 64-bit two's complement
      // and narrowed modulo T's range, as MXNet's integer arithmetic: exact, no signed overflow
      const uint64_t start = (uint64_t)(int64_t)wrap_to_int<T>(start_d);
      const uint64_t step = (uint64_t)(int64_t)wrap_to_int<T>(step_d);
      for (int64_t i = 0; i < size; ++i) p[i] = (T)(int64_t)(start + (uint64_t)(i / repeat) * step);
    } else {
      const T start = (T)start_d, step = (T)step_d;
      for (int64_t i = 0; i < size; ++i) assign_req(p[i], req, (T)(start + (T)(int64_t)(i / repeat) * step));
    }
  });
}

void arange_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>&, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const ArangeRange r = arange_range(a);
  const TBlob& y = out[0];  // [size]
  KILN_CHECK(y.size() == r.size, "_arange: output size " + y.shape.str() + " differs from " + std::to_string(r.size));
  arange_fill(y, req[0], r.start, r.step, r.repeat);
}

// ---- _contrib_arange_like ---------------------------------------------------------------------

/// axis None: the data's shape; else (data.shape[axis],).
void arange_like_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  if (a.i("repeat") < 1)
    throw InferError(false, 0, "_contrib_arange_like: repeat must be positive, got " + std::to_string(a.i("repeat")));
  const Shape& x = (*in)[0];
  if (!a.has("axis")) {
    if (x.rank_known()) assign_out(out, 0, x);
    return;
  }
  if (!x.rank_known()) return;
  const int ax = norm_axis(a.i("axis"), x.ndim());
  if (ax < 0)
    throw InferError(true, 0, "_contrib_arange_like: axis=" + std::to_string(a.i("axis")) +
                                  " is out of range for data shape " + x.str());
  assign_out(out, 0, Shape({x[ax]}));
}

void arange_like_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>&, const std::vector<OpReq>& req,
                         const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  KILN_CHECK(a.i("repeat") >= 1, "_contrib_arange_like: repeat must be positive");
  arange_fill(out[0], req[0], a.f("start"), a.f("step"), a.i("repeat"));  // [size]
}

template <SortCfg (*Cfg)(const Attrs&)>
OpDef sort_def(const std::string& name, const std::string& desc, const std::vector<ParamDef>& params, bool hidden_idx,
               bool both) {
  OpDef d;
  d.name = name;
  d.description = desc;
  d.params = params;
  d.infer_shape = sort_infer_shape<Cfg>;
  d.infer_type = sort_infer_type<Cfg>;
  d.cpu = sort_forward<Cfg>;
  if (both) d.output_names_ = {"output0", "output1"};
  if (hidden_idx) {
    d.output_names_ = {"output0", "output1"};
    d.num_visible_outputs_fn = [](const Attrs&) { return 1; };
    d.outputs_always_written = true;
  }
  return d;
}

}  // namespace

void register_sort_ops(OpRegistry& r) {
  const std::vector<std::string> dtypes = {"float16", "float32", "float64", "int32", "int64", "uint8"};
  const std::vector<ParamDef> topk_params = {
      param("axis", ParamType::kInt, "-1", "Axis along which to choose the top k indices. If not given, the flattened array is used. Default is -1."),
      param("k", ParamType::kInt, "1", "Number of top elements to select, should be always smaller than or equal to the element number in the given axis. A global sort is performed if set k < 1."),
      param_enum("ret_typ", "indices", {"both", "indices", "mask", "value"}, "The return type."),
      param("is_ascend", ParamType::kBool, "False", "Whether to choose k largest or k smallest elements. Top K largest elements will be chosen if set to false."),
      param_enum("dtype", "float32", dtypes, "DType of the output indices when ret_typ is \"indices\" or \"both\". An error will be raised if the selected data type cannot precisely represent the indices."),
  };
  // topk: the output list depends on ret_typ, so it is computed from the attributes
  {
    OpDef d = sort_def<topk_cfg>("topk", "Returns the indices of the top k elements in an input array along the given axis.",
                                 topk_params, false, false);
    d.output_names_fn = [](const Attrs& a) {
      const std::string& t = a.s("ret_typ");
      if (t == "indices" || t == "mask") return std::vector<std::string>{"output"};
      return std::vector<std::string>{"output0", "output1"};
    };
    d.num_visible_outputs_fn = [](const Attrs& a) { return a.s("ret_typ") == "both" ? 2 : 1; };
    d.outputs_always_written = true;
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      const std::string& t = f->attrs.s("ret_typ");
      if (t == "indices" || t == "mask") return zero_grads(f, og);
      return make_backward("_backward_topk", f, {og[0], NodeEntry{f, 1}});
    };
    r.add(std::move(d));
    OpDef b;
    b.name = "_backward_topk";
    b.description = "Backward of topk: scatters the value gradient to the selected positions.";
    b.params = topk_params;
    b.input_names_ = {"ograd", "indices"};
    b.output_names_ = {"data_grad"};
    b.is_backward = true;
    b.non_differentiable = true;
    b.cpu = sort_backward<topk_cfg>;
    r.add(std::move(b));
  }
  {
    const std::vector<ParamDef> params = {
        param("axis", ParamType::kInt, "-1", "Axis along which to choose sort the input tensor. If not given, the flattened array is used. Default is -1."),
        param("is_ascend", ParamType::kBool, "True", "Whether to sort in ascending or descending order."),
    };
    OpDef d = sort_def<sort_cfg>("sort", "Returns a sorted copy of an input array along the given axis.", params, true, false);
    d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
      return make_backward("_backward_sort", f, {og[0], NodeEntry{f, 1}});
    };
    r.add(std::move(d));
    OpDef b;
    b.name = "_backward_sort";
    b.description = "Backward of sort: scatters the gradient back to the original positions.";
    b.params = params;
    b.input_names_ = {"ograd", "indices"};
    b.output_names_ = {"data_grad"};
    b.is_backward = true;
    b.non_differentiable = true;
    b.cpu = sort_backward<sort_cfg>;
    r.add(std::move(b));
  }
  {
    const std::vector<ParamDef> params = {
        param("axis", ParamType::kInt, "-1", "Axis along which to sort the input tensor. If not given, the flattened array is used. Default is -1."),
        param("is_ascend", ParamType::kBool, "True", "Whether to sort in ascending or descending order."),
        param_enum("dtype", "float32", dtypes, "DType of the output indices. It is only valid when ret_typ is \"indices\" or \"both\". An error will be raised if the selected data type cannot precisely represent the indices."),
    };
    OpDef d = sort_def<argsort_cfg>("argsort", "Returns the indices that would sort an input array along the given axis.",
                                    params, false, false);
    d.gradient = zero_grads;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_arange";
    d.description = "Return evenly spaced values within a given interval. Similar to Numpy";
    d.params = {
        param("start", ParamType::kFloat, "", "Start of interval. The interval includes this value. The default start value is 0."),
        param("stop", ParamType::kFloat, "None", "End of interval. The interval does not include this value, except in some cases where step is not an integer and floating point round-off affects the length of out."),
        param("step", ParamType::kFloat, "1", "Spacing between values."),
        param("repeat", ParamType::kInt, "1", "The repeating time of all elements. E.g repeat=3, the element a will be repeated three times --> a, a, a."),
        param("infer_range", ParamType::kBool, "False", "When set to True, infer the stop position from the start, step, repeat, and output tensor size."),
        param("ctx", ParamType::kString, "None", "Context of output, in format [cpu|gpu|cpu_pinned](n).Only used for imperative calls."),
        param_enum("dtype", "float32", {"float16", "float32", "float64", "int32", "int64", "int8", "uint8"}, "Target data type."),
    };
    d.input_names_ = {};
    d.infer_shape = arange_infer_shape;
    d.infer_type = arange_infer_type;
    d.cpu = arange_forward;
    d.non_differentiable = true;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_contrib_arange_like";
    d.description =
        "Evenly spaced values start + (i / repeat) * step shaped like the input (or like its axis), in the input's "
        "type; only the input's shape is read.";
    d.params = {
        param("start", ParamType::kFloat, "0", "Start of interval. The interval includes this value. The default start value is 0."),
        param("step", ParamType::kFloat, "1", "Spacing between values."),
        param("repeat", ParamType::kInt, "1", "The repeating time of all elements. E.g repeat=3, the element a will be repeated three times --> a, a, a."),
        param("ctx", ParamType::kString, "None", "Context of output, in format [cpu|gpu|cpu_pinned](n).Only used for imperative calls."),
        param("axis", ParamType::kInt, "None", "Arange elements according to the size of a certain axis of input array. The negative numbers are interpreted counting from the backward. If not provided, will arange elements according to the input shape."),
    };
    d.input_names_ = {"data"};
    d.mxnet_unnamed_inputs = true;
    d.infer_shape = arange_like_infer_shape;
    d.cpu = arange_like_forward;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{0}; };
    d.gradient = zero_grads;
    r.add(std::move(d));
  }
}

}  // namespace index_ops
}  // namespace kiln
