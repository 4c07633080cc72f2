package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.LARGE;
import static dev.kiln.ops.elemwise.ElemTesting.assertAddAccumulates;
import static dev.kiln.ops.elemwise.ElemTesting.assertInferFails;
import static dev.kiln.ops.elemwise.ElemTesting.assertShape;
import static dev.kiln.ops.elemwise.ElemTesting.assertValues;
import static dev.kiln.ops.elemwise.ElemTesting.forward;
import static dev.kiln.ops.elemwise.ElemTesting.gradCheck;
import static dev.kiln.ops.elemwise.ElemTesting.grads;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.ops.elemwise.ElemTesting.values;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** negative, exp, log, sqrt, square, abs, clip. */
@ExtendWith(NoLeaks.class)
class UnaryOpsTest {

    static final float CLIP_LO = -0.5f;
    static final float CLIP_HI = 0.75f;

    /** An op, its reference and derivative, a domain (away from kinks), and its Symbol factory. */
    record Case(String op, DoubleUnaryOperator f, DoubleUnaryOperator df, double lo, double hi, double minAbs,
            UnaryOperator<Symbol> sym) {
        double[] x(int n, long seed) {
            double[] v = rand(n, lo, hi, minAbs, seed);
            if (op.equals("clip")) {  // keep clear of the bounds (numeric gradients)
                for (int i = 0; i < v.length; i++) {
                    if (Math.abs(v[i] - CLIP_LO) < 1e-3 || Math.abs(v[i] - CLIP_HI) < 1e-3) {
                        v[i] = 0;
                    }
                }
            }
            return v;
        }

        /** Inputs for numeric gradient checks: exp over [-10, 10] would make f ~ 1e4 and central differences noisy. */
        double[] gx(int n, long seed) {
            return op.equals("exp") ? rand(n, -3, 3, 0, seed) : x(n, seed);
        }

        @Override
        public String toString() {
            return op;
        }
    }

    static final Map<String, Case> CASES = Map.of(
            "negative", new Case("negative", x -> -x, x -> -1, -3, 3, 0, d -> Symbol.negative("y", d)),
            "exp", new Case("exp", Math::exp, Math::exp, -10, 10, 0, d -> Symbol.exp("y", d)),
            "log", new Case("log", Math::log, x -> 1 / x, 0.05, 20, 0, d -> Symbol.log("y", d)),
            "sqrt", new Case("sqrt", Math::sqrt, x -> 0.5 / Math.sqrt(x), 0.05, 20, 0, d -> Symbol.sqrt("y", d)),
            "square", new Case("square", x -> x * x, x -> 2 * x, -3, 3, 0, d -> Symbol.square("y", d)),
            "abs", new Case("abs", Math::abs, Math::signum, -3, 3, 0.05, d -> Symbol.abs("y", d)),
            "clip", new Case("clip", x -> x > CLIP_HI ? CLIP_HI : x < CLIP_LO ? CLIP_LO : x,
                    x -> x >= CLIP_LO && x <= CLIP_HI ? 1 : 0, -2, 2, 0, d -> Symbol.clip("y", d, CLIP_LO, CLIP_HI)));

    static Stream<Case> cases() {
        return Stream.of("negative", "exp", "log", "sqrt", "square", "abs", "clip").map(CASES::get);
    }

    private static Symbol sym(Case c) {
        return c.sym().apply(Symbol.variable("x"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardMatchesReference(Case c) {
        long seed = 1;
        for (long[] sh : List.of(shape(1), shape(5), shape(2, 3, 4), shape(17), shape(LARGE), shape(3, 33335))) {
            double[] x = c.x(size(sh), seed++);
            double[] expected = ElemTesting.map(x, c.f());
            for (DType t : BOTH) {
                ExecTesting.Out out = forward(sym(c), shapes("x", sh), values("x", x), t);
                assertShape(sh, out.s(0), c.op());
                assertValues(expected, out.v(0), t, c.op());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void backwardMatchesAnalyticDerivative(Case c) {
        for (long[] sh : List.of(shape(2, 3, 4), shape(LARGE))) {
            int n = size(sh);
            double[] x = c.x(n, 11);
            double[] g = rand(n, -1, 1, 0, 12);
            double[] expected = new double[n];
            for (int i = 0; i < n; i++) {
                expected[i] = g[i] * c.df().applyAsDouble(x[i]);
            }
            for (DType t : BOTH) {
                Map<String, double[]> gr = grads(sym(c), shapes("x", sh), values("x", x), List.of("x"), GradReq.WRITE, 1, t,
                        List.of(g));
                assertValues(expected, gr.get("x"), t, c.op() + " d/dx");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void numericGradient(Case c) {
        gradCheck(sym(c), shapes("x", shape(2, 3, 4)), values("x", c.gx(24, 21)), List.of("x"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gradReqAddAccumulates(Case c) {
        assertAddAccumulates(sym(c), shapes("x", shape(3, 5)), values("x", c.x(15, 31)), List.of("x"));
    }

    /** Special inputs spread over a large array (vector bodies, chunk boundaries and the tail). */
    private static double[] withSpecials(double[] base, double[] specials) {
        double[] v = base.clone();
        int k = 0;
        for (int i = 0; i < v.length; i += 4099) {
            v[i] = specials[k++ % specials.length];
        }
        for (int j = 0; j < specials.length && j < 40; j++) {
            v[v.length - 1 - j] = specials[j];
            v[50_000 + j] = specials[j];
        }
        return v;
    }

    /** Within {@code ulps} units in the last place of the correctly rounded result (float32 or float64). */
    private static void assertUlps(double[] exact, double[] actual, DType t, int ulps, String what) {
        for (int i = 0; i < exact.length; i++) {
            double e = t == DType.FLOAT32 ? (double) (float) exact[i] : exact[i];
            double a = actual[i];
            if (Double.isNaN(e) || Double.isInfinite(e)) {
                if (Double.isNaN(e) ? !Double.isNaN(a) : e != a) {
                    fail(what + " " + t + "[" + i + "]: expected " + e + ", got " + a);
                }
                continue;
            }
            double ulp = t == DType.FLOAT32 ? Math.ulp((float) e) : Math.ulp(e);
            if (!(Math.abs(a - e) <= ulps * ulp)) {
                fail(what + " " + t + "[" + i + "]: expected " + e + " (input-based), got " + a + ", " + Math.abs(a - e) / ulp
                        + " ulp");
            }
        }
    }

    @Test
    void specialValuesAndRanges() {
        double inf = Double.POSITIVE_INFINITY;
        double nan = Double.NaN;
        double[] base = rand(LARGE, -3, 3, 0, 41);
        double[] expSpecials = {0, -0.0, 1e-30, 88.5, 88.72, 89, 100, -87, -100, -103.9, -104, -110, inf, -inf, nan, 1, -1};
        double[] logSpecials = {0, -0.0, -1, inf, -inf, nan, 1, 1e-40, Float.MIN_VALUE, Float.MIN_NORMAL, 1e-38,
            Float.MAX_VALUE, 0.7071067, 0.70710677, 1.0000001, 0.99999994, 2, 0.5};
        double[] sqrtSpecials = {0, -0.0, -1, inf, nan, 1e-40, Float.MIN_VALUE, Float.MAX_VALUE, 4, 2};
        double[] logBase = ElemTesting.map(base, Math::abs);
        Object[][] cases = {
            {"exp", withSpecials(base, expSpecials), (DoubleUnaryOperator) Math::exp},
            {"log", withSpecials(logBase, logSpecials), (DoubleUnaryOperator) Math::log},
            {"sqrt", withSpecials(logBase, sqrtSpecials), (DoubleUnaryOperator) Math::sqrt},
            {"negative", withSpecials(base, expSpecials), (DoubleUnaryOperator) x -> -x},
            {"square", withSpecials(base, expSpecials), (DoubleUnaryOperator) x -> x * x},
            {"abs", withSpecials(base, expSpecials), (DoubleUnaryOperator) Math::abs},
        };
        for (Object[] cs : cases) {
            String op = (String) cs[0];
            double[] x = (double[]) cs[1];
            for (DType t : BOTH) {
                // the reference sees what the kernel sees: the input rounded to the dtype
                double[] xt = t == DType.FLOAT32 ? ElemTesting.map(x, v -> (float) v) : x;
                double[] exact = ElemTesting.map(xt, (DoubleUnaryOperator) cs[2]);
                double[] got = forward(sym(CASES.get(op)), shapes("x", shape(LARGE)), values("x", x), t).v(0);
                assertUlps(exact, got, t, t == DType.FLOAT32 ? 2 : 1, op + " specials");
            }
        }
    }

    @Test
    void clipBoundsAreFloat32AndInclusive() {
        // MXNet's ClipParam holds real_t (float) bounds: float64 data is clipped at (double)(float) a_min / a_max
        Symbol s = Symbol.clip("y", Symbol.variable("x"), 0.1, 0.3);
        double[] x = {0, 0.1, 0.2, 0.3, 0.35, -1, Double.NaN};
        double lo = (float) 0.1;
        double hi = (float) 0.3;
        double[] out = forward(s, shapes("x", shape(7)), values("x", x), DType.FLOAT64).v(0);
        assertArrayEquals(new double[] {lo, lo, 0.2, 0.3, hi, lo, Double.NaN}, out, "clip float64 with float bounds");
        // gradient passes where a_min <= x <= a_max, bounds included
        Symbol c = Symbol.clip("y", Symbol.variable("x"), -1, 2);
        double[] xb = {-1, 2, -1.5, 2.5, 0, 1};
        double[] g = {1, 2, 3, 4, 5, 6};
        for (DType t : BOTH) {
            Map<String, double[]> gr = grads(c, shapes("x", shape(6)), values("x", xb), List.of("x"), GradReq.WRITE, 1, t,
                    List.of(g));
            assertValues(new double[] {1, 2, 0, 0, 5, 6}, gr.get("x"), t, "clip gradient at the bounds");
        }
    }

    @Test
    void clipWithMinAboveMaxFollowsMxnet() {
        // MXNet does not reject a_min > a_max: y = x > a_max ? a_max : (x < a_min ? a_min : x), and the
        // gradient is zero everywhere (every x is above a_max or below a_min).
        Symbol s = Symbol.clip("y", Symbol.variable("x"), 1, -1);
        double[] x = rand(LARGE, -3, 3, 0, 51);
        double[] expected = ElemTesting.map(x, v -> v > -1 ? -1 : v < 1 ? 1 : v);
        double[] g = rand(LARGE, -1, 1, 0, 52);
        for (DType t : BOTH) {
            assertValues(expected, forward(s, shapes("x", shape(LARGE)), values("x", x), t).v(0), t, "clip(1, -1)");
            Map<String, double[]> gr = grads(s, shapes("x", shape(LARGE)), values("x", x), List.of("x"), GradReq.WRITE, 1, t,
                    List.of(g));
            assertValues(new double[LARGE], gr.get("x"), t, "clip(1, -1) gradient");
        }
    }

    @Test
    void clipNeedsBothBounds() {
        Symbol x = Symbol.variable("x");
        assertThrowsMessage(() -> Symbol.create("clip", "y", Map.of("a_min", "0"), null, x), "clip",
                "required parameter 'a_max' is missing");
        assertThrowsMessage(() -> Symbol.create("clip", "y", Map.of("a_max", "1"), null, x), "clip",
                "required parameter 'a_min' is missing");
        assertThrowsMessage(() -> Symbol.create("clip", "y", Map.of("a_min", "0", "a_max", "x1"), null, x), "clip", "a_max");
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[] {1, 2}, 2);
            assertThrowsMessage(() -> NDArray.invoke("clip", Map.of("a_min", 0), a), "clip", "a_max", "missing");
        }
    }

    @Test
    void absGradientAtZeroIsZero() {
        double[] x = {0, -0.0, 1, -1};
        double[] g = {5, 5, 5, 5};
        for (DType t : BOTH) {
            Map<String, double[]> gr = grads(Symbol.abs("y", Symbol.variable("x")), shapes("x", shape(4)), values("x", x),
                    List.of("x"), GradReq.WRITE, 1, t, List.of(g));
            assertValues(new double[] {0, 0, 5, -5}, gr.get("x"), t, "abs'(0)");
        }
    }

    @Test
    void imperativeMatchesSymbolicBitForBit() {
        try (NDScope scope = NDScope.open()) {
            for (Case c : cases().toList()) {
                double[] v = c.x(LARGE, 61);
                for (DType t : BOTH) {
                    NDArray x = NDArray.create(v, LARGE).asType(t);
                    NDArray r = switch (c.op()) {
                        case "negative" -> x.neg();
                        case "exp" -> x.exp();
                        case "log" -> x.log();
                        case "sqrt" -> x.sqrt();
                        case "square" -> x.square();
                        case "abs" -> x.abs();
                        default -> x.clip(CLIP_LO, CLIP_HI);
                    };
                    assertEquals(t, r.dtype());
                    double[] got = r.toDoubleArray();
                    assertValues(ElemTesting.map(v, c.f()), got, t, "imperative " + c.op());
                    double[] symbolic = forward(sym(c), shapes("x", shape(LARGE)), values("x", v), t).v(0);
                    assertArrayEquals(symbolic, got, "imperative vs symbolic " + c.op() + " " + t);
                    // in place through invokeInto (the ops' in-place pair data -> output)
                    Map<String, Object> attrs = c.op().equals("clip") ? Map.of("a_min", CLIP_LO, "a_max", CLIP_HI) : Map.of();
                    NDArray.invokeInto(c.op(), attrs, x, x);
                    assertArrayEquals(symbolic, x.toDoubleArray(), "in place " + c.op() + " " + t);
                }
            }
        }
    }
}
