// Cast (alias cast) and _backward_Cast (MXNet src/operator/tensor/elemwise_unary_op_basic.cc);
// amp_cast and amp_multicast, the casts MXNet's AMP pass inserts (src/operator/tensor/amp_cast.cc).
// y = static_cast<dtype>(x) elementwise: float -> integer truncates toward zero, float -> float16
// rounds to nearest even (IEEE binary16 via _Float16), float -> bfloat16 rounds to nearest even
// through float32 (the promoting wrapper, kiln/low_precision.h). The gradient casts dy back to x's
// dtype.
#include <string>
#include <vector>

#include "index_common.h"
#include "kiln/int_convert.h"
#include "kiln/low_precision.h"

namespace kiln {
namespace index_ops {
namespace {

/// dst[0:n] (req) cast(src[0:n]) for any pair of dtypes; kAddTo needs a float16/float32/float64 dst
/// (a bfloat16 dst is the low-precision wrapper's float32 scratch, accumulated there).
void cast_blob(const TBlob& src, const TBlob& dst, OpReq req, const char* op) {
  if (req == OpReq::kNullOp) return;
  const int64_t n = src.size();
  KILN_CHECK(dst.size() == n, std::string(op) + ": source " + src.shape.str() + " and destination " +
                                  dst.shape.str() + " differ in size");
  if (req == OpReq::kAddTo && !is_float(dst.dtype) && dst.dtype != DType::kFloat16)
    throw KilnError(std::string(op) + ": accumulation (grad_req add) needs float16/float32/float64, got " + dtype_name(dst.dtype));
  any_switch(src.dtype, [&](auto zs) {
    using S = decltype(zs);
    any_switch(dst.dtype, [&](auto zd) {
      using D = decltype(zd);
      const S* x = src.dptr<S>();  // [n]
      D* y = dst.dptr<D>();        // [n]
      const int nt = omp_threads(n);
      if (req == OpReq::kAddTo) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; ++i) {
          if constexpr (std::is_same<D, half>::value) y[i] = (half)((double)y[i] + (double)x[i]);  // one rounding
          else y[i] = (D)(y[i] + (D)x[i]);  // MXNet's out += static_cast<D>(x)
        }
      } else if ((void*)x != (void*)y || !std::is_same<S, D>::value) {
        if constexpr (std::is_integral<D>::value && !std::is_integral<S>::value) {  // kiln/int_convert.h
#pragma omp parallel for num_threads(nt) schedule(static)
          for (int64_t i = 0; i < n; ++i) y[i] = saturate_to_int<D>((double)x[i]);
        } else {
#pragma omp parallel for num_threads(nt) schedule(static)
          for (int64_t i = 0; i < n; ++i) y[i] = static_cast<D>(x[i]);
        }
      }
    });
  });
}

void cast_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  cast_blob(in[0], out[0], req[0], "Cast");  // x [any], y [same shape]
}

void cast_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  cast_blob(in[0], out[0], req[0], "_backward_Cast");  // dy [dtype], dx [x's dtype]
}

// amp_multicast: x_i [any] -> y_i [same shape, the common type]; backward: dy_i -> dx_i
void multicast_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  KILN_CHECK(in.size() == out.size(), "amp_multicast: " + std::to_string(in.size()) + " inputs but " +
                                          std::to_string(out.size()) + " outputs");
  for (size_t i = 0; i < in.size(); ++i) cast_blob(in[i], out[i], req[i], "amp_multicast");
}

void multicast_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  KILN_CHECK(in.size() == out.size(), "_backward_amp_multicast: " + std::to_string(in.size()) + " gradients but " +
                                          std::to_string(out.size()) + " outputs");
  for (size_t i = 0; i < in.size(); ++i) cast_blob(in[i], out[i], req[i], "_backward_amp_multicast");
}

/// The types AMP casts between: float16, bfloat16 and float32 (MXNet leaves float64 and integers).
bool amp_castable(DType t) { return t == DType::kFloat16 || t == DType::kBfloat16 || t == DType::kFloat32; }

/// amp_cast: y takes dtype when x is float16/bfloat16/float32, else x's own type. An input of
/// unknown type (a parameter read only through the cast) is float32, the type the AMP pass
/// converts from (MXNet's pass writes __dtype__ on such variables instead).
void amp_cast_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  if ((*in)[0] == DType::kUnknown) (*in)[0] = DType::kFloat32;
  const DType x = (*in)[0];
  const DType t = amp_castable(x) ? dtype_from_name(a.s("dtype")) : x;
  if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
    throw InferError(false, 0, std::string("amp_cast: output type ") + dtype_name((*out)[0]) + " differs from " + dtype_name(t));
  (*out)[0] = t;
}

/// amp_multicast: every float16/bfloat16/float32 input goes to the widest of them (narrowest with
/// cast_narrow; float16 and bfloat16 together widen to float32); other inputs keep their type.
/// Inputs of unknown type are float32, as for amp_cast.
void amp_multicast_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  const bool narrow = a.b("cast_narrow");
  DType common = DType::kUnknown;
  for (DType& x : *in) {
    if (x == DType::kUnknown) x = DType::kFloat32;
    if (!amp_castable(x)) continue;
    if (common == DType::kUnknown || common == x) common = x;
    else if (narrow) common = x == DType::kFloat32 ? common : common == DType::kFloat32 ? x : DType::kFloat32;
    else common = DType::kFloat32;  // one of two different castable types is float32, or they are the two 16-bit ones
  }
  for (size_t i = 0; i < in->size(); ++i) {
    const DType t = amp_castable((*in)[i]) ? common : (*in)[i];
    if ((*out)[i] != DType::kUnknown && (*out)[i] != t)
      throw InferError(false, (int)i, std::string("amp_multicast: output type ") + dtype_name((*out)[i]) + " differs from " +
                                          dtype_name(t));
    (*out)[i] = t;
  }
}

/// Output type is the dtype parameter; the input's type is not inferred from it.
void cast_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  const DType t = dtype_from_name(a.s("dtype"));
  if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
    throw InferError(false, 0, std::string("Cast: output type ") + dtype_name((*out)[0]) + " differs from dtype=" +
                                   a.s("dtype"));
  (*out)[0] = t;
}

}  // namespace

void register_cast_ops(OpRegistry& r) {
  const std::vector<ParamDef> params = {
      param_enum("dtype", "", {"float16", "bfloat16", "float32", "float64", "int32", "int64", "int8", "uint8"},
                 "Output data type."),
  };
  {
    OpDef d;
    d.name = "Cast";
    d.aliases = {"cast"};
    d.description = "Casts all elements of the input to a new type.";
    d.params = params;
    d.infer_shape = infer_same_shape;
    d.infer_type = cast_infer_type;
    d.cpu = cast_forward;
    d.native_low_precision_cpu = kNativeFloat16;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      return make_backward("_backward_Cast", fwd, {og[0]});
    };
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "_backward_Cast";
    d.description = "Backward of Cast: casts the output gradient back to the input's type.";
    d.params = params;
    d.input_names_ = {"ograd"};
    d.output_names_ = {"data_grad"};
    d.is_backward = true;
    d.non_differentiable = true;
    d.cpu = cast_backward;
    d.native_low_precision_cpu = kNativeFloat16;
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "amp_cast";
    d.description = "Cast function between low precision float/FP32 used by AMP. It casts only between low precision "
                    "float/FP32 and does not do anything for other types.";
    d.params = params;
    d.input_names_ = {"input0"};  // MXNet registers no input names for amp_cast (its monitor says input0)
    d.infer_shape = infer_same_shape;
    d.infer_type = amp_cast_infer_type;
    // a same-type cast aliases its input and copies nothing (the AMP pass casts float16 entries to float16)
    d.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
    d.inplace_identity = true;
    d.cpu = cast_forward;
    d.native_low_precision_cpu = kNativeFloat16;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      return make_backward("_backward_amp_cast", fwd, {og[0]});
    };
    r.add(std::move(d));
  }
  {
    OpDef d = backward_def("_backward_amp_cast", *r.find("amp_cast"));
    d.input_names_ = {"ograd"};
    d.output_names_ = {"data_grad"};
    d.cpu = cast_backward;
    d.native_low_precision_cpu = kNativeFloat16;
    r.add(std::move(d));
  }
  const std::vector<ParamDef> multicast_params = {
      param("num_outputs", ParamType::kInt, "", "Number of input/output pairs to be casted to the widest type.", 1, kMaxArity),
      param("cast_narrow", ParamType::kBool, "False", "Whether to cast to the narrowest type"),
  };
  auto numbered = [](const std::string& prefix) {
    return [prefix](const Attrs& a) {
      std::vector<std::string> v;
      for (int64_t i = 0; i < a.i("num_outputs"); ++i) v.push_back(prefix + std::to_string(i));
      return v;
    };
  };
  {
    OpDef d;
    d.name = "amp_multicast";
    d.description = "Cast function used by AMP, that casts its inputs to the common widest type. It casts only between "
                    "low precision float/FP32 and does not do anything for other types.";
    d.params = multicast_params;
    d.input_names_fn = numbered("data_");
    d.output_names_fn = numbered("output");
    d.infer_shape = [](const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
      for (size_t i = 0; i < in->size() && i < out->size(); ++i) {
        assign_out(out, (int)i, (*in)[i]);
        assign_in(in, (int)i, (*out)[i]);
      }
    };
    d.infer_type = amp_multicast_infer_type;
    d.inplace = [](const Attrs& a) {
      std::vector<std::pair<int, int>> v;
      for (int i = 0; i < (int)a.i("num_outputs"); ++i) v.emplace_back(i, i);
      return v;
    };
    d.inplace_identity = true;
    d.cpu = multicast_forward;
    d.native_low_precision_cpu = kNativeFloat16;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      return make_backward("_backward_amp_multicast", fwd, og);
    };
    r.add(std::move(d));
  }
  {
    OpDef d = backward_def("_backward_amp_multicast", *r.find("amp_multicast"));
    d.input_names_fn = numbered("ograd");
    d.output_names_fn = numbered("data_grad");
    d.cpu = multicast_backward;
    d.native_low_precision_cpu = kNativeFloat16;
    r.add(std::move(d));
  }
}

}  // namespace index_ops
}  // namespace kiln
