// Native test driver for the sanitizer build (src/test/cpp/Makefile, mvn -Psanitize test).
// Exercises the core only through its C API (kiln/c_api.h): registry, NDArray handles, imperative
// op calls, shape inference, binding / forward / backward / fused SGD updates of an MLP and of a
// small CNN (Convolution, BatchNorm, Pooling, Dropout), the executor monitor, threads, and a
// batch of bad inputs that must come back as -1 with a message (never a crash). At the end every
// handle must be freed and every native byte returned. Built with ASan + UBSan, run with LSan:
// any memory error, undefined behaviour or leak fails the run (non-zero exit).
// (The .params file format is read and written in Java, dev.kiln.ndarray.ParamsFile; its
// corrupt-input tests are Java tests.)
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kiln/c_api.h"

namespace {

int g_checks = 0, g_failures = 0;

void fail(const std::string& what) {
  ++g_failures;
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

#define CHECK(cond, what)      \
  do {                         \
    ++g_checks;                \
    if (!(cond)) fail(what);   \
  } while (0)

// A call that must succeed.
#define OK(call)                                                                          \
  do {                                                                                    \
    ++g_checks;                                                                           \
    if ((call) != 0) fail(std::string(#call) + " failed: " + kiln_last_error());          \
  } while (0)

// A call that must fail with a message containing `needle` (empty: any message).
void expect_error(int rc, const char* call, const std::string& needle) {
  ++g_checks;
  if (rc != -1) {
    fail(std::string(call) + " returned " + std::to_string(rc) + ", expected -1");
    return;
  }
  std::string msg = kiln_last_error();
  if (msg.empty() || (!needle.empty() && msg.find(needle) == std::string::npos))
    fail(std::string(call) + ": message '" + msg + "' does not contain '" + needle + "'");
}
#define BAD(call, needle) expect_error((call), #call, needle)

int64_t make(std::vector<int64_t> shape, int dtype = 0) {
  int64_t h = 0;
  OK(kiln_nd_create(1, 0, dtype, (int)shape.size(), shape.data(), &h));
  return h;
}

int64_t numel(int64_t h) {
  int64_t info[4 + 32];
  OK(kiln_nd_info(h, info, 36));
  int64_t n = 1;
  for (int i = 0; i < info[3]; ++i) n *= info[4 + i];
  return n;
}

std::vector<float> read(int64_t h) {
  std::vector<float> v(numel(h));
  OK(kiln_nd_read(h, v.data(), (int64_t)(v.size() * sizeof(float))));
  return v;
}

void write(int64_t h, const std::vector<float>& v) { OK(kiln_nd_write(h, v.data(), (int64_t)(v.size() * sizeof(float)))); }

// ---- graphs --------------------------------------------------------------------------------
// MLP: data -> fc1(32) -> relu -> dropout(0.3) -> fc2(10) -> SoftmaxOutput.
// Arguments (list_arguments order): data, fc1_weight, fc1_bias, fc2_weight, fc2_bias, softmax_label.
const char* kMlp = R"J({"nodes":[
 {"op":"null","name":"data","inputs":[]},
 {"op":"null","name":"fc1_weight","inputs":[]},
 {"op":"null","name":"fc1_bias","inputs":[]},
 {"op":"FullyConnected","name":"fc1","attrs":{"num_hidden":"32"},"inputs":[[0,0,0],[1,0,0],[2,0,0]]},
 {"op":"Activation","name":"relu1","attrs":{"act_type":"relu"},"inputs":[[3,0,0]]},
 {"op":"Dropout","name":"drop1","attrs":{"p":"0.3"},"inputs":[[4,0,0]]},
 {"op":"null","name":"fc2_weight","inputs":[]},
 {"op":"null","name":"fc2_bias","inputs":[]},
 {"op":"FullyConnected","name":"fc2","attrs":{"num_hidden":"10"},"inputs":[[5,0,0],[6,0,0],[7,0,0]]},
 {"op":"null","name":"softmax_label","inputs":[]},
 {"op":"SoftmaxOutput","name":"softmax","inputs":[[8,0,0],[9,0,0]]}],
 "arg_nodes":[0,1,2,6,7,9],"node_row_ptr":[0,1,2,3,4,5,7,8,9,10,11,12],"heads":[[10,0,0]],
 "attrs":{"mxnet_version":["int",10901]}})J";

// CNN: data[N,1,8,8] -> conv(4, 3x3, pad 1) -> BatchNorm -> relu -> maxpool 2x2 -> flatten -> fc(10) -> SoftmaxOutput.
// Arguments: data, conv_weight, conv_bias, bn_gamma, bn_beta, fc_weight, fc_bias, softmax_label.
// Aux: bn_moving_mean, bn_moving_var.
const char* kCnn = R"J({"nodes":[
 {"op":"null","name":"data","inputs":[]},
 {"op":"null","name":"conv_weight","inputs":[]},
 {"op":"null","name":"conv_bias","inputs":[]},
 {"op":"Convolution","name":"conv","attrs":{"kernel":"(3, 3)","pad":"(1, 1)","num_filter":"4"},"inputs":[[0,0,0],[1,0,0],[2,0,0]]},
 {"op":"null","name":"bn_gamma","inputs":[]},
 {"op":"null","name":"bn_beta","inputs":[]},
 {"op":"null","name":"bn_moving_mean","inputs":[]},
 {"op":"null","name":"bn_moving_var","inputs":[]},
 {"op":"BatchNorm","name":"bn","attrs":{"fix_gamma":"False"},"inputs":[[3,0,0],[4,0,0],[5,0,0],[6,0,0],[7,0,0]]},
 {"op":"Activation","name":"relu","attrs":{"act_type":"relu"},"inputs":[[8,0,0]]},
 {"op":"Pooling","name":"pool","attrs":{"kernel":"(2, 2)","stride":"(2, 2)","pool_type":"max"},"inputs":[[9,0,0]]},
 {"op":"Flatten","name":"flat","inputs":[[10,0,0]]},
 {"op":"null","name":"fc_weight","inputs":[]},
 {"op":"null","name":"fc_bias","inputs":[]},
 {"op":"FullyConnected","name":"fc","attrs":{"num_hidden":"10"},"inputs":[[11,0,0],[12,0,0],[13,0,0]]},
 {"op":"null","name":"softmax_label","inputs":[]},
 {"op":"SoftmaxOutput","name":"softmax","inputs":[[14,0,0],[15,0,0]]}],
 "arg_nodes":[0,1,2,4,5,6,7,12,13,15],"heads":[[16,0,0]]})J";

// Channel-last pooling and rrelu: data[N,64] -> fc(96) -> LeakyReLU(rrelu; its mask a second output
// the backward reads) -> reshape (N,4,8,3) -> avg pool NHWC 3x3 s2 p1 -> reshape (N,8,3) -> max pool
// NWC 2 s2 -> flatten -> fc(10) -> SoftmaxOutput (strided planes, random slopes, forward and backward).
// Arguments: data, fc1_weight, fc1_bias, fc2_weight, fc2_bias, softmax_label.
const char* kPoolChannelLast = R"J({"nodes":[
 {"op":"null","name":"data","inputs":[]},
 {"op":"null","name":"fc1_weight","inputs":[]},
 {"op":"null","name":"fc1_bias","inputs":[]},
 {"op":"FullyConnected","name":"fc1","attrs":{"num_hidden":"96"},"inputs":[[0,0,0],[1,0,0],[2,0,0]]},
 {"op":"LeakyReLU","name":"rrelu","attrs":{"act_type":"rrelu"},"inputs":[[3,0,0]]},
 {"op":"Reshape","name":"r1","attrs":{"shape":"(0, 4, 8, 3)"},"inputs":[[4,0,0]]},
 {"op":"Pooling","name":"p1","attrs":{"kernel":"(3, 3)","stride":"(2, 2)","pad":"(1, 1)","pool_type":"avg","layout":"NHWC"},"inputs":[[5,0,0]]},
 {"op":"Reshape","name":"r2","attrs":{"shape":"(0, 8, 3)"},"inputs":[[6,0,0]]},
 {"op":"Pooling","name":"p2","attrs":{"kernel":"(2,)","stride":"(2,)","pool_type":"max","layout":"NWC"},"inputs":[[7,0,0]]},
 {"op":"Flatten","name":"flat","inputs":[[8,0,0]]},
 {"op":"null","name":"fc2_weight","inputs":[]},
 {"op":"null","name":"fc2_bias","inputs":[]},
 {"op":"FullyConnected","name":"fc2","attrs":{"num_hidden":"10"},"inputs":[[9,0,0],[10,0,0],[11,0,0]]},
 {"op":"null","name":"softmax_label","inputs":[]},
 {"op":"SoftmaxOutput","name":"softmax","inputs":[[12,0,0],[13,0,0]]}],
 "arg_nodes":[0,1,2,10,11,13],"heads":[[14,0,0]]})J";

// One 3x3 convolution with 16 input and 32 output channels (the Winograd kernels' shapes).
const char* kConv16 = R"J({"nodes":[
 {"op":"null","name":"data","inputs":[]},
 {"op":"null","name":"conv_weight","inputs":[]},
 {"op":"null","name":"conv_bias","inputs":[]},
 {"op":"Convolution","name":"conv","attrs":{"kernel":"(3, 3)","pad":"(1, 1)","num_filter":"32"},"inputs":[[0,0,0],[1,0,0],[2,0,0]]}],
 "arg_nodes":[0,1,2],"heads":[[3,0,0]]})J";

struct Net {
  std::vector<int64_t> args, grads, aux;
  std::vector<int> reqs;
  int64_t exec = 0;
  int64_t sgd = 0;
  void free_all() {
    if (sgd) OK(kiln_fused_free(sgd));
    if (exec) OK(kiln_exec_free(exec));
    for (auto h : args) OK(kiln_nd_free(h));
    for (auto h : grads) if (h) OK(kiln_nd_free(h));
    for (auto h : aux) OK(kiln_nd_free(h));
    args.clear(); grads.clear(); aux.clear();
    exec = sgd = 0;
  }
};

// Binds `json` with the given argument / aux shapes; arguments 0 (data) and last (label) get no
// gradient. Parameters are seeded uniform(-0.3, 0.3), BatchNorm variance 1.
Net bind(const char* json, const std::vector<std::vector<int64_t>>& arg_shapes,
         const std::vector<std::vector<int64_t>>& aux_shapes, uint64_t seed) {
  Net n;
  for (size_t i = 0; i < arg_shapes.size(); ++i) {
    int64_t a = make(arg_shapes[i]);
    bool param = i != 0 && i + 1 != arg_shapes.size();
    if (param) OK(kiln_nd_random(a, 0, -0.3, 0.3, (int64_t)(seed + i)));
    n.args.push_back(a);
    n.grads.push_back(param ? make(arg_shapes[i]) : 0);
    n.reqs.push_back(param ? 1 : 0);
  }
  for (size_t i = 0; i < aux_shapes.size(); ++i) {
    int64_t x = make(aux_shapes[i]);
    OK(kiln_nd_fill(x, i == 1 ? 1.0 : 0.0));
    n.aux.push_back(x);
  }
  std::string opts = "{\"seed\":" + std::to_string(seed) + "}";
  OK(kiln_exec_bind(json, 1, 0, (int)n.args.size(), n.args.data(), n.grads.data(), n.reqs.data(), (int)n.aux.size(),
                    n.aux.data(), opts.c_str(), &n.exec));
  // one fused plan: sgd_update for every parameter
  OK(kiln_fused_create(&n.sgd));
  for (size_t i = 0; i < n.args.size(); ++i) {
    if (!n.reqs[i]) continue;
    int64_t in[2] = {n.args[i], n.grads[i]};
    int idx = -1;
    OK(kiln_fused_add(n.sgd, "sgd_update", "{\"wd\":\"0.0001\"}", "[\"lr\"]", 2, in, 1, &n.args[i], &idx));
  }
  return n;
}

// Cross-entropy of the softmax output against integer labels.
double loss_of(int64_t exec, const std::vector<float>& labels) {
  int64_t outs[4];
  int n = 0;
  OK(kiln_exec_outputs(exec, 4, outs, &n));
  CHECK(n == 1, "one output");
  std::vector<float> p = read(outs[0]);
  OK(kiln_nd_free(outs[0]));
  size_t k = p.size() / labels.size();
  double l = 0;
  for (size_t i = 0; i < labels.size(); ++i) l -= std::log(std::max(1e-12f, p[i * k + (size_t)labels[i]]));
  return l / labels.size();
}

// Trains `steps` SGD steps on a fixed synthetic batch whose label is a function of the input;
// returns {first loss, last loss}.
std::pair<double, double> train(Net& n, int64_t batch, int64_t feat, int steps, uint64_t seed) {
  std::vector<float> x(batch * feat), y(batch);
  uint64_t s = seed;
  for (auto& v : x) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; v = (float)((s >> 40) % 1000) / 1000.0f; }
  for (int64_t i = 0; i < batch; ++i) {
    float acc = 0;
    for (int64_t j = 0; j < feat; ++j) acc += x[i * feat + j] * (j % 3 == 0 ? 1.f : -0.5f);
    y[i] = (float)((((int)std::floor(acc * 3)) % 10 + 10) % 10);
  }
  write(n.args.front(), x);
  write(n.args.back(), y);
  double first = 0, last = 0;
  double lr = 0.2;
  for (int t = 0; t < steps; ++t) {
    OK(kiln_exec_forward(n.exec, 1));
    OK(kiln_exec_backward(n.exec, 0, nullptr));
    OK(kiln_fused_run(n.sgd, (int)(n.args.size() - 2), std::vector<double>(n.args.size() - 2, lr).data()));
    OK(kiln_exec_forward(n.exec, 0));
    double l = loss_of(n.exec, y);
    CHECK(std::isfinite(l), "finite loss");
    if (t == 0) first = l;
    last = l;
  }
  return {first, last};
}

void test_runtime() {
  OK(kiln_init());
  OK(kiln_registry_selftest());
  OK(kiln_op_list());
  CHECK(std::string(kiln_last_string()).find("FullyConnected") != std::string::npos, "op list names FullyConnected");
  OK(kiln_op_info("Convolution", "{}"));
  OK(kiln_op_info("Concat", "{\"num_args\":\"3\"}"));
  OK(kiln_simd_isa());
  OK(kiln_blas_config());
  int threads = 0;
  OK(kiln_get_num_threads(&threads));
  CHECK(threads >= 1, "threads >= 1");
  int algo = -1;
  OK(kiln_get_conv_algo(&algo));
  int cuda = -1;
  OK(kiln_cuda_device_count(&cuda));
  CHECK(cuda == 0, "no CUDA in this build");
  OK(kiln_cuda_describe());
  int tf32 = -1;
  OK(kiln_cuda_tf32(&tf32));
  CHECK(tf32 == 0, "TF32 off by default");
  OK(kiln_cuda_set_tf32(1));
  OK(kiln_cuda_tf32(&tf32));
  CHECK(tf32 == 1, "TF32 switched on");
  OK(kiln_cuda_set_tf32(0));
  BAD(kiln_cuda_tf32(nullptr), "null output pointer");
  int64_t cache[4] = {0, 0, 0, 0};
  BAD(kiln_cuda_cache_stats(0, cache), "no CUDA support");
  BAD(kiln_cuda_cache_stats(0, nullptr), "null output pointer");
  BAD(kiln_cuda_empty_cache(0), "no CUDA support");
  BAD(kiln_cuda_empty_cache(-1), "no CUDA support");
  // NCCL: CPU arrays are declined (done = 0, with the reason), bad arguments fail
  OK(kiln_nccl_describe());
  int64_t a = make({2, 3}), b = make({2, 3});
  int64_t parts[4] = {a, b, b, a};
  int64_t outs[2] = {a, b};
  int roots[2] = {1, 0}, bad_roots[2] = {0, 2};
  int done = -1;
  OK(kiln_nccl_reduce_sum(1, 2, parts, outs, &done));
  CHECK(done == 0 && std::string(kiln_last_string()).find("GPU") != std::string::npos, "NCCL declines CPU arrays");
  OK(kiln_nccl_reduce_sum(2, 2, parts, outs, &done));
  CHECK(done == 0, "NCCL declines a batch of CPU arrays");
  OK(kiln_nccl_broadcast(2, 2, parts, roots, &done));
  CHECK(done == 0, "NCCL broadcast declines CPU arrays");
  BAD(kiln_nccl_broadcast(1, 2, parts, bad_roots + 1, &done), "root");
  BAD(kiln_nccl_broadcast(2, 2, parts, bad_roots, &done), "collective 1");
  BAD(kiln_nccl_broadcast(1, 2, parts, nullptr, &done), "null roots");
  BAD(kiln_nccl_reduce_sum(0, 2, parts, outs, &done), "at least one");
  BAD(kiln_nccl_reduce_sum(1, 0, parts, outs, &done), "at least one");
  BAD(kiln_nccl_reduce_sum(1, 2, nullptr, outs, &done), "at least one");
  BAD(kiln_nccl_reduce_sum(1 << 20, 1 << 12, parts, outs, &done), "too many");
  BAD(kiln_nccl_reduce_sum(1, 2, parts, outs, nullptr), "null");
  OK(kiln_nd_free(a));
  OK(kiln_nd_free(b));
}

void test_ndarray() {
  int64_t a = make({2, 3});
  write(a, {1, 2, 3, 4, 5, 6});
  int64_t r = 0, s = 0, c = make({3, 2}, 1 /* float64 */);
  int64_t dims[2] = {3, 2};
  OK(kiln_nd_reshape(a, 2, dims, &r));
  OK(kiln_nd_slice(a, 1, 2, &s));
  CHECK(read(s) == std::vector<float>({4, 5, 6}), "slice row 1");
  OK(kiln_nd_copy_to(r, c));
  std::vector<double> d(6);
  OK(kiln_nd_read(c, d.data(), 48));
  CHECK(d[5] == 6.0, "copy with conversion");
  OK(kiln_nd_fill(c, 2.5));
  OK(kiln_nd_random(c, 1, 0.0, 1.0, 7));
  // imperative ops: dot, broadcast_add, sum, transpose, softmax
  int64_t outs[4] = {0, 0, 0, 0};
  int nout = 0;
  int64_t in2[2] = {a, r};
  OK(kiln_op_invoke("dot", "{}", 2, in2, 4, outs, &nout));
  CHECK(nout == 1 && read(outs[0]) == std::vector<float>({22, 28, 49, 64}), "dot");
  OK(kiln_nd_free(outs[0]));
  outs[0] = 0;
  OK(kiln_op_invoke("transpose", "{}", 1, &a, 4, outs, &nout));
  CHECK(read(outs[0]) == std::vector<float>({1, 4, 2, 5, 3, 6}), "transpose");
  OK(kiln_nd_free(outs[0]));
  outs[0] = 0;
  OK(kiln_op_invoke("softmax", "{\"axis\":\"-1\"}", 1, &a, 4, outs, &nout));
  auto sm = read(outs[0]);
  CHECK(std::fabs(sm[0] + sm[1] + sm[2] - 1) < 1e-6, "softmax rows sum to 1");
  OK(kiln_nd_free(outs[0]));
  outs[0] = a;  // in place
  OK(kiln_op_invoke("_mul_scalar", "{\"scalar\":\"2\"}", 1, &a, 4, outs, &nout));
  CHECK(read(a)[5] == 12, "in-place scalar multiply");
  outs[0] = 0;
  OK(kiln_op_invoke("sum", "{\"axis\":\"(1,)\"}", 1, &a, 4, outs, &nout));
  CHECK(read(outs[0]) == std::vector<float>({12, 30}), "sum axis 1");
  OK(kiln_nd_free(outs[0]));
  for (auto h : {a, r, s, c}) OK(kiln_nd_free(h));
}

void test_mlp() {
  OK(kiln_infer(kMlp, "{\"shapes\":{\"data\":[16,20]}}"));
  std::string inf = kiln_last_string();
  CHECK(inf.find("[32,20]") != std::string::npos && inf.find("\"complete\":true") != std::string::npos, "MLP inference: " + inf);
  Net n = bind(kMlp, {{16, 20}, {32, 20}, {32}, {10, 32}, {10}, {16}}, {}, 11);
  auto l = train(n, 16, 20, 40, 5);
  CHECK(l.second < l.first, "MLP loss decreases: " + std::to_string(l.first) + " -> " + std::to_string(l.second));
  std::printf("MLP loss %.4f -> %.4f\n", l.first, l.second);
  OK(kiln_exec_report(n.exec));
  CHECK(std::string(kiln_last_string()).size() > 2, "memory report");
  // monitor: every input and output snapshot, then off again
  OK(kiln_exec_set_monitor(n.exec, 2));
  OK(kiln_exec_forward(n.exec, 1));
  OK(kiln_exec_backward(n.exec, 0, nullptr));
  int count = 0;
  OK(kiln_exec_monitor_entries(n.exec, 0, nullptr, &count));
  CHECK(count > 5, "monitor entries");
  std::vector<int64_t> snaps(count);
  OK(kiln_exec_monitor_entries(n.exec, count, snaps.data(), &count));
  for (auto h : snaps) OK(kiln_nd_free(h));
  OK(kiln_exec_set_monitor(n.exec, 0));
  // forward_backward + backward with an explicit head gradient
  OK(kiln_exec_forward_backward(n.exec));
  int64_t head = make({16, 10});
  OK(kiln_nd_fill(head, 1.0));
  OK(kiln_exec_forward(n.exec, 1));
  OK(kiln_exec_backward(n.exec, 1, &head));
  // loss outputs ignore head gradients (MXNet: their head-gradient slot is none)
  OK(kiln_exec_backward(n.exec, 1, &n.args[0]));
  OK(kiln_nd_free(head));
  n.free_all();
}

void test_cnn() {
  Net n = bind(kCnn, {{8, 1, 8, 8}, {4, 1, 3, 3}, {4}, {4}, {4}, {10, 64}, {10}, {8}}, {{4}, {4}}, 3);
  auto l = train(n, 8, 64, 25, 9);
  CHECK(l.second < l.first, "CNN loss decreases: " + std::to_string(l.first) + " -> " + std::to_string(l.second));
  std::printf("CNN loss %.4f -> %.4f\n", l.first, l.second);
  auto mv = read(n.aux[1]);
  CHECK(mv[0] != 1.0f, "BatchNorm moving variance updated in training");
  n.free_all();
  // the same graph with im2col and with the direct algorithm gives the same outputs
  for (int algo : {1, 2}) {
    OK(kiln_set_conv_algo(algo));
    Net m = bind(kCnn, {{2, 1, 8, 8}, {4, 1, 3, 3}, {4}, {4}, {4}, {10, 64}, {10}, {2}}, {{4}, {4}}, 3);
    OK(kiln_exec_forward(m.exec, 0));
    m.free_all();
  }
  OK(kiln_set_conv_algo(0));
}

void test_pool_channel_last() {
  Net n = bind(kPoolChannelLast, {{8, 64}, {96, 64}, {96}, {10, 12}, {10}, {8}}, {}, 5);
  auto l = train(n, 8, 64, 25, 11);
  CHECK(l.second < l.first, "channel-last pooling and rrelu net's loss decreases: " + std::to_string(l.first) + " -> " +
                                std::to_string(l.second));
  std::printf("channel-last pooling and rrelu loss %.4f -> %.4f\n", l.first, l.second);
  n.free_all();
}

// The convolution under im2col (1), Winograd F(2x2) (3) and F(4x4) (4): forward and backward with
// one head gradient at 1 and 2 threads give the same output and gradients up to rounding.
void test_winograd() {
  std::vector<std::vector<float>> ref;
  for (int threads : {1, 2}) {
    OK(kiln_set_num_threads(threads));
    for (int algo : {1, 3, 4}) {
      OK(kiln_set_conv_algo(algo));
      const std::vector<std::vector<int64_t>> shapes = {{2, 16, 9, 7}, {32, 16, 3, 3}, {32}};
      std::vector<int64_t> args, grads;
      for (size_t i = 0; i < shapes.size(); ++i) {
        args.push_back(make(shapes[i]));
        grads.push_back(make(shapes[i]));
        OK(kiln_nd_random(args.back(), 0, -1, 1, (int64_t)(11 + i)));
      }
      const int reqs[3] = {1, 1, 1};
      int64_t ex = 0, head = make({2, 32, 9, 7});
      OK(kiln_nd_random(head, 0, -1, 1, 21));
      OK(kiln_exec_bind(kConv16, 1, 0, 3, args.data(), grads.data(), reqs, 0, nullptr, "{}", &ex));
      OK(kiln_exec_forward(ex, 1));
      OK(kiln_exec_backward(ex, 1, &head));
      int64_t outs[2];
      int n = 0;
      OK(kiln_exec_outputs(ex, 2, outs, &n));
      std::vector<std::vector<float>> got = {read(outs[0]), read(grads[0]), read(grads[1]), read(grads[2])};
      OK(kiln_nd_free(outs[0]));
      if (ref.empty()) ref = got;
      for (size_t k = 0; k < got.size(); ++k) {
        double scale = 1, err = 0;
        for (size_t i = 0; i < got[k].size(); ++i) {
          scale = std::max(scale, (double)std::fabs(ref[k][i]));
          err = std::max(err, (double)std::fabs(got[k][i] - ref[k][i]));
        }
        CHECK(got[k].size() == ref[k].size() && err <= 1e-4 * scale,
              "conv algo " + std::to_string(algo) + " threads " + std::to_string(threads) + " array " + std::to_string(k) +
                  ": error " + std::to_string(err) + " of scale " + std::to_string(scale));
      }
      OK(kiln_exec_free(ex));
      OK(kiln_nd_free(head));
      for (size_t i = 0; i < args.size(); ++i) {
        OK(kiln_nd_free(args[i]));
        OK(kiln_nd_free(grads[i]));
      }
    }
  }
  OK(kiln_set_conv_algo(0));
}

// Separate executors on separate threads sharing read-only parameter arrays.
void test_threads() {
  Net base = bind(kMlp, {{4, 20}, {32, 20}, {32}, {10, 32}, {10}, {4}}, {}, 21);
  std::vector<float> x(80);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (float)i / 80;
  write(base.args[0], x);
  OK(kiln_exec_forward(base.exec, 0));
  int64_t o = 0;
  int nout = 0;
  OK(kiln_exec_outputs(base.exec, 1, &o, &nout));
  std::vector<float> want = read(o);
  OK(kiln_nd_free(o));
  const int kThreads = 4;
  std::vector<int> ok(kThreads, 0);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      int64_t data = 0, label = 0, ex = 0;
      int64_t shp[2] = {4, 20};
      if (kiln_nd_create(1, 0, 0, 2, shp, &data) || kiln_nd_create(1, 0, 0, 1, shp, &label)) return;
      kiln_nd_write(data, x.data(), 320);
      std::vector<int64_t> args = {data, base.args[1], base.args[2], base.args[3], base.args[4], label};
      std::vector<int64_t> grads(6, 0);
      std::vector<int> reqs(6, 0);
      bool good = kiln_exec_bind(kMlp, 1, 0, 6, args.data(), grads.data(), reqs.data(), 0, nullptr, "{}", &ex) == 0;
      for (int it = 0; good && it < 50; ++it) {
        int64_t out = 0;
        int k = 0;
        std::vector<float> got(40);
        good = kiln_exec_forward(ex, 0) == 0 && kiln_exec_outputs(ex, 1, &out, &k) == 0 &&
               kiln_nd_read(out, got.data(), 160) == 0 && got == want;
        if (out) kiln_nd_free(out);
      }
      if (ex) kiln_exec_free(ex);
      kiln_nd_free(data);
      kiln_nd_free(label);
      ok[t] = good;
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < kThreads; ++t) CHECK(ok[t], "thread " + std::to_string(t) + " predicted the sequential result");
  // one executor from two threads at once: every call either succeeds or is rejected as in use
  std::vector<int> rejected(2, 0), other(2, 0);
  std::vector<std::thread> two;
  for (int t = 0; t < 2; ++t)
    two.emplace_back([&, t] {
      for (int it = 0; it < 300; ++it) {
        if (kiln_exec_forward(base.exec, 0) == 0) continue;
        if (std::string(kiln_last_error()).find("in use by another thread") != std::string::npos) rejected[t]++;
        else other[t]++;
      }
    });
  for (auto& t : two) t.join();
  CHECK(other[0] == 0 && other[1] == 0, "concurrent use of one executor fails only as 'in use by another thread'");
  std::printf("one executor, two threads: %d + %d of 600 calls rejected as in use\n", rejected[0], rejected[1]);
  OK(kiln_exec_outputs(base.exec, 1, &o, &nout));
  CHECK(read(o) == want, "the executor still predicts the sequential result after the race");
  OK(kiln_nd_free(o));
  base.free_all();
  // one fused update from two threads at once: every run either applies whole or is rejected as in
  // use (w = 1 - lr * successes exactly); then a free races the runs and wins only when none is inside
  int64_t fw = make({1 << 15}), fg = make({1 << 15}), fplan = 0;
  OK(kiln_nd_fill(fw, 1));
  OK(kiln_nd_fill(fg, 1));
  OK(kiln_fused_create(&fplan));
  int64_t wg[2] = {fw, fg};
  int fidx = 0;
  OK(kiln_fused_add(fplan, "sgd_update", "{}", "[\"lr\"]", 2, wg, 1, &fw, &fidx));
  const double lr = 1.0 / 1024;
  std::vector<int> applied(2, 0);
  rejected.assign(2, 0);
  other.assign(2, 0);
  two.clear();
  for (int t = 0; t < 2; ++t)
    two.emplace_back([&, t] {
      for (int it = 0; it < 300; ++it) {
        if (kiln_fused_run(fplan, 1, &lr) == 0) applied[t]++;
        else if (std::string(kiln_last_error()).find("in use by another thread") != std::string::npos) rejected[t]++;
        else other[t]++;
      }
    });
  for (auto& t : two) t.join();
  CHECK(other[0] == 0 && other[1] == 0, "concurrent runs of one fused update fail only as 'in use by another thread'");
  CHECK(read(fw)[0] == (float)(1 - lr * (applied[0] + applied[1])) && read(fw)[5000] == read(fw)[0],
        "every accepted run of the fused update applied whole");
  std::printf("one fused update, two threads: %d + %d of 600 runs rejected as in use\n", rejected[0], rejected[1]);
  std::atomic<bool> freed{false};
  std::thread runner([&] {
    for (int it = 0; it < 200 && !freed.load(); ++it) {
      if (kiln_fused_run(fplan, 1, &lr) == 0) continue;
      const std::string e = kiln_last_error();
      if (e.find("invalid fused update handle") == std::string::npos && e.find("in use") == std::string::npos) other[0]++;
    }
  });
  for (int it = 0; it < 1000000 && !freed.load(); ++it) {
    if (kiln_fused_free(fplan) == 0) freed = true;
    else if (std::string(kiln_last_error()).find("while another thread is using it") == std::string::npos) other[1]++;
  }
  runner.join();
  CHECK(freed.load() && other[0] == 0 && other[1] == 0, "a free racing runs either waits its turn or fails as in use");
  BAD(kiln_fused_run(fplan, 1, &lr), "invalid fused update handle");
  OK(kiln_nd_free(fw));
  OK(kiln_nd_free(fg));
}

void test_bad_inputs() {
  int64_t h = 0, dims[3] = {2, 3, 4}, neg[2] = {2, -1}, huge[4] = {1 << 20, 1 << 20, 1 << 20, 1 << 20};
  int nout = 0;
  int64_t outs[2] = {0, 0};
  // handles
  BAD(kiln_nd_free(0), "handle");
  BAD(kiln_nd_free(12345), "handle");
  BAD(kiln_exec_forward(0, 1), "executor");
  BAD(kiln_exec_free(777), "executor");
  BAD(kiln_fused_run(99, 0, nullptr), "");
  int64_t a = make({2, 3});
  BAD(kiln_exec_forward(a, 1), "executor");  // an NDArray handle is not an executor
  int64_t gone = make({1});
  OK(kiln_nd_free(gone));
  BAD(kiln_nd_free(gone), "handle");  // double free
  BAD(kiln_nd_read(gone, nullptr, 4), "handle");
  // creation
  BAD(kiln_nd_create(1, 0, 0, 2, neg, &h), "negative");
  BAD(kiln_nd_create(1, 0, 0, 4, huge, &h), "");
  BAD(kiln_nd_create(1, 0, 0, 40, dims, &h), "rank");
  BAD(kiln_nd_create(3, 0, 0, 3, dims, &h), "device");
  BAD(kiln_nd_create(2, 0, 0, 3, dims, &h), "CUDA");
  BAD(kiln_nd_create(1, 0, 99, 3, dims, &h), "");
  BAD(kiln_nd_create(1, 0, 0, 3, nullptr, &h), "");
  // sizes
  float buf[6] = {0};
  BAD(kiln_nd_write(a, buf, 4), "");
  BAD(kiln_nd_read(a, buf, 100), "");
  BAD(kiln_nd_write(a, nullptr, 24), "");
  int64_t info[2];
  BAD(kiln_nd_info(a, info, 2), "");
  BAD(kiln_nd_reshape(a, 3, dims, &h), "");
  BAD(kiln_nd_slice(a, 1, 5, &h), "");
  BAD(kiln_nd_slice(a, 2, 1, &h), "");
  int64_t b = make({3, 2});
  int64_t c = make({4});
  BAD(kiln_nd_copy_to(a, c), "");
  BAD(kiln_nd_random(a, 5, 0, 1, 1), "distribution");
  BAD(kiln_nd_random(a, 0, 1, 0, 1), "uniform");
  // imperative ops
  int64_t ab[2] = {a, a};
  BAD(kiln_op_invoke("NoSuchOp", "{}", 1, &a, 2, outs, &nout), "NoSuchOp");
  BAD(kiln_op_invoke("dot", "{}", 2, ab, 2, outs, &nout), "dot");
  BAD(kiln_op_invoke("dot", "{}", 1, &a, 2, outs, &nout), "dot");
  BAD(kiln_op_invoke("FullyConnected", "{\"num_hidden\":\"-3\"}", 1, &a, 2, outs, &nout), "num_hidden");
  BAD(kiln_op_invoke("FullyConnected", "{\"num_hidden\":\"abc\"}", 1, &a, 2, outs, &nout), "num_hidden");
  BAD(kiln_op_invoke("Convolution", "{\"kernel\":\"(0,0)\",\"num_filter\":\"2\"}", 1, &a, 2, outs, &nout), "");
  BAD(kiln_op_invoke("_mul_scalar", "not json", 1, &a, 2, outs, &nout), "");
  BAD(kiln_op_invoke("_mul_scalar", "[1,2]", 1, &a, 2, outs, &nout), "object");
  outs[0] = c;  // wrong output shape
  BAD(kiln_op_invoke("_mul_scalar", "{\"scalar\":\"2\"}", 1, &a, 2, outs, &nout), "");
  outs[0] = 0;
  BAD(kiln_op_invoke("Reshape", "{\"shape\":\"(7,)\"}", 1, &a, 2, outs, &nout), "Reshape");
  BAD(kiln_op_invoke("transpose", "{\"axes\":\"(0,5)\"}", 1, &a, 2, outs, &nout), "");
  BAD(kiln_op_invoke("sum", "{\"axis\":\"(9,)\"}", 1, &a, 2, outs, &nout), "");
  BAD(kiln_op_invoke("_backward_FullyConnected", "{}", 1, &a, 2, outs, &nout), "");
  BAD(kiln_op_info("NoSuchOp", "{}"), "NoSuchOp");
  BAD(kiln_op_info("Concat", "{\"num_args\":\"-1\"}"), "");
  // graphs
  const char* bad_graphs[] = {
      "",
      "{",
      "[]",
      "{\"nodes\":5}",
      "{\"nodes\":[{\"op\":\"null\"}]}",
      "{\"nodes\":[{\"op\":\"Bogus\",\"name\":\"x\",\"inputs\":[]}],\"heads\":[[0,0,0]]}",
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]},{\"op\":\"Activation\",\"name\":\"a\",\"attrs\":{\"act_type\":\"relu\"},"
      "\"inputs\":[[1,0,0]]}],\"heads\":[[1,0,0]]}",  // self reference
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]},{\"op\":\"Activation\",\"name\":\"a\",\"attrs\":{\"act_type\":\"relu\"},"
      "\"inputs\":[[0,3,0]]}],\"heads\":[[1,0,0]]}",  // output index out of range
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]},{\"op\":\"Activation\",\"name\":\"a\",\"attrs\":{\"act_type\":\"nope\"},"
      "\"inputs\":[[0,0,0]]}],\"heads\":[[1,0,0]]}",  // bad enum
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]},{\"op\":\"FullyConnected\",\"name\":\"f\",\"attrs\":{\"num_hidden\":\"4\"},"
      "\"inputs\":[[0,0,0]]}],\"heads\":[[1,0,0]]}",  // too few inputs
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]}],\"heads\":[[4,0,0]]}",  // head out of range
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]}],\"heads\":[[-1,0,0]]}",
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]}],\"heads\":[[0]]}",
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]}],\"heads\":[[1e300,0,0]]}",
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]}],\"heads\":\"x\"}",
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\\ud800\",\"inputs\":[]}],\"heads\":[[0,0,0]],\"x\":\"\\u00\"}",
      "{\"nodes\":[{\"op\":\"null\",\"name\":\"x\",\"inputs\":[]}],\"heads\":[[0,0,0]]",
  };
  for (const char* g : bad_graphs) {
    ++g_checks;
    if (kiln_infer(g, "{\"shapes\":{\"x\":[2,3]}}") != -1 || !*kiln_last_error()) fail(std::string("bad graph accepted: ") + g);
  }
  std::string deep(100000, '[');
  BAD(kiln_infer(deep.c_str(), "{}"), "");
  std::string deep_obj;
  for (int i = 0; i < 5000; ++i) deep_obj += "{\"a\":";
  BAD(kiln_infer(deep_obj.c_str(), "{}"), "");
  BAD(kiln_infer(nullptr, "{}"), "");
  BAD(kiln_infer(kMlp, "{\"shapes\":{\"nope\":[1,2]}}"), "nope");
  BAD(kiln_infer(kMlp, "{\"shapes\":{\"data\":[16,20],\"fc1_weight\":[32,21]}}"), "");
  BAD(kiln_infer(kMlp, "{\"shapes\":{\"data\":[16,\"x\"]}}"), "");
  BAD(kiln_infer(kMlp, "{\"shapes\":{\"data\":[16,-5]}}"), "");
  BAD(kiln_infer(kMlp, "{}"), "");
  BAD(kiln_infer(kMlp, "{\"shapes\":{\"data\":[16,20]},\"types\":{\"data\":\"complex128\"}}"), "");
  // binding: wrong counts, wrong shapes, wrong options
  Net n = bind(kMlp, {{4, 20}, {32, 20}, {32}, {10, 32}, {10}, {4}}, {}, 1);
  int64_t ex = 0;
  BAD(kiln_exec_bind(kMlp, 1, 0, 3, n.args.data(), n.grads.data(), n.reqs.data(), 0, nullptr, "{}", &ex), "");
  std::vector<int64_t> wrong = n.args;
  wrong[1] = n.args[3];  // fc1_weight of the wrong shape
  BAD(kiln_exec_bind(kMlp, 1, 0, 6, wrong.data(), n.grads.data(), n.reqs.data(), 0, nullptr, "{}", &ex), "");
  std::vector<int> badreq = n.reqs;
  badreq[1] = 7;
  BAD(kiln_exec_bind(kMlp, 1, 0, 6, n.args.data(), n.grads.data(), badreq.data(), 0, nullptr, "{}", &ex), "");
  BAD(kiln_exec_bind(kMlp, 1, 0, 6, n.args.data(), n.grads.data(), n.reqs.data(), 0, nullptr, "{\"match_range\":-4}", &ex),
      "match_range");
  BAD(kiln_exec_bind(kMlp, 1, 0, 6, n.args.data(), n.grads.data(), n.reqs.data(), 0, nullptr, "{oops", &ex), "");
  BAD(kiln_exec_bind(kMlp, 2, 0, 6, n.args.data(), n.grads.data(), n.reqs.data(), 0, nullptr, "{}", &ex), "CUDA");
  BAD(kiln_exec_bind(kCnn, 1, 0, 6, n.args.data(), n.grads.data(), n.reqs.data(), 0, nullptr, "{}", &ex), "");
  int64_t o4[1];
  int k = 0;
  BAD(kiln_exec_outputs(n.exec, 0, o4, &k), "");
  {
    // a graph whose output is not a loss needs head gradients of the outputs' shapes
    const char* fc = R"J({"nodes":[{"op":"null","name":"x","inputs":[]},{"op":"null","name":"w","inputs":[]},
      {"op":"FullyConnected","name":"f","attrs":{"num_hidden":"3","no_bias":"True"},"inputs":[[0,0,0],[1,0,0]]}],
      "heads":[[2,0,0]]})J";
    int64_t x = make({2, 4}), w = make({3, 4}), gw = make({3, 4}), fe = 0;
    int64_t fargs[2] = {x, w}, fgrads[2] = {0, gw};
    int freqs[2] = {0, 1};
    OK(kiln_exec_bind(fc, 1, 0, 2, fargs, fgrads, freqs, 0, nullptr, "{}", &fe));
    OK(kiln_exec_forward(fe, 1));
    int64_t hg = make({2, 3}), wrong_hg = make({3, 2});
    OK(kiln_exec_backward(fe, 1, &hg));
    BAD(kiln_exec_backward(fe, 1, &wrong_hg), "");
    BAD(kiln_exec_backward(fe, 0, nullptr), "");
    int64_t two[2] = {hg, hg};
    BAD(kiln_exec_backward(fe, 2, two), "");
    OK(kiln_exec_free(fe));
    for (auto h : {x, w, gw, hg, wrong_hg}) OK(kiln_nd_free(h));
  }
  BAD(kiln_exec_set_monitor(n.exec, 9), "");
  // loss scaling: finite and positive only; a refused scale keeps the old one
  double scale = 0;
  for (double bad : {0.0, -2.0, std::nan(""), HUGE_VAL}) BAD(kiln_exec_set_loss_scale(n.exec, bad), "loss scale");
  OK(kiln_exec_loss_scale(n.exec, &scale));
  CHECK(scale == 1.0, "loss scale after refused values");
  OK(kiln_exec_set_loss_scale(n.exec, 1024.0));
  OK(kiln_exec_forward_backward(n.exec));
  OK(kiln_exec_set_loss_scale(n.exec, 1.0));
  BAD(kiln_exec_loss_scale(n.exec, nullptr), "null");
  BAD(kiln_exec_set_loss_scale(777, 2.0), "executor");
  // all_finite on an integer array, multi_all_finite with a wrong count
  {
    int64_t fouts[4] = {0, 0, 0, 0};
    int fn = 0;
    int64_t i32 = make({3}, 4 /* int32 */);
    BAD(kiln_op_invoke("all_finite", "{}", 1, &i32, 4, fouts, &fn), "");
    int64_t two[2] = {a, a};
    BAD(kiln_op_invoke("multi_all_finite", "{\"num_arrays\":\"3\"}", 2, two, 4, fouts, &fn), "");
    OK(kiln_op_invoke("multi_all_finite", "{\"num_arrays\":\"2\"}", 2, two, 4, fouts, &fn));
    CHECK(fn == 1, "multi_all_finite: one output");
    OK(kiln_nd_free(fouts[0]));
    OK(kiln_nd_free(i32));
  }
  // fused updates
  int64_t plan = 0;
  int idx = 0;
  OK(kiln_fused_create(&plan));
  int64_t wg[2] = {a, b};
  BAD(kiln_fused_add(plan, "sgd_update", "{}", "[\"lr\"]", 2, wg, 1, &a, &idx), "");  // grad shape differs
  int64_t ww[2] = {a, a};
  BAD(kiln_fused_add(plan, "sgd_update", "{}", "[\"nope\"]", 2, ww, 1, &a, &idx), "");
  BAD(kiln_fused_add(plan, "NoSuchOp", "{}", "[]", 2, ww, 1, &a, &idx), "");
  OK(kiln_fused_add(plan, "sgd_update", "{}", "[\"lr\"]", 2, ww, 1, &a, &idx));
  BAD(kiln_fused_run(plan, 3, nullptr), "");
  double lr = 0.1;
  OK(kiln_fused_run(plan, 1, &lr));
  OK(kiln_fused_run(plan, 1, &lr));  // the same values again: a CUDA graph only on a GPU
  int graph = -2;
  OK(kiln_fused_graph(plan, &graph));
  CHECK(graph == 0, "a CPU plan records no graph");
  BAD(kiln_fused_graph(plan, nullptr), "null output pointer");
  OK(kiln_fused_free(plan));
  BAD(kiln_fused_free(plan), "");
  BAD(kiln_fused_graph(plan, &graph), "");
  // a dynamic value may not change the planned shapes: one_hot's depth, take's axis (the kernels
  // trust the planned sizes; this overflowed the output before the check)
  {
    int64_t shaped = 0, ind = make({3}), hot = make({3, 0}), x = make({10, 2}), k = make({5}), y = make({5, 2});
    OK(kiln_fused_create(&shaped));
    OK(kiln_fused_add(shaped, "one_hot", "{}", "[\"depth\"]", 1, &ind, 1, &hot, &idx));
    int64_t xk[2] = {x, k};
    OK(kiln_fused_add(shaped, "take", "{}", "[\"axis\"]", 2, xk, 1, &y, &idx));
    double same[2] = {0, 0}, deeper[2] = {10, 0}, other_axis[2] = {0, 1};
    OK(kiln_fused_run(shaped, 2, same));
    OK(kiln_fused_run(shaped, 2, same));  // checked once, then remembered
    BAD(kiln_fused_run(shaped, 2, deeper), "may not change shapes");
    BAD(kiln_fused_run(shaped, 2, other_axis), "may not change shapes");
    OK(kiln_fused_run(shaped, 2, same));
    OK(kiln_fused_free(shaped));
    for (int64_t v : {ind, hot, x, k, y}) OK(kiln_nd_free(v));
  }
  // runtime settings
  BAD(kiln_set_num_threads(-2), "");
  BAD(kiln_set_conv_algo(9), "");
  BAD(kiln_memory_stats(1, 0, nullptr), "");
  n.free_all();
  for (auto x : {a, b, c}) OK(kiln_nd_free(x));
}

}  // namespace

void fuzz_operators(uint64_t seed, int per_op, int* checks, int* failures);  // op_fuzz.cc

int main() {
  int64_t mem0[4] = {0, 0, 0, 0};
  kiln_memory_stats(1, 0, mem0);
  test_runtime();
  test_ndarray();
  test_mlp();
  test_cnn();
  test_pool_channel_last();
  test_winograd();
  for (int t : {1, 2}) {
    OK(kiln_set_num_threads(t));
    test_threads();
  }
  test_bad_inputs();
  {
    const char* calls = std::getenv("KILN_FUZZ_CALLS");
    const char* seed = std::getenv("KILN_FUZZ_SEED");
    fuzz_operators(seed ? std::strtoull(seed, nullptr, 0) : 0x5EED15ULL, calls ? std::atoi(calls) : 12, &g_checks,
                   &g_failures);
  }
  int64_t live = -1, mem[4] = {0, 0, 0, 0};
  OK(kiln_live_handles(&live));
  OK(kiln_memory_stats(1, 0, mem));
  CHECK(live == 0, "live handles at exit: " + std::to_string(live));
  CHECK(mem[0] == mem0[0] && mem[2] == mem0[2],
        "outstanding native bytes/blocks at exit: " + std::to_string(mem[0]) + "/" + std::to_string(mem[2]));
  std::printf("sanitize_driver: %d checks, %d failures; peak %lld bytes, %lld allocations\n", g_checks, g_failures,
              (long long)mem[1], (long long)mem[3]);
  return g_failures == 0 ? 0 : 1;
}
