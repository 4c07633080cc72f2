// Helpers shared by Embedding and the Sequence* ops (embedding.cc, sequence.cc): registration
// helpers (from the nn family), dtype dispatch and index reading (from the index family), and the
// [T, N, rest] / [N, T, rest] view of a sequence tensor.
//
// Dimension letters: T = sequence length (max_seq_len), N = batch, R = product of the remaining
// dims ("rest"); V = vocabulary (input_dim), D = embedding size (output_dim), K = number of indices.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "../index/index_common.h"
#include "../nn/nn_ops.h"
#include "seq_ops.h"

namespace kiln {
namespace seq {

using nn::param_range;

/// Reads a 1-D array of any dtype as integers the way MXNet's kernels do (static_cast, i.e.
/// truncation toward zero); NaN and values outside int64 become INT64_MIN.
inline std::vector<int64_t> read_ints(const TBlob& b) {
  std::vector<int64_t> v((size_t)b.size());
  index_ops::any_switch(b.dtype, [&](auto z) {
    using I = decltype(z);
    const I* p = b.dptr<I>();  // [n]
    for (size_t i = 0; i < v.size(); ++i) v[i] = index_ops::index_value(p[i]);
  });
  return v;
}

/// A rank >= 2 sequence tensor seen as [d0, d1, R]: axis 0 means [T, N, R], axis 1 [N, T, R].
struct SeqView {
  int64_t T = 0, N = 0, R = 1;
  int axis = 0;
  /// Offset of element (t, b, 0).
  int64_t at(int64_t t, int64_t b) const { return (axis == 0 ? t * N + b : b * T + t) * R; }
};

inline SeqView seq_view(const Shape& s, int axis) {
  KILN_CHECK(s.ndim() >= 2, "sequence op: the data array must be of rank 2 or greater, got " + s.str());
  SeqView v;
  v.axis = axis;
  v.T = s[axis];
  v.N = s[1 - axis];
  v.R = s.prod(2, s.ndim());
  return v;
}

/// Per-batch sequence lengths: sequence_length[b] truncated toward zero and clamped into
/// [lo, T] (MXNet reads out of bounds outside that range; Kiln clamps, docs/mxnet-differences.md),
/// or T for every b when there is no sequence_length input.
inline std::vector<int64_t> seq_lengths(const TBlob* len, const SeqView& v, int64_t lo) {
  std::vector<int64_t> L((size_t)v.N, v.T);
  if (len == nullptr) return L;
  KILN_CHECK(len->size() == v.N, "sequence op: sequence_length " + len->shape.str() + " must have one entry per batch element (" +
                                     std::to_string(v.N) + ")");
  const std::vector<int64_t> raw = read_ints(*len);
  for (int64_t b = 0; b < v.N; ++b) L[b] = std::min(std::max(raw[b], lo), v.T);
  return L;
}

}  // namespace seq
}  // namespace kiln
