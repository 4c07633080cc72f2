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
 * diag against a Java reference (1-D inputs become matrices, higher ranks give the diagonals of the
 * (axis1, axis2) planes as a last axis), its gradient (the same movement back), numeric gradients,
 * grad_req=add, a large case, the errors and MXNet 1.9.1 itself.
 */
@ExtendWith(NoLeaks.class)
class DiagTest {

    /** Expected output shape and, for each output element, the data element it copies (-1: zero). */
    record Ref(long[] shape, int[] src) {}

    static Ref ref(long[] x, int k, int axis1, int axis2) {
        int r0 = k < 0 ? -k : 0, c0 = k > 0 ? k : 0;
        if (x.length == 1) {
            int n = (int) x[0] + r0 + c0;
            int[] src = new int[n * n];
            java.util.Arrays.fill(src, -1);
            for (int i = 0; i < x[0]; i++) {
                src[(i + r0) * n + i + c0] = i;
            }
            return new Ref(s(n, n), src);
        }
        int nd = x.length;
        int a1 = axis1 < 0 ? axis1 + nd : axis1, a2 = axis2 < 0 ? axis2 + nd : axis2;
        int len = (int) Math.max(0, Math.min(x[a1] - r0, x[a2] - c0));
        List<Integer> kept = new ArrayList<>();
        for (int i = 0; i < nd; i++) {
            if (i != a1 && i != a2) {
                kept.add(i);
            }
        }
        long[] shape = new long[kept.size() + 1];
        for (int j = 0; j < kept.size(); j++) {
            shape[j] = x[kept.get(j)];
        }
        shape[kept.size()] = len;
        int[] src = new int[size(shape)];
        long[] stride = new long[nd];
        stride[nd - 1] = 1;
        for (int i = nd - 2; i >= 0; i--) {
            stride[i] = stride[i + 1] * x[i + 1];
        }
        for (int e = 0; e < src.length; e++) {
            int rem = e;
            int i = rem % len;
            rem /= len;
            long off = (i + r0) * stride[a1] + (i + c0) * stride[a2];
            for (int j = kept.size() - 1; j >= 0; j--) {
                off += (rem % x[kept.get(j)]) * stride[kept.get(j)];
                rem /= (int) x[kept.get(j)];
            }
            src[e] = (int) off;
        }
        return new Ref(shape, src);
    }

    static Map<String, String> attrs(int k, int axis1, int axis2) {
        return a("k", "" + k, "axis1", "" + axis1, "axis2", "" + axis2);
    }

    static final Object[][] CASES = {
        {s(5), 0, 0, 1}, {s(4), 2, 0, 1}, {s(3), -2, 0, 1}, {s(4, 5), 0, 0, 1}, {s(4, 5), 1, 0, 1}, {s(4, 5), -2, 0, 1},
        {s(4, 5), 3, 1, 0}, {s(2, 3, 4), 1, 2, 0}, {s(2, 3, 4), -1, -1, -3}, {s(2, 3, 4, 3), 0, 1, 3}, {s(3, 3), -2, 0, 1},
    };

    @Test
    void forwardAndGradientAgainstReference() {
        for (Object[] c : CASES) {
            long[] x = (long[]) c[0];
            int k = (int) c[1], a1 = (int) c[2], a2 = (int) c[3];
            Ref r = ref(x, k, a1, a2);
            double[] data = values(size(x), 1);
            double[] head = values(size(r.shape()), 2);
            for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                NdTesting.Result res = NdTesting.run(op("diag", attrs(k, a1, a2), "data"), inputs("data", in(x, t, data, GradReq.WRITE)),
                        List.of(head), 1);
                String what = "diag " + java.util.Arrays.toString(x) + " k=" + k + " axes " + a1 + "," + a2 + " " + t;
                assertArrayEquals(r.shape(), res.shapes().get(0), what);
                double[] exp = new double[r.src().length];
                double[] grad = new double[data.length];
                for (int e = 0; e < exp.length; e++) {
                    if (r.src()[e] >= 0) {
                        exp[e] = data[r.src()[e]];
                        grad[r.src()[e]] += head[e];
                    }
                }
                assertArrayEquals(exp, res.out(0), 0, what);
                assertArrayEquals(grad, res.grads().get("data"), 0, what + " gradient");
                NdTesting.Result add = NdTesting.run(op("diag", attrs(k, a1, a2), "data"), inputs("data", in(x, t, data, GradReq.ADD)),
                        List.of(head), 2);
                for (int i = 0; i < grad.length; i++) {
                    grad[i] *= 2;
                }
                assertArrayEquals(grad, add.grads().get("data"), 0, what + " grad_req=add");
            }
        }
        // integer data
        NdTesting.Result res = NdTesting.run(op("diag", a("k", "-1"), "data"),
                inputs("data", in(s(3, 3), DType.INT32, new double[] {1, 2, 3, 4, 5, 6, 7, 8, 9})), null, 0);
        assertArrayEquals(new double[] {4, 8}, res.out(0));
    }

    @Test
    void numericGradientsAndLargeCase() {
        GradCheck.check(op("diag", attrs(1, 0, 2), "data"), new GradCheck.Inputs().random("data", s(3, 2, 4), -1, 1, 3),
                List.of("data"), 1e-5, 1e-6, 1e-8);
        GradCheck.check(op("diag", attrs(-1, 0, 1), "data"), new GradCheck.Inputs().random("data", s(4), -1, 1, 4),
                List.of("data"), 1e-5, 1e-6, 1e-8);
        long[] x = s(300, 7, 400);
        Ref r = ref(x, 2, 2, 0);
        double[] data = values(size(x), 5);
        NdTesting.Result res = NdTesting.run(op("diag", attrs(2, 2, 0), "data"), inputs("data", in(x, DType.FLOAT32, data)), null, 0);
        double[] exp = new double[r.src().length];
        for (int e = 0; e < exp.length; e++) {
            exp[e] = data[r.src()[e]];
        }
        assertArrayEquals(exp, res.out(0));
    }

    @Test
    void errors() {
        ExecTesting.assertInferFails(op("diag", attrs(0, 1, 1), "data"), Map.of("data", s(3, 4)), "cannot refer to the same axis");
        ExecTesting.assertInferFails(op("diag", attrs(0, 0, 2), "data"), Map.of("data", s(3, 4)), "out of range");
        ExecTesting.assertInferFails(op("diag", attrs(0, 0, 1), "data"), Map.of("data", s()), "at least one dimension");
        // k just past a corner gives an empty diagonal, beyond that none exists (MXNet's rule)
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {0},
                op("diag", attrs(3, 0, 1), "data").inferShape(Map.of("data", s(4, 3))).outShapes().get(0));
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {5, 0},
                op("diag", attrs(-2, 1, 2), "data").inferShape(Map.of("data", s(5, 2, 6))).outShapes().get(0));
        ExecTesting.assertInferFails(op("diag", attrs(4, 0, 1), "data"), Map.of("data", s(4, 3)), "Diagonal does not exist");
        ExecTesting.assertInferFails(op("diag", attrs(-3, 1, 2), "data"), Map.of("data", s(5, 2, 6)), "Diagonal does not exist");
    }

    @Test
    void againstMxnet() {
        for (Object[] c : CASES) {
            long[] x = (long[]) c[0];
            int k = (int) c[1], a1 = (int) c[2], a2 = (int) c[3];
            double[] data = values(size(x), 6);
            double[] head = values(ref(x, k, a1, a2).src().length, 7);
            MxCompare.Run m = MxCompare.mxnet("diag", attrs(k, a1, a2), List.of(x), List.of(data), null, List.of(head), Set.of(0), 1);
            NdTesting.Result res = NdTesting.run(op("diag", attrs(k, a1, a2), "data"),
                    inputs("data", in(x, DType.FLOAT32, data, GradReq.WRITE)), List.of(head), 1);
            String what = "diag " + java.util.Arrays.toString(x) + " " + attrs(k, a1, a2);
            assertArrayEquals(m.outShapes().get(0), res.shapes().get(0), what);
            assertArrayEquals(m.outputs().get(0), res.out(0), 1e-6, what);
            assertArrayEquals(m.grads().get(0), res.grads().get("data"), 1e-6, what + " gradient");
        }
    }
}
