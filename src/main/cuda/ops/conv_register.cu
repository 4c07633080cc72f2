// The conv family on the GPU: Convolution and Deconvolution (1-D, 2-D; Convolution also 3-D) and
// their backward ops, with the CPU kernels' contract (src/main/cpp/ops/conv: same parameters,
// geometry, Deconvolution's adj / target_shape padding, every OpReq).
//
// Each pass runs through cuDNN (common/cudnn.cuh, cudnn_dl.cc) when it is loaded and accepts the
// call; otherwise through the fallback here: im2col / col2im kernels + cuBLAS gemm() (float32 and
// float64), chunks of images side by side in one column buffer. KILN_CUDNN=0 forces the fallback
// for every call (cudnn_dl.cc reads it); describe() says which path is in use and why.
//
// Geometry (CudnnConv, as the CPU's Geo): x [N, C, D0, D1, D2] * w [O, C/G, K0, K1, K2] ->
// y [N, O, Q0, Q1, Q2], spatial dims padded to 3 with leading identity dims. Deconvolution is the
// same geometry with roles swapped: its data is the convolution's output y, its output the
// convolution's input x, its weight [C_data, F/G, k...] the convolution's weight [O, C/G, k...];
// its forward is the convolution's backward-data, its backward-data the convolution's forward.
#include <algorithm>
#include <memory>
#include <string>

#include "common/cudnn.cuh"
#include "common/kernels.cuh"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace {

using Geo = CudnnConv;

// ---- parameters (mirror of conv::parse_conv_param) ----------------------------------------------

struct Param {
  int nsp = 0;                         // kernel.ndim(): 1, 2 or 3
  int64_t k[3], s[3], d[3], p[3], adj[3], target[3];
  bool has_target = false;
  int64_t num_filter = 0, num_group = 1;
  bool no_bias = false;
  int tune = -1;                       // cudnn_tune: -1 None, 0 off, 1 limited_workspace, 2 fastest
  size_t ws_limit = 0;                 // workspace (MB) in bytes
  bool cudnn_off = false;
  int64_t dk(int i) const { return 1 + (k[i] - 1) * d[i]; }
};

std::string tuple_str(const std::vector<int64_t>& t) {
  std::string s = "(";
  for (size_t i = 0; i < t.size(); ++i) s += (i ? ", " : "") + std::to_string(t[i]);
  return s + (t.size() == 1 ? ",)" : ")");
}

Param parse(const char* op, const Attrs& a, bool deconv) {
  Param c;
  const std::vector<int64_t>& kernel = a.t("kernel");
  const int n = (int)kernel.size();
  if (n < 1 || n > 3)
    throw KilnError(std::string(op) + " (GPU): kernel must have 1, 2 or 3 dims, got " + tuple_str(kernel));
  if (deconv && n > 2)
    throw KilnError(std::string(op) + " (GPU): only 1-D or 2-D Deconvolution is supported (as on the CPU), got kernel " +
                    tuple_str(kernel));
  c.nsp = n;
  auto fill = [&](const char* name, int64_t* dst, int64_t lead, int64_t def, int64_t min) {
    const std::vector<int64_t>& t = a.t(name);
    if (!t.empty() && (int)t.size() != n)
      throw KilnError(std::string(op) + " (GPU): " + name + " must have the same number of dimensions as kernel, but kernel is " +
                      tuple_str(kernel) + " while " + name + " is " + tuple_str(t));
    for (int i = 0; i < 3; ++i) dst[i] = i < 3 - n ? lead : def;
    for (int i = 0; i < (int)t.size(); ++i) {
      if (t[i] < min)
        throw KilnError(std::string(op) + " (GPU): " + name + " entries must be >= " + std::to_string(min) + ", got " +
                        tuple_str(t));
      dst[3 - n + i] = t[i];
    }
  };
  fill("kernel", c.k, 1, 1, 1);
  fill("stride", c.s, 1, 1, 1);
  fill("dilate", c.d, 1, 1, 1);
  fill("pad", c.p, 0, 0, 0);
  for (int i = 0; i < 3; ++i) c.adj[i] = c.target[i] = 0;
  if (deconv) {
    fill("adj", c.adj, 0, 0, 0);
    const std::vector<int64_t>& t = a.t("target_shape");  // MXNet uses its first kernel.ndim() entries
    if ((int)t.size() >= n) {
      for (int i = 0; i < n; ++i) {
        c.target[3 - n + i] = t[i];
        if (t[i] != 0) c.has_target = true;
      }
    } else {
      for (int64_t x : t)
        if (x != 0) c.has_target = true;
    }
  }
  if (n == 3 && c.d[0] * c.d[1] * c.d[2] != 1)
    throw KilnError(std::string(op) + " (GPU): dilate is not supported in 3d convolution");
  c.num_filter = a.i("num_filter");
  c.num_group = a.i("num_group");
  c.no_bias = a.b("no_bias");
  const std::string& tune = a.s("cudnn_tune");
  c.tune = tune == "off" ? 0 : tune == "limited_workspace" ? 1 : tune == "fastest" ? 2 : -1;
  c.ws_limit = (size_t)std::min<int64_t>(std::max<int64_t>(a.i("workspace"), 0), int64_t(1) << 20) << 20;
  c.cudnn_off = a.b("cudnn_off");
  if (a.has("layout")) {
    static const char* kLayouts[] = {"", "NCW", "NCHW", "NCDHW"};
    if (a.s("layout") != kLayouts[n])
      throw KilnError(std::string(op) + " (GPU): layout " + a.s("layout") + " is not supported for a " +
                      std::to_string(n) + "-D kernel; only " + kLayouts[n] + " (as on the CPU)");
  }
  return c;
}

void spatial3(const Shape& sh, int nsp, int64_t* dst) {
  for (int i = 0; i < 3; ++i) dst[i] = i < 3 - nsp ? 1 : sh[2 + i - (3 - nsp)];
}

int64_t in_size(const Geo& g) { return g.D[0] * g.D[1] * g.D[2]; }
int64_t out_size(const Geo& g) { return g.Q[0] * g.Q[1] * g.Q[2]; }
int64_t ksize(const Geo& g) { return g.k[0] * g.k[1] * g.k[2]; }

/// Checks that data/output/weight shapes agree with the geometry: the kernels (and cuDNN) index
/// the blobs by it, so a mismatch must not reach them.
void check_geo(const char* op, const Param& c, const Geo& g, const Shape& xs, const Shape& ys, const Shape& ws,
               bool deconv) {
  std::string what;
  if (g.G <= 0 || g.C % g.G != 0 || g.O % g.G != 0) what = "channels and num_filter must divide num_group";
  for (int i = 0; i < 3 && what.empty(); ++i) {
    const int64_t dk = 1 + (g.k[i] - 1) * g.d[i];
    if (g.D[i] + 2 * g.p[i] < dk || (g.D[i] + 2 * g.p[i] - dk) / g.s[i] + 1 != g.Q[i])
      what = "spatial sizes do not match kernel/stride/dilate/pad";
  }
  // weight: convolution [O, C/G, k...]; deconvolution [C_data = O, F/G = C/G, k...]
  if (what.empty()) {
    bool ok = ws.ndim() == c.nsp + 2 && ws[0] == g.O && ws[1] == g.C / g.G;
    for (int i = 0; ok && i < c.nsp; ++i) ok = ws[2 + i] == c.k[3 - c.nsp + i];
    if (!ok) what = "weight does not match";
  }
  if (!what.empty())
    throw KilnError(std::string(op) + " (GPU): " + what + ": data " + xs.str() + ", output " + ys.str() + ", weight " +
                    ws.str() + (deconv ? " (deconvolution)" : ""));
}

/// Convolution geometry from data [N, C, in...] and output [N, O, out...].
Geo conv_geo(const char* op, const Param& c, const Shape& data, const Shape& outp, const Shape& weight) {
  if (data.ndim() != c.nsp + 2 || outp.ndim() != c.nsp + 2 || data[0] != outp[0])
    throw KilnError(std::string(op) + " (GPU): data " + data.str() + " and output " + outp.str() +
                    " do not match the kernel rank " + std::to_string(c.nsp));
  Geo g;
  g.nsp = c.nsp == 3 ? 3 : 2;
  g.N = data[0];
  g.C = data[1];
  g.O = c.num_filter;
  g.G = c.num_group;
  if (outp[1] != g.O)
    throw KilnError(std::string(op) + " (GPU): output " + outp.str() + " does not have num_filter=" +
                    std::to_string(g.O) + " channels");
  spatial3(data, c.nsp, g.D);
  spatial3(outp, c.nsp, g.Q);
  for (int i = 0; i < 3; ++i) {
    g.k[i] = c.k[i];
    g.s[i] = c.s[i];
    g.d[i] = c.d[i];
    g.p[i] = c.p[i];
  }
  g.tune = c.tune;
  g.ws_limit = c.ws_limit;
  g.cudnn_off = c.cudnn_off;
  check_geo(op, c, g, data, outp, weight, false);
  return g;
}

/// MXNet's DeconvolutionParam::InferPad (x: the deconvolution's data spatial dims, padded to 3).
void infer_pad(const char* op, const Param& c, const int64_t* x, int64_t* pad, int64_t* adj) {
  for (int i = 0; i < 3; ++i) {
    pad[i] = c.p[i];
    adj[i] = c.adj[i];
  }
  if (!c.has_target) return;
  for (int i = 3 - c.nsp; i < 3; ++i) {
    int64_t total = c.s[i] * (x[i] - 1) + c.dk(i);
    if (total < c.target[i])
      throw KilnError(std::string(op) + " (GPU): too big target shape: target_shape entry " +
                      std::to_string(c.target[i]) + " exceeds the largest output " + std::to_string(total));
    total -= c.target[i];
    adj[i] = total % 2;
    pad[i] = (total + 1) / 2;
  }
}

/// The convolution geometry of a deconvolution with data [N, C_data, in...] and output
/// [N, F, out...]: the convolution's input is the deconvolution's output.
Geo deconv_geo(const char* op, const Param& c, const Shape& data, const Shape& outp, const Shape& weight) {
  if (data.ndim() != c.nsp + 2 || outp.ndim() != c.nsp + 2 || data[0] != outp[0])
    throw KilnError(std::string(op) + " (GPU): data " + data.str() + " and output " + outp.str() +
                    " do not match the kernel rank " + std::to_string(c.nsp));
  Geo g;
  g.nsp = 2;
  g.N = data[0];
  g.C = outp[1];
  g.O = data[1];
  g.G = c.num_group;
  if (g.C != c.num_filter)
    throw KilnError(std::string(op) + " (GPU): output " + outp.str() + " does not have num_filter=" +
                    std::to_string(c.num_filter) + " channels");
  spatial3(outp, c.nsp, g.D);
  spatial3(data, c.nsp, g.Q);
  int64_t pad[3], adj[3];
  infer_pad(op, c, g.Q, pad, adj);
  for (int i = 0; i < 3; ++i) {
    g.k[i] = c.k[i];
    g.s[i] = c.s[i];
    g.d[i] = c.d[i];
    g.p[i] = pad[i];
  }
  g.tune = c.tune;
  g.ws_limit = c.ws_limit;
  g.cudnn_off = c.cudnn_off;
  check_geo(op, c, g, data, outp, weight, true);
  return g;
}

// ---- fallback kernels ------------------------------------------------------------------------

/// Geometry by value for the kernels (int64 everywhere; the padded 3-D form).
struct KGeo {
  int64_t C, ks, P, Din;
  int64_t D[3], Q[3], k[3], s[3], d[3], p[3];
};

KGeo kgeo(const Geo& g) {
  KGeo k;
  k.C = g.C;
  k.ks = ksize(g);
  k.P = out_size(g);
  k.Din = in_size(g);
  for (int i = 0; i < 3; ++i) {
    k.D[i] = g.D[i];
    k.Q[i] = g.Q[i];
    k.k[i] = g.k[i];
    k.s[i] = g.s[i];
    k.d[i] = g.d[i];
    k.p[i] = g.p[i];
  }
  return k;
}

// x: [nb, C, D0, D1, D2] -> col: [C * K0*K1*K2, nb * P] (column b*P + q: image b, output pixel q)
template <typename T>
__global__ void im2col_kernel(KGeo g, int64_t nb, const T* __restrict__ x, T* __restrict__ col) {
  const int64_t cols = nb * g.P, n = g.C * g.ks * cols;
  KILN_GRID_STRIDE(i, n) {
    const int64_t j = i % cols, r = i / cols;
    const int64_t b = j / g.P, q = j % g.P;
    const int64_t kk = r % g.ks, c = r / g.ks;
    const int64_t e0 = kk / (g.k[1] * g.k[2]), e1 = kk / g.k[2] % g.k[1], e2 = kk % g.k[2];
    const int64_t q0 = q / (g.Q[1] * g.Q[2]), q1 = q / g.Q[2] % g.Q[1], q2 = q % g.Q[2];
    const int64_t i0 = q0 * g.s[0] - g.p[0] + e0 * g.d[0];
    const int64_t i1 = q1 * g.s[1] - g.p[1] + e1 * g.d[1];
    const int64_t i2 = q2 * g.s[2] - g.p[2] + e2 * g.d[2];
    T v = T(0);
    if (i0 >= 0 && i0 < g.D[0] && i1 >= 0 && i1 < g.D[1] && i2 >= 0 && i2 < g.D[2])
      v = x[(b * g.C + c) * g.Din + (i0 * g.D[1] + i1) * g.D[2] + i2];
    col[i] = v;
  }
}

/// Output positions q along one axis with q * s - p + e * dil == i, as the range [lo, hi] of q
/// stepping by 1 (only when (i + p - e*dil) is a multiple of s).
__device__ __forceinline__ bool tap_hit(int64_t i, int64_t e, int64_t s, int64_t p, int64_t dil, int64_t Q, int64_t* q) {
  const int64_t t = i + p - e * dil;
  if (t < 0 || t % s != 0) return false;
  *q = t / s;
  return *q < Q;
}

// col: [C * K0*K1*K2, nb * P] -> dx: [nb, C, D0, D1, D2] (=|+=) the sum of every column entry that
// im2col read from that element (adjoint of im2col; a gather, so no atomics)
template <typename T>
__global__ void col2im_kernel(KGeo g, int64_t nb, const T* __restrict__ col, T* __restrict__ dx, int req) {
  const int64_t cols = nb * g.P, n = nb * g.C * g.Din;
  KILN_GRID_STRIDE(i, n) {
    const int64_t pos = i % g.Din, bc = i / g.Din;
    const int64_t c = bc % g.C, b = bc / g.C;
    const int64_t i0 = pos / (g.D[1] * g.D[2]), i1 = pos / g.D[2] % g.D[1], i2 = pos % g.D[2];
    const T* crow = col + c * g.ks * cols + b * g.P;  // [ks rows of stride cols] for this channel and image
    T acc = T(0);
    for (int64_t e0 = 0; e0 < g.k[0]; ++e0) {
      int64_t q0;
      if (!tap_hit(i0, e0, g.s[0], g.p[0], g.d[0], g.Q[0], &q0)) continue;
      for (int64_t e1 = 0; e1 < g.k[1]; ++e1) {
        int64_t q1;
        if (!tap_hit(i1, e1, g.s[1], g.p[1], g.d[1], g.Q[1], &q1)) continue;
        for (int64_t e2 = 0; e2 < g.k[2]; ++e2) {
          int64_t q2;
          if (!tap_hit(i2, e2, g.s[2], g.p[2], g.d[2], g.Q[2], &q2)) continue;
          const int64_t kk = (e0 * g.k[1] + e1) * g.k[2] + e2;
          acc += crow[kk * cols + (q0 * g.Q[1] + q1) * g.Q[2] + q2];
        }
      }
    }
    assign(dx, i, req, acc);
  }
}

// dy: [nb, O, P] -> blk: [O, nb * P]
template <typename T>
__global__ void gather_kernel(int64_t nb, int64_t O, int64_t P, const T* __restrict__ dy, T* __restrict__ blk) {
  const int64_t cols = nb * P, n = O * cols;
  KILN_GRID_STRIDE(i, n) {
    const int64_t o = i / cols, j = i % cols, b = j / P, q = j % P;
    blk[i] = dy[(b * O + o) * P + q];
  }
}

// tmp: [O, nb * P] -> y: [nb, O, P] (=|+=)
template <typename T>
__global__ void scatter_kernel(int64_t nb, int64_t O, int64_t P, const T* __restrict__ tmp, T* __restrict__ y, int req) {
  const int64_t n = nb * O * P;
  KILN_GRID_STRIDE(i, n) {
    const int64_t q = i % P, bo = i / P, o = bo % O, b = bo / O;
    assign(y, i, req, tmp[o * nb * P + b * P + q]);
  }
}

// y: [N, ch, S] += b: [ch] broadcast
template <typename T>
__global__ void add_bias_kernel(int64_t n, int64_t ch, int64_t S, const T* __restrict__ b, T* __restrict__ y) {
  KILN_GRID_STRIDE(i, n) { y[i] += b[(i / S) % ch]; }
}

// y: [N, ch, S] (L) = round(y + b: [ch] (L)), in float
template <typename L>
__global__ void add_bias_lp_kernel(int64_t n, int64_t ch, int64_t S, const L* __restrict__ b, L* __restrict__ y) {
  KILN_GRID_STRIDE(i, n) { y[i] = lp_round<L>(lp_float(y[i]) + lp_float(b[(i / S) % ch])); }
}

// y: [N, ch, S] (L) = b: [ch] (L) broadcast. Written before a 16-bit convolution with a bias under
// kWriteTo: cuDNN then adds the convolution with beta = 1, in float, so each output is rounded once,
// round(conv + b), as the CPU's widened kernel
template <typename L>
__global__ void fill_bias_lp_kernel(int64_t n, int64_t ch, int64_t S, const L* __restrict__ b, L* __restrict__ y) {
  KILN_GRID_STRIDE(i, n) { y[i] = b[(i / S) % ch]; }
}

constexpr int kBiasThreads = 256;

// dy: [N, ch, S] (L) -> db: [ch] (L), summed in float; one block per channel
template <typename L>
__global__ void bias_grad_lp_kernel(int64_t N, int64_t ch, int64_t S, const L* __restrict__ dy, L* __restrict__ db,
                                    int req) {
  __shared__ float part[kBiasThreads];
  for (int64_t c = blockIdx.x; c < ch; c += gridDim.x) {
    float acc = 0.f;
    const int64_t m = N * S;
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
      const int64_t n = j / S, q = j % S;
      acc += lp_float(dy[(n * ch + c) * S + q]);
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = kBiasThreads / 2; w > 0; w >>= 1) {
      if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) lp_assign(db, c, req, part[0]);
    __syncthreads();
  }
}

// dy: [N, ch, S] -> db: [ch], db[c] (=|+=) sum over n, q of dy[n, c, q]; one block per channel
template <typename T>
__global__ void bias_grad_kernel(int64_t N, int64_t ch, int64_t S, const T* __restrict__ dy, T* __restrict__ db,
                                 int req) {
  __shared__ T part[kBiasThreads];
  for (int64_t c = blockIdx.x; c < ch; c += gridDim.x) {
    T acc = T(0);
    const int64_t m = N * S;
    for (int64_t j = threadIdx.x; j < m; j += blockDim.x) {
      const int64_t n = j / S, q = j % S;
      acc += dy[(n * ch + c) * S + q];
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int w = kBiasThreads / 2; w > 0; w >>= 1) {
      if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
      __syncthreads();
    }
    if (threadIdx.x == 0) assign(db, c, req, part[0]);
    __syncthreads();
  }
}

/// Scratch of `bytes`: the op's workspace when large enough, else the caching allocator's.
struct Scratch {
  std::unique_ptr<DeviceScratch> own;
  void* ptr = nullptr;
  Scratch(int device, const OpCtx& ctx, size_t bytes) {
    bytes = std::max<size_t>(bytes, 256);
    if (ctx.workspace != nullptr && ctx.workspace_bytes >= bytes) {
      ptr = ctx.workspace;
    } else {
      own.reset(new DeviceScratch(device, bytes));
      ptr = own->as<void>();
    }
  }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr); }
};

/// Images per chunk: about kTargetColumns GEMM columns, within a buffer budget (one image at least).
int64_t chunk_images(const Geo& g) {
  constexpr int64_t kTargetColumns = 4096, kBudget = int64_t(1) << 25;  // elements of col + block
  const int64_t P = std::max<int64_t>(1, out_size(g));
  const int64_t per = g.C * ksize(g) * P + g.O * P;  // col [C*ks, P] + block [O, P] per image
  int64_t B = (kTargetColumns + P - 1) / P;
  B = std::min(B, std::max<int64_t>(1, kBudget / std::max<int64_t>(1, per)));
  B = std::min(B, std::max<int64_t>(1, (int64_t)0x7fffffff / P));
  return std::max<int64_t>(1, std::min(B, g.N));
}

template <typename T>
void launch_im2col(const Geo& g, cudaStream_t s, int64_t nb, const T* x, T* col) {
  const int64_t n = g.C * ksize(g) * nb * out_size(g);
  if (n == 0) return;
  im2col_kernel<T><<<grid_for(n), kBlock, 0, s>>>(kgeo(g), nb, x, col);
  KILN_CUDA_LAUNCH_CHECK("conv im2col");
}

/// y (=|+=) conv(x, w).   x: [N, C, Din], w: [O, C/G, ks], y: [N, O, P]
template <typename T>
void fallback_forward(int dev, const OpCtx& ctx, const Geo& g, const T* x, const T* w, T* y, bool add) {
  cudaStream_t s = stream_of(ctx);
  const int64_t P = out_size(g), Din = in_size(g), Kg = g.C / g.G * ksize(g), Mg = g.O / g.G;
  const int64_t B = chunk_images(g);
  const size_t col_elems = (size_t)(g.C * ksize(g) * B * P), tmp_elems = B > 1 ? (size_t)(g.O * B * P) : 0;
  Scratch sc(dev, ctx, (col_elems + tmp_elems) * sizeof(T));
  T* col = sc.as<T>();         // [C*ks, B*P]
  T* tmp = col + col_elems;    // [O, B*P]
  for (int64_t n0 = 0; n0 < g.N; n0 += B) {
    const int64_t nb = std::min(B, g.N - n0), cols = nb * P;
    launch_im2col<T>(g, s, nb, x + n0 * g.C * Din, col);
    if (nb == 1) {  // straight into y[n0] [O, P]
      for (int64_t gi = 0; gi < g.G; ++gi)
        gemm(dev, s, false, false, Mg, P, Kg, T(1), w + gi * Mg * Kg, col + gi * Kg * P, add ? T(1) : T(0),
             y + n0 * g.O * P + gi * Mg * P);
      continue;
    }
    for (int64_t gi = 0; gi < g.G; ++gi)
      gemm(dev, s, false, false, Mg, cols, Kg, T(1), w + gi * Mg * Kg, col + gi * Kg * cols, T(0),
           tmp + gi * Mg * cols);
    scatter_kernel<T><<<grid_for(nb * g.O * P), kBlock, 0, s>>>(nb, g.O, P, tmp, y + n0 * g.O * P,
                                                                add ? kReqAdd : kReqWrite);
    KILN_CUDA_LAUNCH_CHECK("conv scatter");
  }
}

/// dx (=|+=) conv^T(dy, w).   dy: [N, O, P], w: [O, C/G, ks], dx: [N, C, Din]
template <typename T>
void fallback_backward_data(int dev, const OpCtx& ctx, const Geo& g, const T* dy, const T* w, T* dx, bool add) {
  cudaStream_t s = stream_of(ctx);
  const int64_t P = out_size(g), Din = in_size(g), Kg = g.C / g.G * ksize(g), Mg = g.O / g.G;
  const int64_t B = chunk_images(g);
  const size_t col_elems = (size_t)(g.C * ksize(g) * B * P), blk_elems = B > 1 ? (size_t)(g.O * B * P) : 0;
  Scratch sc(dev, ctx, (col_elems + blk_elems) * sizeof(T));
  T* col = sc.as<T>();         // [C*ks, B*P] = [G, Kg, B*P]
  T* blk = col + col_elems;    // [O, B*P] = [G, Mg, B*P]
  for (int64_t n0 = 0; n0 < g.N; n0 += B) {
    const int64_t nb = std::min(B, g.N - n0), cols = nb * P;
    const T* src = dy + n0 * g.O * P;  // [O, P] when nb == 1
    if (nb > 1) {
      gather_kernel<T><<<grid_for(g.O * cols), kBlock, 0, s>>>(nb, g.O, P, src, blk);
      KILN_CUDA_LAUNCH_CHECK("conv gather");
      src = blk;
    }
    // col[g] [Kg, cols] = w[g]^T [Kg, Mg] . dy[g] [Mg, cols]
    for (int64_t gi = 0; gi < g.G; ++gi)
      gemm(dev, s, true, false, Kg, cols, Mg, T(1), w + gi * Mg * Kg, src + gi * Mg * cols, T(0),
           col + gi * Kg * cols);
    const int64_t n = nb * g.C * Din;
    col2im_kernel<T><<<grid_for(n), kBlock, 0, s>>>(kgeo(g), nb, col, dx + n0 * g.C * Din, add ? kReqAdd : kReqWrite);
    KILN_CUDA_LAUNCH_CHECK("conv col2im");
  }
}

/// dw (=|+=) sum_n dy[n] . im2col(x[n])^T.   x: [N, C, Din], dy: [N, O, P], dw: [O, C/G, ks]
template <typename T>
void fallback_backward_filter(int dev, const OpCtx& ctx, const Geo& g, const T* x, const T* dy, T* dw, bool add) {
  cudaStream_t s = stream_of(ctx);
  const int64_t P = out_size(g), Din = in_size(g), Kg = g.C / g.G * ksize(g), Mg = g.O / g.G;
  const int64_t B = chunk_images(g);
  const size_t col_elems = (size_t)(g.C * ksize(g) * B * P), blk_elems = B > 1 ? (size_t)(g.O * B * P) : 0;
  Scratch sc(dev, ctx, (col_elems + blk_elems) * sizeof(T));
  T* col = sc.as<T>();         // [C*ks, B*P]
  T* blk = col + col_elems;    // [O, B*P]
  for (int64_t n0 = 0; n0 < g.N; n0 += B) {
    const int64_t nb = std::min(B, g.N - n0), cols = nb * P;
    launch_im2col<T>(g, s, nb, x + n0 * g.C * Din, col);
    const T* src = dy + n0 * g.O * P;
    if (nb > 1) {
      gather_kernel<T><<<grid_for(g.O * cols), kBlock, 0, s>>>(nb, g.O, P, src, blk);
      KILN_CUDA_LAUNCH_CHECK("conv gather");
      src = blk;
    }
    const T beta = (n0 == 0 && !add) ? T(0) : T(1);
    // dw[g] [Mg, Kg] (+)= dy[g] [Mg, cols] . col[g]^T [cols, Kg]
    for (int64_t gi = 0; gi < g.G; ++gi)
      gemm(dev, s, false, true, Mg, Kg, cols, T(1), src + gi * Mg * cols, col + gi * Kg * cols, beta,
           dw + gi * Mg * Kg);
  }
}

// ---- the passes: empty cases, then cuDNN, else the fallback -----------------------------------

template <typename T>
void zero_unless_add(cudaStream_t s, T* p, int64_t n, bool add) {
  if (!add && n > 0) KILN_CUDA_CHECK(cudaMemsetAsync(p, 0, (size_t)n * sizeof(T), s));
}

template <typename T>
void pass_forward(const char* op, int dev, const OpCtx& ctx, DType dt, const Geo& g, const T* x, const T* w, T* y,
                  bool add) {
  if (g.N * g.O * out_size(g) == 0) return;
  if (g.C == 0) return zero_unless_add(stream_of(ctx), y, g.N * g.O * out_size(g), add);  // empty reduction
  if (cudnn_conv_forward(op, dev, ctx, dt, g, x, w, y, add)) return;
  fallback_forward<T>(dev, ctx, g, x, w, y, add);
}

template <typename T>
void pass_backward_data(const char* op, int dev, const OpCtx& ctx, DType dt, const Geo& g, const T* dy, const T* w,
                        T* dx, bool add) {
  if (g.N * g.C * in_size(g) == 0) return;
  if (g.O == 0) return zero_unless_add(stream_of(ctx), dx, g.N * g.C * in_size(g), add);
  if (cudnn_conv_backward_data(op, dev, ctx, dt, g, dy, w, dx, add)) return;
  fallback_backward_data<T>(dev, ctx, g, dy, w, dx, add);
}

template <typename T>
void pass_backward_filter(const char* op, int dev, const OpCtx& ctx, DType dt, const Geo& g, const T* x, const T* dy,
                          T* dw, bool add) {
  const int64_t wsz = g.O * (g.C / std::max<int64_t>(1, g.G)) * ksize(g);
  if (wsz == 0) return;
  if (g.N == 0) return zero_unless_add(stream_of(ctx), dw, wsz, add);
  if (cudnn_conv_backward_filter(op, dev, ctx, dt, g, x, dy, dw, add)) return;
  fallback_backward_filter<T>(dev, ctx, g, x, dy, dw, add);
}

/// y: [N, ch, sp] += b: [ch]
template <typename T>
void pass_add_bias(const char* op, int dev, const OpCtx& ctx, DType dt, int nsp, int64_t N, int64_t ch,
                   const int64_t* sp, const T* b, T* y) {
  const int64_t S = sp[0] * sp[1] * sp[2], n = N * ch * S;
  if (n == 0) return;
  if (cudnn_add_bias(op, dev, ctx, dt, nsp, N, ch, sp, b, y)) return;
  add_bias_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, ch, S, b, y);
  KILN_CUDA_LAUNCH_CHECK("conv bias");
}

/// db: [ch] (=|+=) sums of dy: [N, ch, sp]
template <typename T>
void pass_bias_grad(const char* op, int dev, const OpCtx& ctx, DType dt, int nsp, int64_t N, int64_t ch,
                    const int64_t* sp, const T* dy, T* db, bool add) {
  const int64_t S = sp[0] * sp[1] * sp[2];
  if (ch == 0) return;
  if (N * S == 0) return zero_unless_add(stream_of(ctx), db, ch, add);
  if (cudnn_bias_grad(op, dev, ctx, dt, nsp, N, ch, sp, dy, db, add)) return;
  const unsigned grid = (unsigned)std::min<int64_t>(ch, 65535LL * 16);
  bias_grad_kernel<T><<<grid, kBiasThreads, 0, stream_of(ctx)>>>(N, ch, S, dy, db, add ? kReqAdd : kReqWrite);
  KILN_CUDA_LAUNCH_CHECK("conv bias gradient");
}

void check_dtypes(const char* op, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  const DType t = in[0].dtype;
  for (const auto* v : {&in, &out})
    for (const auto& b : *v)
      if (b.dtype != t)
        throw KilnError(std::string(op) + " (GPU): mixed dtypes " + dtype_name(t) + " and " + dtype_name(b.dtype));
}

void check_bias(const char* op, const Param& c, size_t n_with_bias, size_t n, const TBlob* bias, int64_t ch) {
  if ((n == n_with_bias) == c.no_bias)
    throw KilnError(std::string(op) + " (GPU): no_bias=" + (c.no_bias ? "True" : "False") + " but " +
                    std::to_string(n) + " blobs given");
  if (bias && bias->size() != ch)
    throw KilnError(std::string(op) + " (GPU): bias has shape " + bias->shape.str() + ", expected (" +
                    std::to_string(ch) + ",)");
}

// ---- float16 / bfloat16 Convolution ----------------------------------------------------------
//
// Each convolution pass runs in cuDNN on the 16-bit tensors with float accumulation (tensor-op
// math); the bias and its gradient in the kernels above. When cuDNN declines a pass (or an operand
// is empty), that pass and the ones after it run widened to float32 through call_widened
// (kiln/low_precision.h), with the outputs already written left out.

void conv_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out);
void conv_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out);

/// The float32 kernel run on widened copies: the blobs' low-precision type is not native to it.
void run_widened(const char* op, Kernel k, const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in,
                 const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const OpDef* d = OpRegistry::get().find(op);
  if (d == nullptr) throw KilnError(std::string("internal: operator ") + op + " not registered");
  call_widened(*d, k, 0, ctx, attrs, in, req, out);
}

void conv_forward_lp(const OpCtx& ctx, const Attrs& attrs, const Param& c, const Geo& g, const std::vector<TBlob>& in,
                     const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* op = "Convolution";
  const int dev = device_of(ctx, in, out);
  const DType dt = out[0].dtype;
  const bool add = req[0] == OpReq::kAddTo;
  // x [N, C, in...], w [O, C/G, k...] -> y [N, O, out...]
  const bool empty = g.N * g.O * out_size(g) == 0 || g.C == 0;
  const int64_t S = g.Q[0] * g.Q[1] * g.Q[2], n = g.N * g.O * S;
  // kWriteTo with a bias: y = b first, then cuDNN adds the convolution (one rounding); under
  // kAddTo the bias is added after cuDNN's accumulation (two roundings, as FullyConnected's)
  const bool bias_first = !c.no_bias && !add && !empty;
  if (bias_first) {
    KILN_LOW_PRECISION_SWITCH(dt, L, {
      fill_bias_lp_kernel<L><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, g.O, S, in[2].dptr<L>(), out[0].dptr<L>());
    });
    KILN_CUDA_LAUNCH_CHECK("conv bias");
  }
  if (empty || !cudnn_conv_forward(op, dev, ctx, dt, g, in[0].ptr, in[1].ptr, out[0].ptr, add || bias_first))
    return run_widened(op, conv_forward, ctx, attrs, in, req, out);  // writes y whole under kWriteTo
  if (!c.no_bias && add) {
    KILN_LOW_PRECISION_SWITCH(dt, L, {
      add_bias_lp_kernel<L><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(n, g.O, S, in[2].dptr<L>(), out[0].dptr<L>());
    });
    KILN_CUDA_LAUNCH_CHECK("conv bias");
  }
}

void conv_backward_lp(const OpCtx& ctx, const Attrs& attrs, const Param& c, const Geo& g, const std::vector<TBlob>& in,
                      const std::vector<OpReq>& req, const std::vector<TBlob>& out) {
  const char* op = "_backward_Convolution";
  const int dev = device_of(ctx, in, out);
  const DType dt = in[0].dtype;
  const bool empty = g.N == 0 || g.C == 0 || g.O == 0 || out_size(g) == 0 || in_size(g) == 0;
  if (empty) return run_widened(op, conv_backward, ctx, attrs, in, req, out);
  // dy [N, O, out...], x [N, C, in...], w [O, C/G, k...]
  std::vector<OpReq> rest = req;  // what is left for the widened run
  if (req[1] != OpReq::kNullOp) {
    if (!cudnn_conv_backward_filter(op, dev, ctx, dt, g, in[1].ptr, in[0].ptr, out[1].ptr, req[1] == OpReq::kAddTo))
      return run_widened(op, conv_backward, ctx, attrs, in, rest, out);
    rest[1] = OpReq::kNullOp;
  }
  if (!c.no_bias && req[2] != OpReq::kNullOp) {
    const int64_t S = g.Q[0] * g.Q[1] * g.Q[2];
    const unsigned grid = (unsigned)std::min<int64_t>(g.O, 65535LL * 16);
    KILN_LOW_PRECISION_SWITCH(dt, L, {
      bias_grad_lp_kernel<L><<<grid, kBiasThreads, 0, stream_of(ctx)>>>(g.N, g.O, S, in[0].dptr<L>(), out[2].dptr<L>(),
                                                                        req_int(req[2]));
    });
    KILN_CUDA_LAUNCH_CHECK("conv bias gradient");
    rest[2] = OpReq::kNullOp;
  }
  if (req[0] != OpReq::kNullOp &&
      !cudnn_conv_backward_data(op, dev, ctx, dt, g, in[0].ptr, in[2].ptr, out[0].ptr, req[0] == OpReq::kAddTo))
    return run_widened(op, conv_backward, ctx, attrs, in, rest, out);
}

// ---- the operators ---------------------------------------------------------------------------

// in: data [N, C, in...], weight [O, C/G, k...][, bias [O]]; out: output [N, O, out...]
void conv_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                  const std::vector<TBlob>& out) {
  const char* op = "Convolution";
  check_arity(op, in, 2, 3, out, req, 1, 1);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  const Param c = parse(op, attrs, false);
  const Geo g = conv_geo(op, c, in[0].shape, out[0].shape, in[1].shape);
  check_bias(op, c, 3, in.size(), in.size() == 3 ? &in[2] : nullptr, g.O);
  if (req[0] == OpReq::kNullOp) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  const DType dt = out[0].dtype;
  if (is_low_precision(dt)) return conv_forward_lp(ctx, attrs, c, g, in, req, out);
  KILN_FLOAT_SWITCH(dt, T, {
    T* y = out[0].dptr<T>();  // [N, O, out...]
    pass_forward<T>(op, dev, ctx, dt, g, in[0].dptr<T>(), in[1].dptr<T>(), y, req[0] == OpReq::kAddTo);
    if (!c.no_bias) pass_add_bias<T>(op, dev, ctx, dt, g.nsp, g.N, g.O, g.Q, in[2].dptr<T>(), y);
  });
}

// in: ograd [N, O, out...], data [N, C, in...], weight [O, C/G, k...];
// out: data_grad [N, C, in...], weight_grad [O, C/G, k...][, bias_grad [O]]
void conv_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                   const std::vector<TBlob>& out) {
  const char* op = "_backward_Convolution";
  check_arity(op, in, 3, 3, out, req, 2, 3);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  const Param c = parse(op, attrs, false);
  const Geo g = conv_geo(op, c, in[1].shape, in[0].shape, in[2].shape);
  check_bias(op, c, 3, out.size(), out.size() == 3 ? &out[2] : nullptr, g.O);
  if (out[0].shape != in[1].shape || out[1].shape != in[2].shape)
    throw KilnError(std::string(op) + " (GPU): gradient shapes " + out[0].shape.str() + ", " + out[1].shape.str() +
                    " do not match data " + in[1].shape.str() + " and weight " + in[2].shape.str());
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  const DType dt = in[0].dtype;
  if (is_low_precision(dt)) return conv_backward_lp(ctx, attrs, c, g, in, req, out);
  KILN_FLOAT_SWITCH(dt, T, {
    const T* dy = in[0].dptr<T>();  // [N, O, out...]
    const T* x = in[1].dptr<T>();   // [N, C, in...]
    const T* w = in[2].dptr<T>();   // [O, C/G, k...]
    if (req[1] != OpReq::kNullOp)
      pass_backward_filter<T>(op, dev, ctx, dt, g, x, dy, out[1].dptr<T>(), req[1] == OpReq::kAddTo);
    if (!c.no_bias && req[2] != OpReq::kNullOp)
      pass_bias_grad<T>(op, dev, ctx, dt, g.nsp, g.N, g.O, g.Q, dy, out[2].dptr<T>(), req[2] == OpReq::kAddTo);
    if (req[0] != OpReq::kNullOp)
      pass_backward_data<T>(op, dev, ctx, dt, g, dy, w, out[0].dptr<T>(), req[0] == OpReq::kAddTo);
  });
}

// in: data [N, C_data, in...], weight [C_data, F/G, k...][, bias [F]]; out: output [N, F, out...]
void deconv_forward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  const char* op = "Deconvolution";
  check_arity(op, in, 2, 3, out, req, 1, 1);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  const Param c = parse(op, attrs, true);
  const Geo g = deconv_geo(op, c, in[0].shape, out[0].shape, in[1].shape);
  check_bias(op, c, 3, in.size(), in.size() == 3 ? &in[2] : nullptr, g.C);
  if (req[0] == OpReq::kNullOp) return;
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  const DType dt = out[0].dtype;
  KILN_FLOAT_SWITCH(dt, T, {
    T* y = out[0].dptr<T>();  // [N, F, out...]: the convolution's input
    // the convolution's backward data with the deconvolution's data as its output gradient
    pass_backward_data<T>(op, dev, ctx, dt, g, in[0].dptr<T>(), in[1].dptr<T>(), y, req[0] == OpReq::kAddTo);
    if (!c.no_bias) pass_add_bias<T>(op, dev, ctx, dt, g.nsp, g.N, g.C, g.D, in[2].dptr<T>(), y);
  });
}

// in: ograd [N, F, out...], data [N, C_data, in...], weight [C_data, F/G, k...];
// out: data_grad [N, C_data, in...], weight_grad [C_data, F/G, k...][, bias_grad [F]]
void deconv_backward(const OpCtx& ctx, const Attrs& attrs, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  const char* op = "_backward_Deconvolution";
  check_arity(op, in, 3, 3, out, req, 2, 3);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  const Param c = parse(op, attrs, true);
  const Geo g = deconv_geo(op, c, in[1].shape, in[0].shape, in[2].shape);
  check_bias(op, c, 3, out.size(), out.size() == 3 ? &out[2] : nullptr, g.C);
  if (out[0].shape != in[1].shape || out[1].shape != in[2].shape)
    throw KilnError(std::string(op) + " (GPU): gradient shapes " + out[0].shape.str() + ", " + out[1].shape.str() +
                    " do not match data " + in[1].shape.str() + " and weight " + in[2].shape.str());
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  const DType dt = in[0].dtype;
  KILN_FLOAT_SWITCH(dt, T, {
    const T* dy = in[0].dptr<T>();  // [N, F, out...]: the convolution's input
    const T* x = in[1].dptr<T>();   // [N, C_data, in...]: the convolution's output
    const T* w = in[2].dptr<T>();   // [C_data, F/G, k...]
    if (req[1] != OpReq::kNullOp)
      pass_backward_filter<T>(op, dev, ctx, dt, g, dy, x, out[1].dptr<T>(), req[1] == OpReq::kAddTo);
    if (!c.no_bias && req[2] != OpReq::kNullOp)
      pass_bias_grad<T>(op, dev, ctx, dt, g.nsp, g.N, g.C, g.D, dy, out[2].dptr<T>(), req[2] == OpReq::kAddTo);
    if (req[0] != OpReq::kNullOp)
      pass_forward<T>(op, dev, ctx, dt, g, dy, w, out[0].dptr<T>(), req[0] == OpReq::kAddTo);
  });
}

}  // namespace

void register_conv_gpu(OpRegistry& r) {
  set_gpu(r, "Convolution", conv_forward, kNativeLowPrecision);
  set_gpu(r, "_backward_Convolution", conv_backward, kNativeLowPrecision);
  set_gpu(r, "Deconvolution", deconv_forward);
  set_gpu(r, "_backward_Deconvolution", deconv_backward);
}

}  // namespace cuda
}  // namespace kiln
