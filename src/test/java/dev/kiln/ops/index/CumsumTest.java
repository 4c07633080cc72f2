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
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * cumsum (_np_cumsum) against a Java reference: along each axis and flattened (axis=None), the
 * dtype parameter (integer outputs, int32 input to float64), the gradient (reversed running sums),
 * numeric gradients, grad_req=add, a large case, the errors and MXNet 1.9.1 itself.
 */
@ExtendWith(NoLeaks.class)
class CumsumTest {

    /** Running sums along axis (null: flattened) of x with the given shape. */
    static double[] ref(double[] v, long[] x, Integer axis, boolean reverse) {
        int outer = 1, n = v.length, inner = 1;
        if (axis != null) {
            int ax = axis < 0 ? axis + x.length : axis;
            n = (int) x[ax];
            for (int i = 0; i < ax; i++) {
                outer *= (int) x[i];
            }
            for (int i = ax + 1; i < x.length; i++) {
                inner *= (int) x[i];
            }
        }
        double[] out = new double[v.length];
        for (int o = 0; o < outer; o++) {
            for (int i = 0; i < inner; i++) {
                double run = 0;
                for (int s = 0; s < n; s++) {
                    int j = reverse ? n - 1 - s : s;
                    int e = (o * n + j) * inner + i;
                    run += v[e];
                    out[e] = run;
                }
            }
        }
        return out;
    }

    static Map<String, String> attrs(Integer axis) {
        return axis == null ? a() : a("axis", "" + axis);
    }

    @Test
    void forwardAndGradientAgainstReference() {
        for (String name : new String[] {"cumsum", "_np_cumsum"}) {
            for (Object[] c : new Object[][] {{s(3, 4, 5), 1}, {s(3, 4, 5), -1}, {s(3, 4, 5), 0}, {s(3, 4, 5), null}, {s(7), 0}}) {
                long[] x = (long[]) c[0];
                Integer axis = (Integer) c[1];
                double[] v = values(size(x), 1);
                double[] h = values(size(x), 2);
                for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                    String what = name + " " + java.util.Arrays.toString(x) + " axis=" + axis + " " + t;
                    NdTesting.Result r = NdTesting.run(op(name, attrs(axis), "data"), inputs("data", in(x, t, v, GradReq.WRITE)),
                            List.of(h), 1);
                    assertArrayEquals(axis == null ? s(size(x)) : x, r.shapes().get(0), what);
                    assertArrayEquals(ref(v, x, axis, false), r.out(0), 1e-6, what);
                    assertArrayEquals(ref(h, x, axis, true), r.grads().get("data"), 1e-6, what + " gradient");
                    NdTesting.Result add = NdTesting.run(op(name, attrs(axis), "data"), inputs("data", in(x, t, v, GradReq.ADD)),
                            List.of(h), 2);
                    double[] twice = ref(h, x, axis, true);
                    for (int i = 0; i < twice.length; i++) {
                        twice[i] *= 2;
                    }
                    assertArrayEquals(twice, add.grads().get("data"), 1e-6, what + " grad_req=add");
                }
            }
        }
    }

    @Test
    void dtypes() {
        // int32 data summed in int32 (wrapping), in float64, and uint8 wrapping
        double[] v = {2147483647, 1, -5, 7};
        NdTesting.Result r = NdTesting.run(op("cumsum", a(), "data"), inputs("data", in(s(4), DType.INT32, v)), null, 0);
        assertArrayEquals(new double[] {2147483647, -2147483648.0, 2147483643, 2147483650.0 - 4294967296.0}, r.out(0));
        r = NdTesting.run(op("cumsum", a("dtype", "float64"), "data"), inputs("data", in(s(4), DType.INT32, v)), null, 0);
        assertArrayEquals(new double[] {2147483647, 2147483648.0, 2147483643, 2147483650.0}, r.out(0));
        r = NdTesting.run(op("cumsum", a("axis", "1"), "data"),
                inputs("data", in(s(2, 3), DType.UINT8, new double[] {200, 50, 10, 1, 2, 3})), null, 0);
        assertArrayEquals(new double[] {200, 250, 4, 1, 3, 6}, r.out(0));
        // a float64 output from float32 data: the gradient goes back to float32
        Symbol sym = op("cumsum", a("axis", "0", "dtype", "float64"), "data");
        NdTesting.Result g = NdTesting.run(sym, inputs("data", in(s(3, 2), DType.FLOAT32, values(6, 3), GradReq.WRITE)),
                List.of(values(6, 4)), 1);
        assertArrayEquals(ref(values(6, 4), s(3, 2), 0, true), g.grads().get("data"), 1e-6);
    }

    @Test
    void numericGradientAndLargeCase() {
        GradCheck.check(op("cumsum", a("axis", "1"), "data"), new GradCheck.Inputs().random("data", s(3, 4, 2), -1, 1, 5),
                List.of("data"), 1e-5, 1e-6, 1e-8);
        GradCheck.check(op("cumsum", a(), "data"), new GradCheck.Inputs().random("data", s(2, 3), -1, 1, 6), List.of("data"),
                1e-5, 1e-6, 1e-8);
        long[] x = s(300, 500);
        double[] v = values(size(x), 7);
        NdTesting.Result r = NdTesting.run(op("cumsum", a("axis", "0"), "data"), inputs("data", in(x, DType.FLOAT64, v)), null, 0);
        assertArrayEquals(ref(v, x, 0, false), r.out(0), 1e-9);
    }

    @Test
    void errors() {
        ExecTesting.assertInferFails(op("cumsum", a("axis", "2"), "data"), Map.of("data", s(3, 4)), "axis 2 is out of range");
        ExecTesting.assertInferFails(op("cumsum", a("axis", "-3"), "data"), Map.of("data", s(3, 4)), "out of range");
    }

    @Test
    void againstMxnet() {
        // (MXNet 1.9's _np_cumsum refuses negative axes: "index = -1 must be in range")
        for (Object[] c : new Object[][] {{s(3, 4, 5), 1}, {s(3, 4, 5), 2}, {s(3, 4), null}, {s(7), 0}}) {
            long[] x = (long[]) c[0];
            Integer axis = (Integer) c[1];
            double[] v = values(size(x), 8);
            double[] h = values(size(x), 9);
            MxCompare.Run m = MxCompare.mxnet("cumsum", attrs(axis), List.of(x), List.of(v), null, List.of(h), Set.of(0), 1);
            NdTesting.Result k = NdTesting.run(op("cumsum", attrs(axis), "data"), inputs("data", in(x, DType.FLOAT32, v,
                    GradReq.WRITE)), List.of(h), 1);
            String what = "cumsum " + java.util.Arrays.toString(x) + " axis=" + axis;
            assertArrayEquals(m.outShapes().get(0), k.shapes().get(0), what);
            assertArrayEquals(m.outputs().get(0), k.out(0), 1e-6, what);
            assertArrayEquals(m.grads().get(0), k.grads().get("data"), 1e-6, what + " gradient");
        }
    }
}
