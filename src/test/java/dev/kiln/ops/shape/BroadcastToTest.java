package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertAddAccumulates;
import static dev.kiln.ops.shape.ShapeFixtures.assertInferFails;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.forward;
import static dev.kiln.ops.shape.ShapeFixtures.gradCheck;
import static dev.kiln.ops.shape.ShapeFixtures.grads;
import static dev.kiln.ops.shape.ShapeFixtures.head;
import static dev.kiln.ops.shape.ShapeFixtures.randomValues;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.unravel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * broadcast_to, broadcast_like and broadcast_axis (broadcast_axes): forward against a multi-index
 * reference, the gradient (the head summed back over the broadcast axes; broadcast_like's rhs gets
 * zeros), numeric gradients, grad_req=add, a large case, every dtype and the refusals.
 */
@ExtendWith(NoLeaks.class)
class BroadcastToTest {
    static final DType[] MOVED = {DType.FLOAT16, DType.BFLOAT16, DType.INT32, DType.INT64, DType.UINT8, DType.INT8};

    /** y[j] = x[j with the coordinates of x's size-1 dims set to 0] (x and y of the same rank). */
    static double[] broadcastRef(double[] x, long[] xs, long[] ys) {
        double[] y = new double[size(ys)];
        for (int f = 0; f < y.length; f++) {
            int[] j = unravel(f, ys);
            for (int d = 0; d < xs.length; d++) {
                j[d] = xs[d] == 1 ? 0 : j[d];
            }
            y[f] = x[(int) ShapeFixtures.ravel(j, xs)];
        }
        return y;
    }

    /** The gradient of broadcastRef: dy summed into dx. */
    static double[] sumBackRef(double[] dy, long[] ys, long[] xs) {
        double[] dx = new double[size(xs)];
        for (int f = 0; f < dy.length; f++) {
            int[] j = unravel(f, ys);
            for (int d = 0; d < xs.length; d++) {
                j[d] = xs[d] == 1 ? 0 : j[d];
            }
            dx[(int) ShapeFixtures.ravel(j, xs)] += dy[f];
        }
        return dx;
    }

    private static Symbol op(String op, Map<String, String> attrs, Symbol... in) {
        return Symbol.create(op, "b", attrs, null, in);
    }

    /** Forward and the data gradient against the references (float64 and float32), plus a numeric check. */
    private static void check(Symbol sym, Map<String, long[]> s, long[] ys, boolean numeric) {
        Map<String, double[]> v = randomValues(s);
        long[] xs = s.get(s.keySet().iterator().next());
        String first = s.keySet().iterator().next();
        String what = s.keySet() + " " + Arrays.toString(xs) + " -> " + Arrays.toString(ys);
        double[] ref = broadcastRef(v.get(first), xs, ys);
        double[] dref = sumBackRef(head(0, ys), ys, xs);
        List<String> wrt = List.copyOf(s.keySet());
        for (DType t : BOTH) {
            assertOut(forward(sym, s, v, t), 0, ys, ref, t, what);
            Map<String, double[]> g = grads(sym, s, v, wrt, GradReq.WRITE, 1, t);
            GradCheck.assertClose(dref, g.get(first), 1e-6, 1e-6, "d/d" + first + " of " + what + " " + t);
            for (String other : wrt.subList(1, wrt.size())) {
                assertArrayEquals(new double[size(s.get(other))], g.get(other), "the shape-only input gets zeros: " + what);
            }
        }
        if (numeric) {
            gradCheck(sym, s, v, wrt);
        }
    }

    @Test
    void broadcastToForwardAndGradient() {
        Symbol x = Symbol.variable("data");
        check(Symbol.broadcastTo("b", x, 3, 5, 4), shapes("data", shape(3, 1, 4)), shape(3, 5, 4), true);
        check(Symbol.broadcastTo("b", x, 7), shapes("data", shape(1)), shape(7), true);
        // 0 keeps the input's dim
        check(Symbol.broadcastTo("b", x, 0, 6, 0), shapes("data", shape(2, 1, 5)), shape(2, 6, 5), true);
        check(Symbol.broadcastTo("b", x, 4, 0, 3, 2), shapes("data", shape(1, 3, 1, 1)), shape(4, 3, 3, 2), true);
        // nothing to broadcast: a copy
        check(Symbol.broadcastTo("b", x, 2, 3), shapes("data", shape(2, 3)), shape(2, 3), true);
        assertAddAccumulates(Symbol.broadcastTo("b", x, 3, 5, 4), shapes("data", shape(3, 1, 4)),
                randomValues(shapes("data", shape(3, 1, 4))), List.of("data"));
    }

    @Test
    void broadcastLikeForwardAndGradient() {
        Symbol l = Symbol.variable("lhs");
        Symbol r = Symbol.variable("rhs");
        check(Symbol.broadcastLike("b", l, r), shapes("lhs", shape(1, 4, 1), "rhs", shape(3, 4, 5)), shape(3, 4, 5), true);
        check(Symbol.broadcastLike("b", l, r), shapes("lhs", shape(2, 1), "rhs", shape(2, 6)), shape(2, 6), true);
        // on chosen axes: lhs axis 1 takes rhs's last axis
        check(Symbol.broadcastLike("b", l, r, new int[] {1}, new int[] {-1}), shapes("lhs", shape(2, 1, 3), "rhs", shape(7, 6)),
                shape(2, 6, 3), true);
        check(Symbol.broadcastLike("b", l, r, new int[] {0, -1}, new int[] {1, 0}), shapes("lhs", shape(1, 3, 1), "rhs", shape(4, 2)),
                shape(2, 3, 4), true);
        Map<String, long[]> s = shapes("lhs", shape(1, 4, 1), "rhs", shape(3, 4, 5));
        assertAddAccumulates(Symbol.broadcastLike("b", l, r), s, randomValues(s), List.of("lhs"));
    }

    @Test
    void broadcastAxisForwardAndGradient() {
        Symbol x = Symbol.variable("data");
        check(Symbol.broadcastAxis("b", x, new int[] {0, 2}, new long[] {2, 4}), shapes("data", shape(1, 3, 1)), shape(2, 3, 4), true);
        check(Symbol.broadcastAxis("b", x, new int[] {-1}, new long[] {5}), shapes("data", shape(3, 1)), shape(3, 5), true);
        check(Symbol.broadcastAxis("b", x, new int[0], new long[0]), shapes("data", shape(3, 2)), shape(3, 2), false);
        // the alias broadcast_axes
        check(op("broadcast_axes", a("axis", "(1,)", "size", "(3,)"), x), shapes("data", shape(2, 1)), shape(2, 3), false);
        Map<String, long[]> s = shapes("data", shape(1, 3, 1));
        assertAddAccumulates(Symbol.broadcastAxis("b", x, new int[] {0, 2}, new long[] {2, 4}), s, randomValues(s), List.of("data"));
    }

    @Test
    void largeBroadcastsAndSums() {
        Symbol x = Symbol.variable("data");
        // 84,000 outputs: the threaded broadcast and the threaded reduction of its gradient
        check(Symbol.broadcastTo("b", x, 4, 300, 70), shapes("data", shape(1, 300, 1)), shape(4, 300, 70), false);
        check(Symbol.broadcastAxis("b", x, new int[] {1}, new long[] {400}), shapes("data", shape(180, 1)), shape(180, 400), false);
        Map<String, long[]> s = shapes("data", shape(1, 300, 1));
        assertAddAccumulates(Symbol.broadcastTo("b", x, 4, 300, 70), s, randomValues(s), List.of("data"));
    }

    @Test
    void everyDtypeMoves() {
        Symbol x = Symbol.variable("data");
        long[] xs = shape(2, 1, 3);
        long[] ys = shape(2, 4, 3);
        double[] v = new double[size(xs)];
        for (int i = 0; i < v.length; i++) {
            v[i] = 17 * i % 101;  // exact in every dtype (uint8 and int8 included)
        }
        double[] ref = broadcastRef(v, xs, ys);
        for (DType t : MOVED) {
            assertArrayEquals(ref, forward(Symbol.broadcastTo("b", x, 0, 4, 0), shapes("data", xs), Map.of("data", v), t).v(0),
                    "broadcast_to " + t);
            assertArrayEquals(ref, forward(Symbol.broadcastAxis("b", x, new int[] {1}, new long[] {4}), shapes("data", xs),
                    Map.of("data", v), t).v(0), "broadcast_axis " + t);
        }
    }

    @Test
    void refusals() {
        Symbol x = Symbol.variable("data");
        Map<String, long[]> s = shapes("data", shape(2, 3));
        assertInferFails(Symbol.broadcastTo("b", x, 2, 3, 4), s, "broadcast_to", "Operand of shape (2,3) cannot be broadcasted to (2,3,4)");
        assertInferFails(Symbol.broadcastTo("b", x, 2, 4), s, "Array cannot be broadcasted from (2,3) to (2,4)", "dimension 1");
        assertInferFails(op("broadcast_to", a("shape", "(2,-1)"), x), s, "negative dimension");
        assertInferFails(op("broadcast_to", a(), x), s, "cannot be broadcasted to ()");
        Symbol l = Symbol.variable("lhs");
        Symbol r = Symbol.variable("rhs");
        assertInferFails(Symbol.broadcastLike("b", l, r), shapes("lhs", shape(2, 3), "rhs", shape(2, 5)),
                "broadcast_like", "Array cannot be broadcasted from (2,3) to (2,5)");
        assertInferFails(Symbol.broadcastLike("b", l, r), shapes("lhs", shape(1, 3), "rhs", shape(3)),
                "Operand of shape (1,3) cannot be broadcasted to (3,)");
        assertInferFails(Symbol.broadcastLike("b", l, r, new int[] {1}, new int[] {0}), shapes("lhs", shape(1, 3), "rhs", shape(5)),
                "Input axis 1 at dimension 0 cannot be broadcasted to 5", "must be 1");
        assertInferFails(Symbol.broadcastLike("b", l, r, new int[] {2}, new int[] {0}), shapes("lhs", shape(1, 3), "rhs", shape(5)),
                "Invalid dimension specified in lhs_axes: 2");
        assertInferFails(Symbol.broadcastLike("b", l, r, new int[] {0}, new int[] {-2}), shapes("lhs", shape(1, 3), "rhs", shape(5)),
                "Invalid dimension specified in rhs_axes: -2");
        assertInferFails(Symbol.broadcastLike("b", l, r, new int[] {0}, new int[] {0, 0}), shapes("lhs", shape(1, 3), "rhs", shape(5, 2)),
                "Input_axis and other_axis size does not match");
        assertInferFails(Symbol.broadcastLike("b", l, r, new int[0], new int[0]), shapes("lhs", shape(1, 3), "rhs", shape(5)),
                "Empty axes tuple is not allowed");
        assertInferFails(Symbol.broadcastAxis("b", x, new int[] {1}, new long[] {4}), s,
                "broadcast_axis", "Broadcasting axis must have size 1");
        assertInferFails(Symbol.broadcastAxis("b", x, new int[] {2}, new long[] {4}), s, "Invalid broadcast axis: 2");
        assertInferFails(Symbol.broadcastAxis("b", x, new int[] {0, 1}, new long[] {4}), s, "must have the same length");
        assertInferFails(Symbol.broadcastAxis("b", Symbol.variable("data"), new int[] {0, 0}, new long[] {4, 4}),
                shapes("data", shape(1, 3)), "Broadcasting axis must have size 1", "named twice");
        assertInferFails(op("broadcast_axis", a("axis", "(0,)", "size", "(-2,)"), x), shapes("data", shape(1, 3)), "negative size");
    }
}
