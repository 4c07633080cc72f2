package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertAddAccumulates;
import static dev.kiln.ops.shape.ShapeFixtures.assertInferFails;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.forward;
import static dev.kiln.ops.shape.ShapeFixtures.gradCheck;
import static dev.kiln.ops.shape.ShapeFixtures.grads;
import static dev.kiln.ops.shape.ShapeFixtures.head;
import static dev.kiln.ops.shape.ShapeFixtures.randomValues;
import static dev.kiln.ops.shape.ShapeFixtures.ravel;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.unravel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * reshape_like, slice_like, shape_array and size_array: forward against references, gradients
 * (the shape-only inputs get zeros; shape_array/size_array give zeros), numeric gradients,
 * grad_req=add, large cases, every dtype, and the refusals.
 */
@ExtendWith(NoLeaks.class)
class LikeOpsTest {
    static final DType[] MOVED = {DType.FLOAT16, DType.BFLOAT16, DType.INT32, DType.INT64, DType.UINT8, DType.INT8};

    /** y = x[0:ys_0, .., 0:ys_k] (the leading part). */
    static double[] leadingRef(double[] x, long[] xs, long[] ys) {
        double[] y = new double[size(ys)];
        for (int f = 0; f < y.length; f++) {
            y[f] = x[(int) ravel(unravel(f, ys), xs)];
        }
        return y;
    }

    /** dx = dy in the leading part, zeros elsewhere. */
    static double[] leadingBackRef(double[] dy, long[] ys, long[] xs) {
        double[] dx = new double[size(xs)];
        for (int f = 0; f < dy.length; f++) {
            dx[(int) ravel(unravel(f, ys), xs)] = dy[f];
        }
        return dx;
    }

    static double[] ints(long[] s) {
        double[] v = new double[size(s)];
        for (int i = 0; i < v.length; i++) {
            v[i] = 29 * i % 101;  // exact in every dtype
        }
        return v;
    }

    /** Two-input check: output 0 = fwd ref, data gradient = bwd ref of the head, the second input gets zeros. */
    private static void check(String what, Symbol sym, long[] xs, long[] like, long[] ys, boolean leading, boolean numeric) {
        Map<String, long[]> s = shapes("data", xs, "like", like);
        Map<String, double[]> v = randomValues(s);
        double[] ref = leading ? leadingRef(v.get("data"), xs, ys) : v.get("data");
        double[] h = head(0, ys);
        double[] dref = leading ? leadingBackRef(h, ys, xs) : h;
        for (DType t : BOTH) {
            assertOut(forward(sym, s, v, t), 0, ys, ref, t, what);
            Map<String, double[]> g = grads(sym, s, v, List.of("data", "like"), GradReq.WRITE, 1, t);
            GradCheck.assertClose(dref, g.get("data"), 1e-6, 1e-6, "d/ddata of " + what + " " + t);
            assertArrayEquals(new double[size(like)], g.get("like"), "the shape-only input gets zeros: " + what);
        }
        if (numeric) {
            gradCheck(sym, s, v, List.of("data", "like"));
        }
    }

    // ---- reshape_like --------------------------------------------------------------------------

    @Test
    void reshapeLike() {
        Symbol d = Symbol.variable("data");
        Symbol l = Symbol.variable("like");
        check("reshape_like", Symbol.reshapeLike("r", d, l), shape(2, 3, 4), shape(6, 4), shape(6, 4), false, true);
        // MXNet's examples: lhs dims [lhs_begin, lhs_end) replaced by rhs dims [rhs_begin, rhs_end)
        check("reshape_like 0,1,0,2", Symbol.reshapeLike("r", d, l, 0, 1, 0, 2), shape(30, 7), shape(15, 2, 4), shape(15, 2, 7),
                false, true);
        check("reshape_like 0,2,1,2", Symbol.reshapeLike("r", d, l, 0, 2, 1, 2), shape(3, 5), shape(1, 15, 4), shape(15), false, false);
        check("reshape_like negative", Symbol.reshapeLike("r", d, l, -2, null, null, -1), shape(2, 3, 4), shape(12, 9),
                shape(2, 12), false, false);
        check("reshape_like large", Symbol.reshapeLike("r", d, l), shape(300, 260), shape(260, 300), shape(260, 300), false, false);
        Map<String, long[]> s = shapes("data", shape(2, 3, 4), "like", shape(4, 6));
        assertAddAccumulates(Symbol.reshapeLike("r", d, l).mul(3), s, randomValues(s), List.of("data"));
        for (DType t : MOVED) {
            double[] v = ints(shape(2, 6));
            assertArrayEquals(v, forward(Symbol.reshapeLike("r", d, l), shapes("data", shape(2, 6), "like", shape(3, 4)),
                    Map.of("data", v, "like", new double[12]), t).v(0), "reshape_like " + t);
        }
        try (NDScope scope = NDScope.open()) {  // the rhs lends its shape in any dtype
            NDArray out = NDArray.invoke("reshape_like", Map.of(), NDArray.create(ints(shape(6)), 6),
                    NDArray.zeros(new dev.kiln.ndarray.Shape(2, 3), DType.INT32, dev.kiln.ndarray.Context.cpu())).get(0);
            assertEquals(DType.FLOAT64, out.dtype());
            assertArrayEquals(shape(2, 3), out.shape().dims());
        }
        assertInferFails(Symbol.reshapeLike("r", d, l), shapes("data", shape(2, 3), "like", shape(4, 2)), "reshape_like",
                "Cannot reshape lhs with shape (2,3) to new shape (4,2) because they have different size");
        assertInferFails(Symbol.reshapeLike("r", d, l, 0, 3, null, null), shapes("data", shape(2, 3), "like", shape(6)),
                "Invalid end for lhs_end=3 as dimension number is 2");
        assertInferFails(Symbol.reshapeLike("r", d, l, 1, 1, null, null), shapes("data", shape(2, 3), "like", shape(2, 3)),
                "Invalid begin for lhs_begin=1");
        assertInferFails(Symbol.reshapeLike("r", d, l, null, null, -3, null), shapes("data", shape(2, 3), "like", shape(6)),
                "Invalid begin for rhs_begin=-3");
    }

    // ---- slice_like ----------------------------------------------------------------------------

    @Test
    void sliceLike() {
        Symbol d = Symbol.variable("data");
        Symbol l = Symbol.variable("like");
        check("slice_like all", Symbol.sliceLike("s", d, l), shape(4, 5, 6), shape(2, 3, 4), shape(2, 3, 4), true, true);
        check("slice_like (0,2)", Symbol.sliceLike("s", d, l, 0, 2), shape(4, 5, 6), shape(3, 1, 2), shape(3, 5, 2), true, true);
        check("slice_like (-1,)", Symbol.sliceLike("s", d, l, -1), shape(4, 5, 6), shape(9, 9, 3), shape(4, 5, 3), true, false);
        check("slice_like fewer dims", Symbol.sliceLike("s", d, l, 0), shape(4, 5, 6), shape(2), shape(2, 5, 6), true, false);
        check("slice_like whole", Symbol.sliceLike("s", d, l), shape(3, 2), shape(3, 2), shape(3, 2), true, false);
        check("slice_like large", Symbol.sliceLike("s", d, l), shape(400, 300), shape(350, 250), shape(350, 250), true, false);
        Map<String, long[]> s = shapes("data", shape(4, 5, 6), "like", shape(2, 3, 4));
        assertAddAccumulates(Symbol.sliceLike("s", d, l), s, randomValues(s), List.of("data"));
        Map<String, long[]> big = shapes("data", shape(400, 300), "like", shape(350, 250));
        assertAddAccumulates(Symbol.sliceLike("s", d, l), big, randomValues(big), List.of("data"));
        for (DType t : MOVED) {
            double[] v = ints(shape(4, 5));
            assertArrayEquals(leadingRef(v, shape(4, 5), shape(2, 3)), forward(Symbol.sliceLike("s", d, l),
                    shapes("data", shape(4, 5), "like", shape(2, 3)), Map.of("data", v, "like", new double[6]), t).v(0),
                    "slice_like " + t);
        }
        Map<String, long[]> bad = shapes("data", shape(4, 5), "like", shape(2, 6));
        assertInferFails(Symbol.sliceLike("s", d, l), bad, "slice_like", "Slice axis 1 with size 6 exceeds limit of input with size 5");
        assertInferFails(Symbol.sliceLike("s", d, l), shapes("data", shape(4, 5), "like", shape(2)),
                "By default slice_like performs slice on all axes, but ndim mismatch for inputs: 2 vs. 1");
        assertInferFails(Symbol.sliceLike("s", d, l, 2), shapes("data", shape(4, 5), "like", shape(2, 3, 4)),
                "Slice axis: 2 exceeds first input: 2 dimensions");
        assertInferFails(Symbol.sliceLike("s", d, l, 1), shapes("data", shape(4, 5), "like", shape(2)),
                "Slice axis: 1 exceeds second input: 1 dimensions");
        assertInferFails(Symbol.sliceLike("s", d, l, -3), shapes("data", shape(4, 5), "like", shape(2, 3)), "Slice axis: -3 too small");
    }

    // ---- shape_array / size_array --------------------------------------------------------------

    @Test
    void shapeAndSizeArrays() {
        Symbol x = Symbol.variable("data");
        Map<String, long[]> s = shapes("data", shape(2, 3, 4));
        Map<String, double[]> v = randomValues(s);
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16, DType.INT32, DType.UINT8}) {
            assertOut(forward(Symbol.shapeArray("s", x), s, v, t), 0, shape(3), new double[] {2, 3, 4}, DType.FLOAT64, "shape_array " + t);
            assertOut(forward(Symbol.sizeArray("s", x), s, v, t), 0, shape(1), new double[] {24}, DType.FLOAT64, "size_array " + t);
        }
        Map<String, long[]> big = shapes("data", shape(300, 260));
        assertOut(forward(Symbol.sizeArray("s", x), big, randomValues(big), DType.FLOAT32), 0, shape(1), new double[] {78000},
                DType.FLOAT64, "size_array large");
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[6], 1, 6, 1);
            NDArray sh = NDArray.invoke("shape_array", Map.of(), a).get(0);
            assertEquals(DType.INT64, sh.dtype());
            assertArrayEquals(new double[] {1, 6, 1}, sh.toDoubleArray());
            NDArray sz = NDArray.invoke("size_array", Map.of(), a).get(0);
            assertEquals(DType.INT64, sz.dtype());
            assertArrayEquals(new double[] {6}, sz.toDoubleArray());
        }
        // no gradient flows through them: the data gets zeros, also next to a path that has one
        Symbol both = Symbol.sum(null, x.mul(2)).plus(Symbol.sum(null,
                Symbol.create("Cast", null, a("dtype", "float64"), null, Symbol.shapeArray("s", x))));
        for (DType t : BOTH) {
            double[] g = grads(Symbol.shapeArray("s", x), s, v, List.of("data"), GradReq.WRITE, 1, t).get("data");
            assertArrayEquals(new double[24], g, "shape_array's gradient " + t);
            g = grads(Symbol.sizeArray("s", x), s, v, List.of("data"), GradReq.WRITE, 1, t).get("data");
            assertArrayEquals(new double[24], g, "size_array's gradient " + t);
        }
        double[] g = grads(both, s, v, List.of("data"), GradReq.WRITE, 1, DType.FLOAT64).get("data");
        double[] expected = new double[24];
        Arrays.fill(expected, 2 * head(0, shape(1))[0]);
        assertArrayEquals(expected, g, "only the other path has a gradient");
    }
}
