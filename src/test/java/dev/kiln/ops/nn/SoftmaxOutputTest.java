package dev.kiln.ops.nn;

import static dev.kiln.ops.nn.NnTesting.assertClose;
import static dev.kiln.ops.nn.NnTesting.labels;
import static dev.kiln.ops.nn.NnTesting.shape;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.ToDoubleFunction;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** SoftmaxOutput (alias Softmax): forward softmax, cross-entropy gradient with all its options. */
@ExtendWith(NoLeaks.class)
class SoftmaxOutputTest {

    /** The options of one SoftmaxOutput node, with the layout the op uses for them. */
    static final class Opts {
        double gradScale = 1;
        double ignoreLabel = -1;
        boolean useIgnore;
        boolean multiOutput;
        boolean preserveShape;
        String normalization = "null";
        double smoothAlpha;
        boolean outGrad;

        Symbol build() {
            return Symbol.softmaxOutputBuilder().setData(Symbol.variable("data")).optName("so")
                    .optGradScale(gradScale).optIgnoreLabel(ignoreLabel).optUseIgnore(useIgnore)
                    .optMultiOutput(multiOutput).optPreserveShape(preserveShape).optNormalization(normalization)
                    .optSmoothAlpha(smoothAlpha).optOutGrad(outGrad).build();
        }

        /** [outer, K, inner] for data of shape s. */
        int[] dims(long[] s) {
            if (multiOutput) {
                int inner = 1;
                for (int i = 2; i < s.length; i++) {
                    inner *= (int) s[i];
                }
                return new int[] {(int) s[0], (int) s[1], inner};
            }
            if (preserveShape) {
                return new int[] {size(s) / (int) s[s.length - 1], (int) s[s.length - 1], 1};
            }
            return new int[] {(int) s[0], size(s) / (int) s[0], 1};
        }
    }

    /** Softmax over K of x viewed as [outer, K, inner]. */
    static double[] softmax(double[] x, int[] d) {
        double[] p = new double[x.length];
        for (int o = 0; o < d[0]; o++) {
            for (int j = 0; j < d[2]; j++) {
                double mx = Double.NEGATIVE_INFINITY;
                for (int k = 0; k < d[1]; k++) {
                    mx = Math.max(mx, x[(o * d[1] + k) * d[2] + j]);
                }
                double sum = 0;
                for (int k = 0; k < d[1]; k++) {
                    sum += Math.exp(x[(o * d[1] + k) * d[2] + j] - mx);
                }
                for (int k = 0; k < d[1]; k++) {
                    int i = (o * d[1] + k) * d[2] + j;
                    p[i] = Math.exp(x[i] - mx) / sum;
                }
            }
        }
        return p;
    }

    /** grad_scale / norm (and / spatial size for multi_output unless valid), as the op scales. */
    static double factor(Opts o, double[] label, int[] d) {
        double count = 1;
        if (o.normalization.equals("batch")) {
            count = o.multiOutput ? d[0] : d[0] * d[2];
        } else if (o.normalization.equals("valid")) {
            int valid = 0;
            for (double l : label) {
                valid += (int) l != (int) o.ignoreLabel ? 1 : 0;
            }
            count = Math.max(valid, 1);
        }
        double f = o.gradScale / count;
        if (o.multiOutput && !o.normalization.equals("valid")) {
            f /= d[2];
        }
        return f;
    }

    /** The (smoothed) target probability of class k for a row whose label is lab. */
    static double target(Opts o, int k, int lab, int nk) {
        double alpha = o.multiOutput ? 0 : o.smoothAlpha;
        return k == lab ? 1 - alpha : alpha / (nk - 1);
    }

    /**
     * The loss SoftmaxOutput differentiates for class labels: factor * sum over rows (not
     * ignored) of the cross-entropy -sum_k target_k log p_k.
     */
    static double loss(Opts o, long[] s, double[] x, double[] label) {
        int[] d = o.dims(s);
        double[] p = softmax(x, d);
        double f = 0;
        for (int oo = 0; oo < d[0]; oo++) {
            for (int j = 0; j < d[2]; j++) {
                int lab = (int) label[oo * d[2] + j];
                if (o.useIgnore && lab == (int) o.ignoreLabel) {
                    continue;
                }
                for (int k = 0; k < d[1]; k++) {
                    f -= target(o, k, lab, d[1]) * Math.log(p[(oo * d[1] + k) * d[2] + j]);
                }
            }
        }
        return f * factor(o, label, d);
    }

    /** The gradient the op computes: (p - target) * factor (0 for ignored rows), times ograd if given. */
    static double[] gradient(Opts o, long[] s, double[] x, double[] label, double[] ograd) {
        int[] d = o.dims(s);
        double[] p = softmax(x, d);
        double f = factor(o, label, d);
        double[] g = new double[x.length];
        for (int oo = 0; oo < d[0]; oo++) {
            for (int k = 0; k < d[1]; k++) {
                for (int j = 0; j < d[2]; j++) {
                    int i = (oo * d[1] + k) * d[2] + j;
                    int lab = (int) label[oo * d[2] + j];
                    g[i] = o.useIgnore && lab == (int) o.ignoreLabel ? 0 : (p[i] - target(o, k, lab, d[1])) * f;
                    if (ograd != null) {
                        g[i] *= ograd[i];
                    }
                }
            }
        }
        return g;
    }

    private static ToDoubleFunction<Map<String, double[]>> objective(Opts o, long[] s) {
        return v -> loss(o, s, v.get("data"), v.get("so_label"));
    }

    private static GradCheck.Inputs inputs(long[] ds, long[] ls, double[] label) {
        return new GradCheck.Inputs().put("data", ds, rand(size(ds), -2, 2, 1)).put("so_label", ls, label);
    }

    private static Map<String, long[]> shapes(long[] ds, long[] ls) {
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("data", ds);
        m.put("so_label", ls);
        return m;
    }

    // ---- forward ---------------------------------------------------------------------------------

    @Test
    void argumentsAndLabelShapeInference() {
        Symbol so = Symbol.softmaxOutput("softmax", Symbol.variable("data"));
        assertEquals(List.of("data", "softmax_label"), so.listArguments());
        assertEquals(List.of("softmax_output"), so.listOutputs());
        assertArrayEquals(shape(4), so.inferShape(Map.of("data", shape(4, 5))).argShapes().get(1));
        Opts p = new Opts();
        p.preserveShape = true;
        assertArrayEquals(shape(2, 3), p.build().inferShape(Map.of("data", shape(2, 3, 5))).argShapes().get(1));
        Opts m = new Opts();
        m.multiOutput = true;
        assertArrayEquals(shape(2, 12), m.build().inferShape(Map.of("data", shape(2, 3, 4, 3))).argShapes().get(1));
        Symbol alias = Symbol.builder("Softmax").name("sm").input(Symbol.variable("data")).build();
        assertEquals(List.of("data", "sm_label"), alias.listArguments());
    }

    @ParameterizedTest
    @CsvSource({"default,'4,5','4'", "preserve,'2,3,5','2,3'", "multi,'2,3,2,2','2,4'", "multi,'2,3,2,2','2,2,2'",
            "multi,'2,3,2,2','2,1,2,2'", "multi,'2,4,5','2,5'"})
    void forwardIsSoftmaxOverTheRightAxis(String mode, String dss, String lss) {
        Opts o = opts(mode);
        long[] ds = SoftmaxTest.parse(dss), ls = SoftmaxTest.parse(lss);
        int[] d = o.dims(ds);
        GradCheck.Inputs in = inputs(ds, ls, labels(size(ls), d[1], 2));
        double[] expected = softmax(in.get("data"), d);
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(o.build(), in, t), t, mode);
        }
    }

    @Test
    void forwardIsStableForLargeScores() {
        Opts o = new Opts();
        long[] ds = shape(2, 3);
        GradCheck.Inputs in = inputs(ds, shape(2), new double[] {0, 2});
        in.put("data", ds, new double[] {800, 801, 802, -900, -901, -899});
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(softmax(in.get("data"), o.dims(ds)), NnTesting.forward(o.build(), in, t), t, "large");
        }
    }

    // ---- gradients -------------------------------------------------------------------------------

    static Opts opts(String mode) {
        Opts o = new Opts();
        o.multiOutput = mode.equals("multi");
        o.preserveShape = mode.equals("preserve");
        return o;
    }

    @ParameterizedTest(name = "{0} norm={1} scale={2} ignore={3} alpha={4}")
    @CsvSource({
        "default,null,1,false,0", "default,null,2.5,false,0", "default,batch,1,false,0", "default,batch,0.5,false,0",
        "default,valid,1,true,0", "default,valid,3,false,0", "default,null,1,true,0", "default,batch,1,true,0",
        "default,null,1,false,0.1", "default,batch,2,true,0.2", "default,valid,1,true,0.3",
        "preserve,null,1,false,0", "preserve,batch,1,false,0", "preserve,valid,1,true,0.1",
        "multi,null,1,false,0", "multi,batch,1,false,0", "multi,valid,1,true,0", "multi,batch,2,true,0",
        "multi,null,1,false,0.2"})
    void numericGradientOfTheLoss(String mode, String norm, double scale, boolean useIgnore, double alpha) {
        Opts o = opts(mode);
        o.normalization = norm;
        o.gradScale = scale;
        o.useIgnore = useIgnore;
        o.smoothAlpha = alpha;
        long[] ds, ls;
        switch (mode) {
            case "preserve": ds = shape(2, 3, 4); ls = shape(2, 3); break;
            case "multi": ds = shape(2, 3, 2, 2); ls = shape(2, 4); break;
            default: ds = shape(5, 4); ls = shape(5); break;
        }
        int[] d = o.dims(ds);
        double[] label = labels(size(ls), d[1], 3);
        if (useIgnore || norm.equals("valid")) {
            o.ignoreLabel = useIgnore ? -1 : 2;  // without use_ignore a real class is "invalid" for the count
            label[0] = o.ignoreLabel;
            label[label.length - 1] = o.ignoreLabel;
        }
        GradCheck.Inputs in = inputs(ds, ls, label);
        GradCheck.check(o.build(), in, List.of("data"), 1e-6, 1e-6, 1e-9, objective(o, ds));
        // and the closed form, in both types
        for (DType t : NnTesting.FLOAT_TYPES) {
            try (Executor ex = NnTesting.bind(o.build(), in, shapes(ds, ls), t, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, null);
                assertClose(gradient(o, ds, in.get("data"), label, null), ex.gradDict().get("data").toDoubleArray(), t,
                        "closed form");
            }
        }
    }

    @Test
    void largeTensorsUseTheThreadedPath() {
        for (String mode : new String[] {"default", "multi"}) {
            Opts o = opts(mode);
            o.normalization = "valid";
            o.useIgnore = true;
            o.smoothAlpha = mode.equals("default") ? 0.1 : 0;
            long[] ds = mode.equals("default") ? shape(500, 80) : shape(20, 10, 200);
            long[] ls = mode.equals("default") ? shape(500) : shape(20, 200);
            int[] d = o.dims(ds);
            double[] label = labels(size(ls), d[1], 51);
            for (int i = 0; i < label.length; i += 7) {
                label[i] = -1;
            }
            GradCheck.Inputs in = inputs(ds, ls, label);
            try (Executor ex = NnTesting.bind(o.build(), in, shapes(ds, ls), DType.FLOAT64, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, null);
                assertClose(softmax(in.get("data"), d), ex.outputs().get(0).toDoubleArray(), DType.FLOAT64, mode + " p");
                assertClose(gradient(o, ds, in.get("data"), label, null), ex.gradDict().get("data").toDoubleArray(),
                        DType.FLOAT64, mode + " grad");
            }
        }
    }

    @Test
    void multiOutputLabelWithSingletonAxisGradient() {
        Opts o = opts("multi");
        o.normalization = "batch";
        long[] ds = shape(2, 3, 2, 2), ls = shape(2, 1, 2, 2);
        GradCheck.Inputs in = inputs(ds, ls, labels(8, 3, 52));
        GradCheck.check(o.build(), in, List.of("data"), 1e-6, 1e-6, 1e-9, objective(o, ds));
    }

    @Test
    void ignoredRowsGetZeroGradient() {
        Opts o = new Opts();
        o.useIgnore = true;
        o.ignoreLabel = 3;
        long[] ds = shape(3, 4);
        double[] label = {3, 1, 3};
        GradCheck.Inputs in = inputs(ds, shape(3), label);
        try (Executor ex = NnTesting.bind(o.build(), in, shapes(ds, shape(3)), DType.FLOAT32, Set.of(), Set.of("data"))) {
            NnTesting.forwardBackward(ex, null);
            double[] g = ex.gradDict().get("data").toDoubleArray();
            for (int k = 0; k < 4; k++) {
                assertEquals(0, g[k]);
                assertEquals(0, g[8 + k]);
            }
            assertClose(gradient(o, ds, in.get("data"), label, null), g, DType.FLOAT32, "row 1");
        }
    }

    @Test
    void validNormalizationWithAllIgnoredDividesByOne() {
        Opts o = new Opts();
        o.normalization = "valid";
        long[] ds = shape(2, 3);
        double[] label = {-1, -1};
        GradCheck.Inputs in = inputs(ds, shape(2), label);
        try (Executor ex = NnTesting.bind(o.build(), in, shapes(ds, shape(2)), DType.FLOAT64, Set.of(), Set.of("data"))) {
            NnTesting.forwardBackward(ex, null);
            // no use_ignore: rows keep p - target (no class matches -1), divided by max(0, 1) = 1
            double[] p = softmax(in.get("data"), o.dims(ds));
            assertClose(p, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "all invalid");
        }
    }

    /** A NaN label names no class (kiln/int_convert.h's label_class; the GPU follows it): its row keeps p. */
    @Test
    void aNanLabelNamesNoClass() {
        Opts o = new Opts();
        o.normalization = "valid";
        long[] ds = shape(2, 3);
        double[] label = {Double.NaN, 0};
        GradCheck.Inputs in = inputs(ds, shape(2), label);
        try (Executor ex = NnTesting.bind(o.build(), in, shapes(ds, shape(2)), DType.FLOAT64, Set.of(), Set.of("data"))) {
            NnTesting.forwardBackward(ex, null);
            double[] p = softmax(in.get("data"), o.dims(ds));
            double[] want = p.clone();
            want[3] -= 1;  // row 1's class 0; both rows are valid (no use_ignore): divided by 2
            for (int i = 0; i < want.length; i++) {
                want[i] /= 2;
            }
            assertClose(want, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "NaN label");
        }
    }

    @Test
    void probabilityLabelsOfTheDataShape() {
        Opts o = new Opts();
        o.gradScale = 1.5;
        o.normalization = "batch";  // ignored for probability labels
        long[] ds = shape(3, 4);
        double[] l = rand(12, 0.1, 1, 4);
        for (int r = 0; r < 3; r++) {
            double s = 0;
            for (int k = 0; k < 4; k++) {
                s += l[r * 4 + k];
            }
            for (int k = 0; k < 4; k++) {
                l[r * 4 + k] /= s;
            }
        }
        GradCheck.Inputs in = inputs(ds, ds, l);
        assertArrayEquals(ds, o.build().inferShape(shapes(ds, ds)).argShapes().get(1));
        ToDoubleFunction<Map<String, double[]>> f = v -> {
            double[] p = softmax(v.get("data"), o.dims(ds));
            double loss = 0;
            for (int i = 0; i < p.length; i++) {
                loss -= v.get("so_label")[i] * Math.log(p[i]);
            }
            return loss * 1.5;
        };
        GradCheck.check(o.build(), in, List.of("data"), 1e-6, 1e-6, 1e-9, f);
    }

    @Test
    void outGradMultipliesByHeadGradient() {
        Opts o = new Opts();
        o.outGrad = true;
        o.gradScale = 2;
        long[] ds = shape(3, 4);
        double[] label = labels(3, 4, 5);
        GradCheck.Inputs in = inputs(ds, shape(3), label);
        double[] head = rand(12, -1, 1, 6);
        for (DType t : NnTesting.FLOAT_TYPES) {
            try (Executor ex = NnTesting.bind(o.build(), in, shapes(ds, shape(3)), t, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, head);
                assertClose(gradient(o, ds, in.get("data"), label, head), ex.gradDict().get("data").toDoubleArray(), t,
                        "out_grad");
            }
        }
    }

    @Test
    void gradReqAddAccumulatesAndLabelGradientIsZero() {
        Opts o = new Opts();
        long[] ds = shape(3, 4);
        double[] label = labels(3, 4, 7);
        GradCheck.Inputs in = inputs(ds, shape(3), label);
        double[] once = gradient(o, ds, in.get("data"), label, null);
        try (Executor ex = NnTesting.bind(o.build(), in, shapes(ds, shape(3)), DType.FLOAT64, Set.of("data"),
                Set.of("so_label"))) {
            ex.gradDict().get("so_label").fill(7);
            NnTesting.forwardBackward(ex, null);
            NnTesting.forwardBackward(ex, null);
            assertClose(NnTesting.scale(once, 2), ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "add x2");
            assertArrayEquals(new double[3], ex.gradDict().get("so_label").toDoubleArray());
        }
    }

    @Test
    void outputSurvivesBackwardAfterFullyConnected() {
        // fc -> SoftmaxOutput: the backward may write d_data in place over p, but p is a graph
        // output the caller reads after forwardBackward
        Symbol net = Symbol.softmaxOutput("so", Symbol.fullyConnected("fc", Symbol.variable("data"), 4));
        long[] ds = shape(3, 5);
        double[] label = labels(3, 4, 8);
        GradCheck.Inputs in = new GradCheck.Inputs()
                .put("data", ds, rand(15, -1, 1, 1))
                .put("fc_weight", shape(4, 5), rand(20, -1, 1, 2))
                .put("fc_bias", shape(4), rand(4, -1, 1, 3))
                .put("so_label", shape(3), label);
        double[] z = FullyConnectedTest.reference(in.get("data"), in.get("fc_weight"), in.get("fc_bias"), 3, 5, 4);
        double[] p = softmax(z, new int[] {3, 4, 1});
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", ds);
        s.put("fc_weight", shape(4, 5));
        s.put("fc_bias", shape(4));
        s.put("so_label", shape(3));
        for (DType t : NnTesting.FLOAT_TYPES) {
            try (Executor ex = NnTesting.bind(net, in, s, t, Set.of(), Set.of("fc_weight", "fc_bias"))) {
                ex.forwardBackward();
                assertClose(p, ex.outputs().get(0).toDoubleArray(), t, "p after forwardBackward");
                NnTesting.forwardBackward(ex, null);
                assertClose(p, ex.outputs().get(0).toDoubleArray(), t, "p after backward");
            }
        }
        Opts o = new Opts();
        GradCheck.check(net, in, List.of("data", "fc_weight", "fc_bias"), 1e-6, 1e-6, 1e-9, v -> loss(o, shape(3, 4),
                FullyConnectedTest.reference(v.get("data"), v.get("fc_weight"), v.get("fc_bias"), 3, 5, 4),
                v.get("so_label")));
    }

    // ---- errors ----------------------------------------------------------------------------------

    @Test
    void labelShapeMismatchIsRejected() {
        Symbol so = new Opts().build();
        assertThrowsMessage(() -> NnTesting.bindAndClose(so, shapes(shape(4, 5), shape(3))), "so_label", "(3,)", "(4,)");
        Opts p = new Opts();
        p.preserveShape = true;
        assertThrowsMessage(() -> NnTesting.bindAndClose(p.build(), shapes(shape(2, 3, 5), shape(2, 4))), "(2,4)",
                "(2,3)");
    }

    @Test
    void multiOutputLabelShapeMismatchListsExpectedShapes() {
        Opts o = new Opts();
        o.multiOutput = true;
        assertThrowsMessage(() -> NnTesting.bindAndClose(o.build(), shapes(shape(2, 3, 4, 4), shape(2, 5))),
                "(2,16)", "(2,4,4)", "(2,5)");
        assertThrowsMessage(() -> NnTesting.bindAndClose(o.build(), Map.of("data", shape(6))), "multi_output", "(6,)");
    }

    @Test
    void rankThreeDataWithoutMultiOutputTakesOneLabelPerRow() {
        // default mode softmaxes (N, C*H) rows: one label per row, (N,), is inferred and trains (MXNet
        // infers (N, C) and its kernel reads only the first N of them)
        Opts o = new Opts();
        long[] ds = shape(2, 3, 4), ls = shape(2);
        GradCheck.Inputs in = inputs(ds, ls, labels(2, 12, 53));
        assertClose(softmax(in.get("data"), o.dims(ds)), NnTesting.forward(o.build(), in, DType.FLOAT64), DType.FLOAT64,
                "forward");
        GradCheck.check(o.build(), in, List.of("data"), 1e-6, 1e-6, 1e-9, objective(o, ds));
        // MXNet's own label shape (N, C) binds for a forward (predict, score); a backward reports the
        // label / row mismatch instead of reading past the labels
        long[] mxLabel = shape(2, 3);
        GradCheck.Inputs in6 = inputs(ds, mxLabel, labels(6, 12, 53));
        assertClose(softmax(in6.get("data"), o.dims(ds)), NnTesting.forward(o.build(), in6, DType.FLOAT64), DType.FLOAT64,
                "forward with (N, C) labels");
        try (Executor ex = NnTesting.bind(o.build(), in6, shapes(ds, mxLabel), DType.FLOAT64, Set.of(), Set.of("data"))) {
            assertThrowsMessage(() -> NnTesting.forwardBackward(ex, null), "6 labels", "2 softmax rows", "(2,3)", "(2,3,4)");
        }
        assertThrowsMessage(() -> NnTesting.bindAndClose(o.build(), shapes(ds, shape(3))), "Shape inconsistent", "(3,)", "(2,)");
    }

    @Test
    void badParametersAreRejected() {
        assertThrowsMessage(() -> Symbol.softmaxOutputBuilder().setData(Symbol.variable("d")).optSmoothAlpha(1.5).build(),
                "smooth_alpha");
        assertThrowsMessage(() -> Symbol.softmaxOutputBuilder().setData(Symbol.variable("d")).optNormalization("mean").build(),
                "normalization", "mean");
    }
}
