package dev.kiln.gpu;

import static dev.kiln.gpu.GpuCase.uniform;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.shapes;

import dev.kiln.ndarray.DType;
import dev.kiln.op.Ops;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * GPU consistency cases of the Tensor operator family (see {@link GpuCase}): elementwise binary,
 * broadcast, scalar and unary ops, reductions, argmax/argmin, the internal ops, Cast, where,
 * _arange and the SGD updates. Backward ops are exercised through graph cases with backward (and
 * {@code addTo()} for the kAddTo path); a few cases are large (> 70k elements) so that the kernels
 * run many blocks and the reductions split into segments.
 */
final class GpuTensorCases implements GpuCases {
    private static Symbol x() {
        return Symbol.variable("x");
    }

    private static Symbol y() {
        return Symbol.variable("y");
    }

    private static int nodes;

    /** A node of {@code op} with a fresh name (graphs may hold the same op twice). */
    private static Symbol op(String op, Map<String, String> attrs, Symbol... in) {
        return Symbol.create(op, op.replace("_", "") + nodes++, attrs, null, in);
    }

    /** Values k/q for random integers k in [lo*q, hi*q): many exact ties (and zeros). */
    private static GpuCase.Gen quantized(double lo, double hi, int q) {
        return (n, seed) -> {
            Random r = new Random(seed);
            double[] v = new double[n];
            int a = (int) Math.round(lo * q), b = (int) Math.round(hi * q);
            for (int i = 0; i < n; i++) {
                v[i] = (double) (a + r.nextInt(b - a)) / q;
            }
            return v;
        };
    }

    private static final GpuCase.Gen POSITIVE = uniform(0.5, 2.0);

    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        sameShape(c);
        broadcast(c);
        scalar(c);
        unary(c);
        math(c);
        reduce(c);
        argReduce(c);
        integers(c);
        internal(c);
        cast(c);
        where(c);
        optimizer(c);
        return c;
    }

    // ---- same-shape binary ---------------------------------------------------------------------------

    private static void sameShape(List<GpuCase> c) {
        Map<String, long[]> small = shapes("x", s(3, 5), "y", s(3, 5));
        for (String o : new String[] {"elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div"}) {
            GpuCase g = GpuCase.graph(o, op(o, null, x(), y()), small).addTo();
            if (o.equals("elemwise_div")) {
                g.input("y", POSITIVE);
            }
            c.add(g);
        }
        c.add(GpuCase.graph("elemwise_mul large", op("elemwise_mul", null, x(), y()),
                shapes("x", s(301, 257), "y", s(301, 257))).addTo());
        // ties (quantized inputs) send the gradient to lhs
        c.add(GpuCase.graph("_maximum ties", op("_maximum", null, x(), y()), shapes("x", s(7, 9), "y", s(7, 9)))
                .input("x", quantized(-1, 1, 4)).input("y", quantized(-1, 1, 4)).addTo());
        c.add(GpuCase.graph("_minimum ties", op("_minimum", null, x(), y()), shapes("x", s(7, 9), "y", s(7, 9)))
                .input("x", quantized(-1, 1, 4)).input("y", quantized(-1, 1, 4)).addTo());
        c.add(GpuCase.graph("_power", op("_power", null, x(), y()), shapes("x", s(6, 11), "y", s(6, 11)))
                .input("x", POSITIVE).addTo().tol(2e-4, 1e-5, 1e-9, 1e-11));
        c.add(GpuCase.graph("_maximum large", op("_maximum", null, x(), y()),
                shapes("x", s(70007), "y", s(70007))));
    }

    // ---- broadcast -----------------------------------------------------------------------------------

    private static final String[] BROADCAST = {"broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div",
        "broadcast_maximum", "broadcast_minimum", "broadcast_power"};

    private static GpuCase bcast(String label, String o, long[] xs, long[] ys) {
        GpuCase g = GpuCase.graph(label, op(o, null, x(), y()), shapes("x", xs, "y", ys)).addTo();
        if (o.equals("broadcast_div")) {
            g.input("y", POSITIVE);
        }
        if (o.equals("broadcast_power")) {
            g.input("x", POSITIVE).tol(2e-4, 1e-5, 1e-9, 1e-11);
        }
        if (o.equals("broadcast_maximum") || o.equals("broadcast_minimum")) {
            g.input("x", quantized(-1, 1, 4)).input("y", quantized(-1, 1, 4));
        }
        return g;
    }

    private static void broadcast(List<GpuCase> c) {
        for (String o : BROADCAST) {
            // both sides broadcast, different ranks
            c.add(bcast(o + " [4,1,5]x[3,1]", o, s(4, 1, 5), s(3, 1)));
            // rhs a trailing vector
            c.add(bcast(o + " [2,3,4,5]x[5]", o, s(2, 3, 4, 5), s(5)));
        }
        // no broadcasting at all (one-pass backward)
        c.add(bcast("broadcast_mul same shape", "broadcast_mul", s(4, 6), s(4, 6)));
        c.add(bcast("broadcast_add same shape", "broadcast_add", s(4, 6), s(4, 6)));
        // lhs broadcast (the reduced gradient is the lhs one)
        c.add(bcast("broadcast_sub [1,7]x[5,7]", "broadcast_sub", s(1, 7), s(5, 7)));
        c.add(bcast("broadcast_div [5,1]x[5,7]", "broadcast_div", s(5, 1), s(5, 7)));
        // large: rhs gradient reduced over the outer axis (column reduction in segments)
        c.add(bcast("broadcast_mul large [300,260]x[1,260]", "broadcast_mul", s(300, 260), s(1, 260)));
        // large: reduced over the inner axis (row reduction)
        c.add(bcast("broadcast_add large [260,300]x[260,1]", "broadcast_add", s(260, 300), s(260, 1)));
        // large: a single broadcast scalar (one output, segmented row reduction)
        c.add(bcast("broadcast_maximum large [78001]x[1]", "broadcast_maximum", s(78001), s(1)));
        c.add(bcast("broadcast_sub large [3,40,700]x[40,1]", "broadcast_sub", s(3, 40, 700), s(40, 1)));
    }

    // ---- scalar --------------------------------------------------------------------------------------

    private static GpuCase scalarCase(String label, String o, String scalar, long[] shape) {
        return GpuCase.graph(label, op(o, Map.of("scalar", scalar), x()), shapes("x", shape)).addTo();
    }

    private static void scalar(List<GpuCase> c) {
        c.add(scalarCase("_plus_scalar", "_plus_scalar", "1.5", s(4, 7)));
        c.add(scalarCase("_minus_scalar", "_minus_scalar", "0.25", s(4, 7)));
        c.add(scalarCase("_rminus_scalar", "_rminus_scalar", "3", s(4, 7)));
        c.add(scalarCase("_mul_scalar", "_mul_scalar", "-2.5", s(4, 7)));
        c.add(scalarCase("_div_scalar", "_div_scalar", "3", s(4, 7)));
        c.add(scalarCase("_rdiv_scalar", "_rdiv_scalar", "2", s(4, 7)).input("x", POSITIVE));
        c.add(scalarCase("_maximum_scalar ties", "_maximum_scalar", "0.25", s(5, 9)).input("x", quantized(-1, 1, 4)));
        c.add(scalarCase("_minimum_scalar ties", "_minimum_scalar", "-0.5", s(5, 9)).input("x", quantized(-1, 1, 4)));
        c.add(scalarCase("_power_scalar 2", "_power_scalar", "2", s(5, 9)));
        c.add(scalarCase("_power_scalar 1", "_power_scalar", "1", s(5, 9)));
        c.add(scalarCase("_power_scalar 2.5", "_power_scalar", "2.5", s(5, 9)).input("x", POSITIVE)
                .tol(2e-4, 1e-5, 1e-9, 1e-11));
        c.add(scalarCase("_rpower_scalar", "_rpower_scalar", "1.7", s(5, 9)).tol(2e-4, 1e-5, 1e-9, 1e-11));
        c.add(scalarCase("_rdiv_scalar large", "_rdiv_scalar", "-1.5", s(71003)).input("x", POSITIVE));
    }

    // ---- unary ---------------------------------------------------------------------------------------

    private static void unary(List<GpuCase> c) {
        c.add(GpuCase.graph("negative", op("negative", null, x()), shapes("x", s(3, 8))).addTo());
        c.add(GpuCase.graph("exp", op("exp", null, x()), shapes("x", s(3, 8))).addTo());
        c.add(GpuCase.graph("exp large", op("exp", null, x()), shapes("x", s(70001))));
        c.add(GpuCase.graph("log", op("log", null, x()), shapes("x", s(3, 8))).input("x", POSITIVE).addTo());
        c.add(GpuCase.graph("sqrt", op("sqrt", null, x()), shapes("x", s(3, 8))).input("x", POSITIVE).addTo());
        c.add(GpuCase.graph("square", op("square", null, x()), shapes("x", s(3, 8))).addTo());
        c.add(GpuCase.graph("abs with zeros", op("abs", null, x()), shapes("x", s(5, 8)))
                .input("x", quantized(-1, 1, 4)).addTo());
        // bounds hit exactly (inclusive gradient) by the quantized inputs
        c.add(GpuCase.graph("clip", op("clip", Map.of("a_min", "-0.5", "a_max", "0.25"), x()), shapes("x", s(6, 9)))
                .input("x", quantized(-1, 1, 4)).addTo());
        c.add(GpuCase.graph("clip large", op("clip", Map.of("a_min", "-0.3", "a_max", "0.7"), x()),
                shapes("x", s(90, 800))));
        // chains: exp's gradient is elemwise_mul(ograd, y), negative's is negative(ograd)
        c.add(GpuCase.graph("log(sqrt(square))", op("log", null, op("sqrt", null, op("square", null, x()))),
                shapes("x", s(4, 6))).input("x", POSITIVE).addTo());
    }

    // ---- math ops of kiln/elemwise_math.h ---------------------------------------------------------

    private static void math(List<GpuCase> c) {
        GpuCase.Gen unit = uniform(-0.9, 0.9);
        Map<String, GpuCase.Gen> domain = new LinkedHashMap<>();
        for (String o : new String[] {"relu", "sigmoid", "tanh", "softsign", "sin", "cos", "tan", "arctan", "sinh", "cosh",
            "arcsinh", "degrees", "radians", "expm1", "erf", "hard_sigmoid"}) {
            domain.put(o, uniform(-2, 2));
        }
        for (String o : new String[] {"arcsin", "arccos", "arctanh", "erfinv", "log1p"}) {
            domain.put(o, unit);
        }
        for (String o : new String[] {"reciprocal", "rsqrt", "cbrt", "rcbrt", "log10", "log2", "gamma", "gammaln"}) {
            domain.put(o, POSITIVE);
        }
        domain.put("arccosh", uniform(1.1, 3));
        domain.forEach((o, gen) -> c.add(GpuCase.graph(o, op(o, null, x()), shapes("x", s(4, 9))).input("x", gen).addTo()
                .tol(2e-4, 1e-5, 1e-9, 1e-11)));
        c.add(GpuCase.graph("hard_sigmoid alpha=0.3 beta=0.4", op("hard_sigmoid", Map.of("alpha", "0.3", "beta", "0.4"), x()),
                shapes("x", s(5, 9))).input("x", uniform(-4, 4)).addTo());
        c.add(GpuCase.graph("sigmoid large", op("sigmoid", null, x()), shapes("x", s(70001))));
        c.add(GpuCase.graph("tanh(sin) chain", op("tanh", null, op("sin", null, x())), shapes("x", s(6, 7))).addTo());
        // zero-gradient ops, on halves and ties (MXNet's rint: n.5 gives n)
        for (String o : new String[] {"floor", "ceil", "round", "rint", "trunc", "fix", "sign", "logical_not"}) {
            c.add(GpuCase.graph(o, op("elemwise_mul", null, op(o, null, x()), y()), shapes("x", s(5, 8), "y", s(5, 8)))
                    .input("x", quantized(-3, 3, 2)).addTo());
        }
        // comparisons and logical ops (no gradient): same shape, broadcast, scalar, on ties and zeros
        for (String o : new String[] {"equal", "not_equal", "greater", "greater_equal", "lesser", "lesser_equal",
            "logical_and", "logical_or", "logical_xor"}) {
            c.add(GpuCase.graph("_" + o, op("_" + o, null, x(), y()), shapes("x", s(5, 8), "y", s(5, 8)))
                    .input("x", quantized(-1, 1, 2)).input("y", quantized(-1, 1, 2)));
            c.add(GpuCase.graph("broadcast_" + o, op("broadcast_" + o, null, x(), y()), shapes("x", s(4, 1, 5), "y", s(3, 1)))
                    .input("x", quantized(-1, 1, 2)).input("y", quantized(-1, 1, 2)));
            c.add(GpuCase.graph("_" + o + "_scalar", op("_" + o + "_scalar", Map.of("scalar", "0.5"), x()),
                    shapes("x", s(5, 8))).input("x", quantized(-1, 1, 2)));
        }
        GpuCase.Gen away = (n, seed) -> {  // |v| in [0.7, 2.5]: no zero divisor, no mod jump at v / 1.5 integer
            double[] v = uniform(0.7, 2.5).apply(n, seed);
            for (int i = 0; i < n; i++) {
                v[i] = (i % 2 == 0 ? 1 : -1) * (Math.abs(v[i] / 1.5 - Math.rint(v[i] / 1.5)) < 0.05 ? 1.1 : v[i]);
            }
            return v;
        };
        for (String o : new String[] {"_mod", "_hypot"}) {
            c.add(GpuCase.graph(o, op(o, null, x(), y()), shapes("x", s(5, 8), "y", s(5, 8))).input("x", uniform(-3, 3))
                    .input("y", away).addTo());
        }
        for (String o : new String[] {"broadcast_mod", "broadcast_hypot"}) {
            c.add(GpuCase.graph(o, op(o, null, x(), y()), shapes("x", s(4, 1, 5), "y", s(3, 1))).input("x", uniform(-3, 3))
                    .input("y", away).addTo());
        }
        c.add(scalarCase("_mod_scalar", "_mod_scalar", "1.5", s(5, 8)).input("x", away));
        c.add(scalarCase("_rmod_scalar", "_rmod_scalar", "2.5", s(5, 8)).input("x", away));
        c.add(scalarCase("_hypot_scalar", "_hypot_scalar", "-1.5", s(5, 8)));
        c.add(scalarCase("smooth_l1", "smooth_l1", "1.5", s(6, 9)).input("x", uniform(-2, 2)));
        // moments: mean and variance over some axes (kept), over all
        c.add(GpuCase.graph("moments axes=(0,2) keepdims", op("moments", Map.of("axes", "(0, 2)", "keepdims", "True"), x()),
                shapes("x", s(3, 4, 5))).addTo());
        c.add(GpuCase.graph("moments all", op("moments", Map.of(), x()), shapes("x", s(6, 7))).addTo());
        // cumsum: along an axis, flattened, int32 (wrapping) and a float64 output of float32 data
        c.add(GpuCase.graph("cumsum axis=1", op("cumsum", Map.of("axis", "1"), x()), shapes("x", s(3, 40, 5))).addTo());
        c.add(GpuCase.graph("_np_cumsum flat", op("_np_cumsum", Map.of(), x()), shapes("x", s(6, 7))).addTo());
        c.add(GpuCase.invoke("cumsum int32", "cumsum", Map.of("axis", "0"), s(50, 3)).input("in0", quantized(-9, 9, 1))
                .dtypes(DType.INT32).tol(0, 0, 0, 0));
        c.add(GpuCase.invoke("cumsum dtype=float64", "cumsum", Map.of("dtype", "float64"), s(4, 5)).dtypes(DType.FLOAT32));
        // contrib: straight-through estimators (gradient passed through), gradient multiplier, div_sqrt_dim
        for (String o : new String[] {"_contrib_round_ste", "_contrib_sign_ste"}) {
            c.add(GpuCase.graph(o, op("elemwise_mul", null, op(o, null, x()), y()), shapes("x", s(5, 8), "y", s(5, 8)))
                    .input("x", quantized(-3, 3, 2)).addTo());
        }
        c.add(GpuCase.graph("_contrib_gradientmultiplier", op("_contrib_gradientmultiplier", Map.of("scalar", "-0.5"), x()),
                shapes("x", s(6, 7))).addTo());
        c.add(GpuCase.graph("_contrib_div_sqrt_dim", op("_contrib_div_sqrt_dim", null, x()), shapes("x", s(3, 4, 10))).addTo());
        c.add(GpuCase.invoke("_contrib_div_sqrt_dim integers", "_contrib_div_sqrt_dim", Map.of(), s(4, 5))
                .input("in0", quantized(-20, 20, 1)).dtypes(DType.INT32).tol(0, 0, 0, 0));
        for (String o : new String[] {"sigmoid", "degrees", "rint", "sign", "_mod_scalar", "_greater_scalar"}) {
            Map<String, String> a = o.endsWith("_scalar") ? Map.of("scalar", "2") : Map.of();
            c.add(GpuCase.invoke(o + " integers", o, a, s(5, 8)).input("in0", quantized(-6, 7, 1)).dtypes(DType.INT32)
                    .tol(0, 0, 0, 0));
        }
    }

    // ---- reductions --------------------------------------------------------------------------------

    private static GpuCase red(String o, Map<String, String> attrs, long[] shape, String what) {
        GpuCase g = GpuCase.graph(o + " " + what, op(o, attrs, x()), shapes("x", shape)).addTo();
        if (o.equals("max") || o.equals("min")) {
            g.input("x", quantized(-1, 1, 8));  // ties: every position equal to the extremum gets the gradient
        }
        return g;
    }

    private static void reduce(List<GpuCase> c) {
        for (String o : new String[] {"sum", "mean", "max", "min"}) {
            c.add(red(o, null, s(4, 5, 6), "all"));
            c.add(red(o, Map.of("axis", "1"), s(4, 5, 6), "axis=1"));
            c.add(red(o, Map.of("axis", "(0, 2)", "keepdims", "True"), s(4, 5, 6), "axis=(0,2) keepdims"));
            c.add(red(o, Map.of("axis", "-1"), s(4, 5, 6), "axis=-1"));
            c.add(red(o, Map.of("axis", "1", "exclude", "True"), s(4, 5, 6), "exclude axis=1"));
        }
        // prod, nansum, nanprod, norm: quantized inputs hold zeros (prod's exact gradient) and ties
        for (String o : new String[] {"prod", "nansum", "nanprod", "norm"}) {
            c.add(red(o, Map.of("axis", "1"), s(4, 5, 6), "axis=1").input("x", quantized(-1, 1, 4)));
            c.add(red(o, Map.of("axis", "(0, 2)", "keepdims", "True"), s(4, 5, 6), "axis=(0,2) keepdims"));
            c.add(red(o, null, s(3, 4), "all"));
        }
        c.add(red("norm", Map.of("ord", "1", "axis", "-1"), s(6, 7), "ord=1 axis=-1").input("x", quantized(-1, 1, 4)));
        c.add(red("norm", Map.of("axis", "1"), s(300, 301), "large axis=1"));
        c.add(red("prod", Map.of("axis", "0"), s(300, 301), "large axis=0").input("x", uniform(0.95, 1.05)));
        // large: inner (row), outer (column, segmented), everything (one output, segmented)
        c.add(red("sum", Map.of("axis", "1"), s(300, 301), "large axis=1"));
        c.add(red("sum", Map.of("axis", "0"), s(300, 301), "large axis=0"));
        c.add(red("mean", null, s(90011), "large all"));
        c.add(red("max", Map.of("axis", "0"), s(2000, 40), "large axis=0"));
        c.add(red("min", Map.of("axis", "(0, 2)"), s(50, 3, 600), "large axis=(0,2)"));
        c.add(red("sum", Map.of("axis", "(1, 3)", "keepdims", "True"), s(3, 4, 5, 6, 7), "rank 5 axis=(1,3)"));
    }

    private static void argReduce(List<GpuCase> c) {
        for (String o : new String[] {"argmax", "argmin"}) {
            c.add(GpuCase.invoke(o + " axis=1", o, Map.of("axis", "1"), s(6, 9, 4)).input("in0", quantized(-1, 1, 4)));
            c.add(GpuCase.invoke(o + " axis=-1 keepdims", o, Map.of("axis", "-1", "keepdims", "True"), s(6, 9, 4))
                    .input("in0", quantized(-1, 1, 4)));
            c.add(GpuCase.invoke(o + " all", o, Map.of(), s(7, 13)).input("in0", quantized(-1, 1, 8)));
            c.add(GpuCase.invoke(o + " int32", o, Map.of("axis", "0"), s(11, 5)).input("in0", quantized(-50, 50, 1))
                    .dtypes(DType.INT32));
            c.add(GpuCase.invoke(o + " large axis=1", o, Map.of("axis", "1"), s(3, 70001)));
            c.add(GpuCase.invoke(o + " large axis=0", o, Map.of("axis", "0"), s(1000, 90)));
        }
        // NaN: the first NaN's position wins (as MXNet 1.9 and NumPy)
        double nan = Double.NaN;
        for (String o : new String[] {"argmax", "argmin"}) {
            for (String axis : new String[] {"0", "1"}) {
                c.add(GpuCase.invoke(o + " NaN axis=" + axis, o, Map.of("axis", axis), s(3, 4))
                        .input("in0", 1, nan, 3, 2, 4, 5, nan, nan, nan, 0, 9, -9).tol(0, 0, 0, 0));
            }
        }
        // in a graph: the gradient is zeros_like
        c.add(GpuCase.graph("argmax in a graph", op("broadcast_add", null, op("argmax", Map.of("axis", "1"), x()), y()),
                shapes("x", s(5, 6), "y", s(5))).addTo());
    }

    // ---- integer arrays (the integer wrapper: float64 kernels, results wrapped into the type) ------------

    private static void integers(List<GpuCase> c) {
        DType[] ints = {DType.INT32, DType.UINT8, DType.INT8, DType.INT64};
        // values that wrap in 8 bits, and zeros (division by zero gives 0 on both devices)
        GpuCase.Gen wide = quantized(-150, 150, 1);
        for (String o : new String[] {"elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_maximum", "_minimum"}) {
            c.add(GpuCase.invoke(o + " integers", o, Map.of(), s(7, 9), s(7, 9)).input("in0", wide).input("in1", quantized(-9, 9, 1))
                    .dtypes(ints).tol(0, 0, 0, 0));
        }
        c.add(GpuCase.invoke("_power integers", "_power", Map.of(), s(5, 6), s(5, 6)).input("in0", quantized(-4, 5, 1))
                .input("in1", quantized(0, 4, 1)).dtypes(ints).tol(0, 0, 0, 0));
        // int64 powers up to 9^16 (CUDA's pow may be 2 ulp off: k_pow computes integer powers exactly),
        // and odd int64 values above 2^52, which every operation must keep exact
        c.add(GpuCase.invoke("_power int64 large", "_power", Map.of(), s(4, 5), s(4, 5)).input("in0", quantized(2, 10, 1))
                .input("in1", quantized(10, 17, 1)).dtypes(DType.INT64).tol(0, 0, 0, 0));
        GpuCase.Gen above52 = (n, seed) -> {
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = (i % 2 == 0 ? 1 : -1) * (4503599627370497.0 + 2 * i * (seed % 1000 + 1));
            }
            return v;
        };
        for (String o : new String[] {"elemwise_add", "elemwise_div"}) {
            c.add(GpuCase.invoke(o + " int64 above 2^52", o, Map.of(), s(3, 4), s(3, 4)).input("in0", above52)
                    .input("in1", quantized(1, 3, 1)).dtypes(DType.INT64).tol(0, 0, 0, 0));
        }
        for (String o : new String[] {"broadcast_add", "broadcast_mul", "broadcast_div", "broadcast_maximum"}) {
            c.add(GpuCase.invoke(o + " integers", o, Map.of(), s(4, 1, 6), s(3, 1)).input("in0", wide).input("in1", quantized(-5, 5, 1))
                    .dtypes(ints).tol(0, 0, 0, 0));
        }
        for (String o : new String[] {"_plus_scalar", "_mul_scalar", "_div_scalar", "_rdiv_scalar", "_minimum_scalar", "_rminus_scalar"}) {
            c.add(GpuCase.invoke(o + " integers scalar=-2.7", o, Map.of("scalar", "-2.7"), s(6, 7)).input("in0", wide).dtypes(ints)
                    .tol(0, 0, 0, 0));
        }
        for (String o : new String[] {"negative", "abs", "square", "sqrt", "exp", "log"}) {
            c.add(GpuCase.invoke(o + " integers", o, Map.of(), s(5, 8)).input("in0", quantized(-6, 7, 1)).dtypes(ints).tol(0, 0, 0, 0));
        }
        c.add(GpuCase.invoke("clip integers", "clip", Map.of("a_min", "-3.5", "a_max", "20.9"), s(5, 8)).input("in0", wide)
                .dtypes(ints).tol(0, 0, 0, 0));
        for (String o : new String[] {"sum", "mean", "max", "min"}) {
            c.add(GpuCase.invoke(o + " integers axis=1", o, Map.of("axis", "1"), s(6, 50)).input("in0", wide).dtypes(ints)
                    .tol(0, 0, 0, 0));
        }
        c.add(GpuCase.invoke("add_n integers", "add_n", Map.of("num_args", "3"), s(40), s(40), s(40)).input("in0", wide)
                .input("in1", wide).input("in2", wide).dtypes(ints).tol(0, 0, 0, 0));
        c.add(GpuCase.invoke("ones_like integers", "ones_like", Map.of(), s(3, 5)).dtypes(ints).tol(0, 0, 0, 0));
    }

    // ---- internal ops ---------------------------------------------------------------------------------

    private static void internal(List<GpuCase> c) {
        c.add(GpuCase.graph("identity", op("elemwise_mul", null, op("identity", null, x()), y()),
                shapes("x", s(4, 5), "y", s(4, 5))).addTo());
        c.add(GpuCase.graph("BlockGrad", op("elemwise_add", null, op("BlockGrad", null, op("square", null, x())), y()),
                shapes("x", s(4, 5), "y", s(4, 5))).addTo());
        c.add(GpuCase.graph("zeros_like", op("elemwise_add", null, op("zeros_like", null, x()), y()),
                shapes("x", s(3, 7), "y", s(3, 7))).addTo());
        c.add(GpuCase.graph("ones_like", op("elemwise_mul", null, op("ones_like", null, x()), y()),
                shapes("x", s(3, 7), "y", s(3, 7))).addTo());
        Symbol[] none = new Symbol[0];
        c.add(GpuCase.graph("_zeros", op("broadcast_add", null, op("_zeros", Map.of("shape", "(3, 7)"), none), x()),
                shapes("x", s(3, 7))).addTo().dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("_zeros float64", op("broadcast_add", null,
                op("_zeros", Map.of("shape", "(3, 1)", "dtype", "float64"), none), x()),
                shapes("x", s(3, 7))).addTo().dtypes(DType.FLOAT64));
        c.add(GpuCase.graph("_arange", op("broadcast_mul", null, x(),
                op("_arange", Map.of("start", "2", "stop", "11", "step", "1.5", "repeat", "2"), none)),
                shapes("x", s(3, 12))).addTo().dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("_arange float64", op("broadcast_add", null, x(),
                op("_arange", Map.of("start", "-3", "stop", "3", "step", "0.25", "dtype", "float64"), none)),
                shapes("x", s(2, 24))).dtypes(DType.FLOAT64));
        c.add(GpuCase.graph("_arange int32 to float32", op("broadcast_add", null, x(),
                op("Cast", Map.of("dtype", "float32"),
                        op("_arange", Map.of("start", "7", "step", "-2", "stop", "-8", "dtype", "int32"), none))),
                shapes("x", s(8))).dtypes(DType.FLOAT32));
        // creation ops (ops/index/creation.cc, cuda/ops/tensor_creation.cu)
        // (float64 graphs: a fixed output type mixed with a float16 x would be refused, see LowPrecisionOpsTest)
        c.add(GpuCase.graph("_ones", op("elemwise_mul", null, op("_ones", Map.of("shape", "(3, 0)", "dtype", "float64"), none), x()),
                shapes("x", s(3, 7))).addTo().dtypes(DType.FLOAT64));
        c.add(GpuCase.graph("_full float64", op("broadcast_mul", null, x(),
                op("_full", Map.of("shape", "(1, 7)", "value", "-2.75", "dtype", "float64"), none)),
                shapes("x", s(3, 7))).addTo().dtypes(DType.FLOAT64));
        c.add(GpuCase.invoke("_full uint8 wraps", "_full", Map.of("shape", "(4, 3)", "value", "300", "dtype", "uint8")));
        c.add(GpuCase.graph("_zeros_without_dtype", op("elemwise_add", null, op("_zeros_without_dtype", Map.of("shape", "(0, 0)"), none), x()),
                shapes("x", s(5, 3))).addTo());
        c.add(GpuCase.graph("_eye", op("broadcast_add", null, x(), op("_eye", Map.of("N", "6", "M", "9", "k", "2", "dtype", "float64"), none)),
                shapes("x", s(6, 9))).addTo().dtypes(DType.FLOAT64));
        c.add(GpuCase.invoke("_eye float32", "_eye", Map.of("N", "5", "M", "8", "k", "-1")));
        c.add(GpuCase.invoke("_eye int32 k=-3", "_eye", Map.of("N", "70", "k", "-3", "dtype", "int32")));
        c.add(GpuCase.graph("_linspace float64", op("broadcast_mul", null, x(),
                op("_linspace", Map.of("start", "-1.5", "stop", "20", "num", "333", "dtype", "float64"), none)),
                shapes("x", s(2, 333))).addTo().dtypes(DType.FLOAT64));
        c.add(GpuCase.invoke("_linspace no endpoint", "_linspace", Map.of("start", "3", "stop", "-4", "num", "70001", "endpoint", "False")));
        c.add(GpuCase.invoke("_linspace float16", "_linspace", Map.of("start", "0", "stop", "10", "num", "99", "dtype", "float16")));
        // random ops (ops/random/random.cc, cuda/ops/random.cu): one seed per call from the executor's
        // generator (seed 0 on both devices here) and per-element counter-based streams, so the GPU draws
        // the CPU's values (up to the last bits of log, cos and lgamma)
        c.add(GpuCase.graph("_random_uniform", op("broadcast_add", null, x(),
                op("_random_uniform", Map.of("low", "-3", "high", "2", "shape", "(40, 50)", "dtype", "float64"), none)),
                shapes("x", s(40, 50))).addTo().dtypes(DType.FLOAT64));
        c.add(GpuCase.graph("_random_uniform float32", op("_random_uniform", Map.of("shape", "(33, 50)"), none), Map.of()).forwardOnly());
        c.add(GpuCase.graph("_random_normal float64", op("broadcast_add", null, x(),
                op("_random_normal", Map.of("loc", "1", "scale", "3", "shape", "(40, 50)", "dtype", "float64"), none)),
                shapes("x", s(40, 50))).addTo().dtypes(DType.FLOAT64));
        // (graph cases: an executor's generator starts at its seed; imperative calls share a thread's)
        c.add(GpuCase.graph("_random_randint int64", op("broadcast_add", null, x(), op("Cast", Map.of("dtype", "float64"),
                op("_random_randint", Map.of("low", "-1000000000000", "high", "99", "shape", "(3000,)", "dtype", "int64"), none))),
                shapes("x", s(3000))).dtypes(DType.FLOAT64));
        c.add(GpuCase.graph("_random_randint int32", op("broadcast_add", null, x(), op("Cast", Map.of("dtype", "float64"),
                op("_random_randint", Map.of("low", "-5", "high", "6", "shape", "(70, 30)"), none))),
                shapes("x", s(70, 30))).dtypes(DType.FLOAT64));
        for (String[] d : new String[][] {{"_random_exponential", "lam", "0.5"}, {"_random_gamma", "alpha", "0.4"},
                {"_random_gamma", "alpha", "7"}, {"_random_poisson", "lam", "3"}, {"_random_poisson", "lam", "25"}}) {
            c.add(GpuCase.graph(d[0] + " " + d[1] + "=" + d[2], op("broadcast_add", null, x(),
                    op(d[0], Map.of(d[1], d[2], "shape", "(3000,)", "dtype", "float64"), none)), shapes("x", s(3000))).dtypes(DType.FLOAT64));
        }
        c.add(GpuCase.graph("_random_uniform_like", op("elemwise_add", null, x(), op("_random_uniform_like", Map.of("low", "5", "high", "6"), y())),
                shapes("x", s(30, 20), "y", s(30, 20))).addTo());
        c.add(GpuCase.graph("_random_normal_like", op("elemwise_add", null, x(), op("_random_normal_like", Map.of(), y())),
                shapes("x", s(30, 20), "y", s(30, 20))).addTo());
        c.add(GpuCase.graph("_shuffle", op("_shuffle", null, x()), shapes("x", s(300, 7))).forwardOnly());
        c.add(GpuCase.graph("_shuffle float64 rows of 1", op("_shuffle", null, x()), shapes("x", s(1001))).forwardOnly().dtypes(DType.FLOAT64));
        c.add(GpuCase.custom("random distributions on the GPU", dev.kiln.ops.elemwise.RandomOpsTest::checkOn, "_random_uniform",
                "_random_normal", "_random_randint", "_random_exponential", "_random_gamma", "_random_poisson", "_random_uniform_like",
                "_random_normal_like", "_shuffle"));
        c.add(GpuCase.invoke("_identity_with_attr_like_rhs", "_identity_with_attr_like_rhs", Map.of(),
                s(4, 6), s(4, 6)));
        Symbol[] three = {Symbol.variable("a"), Symbol.variable("b"), Symbol.variable("d")};
        c.add(GpuCase.graph("ElementWiseSum", op("ElementWiseSum", Map.of("num_args", "3"), three),
                shapes("a", s(5, 7), "b", s(5, 7), "d", s(5, 7))).addTo());
        long[][] many = new long[40][];
        for (int i = 0; i < many.length; i++) {
            many[i] = s(3, 33);
        }
        c.add(GpuCase.invoke("ElementWiseSum 40 inputs", "ElementWiseSum", Map.of("num_args", "40"), many));
        // 70 inputs: three runs of the GPU kernel through its running sum, write and add
        Symbol[] seventy = new Symbol[70];
        Map<String, long[]> seventyShapes = new java.util.LinkedHashMap<>();
        for (int i = 0; i < seventy.length; i++) {
            seventy[i] = Symbol.variable("x" + i);
            seventyShapes.put("x" + i, s(4, 9));
        }
        c.add(GpuCase.graph("ElementWiseSum 70 inputs", op("ElementWiseSum", Map.of("num_args", "70"), seventy),
                seventyShapes).addTo());
        c.add(GpuCase.invoke("ElementWiseSum large", "ElementWiseSum", Map.of("num_args", "2"), s(70001), s(70001)));
        c.add(GpuCase.invoke("_grad_add", "_grad_add", Map.of(), s(6, 5), s(6, 5)));
        // x feeds two consumers: the gradient pass sums their gradients (ElementWiseSum / _grad_add)
        Symbol shared = x();
        c.add(GpuCase.graph("gradient accumulation", op("elemwise_add", null, op("square", null, shared),
                op("exp", null, shared)), shapes("x", s(4, 9))).addTo());
        for (String norm : new String[] {"null", "batch", "valid"}) {
            c.add(GpuCase.graph("MakeLoss " + norm, op("MakeLoss",
                    Map.of("normalization", norm, "grad_scale", "0.5", "valid_thresh", "0.1"),
                    op("elemwise_mul", null, x(), y())), shapes("x", s(6, 7), "y", s(6, 7))).addTo());
        }
        c.add(GpuCase.graph("MakeLoss valid large", op("MakeLoss", Map.of("normalization", "valid"),
                op("elemwise_mul", null, x(), y())), shapes("x", s(80001), "y", s(80001))));
        // _NoGradient is a placeholder that is never executed (its kernels, CPU and GPU, throw)
        c.add(GpuCase.custom("_NoGradient is never executed", ctx -> {
            if (Ops.info("_NoGradient") == null) {
                throw new AssertionError("_NoGradient is not registered");
            }
        }, "_NoGradient"));
    }

    // ---- Cast ---------------------------------------------------------------------------------------

    private static Symbol halfRoundTrip() {
        return op("Cast", Map.of("dtype", "float32"), op("Cast", Map.of("dtype", "float16"), x()));
    }

    private static void cast(List<GpuCase> c) {
        GpuCase.Gen wide = uniform(-100, 100);
        GpuCase.Gen bytes = uniform(0, 200);
        c.add(GpuCase.invoke("Cast to int32", "Cast", Map.of("dtype", "int32"), s(5, 9)).input("in0", wide));
        c.add(GpuCase.invoke("Cast to int64", "Cast", Map.of("dtype", "int64"), s(5, 9)).input("in0", wide));
        c.add(GpuCase.invoke("Cast to int8", "Cast", Map.of("dtype", "int8"), s(5, 9)).input("in0", wide));
        c.add(GpuCase.invoke("Cast to uint8", "Cast", Map.of("dtype", "uint8"), s(5, 9)).input("in0", bytes));
        // NaN, infinities and values beyond the type: defined as on the CPU (kiln/int_convert.h)
        double[] special = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, -1.5, 300.7, -300.7, 3e9, -3e9,
            1e19, -1e19, 2.9, -0.5};
        for (String t : List.of("int8", "uint8", "int32", "int64")) {
            c.add(GpuCase.invoke("Cast specials to " + t, "Cast", Map.of("dtype", t), s(12)).input("in0", special).forwardOnly());
        }
        c.add(GpuCase.invoke("Cast to float64", "Cast", Map.of("dtype", "float64"), s(5, 9)));
        c.add(GpuCase.invoke("Cast to float32", "Cast", Map.of("dtype", "float32"), s(5, 9)));
        c.add(GpuCase.invoke("Cast uint8 to float64", "Cast", Map.of("dtype", "float64"), s(4, 6))
                .input("in0", quantized(0, 255, 1)).type("in0", DType.UINT8).dtypes(DType.FLOAT32));
        // float16 results are read back through a second Cast (the host cannot convert float16)
        c.add(GpuCase.graph("Cast float16 wide", halfRoundTrip(), shapes("x", s(5, 9))).input("x", wide).forwardOnly());
        c.add(GpuCase.graph("Cast large float16", halfRoundTrip(), shapes("x", s(70001))).input("x", wide)
                .forwardOnly());
        c.add(GpuCase.graph("Cast int32 to float16", halfRoundTrip(), shapes("x", s(4, 6)))
                .input("x", quantized(-3000, 3000, 1)).type("x", DType.INT32).dtypes(DType.FLOAT32).forwardOnly());
        // backward: _backward_Cast casts the float16 / float64 gradient back
        c.add(GpuCase.graph("Cast float16 round trip", op("Cast", Map.of("dtype", "float32"),
                op("Cast", Map.of("dtype", "float16"), x())), shapes("x", s(4, 9))).addTo()
                .tol(1e-3, 1e-3, 1e-9, 1e-11));
        c.add(GpuCase.graph("Cast to float64", op("Cast", Map.of("dtype", "float64"), x()), shapes("x", s(4, 9)))
                .addTo().dtypes(DType.FLOAT32));
        // bfloat16 casts: the same bits as the CPU (one rounding to nearest even from float32)
        c.add(GpuCase.invoke("Cast to bfloat16", "Cast", Map.of("dtype", "bfloat16"), s(5, 9)).input("in0", wide)
                .dtypes(DType.FLOAT32, DType.FLOAT16).tol(0, 0, 0, 0));
        c.add(GpuCase.invoke("Cast bfloat16 to float16", "Cast", Map.of("dtype", "float16"), s(5, 9)).input("in0", wide)
                .dtypes(DType.BFLOAT16).tol(0, 0, 0, 0));
        c.add(GpuCase.invoke("Cast large int32 to bfloat16", "Cast", Map.of("dtype", "bfloat16"), s(6, 7))
                .input("in0", quantized(-1e8, 1e8, 1)).type("in0", DType.INT32).dtypes(DType.FLOAT32).tol(0, 0, 0, 0));

        // amp_cast / amp_multicast (the AMP pass's casts): float16/bfloat16/float32 only; float64 passes through
        c.add(GpuCase.graph("amp_cast float16 round trip", op("amp_cast", Map.of("dtype", "float32"),
                op("amp_cast", Map.of("dtype", "float16"), x())), shapes("x", s(4, 9))).addTo()
                .tol(1e-3, 1e-3, 1e-9, 1e-11));
        c.add(GpuCase.graph("amp_cast bfloat16 round trip", op("amp_cast", Map.of("dtype", "float32"),
                op("amp_cast", Map.of("dtype", "bfloat16"), x())), shapes("x", s(4, 9))).addTo()
                .tol(8e-3, 8e-3, 1e-9, 1e-11));
        Symbol mc = op("amp_multicast", Map.of("num_outputs", "2"), op("amp_cast", Map.of("dtype", "float16"), x()), y());
        c.add(GpuCase.graph("amp_multicast widest", op("elemwise_mul", null, mc.get(0), mc.get(1)),
                shapes("x", s(3, 7), "y", s(3, 7))).addTo().dtypes(DType.FLOAT32).tol(1e-3, 1e-3, 1e-9, 1e-11));
        Symbol narrow = op("amp_multicast", Map.of("num_outputs", "2", "cast_narrow", "True"),
                op("amp_cast", Map.of("dtype", "float16"), x()), y());
        c.add(GpuCase.graph("amp_multicast narrow", op("elemwise_mul", null, narrow.get(0), narrow.get(1)),
                shapes("x", s(3, 7), "y", s(3, 7))).addTo().dtypes(DType.FLOAT32).tol(3e-3, 3e-3, 1e-9, 1e-11));
    }

    // ---- where ---------------------------------------------------------------------------------------

    private static void where(List<GpuCase> c) {
        Symbol cond = Symbol.variable("cond");
        GpuCase.Gen mask = quantized(-1, 2, 1);  // -1, 0, 1: nonzero is true
        c.add(GpuCase.graph("where", op("where", null, cond, x(), y()),
                shapes("cond", s(5, 8), "x", s(5, 8), "y", s(5, 8))).input("cond", mask).addTo());
        c.add(GpuCase.graph("where 1-D condition", op("where", null, cond, x(), y()),
                shapes("cond", s(5), "x", s(5, 8), "y", s(5, 8))).input("cond", mask).noGrad("cond").addTo());
        c.add(GpuCase.graph("where large", op("where", null, cond, x(), y()),
                shapes("cond", s(300, 250), "x", s(300, 250), "y", s(300, 250))).input("cond", mask));
        c.add(GpuCase.invoke("where int32 condition", "where", Map.of(), s(4, 6), s(4, 6), s(4, 6))
                .input("in0", mask).type("in0", DType.INT32));
        c.add(GpuCase.invoke("where int32 values", "where", Map.of(), s(4, 6), s(4, 6), s(4, 6))
                .input("in0", mask).input("in1", quantized(-9, 9, 1)).input("in2", quantized(-9, 9, 1))
                .dtypes(DType.INT32));
    }

    // ---- optimizer updates kept in elemwise.cu --------------------------------------------------------

    private static void optimizer(List<GpuCase> c) {
        c.add(GpuCase.invoke("sgd_update", "sgd_update", Map.of("lr", 0.1, "wd", 0.01, "clip_gradient", 0.5),
                s(7, 3), s(7, 3)));
        c.add(GpuCase.invoke("sgd_mom_update", "sgd_mom_update", Map.of("lr", 0.1, "momentum", 0.9, "wd", 0.01),
                s(7), s(7), s(7)));
    }
}
