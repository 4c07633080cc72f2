// SequenceMask, SequenceLast, SequenceReverse and their backward ops (MXNet
// src/operator/sequence_{mask,last,reverse}-inl.h).
//
// data [T, N, ...] (axis = 0) or [N, T, ...] (axis = 1; SequenceReverse takes axis 0 only),
// optional sequence_length [N] (input only when use_sequence_length; any dtype, truncated toward
// zero). Kernels view data as [T, N, R] / [N, T, R] (SeqView, seq_common.h). sequence_length
// gets a zero gradient (MXNet never writes one).
#include <cstring>

#include "seq_common.h"

namespace kiln {
namespace seq {
namespace {

// ---- shared registration pieces -----------------------------------------------------------

std::vector<ParamDef> seq_params(const char* axis_desc, bool with_value) {
  std::vector<ParamDef> p = {
      param("use_sequence_length", ParamType::kBool, "False",
            "If set to true, this layer takes in an extra input parameter `sequence_length` to specify variable "
            "length sequence"),
  };
  if (with_value) p.push_back(param("value", ParamType::kFloat, "0", "The value to be used as a mask."));
  p.push_back(param("axis", ParamType::kInt, "0", axis_desc));
  return p;
}

std::vector<std::string> seq_inputs(const Attrs& a) {
  return a.b("use_sequence_length") ? std::vector<std::string>{"data", "sequence_length"}
                                    : std::vector<std::string>{"data"};
}

/// Checks axis and rank, and ties sequence_length to the batch dim. Returns the axis.
int seq_check(const char* op, const Attrs& a, std::vector<Shape>* in, bool axis0_only) {
  const int64_t axis = a.i("axis");
  if (axis0_only && axis != 0)
    throw InferError(true, 0, std::string(op) + ": axis=" + std::to_string(axis) +
                                  " is not supported; the current implementation expects axis to be 0");
  if (axis != 0 && axis != 1)
    throw InferError(true, 0, std::string(op) + ": axis=" + std::to_string(axis) +
                                  " is not supported; the current implementation expects axis to be 0 or 1");
  const Shape& x = (*in)[0];
  if (x.rank_known() && x.ndim() < 2)
    throw InferError(true, 0, std::string(op) + ": the data array must be of rank 2 or greater, got " + x.str());
  if (a.b("use_sequence_length") && x.rank_known()) {
    const Shape& l = (*in)[1];
    const int64_t n = x[1 - axis];
    if (l.rank_known() && (l.ndim() != 1 || (n >= 0 && l[0] >= 0 && l[0] != n)))
      throw InferError(true, 1, std::string(op) + ": sequence_length " + l.str() + " must have shape (" +
                                    std::to_string(n) + ",), one length per batch element of data " + x.str() +
                                    " (axis=" + std::to_string(axis) + ")");
    assign_in(in, 1, Shape{n});
    // back-fill the batch dim of data from a known sequence_length
    const Shape& l2 = (*in)[1];
    if (n < 0 && l2[0] >= 0) {
      Shape d = Shape::unknown_dims(x.ndim());
      d[1 - axis] = l2[0];
      assign_in(in, 0, d);
    }
  }
  return (int)axis;
}

/// data type -> output (and back); sequence_length may have any type (default: data's).
void seq_infer_type(const Attrs& a, std::vector<DType>* in, std::vector<DType>* out) {
  DType t = (*in)[0] != DType::kUnknown ? (*in)[0] : (*out)[0];
  if (t == DType::kUnknown) return;
  if ((*in)[0] != DType::kUnknown && (*out)[0] != DType::kUnknown && (*in)[0] != (*out)[0])
    throw InferError(false, 0, std::string(a.op->name) + ": output type " + dtype_name((*out)[0]) +
                                   " differs from data type " + dtype_name((*in)[0]));
  (*in)[0] = (*out)[0] = t;
  if (in->size() > 1 && (*in)[1] == DType::kUnknown) (*in)[1] = t;
}

const TBlob* lengths_input(const Attrs& a, const std::vector<TBlob>& in, size_t i) {
  return a.b("use_sequence_length") ? &in[i] : nullptr;
}

/// Zero gradient for sequence_length (backward output 1, present with use_sequence_length).
void zero_length_grad(const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  if (out.size() > 1 && (req[1] == OpReq::kWriteTo || req[1] == OpReq::kWriteInplace))
    std::memset(out[1].ptr, 0, out[1].bytes());
}

std::vector<std::string> seq_grad_outputs(const Attrs& a) {
  return a.b("use_sequence_length") ? std::vector<std::string>{"data_grad", "sequence_length_grad"}
                                    : std::vector<std::string>{"data_grad"};
}

/// Gradient rule shared by the three ops: _backward_X(ograd[, sequence_length]).
GradFn seq_gradient(const std::string& bw) {
  return [bw](const NodePtr& n, const std::vector<NodeEntry>& og) {
    std::vector<NodeEntry> ins = {og[0]};
    if (n->attrs.b("use_sequence_length")) ins.push_back(n->inputs[1]);
    return make_backward(bw, n, ins);
  };
}

// ---- SequenceMask -------------------------------------------------------------------------

void mask_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  seq_check("SequenceMask", a, in, false);
  assign_out(out, 0, (*in)[0]);
  assign_in(in, 0, (*out)[0]);
  if (a.b("use_sequence_length")) seq_check("SequenceMask", a, in, false);
}

/// y[t, b] = t < L[b] ? x[t, b] : fill, by request; fill = value (forward) or 0 (backward).
/// Elementwise, so y may alias x (in place).
template <typename T>
void mask_apply(const SeqView& v, const std::vector<int64_t>& L, const T* x, T* y, OpReq req, T fill) {
  // x, y: [T, N, R] or [N, T, R]
  if (req == OpReq::kNullOp) return;
  const int64_t rows = v.T * v.N;
  const int nt = omp_threads(rows * v.R);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t q = 0; q < rows; ++q) {
    const int64_t t = v.axis == 0 ? q / v.N : q % v.T;
    const int64_t b = v.axis == 0 ? q % v.N : q / v.T;
    const int64_t o = v.at(t, b);
    const bool keep = t < L[b];
    if (req == OpReq::kAddTo) {
      for (int64_t r = 0; r < v.R; ++r) y[o + r] += keep ? x[o + r] : fill;
    } else if (keep) {
      if (x != y) std::memcpy(y + o, x + o, (size_t)v.R * sizeof(T));
    } else {
      for (int64_t r = 0; r < v.R; ++r) y[o + r] = fill;
    }
  }
}

void mask_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(in[0].shape, (int)a.i("axis"));
  const std::vector<int64_t> L = seq_lengths(lengths_input(a, in, 1), v, 0);  // [N]
  if (req[0] == OpReq::kAddTo) KILN_CHECK(in[0].dtype == DType::kFloat32 || in[0].dtype == DType::kFloat64,
                                          "SequenceMask: accumulation needs float32/float64");
  index_ops::any_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    mask_apply<T>(v, L, in[0].dptr<T>(), out[0].dptr<T>(), req[0], (T)a.f("value"));
  });
}

/// Inputs: dy [data shape][, sequence_length]; outputs: dx = mask(dy, 0)[, zeros].
void mask_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  zero_length_grad(req, out);
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(out[0].shape, (int)a.i("axis"));
  const std::vector<int64_t> L = seq_lengths(lengths_input(a, in, 1), v, 0);
  float_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    mask_apply<T>(v, L, in[0].dptr<T>(), out[0].dptr<T>(), req[0], T(0));
  });
}

// ---- SequenceLast -------------------------------------------------------------------------

/// output = [N] + data.shape[2:]
void last_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const int axis = seq_check("SequenceLast", a, in, false);
  const Shape& x = (*in)[0];
  if (!x.rank_known()) return;
  if (x[axis] == 0)
    throw InferError(true, 0, "SequenceLast: the sequence axis " + std::to_string(axis) + " of data " + x.str() +
                                  " is empty; there is no last element");
  std::vector<int64_t> od = {x[1 - axis]};
  for (int i = 2; i < x.ndim(); ++i) od.push_back(x[i]);
  assign_out(out, 0, Shape(od));
  // back-fill the batch and trailing dims of data from the output
  const Shape& y = (*out)[0];
  Shape d = Shape::unknown_dims(x.ndim());
  d[1 - axis] = y[0];
  for (int i = 2; i < x.ndim(); ++i) d[i] = y[i - 1];
  assign_in(in, 0, d);
}

void last_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(in[0].shape, (int)a.i("axis"));
  if (v.N * v.R == 0) return;
  KILN_CHECK(v.T > 0, "SequenceLast: the sequence axis of data " + in[0].shape.str() + " is empty");
  KILN_CHECK(out[0].size() == v.N * v.R, "SequenceLast: output " + out[0].shape.str() + " does not match data " +
                                             in[0].shape.str());
  const std::vector<int64_t> L = seq_lengths(lengths_input(a, in, 1), v, 1);  // [N], in [1, T]
  if (req[0] == OpReq::kAddTo) KILN_CHECK(in[0].dtype == DType::kFloat32 || in[0].dtype == DType::kFloat64,
                                          "SequenceLast: accumulation needs float32/float64");
  index_ops::any_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    const T* x = in[0].dptr<T>();  // [T, N, R] or [N, T, R]
    T* y = out[0].dptr<T>();       // [N, R]
    for (int64_t b = 0; b < v.N; ++b) {
      const T* src = x + v.at(L[b] - 1, b);  // [R]
      T* dst = y + b * v.R;                  // [R]
      for (int64_t r = 0; r < v.R; ++r) assign_req(dst[r], req[0], src[r]);
    }
  });
}

/// Inputs: dy [N, R][, sequence_length]; outputs: dx (zeros except dx[L[b]-1, b] += dy[b])[, zeros].
void last_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  zero_length_grad(req, out);
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(out[0].shape, (int)a.i("axis"));
  float_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    const T* g = in[0].dptr<T>();  // [N, R]
    T* gx = out[0].dptr<T>();      // [T, N, R] or [N, T, R]
    if (req[0] != OpReq::kAddTo) std::memset(gx, 0, out[0].bytes());
    if (v.N * v.R == 0 || v.T == 0) return;
    const std::vector<int64_t> L = seq_lengths(lengths_input(a, in, 1), v, 1);
    for (int64_t b = 0; b < v.N; ++b) {
      T* dst = gx + v.at(L[b] - 1, b);  // [R]
      const T* src = g + b * v.R;       // [R]
      for (int64_t r = 0; r < v.R; ++r) dst[r] += src[r];
    }
  });
}

// ---- SequenceReverse ----------------------------------------------------------------------

void reverse_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  seq_check("SequenceReverse", a, in, true);
  assign_out(out, 0, (*in)[0]);
  assign_in(in, 0, (*out)[0]);
  if (a.b("use_sequence_length")) seq_check("SequenceReverse", a, in, true);
}

/// y[L[b]-1-t, b] = x[t, b] for t < L[b]; y[t, b] = x[t, b] for t >= L[b] (padding kept).
/// Its own inverse, hence also the backward. y must not alias x.
template <typename T>
void reverse_apply(const SeqView& v, const std::vector<int64_t>& L, const T* x, T* y, OpReq req) {
  // x, y: [T, N, R]
  if (req == OpReq::kNullOp) return;
  KILN_CHECK(x != y || v.T * v.N * v.R == 0, "SequenceReverse: cannot run in place");
  const int64_t rows = v.T * v.N;
  const int nt = omp_threads(rows * v.R);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t q = 0; q < rows; ++q) {
    const int64_t t = q / v.N, b = q % v.N;
    const int64_t s = t < L[b] ? L[b] - 1 - t : t;
    const T* src = x + v.at(s, b);  // [R]
    T* dst = y + v.at(t, b);        // [R]
    if (req == OpReq::kAddTo) {
      for (int64_t r = 0; r < v.R; ++r) dst[r] += src[r];
    } else {
      std::memcpy(dst, src, (size_t)v.R * sizeof(T));
    }
  }
}

void reverse_forward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(in[0].shape, 0);
  const std::vector<int64_t> L = seq_lengths(lengths_input(a, in, 1), v, 0);
  if (req[0] == OpReq::kAddTo) KILN_CHECK(in[0].dtype == DType::kFloat32 || in[0].dtype == DType::kFloat64,
                                          "SequenceReverse: accumulation needs float32/float64");
  index_ops::any_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    reverse_apply<T>(v, L, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

/// Inputs: dy [T, N, R][, sequence_length]; outputs: dx = reverse(dy)[, zeros].
void reverse_backward(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  zero_length_grad(req, out);
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(out[0].shape, 0);
  const std::vector<int64_t> L = seq_lengths(lengths_input(a, in, 1), v, 0);
  float_switch(out[0].dtype, [&](auto z) {
    using T = decltype(z);
    reverse_apply<T>(v, L, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

// ---- registration -------------------------------------------------------------------------

void add_seq_op(OpRegistry& r, const std::string& name, const std::string& desc, std::vector<ParamDef> params,
                InferShapeFn shape, Kernel fwd_k, Kernel bwd_k, bool elementwise) {
  OpDef d;
  d.name = name;
  d.description = desc;
  d.params = std::move(params);
  d.input_names_fn = seq_inputs;
  d.infer_shape = std::move(shape);
  d.infer_type = seq_infer_type;
  d.cpu = std::move(fwd_k);
  d.gradient = seq_gradient("_backward_" + name);
  if (elementwise) d.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_" + name, fwd);
  bw.input_names_fn = [](const Attrs& a) {
    return a.b("use_sequence_length") ? std::vector<std::string>{"ograd", "sequence_length"}
                                      : std::vector<std::string>{"ograd"};
  };
  bw.output_names_fn = seq_grad_outputs;
  bw.cpu = std::move(bwd_k);
  if (elementwise) bw.inplace = [](const Attrs&) { return std::vector<std::pair<int, int>>{{0, 0}}; };
  r.add(bw);
}

}  // namespace

void register_sequence(OpRegistry& r) {
  add_seq_op(r, "SequenceMask",
             "Sets all elements outside the sequence to a constant value: data [T, N, ...] (axis=0) or "
             "[N, T, ...] (axis=1); step t of batch element b is replaced by `value` when t >= sequence_length[b].",
             seq_params("The sequence axis. Only values of 0 and 1 are currently supported.", true), mask_infer_shape,
             mask_forward, mask_backward, true);
  add_seq_op(r, "SequenceLast",
             "Takes the last element of a sequence: data [T, N, ...] (axis=0) or [N, T, ...] (axis=1) -> "
             "[N, ...], step sequence_length[b] - 1 (or T - 1) of each batch element b.",
             seq_params("The sequence axis. Only values of 0 and 1 are currently supported.", false),
             last_infer_shape, last_forward, last_backward, false);
  add_seq_op(r, "SequenceReverse",
             "Reverses the elements of each sequence: data [T, N, ...]; the first sequence_length[b] steps of "
             "batch element b are reversed, the padding after them is copied unchanged.",
             seq_params("The sequence axis. Only 0 is currently supported.", false), reverse_infer_shape,
             reverse_forward, reverse_backward, false);
}

}  // namespace seq
}  // namespace kiln
