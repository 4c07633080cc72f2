package dev.kiln.ops.pool;

import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/** Helpers shared by the pool-family tests: the MXNet 1.9.1 forward oracle and error checks. */
final class PoolTesting {
    private PoolTesting() {}

    /** Relative tolerance (absolute below 1) of the forward comparison against MXNet. */
    static final double TOL = 1e-4;

    static float[] random(Random rng, long[] shape, double lo, double hi) {
        return OpTesting.randFloat(rng, shape, lo, hi);
    }

    /**
     * Runs {@code op} in Kiln and in MXNet 1.9.1 on the same random float32 inputs in [lo, hi)
     * and asserts equal output shapes and values within {@link #TOL}. Returns the number of
     * elements compared.
     */
    static int oracle(String op, Map<String, String> attrs, double lo, double hi, long[]... shapes) {
        MxOracle.assumeAvailable();
        Random rng = new Random(op.hashCode() * 31L + attrs.hashCode() * 17L + Arrays.deepHashCode(shapes));
        float[][] in = new float[shapes.length][];
        for (int i = 0; i < in.length; i++) {
            in[i] = random(rng, shapes[i], lo, hi);
        }
        String what = op + " " + attrs + " " + Arrays.deepToString(shapes);
        return MxCompare.forward(op, attrs, attrs, in, shapes, TOL, what, true).elements();
    }

    /**
     * Gradients of every input of {@code op} in Kiln (executor, float32, head gradient h) and in
     * MXNet 1.9.1 (autograd on {@code elemwise_mul(op(x), h)}) on the same random inputs in
     * [lo, hi); asserts they agree within {@link #TOL}.
     */
    static void oracleGrad(String op, Map<String, String> attrs, double lo, double hi, long[]... shapes) {
        oracleGrad(op, attrs, lo, hi, 0, shapes);
    }

    /** Like {@link #oracleGrad(String, Map, double, double, long[]...)}; step > 0 rounds the inputs to multiples of step (ties). */
    static void oracleGrad(String op, Map<String, String> attrs, double lo, double hi, double step, long[]... shapes) {
        MxOracle.assumeAvailable();
        Random rng = new Random(op.hashCode() * 37L + attrs.hashCode() * 13L + Arrays.deepHashCode(shapes));
        List<double[]> in = new ArrayList<>();
        for (long[] shape : shapes) {
            float[] v = random(rng, shape, lo, hi);
            if (step > 0) {
                for (int j = 0; j < v.length; j++) {
                    v[j] = (float) (Math.floor(v[j] / step) * step);
                }
            }
            in.add(OpTesting.toDouble(v));
        }
        long[] oshape = outShape(op, attrs, shapes);
        List<double[]> head = List.of(OpTesting.toDouble(random(rng, oshape, -1, 1)));
        String what = op + " " + attrs + " " + Arrays.deepToString(shapes) + " gradient";
        MxCompare.Run mx = MxCompare.mxnet(op, attrs, List.of(shapes), in, null, head, null, 1);
        Symbol[] vars = new Symbol[in.size()];
        Map<String, long[]> shapeMap = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        Map<String, double[]> values = new LinkedHashMap<>();
        for (int i = 0; i < vars.length; i++) {
            vars[i] = Symbol.variable("x" + i);
            shapeMap.put("x" + i, shapes[i]);
            types.put("x" + i, DType.FLOAT32);
            reqs.put("x" + i, GradReq.WRITE);
            values.put("x" + i, in.get(i));
        }
        Symbol sym = Symbol.create(op, "op", attrs, null, vars);
        MxCompare.Run k = MxCompare.kiln(sym, shapeMap, types, reqs, values, true, head, 1, new Executor.Options());
        for (int i = 0; i < vars.length; i++) {
            double[] kv = k.grads().get(i);
            double[] mv = mx.grads().get(i);
            assertEquals(mv.length, kv.length, what + ": size of input " + i);
            for (int j = 0; j < mv.length; j++) {
                double err = Math.abs(mv[j] - kv[j]) / Math.max(1.0, Math.abs(mv[j]));
                if (!(err <= TOL)) {
                    fail(String.format(Locale.ROOT, "%s: input %d element %d: kiln %s, mxnet %s (err %.3e)", what, i, j, kv[j],
                            mv[j], err));
                }
            }
        }
    }

    static int oracle(String op, Map<String, String> attrs, long[]... shapes) {
        return oracle(op, attrs, -2, 2, shapes);
    }

    /** Kiln forward in float64 of one op on the given inputs; returns the first output. */
    static double[] invoke64(String op, Map<String, String> attrs, double[][] values, long[]... shapes) {
        try (NDScope scope = NDScope.open()) {
            NDArray[] in = new NDArray[values.length];
            for (int i = 0; i < in.length; i++) {
                in[i] = NDArray.create(values[i], shapes[i]);
            }
            return NDArray.invoke(op, attrs, in).get(0).toDoubleArray();
        }
    }

    /** Shape of the first output of a Kiln call on float32 zeros of the given shapes. */
    static long[] outShape(String op, Map<String, String> attrs, long[]... shapes) {
        try (NDScope scope = NDScope.open()) {
            NDArray[] in = new NDArray[shapes.length];
            for (int i = 0; i < in.length; i++) {
                in[i] = NDArray.create(new float[size(shapes[i])], shapes[i]);
            }
            return NDArray.invoke(op, attrs, in).get(0).shape().dims();
        }
    }

    /** Asserts a Kiln call of {@code op} on float32 zeros of the given shapes fails with every fragment. */
    static String assertInvokeFails(String op, Map<String, String> attrs, long[][] shapes, String... fragments) {
        return assertThrowsMessage(() -> outShape(op, attrs, shapes), fragments);
    }
}
