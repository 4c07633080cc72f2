// GPU kernels of _contrib_BilinearResize2D, _contrib_AdaptiveAvgPooling2D and ROIPooling and their
// backward ops, mirroring src/main/cpp/ops/pool/bilinear_resize.cc, adaptive_pool.cc and
// roi_pooling.cc; the positions, windows and weights come from kiln/image_ops.h, as on the CPU.
//
// Forward: one thread per output element. Every backward is a gather (one thread per data-gradient
// element, no atomics, deterministic), summing in the CPU scatter's output order:
//   BilinearResize2D     the outputs that read input row h are those from the first whose tap
//                        starts at h - 1 while their tap starts at or before h (taps do not go
//                        back), likewise for columns; each adds (row weight * column weight) * dy;
//   AdaptiveAvgPooling2D the windows containing h are those from the first ending after h while
//                        they start at or before h; each adds dy / kh / kw;
//   ROIPooling           the bins (roi ascending, then row-major) of rois on this element's batch
//                        whose bin contains it and whose maxidx is this element add their dy.
// ROIPooling refuses bad rois (batch index outside the data, NaN coordinates) as the CPU: a check
// kernel flags the first, the host reads the flag after one synchronization and throws.
#include <cfloat>
#include <string>

#include "kiln/image_ops.h"
#include "ops/nn_common.cuh"

namespace kiln {
namespace cuda {
namespace nn_gpu {
namespace {

void check_4d(const char* op, const Shape& x, const Shape& y) {
  if (x.ndim() != 4 || y.ndim() != 4 || x[0] != y[0] || x[1] != y[1])
    throw KilnError(std::string(op) + " (GPU): bad data/output shapes " + x.str() + ", " + y.str());
}

// ---- _contrib_BilinearResize2D -------------------------------------------------------------------

struct ResizeGeom {
  int64_t planes, H, W, OH, OW;
  float sh, sw;  // bilinear_scale of rows and columns
  bool align, copy;
};

ResizeGeom resize_geom(const char* op, const Attrs& a, const Shape& x, const Shape& y) {
  // x [N, C, H, W], y [N, C, OH, OW]
  check_4d(op, x, y);
  ResizeGeom g;
  g.planes = x[0] * x[1];
  g.H = x[2];
  g.W = x[3];
  g.OH = y[2];
  g.OW = y[3];
  g.align = a.b("align_corners");
  g.copy = g.H == g.OH && g.W == g.OW;
  g.sh = image::bilinear_scale(g.H, g.OH, g.align);
  g.sw = image::bilinear_scale(g.W, g.OW, g.align);
  if (g.planes * g.OH * g.OW != 0 && (g.H <= 0 || g.W <= 0))
    throw KilnError(std::string(op) + " (GPU): cannot resize the empty data " + x.str() + " to " + y.str());
  return g;
}

// x: [planes, H, W] -> y: [planes, OH, OW]
template <typename T>
__global__ void resize_forward_kernel(ResizeGeom g, const T* x, T* y, int req) {
  const int64_t n = g.planes * g.OH * g.OW;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, p = idx / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;  // [H, W]
    if (g.copy) {
      assign(y, idx, req, xp[oh * g.W + ow]);
      continue;
    }
    const image::BilinearTap r = image::bilinear_tap(g.sh, oh, g.H, g.align);
    const image::BilinearTap c = image::bilinear_tap(g.sw, ow, g.W, g.align);
    const T h1 = (T)r.l1, h0 = (T)1 - h1, w1 = (T)c.l1, w0 = (T)1 - w1;
    const T* x0 = xp + r.i0 * g.W;      // [W], row i0
    const T* x1 = x0 + r.step * g.W;    // [W], row i0 + step
    assign(y, idx, req, h0 * (w0 * x0[c.i0] + w1 * x0[c.i0 + c.step]) + h1 * (w0 * x1[c.i0] + w1 * x1[c.i0 + c.step]));
  }
}

// dy: [planes, OH, OW] -> dx: [planes, H, W]
template <typename T>
__global__ void resize_backward_kernel(ResizeGeom g, const T* dy, T* dx, int req) {
  const int64_t n = g.planes * g.H * g.W;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t w = idx % g.W, h = (idx / g.W) % g.H, p = idx / (g.W * g.H);
    const T* dyp = dy + p * g.OH * g.OW;  // [OH, OW]
    if (g.copy) {
      assign(dx, idx, req, dyp[h * g.OW + w]);
      continue;
    }
    const int64_t oh0 = image::bilinear_first_reader(g.sh, h - 1, g.H, g.OH, g.align);
    const int64_t ow0 = image::bilinear_first_reader(g.sw, w - 1, g.W, g.OW, g.align);
    T acc = T(0);
    for (int64_t oh = oh0; oh < g.OH; ++oh) {
      const image::BilinearTap r = image::bilinear_tap(g.sh, oh, g.H, g.align);
      if (r.i0 > h) break;
      const T wh = image::bilinear_weight<T>(r, h);
      for (int64_t ow = ow0; ow < g.OW; ++ow) {
        const image::BilinearTap c = image::bilinear_tap(g.sw, ow, g.W, g.align);
        if (c.i0 > w) break;
        acc += wh * image::bilinear_weight<T>(c, w) * dyp[oh * g.OW + ow];
      }
    }
    assign(dx, idx, req, acc);
  }
}

void resize_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "_contrib_BilinearResize2D";
  // in: data [N, C, H, W][, like]; out: output [N, C, OH, OW]
  prologue(op, in, 1, 2, req, out, 1, 1);
  const ResizeGeom g = resize_geom(op, a, in[0].shape, out[0].shape);
  const int64_t n = out[0].size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    resize_forward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<T>(), out[0].dptr<T>(),
                                                                          req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void resize_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = "_backward_contrib_BilinearResize2D";
  // in: ograd [N, C, OH, OW]; out: data_grad [N, C, H, W][, like_grad (zeros)]
  prologue(op, in, 1, 1, req, out, 1, 2);
  const ResizeGeom g = resize_geom(op, a, out[0].shape, in[0].shape);
  const int64_t n = out[0].size();
  DeviceGuard dg(device_of(ctx, in, out));
  if (req[0] != OpReq::kNullOp && n > 0) {
    KILN_FLOAT_SWITCH(in[0].dtype, T, {
      resize_backward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<T>(), out[0].dptr<T>(),
                                                                             req_int(req[0]));
    });
    KILN_CUDA_LAUNCH_CHECK(op);
  }
  if (out.size() > 1) zero_unless_add(ctx, req[1], out[1]);
}

// ---- _contrib_AdaptiveAvgPooling2D ---------------------------------------------------------------

struct AdaptiveGeom {
  int64_t planes, H, W, OH, OW;
};

/// The first output index whose window ends after input index i (out when none): ends do not
/// decrease with the output index.
__device__ int64_t adaptive_first(int64_t i, int64_t out, int64_t in) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    int64_t s, e;
    image::adaptive_window(mid, out, in, &s, &e);
    if (e <= i) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// x: [planes, H, W] -> y: [planes, OH, OW]
template <typename T>
__global__ void adaptive_forward_kernel(AdaptiveGeom g, const T* x, T* y, int req) {
  const int64_t n = g.planes * g.OH * g.OW;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t ow = idx % g.OW, oh = (idx / g.OW) % g.OH, p = idx / (g.OW * g.OH);
    const T* xp = x + p * g.H * g.W;  // [H, W]
    int64_t h0, h1, w0, w1;
    image::adaptive_window(oh, g.OH, g.H, &h0, &h1);
    image::adaptive_window(ow, g.OW, g.W, &w0, &w1);
    T sum = T(0);
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t w = w0; w < w1; ++w) sum += xp[h * g.W + w];
    assign(y, idx, req, sum / (T)(w1 - w0) / (T)(h1 - h0));
  }
}

// dy: [planes, OH, OW] -> dx: [planes, H, W]
template <typename T>
__global__ void adaptive_backward_kernel(AdaptiveGeom g, const T* dy, T* dx, int req) {
  const int64_t n = g.planes * g.H * g.W;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t w = idx % g.W, h = (idx / g.W) % g.H, p = idx / (g.W * g.H);
    const T* dyp = dy + p * g.OH * g.OW;  // [OH, OW]
    const int64_t oh0 = adaptive_first(h, g.OH, g.H), ow0 = adaptive_first(w, g.OW, g.W);
    T acc = T(0);
    for (int64_t oh = oh0; oh < g.OH; ++oh) {
      int64_t h0, h1;
      image::adaptive_window(oh, g.OH, g.H, &h0, &h1);
      if (h0 > h) break;
      for (int64_t ow = ow0; ow < g.OW; ++ow) {
        int64_t w0, w1;
        image::adaptive_window(ow, g.OW, g.W, &w0, &w1);
        if (w0 > w) break;
        acc += dyp[oh * g.OW + ow] / (T)(h1 - h0) / (T)(w1 - w0);
      }
    }
    assign(dx, idx, req, acc);
  }
}

void adaptive_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const char* op = "_contrib_AdaptiveAvgPooling2D";
  // in: data [N, C, H, W]; out: output [N, C, OH, OW]
  prologue(op, in, 1, 1, req, out, 1, 1);
  const Shape &x = in[0].shape, &y = out[0].shape;
  check_4d(op, x, y);
  const AdaptiveGeom g{x[0] * x[1], x[2], x[3], y[2], y[3]};
  const int64_t n = out[0].size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    adaptive_forward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<T>(), out[0].dptr<T>(),
                                                                            req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void adaptive_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  const char* op = "_backward_contrib_AdaptiveAvgPooling2D";
  // in: ograd [N, C, OH, OW]; out: data_grad [N, C, H, W]
  prologue(op, in, 1, 1, req, out, 1, 1);
  const Shape &x = out[0].shape, &y = in[0].shape;
  check_4d(op, x, y);
  const AdaptiveGeom g{x[0] * x[1], x[2], x[3], y[2], y[3]};
  const int64_t n = out[0].size();
  if (req[0] == OpReq::kNullOp || n == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    adaptive_backward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<T>(), out[0].dptr<T>(),
                                                                             req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- ROIPooling ----------------------------------------------------------------------------------------

struct RoiGeom {
  int64_t N, C, H, W, R, PH, PW;
  float scale;
};

RoiGeom roi_geom(const char* op, const Attrs& a, const Shape& x, const Shape& rois, const Shape& y) {
  // x [N, C, H, W], rois [R, 5], y [R, C, PH, PW]
  const auto& p = a.t("pooled_size");
  if (p.size() != 2 || p[0] < 1 || p[1] < 1 || x.ndim() != 4 || rois.ndim() != 2 || rois[1] != 5 || y.ndim() != 4 ||
      y[0] != rois[0] || y[1] != x[1] || y[2] != p[0] || y[3] != p[1])
    throw KilnError(std::string(op) + " (GPU): bad data/rois/output shapes " + x.str() + ", " + rois.str() + ", " +
                    y.str());
  return {x[0], x[1], x[2], x[3], rois[0], p[0], p[1], (float)a.f("spatial_scale")};
}

/// bad (initially ~0): the smallest index of a roi whose batch index or coordinates cannot be used.
// rois: [R, 5]
template <typename T>
__global__ void roi_check_kernel(int64_t R, int64_t N, const T* rois, unsigned long long* bad) {
  KILN_GRID_STRIDE(r, R) {
    const T* roi = rois + r * 5;
    if (!image::roi_batch_ok(roi[0], N) || !image::roi_coords_ok(roi)) atomicMin(bad, (unsigned long long)r);
  }
}

/// Throws for the first unusable roi, as the CPU's check (one synchronization).
template <typename T>
void check_rois(const char* op, int dev, cudaStream_t s, const RoiGeom& g, const T* rois) {
  if (g.R == 0) return;
  DeviceScratch flag(dev, sizeof(unsigned long long));
  KILN_CUDA_CHECK(cudaMemsetAsync(flag.as<void>(), 0xff, sizeof(unsigned long long), s));
  roi_check_kernel<T><<<grid_for(g.R), kBlock, 0, s>>>(g.R, g.N, rois, flag.as<unsigned long long>());
  KILN_CUDA_LAUNCH_CHECK(op);
  unsigned long long r = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&r, flag.as<void>(), sizeof(r), cudaMemcpyDeviceToHost, s));
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));
  if (r == ~0ULL) return;
  T v[5];
  KILN_CUDA_CHECK(cudaMemcpyAsync(v, rois + r * 5, sizeof(v), cudaMemcpyDeviceToHost, s));
  KILN_CUDA_CHECK(cudaStreamSynchronize(s));
  if (!image::roi_batch_ok(v[0], g.N))
    throw KilnError(std::string(op) + ": rois[" + std::to_string(r) + "] has batch index " + std::to_string((double)v[0]) +
                    ", outside the data's batch of " + std::to_string(g.N));
  throw KilnError(std::string(op) + ": rois[" + std::to_string(r) + "] has a coordinate that is not a number");
}

// x: [N, C, H, W], rois: [R, 5] -> y, arg: [R, C, PH, PW] (arg: flat index into x or -1)
template <typename T>
__global__ void roi_forward_kernel(RoiGeom g, const T* x, const T* rois, T* y, int64_t* arg, int req) {
  const int64_t n = g.R * g.C * g.PH * g.PW;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t pw = idx % g.PW, ph = (idx / g.PW) % g.PH, c = (idx / (g.PW * g.PH)) % g.C;
    const int64_t r = idx / (g.PW * g.PH * g.C);
    const T* roi = rois + r * 5;
    T v = T(0);
    int64_t at = -1;
    if (image::roi_batch_ok(roi[0], g.N) && image::roi_coords_ok(roi)) {  // checked on the host before
      const image::RoiBox<T> box = image::roi_box(roi, g.scale, g.PH, g.PW);
      int64_t h0, h1, w0, w1;
      image::roi_bin(ph, box.bin_h, box.y0, g.H, &h0, &h1);
      image::roi_bin(pw, box.bin_w, box.x0, g.W, &w0, &w1);
      const int64_t base = ((int64_t)roi[0] * g.C + c) * g.H * g.W;  // plane (batch, c)
      if (h1 > h0 && w1 > w0) v = (T)-FLT_MAX;
      for (int64_t h = h0; h < h1; ++h)
        for (int64_t w = w0; w < w1; ++w) {
          const T e = x[base + h * g.W + w];
          if (e > v) {
            v = e;
            at = base + h * g.W + w;
          }
        }
    }
    if (req != kReqNull) assign(y, idx, req, v);
    arg[idx] = at;
  }
}

// dy, arg: [R, C, PH, PW], rois: [R, 5] -> dx: [N, C, H, W]
template <typename T>
__global__ void roi_backward_kernel(RoiGeom g, const T* dy, const T* rois, const int64_t* arg, T* dx, int req) {
  const int64_t n = g.N * g.C * g.H * g.W;
  KILN_GRID_STRIDE(idx, n) {
    const int64_t w = idx % g.W, h = (idx / g.W) % g.H, c = (idx / (g.W * g.H)) % g.C, b = idx / (g.W * g.H * g.C);
    T acc = T(0);
    for (int64_t r = 0; r < g.R; ++r) {
      const T* roi = rois + r * 5;
      if (!image::roi_batch_ok(roi[0], g.N) || (int64_t)roi[0] != b || !image::roi_coords_ok(roi)) continue;
      const image::RoiBox<T> box = image::roi_box(roi, g.scale, g.PH, g.PW);
      int64_t lo, hi, unused;
      image::roi_bin(0, box.bin_h, box.y0, g.H, &lo, &unused);
      image::roi_bin(g.PH - 1, box.bin_h, box.y0, g.H, &unused, &hi);
      if (h < lo || h >= hi) continue;
      const int64_t* ap = arg + (r * g.C + c) * g.PH * g.PW;  // [PH, PW]
      const T* dp = dy + (r * g.C + c) * g.PH * g.PW;         // [PH, PW]
      for (int64_t ph = 0; ph < g.PH; ++ph) {
        int64_t h0, h1;
        image::roi_bin(ph, box.bin_h, box.y0, g.H, &h0, &h1);
        if (h < h0 || h >= h1) continue;
        for (int64_t pw = 0; pw < g.PW; ++pw) {
          int64_t w0, w1;
          image::roi_bin(pw, box.bin_w, box.x0, g.W, &w0, &w1);
          if (w >= w0 && w < w1 && ap[ph * g.PW + pw] == idx) acc += dp[ph * g.PW + pw];
        }
      }
    }
    assign(dx, idx, req, acc);
  }
}

void roi_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "ROIPooling";
  // in: data [N, C, H, W], rois [R, 5]; out: output [R, C, PH, PW], maxidx [R, C, PH, PW] (int64, always written)
  check_arity(op, in, 2, 2, out, req, 2, 2);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  if (in[1].dtype != in[0].dtype || out[0].dtype != in[0].dtype || out[1].dtype != DType::kInt64 ||
      out[1].shape != out[0].shape)
    throw KilnError(std::string(op) + " (GPU): bad dtypes or maxidx shape");
  const RoiGeom g = roi_geom(op, a, in[0].shape, in[1].shape, out[0].shape);
  const int64_t n = out[0].size();
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    check_rois<T>(op, dev, s, g, in[1].dptr<T>());
    if (n > 0)
      roi_forward_kernel<T><<<grid_for(n), kBlock, 0, s>>>(g, in[0].dptr<T>(), in[1].dptr<T>(), out[0].dptr<T>(),
                                                           out[1].dptr<int64_t>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

void roi_backward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "_backward_ROIPooling";
  // in: ograd [R, C, PH, PW], rois [R, 5], maxidx [R, C, PH, PW] (int64); out: data_grad [N, C, H, W], rois_grad (zeros)
  check_arity(op, in, 3, 3, out, req, 2, 2);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  if (in[1].dtype != in[0].dtype || out[0].dtype != in[0].dtype || out[1].dtype != in[0].dtype ||
      in[2].dtype != DType::kInt64 || in[2].shape != in[0].shape)
    throw KilnError(std::string(op) + " (GPU): bad dtypes or maxidx shape");
  const RoiGeom g = roi_geom(op, a, out[0].shape, in[1].shape, in[0].shape);
  const int64_t n = out[0].size();
  DeviceGuard dg(device_of(ctx, in, out));
  if (req[0] != OpReq::kNullOp && n > 0) {
    KILN_FLOAT_SWITCH(in[0].dtype, T, {
      roi_backward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(g, in[0].dptr<T>(), in[1].dptr<T>(),
                                                                          in[2].dptr<int64_t>(), out[0].dptr<T>(),
                                                                          req_int(req[0]));
    });
    KILN_CUDA_LAUNCH_CHECK(op);
  }
  zero_unless_add(ctx, req[1], out[1]);
}

}  // namespace

void register_image_pool(OpRegistry& r) {
  set_gpu(r, "_contrib_BilinearResize2D", resize_forward);
  set_gpu(r, "_backward_contrib_BilinearResize2D", resize_backward);
  set_gpu(r, "_contrib_AdaptiveAvgPooling2D", adaptive_forward);
  set_gpu(r, "_backward_contrib_AdaptiveAvgPooling2D", adaptive_backward);
  set_gpu(r, "ROIPooling", roi_forward);
  set_gpu(r, "_backward_ROIPooling", roi_backward);
}

}  // namespace nn_gpu
}  // namespace cuda
}  // namespace kiln
