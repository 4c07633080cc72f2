package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertAddAccumulates;
import static dev.kiln.ops.shape.ShapeFixtures.assertInferFails;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.concatRef;
import static dev.kiln.ops.shape.ShapeFixtures.forward;
import static dev.kiln.ops.shape.ShapeFixtures.gradCheck;
import static dev.kiln.ops.shape.ShapeFixtures.grads;
import static dev.kiln.ops.shape.ShapeFixtures.head;
import static dev.kiln.ops.shape.ShapeFixtures.randomValues;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.ops.shape.ShapeFixtures.splitRef;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Concat (concat) and SliceChannel (split), forward, gradients, grad_req=add and errors. */
@ExtendWith(NoLeaks.class)
class ConcatSplitTest {

    /** Three inputs whose sizes on {@code axis} are 1, 2, 3 around a base shape. */
    private static List<long[]> concatShapes(long[] base, int axis) {
        List<long[]> l = new ArrayList<>();
        for (int k = 1; k <= 3; k++) {
            long[] s = base.clone();
            s[axis] = k;
            l.add(s);
        }
        return l;
    }

    private static Symbol concat3(int dim) {
        return Symbol.concat("c", dim, Symbol.variable("a"), Symbol.variable("b"), Symbol.variable("d"));
    }

    private static Map<String, long[]> named(List<long[]> l) {
        return shapes("a", l.get(0), "b", l.get(1), "d", l.get(2));
    }

    @ParameterizedTest(name = "dim={0}")
    @ValueSource(ints = {0, 1, 2, 3, -1, -4})
    void concatForward(int dim) {
        long[] base = shape(2, 3, 4, 5);
        int axis = dim < 0 ? dim + 4 : dim;
        List<long[]> ls = concatShapes(base, axis);
        Map<String, long[]> s = named(ls);
        Map<String, double[]> v = randomValues(s);
        long[] out = base.clone();
        out[axis] = 6;
        double[] ref = concatRef(List.of(v.get("a"), v.get("b"), v.get("d")), ls, axis);
        for (DType t : BOTH) {
            assertOut(forward(concat3(dim), s, v, t), 0, out, ref, t, "Concat dim=" + dim);
        }
    }

    @Test
    void concatDefaultsToDim1AndLargeInputs() {
        // default dim=1; one input (num_args=1) is a copy
        Symbol x = Symbol.variable("x");
        Map<String, long[]> one = shapes("x", shape(2, 3));
        Map<String, double[]> v1 = randomValues(one);
        assertOut(forward(Symbol.concat("c", x), one, v1, DType.FLOAT32), 0, shape(2, 3), v1.get("x"), DType.FLOAT32, "num_args=1");
        // large enough for both parallel paths: many rows (dim=1) and few long rows (dim=0)
        for (int dim : new int[] {0, 1}) {
            List<long[]> ls = concatShapes(shape(3, 7000), dim);
            if (dim == 1) {
                ls = List.of(shape(400, 30), shape(400, 50), shape(400, 20));
            }
            Map<String, long[]> s = named(ls);
            Map<String, double[]> v = randomValues(s);
            double[] ref = concatRef(List.of(v.get("a"), v.get("b"), v.get("d")), ls, dim);
            long[] out = ls.get(0).clone();
            out[dim] = ls.get(0)[dim] + ls.get(1)[dim] + ls.get(2)[dim];
            for (DType t : BOTH) {
                assertOut(forward(concat3(dim), s, v, t), 0, out, ref, t, "large Concat dim=" + dim);
            }
            // the backward of a large concat is a large split
            Map<String, double[]> g = grads(concat3(dim), s, v, List.of("a", "b", "d"), GradReq.WRITE, 1, DType.FLOAT64);
            double[] h = head(0, out);
            String[] names = {"a", "b", "d"};
            int off = 0;
            for (int p = 0; p < 3; p++) {
                long[] ps = ls.get(p);
                double[] e = new double[OpTesting.size(ps)];
                for (int f = 0; f < e.length; f++) {
                    int[] i = OpTesting.unravel(f, ps);
                    i[dim] += off;
                    e[f] = h[(int) ShapeFixtures.ravel(i, out)];
                }
                GradCheck.assertClose(e, g.get(names[p]), 0, 0, "large Concat gradient of " + names[p]);
                off += (int) ps[dim];
            }
            assertAddAccumulates(concat3(dim), s, v, List.of("a", "b", "d"));
        }
    }

    @Test
    void concatOfTheSameInputTwiceAndPartialGradients() {
        // concat(x, x, y): x's two pieces of the gradient are summed; y needs no gradient
        Symbol x = Symbol.variable("x");
        Symbol sym = Symbol.concat("c", 1, x, x, Symbol.variable("y"));
        Map<String, long[]> s = shapes("x", shape(2, 3), "y", shape(2, 2));
        Map<String, double[]> v = randomValues(s);
        gradCheck(sym, s, v, List.of("x", "y"));
        assertAddAccumulates(sym, s, v, List.of("x"));
        double[] g = grads(sym, s, v, List.of("x"), GradReq.WRITE, 1, DType.FLOAT64).get("x");
        double[] h = head(0, shape(2, 8));
        for (int r = 0; r < 2; r++) {
            for (int c = 0; c < 3; c++) {
                org.junit.jupiter.api.Assertions.assertEquals(h[r * 8 + c] + h[r * 8 + 3 + c], g[r * 3 + c], 1e-12);
            }
        }
        double[] ex = concatRef(List.of(v.get("x"), v.get("x"), v.get("y")), List.of(shape(2, 3), shape(2, 3), shape(2, 2)), 1);
        assertOut(forward(sym, s, v, DType.FLOAT32), 0, shape(2, 8), ex, DType.FLOAT32, "concat(x, x, y)");
    }

    @Test
    void splitOutputUsedTwiceAndSplitThenConcatRoundTrip() {
        Symbol sp = Symbol.sliceChannel("sp", Symbol.variable("data"), 2, 0, false);
        Symbol y = Symbol.elemwiseMul("m", sp.get(0), sp.get(0));  // piece 0 read twice
        Symbol back = Symbol.concat("c", 0, sp.get(1), sp.get(0));  // swapped halves
        Map<String, long[]> s = shapes("data", shape(4, 3));
        Map<String, double[]> v = randomValues(s);
        gradCheck(y, s, v, List.of("data"));
        gradCheck(Symbol.group(y, back), s, v, List.of("data"));
        assertAddAccumulates(Symbol.group(y, back), s, v, List.of("data"));
        double[] d = v.get("data");
        double[] swapped = new double[12];
        System.arraycopy(d, 6, swapped, 0, 6);
        System.arraycopy(d, 0, swapped, 6, 6);
        assertOut(forward(back, s, v, DType.FLOAT64), 0, shape(4, 3), swapped, DType.FLOAT64, "split/concat swap");
    }

    @Test
    void concatGradientAndAddTo() {
        for (int dim : new int[] {0, 1, 2}) {
            Map<String, long[]> s = named(concatShapes(shape(2, 3, 2), dim));
            Map<String, double[]> v = randomValues(s);
            gradCheck(concat3(dim), s, v, List.of("a", "b", "d"));
            assertAddAccumulates(concat3(dim), s, v, List.of("a", "b", "d"));
        }
    }

    @Test
    void concatBackInfersNonConcatDimsFromOutput() {
        // the output's non-concat dims reach an input whose shape is partly unknown
        Symbol c = Symbol.concat("c", 1, Symbol.variable("a"), Symbol.variable("b"));
        InferResult r = c.inferShapePartial(shapes("a", shape(2, 3, 4), "b", shape(-1, 5, -1)));
        assertArrayEquals(shape(2, 5, 4), r.argShapes().get(1));
        assertArrayEquals(shape(2, 8, 4), r.outShapes().get(0));
    }

    @Test
    void concatErrors() {
        Map<String, long[]> s = shapes("a", shape(2, 3, 4), "b", shape(2, 5, 4), "d", shape(2, 1, 5));
        assertInferFails(concat3(1), s, "Concat", "(2,1,5)", "all dims except dim=1 must match");
        assertInferFails(concat3(3), shapes("a", shape(2, 3), "b", shape(2, 3), "d", shape(2, 3)), "dim=3 is out of range",
                "(2,3)");
        assertInferFails(concat3(0), shapes("a", shape(2, 3), "b", shape(2, 3, 1), "d", shape(2, 3)), "Concat", "(2,3,1)");
    }

    // ---- SliceChannel ---------------------------------------------------------------------

    @ParameterizedTest(name = "axis={0}")
    @ValueSource(ints = {0, 1, 2, -1})
    void splitForward(int axisParam) {
        long[] in = shape(6, 6, 6);
        int axis = axisParam < 0 ? axisParam + 3 : axisParam;
        Map<String, long[]> s = shapes("data", in);
        Map<String, double[]> v = randomValues(s);
        for (int n : new int[] {1, 2, 3, 6}) {
            Symbol sym = Symbol.sliceChannel("sp", Symbol.variable("data"), n, axisParam, false);
            long[] ps = in.clone();
            ps[axis] = 6 / n;
            for (DType t : BOTH) {
                ExecTesting.Out out = forward(sym, s, v, t);
                assertEquals(n, out.values().size());
                for (int p = 0; p < n; p++) {
                    assertOut(out, p, ps, splitRef(v.get("data"), in, axis, n, p), t, "split n=" + n + " piece " + p);
                }
            }
        }
    }

    @Test
    void splitSqueezeAxisAndNames() {
        Symbol sym = Symbol.create("split", "sp", Map.of("num_outputs", "3", "axis", "1", "squeeze_axis", "True"), null,
                Symbol.variable("data"));
        assertEquals(List.of("sp_output0", "sp_output1", "sp_output2"), sym.listOutputs());
        long[] in = shape(2, 3, 4);
        Map<String, long[]> s = shapes("data", in);
        Map<String, double[]> v = randomValues(s);
        for (DType t : BOTH) {
            ExecTesting.Out out = forward(sym, s, v, t);
            for (int p = 0; p < 3; p++) {
                assertOut(out, p, shape(2, 4), splitRef(v.get("data"), in, 1, 3, p), t, "squeezed piece " + p);
            }
        }
        gradCheck(sym, s, v, List.of("data"));
        assertAddAccumulates(sym, s, v, List.of("data"));
    }

    @Test
    void splitLargeParallelPaths() {
        for (int axis : new int[] {0, 1}) {
            long[] in = axis == 0 ? shape(4, 9000) : shape(1000, 40);
            Map<String, long[]> s = shapes("data", in);
            Map<String, double[]> v = randomValues(s);
            Symbol sym = Symbol.sliceChannel("sp", Symbol.variable("data"), 4, axis, false);
            ExecTesting.Out out = forward(sym, s, v, DType.FLOAT32);
            for (int p = 0; p < 4; p++) {
                long[] ps = in.clone();
                ps[axis] /= 4;
                assertOut(out, p, ps, splitRef(v.get("data"), in, axis, 4, p), DType.FLOAT32, "large split piece " + p);
            }
        }
    }

    @Test
    void splitGradientAndAddTo() {
        for (int axis : new int[] {0, 1, 2}) {
            Map<String, long[]> s = shapes("data", shape(4, 4, 2));
            Map<String, double[]> v = randomValues(s);
            Symbol sym = Symbol.sliceChannel("sp", Symbol.variable("data"), 2, axis, false);
            gradCheck(sym, s, v, List.of("data"));
            assertAddAccumulates(sym, s, v, List.of("data"));
        }
    }

    @Test
    void splitWithUnusedOutputsGetsZeroGradients() {
        // only output 1 of 3 reaches the head: the gradient of the other pieces is zero
        Symbol sp = Symbol.sliceChannel("sp", Symbol.variable("data"), 3, 1, false);
        Symbol y = sp.get(1).mul(3.0);
        long[] in = shape(2, 6);
        Map<String, long[]> s = shapes("data", in);
        Map<String, double[]> v = randomValues(s);
        gradCheck(y, s, v, List.of("data"));
        double[] g = grads(y, s, v, List.of("data"), GradReq.WRITE, 1, DType.FLOAT64).get("data");
        double[] h = head(0, shape(2, 2));
        double[] e = new double[12];
        for (int r = 0; r < 2; r++) {
            for (int c = 0; c < 2; c++) {
                e[r * 6 + 2 + c] = 3 * h[r * 2 + c];
            }
        }
        GradCheck.assertClose(e, g, 1e-12, 0, "gradient through output 1 only");
    }

    @Test
    void lstmStyleUnrollRoundTrip() {
        // split(axis=1, squeeze) -> per-step op -> expand_dims(axis=1) -> Concat(dim=1), as rnn_cell.unroll does
        int steps = 4;
        Symbol sp = Symbol.sliceChannel("sp", Symbol.variable("data"), steps, 1, true);
        Symbol[] outs = new Symbol[steps];
        for (int k = 0; k < steps; k++) {
            outs[k] = Symbol.expandDims("e" + k, Symbol.mulScalar("m" + k, sp.get(k), k + 1), 1);
        }
        Symbol merged = Symbol.concat("merged", 1, outs);
        long[] in = shape(2, steps, 3);
        Map<String, long[]> s = shapes("data", in);
        Map<String, double[]> v = randomValues(s);
        double[] e = v.get("data").clone();
        for (int i = 0; i < e.length; i++) {
            e[i] *= OpTesting.unravel(i, in)[1] + 1;
        }
        for (DType t : BOTH) {
            assertOut(forward(merged, s, v, t), 0, in, e, t, "unrolled round trip");
        }
        gradCheck(merged, s, v, List.of("data"));
        assertAddAccumulates(merged, s, v, List.of("data"));
    }

    @Test
    void splitErrors() {
        Symbol x = Symbol.variable("data");
        Map<String, long[]> s = shapes("data", shape(2, 5, 4));
        assertInferFails(Symbol.sliceChannel("sp", x, 2), s, "SliceChannel", "(2,5,4)", "num_outputs=2",
                "does not evenly divide 5");
        assertInferFails(Symbol.sliceChannel("sp", x, 2, 3, false), s, "axis=3 is out of range", "(2,5,4)");
        assertInferFails(Symbol.sliceChannel("sp", x, 2, 2, true), s, "squeeze axis", "num_outputs=2");
        Map<String, long[]> none = new LinkedHashMap<>();
        none.put("data", shape(4));
        assertInferFails(Symbol.sliceChannel("sp", x, 3, 0, false), none, "does not evenly divide 4");
    }
}
