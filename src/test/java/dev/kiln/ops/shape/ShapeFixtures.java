package dev.kiln.ops.shape;

import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.unravel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.ExecTesting.Out;
import dev.kiln.testutil.GradCheck;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Shared helpers of the shape/internal op tests: binding with explicit values, plain-Java
 * reference kernels (row-major index arithmetic, written independently of the native code),
 * gradient and grad_req=add checks. Every executor and array created here is closed here.
 */
final class ShapeFixtures {
    private ShapeFixtures() {}

    static final DType[] BOTH = {DType.FLOAT64, DType.FLOAT32};

    static long[] shape(long... d) {
        return d;
    }

    static double[] random(long seed, long[] shape) {
        Random r = new Random(seed);
        double[] v = new double[size(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = Math.round((r.nextDouble() * 4 - 2) * 64) / 64.0;  // exact in float32
        }
        return v;
    }

    static double[] ramp(int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = i;
        }
        return v;
    }

    /** Random values (fixed seeds) for every named shape. */
    static Map<String, double[]> randomValues(Map<String, long[]> shapes) {
        Map<String, double[]> m = new LinkedHashMap<>();
        long seed = 11;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            m.put(e.getKey(), random(seed++, e.getValue()));
        }
        return m;
    }

    static GradCheck.Inputs inputs(Map<String, long[]> shapes, Map<String, double[]> values) {
        GradCheck.Inputs in = new GradCheck.Inputs();
        shapes.forEach((k, s) -> in.put(k, s, values.get(k)));
        return in;
    }

    static Executor bind(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type,
            Map<String, GradReq> reqs, Executor.Options opt) {
        return ExecTesting.bind(sym, shapes, values, type, reqs, opt);
    }

    /** Binds (no gradients), runs an inference forward and returns every output. */
    static Out forward(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type) {
        return ExecTesting.forward(sym, shapes, values, type, null);
    }

    static Out outputs(Executor ex) {
        return ExecTesting.outputs(ex);
    }

    /** Asserts output 0 has the given shape and values (exact for float64, 1e-6 relative for float32). */
    static void assertOut(Out out, int i, long[] expectedShape, double[] expected, DType type, String what) {
        assertArrayEquals(expectedShape, out.s(i), what + ": shape " + Arrays.toString(out.s(i)));
        double tol = type == DType.FLOAT64 ? 1e-12 : 1e-5;
        GradCheck.assertClose(expected, out.v(i), tol, tol, what + " " + type);
    }

    /**
     * Gradients of f = sum_k <heads_k, out_k> after one backward with the given request
     * ({@code WRITE}) or two backward calls ({@code ADD}, gradient arrays start at zero).
     */
    static Map<String, double[]> grads(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values,
            List<String> wrt, GradReq req, int backwardCalls, DType type) {
        return ExecTesting.grads(sym, shapes, values, wrt, req, backwardCalls, type, ShapeFixtures::head, null);
    }

    /** The head gradients {@link #grads} uses for an output of the given shape (output index k). */
    static double[] head(int k, long[] outShape) {
        return random(99 + k, outShape);
    }

    /** grad_req=add over two backward calls gives exactly twice the grad_req=write gradient. */
    static void assertAddAccumulates(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, List<String> wrt) {
        for (DType t : BOTH) {
            Map<String, double[]> once = grads(sym, shapes, values, wrt, GradReq.WRITE, 1, t);
            Map<String, double[]> twice = grads(sym, shapes, values, wrt, GradReq.ADD, 2, t);
            for (String x : wrt) {
                double[] e = once.get(x).clone();
                boolean nonzero = false;
                for (int i = 0; i < e.length; i++) {
                    nonzero |= e[i] != 0;
                    e[i] *= 2;
                }
                assertTrue(nonzero, "gradient of " + x + " is all zeros; the check would be vacuous");
                GradCheck.assertClose(e, twice.get(x), 1e-6, 1e-6, "grad_req=add, 2 backward calls, d/d" + x + " " + t);
            }
        }
    }

    /** Float64 numeric gradient check for every named input. */
    static void gradCheck(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, List<String> wrt) {
        GradCheck.check(sym, inputs(shapes, values), wrt, 1e-5, 1e-6, 1e-8);
    }

    /** Shape inference (and binding) must fail with a KilnException whose message contains every fragment. */
    static KilnException assertInferFails(Symbol sym, Map<String, long[]> shapes, String... fragments) {
        return ExecTesting.assertInferFails(sym, shapes, fragments);
    }

    // ---- reference kernels -----------------------------------------------------------------

    static long[] strides(long[] shape) {
        long[] s = new long[shape.length];
        long acc = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            s[i] = acc;
            acc *= shape[i];
        }
        return s;
    }

    static long ravel(int[] idx, long[] shape) {
        long f = 0;
        for (int i = 0; i < shape.length; i++) {
            f = f * shape[i] + idx[i];
        }
        return f;
    }

    /** y[j_0..j_{n-1}] = x[i] with i[perm[k]] = j[k]. */
    static double[] transposeRef(double[] x, long[] shape, int[] perm) {
        long[] os = new long[shape.length];
        for (int k = 0; k < perm.length; k++) {
            os[k] = shape[perm[k]];
        }
        double[] y = new double[x.length];
        for (int f = 0; f < y.length; f++) {
            int[] j = unravel(f, os);
            int[] i = new int[shape.length];
            for (int k = 0; k < perm.length; k++) {
                i[perm[k]] = j[k];
            }
            y[f] = x[(int) ravel(i, shape)];
        }
        return y;
    }

    static long[] permute(long[] shape, int[] perm) {
        long[] o = new long[perm.length];
        for (int k = 0; k < perm.length; k++) {
            o[k] = shape[perm[k]];
        }
        return o;
    }

    /** Concatenation of arrays along {@code axis} by multi-index. */
    static double[] concatRef(List<double[]> xs, List<long[]> shapes, int axis) {
        long[] out = shapes.get(0).clone();
        out[axis] = 0;
        for (long[] s : shapes) {
            out[axis] += s[axis];
        }
        double[] y = new double[size(out)];
        int off = 0;
        for (int p = 0; p < xs.size(); p++) {
            long[] s = shapes.get(p);
            double[] x = xs.get(p);
            for (int f = 0; f < x.length; f++) {
                int[] i = unravel(f, s);
                i[axis] += off;
                y[(int) ravel(i, out)] = x[f];
            }
            off += (int) s[axis];
        }
        return y;
    }

    /** Piece {@code p} of {@code n} equal pieces of x along axis (by multi-index). */
    static double[] splitRef(double[] x, long[] shape, int axis, int n, int p) {
        long[] ps = shape.clone();
        ps[axis] = shape[axis] / n;
        double[] y = new double[size(ps)];
        for (int f = 0; f < y.length; f++) {
            int[] i = unravel(f, ps);
            i[axis] += (int) (p * ps[axis]);
            y[f] = x[(int) ravel(i, shape)];
        }
        return y;
    }
}
