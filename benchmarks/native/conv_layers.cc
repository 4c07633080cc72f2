// Per-pass times of Kiln's CPU convolution kernels on ResNet-18's 3x3 layers (CIFAR size): im2col +
// GEMM, Winograd F(2x2, 3x3) and F(4x4, 3x3), forward / data gradient / weight gradient, best of
// REPS calls, plus each F(4x4) pass's largest error against im2col relative to the largest im2col
// value. A development harness for the kernels' internals (JMH's OpBench and ResNet18Bench are the
// measurements against the peers). Build and run after `mvn install` (which fills target/native
// and the JavaCPP cache):
//   B=$(ls -d ~/.javacpp/cache/openblas-*-linux-x86_64.jar/org/bytedeco/openblas/linux-x86_64)
//   S=src/main/cpp; g++ -O2 -std=c++17 -march=x86-64-v3 -fopenmp -I$S/include -I$S/ops/conv
//     benchmarks/native/conv_layers.cc target/native/libkilncore-cuda0.a -L$B
//     -l:libopenblas_nolapack.so.0 -Wl,-rpath,$B -o /tmp/conv_layers        (one command line)
//   OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_CORETYPE=COOPERLAKE /tmp/conv_layers [REPS]
// (env: T threads, NB batch, ONLY channels; without OPENBLAS_NUM_THREADS OpenBLAS keeps the
// machine's thread count and the im2col weight gradients of > 64 filters run on all cores).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "conv_winograd.h"

using namespace kiln;
using namespace kiln::conv;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

/// The best of `reps` calls of f, in ms.
template <class F>
double best(F f, int reps) {
  double b = 1e9;
  for (int i = 0; i < reps; ++i) {
    const double t = now();
    f();
    b = std::min(b, now() - t);
  }
  return b * 1e3;
}

/// max |a - b| / max |a|.
double relerr(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0, e = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, (double)std::fabs(a[i]));
    e = std::max(e, (double)std::fabs(a[i] - b[i]));
  }
  return e / m;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 5;
  set_num_threads(getenv("T") ? atoi(getenv("T")) : 1);
  const char* only = getenv("ONLY");
  const int64_t N = getenv("NB") ? atoi(getenv("NB")) : 32;
  struct Layer {
    int64_t C, H, p;
  } layers[] = {{64, 32, 1}, {128, 16, 1}, {256, 8, 1}, {512, 4, 1}};
  const size_t wsb = (size_t)1 << 29;
  float* ws = static_cast<float*>(aligned_alloc(64, wsb));
  OpCtx ctx;
  ctx.workspace = ws;
  ctx.workspace_bytes = wsb;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> U(-1, 1);
  for (const Layer& l : layers) {
    if (only && atoi(only) != l.C) continue;
    Geo g;
    g.N = N;
    g.C = g.O = l.C;
    g.D[1] = g.D[2] = l.H;
    g.k[1] = g.k[2] = 3;
    g.p[1] = g.p[2] = l.p;
    g.Q[1] = g.Q[2] = l.H + 2 * l.p - 2;
    const size_t xs = g.N * g.C * g.D[1] * g.D[2], ys = g.N * g.O * g.Q[1] * g.Q[2], wsz = g.O * g.C * 9;
    std::vector<float> x(xs), w(wsz), b(g.O), dy(ys), y0(ys), y1(ys), dx0(xs), dx1(xs), dw0(wsz), dw1(wsz);
    for (auto& v : x) v = U(rng);
    for (auto& v : w) v = U(rng) * 0.1f;
    for (auto& v : b) v = U(rng);
    for (auto& v : dy) v = U(rng);
    const OpReq wr = OpReq::kWriteTo;
    set_conv_algo(kConvIm2col);  // conv_forward & co. below are the im2col kernels
    const double fi = best([&] { conv_forward<float>(ctx, g, x.data(), w.data(), b.data(), y0.data(), wr); }, reps);
    const double di = best([&] { conv_backward_data<float>(ctx, g, dy.data(), w.data(), dx0.data(), wr); }, reps);
    const double wi = best([&] { conv_backward_weight<float>(ctx, g, dy.data(), x.data(), dw0.data(), wr); }, reps);
    std::vector<float> t(ys);
    const double f2 = best([&] { conv_winograd_forward(ctx, g, x.data(), w.data(), b.data(), t.data(), wr); }, reps);
    std::vector<float> tx(xs), tw(wsz);
    const double d2 = best([&] { conv_winograd_backward_data(ctx, g, dy.data(), w.data(), tx.data(), wr); }, reps);
    const double w2 = best([&] { conv_winograd_backward_weight(ctx, g, dy.data(), x.data(), tw.data(), wr); }, reps);
    const double f4 = best([&] { conv_winograd4_forward(ctx, g, x.data(), w.data(), b.data(), y1.data(), wr); }, reps);
    const double d4 = best([&] { conv_winograd4_backward_data(ctx, g, dy.data(), w.data(), dx1.data(), wr); }, reps);
    const double w4 = best([&] { conv_winograd4_backward_weight(ctx, g, dy.data(), x.data(), dw1.data(), wr); }, reps);
    std::printf("%ldx%ld x %ld, batch %ld: F(4x4) error fwd %.1e data %.1e weight %.1e\n", g.Q[1], g.Q[2], g.C, g.N,
                relerr(y0, y1), relerr(dx0, dx1), relerr(dw0, dw1));
    std::printf("  ms im2col / F(2x2) / F(4x4): forward %.1f / %.1f / %.1f, data %.1f / %.1f / %.1f, weight %.1f / %.1f / %.1f\n",
                fi, f2, f4, di, d2, d4, wi, w2, w4);
  }
  free(ws);
}
