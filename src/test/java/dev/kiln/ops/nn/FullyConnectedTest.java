package dev.kiln.ops.nn;

import static dev.kiln.ops.nn.NnTesting.assertClose;
import static dev.kiln.ops.nn.NnTesting.shape;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.FreshJvm;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** FullyConnected: forward against a triple loop, gradients, grad_req add, shape errors. */
@ExtendWith(NoLeaks.class)
class FullyConnectedTest {

    /** y[m, h] = sum_d x[m, d] w[h, d] + b[h]. */
    static double[] reference(double[] x, double[] w, double[] b, int m, int d, int h) {
        double[] y = new double[m * h];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < h; j++) {
                double s = b == null ? 0 : b[j];
                for (int k = 0; k < d; k++) {
                    s += x[i * d + k] * w[j * d + k];
                }
                y[i * h + j] = s;
            }
        }
        return y;
    }

    private static GradCheck.Inputs inputs(long[] ds, long[] ws, long[] bs) {
        GradCheck.Inputs in = new GradCheck.Inputs()
                .put("data", ds, rand(size(ds), -1, 1, 1))
                .put("fc_weight", ws, rand(size(ws), -1, 1, 2));
        if (bs != null) {
            in.put("fc_bias", bs, rand(size(bs), -1, 1, 3));
        }
        return in;
    }

    @Test
    void forwardFlattenMatchesTripleLoop() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 5);
        assertEquals(List.of("data", "fc_weight", "fc_bias"), fc.listArguments());
        assertEquals(List.of("fc_output"), fc.listOutputs());
        GradCheck.Inputs in = inputs(shape(3, 2, 4), shape(5, 8), shape(5));
        double[] ref = reference(in.get("data"), in.get("fc_weight"), in.get("fc_bias"), 3, 8, 5);
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(ref, NnTesting.forward(fc, in, t), t, "fc flatten");
        }
    }

    /**
     * Batches of 1 to 8 rows run Kiln's own few-rows kernel (core/blas.cc small_m_nt) instead of
     * OpenBLAS: every row-block size (4, 3, 2, 1), column blocks of 4 and the single columns after
     * them, feature sizes below, at and off the vector width (tails), with and without a bias (the
     * bias seeds y, so the kernel accumulates with beta = 1), on 1 and 2 threads (columns split),
     * and 15 to 17 rows, which OpenBLAS takes.
     */
    @Test
    void smallBatchesMatchTripleLoop() {
        assertSmallBatchesMatch();
    }

    static void assertSmallBatchesMatch() {
        int threads0 = Engine.numThreads();
        try {
            for (int threads : new int[] {1, 2}) {
                Engine.setNumThreads(threads);
                for (int m : new int[] {1, 2, 3, 4, 5, 7, 8, 15, 16, 17}) {
                    for (int[] dh : new int[][] {{5, 6}, {37, 70}, {800, 67}, {16, 1}, {784, 512}}) {
                        int d = dh[0], h = dh[1];
                        for (boolean bias : new boolean[] {true, false}) {
                            Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), h, !bias);
                            GradCheck.Inputs in = inputs(shape(m, d), shape(h, d), bias ? shape(h) : null);
                            double[] ref = reference(in.get("data"), in.get("fc_weight"), bias ? in.get("fc_bias") : null, m, d, h);
                            String what = "fc " + m + "x" + d + " -> " + h + (bias ? " with bias" : "") + ", " + threads + " threads";
                            GradCheck.assertClose(ref, NnTesting.forward(fc, in, DType.FLOAT64), 1e-12, 1e-12, what + " (float64)");
                            // float32 rounding of a d-term dot product of values in [-1, 1] grows like sqrt(d)
                            GradCheck.assertClose(ref, NnTesting.forward(fc, in, DType.FLOAT32), 1e-5, 2e-6 * Math.sqrt(d), what + " (float32)");
                        }
                    }
                }
            }
        } finally {
            Engine.setNumThreads(threads0);
        }
    }

    /**
     * The same with {@code KILN_SIMD=avx2}, in a JVM of its own (the ISA is chosen once per
     * process): the kernel's AVX2 build, which CPUs without AVX-512 run.
     */
    @Test
    void smallBatchesMatchTripleLoopOnAvx2() throws Exception {
        FreshJvm.Result r = FreshJvm.run(FullyConnectedTest.class, List.of(), Map.of("KILN_SIMD", "avx2"));
        assertEquals(0, r.exitCode(), "the KILN_SIMD=avx2 JVM failed:\n" + r.output());
        assertEquals("isa avx2: ok", r.output().strip().lines().reduce((a, b) -> b).orElse(""), r.output());
    }

    /** {@link #smallBatchesMatchTripleLoopOnAvx2}'s JVM: prints the ISA and "ok", or the failure. */
    public static void main(String[] args) {
        try {
            assertSmallBatchesMatch();
            System.out.println("isa " + Engine.simdIsa() + ": ok");
        } catch (Throwable t) {
            t.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }

    @Test
    void forwardNoBias() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 3, true);
        assertEquals(List.of("data", "fc_weight"), fc.listArguments());
        GradCheck.Inputs in = inputs(shape(4, 6), shape(3, 6), null);
        double[] ref = reference(in.get("data"), in.get("fc_weight"), null, 4, 6, 3);
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(ref, NnTesting.forward(fc, in, t), t, "fc no_bias");
        }
    }

    @Test
    void forwardFlattenFalseKeepsLeadingDims() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 5, false, false);
        InferResult r = fc.inferShape(Map.of("data", shape(2, 3, 4)));
        assertArrayEquals(shape(5, 4), r.argShapes().get(1));
        assertArrayEquals(shape(5), r.argShapes().get(2));
        assertArrayEquals(shape(2, 3, 5), r.outShapes().get(0));
        GradCheck.Inputs in = inputs(shape(2, 3, 4), shape(5, 4), shape(5));
        double[] ref = reference(in.get("data"), in.get("fc_weight"), in.get("fc_bias"), 6, 4, 5);
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(ref, NnTesting.forward(fc, in, t), t, "fc flatten=False");
        }
    }

    @Test
    void forwardRankOneDataWithoutFlatten() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 2, false, false);
        GradCheck.Inputs in = inputs(shape(3), shape(2, 3), shape(2));
        double[] ref = reference(in.get("data"), in.get("fc_weight"), in.get("fc_bias"), 1, 3, 2);
        assertClose(ref, NnTesting.forward(fc, in, DType.FLOAT64), DType.FLOAT64, "fc rank 1");
    }

    @Test
    void biasOfShapeHiddenByOneIsAccepted() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 3);
        GradCheck.Inputs in = inputs(shape(2, 4), shape(3, 4), shape(3, 1));
        double[] ref = reference(in.get("data"), in.get("fc_weight"), in.get("fc_bias"), 2, 4, 3);
        assertClose(ref, NnTesting.forward(fc, in, DType.FLOAT64), DType.FLOAT64, "fc bias (H,1)");
    }

    @Test
    void gradientFlatten() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 4);
        GradCheck.check(fc, inputs(shape(3, 2, 3), shape(4, 6), shape(4)), List.of("data", "fc_weight", "fc_bias"),
                1e-6, 1e-6, 1e-8);
    }

    @Test
    void gradientFlattenFalseNoBias() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 3, true, false);
        GradCheck.check(fc, inputs(shape(2, 2, 4), shape(3, 4), null), List.of("data", "fc_weight"), 1e-6, 1e-6, 1e-8);
    }

    @Test
    void gradientMatchesClosedForm() {
        assertClosedFormGradients(3, 4, 2, false, 1e-6);
    }

    /**
     * Backward products large enough to be split over threads (dW = dY^T X, dX = dY W): against the
     * closed form in float64, written and added onto existing gradients, on 1 and 2 threads, with
     * row and column counts that are not whole blocks or vectors.
     */
    @Test
    void largerGradientsMatchClosedForm() {
        int threads0 = Engine.numThreads();
        try {
            for (int threads : new int[] {1, 2}) {
                Engine.setNumThreads(threads);
                for (int[] mdh : new int[][] {{40, 70, 33}, {128, 300, 64}, {33, 130, 40}, {64, 784, 10}, {16, 512, 512}, {16, 784, 512}, {16, 512, 10}, {32, 512, 512}}) {
                    for (boolean add : new boolean[] {false, true}) {
                        // float32 rounding of an m- or h-term sum of values in [-1, 1] grows like its square root
                        assertClosedFormGradients(mdh[0], mdh[1], mdh[2], add, 2e-6 * Math.sqrt(Math.max(mdh[0], mdh[2])));
                    }
                }
            }
        } finally {
            Engine.setNumThreads(threads0);
        }
    }

    /** dW = dY^T X, db = column sums of dY, dX = dY W in float64 and float32 (float32 within atol32); added onto 0.5 with add. */
    private static void assertClosedFormGradients(int m, int d, int h, boolean add, double atol32) {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), h);
        GradCheck.Inputs in = inputs(shape(m, d), shape(h, d), shape(h));
        double[] dy = rand(m * h, -1, 1, 9);
        Set<String> all = Set.of("data", "fc_weight", "fc_bias");
        double[] x = in.get("data"), w = in.get("fc_weight");
        double base = add ? 0.5 : 0;
        double[] dx = new double[m * d], dw = new double[h * d], db = new double[h];
        java.util.Arrays.fill(dx, base);
        java.util.Arrays.fill(dw, base);
        java.util.Arrays.fill(db, base);
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < h; j++) {
                db[j] += dy[i * h + j];
                for (int k = 0; k < d; k++) {
                    dx[i * d + k] += dy[i * h + j] * w[j * d + k];
                    dw[j * d + k] += dy[i * h + j] * x[i * d + k];
                }
            }
        }
        for (DType t : NnTesting.FLOAT_TYPES) {
            try (Executor ex = NnTesting.bind(fc, in, shapes(m, d, h), t, add ? all : Set.of(), add ? Set.of() : all)) {
                if (add) {
                    for (String a : all) {
                        ex.gradDict().get(a).fill(0.5);
                    }
                }
                NnTesting.forwardBackward(ex, dy);
                String what = m + "x" + d + " -> " + h + (add ? " added" : "") + ", " + Engine.numThreads() + " thread(s): ";
                double[][] want = {dx, dw, db};
                String[] names = {"data", "fc_weight", "fc_bias"};
                for (int i = 0; i < 3; i++) {
                    double[] got = ex.gradDict().get(names[i]).toDoubleArray();
                    if (t == DType.FLOAT64) {
                        GradCheck.assertClose(want[i], got, 1e-12, 1e-12, what + names[i] + " (float64)");
                    } else {
                        GradCheck.assertClose(want[i], got, 1e-5, atol32, what + names[i] + " (float32)");
                    }
                }
            }
        }
    }

    private static Map<String, long[]> shapes(int m, int d, int h) {
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", shape(m, d));
        s.put("fc_weight", shape(h, d));
        s.put("fc_bias", shape(h));
        return s;
    }

    @Test
    void gradReqAddAccumulates() {
        int m = 3, d = 5, h = 4;
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), h);
        GradCheck.Inputs in = inputs(shape(m, d), shape(h, d), shape(h));
        double[] dy = rand(m * h, -1, 1, 11);
        Set<String> all = Set.of("data", "fc_weight", "fc_bias");
        Map<String, double[]> once = new LinkedHashMap<>();
        try (Executor ex = NnTesting.bind(fc, in, shapes(m, d, h), DType.FLOAT64, Set.of(), all)) {
            NnTesting.forwardBackward(ex, dy);
            NnTesting.forwardBackward(ex, dy);  // write: the second pass overwrites
            for (String a : all) {
                once.put(a, ex.gradDict().get(a).toDoubleArray());
            }
        }
        try (Executor ex = NnTesting.bind(fc, in, shapes(m, d, h), DType.FLOAT64, all, Set.of())) {
            NnTesting.forwardBackward(ex, dy);
            NnTesting.forwardBackward(ex, dy);
            for (String a : all) {
                assertClose(NnTesting.scale(once.get(a), 2), ex.gradDict().get(a).toDoubleArray(), DType.FLOAT64,
                        "add x2 " + a);
            }
            // add onto arbitrary existing contents, and a single backward after one forward
            for (String a : all) {
                ex.gradDict().get(a).fill(0.5);
            }
            ex.forward(true);
            try (NDArray head = NDArray.create(dy, m, h)) {
                ex.backward(head);
            }
            for (String a : all) {
                assertClose(NnTesting.map(once.get(a), v -> v + 0.5), ex.gradDict().get(a).toDoubleArray(),
                        DType.FLOAT64, "add onto 0.5 " + a);
            }
        }
    }

    @Test
    void sharedWeightAccumulatesBothUses() {
        // y = FC(x1; W) + FC(x2; W): dW is the sum of both contributions
        Symbol w = Symbol.variable("w");
        Symbol b = Symbol.variable("b");
        Symbol y = Symbol.fullyConnected("a", Symbol.variable("x1"), w, b, 3)
                .plus(Symbol.fullyConnected("c", Symbol.variable("x2"), w, b, 3));
        GradCheck.Inputs in = new GradCheck.Inputs()
                .put("x1", shape(2, 4), rand(8, -1, 1, 1))
                .put("x2", shape(2, 4), rand(8, -1, 1, 2))
                .put("w", shape(3, 4), rand(12, -1, 1, 3))
                .put("b", shape(3), rand(3, -1, 1, 4));
        GradCheck.check(y, in, List.of("x1", "x2", "w", "b"), 1e-6, 1e-6, 1e-8);
    }

    @Test
    void weightOfWrongShapeAtBindNamesBothShapes() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 5);
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", shape(3, 8));
        s.put("fc_weight", shape(4, 8));
        assertThrowsMessage(() -> NnTesting.bindAndClose(fc, s), "fc_weight", "(4,8)", "(5,8)");

        // explicit arrays through Executor.bind
        try (NDArray x = NDArray.zeros(3, 8); NDArray w = NDArray.zeros(5, 7); NDArray b = NDArray.zeros(5)) {
            Map<String, NDArray> args = Map.of("data", x, "fc_weight", w, "fc_bias", b);
            assertThrowsMessage(() -> Executor.bind(fc, Context.cpu(), args, null, null, null, null).close(), "(5,7)",
                    "(5,8)");
        }
    }

    @Test
    void biasOfWrongShapeAtBind() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 5);
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", shape(3, 8));
        s.put("fc_bias", shape(4));
        assertThrowsMessage(() -> NnTesting.bindAndClose(fc, s), "fc_bias", "(4,)", "(5,)");
    }

    @Test
    void dataFeatureDimMustMatchWeight() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 5);
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", shape(3, 2, 4));
        s.put("fc_weight", shape(5, 7));
        assertThrowsMessage(() -> NnTesting.bindAndClose(fc, s), "(5,7)", "(5,8)");
    }

    @Test
    void numHiddenZeroOrMissingIsRejected() {
        assertThrowsMessage(() -> Symbol.fullyConnected("fc", Symbol.variable("data"), 0), "num_hidden");
        assertThrowsMessage(() -> Symbol.fullyConnected("fc", Symbol.variable("data"), 0), "num_hidden", "'0'");
        // a missing required parameter is rejected when the symbol is composed, as in MXNet
        assertThrowsMessage(() -> Symbol.builder("FullyConnected").name("fc").input(Symbol.variable("data")).build(),
                "num_hidden", "missing");
        assertThrowsMessage(() -> Symbol.fullyConnected("fc", Symbol.variable("data"), -3), "num_hidden");
    }

    @Test
    void gradReqNullOnDataStillGivesWeightGradient() {
        int m = 2, d = 3, h = 2;
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), h);
        GradCheck.Inputs in = inputs(shape(m, d), shape(h, d), shape(h));
        double[] dy = rand(m * h, -1, 1, 5);
        try (Executor ex = NnTesting.bind(fc, in, shapes(m, d, h), DType.FLOAT32, Set.of(), Set.of("fc_weight"))) {
            NnTesting.forwardBackward(ex, dy);
            assertEquals(Set.of("fc_weight"), ex.gradDict().keySet());
            double[] x = in.get("data");
            double[] dw = new double[h * d];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < h; j++) {
                    for (int k = 0; k < d; k++) {
                        dw[j * d + k] += dy[i * h + j] * x[i * d + k];
                    }
                }
            }
            assertClose(dw, ex.gradDict().get("fc_weight").toDoubleArray(), DType.FLOAT32, "dw");
        }
    }

    @Test
    void stackedLayersKeepInputsForBackward() {
        // fc1 -> relu -> fc2: the backward of fc2 may write dX in place over its input; the
        // gradients of fc1 must still be right
        Symbol net = Symbol.fullyConnected("fc2",
                Symbol.activation("act", Symbol.fullyConnected("fc1", Symbol.variable("data"), 4), "tanh"), 3);
        GradCheck.Inputs in = new GradCheck.Inputs()
                .put("data", shape(2, 5), rand(10, -1, 1, 1))
                .put("fc1_weight", shape(4, 5), rand(20, -1, 1, 2))
                .put("fc1_bias", shape(4), rand(4, -1, 1, 3))
                .put("fc2_weight", shape(3, 4), rand(12, -1, 1, 4))
                .put("fc2_bias", shape(3), rand(3, -1, 1, 5));
        GradCheck.check(net, in, List.of("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"), 1e-6, 1e-6, 1e-8);
    }
}
