// shape_array and size_array (MXNet src/operator/tensor/elemwise_unary_op_basic.cc): the input's
// shape as an int64 array of shape (ndim,), and its element count as an int64 array of shape (1,).
// They read only the input's shape, never its data (ignore_inputs), accept every dtype, and give
// the input a zero gradient (MXNet's MakeZeroGradNodes).
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace elemwise {
std::vector<NodeEntry> zero_grads(const NodePtr& fwd);  // elemwise_ops.cc
}  // namespace elemwise

namespace {

template <bool kSize>
void info_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  if (kSize) {
    assign_out(out, 0, Shape({1}));
    return;
  }
  const Shape& x = (*in)[0];
  if (x.rank_known()) assign_out(out, 0, Shape({(int64_t)x.ndim()}));
}

/// The output is int64 whatever the input's type.
void info_infer_type(const Attrs&, std::vector<DType>* in, std::vector<DType>* out) {
  DType& y = (*out)[0];
  if (y != DType::kUnknown && y != DType::kInt64)
    throw InferError(false, 0, std::string("Type inconsistent, Provided = ") + dtype_name(y) + ", inferred type = int64");
  y = DType::kInt64;
}

/// y[i] (=|+=) the i-th dim of x (shape_array) or x's element count (size_array).
/// in: x (data not read); out: y int64 [ndim] or [1].
template <bool kSize>
void info_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = kSize ? "size_array" : "shape_array";
  const TBlob& x = in[0];   // [d_0, .., d_{n-1}], only its shape is read
  const TBlob& y = out[0];  // int64 [n] or [1]
  if (req[0] == OpReq::kNullOp) return;
  KILN_CHECK(y.dtype == DType::kInt64, std::string(op) + ": the output must be int64, got " + dtype_name(y.dtype));
  const std::vector<int64_t> v = kSize ? std::vector<int64_t>{x.shape.size()} : x.shape.d;
  KILN_CHECK(y.size() == (int64_t)v.size(), std::string(op) + ": output shape " + y.shape.str() + " for input shape " +
                                                x.shape.str());
  int64_t* yp = y.dptr<int64_t>();  // [n] or [1]
  for (size_t i = 0; i < v.size(); ++i) assign_req(yp[i], req[0], v[i]);
}

std::vector<NodeEntry> info_grad(const NodePtr& fwd, const std::vector<NodeEntry>&) {
  return elemwise::zero_grads(fwd);
}

}  // namespace

void register_shape_info_ops(OpRegistry& r) {
  for (bool size : {false, true}) {
    OpDef d;
    d.name = size ? "size_array" : "shape_array";
    d.mxnet_unnamed_inputs = true;  // MXNet's monitor: input0
    d.description = size ? "Returns a 1D int64 array containing the size of data."
                         : "Returns a 1D int64 array containing the shape of data.";
    d.input_names_ = {"data"};
    d.infer_shape = size ? InferShapeFn(info_infer_shape<true>) : InferShapeFn(info_infer_shape<false>);
    d.infer_type = info_infer_type;
    d.cpu = size ? Kernel(info_forward<true>) : Kernel(info_forward<false>);
    d.gradient = info_grad;
    d.ignore_inputs = [](const Attrs&) { return std::vector<int>{0}; };  // only the shape is read
    r.add(std::move(d));
  }
}

}  // namespace kiln
