package dev.kiln.ops.pool;

import static dev.kiln.ops.pool.PoolTesting.assertInvokeFails;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/** Pad: forward against MXNet 1.9.1 for every mode, float64 gradients, errors. */
@ExtendWith(NoLeaks.class)
class PadTest {

    record Case(Map<String, String> attrs, long[] shape) {}

    static List<Case> grid() {
        List<Case> c = new ArrayList<>();
        List<String> pads4 = List.of("(0, 0, 0, 0, 1, 2, 2, 1)", "(0, 0, 0, 0, 0, 0, 3, 0)", "(0, 0, 0, 0, 4, 4, 4, 4)",
                "(0, 0, 0, 0, 0, 0, 0, 0)");
        List<String> pads5 = List.of("(0, 0, 0, 0, 1, 1, 2, 0, 0, 3)", "(0, 0, 0, 0, 2, 2, 3, 3, 4, 4)");
        for (Map<String, String> m : List.of(a("mode", "constant"), a("mode", "constant", "constant_value", "1.5"), a("mode", "edge"),
                a("mode", "reflect"))) {
            for (String p : pads4) {
                Map<String, String> x = new java.util.LinkedHashMap<>(m);
                x.put("pad_width", p);
                c.add(new Case(x, s(2, 3, 5, 6)));
            }
            for (String p : pads5) {
                Map<String, String> x = new java.util.LinkedHashMap<>(m);
                x.put("pad_width", p);
                c.add(new Case(x, s(1, 2, 3, 4, 5)));
            }
        }
        c.add(new Case(a("mode", "constant", "pad_width", "(0, 0, 0, 0, 3, 3, 3, 3)"), s(8, 16, 32, 32))); // threaded path
        c.add(new Case(a("mode", "edge", "pad_width", "(0, 0, 0, 0, 3, 3, 3, 3)"), s(8, 16, 32, 32)));
        return c;
    }

    @TestFactory
    Stream<DynamicTest> forwardMatchesMxnet() {
        return grid().stream().map(c -> DynamicTest.dynamicTest(c.attrs() + " " + Arrays.toString(c.shape()),
                () -> PoolTesting.oracle("Pad", c.attrs(), c.shape())));
    }

    @Test
    void aliasAndShape() {
        assertArrayEquals(s(1, 2, 6, 9), PoolTesting.outShape("pad", a("mode", "constant", "pad_width", "(0, 0, 0, 0, 1, 2, 3, 3)"), s(1, 2, 3, 3)));
        double[] y = PoolTesting.invoke64("Pad", a("mode", "reflect", "pad_width", "(0, 0, 0, 0, 0, 0, 2, 2)"),
                new double[][] {{1, 2, 3}}, s(1, 1, 1, 3));
        GradCheck.assertClose(new double[] {3, 2, 1, 2, 3, 2, 1}, y, 0, 0, "reflect");
        y = PoolTesting.invoke64("Pad", a("mode", "edge", "pad_width", "(0, 0, 0, 0, 0, 0, 2, 1)"), new double[][] {{1, 2, 3}},
                s(1, 1, 1, 3));
        GradCheck.assertClose(new double[] {1, 1, 1, 2, 3, 3}, y, 0, 0, "edge");
    }

    @TestFactory
    Stream<DynamicTest> numericGradient() {
        List<Case> c = new ArrayList<>();
        for (String mode : List.of("constant", "edge", "reflect")) {
            c.add(new Case(a("mode", mode, "pad_width", "(0, 0, 0, 0, 1, 2, 2, 1)", "constant_value", "0.5"), s(2, 1, 3, 4)));
            c.add(new Case(a("mode", mode, "pad_width", "(0, 0, 0, 0, 1, 1, 2, 0, 1, 2)"), s(1, 2, 2, 3, 3)));
        }
        return c.stream().map(k -> DynamicTest.dynamicTest(k.attrs() + " " + Arrays.toString(k.shape()), () -> {
            GradCheck.Inputs in = new GradCheck.Inputs().random("data", k.shape(), -1, 1, 5);
            GradCheck.check(Symbol.create("Pad", "pad", k.attrs(), null, Symbol.variable("data")), in, List.of("data"), 1e-6, 1e-6,
                    1e-8);
        }));
    }

    @Test
    void gradientMatchesMxnet() {
        for (String mode : List.of("constant", "edge", "reflect")) {
            PoolTesting.oracleGrad("Pad", a("mode", mode, "pad_width", "(0, 0, 0, 0, 1, 2, 3, 1)"), -2, 2, s(2, 3, 5, 6));
            PoolTesting.oracleGrad("Pad", a("mode", mode, "pad_width", "(0, 0, 0, 0, 2, 1, 0, 3, 1, 2)"), -2, 2, s(1, 2, 3, 4, 5));
        }
    }

    @Test
    void errors() {
        long[][] d4 = {s(2, 3, 4, 5)};
        assertInvokeFails("Pad", a("mode", "constant", "pad_width", "(0, 0, 1, 1)"), new long[][] {s(4, 5)}, "4-D or 5-D");
        assertInvokeFails("Pad", a("mode", "edge", "pad_width", "(0, 0, 0, 0, 1, 1)"), d4, "pad_width mismatch");
        assertInvokeFails("Pad", a("mode", "constant", "pad_width", "(1, 0, 0, 0, 1, 1, 1, 1)"), d4, "first two axes");
        assertInvokeFails("Pad", a("mode", "constant", "pad_width", "(0, 0, 0, 0, 1, -1, 1, 1)"), d4, "non-negative");
        assertInvokeFails("Pad", a("mode", "reflect", "pad_width", "(0, 0, 0, 0, 4, 0, 1, 1)"), d4, "smaller than the input size");
        assertInvokeFails("Pad", a("mode", "wrap", "pad_width", "(0, 0, 0, 0, 1, 1, 1, 1)"), d4, "mode", "wrap");
        assertInvokeFails("Pad", a("mode", "edge"), d4, "pad_width", "missing");
        assertInvokeFails("Pad", a("pad_width", "(0, 0, 0, 0, 1, 1, 1, 1)"), d4, "mode", "missing"); // required in MXNet 1.9.1
    }
}
