package dev.kiln.ops.pool;

import static dev.kiln.ops.pool.PoolTesting.assertInvokeFails;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/** Pooling: forward against MXNet 1.9.1 over a parameter grid, float64 gradients, errors. */
@ExtendWith(NoLeaks.class)
class PoolingTest {

    record Case(Map<String, String> attrs, long[] shape) {}

    /** The pool types with their extra parameters. */
    static List<Map<String, String>> types() {
        return List.of(a("pool_type", "max"), a("pool_type", "avg"), a("pool_type", "avg", "count_include_pad", "False"),
                a("pool_type", "avg", "count_include_pad", "True"), a("pool_type", "sum"), a("pool_type", "lp", "p_value", "1"),
                a("pool_type", "lp", "p_value", "2"), a("pool_type", "lp", "p_value", "3"));
    }

    static Map<String, String> with(Map<String, String> base, String... kv) {
        Map<String, String> m = new LinkedHashMap<>(base);
        m.putAll(a(kv));
        return m;
    }

    static List<Case> grid() {
        List<Case> c = new ArrayList<>();
        for (Map<String, String> t : types()) {
            // 2-D
            for (String k : List.of("(2, 2)", "(3, 3)", "(3, 2)")) {
                for (String st : List.of("", "(2, 2)", "(2, 3)")) {
                    for (String pad : List.of("", "(1, 1)", "(1, 0)")) {
                        for (String conv : List.of("valid", "full")) {
                            Map<String, String> m = with(t, "kernel", k, "pooling_convention", conv);
                            if (!st.isEmpty()) {
                                m.put("stride", st);
                            }
                            if (!pad.isEmpty()) {
                                m.put("pad", pad);
                            }
                            c.add(new Case(m, s(2, 3, 7, 8)));
                        }
                    }
                }
            }
            // 1-D
            for (String k : List.of("(2,)", "(3,)")) {
                for (String st : List.of("(1,)", "(2,)", "(3,)")) {
                    for (String pad : List.of("(0,)", "(1,)")) {
                        for (String conv : List.of("valid", "full")) {
                            c.add(new Case(with(t, "kernel", k, "stride", st, "pad", pad, "pooling_convention", conv), s(2, 3, 11)));
                        }
                    }
                    // MXNet 1.9.1 reads pad[0..2] under 'same': it needs three zeros there
                    c.add(new Case(with(t, "kernel", k, "stride", st, "pad", "(0, 0, 0)", "pooling_convention", "same"), s(2, 3, 11)));
                }
            }
            // 3-D
            c.add(new Case(with(t, "kernel", "(2, 2, 2)"), s(1, 2, 5, 6, 4)));
            c.add(new Case(with(t, "kernel", "(3, 2, 2)", "stride", "(2, 2, 1)", "pad", "(1, 1, 0)"), s(2, 2, 5, 6, 4)));
            c.add(new Case(with(t, "kernel", "(2, 3, 2)", "stride", "(2, 2, 2)", "pad", "(1, 1, 1)", "pooling_convention", "full"),
                    s(1, 3, 6, 6, 6)));
            // global pooling (kernel ignored when given)
            c.add(new Case(with(t, "global_pool", "True"), s(2, 3, 9)));
            c.add(new Case(with(t, "global_pool", "True"), s(2, 3, 5, 6)));
            c.add(new Case(with(t, "global_pool", "True", "kernel", "(2, 2)", "stride", "(2, 2)"), s(2, 3, 5, 6)));
            c.add(new Case(with(t, "global_pool", "True", "pooling_convention", "full"), s(1, 2, 3, 4, 5)));
            // accepted, no effect
            c.add(new Case(with(t, "kernel", "(2, 2)", "cudnn_off", "True", "layout", "NCHW"), s(2, 2, 4, 5)));
            c.add(new Case(with(t, "kernel", "(3,)", "layout", "NCW"), s(2, 2, 6)));
            c.addAll(channelLast(t));
        }
        return c;
    }

    /** Channel-last layouts (NWC, NHWC, NDHWC), which MXNet's CPU kernels take too. */
    static List<Case> channelLast(Map<String, String> t) {
        List<Case> c = new ArrayList<>();
        for (String conv : List.of("valid", "full")) {
            c.add(new Case(with(t, "kernel", "(3,)", "stride", "(2,)", "pad", "(1,)", "layout", "NWC", "pooling_convention", conv),
                    s(2, 11, 3)));
            c.add(new Case(with(t, "kernel", "(3, 2)", "stride", "(2, 2)", "pad", "(1, 0)", "layout", "NHWC", "pooling_convention", conv),
                    s(2, 7, 8, 3)));
        }
        c.add(new Case(with(t, "kernel", "(2, 2)", "stride", "(2, 2)", "layout", "NHWC"), s(2, 6, 6, 4)));  // C > 1: strided planes
        c.add(new Case(with(t, "kernel", "(2, 2)", "stride", "(2, 2)", "layout", "NHWC"), s(2, 6, 6, 1)));  // C = 1: contiguous
        c.add(new Case(with(t, "kernel", "(2, 3, 2)", "stride", "(2, 1, 2)", "pad", "(1, 1, 0)", "layout", "NDHWC"), s(1, 5, 6, 4, 2)));
        c.add(new Case(with(t, "global_pool", "True", "layout", "NHWC"), s(2, 5, 6, 3)));
        c.add(new Case(with(t, "global_pool", "True", "layout", "NWC"), s(2, 9, 5)));
        return c;
    }

    @TestFactory
    Stream<DynamicTest> forwardMatchesMxnet() {
        return grid().stream().map(c -> DynamicTest.dynamicTest(c.attrs() + " " + java.util.Arrays.toString(c.shape()),
                () -> PoolTesting.oracle("Pooling", c.attrs(), c.attrs().containsValue("lp") ? 0.05 : -2, 2, c.shape())));
    }

    @Test
    void lpWithNegativeInputsMatchesMxnet() {
        for (String p : List.of("1", "2", "3")) {
            PoolTesting.oracle("Pooling", a("pool_type", "lp", "p_value", p, "kernel", "(2, 2)", "stride", "(2, 2)"), s(2, 3, 6, 6));
        }
    }

    @Test
    void largeInputUsesThreads() {
        PoolTesting.oracle("Pooling", a("kernel", "(3, 3)", "stride", "(2, 2)", "pad", "(1, 1)"), s(4, 16, 32, 32));
        PoolTesting.oracle("Pooling", a("kernel", "(3, 3)", "pool_type", "avg", "pad", "(1, 1)"), s(4, 16, 32, 32));
    }

    @Test
    void outputShapes() {
        // valid floors, full ceils, same is ceil(x / stride)
        assertArrayEquals(s(1, 1, 3, 3), PoolTesting.outShape("Pooling", a("kernel", "(3, 3)", "stride", "(2, 2)"), s(1, 1, 8, 8)));
        assertArrayEquals(s(1, 1, 4, 4), PoolTesting.outShape("Pooling",
                a("kernel", "(3, 3)", "stride", "(2, 2)", "pooling_convention", "full"), s(1, 1, 8, 8)));
        assertArrayEquals(s(1, 1, 4), PoolTesting.outShape("Pooling",
                a("kernel", "(3,)", "stride", "(3,)", "pooling_convention", "same"), s(1, 1, 11)));
        assertArrayEquals(s(2, 3, 1, 1), PoolTesting.outShape("Pooling", a("global_pool", "True", "kernel", "(9, 9)"), s(2, 3, 5, 7)));
        assertArrayEquals(s(2, 3, 6, 7), PoolTesting.outShape("Pooling", a("kernel", "(2, 2)"), s(2, 3, 7, 8)));
    }

    static Symbol pooling(Map<String, String> attrs) {
        return Symbol.create("Pooling", "pool", attrs, null, Symbol.variable("data"));
    }

    @TestFactory
    Stream<DynamicTest> numericGradient() {
        List<Case> c = new ArrayList<>();
        for (Map<String, String> t : types()) {
            c.add(new Case(with(t, "kernel", "(2, 2)"), s(1, 2, 4, 5)));
            c.add(new Case(with(t, "kernel", "(3, 2)", "stride", "(2, 2)", "pad", "(1, 1)", "pooling_convention", "full"), s(2, 1, 5, 4)));
            c.add(new Case(with(t, "kernel", "(3,)", "stride", "(2,)", "pad", "(1,)"), s(2, 2, 7)));
            c.add(new Case(with(t, "kernel", "(2,)", "stride", "(2,)", "pooling_convention", "same"), s(1, 2, 7)));
            c.add(new Case(with(t, "kernel", "(2, 2, 2)", "stride", "(1, 2, 1)", "pad", "(1, 0, 1)"), s(1, 2, 3, 4, 3)));
            c.add(new Case(with(t, "global_pool", "True"), s(2, 2, 3, 4)));
            c.add(new Case(with(t, "kernel", "(3, 2)", "stride", "(2, 1)", "pad", "(1, 0)", "layout", "NHWC"), s(2, 5, 4, 3)));
            c.add(new Case(with(t, "kernel", "(3,)", "stride", "(2,)", "layout", "NWC", "pooling_convention", "full"), s(1, 6, 2)));
        }
        return c.stream().map(k -> DynamicTest.dynamicTest(k.attrs() + " " + java.util.Arrays.toString(k.shape()), () -> {
            // positive inputs keep lp's root differentiable; random values make max's argmax unique
            GradCheck.Inputs in = new GradCheck.Inputs().random("data", k.shape(), 0.5, 2, 11);
            GradCheck.check(pooling(k.attrs()), in, List.of("data"), 1e-6, 1e-6, 1e-8);
        }));
    }

    @TestFactory
    Stream<DynamicTest> gradientMatchesMxnet() {
        List<Case> c = new ArrayList<>();
        for (Map<String, String> t : types()) {
            c.add(new Case(with(t, "kernel", "(2, 2)", "stride", "(2, 2)"), s(2, 3, 6, 6)));
            c.add(new Case(with(t, "kernel", "(3, 3)", "stride", "(2, 2)", "pad", "(1, 1)"), s(2, 3, 7, 8)));
            c.add(new Case(with(t, "kernel", "(3, 2)", "stride", "(2, 3)", "pad", "(1, 0)", "pooling_convention", "full"), s(1, 2, 7, 8)));
            c.add(new Case(with(t, "kernel", "(3,)", "stride", "(2,)", "pad", "(1,)"), s(2, 3, 11)));
            c.add(new Case(with(t, "kernel", "(2, 2, 2)", "stride", "(2, 1, 2)", "pad", "(1, 0, 1)"), s(1, 2, 4, 5, 4)));
            c.add(new Case(with(t, "global_pool", "True"), s(2, 3, 5, 6)));
            c.addAll(channelLast(t));
        }
        return c.stream().map(k -> DynamicTest.dynamicTest(k.attrs() + " " + java.util.Arrays.toString(k.shape()),
                () -> PoolTesting.oracleGrad("Pooling", k.attrs(), 0.05, 2, k.shape())));
    }

    /** Gradient of every element for head gradient dy, by the executor, float64. */
    static double[] backward(Map<String, String> attrs, long[] shape, double[] x, double[] dy, GradReq req, int passes) {
        Symbol sym = pooling(attrs);
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), Map.of("data", shape), Map.of("data", DType.FLOAT64),
                Map.of("data", req), new Executor.Options())) {
            ex.argDict().get("data").set(x);
            for (int p = 0; p < passes; p++) {
                ex.forward(true);
                NDArray out = ex.outputs().get(0);
                try (NDArray h = NDArray.zeros(out.shape(), out.dtype(), Context.cpu())) {
                    h.set(dy);
                    ex.backward(h);
                }
            }
            return ex.gradDict().get("data").toDoubleArray();
        }
    }

    @Test
    void maxGradientGoesToTheFirstMaximum() {
        // all-equal windows: MXNet routes each window's gradient to its first element
        long[] shape = s(1, 1, 3, 4);
        double[] x = new double[12];
        java.util.Arrays.fill(x, 1.0);
        double[] dy = {1, 10, 100, 1000, 10000, 100000};
        double[] g = backward(a("kernel", "(2, 2)", "stride", "(1, 1)"), shape, x, dy, GradReq.WRITE, 1);
        // windows (2x3 outputs) start at (0,0),(0,1),(0,2),(1,0),(1,1),(1,2)
        double[] expected = {1, 10, 100, 0, 1000, 10000, 100000, 0, 0, 0, 0, 0};
        GradCheck.assertClose(expected, g, 0, 0, "max ties");
        // kAddTo accumulates
        double[] g2 = backward(a("kernel", "(2, 2)", "stride", "(1, 1)"), shape, x, dy, GradReq.ADD, 2);
        for (int i = 0; i < expected.length; i++) {
            expected[i] *= 2;
        }
        GradCheck.assertClose(expected, g2, 0, 0, "max ties, add x2");
    }

    @Test
    void maxTiesMatchMxnet() {
        // inputs in {-2, -1, 0, 1}: most windows hold several maxima; the first one gets the gradient
        PoolTesting.oracleGrad("Pooling", a("kernel", "(3, 3)", "stride", "(1, 1)"), -2, 2, 1, s(2, 2, 6, 7));
        PoolTesting.oracleGrad("Pooling", a("kernel", "(2, 3)", "stride", "(2, 2)", "pad", "(1, 1)"), -2, 2, 1, s(2, 2, 6, 7));
        PoolTesting.oracleGrad("Pooling", a("kernel", "(3,)", "stride", "(2,)", "pooling_convention", "full"), -2, 2, 1, s(2, 2, 10));
        PoolTesting.oracleGrad("Pooling", a("global_pool", "True"), -2, 2, 1, s(2, 3, 4, 4));
        PoolTesting.oracleGrad("Pooling", a("kernel", "(2, 2, 2)"), -2, 2, 1, s(1, 2, 3, 4, 4));
        PoolTesting.oracleGrad("Pooling", a("kernel", "(3, 3)", "stride", "(1, 1)", "layout", "NHWC"), -2, 2, 1, s(2, 6, 7, 3));
    }

    @Test
    void channelLastEqualsChannelFirstOfTheTransposedData() {
        // an independent reference: NHWC pooling = transpose(NCHW pooling of transpose(x)), forward and gradient
        long[] nhwc = s(3, 9, 10, 5);
        double[] x = new double[3 * 9 * 10 * 5];
        java.util.Random r = new java.util.Random(5);
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextInt(64) / 8.0 - 4;
        }
        for (Map<String, String> t : types()) {
            Map<String, String> last = with(t, "kernel", "(3, 3)", "stride", "(2, 2)", "pad", "(1, 1)", "layout", "NHWC");
            Map<String, String> first = with(t, "kernel", "(3, 3)", "stride", "(2, 2)", "pad", "(1, 1)");
            try (dev.kiln.ndarray.NDScope scope = dev.kiln.ndarray.NDScope.open()) {
                NDArray xl = NDArray.create(x, nhwc);
                NDArray xf = NDArray.invoke("transpose", a("axes", "(0, 3, 1, 2)"), xl).get(0);
                NDArray yl = NDArray.invoke("Pooling", last, xl).get(0);
                NDArray yf = NDArray.invoke("transpose", a("axes", "(0, 2, 3, 1)"), NDArray.invoke("Pooling", first, xf).get(0)).get(0);
                assertArrayEquals(yf.shape().dims(), yl.shape().dims(), t + " shape");
                GradCheck.assertClose(yf.toDoubleArray(), yl.toDoubleArray(), 0, 0, t + " forward");
            }
            double[] dy = new double[3 * 5 * 5 * 5];
            for (int i = 0; i < dy.length; i++) {
                dy[i] = (i % 7) - 3;
            }
            double[] gl = backward(last, nhwc, x, dy, GradReq.WRITE, 1);
            // the same in channel-first order: transpose x and dy, pool, transpose the gradient back
            double[] xf = transposed(x, nhwc, "(0, 3, 1, 2)");
            double[] dyf = transposed(dy, s(3, 5, 5, 5), "(0, 3, 1, 2)");
            double[] gf = transposed(backward(first, s(3, 5, 9, 10), xf, dyf, GradReq.WRITE, 1), s(3, 5, 9, 10), "(0, 2, 3, 1)");
            GradCheck.assertClose(gf, gl, 1e-12, 1e-12, t + " gradient");
        }
    }

    /** x of shape {@code shape} transposed by {@code axes}, with the transpose operator (as the forward above). */
    static double[] transposed(double[] x, long[] shape, String axes) {
        try (dev.kiln.ndarray.NDScope scope = dev.kiln.ndarray.NDScope.open()) {
            return NDArray.invoke("transpose", a("axes", axes), NDArray.create(x, shape)).get(0).toDoubleArray();
        }
    }

    @Test
    void avgCountIncludePad() {
        // 1-D, kernel 3, pad 1: edge windows see 2 elements; divided by 3 (include) or 2 (exclude)
        double[] x = {1, 2, 3, 4};
        double[] inc = PoolTesting.invoke64("Pooling", a("kernel", "(3,)", "pad", "(1,)", "pool_type", "avg"), new double[][] {x},
                s(1, 1, 4));
        GradCheck.assertClose(new double[] {1, 2, 3, 7 / 3.0}, inc, 1e-12, 1e-12, "include");
        double[] exc = PoolTesting.invoke64("Pooling",
                a("kernel", "(3,)", "pad", "(1,)", "pool_type", "avg", "count_include_pad", "False"), new double[][] {x}, s(1, 1, 4));
        GradCheck.assertClose(new double[] {1.5, 2, 3, 3.5}, exc, 1e-12, 1e-12, "exclude");
    }

    @Test
    void errors() {
        long[][] d4 = {s(2, 3, 8, 8)};
        assertInvokeFails("Pooling", a("kernel", "(2,)", "layout", "NWC"), d4, "layout=NWC", "does not match");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "layout", "NDHWC"), d4, "layout=NDHWC", "does not match");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "layout", "NCW"), d4, "layout=NCW");
        assertInvokeFails("Pooling", a("kernel", "(9, 2)", "layout", "NHWC"), d4, "kernel size (9) exceeds input (3");
        assertInvokeFails("Pooling", a("kernel", "(2,)"), d4, "kernel=(2,)");
        assertInvokeFails("Pooling", a("kernel", "(2, 2, 2)"), d4, "kernel=(2,2,2)");
        assertInvokeFails("Pooling", a(), d4, "kernel is required");
        assertInvokeFails("Pooling", a("kernel", "(9, 2)"), d4, "kernel size (9) exceeds input (8");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "stride", "(0, 1)"), d4, "stride", "positive");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "stride", "(1, 1, 1)"), d4, "stride=(1,1,1)");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "pad", "(1,)"), d4, "pad=(1,)");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "pad", "(-1, 0)"), d4, "pad", "non-negative");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "pool_type", "lp"), d4, "p_value");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "pool_type", "lp", "p_value", "4"), d4, "p value of 4");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "pooling_convention", "same"), d4, "same", "1-D");
        assertInvokeFails("Pooling", a("kernel", "(2,)", "pooling_convention", "same", "pad", "(1,)"), new long[][] {s(1, 1, 8)},
                "disables the use of pad");
        assertInvokeFails("Pooling", a("kernel", "(2,)"), new long[][] {s(3, 8)}, "3D in (batch, channel, x)");
        assertInvokeFails("Pooling", a("global_pool", "True"), new long[][] {s(1, 2, 3, 4, 5, 6)}, "5D");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "pool_type", "median"), d4, "pool_type", "median");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "pooling_convention", "half"), d4, "pooling_convention");
        assertInvokeFails("Pooling", a("kernel", "(2, 2)", "kernal", "(2, 2)"), d4, "unknown parameter 'kernal'");
        // at bind time too
        OpTesting.assertThrowsMessage(() -> {
            try (Executor ex = Executor.simpleBind(pooling(a("kernel", "(2, 2)", "layout", "NWC")), Context.cpu(),
                    Map.of("data", s(2, 3, 8, 8)), Map.of("data", DType.FLOAT32), Map.of("data", GradReq.WRITE),
                    new Executor.Options())) {
                ex.forward(false);
            }
        }, "does not match");
    }
}
