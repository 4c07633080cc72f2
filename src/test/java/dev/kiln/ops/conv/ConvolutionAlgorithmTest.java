package dev.kiln.ops.conv;

import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.toFloat;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.Engine;
import dev.kiln.engine.Engine.ConvAlgorithm;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Winograd F(2x2, 3x3) kernels (forward and data gradient) and the direct AVX-512 convolution
 * kernels (forward and weight gradient, float32) against im2col +
 * GEMM on the same inputs, over shapes that exercise their tails: channel counts not divisible by
 * 4, tap counts not divisible by 4, wide-row tails, padding, several threads, write and add-to.
 * (im2col + GEMM is itself checked against MXNet and by numeric gradients in ConvolutionTest;
 * the forward of the direct kernels is also checked against MXNet here.)
 */
class ConvolutionAlgorithmTest {
    record Case(String name, long[] data, int filters, long[] kernel, long[] pad) {}

    static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        c.add(new Case("lenet conv1", s(8, 1, 28, 28), 20, s(5, 5), s(0, 0)));
        c.add(new Case("odd filters and taps", s(3, 2, 9, 11), 7, s(3, 2), s(0, 0)));
        c.add(new Case("padded", s(2, 3, 7, 6), 5, s(3, 3), s(1, 2)));
        c.add(new Case("one filter 1x1", s(2, 3, 5, 5), 1, s(1, 1), s(0, 0)));
        c.add(new Case("wide image", s(2, 1, 5, 70), 6, s(2, 5), s(0, 0)));
        c.add(new Case("kernel = image", s(2, 2, 4, 4), 3, s(4, 4), s(0, 0)));
        c.add(new Case("1-D", s(3, 2, 40), 9, s(5), s(2)));
        return c;
    }

    @AfterEach
    void restore() {
        Engine.setConvolutionAlgorithm(ConvAlgorithm.AUTO);
    }

    /** Outputs then data, weight and bias gradients of one forward + backward pass. */
    static List<float[]> run(Case cs, ConvAlgorithm algo, GradReq req, int threads) {
        Engine.setConvolutionAlgorithm(algo);
        int old = Engine.numThreads();
        Engine.setNumThreads(threads);
        String k = tuple(cs.kernel()), p = tuple(cs.pad());
        Symbol conv = Symbol.create("Convolution", "c", a("kernel", k, "num_filter", "" + cs.filters(), "pad", p), null,
                Symbol.variable("data"));
        long[] ws = new long[cs.kernel().length + 2];
        ws[0] = cs.filters();
        ws[1] = cs.data()[1];
        System.arraycopy(cs.kernel(), 0, ws, 2, cs.kernel().length);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", cs.data());
        shapes.put("c_weight", ws);
        shapes.put("c_bias", s(cs.filters()));
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String n : shapes.keySet()) {
            types.put(n, DType.FLOAT32);
            reqs.put(n, req);
        }
        try (Executor ex = Executor.simpleBind(conv, Context.cpu(), shapes, types, reqs, new Executor.Options().optSeed(1))) {
            long seed = 7;
            for (String n : shapes.keySet()) {
                ex.argDict().get(n).set(toFloat(rand(size(shapes.get(n)), -1, 1, seed++)));
                if (req == GradReq.ADD) {
                    ex.gradDict().get(n).set(toFloat(rand(size(shapes.get(n)), -1, 1, seed++)));
                }
            }
            ex.forward(true);
            long[] os = ex.outputs().get(0).shape().dims();
            try (NDArray h = NDArray.create(toFloat(rand(size(os), -1, 1, 99)), os)) {
                ex.backward(h);
            }
            List<float[]> r = new ArrayList<>();
            r.add(ex.outputs().get(0).toFloatArray());
            for (String n : shapes.keySet()) {
                r.add(ex.gradDict().get(n).toFloatArray());
            }
            return r;
        } finally {
            Engine.setNumThreads(old);
        }
    }

    static String tuple(long[] t) {
        StringBuilder b = new StringBuilder("(");
        for (int i = 0; i < t.length; i++) {
            b.append(i > 0 ? ", " : "").append(t[i]);
        }
        return b.append(t.length == 1 ? ",)" : ")").toString();
    }

    static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs((double) want[i] - got[i]) / Math.max(1.0, Math.abs(want[i]));
            assertTrue(err <= 2e-5, String.format(Locale.ROOT, "%s[%d]: im2col %s direct %s", what, i, want[i], got[i]));
        }
    }

    /**
     * Winograd's transforms scale values by up to 4 before the sums, so its float32 rounding grows
     * with the reduction (the weight gradient sums over every output pixel of every image): errors
     * are measured against the largest magnitude of the array, as for GEMM results.
     */
    static void assertCloseToScale(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        double scale = 1;
        for (float w : want) {
            scale = Math.max(scale, Math.abs(w));
        }
        for (int i = 0; i < want.length; i++) {
            double err = Math.abs((double) want[i] - got[i]) / scale;
            assertTrue(err <= 2e-5, String.format(Locale.ROOT, "%s[%d]: im2col %s winograd %s (scale %s)", what, i, want[i], got[i], scale));
        }
    }

    /** How one output or gradient array is compared with im2col's. */
    @FunctionalInterface
    interface Check {
        void assertClose(float[] want, float[] got, String what);
    }

    /** For every case, request, thread count and algorithm: outputs and gradients equal im2col + GEMM's under {@code check}. */
    static Stream<DynamicTest> againstIm2col(List<Case> cases, List<ConvAlgorithm> algos, Check check) {
        String[] names = {"output", "data grad", "weight grad", "bias grad"};
        List<DynamicTest> tests = new ArrayList<>();
        for (Case cs : cases) {
            for (GradReq req : new GradReq[] {GradReq.WRITE, GradReq.ADD}) {
                for (int threads : new int[] {1, 2}) {
                    for (ConvAlgorithm algo : algos) {
                        tests.add(DynamicTest.dynamicTest(cs.name() + " " + algo + " " + req + " threads=" + threads, () -> {
                            List<float[]> ref = run(cs, ConvAlgorithm.IM2COL, req, threads);
                            List<float[]> got = run(cs, algo, req, threads);
                            for (int i = 0; i < ref.size(); i++) {
                                check.assertClose(ref.get(i), got.get(i), cs.name() + " " + names[i]);
                            }
                        }));
                    }
                }
            }
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> directEqualsIm2col() {
        return againstIm2col(cases(), List.of(ConvAlgorithm.DIRECT), ConvolutionAlgorithmTest::assertClose);
    }

    static List<Case> winogradCases() {
        List<Case> c = new ArrayList<>();
        c.add(new Case("resnet block", s(2, 16, 8, 8), 16, s(3, 3), s(1, 1)));
        c.add(new Case("odd image, more filters", s(3, 20, 7, 9), 24, s(3, 3), s(1, 1)));
        c.add(new Case("no padding", s(2, 17, 6, 5), 18, s(3, 3), s(0, 0)));
        c.add(new Case("pad 2", s(1, 16, 5, 4), 16, s(3, 3), s(2, 2)));
        c.add(new Case("mixed pads", s(2, 16, 9, 6), 19, s(3, 3), s(2, 0)));
        c.add(new Case("one output pixel", s(4, 32, 3, 3), 16, s(3, 3), s(0, 0)));
        c.add(new Case("1x1 image", s(3, 16, 1, 1), 16, s(3, 3), s(1, 1)));
        c.add(new Case("thin (falls back under auto)", s(2, 3, 6, 6), 4, s(3, 3), s(1, 1)));
        c.add(new Case("many tiles", s(5, 16, 33, 31), 16, s(3, 3), s(1, 1)));
        c.add(new Case("resnet 8x8 stage, 70 filters", s(2, 32, 8, 8), 70, s(3, 3), s(1, 1)));
        c.add(new Case("64 channels, partial tiles", s(3, 64, 11, 6), 48, s(3, 3), s(1, 1)));
        c.add(new Case("32 to 80 channels, wide rows, no padding", s(2, 32, 7, 38), 80, s(3, 3), s(0, 0)));
        c.add(new Case("3x3 output, 4x4 tiles, pad 2", s(2, 48, 1, 1), 32, s(3, 3), s(2, 2)));
        c.add(new Case("several chunks of 4x4 tiles", s(4, 64, 32, 30), 64, s(3, 3), s(1, 1)));
        return c;
    }

    @TestFactory
    Stream<DynamicTest> winogradEqualsIm2col() {
        return againstIm2col(winogradCases(), List.of(ConvAlgorithm.WINOGRAD, ConvAlgorithm.WINOGRAD4, ConvAlgorithm.AUTO),
                ConvolutionAlgorithmTest::assertCloseToScale);
    }

    @ParameterizedTest
    @EnumSource(value = ConvAlgorithm.class, names = {"WINOGRAD", "WINOGRAD4"})
    void winogradForwardMatchesMxnet(ConvAlgorithm algo) {
        Engine.setConvolutionAlgorithm(algo);
        ConvTesting.checkAgainstMxnet("Convolution", a("kernel", "(3, 3)", "num_filter", "16", "pad", "(1, 1)"),
                s(2, 16, 9, 7), s(16, 16, 3, 3), s(16));
        ConvTesting.checkAgainstMxnet("Convolution", a("kernel", "(3, 3)", "num_filter", "20", "no_bias", "True"),
                s(1, 18, 6, 6), s(20, 18, 3, 3));
        ConvTesting.checkAgainstMxnet("Convolution", a("kernel", "(3, 3)", "num_filter", "32", "pad", "(1, 1)"),
                s(2, 64, 10, 9), s(32, 64, 3, 3), s(32));
    }

    /** Central differences of f = sum(h * conv(x, w)) against the Winograd data and weight gradients (conv is linear in each: only rounding remains). */
    @ParameterizedTest
    @EnumSource(value = ConvAlgorithm.class, names = {"WINOGRAD", "WINOGRAD4"})
    void winogradGradientsMatchNumericDifferences(ConvAlgorithm algo) {
        Engine.setConvolutionAlgorithm(algo);
        Symbol conv = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "16", "pad", "(1, 1)", "no_bias", "True"),
                null, Symbol.variable("data"));
        long[] xs = s(2, 16, 5, 6);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", xs);
        shapes.put("c_weight", s(16, 16, 3, 3));
        try (Executor ex = Executor.simpleBind(conv, Context.cpu(), shapes, Map.of(), Map.of("data", GradReq.WRITE, "c_weight",
                GradReq.WRITE), new Executor.Options())) {
            Map<String, float[]> values = new LinkedHashMap<>();
            values.put("data", toFloat(rand(size(xs), -1, 1, 5)));
            values.put("c_weight", toFloat(rand(16 * 16 * 9, -1, 1, 6)));
            values.forEach((k, v) -> ex.argDict().get(k).set(v));
            ex.forward(true);
            long[] os = ex.outputs().get(0).shape().dims();
            float[] h = toFloat(rand(size(os), -1, 1, 8));
            try (NDArray head = NDArray.create(h, os)) {
                ex.backward(head);
            }
            for (String name : values.keySet()) {
                float[] v = values.get(name);
                float[] grad = ex.gradDict().get(name).toFloatArray();
                float eps = 0.25f;
                for (int i = 0; i < v.length; i += 37) {
                    double[] f = new double[2];
                    for (int side = 0; side < 2; side++) {
                        float[] vp = v.clone();
                        vp[i] += side == 0 ? eps : -eps;
                        ex.argDict().get(name).set(vp);
                        ex.forward(false);
                        float[] y = ex.outputs().get(0).toFloatArray();
                        for (int k = 0; k < y.length; k++) {
                            f[side] += (double) h[k] * y[k];
                        }
                    }
                    ex.argDict().get(name).set(v);
                    double numeric = (f[0] - f[1]) / (2 * eps);
                    assertEquals(numeric, grad[i], 1e-3 * Math.max(1, Math.abs(numeric)), "d f / d " + name + "[" + i + "]");
                }
            }
        }
    }

    @Test
    void directForwardMatchesMxnet() {
        Engine.setConvolutionAlgorithm(ConvAlgorithm.DIRECT);
        ConvTesting.checkAgainstMxnet("Convolution", a("kernel", "(5, 5)", "num_filter", "6"), s(4, 1, 28, 28),
                s(6, 1, 5, 5), s(6));
        ConvTesting.checkAgainstMxnet("Convolution", a("kernel", "(3, 3)", "num_filter", "5", "pad", "(1, 1)"),
                s(2, 3, 9, 7), s(5, 3, 3, 3), s(5));
    }

    @Test
    void choiceRoundTripsAndAutoIsDefault() {
        assertEquals(ConvAlgorithm.AUTO, Engine.convolutionAlgorithm());
        Engine.setConvolutionAlgorithm(ConvAlgorithm.IM2COL);
        assertEquals(ConvAlgorithm.IM2COL, Engine.convolutionAlgorithm());
    }

    @Test
    void unsupportedGeometryFallsBackUnderDirect() {
        // strided and grouped convolutions have no direct kernel: DIRECT must still compute them
        Case strided = new Case("strided", s(2, 2, 9, 9), 3, s(3, 3), s(0, 0));
        Engine.setConvolutionAlgorithm(ConvAlgorithm.DIRECT);
        Symbol conv = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "4", "stride", "(2, 2)",
                "num_group", "2"), null, Symbol.variable("data"));
        try (Executor ex = Executor.simpleBind(conv, Context.cpu(), Map.of("data", strided.data()), Map.of(),
                Map.of("data", GradReq.NULL), new Executor.Options())) {
            ex.argDict().get("data").set(toFloat(rand(size(strided.data()), -1, 1, 3)));
            ex.forward(false);
            assertEquals(4 * 4 * 4 * 2, ex.outputs().get(0).toFloatArray().length);
        }
    }
}
