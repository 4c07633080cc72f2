package dev.kiln.ops.conv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.function.Executable;

/** Helpers shared by the Convolution / Deconvolution tests: attrs, random inputs, the MXNet oracle, errors. */
final class ConvTesting {
    private ConvTesting() {}

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

    static int size(long[] sh) {
        long n = 1;
        for (long d : sh) {
            n *= d;
        }
        return (int) n;
    }

    /** Uniform values in [lo, hi), exactly representable in float32. */
    static double[] rand(int n, double lo, double hi, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return v;
    }

    static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    /**
     * Runs {@code op} imperatively in Kiln and in MXNet 1.9.1 on the same float32 inputs; asserts
     * the output shape and values agree to {@code tol} (relative above 1). Returns the max error.
     */
    static double checkAgainstMxnet(String op, Map<String, String> attrs, long[]... shapes) {
        return checkAgainstMxnet(op, attrs, attrs, shapes);
    }

    /** As above, MXNet running with {@code mxAttrs} (an equivalent spelling of {@code attrs}). */
    static double checkAgainstMxnet(String op, Map<String, String> attrs, Map<String, String> mxAttrs, long[]... shapes) {
        MxOracle.assumeAvailable();
        Random rng = new Random(attrs.hashCode() * 31L + java.util.Arrays.deepHashCode(shapes));
        float[][] in = new float[shapes.length][];
        for (int i = 0; i < in.length; i++) {
            in[i] = toFloat(rand(size(shapes[i]), -1, 1, rng.nextLong()));
        }
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            NDArray[] kIn = new NDArray[in.length];
            ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[in.length];
            for (int i = 0; i < in.length; i++) {
                kIn[i] = NDArray.create(in[i], shapes[i]);
                mIn[i] = MxOracle.create(m, in[i], shapes[i]);
            }
            NDList mOut;
            try {
                mOut = MxOracle.invoke(m, op, mxAttrs, mIn);
            } catch (RuntimeException e) {
                fail("MXNet rejects the case itself: " + e.getMessage(), e);
                return 0;
            }
            List<NDArray> kOut = NDArray.invoke(op, attrs, kIn);
            assertEquals(1, kOut.size());
            assertArrayEquals(mOut.get(0).getShape().getShape(), kOut.get(0).shape().dims(), "output shape");
            float[] mv = mOut.get(0).toFloatArray();
            float[] kv = kOut.get(0).toFloatArray();
            double max = 0;
            for (int i = 0; i < mv.length; i++) {
                double err = Math.abs((double) mv[i] - kv[i]) / Math.max(1.0, Math.abs(mv[i]));
                if (!(err <= 1e-4)) {
                    fail(String.format(Locale.ROOT, "%s %s: element %d kiln %s mxnet %s (err %.3e)", op, attrs, i, kv[i],
                            mv[i], err));
                }
                max = Math.max(max, err);
            }
            return max;
        }
    }

    /** Binds with the given shapes in float32 and runs a forward pass (to provoke bind/inference errors). */
    static void bindAndRun(Symbol sym, Map<String, long[]> shapes) {
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String k : shapes.keySet()) {
            types.put(k, DType.FLOAT32);
        }
        for (String arg : sym.listArguments()) {
            reqs.put(arg, GradReq.NULL);
        }
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, new Executor.Options().optSeed(1))) {
            ex.forward(false);
        }
    }

    /** Asserts a KilnException / IllegalArgumentException whose message contains every fragment. */
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
