// GPU kernels of Pad, Crop and UpSampling (nearest) and their backward ops, mirroring
// src/main/cpp/ops/pool/pad.cc, crop.cc and upsampling.cc. Every backward is a gather (one thread
// per input-gradient element, no atomics, deterministic).
//
//   Pad        4-D [N, C, H, W] or 5-D [N, C, D, H, W] viewed as [planes, in0, in1, in2];
//              constant / edge / reflect (numpy 'reflect', pads < size). Backward: each input element
//              sums the output gradients of the positions that read it (per dim at most one range
//              for edge, three points for reflect, one point for constant), in row-major output order.
//   Crop       [N, C, H, W] -> [N, C, h, w] window at offset (or centred); backward: dy inside, 0 outside.
//   UpSampling nearest: input i [N, C_i, H_i, W_i] repeated s_i = OH / H_i times; concat or sum mode.
//              bilinear is rejected as on the CPU.
#include <string>

#include "ops/nn_common.cuh"

namespace kiln {
namespace cuda {
namespace nn_gpu {
namespace {

// ---- Pad ---------------------------------------------------------------------------------------------

enum PadMode { kConstant = 0, kEdge = 1, kReflect = 2 };

struct PadGeom {
  int64_t planes;
  int64_t in[3], out[3], before[3];
  int mode;
};

PadGeom pad_geom(const char* op, const Attrs& a, const Shape& x, const Shape& y) {
  // x [N, C, (D,) H, W], y [N, C, (D',) H', W']
  PadGeom g;
  const int nd = x.ndim();
  if ((nd != 4 && nd != 5) || y.ndim() != nd)
    throw KilnError(std::string(op) + ": bad shapes " + x.str() + ", " + y.str() + " (4-D or 5-D data)");
  const auto& pw = a.t("pad_width");
  if ((int)pw.size() != 2 * nd)
    throw KilnError(std::string(op) + ": pad_width has " + std::to_string(pw.size()) + " values for data shape " +
                    x.str());
  const std::string m = a.s("mode");
  g.mode = m == "constant" ? kConstant : m == "edge" ? kEdge : kReflect;
  g.planes = x[0] * x[1];
  for (int i = 0; i < 3; ++i) {
    const int j = i - (5 - nd) + 2;  // data dim, < 2 for the padding dim of 4-D data
    if (j < 2) {
      g.in[i] = g.out[i] = 1;
      g.before[i] = 0;
    } else {
      g.in[i] = x[j];
      g.out[i] = y[j];
      g.before[i] = pw[2 * j];
      if (g.out[i] != g.in[i] + pw[2 * j] + pw[2 * j + 1])
        throw KilnError(std::string(op) + ": output " + y.str() + " does not match data " + x.str() + " padded");
      if (g.mode == kReflect && (pw[2 * j] >= g.in[i] || pw[2 * j + 1] >= g.in[i]))
        throw KilnError(std::string(op) + ": reflection padding needs pads smaller than the input size, data " +
                        x.str());
    }
  }
  return g;
}

/// Source index along one dim for output index o, or -1 for a constant pad.
__device__ __forceinline__ int64_t pad_src(int64_t o, int64_t before, int64_t n, int mode) {
  const int64_t i = o - before;
  if (i >= 0 && i < n) return i;
  if (mode == kConstant || n == 0) return -1;
  if (mode == kEdge) return i < 0 ? 0 : n - 1;
  return i < 0 ? -i : 2 * (n - 1) - i;  // reflect (|pad| < n: one mirror)
}

// x: [planes, in0, in1, in2], y: [planes, out0, out1, out2]
template <typename T>
__global__ void pad_forward_kernel(PadGeom g, const T* x, T* y, T cv, int req) {
  const int64_t op = g.out[0] * g.out[1] * g.out[2], ip = g.in[0] * g.in[1] * g.in[2];
  const int64_t n = g.planes * op;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t c = idx % g.out[2];
    int64_t t = idx / g.out[2];
    const int64_t b = t % g.out[1];
    t /= g.out[1];
    const int64_t a = t % g.out[0];
    const int64_t pl = t / g.out[0];
    const int64_t sa = pad_src(a, g.before[0], g.in[0], g.mode);
    const int64_t sb = pad_src(b, g.before[1], g.in[1], g.mode);
    const int64_t sc = pad_src(c, g.before[2], g.in[2], g.mode);
    const T v = (sa < 0 || sb < 0 || sc < 0) ? cv : x[pl * ip + (sa * g.in[1] + sb) * g.in[2] + sc];
    assign(y, idx, req, v);
  }
}

/// Output ranges (ascending, disjoint) along one dim whose positions read input index i; returns the count.
__device__ __forceinline__ int pad_readers(int64_t i, int64_t before, int64_t n, int64_t out, int mode, int64_t lo[3],
                                           int64_t hi[3]) {
  if (mode == kEdge) {
    lo[0] = i == 0 ? 0 : i + before;
    hi[0] = i == n - 1 ? out - 1 : i + before;
    return 1;
  }
  int k = 0;
  if (mode == kReflect && i >= 1 && i <= before) {  // left mirror
    lo[k] = hi[k] = before - i;
    ++k;
  }
  lo[k] = hi[k] = i + before;
  ++k;
  if (mode == kReflect && i < n - 1 && before + 2 * (n - 1) - i < out) {  // right mirror
    lo[k] = hi[k] = before + 2 * (n - 1) - i;
    ++k;
  }
  return k;
}

// dy: [planes, out0, out1, out2], dx: [planes, in0, in1, in2]
template <typename T>
__global__ void pad_backward_kernel(PadGeom g, const T* dy, T* dx, int req) {
  const int64_t op = g.out[0] * g.out[1] * g.out[2], ip = g.in[0] * g.in[1] * g.in[2];
  const int64_t n = g.planes * ip;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t c = idx % g.in[2];
    int64_t t = idx / g.in[2];
    const int64_t b = t % g.in[1];
    t /= g.in[1];
    const int64_t a = t % g.in[0];
    const int64_t pl = t / g.in[0];
    int64_t lo0[3], hi0[3], lo1[3], hi1[3], lo2[3], hi2[3];
    const int n0 = pad_readers(a, g.before[0], g.in[0], g.out[0], g.mode, lo0, hi0);
    const int n1 = pad_readers(b, g.before[1], g.in[1], g.out[1], g.mode, lo1, hi1);
    const int n2 = pad_readers(c, g.before[2], g.in[2], g.out[2], g.mode, lo2, hi2);
    const T* dyp = dy + pl * op;  // [out0, out1, out2]
    T acc = T(0);
    for (int r0 = 0; r0 < n0; ++r0)
      for (int64_t o0 = lo0[r0]; o0 <= hi0[r0]; ++o0)
        for (int r1 = 0; r1 < n1; ++r1)
          for (int64_t o1 = lo1[r1]; o1 <= hi1[r1]; ++o1) {
            const T* row = dyp + (o0 * g.out[1] + o1) * g.out[2];  // [out2]
            for (int r2 = 0; r2 < n2; ++r2)
              for (int64_t o2 = lo2[r2]; o2 <= hi2[r2]; ++o2) acc += row[o2];
          }
    assign(dx, idx, req, acc);
  }
}

void pad_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "Pad";
  prologue(op, in, 1, 1, req, out, 1, 1);
  const PadGeom g = pad_geom(op, a, in[0].shape, out[0].shape);
  const int64_t n = out[0].size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  const double cv = a.f("constant_value");
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    pad_forward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<T>(), out[0].dptr<T>(), T(cv),
                                                                       req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void pad_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "_backward_Pad";
  // in: ograd (padded shape); out: data_grad (data shape)
  prologue(op, in, 1, 1, req, out, 1, 1);
  const PadGeom g = pad_geom(op, a, out[0].shape, in[0].shape);
  const int64_t n = out[0].size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    pad_backward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<T>(), out[0].dptr<T>(),
                                                                        req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- Crop ------------------------------------------------------------------------------------------------

struct CropWin {
  int64_t h, w, y0, x0;
};

CropWin crop_window(const char* op, const Attrs& a, const Shape& d, const Shape* like) {
  if (d.ndim() != 4) throw KilnError(std::string(op) + ": Input data should be 4D in batch-num_filter-y-x; got " + d.str());
  CropWin c;
  if (a.i("num_args") == 1) {
    const auto& hw = a.t("h_w");
    if (hw.size() != 2 || hw[0] < 1 || hw[1] < 1)
      throw KilnError(std::string(op) + ": h_w must give the crop height and width (num_args=1)");
    c.h = hw[0];
    c.w = hw[1];
  } else {
    if (like == nullptr || like->ndim() != 4)
      throw KilnError(std::string(op) + ": the second argument should be 4D in batch-num_filter-y-x");
    c.h = (*like)[2];
    c.w = (*like)[3];
  }
  if (d[2] < c.h || d[3] < c.w)
    throw KilnError(std::string(op) + ": data " + d.str() + " is smaller than the crop (" + std::to_string(c.h) + ", " +
                    std::to_string(c.w) + ")");
  if (a.b("center_crop")) {
    c.y0 = (d[2] - c.h) / 2;
    c.x0 = (d[3] - c.w) / 2;
  } else {
    const auto& off = a.t("offset");
    if (off.size() != 2) throw KilnError(std::string(op) + ": offset must have 2 values (y, x)");
    c.y0 = off[0];
    c.x0 = off[1];
    if (c.y0 < 0 || c.x0 < 0 || c.y0 + c.h > d[2] || c.x0 + c.w > d[3])
      throw KilnError(std::string(op) + ": offset with crop size (" + std::to_string(c.h) + ", " + std::to_string(c.w) +
                      ") exceeds the data shape " + d.str());
  }
  return c;
}

// x: [planes, H, W], y: [planes, h, w]
template <typename T>
__global__ void crop_forward_kernel(int64_t n, int64_t H, int64_t W, CropWin c, const T* x, T* y, int req) {
  KILN_GRID_STRIDE(idx, n) {
    const int64_t j = idx % c.w, i = (idx / c.w) % c.h, p = idx / (c.w * c.h);
    assign(y, idx, req, x[(p * H + c.y0 + i) * W + c.x0 + j]);
  }
}

// dy: [planes, h, w], dx: [planes, H, W] (dy inside the window, 0 outside)
template <typename T>
__global__ void crop_backward_kernel(int64_t n, int64_t H, int64_t W, CropWin c, const T* dy, T* dx, int req) {
  KILN_GRID_STRIDE(idx, n) {
    const int64_t xx = idx % W, yy = (idx / W) % H, p = idx / (W * H);
    const int64_t i = yy - c.y0, j = xx - c.x0;
    const T v = (i >= 0 && i < c.h && j >= 0 && j < c.w) ? dy[(p * c.h + i) * c.w + j] : T(0);
    assign(dx, idx, req, v);
  }
}

void crop_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "Crop";
  // in: data [N, C, H, W][, crop_like [*, *, h, w]]; out: output [N, C, h, w]
  prologue(op, in, 1, 2, req, out, 1, 1);
  const Shape& d = in[0].shape;
  const CropWin c = crop_window(op, a, d, in.size() > 1 ? &in[1].shape : nullptr);
  const int64_t n = d[0] * d[1] * c.h * c.w;
  expect_size(op, "output", out[0], n);
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    crop_forward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, d[2], d[3], c, in[0].dptr<T>(),
                                                                        out[0].dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void crop_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_backward_Crop";
  // in: ograd [N, C, h, w]; out: data_grad [N, C, H, W][, crop_like_grad (zeros)]
  prologue(op, in, 1, 1, req, out, 1, 2);
  const Shape& d = out[0].shape;
  const CropWin c = crop_window(op, a, d, out.size() > 1 ? &out[1].shape : nullptr);
  expect_size(op, "ograd", in[0], d[0] * d[1] * c.h * c.w);
  const int64_t n = out[0].size();
  DeviceGuard dg(device_of(ctx, in, out));
  if (req[0] != OpReq::kNullOp && n > 0) {
    KILN_FLOAT_SWITCH(in[0].dtype, T, {
      crop_backward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, d[2], d[3], c, in[0].dptr<T>(),
                                                                           out[0].dptr<T>(), req_int(req[0]));
    });
    KILN_CUDA_LAUNCH_CHECK(op);
  }
  if (out.size() > 1) zero_unless_add(ctx, req[1], out[1]);
}

// ---- UpSampling (nearest) ------------------------------------------------------------------------------

void check_nearest(const Attrs& a) {
  if (a.s("sample_type") != "nearest")
    throw KilnError("UpSampling: sample_type='bilinear' is not supported by Kiln yet (only 'nearest')");
}

/// One input's place in the output: channel offset and scale.
struct UpPiece {
  int64_t C, H, W, c_off, s;
};

std::vector<UpPiece> up_pieces(const char* op, const Attrs& a, const std::vector<TBlob>& ins, const Shape& y) {
  if (y.ndim() != 4) throw KilnError(std::string(op) + ": bad output shape " + y.str());
  std::vector<UpPiece> p;
  const bool sum = a.s("multi_input_mode") == "sum";
  int64_t off = 0;
  for (const TBlob& b : ins) {
    const Shape& s = b.shape;
    if (s.ndim() != 4 || s[2] <= 0 || s[3] <= 0 || y[2] % s[2] != 0 || y[3] % s[3] != 0 || y[2] / s[2] != y[3] / s[3] ||
        s[0] != y[0] || (sum && s[1] != y[1]))
      throw KilnError(std::string(op) + ": bad input shape " + s.str() + " for output " + y.str());
    p.push_back({s[1], s[2], s[3], sum ? 0 : off, y[2] / s[2]});
    off += s[1];
  }
  if (!sum && off != y[1])
    throw KilnError(std::string(op) + ": inputs have " + std::to_string(off) + " channels in all, output " + y.str());
  return p;
}

// x: [N, C_i, H_i, W_i] -> y: [N, C, OH, OW] channels [c_off, c_off + C_i)
template <typename T>
__global__ void up_forward_kernel(int64_t n, UpPiece p, int64_t C, int64_t OH, int64_t OW, const T* x, T* y, int req) {
  KILN_GRID_STRIDE(idx, n) {
    const int64_t ox = idx % OW;
    int64_t t = idx / OW;
    const int64_t oy = t % OH;
    t /= OH;
    const int64_t c = t % p.C, b = t / p.C;
    const T v = x[((b * p.C + c) * p.H + oy / p.s) * p.W + ox / p.s];
    assign(y, ((b * C + p.c_off + c) * OH + oy) * OW + ox, req, v);
  }
}

// dy: [N, C, OH, OW] -> dx: [N, C_i, H_i, W_i], each the sum of its s x s block
template <typename T>
__global__ void up_backward_kernel(int64_t n, UpPiece p, int64_t C, int64_t OH, int64_t OW, const T* dy, T* dx,
                                   int req) {
  KILN_GRID_STRIDE(idx, n) {
    const int64_t w = idx % p.W;
    int64_t t = idx / p.W;
    const int64_t h = t % p.H;
    t /= p.H;
    const int64_t c = t % p.C, b = t / p.C;
    const T* dyp = dy + (b * C + p.c_off + c) * OH * OW;  // [OH, OW]
    T s = T(0);
    for (int64_t i = 0; i < p.s; ++i) {
      const T* row = dyp + (h * p.s + i) * OW + w * p.s;  // [s]
      for (int64_t j = 0; j < p.s; ++j) s += row[j];
    }
    assign(dx, idx, req, s);
  }
}

void up_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                const std::vector<TBlob>& out) {
  const char* op = "UpSampling";
  check_nearest(a);
  // in: arg0..arg{n-1} [N, C_i, H_i, W_i]; out: output [N, C, OH, OW]
  prologue(op, in, 1, 1 << 20, req, out, 1, 1);
  const Shape& y = out[0].shape;
  const auto ps = up_pieces(op, a, in, y);
  if (req[0] == OpReq::kNullOp || out[0].size() == 0) return;
  const bool sum = a.s("multi_input_mode") == "sum";
  DeviceGuard dg(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    for (size_t i = 0; i < ps.size(); ++i) {
      // the first input writes by req; later ones add in sum mode, write their channels in concat mode
      const OpReq r = (sum && i > 0) ? OpReq::kAddTo : req[0];
      const int64_t n = y[0] * ps[i].C * y[2] * y[3];
      if (n == 0) continue;
      up_forward_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, ps[i], y[1], y[2], y[3], in[i].dptr<T>(),
                                                         out[0].dptr<T>(), req_int(r));
      KILN_CUDA_LAUNCH_CHECK(op);
    }
  });
}

void up_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_backward_UpSampling";
  check_nearest(a);
  // in: ograd [N, C, OH, OW]; out: arg_i_grad [N, C_i, H_i, W_i]
  prologue(op, in, 1, 1, req, out, 1, 1 << 20);
  const Shape& y = in[0].shape;
  const auto ps = up_pieces(op, a, out, y);
  DeviceGuard dg(device_of(ctx, in, out));
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    for (size_t i = 0; i < ps.size(); ++i) {
      const int64_t n = out[i].size();
      if (req[i] == OpReq::kNullOp || n == 0) continue;
      up_backward_kernel<T><<<grid_for(n), kBlock, 0, s>>>(n, ps[i], y[1], y[2], y[3], in[0].dptr<T>(),
                                                          out[i].dptr<T>(), req_int(req[i]));
      KILN_CUDA_LAUNCH_CHECK(op);
    }
  });
}

}  // namespace

void register_pad_crop_up(OpRegistry& r) {
  set_gpu(r, "Pad", pad_forward);
  set_gpu(r, "_backward_Pad", pad_backward);
  set_gpu(r, "Crop", crop_forward);
  set_gpu(r, "_backward_Crop", crop_backward);
  set_gpu(r, "UpSampling", up_forward);
  set_gpu(r, "_backward_UpSampling", up_backward);
}

}  // namespace nn_gpu
}  // namespace cuda
}  // namespace kiln
