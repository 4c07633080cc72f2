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
import static dev.kiln.ops.elemwise.ElemTesting.keptShape;
import static dev.kiln.ops.elemwise.ElemTesting.maxReduceScale;
import static dev.kiln.ops.elemwise.ElemTesting.operandIndex;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.reduceRef;
import static dev.kiln.ops.elemwise.ElemTesting.reducedAxes;
import static dev.kiln.ops.elemwise.ElemTesting.reducedShape;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.ops.elemwise.ElemTesting.values;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.unravel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.Engine;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** sum, mean, max, min over axis None / single / several / negative axes, keepdims, exclude. */
@ExtendWith(NoLeaks.class)
class ReduceOpsTest {

    static Stream<String> ops() {
        return Stream.of("sum", "mean", "max", "min");
    }

    /** A reduction node on variable x; axes == null leaves the axis attribute out (reduce everything). */
    static Symbol reduce(String op, int[] axes, boolean keepdims, boolean exclude) {
        Symbol x = Symbol.variable("x");
        if (axes == null) {
            Map<String, String> a = new LinkedHashMap<>();
            a.put("keepdims", keepdims ? "True" : "False");
            a.put("exclude", exclude ? "True" : "False");
            return Symbol.create(op, "y", a, null, x);
        }
        if (axes.length == 1 && !exclude) {  // the single-int factories (axis written as "1")
            return switch (op) {
                case "sum" -> Symbol.sum("y", x, axes[0], keepdims);
                case "mean" -> Symbol.mean("y", x, axes[0], keepdims);
                case "max" -> Symbol.max("y", x, axes[0], keepdims);
                default -> Symbol.min("y", x, axes[0], keepdims);
            };
        }
        return switch (op) {
            case "sum" -> Symbol.sum("y", x, axes, keepdims, exclude);
            case "mean" -> Symbol.mean("y", x, axes, keepdims, exclude);
            case "max" -> Symbol.max("y", x, axes, keepdims, exclude);
            default -> Symbol.min("y", x, axes, keepdims, exclude);
        };
    }

    static final int[][] AXES_3D = {
        null, {}, {0}, {1}, {2}, {-1}, {-3}, {0, 2}, {1, 2}, {0, 1}, {0, 1, 2}, {-1, 0}, {2, -2},
    };

    private static String what(String op, long[] sh, int[] axes, boolean keepdims, boolean exclude) {
        return op + " of " + Arrays.toString(sh) + " axis=" + (axes == null ? "None" : Arrays.toString(axes)) + " keepdims="
                + keepdims + " exclude=" + exclude;
    }

    private static void checkForward(String op, long[] sh, int[] axes, boolean keepdims, boolean exclude, double[] x) {
        boolean[] red = reducedAxes(sh.length, axes, exclude);
        long[] so = reducedShape(sh, red, keepdims);
        double[] expected = reduceRef(op, x, sh, red);
        double scale = op.equals("sum") || op.equals("mean") ? maxReduceScale(x, sh, red) : 0;
        if (op.equals("mean")) {
            scale /= size(sh) / Math.max(1, size(keptShape(sh, red)));
        }
        String w = what(op, sh, axes, keepdims, exclude);
        for (DType t : BOTH) {
            ExecTesting.Out out = forward(reduce(op, axes, keepdims, exclude), shapes("x", sh), values("x", x), t);
            assertShape(so, out.s(0), w);
            assertValues(expected, out.v(0), t, scale, w);
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void forwardEveryAxisCombination(String op) {
        long[] sh = shape(2, 3, 4);
        double[] x = rand(sh, -2, 2, 1);
        for (int[] axes : AXES_3D) {
            for (boolean keepdims : new boolean[] {false, true}) {
                for (boolean exclude : new boolean[] {false, true}) {
                    checkForward(op, sh, axes, keepdims, exclude, x);
                }
            }
        }
        // rank 1, a size-1 axis, rank 4
        checkForward(op, shape(7), new int[] {0}, false, false, rand(shape(7), -2, 2, 2));
        checkForward(op, shape(7), null, true, false, rand(shape(7), -2, 2, 3));
        long[] s4 = shape(2, 1, 3, 5);
        double[] x4 = rand(s4, -2, 2, 4);
        for (int[] axes : new int[][] {{1}, {0, 2}, {-1, -3}, {1, 3}, {0, 1, 2, 3}}) {
            checkForward(op, s4, axes, false, false, x4);
            checkForward(op, s4, axes, true, true, x4);
        }
    }

    /** (shape, axes, exclude) of the large cases: one output, few outputs, many outputs, interleaved axes. */
    static final Object[][] LARGE_CASES = {
        {shape(LARGE), null, false},
        {shape(7, 14287), new int[] {1}, false},
        {shape(7, 14287), new int[] {0}, false},
        {shape(LARGE, 3), new int[] {1}, false},
        {shape(3, 33335), new int[] {0}, false},
        {shape(47, 3, 709), new int[] {1}, false},
        {shape(13, 7, 1101), new int[] {0, 2}, false},
        {shape(13, 7, 1101), new int[] {1}, true},
        {shape(5, 20001), new int[] {-1}, false},
    };

    @ParameterizedTest
    @MethodSource("ops")
    void forwardLargeShapes(String op) {
        long seed = 10;
        for (Object[] c : LARGE_CASES) {
            long[] sh = (long[]) c[0];
            double[] x = rand(sh, -2, 2, seed++);
            checkForward(op, sh, (int[]) c[1], false, (Boolean) c[2], x);
            checkForward(op, sh, (int[]) c[1], true, (Boolean) c[2], x);
        }
    }

    @Test
    void largeShapesWithThreeThreads() {
        int before = Engine.numThreads();
        Engine.setNumThreads(3);
        try {
            long seed = 20;
            for (Object[] c : LARGE_CASES) {
                long[] sh = (long[]) c[0];
                double[] x = rand(sh, -2, 2, seed++);
                checkForward("sum", sh, (int[]) c[1], false, (Boolean) c[2], x);
                checkForward("max", sh, (int[]) c[1], false, (Boolean) c[2], x);
                checkBackward("mean", sh, (int[]) c[1], true, (Boolean) c[2], x, seed++);
            }
        } finally {
            Engine.setNumThreads(before);
        }
    }

    /** dx from the reference: broadcast(g) (sum), / count (mean), g where x equals the extremum (max/min). */
    private static void checkBackward(String op, long[] sh, int[] axes, boolean keepdims, boolean exclude, double[] x,
            long seed) {
        boolean[] red = reducedAxes(sh.length, axes, exclude);
        long[] k = keptShape(sh, red);
        double[] y = reduceRef(op, x, sh, red);
        double[] g = rand(reducedShape(sh, red, keepdims), -1, 1, seed);
        int count = size(sh) / size(k);
        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            int j = operandIndex(unravel(i, sh), k);
            expected[i] = switch (op) {
                case "sum" -> g[j];
                case "mean" -> g[j] / count;
                default -> x[i] == y[j] ? g[j] : 0;
            };
        }
        Symbol s = reduce(op, axes, keepdims, exclude);
        for (DType t : BOTH) {
            Map<String, double[]> gr = grads(s, shapes("x", sh), values("x", x), List.of("x"), GradReq.WRITE, 1, t, List.of(g));
            assertValues(expected, gr.get("x"), t, what(op, sh, axes, keepdims, exclude) + " d/dx");
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void backwardMatchesReference(String op) {
        long[] sh = shape(2, 3, 4);
        double[] x = rand(sh, -2, 2, 30);
        long seed = 31;
        for (int[] axes : AXES_3D) {
            checkBackward(op, sh, axes, false, false, x, seed++);
            checkBackward(op, sh, axes, true, true, x, seed++);
        }
        for (Object[] c : LARGE_CASES) {
            long[] s = (long[]) c[0];
            checkBackward(op, s, (int[]) c[1], false, (Boolean) c[2], rand(s, -2, 2, seed++), seed++);
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void numericGradient(String op) {
        long[] sh = shape(2, 3, 4);
        double[] x = rand(sh, -2, 2, 40);  // distinct values: no ties at the extremum
        Object[][] cfg = {{null, false, false}, {new int[] {1}, false, false}, {new int[] {0, 2}, true, false},
            {new int[] {1}, false, true}, {new int[] {-1}, true, false}};
        for (Object[] c : cfg) {
            gradCheck(reduce(op, (int[]) c[0], (Boolean) c[1], (Boolean) c[2]), shapes("x", sh), values("x", x), List.of("x"));
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void gradReqAddAccumulates(String op) {
        double[] x = rand(shape(3, 4, 5), -2, 2, 50);
        assertAddAccumulates(reduce(op, new int[] {1}, false, false), shapes("x", shape(3, 4, 5)), values("x", x), List.of("x"));
        assertAddAccumulates(reduce(op, null, false, false), shapes("x", shape(3, 4, 5)), values("x", x), List.of("x"));
    }

    @Test
    void tiesEachReceiveTheFullGradient() {
        // MXNet: dx = g * (x == y), so every element equal to the extremum gets the whole gradient
        double[] x = {1, 3, 3, 2, -1, -1, 0, 5};
        double[] g = {10, 20};
        for (DType t : BOTH) {
            Map<String, double[]> mx = grads(reduce("max", new int[] {1}, false, false), shapes("x", shape(2, 4)),
                    values("x", x), List.of("x"), GradReq.WRITE, 1, t, List.of(g));
            assertValues(new double[] {0, 10, 10, 0, 0, 0, 0, 20}, mx.get("x"), t, "max ties");
            Map<String, double[]> mn = grads(reduce("min", new int[] {1}, false, false), shapes("x", shape(2, 4)),
                    values("x", x), List.of("x"), GradReq.WRITE, 1, t, List.of(g));
            assertValues(new double[] {10, 0, 0, 0, 20, 20, 0, 0}, mn.get("x"), t, "min ties");
        }
    }

    @Test
    void maxMinPropagateNaN() {
        double[] x = rand(shape(LARGE), -2, 2, 60);
        x[77_777] = Double.NaN;
        for (DType t : BOTH) {
            for (String op : List.of("max", "min", "sum", "mean")) {
                double[] all = forward(reduce(op, null, false, false), shapes("x", shape(LARGE)), values("x", x), t).v(0);
                assertTrue(Double.isNaN(all[0]), op + " over an array holding NaN " + t + ": " + all[0]);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("ops")
    void axisOutOfRangeOrDuplicated(String op) {
        Map<String, long[]> sh = shapes("x", shape(2, 3, 4));
        assertInferFails(reduce(op, new int[] {3}, false, false), sh, "Reduction axis", "Exceeds input dimensions", "(2,3,4)");
        assertInferFails(reduce(op, new int[] {-4}, false, false), sh, "Reduction axis", "Exceeds input dimensions", "(2,3,4)");
        assertInferFails(reduce(op, new int[] {0, 5}, true, true), sh, "Exceeds input dimensions");
        assertInferFails(reduce(op, new int[] {1, 1}, false, false), sh, "duplicates");
        assertInferFails(reduce(op, new int[] {1, -2}, false, false), sh, "duplicates");
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[24], 2, 3, 4);
            assertThrowsMessage(() -> NDArray.invoke(op, Map.of("axis", new int[] {3}), a), op, "Exceeds input dimensions",
                    "(2,3,4)");
        }
    }

    @Test
    void imperativeMatchesSymbolicBitForBit() {
        long[] sh = shape(47, 3, 709);
        double[] v = rand(sh, -2, 2, 70);
        int[][] axes = {{}, {1}, {0, 2}, {-1}};
        try (NDScope scope = NDScope.open()) {
            for (DType t : BOTH) {
                NDArray x = NDArray.create(v, sh).asType(t);
                for (int[] a : axes) {
                    for (String op : ops().toList()) {
                        NDArray r = switch (op) {
                            case "sum" -> x.sum(a);
                            case "mean" -> x.mean(a);
                            case "max" -> x.max(a);
                            default -> x.min(a);
                        };
                        boolean[] red = reducedAxes(sh.length, a, false);
                        assertShape(reducedShape(sh, red, false), r.shape().dims(), op + " imperative");
                        double[] got = r.toDoubleArray();
                        double scale = op.equals("sum") ? maxReduceScale(v, sh, red) : 1;
                        assertValues(reduceRef(op, v, sh, red), got, t, scale, op + " imperative " + Arrays.toString(a));
                        double[] symbolic = forward(reduce(op, a.length == 0 ? null : a, false, false), shapes("x", sh),
                                values("x", v), t).v(0);
                        assertArrayEquals(symbolic, got, "imperative vs symbolic " + op + " " + Arrays.toString(a) + " " + t);
                    }
                }
            }
        }
    }

    @Test
    void meanCenteringThroughBroadcastSub() {
        // x - mean(x, axis=1, keepdims=True): a reduction feeding a broadcast op, and its gradient
        Symbol x = Symbol.variable("x");
        Symbol s = Symbol.broadcastSub("c", x, Symbol.mean("m", x, 1, true));
        long[] sh = shape(3, 5);
        double[] v = rand(sh, -2, 2, 80);
        double[] expected = new double[15];
        for (int r = 0; r < 3; r++) {
            double m = 0;
            for (int c = 0; c < 5; c++) {
                m += v[r * 5 + c];
            }
            m /= 5;
            for (int c = 0; c < 5; c++) {
                expected[r * 5 + c] = v[r * 5 + c] - m;
            }
        }
        for (DType t : BOTH) {
            assertValues(expected, forward(s, shapes("x", sh), values("x", v), t).v(0), t, 4, "x - mean(x)");
        }
        gradCheck(s, shapes("x", sh), values("x", v), List.of("x"));
    }
}
