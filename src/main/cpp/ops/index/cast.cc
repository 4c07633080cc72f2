// Cast (alias cast) and _backward_Cast (MXNet src/operator/tensor/elemwise_unary_op_basic.cc).
// y = static_cast<dtype>(x) elementwise: float -> integer truncates toward zero, float -> float16
// rounds to nearest even (IEEE binary16 via _Float16). The gradient casts dy back to x's dtype.
#include <string>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

/// dst[0:n] (req) cast(src[0:n]) for any pair of dtypes; kAddTo needs a float32/float64 dst.
void cast_blob(const TBlob& src, const TBlob& dst, OpReq req, const char* op) {
  if (req == OpReq::kNullOp) return;
  const int64_t n = src.size();
  KILN_CHECK(dst.size() == n, std::string(op) + ": source " + src.shape.str() + " and destination " +
                                  dst.shape.str() + " differ in size");
  if (req == OpReq::kAddTo && !is_float(dst.dtype))
    throw KilnError(std::string(op) + ": accumulation (grad_req add) needs float32/float64, got " + dtype_name(dst.dtype));
  any_switch(src.dtype, [&](auto zs) {
    using S = decltype(zs);
    any_switch(dst.dtype, [&](auto zd) {
      using D = decltype(zd);
      const S* x = src.dptr<S>();  // [n]
      D* y = dst.dptr<D>();        // [n]
      const int nt = omp_threads(n);
      if (req == OpReq::kAddTo) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; ++i) y[i] = (D)(y[i] + (D)x[i]);
      } else if ((void*)x != (void*)y || !std::is_same<S, D>::value) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t i = 0; i < n; ++i) y[i] = static_cast<D>(x[i]);
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
      param_enum("dtype", "", {"float16", "float32", "float64", "int32", "int64", "int8", "uint8"}, "Output data type."),
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
    r.add(std::move(d));
  }
}

}  // namespace index_ops
}  // namespace kiln
