package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertAddAccumulates;
import static dev.kiln.ops.shape.ShapeFixtures.assertInferFails;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.forward;
import static dev.kiln.ops.shape.ShapeFixtures.gradCheck;
import static dev.kiln.ops.shape.ShapeFixtures.permute;
import static dev.kiln.ops.shape.ShapeFixtures.randomValues;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.ops.shape.ShapeFixtures.transposeRef;
import static dev.kiln.testutil.OpTesting.shapes;

import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** transpose: every permutation of 2-, 3- and 4-D inputs, the tiled large path, gradients, errors. */
@ExtendWith(NoLeaks.class)
class TransposeTest {

    static List<int[]> permutations(int n) {
        List<int[]> out = new ArrayList<>();
        collect(new int[n], new boolean[n], 0, out);
        return out;
    }

    private static void collect(int[] cur, boolean[] used, int k, List<int[]> out) {
        if (k == cur.length) {
            out.add(cur.clone());
            return;
        }
        for (int i = 0; i < cur.length; i++) {
            if (!used[i]) {
                used[i] = true;
                cur[k] = i;
                collect(cur, used, k + 1, out);
                used[i] = false;
            }
        }
    }

    private static void check(long[] in, int[] perm, boolean defaultAxes) {
        Symbol x = Symbol.variable("data");
        Symbol sym = defaultAxes ? Symbol.transpose("t", x) : Symbol.transpose("t", x, perm);
        Map<String, long[]> s = shapes("data", in);
        Map<String, double[]> v = randomValues(s);
        double[] ref = transposeRef(v.get("data"), in, perm);
        for (DType t : BOTH) {
            assertOut(forward(sym, s, v, t), 0, permute(in, perm), ref, t,
                    "transpose " + Arrays.toString(in) + " axes=" + Arrays.toString(perm));
        }
    }

    @Test
    void everyPermutationUpTo4d() {
        for (int[] p : permutations(2)) {
            check(shape(3, 5), p, false);
        }
        for (int[] p : permutations(3)) {
            check(shape(2, 3, 4), p, false);
            check(shape(3, 1, 5), p, false);  // size-1 axes are dropped by the kernel's simplification
        }
        for (int[] p : permutations(4)) {
            check(shape(2, 3, 4, 5), p, false);
        }
    }

    @Test
    void defaultAxesReverseAndNegativeAxes() {
        check(shape(2, 3, 4), new int[] {2, 1, 0}, true);
        check(shape(7), new int[] {0}, true);
        check(shape(2, 3, 4, 5, 2), new int[] {4, 3, 2, 1, 0}, true);
        // negative axes count from the end: (-1, 0, -2) == (2, 0, 1)
        Symbol sym = Symbol.transpose("t", Symbol.variable("data"), -1, 0, -2);
        Map<String, long[]> s = shapes("data", shape(2, 3, 4));
        Map<String, double[]> v = randomValues(s);
        assertOut(forward(sym, s, v, DType.FLOAT64), 0, shape(4, 2, 3),
                transposeRef(v.get("data"), shape(2, 3, 4), new int[] {2, 0, 1}), DType.FLOAT64, "negative axes");
    }

    @Test
    void largeTiledAndRowPaths() {
        // 2-D tiles with ragged edges (70 x 45), batched tiles, and whole-row copies, above the OpenMP threshold
        check(shape(700, 45), new int[] {1, 0}, false);
        check(shape(6, 70, 90), new int[] {0, 2, 1}, false);
        check(shape(40, 33, 30), new int[] {2, 0, 1}, false);
        check(shape(50, 40, 20), new int[] {1, 0, 2}, false);
        check(shape(2, 40, 30, 20), new int[] {3, 1, 0, 2}, false);
        // grad_req=add through the large tiled and row paths (the backward is a transpose with kAddTo)
        for (int[] p : List.of(new int[] {1, 0}, new int[] {0, 2, 1}, new int[] {1, 0, 2})) {
            long[] in = p.length == 2 ? shape(300, 130) : shape(30, 40, 35);
            Map<String, long[]> s = shapes("data", in);
            assertAddAccumulates(Symbol.transpose("t", Symbol.variable("data"), p), s, randomValues(s), List.of("data"));
        }
    }

    @Test
    void gradientAndAddTo() {
        Map<String, long[]> s = shapes("data", shape(2, 3, 4));
        Map<String, double[]> v = randomValues(s);
        for (int[] p : permutations(3)) {
            Symbol sym = Symbol.transpose("t", Symbol.variable("data"), p);
            gradCheck(sym, s, v, List.of("data"));
        }
        Symbol t = Symbol.transpose("t", Symbol.variable("data"), 1, 2, 0);
        assertAddAccumulates(t, s, v, List.of("data"));
        assertAddAccumulates(Symbol.transpose("t", Symbol.variable("data")), s, v, List.of("data"));
        gradCheck(Symbol.transpose("t", Symbol.variable("data"), -1, 0, -2), s, v, List.of("data"));
        // a permutation that only moves a size-1 axis collapses to a plain (accumulating) copy
        Map<String, long[]> s1 = shapes("data", shape(3, 1, 4));
        Map<String, double[]> v1 = randomValues(s1);
        assertAddAccumulates(Symbol.transpose("t", Symbol.variable("data"), 1, 0, 2), s1, v1, List.of("data"));
        gradCheck(Symbol.transpose("t", Symbol.variable("data"), 1, 0, 2), s1, v1, List.of("data"));
    }

    @Test
    void badAxes() {
        Symbol x = Symbol.variable("data");
        Map<String, long[]> s = shapes("data", shape(2, 3, 4));
        assertInferFails(Symbol.transpose("t", x, 0, 1), s, "transpose", "axes=(0,1)", "2 entries", "(2,3,4)", "3 dims");
        assertInferFails(Symbol.transpose("t", x, 0, 1, 1), s, "axes=(0,1,1) is not a permutation", "(2,3,4)");
        assertInferFails(Symbol.transpose("t", x, 0, 1, 3), s, "axes=(0,1,3) is not a permutation");
        assertInferFails(Symbol.transpose("t", x, 0, 1, -4), s, "is not a permutation");
    }
}
