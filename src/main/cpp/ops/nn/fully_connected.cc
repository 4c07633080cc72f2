// FullyConnected: Y = X * W^T + b, and its backward (MXNet src/operator/nn/fully_connected.cc).
//
// X is data viewed as [M, D]: flatten=True -> M = N, D = prod(data.shape[1:]);
// flatten=False -> D = data.shape[-1], M = prod(leading dims). W is [H, D], b is [H] (or
// [H, 1]), Y is [M, H] with H = num_hidden.
#include "kiln/low_precision.h"
#include "nn_ops.h"

namespace kiln {
namespace nn {
namespace {

// ---- shapes ----------------------------------------------------------------------------------

/// M and D of the data viewed as a matrix.
struct FcDims {
  int64_t M, D, H;
};
FcDims fc_dims(const Attrs& a, const Shape& data) {
  const int nd = data.ndim();
  KILN_CHECK(nd >= 1, "FullyConnected: data must have at least one dimension, got " + data.str());
  FcDims d;
  d.H = a.i("num_hidden");
  if (a.b("flatten")) {
    d.M = data[0];
    d.D = data.prod(1, nd);
  } else {
    d.M = data.prod(0, nd - 1);
    d.D = data[nd - 1];
  }
  return d;
}

void fc_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int64_t H = a.i("num_hidden");
  const bool flatten = a.b("flatten");
  const Shape dshape = (*in)[0];
  if (!dshape.rank_known()) return;  // as MXNet: nothing is inferred before data's rank is known
  const int nd = dshape.ndim();
  if (nd < 1) throw InferError(true, 0, "FullyConnected: data must have at least one dimension, got " + dshape.str());

  // weight (H, D)
  const int64_t D = flatten ? prod_or_unknown(dshape, 1, nd) : dshape[nd - 1];
  assign_in(in, 1, Shape{H, D});

  // bias (H,), (H, 1) also accepted
  if (!a.b("no_bias")) {
    const Shape b = (*in)[2];
    Shape t = b;
    if (!shape_assign(&t, Shape{H})) {
      t = b;
      if (!shape_assign(&t, Shape{H, 1}))
        throw InferError(true, 2, "Shape inconsistent, Provided = " + b.str() + ", inferred shape = " + Shape{H}.str());
    }
    (*in)[2] = t;
  }

  // output: (N, H) or data's shape with the last dim replaced by H
  Shape oshape = dshape;
  if (flatten) oshape = Shape{dshape[0], H};
  else oshape[nd - 1] = H;
  assign_out(out, 0, oshape);

  // back-fill data: batch (leading dims) from the output, the feature dim from the weight
  const Shape& o = (*out)[0];
  const Shape& w = (*in)[1];
  Shape back = Shape::unknown_dims(nd);
  if (flatten) {
    back[0] = o[0];
    if (nd == 2) back[1] = w[1];
  } else {
    for (int i = 0; i + 1 < nd; ++i) back[i] = o[i];
    back[nd - 1] = w[1];
  }
  assign_in(in, 0, back);
}

// ---- kernels ---------------------------------------------------------------------------------

// No OpenMP regions in the FullyConnected kernels themselves: the GEMMs split over Kiln's threads
// (core/blas.cc), and the bias loops (a few percent of the time) are memory-bound, vectorized and
// serial.

/// Whether the float32 forward runs on Kiln's strided GEMM (fc_forward_strided): from 9 rows (below,
/// core/blas.cc's few-row kernel streams W once) while a 64-column block of x^T (D rows) stays
/// within 512 KiB of cache, as for the backward, and its scratch within 8 MiB (larger products
/// go to OpenBLAS, whose packing costs relatively less there).
bool fc_forward_on_strided(int64_t M, int64_t D, int64_t H) {
  return M > 8 && D > 0 && D <= 2048 && H > 0 && (D + H) * M <= (int64_t(1) << 21) && has_avx512();
}

/// Scratch of the float32 forward, in floats: x^T [D, M] and y^T [H, M] (0: it runs OpenBLAS).
int64_t fc_forward_scratch(int64_t M, int64_t D, int64_t H) { return fc_forward_on_strided(M, D, H) ? (D + H) * M : 0; }

/// The float32 forward on Kiln's strided GEMM, as y^T [H, M] = W [H, D] x^T [D, M]: x is transposed
/// into scratch, the bias seeds y^T's rows, and y^T is transposed back (added under kAddTo).
/// OpenBLAS packs W on every call; this reads it in place (OpBench, batch 128, 1 thread, on the
/// project's 1 MiB-L2 AVX-512 machine: 784 -> 512 1,085 -> 927 us, 512 -> 512 719 -> 608 us, the
/// two AVX-512 transposes included). Each element is one chain of D FMAs in order, whatever M.
/// scratch: fc_forward_scratch(M, D, H) floats.
void fc_forward_strided(int64_t M, int64_t D, int64_t H, const float* x, const float* w, const float* b, float* y,
                        bool add, float* scratch) {
  const int m = blas_int(M, "FullyConnected batch"), h = blas_int(H, "num_hidden"), d = blas_int(D, "input dim");
  float* xt = scratch;       // x^T [D, M]
  float* yt = xt + D * M;    // y^T [H, M]
  transpose_f32(x, M, D, xt);
  if (b)
    for (int64_t j = 0; j < H; ++j) std::fill(yt + j * M, yt + (j + 1) * M, b[j]);
  gemm_strided_a(h, m, d, w, D, 1, xt, M, yt, M, b != nullptr);
  if (!add) {
    transpose_f32(yt, H, M, y);
    return;
  }
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < H; ++j) y[i * H + j] += yt[j * M + i];
}

/// y (=|+=) x w^T + b. scratch: fc_forward_scratch(M, D, H) floats where that is not 0 (float32 on
/// the strided GEMM), else null (then OpenBLAS).
template <typename DT>
void fc_forward(int64_t M, int64_t D, int64_t H, const DT* x, const DT* w, const DT* b, DT* y, OpReq req, void* scratch) {
  // x [M, D], w [H, D], b [H] or null, y [M, H]
  if (req == OpReq::kNullOp || M == 0 || H == 0) return;
  if constexpr (std::is_same<DT, float>::value) {
    if (scratch != nullptr) {
      fc_forward_strided(M, D, H, x, w, b, y, req == OpReq::kAddTo, static_cast<float*>(scratch));
      return;
    }
  }
  const bool add = req == OpReq::kAddTo;
  DT beta = add ? DT(1) : DT(0);
  if (b && !add) {
    // seed every row of y with the bias, then let the GEMM accumulate onto it
    for (int64_t m = 0; m < M; ++m) std::copy(b, b + H, y + m * H);
    beta = 1;
  }
  if (D > 0) {
    const int m = blas_int(M, "FullyConnected batch"), h = blas_int(H, "num_hidden"), d = blas_int(D, "input dim");
    gemm(false, true, m, h, d, DT(1), x, w, beta, y);
  } else if (beta == DT(0)) {
    std::fill(y, y + M * H, DT(0));
  }
  if (b && add) {
    for (int64_t m = 0; m < M; ++m) {
      DT* yr = y + m * H;  // [H]
      for (int64_t h = 0; h < H; ++h) yr[h] += b[h];
    }
  }
}

/// db (=|+=) column sums of dy. dy [M, H], db [H].
template <typename DT>
void fc_bias_grad(int64_t M, int64_t H, const DT* dy, DT* db, OpReq req) {
  if (req == OpReq::kNullOp) return;
  if (req != OpReq::kAddTo) std::fill(db, db + H, DT(0));
  for (int64_t m = 0; m < M; ++m) {
    const DT* dyr = dy + m * H;  // [H]
    for (int64_t h = 0; h < H; ++h) db[h] += dyr[h];
  }
}

/// Kiln's strided GEMM (core/blas.cc) for the two backward products of float32 layers: it reads dY
/// and dY^T in place through strides, where OpenBLAS packs both operands on every call (batch 128
/// on Zen 5, 1 thread, GFLOPS: dW 512x784 200 against 175, dX 128x512 197 against 153). Only while
/// a 64-column block of B (k rows) stays within 512 KiB of cache; bigger products go to OpenBLAS.
/// a (i, p) = a[i sa + p sp], b [k, n], c [m, n]; false: the caller runs gemm().
template <typename DT>
bool fc_strided(int m, int n, int k, const DT* a, int64_t sa, int64_t sp, const DT* b, DT* c, bool add) {
  if constexpr (std::is_same<DT, float>::value)
    if (k <= 2048) return gemm_strided_a(m, n, k, a, sa, sp, b, n, c, n, add);
  return false;
}

template <typename DT>
void fc_backward(int64_t M, int64_t D, int64_t H, const DT* dy, const DT* x, const DT* w, DT* dx, DT* dw, DT* db,
                 const std::vector<OpReq>& req) {
  // dy [M, H], x [M, D], w [H, D]; dx [M, D], dw [H, D], db [H] or null
  const int m = blas_int(M, "FullyConnected batch"), d = blas_int(D, "input dim"), h = blas_int(H, "num_hidden");
  // dW = dY^T X first: dx may be written in place over x.
  if (req[1] != OpReq::kNullOp && H * D > 0) {
    const bool add = req[1] == OpReq::kAddTo;
    if (M > 0) {
      if (!fc_strided(h, d, m, dy, 1, h, x, dw, add)) gemm(true, false, h, d, m, DT(1), dy, x, add ? DT(1) : DT(0), dw);
    } else if (req[1] != OpReq::kAddTo) std::fill(dw, dw + H * D, DT(0));
  }
  if (db) fc_bias_grad(M, H, dy, db, req[2]);
  // dX = dY W
  if (req[0] != OpReq::kNullOp && M * D > 0) {
    const bool add = req[0] == OpReq::kAddTo;
    if (H > 0) {
      if (!fc_strided(m, d, h, dy, h, 1, w, dx, add)) gemm(false, false, m, d, h, DT(1), dy, w, add ? DT(1) : DT(0), dx);
    } else if (req[0] != OpReq::kAddTo) std::fill(dx, dx + M * D, DT(0));
  }
}

// ---- bfloat16 ---------------------------------------------------------------------------------
//
// With AVX512-BF16 the three products run in gemm_bf16 (core/blas.cc) on the bfloat16 operands:
// twice the multiplies per instruction of float32, every product exact, sums in float32; the bias
// is added in float32 and each output is rounded once. Without AVX512-BF16 (and for float16) the
// operator runs widened to float32 (kiln/low_precision.h).

using bf16 = uint16_t;

/// y (=|+=) x w^T + b rounded to bfloat16. x [M, D], w [H, D], b [H] or null, y [M, H]
void fc_forward_bf16(int64_t M, int64_t D, int64_t H, const bf16* x, const bf16* w, const bf16* b, bf16* y, OpReq req) {
  if (req == OpReq::kNullOp || M == 0 || H == 0) return;
  const int m = blas_int(M, "FullyConnected batch"), h = blas_int(H, "num_hidden"), d = blas_int(D, "input dim");
  std::vector<float> acc((size_t)(M * H));  // [M, H]
  gemm_bf16(m, h, d, x, D, 1, w, 1, D, acc.data(), H, false);
  if (b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < H; ++j) acc[i * H + j] += bf16_to_float(b[j]);
  float_to_low_precision(acc.data(), y, DType::kBfloat16, M * H, req == OpReq::kAddTo);
}

void fc_backward_bf16(int64_t M, int64_t D, int64_t H, const bf16* dy, const bf16* x, const bf16* w, bf16* dx, bf16* dw,
                      bf16* db, const std::vector<OpReq>& req) {
  // dy [M, H], x [M, D], w [H, D]; dx [M, D], dw [H, D], db [H] or null
  const int m = blas_int(M, "FullyConnected batch"), d = blas_int(D, "input dim"), h = blas_int(H, "num_hidden");
  // dW = dY^T X first: dx may be written in place over x
  if (req[1] != OpReq::kNullOp && H * D > 0) {
    std::vector<float> acc((size_t)(H * D));  // [H, D]
    gemm_bf16(h, d, m, dy, 1, H, x, D, 1, acc.data(), D, false);
    float_to_low_precision(acc.data(), dw, DType::kBfloat16, H * D, req[1] == OpReq::kAddTo);
  }
  if (db && req[2] != OpReq::kNullOp) {
    std::vector<float> acc((size_t)H, 0.f);  // [H]
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < H; ++j) acc[j] += bf16_to_float(dy[i * H + j]);
    float_to_low_precision(acc.data(), db, DType::kBfloat16, H, req[2] == OpReq::kAddTo);
  }
  // dX = dY W
  if (req[0] != OpReq::kNullOp && M * D > 0) {
    std::vector<float> acc((size_t)(M * D));  // [M, D]
    gemm_bf16(m, d, h, dy, H, 1, w, D, 1, acc.data(), D, false);
    float_to_low_precision(acc.data(), dx, DType::kBfloat16, M * D, req[0] == OpReq::kAddTo);
  }
}

void fc_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out);
void fc_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out);

/// True when the call is bfloat16 and runs natively; a bfloat16 call on a CPU without AVX512-BF16
/// is run widened to float32 here (the op declares bfloat16 native).
bool fc_bf16(const char* op, Kernel self, const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
             const std::vector<OpReq>& req, const std::vector<TBlob>& out, bool* handled) {
  *handled = in[0].dtype == DType::kBfloat16;
  if (!*handled) return false;
  if (has_avx512_bf16()) return true;
  call_widened(*OpRegistry::get().find(op), self, 0, ctx, a, in, req, out);
  return false;
}

void fc_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const FcDims d = fc_dims(a, in[0].shape);
  const bool has_bias = !a.b("no_bias");
  bool handled = false;
  if (fc_bf16("FullyConnected", fc_forward_cpu, ctx, a, in, req, out, &handled))
    return fc_forward_bf16(d.M, d.D, d.H, in[0].dptr<bf16>(), in[1].dptr<bf16>(), has_bias ? in[2].dptr<bf16>() : nullptr,
                           out[0].dptr<bf16>(), req[0]);
  if (handled) return;
  // the strided forward's scratch, when the executor's workspace holds it (an op called without one runs OpenBLAS)
  const size_t scratch_bytes = (size_t)fc_forward_scratch(d.M, d.D, d.H) * sizeof(float);
  void* scratch = scratch_bytes > 0 && ctx.workspace != nullptr && ctx.workspace_bytes >= scratch_bytes ? ctx.workspace : nullptr;
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    fc_forward<DT>(d.M, d.D, d.H, in[0].dptr<DT>(), in[1].dptr<DT>(), has_bias ? in[2].dptr<DT>() : nullptr,
                   out[0].dptr<DT>(), req[0], scratch);
  });
}

void fc_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: dy, x, w; out: dx, dw[, db]
  const FcDims d = fc_dims(a, in[1].shape);
  const bool has_bias = !a.b("no_bias");
  bool handled = false;
  if (fc_bf16("_backward_FullyConnected", fc_backward_cpu, ctx, a, in, req, out, &handled))
    return fc_backward_bf16(d.M, d.D, d.H, in[0].dptr<bf16>(), in[1].dptr<bf16>(), in[2].dptr<bf16>(), out[0].dptr<bf16>(),
                            out[1].dptr<bf16>(), has_bias ? out[2].dptr<bf16>() : nullptr, req);
  if (handled) return;
  KILN_FLOAT_SWITCH(in[0].dtype, DT, {
    fc_backward<DT>(d.M, d.D, d.H, in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(), out[0].dptr<DT>(),
                    out[1].dptr<DT>(), has_bias ? out[2].dptr<DT>() : nullptr, req);
  });
}

}  // namespace

void register_fully_connected(OpRegistry& r) {
  OpDef fc;
  fc.name = "FullyConnected";
  fc.description =
      "Applies a linear transformation: Y = X W^T + b. With flatten=True the data (N, d1, ..., dk) is viewed as "
      "(N, d1*...*dk) and the output is (N, num_hidden); with flatten=False the last axis is the feature axis and "
      "the output keeps the leading dims. weight is (num_hidden, input_dim), bias (num_hidden,).";
  fc.params = {
      param_range("num_hidden", ParamType::kInt, "", 1, 2147483647, "Number of hidden nodes of the output."),
      param("no_bias", ParamType::kBool, "False", "Whether to disable bias parameter."),
      param("flatten", ParamType::kBool, "True",
            "Whether to collapse all but the first axis of the input data tensor."),
  };
  fc.input_names_fn = [](const Attrs& a) {
    return a.b("no_bias") ? std::vector<std::string>{"data", "weight"}
                          : std::vector<std::string>{"data", "weight", "bias"};
  };
  fc.output_names_ = {"output"};
  fc.infer_shape = fc_infer_shape;
  fc.cpu = fc_forward_cpu;
  fc.workspace = [](const Attrs& a, const std::vector<Shape>& in, const std::vector<Shape>&) -> size_t {
    if (in.empty() || !in[0].known() || in[0].ndim() < 1) return 0;
    const FcDims d = fc_dims(a, in[0]);
    return (size_t)fc_forward_scratch(d.M, d.D, d.H) * sizeof(float);
  };
  fc.native_low_precision_cpu = kNativeBfloat16;  // float16 runs widened
  fc.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_FullyConnected", n, {og[0], n->inputs[0], n->inputs[1]});
  };
  const OpDef& fwd = r.add(fc);

  OpDef bw = backward_def("_backward_FullyConnected", fwd);
  bw.input_names_ = {"ograd", "data", "weight"};
  bw.output_names_fn = [](const Attrs& a) {
    return a.b("no_bias") ? std::vector<std::string>{"data_grad", "weight_grad"}
                          : std::vector<std::string>{"data_grad", "weight_grad", "bias_grad"};
  };
  bw.cpu = fc_backward_cpu;
  bw.native_low_precision_cpu = kNativeBfloat16;
  bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{1, 0}}; };  // x -> dx
  r.add(bw);
}

}  // namespace nn
}  // namespace kiln
