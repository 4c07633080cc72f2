// _np_cumsum (alias cumsum; MXNet 1.9 src/operator/numpy/np_cumsum-inl.h): running sums along
// `axis` (None: of the flattened array, giving a 1-D output), in the output type `dtype` (None: the
// input's). Each lane is summed in order in the output type (MXNet's cumsum_forward), integers
// wrapping as two's complement. The backward is the reversed running sum of the output gradient in
// the input's type (MXNet's cumsum_backward). Shapes: x viewed as [outer, n, inner] around the axis.
#include <string>
#include <type_traits>
#include <vector>

#include "index_common.h"

namespace kiln {
namespace index_ops {
namespace {

struct Lanes {
  int64_t outer, n, inner;  // x: [outer, n, inner]; lanes: outer * inner, n elements inner apart
};

Lanes cumsum_lanes(const Attrs& a, const Shape& x) {
  if (!a.has("axis")) return {1, x.size(), 1};
  const int ax = norm_axis(a.i("axis"), x.ndim());
  KILN_CHECK(ax >= 0, "cumsum: axis out of range for " + x.str());
  return {x.prod(0, ax), x[ax], x.prod(ax + 1, x.ndim())};
}

void cumsum_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& x = (*in)[0];
  if (!a.has("axis")) {
    if (x.known()) assign_out(out, 0, Shape({x.size()}));
    return;
  }
  if (!x.rank_known()) return;
  if (norm_axis(a.i("axis"), x.ndim()) < 0)
    throw InferError(true, 0, "cumsum: axis " + std::to_string(a.i("axis")) + " is out of range for input shape " +
                                  x.str());
  infer_same_shape(a, in, out);
}

void cumsum_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  if (a.has("dtype")) {
    const DType t = dtype_from_name(a.s("dtype"));
    if ((*out)[0] != DType::kUnknown && (*out)[0] != t)
      throw InferError(false, 0, std::string("cumsum: output type ") + dtype_name((*out)[0]) + " differs from dtype=" +
                                     a.s("dtype"));
    (*out)[0] = t;
    return;
  }
  infer_same_type(a, in, out);
}

/// a + b in T, integers wrapping (MXNet's signed addition on x86).
template <typename T>
inline T add_wrap(T a, T b) {
  if constexpr (std::is_integral<T>::value) {
    using U = typename std::make_unsigned<T>::type;
    return (T)(U)((U)a + (U)b);
  } else {
    return a + b;
  }
}

void cumsum_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const TBlob& x = in[0];   // [outer, n, inner]
  const TBlob& y = out[0];  // [outer, n, inner] (flat with axis None)
  if (req[0] == OpReq::kNullOp) return;
  const Lanes l = cumsum_lanes(a, x.shape);
  if (req[0] == OpReq::kAddTo && !is_float(y.dtype)) throw KilnError("cumsum: accumulation needs float32/float64");
  any_switch(x.dtype, [&](auto zi) {
    using I = decltype(zi);
    any_switch(y.dtype, [&](auto zo) {
      using O = decltype(zo);
      const I* xp = x.dptr<I>();
      O* yp = y.dptr<O>();
      omp_for(omp_threads(x.size()), l.outer * l.inner, [&](int64_t lane) {
        const int64_t off = (lane / l.inner) * l.n * l.inner + lane % l.inner;
        O run = O(0);
        for (int64_t j = 0; j < l.n; ++j) {
          const O v = (O)xp[off + j * l.inner];
          run = j == 0 ? v : add_wrap(run, v);
          assign_req(yp[off + j * l.inner], req[0], run);
        }
      });
    });
  });
}

/// Input: dy (the output's type, any); output: dx (data's type, float), the reversed running sums.
void cumsum_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const TBlob& dy = in[0];
  const TBlob& dx = out[0];
  if (req[0] == OpReq::kNullOp) return;
  const Lanes l = cumsum_lanes(a, dx.shape);
  any_switch(dy.dtype, [&](auto zo) {
    using O = decltype(zo);
    float_switch(dx.dtype, [&](auto zi) {
      using I = decltype(zi);
      const O* g = dy.dptr<O>();
      I* gx = dx.dptr<I>();
      omp_for(omp_threads(dx.size()), l.outer * l.inner, [&](int64_t lane) {
        const int64_t off = (lane / l.inner) * l.n * l.inner + lane % l.inner;
        I run = I(0);
        for (int64_t j = l.n - 1; j >= 0; --j) {
          run = j == l.n - 1 ? (I)g[off + j * l.inner] : run + (I)g[off + j * l.inner];
          assign_req(gx[off + j * l.inner], req[0], run);
        }
      });
    });
  });
}

}  // namespace

void register_cumsum_ops(OpRegistry& r) {
  OpDef d;
  d.name = "_np_cumsum";
  d.aliases = {"cumsum"};
  d.input_names_ = {"a"};  // MXNet's (NumPy's) name
  d.description = "Return the cumulative sum of the elements along a given axis.";
  d.params = {
      param("axis", ParamType::kInt, "None", "Axis along which the cumulative sum is computed. The default (None) is to compute the cumsum over the flattened array."),
      param_enum("dtype", "None", {"float16", "float32", "float64", "int32", "int64", "int8"},
                 "Type of the returned array and of the accumulator in which the elements are summed. If dtype is not specified, it defaults to the dtype of a, unless a has an integer dtype with a precision less than that of the default platform integer. In that case, the default platform integer is used."),
  };
  d.infer_shape = cumsum_infer_shape;
  d.infer_type = cumsum_infer_type;
  d.cpu = cumsum_forward;
  d.gradient = [](const NodePtr& f, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_np_cumsum", f, {og[0]});
  };
  OpDef b = backward_def("_backward_np_cumsum", d);
  b.input_names_ = {"ograd"};
  b.output_names_ = {"data_grad"};
  b.cpu = cumsum_backward;
  r.add(std::move(d));
  r.add(std::move(b));
}

}  // namespace index_ops
}  // namespace kiln
