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
import static dev.kiln.ops.elemwise.ElemTesting.zip;
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
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BinaryOperator;
import java.util.function.DoubleBinaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Same-shape binary ops: elemwise_add/sub/mul/div, _maximum, _minimum, _power. */
@ExtendWith(NoLeaks.class)
class BinaryOpsTest {

    /** An op with its reference map, both partial derivatives and an input domain away from kinks/poles. */
    record Case(String op, BinaryOperator<Symbol> sym, DoubleBinaryOperator f, DoubleBinaryOperator da,
            DoubleBinaryOperator db, double lhsLo, double lhsHi, double rhsLo, double rhsHi, double rhsMinAbs) {
        double[] lhs(int n, long seed) {
            return rand(n, lhsLo, lhsHi, 0, seed);
        }

        double[] rhs(int n, long seed) {
            return rand(n, rhsLo, rhsHi, rhsMinAbs, seed);
        }
    }

    static final Map<String, Case> CASES = Map.of(
            "elemwise_add", new Case("elemwise_add", (l, r) -> Symbol.elemwiseAdd("y", l, r), (a, b) -> a + b,
                    (a, b) -> 1, (a, b) -> 1, -2, 2, -2, 2, 0),
            "elemwise_sub", new Case("elemwise_sub", (l, r) -> Symbol.elemwiseSub("y", l, r), (a, b) -> a - b,
                    (a, b) -> 1, (a, b) -> -1, -2, 2, -2, 2, 0),
            "elemwise_mul", new Case("elemwise_mul", (l, r) -> Symbol.elemwiseMul("y", l, r), (a, b) -> a * b,
                    (a, b) -> b, (a, b) -> a, -2, 2, -2, 2, 0),
            "elemwise_div", new Case("elemwise_div", (l, r) -> Symbol.elemwiseDiv("y", l, r), (a, b) -> a / b,
                    (a, b) -> 1 / b, (a, b) -> -a / (b * b), -2, 2, -2, 2, 0.25),
            "_maximum", new Case("_maximum", (l, r) -> Symbol.maximum("y", l, r), (a, b) -> a > b ? a : b,
                    (a, b) -> a >= b ? 1 : 0, (a, b) -> a < b ? 1 : 0, -2, 2, -2, 2, 0),
            "_minimum", new Case("_minimum", (l, r) -> Symbol.minimum("y", l, r), (a, b) -> a < b ? a : b,
                    (a, b) -> a <= b ? 1 : 0, (a, b) -> a > b ? 1 : 0, -2, 2, -2, 2, 0),
            "_power", new Case("_power", (l, r) -> Symbol.power("y", l, r), Math::pow,
                    (a, b) -> b * Math.pow(a, b - 1), (a, b) -> Math.pow(a, b) * Math.log(a), 0.25, 2.5, -2, 2, 0));

    static Stream<String> ops() {
        return Stream.of("elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_maximum", "_minimum", "_power");
    }

    private static Symbol sym(Case c) {
        return c.sym().apply(Symbol.variable("a"), Symbol.variable("b"));
    }

    private static final List<long[]> SHAPES = List.of(shape(1), shape(7), shape(2, 3, 4), shape(LARGE), shape(17, 5883));

    @ParameterizedTest
    @MethodSource("ops")
    void forwardMatchesReference(String op) {
        Case c = CASES.get(op);
        Symbol s = sym(c);
        long seed = 1;
        for (long[] sh : SHAPES) {
            int n = size(sh);
            double[] a = c.lhs(n, seed++);
            double[] b = c.rhs(n, seed++);
            double[] expected = zip(a, b, c.f());
            for (DType t : BOTH) {
                ExecTesting.Out out = forward(s, shapes("a", sh, "b", sh), values("a", a, "b", b), t);
                assertShape(sh, out.s(0), op);
                assertValues(expected, out.v(0), t, op + " " + Arrays.toString(sh));
            }
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void backwardMatchesAnalyticDerivatives(String op) {
        Case c = CASES.get(op);
        Symbol s = sym(c);
        for (long[] sh : List.of(shape(2, 3, 4), shape(LARGE))) {
            int n = size(sh);
            double[] a = c.lhs(n, 11);
            double[] b = c.rhs(n, 12);
            double[] g = rand(n, -1, 1, 0, 13);
            double[] ea = new double[n];
            double[] eb = new double[n];
            for (int i = 0; i < n; i++) {
                ea[i] = g[i] * c.da().applyAsDouble(a[i], b[i]);
                eb[i] = g[i] * c.db().applyAsDouble(a[i], b[i]);
            }
            for (DType t : BOTH) {
                Map<String, double[]> gr = grads(s, shapes("a", sh, "b", sh), values("a", a, "b", b), List.of("a", "b"),
                        GradReq.WRITE, 1, t, List.of(g));
                assertValues(ea, gr.get("a"), t, op + " d/da");
                assertValues(eb, gr.get("b"), t, op + " d/db");
            }
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void numericGradient(String op) {
        Case c = CASES.get(op);
        gradCheck(sym(c), shapes("a", shape(2, 3), "b", shape(2, 3)), values("a", c.lhs(6, 21), "b", c.rhs(6, 22)),
                List.of("a", "b"));
    }

    @ParameterizedTest
    @MethodSource("ops")
    void gradReqAddAccumulates(String op) {
        Case c = CASES.get(op);
        assertAddAccumulates(sym(c), shapes("a", shape(3, 4), "b", shape(3, 4)),
                values("a", c.lhs(12, 31), "b", c.rhs(12, 32)), List.of("a", "b"));
    }

    @ParameterizedTest
    @MethodSource("ops")
    void shapeMismatchIsRejected(String op) {
        Symbol s = sym(CASES.get(op));
        assertInferFails(s, shapes("a", shape(2, 3), "b", shape(3, 2)), "Shape inconsistent", "(2,3)", "(3,2)");
        assertInferFails(s, shapes("a", shape(6), "b", shape(2, 3)), "Shape inconsistent");
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[6], 2, 3);
            NDArray b = NDArray.create(new double[6], 3, 2);
            assertThrowsMessage(() -> NDArray.invoke(op, Map.of(), a, b), op, "(2,3)", "(3,2)");
        }
    }

    @Test
    void maximumMinimumTiesSendTheGradientToLhs() {
        // MXNet: _maximum's lhs gradient is g * (a >= b), rhs g * (a < b); _minimum uses <= / >.
        double[] a = {1, 2, 3, -1, 0.5, 7};
        double[] b = {1, 1, 4, -1, 0.5, 8};
        double[] g = {0.5, -1, 2, 3, -0.25, 1.5};
        for (DType t : BOTH) {
            Map<String, double[]> mx = grads(sym(CASES.get("_maximum")), shapes("a", shape(6), "b", shape(6)),
                    values("a", a, "b", b), List.of("a", "b"), GradReq.WRITE, 1, t, List.of(g));
            // (a zero gradient keeps the sign of g * 0, as MXNet: compare by value)
            assertValues(new double[] {0.5, -1, 0, 3, -0.25, 0}, mx.get("a"), t, "_maximum d/da");
            assertValues(new double[] {0, 0, 2, 0, 0, 1.5}, mx.get("b"), t, "_maximum d/db");
            Map<String, double[]> mn = grads(sym(CASES.get("_minimum")), shapes("a", shape(6), "b", shape(6)),
                    values("a", a, "b", b), List.of("a", "b"), GradReq.WRITE, 1, t, List.of(g));
            assertValues(new double[] {0.5, 0, 2, 3, -0.25, 1.5}, mn.get("a"), t, "_minimum d/da");
            assertValues(new double[] {0, -1, 0, 0, 0, 0}, mn.get("b"), t, "_minimum d/db");
        }
    }

    @Test
    void sameVariableOnBothSides() {
        // the two gradient contributions of x are summed (x*x -> 2x g, x+x -> 2g, x-x -> 0, x/x -> 0)
        Symbol x = Symbol.variable("x");
        double[] v = rand(12, 0.5, 2, 0, 41);
        double[] g = rand(12, -1, 1, 0, 42);
        Map<String, long[]> sh = shapes("x", shape(3, 4));
        Object[][] cases = {
            {Symbol.elemwiseMul("y", x, x), (DoubleBinaryOperator) (xv, gv) -> 2 * xv * gv},
            {Symbol.elemwiseAdd("y", x, x), (DoubleBinaryOperator) (xv, gv) -> 2 * gv},
            {Symbol.elemwiseSub("y", x, x), (DoubleBinaryOperator) (xv, gv) -> 0},
            {Symbol.elemwiseDiv("y", x, x), (DoubleBinaryOperator) (xv, gv) -> 0},
            {Symbol.power("y", x, x), (DoubleBinaryOperator) (xv, gv) -> gv * Math.pow(xv, xv) * (Math.log(xv) + 1)},
        };
        for (Object[] cs : cases) {
            Symbol s = (Symbol) cs[0];
            double[] expected = zip(v, g, (DoubleBinaryOperator) cs[1]);
            for (DType t : BOTH) {
                Map<String, double[]> gr = grads(s, sh, values("x", v), List.of("x"), GradReq.WRITE, 1, t, List.of(g));
                // float32: g/x - g*x/(x*x) cancels only to rounding
                assertValues(expected, gr.get("x"), t, 1, s.toJson().contains("_power") ? "pow(x,x)" : "x op x");
            }
            gradCheck(s, sh, values("x", v), List.of("x"));
            if (!s.toJson().contains("elemwise_sub") && !s.toJson().contains("elemwise_div")) {  // (their gradient is 0)
                assertAddAccumulates(s, sh, values("x", v), List.of("x"));
            }
        }
    }

    @Test
    void mixedDtypesAreRejected() {
        Symbol s = Symbol.elemwiseAdd("y", Symbol.variable("a"), Symbol.variable("b"));
        OpTesting.assertThrowsMessage(() -> s.inferType(Map.of("a", DType.FLOAT32, "b", DType.FLOAT64)), "float32", "float64");
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new float[] {1, 2}, 2);
            NDArray b = NDArray.create(new double[] {1, 2}, 2);
            assertThrowsMessage(() -> a.add(b), "elemwise_add", "float32", "float64");
            NDArray c = NDArray.create(new double[] {1, 2, 3}, 3, 1);
            assertThrowsMessage(() -> a.add(c), "broadcast_add", "float32", "float64");
        }
    }

    @Test
    void pythonStyleOperatorsMatchTheTypedFactories() {
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Object[][] cases = {
            {a.plus(b), "elemwise_add"}, {a.minus(b), "elemwise_sub"}, {a.mul(b), "elemwise_mul"},
            {a.div(b), "elemwise_div"}, {a.pow(b), "_power"},
        };
        for (Object[] cs : cases) {
            Case c = CASES.get((String) cs[1]);
            Symbol s = (Symbol) cs[0];
            double[] x = c.lhs(10, 51);
            double[] y = c.rhs(10, 52);
            for (DType t : BOTH) {
                ExecTesting.Out out = forward(s, shapes("a", shape(2, 5), "b", shape(2, 5)), values("a", x, "b", y), t);
                assertValues(zip(x, y, c.f()), out.v(0), t, "python-style " + cs[1]);
            }
        }
    }

    @Test
    void imperativeMatchesSymbolicBitForBit() {
        long[] sh = shape(LARGE);
        try (NDScope scope = NDScope.open()) {
            for (String op : ops().toList()) {
                Case c = CASES.get(op);
                double[] a = c.lhs(LARGE, 61);
                double[] b = c.rhs(LARGE, 62);
                double[] expected = zip(a, b, c.f());
                for (DType t : BOTH) {
                    NDArray x = NDArray.create(a, sh).asType(t);
                    NDArray y = NDArray.create(b, sh).asType(t);
                    NDArray r = switch (op) {
                        case "elemwise_add" -> x.add(y);
                        case "elemwise_sub" -> x.sub(y);
                        case "elemwise_mul" -> x.mul(y);
                        case "elemwise_div" -> x.div(y);
                        case "_maximum" -> x.maximum(y);
                        case "_minimum" -> x.minimum(y);
                        default -> x.pow(y);
                    };
                    assertEquals(t, r.dtype(), op);
                    assertShape(sh, r.shape().dims(), op);
                    double[] got = r.toDoubleArray();
                    assertValues(expected, got, t, "imperative " + op);
                    double[] symbolic = forward(sym(c), OpTesting.shapes("a", sh, "b", sh), values("a", a, "b", b), t).v(0);
                    assertArrayEquals(symbolic, got, "imperative vs symbolic " + op + " " + t);
                    // NDArray.invoke by name gives the same again
                    assertArrayEquals(got, NDArray.invoke(op, Map.of(), x, y).get(0).toDoubleArray(), "invoke " + op);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void imperativeInPlaceIntoEitherOperand(String op) {
        // invokeInto with the output aliasing lhs, then rhs (the ops' in-place pairs {0,0} and {1,0})
        Case c = CASES.get(op);
        double[] a = c.lhs(LARGE, 71);
        double[] b = c.rhs(LARGE, 72);
        double[] expected = zip(a, b, c.f());
        for (DType t : BOTH) {
            try (NDScope scope = NDScope.open()) {
                NDArray x = NDArray.create(a, LARGE).asType(t);
                NDArray y = NDArray.create(b, LARGE).asType(t);
                NDArray.invokeInto(op, Map.of(), x, x, y);
                assertValues(expected, x.toDoubleArray(), t, op + " into lhs");
                NDArray x2 = NDArray.create(a, LARGE).asType(t);
                NDArray.invokeInto(op, Map.of(), y, x2, y);
                assertValues(expected, y.toDoubleArray(), t, op + " into rhs");
            }
        }
    }
}
