// SequenceMask, SequenceLast, SequenceReverse and their backward ops on the GPU (CPU:
// seq/sequence.cc). data [T, N, ...] (axis 0) or [N, T, ...] (axis 1; SequenceReverse: axis 0),
// viewed as [T, N, R] / [N, T, R]; optional sequence_length [N] of any dtype (truncated toward
// zero, clamped into [lo, T] as the CPU does), first turned into int64 lengths on the device.
// sequence_length gets a zero gradient. Every request honoured; forward ops take every dtype,
// backward ops float32/float64.
#include <string>
#include <vector>

#include "ops/shape_common.cuh"

namespace kiln {
namespace cuda {
namespace shape {
namespace {

struct SeqView {
  int64_t T = 0, N = 0, R = 1;
  int axis = 0;
};

SeqView seq_view(const char* op, const Shape& s, int axis) {
  if (s.ndim() < 2) throw KilnError(std::string(op) + " (GPU): the data array must be of rank 2 or greater, got " + s.str());
  if (axis != 0 && axis != 1) throw KilnError(std::string(op) + " (GPU): axis must be 0 or 1");
  SeqView v;
  v.axis = axis;
  v.T = s[axis];
  v.N = s[1 - axis];
  v.R = s.prod(2, s.ndim());
  return v;
}

// len: [N] any dtype (null: none), L: [N] = clamp(trunc(len[b]), lo, T) or T
template <typename I>
__global__ void lengths_kernel(int64_t N, const I* len, int64_t lo, int64_t T, int64_t* L) {
  KILN_GRID_STRIDE(b, N) {
    int64_t v = T;
    if (len != nullptr) {
      v = index_value(len[b]);
      v = v < lo ? lo : v;
      v = v > T ? T : v;
    }
    L[b] = v;
  }
}

/// Per-batch lengths in scratch memory (device).
struct Lengths {
  DeviceScratch mem;
  Lengths(const char* op, int dev, cudaStream_t s, const TBlob* len, const SeqView& v, int64_t lo)
      : mem(dev, (size_t)std::max<int64_t>(v.N, 1) * sizeof(int64_t)) {
    if (v.N == 0) return;
    if (len != nullptr && len->size() != v.N)
      throw KilnError(std::string(op) + " (GPU): sequence_length " + len->shape.str() +
                      " must have one entry per batch element (" + std::to_string(v.N) + ")");
    if (len == nullptr) {
      lengths_kernel<int32_t><<<grid_for(v.N), kBlock, 0, s>>>(v.N, nullptr, lo, v.T, mem.as<int64_t>());
    } else {
      any_switch(len->dtype, [&](auto z) {
        using I = decltype(z);
        lengths_kernel<I><<<grid_for(v.N), kBlock, 0, s>>>(v.N, len->dptr<I>(), lo, v.T, mem.as<int64_t>());
      });
    }
    KILN_CUDA_LAUNCH_CHECK(op);
  }
  const int64_t* get() const { return mem.as<int64_t>(); }
};

/// (t, b) of row q = e / R of a [T, N, R] (axis 0) or [N, T, R] (axis 1) tensor.
__device__ __forceinline__ void seq_tb(int64_t q, int64_t T, int64_t N, int axis, int64_t* t, int64_t* b) {
  if (axis == 0) {
    *t = q / N;
    *b = q % N;
  } else {
    *t = q % T;
    *b = q / T;
  }
}

// x, y: [T, N, R] or [N, T, R]; y (req) t < L[b] ? x : fill (elementwise: y may alias x)
template <typename T>
__global__ void mask_kernel(int64_t Tn, int64_t N, int64_t R, int axis, const int64_t* L, const T* x, T* y, T fill,
                            int req) {
  const int64_t total = Tn * N * R;
  KILN_GRID_STRIDE(e, total) {
    int64_t t, b;
    seq_tb(e / R, Tn, N, axis, &t, &b);
    put(y, e, req, t < L[b] ? x[e] : fill);
  }
}

// x: [T, N, R] or [N, T, R], y: [N, R] (req) x[L[b] - 1, b]
template <typename T>
__global__ void last_kernel(int64_t Tn, int64_t N, int64_t R, int axis, const int64_t* L, const T* x, T* y, int req) {
  const int64_t total = N * R;
  KILN_GRID_STRIDE(e, total) {
    const int64_t b = e / R, r = e % R, t = L[b] - 1;
    const int64_t src = (axis == 0 ? t * N + b : b * Tn + t) * R + r;
    put(y, e, req, x[src]);
  }
}

// g: [N, R], dx: [T, N, R] or [N, T, R] (req) g[b] at t = L[b] - 1, else 0
template <typename T>
__global__ void last_grad_kernel(int64_t Tn, int64_t N, int64_t R, int axis, const int64_t* L, const T* g, T* dx,
                                 int req) {
  const int64_t total = Tn * N * R;
  KILN_GRID_STRIDE(e, total) {
    int64_t t, b;
    seq_tb(e / R, Tn, N, axis, &t, &b);
    assign(dx, e, req, t == L[b] - 1 ? g[b * R + e % R] : T(0));
  }
}

// x, y: [T, N, R] (distinct); y[t, b] (req) x[t < L[b] ? L[b] - 1 - t : t, b]
template <typename T>
__global__ void reverse_kernel(int64_t Tn, int64_t N, int64_t R, const int64_t* L, const T* x, T* y, int req) {
  const int64_t total = Tn * N * R;
  KILN_GRID_STRIDE(e, total) {
    const int64_t q = e / R, r = e % R, t = q / N, b = q % N;
    const int64_t src_t = t < L[b] ? L[b] - 1 - t : t;
    put(y, e, req, x[(src_t * N + b) * R + r]);
  }
}

const TBlob* lengths_input(const Attrs& a, const std::vector<TBlob>& in) {
  return a.b("use_sequence_length") ? &in.at(1) : nullptr;
}

/// Zero gradient for sequence_length (backward output 1, present with use_sequence_length).
void zero_length_grad(cudaStream_t s, const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  if (out.size() > 1) zero_unless_add(s, out[1], req[1]);
}

void same_size(const char* op, const TBlob& a, const TBlob& b) {
  if (a.size() != b.size() || a.dtype != b.dtype)
    throw KilnError(std::string(op) + " (GPU): " + a.shape.str() + " and " + b.shape.str() + " do not match");
}

// ---- SequenceMask --------------------------------------------------------------------------------

template <bool kBackward>
void mask_op(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
             const std::vector<TBlob>& out) {
  const char* op = kBackward ? "_backward_SequenceMask" : "SequenceMask";
  prologue(op, in, 1, 2, req, out, 1, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  if (kBackward) zero_length_grad(s, req, out);
  if (req[0] == OpReq::kNullOp) return;
  same_size(op, in[0], out[0]);
  const SeqView v = seq_view(op, out[0].shape, (int)a.i("axis"));
  const int64_t total = v.T * v.N * v.R;
  if (total == 0) return;
  if (kBackward && !is_float(out[0].dtype))
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(out[0].dtype) + " is not supported (float32, float64)");
  if (req[0] == OpReq::kAddTo && !is_float(out[0].dtype))
    throw KilnError("SequenceMask: accumulation needs float32/float64");
  const Lengths L(op, dev, s, lengths_input(a, in), v, 0);
  const double value = kBackward ? 0.0 : a.f("value");
  auto launch = [&](auto fill) {
    using T = decltype(fill);
    mask_kernel<T><<<grid_for(total), kBlock, 0, s>>>(v.T, v.N, v.R, v.axis, L.get(), in[0].dptr<T>(), out[0].dptr<T>(),
                                                      fill, req_int(req[0]));
  };
  switch (out[0].dtype) {  // the fill value cast on the host as the CPU's (T)value
    case DType::kFloat32: launch((float)value); break;
    case DType::kFloat64: launch(value); break;
    case DType::kFloat16: launch(__double2half(value)); break;
    case DType::kUint8: launch((uint8_t)value); break;
    case DType::kInt32: launch((int32_t)value); break;
    case DType::kInt8: launch((int8_t)value); break;
    case DType::kInt64: launch((int64_t)value); break;
    default: throw KilnError(std::string(op) + " (GPU): unsupported dtype " + dtype_name(out[0].dtype));
  }
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- SequenceLast --------------------------------------------------------------------------------

void last_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "SequenceLast";
  prologue(op, in, 1, 2, req, out, 1, 1);
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(op, in[0].shape, (int)a.i("axis"));
  if (v.N * v.R == 0) return;
  if (v.T <= 0) throw KilnError("SequenceLast: the sequence axis of data " + in[0].shape.str() + " is empty");
  if (out[0].size() != v.N * v.R || out[0].dtype != in[0].dtype)
    throw KilnError("SequenceLast: output " + out[0].shape.str() + " does not match data " + in[0].shape.str());
  if (req[0] == OpReq::kAddTo && !is_float(in[0].dtype))
    throw KilnError("SequenceLast: accumulation needs float32/float64");
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  const Lengths L(op, dev, s, lengths_input(a, in), v, 1);
  any_switch(in[0].dtype, [&](auto z) {
    using T = decltype(z);
    last_kernel<T><<<grid_for(v.N * v.R), kBlock, 0, s>>>(v.T, v.N, v.R, v.axis, L.get(), in[0].dptr<T>(),
                                                          out[0].dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void last_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_backward_SequenceLast";
  prologue(op, in, 1, 2, req, out, 1, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  zero_length_grad(s, req, out);
  if (req[0] == OpReq::kNullOp) return;
  const SeqView v = seq_view(op, out[0].shape, (int)a.i("axis"));
  if (!is_float(out[0].dtype) || in[0].dtype != out[0].dtype)
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(out[0].dtype) + " is not supported (float32, float64)");
  const int64_t total = v.T * v.N * v.R;
  if (total == 0) return;
  if (in[0].size() != v.N * v.R)
    throw KilnError(std::string(op) + " (GPU): gradient " + in[0].shape.str() + " does not match " + out[0].shape.str());
  const Lengths L(op, dev, s, lengths_input(a, in), v, 1);
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    last_grad_kernel<T><<<grid_for(total), kBlock, 0, s>>>(v.T, v.N, v.R, v.axis, L.get(), in[0].dptr<T>(),
                                                           out[0].dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- SequenceReverse -----------------------------------------------------------------------------

template <bool kBackward>
void reverse_op(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = kBackward ? "_backward_SequenceReverse" : "SequenceReverse";
  prologue(op, in, 1, 2, req, out, 1, 2);
  const int dev = device_of(ctx, in, out);
  DeviceGuard g(dev);
  cudaStream_t s = stream_of(ctx);
  if (kBackward) zero_length_grad(s, req, out);
  if (req[0] == OpReq::kNullOp) return;
  same_size(op, in[0], out[0]);
  const SeqView v = seq_view(op, out[0].shape, 0);
  const int64_t total = v.T * v.N * v.R;
  if (total == 0) return;
  if (in[0].ptr == out[0].ptr) throw KilnError(std::string(op) + ": cannot run in place");
  if (kBackward && !is_float(out[0].dtype))
    throw KilnError(std::string(op) + " (GPU): dtype " + dtype_name(out[0].dtype) + " is not supported (float32, float64)");
  const Lengths L(op, dev, s, lengths_input(a, in), v, 0);
  move_switch(op, out[0].dtype, req[0], [&](auto z) {
    using T = decltype(z);
    reverse_kernel<T><<<grid_for(total), kBlock, 0, s>>>(v.T, v.N, v.R, L.get(), static_cast<const T*>(in[0].ptr),
                                                         static_cast<T*>(out[0].ptr), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

}  // namespace

void register_shape_seq_gpu(OpRegistry& r) {
  set_gpu(r, "SequenceMask", mask_op<false>);
  set_gpu(r, "_backward_SequenceMask", mask_op<true>);
  set_gpu(r, "SequenceLast", last_forward);
  set_gpu(r, "_backward_SequenceLast", last_backward);
  set_gpu(r, "SequenceReverse", reverse_op<false>);
  set_gpu(r, "_backward_SequenceReverse", reverse_op<true>);
}

}  // namespace shape
}  // namespace cuda
}  // namespace kiln
