package dev.kiln.ops.norm;

import static dev.kiln.testutil.OpTesting.assertNear;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * BatchNorm against MXNet 1.9.1: training and inference forward, the hidden mean / inverse-std
 * outputs, gradients and the moving statistics after several training steps (updated by the
 * backward, as MXNet's CPU kernels), float64 numeric gradients, errors.
 */
@ExtendWith(NoLeaks.class)
class BatchNormTest {
    private static final double TOL = 1e-4;

    private static Map<String, String> attrs(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    /** data, gamma, beta, moving_mean, moving_var for data of shape {@code ds}, channel axis {@code ax}. */
    private static List<double[]> values(long[] ds, int ax, long seed) {
        int c = (int) ds[ax < 0 ? ax + ds.length : ax];
        List<double[]> v = new ArrayList<>();
        v.add(rand(size(ds), -2, 3, seed));
        v.add(rand(c, 0.5, 1.5, seed + 1));
        v.add(rand(c, -0.5, 0.5, seed + 2));
        v.add(rand(c, -0.3, 0.3, seed + 3));
        v.add(rand(c, 0.5, 2, seed + 4));
        return v;
    }

    private static List<long[]> shapes(long[] ds, int ax) {
        long c = ds[ax < 0 ? ax + ds.length : ax];
        return List.of(ds, new long[] {c}, new long[] {c}, new long[] {c}, new long[] {c});
    }

    private static void compare(NormTesting.Run mx, NormTesting.Run k, String what) {
        assertEquals(mx.outputs().size(), k.outputs().size(), what + ": outputs");
        for (int i = 0; i < mx.outputs().size(); i++) {
            assertNear(mx.outputs().get(i), k.outputs().get(i), TOL, what + " output " + i);
        }
        for (int i = 0; i < mx.grads().size(); i++) {
            assertNear(mx.grads().get(i), k.grads().get(i), TOL, what + " grad " + i);
        }
        // aux states, and gamma (set to 1 by the forward under fix_gamma, as MXNet does)
        for (int i = 1; i < 5; i++) {
            assertNear(mx.inputsAfter().get(i), k.inputsAfter().get(i), TOL, what + " input after " + i);
        }
    }

    /**
     * MXNet 1.x updates the moving statistics in BatchNorm's backward, and builds that backward
     * even when a stop_gradient makes every gradient reaching it zero (found by MxOpFuzz's graphs:
     * Kiln pruned it, so the statistics never moved).
     */
    @Test
    void movingStatsUpdateBehindStopGradient() {
        Symbol net = Symbol.create("BlockGrad", "stop", Map.of(), null,
                Symbol.create("BatchNorm", "bn", Map.of(), null, Symbol.variable("data")));
        double[] x = {1, 2, 3, 4, 5, 7};  // (3, 2): channel means 3 and 4.333...
        try (dev.kiln.ndarray.NDScope scope = dev.kiln.ndarray.NDScope.open();
                Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {3, 2}), null,
                        Map.of("bn_gamma", GradReq.WRITE, "bn_beta", GradReq.WRITE), null)) {
            dev.kiln.ndarray.NDArray.create(x, 3, 2).copyTo(ex.argDict().get("data"));
            ex.argDict().get("bn_gamma").fill(1);
            ex.auxDict().get("bn_moving_var").fill(1);
            ex.forward(true).backward(dev.kiln.ndarray.NDArray.create(new double[6], 3, 2));
            double m0 = 3, m1 = (2 + 4 + 7) / 3.0;
            assertArrayEquals(new double[] {0.1 * m0, 0.1 * m1}, ex.auxDict().get("bn_moving_mean").toDoubleArray(), 1e-6);
            double v0 = (4 + 0 + 4) / 3.0, v1 = ((2 - m1) * (2 - m1) + (4 - m1) * (4 - m1) + (7 - m1) * (7 - m1)) / 3.0;
            assertArrayEquals(new double[] {0.9 + 0.1 * v0, 0.9 + 0.1 * v1}, ex.auxDict().get("bn_moving_var").toDoubleArray(), 1e-5);
            assertArrayEquals(new double[] {0, 0}, ex.gradDict().get("bn_gamma").toDoubleArray(), 0);
        }
    }

    @Test
    void composesWithAuxStatesAndHiddenOutputs() {
        Symbol bn = NormTesting.node("BatchNorm", attrs());
        assertEquals(List.of("data", "n_gamma", "n_beta"), bn.listArguments());
        assertEquals(List.of("n_moving_mean", "n_moving_var"), bn.listAuxiliaryStates());
        assertEquals(List.of("n_output"), bn.listOutputs());
        Symbol all = NormTesting.node("BatchNorm", attrs("output_mean_var", "True"));
        assertEquals(List.of("n_output", "n_mean", "n_var"), all.listOutputs());
        InferResult r = all.inferShape(Map.of("data", new long[] {2, 3, 4, 5}));
        assertArrayEquals(new long[] {3}, r.argShapes().get(1));
        assertArrayEquals(new long[] {3}, r.auxShapes().get(1));
        assertArrayEquals(new long[] {2, 3, 4, 5}, r.outShapes().get(0));
        assertArrayEquals(new long[] {3}, r.outShapes().get(2));
        InferResult last = NormTesting.node("BatchNorm", attrs("axis", "-1")).inferShape(Map.of("data", new long[] {2, 3, 7}));
        assertArrayEquals(new long[] {7}, last.argShapes().get(2));
    }

    @Test
    void inferenceForwardMatchesMxnet() {
        long[][] dss = {{4, 3, 2, 2}, {5, 4}, {2, 3, 5}, {2, 8, 3, 3}};
        int[] axes = {1, -1, 0, 2};
        String[] fix = {"True", "False"};
        for (long[] ds : dss) {
            for (int ax : axes) {
                if ((ax < 0 ? ax + ds.length : ax) >= ds.length) {
                    continue;
                }
                for (String fg : fix) {
                    Map<String, String> a = attrs("axis", Integer.toString(ax), "fix_gamma", fg, "eps", "0.002",
                            "output_mean_var", "True");
                    List<double[]> v = values(ds, ax, 11 + ax);
                    NormTesting.Run mx = NormTesting.mxnet("BatchNorm", a, shapes(ds, ax), v, false, null, 3, 1);
                    for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                        NormTesting.Run k = NormTesting.kiln("BatchNorm", a, shapes(ds, ax), v, false, null, 1, t);
                        compare(mx, k, "inference " + java.util.Arrays.toString(ds) + " axis " + ax + " fix_gamma " + fg);
                    }
                }
            }
        }
    }

    @Test
    void trainingForwardMatchesMxnet() {
        long[][] dss = {{4, 3, 2, 2}, {6, 5}, {3, 2, 4}, {2, 8, 3, 3}};
        int[] axes = {1, -1, 0};
        for (long[] ds : dss) {
            for (int ax : axes) {
                for (String fg : List.of("True", "False")) {
                    for (String gs : List.of("False", "True")) {
                        Map<String, String> a = attrs("axis", Integer.toString(ax), "fix_gamma", fg,
                                "use_global_stats", gs, "output_mean_var", "True");
                        List<double[]> v = values(ds, ax, 5);
                        NormTesting.Run mx = NormTesting.mxnet("BatchNorm", a, shapes(ds, ax), v, true, null, 3, 1);
                        NormTesting.Run k = NormTesting.kiln("BatchNorm", a, shapes(ds, ax), v, true, null, 1, DType.FLOAT32);
                        String what = "train " + java.util.Arrays.toString(ds) + " axis " + ax + " fix_gamma " + fg
                                + " global " + gs;
                        compare(mx, k, what);
                        // a training forward alone does not move the statistics (MXNet updates them in backward)
                        assertNear(v.get(3), k.inputsAfter().get(3), 0, what + " moving_mean untouched");
                        assertNear(v.get(4), k.inputsAfter().get(4), 0, what + " moving_var untouched");
                        if (fg.equals("True")) {
                            double[] ones = new double[v.get(1).length];
                            java.util.Arrays.fill(ones, 1.0);
                            assertNear(ones, mx.inputsAfter().get(1), 0, what + " MXNet sets gamma to 1");
                        }
                    }
                }
            }
        }
    }

    @Test
    void trainingStepsUpdateMovingStatsAndGradientsAsMxnet() {
        long[][] dss = {{4, 3, 2, 2}, {6, 5}, {2, 8, 3, 3}, {3, 4, 5}};
        int[] axes = {1, 1, 1, -1};
        for (int d = 0; d < dss.length; d++) {
            long[] ds = dss[d];
            int ax = axes[d];
            for (String fg : List.of("True", "False")) {
                for (String gs : List.of("False", "True")) {
                    Map<String, String> a = attrs("axis", Integer.toString(ax), "fix_gamma", fg, "use_global_stats", gs,
                            "momentum", "0.8");
                    List<double[]> v = values(ds, ax, 21 + d);
                    double[] head = rand(size(ds), -1, 1, 99 + d);
                    NormTesting.Run mx = NormTesting.mxnet("BatchNorm", a, shapes(ds, ax), v, true, head, 3, 3);
                    NormTesting.Run k = NormTesting.kiln("BatchNorm", a, shapes(ds, ax), v, true, head, 3, DType.FLOAT32);
                    String what = "steps " + java.util.Arrays.toString(ds) + " axis " + ax + " fix_gamma " + fg
                            + " global " + gs;
                    compare(mx, k, what);
                    if (gs.equals("False")) {
                        assertTrue(Math.abs(k.inputsAfter().get(3)[0] - v.get(3)[0]) > 1e-3, what + ": moving_mean moved");
                    }
                    NormTesting.Run k64 = NormTesting.kiln("BatchNorm", a, shapes(ds, ax), v, true, head, 3, DType.FLOAT64);
                    compare(mx, k64, what + " float64");
                }
            }
        }
    }

    /**
     * Sizes where the CPU kernel splits the channels over two threads and walks them in memory
     * order: long rows (32x32 pixels, summed by simd::reduce_run) and short ones (4x4, one omp simd
     * loop). Training steps against MXNet, and 1 and 2 threads bit-identical (each channel sums its
     * rows in the same order whatever the split).
     */
    @Test
    void largeLayersOnTwoThreadsMatchMxnetAndOneThread() {
        int threads0 = Engine.numThreads();
        try {
            long[][] dss = {{8, 6, 32, 32}, {64, 40, 4, 4}};
            for (int d = 0; d < dss.length; d++) {
                long[] ds = dss[d];
                Map<String, String> a = attrs("axis", "1", "fix_gamma", "False", "momentum", "0.8");
                List<double[]> v = values(ds, 1, 41 + d);
                double[] head = rand(size(ds), -1, 1, 51 + d);
                NormTesting.Run mx = NormTesting.mxnet("BatchNorm", a, shapes(ds, 1), v, true, head, 3, 2);
                Engine.setNumThreads(2);
                NormTesting.Run two = NormTesting.kiln("BatchNorm", a, shapes(ds, 1), v, true, head, 2, DType.FLOAT32);
                Engine.setNumThreads(1);
                NormTesting.Run one = NormTesting.kiln("BatchNorm", a, shapes(ds, 1), v, true, head, 2, DType.FLOAT32);
                String what = "steps " + java.util.Arrays.toString(ds);
                compare(mx, two, what + ", 2 threads");
                for (int i = 0; i < one.outputs().size(); i++) {
                    assertNear(one.outputs().get(i), two.outputs().get(i), 0, what + ": output " + i + ", 1 vs 2 threads");
                }
                for (int i = 0; i < one.grads().size(); i++) {
                    assertNear(one.grads().get(i), two.grads().get(i), 0, what + ": gradient " + i + ", 1 vs 2 threads");
                }
            }
        } finally {
            Engine.setNumThreads(threads0);
        }
    }

    @Test
    void movingStatsFollowTheFormula() {
        // moving = moving * momentum + batch * (1 - momentum), biased batch variance, one step
        long[] ds = {5, 2};
        List<double[]> v = values(ds, 1, 3);
        double[] x = v.get(0);
        NormTesting.Run k = NormTesting.kiln("BatchNorm", attrs("momentum", "0.7"), shapes(ds, 1), v, true,
                rand(10, -1, 1, 4), 1, DType.FLOAT64);
        for (int c = 0; c < 2; c++) {
            double mu = 0, var = 0;
            for (int i = 0; i < 5; i++) {
                mu += x[i * 2 + c] / 5;
            }
            for (int i = 0; i < 5; i++) {
                var += (x[i * 2 + c] - mu) * (x[i * 2 + c] - mu) / 5;
            }
            assertEquals(v.get(3)[c] * 0.7 + mu * 0.3, k.inputsAfter().get(3)[c], 1e-12);
            assertEquals(v.get(4)[c] * 0.7 + var * 0.3, k.inputsAfter().get(4)[c], 1e-12);
        }
    }

    private static GradCheck.Inputs gradInputs(long[] ds, int ax) {
        List<double[]> v = values(ds, ax, 17);
        List<long[]> s = shapes(ds, ax);
        String[] names = {"data", "n_gamma", "n_beta", "n_moving_mean", "n_moving_var"};
        GradCheck.Inputs in = new GradCheck.Inputs();
        for (int i = 0; i < names.length; i++) {
            in.put(names[i], s.get(i), v.get(i));
        }
        return in;
    }

    @Test
    void numericGradients() {
        List<String> wrt = List.of("data", "n_gamma", "n_beta");
        GradCheck.check(NormTesting.node("BatchNorm", attrs("fix_gamma", "False")), gradInputs(new long[] {3, 2, 2}, 1), wrt,
                1e-6, 1e-5, 1e-7);
        GradCheck.check(NormTesting.node("BatchNorm", attrs("fix_gamma", "False", "axis", "-1")),
                gradInputs(new long[] {2, 2, 3}, -1), wrt, 1e-6, 1e-5, 1e-7);
        GradCheck.check(NormTesting.node("BatchNorm", attrs("fix_gamma", "False", "axis", "0", "eps", "0.1")),
                gradInputs(new long[] {2, 5}, 0), wrt, 1e-6, 1e-5, 1e-7);
        GradCheck.check(NormTesting.node("BatchNorm", attrs("fix_gamma", "False", "use_global_stats", "True")),
                gradInputs(new long[] {3, 2, 2}, 1), wrt, 1e-6, 1e-5, 1e-7);
        // fix_gamma: gamma is read as 1, its gradient is 0
        GradCheck.check(NormTesting.node("BatchNorm", attrs()), gradInputs(new long[] {4, 3}, 1), wrt, 1e-6, 1e-5, 1e-7);
    }

    @Test
    void legacyCheckpointWithBatchNormLoadsAndRuns() throws Exception {
        // MXNet 0.8's save_000800.json: FullyConnected + BatchNorm + Activation + SoftmaxOutput
        java.nio.file.Path f = java.nio.file.Path.of(System.getProperty("kiln.shared", "../shared"), "data",
                "mxnet-checkpoints", "apache-mxnet-fixtures", "save_000800.json");
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isRegularFile(f), "shared data not found at " + f);
        Symbol s = Symbol.load(f);
        List<String> aux = s.listAuxiliaryStates();
        assertEquals(2, aux.size());
        assertTrue(aux.get(0).endsWith("_moving_mean") || aux.get(0).endsWith("_mean"), aux.toString());
        assertEquals(s.toJson(), Symbol.fromJson(s.toJson()).toJson());
    }

    @Test
    void errors() {
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", new long[] {2, 3, 4});
        Symbol bad = NormTesting.node("BatchNorm", attrs("axis", "3"));
        assertThrowsMessage(() -> Executor.simpleBind(bad, Context.cpu(), s, GradReq.NULL).close(), "axis out of range");
        Symbol neg = NormTesting.node("BatchNorm", attrs("axis", "-4"));
        assertThrowsMessage(() -> Executor.simpleBind(neg, Context.cpu(), s, GradReq.NULL).close(), "axis out of range");
        Map<String, long[]> g = new LinkedHashMap<>(s);
        g.put("n_gamma", new long[] {4});
        Symbol ok = NormTesting.node("BatchNorm", attrs());
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), g, GradReq.NULL).close(), "n_gamma", "(4,)", "(3,)");
        Map<String, long[]> mm = new LinkedHashMap<>(s);
        mm.put("n_moving_var", new long[] {2});
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), mm, GradReq.NULL).close(), "(2,)", "(3,)");
        assertThrowsMessage(() -> NormTesting.node("BatchNorm", attrs("eps", "abc")), "eps");
        assertThrowsMessage(() -> NormTesting.node("BatchNorm", attrs("fix_gamma", "maybe")), "fix_gamma");
        assertThrowsMessage(() -> NormTesting.node("BatchNorm", attrs("nonsense", "1")), "nonsense");
        // quantization ranges and cudnn_off are accepted
        NormTesting.node("BatchNorm", attrs("min_calib_range", "-1.5", "max_calib_range", "2", "cudnn_off", "True"));
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = {3, 4, 2};
        List<double[]> v = values(ds, 1, 31);
        double[] head = rand(size(ds), -1, 1, 5);
        NormTesting.Run once = NormTesting.kiln("BatchNorm", Map.of("fix_gamma", "False", "use_global_stats", "True"), shapes(ds, 1), v, true, head, 1, DType.FLOAT64);
        NormTesting.Run twice = NormTesting.kiln("BatchNorm", Map.of("fix_gamma", "False", "use_global_stats", "True"), shapes(ds, 1), v, true, head, 2, DType.FLOAT64,
                dev.kiln.executor.GradReq.ADD);
        for (int i = 0; i < 3; i++) {
            double[] g = once.grads().get(i).clone();
            for (int j = 0; j < g.length; j++) {
                g[j] *= 2;
            }
            assertNear(g, twice.grads().get(i), 1e-12, "add x2 grad " + i);
        }
    }
}
