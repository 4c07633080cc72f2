package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.LARGE;
import static dev.kiln.ops.elemwise.ElemTesting.assertAddAccumulates;
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
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The MXNet math ops of one input (kiln/elemwise_math.h): forward against Java references
 * (java.lang.Math, and the series and Lanczos references below for erf, erfinv, gamma, digamma),
 * the backward against the analytic derivative, float64 numeric gradients, grad_req=add, the
 * zero-gradient rounding ops, special values and errors.
 */
@ExtendWith(NoLeaks.class)
class MathOpsTest {

    /** An op with attributes, its reference and derivative, and a domain (|x| >= minAbs) away from kinks. */
    record Case(String op, Map<String, String> attrs, DoubleUnaryOperator f, DoubleUnaryOperator df, double lo, double hi,
            double minAbs) {
        Symbol sym() {
            return Symbol.create(op, "y", attrs, null, Symbol.variable("x"));
        }

        double[] x(int n, long seed) {
            return rand(n, lo, hi, minAbs, seed);
        }

        @Override
        public String toString() {
            return attrs.isEmpty() ? op : op + attrs;
        }
    }

    private static Case c(String op, DoubleUnaryOperator f, DoubleUnaryOperator df, double lo, double hi, double minAbs) {
        return new Case(op, Map.of(), f, df, lo, hi, minAbs);
    }

    private static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    private static double hardSigmoid(double x, double alpha, double beta) {
        return Math.max(0, Math.min(1, alpha * x + beta));
    }

    static Stream<Case> cases() {
        float a = 0.3f;
        float b = 0.4f;
        return Stream.of(
                c("relu", x -> Math.max(x, 0), x -> x > 0 ? 1 : 0, -3, 3, 0.05),
                c("sigmoid", MathOpsTest::sigmoid, x -> sigmoid(x) * (1 - sigmoid(x)), -6, 6, 0),
                c("tanh", Math::tanh, x -> 1 - Math.tanh(x) * Math.tanh(x), -3, 3, 0),
                c("softsign", x -> x / (1 + Math.abs(x)), x -> 1 / ((1 + Math.abs(x)) * (1 + Math.abs(x))), -3, 3, 0.05),
                c("sin", Math::sin, Math::cos, -4, 4, 0),
                c("cos", Math::cos, x -> -Math.sin(x), -4, 4, 0),
                c("tan", Math::tan, x -> 1 / (Math.cos(x) * Math.cos(x)), -1.2, 1.2, 0),
                c("arcsin", Math::asin, x -> 1 / Math.sqrt(1 - x * x), -0.95, 0.95, 0),
                c("arccos", Math::acos, x -> -1 / Math.sqrt(1 - x * x), -0.95, 0.95, 0),
                c("arctan", Math::atan, x -> 1 / (1 + x * x), -5, 5, 0),
                c("sinh", Math::sinh, Math::cosh, -3, 3, 0),
                c("cosh", Math::cosh, Math::sinh, -3, 3, 0),
                c("arcsinh", x -> Math.signum(x) * Math.log1p(Math.abs(x) + x * x / (1 + Math.sqrt(1 + x * x))),
                        x -> 1 / Math.sqrt(x * x + 1), -5, 5, 0),
                c("arccosh", x -> Math.log(x + Math.sqrt(x * x - 1)), x -> 1 / Math.sqrt(x * x - 1), 1.05, 5, 0),
                c("arctanh", x -> 0.5 * Math.log1p(2 * x / (1 - x)), x -> 1 / (1 - x * x), -0.95, 0.95, 0),
                c("degrees", Math::toDegrees, x -> 180 / Math.PI, -5, 5, 0),
                c("radians", Math::toRadians, x -> Math.PI / 180, -300, 300, 0),
                c("reciprocal", x -> 1 / x, x -> -1 / (x * x), -3, 3, 0.2),
                c("rsqrt", x -> 1 / Math.sqrt(x), x -> -0.5 / (x * Math.sqrt(x)), 0.1, 5, 0),
                c("cbrt", Math::cbrt, x -> 1 / (3 * Math.cbrt(x) * Math.cbrt(x)), -5, 5, 0.1),
                c("rcbrt", x -> 1 / Math.cbrt(x), x -> -1 / (3 * x * Math.cbrt(x)), -5, 5, 0.1),
                c("log10", Math::log10, x -> 1 / (x * Math.log(10)), 0.05, 20, 0),
                c("log2", x -> Math.log(x) / Math.log(2), x -> 1 / (x * Math.log(2)), 0.05, 20, 0),
                c("log1p", Math::log1p, x -> 1 / (1 + x), -0.9, 5, 0),
                c("expm1", Math::expm1, Math::exp, -3, 3, 0),
                c("erf", MathRef::erf, x -> 2 / Math.sqrt(Math.PI) * Math.exp(-x * x), -3, 3, 0),
                c("erfinv", MathRef::erfinv, x -> Math.sqrt(Math.PI) / 2 * Math.exp(MathRef.erfinv(x) * MathRef.erfinv(x)),
                        -0.95, 0.95, 0),
                c("gamma", MathRef::gamma, x -> MathRef.gamma(x) * MathRef.digamma(x), 0.2, 5, 0),
                c("gammaln", x -> Math.log(Math.abs(MathRef.gamma(x))), MathRef::digamma, 0.2, 10, 0),
                c("hard_sigmoid", x -> hardSigmoid(x, (float) 0.2, 0.5), x -> Math.abs(x) < 2.5 ? (float) 0.2 : 0, -4, 4, 0),
                new Case("hard_sigmoid", Map.of("alpha", "0.3", "beta", "0.4"), x -> hardSigmoid(x, a, b),
                        x -> a * x + b > 0 && a * x + b < 1 ? a : 0, -4, 4, 0));
    }

    /** Inputs away from hard_sigmoid's kinks, where central differences straddle them. */
    private static double[] gradInputs(Case c, int n, long seed) {
        double[] x = c.x(n, seed);
        if (c.op().equals("hard_sigmoid")) {
            for (int i = 0; i < n; i++) {
                double z = Double.parseDouble(c.attrs().getOrDefault("alpha", "0.2")) * x[i]
                        + Double.parseDouble(c.attrs().getOrDefault("beta", "0.5"));
                if (Math.abs(z) < 1e-3 || Math.abs(z - 1) < 1e-3) {
                    x[i] = 0.1;
                }
            }
        }
        return x;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardMatchesReference(Case c) {
        long seed = 1;
        for (long[] sh : List.of(shape(1), shape(2, 3, 4), shape(17), shape(LARGE))) {
            double[] x = c.x(size(sh), seed++);
            for (DType t : BOTH) {
                // the reference sees what the kernel sees: the input rounded to the dtype
                double[] xt = t == DType.FLOAT32 ? ElemTesting.map(x, v -> (float) v) : x;
                var out = forward(c.sym(), shapes("x", sh), values("x", x), t);
                assertShape(sh, out.s(0), c.toString());
                assertValues(ElemTesting.map(xt, c.f()), out.v(0), t, c.toString());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void backwardMatchesAnalyticDerivative(Case c) {
        for (long[] sh : List.of(shape(2, 3, 4), shape(LARGE))) {
            int n = size(sh);
            double[] x = gradInputs(c, n, 11);
            double[] g = rand(n, -1, 1, 0, 12);
            for (DType t : BOTH) {
                double[] xt = t == DType.FLOAT32 ? ElemTesting.map(x, v -> (float) v) : x;
                double[] expected = new double[n];
                for (int i = 0; i < n; i++) {
                    expected[i] = g[i] * c.df().applyAsDouble(xt[i]);
                }
                // float32 derivatives that read the output (sigmoid, tanh, tan, cbrt, erfinv) carry its rounding
                double scale = t == DType.FLOAT32 ? 10 : 1e-2;
                Map<String, double[]> gr = grads(c.sym(), shapes("x", sh), values("x", x), List.of("x"), GradReq.WRITE, 1, t,
                        List.of(g));
                assertValues(expected, gr.get("x"), t, scale, c + " d/dx");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void numericGradient(Case c) {
        gradCheck(c.sym(), shapes("x", shape(2, 3, 4)), values("x", gradInputs(c, 24, 21)), List.of("x"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gradReqAddAccumulates(Case c) {
        assertAddAccumulates(c.sym(), shapes("x", shape(3, 5)), values("x", gradInputs(c, 15, 31)), List.of("x"));
    }

    @Test
    void roundingOpsFollowMxnetAndHaveZeroGradient() {
        double nan = Double.NaN;
        double inf = Double.POSITIVE_INFINITY;
        double[] x = {-2.5, -1.5, -0.5, -0.3, 0, 0.3, 0.5, 1.5, 2.5, 2.7, -2.7, 7, nan, inf, -inf};
        Map<String, double[]> expected = Map.of(
                "floor", new double[] {-3, -2, -1, -1, 0, 0, 0, 1, 2, 2, -3, 7, nan, inf, -inf},
                "ceil", new double[] {-2, -1, -0.0, -0.0, 0, 1, 1, 2, 3, 3, -2, 7, nan, inf, -inf},
                "round", new double[] {-3, -2, -1, -0.0, 0, 0, 1, 2, 3, 3, -3, 7, nan, inf, -inf},
                // MXNet's rint: n.5 gives n (halves down), not C's halves-to-even
                "rint", new double[] {-3, -2, -1, -0.0, 0, 0, 0, 1, 2, 3, -3, 7, nan, inf, -inf},
                "trunc", new double[] {-2, -1, -0.0, -0.0, 0, 0, 0, 1, 2, 2, -2, 7, nan, inf, -inf},
                "fix", new double[] {-2, -1, -0.0, -0.0, 0, 0, 0, 1, 2, 2, -2, 7, nan, inf, -inf},
                "sign", new double[] {-1, -1, -1, -1, 0, 1, 1, 1, 1, 1, -1, 1, 0, 1, -1},
                "logical_not", new double[] {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
        double[] g = rand(x.length, -1, 1, 0, 5);
        for (var e : expected.entrySet()) {
            Symbol s = Symbol.create(e.getKey(), "y", Map.of(), null, Symbol.variable("x"));
            for (DType t : BOTH) {
                double[] got = forward(s, shapes("x", shape(x.length)), values("x", x), t).v(0);
                assertArrayEquals(e.getValue(), got, e.getKey() + " " + t);
                Map<String, double[]> gr = grads(s, shapes("x", shape(x.length)), values("x", x), List.of("x"),
                        GradReq.WRITE, 1, t, List.of(g));
                assertArrayEquals(new double[x.length], gr.get("x"), e.getKey() + " gradient " + t);
            }
        }
    }

    @Test
    void specialValues() {
        double nan = Double.NaN;
        double inf = Double.POSITIVE_INFINITY;
        Object[][] cases = {
            // relu keeps NaN (MXNet 1.9); sigmoid saturates without NaN
            {"relu", new double[] {nan, -inf, inf, -0.0}, new double[] {nan, 0, inf, 0}},
            {"sigmoid", new double[] {nan, -inf, inf, -1000, 1000}, new double[] {nan, 0, 1, 0, 1}},
            {"erfinv", new double[] {-1, 1, 1.5, -1.01, nan, 0}, new double[] {-inf, inf, nan, nan, nan, 0}},
            {"erf", new double[] {inf, -inf, nan, 0}, new double[] {1, -1, nan, 0}},
            {"gamma", new double[] {1, 2, 5, 0.5, -0.5}, new double[] {1, 1, 24, Math.sqrt(Math.PI), -2 * Math.sqrt(Math.PI)}},
            {"gammaln", new double[] {1, 2, 5, -0.5}, new double[] {0, 0, Math.log(24), Math.log(2 * Math.sqrt(Math.PI))}},
            {"arccosh", new double[] {0.5, 1}, new double[] {nan, 0}},
            {"rsqrt", new double[] {0, -1, inf}, new double[] {inf, nan, 0}},
            {"reciprocal", new double[] {0, -0.0, inf}, new double[] {inf, -inf, 0}},
            {"log1p", new double[] {-1, -2, 1e-300}, new double[] {-inf, nan, 1e-300}},
        };
        for (Object[] cs : cases) {
            String op = (String) cs[0];
            double[] x = (double[]) cs[1];
            Symbol s = Symbol.create(op, "y", Map.of(), null, Symbol.variable("x"));
            for (DType t : BOTH) {
                double[] expected = ((double[]) cs[2]).clone();
                if (t == DType.FLOAT32) {
                    expected = ElemTesting.map(expected, v -> Math.abs(v) < 1e-38 && v != 0 ? 0 : v);
                }
                assertValues(expected, forward(s, shapes("x", shape(x.length)), values("x", x), t).v(0), t, op + " specials");
            }
        }
    }

    @Test
    void gammaGradientsAtPolesAreNaNAndDigammaMatchesKnownValues() {
        // psi(1) = -gamma_Euler, psi(1/2) = -gamma_Euler - 2 ln 2, psi(-1/2) = psi(1/2) + 2 (recurrence)
        double euler = 0.5772156649015329;
        double[] x = {1, 0.5, -0.5, 0, -1, -2};
        double[] psi = {-euler, -euler - 2 * Math.log(2), -euler - 2 * Math.log(2) + 2, Double.NaN, Double.NaN, Double.NaN};
        double[] ones = {1, 1, 1, 1, 1, 1};
        Symbol s = Symbol.create("gammaln", "y", Map.of(), null, Symbol.variable("x"));
        Map<String, double[]> gr = grads(s, shapes("x", shape(6)), values("x", x), List.of("x"), GradReq.WRITE, 1,
                DType.FLOAT64, List.of(ones));
        assertValues(psi, gr.get("x"), DType.FLOAT64, "digamma");
        for (int i = 0; i < 3; i++) {
            assertEquals(psi[i], MathRef.digamma(x[i]), 1e-13, "the test's reference digamma at " + x[i]);
        }
    }

    @Test
    void integerInputsComputeInFloat64AndTruncate() {
        // MXNet computes integer arrays through the math function and converts back (toward zero)
        double[] x = {-3, -1, 0, 1, 2, 9};
        Map<String, double[]> expected = Map.of(
                "sigmoid", new double[] {0, 0, 0, 0, 0, 0},
                "degrees", new double[] {-171, -57, 0, 57, 114, 515},
                "cbrt", new double[] {-1, -1, 0, 1, 1, 2},
                "sign", new double[] {-1, -1, 0, 1, 1, 1},
                "relu", new double[] {0, 0, 0, 1, 2, 9},
                "logical_not", new double[] {0, 0, 1, 0, 0, 0});
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(x, x.length).asType(DType.INT32);
            for (var e : expected.entrySet()) {
                NDArray y = NDArray.invoke(e.getKey(), Map.of(), a).get(0);
                assertEquals(DType.INT32, y.dtype(), e.getKey());
                assertArrayEquals(e.getValue(), y.toDoubleArray(), e.getKey() + " int32");
            }
        }
    }

    @Test
    void float16ComputesInFloat32() {
        double[] x = rand(257, -3, 3, 0, 71);
        try (NDScope scope = NDScope.open()) {
            NDArray h = NDArray.create(x, x.length).asType(DType.FLOAT16);
            double[] xh = h.toDoubleArray();
            for (String op : List.of("sigmoid", "tanh", "sin", "erf", "expm1", "softsign")) {
                double[] got = NDArray.invoke(op, Map.of(), h).get(0).toDoubleArray();
                DoubleUnaryOperator f = cases().filter(cs -> cs.op().equals(op)).findFirst().orElseThrow().f();
                for (int i = 0; i < x.length; i++) {
                    double e = f.applyAsDouble(xh[i]);
                    assertEquals(e, got[i], Math.abs(e) * 1e-3 + 1e-3, op + " float16[" + i + "]");
                }
            }
        }
    }

    @Test
    void imperativeInPlaceMatchesSymbolic() {
        try (NDScope scope = NDScope.open()) {
            for (Case c : cases().toList()) {
                double[] v = c.x(LARGE, 61);
                NDArray x = NDArray.create(v, LARGE);
                double[] symbolic = forward(c.sym(), shapes("x", shape(LARGE)), values("x", v), DType.FLOAT64).v(0);
                assertArrayEquals(symbolic, NDArray.invoke(c.op(), c.attrs(), x).get(0).toDoubleArray(), "imperative " + c);
                NDArray.invokeInto(c.op(), c.attrs(), x, x);
                assertArrayEquals(symbolic, x.toDoubleArray(), "in place " + c);
            }
        }
    }

    @Test
    void errors() {
        Symbol x = Symbol.variable("x");
        assertThrowsMessage(() -> Symbol.create("hard_sigmoid", "y", Map.of("alpha", "steep"), null, x), "hard_sigmoid",
                "alpha");
        assertThrowsMessage(() -> Symbol.create("sin", "y", Map.of("scalar", "2"), null, x), "sin", "scalar");
        assertThrowsMessage(() -> Symbol.create("erfinv", "y", Map.of(), null, x, Symbol.variable("z")), "erfinv");
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[] {1, 2}, 2);
            NDArray b = NDArray.create(new double[] {1, 2, 3}, 3);
            assertThrowsMessage(() -> NDArray.invokeInto("tanh", Map.of(), b, a), "tanh");
            a.close();
            assertThrows(IllegalStateException.class, () -> NDArray.invoke("relu", Map.of(), a));
        }
    }

    /** Independent references: erf by its Taylor series, erfinv by bisection on it, Lanczos gamma, digamma by series. */
    static final class MathRef {
        private MathRef() {}

        /** erf by its Taylor series (|x| <= 3: terms below 200, so about 1e-14 absolute), 1 - tiny beyond. */
        static double erf(double x) {
            if (Double.isNaN(x)) {
                return x;
            }
            if (Math.abs(x) > 6) {
                return Math.signum(x);
            }
            double sum = 0;
            double term = x;  // (-1)^n x^(2n+1) / n!
            for (int n = 0; n < 200; n++) {
                sum += term / (2 * n + 1);
                term *= -x * x / (n + 1);
            }
            return 2 / Math.sqrt(Math.PI) * sum;
        }

        /** erf^-1 by bisection on {@link #erf} (|y| < 1). */
        static double erfinv(double y) {
            double lo = -6;
            double hi = 6;
            for (int i = 0; i < 200; i++) {
                double mid = (lo + hi) / 2;
                if (erf(mid) < y) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return (lo + hi) / 2;
        }

        private static final double[] LANCZOS = {0.99999999999980993, 676.5203681218851, -1259.1392167224028,
            771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
            1.5056327351493116e-7};

        /** Gamma by the Lanczos approximation (g = 7), reflected below 1/2. */
        static double gamma(double x) {
            if (x < 0.5) {
                return Math.PI / (Math.sin(Math.PI * x) * gamma(1 - x));
            }
            x -= 1;
            double a = LANCZOS[0];
            double t = x + 7.5;
            for (int i = 1; i < 9; i++) {
                a += LANCZOS[i] / (x + i);
            }
            return Math.sqrt(2 * Math.PI) * Math.pow(t, x + 0.5) * Math.exp(-t) * a;
        }

        /** Digamma: the recurrence up to 30, then four terms of the asymptotic series. */
        static double digamma(double x) {
            if (x <= 0 && x == Math.floor(x)) {
                return Double.NaN;
            }
            double acc = 0;
            if (x < 0) {
                acc = -Math.PI / Math.tan(Math.PI * x);
                x = 1 - x;
            }
            for (; x < 30; x++) {
                acc -= 1 / x;
            }
            double r = 1 / (x * x);
            return acc + Math.log(x) - 0.5 / x - r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r / 240)));
        }
    }
}
