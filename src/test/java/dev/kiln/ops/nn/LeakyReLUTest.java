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
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.DoubleUnaryOperator;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** LeakyReLU: leaky, elu, selu, gelu, prelu, rrelu. */
@ExtendWith(NoLeaks.class)
class LeakyReLUTest {
    static final double SELU_ALPHA = 1.6732632423543772848170429916717;
    static final double SELU_LAMBDA = 1.0507009873554804934193349852946;

    /** erf by its everywhere-convergent positive series: 2/sqrt(pi) e^{-x^2} sum 2^n x^{2n+1} / (2n+1)!!. */
    static double erf(double x) {
        double ax = Math.abs(x);
        double term = ax, sum = ax;
        for (int n = 1; n < 400 && term > 1e-18 * sum; n++) {
            term *= 2 * ax * ax / (2 * n + 1);
            sum += term;
        }
        double r = 2 / Math.sqrt(Math.PI) * Math.exp(-ax * ax) * sum;
        return x < 0 ? -r : r;
    }

    static double phi(double x) {
        return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    }

    static double bigPhi(double x) {
        return 0.5 * (1 + erf(x / Math.sqrt(2)));
    }

    static DoubleUnaryOperator ref(String act, double slope) {
        switch (act) {
            case "leaky": return x -> x > 0 ? x : slope * x;
            case "elu": return x -> x > 0 ? x : slope * (Math.exp(x) - 1);
            case "selu": return x -> SELU_LAMBDA * (x > 0 ? x : SELU_ALPHA * (Math.exp(x) - 1));
            case "gelu": return x -> x * bigPhi(x);
            default: throw new IllegalArgumentException(act);
        }
    }

    static DoubleUnaryOperator dref(String act, double slope) {
        switch (act) {
            case "leaky": return x -> x > 0 ? 1 : slope;
            case "elu": return x -> x > 0 ? 1 : slope * Math.exp(x);
            case "selu": return x -> SELU_LAMBDA * (x > 0 ? 1 : SELU_ALPHA * Math.exp(x));
            case "gelu": return x -> bigPhi(x) + x * phi(x);
            default: throw new IllegalArgumentException(act);
        }
    }

    private static final long[] SHAPE = shape(2, 3, 5);

    @Test
    void referenceErfIsAccurate() {
        assertEquals(0.8427007929497149, erf(1), 1e-15);
        assertEquals(-0.9953222650189527, erf(-2), 1e-15);
        assertEquals(0.0112834155558496, erf(0.01), 1e-16);
    }

    @ParameterizedTest
    @CsvSource({"leaky,0.25", "leaky,0", "leaky,-0.5", "leaky,1.5", "elu,0.25", "elu,1", "elu,-0.7", "selu,0.25",
            "gelu,0.25"})
    void forwardMatchesReference(String act, double slope) {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), act, slope);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", SHAPE, rand(30, -3, 3, 1e-3, 1));
        double[] expected = NnTesting.map(in.get("data"), ref(act, slope));
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(s, in, t), t, act + " slope " + slope);
        }
    }

    @Test
    void defaultSlopeIsQuarter() {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), "leaky");
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", shape(2), new double[] {-2, 3});
        assertArrayEquals(new double[] {-0.5, 3}, NnTesting.forward(s, in, DType.FLOAT64));
        Symbol d = Symbol.builder("LeakyReLU").name("d").input(Symbol.variable("data")).build();
        assertArrayEquals(new double[] {-0.5, 3}, NnTesting.forward(d, in, DType.FLOAT64));
    }

    @ParameterizedTest
    @CsvSource({"leaky,0.25", "leaky,0", "leaky,-0.5", "elu,0.25", "elu,1", "elu,-0.7", "selu,0.25", "gelu,0.25"})
    void numericGradient(String act, double slope) {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), act, slope);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", shape(2, 3, 4), rand(24, -3, 3, 0.1, 2));
        GradCheck.check(s, in, List.of("data"), 1e-6, 1e-6, 1e-9);
    }

    @ParameterizedTest
    @CsvSource({"leaky,0.25", "leaky,0", "leaky,-0.5", "elu,0.25", "elu,-0.7", "selu,0.25", "gelu,0.25"})
    void backwardMatchesAnalyticDerivative(String act, double slope) {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), act, slope);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", SHAPE, rand(30, -3, 3, 1e-3, 3));
        double[] dy = rand(30, -1, 1, 4);
        double[] x = in.get("data");
        double[] expected = new double[30];
        for (int i = 0; i < 30; i++) {
            expected[i] = dy[i] * dref(act, slope).applyAsDouble(x[i]);
        }
        for (DType t : NnTesting.FLOAT_TYPES) {
            try (Executor ex = NnTesting.bind(s, in, Map.of("data", SHAPE), t, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, dy);
                assertClose(expected, ex.gradDict().get("data").toDoubleArray(), t, act + " dx");
            }
        }
    }

    // ---- prelu -------------------------------------------------------------------------------

    static double[] preluRef(double[] x, double[] g, long[] s) {
        int c = s.length >= 2 ? (int) s[1] : 1;
        int inner = 1;
        for (int i = 2; i < s.length; i++) {
            inner *= (int) s[i];
        }
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double gi = g.length == 1 ? g[0] : g[(i / inner) % c];
            y[i] = x[i] > 0 ? x[i] : gi * x[i];
        }
        return y;
    }

    private static GradCheck.Inputs preluInputs(long[] ds, long[] gs) {
        return new GradCheck.Inputs()
                .put("data", ds, rand(size(ds), -2, 2, 0.05, 5))
                .put("lr_gamma", gs, rand(size(gs), 0.1, 0.9, 6));
    }

    @ParameterizedTest
    @CsvSource({"'2,3,2,2','3'", "'2,3,4','1'", "'4,3','3'", "'5','1'"})
    void preluForward(String ds, String gs) {
        long[] d = parse(ds), g = parse(gs);
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), "prelu");
        assertEquals(List.of("data", "lr_gamma"), s.listArguments());
        GradCheck.Inputs in = preluInputs(d, g);
        double[] expected = preluRef(in.get("data"), in.get("lr_gamma"), d);
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(s, in, t), t, "prelu " + ds);
        }
    }

    @ParameterizedTest
    @CsvSource({"'2,3,2,2','3'", "'2,3,4','1'", "'4,3','3'"})
    void preluGradient(String ds, String gs) {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), "prelu");
        GradCheck.check(s, preluInputs(parse(ds), parse(gs)), List.of("data", "lr_gamma"), 1e-6, 1e-6, 1e-9);
    }

    @Test
    void largeTensorsUseTheThreadedPath() {
        long[] ds = shape(50, 8, 100);
        int n = size(ds);
        double[] dy = rand(n, -1, 1, 31);
        for (String gs : new String[] {"8", "1"}) {
            long[] g = parse(gs);
            GradCheck.Inputs in = preluInputs(ds, g);
            double[] x = in.get("data"), gamma = in.get("lr_gamma");
            double[] dx = new double[n], dg = new double[(int) g[0]];
            for (int i = 0; i < n; i++) {
                int c = (i / 100) % 8;
                double gi = gamma.length == 1 ? gamma[0] : gamma[c];
                dx[i] = x[i] > 0 ? dy[i] : gi * dy[i];
                if (x[i] <= 0) {
                    dg[gamma.length == 1 ? 0 : c] += x[i] * dy[i];
                }
            }
            Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), "prelu");
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("data", ds);
            shapes.put("lr_gamma", g);
            try (Executor ex = NnTesting.bind(s, in, shapes, DType.FLOAT64, Set.of(), Set.of("data", "lr_gamma"))) {
                NnTesting.forwardBackward(ex, dy);
                assertClose(preluRef(x, gamma, ds), ex.outputs().get(0).toDoubleArray(), DType.FLOAT64, "y");
                assertClose(dx, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "dx");
                GradCheck.assertClose(dg, ex.gradDict().get("lr_gamma").toDoubleArray(), 1e-10, 1e-10, "dgamma");
            }
        }
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", ds, rand(n, -3, 3, 1e-3, 32));
        for (String act : new String[] {"leaky", "elu", "selu", "gelu"}) {
            for (double slope : new double[] {0.3, -0.4}) {
                Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), act, slope);
                double[] x = in.get("data");
                double[] expected = new double[n];
                for (int i = 0; i < n; i++) {
                    expected[i] = dy[i] * dref(act, slope).applyAsDouble(x[i]);
                }
                try (Executor ex = NnTesting.bind(s, in, Map.of("data", ds), DType.FLOAT64, Set.of(), Set.of("data"))) {
                    NnTesting.forwardBackward(ex, dy);
                    assertClose(NnTesting.map(x, ref(act, slope)), ex.outputs().get(0).toDoubleArray(), DType.FLOAT64,
                            act + " y");
                    assertClose(expected, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, act + " dx");
                }
            }
        }
    }

    @Test
    void preluOnInternalTensor() {
        // B = prelu(A * 1.5) reads A * 1.5 in its backward, so its forward must not run in place
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.leakyReLU("lr", a.mul(1.5), "prelu");
        GradCheck.Inputs in = new GradCheck.Inputs().put("a", shape(2, 3, 4), rand(24, -2, 2, 0.05, 33))
                .put("lr_gamma", shape(3), rand(3, 0.1, 0.9, 34));
        GradCheck.check(Symbol.group(b, b.mul(2.0)), in, List.of("a", "lr_gamma"), 1e-6, 1e-6, 1e-9);
    }

    @Test
    void preluGammaInferredPerChannel() {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), "prelu");
        assertArrayEquals(shape(3), s.inferShape(Map.of("data", shape(2, 3, 4))).argShapes().get(1));
    }

    @Test
    void preluGradReqAddAccumulatesGamma() {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), "prelu");
        long[] ds = shape(2, 3, 4), gs = shape(3);
        GradCheck.Inputs in = preluInputs(ds, gs);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", ds);
        shapes.put("lr_gamma", gs);
        double[] dy = rand(24, -1, 1, 8);
        Map<String, double[]> once = new LinkedHashMap<>();
        Set<String> all = Set.of("data", "lr_gamma");
        try (Executor ex = NnTesting.bind(s, in, shapes, DType.FLOAT64, Set.of(), all)) {
            NnTesting.forwardBackward(ex, dy);
            for (String a : all) {
                once.put(a, ex.gradDict().get(a).toDoubleArray());
            }
        }
        try (Executor ex = NnTesting.bind(s, in, shapes, DType.FLOAT64, all, Set.of())) {
            NnTesting.forwardBackward(ex, dy);
            NnTesting.forwardBackward(ex, dy);
            for (String a : all) {
                assertClose(NnTesting.scale(once.get(a), 2), ex.gradDict().get(a).toDoubleArray(), DType.FLOAT64, a);
            }
        }
    }

    @Test
    void preluGammaOfWrongShapeIsRejected() {
        Symbol s = Symbol.leakyReLU("lr", Symbol.variable("data"), "prelu");
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", shape(2, 3, 4));
        shapes.put("lr_gamma", shape(4));
        assertThrowsMessage(() -> NnTesting.bindAndClose(s, shapes), "lr_gamma", "(4,)", "(3,)");
    }

    // ---- errors ------------------------------------------------------------------------------

    // ---- rrelu ---------------------------------------------------------------------------------

    @Test
    void rreluInferenceMatchesMxnet() {
        // at inference (and imperatively) the slope is (lower_bound + upper_bound) / 2, in float as MXNet
        dev.kiln.mxnet.MxOracle.assumeAvailable();
        float[] x = new float[60];
        java.util.Random r = new java.util.Random(9);
        for (int i = 0; i < x.length; i++) {
            x[i] = (r.nextInt(64) - 32) / 8f;
        }
        for (Map<String, String> attrs : List.of(Map.of("act_type", "rrelu"),
                Map.of("act_type", "rrelu", "lower_bound", "0.1", "upper_bound", "0.3"),
                Map.of("act_type", "rrelu", "lower_bound", "0.3", "upper_bound", "0.3"))) {
            try (dev.kiln.ndarray.NDScope scope = dev.kiln.ndarray.NDScope.open();
                    ai.djl.mxnet.engine.MxNDManager m = dev.kiln.mxnet.MxOracle.newManager()) {
                dev.kiln.ndarray.NDArray kx = dev.kiln.ndarray.NDArray.create(x, 3, 4, 5);
                List<dev.kiln.ndarray.NDArray> k = dev.kiln.ndarray.NDArray.invoke("LeakyReLU", attrs, kx);
                ai.djl.ndarray.NDList mx = dev.kiln.mxnet.MxOracle.invoke(m, "LeakyReLU", attrs,
                        dev.kiln.mxnet.MxOracle.create(m, x, 3, 4, 5));
                assertEquals(2, k.size(), "output and mask, as MXNet");
                assertEquals(mx.size(), k.size(), "output and mask, as MXNet");
                assertArrayEquals(mx.get(0).toFloatArray(), k.get(0).toFloatArray(), 0f, attrs.toString());
                // the mask holds the slope used (MXNet leaves it unwritten at inference)
                float slope = ((float) Double.parseDouble(attrs.getOrDefault("lower_bound", "0.125"))
                        + (float) Double.parseDouble(attrs.getOrDefault("upper_bound", "0.334"))) / 2f;
                for (float v : k.get(1).toFloatArray()) {
                    assertEquals(slope, v, 0f, "mask");
                }
            }
        }
    }

    @Test
    void rreluTrainingDrawsSlopesBetweenTheBoundsAndItsGradientUsesThem() {
        Symbol both = Symbol.create("LeakyReLU", "lr", Map.of("act_type", "rrelu", "lower_bound", "0.2", "upper_bound", "0.6"), null,
                Symbol.variable("data"));
        assertEquals(List.of("lr_output", "lr_mask"), both.listOutputs(), "output and mask, as MXNet");
        Symbol s = both.get(0);
        int n = 4000;
        double[] x = new double[n];
        double[] dy = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = (i % 2 == 0 ? 1 : -1) * (0.5 + (i % 13) / 10.0);
            dy[i] = ((i % 7) - 3) / 4.0;
        }
        double[][] first = new double[2][];
        for (int run = 0; run < 2; run++) {  // the same executor seed draws the same slopes
            try (Executor ex = NnTesting.bind(s, Map.of("data", shape(40, 100)), DType.FLOAT64, a -> dev.kiln.executor.GradReq.WRITE, 21)) {
                ex.argDict().get("data").set(x);
                NnTesting.forwardBackward(ex, dy);
                double[] y = ex.outputs().get(0).toDoubleArray(), dx = ex.gradDict().get("data").toDoubleArray();
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    if (x[i] > 0) {
                        assertEquals(x[i], y[i], 0, "positive input passes");
                        assertEquals(dy[i], dx[i], 0, "positive input's gradient");
                        continue;
                    }
                    double slope = y[i] / x[i];
                    assertTrue(slope >= 0.2 - 1e-12 && slope < 0.6 + 1e-12, "slope " + slope);
                    assertEquals(dy[i] * slope, dx[i], 1e-12, "gradient at " + i + " uses the drawn slope");
                    sum += slope;
                }
                assertEquals(0.4, sum / (n / 2.0), 0.01, "mean slope");
                ex.forward(true);
                assertFalse(java.util.Arrays.equals(y, ex.outputs().get(0).toDoubleArray()), "a second pass draws again");
                ex.forward(false);
                double[] inf = ex.outputs().get(0).toDoubleArray();
                for (int i = 0; i < n; i++) {
                    assertEquals(x[i] > 0 ? x[i] : x[i] * (double) ((0.2f + 0.6f) / 2f), inf[i], 1e-15, "inference at " + i);
                }
                first[run] = y;
            }
        }
        assertArrayEquals(first[0], first[1], 0, "seeded executors draw the same slopes");
    }

    @Test
    void rreluWithNegativeBoundsReadsTheData() {
        // slopes below 0 flip the sign of y, so the gradient's sign test reads x (as leaky with a negative slope)
        Symbol s = Symbol.create("LeakyReLU", "lr", Map.of("act_type", "rrelu", "lower_bound", "-0.5", "upper_bound", "-0.1"), null,
                Symbol.variable("data")).get(0);
        double[] x = {-1, 2, -3, 4};
        try (Executor ex = NnTesting.bind(s, Map.of("data", shape(4)), DType.FLOAT64, a -> dev.kiln.executor.GradReq.WRITE, 3)) {
            ex.argDict().get("data").set(x);
            NnTesting.forwardBackward(ex, new double[] {1, 1, 1, 1});
            double[] y = ex.outputs().get(0).toDoubleArray(), dx = ex.gradDict().get("data").toDoubleArray();
            assertEquals(1, dx[1], 0);
            assertEquals(1, dx[3], 0);
            assertEquals(y[0] / x[0], dx[0], 1e-15);
            assertEquals(y[2] / x[2], dx[2], 1e-15);
            assertTrue(y[0] > 0 && y[2] > 0, "negative slopes make negative inputs positive");
        }
    }

    @Test
    void unknownActTypeIsRejected() {
        assertThrowsMessage(() -> Symbol.leakyReLU("lr", Symbol.variable("data"), "swish"), "act_type", "swish");
    }

    // ---- aliasing ----------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({"leaky,0.25", "leaky,-0.5", "elu,0.5", "elu,-0.7", "selu,0.25", "gelu,0.25"})
    void chainOnInternalTensors(String act, double slope) {
        // B = f(A * 1.5); C = f(B); D = B * 2: the in-place forward of C must not clobber B, and
        // the backward (which reads y or x depending on the slope) must see the right tensors
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.leakyReLU("b", a.mul(1.5), act, slope);
        Symbol c = Symbol.leakyReLU("c", b, act, slope);
        Symbol g = Symbol.group(c, b.mul(2.0));
        GradCheck.Inputs in = new GradCheck.Inputs().put("a", shape(3, 4), rand(12, -2, 2, 0.1, 9));
        DoubleUnaryOperator f = ref(act, slope);
        double[] bv = NnTesting.map(in.get("a"), v -> f.applyAsDouble(1.5 * v));
        List<double[]> out = GradCheck.forward(g, in, DType.FLOAT64, true);
        assertClose(NnTesting.map(bv, f), out.get(0), DType.FLOAT64, "C");
        assertClose(NnTesting.scale(bv, 2), out.get(1), DType.FLOAT64, "D");
        // keep |B| away from the kink too
        boolean nearKink = false;
        for (double v : bv) {
            nearKink |= Math.abs(v) < 1e-3;
        }
        if (!nearKink) {
            GradCheck.check(g, in, List.of("a"), 1e-6, 1e-6, 1e-9);
        }
    }

    private static long[] parse(String s) {
        String[] p = s.split(",");
        long[] d = new long[p.length];
        for (int i = 0; i < p.length; i++) {
            d[i] = Long.parseLong(p[i].trim());
        }
        return d;
    }
}
