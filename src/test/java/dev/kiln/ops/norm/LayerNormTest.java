package dev.kiln.ops.norm;

import static dev.kiln.testutil.OpTesting.assertNear;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** LayerNorm against MXNet 1.9.1 (forward with mean/std outputs, gradients), numeric gradients, errors. */
@ExtendWith(NoLeaks.class)
class LayerNormTest {
    private static final double TOL = 1e-4;

    private static List<long[]> shapes(long[] ds, int ax) {
        long c = ds[ax < 0 ? ax + ds.length : ax];
        return List.of(ds, new long[] {c}, new long[] {c});
    }

    private static List<double[]> values(long[] ds, int ax, long seed) {
        int c = (int) ds[ax < 0 ? ax + ds.length : ax];
        return List.of(rand(size(ds), -2, 3, seed), rand(c, 0.5, 1.5, seed + 1), rand(c, -0.5, 0.5, seed + 2));
    }

    @Test
    void composesAndInfers() {
        Symbol ln = NormTesting.node("LayerNorm", Map.of());
        assertEquals(List.of("data", "n_gamma", "n_beta"), ln.listArguments());
        assertEquals(List.of("n_output"), ln.listOutputs());
        Symbol all = NormTesting.node("LayerNorm", Map.of("output_mean_var", "True", "axis", "1"));
        assertEquals(List.of("n_output", "n_mean", "n_std"), all.listOutputs());
        InferResult r = all.inferShape(Map.of("data", new long[] {2, 3, 4}));
        assertArrayEquals(new long[] {3}, r.argShapes().get(1));
        assertArrayEquals(new long[] {2, 1, 4}, r.outShapes().get(1));
    }

    @Test
    void forwardAndGradientsMatchMxnet() {
        long[][] dss = {{4, 6}, {2, 3, 5}, {3, 4, 2, 2}, {7}};
        int[] axes = {-1, 1, 0, 2};
        for (long[] ds : dss) {
            for (int ax : axes) {
                if ((ax < 0 ? ax + ds.length : ax) >= ds.length) {
                    continue;
                }
                Map<String, String> a = new LinkedHashMap<>();
                a.put("axis", Integer.toString(ax));
                a.put("eps", "0.01");
                a.put("output_mean_var", "True");
                List<double[]> v = values(ds, ax, 3 + ax);
                String what = Arrays.toString(ds) + " axis " + ax;
                NormTesting.Run mx = NormTesting.mxnet("LayerNorm", a, shapes(ds, ax), v, false, null, 3, 1);
                double[] head = rand(size(ds), -1, 1, 8);
                NormTesting.Run mxg = NormTesting.mxnet("LayerNorm", a, shapes(ds, ax), v, true, head, 3, 1);
                for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                    NormTesting.Run k = NormTesting.kiln("LayerNorm", a, shapes(ds, ax), v, false, null, 1, t);
                    assertEquals(3, k.outputs().size());
                    for (int i = 0; i < 3; i++) {
                        assertNear(mx.outputs().get(i), k.outputs().get(i), TOL, what + " output " + i + " " + t);
                    }
                    NormTesting.Run kg = NormTesting.kiln("LayerNorm", a, shapes(ds, ax), v, true, head, 1, t);
                    for (int i = 0; i < 3; i++) {
                        assertNear(mxg.grads().get(i), kg.grads().get(i), TOL, what + " grad " + i + " " + t);
                    }
                }
            }
        }
        // defaults: axis -1, eps 1e-5, one visible output
        long[] ds = {3, 8};
        List<double[]> v = values(ds, -1, 1);
        NormTesting.Run mx = NormTesting.mxnet("LayerNorm", Map.of(), shapes(ds, -1), v, false, null, 3, 1);
        NormTesting.Run k = NormTesting.kiln("LayerNorm", Map.of(), shapes(ds, -1), v, false, null, 1, DType.FLOAT32);
        assertEquals(1, k.outputs().size());
        assertNear(mx.outputs().get(0), k.outputs().get(0), TOL, "defaults");
    }

    private static GradCheck.Inputs gradInputs(long[] ds, int ax) {
        List<double[]> v = values(ds, ax, 17);
        List<long[]> s = shapes(ds, ax);
        return new GradCheck.Inputs().put("data", s.get(0), v.get(0)).put("n_gamma", s.get(1), v.get(1))
                .put("n_beta", s.get(2), v.get(2));
    }

    @Test
    void numericGradients() {
        List<String> wrt = List.of("data", "n_gamma", "n_beta");
        GradCheck.check(NormTesting.node("LayerNorm", Map.of()), gradInputs(new long[] {3, 4}, -1), wrt, 1e-6, 1e-5, 1e-7);
        GradCheck.check(NormTesting.node("LayerNorm", Map.of("axis", "1", "eps", "0.1")), gradInputs(new long[] {2, 3, 2}, 1),
                wrt, 1e-6, 1e-5, 1e-7);
        GradCheck.check(NormTesting.node("LayerNorm", Map.of("axis", "0")), gradInputs(new long[] {4, 2}, 0), wrt, 1e-6,
                1e-5, 1e-7);
    }

    @Test
    void errors() {
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", new long[] {2, 3});
        Symbol bad = NormTesting.node("LayerNorm", Map.of("axis", "2"));
        assertThrowsMessage(() -> Executor.simpleBind(bad, Context.cpu(), s, GradReq.NULL).close(), "axis");
        Map<String, long[]> g = new LinkedHashMap<>(s);
        g.put("n_beta", new long[] {2});
        Symbol ok = NormTesting.node("LayerNorm", Map.of());
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), g, GradReq.NULL).close(), "n_beta", "(2,)", "(3,)");
        assertThrowsMessage(() -> NormTesting.node("LayerNorm", Map.of("eps", "x")), "eps");
        assertThrowsMessage(() -> NormTesting.node("LayerNorm", Map.of("fix_gamma", "True")), "fix_gamma");
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = {3, 4, 2};
        List<double[]> v = values(ds, 1, 31);
        double[] head = rand(size(ds), -1, 1, 5);
        NormTesting.Run once = NormTesting.kiln("LayerNorm", Map.of("axis", "1"), shapes(ds, 1), v, true, head, 1, DType.FLOAT64);
        NormTesting.Run twice = NormTesting.kiln("LayerNorm", Map.of("axis", "1"), shapes(ds, 1), v, true, head, 2, DType.FLOAT64,
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
