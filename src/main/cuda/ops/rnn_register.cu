// RNN and _backward_RNN on the GPU: the fused multi-layer recurrent op (rnn_relu, rnn_tanh, lstm,
// gru; num_layers, bidirectional, state_outputs, dropout p between layers), mirroring the CPU
// kernel src/main/cpp/ops/seq/rnn.cc exactly: same packed parameter layout, same `reserve` output
// layout (the backward reads the forward's intermediates from it, nothing is recomputed), same
// rejections (projection_size, LSTM state clipping, use_sequence_length).
//
// Shapes (TNC): data [T, N, I], parameters [P], state / state_cell [L*D, N, H], output
// [T, N, D*H], state_output / statecell_output [L*D, N, H], reserve [R]; L = num_layers, D = 2
// when bidirectional, H = state_size, G gates (1 rnn, 4 lstm: i f g o, 3 gru: r z n), GH = G*H,
// TN = T*N. See rnn.cc for the parameter and reserve offsets (RnnDims below is the same).
//
// Per layer and direction the forward does the input projection of all timesteps as one cuBLAS
// GEMM ([TN, in] x [GH, in]^T, seeded with the biases), then per timestep one recurrent GEMM
// ([N, H] x [GH, H]^T) and one fused pointwise kernel (activations, cell update). The backward runs
// per timestep a pointwise gate-gradient kernel and one GEMM for the state gradient, then the
// weight gradients as GEMMs over all timesteps and the bias gradients as column sums; no atomics,
// so results are deterministic.
//
// Dropout (p > 0, training, every layer but the last): the mask comes from a counter-based hash
// seeded with one draw of the executor's generator per layer, so it differs from the CPU's mask
// (the CPU draws element by element from the mt19937_64); values are 0 or 1/(1-p) as on the CPU.
#include <memory>
#include <random>
#include <string>

#include "common/kernels.cuh"
#include "kiln/kernel_common.h"

namespace kiln {
namespace cuda {
namespace {

enum RnnMode { kRnnRelu = 0, kRnnTanh = 1, kLstm = 2, kGru = 3 };

/// The sizes of one RNN application (the CPU's RnnDims; T, N, I from the data shape).
struct RnnDims {
  int mode = kLstm;
  int64_t L = 1, D = 1, H = 1, G = 4;
  int64_t T = 0, N = 0, I = 0;
  double p = 0;
  int64_t GH() const { return G * H; }
  int64_t TN() const { return T * N; }
  int64_t NH() const { return N * H; }
  int64_t DH() const { return D * H; }
  int64_t in_size(int64_t l) const { return l == 0 ? I : D * H; }
  bool lstm() const { return mode == kLstm; }
  bool gru() const { return mode == kGru; }
  bool plain() const { return mode <= kRnnTanh; }
  // packed parameters
  int64_t weights_total() const { return D * (I + H) * GH() + (L - 1) * D * (D * H + H) * GH(); }
  int64_t param_size() const { return weights_total() + L * D * 2 * GH(); }
  int64_t w_off(int64_t l, int64_t d) const {
    return l == 0 ? d * (I + H) * GH() : D * (I + H) * GH() + ((l - 1) * D + d) * (D * H + H) * GH();
  }
  int64_t b_off(int64_t l, int64_t d) const { return weights_total() + (l * D + d) * 2 * GH(); }
  // reserve
  int64_t per_dir() const { return lstm() ? 6 * H : gru() ? 5 * H : H; }
  int64_t block(int64_t l, int64_t d) const { return (l * D + d) * TN() * per_dir(); }
  int64_t aux_off() const { return TN() * GH(); }
  int64_t h_off() const { return lstm() ? TN() * 5 * H : gru() ? TN() * 4 * H : 0; }
  int64_t inter() const { return TN() * D * H * (p > 0 ? 2 : 1); }
  int64_t y_off(int64_t l) const { return L * D * TN() * per_dir() + l * inter(); }
  int64_t mask_off(int64_t l) const { return y_off(l) + TN() * D * H; }
  int64_t reserve_size() const { return L * D * TN() * per_dir() + (L - 1) * inter(); }
  /// Backward scratch (elements): dgx [TN, GH], dgh [TN, GH] (gru), two [TN, D*H], dh and dc [N, H].
  int64_t bwd_scratch() const { return TN() * GH() * (gru() ? 2 : 1) + 2 * TN() * D * H + 2 * N * H; }
};

RnnDims rnn_dims(const char* op, const Attrs& a) {
  RnnDims d;
  const std::string& m = a.s("mode");
  if (m == "rnn_relu") d.mode = kRnnRelu;
  else if (m == "rnn_tanh") d.mode = kRnnTanh;
  else if (m == "lstm") d.mode = kLstm;
  else if (m == "gru") d.mode = kGru;
  else throw KilnError(std::string(op) + " (GPU): unknown mode '" + m + "' (rnn_relu, rnn_tanh, lstm, gru)");
  d.L = a.i("num_layers");
  d.D = a.b("bidirectional") ? 2 : 1;
  d.H = a.i("state_size");
  d.G = d.lstm() ? 4 : d.gru() ? 3 : 1;
  d.p = a.f("p");
  if (a.has("projection_size"))
    throw KilnError(std::string(op) + " (GPU): projection_size is not supported (as on the CPU; MXNet 1.9.1 supports "
                    "it only with cuDNN), got " + a.dict.at("projection_size"));
  if (a.has("lstm_state_clip_min") || a.has("lstm_state_clip_max"))
    throw KilnError(std::string(op) + " (GPU): lstm_state_clip_min / lstm_state_clip_max are not supported (as on "
                    "the CPU; MXNet 1.9.1 supports LSTM state clipping only with cuDNN)");
  if (a.b("use_sequence_length"))
    throw KilnError(std::string(op) + " (GPU): use_sequence_length=True is not supported (as on the CPU; MXNet "
                    "1.9.1 supports it only with cuDNN)");
  if (!(d.p >= 0.0 && d.p < 1.0))
    throw KilnError(std::string(op) + " (GPU): dropout p must be in [0, 1), got " + std::to_string(d.p));
  return d;
}

RnnDims rnn_dims(const char* op, const Attrs& a, const Shape& data) {
  RnnDims d = rnn_dims(op, a);
  if (data.ndim() != 3)
    throw KilnError(std::string(op) + " (GPU): data must be 3-D (seq_length, batch, input_size), got " + data.str());
  d.T = data[0];
  d.N = data[1];
  d.I = data[2];
  return d;
}

void check_blob(const char* op, const TBlob& b, const Shape& s, const char* what) {
  if (!(b.shape == s))
    throw KilnError(std::string(op) + " (GPU): " + what + " must have shape " + s.str() + ", got " + b.shape.str());
}

void check_inputs(const char* op, const RnnDims& d, const TBlob& params, const TBlob& state, const TBlob* cell) {
  check_blob(op, params, Shape{d.param_size()}, "parameters");
  const Shape st{d.L * d.D, d.N, d.H};
  check_blob(op, state, st, "state");
  if (cell) check_blob(op, *cell, st, "state_cell");
}

void check_dtypes(const char* op, const std::vector<TBlob>& in, const std::vector<TBlob>& out) {
  const DType t = in[0].dtype;
  for (const auto* v : {&in, &out})
    for (const auto& b : *v)
      if (b.ptr != nullptr && b.dtype != t)
        throw KilnError(std::string(op) + " (GPU): mixed dtypes " + dtype_name(t) + " and " + dtype_name(b.dtype));
}

// ---- device math ---------------------------------------------------------------------------------

__device__ __forceinline__ float k_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ double k_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// ---- forward kernels -----------------------------------------------------------------------------

// gates: [TN, GH] = b_x + b_h, b_h only on columns < hcols (gru: 2H, its n gate adds b_hn later)
template <typename T>
__global__ void bias_init_kernel(int64_t tn, int64_t gh, int64_t hcols, const T* __restrict__ bx,
                                 const T* __restrict__ bh, T* __restrict__ gates) {
  // bx, bh: [GH]
  KILN_GRID_STRIDE(i, tn * gh) {
    const int64_t j = i % gh;
    gates[i] = bx[j] + (j < hcols ? bh[j] : T(0));
  }
}

// One LSTM step over [N, H]: g: [N, 4H] pre-activations (i, f, g, o) -> activated in place;
// cprev: [N, H], c: [N, H] = f*cprev + i*g, h: [N, H] = o*tanh(c)
template <typename T>
__global__ void lstm_step_kernel(int64_t n_, int64_t H, T* __restrict__ g, const T* __restrict__ cprev,
                                 T* __restrict__ c, T* __restrict__ h) {
  KILN_GRID_STRIDE(e, n_ * H) {
    const int64_t n = e / H, k = e % H;
    T* gi = g + n * 4 * H;
    const T ig = k_sigmoid(gi[k]), fg = k_sigmoid(gi[H + k]), gg = k_tanh(gi[2 * H + k]),
            og = k_sigmoid(gi[3 * H + k]);
    gi[k] = ig;
    gi[H + k] = fg;
    gi[2 * H + k] = gg;
    gi[3 * H + k] = og;
    const T cv = fg * cprev[e] + ig * gg;
    c[e] = cv;
    h[e] = og * k_tanh(cv);
  }
}

// One GRU step over [N, H]: g: [N, 3H] x-part pre-activations (+ b_hr, b_hz) -> activated r, z, n;
// hh: [N, 3H] = W_h hprev; bh: [3H]; hprev: [N, H]; hn: [N, H] = W_hn hprev + b_hn;
// h: [N, H] = (1-z)*n + z*hprev
template <typename T>
__global__ void gru_step_kernel(int64_t n_, int64_t H, T* __restrict__ g, const T* __restrict__ hh,
                                const T* __restrict__ bh, const T* __restrict__ hprev, T* __restrict__ hn,
                                T* __restrict__ h) {
  KILN_GRID_STRIDE(e, n_ * H) {
    const int64_t n = e / H, k = e % H;
    T* gi = g + n * 3 * H;
    const T* hi = hh + n * 3 * H;
    const T r = k_sigmoid(gi[k] + hi[k]);
    const T z = k_sigmoid(gi[H + k] + hi[H + k]);
    const T hnv = hi[2 * H + k] + bh[2 * H + k];
    const T nn = k_tanh(gi[2 * H + k] + r * hnv);
    gi[k] = r;
    gi[H + k] = z;
    gi[2 * H + k] = nn;
    hn[e] = hnv;
    h[e] = (T(1) - z) * nn + z * hprev[e];
  }
}

// h: [n] pre-activations -> relu (a NaN becomes 0, as on the CPU) or tanh, in place
template <typename T>
__global__ void rnn_act_kernel(int64_t n, bool relu, T* __restrict__ h) {
  KILN_GRID_STRIDE(i, n) {
    const T v = h[i];
    h[i] = relu ? (v > T(0) ? v : T(0)) : k_tanh(v);
  }
}

// src: [n] -> dst: [n] by request
template <typename T>
__global__ void copy_req_kernel(int64_t n, const T* __restrict__ src, T* __restrict__ dst, int req) {
  KILN_GRID_STRIDE(i, n) { assign(dst, i, req, src[i]); }
}

// src: [TN, H] -> channels [off, off + H) of dst: [TN, DH], by request
template <typename T>
__global__ void to_channels_kernel(int64_t tn, int64_t H, int64_t DH, int64_t off, const T* __restrict__ src,
                                   T* __restrict__ dst, int req) {
  KILN_GRID_STRIDE(i, tn * H) {
    const int64_t r = i / H, k = i % H;
    assign(dst, r * DH + off + k, req, src[i]);
  }
}

// y: [n] *= mask: [n] = (u < pkeep ? scale : 0), u uniform from (seed, i)
template <typename T>
__global__ void dropout_kernel(int64_t n, uint64_t seed, double pkeep, T scale, T* __restrict__ mask,
                               T* __restrict__ y) {
  KILN_GRID_STRIDE(i, n) {
    const T m = k_uniform(seed, i) < pkeep ? scale : T(0);
    mask[i] = m;
    y[i] *= m;
  }
}

// x: [n] = v
template <typename T>
__global__ void fill_kernel(int64_t n, T v, T* __restrict__ x) {
  KILN_GRID_STRIDE(i, n) { x[i] = v; }
}

// ---- backward kernels ----------------------------------------------------------------------------

// LSTM step gradient over [N, H]. g: [N, 4H] activated gates; c: [N, H] this step's cell;
// cprev: [N, H]; dy: [N, H] with row stride DH (this direction's channels of the output gradient);
// dh: [N, H] state gradient from the later step (read); dc: [N, H] cell gradient (read, then
// written with the gradient for the earlier step); dg: [N, 4H] pre-activation gradient
template <typename T>
__global__ void lstm_bwd_step_kernel(int64_t n_, int64_t H, int64_t DH, const T* __restrict__ g,
                                     const T* __restrict__ c, const T* __restrict__ cprev, const T* __restrict__ dy,
                                     const T* __restrict__ dh, T* __restrict__ dc, T* __restrict__ dg) {
  KILN_GRID_STRIDE(e, n_ * H) {
    const int64_t n = e / H, k = e % H;
    const T* gi = g + n * 4 * H;
    T* dgi = dg + n * 4 * H;
    const T i = gi[k], f = gi[H + k], gg = gi[2 * H + k], o = gi[3 * H + k];
    const T tc = k_tanh(c[e]);
    const T dhv = dh[e] + dy[n * DH + k];
    const T dcv = dc[e] + dhv * o * (T(1) - tc * tc);
    dgi[k] = dcv * gg * i * (T(1) - i);
    dgi[H + k] = dcv * cprev[e] * f * (T(1) - f);
    dgi[2 * H + k] = dcv * i * (T(1) - gg * gg);
    dgi[3 * H + k] = dhv * tc * o * (T(1) - o);
    dc[e] = dcv * f;
  }
}

// GRU step gradient over [N, H]. g: [N, 3H] activated r, z, n; hn: [N, H] = W_hn hprev + b_hn;
// hprev: [N, H]; dy: [N, H] with row stride DH; dh: [N, H] state gradient (read, then written with
// the direct part dh*z; the GEMM through W_h adds the rest); dgx, dgh: [N, 3H] gradients of the
// x-part and the h-part pre-activations
template <typename T>
__global__ void gru_bwd_step_kernel(int64_t n_, int64_t H, int64_t DH, const T* __restrict__ g,
                                    const T* __restrict__ hn, const T* __restrict__ hprev, const T* __restrict__ dy,
                                    T* __restrict__ dh, T* __restrict__ dgx, T* __restrict__ dgh) {
  KILN_GRID_STRIDE(e, n_ * H) {
    const int64_t n = e / H, k = e % H;
    const T* gi = g + n * 3 * H;
    T* dx = dgx + n * 3 * H;
    T* dhh = dgh + n * 3 * H;
    const T r = gi[k], z = gi[H + k], nn = gi[2 * H + k];
    const T dhv = dh[e] + dy[n * DH + k];
    const T dnp = dhv * (T(1) - z) * (T(1) - nn * nn);
    const T dzp = dhv * (hprev[e] - nn) * z * (T(1) - z);
    const T drp = dnp * hn[e] * r * (T(1) - r);
    dx[k] = drp;
    dx[H + k] = dzp;
    dx[2 * H + k] = dnp;
    dhh[k] = drp;
    dhh[H + k] = dzp;
    dhh[2 * H + k] = dnp * r;
    dh[e] = dhv * z;
  }
}

// rnn_relu / rnn_tanh step gradient over [N, H]. h: [N, H] activated output; dy: [N, H] with row
// stride DH; dh: [N, H]; dg: [N, H] pre-activation gradient
template <typename T>
__global__ void rnn_bwd_step_kernel(int64_t n_, int64_t H, int64_t DH, bool relu, const T* __restrict__ h,
                                    const T* __restrict__ dy, const T* __restrict__ dh, T* __restrict__ dg) {
  KILN_GRID_STRIDE(e, n_ * H) {
    const int64_t n = e / H, k = e % H;
    const T hv = h[e];
    const T dhv = dh[e] + dy[n * DH + k];
    dg[e] = relu ? (hv > T(0) ? dhv : T(0)) : dhv * (T(1) - hv * hv);
  }
}

constexpr int kColTile = 32;   // columns per block (one warp wide: coalesced row reads)
constexpr int kRowLanes = 16;  // threads per column walking the rows

// g: [M, C] -> db: [C] += column sums (fixed summation order: deterministic)
template <typename T>
__global__ void column_sum_add_kernel(int64_t m, int64_t c, const T* __restrict__ g, T* __restrict__ db) {
  __shared__ T partial[kRowLanes][kColTile + 1];
  const int64_t col = (int64_t)blockIdx.x * kColTile + threadIdx.x;
  T acc = T(0);
  if (col < c) {
    for (int64_t row = threadIdx.y; row < m; row += kRowLanes) acc += g[row * c + col];
  }
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && col < c) {
    T s = T(0);
    for (int r = 0; r < kRowLanes; ++r) s += partial[r][threadIdx.x];
    db[col] += s;
  }
}

// x: [n] *= m: [n]
template <typename T>
__global__ void mul_kernel(int64_t n, const T* __restrict__ m, T* __restrict__ x) {
  KILN_GRID_STRIDE(i, n) { x[i] *= m[i]; }
}

// ---- host helpers ----------------------------------------------------------------------------------

/// Launch helpers: nothing to do for an empty range.
#define RNN_LAUNCH(name, n, kernel, ...)                                   \
  do {                                                                     \
    if ((n) > 0) {                                                         \
      kernel<<<grid_for(n), kBlock, 0, s>>>(__VA_ARGS__);                  \
      KILN_CUDA_LAUNCH_CHECK(name);                                        \
    }                                                                      \
  } while (0)

template <typename T>
void copy_req(cudaStream_t s, OpReq req, int64_t n, const T* src, T* dst) {
  if (req == OpReq::kNullOp || dst == nullptr || n == 0) return;
  if (req != OpReq::kAddTo) {
    if (src != dst) KILN_CUDA_CHECK(cudaMemcpyAsync(dst, src, sizeof(T) * (size_t)n, cudaMemcpyDeviceToDevice, s));
    return;
  }
  RNN_LAUNCH("RNN copy", n, copy_req_kernel<T>, n, src, dst, req_int(req));
}

template <typename T>
void zero(cudaStream_t s, int64_t n, T* p) {
  if (n > 0) KILN_CUDA_CHECK(cudaMemsetAsync(p, 0, sizeof(T) * (size_t)n, s));
}

template <typename T>
void column_sum_add(cudaStream_t s, int64_t m, int64_t c, const T* g, T* db) {
  if (c == 0 || m == 0) return;
  dim3 block(kColTile, kRowLanes);
  dim3 grid((unsigned)((c + kColTile - 1) / kColTile));
  column_sum_add_kernel<T><<<grid, block, 0, s>>>(m, c, g, db);
  KILN_CUDA_LAUNCH_CHECK("_backward_RNN bias");
}

/// Forward of every layer and direction; fills the reserve (see rnn.cc).
template <typename T>
void rnn_forward(int dev, cudaStream_t s, const RnnDims& d, bool train, uint64_t (*draw)(void*), void* rng,
                 const T* x,          // [T, N, I]
                 const T* w,          // [P]
                 const T* hx,         // [L*D, N, H]
                 const T* cx,         // [L*D, N, H] (lstm) or null
                 T* y, OpReq yreq,    // [T, N, D*H]
                 T* hy, OpReq hreq,   // [L*D, N, H] or null
                 T* cy, OpReq creq,   // [L*D, N, H] or null
                 T* rs,               // [reserve_size]
                 T* ws) {             // [N, 3H] (gru)
  const int64_t T_ = d.T, N = d.N, H = d.H, GH = d.GH(), TN = d.TN(), DH = d.DH(), NH = d.NH();
  for (int64_t l = 0; l < d.L; ++l) {
    const int64_t in = d.in_size(l);
    const T* xin = l == 0 ? x : rs + d.y_off(l - 1);  // [T, N, in]
    const bool last = l == d.L - 1;
    T* ylayer = last ? nullptr : rs + d.y_off(l);  // [T, N, D*H]
    for (int64_t dir = 0; dir < d.D; ++dir) {
      const T* wx = w + d.w_off(l, dir);  // [GH, in]
      const T* wh = wx + GH * in;         // [GH, H]
      const T* bx = w + d.b_off(l, dir);  // [GH]
      const T* bh = bx + GH;              // [GH]
      T* blk = rs + d.block(l, dir);
      T* hseq = blk + d.h_off();                              // [T, N, H]
      T* gates = d.plain() ? hseq : blk;                      // [T, N, GH]
      T* aux = d.plain() ? nullptr : blk + d.aux_off();       // lstm c / gru hn [T, N, H]
      // input projection of every step at once, seeded with the biases that add up front
      RNN_LAUNCH("RNN bias", TN * GH, bias_init_kernel<T>, TN, GH, d.gru() ? 2 * H : GH, bx, bh, gates);
      gemm(dev, s, false, true, TN, GH, in, T(1), xin, wx, T(1), gates);
      const T* hprev = hx + (l * d.D + dir) * NH;                       // [N, H]
      const T* cprev = d.lstm() ? cx + (l * d.D + dir) * NH : nullptr;  // [N, H]
      for (int64_t st = 0; st < T_; ++st) {
        const int64_t t = dir == 0 ? st : T_ - 1 - st;
        T* g = gates + t * N * GH;  // [N, GH]
        T* ht = hseq + t * NH;      // [N, H]
        if (d.lstm()) {
          T* ct = aux + t * NH;  // [N, H]
          gemm(dev, s, false, true, N, GH, H, T(1), hprev, wh, T(1), g);
          RNN_LAUNCH("RNN lstm step", NH, lstm_step_kernel<T>, N, H, g, cprev, ct, ht);
          cprev = ct;
        } else if (d.gru()) {
          T* hnt = aux + t * NH;  // [N, H]
          gemm(dev, s, false, true, N, GH, H, T(1), hprev, wh, T(0), ws);  // ws [N, 3H]
          RNN_LAUNCH("RNN gru step", NH, gru_step_kernel<T>, N, H, g, ws, bh, hprev, hnt, ht);
        } else {
          gemm(dev, s, false, true, N, H, H, T(1), hprev, wh, T(1), ht);
          RNN_LAUNCH("RNN step", NH, rnn_act_kernel<T>, NH, d.mode == kRnnRelu, ht);
        }
        hprev = ht;
      }
      if (hy) copy_req(s, hreq, NH, hprev, hy + (l * d.D + dir) * NH);
      if (cy && d.lstm()) copy_req(s, creq, NH, cprev, cy + (l * d.D + dir) * NH);
      // this direction's channels of the layer output
      if (last) {
        if (yreq == OpReq::kNullOp) continue;
        RNN_LAUNCH("RNN output", TN * H, to_channels_kernel<T>, TN, H, DH, dir * H, hseq, y, req_int(yreq));
      } else {
        RNN_LAUNCH("RNN layer output", TN * H, to_channels_kernel<T>, TN, H, DH, dir * H, hseq, ylayer, kReqWrite);
      }
    }
    if (!last && d.p > 0) {
      T* mask = rs + d.mask_off(l);  // [T, N, D*H]
      const int64_t n = TN * DH;
      if (train) {
        if (rng == nullptr) throw KilnError("RNN (GPU): no random generator in the op context (dropout p > 0)");
        const uint64_t seed = draw(rng);
        const double pkeep = 1.0 - d.p;
        RNN_LAUNCH("RNN dropout", n, dropout_kernel<T>, n, seed, pkeep, T(1.0 / pkeep), mask, ylayer);
      } else {
        RNN_LAUNCH("RNN dropout mask", n, fill_kernel<T>, n, T(1), mask);
      }
    }
  }
}

/// Backward of rnn_forward from the reserve (see rnn.cc's rnn_backward). ws: bwd_scratch() elements.
template <typename T>
void rnn_backward(int dev, cudaStream_t s, const RnnDims& d,
                  const T* dy,           // [T, N, D*H]
                  const T* dhy,          // [L*D, N, H] or null (zero)
                  const T* dcy,          // [L*D, N, H] or null (zero)
                  const T* x,            // [T, N, I]
                  const T* w,            // [P]
                  const T* hx,           // [L*D, N, H]
                  const T* cx,           // [L*D, N, H] (lstm) or null
                  const T* rs,           // [reserve_size]
                  T* dx, OpReq xreq,     // [T, N, I]
                  T* dw, OpReq wreq,     // [P]
                  T* dhx, OpReq hreq,    // [L*D, N, H]
                  T* dcx, OpReq creq,    // [L*D, N, H] (lstm)
                  T* ws) {
  const int64_t T_ = d.T, N = d.N, H = d.H, GH = d.GH(), TN = d.TN(), DH = d.DH(), NH = d.NH();
  const bool wgrad = wreq != OpReq::kNullOp && dw != nullptr;
  if (wgrad && wreq != OpReq::kAddTo) zero(s, d.param_size(), dw);
  T* dgx = ws;                                   // [T, N, GH]
  T* dgh = d.gru() ? dgx + TN * GH : dgx;        // [T, N, GH]
  T* bufa = dgx + TN * GH * (d.gru() ? 2 : 1);   // [T, N, D*H]
  T* bufb = bufa + TN * DH;                      // [T, N, D*H]
  T* dh = bufb + TN * DH;                        // [N, H]
  T* dc = dh + NH;                               // [N, H]
  const T* dY = dy;  // gradient of the current layer's output [T, N, D*H]
  for (int64_t l = d.L - 1; l >= 0; --l) {
    const int64_t in = d.in_size(l);
    const T* xin = l == 0 ? x : rs + d.y_off(l - 1);  // [T, N, in]
    T* dX = nullptr;  // gradient of the layer input [T, N, in]
    bool dx_add = false;
    if (l > 0) {
      dX = dY == bufa ? bufb : bufa;
    } else if (xreq != OpReq::kNullOp && dx != nullptr) {
      dX = dx;
      dx_add = xreq == OpReq::kAddTo;
    }
    for (int64_t dir = 0; dir < d.D; ++dir) {
      const int64_t sidx = (l * d.D + dir) * NH;
      const T* wx = w + d.w_off(l, dir);  // [GH, in]
      const T* wh = wx + GH * in;         // [GH, H]
      const T* blk = rs + d.block(l, dir);
      const T* hseq = blk + d.h_off();                         // [T, N, H]
      const T* gates = d.plain() ? hseq : blk;                 // [T, N, GH]
      const T* aux = d.plain() ? nullptr : blk + d.aux_off();  // [T, N, H]
      const T* h0 = hx + sidx;                                 // [N, H]
      const T* c0 = d.lstm() ? cx + sidx : nullptr;            // [N, H]
      if (dhy) copy_req(s, OpReq::kWriteTo, NH, dhy + sidx, dh);
      else zero(s, NH, dh);
      if (d.lstm()) {
        if (dcy) copy_req(s, OpReq::kWriteTo, NH, dcy + sidx, dc);
        else zero(s, NH, dc);
      }
      for (int64_t st = T_ - 1; st >= 0; --st) {
        const int64_t t = dir == 0 ? st : T_ - 1 - st;
        const int64_t tp = dir == 0 ? t - 1 : t + 1;  // the step before in processing order
        const T* hp = st == 0 ? h0 : hseq + tp * NH;  // [N, H]
        const T* g = gates + t * N * GH;              // [N, GH]
        T* dgxt = dgx + t * N * GH;                   // [N, GH]
        T* dght = dgh + t * N * GH;                   // [N, GH]
        const T* dyt = dY + t * N * DH + dir * H;     // [N, H] with row stride D*H
        if (d.lstm()) {
          const T* ct = aux + t * NH;                 // [N, H]
          const T* cp = st == 0 ? c0 : aux + tp * NH;  // [N, H]
          RNN_LAUNCH("_backward_RNN lstm step", NH, lstm_bwd_step_kernel<T>, N, H, DH, g, ct, cp, dyt, dh, dc, dgxt);
          gemm(dev, s, false, false, N, H, GH, T(1), dgxt, wh, T(0), dh);
        } else if (d.gru()) {
          const T* hnt = aux + t * NH;  // [N, H]
          RNN_LAUNCH("_backward_RNN gru step", NH, gru_bwd_step_kernel<T>, N, H, DH, g, hnt, hp, dyt, dh, dgxt, dght);
          gemm(dev, s, false, false, N, H, GH, T(1), dght, wh, T(1), dh);
        } else {
          const T* ht = hseq + t * NH;  // [N, H]
          RNN_LAUNCH("_backward_RNN step", NH, rnn_bwd_step_kernel<T>, N, H, DH, d.mode == kRnnRelu, ht, dyt, dh, dgxt);
          gemm(dev, s, false, false, N, H, GH, T(1), dgxt, wh, T(0), dh);
        }
      }
      if (dhx) copy_req(s, hreq, NH, dh, dhx + sidx);
      if (dcx && d.lstm()) copy_req(s, creq, NH, dc, dcx + sidx);
      if (wgrad && TN > 0) {
        T* dwx = dw + d.w_off(l, dir);  // [GH, in]
        T* dwh = dwx + GH * in;         // [GH, H]
        T* dbx = dw + d.b_off(l, dir);  // [GH]
        T* dbh = dbx + GH;              // [GH]
        gemm(dev, s, true, false, GH, in, TN, T(1), dgx, xin, T(1), dwx);
        // dW_h = sum_t dgh[t]^T h[t-1]: the steps whose previous state is in hseq at once
        if (dir == 0) {
          gemm(dev, s, true, false, GH, H, (T_ - 1) * N, T(1), dgh + N * GH, hseq, T(1), dwh);
          gemm(dev, s, true, false, GH, H, N, T(1), dgh, hx + sidx, T(1), dwh);
        } else {
          gemm(dev, s, true, false, GH, H, (T_ - 1) * N, T(1), dgh, hseq + NH, T(1), dwh);
          gemm(dev, s, true, false, GH, H, N, T(1), dgh + (T_ - 1) * N * GH, hx + sidx, T(1), dwh);
        }
        column_sum_add(s, TN, GH, dgx, dbx);
        column_sum_add(s, TN, GH, dgh, dbh);
      }
      if (dX) gemm(dev, s, false, false, TN, in, GH, T(1), dgx, wx, (dir == 0 && !dx_add) ? T(0) : T(1), dX);
    }
    if (l > 0) {
      if (d.p > 0) {
        const T* mask = rs + d.mask_off(l - 1);  // [T, N, D*H]
        RNN_LAUNCH("_backward_RNN dropout", TN * DH, mul_kernel<T>, TN * DH, mask, dX);
      }
      dY = dX;
    }
  }
}

uint64_t draw_mt(void* g) { return (*static_cast<std::mt19937_64*>(g))(); }

/// Scratch: ctx.workspace when the op's declared workspace is big enough, else the caching allocator.
struct Scratch {
  void* ptr = nullptr;
  std::unique_ptr<DeviceScratch> own;
  Scratch(const OpCtx& ctx, int dev, size_t bytes) {
    if (bytes == 0) return;
    if (ctx.workspace != nullptr && ctx.workspace_bytes >= bytes) {
      ptr = ctx.workspace;
    } else {
      own.reset(new DeviceScratch(dev, bytes));
      ptr = own->as<void>();
    }
  }
};

void rnn_forward_gpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: data, parameters, state[, state_cell]; out: output[, state_output[, statecell_output]], reserve
  const char* op = "RNN";
  const RnnDims d = rnn_dims(op, a, in[0].shape);
  const bool so = a.b("state_outputs");
  const size_t nin = d.lstm() ? 4 : 3;
  const size_t nvis = so ? (d.lstm() ? 3 : 2) : 1;
  check_arity(op, in, nin, nin, out, req, nvis + 1, nvis + 1);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  check_inputs(op, d, in[1], in[2], d.lstm() ? &in[3] : nullptr);
  const TBlob& rsv = out[nvis];
  if ((rsv.ptr == nullptr && d.reserve_size() != 0) || rsv.size() != d.reserve_size())
    throw KilnError("RNN (GPU): the reserve output has no memory or the wrong size (the op declares "
                    "outputs_always_written)");
  check_blob(op, out[0], Shape{d.T, d.N, d.D * d.H}, "output");
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    Scratch ws(ctx, dev, d.gru() ? (size_t)(d.N * d.GH()) * sizeof(T) : 0);
    rnn_forward<T>(dev, s, d, ctx.is_train, draw_mt, ctx.rng, in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(),
                   d.lstm() ? in[3].dptr<T>() : nullptr, out[0].dptr<T>(), req[0],
                   so ? out[1].dptr<T>() : nullptr, so ? req[1] : OpReq::kNullOp,
                   so && d.lstm() ? out[2].dptr<T>() : nullptr, so && d.lstm() ? req[2] : OpReq::kNullOp,
                   rsv.dptr<T>(), static_cast<T*>(ws.ptr));
  });
}

void rnn_backward_gpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: ograd[, ograd state_output[, ograd statecell_output]], data, parameters, state[, state_cell], reserve
  // out: data_grad, parameters_grad, state_grad[, state_cell_grad]
  const char* op = "_backward_RNN";
  const RnnDims d0 = rnn_dims(op, a);
  const bool so = a.b("state_outputs");
  const size_t nog = so ? (d0.lstm() ? 3 : 2) : 1;
  const size_t nin = nog + (d0.lstm() ? 5 : 4);
  const size_t nout = d0.lstm() ? 4 : 3;
  check_arity(op, in, nin, nin, out, req, nout, nout);
  check_on_gpu(op, in, "input");
  check_on_gpu(op, out, "output");
  check_dtypes(op, in, out);
  const RnnDims d = rnn_dims(op, a, in[nog].shape);
  const TBlob& data = in[nog];
  check_inputs(op, d, in[nog + 1], in[nog + 2], d.lstm() ? &in[nog + 3] : nullptr);
  const TBlob& rsv = in[nog + (d.lstm() ? 4 : 3)];
  check_blob(op, rsv, Shape{d.reserve_size()}, "reserve");
  check_blob(op, in[0], Shape{d.T, d.N, d.D * d.H}, "output gradient");
  const Shape st{d.L * d.D, d.N, d.H};
  for (size_t i = 1; i < nog; ++i) check_blob(op, in[i], st, "state output gradient");
  const int dev = device_of(ctx, in, out);
  DeviceGuard guard(dev);
  cudaStream_t s = stream_of(ctx);
  KILN_FLOAT_SWITCH(data.dtype, T, {
    Scratch ws(ctx, dev, (size_t)d.bwd_scratch() * sizeof(T));
    rnn_backward<T>(dev, s, d, in[0].dptr<T>(), so ? in[1].dptr<T>() : nullptr,
                    so && d.lstm() ? in[2].dptr<T>() : nullptr, data.dptr<T>(), in[nog + 1].dptr<T>(),
                    in[nog + 2].dptr<T>(), d.lstm() ? in[nog + 3].dptr<T>() : nullptr, rsv.dptr<T>(),
                    out[0].dptr<T>(), req[0], out[1].dptr<T>(), req[1], out[2].dptr<T>(), req[2],
                    d.lstm() ? out[3].dptr<T>() : nullptr, d.lstm() ? req[3] : OpReq::kNullOp,
                    static_cast<T*>(ws.ptr));
  });
}

#undef RNN_LAUNCH

}  // namespace

void register_rnn_gpu(OpRegistry& r) {
  set_gpu(r, "RNN", rnn_forward_gpu);
  set_gpu(r, "_backward_RNN", rnn_backward_gpu);
}

}  // namespace cuda
}  // namespace kiln
