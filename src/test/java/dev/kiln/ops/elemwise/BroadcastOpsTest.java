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
import static dev.kiln.testutil.OpTesting.assertContains;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.engine.Engine;
import dev.kiln.engine.KilnException;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.BinaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** broadcast_add/sub/mul/div/maximum/minimum/power: NumPy broadcasting forward, reduced backward, errors. */
@ExtendWith(NoLeaks.class)
class BroadcastOpsTest {

    /** Broadcast op -> (factory, the same-shape op whose reference map and derivatives apply). */
    static final Map<String, String> SAME_SHAPE = Map.of("broadcast_add", "elemwise_add", "broadcast_sub", "elemwise_sub",
            "broadcast_mul", "elemwise_mul", "broadcast_div", "elemwise_div", "broadcast_maximum", "_maximum",
            "broadcast_minimum", "_minimum", "broadcast_power", "_power");

    static final Map<String, BinaryOperator<Symbol>> FACTORY = Map.of(
            "broadcast_add", (l, r) -> Symbol.broadcastAdd("y", l, r),
            "broadcast_sub", (l, r) -> Symbol.broadcastSub("y", l, r),
            "broadcast_mul", (l, r) -> Symbol.broadcastMul("y", l, r),
            "broadcast_div", (l, r) -> Symbol.broadcastDiv("y", l, r),
            "broadcast_maximum", (l, r) -> Symbol.broadcastMaximum("y", l, r),
            "broadcast_minimum", (l, r) -> Symbol.broadcastMinimum("y", l, r),
            "broadcast_power", (l, r) -> Symbol.broadcastPower("y", l, r));

    static Stream<String> ops() {
        return Stream.of("broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div", "broadcast_maximum",
                "broadcast_minimum", "broadcast_power");
    }

    /** lhs shape, rhs shape. */
    static final long[][][] SMALL = {
        {shape(3, 1), shape(1, 4)},
        {shape(2, 3, 4), shape(3, 1)},
        {shape(5), shape(2, 5)},
        {shape(1), shape(4, 3)},
        {shape(4, 3), shape(1)},
        {shape(2, 3), shape(2, 3)},
        {shape(2, 1, 4), shape(3, 1)},
        {shape(1, 3, 1), shape(2, 1, 4)},
        {shape(1, 1), shape(1)},
        {shape(2, 3, 4), shape(4)},
        {shape(1, 4), shape(4)},
        {shape(4), shape(1, 4)},
        {shape(3, 1), shape(3)},
    };

    static final long[][][] BIG = {
        {shape(LARGE), shape(1)},
        {shape(1), shape(LARGE)},
        {shape(317, 331), shape(331)},
        {shape(331, 1), shape(1, 317)},
        {shape(2, 7, 7151), shape(7, 1)},
        {shape(7, 1), shape(2, 7, 7151)},
        {shape(LARGE), shape(LARGE)},
    };

    private static Symbol sym(String op) {
        return FACTORY.get(op).apply(Symbol.variable("a"), Symbol.variable("b"));
    }

    private static BinaryOpsTest.Case ref(String op) {
        return BinaryOpsTest.CASES.get(SAME_SHAPE.get(op));
    }

    private static void checkForward(String op, long[][][] pairs, long seed) {
        BinaryOpsTest.Case c = ref(op);
        Symbol s = sym(op);
        for (long[][] p : pairs) {
            double[] a = c.lhs(size(p[0]), seed++);
            double[] b = c.rhs(size(p[1]), seed++);
            long[] so = broadcastShape(p[0], p[1]);
            double[] expected = broadcastRef(p[0], a, p[1], b, c.f());
            String what = op + " " + Arrays.toString(p[0]) + " with " + Arrays.toString(p[1]);
            for (DType t : BOTH) {
                ExecTesting.Out out = forward(s, shapes("a", p[0], "b", p[1]), values("a", a, "b", b), t);
                assertShape(so, out.s(0), what);
                assertValues(expected, out.v(0), t, what);
            }
        }
    }

    private static void checkBackward(String op, long[][][] pairs, long seed) {
        BinaryOpsTest.Case c = ref(op);
        Symbol s = sym(op);
        for (long[][] p : pairs) {
            double[] a = c.lhs(size(p[0]), seed++);
            double[] b = c.rhs(size(p[1]), seed++);
            long[] so = broadcastShape(p[0], p[1]);
            double[] g = rand(so, -1, 1, seed++);
            // elementwise partials over the output, then summed over each operand's broadcast axes
            double[] fa = broadcastRef(p[0], a, p[1], b, c.da());
            double[] fb = broadcastRef(p[0], a, p[1], b, c.db());
            for (int i = 0; i < g.length; i++) {
                fa[i] *= g[i];
                fb[i] *= g[i];
            }
            double[] ea = sumTo(fa, so, p[0]);
            double[] eb = sumTo(fb, so, p[1]);
            double scaleA = max(sumTo(ElemTesting.map(fa, Math::abs), so, p[0]));
            double scaleB = max(sumTo(ElemTesting.map(fb, Math::abs), so, p[1]));
            String what = op + " " + Arrays.toString(p[0]) + " with " + Arrays.toString(p[1]);
            for (DType t : BOTH) {
                Map<String, double[]> gr = grads(s, shapes("a", p[0], "b", p[1]), values("a", a, "b", b),
                        List.of("a", "b"), GradReq.WRITE, 1, t, List.of(g));
                assertValues(ea, gr.get("a"), t, scaleA, what + " d/da");
                assertValues(eb, gr.get("b"), t, scaleB, what + " d/db");
            }
        }
    }

    private static double max(double[] v) {
        double m = 0;
        for (double x : v) {
            m = Math.max(m, x);
        }
        return m;
    }

    @ParameterizedTest
    @MethodSource("ops")
    void forwardSmallShapes(String op) {
        checkForward(op, SMALL, 1);
    }

    @ParameterizedTest
    @MethodSource("ops")
    void forwardLargeShapes(String op) {
        checkForward(op, BIG, 100);
    }

    @ParameterizedTest
    @MethodSource("ops")
    void backwardSmallShapes(String op) {
        checkBackward(op, SMALL, 200);
    }

    @ParameterizedTest
    @MethodSource("ops")
    void backwardLargeShapes(String op) {
        checkBackward(op, BIG, 300);
    }

    @Test
    void largeShapesWithThreeThreads() {
        // an odd chunk count puts chunk boundaries in the middle of broadcast rows
        int before = Engine.numThreads();
        Engine.setNumThreads(3);
        try {
            checkForward("broadcast_mul", BIG, 400);
            checkBackward("broadcast_div", BIG, 500);
        } finally {
            Engine.setNumThreads(before);
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void numericGradient(String op) {
        BinaryOpsTest.Case c = ref(op);
        long seed = 600;
        for (long[][] p : SMALL) {
            gradCheck(sym(op), shapes("a", p[0], "b", p[1]),
                    values("a", c.lhs(size(p[0]), seed++), "b", c.rhs(size(p[1]), seed++)), List.of("a", "b"));
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void gradReqAddAccumulates(String op) {
        BinaryOpsTest.Case c = ref(op);
        for (long[][] p : SMALL) {
            assertAddAccumulates(sym(op), shapes("a", p[0], "b", p[1]),
                    values("a", c.lhs(size(p[0]), 700), "b", c.rhs(size(p[1]), 701)), List.of("a", "b"));
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void incompatibleShapesNameBothShapes(String op) {
        Symbol s = sym(op);
        KilnException e = assertInferFails(s, shapes("a", shape(2, 3), "b", shape(4, 3)),
                "operands could not be broadcast together with shapes", "(2,3)", "(4,3)");
        assertContains(e.getMessage(), op);
        assertInferFails(s, shapes("a", shape(3), "b", shape(4)), "(3,)", "(4,)");
        assertInferFails(s, shapes("a", shape(2, 3, 4), "b", shape(3, 3)), "(2,3,4)", "(3,3)");
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[6], 2, 3);
            NDArray b = NDArray.create(new double[12], 4, 3);
            assertThrowsMessage(() -> NDArray.invoke(op, Map.of(), a, b), op, "(2,3)", "(4,3)");
        }
    }

    @Test
    void imperativeBroadcastingMatchesSymbolic() {
        // NDArray.add/sub/mul/div/maximum/minimum/pow switch to broadcast_* when the shapes differ
        try (NDScope scope = NDScope.open()) {
            for (String op : ops().toList()) {
                BinaryOpsTest.Case c = ref(op);
                for (long[][] p : new long[][][] {{shape(2, 3, 4), shape(3, 1)}, {shape(317, 331), shape(331)}}) {
                    double[] a = c.lhs(size(p[0]), 800);
                    double[] b = c.rhs(size(p[1]), 801);
                    double[] expected = broadcastRef(p[0], a, p[1], b, c.f());
                    for (DType t : BOTH) {
                        NDArray x = NDArray.create(a, p[0]).asType(t);
                        NDArray y = NDArray.create(b, p[1]).asType(t);
                        NDArray r = switch (op) {
                            case "broadcast_add" -> x.add(y);
                            case "broadcast_sub" -> x.sub(y);
                            case "broadcast_mul" -> x.mul(y);
                            case "broadcast_div" -> x.div(y);
                            case "broadcast_maximum" -> x.maximum(y);
                            case "broadcast_minimum" -> x.minimum(y);
                            default -> x.pow(y);
                        };
                        assertShape(broadcastShape(p[0], p[1]), r.shape().dims(), op);
                        double[] got = r.toDoubleArray();
                        assertValues(expected, got, t, "imperative " + op);
                        double[] symbolic = forward(sym(op), shapes("a", p[0], "b", p[1]), values("a", a, "b", b), t).v(0);
                        assertArrayEquals(symbolic, got, "imperative vs symbolic " + op + " " + t);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void imperativeInPlaceIntoTheFullOperand(String op) {
        BinaryOpsTest.Case c = ref(op);
        long[] big = shape(317, 331);
        long[] row = shape(331);
        double[] a = c.lhs(size(big), 900);
        double[] b = c.rhs(size(row), 901);
        double[] expected = broadcastRef(big, a, row, b, c.f());
        for (DType t : BOTH) {
            try (NDScope scope = NDScope.open()) {
                NDArray x = NDArray.create(a, big).asType(t);
                NDArray y = NDArray.create(b, row).asType(t);
                NDArray.invokeInto(op, Map.of(), x, x, y);
                assertValues(expected, x.toDoubleArray(), t, op + " into lhs");
            }
        }
    }
}
