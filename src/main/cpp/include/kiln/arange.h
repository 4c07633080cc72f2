// _arange's range, one definition for its CPU kernel and shape inference (ops/index/sort.cc) and its
// GPU kernel (cuda/ops/tensor_misc.cu).
#pragma once
#include <cmath>
#include <cstdint>
#include <string>

#include "kiln/op.h"

namespace kiln {

struct ArangeRange {
  double start, stop, step;
  int64_t repeat, size;  // size: the number of elements, repeats included
};

/// The range of _arange's attributes: stop None means [0, start). InferError for infer_range without
/// a stop, step 0, repeat <= 0, a bound that is not finite, an empty range, or too many elements.
inline ArangeRange arange_range(const Attrs& a) {
  ArangeRange r{a.f("start"), 0, a.f("step"), a.i("repeat"), 0};
  if (a.has("stop")) r.stop = a.f("stop");
  else if (a.b("infer_range")) throw InferError(false, 0, "_arange: infer_range=True needs a stop value here");
  else {
    r.stop = r.start;
    r.start = 0;
  }
  if (r.step == 0) throw InferError(false, 0, "_arange does not support step=0");
  if (r.repeat <= 0) throw InferError(false, 0, "_arange: repeat must be positive, got " + std::to_string(r.repeat));
  if (!std::isfinite(r.start) || !std::isfinite(r.stop) || !std::isfinite(r.step))
    throw InferError(false, 0, "_arange: start, stop and step must be finite");
  const double n = std::ceil((r.stop - r.start) / r.step);
  if (r.step > 0 ? !(r.start < r.stop) : !(r.start > r.stop))
    throw InferError(false, 0, "_arange: invalid range (start, stop, step) = (" + std::to_string(r.start) + ", " +
                                   std::to_string(r.stop) + ", " + std::to_string(r.step) + ")");
  if (!(n * (double)r.repeat < 9.0e18))  // an int64 element count (the allocation limit refuses far less)
    throw InferError(false, 0, "_arange: (start, stop, step, repeat) give too many elements");
  r.size = (int64_t)n * r.repeat;
  return r;
}

}  // namespace kiln
