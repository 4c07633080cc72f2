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
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** L2Normalization (instance, channel, spatial) against a Java reference and MXNet 1.9.1, numeric gradients, errors. */
@ExtendWith(NoLeaks.class)
class L2NormalizationTest {
    private static final double TOL = 1e-5;

    /** y = x / sqrt(sum x^2 + eps) over the mode's vectors, by index arithmetic on (N, C, S). */
    static double[] reference(double[] x, long[] ds, String mode, double eps) {
        int n = (int) ds[0];
        int c = ds.length > 1 ? (int) ds[1] : 1;
        int sp = size(ds) / n / c;
        double[] y = new double[x.length];
        // every element's vector id, then the sums
        int[] vec = new int[x.length];
        for (int i = 0; i < x.length; i++) {
            int b = i / (c * sp);
            int ch = (i / sp) % c;
            int pos = i % sp;
            vec[i] = switch (mode) {
                case "instance" -> b;
                case "channel" -> b * sp + pos;
                default -> b * c + ch;
            };
        }
        double[] ss = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            ss[vec[i]] += x[i] * x[i];
        }
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] / Math.sqrt(ss[vec[i]] + eps);
        }
        return y;
    }

    private static Symbol node(String mode, String eps) {
        return NormTesting.node("L2Normalization", Map.of("mode", mode, "eps", eps));
    }

    @Test
    void forwardMatchesReferenceAndMxnetAndGradientsMatchMxnet() {
        for (long[] ds : new long[][] {{2, 3, 4}, {3, 2, 2, 3}, {2, 5, 1}, {1, 70, 33}}) {
            for (String mode : List.of("instance", "channel", "spatial")) {
                for (String eps : List.of("1e-10", "0.5")) {
                    Map<String, String> a = Map.of("mode", mode, "eps", eps);
                    List<double[]> v = List.of(rand(size(ds), -2, 2, 3));
                    double[] head = rand(size(ds), -1, 1, 4);
                    String what = Arrays.toString(ds) + " " + mode + " eps " + eps;
                    NormTesting.Run mx = NormTesting.mxnet("L2Normalization", a, List.of(ds), v, true, head, 1, 1);
                    double[] ref = reference(v.get(0), ds, mode, Double.parseDouble(eps));
                    for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                        NormTesting.Run k = NormTesting.kiln("L2Normalization", a, List.of(ds), v, true, head, 1, t);
                        assertNear(ref, k.outputs().get(0), TOL, what + " vs definition " + t);
                        assertNear(mx.outputs().get(0), k.outputs().get(0), TOL, what + " vs MXNet " + t);
                        assertNear(mx.grads().get(0), k.grads().get(0), 1e-4, what + " gradient vs MXNet " + t);
                    }
                }
            }
        }
    }

    @Test
    void instanceModeTakesAnyRank() {
        double[] x = {3, 4, -6, 8};
        NormTesting.Run k = NormTesting.kiln("L2Normalization", Map.of(), List.of(new long[] {2, 2}), List.of(x), false,
                null, 1, DType.FLOAT64);
        assertNear(new double[] {0.6, 0.8, -0.6, 0.8}, k.outputs().get(0), 1e-9, "instance (2, 2)");
        NormTesting.Run one = NormTesting.kiln("L2Normalization", Map.of(), List.of(new long[] {4}), List.of(x), false, null,
                1, DType.FLOAT64);
        assertNear(new double[] {1, 1, -1, 1}, one.outputs().get(0), 1e-9, "instance (4,): each value its own vector");
    }

    @Test
    void numericGradients() {
        for (String mode : List.of("instance", "channel", "spatial")) {
            long[] ds = {2, 3, 4};
            GradCheck.Inputs in = new GradCheck.Inputs().put("data", ds, rand(size(ds), -2, 2, 7));
            GradCheck.check(node(mode, "1e-10"), in, List.of("data"), 1e-6, 1e-5, 1e-7);
        }
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = {2, 3, 4};
        List<double[]> v = List.of(rand(size(ds), -2, 2, 9));
        double[] head = rand(size(ds), -1, 1, 5);
        Map<String, String> a = Map.of("mode", "channel");
        NormTesting.Run once = NormTesting.kiln("L2Normalization", a, List.of(ds), v, true, head, 1, DType.FLOAT64);
        NormTesting.Run twice = NormTesting.kiln("L2Normalization", a, List.of(ds), v, true, head, 2, DType.FLOAT64,
                GradReq.ADD);
        double[] g = once.grads().get(0).clone();
        for (int j = 0; j < g.length; j++) {
            g[j] *= 2;
        }
        assertNear(g, twice.grads().get(0), 1e-12, "add x2");
    }

    @Test
    void apiAndErrors() {
        Symbol s = Symbol.l2Normalization("l2", Symbol.variable("data"), "spatial", 1e-10);
        assertEquals(List.of("l2_output"), s.listOutputs());
        assertArrayEquals(new long[] {2, 3, 4}, s.inferShape(Map.of("data", new long[] {2, 3, 4})).outShapes().get(0));
        for (String mode : List.of("channel", "spatial")) {
            Map<String, long[]> flat = new LinkedHashMap<>();
            flat.put("data", new long[] {2, 3});
            assertThrowsMessage(() -> Executor.simpleBind(node(mode, "1e-10"), Context.cpu(), flat, GradReq.NULL).close(),
                    mode, "3 or more dimensions");
        }
        assertThrowsMessage(() -> NormTesting.node("L2Normalization", Map.of("mode", "batch")), "mode", "batch");
        assertThrowsMessage(() -> NormTesting.node("L2Normalization", Map.of("eps", "tiny")), "eps");
    }
}
