package dev.kiln.init;

import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static dev.kiln.init.InitTesting.maxAbs;
import static dev.kiln.init.InitTesting.mean;
import static dev.kiln.init.InitTesting.run;
import static dev.kiln.init.InitTesting.std;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Uniform, Normal, Xavier, MSRAPrelu: bounds, statistics, error cases and seeding. */
@ExtendWith(NoLeaks.class)
class RandomInitTest {

    /** Uniform(a, b) samples: all within the bound, the extremes reached, variance bound²/3. */
    private static void assertUniform(double[] v, double bound, String what) {
        assertTrue(maxAbs(v) <= bound * (1 + 1e-6), what + ": max |x| " + maxAbs(v) + " > " + bound);
        assertTrue(maxAbs(v) >= bound * 0.99, what + ": max |x| " + maxAbs(v) + " far below " + bound);
        assertEquals(0, mean(v), bound * 0.03, what + " mean");
        assertEquals(bound / Math.sqrt(3), std(v), bound / Math.sqrt(3) * 0.03, what + " std");
    }

    private static void assertNormal(double[] v, double sigma, String what) {
        assertEquals(0, mean(v), sigma * 0.03, what + " mean");
        assertEquals(sigma, std(v), sigma * 0.03, what + " std");
        // a normal sample of this size has some values beyond 3 sigma, a uniform one none
        assertTrue(maxAbs(v) > 3 * sigma, what + ": max |x| " + maxAbs(v));
    }

    @Test
    void uniformStaysWithinItsScale() {
        assertUniform(run(new Uniform(), "fc_weight", 100, 100), 0.07, "Uniform()");
        assertUniform(run(new Uniform(0.5), "fc_weight", 50, 200), 0.5, "Uniform(0.5)");
        assertTrue(InitTesting.all(run(new Uniform(0), "fc_weight", 3, 3), 0.0));
        assertThrows(IllegalArgumentException.class, () -> new Uniform(-1));
    }

    @Test
    void normalHasTheGivenStandardDeviation() {
        assertNormal(run(new Normal(), "fc_weight", 100, 100), 0.01, "Normal()");
        assertNormal(run(new Normal(2.5), "conv_weight", 20, 10, 5, 5), 2.5, "Normal(2.5)");
        assertThrows(IllegalArgumentException.class, () -> new Normal(Double.NaN));
    }

    @ParameterizedTest(name = "{0} {1} magnitude {2}")
    @CsvSource({
        "uniform, avg, 3", "uniform, in, 3", "uniform, out, 3", "uniform, avg, 2.34",
        "gaussian, avg, 3", "gaussian, in, 2", "gaussian, out, 3",
    })
    void xavierScaleFollowsTheFanFormulas(String rnd, String factor, double magnitude) {
        // (out, in, kh, kw) = (64, 32, 3, 3): hw = 9, fan_in = 288, fan_out = 576
        long[] shape = {64, 32, 3, 3};
        double fanIn = 32 * 9;
        double fanOut = 64 * 9;
        double f = switch (factor) {
            case "avg" -> (fanIn + fanOut) / 2;
            case "in" -> fanIn;
            default -> fanOut;
        };
        double scale = Math.sqrt(magnitude / f);
        Xavier x = new Xavier(rnd, factor, magnitude);
        assertEquals(scale, x.scale("w", shape), 1e-15);
        double[] v = run(x, "conv_weight", shape);
        if (rnd.equals("uniform")) {
            assertUniform(v, scale, "Xavier " + factor);
        } else {
            assertNormal(v, scale, "Xavier " + factor);
        }
        // 2-D: hw = 1
        assertEquals(Math.sqrt(3.0 / ((784 + 128) / 2.0)), new Xavier().scale("fc_weight", new long[] {128, 784}), 1e-15);
    }

    @Test
    void xavierErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> run(new Xavier(), "fc_weight", 10));
        assertEquals("Xavier initializer cannot be applied to vector fc_weight. It requires at least 2D.", e.getMessage());
        // through an __init__ attribute the same check runs on any name
        e = assertThrows(IllegalArgumentException.class, () -> run(new Zero(), "b", java.util.Map.of("__init__", "[\"xavier\", {}]"), 4));
        assertTrue(e.getMessage().contains("cannot be applied to vector b"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Xavier("normal", "avg", 3));
        assertTrue(e.getMessage().startsWith("Unknown random type"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Xavier("uniform", "fan", 3));
        assertTrue(e.getMessage().startsWith("Incorrect factor type"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Initializer.create("[\"xavier\", {\"factor_type\": \"bad\"}]"));
        assertTrue(e.getMessage().startsWith("Incorrect factor type"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Xavier("uniform", "avg", -1));
        assertThrows(IllegalArgumentException.class, () -> new MSRAPrelu("bad", 0.25));
    }

    @Test
    void msraPreluIsGaussianXavierWithMagnitudeTwoOverOnePlusSlopeSquared() {
        MSRAPrelu m = new MSRAPrelu();
        assertEquals("gaussian", m.rndType());
        assertEquals(2 / (1 + 0.0625), m.magnitude(), 1e-15);
        MSRAPrelu in0 = new MSRAPrelu("in", 0);
        assertEquals(2.0, in0.magnitude(), 0);
        long[] shape = {100, 50, 3, 3};
        double scale = Math.sqrt(2.0 / (50 * 9));
        assertEquals(scale, in0.scale("w", shape), 1e-15);
        assertNormal(run(in0, "conv_weight", shape), scale, "MSRAPrelu(in, 0)");
        double avg = Math.sqrt((2 / 1.0625) / ((50 * 9 + 100 * 9) / 2.0));
        assertNormal(run(m, "conv_weight", shape), avg, "MSRAPrelu()");
    }

    @Test
    void seedMakesRandomInitialisationReproducible() {
        Initializer[] inits = {new Uniform(), new Normal(1), new Xavier("gaussian", "in", 2), new MSRAPrelu(), new Orthogonal()};
        for (Initializer init : inits) {
            Initializer.seed(42);
            double[] a = run(init, "fc_weight", 20, 30);
            double[] b = run(init, "fc_weight", 20, 30);
            Initializer.seed(42);
            double[] c = run(init, "fc_weight", 20, 30);
            double[] d = run(init, "fc_weight", 20, 30);
            Initializer.seed(43);
            double[] e = run(init, "fc_weight", 20, 30);
            assertArrayEquals(a, c, init.toString());
            assertArrayEquals(b, d, init.toString());
            assertFalse(java.util.Arrays.equals(a, b), init + ": successive draws repeat");
            assertFalse(java.util.Arrays.equals(a, e), init + ": another seed repeats");
        }
        // the quantized-weight rule is seeded too
        Initializer.seed(7);
        double[] q1 = run(new Zero(), "w_weight_quantize", 64);
        Initializer.seed(7);
        assertArrayEquals(q1, run(new Zero(), "w_weight_quantize", 64));
    }

    @Test
    void randomValuesReachArraysOfOtherDtypes() {
        try (NDArray d = NDArray.zeros(new dev.kiln.ndarray.Shape(100, 100), dev.kiln.ndarray.DType.FLOAT64, dev.kiln.ndarray.Context.cpu())) {
            new Normal(3).init(new InitDesc("w_weight"), d);
            assertEquals(3, std(d.toDoubleArray()), 0.1);
        }
    }
}
