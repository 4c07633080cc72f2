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
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.testutil.OpTesting.shapes;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** dot: 1-D, 2-D and N-D operands under every transpose_a / transpose_b combination. */
@ExtendWith(NoLeaks.class)
class DotTest {

    /** Reference dot: out[m, n] = sum_k A(m, k) B(k, n) with A, B read straight from the row-major operands. */
    static final class Ref {
        final long[] outShape;
        final int m;
        final int n;
        final int k;
        final boolean ta;
        final boolean tb;

        Ref(long[] l, long[] r, boolean ta, boolean tb) {
            this.ta = ta;
            this.tb = tb;
            List<Long> free = new ArrayList<>();
            long kl;
            if (l.length == 1) {
                kl = l[0];
            } else if (ta) {
                kl = l[0];
                for (int i = 1; i < l.length; i++) {
                    free.add(l[i]);
                }
            } else {
                kl = l[l.length - 1];
                for (int i = 0; i < l.length - 1; i++) {
                    free.add(l[i]);
                }
            }
            long mm = 1;
            for (long d : free) {
                mm *= d;
            }
            long kr;
            List<Long> rfree = new ArrayList<>();
            if (r.length == 1) {
                kr = r[0];
            } else if (tb) {
                kr = r[r.length - 1];
                for (int i = 0; i < r.length - 1; i++) {
                    rfree.add(r[i]);
                }
            } else {
                kr = r[0];
                for (int i = 1; i < r.length; i++) {
                    rfree.add(r[i]);
                }
            }
            if (kl != kr) {
                throw new IllegalArgumentException("bad test case");
            }
            long nn = 1;
            for (long d : rfree) {
                nn *= d;
            }
            free.addAll(rfree);
            outShape = free.isEmpty() ? new long[] {1} : free.stream().mapToLong(Long::longValue).toArray();
            m = (int) mm;
            n = (int) nn;
            k = (int) kl;
        }

        int a(int i, int kk) {
            return ta ? kk * m + i : i * k + kk;
        }

        int b(int kk, int j) {
            return tb ? j * k + kk : kk * n + j;
        }

        double[] forward(double[] x, double[] y) {
            double[] out = new double[m * n];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int kk = 0; kk < k; kk++) {
                        s += x[a(i, kk)] * y[b(kk, j)];
                    }
                    out[i * n + j] = s;
                }
            }
            return out;
        }

        /** d(sum h*out)/dx and /dy. */
        double[][] backward(double[] x, double[] y, double[] h) {
            double[] dx = new double[x.length];
            double[] dy = new double[y.length];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    for (int kk = 0; kk < k; kk++) {
                        dx[a(i, kk)] += h[i * n + j] * y[b(kk, j)];
                        dy[b(kk, j)] += h[i * n + j] * x[a(i, kk)];
                    }
                }
            }
            return new double[][] {dx, dy};
        }
    }

    /** (lhs, rhs) shape pairs for one transpose combination; M=2..3, K=4, N=5. */
    static List<long[][]> cases(boolean ta, boolean tb) {
        List<long[][]> c = new ArrayList<>();
        long[] l2 = ta ? shape(4, 3) : shape(3, 4);
        long[] r2 = tb ? shape(5, 4) : shape(4, 5);
        long[] l3 = ta ? shape(4, 2, 3) : shape(2, 3, 4);
        long[] r3 = tb ? shape(5, 2, 4) : shape(4, 5, 2);
        long[] v = shape(4);
        if (!ta && !tb) {
            c.add(new long[][] {v, v});  // inner product -> (1,)
        }
        c.add(new long[][] {v, r2});     // vector x matrix
        c.add(new long[][] {l2, v});     // matrix x vector
        c.add(new long[][] {l2, r2});
        c.add(new long[][] {l3, r2});
        c.add(new long[][] {l2, r3});
        c.add(new long[][] {l3, r3});
        c.add(new long[][] {v, r3});
        c.add(new long[][] {l3, v});
        return c;
    }

    private static Symbol dot(boolean ta, boolean tb) {
        return Symbol.dot("dot", Symbol.variable("lhs"), Symbol.variable("rhs"), ta, tb);
    }

    @Test
    void forwardAllTransposeCombinations() {
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (long[][] c : cases(ta, tb)) {
                    Map<String, long[]> s = shapes("lhs", c[0], "rhs", c[1]);
                    Map<String, double[]> v = randomValues(s);
                    Ref ref = new Ref(c[0], c[1], ta, tb);
                    String what = "dot " + Arrays.toString(c[0]) + " x " + Arrays.toString(c[1]) + " ta=" + ta + " tb=" + tb;
                    for (DType t : BOTH) {
                        assertOut(forward(dot(ta, tb), s, v, t), 0, ref.outShape, ref.forward(v.get("lhs"), v.get("rhs")), t,
                                what);
                    }
                }
            }
        }
    }

    @Test
    void knownValues() {
        // [[1,2],[3,4]] . [[5,6],[7,8]] = [[19,22],[43,50]]; transposed lhs: [[26,30],[38,44]]
        Map<String, long[]> s = shapes("lhs", shape(2, 2), "rhs", shape(2, 2));
        Map<String, double[]> v = Map.of("lhs", new double[] {1, 2, 3, 4}, "rhs", new double[] {5, 6, 7, 8});
        for (DType t : BOTH) {
            assertOut(forward(dot(false, false), s, v, t), 0, shape(2, 2), new double[] {19, 22, 43, 50}, t, "2x2");
            assertOut(forward(dot(true, false), s, v, t), 0, shape(2, 2), new double[] {26, 30, 38, 44}, t, "A^T B");
            assertOut(forward(dot(false, true), s, v, t), 0, shape(2, 2), new double[] {17, 23, 39, 53}, t, "A B^T");
            assertOut(forward(dot(true, true), s, v, t), 0, shape(2, 2), new double[] {23, 31, 34, 46}, t, "A^T B^T");
        }
        Map<String, long[]> vs = shapes("lhs", shape(3), "rhs", shape(3));
        Map<String, double[]> vv = Map.of("lhs", new double[] {1, 2, 3}, "rhs", new double[] {4, 5, 6});
        assertOut(forward(dot(false, false), vs, vv, DType.FLOAT32), 0, shape(1), new double[] {32}, DType.FLOAT32, "1-D");
    }

    @Test
    void largerMatrices() {
        // sizes past BLAS blocking: compare with the reference
        Map<String, long[]> s = shapes("lhs", shape(67, 129), "rhs", shape(70, 129));
        Map<String, double[]> v = randomValues(s);
        Ref ref = new Ref(s.get("lhs"), s.get("rhs"), false, true);
        double[] e = ref.forward(v.get("lhs"), v.get("rhs"));
        assertOut(forward(dot(false, true), s, v, DType.FLOAT64), 0, ref.outShape, e, DType.FLOAT64, "67x129 . 129x70");
        ExecTesting.Out o = forward(dot(false, true), s, v, DType.FLOAT32);
        GradCheck.assertClose(e, o.v(0), 1e-5, 1e-4, "float32 67x129 . 129x70");
    }

    @Test
    void gradientAllTransposeCombinations() {
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                for (long[][] c : cases(ta, tb)) {
                    Map<String, long[]> s = shapes("lhs", c[0], "rhs", c[1]);
                    Map<String, double[]> v = randomValues(s);
                    gradCheck(dot(ta, tb), s, v, List.of("lhs", "rhs"));
                    // and against the reference backward with the same head gradient
                    Ref ref = new Ref(c[0], c[1], ta, tb);
                    double[][] e = ref.backward(v.get("lhs"), v.get("rhs"), head(0, ref.outShape));
                    Map<String, double[]> g = grads(dot(ta, tb), s, v, List.of("lhs", "rhs"), GradReq.WRITE, 1, DType.FLOAT64);
                    GradCheck.assertClose(e[0], g.get("lhs"), 1e-12, 1e-12, "d lhs " + Arrays.toString(c[0]) + " ta=" + ta);
                    GradCheck.assertClose(e[1], g.get("rhs"), 1e-12, 1e-12, "d rhs " + Arrays.toString(c[1]) + " tb=" + tb);
                }
            }
        }
    }

    @Test
    void gradReqAddAccumulates() {
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                List<long[][]> cs = cases(ta, tb);
                for (long[][] c : List.of(cs.get(0), cs.get(cs.size() - 3))) {
                    Map<String, long[]> s = shapes("lhs", c[0], "rhs", c[1]);
                    assertAddAccumulates(dot(ta, tb), s, randomValues(s), List.of("lhs", "rhs"));
                }
            }
        }
        Map<String, long[]> s = shapes("lhs", shape(4), "rhs", shape(4));
        assertAddAccumulates(dot(false, false), s, randomValues(s), List.of("lhs", "rhs"));
        // only one operand requires a gradient
        Map<String, long[]> s2 = shapes("lhs", shape(3, 4), "rhs", shape(4, 5));
        assertAddAccumulates(dot(false, false), s2, randomValues(s2), List.of("rhs"));
        assertAddAccumulates(dot(true, true), shapes("lhs", shape(4, 3), "rhs", shape(5, 4)),
                randomValues(shapes("lhs", shape(4, 3), "rhs", shape(5, 4))), List.of("lhs"));
        assertAddAccumulates(dot(false, false), s, randomValues(s), List.of("lhs"));
        assertAddAccumulates(dot(false, false), s, randomValues(s), List.of("rhs"));
    }

    @Test
    void sameArrayOnBothSides() {
        // dot(x, x^T): both operands read the same variable; the gradient is the sum of both paths
        Symbol x = Symbol.variable("lhs");
        Symbol d = Symbol.dot("dot", x, x, false, true);
        Map<String, long[]> s = shapes("lhs", shape(3, 4));
        Map<String, double[]> v = randomValues(s);
        gradCheck(d, s, v, List.of("lhs"));
        assertAddAccumulates(d, s, v, List.of("lhs"));
        Ref ref = new Ref(shape(3, 4), shape(3, 4), false, true);
        assertOut(forward(d, s, v, DType.FLOAT64), 0, shape(3, 3), ref.forward(v.get("lhs"), v.get("lhs")), DType.FLOAT64,
                "x x^T");
    }

    @Test
    void errors() {
        Symbol d = dot(false, false);
        assertInferFails(d, shapes("lhs", shape(2, 3), "rhs", shape(4, 5)), "dot shape error", "(2,3)", "(4,5)",
                "contracted sizes 3 and 4 differ");
        assertInferFails(dot(true, false), shapes("lhs", shape(2, 3), "rhs", shape(3, 5)), "dot shape error",
                "transpose_a=True", "contracted sizes 2 and 3 differ");
        assertInferFails(dot(false, true), shapes("lhs", shape(2, 3, 4), "rhs", shape(4, 5)), "contracted sizes 4 and 5 differ");
        assertInferFails(d, shapes("lhs", shape(3), "rhs", shape(4)), "dot shape error", "(3,)", "(4,)");
        assertInferFails(dot(true, false), shapes("lhs", shape(3), "rhs", shape(3)), "Cannot transpose vectors");
        assertInferFails(dot(false, true), shapes("lhs", shape(3), "rhs", shape(3)), "Cannot transpose vectors");
        Symbol csr = Symbol.create("dot", "d", Map.of("forward_stype", "csr"), null, Symbol.variable("lhs"),
                Symbol.variable("rhs"));
        assertInferFails(csr, shapes("lhs", shape(2, 3), "rhs", shape(3, 2)), "forward_stype='csr' is not supported");
        // the output shape of a 1-D x 1-D product is (1,)
        Map<String, long[]> s = shapes("lhs", shape(5), "rhs", shape(5));
        Map<String, double[]> v = randomValues(s);
        assertOut(forward(d, s, v, DType.FLOAT64), 0, shape(1),
                new Ref(shape(5), shape(5), false, false).forward(v.get("lhs"), v.get("rhs")), DType.FLOAT64, "inner product");
    }
}
