package dev.kiln.ops.index;

import static dev.kiln.ops.index.GatherNdTest.inputs;
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

import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * batch_take (out[i] = a[i, clip(indices[i])], int32 indices; Kiln's gradient puts the head at the
 * taken element) and argmax_channel (argmax over the last axis) against Java references, with
 * numeric gradients, grad_req=add, large cases and errors.
 */
@ExtendWith(NoLeaks.class)
class BatchTakeTest {

    static double[] takeRef(double[] a, int m, double[] idx) {
        double[] out = new double[idx.length];
        for (int i = 0; i < idx.length; i++) {
            int j = (int) Math.max(0, Math.min(m - 1, idx[i]));
            out[i] = a[i * m + j];
        }
        return out;
    }

    static double[] takeGradRef(double[] head, int m, double[] idx) {
        double[] g = new double[idx.length * m];
        for (int i = 0; i < idx.length; i++) {
            int j = (int) Math.max(0, Math.min(m - 1, idx[i]));
            g[i * m + j] = head[i];
        }
        return g;
    }

    static double[] ints(int n, int lo, int hi, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = lo + r.nextInt(hi - lo);
        }
        return v;
    }

    @Test
    void batchTakeForwardAndGradient() {
        long[] as = s(2, 3, 5), is = s(2, 3);
        double[] av = values(30, 1);
        double[] idx = ints(6, -2, 8, 2);  // out-of-range values are clipped
        double[] head = values(6, 3);
        for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32, DType.INT32}) {
            boolean f = t != DType.INT32;
            double[] data = f ? av : ints(30, -50, 50, 4);
            NdTesting.Result r = NdTesting.run(op("batch_take", a(), "a", "indices"),
                    inputs("a", in(as, t, data, f ? GradReq.WRITE : null), "indices", in(is, DType.INT32, idx)),
                    f ? List.of(head) : null, 1);
            assertArrayEquals(is, r.shapes().get(0));
            assertArrayEquals(takeRef(data, 5, idx), r.out(0), 0, "batch_take " + t);
            if (f) {
                assertArrayEquals(takeGradRef(head, 5, idx), r.grads().get("a"), 0, "d a " + t);
            }
        }
    }

    /** The graph of the numeric checks: float64 index values cast to int32 (batch_take takes only int32). */
    static Symbol castTake() {
        Symbol idx = Symbol.create("Cast", "c", a("dtype", "int32"), null, Symbol.variable("indices"));
        return Symbol.create("batch_take", "op", a(), null, Symbol.variable("a"), idx);
    }

    @Test
    void numericGradientAndAdd() {
        GradCheck.Inputs g = new GradCheck.Inputs().random("a", s(4, 6), -1, 1, 5).put("indices", s(4), new double[] {0, 5, 9, -1});
        GradCheck.check(castTake(), g, List.of("a"), 1e-5, 1e-6, 1e-8);
        double[] idx = ints(7, 0, 4, 6);
        double[] head = values(7, 7);
        for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
            double[] once = NdTesting.run(op("batch_take", a(), "a", "indices"), inputs("a", in(s(7, 4), t, values(28, 8),
                    GradReq.WRITE), "indices", in(s(7), DType.INT32, idx)), List.of(head), 1).grads().get("a");
            double[] twice = NdTesting.run(op("batch_take", a(), "a", "indices"), inputs("a", in(s(7, 4), t, values(28, 8),
                    GradReq.ADD), "indices", in(s(7), DType.INT32, idx)), List.of(head), 2).grads().get("a");
            for (int i = 0; i < once.length; i++) {
                once[i] *= 2;
            }
            assertArrayEquals(once, twice, 1e-6, "grad_req=add " + t);
        }
    }

    @Test
    void largeCase() {
        double[] av = values(5000 * 300, 9);
        double[] idx = ints(5000, -10, 310, 10);
        double[] head = values(5000, 11);
        NdTesting.Result r = NdTesting.run(op("batch_take", a(), "a", "indices"),
                inputs("a", in(s(5000, 300), DType.FLOAT32, av, GradReq.WRITE), "indices", in(s(5000), DType.INT32, idx)),
                List.of(head), 1);
        assertArrayEquals(takeRef(av, 300, idx), r.out(0), 0);
        assertArrayEquals(takeGradRef(head, 300, idx), r.grads().get("a"), 0);
    }

    @Test
    void batchTakeErrors() {
        assertThrowsMessage(() -> NdTesting.run(op("batch_take", a(), "a", "indices"), inputs("a",
                in(s(2, 3), DType.FLOAT32, new double[6]), "indices", in(s(2), DType.FLOAT32, new double[2])), null, 0),
                "batch_take: indices must be int32, got float32");
        ExecTesting.assertInferFails(op("batch_take", a(), "a", "indices"), Map.of("a", s(6), "indices", s(6)),
                "at least 2 dimensions");
        ExecTesting.assertInferFails(op("batch_take", a(), "a", "indices"), Map.of("a", s(4, 3), "indices", s(3)),
                "as many elements as data");
    }

    /** argmax over axis 1 of x viewed as [outer, m, inner]; the first maximum wins. */
    static double[] argmaxAxis1Ref(double[] x, long[] shape) {
        int outer = (int) shape[0], m = (int) shape[1], inner = x.length / outer / m;
        double[] out = new double[outer * inner];
        for (int o = 0; o < outer; o++) {
            for (int i = 0; i < inner; i++) {
                int best = 0;
                for (int c = 1; c < m; c++) {
                    if (x[(o * m + c) * inner + i] > x[(o * m + best) * inner + i]) {
                        best = c;
                    }
                }
                out[o * inner + i] = best;
            }
        }
        return out;
    }

    @Test
    void argmaxChannel() {
        for (long[] shape : new long[][] {s(3, 4, 5), s(7, 2), s(2, 3, 2, 2), s(400, 300)}) {
            double[] x = IndexGradTest.distinct(size(shape), shape);
            long[] expShape = new long[shape.length - 1];
            expShape[0] = shape[0];
            System.arraycopy(shape, 2, expShape, 1, shape.length - 2);
            for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
                NdTesting.Result r = NdTesting.run(op("argmax_channel", a(), "data"),
                        inputs("data", in(shape, t, x, GradReq.WRITE)), List.of(values(size(expShape), 1)), 1);
                assertArrayEquals(expShape, r.shapes().get(0));
                assertArrayEquals(argmaxAxis1Ref(x, shape), r.out(0), 0, "argmax_channel " + t);
                assertArrayEquals(new double[size(shape)], r.grads().get("data"), "zero gradient");
            }
        }
        // ties: the first maximum; integer data keeps its type
        NdTesting.Result r = NdTesting.run(op("argmax_channel", a(), "data"),
                inputs("data", in(s(2, 3), DType.INT32, new double[] {1, 5, 5, 7, 7, 2})), null, 0);
        assertArrayEquals(new double[] {1, 0}, r.out(0));
        ExecTesting.assertInferFails(op("argmax_channel", a(), "data"), Map.of("data", s(6)), "axis=1 is out of range");
    }
}
