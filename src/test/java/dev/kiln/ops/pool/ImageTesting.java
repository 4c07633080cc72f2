package dev.kiln.ops.pool;

import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Helpers of the image pooling / resizing op tests (BilinearResize2D, AdaptiveAvgPooling2D,
 * ROIPooling): one-op symbols, forward and gradients through the executor in float32 and float64,
 * grad_req=add, float64 numeric gradients, and comparisons against MXNet 1.9.1 on given inputs.
 * Every executor and array is closed here.
 */
final class ImageTesting {
    private ImageTesting() {}

    static final DType[] BOTH = {DType.FLOAT64, DType.FLOAT32};

    /** {@code op(inputs...)} named "op", its inputs variables of those names. */
    static Symbol op(String op, Map<String, String> attrs, String... inputs) {
        Symbol[] in = new Symbol[inputs.length];
        for (int i = 0; i < in.length; i++) {
            in[i] = Symbol.variable(inputs[i]);
        }
        return Symbol.create(op, "op", attrs, null, in);
    }

    /** Uniform values in [lo, hi), exact in float32. */
    static double[] rand(long[] shape, double lo, double hi, long seed) {
        return OpTesting.rand(size(shape), lo, hi, seed);
    }

    /** The first output of an inference forward. */
    static double[] forward(Symbol s, Map<String, long[]> shapes, Map<String, double[]> values, DType t) {
        return ExecTesting.forward(s, shapes, values, t, null).v(0);
    }

    /** Gradients of {@code wrt} after {@code calls} backward passes with head {@code head} on the (visible) output. */
    static Map<String, double[]> grads(Symbol s, Map<String, long[]> shapes, Map<String, double[]> values, List<String> wrt,
            GradReq req, int calls, DType t, double[] head) {
        return ExecTesting.grads(s, shapes, values, wrt, req, calls, t, (k, sh) -> head, null);
    }

    /** |e - a| <= rtol * (|e| + 1), rtol 1e-12 (float64) or 1e-5 (float32); NaN matches NaN (inputs are O(1)). */
    static void assertClose(double[] expected, double[] actual, DType t, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        double r = t == DType.FLOAT64 ? 1e-12 : 1e-5;
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i];
            double a = actual[i];
            if (Double.isNaN(e) ? !Double.isNaN(a) : !(Math.abs(e - a) <= r * (Math.abs(e) + 1))) {
                fail(String.format(Locale.ROOT, "%s %s[%d]: expected %s, got %s", what, t, i, e, a));
            }
        }
    }

    /** grad_req=add over two backward calls gives twice the grad_req=write gradient, in both dtypes. */
    static void assertAddAccumulates(Symbol s, Map<String, long[]> shapes, Map<String, double[]> values, List<String> wrt,
            double[] head) {
        for (DType t : BOTH) {
            Map<String, double[]> once = grads(s, shapes, values, wrt, GradReq.WRITE, 1, t, head);
            Map<String, double[]> twice = grads(s, shapes, values, wrt, GradReq.ADD, 2, t, head);
            double total = 0;
            for (String x : wrt) {
                double[] e = once.get(x).clone();
                for (int i = 0; i < e.length; i++) {
                    e[i] *= 2;
                    total += Math.abs(e[i]);
                }
                assertClose(e, twice.get(x), t, "grad_req=add, 2 backward calls, d/d" + x);
            }
            assertTrue(total > 0, "every gradient is zero; the check would be vacuous");
        }
    }

    /** Float64 central-difference gradient check (eps 1e-6) of the inputs in {@code wrt}. */
    static void gradCheck(Symbol s, Map<String, long[]> shapes, Map<String, double[]> values, List<String> wrt) {
        GradCheck.Inputs in = new GradCheck.Inputs();
        shapes.forEach((k, sh) -> in.put(k, sh, values.get(k)));
        GradCheck.check(s, in, wrt, 1e-6, 1e-6, 1e-8);
    }

    /** Forward of {@code op} in Kiln and MXNet 1.9.1 on these float32 inputs: outputs equal within 1e-5. */
    static void oracle(String op, Map<String, String> attrs, double[][] in, long[]... shapes) {
        float[][] f = new float[in.length][];
        for (int i = 0; i < in.length; i++) {
            f[i] = OpTesting.toFloat(in[i]);
        }
        MxCompare.forward(op, attrs, attrs, f, shapes, 1e-5, op + " " + attrs + " " + Arrays.deepToString(shapes), false);
    }

    /**
     * Gradients of the inputs in {@code gradInputs} of {@code op} on these float32 inputs with head
     * gradient {@code head}: Kiln's executor against MXNet 1.9.1's autograd, within 1e-5 (relative
     * above 1).
     */
    static void oracleGrad(String op, Map<String, String> attrs, double[][] in, double[] head, Set<Integer> gradInputs,
            long[]... shapes) {
        MxOracle.assumeAvailable();
        String what = op + " " + attrs + " " + Arrays.deepToString(shapes) + " gradient";
        List<double[]> values = new ArrayList<>();
        for (double[] v : in) {
            values.add(OpTesting.toDouble(OpTesting.toFloat(v)));
        }
        MxCompare.Run mx = MxCompare.mxnet(op, attrs, List.of(shapes), values, null, List.of(head), gradInputs, 1);
        Symbol[] vars = new Symbol[in.length];
        Map<String, long[]> shapeMap = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        Map<String, double[]> vals = new LinkedHashMap<>();
        for (int i = 0; i < vars.length; i++) {
            vars[i] = Symbol.variable("x" + i);
            shapeMap.put("x" + i, shapes[i]);
            types.put("x" + i, DType.FLOAT32);
            reqs.put("x" + i, gradInputs.contains(i) ? GradReq.WRITE : GradReq.NULL);
            vals.put("x" + i, values.get(i));
        }
        Symbol sym = Symbol.create(op, "op", attrs, null, vars);
        MxCompare.Run k = MxCompare.kiln(sym, shapeMap, types, reqs, vals, true, List.of(head), 1, new Executor.Options());
        for (int i : gradInputs) {
            double[] kv = k.grads().get(i);
            double[] mv = mx.grads().get(i);
            assertEquals(mv.length, kv.length, what + ": size of input " + i);
            for (int j = 0; j < mv.length; j++) {
                double err = Math.abs(mv[j] - kv[j]) / Math.max(1.0, Math.abs(mv[j]));
                if (!(err <= 1e-5)) {
                    fail(String.format(Locale.ROOT, "%s: input %d element %d: kiln %s, mxnet %s", what, i, j, kv[j], mv[j]));
                }
            }
        }
    }
}
