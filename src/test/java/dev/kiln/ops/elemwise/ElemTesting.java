package dev.kiln.ops.elemwise;

import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.unravel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.ExecTesting.Out;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;

/**
 * Shared helpers of the elementwise / broadcast / scalar / reduction / optimizer op tests:
 * float32-exact random inputs, binding with explicit values, plain-Java reference kernels
 * (row-major index arithmetic, written independently of the native code), dtype-aware
 * comparisons, gradients with grad_req write/add and error checks. Every executor and array
 * created here is closed here.
 */
final class ElemTesting {
    private ElemTesting() {}

    static final DType[] BOTH = {DType.FLOAT64, DType.FLOAT32};

    /** An odd element count above 100k: OpenMP chunks, SIMD bodies and loop tails all run. */
    static final int LARGE = 100_003;

    static long[] shape(long... d) {
        return d;
    }

    /**
     * Uniform values in [lo, hi) that are exactly representable in float32 (a float32 run and
     * the float64 reference see the same inputs), skipping |x| < minAbs.
     */
    static double[] rand(int n, double lo, double hi, double minAbs, long seed) {
        return OpTesting.rand(n, lo, hi, minAbs, seed);
    }

    static double[] rand(long[] shape, double lo, double hi, long seed) {
        return rand(size(shape), lo, hi, 0, seed);
    }

    static double[] map(double[] x, DoubleUnaryOperator f) {
        double[] o = new double[x.length];
        for (int i = 0; i < o.length; i++) {
            o[i] = f.applyAsDouble(x[i]);
        }
        return o;
    }

    static double[] zip(double[] a, double[] b, DoubleBinaryOperator f) {
        double[] o = new double[a.length];
        for (int i = 0; i < o.length; i++) {
            o[i] = f.applyAsDouble(a[i], b[i]);
        }
        return o;
    }

    static double[] scale(double[] a, double s) {
        return map(a, x -> x * s);
    }

    /** A value as the kernel sees a parameter/scalar of the given dtype. */
    static double asType(double v, DType t) {
        return t == DType.FLOAT32 ? (double) (float) v : v;
    }

    static double sumAbs(double[] v) {
        double s = 0;
        for (double x : v) {
            s += Math.abs(x);
        }
        return s;
    }

    static Map<String, double[]> values(Object... kv) {
        Map<String, double[]> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], (double[]) kv[i + 1]);
        }
        return m;
    }

    // ---- comparisons --------------------------------------------------------------------------

    static double rtol(DType t) {
        return t == DType.FLOAT64 ? 1e-12 : 1e-6;
    }

    /**
     * |expected - actual| <= rtol * (|expected| + absScale), rtol = 1e-12 (float64) / 1e-6
     * (float32); NaN must match NaN and infinities must match exactly.
     */
    static void assertValues(double[] expected, double[] actual, DType t, double absScale, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double r = rtol(t);
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            if (Double.isNaN(e) || Double.isInfinite(e)) {
                if (!(Double.isNaN(e) ? Double.isNaN(a) : e == a)) {
                    fail(what + " " + t + "[" + i + "]: expected " + e + ", got " + a);
                }
                continue;
            }
            double tol = r * (Math.abs(e) + absScale);
            if (!(Math.abs(e - a) <= tol)) {
                fail(what + " " + t + "[" + i + "]: expected " + e + ", got " + a + " (tolerance " + tol + ")");
            }
        }
    }

    /** {@link #assertValues} with a small absolute floor (1e-2 * rtol). */
    static void assertValues(double[] expected, double[] actual, DType t, String what) {
        assertValues(expected, actual, t, 1e-2, what);
    }

    static void assertShape(long[] expected, long[] actual, String what) {
        assertArrayEquals(expected, actual, what + ": shape " + Arrays.toString(actual) + ", expected "
                + Arrays.toString(expected));
    }

    /** Shape inference and binding must both fail with a KilnException containing every fragment. */
    static KilnException assertInferFails(Symbol sym, Map<String, long[]> shapes, String... fragments) {
        return ExecTesting.assertInferFails(sym, shapes, fragments);
    }

    // ---- running graphs -----------------------------------------------------------------------

    static Executor bind(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type,
            Map<String, GradReq> reqs, Executor.Options opt) {
        return ExecTesting.bind(sym, shapes, values, type, reqs, opt);
    }

    static Out outputs(Executor ex) {
        return ExecTesting.outputs(ex);
    }

    /** Binds without gradients, runs an inference forward and returns every output. */
    static Out forward(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type) {
        return forward(sym, shapes, values, type, null);
    }

    static Out forward(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type,
            Executor.Options opt) {
        return ExecTesting.forward(sym, shapes, values, type, opt);
    }

    /**
     * Gradients (by name) after a training forward and {@code calls} backward passes with the
     * given head gradients, every argument in {@code wrt} bound with {@code req}.
     */
    static Map<String, double[]> grads(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values,
            List<String> wrt, GradReq req, int calls, DType type, List<double[]> heads) {
        return ExecTesting.grads(sym, shapes, values, wrt, req, calls, type, (k, s) -> heads.get(k), null);
    }

    /** Random float32-exact head gradients for every output of a bind with these shapes. */
    static List<double[]> heads(Symbol sym, Map<String, long[]> shapes, long seed) {
        List<double[]> hs = new ArrayList<>();
        for (long[] s : sym.inferShape(shapes).outShapes()) {
            hs.add(rand(s, -1, 1, seed++));
        }
        return hs;
    }

    /** grad_req=add over two backward calls gives exactly twice the grad_req=write gradient (both dtypes). */
    static void assertAddAccumulates(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values,
            List<String> wrt) {
        List<double[]> hs = heads(sym, shapes, 99);
        for (DType t : BOTH) {
            Map<String, double[]> once = grads(sym, shapes, values, wrt, GradReq.WRITE, 1, t, hs);
            Map<String, double[]> twice = grads(sym, shapes, values, wrt, GradReq.ADD, 2, t, hs);
            double total = 0;
            for (String x : wrt) {
                double[] e = scale(once.get(x), 2);
                total += sumAbs(e);
                assertValues(e, twice.get(x), t, "grad_req=add, 2 backward calls, d/d" + x);
            }
            // (one input of a max/min may legitimately get no gradient at all, but not every input)
            assertTrue(total > 0, "every gradient is all zeros; the check would be vacuous");
        }
    }

    /** Float64 numeric gradient check (central differences, eps 1e-6) for every named input. */
    static void gradCheck(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, List<String> wrt) {
        GradCheck.Inputs in = new GradCheck.Inputs();
        shapes.forEach((k, s) -> in.put(k, s, values.get(k)));
        GradCheck.check(sym, in, wrt, 1e-6, 1e-6, 1e-8);
    }

    // ---- reference kernels --------------------------------------------------------------------

    /** NumPy broadcast shape (right-aligned, dims equal or 1). */
    static long[] broadcastShape(long[] a, long[] b) {
        int n = Math.max(a.length, b.length);
        long[] o = new long[n];
        for (int i = 0; i < n; i++) {
            int ia = i - (n - a.length);
            int ib = i - (n - b.length);
            long da = ia >= 0 ? a[ia] : 1;
            long db = ib >= 0 ? b[ib] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException(Arrays.toString(a) + " vs " + Arrays.toString(b));
            }
            o[i] = da == 1 ? db : da;
        }
        return o;
    }

    /** Flat index into an operand of shape {@code s} (right-aligned) for output multi-index {@code idx}. */
    static int operandIndex(int[] idx, long[] s) {
        int off = idx.length - s.length;
        int f = 0;
        for (int i = 0; i < s.length; i++) {
            f = f * (int) s[i] + (s[i] == 1 ? 0 : idx[off + i]);
        }
        return f;
    }

    /** out[i] = f(a[bcast i], b[bcast i]) over the broadcast shape. */
    static double[] broadcastRef(long[] sa, double[] a, long[] sb, double[] b, DoubleBinaryOperator f) {
        long[] so = broadcastShape(sa, sb);
        double[] o = new double[size(so)];
        for (int i = 0; i < o.length; i++) {
            int[] idx = unravel(i, so);
            o[i] = f.applyAsDouble(a[operandIndex(idx, sa)], b[operandIndex(idx, sb)]);
        }
        return o;
    }

    /** Sums an array of the broadcast shape {@code so} down to an operand of shape {@code s}. */
    static double[] sumTo(double[] full, long[] so, long[] s) {
        double[] o = new double[size(s)];
        for (int i = 0; i < full.length; i++) {
            o[operandIndex(unravel(i, so), s)] += full[i];
        }
        return o;
    }

    /** Which axes a reduction touches; axes == null (or empty) means all axes, exclude then ignored. */
    static boolean[] reducedAxes(int ndim, int[] axes, boolean exclude) {
        boolean[] red = new boolean[ndim];
        if (axes == null || axes.length == 0) {
            Arrays.fill(red, true);
            return red;
        }
        Arrays.fill(red, exclude);
        for (int a : axes) {
            red[a < 0 ? a + ndim : a] = !exclude;
        }
        return red;
    }

    static long[] reducedShape(long[] s, boolean[] red, boolean keepdims) {
        List<Long> d = new ArrayList<>();
        for (int i = 0; i < s.length; i++) {
            if (keepdims) {
                d.add(red[i] ? 1L : s[i]);
            } else if (!red[i]) {
                d.add(s[i]);
            }
        }
        if (d.isEmpty()) {
            d.add(1L);
        }
        return d.stream().mapToLong(Long::longValue).toArray();
    }

    /** The input's shape with 1 on reduced axes (the element order of the output). */
    static long[] keptShape(long[] s, boolean[] red) {
        return reducedShape(s, red, true);
    }

    /** sum / mean / max / min over the reduced axes, sequentially in double. */
    static double[] reduceRef(String kind, double[] x, long[] s, boolean[] red) {
        long[] k = keptShape(s, red);
        int m = size(k);
        double[] acc = new double[m];
        int[] cnt = new int[m];
        boolean ext = kind.equals("max") || kind.equals("min");
        if (ext) {
            Arrays.fill(acc, kind.equals("max") ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY);
        }
        for (int i = 0; i < x.length; i++) {
            int j = operandIndex(unravel(i, s), k);
            cnt[j]++;
            switch (kind) {
                case "max" -> acc[j] = Double.isNaN(acc[j]) || Double.isNaN(x[i]) ? Double.NaN : Math.max(acc[j], x[i]);
                case "min" -> acc[j] = Double.isNaN(acc[j]) || Double.isNaN(x[i]) ? Double.NaN : Math.min(acc[j], x[i]);
                default -> acc[j] += x[i];
            }
        }
        if (kind.equals("mean")) {
            for (int j = 0; j < m; j++) {
                acc[j] /= cnt[j];
            }
        }
        return acc;
    }

    /** |x| summed per output: the absolute scale of each sum (for tolerances). */
    static double maxReduceScale(double[] x, long[] s, boolean[] red) {
        double[] a = reduceRef("sum", map(x, Math::abs), s, red);
        double m = 0;
        for (double v : a) {
            m = Math.max(m, v);
        }
        return m;
    }
}
