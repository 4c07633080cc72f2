package dev.kiln.testutil;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.engine.KilnException;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.function.Executable;

/**
 * Small helpers shared by the operator tests: shapes and attribute maps, seeded float32-exact
 * random inputs, float/double conversions, tolerance and exception-message assertions. Pure Java,
 * no native resources; stateless and thread-safe.
 */
public final class OpTesting {
    private OpTesting() {}

    /** A shape literal: {@code s(2, 3)}. */
    public static long[] s(long... d) {
        return d;
    }

    /** An ordered attribute map from alternating keys and values: {@code a("axis", "1", "eps", "1e-5")}. */
    public static Map<String, String> a(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    /** An ordered map of shapes from alternating names and {@code long[]} shapes. */
    public static Map<String, long[]> shapes(Object... kv) {
        Map<String, long[]> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], (long[]) kv[i + 1]);
        }
        return m;
    }

    /** Number of elements of a shape (the product of its dimensions; 1 for a scalar shape). */
    public static int size(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return (int) n;
    }

    /** Row-major multi-index of flat position {@code flat}. */
    public static int[] unravel(long flat, long[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = (int) (flat % shape[i]);
            flat /= shape[i];
        }
        return idx;
    }

    /**
     * {@code n} values uniform in [lo, hi) from {@code new Random(seed)}, each exactly representable
     * in float32 (so a float32 run and a float64 reference see the same inputs).
     */
    public static double[] rand(int n, double lo, double hi, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return v;
    }

    /** As {@link #rand(int, double, double, long)}, drawing again while |x| < minAbs (away from kinks). */
    public static double[] rand(int n, double lo, double hi, double minAbs, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            double x;
            do {
                x = (float) (lo + (hi - lo) * r.nextDouble());
            } while (Math.abs(x) < minAbs);
            v[i] = x;
        }
        return v;
    }

    /** float32 values uniform in [lo, hi) for a shape, drawn from {@code rng}. */
    public static float[] randFloat(Random rng, long[] shape, double lo, double hi) {
        float[] v = new float[size(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        }
        return v;
    }

    /** Rounds every element to float32. */
    public static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }

    /** Widens every element to float64. */
    public static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    /** |actual - expected| <= tol * max(1, |expected|) elementwise, equal lengths. */
    public static void assertNear(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(expected[i] - actual[i]) / Math.max(1.0, Math.abs(expected[i]));
            if (!(err <= tol)) {
                fail(what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i] + " (err " + err + ")");
            }
        }
    }

    /** {@code msg} is not null and contains every fragment. */
    public static void assertContains(String msg, String... fragments) {
        for (String f : fragments) {
            assertTrue(msg != null && msg.contains(f), "message should contain '" + f + "': " + msg);
        }
    }

    /**
     * Asserts that {@code e} throws a KilnException or IllegalArgumentException whose message
     * contains every fragment; returns the message. Any other throwable, or none, fails.
     */
    public static String assertThrowsMessage(Executable e, String... fragments) {
        try {
            e.execute();
        } catch (KilnException | IllegalArgumentException ex) {
            String msg = String.valueOf(ex.getMessage());
            assertContains(msg, fragments);
            return msg;
        } catch (Throwable t) {
            fail("expected KilnException or IllegalArgumentException, got " + t, t);
        }
        fail("expected an exception containing " + List.of(fragments));
        return null;
    }
}
