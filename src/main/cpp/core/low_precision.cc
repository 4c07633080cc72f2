// float16 / bfloat16 conversions on the host, and the promoting wrapper that lets every operator
// compute in them (kiln/low_precision.h says what it does and why).
#include "kiln/low_precision.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "kiln/int_convert.h"
#include "kiln/kernel_common.h"
#ifdef KILN_CUDA
#include "kiln/cuda_api.h"
#endif

namespace kiln {

void low_precision_to_float(const void* src, DType st, float* dst, int64_t n) {
  const int nt = omp_threads(n);
  if (st == DType::kFloat16) {
    const _Float16* x = (const _Float16*)src;  // [n]
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = (float)x[i];
  } else if (st == DType::kBfloat16) {
    const uint16_t* x = (const uint16_t*)src;  // [n]
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_float(x[i]);
  } else {
    throw KilnError(std::string("low_precision_to_float: ") + dtype_name(st) + " is not float16 or bfloat16");
  }
}

void float_to_low_precision(const float* src, void* dst, DType dt, int64_t n, bool accumulate) {
  const int nt = omp_threads(n);
  if (dt == DType::kFloat16) {
    _Float16* y = (_Float16*)dst;  // [n]
    if (accumulate) {
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; ++i) y[i] = (_Float16)((float)y[i] + src[i]);
    } else {
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; ++i) y[i] = (_Float16)src[i];
    }
  } else if (dt == DType::kBfloat16) {
    uint16_t* y = (uint16_t*)dst;  // [n]
    if (accumulate) {
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(bf16_to_float(y[i]) + src[i]);
    } else {
#pragma omp parallel for num_threads(nt) schedule(static)
      for (int64_t i = 0; i < n; ++i) y[i] = float_to_bf16(src[i]);
    }
  } else {
    throw KilnError(std::string("float_to_low_precision: ") + dtype_name(dt) + " is not float16 or bfloat16");
  }
}

void int_to_double(const void* src, DType st, double* dst, int64_t n) {
  int_switch(st, "int_to_double", [&](auto z) {
    using I = decltype(z);
    const I* x = (const I*)src;  // [n]
#pragma omp parallel for num_threads(omp_threads(n)) schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = (double)x[i];
  });
}

void double_to_int(const double* src, void* dst, DType dt, int64_t n, bool accumulate) {
  int_switch(dt, "double_to_int", [&](auto z) {
    using I = decltype(z);
    I* y = (I*)dst;  // [n]
#pragma omp parallel for num_threads(omp_threads(n)) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const I v = wrap_to_int<I>(src[i]);
      y[i] = accumulate ? (I)((uint64_t)y[i] + (uint64_t)v) : v;  // wrapping add, no signed overflow
    }
  });
}

namespace {

uint8_t native_bit(DType t) {
  return t == DType::kFloat16 ? kNativeFloat16 : t == DType::kBfloat16 ? kNativeBfloat16 : 0;
}

/// float32 scratch for one wrapped call: host memory, or device blocks from the caching allocator
/// (returned to it when the call ends; the conversions and the kernel are queued on the call's
/// stream before that, so a later user of the block is ordered after them).
class Scratch {
 public:
  explicit Scratch(const OpCtx& ctx) : ctx_(ctx) {}
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
#ifdef KILN_CUDA
    for (auto& b : device_) cuda::free(ctx_.ctx.id, b.first, b.second);
#endif
  }
  float* get(int64_t n) { return (float*)get_bytes(n, sizeof(float)); }
  double* get_double(int64_t n) { return (double*)get_bytes(n, sizeof(double)); }
  void* get_bytes(int64_t n, size_t elem) {
    const size_t bytes = (size_t)std::max<int64_t>(n, 1) * elem;
    if (on_gpu()) {
#ifdef KILN_CUDA
      void* p = cuda::malloc(ctx_.ctx.id, bytes);
      device_.emplace_back(p, bytes);
      return p;
#else
      throw KilnError("scratch on a GPU in a build without CUDA");
#endif
    }
    host_.emplace_back(new double[(bytes + sizeof(double) - 1) / sizeof(double)]);
    return host_.back().get();
  }
  // Conversions on the call's device: queued on its stream on a GPU (a GPU call exists only in a
  // CUDA build, and get_bytes refused its scratch otherwise), else on the host.
  void widen_int(const TBlob& src, double* dst) {
#ifdef KILN_CUDA
    if (on_gpu()) return cuda::int_to_double(ctx_.ctx.id, ctx_.stream, src.ptr, src.dtype, dst, src.size());
#endif
    int_to_double(src.ptr, src.dtype, dst, src.size());
  }
  void narrow_int(const double* src, const TBlob& dst, bool accumulate) {
#ifdef KILN_CUDA
    if (on_gpu()) return cuda::double_to_int(ctx_.ctx.id, ctx_.stream, src, dst.ptr, dst.dtype, dst.size(), accumulate);
#endif
    double_to_int(src, dst.ptr, dst.dtype, dst.size(), accumulate);
  }
  void widen(const TBlob& src, float* dst) {
#ifdef KILN_CUDA
    if (on_gpu()) return cuda::low_precision_to_float(ctx_.ctx.id, ctx_.stream, src.ptr, src.dtype, dst, src.size());
#endif
    low_precision_to_float(src.ptr, src.dtype, dst, src.size());
  }
  void narrow(const float* src, const TBlob& dst, bool accumulate) {
#ifdef KILN_CUDA
    if (on_gpu()) return cuda::float_to_low_precision(ctx_.ctx.id, ctx_.stream, src, dst.ptr, dst.dtype, dst.size(), accumulate);
#endif
    float_to_low_precision(src, dst.ptr, dst.dtype, dst.size(), accumulate);
  }
  bool on_gpu() const { return ctx_.ctx.type == DevType::kGPU; }

 private:
  const OpCtx& ctx_;
  std::vector<std::unique_ptr<double[]>> host_;
  std::vector<std::pair<void*, size_t>> device_;
};

/// `inner` with every float16/bfloat16 blob it does not take natively widened to float32.
Kernel promote(Kernel inner, uint8_t native, const OpDef* op) {
  return [inner = std::move(inner), native, op](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
                                                 const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
    call_widened(*op, inner, native, ctx, a, in, req, out);
  };
}

/// `inner` (a float64-capable kernel of `op`) taking integer blobs through float64 scratch.
Kernel integer_path(Kernel inner, const OpDef* op) {
  std::vector<int> params;  // indices of op->integer_params in op->params
  for (const std::string& name : op->integer_params) {
    for (size_t i = 0; i < op->params.size(); ++i)
      if (op->params[i].name == name) params.push_back((int)i);
  }
  return [inner = std::move(inner), op, params](const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in,
                                                const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
    DType itype = DType::kUnknown;
    for (const TBlob& b : in) if (is_integer_type(b.dtype)) itype = b.dtype;
    for (const TBlob& b : out) if (is_integer_type(b.dtype)) itype = b.dtype;
    if (itype == DType::kUnknown) {
      inner(ctx, a, in, req, out);
      return;
    }
    // every blob is of the integer type (the flagged ops infer one type for all): a float blob next
    // to integer ones would reach the float64 kernel as another type
    for (const TBlob& b : in)
      if (b.ptr != nullptr && b.dtype != itype)
        throw KilnError(op->name + ": integer path with mixed types (" + dtype_name(b.dtype) + " and " + dtype_name(itype) + ")");
    for (size_t j = 0; j < out.size(); ++j)
      if (out[j].ptr != nullptr && req[j] != OpReq::kNullOp && out[j].dtype != itype)
        throw KilnError(op->name + ": integer path with mixed types (" + dtype_name(out[j].dtype) + " and " +
                        dtype_name(itype) + ")");
    std::vector<int> ignored;  // inputs whose data the op does not read (zeros_like): not converted
    if (op->ignore_inputs) ignored = op->ignore_inputs(a);
    Scratch scratch(ctx);
    std::vector<TBlob> in64 = in, out64 = out;
    std::vector<OpReq> req64 = req;
    for (size_t i = 0; i < in.size(); ++i) {
      if (!is_integer_type(in[i].dtype) || in[i].ptr == nullptr) continue;
      in64[i].dtype = DType::kFloat64;
      if (std::find(ignored.begin(), ignored.end(), (int)i) != ignored.end()) {
        in64[i].ptr = nullptr;  // not read
        continue;
      }
      in64[i].ptr = scratch.get_double(in[i].size());
      scratch.widen_int(in[i], (double*)in64[i].ptr);
    }
    for (size_t j = 0; j < out.size(); ++j) {
      if (!is_integer_type(out[j].dtype)) continue;
      out64[j].dtype = DType::kFloat64;
      if (req[j] == OpReq::kNullOp && !op->always_written(a)) {
        out64[j].ptr = nullptr;
        continue;
      }
      out64[j].ptr = scratch.get_double(out[j].size());
      if (req64[j] == OpReq::kWriteInplace || req64[j] == OpReq::kAddTo) req64[j] = OpReq::kWriteTo;
    }
    const Attrs* use = &a;
    Attrs converted;
    if (!params.empty()) {  // MXNet's DType(param)
      converted = a;
      int_switch(itype, "integer parameters", [&](auto z) {
        using I = decltype(z);
        for (int i : params)
          if (converted.values[i].set) converted.values[i].num = (double)wrap_to_int<I>(converted.values[i].num);
      });
      use = &converted;
    }
    inner(ctx, *use, in64, req64, out64);
    for (size_t j = 0; j < out.size(); ++j) {
      if (!is_integer_type(out[j].dtype) || out[j].ptr == nullptr) continue;
      if (req[j] == OpReq::kNullOp && !op->always_written(a)) continue;
      scratch.narrow_int((const double*)out64[j].ptr, out[j], req[j] == OpReq::kAddTo);
    }
  };
}

}  // namespace

void call_widened(const OpDef& op, const Kernel& inner, uint8_t native, const OpCtx& ctx, const Attrs& a,
                  const std::vector<TBlob>& in, const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  auto wrapped = [native](const TBlob& b) {
    const uint8_t bit = native_bit(b.dtype);
    return bit != 0 && (native & bit) == 0;
  };
  bool any = false;
  for (const TBlob& b : in) any = any || wrapped(b);
  for (const TBlob& b : out) any = any || wrapped(b);
  if (!any) {
    inner(ctx, a, in, req, out);
    return;
  }
  Scratch scratch(ctx);
  std::vector<TBlob> in32 = in, out32 = out;
  std::vector<OpReq> req32 = req;
  for (size_t i = 0; i < in.size(); ++i) {
    if (!wrapped(in[i]) || in[i].ptr == nullptr) continue;
    in32[i].ptr = scratch.get(in[i].size());
    in32[i].dtype = DType::kFloat32;
    scratch.widen(in[i], (float*)in32[i].ptr);
  }
  for (size_t j = 0; j < out.size(); ++j) {
    if (!wrapped(out[j])) continue;
    out32[j].ptr = scratch.get(out[j].size());
    out32[j].dtype = DType::kFloat32;
    // the float32 result is separate memory: in place and add become a write, applied below
    if (req32[j] == OpReq::kWriteInplace || req32[j] == OpReq::kAddTo) req32[j] = OpReq::kWriteTo;
  }
  inner(ctx, a, in32, req32, out32);
  // aux states the kernel updated (not also outputs, which are written next)
  if (op.mutate_inputs) {
    for (int i : op.mutate_inputs(a)) {
      if (i < 0 || i >= (int)in.size() || !wrapped(in[i]) || in[i].ptr == nullptr) continue;
      bool is_output = false;
      for (const TBlob& o : out) is_output = is_output || o.ptr == in[i].ptr;
      if (!is_output) scratch.narrow((const float*)in32[i].ptr, in[i], false);
    }
  }
  for (size_t j = 0; j < out.size(); ++j) {
    if (!wrapped(out[j]) || out[j].ptr == nullptr) continue;
    if (req[j] == OpReq::kNullOp && !op.always_written(a)) continue;
    scratch.narrow((const float*)out32[j].ptr, out[j], req[j] == OpReq::kAddTo);
  }
}

void install_low_precision_wrappers(OpRegistry& r) {
  for (const OpDef* c : r.all()) {
    OpDef* d = r.find_mutable(c->name);
    if (d->integers_via_float64) {
      if (d->cpu) d->cpu = integer_path(std::move(d->cpu), d);
      if (d->gpu) d->gpu = integer_path(std::move(d->gpu), d);
    }
    if (d->cpu && (d->native_low_precision_cpu & kNativeLowPrecision) != kNativeLowPrecision)
      d->cpu = promote(std::move(d->cpu), d->native_low_precision_cpu, d);
    if (d->gpu && (d->native_low_precision_gpu & kNativeLowPrecision) != kNativeLowPrecision)
      d->gpu = promote(std::move(d->gpu), d->native_low_precision_gpu, d);
  }
}

}  // namespace kiln
