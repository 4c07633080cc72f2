package dev.kiln.ops.nn;

import static dev.kiln.ops.nn.NnTesting.assertClose;
import static dev.kiln.ops.nn.NnTesting.shape;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Dropout: identity at inference, inverted Bernoulli mask in training, seeded, mask-times-ograd backward. */
@ExtendWith(NoLeaks.class)
class DropoutTest {

    private static final long[] BIG = shape(200, 500);

    /** Runs forward (and backward with head dy if not null); returns {y, dx}. */
    private static double[][] run(Symbol sym, long[] s, double[] x, DType t, boolean train, long seed, double[] dy) {
        try (Executor ex = NnTesting.bind(sym, Map.of("data", s), t, a -> dy == null ? GradReq.NULL : GradReq.WRITE, seed)) {
            ex.argDict().get("data").set(x);
            ex.forward(train);
            double[] y = ex.outputs().get(0).toDoubleArray();
            if (dy == null) {
                return new double[][] {y, null};
            }
            try (NDArray h = NDArray.zeros(ex.outputs().get(0).shape(), t, ex.context())) {
                h.set(dy);
                ex.backward(h);
            }
            return new double[][] {y, ex.gradDict().get("data").toDoubleArray()};
        }
    }

    /** mask = y / x; asserts every value is 0 or 1 / (1 - p); returns the mask. */
    private static double[] mask(double[] x, double[] y, double p, DType t) {
        double keep = 1 / (1 - p);
        double tol = t == DType.FLOAT64 ? 1e-12 : 1e-6;
        double[] m = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            m[i] = y[i] / x[i];
            if (y[i] != 0 && Math.abs(m[i] - keep) > tol * keep) {
                throw new AssertionError("mask[" + i + "] = " + m[i] + ", expected 0 or " + keep);
            }
        }
        return m;
    }

    private static double zeroFraction(double[] y) {
        int z = 0;
        for (double v : y) {
            z += v == 0 ? 1 : 0;
        }
        return (double) z / y.length;
    }

    @Test
    void inferenceIsIdentity() {
        Symbol d = Symbol.dropout("drop", Symbol.variable("data"), 0.5);
        assertEquals(List.of("drop_output"), d.listOutputs());
        assertEquals(1, d.numOutputs());
        double[] x = rand(60, -2, 2, 1);
        double[] dy = rand(60, -1, 1, 2);
        for (DType t : NnTesting.FLOAT_TYPES) {
            double[][] r = run(d, shape(3, 20), x, t, false, 7, dy);
            assertArrayEquals(x, r[0], t.toString());
            assertArrayEquals(dy, r[1], t.toString());
        }
    }

    @Test
    void trainingMaskIsInvertedBernoulli() {
        double[] x = rand(size(BIG), 0.5, 1.5, 3);
        for (double p : new double[] {0.3, 0.75}) {
            for (DType t : NnTesting.FLOAT_TYPES) {
                double[] y = run(Symbol.dropout("drop", Symbol.variable("data"), p), BIG, x, t, true, 11, null)[0];
                mask(x, y, p, t);
                double frac = zeroFraction(y);
                // n = 100000: sd of the fraction <= 0.0016; 0.01 is over 6 sd
                assertEquals(p, frac, 0.01, "fraction of zeros for p = " + p + " " + t);
            }
        }
    }

    @Test
    void sameSeedSameMaskDifferentSeedOrCallDifferentMask() {
        Symbol d = Symbol.dropout("drop", Symbol.variable("data"), 0.5);
        long[] s = shape(50, 40);
        double[] x = rand(size(s), 0.5, 1.5, 4);
        double[] a = run(d, s, x, DType.FLOAT32, true, 42, null)[0];
        double[] b = run(d, s, x, DType.FLOAT32, true, 42, null)[0];
        double[] c = run(d, s, x, DType.FLOAT32, true, 43, null)[0];
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, c), "a different seed should give a different mask");
        // the generator advances between calls on one executor
        try (Executor ex = NnTesting.bind(d, Map.of("data", s), DType.FLOAT32, n -> GradReq.NULL, 42)) {
            ex.argDict().get("data").set(x);
            ex.forward(true);
            double[] first = ex.outputs().get(0).toDoubleArray();
            assertArrayEquals(a, first);
            ex.forward(true);
            assertFalse(Arrays.equals(first, ex.outputs().get(0).toDoubleArray()), "second call should draw a new mask");
        }
    }

    @Test
    void gradientIsOgradTimesMask() {
        long[] s = shape(30, 40);
        double[] x = rand(size(s), 0.5, 1.5, 5);
        double[] dy = rand(size(s), -1, 1, 6);
        double p = 0.4;
        for (DType t : NnTesting.FLOAT_TYPES) {
            double[][] r = run(Symbol.dropout("drop", Symbol.variable("data"), p), s, x, t, true, 3, dy);
            double[] m = mask(x, r[0], p, t);
            double[] expected = new double[m.length];
            for (int i = 0; i < m.length; i++) {
                expected[i] = r[0][i] == 0 ? 0 : dy[i] / (1 - p);
            }
            assertClose(expected, r[1], t, "dx");
        }
    }

    @Test
    void gradReqAddAccumulatesOverTwoBackwardCalls() {
        long[] s = shape(10, 10);
        double[] x = rand(100, 0.5, 1.5, 7);
        double[] dy = rand(100, -1, 1, 8);
        Symbol d = Symbol.dropout("drop", Symbol.variable("data"), 0.5);
        try (Executor ex = NnTesting.bind(d, Map.of("data", s), DType.FLOAT64, n -> GradReq.ADD, 5);
                NDArray h = NDArray.create(dy, s)) {
            ex.argDict().get("data").set(x);
            ex.forward(true);
            double[] y = ex.outputs().get(0).toDoubleArray();
            ex.backward(h);
            ex.backward(h);
            double[] expected = new double[100];
            for (int i = 0; i < 100; i++) {
                expected[i] = 2 * dy[i] * y[i] / x[i];
            }
            assertClose(expected, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "2 dy mask");
        }
    }

    @Test
    void modeAlwaysDropsAtInference() {
        double[] x = rand(size(BIG), 0.5, 1.5, 9);
        double[] y = run(Symbol.dropout("drop", Symbol.variable("data"), 0.5, "always"), BIG, x, DType.FLOAT32, false, 1,
                null)[0];
        mask(x, y, 0.5, DType.FLOAT32);
        assertEquals(0.5, zeroFraction(y), 0.01);
    }

    @Test
    void pZeroIsIdentityAndPOneDropsEverything() {
        long[] s = shape(8, 9);
        double[] x = rand(72, 0.5, 1.5, 10);
        double[] dy = rand(72, -1, 1, 11);
        double[][] r0 = run(Symbol.dropout("drop", Symbol.variable("data"), 0.0), s, x, DType.FLOAT64, true, 1, dy);
        assertArrayEquals(x, r0[0]);
        assertArrayEquals(dy, r0[1]);
        double[][] r1 = run(Symbol.dropout("drop", Symbol.variable("data"), 1.0), s, x, DType.FLOAT64, true, 1, dy);
        for (int i = 0; i < 72; i++) {
            assertTrue(r1[0][i] == 0 && r1[1][i] == 0, "p = 1 at " + i);
        }
    }

    @Test
    void defaultPIsHalf() {
        double[] x = rand(size(BIG), 0.5, 1.5, 12);
        double[] y = run(Symbol.dropout("drop", Symbol.variable("data")), BIG, x, DType.FLOAT32, true, 2, null)[0];
        mask(x, y, 0.5, DType.FLOAT32);
        assertEquals(0.5, zeroFraction(y), 0.01);
    }

    @Test
    void variationalAxesShareTheMask() {
        Symbol d = Symbol.builder("Dropout").name("drop").input(Symbol.variable("data")).param("p", 0.5)
                .param("axes", new int[] {1}).build();
        long[] s = shape(4, 6, 25);
        double[] x = rand(size(s), 0.5, 1.5, 13);
        double[] dy = rand(size(s), -1, 1, 14);
        double[][] r = run(d, s, x, DType.FLOAT64, true, 3, dy);
        double[] m = mask(x, r[0], 0.5, DType.FLOAT64);
        for (int n = 0; n < 4; n++) {
            for (int k = 0; k < 25; k++) {
                double m0 = m[(n * 6) * 25 + k];
                for (int c = 1; c < 6; c++) {
                    assertEquals(m0, m[(n * 6 + c) * 25 + k], 1e-12, "mask shared along axis 1");
                }
            }
        }
        double frac = zeroFraction(r[0]);
        assertTrue(frac > 0.25 && frac < 0.75, "fraction " + frac);
        double[] expected = new double[m.length];
        for (int i = 0; i < m.length; i++) {
            expected[i] = dy[i] * m[i];
        }
        assertClose(expected, r[1], DType.FLOAT64, "dx");
    }

    @Test
    void inPlaceDropoutDoesNotClobberSharedInput() {
        // B = A * 1.5; C = Dropout(B); D = B * 2: C may run in place only if B is not read later
        Symbol b = Symbol.variable("data").mul(1.5);
        Symbol g = Symbol.group(Symbol.dropout("drop", b, 0.5), b.mul(2.0));
        long[] s = shape(20, 30);
        double[] x = rand(600, 0.5, 1.5, 15);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, x);
        List<double[]> out = GradCheck.forward(g, in, DType.FLOAT64, true);
        assertClose(NnTesting.scale(x, 3), out.get(1), DType.FLOAT64, "D = 3A");
        mask(NnTesting.scale(x, 1.5), out.get(0), 0.5, DType.FLOAT64);
        double frac = zeroFraction(out.get(0));
        assertTrue(frac > 0.4 && frac < 0.6, "fraction " + frac);
    }

    @Test
    void badParametersAreRejected() {
        assertThrowsMessage(() -> Symbol.dropout("drop", Symbol.variable("data"), 1.5), "p", "1.5");
        assertThrowsMessage(() -> Symbol.dropout("drop", Symbol.variable("data"), -0.1), "p");
        assertThrowsMessage(() -> Symbol.dropout("drop", Symbol.variable("data"), 0.5, "sometimes"), "mode", "sometimes");
        Symbol d = Symbol.builder("Dropout").name("drop").input(Symbol.variable("data")).param("axes", new int[] {3}).build();
        assertThrowsMessage(() -> NnTesting.bindAndClose(d, Map.of("data", shape(2, 3, 4))), "axis 3", "(2,3,4)");
    }
}
