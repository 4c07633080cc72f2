package dev.kiln.ops.seq;

import static dev.kiln.testutil.OpTesting.assertNear;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * SequenceMask, SequenceLast and SequenceReverse against MXNet 1.9.1 (forward and data gradient,
 * with and without sequence_length, axis 0 and 1), a Java reference for lengths MXNet cannot take
 * (clamped in Kiln), numeric gradients, gradient requests and errors.
 */
@ExtendWith(NoLeaks.class)
class SequenceOpsTest {
    private static final double TOL = 1e-6;
    private static final long[][] SHAPES = {{4, 3}, {5, 2, 3}, {3, 4, 2, 2}};

    private static Map<String, String> attrs(boolean useLen, int axis, String value) {
        Map<String, String> a = new LinkedHashMap<>();
        if (useLen) {
            a.put("use_sequence_length", "True");
        }
        if (axis != 0) {
            a.put("axis", Integer.toString(axis));
        }
        if (value != null) {
            a.put("value", value);
        }
        return a;
    }

    /** Java reference. Lengths are truncated toward zero and clamped to [lo, T] (lo = 1 for SequenceLast). */
    static double[] reference(String op, double[] x, long[] s, int axis, double[] len, double value) {
        int t = (int) s[axis];
        int n = (int) s[1 - axis];
        int r = size(s) / (t * n);
        int[] l = new int[n];
        for (int b = 0; b < n; b++) {
            long v = len == null ? t : (long) len[b];
            l[b] = (int) Math.max(op.equals("SequenceLast") ? 1 : 0, Math.min(t, v));
        }
        double[] y = op.equals("SequenceLast") ? new double[n * r] : new double[x.length];
        for (int b = 0; b < n; b++) {
            for (int q = 0; q < t; q++) {
                for (int c = 0; c < r; c++) {
                    int src = off(axis, q, b, t, n, r) + c;
                    switch (op) {
                        case "SequenceMask" -> y[src] = q < l[b] ? x[src] : value;
                        case "SequenceLast" -> {
                            if (q == l[b] - 1) {
                                y[b * r + c] = x[src];
                            }
                        }
                        default -> y[off(axis, q < l[b] ? l[b] - 1 - q : q, b, t, n, r) + c] = x[src];
                    }
                }
            }
        }
        return y;
    }

    private static int off(int axis, int q, int b, int t, int n, int r) {
        return (axis == 0 ? q * n + b : b * t + q) * r;
    }

    private static List<long[]> shapes(long[] ds, int axis, boolean useLen) {
        return useLen ? List.of(ds, new long[] {ds[1 - axis]}) : List.of(ds);
    }

    private static double[] lengths(long[] ds, int axis, boolean last, long seed) {
        Random r = new Random(seed);
        int t = (int) ds[axis];
        double[] l = new double[(int) ds[1 - axis]];
        for (int b = 0; b < l.length; b++) {
            l[b] = last ? 1 + r.nextInt(t) : r.nextInt(t + 1);
        }
        l[0] = t;                       // a full sequence
        if (l.length > 2) {
            l[2] = Math.min(t, 1) + 0.75; // a fraction, truncated
        }
        return l;
    }

    @Test
    void composesAndInfers() {
        for (String op : List.of("SequenceMask", "SequenceLast", "SequenceReverse")) {
            assertEquals(List.of("data"), SeqTesting.node(op, Map.of()).listArguments());
            assertEquals(List.of("data", "n_sequence_length"), SeqTesting.node(op, attrs(true, 0, null)).listArguments());
        }
        InferResult r = SeqTesting.node("SequenceLast", attrs(true, 1, null)).inferShape(Map.of("data", new long[] {4, 3, 5}));
        assertArrayEquals(new long[] {4}, r.argShapes().get(1));
        assertArrayEquals(new long[] {4, 5}, r.outShapes().get(0));
        r = SeqTesting.node("SequenceLast", attrs(true, 0, null)).inferShape(Map.of("data", new long[] {4, 3, 5, 2}));
        assertArrayEquals(new long[] {3}, r.argShapes().get(1));
        assertArrayEquals(new long[] {3, 5, 2}, r.outShapes().get(0));
        r = SeqTesting.node("SequenceMask", attrs(true, 1, "2")).inferShape(Map.of("data", new long[] {4, 3}));
        assertArrayEquals(new long[] {4}, r.argShapes().get(1));
        assertArrayEquals(new long[] {4, 3}, r.outShapes().get(0));
        r = SeqTesting.node("SequenceReverse", attrs(true, 0, null)).inferShape(Map.of("data", new long[] {4, 3}));
        assertArrayEquals(new long[] {3}, r.argShapes().get(1));
        // the batch dim of data (0 = unknown) comes from sequence_length
        Map<String, long[]> partial = new LinkedHashMap<>();
        partial.put("data", new long[] {0, 6, 2});
        partial.put("n_sequence_length", new long[] {5});
        r = SeqTesting.node("SequenceMask", attrs(true, 1, null)).inferShape(partial);
        assertArrayEquals(new long[] {5, 6, 2}, r.argShapes().get(0));
        assertArrayEquals(new long[] {5, 6, 2}, r.outShapes().get(0));
        InferResult t = SeqTesting.node("SequenceMask", attrs(true, 0, null)).inferType(Map.of("data", DType.FLOAT64));
        assertEquals(List.of(DType.FLOAT64, DType.FLOAT64), t.argTypes());
    }

    @Test
    void forwardAndGradientsMatchMxnet() {
        int cases = 0;
        for (String op : List.of("SequenceMask", "SequenceLast", "SequenceReverse")) {
            boolean last = op.equals("SequenceLast");
            for (int axis : op.equals("SequenceReverse") ? new int[] {0} : new int[] {0, 1}) {
                for (boolean useLen : new boolean[] {false, true}) {
                    for (long[] ds : SHAPES) {
                        long seed = 31L * cases++;
                        String value = op.equals("SequenceMask") && axis == 1 ? "-1.5" : null;
                        Map<String, String> a = attrs(useLen, axis, value);
                        double[] x = rand(size(ds), -2, 2, seed);
                        double[] len = useLen ? lengths(ds, axis, last, seed + 1) : null;
                        List<double[]> vals = useLen ? List.of(x, len) : List.of(x);
                        List<long[]> shp = shapes(ds, axis, useLen);
                        String what = op + " " + Arrays.toString(ds) + " axis " + axis + " lengths " + Arrays.toString(len);
                        SeqTesting.Run mx = SeqTesting.mxnet(op, a, shp, vals, null, Set.of());
                        assertNear(reference(op, x, ds, axis, len, value == null ? 0 : -1.5), mx.output(), 0,
                                what + ": MXNet vs reference");
                        double[] head = rand(mx.output().length, -1, 1, seed + 2);
                        SeqTesting.Run mxg = SeqTesting.mxnet(op, a, shp, vals, head, Set.of(0));
                        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                            SeqTesting.Run k = SeqTesting.kiln(op, a, shp, vals, t, GradReq.WRITE, head, 1);
                            assertArrayEquals(mx.outShape(), k.outShape(), what);
                            assertNear(mx.output(), k.output(), TOL, what + " output " + t);
                            assertNear(mxg.grads().get(0), k.grads().get(0), TOL, what + " data grad " + t);
                        }
                    }
                }
            }
        }
        assertEquals(30, cases);
    }

    /** Lengths outside [0, T] (or [1, T] for SequenceLast) make MXNet read or write out of bounds; Kiln clamps. */
    @Test
    void outOfRangeLengthsAreClamped() {
        long[] ds = {4, 5, 2};
        double[] len = {-3, 9, 0, 2.9, 4};
        double[] x = rand(size(ds), -2, 2, 77);
        for (String op : List.of("SequenceMask", "SequenceLast", "SequenceReverse")) {
            for (int axis : op.equals("SequenceReverse") ? new int[] {0} : new int[] {0, 1}) {
                long[] s = axis == 0 ? ds : new long[] {5, 4, 2};
                Map<String, String> a = attrs(true, axis, op.equals("SequenceMask") ? "7" : null);
                for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                    double[] head = rand(op.equals("SequenceLast") ? 10 : 40, -1, 1, 3);
                    SeqTesting.Run k = SeqTesting.kiln(op, a, List.of(s, new long[] {5}), List.of(x, len), t, GradReq.WRITE,
                            head, 1);
                    assertNear(reference(op, x, s, axis, len, 7), k.output(), 1e-7, op + " axis " + axis + " " + t);
                }
            }
        }
    }

    @Test
    void numericGradients() {
        for (String op : List.of("SequenceMask", "SequenceLast", "SequenceReverse")) {
            for (int axis : op.equals("SequenceReverse") ? new int[] {0} : new int[] {0, 1}) {
                long[] ds = axis == 0 ? new long[] {3, 4, 2} : new long[] {4, 3, 2};
                GradCheck.Inputs in = new GradCheck.Inputs().random("data", ds, -1, 1, 11)
                        .put("n_sequence_length", new long[] {4}, op.equals("SequenceLast") ? new double[] {1, 3, 2, 3}
                                : new double[] {0, 3, 2, 1});
                String value = op.equals("SequenceMask") ? "0.5" : null;
                GradCheck.check(SeqTesting.node(op, attrs(true, axis, value)), in, List.of("data"), 1e-6, 1e-6, 1e-8);
                GradCheck.Inputs plain = new GradCheck.Inputs().random("data", ds, -1, 1, 12);
                GradCheck.check(SeqTesting.node(op, attrs(false, axis, null)), plain, List.of("data"), 1e-6, 1e-6, 1e-8);
            }
        }
    }

    /**
     * tanh -> SequenceMask -> tanh -> SequenceReverse -> SequenceLast in one graph (the planner may
     * run the mask and its backward in place): forward against the Java reference, numeric gradients.
     */
    @Test
    void chainInOneGraph() {
        Symbol len = Symbol.variable("len");
        Map<String, String> tanh = Map.of("act_type", "tanh");
        Symbol a = Symbol.create("Activation", "a", tanh, null, Symbol.variable("data"));
        Symbol m = Symbol.create("SequenceMask", "m", attrs(true, 0, "0.25"), null, a, len);
        Symbol b = Symbol.create("Activation", "b", tanh, null, m);
        Symbol r = Symbol.create("SequenceReverse", "r", attrs(true, 0, null), null, b, len);
        Symbol l = Symbol.create("SequenceLast", "l", attrs(true, 0, null), null, r, len);
        long[] ds = {4, 3, 2};
        double[] lens = {3, 1, 2};
        GradCheck.Inputs in = new GradCheck.Inputs().random("data", ds, -1.5, 1.5, 21).put("len", new long[] {3}, lens);
        double[] x = in.get("data").clone();
        for (int i = 0; i < x.length; i++) {
            x[i] = Math.tanh(x[i]);
        }
        double[] y = reference("SequenceMask", x, ds, 0, lens, 0.25);
        for (int i = 0; i < y.length; i++) {
            y[i] = Math.tanh(y[i]);
        }
        y = reference("SequenceLast", reference("SequenceReverse", y, ds, 0, lens, 0), ds, 0, lens, 0);
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            assertNear(y, GradCheck.forward(l, in, t, true).get(0), t == DType.FLOAT32 ? 1e-6 : 1e-12, "chain " + t);
        }
        GradCheck.check(l, in, List.of("data"), 1e-6, 1e-6, 1e-8);
    }

    /** sequence_length gets a zero gradient; add-to accumulates the data gradient. */
    @Test
    void gradientRequests() {
        long[] ds = {4, 3, 2};
        double[] x = rand(24, -1, 1, 5);
        double[] len = {2, 4, 1};
        for (String op : List.of("SequenceMask", "SequenceLast", "SequenceReverse")) {
            Map<String, String> a = attrs(true, 0, null);
            List<long[]> shp = List.of(ds, new long[] {3});
            double[] head = rand(op.equals("SequenceLast") ? 6 : 24, -1, 1, 6);
            for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                SeqTesting.Run once = SeqTesting.kiln(op, a, shp, List.of(x, len), List.of(t, t),
                        List.of(GradReq.WRITE, GradReq.WRITE), head, 1);
                assertNear(new double[3], once.grads().get(1), 0, op + " sequence_length grad " + t);
                SeqTesting.Run twice = SeqTesting.kiln(op, a, shp, List.of(x, len), List.of(t, t),
                        List.of(GradReq.ADD, GradReq.ADD), head, 2);
                double[] g = once.grads().get(0).clone();
                for (int j = 0; j < g.length; j++) {
                    g[j] *= 2;
                }
                assertNear(g, twice.grads().get(0), 1e-7, op + " data grad add x2 " + t);
                assertNear(new double[3], twice.grads().get(1), 0, op + " sequence_length grad add " + t);
            }
        }
    }

    @Test
    void integerSequenceLengthType() {
        long[] ds = {4, 3};
        double[] x = rand(12, -1, 1, 8);
        double[] len = {1, 4, 0};
        SeqTesting.Run k = SeqTesting.kiln("SequenceMask", attrs(true, 0, "9"), List.of(ds, new long[] {3}),
                List.of(x, len), List.of(DType.FLOAT32, DType.INT32), List.of(GradReq.NULL, GradReq.NULL), null, 1);
        assertNear(reference("SequenceMask", x, ds, 0, len, 9), k.output(), 1e-7, "int32 lengths");
    }

    @Test
    void errors() {
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", new long[] {4, 3, 2});
        assertThrowsMessage(() -> SeqTesting.bind(SeqTesting.node("SequenceMask", attrs(false, 2, null)), s),
                "SequenceMask", "axis=2", "0 or 1");
        assertThrowsMessage(() -> SeqTesting.bind(SeqTesting.node("SequenceLast", attrs(false, -1, null)), s),
                "SequenceLast", "axis=-1");
        assertThrowsMessage(() -> SeqTesting.bind(SeqTesting.node("SequenceReverse", attrs(false, 1, null)), s),
                "SequenceReverse", "axis=1", "expects axis to be 0");
        for (String op : List.of("SequenceMask", "SequenceLast", "SequenceReverse")) {
            Map<String, long[]> bad = new LinkedHashMap<>(s);
            bad.put("n_sequence_length", new long[] {4});
            assertThrowsMessage(() -> SeqTesting.bind(SeqTesting.node(op, attrs(true, 0, null)), bad), op,
                    "n_sequence_length", "(4,)", "(3,)");
            bad.put("n_sequence_length", new long[] {3, 1});
            assertThrowsMessage(() -> SeqTesting.bind(SeqTesting.node(op, attrs(true, 0, null)), bad), op, "(3,1)");
            assertThrowsMessage(() -> SeqTesting.bind(SeqTesting.node(op, Map.of()), Map.of("data", new long[] {5})), op,
                    "rank 2", "(5,)");
        }
        // an empty sequence axis (0 is "unknown" in bind shapes, so imperatively)
        assertThrowsMessage(() -> {
            try (NDArray x = NDArray.zeros(new Shape(0, 3), DType.FLOAT32, Context.cpu())) {
                NDArray.invoke("SequenceLast", Map.of(), x).forEach(NDArray::close);
            }
        }, "SequenceLast", "empty", "(0,3)");
        assertThrowsMessage(() -> SeqTesting.node("SequenceLast", Map.of("value", "1")), "SequenceLast", "value");
        assertThrowsMessage(() -> SeqTesting.node("SequenceMask", Map.of("use_sequence_length", "maybe")),
                "use_sequence_length");
    }
}
