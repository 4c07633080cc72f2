// RNN: MXNet 1.9.1's fused multi-layer recurrent op (src/operator/rnn-inl.h, rnn_impl.h) and its
// backward, on the CPU.
//
// Shapes (TNC layout): data [T, N, I], state / state_cell [L*D, N, H], output [T, N, D*H],
// state_output / statecell_output [L*D, N, H]; L = num_layers, D = 2 when bidirectional, H =
// state_size, G gates: 1 (rnn_relu, rnn_tanh), 4 (lstm: i, f, g, o), 3 (gru: r, z, n).
//
// The packed `parameters` vector (MXNet's layout, also cuDNN's canonical one): all weights, then
// all biases, each walked layer by layer and, inside a layer, direction by direction:
//   weights of (l, d): W_x [G*H, in_l] then W_h [G*H, H]     in_0 = I, in_l = D*H for l > 0
//   biases of (l, d):  b_x [G*H] then b_h [G*H]
// so with GH = G*H and P_w = D*(I+H)*GH + (L-1)*D*(D*H+H)*GH (all weights):
//   w_off(0, d) = d*(I+H)*GH,  w_off(l>0, d) = D*(I+H)*GH + ((l-1)*D + d)*(D*H+H)*GH
//   W_h(l, d) starts at w_off(l, d) + GH*in_l
//   b_off(l, d) = P_w + (l*D + d)*2*GH,  b_h(l, d) at b_off(l, d) + GH
// and the total is GetRnnParamSize: (I+H+2)*GH*D + (L-1)*(D*H+H+2)*GH*D.
//
// Cell equations (MXNet rnn_impl.h; x-part W_x x + b_x, h-part W_h h + b_h per gate):
//   rnn:  h = act(x-part + h-part), act = relu or tanh
//   lstm: i, f, o = sigmoid, g = tanh of (x-part + h-part); c = f*c' + i*g; h = o*tanh(c)
//   gru:  r, z = sigmoid(x-part + h-part); n = tanh(x-part_n + r*(W_hn h' + b_hn));
//         h = (1-z)*n + z*h'
// The reverse direction of a bidirectional layer runs t = T-1 .. 0 and writes channels [H, 2H).
// Dropout with rate p is applied (training only) to the output of every layer but the last.
//
// The forward keeps what the backward needs in a hidden output `reserve` (always written, the
// role of MXNet's reserve space), laid out (elements) as
//   per (l, d), block (l*D + d) of size TN*per_dir, TN = T*N:
//     lstm: gates [T, N, 4H] (activated), c [T, N, H], h [T, N, H]
//     gru:  gates [T, N, 3H] (activated r, z, n), hn = W_hn h' + b_hn [T, N, H], h [T, N, H]
//     rnn:  h [T, N, H]
//   then for each layer l < L-1: y_l [T, N, D*H] (after dropout, the input of layer l+1) and,
//   when p > 0, its dropout mask [T, N, D*H] (0 or 1/(1-p); 1 outside training).
// Rejected as on MXNet's CPU: projection_size, lstm_state_clip_min/max, use_sequence_length.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../nn/nn_ops.h"
#include "seq_ops.h"

namespace kiln {
namespace seq {
namespace {

using nn::blas_int;
using nn::param_range;

enum RnnMode { kRnnRelu = 0, kRnnTanh = 1, kLstm = 2, kGru = 3 };

int rnn_mode(const Attrs& a) {
  const std::string& m = a.s("mode");
  if (m == "rnn_relu") return kRnnRelu;
  if (m == "rnn_tanh") return kRnnTanh;
  if (m == "lstm") return kLstm;
  if (m == "gru") return kGru;
  throw KilnError("RNN: unknown mode '" + m + "' (rnn_relu, rnn_tanh, lstm, gru)");
}

/// The sizes of one RNN application; T, N, I come from the data shape.
struct RnnDims {
  int mode = kLstm;
  int64_t L = 1, D = 1, H = 1, G = 4;
  int64_t T = 0, N = 0, I = 0;
  double p = 0;
  int64_t GH() const { return G * H; }
  int64_t TN() const { return T * N; }
  int64_t in_size(int64_t l) const { return l == 0 ? I : D * H; }
  bool lstm() const { return mode == kLstm; }
  bool gru() const { return mode == kGru; }

  // ---- packed parameters ----
  int64_t weights_total() const { return D * (I + H) * GH() + (L - 1) * D * (D * H + H) * GH(); }
  int64_t param_size() const { return weights_total() + L * D * 2 * GH(); }
  int64_t w_off(int64_t l, int64_t d) const {
    return l == 0 ? d * (I + H) * GH() : D * (I + H) * GH() + ((l - 1) * D + d) * (D * H + H) * GH();
  }
  int64_t b_off(int64_t l, int64_t d) const { return weights_total() + (l * D + d) * 2 * GH(); }

  // ---- reserve ----
  /// Elements per (layer, direction) block divided by TN.
  int64_t per_dir() const { return lstm() ? 6 * H : gru() ? 5 * H : H; }
  int64_t block(int64_t l, int64_t d) const { return (l * D + d) * TN() * per_dir(); }
  int64_t gates_off() const { return 0; }                                      // [T, N, GH] (not rnn)
  int64_t aux_off() const { return TN() * GH(); }                              // lstm c / gru hn [T, N, H]
  int64_t h_off() const { return lstm() ? TN() * 5 * H : gru() ? TN() * 4 * H : 0; }  // [T, N, H]
  int64_t inter() const { return TN() * D * H * (p > 0 ? 2 : 1); }
  int64_t y_off(int64_t l) const { return L * D * TN() * per_dir() + l * inter(); }  // [T, N, D*H]
  int64_t mask_off(int64_t l) const { return y_off(l) + TN() * D * H; }              // [T, N, D*H]
  int64_t reserve_size() const { return L * D * TN() * per_dir() + (L - 1) * inter(); }
};

/// Reads the parameters; rejects what MXNet's CPU operator rejects.
RnnDims rnn_dims(const Attrs& a) {
  RnnDims d;
  d.mode = rnn_mode(a);
  d.L = a.i("num_layers");
  d.D = a.b("bidirectional") ? 2 : 1;
  d.H = a.i("state_size");
  d.G = d.lstm() ? 4 : d.gru() ? 3 : 1;
  d.p = a.f("p");
  KILN_CHECK(!a.has("projection_size"),
             "RNN: projection_size is not supported on the CPU (MXNet 1.9.1 supports it only with cuDNN), got " +
                 a.dict.at("projection_size"));
  KILN_CHECK(!a.has("lstm_state_clip_min") && !a.has("lstm_state_clip_max"),
             "RNN: lstm_state_clip_min / lstm_state_clip_max are not supported on the CPU (MXNet 1.9.1 supports "
             "LSTM state clipping only with cuDNN)");
  KILN_CHECK(!a.b("use_sequence_length"),
             "RNN: use_sequence_length=True is not supported on the CPU (MXNet 1.9.1 supports it only with cuDNN)");
  KILN_CHECK(d.p < 1.0, "RNN: dropout p must be in [0, 1), got " + std::to_string(d.p));
  return d;
}

RnnDims rnn_dims(const Attrs& a, const Shape& data) {
  RnnDims d = rnn_dims(a);
  KILN_CHECK(data.ndim() == 3, "RNN: data must be 3-D (seq_length, batch, input_size), got " + data.str());
  d.T = data[0];
  d.N = data[1];
  d.I = data[2];
  return d;
}

// ---- shapes --------------------------------------------------------------------------------

void rnn_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  RnnDims d;
  try {
    d = rnn_dims(a);
  } catch (const InferError&) {
    throw;
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  Shape data = (*in)[0];
  if (!data.rank_known()) data = Shape::unknown_dims(3);
  if (data.ndim() != 3)
    throw InferError(true, 0, "RNN: data must be 3-D (seq_length, batch, input_size), got " + data.str());
  // back-fill data's seq_length and batch from the output and the states
  Shape back = Shape::unknown_dims(3);
  if ((*out)[0].rank_known() && (*out)[0].ndim() == 3) {
    back[0] = (*out)[0][0];
    back[1] = (*out)[0][1];
  }
  if ((*in)[2].rank_known() && (*in)[2].ndim() == 3) back[1] = (*in)[2][1];
  if (!shape_assign(&data, back)) {
    throw InferError(true, 0, "RNN: data " + data.str() + " does not match the batch / seq_length of the output " +
                                  (*out)[0].str() + " and state " + (*in)[2].str());
  }
  assign_in(in, 0, data);
  const int64_t T = data[0], N = data[1], I = data[2];
  const Shape st{d.L * d.D, N, d.H};
  assign_in(in, 2, st);
  if (d.lstm()) assign_in(in, 3, st);
  if (I >= 0) {
    d.I = I;
    assign_in(in, 1, Shape{d.param_size()});
  }
  assign_out(out, 0, Shape{T, N, d.D * d.H});
  int k = 1;
  if (a.b("state_outputs")) {
    assign_out(out, k++, st);
    if (d.lstm()) assign_out(out, k++, st);
  }
  if (T >= 0 && N >= 0) {
    d.T = T;
    d.N = N;
    assign_out(out, k, Shape{d.reserve_size()});
  }
}

// ---- kernels -------------------------------------------------------------------------------

// Activations in place over a row: float goes through the vectorized simd::exp_range
// (sigmoid(x) = 1 / (1 + e^-x), tanh(x) = 2 / (1 + e^-2x) - 1; both saturate correctly when the
// exponential overflows), float64 (the gradient checks) through libm.
inline void sigmoid_inplace(float* v, int64_t n) {  // v: [n]
  for (int64_t i = 0; i < n; ++i) v[i] = -v[i];
  simd::exp_range(v, v, n, false);
  for (int64_t i = 0; i < n; ++i) v[i] = 1.0f / (1.0f + v[i]);
}
inline void sigmoid_inplace(double* v, int64_t n) {  // v: [n]
  for (int64_t i = 0; i < n; ++i) v[i] = 1.0 / (1.0 + std::exp(-v[i]));
}
inline void tanh_inplace(float* v, int64_t n) {  // v: [n]
  for (int64_t i = 0; i < n; ++i) v[i] = -2.0f * v[i];
  simd::exp_range(v, v, n, false);
  for (int64_t i = 0; i < n; ++i) v[i] = 2.0f / (1.0f + v[i]) - 1.0f;
}
inline void tanh_inplace(double* v, int64_t n) {  // v: [n]
  for (int64_t i = 0; i < n; ++i) v[i] = std::tanh(v[i]);
}

/// out = (or +=) src for n elements, by request.
template <typename DT>
void copy_req(OpReq req, int64_t n, const DT* src, DT* out) {
  if (req == OpReq::kNullOp || out == nullptr) return;
  if (req == OpReq::kAddTo) {
    for (int64_t i = 0; i < n; ++i) out[i] += src[i];
  } else if (src != out) {
    std::memcpy(out, src, sizeof(DT) * (size_t)n);
  }
}

template <typename DT>
void gemm_i(bool ta, bool tb, int64_t m, int64_t n, int64_t k, DT alpha, const DT* a, const DT* b, DT beta, DT* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == DT(0)) std::fill(c, c + m * n, DT(0));
    return;
  }
  gemm(ta, tb, blas_int(m, "RNN gemm m"), blas_int(n, "RNN gemm n"), blas_int(k, "RNN gemm k"), alpha, a, b, beta, c);
}

/// Forward of every layer and direction; fills the reserve (see the file comment).
template <typename DT>
void rnn_forward(const RnnDims& d, bool train, std::mt19937_64* rng,
                 const DT* x,   // [T, N, I]
                 const DT* w,   // [P] packed parameters
                 const DT* hx,  // [L*D, N, H]
                 const DT* cx,  // [L*D, N, H] (lstm) or null
                 DT* y, OpReq yreq,    // [T, N, D*H]
                 DT* hy, OpReq hreq,   // [L*D, N, H] or null
                 DT* cy, OpReq creq,   // [L*D, N, H] or null
                 DT* rs,               // [reserve_size]
                 DT* ws) {             // [N, 3H] (gru)
  const int64_t T = d.T, N = d.N, H = d.H, GH = d.GH(), TN = d.TN(), DH = d.D * d.H, NH = N * H;
  for (int64_t l = 0; l < d.L; ++l) {
    const int64_t in = d.in_size(l);
    const DT* xin = l == 0 ? x : rs + d.y_off(l - 1);  // [T, N, in]
    const bool last = l == d.L - 1;
    DT* ylayer = last ? nullptr : rs + d.y_off(l);      // [T, N, D*H]
    for (int64_t dir = 0; dir < d.D; ++dir) {
      const DT* wx = w + d.w_off(l, dir);  // [GH, in]
      const DT* wh = wx + GH * in;         // [GH, H]
      const DT* bx = w + d.b_off(l, dir);  // [GH]
      const DT* bh = bx + GH;              // [GH]
      DT* blk = rs + d.block(l, dir);
      DT* hseq = blk + d.h_off();                          // [T, N, H]
      DT* gates = d.mode <= kRnnTanh ? hseq : blk;         // [T, N, GH]
      DT* aux = d.mode <= kRnnTanh ? nullptr : blk + d.aux_off();  // lstm c / gru hn [T, N, H]
      // input projection of every step at once, seeded with the biases that add up front
      for (int64_t r = 0; r < TN; ++r) {
        DT* gr = gates + r * GH;  // [GH]
        for (int64_t j = 0; j < GH; ++j) gr[j] = bx[j] + ((d.gru() && j >= 2 * H) ? DT(0) : bh[j]);
      }
      gemm_i(false, true, TN, GH, in, DT(1), xin, wx, DT(1), gates);
      const DT* hprev = hx + (l * d.D + dir) * NH;                           // [N, H]
      const DT* cprev = d.lstm() ? cx + (l * d.D + dir) * NH : nullptr;   // [N, H]
      for (int64_t s = 0; s < T; ++s) {
        const int64_t t = dir == 0 ? s : T - 1 - s;
        DT* g = gates + t * N * GH;  // [N, GH]
        DT* ht = hseq + t * NH;      // [N, H]
        if (d.lstm()) {
          DT* ct = aux + t * NH;  // [N, H]
          gemm_i(false, true, N, GH, H, DT(1), hprev, wh, DT(1), g);
          const int nt = omp_threads(N * GH * 4);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
          for (int64_t n = 0; n < N; ++n) {
            DT* gi = g + n * GH;           // [4H]: i, f, g, o
            const DT* cp = cprev + n * H;  // [H]
            DT* cn = ct + n * H;           // [H]
            DT* hn = ht + n * H;           // [H]
            sigmoid_inplace(gi, 2 * H);
            tanh_inplace(gi + 2 * H, H);
            sigmoid_inplace(gi + 3 * H, H);
            const DT* o = gi + 3 * H;
            for (int64_t k = 0; k < H; ++k) {
              const DT c = gi[H + k] * cp[k] + gi[k] * gi[2 * H + k];
              cn[k] = c;
              hn[k] = c;
            }
            tanh_inplace(hn, H);
            for (int64_t k = 0; k < H; ++k) hn[k] *= o[k];
          }
          cprev = ct;
        } else if (d.gru()) {
          DT* hnt = aux + t * NH;  // [N, H]
          gemm_i(false, true, N, GH, H, DT(1), hprev, wh, DT(0), ws);  // ws [N, 3H]
          const int nt = omp_threads(N * GH * 4);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
          for (int64_t n = 0; n < N; ++n) {
            DT* gi = g + n * GH;         // [3H]: r, z, n
            const DT* hh = ws + n * GH;  // [3H] W_h h'
            const DT* hp = hprev + n * H;
            DT* hnn = hnt + n * H;
            DT* ho = ht + n * H;
            for (int64_t k = 0; k < 2 * H; ++k) gi[k] += hh[k];
            sigmoid_inplace(gi, 2 * H);  // r, z
            for (int64_t k = 0; k < H; ++k) {
              hnn[k] = hh[2 * H + k] + bh[2 * H + k];
              gi[2 * H + k] += gi[k] * hnn[k];
            }
            tanh_inplace(gi + 2 * H, H);  // n
            for (int64_t k = 0; k < H; ++k) {
              const DT z = gi[H + k];
              ho[k] = (DT(1) - z) * gi[2 * H + k] + z * hp[k];
            }
          }
        } else {
          gemm_i(false, true, N, H, H, DT(1), hprev, wh, DT(1), ht);
          if (d.mode == kRnnRelu) {
            for (int64_t i = 0; i < NH; ++i) ht[i] = ht[i] > DT(0) ? ht[i] : DT(0);
          } else {
            tanh_inplace(ht, NH);
          }
        }
        hprev = ht;
      }
      if (hy) copy_req(hreq, NH, hprev, hy + (l * d.D + dir) * NH);
      if (cy && d.lstm()) copy_req(creq, NH, cprev, cy + (l * d.D + dir) * NH);
      // this direction's channels of the layer output
      if (last) {
        if (yreq == OpReq::kNullOp) continue;
        const bool add = yreq == OpReq::kAddTo;
        for (int64_t r = 0; r < TN; ++r) {
          const DT* src = hseq + r * H;
          DT* dst = y + r * DH + dir * H;
          if (add) {
            for (int64_t k = 0; k < H; ++k) dst[k] += src[k];
          } else {
            std::memcpy(dst, src, sizeof(DT) * (size_t)H);
          }
        }
      } else {
        for (int64_t r = 0; r < TN; ++r) std::memcpy(ylayer + r * DH + dir * H, hseq + r * H, sizeof(DT) * (size_t)H);
      }
    }
    if (!last && d.p > 0) {
      DT* mask = rs + d.mask_off(l);  // [T, N, D*H]
      const int64_t n = TN * DH;
      if (train) {
        KILN_CHECK(rng != nullptr, "RNN: no random generator in the op context (dropout p > 0)");
        const double pkeep = 1.0 - d.p;
        const DT scale = DT(1.0 / pkeep);
        for (int64_t i = 0; i < n; ++i) {
          mask[i] = uniform01(*rng) < pkeep ? scale : DT(0);
        }
        for (int64_t i = 0; i < n; ++i) ylayer[i] *= mask[i];
      } else {
        std::fill(mask, mask + n, DT(1));
      }
    }
  }
}

/// Backward of rnn_forward from the reserve. Gradients: dx (data), dw (packed parameters), dhx,
/// dcx (initial states), each by its request. Workspace: see rnn_bwd_workspace_elems.
template <typename DT>
void rnn_backward(const RnnDims& d,
                  const DT* dy,   // [T, N, D*H]
                  const DT* dhy,  // [L*D, N, H] or null (zero)
                  const DT* dcy,  // [L*D, N, H] or null (zero)
                  const DT* x,    // [T, N, I]
                  const DT* w,    // [P]
                  const DT* hx,   // [L*D, N, H]
                  const DT* cx,   // [L*D, N, H] (lstm) or null
                  const DT* rs,   // [reserve_size]
                  DT* dx, OpReq xreq,    // [T, N, I]
                  DT* dw, OpReq wreq,    // [P]
                  DT* dhx, OpReq hreq,   // [L*D, N, H]
                  DT* dcx, OpReq creq,   // [L*D, N, H] (lstm)
                  DT* ws) {
  const int64_t T = d.T, N = d.N, H = d.H, GH = d.GH(), TN = d.TN(), DH = d.D * d.H, NH = N * H;
  const bool wgrad = wreq != OpReq::kNullOp && dw != nullptr;
  if (wgrad && wreq != OpReq::kAddTo) std::fill(dw, dw + d.param_size(), DT(0));
  // workspace
  DT* dgx = ws;                                // [T, N, GH] gradient of the x-part pre-activations
  DT* dgh = d.gru() ? dgx + TN * GH : dgx;     // [T, N, GH] gradient of the h-part (gru differs on n)
  DT* bufa = dgx + TN * GH * (d.gru() ? 2 : 1);  // [T, N, D*H]
  DT* bufb = bufa + TN * DH;                   // [T, N, D*H]
  DT* dh = bufb + TN * DH;                     // [N, H]
  DT* dc = dh + NH;                            // [N, H]
  DT* tch = dc + NH;                           // [N, H] tanh(c_t)
  const DT* dY = dy;  // gradient of the current layer's output [T, N, D*H]
  for (int64_t l = d.L - 1; l >= 0; --l) {
    const int64_t in = d.in_size(l);
    const DT* xin = l == 0 ? x : rs + d.y_off(l - 1);  // [T, N, in]
    DT* dX = nullptr;  // gradient of the layer input [T, N, in]
    bool dx_add = false;
    if (l > 0) {
      dX = dY == bufa ? bufb : bufa;
    } else if (xreq != OpReq::kNullOp && dx != nullptr) {
      dX = dx;
      dx_add = xreq == OpReq::kAddTo;
    }
    for (int64_t dir = 0; dir < d.D; ++dir) {
      const int64_t sidx = (l * d.D + dir) * NH;
      const DT* wx = w + d.w_off(l, dir);  // [GH, in]
      const DT* wh = wx + GH * in;         // [GH, H]
      const DT* blk = rs + d.block(l, dir);
      const DT* hseq = blk + d.h_off();                                       // [T, N, H]
      const DT* gates = d.mode <= kRnnTanh ? hseq : blk;                      // [T, N, GH]
      const DT* aux = d.mode <= kRnnTanh ? nullptr : blk + d.aux_off();       // [T, N, H]
      const DT* h0 = hx + sidx;                                               // [N, H]
      const DT* c0 = d.lstm() ? cx + sidx : nullptr;                          // [N, H]
      if (dhy) std::memcpy(dh, dhy + sidx, sizeof(DT) * (size_t)NH);
      else std::fill(dh, dh + NH, DT(0));
      if (d.lstm()) {
        if (dcy) std::memcpy(dc, dcy + sidx, sizeof(DT) * (size_t)NH);
        else std::fill(dc, dc + NH, DT(0));
      }
      for (int64_t s = T - 1; s >= 0; --s) {
        const int64_t t = dir == 0 ? s : T - 1 - s;
        const int64_t tp = dir == 0 ? t - 1 : t + 1;  // the step before in processing order
        const DT* hp = s == 0 ? h0 : hseq + tp * NH;  // [N, H]
        const DT* g = gates + t * N * GH;             // [N, GH]
        DT* dgxt = dgx + t * N * GH;                  // [N, GH]
        DT* dght = dgh + t * N * GH;                  // [N, GH]
        const DT* dyt = dY + t * N * DH + dir * H;    // [N, H] with row stride D*H
        const int nt = omp_threads(N * GH * 4);
        if (d.lstm()) {
          const DT* ct = aux + t * NH;                      // [N, H]
          const DT* cp = s == 0 ? c0 : aux + tp * NH;       // [N, H]
          std::memcpy(tch, ct, sizeof(DT) * (size_t)NH);
          tanh_inplace(tch, NH);  // tanh(c_t) [N, H]
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
          for (int64_t n = 0; n < N; ++n) {
            const DT* gi = g + n * GH;
            DT* dg = dgxt + n * GH;
            DT* dhn = dh + n * H;
            DT* dcn = dc + n * H;
            for (int64_t k = 0; k < H; ++k) {
              const DT i = gi[k], f = gi[H + k], gg = gi[2 * H + k], o = gi[3 * H + k];
              const DT tc = tch[n * H + k];
              const DT dhv = dhn[k] + dyt[n * DH + k];
              const DT dcv = dcn[k] + dhv * o * (DT(1) - tc * tc);
              dg[k] = dcv * gg * i * (DT(1) - i);
              dg[H + k] = dcv * cp[n * H + k] * f * (DT(1) - f);
              dg[2 * H + k] = dcv * i * (DT(1) - gg * gg);
              dg[3 * H + k] = dhv * tc * o * (DT(1) - o);
              dcn[k] = dcv * f;
            }
          }
          gemm_i(false, false, N, H, GH, DT(1), dgxt, wh, DT(0), dh);
        } else if (d.gru()) {
          const DT* hnt = aux + t * NH;  // [N, H]
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
          for (int64_t n = 0; n < N; ++n) {
            const DT* gi = g + n * GH;
            DT* dgxn = dgxt + n * GH;
            DT* dghn = dght + n * GH;
            DT* dhn = dh + n * H;
            for (int64_t k = 0; k < H; ++k) {
              const DT r = gi[k], z = gi[H + k], nn = gi[2 * H + k];
              const DT dhv = dhn[k] + dyt[n * DH + k];
              const DT dnp = dhv * (DT(1) - z) * (DT(1) - nn * nn);
              const DT dzp = dhv * (hp[n * H + k] - nn) * z * (DT(1) - z);
              const DT drp = dnp * hnt[n * H + k] * r * (DT(1) - r);
              dgxn[k] = drp;
              dgxn[H + k] = dzp;
              dgxn[2 * H + k] = dnp;
              dghn[k] = drp;
              dghn[H + k] = dzp;
              dghn[2 * H + k] = dnp * r;
              dhn[k] = dhv * z;
            }
          }
          gemm_i(false, false, N, H, GH, DT(1), dght, wh, DT(1), dh);
        } else {
          const DT* ht = hseq + t * NH;  // [N, H]
          const bool relu = d.mode == kRnnRelu;
          for (int64_t n = 0; n < N; ++n)
            for (int64_t k = 0; k < H; ++k) {
              const DT hv = ht[n * H + k];
              const DT dhv = dh[n * H + k] + dyt[n * DH + k];
              dgxt[n * H + k] = relu ? (hv > DT(0) ? dhv : DT(0)) : dhv * (DT(1) - hv * hv);
            }
          gemm_i(false, false, N, H, GH, DT(1), dgxt, wh, DT(0), dh);
        }
      }
      if (dhx) copy_req(hreq, NH, dh, dhx + sidx);
      if (dcx && d.lstm()) copy_req(creq, NH, dc, dcx + sidx);
      if (wgrad && TN > 0) {
        DT* dwx = dw + d.w_off(l, dir);  // [GH, in]
        DT* dwh = dwx + GH * in;         // [GH, H]
        DT* dbx = dw + d.b_off(l, dir);  // [GH]
        DT* dbh = dbx + GH;              // [GH]
        gemm_i(true, false, GH, in, TN, DT(1), dgx, xin, DT(1), dwx);
        // dW_h = sum_t dgh[t]^T h[t-1]: the steps whose previous state is in hseq at once
        if (dir == 0) {
          gemm_i(true, false, GH, H, (T - 1) * N, DT(1), dgh + N * GH, hseq, DT(1), dwh);
          gemm_i(true, false, GH, H, N, DT(1), dgh, hx + sidx, DT(1), dwh);
        } else {
          gemm_i(true, false, GH, H, (T - 1) * N, DT(1), dgh, hseq + NH, DT(1), dwh);
          gemm_i(true, false, GH, H, N, DT(1), dgh + (T - 1) * N * GH, hx + sidx, DT(1), dwh);
        }
        for (int64_t r = 0; r < TN; ++r) {
          const DT* gx = dgx + r * GH;
          const DT* gh = dgh + r * GH;
          for (int64_t j = 0; j < GH; ++j) {
            dbx[j] += gx[j];
            dbh[j] += gh[j];
          }
        }
      }
      if (dX) gemm_i(false, false, TN, in, GH, DT(1), dgx, wx, (dir == 0 && !dx_add) ? DT(0) : DT(1), dX);
    }
    if (l > 0) {
      if (d.p > 0) {
        const DT* mask = rs + d.mask_off(l - 1);  // [T, N, D*H]
        for (int64_t i = 0; i < TN * DH; ++i) dX[i] *= mask[i];
      }
      dY = dX;
    }
  }
}

size_t rnn_bwd_workspace_elems(const RnnDims& d) {
  return (size_t)(d.TN() * d.GH() * (d.gru() ? 2 : 1) + 2 * d.TN() * d.D * d.H + 3 * d.N * d.H);
}

void check_blob(const TBlob& b, const Shape& s, const char* what) {
  KILN_CHECK(b.shape == s, std::string("RNN: ") + what + " must have shape " + s.str() + ", got " + b.shape.str());
}

/// Checks every input against the shapes the data implies.
void check_inputs(const RnnDims& d, const TBlob& params, const TBlob& state, const TBlob* cell) {
  check_blob(params, Shape{d.param_size()}, "parameters");
  const Shape st{d.L * d.D, d.N, d.H};
  check_blob(state, st, "state");
  if (cell) check_blob(*cell, st, "state_cell");
}

void rnn_forward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: data, parameters, state[, state_cell]; out: output[, state_output[, statecell_output]], reserve
  const RnnDims d = rnn_dims(a, in[0].shape);
  check_inputs(d, in[1], in[2], d.lstm() ? &in[3] : nullptr);
  const bool so = a.b("state_outputs");
  const int nvis = so ? (d.lstm() ? 3 : 2) : 1;
  const TBlob& rsv = out[nvis];
  KILN_CHECK((rsv.ptr != nullptr || d.reserve_size() == 0) && rsv.size() == d.reserve_size(),
             "RNN: the reserve output has no memory or the wrong size (the op declares outputs_always_written)");
  KILN_CHECK(!d.gru() || ctx.workspace_bytes >= (size_t)(d.N * d.GH()) * dtype_size(in[0].dtype),
             "RNN: workspace too small");
  float_switch(in[0].dtype, [&](auto zero) {
    using DT = decltype(zero);
    rnn_forward<DT>(d, ctx.is_train, ctx.rng, in[0].dptr<DT>(), in[1].dptr<DT>(), in[2].dptr<DT>(),
                    d.lstm() ? in[3].dptr<DT>() : nullptr, out[0].dptr<DT>(), req[0],
                    so ? out[1].dptr<DT>() : nullptr, so ? req[1] : OpReq::kNullOp,
                    so && d.lstm() ? out[2].dptr<DT>() : nullptr, so && d.lstm() ? req[2] : OpReq::kNullOp,
                    rsv.dptr<DT>(), static_cast<DT*>(ctx.workspace));
  });
}

void rnn_backward_cpu(const OpCtx& ctx, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: ograd[, ograd state_output[, ograd statecell_output]], data, parameters, state[, state_cell], reserve
  // out: data_grad, parameters_grad, state_grad[, state_cell_grad]
  const RnnDims d0 = rnn_dims(a);
  const bool so = a.b("state_outputs");
  const int nog = so ? (d0.lstm() ? 3 : 2) : 1;
  const RnnDims d = rnn_dims(a, in[nog].shape);
  const TBlob& data = in[nog];
  check_inputs(d, in[nog + 1], in[nog + 2], d.lstm() ? &in[nog + 3] : nullptr);
  const TBlob& rsv = in[nog + (d.lstm() ? 4 : 3)];
  check_blob(rsv, Shape{d.reserve_size()}, "reserve");
  check_blob(in[0], Shape{d.T, d.N, d.D * d.H}, "output gradient");
  KILN_CHECK(ctx.workspace_bytes >= rnn_bwd_workspace_elems(d) * dtype_size(data.dtype), "RNN: workspace too small");
  float_switch(data.dtype, [&](auto zero) {
    using DT = decltype(zero);
    rnn_backward<DT>(d, in[0].dptr<DT>(), so ? in[1].dptr<DT>() : nullptr,
                     so && d.lstm() ? in[2].dptr<DT>() : nullptr, data.dptr<DT>(), in[nog + 1].dptr<DT>(),
                     in[nog + 2].dptr<DT>(), d.lstm() ? in[nog + 3].dptr<DT>() : nullptr, rsv.dptr<DT>(),
                     out[0].dptr<DT>(), req[0], out[1].dptr<DT>(), req[1], out[2].dptr<DT>(), req[2],
                     d.lstm() ? out[3].dptr<DT>() : nullptr, d.lstm() ? req[3] : OpReq::kNullOp,
                     static_cast<DT*>(ctx.workspace));
  });
}

std::vector<std::string> rnn_input_names(const Attrs& a) {
  std::vector<std::string> v{"data", "parameters", "state"};
  if (a.s("mode") == "lstm") v.push_back("state_cell");
  if (a.b("use_sequence_length")) v.push_back("sequence_length");
  return v;
}

}  // namespace

void register_rnn(OpRegistry& r) {
  OpDef op;
  op.name = "RNN";
  op.description =
      "Applies a multi-layer recurrent network (vanilla RNN with relu or tanh, LSTM or GRU, optionally "
      "bidirectional) to data of shape (seq_length, batch, input_size), with all weights and biases packed in one "
      "`parameters` vector (MXNet's layout: every layer's and direction's i2h and h2h weights, then their biases). "
      "Dropout p is applied to the output of each layer but the last during training. With state_outputs the "
      "final hidden (and LSTM cell) states are outputs too.";
  op.params = {
      param_range("state_size", ParamType::kInt, "", 1, 2147483647, "size of the state for each layer"),
      param_range("num_layers", ParamType::kInt, "", 1, 2147483647, "number of stacked layers"),
      param("bidirectional", ParamType::kBool, "False", "whether to use bidirectional recurrent layers"),
      param_enum("mode", "", {"gru", "lstm", "rnn_relu", "rnn_tanh"}, "the type of RNN to compute"),
      param_range("p", ParamType::kFloat, "0", 0.0, 1.0,
                  "drop rate of the dropout on the outputs of each RNN layer, except the last layer."),
      param("state_outputs", ParamType::kBool, "False", "Whether to have the states as symbol outputs."),
      param("projection_size", ParamType::kInt, "None", "size of project size (cuDNN only: rejected on the CPU)"),
      param("lstm_state_clip_min", ParamType::kFloat, "None",
            "Minimum clip value of LSTM states. This option must be used together with lstm_state_clip_max. "
            "(cuDNN only: rejected on the CPU)"),
      param("lstm_state_clip_max", ParamType::kFloat, "None",
            "Maximum clip value of LSTM states. This option must be used together with lstm_state_clip_min. "
            "(cuDNN only: rejected on the CPU)"),
      param("lstm_state_clip_nan", ParamType::kBool, "False",
            "Whether to stop NaN from propagating in state by clipping it to min/max. If clipping range is not "
            "specified, this option is ignored."),
      param("use_sequence_length", ParamType::kBool, "False",
            "If set to true, this layer takes in an extra input parameter `sequence_length` to specify variable "
            "length sequence (cuDNN only: rejected on the CPU)"),
  };
  op.input_names_fn = rnn_input_names;
  op.output_names_fn = [](const Attrs& a) {
    std::vector<std::string> v{"output"};
    if (a.b("state_outputs")) {
      v.push_back("state_output");
      if (a.s("mode") == "lstm") v.push_back("statecell_output");
    }
    v.push_back("reserve");
    return v;
  };
  op.num_visible_outputs_fn = [](const Attrs& a) {
    return a.b("state_outputs") ? (a.s("mode") == "lstm" ? 3 : 2) : 1;
  };
  op.infer_shape = rnn_infer_shape;
  op.cpu = rnn_forward_cpu;
  op.needs_random = true;
  op.outputs_always_written = true;  // the reserve is written (and read by the backward) whatever the request
  op.workspace = [](const Attrs& a, const std::vector<Shape>& in, const std::vector<Shape>&) -> size_t {
    if (a.s("mode") != "gru" || in.empty() || !in[0].known() || in[0].ndim() != 3) return 0;
    return (size_t)(in[0][1] * 3 * a.i("state_size")) * sizeof(double);
  };
  op.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    const bool lstm = n->attrs.s("mode") == "lstm";
    std::vector<NodeEntry> ins{og[0]};
    int nvis = 1;
    if (n->attrs.b("state_outputs")) {
      ins.push_back(og[1]);
      nvis = 2;
      if (lstm) {
        ins.push_back(og[2]);
        nvis = 3;
      }
    }
    for (const NodeEntry& e : n->inputs) ins.push_back(e);
    ins.push_back(NodeEntry{n, (uint32_t)nvis});  // reserve
    std::vector<NodeEntry> g = make_backward("_backward_RNN", n, ins);
    g.resize(n->inputs.size(), no_gradient());  // sequence_length (rejected) would get none
    return g;
  };
  const OpDef& fwd = r.add(op);

  OpDef bw = backward_def("_backward_RNN", fwd);
  bw.input_names_fn = [](const Attrs& a) {
    std::vector<std::string> v{"ograd"};
    const bool lstm = a.s("mode") == "lstm";
    if (a.b("state_outputs")) {
      v.push_back("ograd_state_output");
      if (lstm) v.push_back("ograd_statecell_output");
    }
    for (const std::string& s : rnn_input_names(a)) v.push_back(s);
    v.push_back("reserve");
    return v;
  };
  bw.output_names_fn = [](const Attrs& a) {
    std::vector<std::string> v{"data_grad", "parameters_grad", "state_grad"};
    if (a.s("mode") == "lstm") v.push_back("state_cell_grad");
    return v;
  };
  bw.cpu = rnn_backward_cpu;
  bw.workspace = [](const Attrs& a, const std::vector<Shape>& in, const std::vector<Shape>&) -> size_t {
    if (in.empty() || !in[0].known() || in[0].ndim() != 3) return 0;
    RnnDims d = rnn_dims(a);
    d.T = in[0][0];
    d.N = in[0][1];
    return rnn_bwd_workspace_elems(d) * sizeof(double);
  };
  r.add(bw);
}

}  // namespace seq
}  // namespace kiln
