package dev.kiln.ops.seq;

import static dev.kiln.testutil.OpTesting.assertNear;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
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

/** Embedding against MXNet 1.9.1 (forward with clipping, weight gradient), numeric gradients, errors, speed. */
@ExtendWith(NoLeaks.class)
class EmbeddingTest {
    private static final double TOL = 1e-5;

    private static Map<String, String> attrs(int v, int d, String dtype) {
        Map<String, String> a = new LinkedHashMap<>();
        a.put("input_dim", Integer.toString(v));
        a.put("output_dim", Integer.toString(d));
        if (dtype != null) {
            a.put("dtype", dtype);
        }
        return a;
    }

    /** Indices with repeats, out-of-range values on both sides and fractions (truncated toward zero). */
    private static double[] indices(int n, int v, long seed) {
        Random r = new Random(seed);
        double[] x = new double[n];
        double[] special = {-3, -0.75, v, v + 2.5, v - 0.5, 1.9, 0};
        for (int i = 0; i < n; i++) {
            x[i] = i < special.length && n > 2 * special.length ? special[i] : r.nextInt(v + 4) - 2;
        }
        return x;
    }

    /** Java reference of the forward: out[k] = w[clip(trunc(idx[k]))]. */
    private static double[] reference(double[] idx, double[] w, int v, int d) {
        double[] o = new double[idx.length * d];
        for (int k = 0; k < idx.length; k++) {
            long j = (long) idx[k];
            j = Math.max(0, Math.min(v - 1, j));
            System.arraycopy(w, (int) j * d, o, k * d, d);
        }
        return o;
    }

    @Test
    void composesAndInfers() {
        Symbol e = SeqTesting.node("Embedding", attrs(10, 4, null));
        assertEquals(List.of("data", "n_weight"), e.listArguments());
        assertEquals(List.of("n_output"), e.listOutputs());
        InferResult r = e.inferShape(Map.of("data", new long[] {3, 5}));
        assertArrayEquals(new long[] {10, 4}, r.argShapes().get(1));
        assertArrayEquals(new long[] {3, 5, 4}, r.outShapes().get(0));
        InferResult t = e.inferType(Map.of("data", DType.INT32));
        assertEquals(List.of(DType.INT32, DType.FLOAT32), t.argTypes());
        assertEquals(List.of(DType.FLOAT32), t.outTypes());
        // unconstrained arguments default to float32 (as MXNet's simple_bind), so give data's type
        InferResult t64 = SeqTesting.node("Embedding", attrs(10, 4, "float64")).inferType(Map.of("data", DType.FLOAT32));
        assertEquals(List.of(DType.FLOAT32, DType.FLOAT64), t64.argTypes());
        assertEquals(List.of(DType.FLOAT64), t64.outTypes());
    }

    @Test
    void forwardAndWeightGradientMatchMxnet() {
        int v = 7;
        int d = 5;
        long[][] dss = {{4}, {3, 5}, {2, 3, 4}, {40}};
        for (long[] ds : dss) {
            long seed = ds.length * 10L + ds[0];
            double[] idx = indices(size(ds), v, seed);
            double[] w = rand(v * d, -2, 2, seed + 1);
            List<long[]> shapes = List.of(ds, new long[] {v, d});
            List<double[]> vals = List.of(idx, w);
            String what = Arrays.toString(ds);
            SeqTesting.Run mx = SeqTesting.mxnet("Embedding", attrs(v, d, null), shapes, vals, null, Set.of());
            assertNear(reference(idx, w, v, d), mx.output(), 0, what + " MXNet vs the clipping reference");
            long[] outShape = Arrays.copyOf(ds, ds.length + 1);
            outShape[ds.length] = d;
            assertArrayEquals(outShape, mx.outShape());
            double[] head = rand(size(outShape), -1, 1, seed + 2);
            SeqTesting.Run mxg = SeqTesting.mxnet("Embedding", attrs(v, d, null), shapes, vals, head, Set.of(1));
            for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                Map<String, String> a = attrs(v, d, t == DType.FLOAT64 ? "float64" : null);
                SeqTesting.Run k = SeqTesting.kiln("Embedding", a, shapes, vals, List.of(t, t),
                        List.of(GradReq.NULL, GradReq.WRITE), head, 1);
                assertArrayEquals(outShape, k.outShape());
                assertNear(mx.output(), k.output(), TOL, what + " output " + t);
                assertNull(k.grads().get(0));
                assertNear(mxg.grads().get(1), k.grads().get(1), TOL, what + " weight grad " + t);
            }
        }
    }

    @Test
    void integerIndexTypes() {
        int v = 6;
        int d = 3;
        double[] idx = {0, 5, 9, -4, 2, 2};
        double[] w = rand(v * d, -1, 1, 3);
        for (DType it : List.of(DType.INT32, DType.INT64, DType.UINT8, DType.FLOAT64)) {
            SeqTesting.Run k = SeqTesting.kiln("Embedding", attrs(v, d, null), List.of(new long[] {6}, new long[] {v, d}),
                    List.of(it == DType.UINT8 ? new double[] {0, 5, 9, 200, 2, 2} : idx, w), List.of(it, DType.FLOAT32),
                    List.of(GradReq.NULL, GradReq.NULL), null, 1);
            double[] ref = reference(it == DType.UINT8 ? new double[] {0, 5, 9, 200, 2, 2} : idx, w, v, d);
            assertNear(ref, k.output(), 1e-7, "indices " + it);
        }
    }

    /** NaN -> row 0; values beyond int64 clip by sign (MXNet: undefined conversion, docs/mxnet-differences.md). */
    @Test
    void extremeIndicesClip() {
        int v = 4;
        int d = 2;
        double[] w = rand(v * d, -1, 1, 12);
        double[] idx = {Double.NaN, 1e20, -1e20, 0.99, 3.999, Double.POSITIVE_INFINITY};
        int[] rows = {0, 3, 0, 0, 3, 3};
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            SeqTesting.Run k = SeqTesting.kiln("Embedding", attrs(v, d, null), List.of(new long[] {6}, new long[] {v, d}),
                    List.of(idx, w), List.of(t, DType.FLOAT32), List.of(GradReq.NULL, GradReq.NULL), null, 1);
            for (int i = 0; i < rows.length; i++) {
                assertEquals(w[rows[i] * d], k.output()[i * d], "index " + idx[i] + " " + t);
                assertEquals(w[rows[i] * d + 1], k.output()[i * d + 1], "index " + idx[i] + " " + t);
            }
        }
    }

    @Test
    void numericGradients() {
        int v = 5;
        int d = 3;
        // indices at x.5 (and out of range) keep the finite differences away from the steps of
        // the truncation, so d f / d data is 0 both numerically and analytically
        double[] idx = {1.5, 3.5, 1.5, -1.5, 7.5, 0.5, 4.5, 1.5};
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", new long[] {2, 4}, idx)
                .random("n_weight", new long[] {v, d}, -1, 1, 4);
        GradCheck.check(SeqTesting.node("Embedding", attrs(v, d, "float64")), in, List.of("data", "n_weight"), 1e-6, 1e-6,
                1e-8);
        GradCheck.Inputs in1 = new GradCheck.Inputs().put("data", new long[] {3}, new double[] {2, 2, 2})
                .random("n_weight", new long[] {3, 4}, -1, 1, 5);
        GradCheck.check(SeqTesting.node("Embedding", attrs(3, 4, "float64")), in1, List.of("n_weight"), 1e-6, 1e-6, 1e-8);
    }

    /** Embedding -> SequenceLast(axis=1) (the LM's "last hidden state" pattern): numeric weight gradient. */
    @Test
    void chainWithSequenceLast() {
        Symbol e = SeqTesting.node("Embedding", attrs(6, 3, "float64"));
        Symbol last = Symbol.create("SequenceLast", "l", Map.of("use_sequence_length", "True", "axis", "1"), null, e,
                Symbol.variable("len"));
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", new long[] {2, 4}, new double[] {1, 5, 2, 5, 0, 3, 3, 4})
                .random("n_weight", new long[] {6, 3}, -1, 1, 8).put("len", new long[] {2}, new double[] {2, 4});
        double[] w = in.get("n_weight");
        double[] out = GradCheck.forward(last, in, DType.FLOAT64, true).get(0);
        // batch 0 ends at step 1 (index 5), batch 1 at step 3 (index 4)
        assertNear(new double[] {w[15], w[16], w[17], w[12], w[13], w[14]}, out, 0, "last embeddings");
        GradCheck.check(last, in, List.of("n_weight"), 1e-6, 1e-6, 1e-8);
    }

    @Test
    void dataGradientIsZeroAndWeightAddToAccumulates() {
        int v = 6;
        int d = 4;
        long[] ds = {3, 4};
        double[] idx = indices(12, v, 9);
        double[] w = rand(v * d, -1, 1, 10);
        double[] head = rand(12 * d, -1, 1, 11);
        List<long[]> shapes = List.of(ds, new long[] {v, d});
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            Map<String, String> a = attrs(v, d, t == DType.FLOAT64 ? "float64" : null);
            SeqTesting.Run once = SeqTesting.kiln("Embedding", a, shapes, List.of(idx, w), List.of(t, t),
                    List.of(GradReq.WRITE, GradReq.WRITE), head, 1);
            assertNear(new double[12], once.grads().get(0), 0, "data grad " + t);
            SeqTesting.Run twice = SeqTesting.kiln("Embedding", a, shapes, List.of(idx, w), List.of(t, t),
                    List.of(GradReq.ADD, GradReq.ADD), head, 2);
            double[] g = once.grads().get(1).clone();
            for (int j = 0; j < g.length; j++) {
                g[j] *= 2;
            }
            assertNear(g, twice.grads().get(1), 1e-6, "weight grad add x2 " + t);
            assertNear(new double[12], twice.grads().get(0), 0, "data grad add " + t);
        }
    }

    @Test
    void sparseGradTrueGivesTheDenseGradient() {
        int v = 5;
        int d = 2;
        double[] idx = {4, 1, 1, 0};
        double[] w = rand(v * d, -1, 1, 2);
        double[] head = rand(4 * d, -1, 1, 3);
        List<long[]> shapes = List.of(new long[] {4}, new long[] {v, d});
        Map<String, String> dense = attrs(v, d, null);
        Map<String, String> sparse = new LinkedHashMap<>(dense);
        sparse.put("sparse_grad", "True");
        List<GradReq> reqs = List.of(GradReq.NULL, GradReq.WRITE);
        SeqTesting.Run a = SeqTesting.kiln("Embedding", dense, shapes, List.of(idx, w), List.of(DType.FLOAT32, DType.FLOAT32), reqs, head, 1);
        SeqTesting.Run b = SeqTesting.kiln("Embedding", sparse, shapes, List.of(idx, w),
                List.of(DType.FLOAT32, DType.FLOAT32), reqs, head, 1);
        assertNear(a.output(), b.output(), 0, "output");
        assertNear(a.grads().get(1), b.grads().get(1), 0, "weight grad");
        // row 1 collects two head rows, rows 2 and 3 none
        assertEquals((float) (head[2] + head[4]), (float) b.grads().get(1)[2], 1e-7);
        assertEquals(0.0, b.grads().get(1)[4]);
    }

    @Test
    void errors() {
        Symbol e = SeqTesting.node("Embedding", attrs(7, 4, null));
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", new long[] {2, 3});
        s.put("n_weight", new long[] {6, 4});
        assertThrowsMessage(() -> SeqTesting.bind(e, s), "n_weight", "(6,4)", "(7,4)");
        s.put("n_weight", new long[] {7, 4, 1});
        assertThrowsMessage(() -> SeqTesting.bind(e, s), "n_weight", "(7,4,1)", "(7,4)");
        assertThrowsMessage(() -> SeqTesting.node("Embedding", Map.of("output_dim", "4")), "Embedding", "input_dim");
        assertThrowsMessage(() -> SeqTesting.node("Embedding", attrs(0, 4, null)), "Embedding", "input_dim");
        assertThrowsMessage(() -> SeqTesting.node("Embedding", attrs(4, 2, "float17")), "Embedding", "dtype");
        // weight bound as float32 while dtype says float64: the weight's type wins, dtype is only the
        // default (MXNet's EmbeddingOpType)
        Symbol e64 = SeqTesting.node("Embedding", attrs(7, 4, "float64"));
        try (Executor ex = Executor.simpleBind(e64, Context.cpu(), Map.of("data", new long[] {2}),
                Map.of("n_weight", DType.FLOAT32), Map.of(), new Executor.Options())) {
            assertEquals(DType.FLOAT32, ex.forward(false).outputs().get(0).dtype());
        }
        // an integer table has a forward but no backward
        Symbol ei = SeqTesting.node("Embedding", attrs(3, 2, "int32"));
        assertThrowsMessage(() -> {
            try (Executor ex = Executor.simpleBind(ei, Context.cpu(), Map.of("data", new long[] {2}),
                    Map.of("data", DType.INT32, "n_weight", DType.INT32), Map.of("n_weight", GradReq.WRITE),
                    new Executor.Options())) {
                ex.forward(true);
                try (NDArray h = NDArray.zeros(ex.outputs().get(0).shape(), DType.INT32, Context.cpu())) {
                    ex.backward(h);
                }
                ex.gradDict().get("n_weight").toDoubleArray();
            }
        }, "int32");
    }

    /**
     * The word-LM case (batch 32 x 64 steps, 256-wide embedding, 10,000 words): the weight gradient
     * equals a float32 serial scatter-add bit for bit with 1 and 2 threads (fixed summation order),
     * and the time of forward + backward is printed.
     */
    @Test
    void languageModelCaseIsDeterministicAndFast() {
        int v = 10000;
        int d = 256;
        long[] ds = {32, 64};
        int k = 32 * 64;
        Random r = new Random(5);
        double[] idx = new double[k];
        for (int i = 0; i < k; i++) {
            idx[i] = Math.min(v - 1, (int) Math.abs(r.nextGaussian() * 300)); // Zipf-like: many repeats
        }
        double[] head = rand(k * d, -1, 1, 6);
        float[] ref = new float[v * d];
        for (int i = 0; i < k; i++) {
            int row = (int) idx[i];
            for (int c = 0; c < d; c++) {
                ref[row * d + c] += (float) head[i * d + c];
            }
        }
        Symbol e = SeqTesting.node("Embedding", attrs(v, d, null));
        int threads = Engine.numThreads();
        try {
            for (int nt : new int[] {1, 2}) {
                Engine.setNumThreads(nt);
                try (Executor ex = Executor.simpleBind(e, Context.cpu(), Map.of("data", ds), Map.of(),
                        Map.of("n_weight", GradReq.WRITE), new Executor.Options());
                        NDArray h = NDArray.zeros(new dev.kiln.ndarray.Shape(32, 64, d), DType.FLOAT32, Context.cpu())) {
                    ex.argDict().get("data").set(idx);
                    ex.argDict().get("n_weight").set(rand(v * d, -1, 1, 7));
                    h.set(head);
                    int steps = 20;
                    long best = Long.MAX_VALUE;
                    for (int it = 0; it < steps; it++) {
                        long t0 = System.nanoTime();
                        ex.forward(true);
                        ex.backward(h);
                        best = Math.min(best, System.nanoTime() - t0);
                    }
                    double[] g = ex.gradDict().get("n_weight").toDoubleArray();
                    for (int i = 0; i < g.length; i++) {
                        if ((float) g[i] != ref[i]) {
                            assertEquals(ref[i], (float) g[i], 0f, "weight grad [" + i + "] with " + nt + " threads");
                        }
                    }
                    System.out.printf("Embedding LM case (32x64 -> 256, V=%d), %d thread(s): best forward+backward %.3f ms%n",
                            v, nt, best / 1e6);
                }
            }
        } finally {
            Engine.setNumThreads(threads);
        }
    }
}
