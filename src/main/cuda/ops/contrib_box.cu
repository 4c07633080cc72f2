// GPU kernels of the bounding-box operators (CPU: ops/contrib/bounding_box.cc), with the box
// arithmetic of kiln/box_ops.h shared with the CPU:
//   _contrib_box_iou            one thread per (lhs box, rhs box);
//   _contrib_box_nms            a rank kernel orders each batch's candidates (one thread per box
//                               counts the candidates before it: descending score, ties by
//                               position, the CPU's stable sort); the greedy suppression is
//                               sequential by nature and runs as one block per batch (reference
//                               boxes in order, the later boxes in parallel); a last kernel writes
//                               the rows. Backward: every input row gets at most one output row, so
//                               a scatter of dy after zeroing is race-free and deterministic;
//   _contrib_bipartite_matching one block per batch: each step takes the first free entry in the
//                               CPU's order (a block reduction), which is the entry the CPU's walk
//                               over the sorted scores reaches next; at most min(N, M) + 1 steps;
//   _contrib_box_encode         one thread per anchor; a positive sample whose match is not a row of
//                               refs is flagged and refused on the host after one synchronization,
//                               as the CPU refuses it;
//   _contrib_box_decode         one thread per box.
#include <string>

#include "kiln/box_ops.h"
#include "ops/nn_common.cuh"

namespace kiln {
namespace cuda {
namespace contrib_gpu {
namespace {

using nn_gpu::prologue;
using nn_gpu::zero_unless_add;

// ---- _contrib_box_iou ------------------------------------------------------------------------------

// lhs: [L, 4], rhs: [R, 4] -> y: [L, R]
template <typename T>
__global__ void iou_kernel(int64_t L, int64_t R, bool center, const T* lhs, const T* rhs, T* y, int req) {
  KILN_GRID_STRIDE(i, L * R) { assign(y, i, req, box::iou(lhs + (i / R) * 4, rhs + (i % R) * 4, center)); }
}

void iou_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_contrib_box_iou";
  // in: lhs [.., 4], rhs [.., 4]; out: [lhs dims.., rhs dims..]
  prologue(op, in, 2, 2, req, out, 1, 1);
  const int64_t L = in[0].size() / 4, R = in[1].size() / 4;
  nn_gpu::expect_size(op, "output", out[0], L * R);
  if (req[0] == OpReq::kNullOp || L * R == 0) return;
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    iou_kernel<T><<<grid_for(L * R), kBlock, 0, stream_of(ctx)>>>(L, R, a.s("format") == "center", in[0].dptr<T>(),
                                                                   in[1].dptr<T>(), out[0].dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- _contrib_box_nms ------------------------------------------------------------------------------

/// box_nms's attributes (the CPU checks them against the row width at inference).
struct NmsCfg {
  int score, coord, id, background, topk;
  float overlap, valid;
  bool force, in_center, out_center;
};

NmsCfg nms_cfg(const Attrs& a, int64_t W) {
  NmsCfg c{(int)a.i("score_index"), (int)a.i("coord_start"), (int)a.i("id_index"), (int)a.i("background_id"),
           (int)a.i("topk"), (float)a.f("overlap_thresh"), (float)a.f("valid_thresh"), a.b("force_suppress"),
           a.s("in_format") == "center", a.s("out_format") == "center"};
  if (c.score < 0 || c.score >= W || c.coord < 0 || c.coord + 3 >= W || c.id >= W)
    throw KilnError("_contrib_box_nms (GPU): score_index, coord_start or id_index outside rows of " + std::to_string(W));
  return c;
}

// x: [B, N, W] -> order: [B, N] (the candidates of each batch in order first; the rest unset)
template <typename T>
__global__ void nms_rank_kernel(int64_t B, int64_t N, int64_t W, NmsCfg c, const T* x, int64_t* order) {
  KILN_GRID_STRIDE(g, B * N) {
    const int64_t b = g / N, i = g % N;
    const T* xb = x + b * N * W;  // [N, W]
    if (!box::nms_candidate(xb + i * W, c.score, c.id, c.valid, c.background)) continue;
    const T si = xb[i * W + c.score];
    int64_t rank = 0;
    for (int64_t j = 0; j < N; ++j)
      if (j != i && box::nms_candidate(xb + j * W, c.score, c.id, c.valid, c.background) &&
          box::nms_before(xb[j * W + c.score], j, si, i))
        ++rank;
    order[b * N + rank] = i;
  }
}

// one block per batch. x: [B, N, W], order: [B, N] (suppressed entries become -1) -> kept: [B, N]
// (flat input rows of the kept boxes in order, then -1)
template <typename T>
__global__ void nms_suppress_kernel(int64_t N, int64_t W, NmsCfg c, const T* x, int64_t* order, int64_t* kept) {
  const int64_t b = blockIdx.x;
  const T* xb = x + b * N * W;  // [N, W]
  int64_t* o = order + b * N;   // [N]
  __shared__ unsigned long long valid;
  if (threadIdx.x == 0) valid = 0;
  __syncthreads();
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x)
    if (box::nms_candidate(xb + i * W, c.score, c.id, c.valid, c.background)) atomicAdd(&valid, 1ULL);
  __syncthreads();
  const int64_t k = min((int64_t)valid, c.topk < 0 ? N : (int64_t)c.topk);
  for (int64_t ref = 0; ref < k; ++ref) {
    __syncthreads();
    const int64_t r = o[ref];
    if (r < 0) continue;
    const T* rb = xb + r * W;
    for (int64_t pos = ref + 1 + threadIdx.x; pos < k; pos += blockDim.x) {
      const int64_t p = o[pos];
      if (p < 0) continue;
      const T* pb = xb + p * W;
      if (!c.force && c.id >= 0 && box::class_id(rb[c.id]) != box::class_id(pb[c.id])) continue;
      if (box::nms_overlaps(rb + c.coord, pb + c.coord, c.in_center, c.overlap)) o[pos] = -1;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int64_t count = 0;
    for (int64_t j = 0; j < k; ++j)
      if (o[j] >= 0) kept[b * N + count++] = b * N + o[j];
    for (; count < N; ++count) kept[b * N + count] = -1;
  }
}

// x: [rows, W], kept: [rows] -> y: [rows, W] (unless req is kNullOp), rec: [rows]
template <typename T>
__global__ void nms_write_kernel(int64_t rows, int64_t W, NmsCfg c, bool convert, const T* x, const int64_t* kept,
                                 T* y, T* rec, int req) {
  KILN_GRID_STRIDE(e, rows * W) {
    const int64_t g = e / W, w = e % W, src = kept[g];
    if (w == 0) rec[g] = (T)src;
    if (req == kReqNull) continue;
    T v = T(-1);
    if (src >= 0) {
      v = x[src * W + w];
      if (convert && w >= c.coord && w < c.coord + 4) {
        T p[4];
        for (int k = 0; k < 4; ++k) p[k] = x[src * W + c.coord + k];
        box::convert_format(p, c.out_center);
        v = p[w - c.coord];
      }
    }
    assign(y, e, req, v);
  }
}

// topk = 0: x: [rows, W] -> y (copied), rec: [rows] = every row
template <typename T>
__global__ void nms_copy_kernel(int64_t rows, int64_t W, const T* x, T* y, T* rec, int req) {
  KILN_GRID_STRIDE(e, rows * W) {
    if (e % W == 0) rec[e / W] = (T)(e / W);
    if (req != kReqNull) assign(y, e, req, x[e]);
  }
}

void nms_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                 const std::vector<TBlob>& out) {
  const char* op = "_contrib_box_nms";
  // in: data [B.., N, W]; out: output [B.., N, W], temp [B.., N, 1] (always written)
  prologue(op, in, 1, 1, req, out, 2, 2);
  const Shape& s = in[0].shape;
  if (s.ndim() < 2 || out[0].shape != s || out[1].size() * s[s.ndim() - 1] != s.size())
    throw KilnError(std::string(op) + " (GPU): bad data/output shapes " + s.str() + ", " + out[0].shape.str());
  const int64_t W = s[s.ndim() - 1], N = s[s.ndim() - 2], B = N * W == 0 ? 0 : s.size() / (N * W);
  if (B * N * W == 0) return;
  const NmsCfg c = nms_cfg(a, W);
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t st = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* x = in[0].dptr<T>();  // [B, N, W]
    T* y = out[0].dptr<T>();       // [B, N, W]
    T* rec = out[1].dptr<T>();     // [B, N]
    if (c.topk == 0) {
      nms_copy_kernel<T><<<grid_for(B * N * W), kBlock, 0, st>>>(B * N, W, x, y, rec, req_int(req[0]));
    } else {
      DeviceScratch scratch(dev, sizeof(int64_t) * 2 * B * N);
      int64_t* order = scratch.as<int64_t>();  // [B, N]
      int64_t* kept = order + B * N;           // [B, N]
      nms_rank_kernel<T><<<grid_for(B * N), kBlock, 0, st>>>(B, N, W, c, x, order);
      nms_suppress_kernel<T><<<(unsigned)B, kBlock, 0, st>>>(N, W, c, x, order, kept);
      nms_write_kernel<T><<<grid_for(B * N * W), kBlock, 0, st>>>(B * N, W, c, c.in_center != c.out_center, x, kept, y,
                                                                  rec, req_int(req[0]));
    }
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// dy: [rows, W], rec: [rows] -> dx: [rows, W] (rec's rows are distinct: no two threads add to one element)
template <typename T>
__global__ void nms_backward_kernel(int64_t rows, int64_t W, const T* dy, const T* rec, T* dx) {
  KILN_GRID_STRIDE(e, rows * W) {
    const T r = rec[e / W];
    if (!(r >= 0 && r < (T)rows)) continue;
    dx[(int64_t)r * W + e % W] += dy[e];
  }
}

void nms_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "_backward_contrib_box_nms";
  // in: ograd [B.., N, W], temp [B.., N, 1]; out: data_grad [B.., N, W]
  prologue(op, in, 2, 2, req, out, 1, 1);
  const Shape& s = out[0].shape;
  if (in[0].shape != s || s.ndim() < 2 || in[1].size() * s[s.ndim() - 1] != s.size())
    throw KilnError(std::string(op) + " (GPU): bad shapes");
  if (req[0] == OpReq::kNullOp || s.size() == 0) return;
  const int64_t W = s[s.ndim() - 1], rows = s.size() / W;
  DeviceGuard dg(device_of(ctx, in, out));
  zero_unless_add(ctx, req[0], out[0]);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    nms_backward_kernel<T><<<grid_for(rows * W), kBlock, 0, stream_of(ctx)>>>(rows, W, in[0].dptr<T>(), in[1].dptr<T>(),
                                                                              out[0].dptr<T>());
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- _contrib_bipartite_matching --------------------------------------------------------------------

// one block per batch. x: [B, N, M] -> rm: [B, N], cm: [B, M] (matched column / row, -1)
template <typename T>
__global__ void match_kernel(int64_t N, int64_t M, bool ascend, float thresh, int64_t topk, const T* x, int64_t* rm,
                             int64_t* cm) {
  const int64_t b = blockIdx.x;
  const T* sc = x + b * N * M;  // [N, M]
  int64_t* rb = rm + b * N;     // [N]
  int64_t* cb = cm + b * M;     // [M]
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) rb[i] = -1;
  for (int64_t i = threadIdx.x; i < M; i += blockDim.x) cb[i] = -1;
  __shared__ int64_t best[kBlock];
  __shared__ bool done;
  if (threadIdx.x == 0) done = false;
  int64_t count = 0;  // thread 0's
  for (;;) {
    __syncthreads();
    if (done) break;
    int64_t mine = -1;
    for (int64_t e = threadIdx.x; e < N * M; e += blockDim.x)
      if (rb[e / M] == -1 && cb[e % M] == -1 && (mine < 0 || box::match_before(sc[e], e, sc[mine], mine, ascend))) mine = e;
    best[threadIdx.x] = mine;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
      if ((int)threadIdx.x < half) {
        const int64_t o = best[threadIdx.x + half], m = best[threadIdx.x];
        if (o >= 0 && (m < 0 || box::match_before(sc[o], o, sc[m], m, ascend))) best[threadIdx.x] = o;
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const int64_t e = best[0];
      if (e < 0 || !box::match_passes(sc[e], thresh, ascend)) {
        done = true;
      } else {
        rb[e / M] = e % M;
        cb[e % M] = e / M;
        if (topk > 0 && ++count > topk) done = true;
      }
    }
  }
}

// marks: [n] -> y: [n]
template <typename T>
__global__ void marks_kernel(int64_t n, const int64_t* marks, T* y, int req) {
  KILN_GRID_STRIDE(i, n) { assign(y, i, req, (T)marks[i]); }
}

void match_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_contrib_bipartite_matching";
  // in: data [B.., N, M]; out: x [B.., N], y [B.., M]
  prologue(op, in, 1, 1, req, out, 2, 2);
  const Shape& s = in[0].shape;
  if (s.ndim() < 2) throw KilnError(std::string(op) + " (GPU): bad data shape " + s.str());
  const int64_t N = s[s.ndim() - 2], M = s[s.ndim() - 1], B = N * M == 0 ? 0 : s.size() / (N * M);
  nn_gpu::expect_size(op, "x", out[0], B * N);
  nn_gpu::expect_size(op, "y", out[1], B * M);
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t st = stream_of(ctx);
  if (B == 0) {  // N or M is 0: nothing matches
    DeviceScratch none(dev, sizeof(int64_t) * std::max<int64_t>(1, std::max(out[0].size(), out[1].size())));
    KILN_CUDA_CHECK(cudaMemsetAsync(none.as<void>(), 0xff, none.bytes(), st));
    KILN_FLOAT_SWITCH(in[0].dtype, T, {
      for (int k = 0; k < 2; ++k)
        if (req[k] != OpReq::kNullOp && out[k].size() > 0)
          marks_kernel<T><<<grid_for(out[k].size()), kBlock, 0, st>>>(out[k].size(), none.as<int64_t>(), out[k].dptr<T>(),
                                                                      req_int(req[k]));
    });
    KILN_CUDA_LAUNCH_CHECK(op);
    return;
  }
  DeviceScratch scratch(dev, sizeof(int64_t) * B * (N + M));
  int64_t* rm = scratch.as<int64_t>();  // [B, N]
  int64_t* cm = rm + B * N;             // [B, M]
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    match_kernel<T><<<(unsigned)B, kBlock, 0, st>>>(N, M, a.b("is_ascend"), (float)a.f("threshold"), a.i("topk"),
                                                    in[0].dptr<T>(), rm, cm);
    if (req[0] != OpReq::kNullOp) marks_kernel<T><<<grid_for(B * N), kBlock, 0, st>>>(B * N, rm, out[0].dptr<T>(), req_int(req[0]));
    if (req[1] != OpReq::kNullOp) marks_kernel<T><<<grid_for(B * M), kBlock, 0, st>>>(B * M, cm, out[1].dptr<T>(), req_int(req[1]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

// ---- _contrib_box_encode -------------------------------------------------------------------------------

// samples, matches: [B, N], anchors: [B, N, 4], refs: [B, M, 4], means, stds: [4] -> targets, masks: [B, N, 4];
// bad (initially ~0): the smallest anchor whose positive sample has a match outside refs
template <typename T>
__global__ void encode_kernel(int64_t BN, int64_t N, int64_t M, const T* samples, const T* matches, const T* anchors,
                              const T* refs, const T* means, const T* stds, T* targets, T* masks, int req0, int req1,
                              unsigned long long* bad) {
  KILN_GRID_STRIDE(i, BN) {
    const bool positive = samples[i] > 0.5;
    const T mt = matches[i];
    if (positive && !(mt > T(-1) && mt < (T)M)) {
      atomicMin(bad, (unsigned long long)i);
      continue;
    }
    T t[4], m[4];
    box::encode(samples[i], anchors + i * 4, positive ? refs + ((i / N) * M + (int64_t)mt) * 4 : nullptr, means, stds, t, m);
    for (int k = 0; k < 4; ++k) {
      if (req0 != kReqNull) assign(targets, i * 4 + k, req0, t[k]);
      if (req1 != kReqNull) assign(masks, i * 4 + k, req1, m[k]);
    }
  }
}

void encode_forward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "_contrib_box_encode";
  // in: samples, matches, anchors [B, N, 4], refs [B, M, 4], means [4], stds [4]; out: targets, masks [B, N, 4]
  prologue(op, in, 6, 6, req, out, 2, 2);
  const Shape &an = in[2].shape, &rf = in[3].shape;
  if (an.ndim() < 3 || rf.ndim() < 3) throw KilnError(std::string(op) + " (GPU): bad anchors/refs shapes");
  const int64_t B = an[0], N = an[1], M = rf[1];
  nn_gpu::expect_size(op, "samples", in[0], B * N);
  nn_gpu::expect_size(op, "matches", in[1], B * N);
  nn_gpu::expect_size(op, "anchors", in[2], B * N * 4);
  nn_gpu::expect_size(op, "refs", in[3], B * M * 4);
  nn_gpu::expect_size(op, "means", in[4], 4);
  nn_gpu::expect_size(op, "stds", in[5], 4);
  nn_gpu::expect_size(op, "targets", out[0], B * N * 4);
  nn_gpu::expect_size(op, "masks", out[1], B * N * 4);
  if (B * N == 0) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard dg(dev);
  cudaStream_t st = stream_of(ctx);
  DeviceScratch flag(dev, sizeof(unsigned long long));
  KILN_CUDA_CHECK(cudaMemsetAsync(flag.as<void>(), 0xff, sizeof(unsigned long long), st));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    encode_kernel<T><<<grid_for(B * N), kBlock, 0, st>>>(B * N, N, M, in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(),
                                                         in[3].dptr<T>(), in[4].dptr<T>(), in[5].dptr<T>(),
                                                         out[0].dptr<T>(), out[1].dptr<T>(), req_int(req[0]),
                                                         req_int(req[1]), flag.as<unsigned long long>());
  });
  KILN_CUDA_LAUNCH_CHECK(op);
  unsigned long long r = 0;
  KILN_CUDA_CHECK(cudaMemcpyAsync(&r, flag.as<void>(), sizeof(r), cudaMemcpyDeviceToHost, st));
  KILN_CUDA_CHECK(cudaStreamSynchronize(st));
  if (r == ~0ULL) return;
  double v = 0;
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    T m = 0;
    KILN_CUDA_CHECK(cudaMemcpyAsync(&m, in[1].dptr<T>() + r, sizeof(T), cudaMemcpyDeviceToHost, st));
    KILN_CUDA_CHECK(cudaStreamSynchronize(st));
    v = (double)m;
  });
  throw KilnError(std::string(op) + ": matches[" + std::to_string(r / N) + ", " + std::to_string(r % N) + "] = " +
                  std::to_string(v) + " of a positive sample is not a row of refs (0 to " + std::to_string(M - 1) + ")");
}

// ---- _contrib_box_decode -------------------------------------------------------------------------------

struct DecodeCfg {
  double std[4];
  double clip;
  bool center;
};

// x: [B, N, 4], anchors: [N, 4] -> y: [B, N, 4]
template <typename T>
__global__ void decode_kernel(int64_t BN, int64_t N, DecodeCfg c, const T* x, const T* anchors, T* y, int req) {
  KILN_GRID_STRIDE(i, BN) {
    const T stds[4] = {(T)c.std[0], (T)c.std[1], (T)c.std[2], (T)c.std[3]};
    T o[4];
    box::decode(x + i * 4, anchors + (i % N) * 4, c.center, stds, c.clip > 0, (T)c.clip, o);
    for (int k = 0; k < 4; ++k) assign(y, i * 4 + k, req, o[k]);
  }
}

void decode_forward(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "_contrib_box_decode";
  // in: data [B, N, 4], anchors [1, N, 4]; out: [B, N, 4]
  prologue(op, in, 2, 2, req, out, 1, 1);
  const Shape& s = in[0].shape;
  if (s.ndim() != 3 || s[2] != 4 || out[0].shape != s) throw KilnError(std::string(op) + " (GPU): bad data shape " + s.str());
  nn_gpu::expect_size(op, "anchors", in[1], s[1] * 4);
  const int64_t BN = s[0] * s[1];
  if (req[0] == OpReq::kNullOp || BN == 0) return;
  // the float parameters as MXNet holds them (float), then in the data type
  DecodeCfg c{{(double)(float)a.f("std0"), (double)(float)a.f("std1"), (double)(float)a.f("std2"), (double)(float)a.f("std3")},
              (double)(float)a.f("clip"), a.s("format") == "center"};
  DeviceGuard dg(device_of(ctx, in, out));
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    decode_kernel<T><<<grid_for(BN), kBlock, 0, stream_of(ctx)>>>(BN, s[1], c, in[0].dptr<T>(), in[1].dptr<T>(),
                                                                   out[0].dptr<T>(), req_int(req[0]));
  });
  KILN_CUDA_LAUNCH_CHECK(op);
}

}  // namespace
}  // namespace contrib_gpu

void register_contrib_gpu(OpRegistry& r) {
  set_gpu(r, "_contrib_box_iou", contrib_gpu::iou_forward);
  set_gpu(r, "_contrib_box_nms", contrib_gpu::nms_forward);
  set_gpu(r, "_backward_contrib_box_nms", contrib_gpu::nms_backward);
  set_gpu(r, "_contrib_bipartite_matching", contrib_gpu::match_forward);
  set_gpu(r, "_contrib_box_encode", contrib_gpu::encode_forward);
  set_gpu(r, "_contrib_box_decode", contrib_gpu::decode_forward);
}

}  // namespace cuda
}  // namespace kiln
