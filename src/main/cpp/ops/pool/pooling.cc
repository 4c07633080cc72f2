// Pooling and _backward_Pooling (MXNet 1.9.1 src/operator/nn/pooling.cc, pool.h).
//
// Data is channel-first: [N, C, W] (NCW), [N, C, H, W] (NCHW) or [N, C, D, H, W] (NCDHW). The
// kernels view every layout as [N*C planes, D, H, W] with the missing leading spatial dims of
// size 1 (kernel 1, stride 1, pad 0), so one loop nest serves 1-D, 2-D and 3-D pooling, and
// OpenMP splits the N*C planes.
//
// Windows are MXNet's: for output index o along a dim, start = o*stride - pad,
// end_pad = min(start + kernel, in + pad) (the avg divisor with count_include_pad),
// [max(start, 0), min(end_pad, in)) are the input elements read. Empty windows give
// lowest() for max and 0 for avg/sum/lp, as MXNet's CPU kernels (MKL-DNN for avg).
#include <limits>

#include "pool_ops.h"

namespace kiln {
namespace pool {
namespace {

enum PoolType { kMax = 0, kAvg = 1, kSum = 2, kLp = 3 };

int pool_type_of(const Attrs& a) {
  const std::string& t = a.s("pool_type");
  if (t == "max") return kMax;
  if (t == "avg") return kAvg;
  if (t == "sum") return kSum;
  return kLp;
}

/// Everything a kernel needs, spatial dims right-aligned into 3 (leading ones are trivial).
struct PoolGeom {
  int64_t planes = 0;              // N * C
  int64_t in[3], out[3], k[3], s[3], p[3];
  int type = kMax;
  int pval = 1;                    // lp only
  bool include_pad = true;         // avg only
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  int64_t out_plane() const { return out[0] * out[1] * out[2]; }
};

/// Validates the parameters against the data shape and returns the output shape (dims of the
/// input that are unknown stay unknown). Throws KilnError with MXNet-style messages.
Shape pool_out_shape(const Attrs& a, const Shape& d) {
  const int nd = d.ndim();
  const int type = pool_type_of(a);
  if (type == kLp) {
    KILN_CHECK(a.has("p_value"), "Pooling: pool_type='lp' requires p_value (1, 2 or 3)");
    const int64_t pv = a.i("p_value");
    KILN_CHECK(pv >= 1 && pv <= 3, "Pooling: p value of " + std::to_string(pv) +
                                       " is not supported yet (lp pooling supports p_value 1, 2 and 3)");
  }
  const std::string& conv = a.s("pooling_convention");
  if (conv == "same") {
    KILN_CHECK(nd == 3, "Pooling: Input data should be 3D in (batch, channel, x). Currently 'same' supports 1-D "
                        "pooling only; got data shape " + d.str());
    for (int64_t v : a.t("pad"))
      KILN_CHECK(v == 0, "Pooling: Same pooling convention disables the use of pad parameter; got pad=" +
                             tuple_str(a.t("pad")));
  }
  KILN_CHECK(nd >= 3 && nd <= 5, "Pooling: Input data should be 3D in (batch, channel, x) Or 4D in (batch, channel, "
                                 "y, x) Or 5D in (batch, channel, d, y, x); got data shape " + d.str());
  if (a.has("layout")) {
    const std::string& l = a.s("layout");
    KILN_CHECK(l == "NCW" || l == "NCHW" || l == "NCDHW",
               "Pooling: layout=" + l + " is not supported (Kiln pools channel-first data only: NCW, NCHW, NCDHW)");
    KILN_CHECK((int)l.size() == nd, "Pooling: layout=" + l + " does not match the " + std::to_string(nd) +
                                        "-D data shape " + d.str());
  }
  const int nsp = nd - 2;
  Shape o = d;
  if (a.b("global_pool")) {
    for (int i = 2; i < nd; ++i) o[i] = 1;
    return o;
  }
  const auto& k = a.t("kernel");
  const auto& s = a.t("stride");
  const auto& p = a.t("pad");
  KILN_CHECK(!k.empty(), "Pooling: kernel is required unless global_pool=True (data shape " + d.str() + ")");
  KILN_CHECK((int)k.size() == nsp, "Pooling: kernel=" + tuple_str(k) + " has " + std::to_string(k.size()) +
                                       " dims but the data shape " + d.str() + " has " + std::to_string(nsp) +
                                       " spatial dims (1-D: (batch, channel, x), 2-D: (batch, channel, y, x), 3-D: "
                                       "(batch, channel, d, y, x))");
  KILN_CHECK(s.empty() || s.size() == k.size(), "Pooling: stride=" + tuple_str(s) + " must have as many dims as kernel=" + tuple_str(k));
  const bool same = conv == "same";  // pad must be all zeros there (checked above), any length
  KILN_CHECK(same || p.empty() || p.size() == k.size(), "Pooling: pad=" + tuple_str(p) + " must have as many dims as kernel=" + tuple_str(k));
  for (int i = 0; i < nsp; ++i) {
    const int64_t ki = k[i], si = s.empty() ? 1 : s[i], pi = (same || p.empty()) ? 0 : p[i];
    KILN_CHECK(ki > 0, "Pooling: kernel=" + tuple_str(k) + " must be positive");
    KILN_CHECK(si > 0, "Pooling: stride=" + tuple_str(s) + " must be positive");
    KILN_CHECK(pi >= 0, "Pooling: pad=" + tuple_str(p) + " must be non-negative");
    const int64_t x = d[2 + i];
    if (x < 0) { o[2 + i] = -1; continue; }
    KILN_CHECK(ki <= x + 2 * pi, "Pooling: kernel size (" + std::to_string(ki) + ") exceeds input (" +
                                     std::to_string(x) + " padded to " + std::to_string(x + 2 * pi) + ") in data shape " +
                                     d.str());
    if (conv == "valid") o[2 + i] = 1 + (x + 2 * pi - ki) / si;
    else if (conv == "full") o[2 + i] = 1 + (int64_t)std::ceil((float)(x + 2 * pi - ki) / (float)si);
    else o[2 + i] = (int64_t)std::ceil((float)(x + 2 * pi) / (float)si);
  }
  return o;
}

void pool_infer_shape(const Attrs& a, std::vector<Shape>* in, std::vector<Shape>* out) {
  const Shape d = (*in)[0];
  if (!d.rank_known()) return;  // as MXNet: nothing is inferred before data's rank is known
  Shape o;
  try {
    o = pool_out_shape(a, d);
  } catch (const InferError&) {
    throw;
  } catch (const KilnError& e) {
    throw InferError(true, 0, e.what());
  }
  assign_out(out, 0, o);
}

PoolGeom pool_geom(const Attrs& a, const Shape& x, const Shape& y) {
  // x [N, C, spatial...], y [N, C, pooled spatial...]
  PoolGeom g;
  const int nd = x.ndim(), nsp = nd - 2;
  KILN_CHECK(nsp >= 1 && nsp <= 3 && y.ndim() == nd, "Pooling: bad data/output shapes " + x.str() + ", " + y.str());
  g.planes = x[0] * x[1];
  g.type = pool_type_of(a);
  g.pval = (g.type == kLp && a.has("p_value")) ? (int)a.i("p_value") : 1;
  g.include_pad = a.has("count_include_pad") ? a.b("count_include_pad") : true;
  const bool global = a.b("global_pool");
  const auto& k = a.t("kernel");
  const auto& s = a.t("stride");
  const auto& p = a.t("pad");
  for (int i = 0; i < 3; ++i) {
    const int j = i - (3 - nsp);  // spatial index, < 0 for the padding dims
    if (j < 0) {
      g.in[i] = g.out[i] = g.k[i] = g.s[i] = 1;
      g.p[i] = 0;
      continue;
    }
    g.in[i] = x[2 + j];
    g.out[i] = y[2 + j];
    if (global) {
      g.k[i] = g.in[i];
      g.s[i] = 1;
      g.p[i] = 0;
    } else {
      g.k[i] = k[j];
      g.s[i] = s.empty() ? 1 : s[j];
      g.p[i] = (p.empty() || a.s("pooling_convention") == "same") ? 0 : p[j];
    }
  }
  return g;
}

/// One window along every dim: elements [lo, hi) are read; `pad_size` is the divisor that
/// counts padding, `in_size` the one that does not.
struct Window {
  int64_t lo[3], hi[3];
  int64_t pad_size, in_size;
};

inline Window window(const PoolGeom& g, const int64_t o[3]) {
  Window w;
  w.pad_size = 1;
  w.in_size = 1;
  for (int i = 0; i < 3; ++i) {
    const int64_t st = o[i] * g.s[i] - g.p[i];
    const int64_t ep = std::min(st + g.k[i], g.in[i] + g.p[i]);
    w.pad_size *= ep - st;
    w.lo[i] = std::max<int64_t>(st, 0);
    w.hi[i] = std::min(ep, g.in[i]);
    w.in_size *= w.hi[i] - w.lo[i];
  }
  return w;
}

template <typename DT>
inline DT pow_p(DT v, int p) {
  return p == 1 ? v : p == 2 ? v * v : v * v * v;
}
template <typename DT>
inline DT root_p(DT v, int p) {
  return p == 1 ? v : p == 2 ? (DT)std::sqrt(v) : (DT)std::cbrt(v);
}
/// d y / d x * dy for lp pooling, y = (sum x^p)^(1/p).
template <typename DT>
inline DT lp_grad(DT dy, DT x, DT y, int p) {
  return p == 1 ? dy : p == 2 ? dy * x / y : dy * x * x / (y * y);
}

template <typename DT>
void pool_forward(const PoolGeom& g, const DT* x, DT* y, OpReq req) {
  // x [planes, in0, in1, in2], y [planes, out0, out1, out2]
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.in_plane(), op = g.out_plane();
  const int nt = omp_threads(g.planes * op * g.k[0] * g.k[1] * g.k[2]);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const DT* xp = x + pl * ip;  // [in0, in1, in2]
    DT* yp = y + pl * op;        // [out0, out1, out2]
    int64_t o[3];
    for (o[0] = 0; o[0] < g.out[0]; ++o[0])
      for (o[1] = 0; o[1] < g.out[1]; ++o[1])
        for (o[2] = 0; o[2] < g.out[2]; ++o[2]) {
          const Window w = window(g, o);
          DT v;
          if (g.type == kMax) {
            v = std::numeric_limits<DT>::lowest();
            for (int64_t a = w.lo[0]; a < w.hi[0]; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1]; ++b) {
                const DT* row = xp + (a * g.in[1] + b) * g.in[2];  // [in2]
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) v = row[c] > v ? row[c] : v;
              }
          } else {
            DT sum = 0;
            for (int64_t a = w.lo[0]; a < w.hi[0]; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1]; ++b) {
                const DT* row = xp + (a * g.in[1] + b) * g.in[2];  // [in2]
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) sum += pow_p(row[c], g.pval);
              }
            // avg: a window with nothing to count (entirely in the padding) gives 0, as MXNet's
            // MKL-DNN kernels (its native kernel gives 0 / 0 = NaN there)
            const int64_t cnt = g.include_pad ? w.pad_size : w.in_size;
            if (g.type == kAvg) v = cnt > 0 ? sum / DT(cnt) : DT(0);
            else v = g.type == kLp ? root_p(sum, g.pval) : sum;
          }
          assign_req(yp[(o[0] * g.out[1] + o[1]) * g.out[2] + o[2]], req, v);
        }
  }
}

template <typename DT>
void pool_backward(const PoolGeom& g, const DT* dy, const DT* x, const DT* y, DT* dx, OpReq req) {
  // dy, y [planes, out0, out1, out2]; x, dx [planes, in0, in1, in2]
  if (req == OpReq::kNullOp) return;
  const int64_t ip = g.in_plane(), op = g.out_plane();
  const int nt = omp_threads(g.planes * op * g.k[0] * g.k[1] * g.k[2]);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t pl = 0; pl < g.planes; ++pl) {
    const DT* xp = x + pl * ip;    // [in0, in1, in2]
    DT* dxp = dx + pl * ip;        // [in0, in1, in2]
    const DT* yp = y + pl * op;    // [out0, out1, out2]
    const DT* dyp = dy + pl * op;  // [out0, out1, out2]
    zero_unless_add(req, ip, dxp);
    int64_t o[3];
    for (o[0] = 0; o[0] < g.out[0]; ++o[0])
      for (o[1] = 0; o[1] < g.out[1]; ++o[1])
        for (o[2] = 0; o[2] < g.out[2]; ++o[2]) {
          const int64_t oi = (o[0] * g.out[1] + o[1]) * g.out[2] + o[2];
          const Window w = window(g, o);
          const DT gy = dyp[oi], yv = yp[oi];
          if (g.type == kMax) {
            // the first element equal to the max (in row-major window order) gets the gradient
            int64_t arg = -1;
            for (int64_t a = w.lo[0]; a < w.hi[0] && arg < 0; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1] && arg < 0; ++b)
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) {
                  const int64_t i = (a * g.in[1] + b) * g.in[2] + c;
                  if (xp[i] == yv) { arg = i; break; }
                }
            if (arg >= 0) dxp[arg] += gy;
          } else {
            const DT size = g.type == kAvg ? DT(g.include_pad ? w.pad_size : w.in_size) : DT(1);
            for (int64_t a = w.lo[0]; a < w.hi[0]; ++a)
              for (int64_t b = w.lo[1]; b < w.hi[1]; ++b)
                for (int64_t c = w.lo[2]; c < w.hi[2]; ++c) {
                  const int64_t i = (a * g.in[1] + b) * g.in[2] + c;
                  dxp[i] += (g.type == kLp ? lp_grad(gy, xp[i], yv, g.pval) : gy) / size;
                }
          }
        }
  }
}

void pool_forward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                      const std::vector<TBlob>& out) {
  const PoolGeom g = pool_geom(a, in[0].shape, out[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    pool_forward<T>(g, in[0].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

void pool_backward_cpu(const OpCtx&, const Attrs& a, const std::vector<TBlob>& in, const std::vector<OpReq>& req,
                       const std::vector<TBlob>& out) {
  // in: dy, x, y; out: dx
  const PoolGeom g = pool_geom(a, in[1].shape, in[0].shape);
  float_switch(in[0].dtype, [&](auto zero) {
    using T = decltype(zero);
    pool_backward<T>(g, in[0].dptr<T>(), in[1].dptr<T>(), in[2].dptr<T>(), out[0].dptr<T>(), req[0]);
  });
}

}  // namespace

void register_pooling(OpRegistry& r) {
  OpDef d;
  d.name = "Pooling";
  d.description =
      "Performs pooling on the input (1-D NCW, 2-D NCHW, 3-D NCDHW). pool_type max/avg/sum/lp; out = f(in, kernel, "
      "pad, stride): valid: floor((x+2p-k)/s)+1, full: ceil((x+2p-k)/s)+1, same (1-D): ceil((x+2p)/s); global_pool "
      "reduces every spatial dim to 1 and ignores kernel.";
  d.params = {
      param("kernel", ParamType::kShape, "()", "Pooling kernel size: (y, x) or (d, y, x)"),
      param_enum("pool_type", "max", {"avg", "lp", "max", "sum"}, "Pooling type to be applied."),
      param("global_pool", ParamType::kBool, "False",
            "Ignore kernel size, do global pooling based on current input feature map. "),
      param("cudnn_off", ParamType::kBool, "False", "Turn off cudnn pooling and use MXNet pooling operator. "),
      param_enum("pooling_convention", "valid", {"full", "same", "valid"}, "Pooling convention to be applied."),
      param("stride", ParamType::kShape, "()", "Stride: for pooling (y, x) or (d, y, x). Defaults to 1 for each dimension."),
      param("pad", ParamType::kShape, "()", "Pad for pooling: (y, x) or (d, y, x). Defaults to no padding."),
      param("p_value", ParamType::kInt, "None", "Value of p for Lp pooling, can be 1 or 2, required for Lp Pooling."),
      param("count_include_pad", ParamType::kBool, "None",
            "Only used for AvgPool, specify whether to count padding elements for averagecalculation. For example, "
            "with a 5*5 kernel on a 3*3 corner of a image,the sum of the 9 valid elements will be divided by 25 if "
            "this is set to true,or it will be divided by 9 if this is set to false. Defaults to true."),
      param_enum("layout", "None", {"NCDHW", "NCHW", "NCW", "NDHWC", "NHWC", "NWC"},
                 "Set layout for input and output. Empty for default layout: NCW for 1d, NCHW for 2d and NCDHW for 3d."),
  };
  d.input_names_ = {"data"};
  d.output_names_ = {"output"};
  d.infer_shape = pool_infer_shape;
  d.cpu = pool_forward_cpu;
  d.gradient = [](const NodePtr& n, const std::vector<NodeEntry>& og) {
    return make_backward("_backward_Pooling", n, {og[0], n->inputs[0], NodeEntry{n, 0}});
  };
  const OpDef& fwd = r.add(d);

  OpDef bw = backward_def("_backward_Pooling", fwd);
  bw.input_names_ = {"ograd", "data", "output"};
  bw.output_names_ = {"data_grad"};
  bw.cpu = pool_backward_cpu;
  r.add(bw);
}

}  // namespace pool
}  // namespace kiln
