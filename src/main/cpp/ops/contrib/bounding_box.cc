// The bounding-box operators of MXNet 1.9.1 (src/operator/contrib/bounding_box-inl.h,
// bounding_box.cc), used by GluonCV's detection models:
//
//   _contrib_box_iou (lhs [.., 4], rhs [.., 4]) -> [lhs dims.., rhs dims..]: IoU of every pair;
//   _contrib_box_nms (alias _contrib_box_non_maximum_suppression) data [.., N, W] -> same shape:
//       per batch, the candidates (score > valid_thresh, id != background_id with an id column)
//       sorted by descending score (ties by position), the first topk of them suppressed greedily
//       (a box goes when its IoU with a kept, earlier box of the same class, or any class with
//       force_suppress, is above overlap_thresh); the kept rows come first in that order, the
//       rest is -1; coordinates converted to out_format (rows whose first coordinate is negative
//       stay as they are, as MXNet). The hidden output temp [.., N, 1] records the flat input row
//       (batch * N + row) of each output row, -1 for none; topk=0 copies data (temp = every row).
//       Backward: each kept row's output gradient goes to its input row, the others get 0;
//   _contrib_bipartite_matching data [.., N, M] -> (x [.., N], y [.., M]): greedy matching of the
//       score entries in descending (is_ascend: ascending) order, ties by position; stops at the
//       first entry of a free row and column that misses the threshold, or once the count of
//       matches is above topk (topk + 1 matches, as MXNet's loop); -1 where unmatched;
//   _contrib_box_encode (samples [B, N], matches [B, N], anchors [B, N, 4], refs [B, M, 4],
//       means [4], stds [4]) -> (targets, masks) [B, N, 4]: normalized center offsets of the
//       matched reference of every positive sample (samples > 0.5), 0 elsewhere;
//   _contrib_box_decode (data [B, N, 4], anchors [1, N, 4]) -> [B, N, 4] corner boxes.
//
// box_iou, bipartite_matching, box_encode and box_decode have zero gradients (MXNet's
// MakeZeroGradNodes / zero-filling backward ops). Unlike MXNet, box_encode refuses a positive
// sample whose match is not a row of refs (MXNet reads outside refs), and box_nms honours kAddTo
// in its backward (MXNet overwrites).
#include <algorithm>
#include <numeric>

#include "contrib_ops.h"
#include "kiln/box_ops.h"

namespace kiln {
namespace contrib {
namespace {

const std::vector<std::string> kFormats = {"corner", "center"};

/// MXNet's MakeZeroGradNodes: zeros_like of every input.
std::vector<NodeEntry> zero_grads(const NodePtr& n) {
  std::vector<NodeEntry> r;
  for (size_t i = 0; i < n->inputs.size(); ++i) r.push_back(zeros_like(n->inputs[i], n->name + "_in" + std::to_string(i) + "_backward"));
  return r;
}

// ---- _contrib_box_iou --------------------------------------------------------------------------------

void iou_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const char* names[2] = {"lhs", "rhs"};
  for (int i = 0; i < 2; ++i) {
    const Shape& s = (*in)[i];
    if (s.rank_known() && (s.ndim() < 2 || (s[s.ndim() - 1] >= 0 && s[s.ndim() - 1] != 4)))
      throw InferError(true, i, std::string("_contrib_box_iou: ") + names[i] +
                                    " must have at least 2 dims and a last dimension of 4 (a box); got " + s.str());
  }
  const Shape l = (*in)[0], r = (*in)[1];
  if (!l.rank_known() || !r.rank_known()) return;
  std::vector<int64_t> o(l.d.begin(), l.d.end() - 1);
  o.insert(o.end(), r.d.begin(), r.d.end() - 1);
  assign_out(out, 0, Shape(o));
}

void iou_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: lhs [L, 4], rhs [R, 4] (leading dims flattened); out: [L, R]
  const int64_t L = in[0].size() / 4, R = in[1].size() / 4;
  KILN_CHECK(out[0].size() == L * R, "_contrib_box_iou: bad output shape " + out[0].shape.str());
  const bool center = a.s("format") == "center";
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* lhs = in[0].dptr<T>();  // [L, 4]
    const T* rhs = in[1].dptr<T>();  // [R, 4]
    T* y = out[0].dptr<T>();         // [L, R]
    omp_for(omp_threads(L * R * 8), L, [&](int64_t i) {
      for (int64_t j = 0; j < R; ++j) assign_req(y[i * R + j], req[0], box::iou(lhs + i * 4, rhs + j * 4, center));
    });
  });
}

void register_box_iou(OpRegistry& r) {
  OpDef d;
  d.name = "_contrib_box_iou";
  d.description =
      "Bounding box overlap (intersection over union) of every box of lhs (.., 4) with every box of rhs (.., 4): "
      "output (lhs dims.., rhs dims..). Zero gradients.";
  d.params = {param_enum("format", "corner", kFormats,
                         "The box encoding type: corner = [xmin, ymin, xmax, ymax], center = [x, y, width, height].")};
  d.input_names_ = {"lhs", "rhs"};
  d.infer_shape = iou_infer_shape;
  d.cpu = iou_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>&) { return zero_grads(n); };
  r.add(d);
}

// ---- _contrib_box_nms --------------------------------------------------------------------------------

/// box_nms's attributes, checked against a row width (MXNet's BoxNMSShape); throws KilnError.
struct NmsCfg {
  int score, coord, id, background, topk;
  float overlap, valid;
  bool force, in_center, out_center;
};

NmsCfg nms_cfg(const Attrs& a, int64_t width) {
  NmsCfg c;
  c.score = (int)a.i("score_index");
  c.coord = (int)a.i("coord_start");
  c.id = (int)a.i("id_index");
  c.background = (int)a.i("background_id");
  c.topk = (int)a.i("topk");
  c.overlap = (float)a.f("overlap_thresh");
  c.valid = (float)a.f("valid_thresh");
  c.force = a.b("force_suppress");
  c.in_center = a.s("in_format") == "center";
  c.out_center = a.s("out_format") == "center";
  const std::string op = "_contrib_box_nms: ";
  const int64_t expected = c.id > 0 ? 6 : 5;
  KILN_CHECK(width >= expected, op + "the last dimension must have at least " + std::to_string(expected) +
                                    " elements (score, 4 coordinates" + (c.id > 0 ? ", id" : "") + "); got " +
                                    std::to_string(width));
  KILN_CHECK(c.score >= 0 && c.score < width,
             op + "score_index=" + std::to_string(c.score) + " out of range [0, " + std::to_string(width) + ")");
  KILN_CHECK(c.score < c.coord || c.score > c.coord + 3,
             op + "score_index=" + std::to_string(c.score) + " conflicts with the coordinates at coord_start=" +
                 std::to_string(c.coord));
  KILN_CHECK(c.coord >= 0 && c.coord + 3 < width,
             op + "coordinates [" + std::to_string(c.coord) + ", " + std::to_string(c.coord + 3) +
                 "] (coord_start) out of range [0, " + std::to_string(width) + ")");
  if (c.id >= 0) {
    KILN_CHECK(c.id < width, op + "id_index=" + std::to_string(c.id) + " out of range [0, " + std::to_string(width) + ")");
    KILN_CHECK(c.id < c.coord || c.id > c.coord + 3,
               op + "id_index=" + std::to_string(c.id) + " conflicts with the coordinates at coord_start=" +
                   std::to_string(c.coord));
    KILN_CHECK(c.id != c.score, op + "id_index=" + std::to_string(c.id) + " conflicts with score_index");
  }
  return c;
}

void nms_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  Shape d = (*in)[0];
  if (!d.rank_known()) d = (*out)[0];
  if (!d.rank_known()) return;
  if (d.ndim() < 2)
    throw InferError(true, 0, "_contrib_box_nms: data must have at least 2 dims (.., num_boxes, box_width); got " + d.str());
  if (d[d.ndim() - 1] >= 0) {
    try {
      nms_cfg(a, d[d.ndim() - 1]);
    } catch (const KilnError& e) {
      throw InferError(true, 0, e.what());
    }
  }
  assign_in(in, 0, d);
  assign_out(out, 0, d);
  Shape t = d;
  t[t.ndim() - 1] = 1;
  assign_out(out, 1, t);
}

/// box_nms of one batch: x [N, W] -> y [N, W], rec [N] (flat input rows, -1). order: scratch of N.
template <typename T>
void nms_batch(const NmsCfg& c, int64_t b, int64_t N, int64_t W, const T* x, T* y, T* rec, OpReq req,
               std::vector<int64_t>* order) {
  // x [N, W], y [N, W], rec [N]
  order->clear();
  for (int64_t i = 0; i < N; ++i)
    if (box::nms_candidate(x + i * W, c.score, c.id, c.valid, c.background)) order->push_back(i);
  std::stable_sort(order->begin(), order->end(),
                   [&](int64_t i, int64_t j) { return box::nms_before(x[i * W + c.score], i, x[j * W + c.score], j); });
  const int64_t k = std::min<int64_t>((int64_t)order->size(), c.topk < 0 ? N : c.topk);
  std::vector<int64_t>& o = *order;
  for (int64_t ref = 0; ref < k; ++ref) {
    if (o[ref] < 0) continue;
    const T* rb = x + o[ref] * W;
    for (int64_t pos = ref + 1; pos < k; ++pos) {
      if (o[pos] < 0) continue;
      const T* pb = x + o[pos] * W;
      if (!c.force && c.id >= 0 && box::class_id(rb[c.id]) != box::class_id(pb[c.id])) continue;
      if (box::nms_overlaps(rb + c.coord, pb + c.coord, c.in_center, c.overlap)) o[pos] = -1;
    }
  }
  int64_t count = 0;
  std::vector<T> row(W);
  for (int64_t j = 0; j < k; ++j) {
    if (o[j] < 0) continue;
    std::copy(x + o[j] * W, x + o[j] * W + W, row.begin());
    if (c.in_center != c.out_center) box::convert_format(row.data() + c.coord, c.out_center);
    for (int64_t w = 0; w < W; ++w) assign_req(y[count * W + w], req, row[w]);
    rec[count++] = (T)(b * N + o[j]);
  }
  for (; count < N; ++count) {
    for (int64_t w = 0; w < W; ++w) assign_req(y[count * W + w], req, T(-1));
    rec[count] = T(-1);
  }
}

void nms_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  // in: data [B.., N, W]; out: output [B.., N, W], temp [B.., N, 1] (always written)
  const Shape& s = in[0].shape;
  KILN_CHECK(s.ndim() >= 2 && out[0].shape == s && out[1].size() * s[s.ndim() - 1] == s.size(),
             "_contrib_box_nms: bad data/output shapes " + s.str() + ", " + out[0].shape.str());
  const int64_t W = s[s.ndim() - 1], N = s[s.ndim() - 2], B = N * W == 0 ? 0 : s.size() / (N * W);
  const NmsCfg c = nms_cfg(a, W);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* x = in[0].dptr<T>();  // [B, N, W]
    T* y = out[0].dptr<T>();       // [B, N, W]
    T* rec = out[1].dptr<T>();     // [B, N]
    if (c.topk == 0) {  // MXNet: the data as it is, every row recorded
      for (int64_t i = 0; i < B * N * W; ++i) assign_req(y[i], req[0], x[i]);
      for (int64_t i = 0; i < B * N; ++i) rec[i] = (T)i;
      return;
    }
    omp_for(omp_threads(B * N * N), B, [&](int64_t b) {
      std::vector<int64_t> order;
      order.reserve(N);
      nms_batch<T>(c, b, N, W, x + b * N * W, y + b * N * W, rec + b * N, req[0], &order);
    });
  });
}

void nms_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  // in: ograd [B.., N, W], temp [B.., N, 1]; out: data_grad [B.., N, W]
  if (req[0] == OpReq::kNullOp) return;
  const Shape& s = out[0].shape;
  KILN_CHECK(in[0].shape == s && in[1].size() * s[s.ndim() - 1] == s.size(), "_backward_contrib_box_nms: bad shapes");
  const int64_t W = s[s.ndim() - 1], rows = W == 0 ? 0 : s.size() / W;
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* dy = in[0].dptr<T>();   // [rows, W]
    const T* rec = in[1].dptr<T>();  // [rows]
    T* dx = out[0].dptr<T>();        // [rows, W]
    if (req[0] != OpReq::kAddTo) std::fill(dx, dx + rows * W, T(0));
    for (int64_t i = 0; i < rows; ++i) {
      const T r = rec[i];
      if (!(r >= 0 && r < (T)rows)) continue;  // -1 (or anything that is not a row: never from the forward)
      const int64_t at = (int64_t)r;
      for (int64_t w = 0; w < W; ++w) dx[at * W + w] += dy[i * W + w];
    }
  });
}

void register_box_nms(OpRegistry& r) {
  OpDef d;
  d.name = "_contrib_box_nms";
  d.aliases = {"_contrib_box_non_maximum_suppression"};
  d.description =
      "Non-maximum suppression of boxes (.., N, W) = [id, score, xmin, ymin, xmax, ymax, ..] by default: per batch "
      "the kept boxes sorted by descending score, then rows of -1. The hidden output temp records the input row of "
      "each output row; the backward passes each kept row's gradient to its input row.";
  d.params = {
      param("overlap_thresh", ParamType::kFloat, "0.5", "Overlapping(IoU) threshold to suppress object with smaller score."),
      param("valid_thresh", ParamType::kFloat, "0", "Filter input boxes to those whose scores greater than valid_thresh."),
      param("topk", ParamType::kInt, "-1", "Apply nms to topk boxes with descending scores, -1 to no restriction.",
            -2147483648.0, 2147483647.0),
      param("coord_start", ParamType::kInt, "2", "Start index of the consecutive 4 coordinates.", -2147483648.0, 2147483644.0),
      param("score_index", ParamType::kInt, "1", "Index of the scores/confidence of boxes.", -2147483648.0, 2147483647.0),
      param("id_index", ParamType::kInt, "-1", "Optional, index of the class categories, -1 to disable.", -2147483648.0,
            2147483647.0),
      param("background_id", ParamType::kInt, "-1", "Optional, id of the background class which will be ignored in nms.",
            -2147483648.0, 2147483647.0),
      param("force_suppress", ParamType::kBool, "False",
            "Optional, if set false and id_index is provided, nms will only apply to boxes belongs to the same category"),
      param_enum("in_format", "corner", kFormats,
                 "The input box encoding type: corner = [xmin, ymin, xmax, ymax], center = [x, y, width, height]."),
      param_enum("out_format", "corner", kFormats,
                 "The output box encoding type: corner = [xmin, ymin, xmax, ymax], center = [x, y, width, height]."),
  };
  d.output_names_ = {"output", "temp"};
  d.num_visible_outputs_fn = [](const Attrs&) { return 1; };
  d.outputs_always_written = true;
  d.infer_shape = nms_infer_shape;
  d.cpu = nms_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_contrib_box_nms", n, {og[0], NodeEntry{n, 1}});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_contrib_box_nms", fwd);
  bw.input_names_ = {"ograd", "temp"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = nms_backward_cpu;
  r.add(bw);
}

// ---- _contrib_bipartite_matching ---------------------------------------------------------------------

void match_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;
  if (d.ndim() < 2)
    throw InferError(true, 0, "_contrib_bipartite_matching: the score matrix must have at least 2 dims (.., N, M); got " +
                                  d.str());
  std::vector<int64_t> x(d.d.begin(), d.d.end() - 1), y(d.d.begin(), d.d.end() - 2);
  y.push_back(d[d.ndim() - 1]);
  assign_out(out, 0, Shape(x));
  assign_out(out, 1, Shape(y));
}

void match_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  // in: data [B.., N, M]; out: x [B.., N], y [B.., M]
  const Shape& s = in[0].shape;
  const int64_t N = s[s.ndim() - 2], M = s[s.ndim() - 1], B = N * M == 0 ? 0 : s.size() / (N * M);
  KILN_CHECK(out[0].size() == B * N && out[1].size() == B * M, "_contrib_bipartite_matching: bad output shapes");
  const bool ascend = a.b("is_ascend");
  const float thresh = (float)a.f("threshold");
  const int64_t topk = a.i("topk");
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* x = in[0].dptr<T>();  // [B, N, M]
    T* rows = out[0].dptr<T>();    // [B, N]
    T* cols = out[1].dptr<T>();    // [B, M]
    omp_for(omp_threads(B * N * M * 16), B, [&](int64_t b) {
      const T* sc = x + b * N * M;  // [N, M]
      std::vector<T> rm(N, T(-1)), cm(M, T(-1));
      std::vector<int64_t> order(N * M);
      std::iota(order.begin(), order.end(), int64_t(0));
      std::sort(order.begin(), order.end(),
                [&](int64_t i, int64_t j) { return box::match_before(sc[i], i, sc[j], j, ascend); });
      int64_t count = 0;
      for (int64_t e : order) {
        const int64_t rr = e / M, cc = e % M;
        if (rm[rr] != T(-1) || cm[cc] != T(-1)) continue;
        if (!box::match_passes(sc[e], thresh, ascend)) break;
        rm[rr] = (T)cc;
        cm[cc] = (T)rr;
        if (topk > 0 && ++count > topk) break;
      }
      // an output with a null request may have no memory (the planner gives unread outputs none)
      if (req[0] != OpReq::kNullOp)
        for (int64_t i = 0; i < N; ++i) assign_req(rows[b * N + i], req[0], rm[i]);
      if (req[1] != OpReq::kNullOp)
        for (int64_t i = 0; i < M; ++i) assign_req(cols[b * M + i], req[1], cm[i]);
    });
  });
}

void register_bipartite_matching(OpRegistry& r) {
  OpDef d;
  d.name = "_contrib_bipartite_matching";
  d.description =
      "Greedy bipartite matching of a score matrix (.., N, M): x (.., N) the matched column of every row, y (.., M) "
      "the matched row of every column, -1 where unmatched. Zero gradients.";
  d.params = {
      param("is_ascend", ParamType::kBool, "False", "Use ascend order for scores instead of descending. Please set threshold accordingly."),
      param("threshold", ParamType::kFloat, "",
            "Ignore matching when score < thresh, if is_ascend=false, or ignore score > thresh, if is_ascend=true."),
      param("topk", ParamType::kInt, "-1", "Limit the number of matches to topk, set -1 for no limit", -2147483648.0,
            2147483647.0),
  };
  d.output_names_ = {"x", "y"};
  d.infer_shape = match_infer_shape;
  d.cpu = match_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>&) { return zero_grads(n); };
  r.add(d);
}

// ---- _contrib_box_encode -------------------------------------------------------------------------------

/// (B, N, M) of box_encode's inputs (MXNet: B, N from anchors, M from refs; every input's size must
/// agree with them); throws InferError naming the input.
void encode_dims(const std::vector<Shape>& in, int64_t* B, int64_t* N, int64_t* M) {
  const Shape &s = in[0], &m = in[1], &an = in[2], &rf = in[3];
  const std::string op = "_contrib_box_encode: ";
  if (s.rank_known() && s.ndim() != 2) throw InferError(true, 0, op + "samples must be 2D (B, N); got " + s.str());
  if (m.rank_known() && m.ndim() < 2) throw InferError(true, 1, op + "matches must be 2D (B, N); got " + m.str());
  if (an.rank_known() && (an.ndim() < 3 || (an[an.ndim() - 1] >= 0 && an[an.ndim() - 1] != 4)))
    throw InferError(true, 2, op + "anchors must be (B, N, 4); got " + an.str());
  if (rf.rank_known() && (rf.ndim() < 3 || (rf[rf.ndim() - 1] >= 0 && rf[rf.ndim() - 1] != 4)))
    throw InferError(true, 3, op + "refs must be (B, M, 4); got " + rf.str());
  *B = an.rank_known() ? an[0] : -1;
  *N = an.rank_known() ? an[1] : -1;
  *M = rf.rank_known() ? rf[1] : -1;
  if (!an.known() || !rf.known()) return;
  const int64_t bn = *B * *N;
  if (an.size() != bn * 4) throw InferError(true, 2, op + "anchors must be (B, N, 4); got " + an.str());
  if (rf.size() != *B * *M * 4)
    throw InferError(true, 3, op + "refs must be (B, M, 4) with the B of anchors " + an.str() + "; got " + rf.str());
  if (s.known() && s.size() != bn)
    throw InferError(true, 0, op + "samples must be (B, N) of anchors " + an.str() + "; got " + s.str());
  if (m.known() && m.size() != bn)
    throw InferError(true, 1, op + "matches must be (B, N) of anchors " + an.str() + "; got " + m.str());
}

void encode_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  int64_t B, N, M;
  encode_dims(*in, &B, &N, &M);
  assign_in(in, 4, Shape{4});
  assign_in(in, 5, Shape{4});
  const Shape an = (*in)[2];
  if (!an.rank_known()) return;
  assign_out(out, 0, an);
  assign_out(out, 1, an);
}

void encode_forward_cpu(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  // in: samples [B, N], matches [B, N], anchors [B, N, 4], refs [B, M, 4], means [4], stds [4]; out: targets, masks [B, N, 4]
  std::vector<Shape> shapes;
  for (const auto& b : in) shapes.push_back(b.shape);
  int64_t B, N, M;
  encode_dims(shapes, &B, &N, &M);
  KILN_CHECK(in[4].size() == 4 && in[5].size() == 4 && out[0].size() == B * N * 4 && out[1].size() == B * N * 4,
             "_contrib_box_encode: bad means/stds/output shapes");
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* samples = in[0].dptr<T>();  // [B, N]
    const T* matches = in[1].dptr<T>();  // [B, N]
    const T* anchors = in[2].dptr<T>();  // [B, N, 4]
    const T* refs = in[3].dptr<T>();     // [B, M, 4]
    const T* means = in[4].dptr<T>();    // [4]
    const T* stds = in[5].dptr<T>();     // [4]
    T* targets = out[0].dptr<T>();       // [B, N, 4]
    T* masks = out[1].dptr<T>();         // [B, N, 4]
    for (int64_t i = 0; i < B * N; ++i) {
      const bool positive = samples[i] > 0.5;
      const T mt = matches[i];
      KILN_CHECK(!positive || (mt > T(-1) && mt < (T)M),
                 "_contrib_box_encode: matches[" + std::to_string(i / N) + ", " + std::to_string(i % N) + "] = " +
                     std::to_string((double)mt) + " of a positive sample is not a row of refs (0 to " +
                     std::to_string(M - 1) + ")");
      const T* ref = positive ? refs + ((i / N) * M + (int64_t)mt) * 4 : nullptr;
      T t[4], m[4];
      box::encode(samples[i], anchors + i * 4, ref, means, stds, t, m);
      for (int k = 0; k < 4; ++k) {  // an output with a null request may have no memory
        if (req[0] != OpReq::kNullOp) assign_req(targets[i * 4 + k], req[0], t[k]);
        if (req[1] != OpReq::kNullOp) assign_req(masks[i * 4 + k], req[1], m[k]);
      }
    }
  });
}

void register_box_encode(OpRegistry& r) {
  OpDef d;
  d.name = "_contrib_box_encode";
  d.description =
      "Encodes bounding box training targets with normalized center offsets: samples (B, N) (+1 positive), matches "
      "(B, N) rows of refs, anchors (B, N, 4) and refs (B, M, 4) in corner format, means (4,), stds (4,); outputs "
      "targets and masks (B, N, 4). Zero gradients.";
  d.input_names_ = {"samples", "matches", "anchors", "refs", "means", "stds"};
  d.output_names_ = {"targets", "masks"};
  d.infer_shape = encode_infer_shape;
  d.cpu = encode_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>&) { return zero_grads(n); };
  r.add(d);
}

// ---- _contrib_box_decode -------------------------------------------------------------------------------

void decode_infer_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0], an = (*in)[1];
  const std::string op = "_contrib_box_decode: ";
  if (d.rank_known() && (d.ndim() != 3 || (d[2] >= 0 && d[2] != 4)))
    throw InferError(true, 0, op + "data must be (B, N, 4); got " + d.str());
  if (an.rank_known() && (an.ndim() < 3 || (an[an.ndim() - 1] >= 0 && an[an.ndim() - 1] != 4)))
    throw InferError(true, 1, op + "anchors must be (1, N, 4); got " + an.str());
  if (d.known() && an.known() && an.size() != d[1] * 4)
    throw InferError(true, 1, op + "anchors must hold the N = " + std::to_string(d[1]) + " boxes of data " + d.str() +
                                  "; got " + an.str());
  if (d.rank_known()) assign_out(out, 0, d);
}

void decode_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  // in: data [B, N, 4], anchors [1, N, 4]; out: [B, N, 4]
  const Shape& s = in[0].shape;
  KILN_CHECK(s.ndim() == 3 && s[2] == 4 && in[1].size() == s[1] * 4 && out[0].shape == s,
             "_contrib_box_decode: bad data/anchors/output shapes " + s.str() + ", " + in[1].shape.str());
  const int64_t N = s[1], BN = s[0] * s[1];
  const bool center = a.s("format") == "center";
  const double clip = a.f("clip");
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* x = in[0].dptr<T>();        // [B, N, 4]
    const T* anchors = in[1].dptr<T>();  // [N, 4]
    T* y = out[0].dptr<T>();             // [B, N, 4]
    const T stds[4] = {(T)(float)a.f("std0"), (T)(float)a.f("std1"), (T)(float)a.f("std2"), (T)(float)a.f("std3")};
    omp_for(omp_threads(BN * 16), BN, [&](int64_t i) {
      T o[4];
      box::decode(x + i * 4, anchors + (i % N) * 4, center, stds, clip > 0, (T)(float)clip, o);
      for (int k = 0; k < 4; ++k) assign_req(y[i * 4 + k], req[0], o[k]);
    });
  });
}

void register_box_decode(OpRegistry& r) {
  OpDef d;
  d.name = "_contrib_box_decode";
  d.description =
      "Decodes bounding box offsets data (B, N, 4) against anchors (1, N, 4) (corner or center format) into corner "
      "boxes (B, N, 4): x = d0 * std0 * aw + ax, w = exp(min(d2 * std2, clip)) * aw, ... Zero gradients.";
  d.params = {
      param("std0", ParamType::kFloat, "1", "value to be divided from the 1st encoded values"),
      param("std1", ParamType::kFloat, "1", "value to be divided from the 2nd encoded values"),
      param("std2", ParamType::kFloat, "1", "value to be divided from the 3rd encoded values"),
      param("std3", ParamType::kFloat, "1", "value to be divided from the 4th encoded values"),
      param("clip", ParamType::kFloat, "-1", "If larger than 0, bounding box target will be clipped to this value."),
      param_enum("format", "center", kFormats,
                 "The box encoding type of anchors: corner = [xmin, ymin, xmax, ymax], center = [x, y, width, height]."),
  };
  d.input_names_ = {"data", "anchors"};
  d.infer_shape = decode_infer_shape;
  d.cpu = decode_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>&) { return zero_grads(n); };
  r.add(d);
}

}  // namespace

void register_bounding_box(OpRegistry& r) {
  register_box_iou(r);
  register_box_nms(r);
  register_bipartite_matching(r);
  register_box_encode(r);
  register_box_decode(r);
}

}  // namespace contrib
}  // namespace kiln
