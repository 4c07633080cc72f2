package dev.kiln.ops.index;

import static dev.kiln.ops.index.GatherNdTest.inputs;
import static dev.kiln.ops.index.NdTesting.in;
import static dev.kiln.ops.index.NdTesting.op;
import static dev.kiln.ops.index.NdTesting.size;
import static dev.kiln.ops.index.NdTesting.values;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.toDouble;
import static dev.kiln.testutil.OpTesting.toFloat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.mxnet.engine.MxNDManager;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.DType;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The new index and contrib operators against the real MXNet 1.9.1 (through DJL) on the same
 * float32 inputs: outputs, shapes and, where the op has a gradient MXNet computes, the gradients
 * of the inputs in {@code grads} for a random head. Random fuzzing rarely builds valid index
 * inputs for these ops, so the cases here are chosen.
 */
@ExtendWith(NoLeaks.class)
class IndexMxnetTest {

    /** Runs op in both engines (float32 inputs named in0, in1, ...) and compares. */
    static void compare(String opName, Map<String, String> attrs, List<long[]> shapes, List<double[]> vals, Set<Integer> grads) {
        String what = opName + " " + attrs;
        double[] head = null;
        Map<String, NdTesting.In> in = new LinkedHashMap<>();
        String[] names = new String[shapes.size()];
        for (int i = 0; i < shapes.size(); i++) {
            names[i] = "in" + i;
            in.put(names[i], in(shapes.get(i), DType.FLOAT32, toDouble(toFloat(vals.get(i))), grads.contains(i) ? GradReq.WRITE : null));
        }
        NdTesting.Result fwd = NdTesting.run(op(opName, attrs, names), in, null, 0);
        if (!grads.isEmpty()) {
            head = values(size(fwd.shapes().get(0)), 99);
        }
        MxCompare.Run m = MxCompare.mxnet(opName, attrs, shapes, vals, null, head == null ? null : List.of(head), grads, 1);
        NdTesting.Result k = head == null ? fwd : NdTesting.run(op(opName, attrs, names), in, List.of(head), 1);
        assertEquals(m.outputs().size(), k.outputs().size(), what + ": outputs");
        for (int o = 0; o < m.outputs().size(); o++) {
            assertArrayEquals(m.outShapes().get(o), k.shapes().get(o), what + ": shape of output " + o);
            assertArrayEquals(m.outputs().get(o), k.out(o), 1e-5, what + ": output " + o);
        }
        for (int g : grads) {
            assertArrayEquals(m.grads().get(g), k.grads().get(names[g]), 1e-5, what + ": gradient of input " + g);
        }
    }

    @Test
    void gatherNd() {
        long[] ds = s(4, 3, 5), is = s(2, 3, 2);
        // MXNet's backward reads coordinates as they are: non-negative ones for the gradient
        compare("gather_nd", a(), List.of(ds, is), List.of(values(60, 1), GatherNdTest.coords(is, ds, false, 2)), Set.of(0));
        compare("gather_nd", a(), List.of(ds, is), List.of(values(60, 1), GatherNdTest.coords(is, ds, true, 3)), Set.of());
        compare("gather_nd", a(), List.of(ds, s(3, 4)), List.of(values(60, 4), new double[] {3, -4, 0, 2, 1, -1, 2, 0, -5, 4, 0, 1}),
                Set.of());
        // a float coordinate is truncated after adding the axis size
        compare("gather_nd", a(), List.of(s(3, 2), s(1, 4)), List.of(values(6, 5), new double[] {-0.5, 1.5, -2.9, 0.9}), Set.of());
    }

    @Test
    void scatterNd() {
        long[] is = s(2, 5);
        double[] idx = {0, 4, 2, 1, 3, 1, 0, 3, 2, 0};  // distinct positions (repeats are undefined in MXNet)
        compare("scatter_nd", a("shape", "(5, 4, 3)"), List.of(s(5, 3), is), List.of(values(15, 6), idx), Set.of(0));
        compare("scatter_nd", a("shape", "(6,)"), List.of(s(3), s(1, 3)), List.of(values(3, 7), new double[] {5, 0, 2}), Set.of(0));
    }

    @Test
    void ravelArgmaxAndContrib() {
        compare("ravel_multi_index", a("shape", "(3, 4, 5)"), List.of(s(3, 6)), List.of(RavelTest.coords(s(3, 4, 5), 6, 8)), Set.of());
        compare("unravel_index", a("shape", "(3, 4, 5)"), List.of(s(6)), List.of(new double[] {0, 59, 17, 33, 60, 122}), Set.of());
        compare("argmax_channel", a(), List.of(s(3, 4, 5)), List.of(IndexGradTest.distinct(60, s(3, 4, 5))), Set.of());
        compare("argmax_channel", a(), List.of(s(7, 3)), List.of(IndexGradTest.distinct(21, s(7, 3))), Set.of());
        compare("_contrib_div_sqrt_dim", a(), List.of(s(3, 7)), List.of(values(21, 9)), Set.of(0));
        compare("_contrib_gradientmultiplier", a("scalar", "-2.5"), List.of(s(4, 5)), List.of(values(20, 10)), Set.of(0));
        double[] halves = {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0, 0.75, -0.75, 3.25};
        compare("_contrib_round_ste", a(), List.of(s(10)), List.of(halves), Set.of(0));
        compare("_contrib_sign_ste", a(), List.of(s(10)), List.of(halves), Set.of(0));
        compare("_contrib_arange_like", a("start", "1.5", "step", "0.5", "repeat", "2"), List.of(s(3, 4)), List.of(values(12, 11)),
                Set.of());
        compare("_contrib_arange_like", a("axis", "-1", "start", "-3"), List.of(s(3, 4)), List.of(values(12, 12)), Set.of());
    }

    @Test
    void batchTake() {
        MxOracle.assumeAvailable();
        double[] data = values(15, 13);
        double[] idx = {-1, 2, 4, 7, 0};
        float[] expected;
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray x = MxOracle.create(m, toFloat(data), 5, 3);
            ai.djl.ndarray.NDArray i = MxOracle.invoke(m, "Cast", a("dtype", "int32"), MxOracle.create(m, toFloat(idx), 5)).get(0);
            expected = MxOracle.invoke(m, "batch_take", a(), x, i).get(0).toFloatArray();
        }
        NdTesting.Result k = NdTesting.run(op("batch_take", a(), "a", "indices"),
                inputs("a", in(s(5, 3), DType.FLOAT32, data), "indices", in(s(5), DType.INT32, idx)), null, 0);
        assertArrayEquals(toDouble(expected), k.out(0));
    }
}
