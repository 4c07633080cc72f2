package dev.kiln.ops.norm;

import static dev.kiln.testutil.OpTesting.assertNear;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** LRN against MXNet 1.9.1 (forward, gradient), numeric gradients, errors. */
@ExtendWith(NoLeaks.class)
class LRNTest {
    private static final double TOL = 1e-4;

    @Test
    void composes() {
        Symbol s = NormTesting.node("LRN", Map.of("nsize", "3"));
        assertEquals(List.of("data"), s.listArguments());
        assertEquals(List.of("n_output"), s.listOutputs());
    }

    @Test
    void forwardAndGradientMatchMxnet() {
        long[][] dss = {{2, 5, 2, 3}, {1, 7, 3, 2}, {2, 3, 1, 1}, {1, 8, 2, 2}};
        String[][] params = {{"nsize", "3"}, {"nsize", "5", "alpha", "0.01", "beta", "0.5", "knorm", "1"},
                {"nsize", "1"}, {"nsize", "9", "alpha", "0.2", "beta", "1.5"}, {"nsize", "7", "alpha", "0.1"}};
        for (long[] ds : dss) {
            for (String[] p : params) {
                Map<String, String> a = new LinkedHashMap<>();
                for (int i = 0; i < p.length; i += 2) {
                    a.put(p[i], p[i + 1]);
                }
                List<long[]> shapes = List.of(ds);
                List<double[]> v = List.of(rand(size(ds), -3, 3, 7));
                double[] head = rand(size(ds), -1, 1, 8);
                String what = Arrays.toString(ds) + " " + a;
                NormTesting.Run mx = NormTesting.mxnet("LRN", a, shapes, v, true, head, 1, 1);
                for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                    NormTesting.Run k = NormTesting.kiln("LRN", a, shapes, v, true, head, 1, t);
                    assertNear(mx.outputs().get(0), k.outputs().get(0), TOL, what + " output " + t);
                    assertNear(mx.grads().get(0), k.grads().get(0), TOL, what + " grad " + t);
                }
            }
        }
    }

    @Test
    void numericGradient() {
        // odd windows (exact gradient), clipped at both channel ends
        for (String[] p : new String[][] {{"1", "2"}, {"5", "3"}, {"3", "5"}, {"5", "7"}}) {
            long[] ds = {2, Long.parseLong(p[1]), 2, 2};
            GradCheck.Inputs in = new GradCheck.Inputs().put("data", ds, rand(size(ds), -2, 2, 3));
            GradCheck.check(NormTesting.node("LRN", Map.of("nsize", p[0], "alpha", "0.5", "beta", "0.75")), in,
                    List.of("data"), 1e-6, 1e-5, 1e-7);
        }
    }

    @Test
    void errors() {
        Symbol ok = NormTesting.node("LRN", Map.of("nsize", "3"));
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", new long[] {2, 3, 4});
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), s, GradReq.NULL).close(), "4D");
        assertThrowsMessage(() -> NormTesting.node("LRN", Map.of()), "nsize");
        // an even window: MXNet reads out of bounds; Kiln refuses it
        Symbol even = NormTesting.node("LRN", Map.of("nsize", "4"));
        Map<String, long[]> s4 = Map.of("data", new long[] {1, 5, 2, 2});
        assertThrowsMessage(() -> Executor.simpleBind(even, Context.cpu(), s4, GradReq.NULL).close(), "nsize must be odd");
        assertThrowsMessage(() -> NormTesting.node("LRN", Map.of("nsize", "0")), "nsize");
        assertThrowsMessage(() -> NormTesting.node("LRN", Map.of("nsize", "-1")), "nsize");
        assertThrowsMessage(() -> NormTesting.node("LRN", Map.of("nsize", "3", "beta", "b")), "beta");
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = {2, 5, 2, 2};
        List<long[]> shapes = List.of(ds);
        List<double[]> v = List.of(rand(size(ds), -2, 2, 4));
        double[] head = rand(size(ds), -1, 1, 5);
        Map<String, String> a = Map.of("nsize", "3", "alpha", "0.3");
        NormTesting.Run once = NormTesting.kiln("LRN", a, shapes, v, true, head, 1, DType.FLOAT64);
        NormTesting.Run twice = NormTesting.kiln("LRN", a, shapes, v, true, head, 2, DType.FLOAT64, GradReq.ADD);
        double[] g = once.grads().get(0).clone();
        for (int j = 0; j < g.length; j++) {
            g[j] *= 2;
        }
        assertNear(g, twice.grads().get(0), 1e-12, "add x2");
    }
}
