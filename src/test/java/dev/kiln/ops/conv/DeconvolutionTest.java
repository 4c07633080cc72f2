package dev.kiln.ops.conv;

import static dev.kiln.ops.conv.ConvTesting.bindAndRun;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.ndarray.DType;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/** Deconvolution: forward vs MXNet 1.9.1, float64 gradients, shape inference (adj, target_shape), errors. */
@ExtendWith(NoLeaks.class)
class DeconvolutionTest {

    /** mxAttrs: what MXNet runs (null = attrs). */
    record Case(Map<String, String> attrs, Map<String, String> mxAttrs, long[][] shapes) {}

    static Case c(Map<String, String> attrs, long[]... shapes) {
        return new Case(attrs, attrs, shapes);
    }

    static List<Case> grid() {
        List<Case> cs = new ArrayList<>();
        // 1-D
        cs.add(c(a("kernel", "(3,)", "num_filter", "4"), s(2, 3, 7), s(3, 4, 3)));
        cs.add(c(a("kernel", "(3,)", "num_filter", "4", "stride", "(2,)", "pad", "(1,)", "adj", "(1,)", "no_bias", "False"),
                s(2, 3, 7), s(3, 4, 3), s(4)));
        cs.add(c(a("kernel", "(2,)", "num_filter", "6", "dilate", "(2,)", "num_group", "3"), s(2, 6, 5), s(6, 2, 2)));
        // 2-D
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "5"), s(2, 4, 6, 6), s(4, 5, 3, 3)));
        cs.add(c(a("kernel", "(4, 4)", "num_filter", "3", "stride", "(2, 2)", "pad", "(1, 1)", "no_bias", "False"),
                s(2, 4, 5, 5), s(4, 3, 4, 4), s(3)));
        cs.add(c(a("kernel", "(3, 2)", "num_filter", "4", "stride", "(3, 2)", "pad", "(1, 0)", "adj", "(2, 1)"), s(1, 2, 4, 5),
                s(2, 4, 3, 2)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "4", "dilate", "(2, 1)", "pad", "(1, 1)"), s(2, 3, 5, 6), s(3, 4, 3, 3)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "6", "num_group", "2", "stride", "(2, 2)", "no_bias", "False"),
                s(2, 4, 4, 5), s(4, 3, 3, 3), s(6)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "4", "num_group", "4", "pad", "(1, 1)"), s(2, 4, 5, 5), s(4, 1, 3, 3)));
        // target_shape: MXNet 1.9.1's MKLDNN deconvolution fails on it ("could not create a descriptor for a
        // dilated deconvolution"), so MXNet runs the pad/adj its InferPad derives from the target
        cs.add(new Case(a("kernel", "(4, 4)", "num_filter", "3", "stride", "(2, 2)", "target_shape", "(10, 11)"),
                a("kernel", "(4, 4)", "num_filter", "3", "stride", "(2, 2)", "pad", "(1, 1)", "adj", "(0, 1)"),
                new long[][] {s(2, 2, 5, 5), s(2, 3, 4, 4)}));
        cs.add(new Case(a("kernel", "(3, 3)", "num_filter", "2", "stride", "(2, 2)", "target_shape", "(8, 8)", "pad", "(5, 5)",
                "adj", "(1, 1)"), a("kernel", "(3, 3)", "num_filter", "2", "stride", "(2, 2)", "pad", "(1, 1)", "adj", "(1, 1)"),
                new long[][] {s(1, 2, 4, 4), s(2, 2, 3, 3)}));
        cs.add(c(a("kernel", "(1, 1)", "num_filter", "3"), s(2, 5, 4, 3), s(5, 3, 1, 1)));
        cs.add(c(a("kernel", "(2, 2)", "num_filter", "3", "stride", "(2, 2)", "workspace", "256", "cudnn_off", "True"),
                s(2, 3, 4, 4), s(3, 3, 2, 2)));
        return cs;
    }

    @TestFactory
    Stream<DynamicTest> forwardMatchesMxnet() {
        return grid().stream().map(cs -> DynamicTest.dynamicTest(cs.attrs().toString(),
                () -> ConvTesting.checkAgainstMxnet("Deconvolution", cs.attrs(), cs.mxAttrs(), cs.shapes())));
    }

    @Test
    void forwardIsTheAdjointOfConvolution() {
        // <deconv(x; w), y> == <x, conv(y; w)> for the same geometry (float64, no bias)
        Map<String, String> attrs = a("kernel", "(3, 2)", "num_filter", "4", "num_group", "2", "stride", "(2, 1)", "pad",
                "(1, 1)", "dilate", "(1, 2)");
        Symbol deconv = Symbol.create("Deconvolution", "d", attrs, null, Symbol.variable("x"));
        Symbol conv = Symbol.create("Convolution", "c", withNoBias(attrs, "6"), null, Symbol.variable("y"));
        long[] xs = s(2, 6, 4, 5);
        InferResult r = deconv.inferShape(Map.of("x", xs));
        long[] ys = r.outShapes().get(0);
        assertArrayEquals(s(2, 4, 7, 5), ys);
        assertArrayEquals(s(6, 2, 3, 2), r.argShapes().get(1));
        double[] w = rand(72, -1, 1, 3);
        double[] x = rand(size(xs), -1, 1, 1);
        double[] y = rand(size(ys), -1, 1, 2);
        double[] dx = GradCheck.forward(deconv, new GradCheck.Inputs().put("x", xs, x).put("d_weight", s(6, 2, 3, 2), w),
                DType.FLOAT64, false).get(0);
        double[] cy = GradCheck.forward(conv, new GradCheck.Inputs().put("y", ys, y).put("c_weight", s(6, 2, 3, 2), w),
                DType.FLOAT64, false).get(0);
        double lhs = 0;
        double rhs = 0;
        for (int i = 0; i < y.length; i++) {
            lhs += dx[i] * y[i];
        }
        for (int i = 0; i < x.length; i++) {
            rhs += x[i] * cy[i];
        }
        assertEquals(lhs, rhs, 1e-10 * Math.max(1, Math.abs(lhs)));
    }

    private static Map<String, String> withNoBias(Map<String, String> attrs, String numFilter) {
        Map<String, String> m = new LinkedHashMap<>(attrs);
        m.put("num_filter", numFilter);
        m.put("no_bias", "True");
        return m;
    }

    private static void gradCheck(Map<String, String> attrs, long[] xs, long[] ws, long nf) {
        Symbol d = Symbol.create("Deconvolution", "d", attrs, null, Symbol.variable("data"));
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", xs, rand(size(xs), -1, 1, 21))
                .put("d_weight", ws, rand(size(ws), -1, 1, 22));
        List<String> wrt = new ArrayList<>(List.of("data", "d_weight"));
        if ("False".equals(attrs.get("no_bias"))) {
            in.put("d_bias", s(nf), rand((int) nf, -1, 1, 23));
            wrt.add("d_bias");
        }
        GradCheck.check(d, in, wrt, 1e-6, 1e-6, 1e-8);
    }

    @Test
    void gradient1d() {
        gradCheck(a("kernel", "(3,)", "num_filter", "3", "stride", "(2,)", "pad", "(1,)", "adj", "(1,)", "no_bias", "False"),
                s(2, 2, 4), s(2, 3, 3), 3);
    }

    @Test
    void gradient2dGroupsDilate() {
        gradCheck(a("kernel", "(2, 3)", "num_filter", "4", "num_group", "2", "stride", "(2, 1)", "dilate", "(1, 2)", "pad",
                "(0, 1)", "no_bias", "False"), s(2, 4, 3, 3), s(4, 2, 2, 3), 4);
    }

    @Test
    void gradient2dTargetShapeNoBias() {
        gradCheck(a("kernel", "(3, 3)", "num_filter", "2", "stride", "(2, 2)", "target_shape", "(6, 7)"), s(1, 3, 3, 3),
                s(3, 2, 3, 3), 2);
    }

    @Test
    void shapeInference() {
        Symbol d = Symbol.create("Deconvolution", "d", a("kernel", "(4, 4)", "num_filter", "8", "stride", "(2, 2)", "pad",
                "(1, 1)"), null, Symbol.variable("data"));
        assertEquals(List.of("data", "d_weight"), d.listArguments()); // no_bias defaults to True
        InferResult r = d.inferShape(Map.of("data", s(3, 6, 7, 9)));
        assertArrayEquals(s(6, 8, 4, 4), r.argShapes().get(1));
        assertArrayEquals(s(3, 8, 14, 18), r.outShapes().get(0));
        Symbol t = Symbol.create("Deconvolution", "d", a("kernel", "(3,)", "num_filter", "2", "stride", "(3,)", "target_shape",
                "(20,)", "no_bias", "False"), null, Symbol.variable("data"));
        InferResult rt = t.inferShape(Map.of("data", s(1, 4, 7)));
        assertArrayEquals(s(4, 2, 3), rt.argShapes().get(1));
        assertArrayEquals(s(2), rt.argShapes().get(2));
        assertArrayEquals(s(1, 2, 20), rt.outShapes().get(0));
    }

    @Test
    void errorCases() {
        Symbol data = Symbol.variable("data");
        assertThrowsMessage(() -> Symbol.create("Deconvolution", "d", a("kernel", "(3, 3)"), null, data), "num_filter");
        Symbol adj = Symbol.create("Deconvolution", "d", a("kernel", "(3, 3)", "num_filter", "2", "stride", "(2, 2)", "adj",
                "(2, 0)"), null, data);
        assertThrowsMessage(() -> bindAndRun(adj, Map.of("data", s(1, 2, 4, 4))), "adj");
        Symbol tgt = Symbol.create("Deconvolution", "d", a("kernel", "(3, 3)", "num_filter", "2", "target_shape", "(30, 30)"),
                null, data);
        assertThrowsMessage(() -> bindAndRun(tgt, Map.of("data", s(1, 2, 4, 4))), "target shape");
        Symbol grp = Symbol.create("Deconvolution", "d", a("kernel", "(3, 3)", "num_filter", "4", "num_group", "2"), null, data);
        assertThrowsMessage(() -> bindAndRun(grp, Map.of("data", s(1, 3, 4, 4))), "num_group");
        Symbol nhwc = Symbol.create("Deconvolution", "d", a("kernel", "(3, 3)", "num_filter", "2", "layout", "NHWC"), null, data);
        assertThrowsMessage(() -> bindAndRun(nhwc, Map.of("data", s(1, 4, 4, 2))), "layout");
        Symbol d3 = Symbol.create("Deconvolution", "d", a("kernel", "(2, 2, 2)", "num_filter", "2"), null, data);
        assertThrowsMessage(() -> bindAndRun(d3, Map.of("data", s(1, 2, 3, 3, 3))), "1-D or 2-D");
        Symbol pad = Symbol.create("Deconvolution", "d", a("kernel", "(2, 2)", "num_filter", "2", "pad", "(3, 3)"), null, data);
        assertThrowsMessage(() -> bindAndRun(pad, Map.of("data", s(1, 2, 2, 2))), "not positive");
        assertThrowsMessage(() -> Symbol.create("Deconvolution", "d", a("kernel", "(3, 3)", "num_filter", "2", "workspace",
                "9000"), null, data), "workspace");
    }
}
