// Binary elementwise operators, same shape and NumPy-broadcast:
//   elemwise_add (_plus, _Plus, _add)      broadcast_add (broadcast_plus)
//   elemwise_sub (_minus, _Minus, _sub)    broadcast_sub (broadcast_minus)
//   elemwise_mul (_mul, _Mul)              broadcast_mul
//   elemwise_div (_div, _Div)              broadcast_div
//   _maximum (_Maximum)                    broadcast_maximum
//   _minimum (_Minimum)                    broadcast_minimum
//   _power (_Power)                        broadcast_power
//   _mod (_Mod)                            broadcast_mod
//   _hypot (_Hypot)                        broadcast_hypot
// plus their backward ops, and the comparisons and logical ops of kiln/elemwise_math.h (1 or 0 in
// the data's type, zero gradient): _equal, _not_equal, _greater, _greater_equal, _lesser,
// _lesser_equal, _logical_and, _logical_or, _logical_xor (aliases _Equal, _Not_Equal, ...) and
// broadcast_equal ... broadcast_logical_xor. mod and hypot are functors of that header too. One functor per operation holds the forward map and both partial
// derivatives (MXNet mshadow_op semantics), so forward and backward read side by side.
//
// Shapes: n = number of output elements. Same-shape ops: lhs, rhs, out all [n]. Broadcast ops:
// lhs and rhs right-aligned, each dim equal to the output's or 1; out = the broadcast shape.
#include <cmath>
#include <string>
#include <vector>

#include "kiln/elemwise_math.h"
#include "kiln/kernel_common.h"
#include "kiln/op.h"
#include "kiln/simd.h"

namespace kiln {
namespace elemwise {

// Shared helpers (elemwise_ops.cc).
bool all_zero(const std::vector<NodeEntry>& ograds);
std::vector<NodeEntry> zero_grads(const NodePtr& fwd);
NodeEntry grad_op(const std::string& op, const NodePtr& fwd, const std::map<std::string, std::string>& attrs,
                  const std::vector<NodeEntry>& inputs);
std::vector<NodeEntry> backward_or_zeros(const std::string& op, const NodePtr& fwd, const std::vector<NodeEntry>& ograds,
                                         const std::vector<NodeEntry>& inputs);

namespace {

// ------------------------------------------------------------------------------------------
// Functors: fwd(a, b); lgrad(g, a, b) = g * d fwd / d a; rgrad(g, a, b) = g * d fwd / d b.
// kUsesInputs = false: the backward reads only g (lgrad = kLScale * g, rgrad = kRScale * g).
// ------------------------------------------------------------------------------------------

struct AddOp {
  static constexpr bool kUsesInputs = false;
  static constexpr double kLScale = 1.0, kRScale = 1.0;
  template <typename T> static T fwd(T a, T b) { return a + b; }
  template <typename T> static T lgrad(T g, T, T) { return g; }
  template <typename T> static T rgrad(T g, T, T) { return g; }
};

struct SubOp {
  static constexpr bool kUsesInputs = false;
  static constexpr double kLScale = 1.0, kRScale = -1.0;
  template <typename T> static T fwd(T a, T b) { return a - b; }
  template <typename T> static T lgrad(T g, T, T) { return g; }
  template <typename T> static T rgrad(T g, T, T) { return -g; }
};

struct MulOp {
  static constexpr bool kUsesInputs = true;
  static constexpr double kLScale = 0.0, kRScale = 0.0;
  template <typename T> static T fwd(T a, T b) { return a * b; }
  template <typename T> static T lgrad(T g, T, T b) { return g * b; }
  template <typename T> static T rgrad(T g, T a, T) { return g * a; }
};

struct DivOp {
  static constexpr bool kUsesInputs = true;
  static constexpr double kLScale = 0.0, kRScale = 0.0;
  template <typename T> static T fwd(T a, T b) { return a / b; }
  template <typename T> static T lgrad(T g, T, T b) { return g / b; }
  template <typename T> static T rgrad(T g, T a, T b) { return g * (-a / (b * b)); }
};

/// MXNet's g * (cond ? 1 : 0), written as a select so that it vectorizes on AVX2 too (GCC turns the
/// product into a branch holding g * 0 that it may not if-convert under -ftrapping-math). Same
/// bits as MXNet for finite g (copysign keeps the sign of g * 0); a non-finite g gives +-0 where
/// MXNet gives NaN.
template <typename T>
inline T pass_if(bool cond, T g) {
  return cond ? g : std::copysign(T(0), g);
}

// MXNet maximum: NaN if either is NaN (MXNet 1.9: IsNan(a) ? a : a > b ? a : b), else the larger.
// Gradient to lhs where a >= b (ties go to lhs), to rhs where a < b (neither for a NaN).
struct MaxOp {
  static constexpr bool kUsesInputs = true;
  static constexpr double kLScale = 0.0, kRScale = 0.0;
  template <typename T> static T fwd(T a, T b) { return (a > b || a != a) ? a : b; }
  template <typename T> static T lgrad(T g, T a, T b) { return pass_if(a >= b, g); }
  template <typename T> static T rgrad(T g, T a, T b) { return pass_if(a < b, g); }
};

// MXNet minimum: NaN if either is NaN, else the smaller. Gradient to lhs where a <= b, to rhs where a > b.
struct MinOp {
  static constexpr bool kUsesInputs = true;
  static constexpr double kLScale = 0.0, kRScale = 0.0;
  template <typename T> static T fwd(T a, T b) { return (a < b || a != a) ? a : b; }
  template <typename T> static T lgrad(T g, T a, T b) { return pass_if(a <= b, g); }
  template <typename T> static T rgrad(T g, T a, T b) { return pass_if(a > b, g); }
};

// a^b (libm pow, scalar loop). d/da = b * a^(b-1); d/db = a^b * log(a) (NaN for a < 0, as MXNet).
struct PowOp {
  static constexpr bool kUsesInputs = true;
  static constexpr double kLScale = 0.0, kRScale = 0.0;
  template <typename T> static T fwd(T a, T b) { return std::pow(a, b); }
  template <typename T> static T lgrad(T g, T a, T b) { return g * (std::pow(a, b - T(1)) * b); }
  template <typename T> static T rgrad(T g, T a, T b) { return g * (std::pow(a, b) * std::log(a)); }
};

using InplacePairs = std::vector<std::pair<int, int>>;

/// Scratch memory: the executor's workspace when it is large enough, else the heap.
struct Scratch {
  std::vector<char> heap;
  void* ptr = nullptr;
  Scratch(const OpCtx& ctx, size_t bytes) {
    if (ctx.workspace != nullptr && ctx.workspace_bytes >= bytes) {
      ptr = ctx.workspace;
    } else {
      heap.resize(bytes);
      ptr = heap.data();
    }
  }
};

// ------------------------------------------------------------------------------------------
// Same-shape kernels
// ------------------------------------------------------------------------------------------

// out[i] = Op(lhs[i], rhs[i]). in: lhs [n], rhs [n]; out: [n] (may alias lhs or rhs).
template <class Op>
void binary_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                    const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* a = in[0].dptr<T>();  // lhs [n]
    const T* b = in[1].dptr<T>();  // rhs [n]
    T* y = out[0].dptr<T>();       // [n]
    simd::map(out[0].size(), req[0], y, [=](int64_t i) { return Op::fwd(a[i], b[i]); });
  });
}

// _backward_<op> (mul, div, maximum, minimum, power): in: ograd [n], lhs [n], rhs [n];
// out: lhs_grad [n], rhs_grad [n]. In-place ograd -> rhs_grad (MXNet {0, 1}): one pass reads all
// three inputs at i before writing either output at i.
template <class Op>
void binary_backward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                     const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [n]
    const T* a = in[1].dptr<T>();  // lhs [n]
    const T* b = in[2].dptr<T>();  // rhs [n]
    T* da = out[0].dptr<T>();      // [n]
    T* db = out[1].dptr<T>();      // [n]
    simd::map2(in[0].size(), req[0], da, req[1], db,
               [=](int64_t i) { return Op::lgrad(g[i], a[i], b[i]); },
               [=](int64_t i) { return Op::rgrad(g[i], a[i], b[i]); });
  });
}

// ------------------------------------------------------------------------------------------
// Broadcast kernels
// ------------------------------------------------------------------------------------------

/// MXNet BinaryBroadcastShape: right-aligned; dims equal, or one of them 1; a dim unknown on
/// either side stays unknown. No back-inference from the output.
void infer_broadcast_shape(const Attrs&, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape& l = (*in)[0];
  const Shape& r = (*in)[1];
  if (!l.rank_known() || !r.rank_known()) return;
  if (l == r) {
    assign_out(out, 0, l);
    return;
  }
  const int n = std::max(l.ndim(), r.ndim());
  Shape o = Shape::unknown_dims(n);
  for (int i = 0; i < n; ++i) {
    const int il = i - (n - l.ndim()), ir = i - (n - r.ndim());
    const int64_t a = il >= 0 ? l[il] : 1, b = ir >= 0 ? r[ir] : 1;
    if (a < 0 || b < 0) continue;
    if (a == b) {
      o[i] = a;
    } else if (a == 1 || b == 1) {
      o[i] = a == 1 ? b : a;
    } else {
      throw InferError(true, 1, "operands could not be broadcast together with shapes " + l.str() + " " + r.str());
    }
  }
  assign_out(out, 0, o);
}

// out = Op(broadcast(lhs), broadcast(rhs)). in: lhs, rhs (broadcastable); out: [n] (may alias an
// input of the same size).
template <class Op>
void broadcast_forward(const OpCtx&, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(out[0].dtype, T, {
    const T* a = in[0].dptr<T>();  // lhs
    const T* b = in[1].dptr<T>();  // rhs
    T* y = out[0].dptr<T>();       // [n]
    const int64_t n = out[0].size();
    if (in[0].size() == n && in[1].size() == n) {  // no broadcasting: flat map
      simd::map(n, req[0], y, [=](int64_t i) { return Op::fwd(a[i], b[i]); });
    } else {
      const simd::BcastPlan p = simd::make_bcast_plan(out[0].shape, {in[0].shape, in[1].shape});
      simd::bcast_apply<2>(p, req[0], y, a, b, static_cast<const T*>(nullptr),
                        [](T x, T z) { return Op::fwd(x, z); });
    }
  });
}

// _backward_broadcast_<op>. in: ograd [n] (+ lhs, rhs when Op::kUsesInputs); out: lhs_grad
// (lhs's shape), rhs_grad (rhs's shape). The gradient of a broadcast input is the elementwise
// gradient summed over its broadcast axes.
// Order: gradients that need a reduction are computed first (they read every input in full),
// full-size ones last; a full-size output may therefore alias ograd (MXNet's in-place {0, 0},
// {0, 1} / {0, 1}), and with two full-size outputs both are written in one pass.
template <class Op>
void broadcast_backward(const OpCtx& ctx, const Attrs&, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                        const std::vector<TBlob>& out) {
  KILN_FLOAT_SWITCH(in[0].dtype, T, {
    const T* g = in[0].dptr<T>();  // ograd [n]
    const T* a = Op::kUsesInputs ? in[1].dptr<T>() : nullptr;  // lhs
    const T* b = Op::kUsesInputs ? in[2].dptr<T>() : nullptr;  // rhs
    const int64_t n = in[0].size();
    const bool full0 = out[0].size() == n, full1 = out[1].size() == n;
    if (full0 && full1) {  // no broadcasting at all
      if constexpr (Op::kUsesInputs) {
        simd::map2(n, req[0], out[0].dptr<T>(), req[1], out[1].dptr<T>(),
                   [=](int64_t i) { return Op::lgrad(g[i], a[i], b[i]); },
                   [=](int64_t i) { return Op::rgrad(g[i], a[i], b[i]); });
      } else {
        const T sl = (T)Op::kLScale, sr = (T)Op::kRScale;
        simd::map2(n, req[0], out[0].dptr<T>(), req[1], out[1].dptr<T>(),
                   [=](int64_t i) { return sl * g[i]; }, [=](int64_t i) { return sr * g[i]; });
      }
      return;
    }
    const Shape& og_shape = in[0].shape;
    simd::BcastPlan plan3;
    if constexpr (Op::kUsesInputs) plan3 = simd::make_bcast_plan(og_shape, {og_shape, out[0].shape, out[1].shape});
    // 1. outputs that are reductions of the full-size gradient
    for (int k = 0; k < 2; ++k) {
      if (req[k] == OpReq::kNullOp || out[k].size() == n) continue;
      T* dk = out[k].dptr<T>();  // lhs or rhs shape
      const simd::ReducePlan rp = simd::make_reduce_plan(og_shape, out[k].shape);
      if constexpr (Op::kUsesInputs) {
        Scratch tmp(ctx, (size_t)n * sizeof(T));
        T* t = static_cast<T*>(tmp.ptr);  // [n] elementwise gradient before the reduction
        if (k == 0) simd::bcast_apply<3>(plan3, OpReq::kWriteTo, t, g, a, b, [](T x, T l, T r) { return Op::lgrad(x, l, r); });
        else simd::bcast_apply<3>(plan3, OpReq::kWriteTo, t, g, a, b, [](T x, T l, T r) { return Op::rgrad(x, l, r); });
        simd::reduce_apply(rp, simd::SumReducer<T>(), static_cast<const T*>(t), req[k], dk);
      } else {
        simd::SumReducer<T> r;
        r.alpha = k == 0 ? Op::kLScale : Op::kRScale;
        simd::reduce_apply(rp, r, g, req[k], dk);
      }
    }
    // 2. full-size outputs (the other input is broadcast)
    for (int k = 0; k < 2; ++k) {
      if (req[k] == OpReq::kNullOp || out[k].size() != n) continue;
      T* dk = out[k].dptr<T>();  // [n]
      if constexpr (Op::kUsesInputs) {
        if (k == 0) simd::bcast_apply<3>(plan3, req[k], dk, g, a, b, [](T x, T l, T r) { return Op::lgrad(x, l, r); });
        else simd::bcast_apply<3>(plan3, req[k], dk, g, a, b, [](T x, T l, T r) { return Op::rgrad(x, l, r); });
      } else {
        const T s = (T)(k == 0 ? Op::kLScale : Op::kRScale);
        simd::map(n, req[k], dk, [=](int64_t i) { return s * g[i]; });
      }
    }
  });
}

/// Scratch for the elementwise gradient of a reduced input: n elements of up to 8 bytes.
size_t broadcast_backward_workspace(const Attrs&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  if (in.empty() || !in[0].known()) return 0;
  const int64_t n = in[0].size();
  for (const auto& s : out)
    if (s.known() && s.size() != n) return (size_t)n * sizeof(double);
  return 0;
}

// ------------------------------------------------------------------------------------------
// Registration
// ------------------------------------------------------------------------------------------

OpDef binary_def(const std::string& name, std::vector<std::string> aliases, const std::string& desc) {
  OpDef d;
  d.name = name;
  d.aliases = std::move(aliases);
  d.description = desc;
  d.input_names_ = {"lhs", "rhs"};
  d.output_names_ = {"output"};
  d.inplace = [](const Attrs&) { return InplacePairs{{0, 0}, {1, 0}}; };
  d.integers_via_float64 = true;  // integer arrays as MXNet's integer arithmetic (kiln/low_precision.h)
  return d;
}

OpDef backward_def(const std::string& name, std::vector<std::string> inputs, InplacePairs inplace) {
  OpDef d;
  d.name = name;
  d.description = "Backward of " + name.substr(std::string("_backward_").size()) +
                  ": gradients of lhs and rhs from the output gradient.";
  d.input_names_ = std::move(inputs);
  d.output_names_ = {"lhs_grad", "rhs_grad"};
  d.is_backward = true;
  d.non_differentiable = true;
  d.inplace = [inplace](const Attrs&) { return inplace; };
  return d;
}

/// Gradient rule of the "UseIn" ops: _backward_<op>(ograd, lhs, rhs) -> (lhs_grad, rhs_grad).
GradFn use_in_grad(const std::string& backward_op) {
  return [backward_op](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
    return backward_or_zeros(backward_op, fwd, og, {og[0], fwd->inputs[0], fwd->inputs[1]});
  };
}

template <class Op>
void add_same_shape(OpRegistry& reg, const std::string& name, std::vector<std::string> aliases, const std::string& desc,
                    const std::string& backward_op) {
  OpDef d = binary_def(name, std::move(aliases), desc);
  d.infer_shape = infer_same_shape;
  d.cpu = binary_forward<Op>;
  d.gradient = use_in_grad(backward_op);
  reg.add(std::move(d));
  OpDef b = backward_def(backward_op, {"ograd", "lhs", "rhs"}, {{0, 1}});
  b.cpu = binary_backward<Op>;
  reg.add(std::move(b));
}

template <class Op>
void add_broadcast(OpRegistry& reg, const std::string& name, std::vector<std::string> aliases, const std::string& desc) {
  const std::string bw = "_backward_" + name;
  OpDef d = binary_def(name, std::move(aliases), desc);
  d.infer_shape = infer_broadcast_shape;
  d.cpu = broadcast_forward<Op>;
  if (Op::kUsesInputs) {
    d.gradient = use_in_grad(bw);
  } else {
    d.gradient = [bw](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      return backward_or_zeros(bw, fwd, og, {og[0]});
    };
  }
  reg.add(std::move(d));
  OpDef b = Op::kUsesInputs ? backward_def(bw, {"ograd", "lhs", "rhs"}, {{0, 1}})
                            : backward_def(bw, {"ograd"}, {{0, 0}, {0, 1}});
  b.cpu = broadcast_backward<Op>;
  if (Op::kUsesInputs) b.workspace = broadcast_backward_workspace;  // add/sub reduce ograd directly
  reg.add(std::move(b));
}

/// A comparison or logical op (kiln/elemwise_math.h functor), same-shape or broadcast: zero gradient.
template <class Op>
void add_comparison(OpRegistry& reg, const std::string& name, std::vector<std::string> aliases, const std::string& desc,
                    bool broadcast) {
  OpDef d = binary_def(name, std::move(aliases), desc + " Gives 1 or 0 in the inputs' dtype; zero gradient.");
  d.infer_shape = broadcast ? infer_broadcast_shape : infer_same_shape;
  d.cpu = broadcast ? broadcast_forward<Op> : binary_forward<Op>;
  d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>&) { return zero_grads(fwd); };
  reg.add(std::move(d));
}

struct ModOp : math::Mod {
  static constexpr double kLScale = 0.0, kRScale = 0.0;
};
struct HypotOp : math::Hypot {
  static constexpr double kLScale = 0.0, kRScale = 0.0;
};

void register_comparison(OpRegistry& reg) {
  const struct {
    const char* same;
    const char* alias;
    const char* bcast;
    const char* desc;
    void (*add)(OpRegistry&, const std::string&, std::vector<std::string>, const std::string&, bool);
  } table[] = {
      {"_equal", "_Equal", "broadcast_equal", "lhs == rhs, element-wise.", add_comparison<math::Equal>},
      {"_not_equal", "_Not_Equal", "broadcast_not_equal", "lhs != rhs, element-wise.", add_comparison<math::NotEqual>},
      {"_greater", "_Greater", "broadcast_greater", "lhs > rhs, element-wise.", add_comparison<math::Greater>},
      {"_greater_equal", "_Greater_Equal", "broadcast_greater_equal", "lhs >= rhs, element-wise.",
       add_comparison<math::GreaterEqual>},
      {"_lesser", "_Lesser", "broadcast_lesser", "lhs < rhs, element-wise.", add_comparison<math::Lesser>},
      {"_lesser_equal", "_Lesser_Equal", "broadcast_lesser_equal", "lhs <= rhs, element-wise.",
       add_comparison<math::LesserEqual>},
      {"_logical_and", "_Logical_And", "broadcast_logical_and", "Logical and (nonzero is true), element-wise.",
       add_comparison<math::LogicalAnd>},
      {"_logical_or", "_Logical_Or", "broadcast_logical_or", "Logical or (nonzero is true), element-wise.",
       add_comparison<math::LogicalOr>},
      {"_logical_xor", "_Logical_Xor", "broadcast_logical_xor", "Logical xor (nonzero is true), element-wise.",
       add_comparison<math::LogicalXor>},
  };
  for (const auto& t : table) {
    t.add(reg, t.same, {t.alias}, t.desc, false);
    t.add(reg, t.bcast, {}, std::string(t.desc) + " With NumPy broadcasting.", true);
  }
}

}  // namespace

void register_binary(OpRegistry& reg) {
  // elemwise_add: the same ograd entry goes to both inputs (MXNet CloneGradient; no node).
  {
    OpDef d = binary_def("elemwise_add", {"_plus", "_Plus", "_add"}, "Adds arguments element-wise (same shapes).");
    d.infer_shape = infer_same_shape;
    d.cpu = binary_forward<AddOp>;
    d.gradient = [](const NodePtr&, const std::vector<NodeEntry>& og) { return std::vector<NodeEntry>{og[0], og[0]}; };
    reg.add(std::move(d));
  }
  // elemwise_sub: lhs gets ograd itself, rhs gets negative(ograd).
  {
    OpDef d = binary_def("elemwise_sub", {"_minus", "_Minus", "_sub"}, "Subtracts arguments element-wise (same shapes).");
    d.infer_shape = infer_same_shape;
    d.cpu = binary_forward<SubOp>;
    d.gradient = [](const NodePtr& fwd, const std::vector<NodeEntry>& og) {
      if (all_zero(og)) return zero_grads(fwd);
      return std::vector<NodeEntry>{og[0], grad_op("negative", fwd, {}, {og[0]})};
    };
    reg.add(std::move(d));
  }
  add_same_shape<MulOp>(reg, "elemwise_mul", {"_mul", "_Mul"}, "Multiplies arguments element-wise (same shapes).",
                        "_backward_mul");
  add_same_shape<DivOp>(reg, "elemwise_div", {"_div", "_Div"}, "Divides arguments element-wise (same shapes).",
                        "_backward_div");
  add_same_shape<MaxOp>(reg, "_maximum", {"_Maximum"},
                        "Element-wise maximum (same shapes); the gradient goes to lhs where lhs >= rhs.",
                        "_backward_maximum");
  add_same_shape<MinOp>(reg, "_minimum", {"_Minimum"},
                        "Element-wise minimum (same shapes); the gradient goes to lhs where lhs <= rhs.",
                        "_backward_minimum");
  add_same_shape<PowOp>(reg, "_power", {"_Power"}, "First array raised to the powers of the second, element-wise.",
                        "_backward_power");
  add_same_shape<ModOp>(reg, "_mod", {"_Mod"},
                        "Remainder of lhs / rhs with the sign of rhs (Python's %), element-wise; 0 where rhs is 0.",
                        "_backward_mod");
  add_same_shape<HypotOp>(reg, "_hypot", {"_Hypot"}, "sqrt(lhs^2 + rhs^2), element-wise, without overflow.",
                          "_backward_hypot");
}

void register_broadcast(OpRegistry& reg) {
  add_broadcast<AddOp>(reg, "broadcast_add", {"broadcast_plus"}, "Element-wise sum with NumPy broadcasting.");
  add_broadcast<SubOp>(reg, "broadcast_sub", {"broadcast_minus"}, "Element-wise difference with NumPy broadcasting.");
  add_broadcast<MulOp>(reg, "broadcast_mul", {}, "Element-wise product with NumPy broadcasting.");
  add_broadcast<DivOp>(reg, "broadcast_div", {}, "Element-wise division with NumPy broadcasting.");
  add_broadcast<MaxOp>(reg, "broadcast_maximum", {},
                       "Element-wise maximum with NumPy broadcasting; ties send the gradient to lhs.");
  add_broadcast<MinOp>(reg, "broadcast_minimum", {},
                       "Element-wise minimum with NumPy broadcasting; ties send the gradient to lhs.");
  add_broadcast<PowOp>(reg, "broadcast_power", {}, "Element-wise power with NumPy broadcasting.");
  add_broadcast<ModOp>(reg, "broadcast_mod", {},
                       "Remainder with the sign of rhs (Python's %) with NumPy broadcasting; 0 where rhs is 0.");
  add_broadcast<HypotOp>(reg, "broadcast_hypot", {}, "sqrt(lhs^2 + rhs^2) with NumPy broadcasting.");
  register_comparison(reg);
}

}  // namespace elemwise
}  // namespace kiln
