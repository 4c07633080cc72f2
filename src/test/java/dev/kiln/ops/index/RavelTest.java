package dev.kiln.ops.index;

import static dev.kiln.ops.index.GatherNdTest.inputs;
import static dev.kiln.ops.index.NdTesting.in;
import static dev.kiln.ops.index.NdTesting.op;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * ravel_multi_index / unravel_index against Java references (every dtype, the aliases, a large
 * round trip), their zero gradients (also under grad_req=add), and the shape errors.
 */
@ExtendWith(NoLeaks.class)
class RavelTest {

    static double[] ravelRef(double[] x, long[] shape) {
        int m = shape.length, n = x.length / m;
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            long r = 0;
            for (int j = 0; j < m; j++) {
                r = r * shape[j] + (long) x[j * n + i];
            }
            out[i] = r;
        }
        return out;
    }

    static double[] unravelRef(double[] x, long[] shape) {
        int m = shape.length, n = x.length;
        double[] out = new double[m * n];
        for (int i = 0; i < n; i++) {
            long idx = (long) x[i];
            for (int j = m - 1; j >= 1; j--) {
                out[j * n + i] = idx % shape[j];  // Java's % truncates like C's
                idx /= shape[j];
            }
            out[i] = idx;  // the leading coordinate: what remains
        }
        return out;
    }

    static double[] coords(long[] shape, int n, long seed) {
        Random r = new Random(seed);
        double[] v = new double[shape.length * n];
        for (int j = 0; j < shape.length; j++) {
            for (int i = 0; i < n; i++) {
                v[j * n + i] = r.nextInt((int) shape[j]);
            }
        }
        return v;
    }

    @Test
    void forwardEveryDtype() {
        long[] shape = s(3, 4, 5);
        double[] c = coords(shape, 7, 1);
        double[] flat = ravelRef(c, shape);
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64, DType.INT32, DType.INT64, DType.UINT8, DType.FLOAT16}) {
            for (String name : new String[] {"ravel_multi_index", "_ravel_multi_index"}) {
                NdTesting.Result r = NdTesting.run(op(name, a("shape", "(3, 4, 5)"), "data"),
                        inputs("data", in(s(3, 7), t, c)), null, 0);
                assertArrayEquals(s(7), r.shapes().get(0));
                assertArrayEquals(flat, r.out(0), name + " " + t);
            }
            for (String name : new String[] {"unravel_index", "_unravel_index"}) {
                NdTesting.Result r = NdTesting.run(op(name, a("shape", "(3, 4, 5)"), "data"), inputs("data", in(s(7), t, flat)),
                        null, 0);
                assertArrayEquals(s(3, 7), r.shapes().get(0));
                assertArrayEquals(c, r.out(0), name + " " + t);
            }
        }
        // beyond the shape: plain arithmetic, as MXNet (the leading digit grows, negative digits for a negative index)
        NdTesting.Result r = NdTesting.run(op("unravel_index", a("shape", "(2, 3)"), "data"),
                inputs("data", in(s(3), DType.INT32, new double[] {7, -4, 13})), null, 0);
        assertArrayEquals(unravelRef(new double[] {7, -4, 13}, s(2, 3)), r.out(0));
        r = NdTesting.run(op("ravel_multi_index", a("shape", "(2, 3)"), "data"),
                inputs("data", in(s(2, 2), DType.FLOAT32, new double[] {5, -1, 4, 2.5})), null, 0);
        assertArrayEquals(new double[] {19, 0}, r.out(0));  // -1 * 3 + 2.5 = -0.5, truncated
    }

    @Test
    void zeroGradientsAndAdd() {
        for (GradReq req : new GradReq[] {GradReq.WRITE, GradReq.ADD}) {
            NdTesting.Result r = NdTesting.run(op("ravel_multi_index", a("shape", "(4, 6)"), "data"),
                    inputs("data", in(s(2, 5), DType.FLOAT64, coords(s(4, 6), 5, 2), req)), List.of(NdTesting.values(5, 3)), 2);
            assertArrayEquals(new double[10], r.grads().get("data"));
            r = NdTesting.run(op("unravel_index", a("shape", "(4, 6)"), "data"),
                    inputs("data", in(s(5), DType.FLOAT32, new double[] {0, 23, 5, 6, 17}, req)), List.of(NdTesting.values(10, 4)), 2);
            assertArrayEquals(new double[5], r.grads().get("data"));
        }
    }

    @Test
    void largeRoundTrip() {
        long[] shape = s(50, 60, 70);
        int n = 100000;
        double[] c = coords(shape, n, 5);
        double[] flat = NdTesting.run(op("ravel_multi_index", a("shape", "(50, 60, 70)"), "data"),
                inputs("data", in(s(3, n), DType.INT64, c)), null, 0).out(0);
        assertArrayEquals(ravelRef(c, shape), flat);
        assertArrayEquals(c, NdTesting.run(op("unravel_index", a("shape", "(50, 60, 70)"), "data"),
                inputs("data", in(s(n), DType.FLOAT64, flat)), null, 0).out(0));
    }

    @Test
    void errors() {
        ExecTesting.assertInferFails(op("ravel_multi_index", a(), "data"), Map.of("data", s(2, 3)), "Empty shape parameter");
        ExecTesting.assertInferFails(op("unravel_index", a("shape", "(3, 0)"), "data"), Map.of("data", s(3)),
                "must have positive entries");
        ExecTesting.assertInferFails(op("ravel_multi_index", a("shape", "(3, 4)"), "data"), Map.of("data", s(3, 2)),
                "does not match the 2 entries of shape");
        ExecTesting.assertInferFails(op("ravel_multi_index", a("shape", "(3, 4)"), "data"), Map.of("data", s(2, 2, 2)),
                "must be two-dimensional");
        ExecTesting.assertInferFails(op("unravel_index", a("shape", "(3, 4)"), "data"), Map.of("data", s(2, 2)),
                "must be one-dimensional");
    }
}
