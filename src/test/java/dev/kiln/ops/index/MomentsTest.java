package dev.kiln.ops.index;

import static dev.kiln.ops.index.GatherNdTest.inputs;
import static dev.kiln.ops.index.NdTesting.in;
import static dev.kiln.ops.index.NdTesting.op;
import static dev.kiln.ops.index.NdTesting.size;
import static dev.kiln.ops.index.NdTesting.values;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * moments (mean and population variance over axes) against a Java reference: shapes with and
 * without keepdims, negative axes and axes=None, the gradient dx = g_mean / N + g_var 2 (x - mean) / N,
 * numeric gradients, grad_req=add, a large case, the errors and MXNet 1.9.1 itself.
 */
@ExtendWith(NoLeaks.class)
class MomentsTest {

    /** For each input element, its output element (x viewed with the reduced axes flagged). */
    static int[] outIndex(long[] x, boolean[] red) {
        int n = size(x);
        int[] o = new int[n];
        for (int e = 0; e < n; e++) {
            int rem = e, out = 0, mul = 1;
            for (int d = x.length - 1; d >= 0; d--) {
                int c = (int) (rem % x[d]);
                rem /= (int) x[d];
                if (!red[d]) {
                    out += c * mul;
                    mul *= (int) x[d];
                }
            }
            o[e] = out;
        }
        return o;
    }

    static boolean[] reduced(long[] x, int[] axes) {
        boolean[] red = new boolean[x.length];
        if (axes == null) {
            java.util.Arrays.fill(red, true);
        } else {
            for (int ax : axes) {
                red[ax < 0 ? ax + x.length : ax] = true;
            }
        }
        return red;
    }

    /** {mean, var} over the reduced axes. */
    static double[][] ref(double[] v, long[] x, boolean[] red) {
        int[] o = outIndex(x, red);
        int outs = 1;
        for (int d = 0; d < x.length; d++) {
            outs *= red[d] ? 1 : (int) x[d];
        }
        double n = (double) v.length / outs;
        double[] mean = new double[outs], var = new double[outs];
        for (int e = 0; e < v.length; e++) {
            mean[o[e]] += v[e] / n;
        }
        for (int e = 0; e < v.length; e++) {
            var[o[e]] += (v[e] - mean[o[e]]) * (v[e] - mean[o[e]]) / n;
        }
        return new double[][] {mean, var};
    }

    static long[] outShape(long[] x, boolean[] red, boolean keep) {
        List<Long> d = new ArrayList<>();
        for (int i = 0; i < x.length; i++) {
            if (!red[i]) {
                d.add(x[i]);
            } else if (keep) {
                d.add(1L);
            }
        }
        if (d.isEmpty()) {
            d.add(1L);
        }
        return d.stream().mapToLong(Long::longValue).toArray();
    }

    static Map<String, String> attrs(int[] axes, boolean keep) {
        Map<String, String> m = a("keepdims", keep ? "True" : "False");
        if (axes != null) {
            m.put("axes", java.util.Arrays.toString(axes).replace('[', '(').replace(']', ')'));
        }
        return m;
    }

    static final Object[][] CASES = {
        {s(3, 4, 5), new int[] {1}, false}, {s(3, 4, 5), new int[] {0, 2}, true}, {s(3, 4, 5), null, false},
        {s(3, 4, 5), new int[] {-1}, true}, {s(6), new int[] {0}, false}, {s(2, 3, 2, 4), new int[] {3, 1}, false},
    };

    @Test
    void forwardAndGradientAgainstReference() {
        for (Object[] c : CASES) {
            long[] x = (long[]) c[0];
            int[] axes = (int[]) c[1];
            boolean keep = (boolean) c[2];
            boolean[] red = reduced(x, axes);
            double[] v = values(size(x), 1);
            double[][] r = ref(v, x, red);
            double[] hm = values(r[0].length, 2), hv = values(r[0].length, 3);
            int[] o = outIndex(x, red);
            double n = (double) v.length / r[0].length;
            double[] grad = new double[v.length];
            for (int e = 0; e < v.length; e++) {
                grad[e] = hm[o[e]] / n + hv[o[e]] * 2 * (v[e] - r[0][o[e]]) / n;
            }
            for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                double tol = t == DType.FLOAT64 ? 1e-12 : 1e-5;
                String what = "moments " + java.util.Arrays.toString(x) + " " + attrs(axes, keep) + " " + t;
                NdTesting.Result res = NdTesting.run(op("moments", attrs(axes, keep), "data"),
                        inputs("data", in(x, t, v, GradReq.WRITE)), List.of(hm, hv), 1);
                assertArrayEquals(outShape(x, red, keep), res.shapes().get(0), what);
                assertArrayEquals(outShape(x, red, keep), res.shapes().get(1), what);
                assertArrayEquals(r[0], res.out(0), tol, what + " mean");
                assertArrayEquals(r[1], res.out(1), tol, what + " var");
                assertArrayEquals(grad, res.grads().get("data"), tol, what + " gradient");
                NdTesting.Result add = NdTesting.run(op("moments", attrs(axes, keep), "data"),
                        inputs("data", in(x, t, v, GradReq.ADD)), List.of(hm, hv), 2);
                double[] twice = grad.clone();
                for (int i = 0; i < twice.length; i++) {
                    twice[i] *= 2;
                }
                assertArrayEquals(twice, add.grads().get("data"), 2 * tol, what + " grad_req=add");
            }
        }
    }

    @Test
    void numericGradientAndLargeCase() {
        GradCheck.check(op("moments", attrs(new int[] {0, 2}, false), "data"),
                new GradCheck.Inputs().random("data", s(3, 2, 4), -1, 1, 5), List.of("data"), 1e-5, 1e-6, 1e-8);
        GradCheck.check(op("moments", attrs(null, true), "data"), new GradCheck.Inputs().random("data", s(7), -1, 1, 6),
                List.of("data"), 1e-5, 1e-6, 1e-8);
        long[] x = s(200, 300, 4);
        boolean[] red = reduced(x, new int[] {0, 2});
        double[] v = values(size(x), 7);
        double[][] r = ref(v, x, red);
        NdTesting.Result res = NdTesting.run(op("moments", attrs(new int[] {0, 2}, false), "data"),
                inputs("data", in(x, DType.FLOAT32, v)), null, 0);
        assertArrayEquals(r[0], res.out(0), 1e-6);
        assertArrayEquals(r[1], res.out(1), 1e-6);
    }

    @Test
    void errors() {
        ExecTesting.assertInferFails(op("moments", a("axes", "(1, 1)"), "data"), Map.of("data", s(3, 4)), "duplicates");
        ExecTesting.assertInferFails(op("moments", a("axes", "(2,)"), "data"), Map.of("data", s(3, 4)), "exceeds input dimensions");
    }

    @Test
    void againstMxnet() {
        for (Object[] c : CASES) {
            long[] x = (long[]) c[0];
            int[] axes = (int[]) c[1];
            boolean keep = (boolean) c[2];
            if (axes == null) {
                continue;  // MXNet 1.9: "Empty axes is not supported" (Kiln: every axis)
            }
            double[] v = values(size(x), 8);
            int outs = size(outShape(x, reduced(x, axes), keep));
            List<double[]> heads = List.of(values(outs, 9), values(outs, 10));
            MxCompare.Run m = MxCompare.mxnet("moments", attrs(axes, keep), List.of(x), List.of(v), null, heads, Set.of(0), 1);
            NdTesting.Result k = NdTesting.run(op("moments", attrs(axes, keep), "data"), inputs("data", in(x, DType.FLOAT32, v,
                    GradReq.WRITE)), heads, 1);
            String what = "moments " + java.util.Arrays.toString(x) + " " + attrs(axes, keep);
            for (int o = 0; o < 2; o++) {
                assertArrayEquals(m.outShapes().get(o), k.shapes().get(o), what);
                assertArrayEquals(m.outputs().get(o), k.out(o), 1e-5, what + " output " + o);
            }
            assertArrayEquals(m.grads().get(0), k.grads().get("data"), 1e-5, what + " gradient");
        }
    }
}
