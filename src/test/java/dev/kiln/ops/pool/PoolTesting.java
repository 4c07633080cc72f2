package dev.kiln.ops.pool;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.engine.Engine;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import dev.kiln.engine.KilnException;
import ai.djl.training.GradientCollector;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.function.Executable;

/** Helpers shared by the pool-family tests: the MXNet 1.9.1 forward oracle and error checks. */
final class PoolTesting {
    private PoolTesting() {}

    /** Relative tolerance (absolute below 1) of the forward comparison against MXNet. */
    static final double TOL = 1e-4;

    static long[] s(long... d) {
        return d;
    }

    static Map<String, String> a(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    static int size(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return (int) n;
    }

    static float[] random(Random rng, long[] shape, double lo, double hi) {
        float[] v = new float[size(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        }
        return v;
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
        int n = 0;
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            NDArray[] kIn = new NDArray[in.length];
            ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[in.length];
            for (int i = 0; i < in.length; i++) {
                kIn[i] = NDArray.create(in[i], shapes[i]);
                mIn[i] = MxOracle.create(m, in[i], shapes[i]);
            }
            NDList mOut;
            try {
                mOut = MxOracle.invoke(m, op, attrs, mIn);
                for (int o = 0; o < mOut.size(); o++) {
                    mOut.get(o).toFloatArray(); // MXNet runs asynchronously: its errors surface here
                }
            } catch (RuntimeException e) {
                // MXNet 1.9.1's MKL-DNN pooling cannot build some 'same'-convention windows
                Assumptions.assumeFalse(String.valueOf(e.getMessage()).contains("could not create a descriptor"),
                        "MXNet 1.9.1 (MKL-DNN) cannot run this case itself: " + what);
                fail("MXNet rejects the case itself: " + what + ": " + e.getMessage(), e);
                return 0;
            }
            List<NDArray> kOut = NDArray.invoke(op, attrs, kIn);
            assertEquals(mOut.size(), kOut.size(), what + ": number of outputs");
            for (int o = 0; o < kOut.size(); o++) {
                assertArrayEquals(mOut.get(o).getShape().getShape(), kOut.get(o).shape().dims(), what + ": shape of output " + o);
                float[] mv = mOut.get(o).toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
                float[] kv = kOut.get(o).toFloatArray();
                for (int i = 0; i < mv.length; i++) {
                    if (Float.isNaN(mv[i]) && Float.isNaN(kv[i])) {
                        continue;
                    }
                    double err = Math.abs((double) mv[i] - kv[i]) / Math.max(1.0, Math.abs(mv[i]));
                    if (!(err <= TOL)) {
                        fail(String.format(Locale.ROOT, "%s: output %d element %d: kiln %s, mxnet %s (err %.3e)", what, o, i,
                                kv[i], mv[i], err));
                    }
                }
                n += mv.length;
            }
        }
        return n;
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
        float[][] in = new float[shapes.length][];
        for (int i = 0; i < in.length; i++) {
            in[i] = random(rng, shapes[i], lo, hi);
            if (step > 0) {
                for (int j = 0; j < in[i].length; j++) {
                    in[i][j] = (float) (Math.floor(in[i][j] / step) * step);
                }
            }
        }
        long[] oshape = outShape(op, attrs, shapes);
        float[] head = random(rng, oshape, -1, 1);
        String what = op + " " + attrs + " " + Arrays.deepToString(shapes) + " gradient";
        float[][] mGrad = new float[in.length][];
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[in.length];
            for (int i = 0; i < in.length; i++) {
                mIn[i] = MxOracle.create(m, in[i], shapes[i]);
                mIn[i].setRequiresGradient(true);
            }
            ai.djl.ndarray.NDArray h = MxOracle.create(m, head, oshape);
            try (GradientCollector gc = Engine.getEngine("MXNet").newGradientCollector()) {
                NDList out = MxOracle.invoke(m, op, attrs, mIn);
                NDList prod = MxOracle.invoke(m, "elemwise_mul", Map.of(), out.get(0), h);
                gc.backward(prod.get(0));
            }
            for (int i = 0; i < in.length; i++) {
                mGrad[i] = mIn[i].getGradient().toFloatArray();
            }
        }
        Symbol[] vars = new Symbol[in.length];
        Map<String, long[]> shapeMap = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (int i = 0; i < in.length; i++) {
            vars[i] = Symbol.variable("x" + i);
            shapeMap.put("x" + i, shapes[i]);
            types.put("x" + i, DType.FLOAT32);
            reqs.put("x" + i, GradReq.WRITE);
        }
        Symbol sym = Symbol.create(op, "op", attrs, null, vars);
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapeMap, types, reqs, new Executor.Options())) {
            for (int i = 0; i < in.length; i++) {
                ex.argDict().get("x" + i).set(in[i]);
            }
            ex.forward(true);
            NDArray out = ex.outputs().get(0);
            try (NDArray hk = NDArray.zeros(out.shape(), out.dtype(), Context.cpu())) {
                hk.set(head);
                ex.backward(hk);
            }
            for (int i = 0; i < in.length; i++) {
                float[] kv = ex.gradDict().get("x" + i).toFloatArray();
                float[] mv = mGrad[i];
                assertEquals(mv.length, kv.length, what + ": size of input " + i);
                for (int j = 0; j < mv.length; j++) {
                    double err = Math.abs((double) mv[j] - kv[j]) / Math.max(1.0, Math.abs(mv[j]));
                    if (!(err <= TOL)) {
                        fail(String.format(Locale.ROOT, "%s: input %d element %d: kiln %s, mxnet %s (err %.3e)", what, i, j, kv[j],
                                mv[j], err));
                    }
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

    /** Asserts KilnException or IllegalArgumentException whose message contains every fragment. */
    static String assertThrowsMessage(Executable e, String... fragments) {
        try {
            e.execute();
        } catch (KilnException | IllegalArgumentException ex) {
            String msg = String.valueOf(ex.getMessage());
            for (String f : fragments) {
                assertTrue(msg.contains(f), "message should contain '" + f + "': " + msg);
            }
            return msg;
        } catch (Throwable t) {
            fail("expected KilnException or IllegalArgumentException, got " + t, t);
        }
        fail("expected an exception containing " + List.of(fragments));
        return null;
    }
}
