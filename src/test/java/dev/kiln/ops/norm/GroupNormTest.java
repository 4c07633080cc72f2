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

/**
 * GroupNorm against MXNet 1.9.1 (forward with the mean/std outputs, gradients), against a Java
 * reference, numeric gradients, grad_req=add, errors. As in MXNet 1.x, gamma and beta are (num_groups,).
 */
@ExtendWith(NoLeaks.class)
class GroupNormTest {
    private static final double TOL = 1e-4;

    private static List<long[]> shapes(long[] ds, int groups) {
        return List.of(ds, new long[] {groups}, new long[] {groups});
    }

    private static List<double[]> values(long[] ds, int groups, long seed) {
        return List.of(rand(size(ds), -2, 3, seed), rand(groups, 0.5, 1.5, seed + 1), rand(groups, -0.5, 0.5, seed + 2));
    }

    /** y, mean [N, G], std [N, G] by the definition, in double. */
    static double[][] reference(double[] x, long[] ds, int groups, double[] gamma, double[] beta, double eps) {
        int n = (int) ds[0];
        int m = size(ds) / n / groups;  // elements of one group of one instance (consecutive)
        double[] y = new double[x.length];
        double[] mean = new double[n * groups];
        double[] std = new double[n * groups];
        for (int r = 0; r < n * groups; r++) {
            double s = 0;
            for (int j = 0; j < m; j++) {
                s += x[r * m + j];
            }
            double mu = s / m;
            double v = 0;
            for (int j = 0; j < m; j++) {
                v += (x[r * m + j] - mu) * (x[r * m + j] - mu);
            }
            double sd = Math.sqrt(v / m + eps);
            mean[r] = mu;
            std[r] = sd;
            int g = r % groups;
            for (int j = 0; j < m; j++) {
                y[r * m + j] = (x[r * m + j] - mu) / sd * gamma[g] + beta[g];
            }
        }
        return new double[][] {y, mean, std};
    }

    @Test
    void composesAndInfers() {
        Symbol s = NormTesting.node("GroupNorm", Map.of("num_groups", "2"));
        assertEquals(List.of("data", "n_gamma", "n_beta"), s.listArguments());
        assertEquals(List.of("n_output"), s.listOutputs());
        assertEquals(List.of("n_output", "n_mean", "n_std"),
                NormTesting.node("GroupNorm", Map.of("num_groups", "2", "output_mean_var", "True")).listOutputs());
        InferResult r = s.inferShape(Map.of("data", new long[] {2, 6, 4, 5}));
        assertArrayEquals(new long[] {2}, r.argShapes().get(1));
        assertArrayEquals(new long[] {2, 6, 4, 5}, r.outShapes().get(0));
        assertEquals(List.of("data", "g_gamma", "g_beta"),
                Symbol.groupNorm("g", Symbol.variable("data"), 3, 1e-5).listArguments());
    }

    @Test
    void forwardMatchesTheDefinitionAndMxnet() {
        long[][] dss = {{2, 4, 3}, {3, 6, 2, 2}, {1, 4, 5}, {2, 8, 1, 2, 3}};
        int[] groups = {2, 3, 1, 4};
        for (int i = 0; i < dss.length; i++) {
            long[] ds = dss[i];
            int g = groups[i];
            for (String eps : List.of("1e-05", "0.1")) {
                Map<String, String> a = Map.of("num_groups", Integer.toString(g), "eps", eps, "output_mean_var", "True");
                List<double[]> v = values(ds, g, 5 + i);
                double[] head = rand(size(ds), -1, 1, 8);
                String what = Arrays.toString(ds) + " groups " + g + " eps " + eps;
                double[][] ref = reference(v.get(0), ds, g, v.get(1), v.get(2), Double.parseDouble(eps));
                NormTesting.Run mx = NormTesting.mxnet("GroupNorm", a, shapes(ds, g), v, true, head, 3, 1);
                for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
                    NormTesting.Run k = NormTesting.kiln("GroupNorm", a, shapes(ds, g), v, true, head, 1, t);
                    for (int o = 0; o < 3; o++) {
                        assertNear(ref[o], k.outputs().get(o), TOL, what + " output " + o + " vs definition " + t);
                        assertNear(mx.outputs().get(o), k.outputs().get(o), TOL, what + " output " + o + " vs MXNet " + t);
                    }
                    for (int j = 0; j < 3; j++) {
                        assertNear(mx.grads().get(j), k.grads().get(j), TOL, what + " grad " + j + " " + t);
                    }
                }
            }
        }
    }

    @Test
    void numericGradients() {
        List<String> wrt = List.of("data", "n_gamma", "n_beta");
        for (long[] ds : new long[][] {{2, 4, 3}, {2, 6, 2, 2}}) {
            List<double[]> v = values(ds, 2, 13);
            List<long[]> s = shapes(ds, 2);
            GradCheck.Inputs in = new GradCheck.Inputs().put("data", s.get(0), v.get(0)).put("n_gamma", s.get(1), v.get(1))
                    .put("n_beta", s.get(2), v.get(2));
            GradCheck.check(NormTesting.node("GroupNorm", Map.of("num_groups", "2", "eps", "0.01")), in, wrt, 1e-6, 1e-5,
                    1e-7);
        }
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = {3, 4, 2};
        List<double[]> v = values(ds, 2, 31);
        double[] head = rand(size(ds), -1, 1, 5);
        Map<String, String> a = Map.of("num_groups", "2");
        NormTesting.Run once = NormTesting.kiln("GroupNorm", a, shapes(ds, 2), v, true, head, 1, DType.FLOAT64);
        NormTesting.Run twice = NormTesting.kiln("GroupNorm", a, shapes(ds, 2), v, true, head, 2, DType.FLOAT64, GradReq.ADD);
        for (int i = 0; i < 3; i++) {
            double[] g = once.grads().get(i).clone();
            for (int j = 0; j < g.length; j++) {
                g[j] *= 2;
            }
            assertNear(g, twice.grads().get(i), 1e-12, "add x2 grad " + i);
        }
    }

    @Test
    void errors() {
        Symbol ok = NormTesting.node("GroupNorm", Map.of("num_groups", "2"));
        Map<String, long[]> flat = new LinkedHashMap<>();
        flat.put("data", new long[] {2, 4});
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), flat, GradReq.NULL).close(), "3 or more dimensions");
        Map<String, long[]> odd = new LinkedHashMap<>();
        odd.put("data", new long[] {2, 5, 3});
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), odd, GradReq.NULL).close(), "not divisible",
                "num_groups=2");
        Map<String, long[]> g = new LinkedHashMap<>();
        g.put("data", new long[] {2, 4, 3});
        g.put("n_gamma", new long[] {4});
        assertThrowsMessage(() -> Executor.simpleBind(ok, Context.cpu(), g, GradReq.NULL).close(), "n_gamma", "(4,)", "(2,)");
        assertThrowsMessage(() -> NormTesting.node("GroupNorm", Map.of("num_groups", "0")), "num_groups");
        assertThrowsMessage(() -> NormTesting.node("GroupNorm", Map.of("eps", "x")), "eps");
    }
}
