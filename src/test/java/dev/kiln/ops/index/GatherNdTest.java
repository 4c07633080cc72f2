package dev.kiln.ops.index;

import static dev.kiln.ops.index.NdTesting.in;
import static dev.kiln.ops.index.NdTesting.op;
import static dev.kiln.ops.index.NdTesting.size;
import static dev.kiln.ops.index.NdTesting.values;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * gather_nd and scatter_nd against Java references: forward, gradients (gather_nd's scatter-add,
 * scatter_nd's gather), float64 numeric gradients, grad_req=add, every index dtype, negative
 * coordinates, repeated positions, a large case and the errors (coordinates out of range, bad
 * index shapes).
 */
@ExtendWith(NoLeaks.class)
class GatherNdTest {

    /** The position a coordinate v addresses along an axis of size n (MXNet 1.9's gather_nd rule). */
    static int coord(double v, long n) {
        if (!(v >= -n && v <= n - 1)) {
            throw new IllegalArgumentException("reference: coordinate " + v + " out of range");
        }
        return (int) ((long) (v + n) % n);
    }

    /** Row numbers of the positions of indices [m, n] into an array whose leading dims are x[0..m). */
    static int[] rows(double[] idx, long[] ishape, long[] x) {
        int m = (int) ishape[0];
        int n = size(ishape) / m;
        int[] rows = new int[n];
        for (int i = 0; i < n; i++) {
            int r = 0;
            for (int j = 0; j < m; j++) {
                r = (int) (r * x[j] + coord(idx[j * n + i], x[j]));
            }
            rows[i] = r;
        }
        return rows;
    }

    static int rowLength(long[] x, int m) {
        int k = 1;
        for (int j = m; j < x.length; j++) {
            k *= (int) x[j];
        }
        return k;
    }

    static double[] gatherRef(double[] data, long[] dshape, double[] idx, long[] ishape) {
        int[] r = rows(idx, ishape, dshape);
        int k = rowLength(dshape, (int) ishape[0]);
        double[] out = new double[r.length * k];
        for (int i = 0; i < r.length; i++) {
            System.arraycopy(data, r[i] * k, out, i * k, k);
        }
        return out;
    }

    /** gather_nd's data gradient: the scatter-add of the head. */
    static double[] gatherGradRef(double[] head, long[] dshape, double[] idx, long[] ishape) {
        int[] r = rows(idx, ishape, dshape);
        int k = rowLength(dshape, (int) ishape[0]);
        double[] g = new double[size(dshape)];
        for (int i = 0; i < r.length; i++) {
            for (int c = 0; c < k; c++) {
                g[r[i] * k + c] += head[i * k + c];
            }
        }
        return g;
    }

    /** scatter_nd: zeros, then each position's slice in index order (the last one wins). */
    static double[] scatterRef(double[] data, double[] idx, long[] ishape, long[] shape) {
        int[] r = rows(idx, ishape, shape);
        int k = rowLength(shape, (int) ishape[0]);
        double[] out = new double[size(shape)];
        for (int i = 0; i < r.length; i++) {
            System.arraycopy(data, i * k, out, r[i] * k, k);
        }
        return out;
    }

    /** Coordinates for indices [m, ...] into dims x[0..m): repeats, and negative ones when allowed. */
    static double[] coords(long[] ishape, long[] x, boolean negative, long seed) {
        Random r = new Random(seed);
        int m = (int) ishape[0];
        int n = size(ishape) / m;
        double[] v = new double[m * n];
        for (int j = 0; j < m; j++) {
            for (int i = 0; i < n; i++) {
                int c = r.nextInt((int) x[j]);
                v[j * n + i] = negative && r.nextBoolean() ? c - x[j] : c;
            }
        }
        return v;
    }

    static Map<String, NdTesting.In> inputs(Object... kv) {
        Map<String, NdTesting.In> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], (NdTesting.In) kv[i + 1]);
        }
        return m;
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"INT32", "INT64", "INT8", "UINT8", "FLOAT32", "FLOAT64", "FLOAT16"})
    void gatherNdForwardAndGradientEveryIndexType(DType itype) {
        long[] ds = s(4, 3, 5), is = s(2, 3, 2);
        double[] data = values(size(ds), 1);
        double[] idx = coords(is, ds, itype != DType.UINT8, 2);
        double[] head = values(3 * 2 * 5, 3);
        for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
            NdTesting.Result r = NdTesting.run(op("gather_nd", a(), "data", "indices"),
                    inputs("data", in(ds, t, data, GradReq.WRITE), "indices", in(is, itype, idx)), List.of(head), 1);
            assertArrayEquals(s(3, 2, 5), r.shapes().get(0));
            assertArrayEquals(gatherRef(data, ds, idx, is), r.out(0), 0, "gather_nd " + t + " / " + itype);
            assertArrayEquals(gatherGradRef(head, ds, idx, is), r.grads().get("data"), 1e-6, "d data " + t + " / " + itype);
        }
    }

    @Test
    void gatherNdShapes() {
        // full coordinates: one element per position
        long[] ds = s(4, 3, 5);
        double[] data = values(60, 4);
        double[] idx = {3, 0, -1, 2, 1, -3, 4, 0, 2};  // [3, 3]
        NdTesting.Result r = NdTesting.run(op("gather_nd", a(), "data", "indices"),
                inputs("data", in(ds, DType.FLOAT64, data), "indices", in(s(3, 3), DType.INT32, idx)), null, 0);
        assertArrayEquals(s(3), r.shapes().get(0));
        assertArrayEquals(new double[] {data[3 * 15 + 2 * 5 + 4], data[0 + 1 * 5 + 0], data[3 * 15 + 0 * 5 + 2]}, r.out(0));
        // one position addressing one element: shape (1,)
        r = NdTesting.run(op("gather_nd", a(), "data", "indices"),
                inputs("data", in(s(4, 3), DType.FLOAT64, values(12, 5)), "indices", in(s(2, 1), DType.INT32, new double[] {2, 1})),
                null, 0);
        assertArrayEquals(s(1), r.shapes().get(0));
        assertArrayEquals(new double[] {values(12, 5)[7]}, r.out(0));
        // a float coordinate is truncated after adding the axis size (MXNet): -0.5 on size 3 -> 2
        r = NdTesting.run(op("gather_nd", a(), "data", "indices"),
                inputs("data", in(s(3), DType.FLOAT64, new double[] {10, 11, 12}), "indices",
                        in(s(1, 3), DType.FLOAT32, new double[] {-0.5, 1.5, -3})), null, 0);
        assertArrayEquals(new double[] {12, 11, 10}, r.out(0));
    }

    @Test
    void scatterNdForwardRepeatsAndGradient() {
        long[] shape = s(5, 4, 3), is = s(2, 7);
        double[] idx = coords(is, shape, true, 6);
        idx[3] = idx[5];  // a repeated position: the later one wins
        idx[7 + 3] = idx[7 + 5];
        double[] data = values(7 * 3, 7);
        double[] head = values(60, 8);
        for (DType itype : new DType[] {DType.INT32, DType.INT64, DType.FLOAT32}) {
            NdTesting.Result r = NdTesting.run(op("scatter_nd", a("shape", "(5, 4, 3)"), "data", "indices"),
                    inputs("data", in(s(7, 3), DType.FLOAT64, data, GradReq.WRITE), "indices", in(is, itype, idx)),
                    List.of(head), 1);
            assertArrayEquals(shape, r.shapes().get(0));
            assertArrayEquals(scatterRef(data, idx, is, shape), r.out(0), 0, "scatter_nd " + itype);
            // MXNet's gradient: gather_nd of the head (the overwritten position gets it too)
            assertArrayEquals(gatherRef(head, shape, idx, is), r.grads().get("data"), 0, "d data " + itype);
        }
    }

    @Test
    void numericGradients() {
        GradCheck.Inputs g = new GradCheck.Inputs().random("data", s(3, 4, 2), -1, 1, 11)
                .put("indices", s(2, 5), new double[] {0, 2, -1, 0, 2, 1, -4, 3, 1, 1});
        GradCheck.check(op("gather_nd", a(), "data", "indices"), g, List.of("data"), 1e-5, 1e-6, 1e-8);
        GradCheck.Inputs sc = new GradCheck.Inputs().random("data", s(4, 2), -1, 1, 12)
                .put("indices", s(1, 4), new double[] {2, 0, -1, 1});
        GradCheck.check(op("scatter_nd", a("shape", "(5, 2)"), "data", "indices"), sc, List.of("data"), 1e-5, 1e-6, 1e-8);
        // the index inputs get exactly zero
        NdTesting.Result r = NdTesting.run(op("gather_nd", a(), "data", "indices"),
                inputs("data", in(s(3, 4, 2), DType.FLOAT64, values(24, 1)), "indices",
                        in(s(2, 5), DType.FLOAT64, g.get("indices"), GradReq.WRITE)), List.of(values(10, 2)), 1);
        assertArrayEquals(new double[10], r.grads().get("indices"));
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = s(6, 4), is = s(1, 9);
        double[] idx = coords(is, ds, true, 13);
        double[] head = values(9 * 4, 14);
        for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
            Symbol gnd = op("gather_nd", a(), "data", "indices");
            double[] once = NdTesting.run(gnd, inputs("data", in(ds, t, values(24, 15), GradReq.WRITE), "indices",
                    in(is, DType.INT32, idx)), List.of(head), 1).grads().get("data");
            double[] twice = NdTesting.run(gnd, inputs("data", in(ds, t, values(24, 15), GradReq.ADD), "indices",
                    in(is, DType.INT32, idx)), List.of(head), 2).grads().get("data");
            for (int i = 0; i < once.length; i++) {
                once[i] *= 2;
            }
            assertArrayEquals(once, twice, 1e-5, "gather_nd grad_req=add " + t);
            Symbol snd = op("scatter_nd", a("shape", "(6, 4)"), "data", "indices");
            double[] h2 = values(24, 16);
            double[] o2 = NdTesting.run(snd, inputs("data", in(s(9, 4), t, values(36, 17), GradReq.WRITE), "indices",
                    in(is, DType.INT32, idx)), List.of(h2), 1).grads().get("data");
            double[] t2 = NdTesting.run(snd, inputs("data", in(s(9, 4), t, values(36, 17), GradReq.ADD), "indices",
                    in(is, DType.INT32, idx)), List.of(h2), 2).grads().get("data");
            for (int i = 0; i < o2.length; i++) {
                o2[i] *= 2;
            }
            assertArrayEquals(o2, t2, 1e-5, "scatter_nd grad_req=add " + t);
        }
    }

    @Test
    void largeCase() {
        long[] ds = s(200, 50, 8), is = s(2, 30, 100);
        double[] data = values(size(ds), 21);
        double[] idx = coords(is, ds, true, 22);
        double[] head = values(30 * 100 * 8, 23);
        NdTesting.Result r = NdTesting.run(op("gather_nd", a(), "data", "indices"),
                inputs("data", in(ds, DType.FLOAT64, data, GradReq.WRITE), "indices", in(is, DType.INT64, idx)),
                List.of(head), 1);
        assertArrayEquals(gatherRef(data, ds, idx, is), r.out(0), 0);
        assertArrayEquals(gatherGradRef(head, ds, idx, is), r.grads().get("data"), 1e-9);
        NdTesting.Result sc = NdTesting.run(op("scatter_nd", a("shape", "(200, 50, 8)"), "data", "indices"),
                inputs("data", in(s(30, 100, 8), DType.FLOAT32, head), "indices", in(is, DType.INT32, idx)), null, 0);
        assertArrayEquals(scatterRef(head, idx, is, ds), sc.out(0), 0);
    }

    static void gatherFails(long[] ds, long[] is, DType itype, double[] idx, String... fragments) {
        assertThrowsMessage(() -> NdTesting.run(op("gather_nd", a(), "data", "indices"),
                inputs("data", in(ds, DType.FLOAT32, new double[size(ds)]), "indices", in(is, itype, idx)), null, 0), fragments);
    }

    @Test
    void errors() {
        gatherFails(s(4, 3), s(2, 2), DType.INT32, new double[] {0, 4, 1, 1}, "gather_nd: index 4 is out of bounds for axis 0 with size 4");
        gatherFails(s(4, 3), s(2, 2), DType.INT64, new double[] {0, 1, 1, -4}, "index -4 is out of bounds for axis 1 with size 3");
        gatherFails(s(4, 3), s(2, 1), DType.FLOAT32, new double[] {Double.NaN, 0}, "index (not a number) is out of bounds for axis 0");
        gatherFails(s(4, 3), s(2, 1), DType.FLOAT64, new double[] {3.5, 0}, "index 3.5 is out of bounds for axis 0");
        gatherFails(s(4, 3), s(3, 2), DType.INT32, new double[6], "give 3 coordinates for an array of rank 2");
        gatherFails(s(4, 3), s(2), DType.INT32, new double[2], "requires index tensor to have at least 2 dimensions");
        gatherFails(s(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), s(11, 1), DType.INT32, new double[11], "at most 10 dimensions");
        assertThrowsMessage(() -> NdTesting.run(op("scatter_nd", a("shape", "(3, 4)"), "data", "indices"),
                inputs("data", in(s(2), DType.FLOAT32, new double[2]), "indices",
                        in(s(2, 2), DType.INT32, new double[] {0, 3, 1, 1})), null, 0), "scatter_nd: index 3 is out of bounds for axis 0 with size 3");
        ExecTesting.assertInferFails(op("scatter_nd", a("shape", "(3, 4)"), "data", "indices"),
                Map.of("data", s(2, 3), "indices", s(1, 2)), "Shape inconsistent");
        ExecTesting.assertInferFails(op("scatter_nd", a("shape", "(3, 0)"), "data", "indices"),
                Map.of("data", s(2), "indices", s(2, 2)), "positive dimensions");
        assertThrowsMessage(() -> NdTesting.run(op("scatter_nd", a(), "data", "indices"),
                inputs("data", in(s(2), DType.FLOAT32, new double[2]), "indices", in(s(1, 2), DType.INT32, new double[2])), null, 0),
                "shape");
    }
}
