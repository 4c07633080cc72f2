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

/** InstanceNorm against MXNet 1.9.1 (forward, gradients), numeric gradients, errors. */
@ExtendWith(NoLeaks.class)
class InstanceNormTest {
    private static final double TOL = 1e-4;

    private static List<long[]> shapes(long[] ds) {
        return List.of(ds, new long[] {ds[1]}, new long[] {ds[1]});
    }

    private static List<double[]> values(long[] ds, long seed) {
        int c = (int) ds[1];
        return List.of(rand(size(ds), -2, 3, seed), rand(c, 0.5, 1.5, seed + 1), rand(c, -0.5, 0.5, seed + 2));
    }

    @Test
    void composesAndInfers() {
        Symbol s = NormTesting.node("InstanceNorm", Map.of());
        assertEquals(List.of("data", "n_gamma", "n_beta"), s.listArguments());
        assertEquals(List.of("n_output"), s.listOutputs());
        InferResult r = s.inferShape(Map.of("data", new long[] {2, 3, 4, 5}));
        assertArrayEquals(new long[] {3}, r.argShapes().get(1));
        assertArrayEquals(new long[] {2, 3, 4, 5}, r.outShapes().get(0));
    }

    @Test
    void forwardAndGradientsMatchMxnet() {
        long[][] dss = {{2, 3, 4}, {3, 2, 2, 3}, {1, 4, 5}, {2, 2, 1, 2, 3}};
        for (long[] ds : dss) {
            for (String eps : List.of("0.001", "0.1")) {
                Map<String, String> a = Map.of("eps", eps);
                List<double[]> v = values(ds, 5);
                double[] head = rand(size(ds), -1, 1, 8);
                String what = Arrays.toString(ds) + " eps " + eps;
                NormTesting.Run mx = NormTesting.mxnet("InstanceNorm", a, shapes(ds), v, true, head, 3, 1);
                for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                    NormTesting.Run k = NormTesting.kiln("InstanceNorm", a, shapes(ds), v, true, head, 1, t);
                    assertNear(mx.outputs().get(0), k.outputs().get(0), TOL, what + " output " + t);
                    for (int i = 0; i < 3; i++) {
                        assertNear(mx.grads().get(i), k.grads().get(i), TOL, what + " grad " + i + " " + t);
                    }
                    NormTesting.Run ki = NormTesting.kiln("InstanceNorm", a, shapes(ds), v, false, null, 1, t);
                    assertNear(mx.outputs().get(0), ki.outputs().get(0), TOL, what + " inference output " + t);
                }
            }
        }
    }

    @Test
    void numericGradients() {
        List<String> wrt = List.of("data", "n_gamma", "n_beta");
        for (long[] ds : new long[][] {{2, 3, 4}, {2, 2, 2, 2}}) {
            List<double[]> v = values(ds, 13);
            List<long[]> s = shapes(ds);
            GradCheck.Inputs in = new GradCheck.Inputs().put("data", s.get(0), v.get(0)).put("n_gamma", s.get(1), v.get(1))
                    .put("n_beta", s.get(2), v.get(2));
            GradCheck.check(NormTesting.node("InstanceNorm", Map.of("eps", "0.01")), in, wrt, 1e-6, 1e-5, 1e-7);
        }
    }

    @Test
    void errors() {
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", new long[] {2, 3});
        Symbol ok = NormTesting.node("InstanceNorm", Map.of());
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), s, GradReq.NULL).close(), "3 or more dimensions");
        // MXNet 1.9.1 refuses 2D data as well
        org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> NormTesting.mxnet("InstanceNorm",
                Map.of(), List.of(new long[] {2, 3}, new long[] {3}, new long[] {3}),
                List.of(rand(6, -1, 1, 1), rand(3, -1, 1, 2), rand(3, -1, 1, 3)), false, null, 3, 1));
        Map<String, long[]> g = new LinkedHashMap<>();
        g.put("data", new long[] {2, 3, 4});
        g.put("n_gamma", new long[] {4});
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), g, GradReq.NULL).close(), "n_gamma", "(4,)", "(3,)");
        assertThrowsMessage(() -> NormTesting.node("InstanceNorm", Map.of("eps", "x")), "eps");
        assertThrowsMessage(() -> NormTesting.node("InstanceNorm", Map.of("axis", "1")), "axis");
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = {3, 4, 2};
        List<double[]> v = values(ds, 31);
        double[] head = rand(size(ds), -1, 1, 5);
        NormTesting.Run once = NormTesting.kiln("InstanceNorm", Map.of(), shapes(ds), v, true, head, 1, DType.FLOAT64);
        NormTesting.Run twice = NormTesting.kiln("InstanceNorm", Map.of(), shapes(ds), v, true, head, 2, DType.FLOAT64,
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
