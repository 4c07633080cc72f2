package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.LARGE;
import static dev.kiln.ops.elemwise.ElemTesting.assertAddAccumulates;
import static dev.kiln.ops.elemwise.ElemTesting.assertInferFails;
import static dev.kiln.ops.elemwise.ElemTesting.assertShape;
import static dev.kiln.ops.elemwise.ElemTesting.assertValues;
import static dev.kiln.ops.elemwise.ElemTesting.broadcastRef;
import static dev.kiln.ops.elemwise.ElemTesting.broadcastShape;
import static dev.kiln.ops.elemwise.ElemTesting.forward;
import static dev.kiln.ops.elemwise.ElemTesting.gradCheck;
import static dev.kiln.ops.elemwise.ElemTesting.grads;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.ops.elemwise.ElemTesting.sumTo;
import static dev.kiln.ops.elemwise.ElemTesting.values;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleBinaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Comparisons and logical ops (same-shape _equal ..., broadcast_equal ..., _equal_scalar ...), and
 * mod, hypot and smooth_l1 (kiln/elemwise_math.h): forward against Java references with NaN and
 * broadcasting, zero gradients for the comparisons, analytic and numeric gradients for the rest, errors.
 */
@ExtendWith(NoLeaks.class)
class CompareOpsTest {

    /** A comparison or logical op: same-shape name, broadcast name, scalar name, and its truth. */
    record Cmp(String same, String broadcast, String scalar, DoubleBinaryOperator f) {
        @Override
        public String toString() {
            return same;
        }
    }

    private static DoubleBinaryOperator truth(java.util.function.BiPredicate<Double, Double> p) {
        return (a, b) -> p.test(a, b) ? 1 : 0;
    }

    static Stream<Cmp> comparisons() {
        return Stream.of(
                new Cmp("_equal", "broadcast_equal", "_equal_scalar", truth((a, b) -> a.doubleValue() == b.doubleValue())),
                new Cmp("_not_equal", "broadcast_not_equal", "_not_equal_scalar",
                        truth((a, b) -> a.doubleValue() != b.doubleValue())),
                new Cmp("_greater", "broadcast_greater", "_greater_scalar", truth((a, b) -> a > b)),
                new Cmp("_greater_equal", "broadcast_greater_equal", "_greater_equal_scalar", truth((a, b) -> a >= b)),
                new Cmp("_lesser", "broadcast_lesser", "_lesser_scalar", truth((a, b) -> a < b)),
                new Cmp("_lesser_equal", "broadcast_lesser_equal", "_lesser_equal_scalar", truth((a, b) -> a <= b)),
                new Cmp("_logical_and", "broadcast_logical_and", "_logical_and_scalar", truth((a, b) -> a != 0 && b != 0)),
                new Cmp("_logical_or", "broadcast_logical_or", "_logical_or_scalar", truth((a, b) -> a != 0 || b != 0)),
                new Cmp("_logical_xor", "broadcast_logical_xor", "_logical_xor_scalar",
                        truth((a, b) -> (a != 0) != (b != 0))));
    }

    /** Small integers (many ties and zeros) with NaN and infinities: every branch of every comparison. */
    private static double[] mixed(int n, long seed) {
        double[] v = rand(n, -3, 3, 0, seed);
        double[] specials = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, -0.0, 0};
        for (int i = 0; i < n; i++) {
            v[i] = Math.round(v[i]);
            if (i % 11 == 3) {
                v[i] = specials[(i / 11) % specials.length];
            }
        }
        return v;
    }

    private static Symbol binary(String op) {
        return Symbol.create(op, "y", Map.of(), null, Symbol.variable("a"), Symbol.variable("b"));
    }

    private static Symbol scalar(String op, double s) {
        return Symbol.create(op, "y", Map.of("scalar", Double.toString(s)), null, Symbol.variable("a"));
    }

    static final long[][][] PAIRS = {
        {shape(2, 3, 4), shape(2, 3, 4)},
        {shape(3, 1), shape(1, 4)},
        {shape(2, 3, 4), shape(3, 1)},
        {shape(1), shape(4, 3)},
        {shape(317, 331), shape(331)},
        {shape(LARGE), shape(1)},
    };

    @ParameterizedTest(name = "{0}")
    @MethodSource("comparisons")
    void comparisonsGiveOneOrZeroAndNoGradient(Cmp c) {
        long seed = 1;
        for (long[][] p : PAIRS) {
            double[] a = mixed(size(p[0]), seed++);
            double[] b = mixed(size(p[1]), seed++);
            long[] so = broadcastShape(p[0], p[1]);
            double[] expected = broadcastRef(p[0], a, p[1], b, c.f());
            List<String> ops = Arrays.equals(p[0], p[1]) ? List.of(c.same(), c.broadcast()) : List.of(c.broadcast());
            for (String op : ops) {
                String what = op + " " + Arrays.toString(p[0]) + " " + Arrays.toString(p[1]);
                for (DType t : List.of(DType.FLOAT32, DType.FLOAT64, DType.INT32)) {
                    double[] at = t == DType.INT32 ? ElemTesting.map(a, v -> Double.isFinite(v) ? v : 0) : a;
                    double[] bt = t == DType.INT32 ? ElemTesting.map(b, v -> Double.isFinite(v) ? v : 0) : b;
                    double[] exp = t == DType.INT32 ? broadcastRef(p[0], at, p[1], bt, c.f()) : expected;
                    var out = forward(binary(op), shapes("a", p[0], "b", p[1]), values("a", at, "b", bt), t);
                    assertShape(so, out.s(0), what);
                    assertArrayEquals(exp, out.v(0), what + " " + t);
                }
                if (size(so) < 1000) {
                    Map<String, double[]> gr = grads(binary(op), shapes("a", p[0], "b", p[1]), values("a", a, "b", b),
                            List.of("a", "b"), GradReq.WRITE, 1, DType.FLOAT64, List.of(rand(so, -1, 1, 5)));
                    assertArrayEquals(new double[size(p[0])], gr.get("a"), what + " d/da");
                    assertArrayEquals(new double[size(p[1])], gr.get("b"), what + " d/db");
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("comparisons")
    void scalarComparisons(Cmp c) {
        double[] a = mixed(LARGE, 7);
        for (double s : new double[] {0, 1, -2, 0.5, 1e30}) {
            double[] expected = ElemTesting.map(a, v -> c.f().applyAsDouble(v, s));
            for (DType t : BOTH) {
                assertArrayEquals(expected, forward(scalar(c.scalar(), s), shapes("a", shape(LARGE)), values("a", a), t).v(0),
                        c.scalar() + "(" + s + ") " + t);
            }
        }
        Map<String, double[]> gr = grads(scalar(c.scalar(), 1), shapes("a", shape(7)), values("a", mixed(7, 8)), List.of("a"),
                GradReq.WRITE, 1, DType.FLOAT64, List.of(rand(7, -1, 1, 0, 9)));
        assertArrayEquals(new double[7], gr.get("a"), c.scalar() + " gradient");
    }

    // ---- mod, hypot ---------------------------------------------------------------------------------

    /** Python's %: the remainder has the divisor's sign; MXNet gives 0 for a zero divisor. */
    static double mod(double a, double b) {
        if (b == 0) {
            return 0;
        }
        double r = a % b;
        return r != 0 && (r < 0) != (b < 0) ? r + b : r;
    }

    /** Operands away from mod's jumps (a / b near an integer), as central differences need. */
    private static double[][] modOperands(long[] sa, long[] sb, long seed) {
        double[] a = rand(size(sa), -5, 5, 0.1, seed);
        double[] b = rand(size(sb), -3, 3, 0.7, seed + 1);
        long[] so = broadcastShape(sa, sb);
        double[] q = broadcastRef(sa, a, sb, b, (x, y) -> x / y);
        for (int i = 0; i < q.length; i++) {
            double frac = q[i] - Math.floor(q[i]);
            if (frac < 0.02 || frac > 0.98) {  // nudge the lhs element behind it
                int[] idx = unravel(i, so);
                a[ElemTesting.operandIndex(idx, sa)] += 0.05;
            }
        }
        return new double[][] {a, b};
    }

    private static int[] unravel(int i, long[] s) {
        int[] idx = new int[s.length];
        for (int k = s.length - 1; k >= 0; k--) {
            idx[k] = (int) (i % s[k]);
            i /= (int) s[k];
        }
        return idx;
    }

    record Binary(String same, String broadcast, DoubleBinaryOperator f, DoubleBinaryOperator da, DoubleBinaryOperator db) {
        @Override
        public String toString() {
            return same;
        }
    }

    static Stream<Binary> binaries() {
        return Stream.of(
                new Binary("_mod", "broadcast_mod", CompareOpsTest::mod, (a, b) -> 1, (a, b) -> -Math.floor(a / b)),
                new Binary("_hypot", "broadcast_hypot", Math::hypot, (a, b) -> a / Math.hypot(a, b),
                        (a, b) -> b / Math.hypot(a, b)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("binaries")
    void modAndHypotForwardAndGradients(Binary op) {
        long seed = 20;
        for (long[][] p : PAIRS) {
            double[][] ab = modOperands(p[0], p[1], seed);
            seed += 2;
            double[] a = ab[0];
            double[] b = ab[1];
            long[] so = broadcastShape(p[0], p[1]);
            double[] g = rand(so, -1, 1, seed++);
            double[] fa = broadcastRef(p[0], a, p[1], b, op.da());
            double[] fb = broadcastRef(p[0], a, p[1], b, op.db());
            for (int i = 0; i < g.length; i++) {
                fa[i] *= g[i];
                fb[i] *= g[i];
            }
            List<String> ops = Arrays.equals(p[0], p[1]) ? List.of(op.same(), op.broadcast()) : List.of(op.broadcast());
            for (String name : ops) {
                String what = name + " " + Arrays.toString(p[0]) + " " + Arrays.toString(p[1]);
                for (DType t : BOTH) {
                    double[] at = t == DType.FLOAT32 ? ElemTesting.map(a, v -> (float) v) : a;
                    double[] bt = t == DType.FLOAT32 ? ElemTesting.map(b, v -> (float) v) : b;
                    var out = forward(binary(name), shapes("a", p[0], "b", p[1]), values("a", a, "b", b), t);
                    assertValues(broadcastRef(p[0], at, p[1], bt, op.f()), out.v(0), t, 1, what);
                    Map<String, double[]> gr = grads(binary(name), shapes("a", p[0], "b", p[1]), values("a", a, "b", b),
                            List.of("a", "b"), GradReq.WRITE, 1, t, List.of(g));
                    assertValues(sumTo(fa, so, p[0]), gr.get("a"), t, size(so) / size(p[0]), what + " d/da");
                    assertValues(sumTo(fb, so, p[1]), gr.get("b"), t, size(so) / size(p[1]), what + " d/db");
                }
                if (size(so) < 1000) {
                    gradCheck(binary(name), shapes("a", p[0], "b", p[1]), values("a", a, "b", b), List.of("a", "b"));
                    assertAddAccumulates(binary(name), shapes("a", p[0], "b", p[1]), values("a", a, "b", b), List.of("a", "b"));
                }
            }
        }
    }

    @Test
    void modFollowsPythonAndZeroDivisorGivesZero() {
        double[] a = {7, -7, 7, -7, 5.5, -5.5, 3, 0, 4};
        double[] b = {3, 3, -3, -3, 2, 2, 0, 5, -2};
        double[] expected = {1, 2, -2, -1, 1.5, 0.5, 0, 0, 0};
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            assertArrayEquals(expected, forward(binary("_mod"), shapes("a", shape(9), "b", shape(9)), values("a", a, "b", b), t)
                    .v(0), "_mod " + t);
        }
        try (NDScope scope = NDScope.open()) {
            NDArray x = NDArray.create(new double[] {7, -7, 9, 0}, 4).asType(DType.INT32);
            assertArrayEquals(new double[] {1, 2, 0, 0}, NDArray.invoke("_mod_scalar", Map.of("scalar", 3), x).get(0)
                    .toDoubleArray(), "int32 _mod_scalar");
            assertArrayEquals(new double[] {3, -4, 3, 0}, NDArray.invoke("_rmod_scalar", Map.of("scalar", 3), x).get(0)
                    .toDoubleArray(), "int32 _rmod_scalar (3 mod x)");
        }
    }

    /** Scalar ops with gradients: y = f(x, s), dy/dx. */
    record ScalarCase(String op, double s, DoubleBinaryOperator f, DoubleBinaryOperator df) {
        @Override
        public String toString() {
            return op + "(" + s + ")";
        }
    }

    private static double smoothL1(double x, double sigma) {
        double s2 = sigma * sigma;
        return Math.abs(x) < 1 / s2 ? 0.5 * x * x * s2 : Math.abs(x) - 0.5 / s2;
    }

    static Stream<ScalarCase> scalarCases() {
        return Stream.of(
                new ScalarCase("_mod_scalar", 1.5, CompareOpsTest::mod, (x, s) -> 1),
                new ScalarCase("_mod_scalar", -2, CompareOpsTest::mod, (x, s) -> 1),
                new ScalarCase("_rmod_scalar", 4.5, (x, s) -> mod(s, x), (x, s) -> -Math.floor(s / x)),
                new ScalarCase("_hypot_scalar", 2, Math::hypot, (x, s) -> x / Math.hypot(x, s)),
                new ScalarCase("smooth_l1", 1, CompareOpsTest::smoothL1, (x, s) -> Math.abs(x) < 1 ? x : Math.signum(x)),
                new ScalarCase("smooth_l1", 2, CompareOpsTest::smoothL1,
                        (x, s) -> Math.abs(x) < 0.25 ? 4 * x : Math.signum(x)));
    }

    /** Inputs away from the kinks of mod (x / s or s / x near an integer) and smooth_l1 (|x| = 1 / s^2). */
    private static double[] scalarInputs(ScalarCase c, int n, long seed) {
        double[] x = rand(n, -5, 5, 0.3, seed);
        for (int i = 0; i < n; i++) {
            double q = c.op().equals("_rmod_scalar") ? c.s() / x[i] : x[i] / c.s();
            double frac = q - Math.floor(q);
            boolean nearKink = switch (c.op()) {
                case "_mod_scalar", "_rmod_scalar" -> frac < 0.02 || frac > 0.98;
                case "smooth_l1" -> Math.abs(Math.abs(x[i]) - 1 / (c.s() * c.s())) < 0.02;
                default -> false;
            };
            if (nearKink) {
                x[i] = 0.37 * Math.signum(x[i]) + 0.001 * i;
            }
        }
        return x;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scalarCases")
    void scalarOpsForwardAndGradients(ScalarCase c) {
        Symbol s = scalar(c.op(), c.s());
        for (long[] sh : List.of(shape(2, 3, 4), shape(LARGE))) {
            int n = size(sh);
            double[] x = scalarInputs(c, n, 31);
            double[] g = rand(n, -1, 1, 0, 32);
            for (DType t : BOTH) {
                double[] xt = t == DType.FLOAT32 ? ElemTesting.map(x, v -> (float) v) : x;
                assertValues(ElemTesting.map(xt, v -> c.f().applyAsDouble(v, c.s())),
                        forward(s, shapes("a", sh), values("a", x), t).v(0), t, 1, c.toString());
                double[] expected = new double[n];
                for (int i = 0; i < n; i++) {
                    expected[i] = g[i] * c.df().applyAsDouble(xt[i], c.s());
                }
                Map<String, double[]> gr = grads(s, shapes("a", sh), values("a", x), List.of("a"), GradReq.WRITE, 1, t,
                        List.of(g));
                assertValues(expected, gr.get("a"), t, 1, c + " d/dx");
            }
        }
        gradCheck(s, shapes("a", shape(2, 3, 4)), values("a", scalarInputs(c, 24, 41)), List.of("a"));
        assertAddAccumulates(s, shapes("a", shape(3, 5)), values("a", scalarInputs(c, 15, 51)), List.of("a"));
    }

    @Test
    void aliasesAndErrors() {
        double[] a = {1, 2, 3};
        double[] b = {3, 2, 1};
        for (String[] alias : new String[][] {{"_Equal", "_equal"}, {"_Greater_Equal", "_greater_equal"},
            {"_Logical_Xor", "_logical_xor"}, {"_Mod", "_mod"}, {"_Hypot", "_hypot"}}) {
            assertArrayEquals(forward(binary(alias[1]), shapes("a", shape(3), "b", shape(3)), values("a", a, "b", b),
                    DType.FLOAT32).v(0), forward(binary(alias[0]), shapes("a", shape(3), "b", shape(3)),
                    values("a", a, "b", b), DType.FLOAT32).v(0), alias[0]);
        }
        assertEquals(1.0, forward(scalar("_EqualScalar", 2), shapes("a", shape(3)), values("a", a), DType.FLOAT32).v(0)[1]);
        // same-shape ops refuse broadcasting; broadcast ops refuse incompatible shapes
        assertInferFails(binary("_equal"), shapes("a", shape(2, 3), "b", shape(3)), "_equal");
        assertInferFails(binary("broadcast_greater"), shapes("a", shape(2, 3), "b", shape(4, 3)),
                "operands could not be broadcast together with shapes", "(2,3)", "(4,3)");
        assertInferFails(binary("broadcast_mod"), shapes("a", shape(3), "b", shape(4)), "(3,)", "(4,)");
        assertThrowsMessage(() -> Symbol.create("_lesser_scalar", "y", Map.of("scalar", "one"), null, Symbol.variable("a")),
                "_lesser_scalar", "scalar");
        try (NDScope scope = NDScope.open()) {
            NDArray x = NDArray.create(new double[6], 2, 3);
            NDArray y = NDArray.create(new double[12], 4, 3);
            assertThrowsMessage(() -> NDArray.invoke("broadcast_logical_and", Map.of(), x, y), "broadcast_logical_and",
                    "(2,3)", "(4,3)");
            assertThrowsMessage(() -> NDArray.invoke("_hypot", Map.of(), x), "_hypot");
        }
    }

    @Test
    void javaApi() {
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[] {1, 2, 3, 4}, 2, 2);
            NDArray b = NDArray.create(new double[] {2, 2}, 2);
            assertArrayEquals(new double[] {0, 1, 0, 0}, a.eq(b).toDoubleArray(), "eq (broadcast)");
            assertArrayEquals(new double[] {1, 0, 1, 1}, a.ne(b).toDoubleArray(), "ne (broadcast)");
            assertArrayEquals(new double[] {0, 0, 1, 1}, a.gt(b).toDoubleArray(), "gt (broadcast)");
            assertArrayEquals(new double[] {0, 1, 1, 1}, a.ge(2).toDoubleArray(), "ge scalar");
            assertArrayEquals(new double[] {1, 0, 0, 0}, a.lt(2).toDoubleArray(), "lt scalar");
            assertArrayEquals(new double[] {1, 1, 0, 0}, a.le(a.sub(a).add(2.5)).toDoubleArray(), "le same shape");
            assertArrayEquals(new double[] {1, 2, 0, 1}, a.mod(3).toDoubleArray(), "mod scalar");
            assertArrayEquals(new double[] {1, 0, 1, 0}, a.mod(b).toDoubleArray(), "mod (broadcast)");
            assertArrayEquals(new double[] {1, 1, 1, 1}, a.sub(2.5).sign().abs().toDoubleArray(), "sign");
            assertArrayEquals(new double[] {-1, 0, 1, 2}, a.sub(2.5).floor().add(1).toDoubleArray(), "floor");
        }
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        double[] av = {1, 2, 3, 4};
        double[] bv = {2, 3};
        assertArrayEquals(new double[] {0, 0, 1, 1}, forward(Symbol.broadcastGreater("y", a, b), shapes("a", shape(2, 2), "b",
                shape(2)), values("a", av, "b", bv), DType.FLOAT64).v(0), "Symbol.broadcastGreater");
        assertArrayEquals(new double[] {1, 2, 1, 1}, forward(Symbol.broadcastMod("y", a, b), shapes("a", shape(2, 2), "b",
                shape(2)), values("a", av, "b", bv), DType.FLOAT64).v(0), "Symbol.broadcastMod");
        assertArrayEquals(new double[] {0.5, 1.5, 2.5, 3.5}, forward(Symbol.smoothL1("y", a, 1), shapes("a", shape(4)),
                values("a", av), DType.FLOAT64).v(0), "Symbol.smoothL1");
        assertArrayEquals(ElemTesting.map(av, v -> Math.min(1, (float) 0.25 * v + (float) 0.1)), forward(
                Symbol.hardSigmoid("y", a, 0.25, 0.1), shapes("a", shape(4)), values("a", av), DType.FLOAT64).v(0),
                "Symbol.hardSigmoid");
        assertArrayEquals(ElemTesting.map(av, v -> 1 / (1 + Math.exp(-v))), forward(Symbol.sigmoid("y", a),
                shapes("a", shape(4)), values("a", av), DType.FLOAT64).v(0), "Symbol.sigmoid");
    }
}
