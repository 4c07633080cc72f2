package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertAddAccumulates;
import static dev.kiln.ops.shape.ShapeFixtures.assertInferFails;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.forward;
import static dev.kiln.ops.shape.ShapeFixtures.gradCheck;
import static dev.kiln.ops.shape.ShapeFixtures.grads;
import static dev.kiln.ops.shape.ShapeFixtures.head;
import static dev.kiln.ops.shape.ShapeFixtures.permute;
import static dev.kiln.ops.shape.ShapeFixtures.randomValues;
import static dev.kiln.ops.shape.ShapeFixtures.ravel;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.ops.shape.ShapeFixtures.transposeRef;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.unravel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

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
import java.util.function.UnaryOperator;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * squeeze, SwapAxis (swapaxes), reverse (flip), depth_to_space and space_to_depth: forward against
 * index-arithmetic references, gradients (each the inverse rearrangement of the head), numeric
 * gradients, grad_req=add, large cases, every dtype, and the refusals.
 */
@ExtendWith(NoLeaks.class)
class RearrangeOpsTest {
    static final DType[] MOVED = {DType.FLOAT16, DType.BFLOAT16, DType.INT32, DType.INT64, DType.UINT8, DType.INT8};

    // ---- references ----------------------------------------------------------------------------

    /** y[j] = x[j with the coordinates of the flipped dims mirrored]. */
    static double[] reverseRef(double[] x, long[] s, boolean[] flip) {
        double[] y = new double[x.length];
        for (int f = 0; f < y.length; f++) {
            int[] j = unravel(f, s);
            for (int d = 0; d < s.length; d++) {
                j[d] = flip[d] ? (int) s[d] - 1 - j[d] : j[d];
            }
            y[f] = x[(int) ravel(j, s)];
        }
        return y;
    }

    /** depth_to_space (DCR): y[n, c, h b + i, w b + j] = x[n, (i b + j) C' + c, h, w], C' = C / b^2. */
    static double[] d2sRef(double[] x, long[] s, int b) {
        long cc = s[1] / ((long) b * b);
        long[] ys = {s[0], cc, s[2] * b, s[3] * b};
        double[] y = new double[x.length];
        for (int f = 0; f < y.length; f++) {
            int[] o = unravel(f, ys);
            int i = o[2] % b;
            int j = o[3] % b;
            y[f] = x[(int) ravel(new int[] {o[0], (int) ((i * b + j) * cc + o[1]), o[2] / b, o[3] / b}, s)];
        }
        return y;
    }

    /** space_to_depth: y[n, (i b + j) C + c, h, w] = x[n, c, h b + i, w b + j]. */
    static double[] s2dRef(double[] x, long[] s, int b) {
        long[] ys = {s[0], s[1] * b * b, s[2] / b, s[3] / b};
        double[] y = new double[x.length];
        for (int f = 0; f < y.length; f++) {
            int[] o = unravel(f, ys);
            int c = (int) (o[1] % s[1]);
            int blk = (int) (o[1] / s[1]);
            y[f] = x[(int) ravel(new int[] {o[0], c, o[2] * b + blk / b, o[3] * b + blk % b}, s)];
        }
        return y;
    }

    static int[] swapPerm(int nd, int d1, int d2) {
        int[] p = new int[nd];
        for (int i = 0; i < nd; i++) {
            p[i] = i;
        }
        int a1 = d1 < 0 ? d1 + nd : d1;
        int a2 = d2 < 0 ? d2 + nd : d2;
        p[a1] = a2;
        p[a2] = a1;
        return p;
    }

    /**
     * Forward (= fwdRef(x)) and the gradient (= bwdRef(head)) in float64 and float32, plus a
     * numeric gradient check when asked.
     */
    private static void check(String what, Symbol sym, long[] xs, long[] ys, UnaryOperator<double[]> fwdRef,
            UnaryOperator<double[]> bwdRef, boolean numeric) {
        Map<String, long[]> s = shapes("data", xs);
        Map<String, double[]> v = randomValues(s);
        double[] ref = fwdRef.apply(v.get("data"));
        double[] dref = bwdRef.apply(head(0, ys));
        for (DType t : BOTH) {
            assertOut(forward(sym, s, v, t), 0, ys, ref, t, what);
            GradCheck.assertClose(dref, grads(sym, s, v, List.of("data"), GradReq.WRITE, 1, t).get("data"), 1e-6, 1e-6,
                    "gradient of " + what + " " + t);
        }
        if (numeric) {
            gradCheck(sym, s, v, List.of("data"));
        }
    }

    private static void addTo(Symbol sym, long[] xs) {
        Map<String, long[]> s = shapes("data", xs);
        assertAddAccumulates(sym, s, randomValues(s), List.of("data"));
    }

    /** Small integers, exact in every dtype (uint8 and int8 included). */
    static double[] ints(long[] s) {
        double[] v = new double[size(s)];
        for (int i = 0; i < v.length; i++) {
            v[i] = 37 * i % 101;
        }
        return v;
    }

    private static void checkDtypes(String what, Symbol sym, long[] xs, UnaryOperator<double[]> ref) {
        double[] v = ints(xs);
        double[] expected = ref.apply(v);
        for (DType t : MOVED) {
            assertArrayEquals(expected, forward(sym, shapes("data", xs), Map.of("data", v), t).v(0), what + " " + t);
        }
    }

    // ---- squeeze -------------------------------------------------------------------------------

    @Test
    void squeeze() {
        Symbol x = Symbol.variable("data");
        UnaryOperator<double[]> same = v -> v;
        check("squeeze all", Symbol.squeeze("q", x), shape(1, 3, 1, 4), shape(3, 4), same, same, true);
        check("squeeze (0,)", Symbol.squeeze("q", x, 0), shape(1, 3, 1, 4), shape(3, 1, 4), same, same, false);
        check("squeeze (-2, 0)", Symbol.squeeze("q", x, -2, 0), shape(1, 3, 1, 4), shape(3, 4), same, same, true);
        check("squeeze (1, 1)", Symbol.squeeze("q", x), shape(1, 1), shape(1), same, same, false);
        check("squeeze ()", Symbol.create("squeeze", "q", a("axis", "()"), null, x), shape(1, 2), shape(1, 2), same, same,
                false);
        check("squeeze large", Symbol.squeeze("q", x, 1), shape(300, 1, 260), shape(300, 260), same, same, false);
        // the forward is an identity the planner may alias; the sum after it forces a real output
        addTo(Symbol.squeeze("q", x).mul(2), shape(1, 3, 1, 4));
        checkDtypes("squeeze", Symbol.squeeze("q", x), shape(2, 1, 3), same);
        assertInferFails(Symbol.squeeze("q", x, 1), shapes("data", shape(1, 3, 1)), "squeeze",
                "cannot select an axis to squeeze out which has size=3 not equal to one");
        assertInferFails(Symbol.squeeze("q", x, 3), shapes("data", shape(1, 3, 1)), "axis 3 is out of bounds for array of dimension 3");
        assertInferFails(Symbol.squeeze("q", x, -4), shapes("data", shape(1, 3, 1)), "axis -4 is out of bounds");
        assertInferFails(Symbol.squeeze("q", x, 0, -3), shapes("data", shape(1, 3, 1)), "duplicate value in axis");
    }

    // ---- SwapAxis ------------------------------------------------------------------------------

    @Test
    void swapaxes() {
        Symbol x = Symbol.variable("data");
        long[] xs = shape(2, 3, 4, 5);
        for (int d1 = -4; d1 < 4; d1++) {
            for (int d2 = -4; d2 < 4; d2++) {
                int[] p = swapPerm(4, d1, d2);
                check("SwapAxis " + d1 + "," + d2, Symbol.swapaxes("w", x, d1, d2), xs, permute(xs, p),
                        v -> transposeRef(v, xs, p), g -> transposeRef(g, permute(xs, p), p), d1 == 1 && d2 == -1);
            }
        }
        // the alias, and the defaults (0, 0): a copy
        check("swapaxes alias", Symbol.create("swapaxes", "w", a("dim1", "0", "dim2", "2"), null, x), shape(2, 3, 4),
                shape(4, 3, 2), v -> transposeRef(v, shape(2, 3, 4), new int[] {2, 1, 0}),
                g -> transposeRef(g, shape(4, 3, 2), new int[] {2, 1, 0}), false);
        check("SwapAxis defaults", Symbol.create("SwapAxis", "w", a(), null, x), shape(3, 2), shape(3, 2), v -> v, g -> g, false);
        long[] big = shape(300, 260);
        check("SwapAxis large", Symbol.swapaxes("w", x, 0, 1), big, shape(260, 300), v -> transposeRef(v, big, new int[] {1, 0}),
                g -> transposeRef(g, shape(260, 300), new int[] {1, 0}), false);
        addTo(Symbol.swapaxes("w", x, 0, 2), shape(2, 3, 4));
        addTo(Symbol.swapaxes("w", x, 1, 1), shape(2, 3, 4));
        checkDtypes("SwapAxis", Symbol.swapaxes("w", x, 0, 2), shape(2, 3, 4), v -> transposeRef(v, shape(2, 3, 4), new int[] {2, 1, 0}));
        assertInferFails(Symbol.swapaxes("w", x, 0, 3), shapes("data", shape(2, 3, 4)), "SwapAxis", "dim2=3 is out of bounds for array of ndim 3");
        assertInferFails(Symbol.swapaxes("w", x, -4, 0), shapes("data", shape(2, 3, 4)), "dim1=-4 is out of bounds");
    }

    // ---- reverse -------------------------------------------------------------------------------

    @Test
    void reverse() {
        Symbol x = Symbol.variable("data");
        long[] xs = shape(3, 4, 5);
        int[][] axesList = {{0}, {1}, {2}, {-1}, {0, 2}, {0, 1, 2}, {1, 1}, {}};
        for (int[] axes : axesList) {
            boolean[] flip = new boolean[3];
            for (int ax : axes) {
                flip[ax < 0 ? ax + 3 : ax] ^= true;  // named twice: reversed twice
            }
            check("reverse " + Arrays.toString(axes), Symbol.reverse("r", x, axes), xs, xs, v -> reverseRef(v, xs, flip),
                    g -> reverseRef(g, xs, flip), axes.length == 2 && axes[0] != axes[1]);
        }
        boolean[] f01 = {true, true};
        long[] big = shape(70, 1100);
        check("reverse large", Symbol.flip("r", x, 0, 1), big, big, v -> reverseRef(v, big, f01), g -> reverseRef(g, big, f01), false);
        check("flip alias", Symbol.create("flip", "r", a("axis", "(1,)"), null, x), shape(2, 3), shape(2, 3),
                v -> reverseRef(v, shape(2, 3), new boolean[] {false, true}),
                g -> reverseRef(g, shape(2, 3), new boolean[] {false, true}), false);
        addTo(Symbol.reverse("r", x, 0, 2), xs);
        addTo(Symbol.reverse("r", x, 1), big);
        checkDtypes("reverse", Symbol.reverse("r", x, 0, 2), xs, v -> reverseRef(v, xs, new boolean[] {true, false, true}));
        assertInferFails(Symbol.reverse("r", x, 3), shapes("data", xs), "reverse", "axis 3 is out of range for input shape (3,4,5)");
        assertInferFails(Symbol.reverse("r", x, -4), shapes("data", xs), "axis -4 is out of range");
        try (NDScope scope = NDScope.open()) {
            assertThrowsMessage(() -> NDArray.invoke("reverse", Map.of(), NDArray.create(new double[] {1, 2}, 2)), "axis");
        }
    }

    // ---- depth_to_space / space_to_depth -------------------------------------------------------

    @Test
    void depthToSpaceAndBack() {
        Symbol x = Symbol.variable("data");
        for (int b : new int[] {1, 2, 3}) {
            long[] deep = shape(2, 2L * b * b, 3, 2);
            long[] flat = shape(2, 2, 3L * b, 2L * b);
            check("depth_to_space b=" + b, Symbol.depthToSpace("d", x, b), deep, flat, v -> d2sRef(v, deep, b),
                    g -> s2dRef(g, flat, b), b == 2);
            check("space_to_depth b=" + b, Symbol.spaceToDepth("s", x, b), flat, deep, v -> s2dRef(v, flat, b),
                    g -> d2sRef(g, deep, b), b == 2);
        }
        // the two are inverses
        long[] s = shape(1, 8, 2, 3);
        double[] v = randomValues(shapes("data", s)).get("data");
        assertArrayEquals(v, forward(Symbol.spaceToDepth("s", Symbol.depthToSpace("d", x, 2), 2), shapes("data", s),
                Map.of("data", v), DType.FLOAT64).v(0));
        long[] big = shape(2, 16, 48, 48);  // 73,728 elements
        check("depth_to_space large", Symbol.depthToSpace("d", x, 2), big, shape(2, 4, 96, 96), w -> d2sRef(w, big, 2),
                g -> s2dRef(g, shape(2, 4, 96, 96), 2), false);
        addTo(Symbol.depthToSpace("d", x, 2), shape(2, 8, 3, 2));
        addTo(Symbol.spaceToDepth("s", x, 2), shape(2, 2, 4, 6));
        checkDtypes("depth_to_space", Symbol.depthToSpace("d", x, 2), shape(1, 8, 2, 3), w -> d2sRef(w, shape(1, 8, 2, 3), 2));
        checkDtypes("space_to_depth", Symbol.spaceToDepth("s", x, 2), shape(1, 2, 4, 6), w -> s2dRef(w, shape(1, 2, 4, 6), 2));
        assertInferFails(Symbol.depthToSpace("d", x, 2), shapes("data", shape(1, 6, 2, 2)), "depth_to_space",
                "Dimension:1(depth dimension) should be a multiple of 'block^2'", "block_size=2");
        assertInferFails(Symbol.spaceToDepth("s", x, 2), shapes("data", shape(1, 6, 3, 2)), "space_to_depth",
                "Dimension:2(1st space dimension) should be a multiple of 'block'");
        assertInferFails(Symbol.spaceToDepth("s", x, 2), shapes("data", shape(1, 6, 2, 3)), "Dimension:3(2nd space dimension)");
        assertInferFails(Symbol.depthToSpace("d", x, 2), shapes("data", shape(4, 2, 2)), "requires exactly 4D tensor");
        assertInferFails(Symbol.spaceToDepth("s", x, 0), shapes("data", shape(1, 4, 2, 2)), "block_size must be a positive integer value");
        assertInferFails(Symbol.depthToSpace("d", x, -2), shapes("data", shape(1, 4, 2, 2)), "block_size must be a positive integer value");
    }

    @Test
    void ndarrayMethods() {
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[] {1, 2, 3, 4, 5, 6}, 1, 2, 3);
            assertArrayEquals(shape(2, 3), a.squeeze().shape().dims());
            assertArrayEquals(shape(2, 3), a.squeeze(0).shape().dims());
            assertArrayEquals(new double[] {1, 4, 2, 5, 3, 6}, a.swapaxes(1, 2).toDoubleArray());
            assertArrayEquals(new double[] {3, 2, 1, 6, 5, 4}, a.flip(-1).toDoubleArray());
            assertArrayEquals(shape(4, 2, 3), a.broadcastTo(4, 0, 0).shape().dims());
        }
    }
}
