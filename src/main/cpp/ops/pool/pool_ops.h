// The pool operator family (Pooling, UpSampling, Pad, Crop): one register_* function per file,
// plus the small registration and kernel helpers the files share.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/kernel_common.h"
#include "kiln/op.h"

namespace kiln {
namespace pool {

void register_pooling(OpRegistry& r);     // pooling.cc
void register_upsampling(OpRegistry& r);  // upsampling.cc
void register_pad(OpRegistry& r);         // pad.cc
void register_crop(OpRegistry& r);        // crop.cc

/// A parameter without bounds. `def`: the default as MXNet prints it, "" = required, "None" = optional.
inline ParamDef param(const std::string& name, ParamType type, const std::string& def, const std::string& desc,
                      double lower = -1e300, double upper = 1e300) {
  ParamDef p;
  p.name = name;
  p.type = type;
  p.default_value = def;
  p.description = desc;
  p.lower = lower;
  p.upper = upper;
  return p;
}
inline ParamDef param_enum(const std::string& name, const std::string& def, std::vector<std::string> choices,
                           const std::string& desc) {
  ParamDef p = param(name, ParamType::kEnum, def, desc);
  p.choices = std::move(choices);
  return p;
}

/// The skeleton of `_backward_<fwd>`: same parameters; shapes/types come from the forward node.
inline OpDef backward_def(const std::string& name, const OpDef& fwd) {
  OpDef d;
  d.name = name;
  d.description = "Backward of " + fwd.name + ".";
  d.params = fwd.params;
  d.is_backward = true;
  d.non_differentiable = true;
  return d;
}

/// Number of OpenMP threads for a loop doing `work` element operations.
inline int omp_threads(int64_t work) { return work < kOmpMinWork ? 1 : std::max(1, num_threads()); }

/// "(a,b,c)" of a tuple parameter.
inline std::string tuple_str(const std::vector<int64_t>& t) {
  std::string s = "(";
  for (size_t i = 0; i < t.size(); ++i) s += (i ? "," : "") + std::to_string(t[i]);
  if (t.size() == 1) s += ",";
  return s + ")";
}

/// Zeroes n values unless req is kAddTo / kNullOp (the start of an accumulating backward).
template <typename DT>
inline void zero_unless_add(OpReq req, int64_t n, DT* p) {
  if (req == OpReq::kWriteTo || req == OpReq::kWriteInplace) std::fill(p, p + n, DT(0));
}

}  // namespace pool
}  // namespace kiln
