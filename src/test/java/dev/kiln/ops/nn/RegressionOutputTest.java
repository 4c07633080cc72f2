package dev.kiln.ops.nn;

import static dev.kiln.ops.nn.NnTesting.assertClose;
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

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** LinearRegressionOutput, LogisticRegressionOutput, MAERegressionOutput. */
@ExtendWith(NoLeaks.class)
class RegressionOutputTest {

    static Symbol op(String kind, double gradScale) {
        Symbol d = Symbol.variable("data");
        Symbol l = Symbol.variable("reg_label");
        switch (kind) {
            case "linear": return Symbol.linearRegressionOutput("reg", d, l, gradScale);
            case "logistic": return Symbol.logisticRegressionOutput("reg", d, l, gradScale);
            case "mae": return Symbol.maeRegressionOutput("reg", d, l, gradScale);
            default: throw new IllegalArgumentException(kind);
        }
    }

    static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    static double forwardRef(String kind, double x) {
        return kind.equals("logistic") ? sigmoid(x) : x;
    }

    /** The loss each op differentiates, divided by m = outputs per sample and scaled. */
    static double loss(String kind, double[] x, double[] l, int m, double scale) {
        double f = 0;
        for (int i = 0; i < x.length; i++) {
            switch (kind) {
                case "linear": f += 0.5 * (x[i] - l[i]) * (x[i] - l[i]); break;
                case "logistic": {
                    double p = sigmoid(x[i]);
                    f -= l[i] * Math.log(p) + (1 - l[i]) * Math.log(1 - p);
                    break;
                }
                default: f += Math.abs(x[i] - l[i]); break;
            }
        }
        return f * scale / m;
    }

    private static GradCheck.Inputs inputs(String kind, long[] ds, long[] ls) {
        double[] l = kind.equals("logistic") ? rand(size(ls), 0, 1, 2) : rand(size(ls), -2, 2, 2);
        double[] x = rand(size(ds), -2, 2, 1);
        if (kind.equals("mae")) {
            for (int i = 0; i < x.length; i++) {  // keep |x - l| away from MAE's kink
                if (Math.abs(x[i] - l[i]) < 0.05) {
                    x[i] = (float) (x[i] + 0.1);
                }
            }
        }
        return new GradCheck.Inputs().put("data", ds, x).put("reg_label", ls, l);
    }

    private static Map<String, long[]> shapes(long[] ds, long[] ls) {
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("data", ds);
        m.put("reg_label", ls);
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"linear", "logistic", "mae"})
    void forwardMatchesReference(String kind) {
        long[] ds = shape(3, 4);
        GradCheck.Inputs in = inputs(kind, ds, ds);
        in.put("data", ds, rand(12, -30, 30, 3));
        double[] expected = NnTesting.map(in.get("data"), x -> forwardRef(kind, x));
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(op(kind, 1), in, t), t, kind);
        }
    }

    @ParameterizedTest(name = "{0} data {1} label {2} scale {3}")
    @CsvSource({"linear,'4,1','4',1", "linear,'3,4','3,4',0.5", "linear,'2,3,2','2,6',2",
            "logistic,'4,1','4',1", "logistic,'3,4','3,4',3", "logistic,'2,3,2','2,3,2',1",
            "mae,'4,1','4',1", "mae,'3,4','3,4',0.25", "mae,'2,3,2','2,3,2',1"})
    void numericGradientOfTheLoss(String kind, String dss, String lss, double scale) {
        long[] ds = SoftmaxTest.parse(dss), ls = SoftmaxTest.parse(lss);
        int m = size(ls) / (int) ls[0];
        GradCheck.Inputs in = inputs(kind, ds, ls);
        GradCheck.check(op(kind, scale), in, List.of("data"), 1e-6, 1e-6, 1e-9,
                v -> loss(kind, v.get("data"), v.get("reg_label"), m, scale));
        // closed form in both types: f(y, label) * scale / m
        double[] x = in.get("data"), l = in.get("reg_label");
        double[] expected = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double y = forwardRef(kind, x[i]);
            double f = kind.equals("mae") ? (y - l[i] > 0 ? 1 : -1) : y - l[i];
            expected[i] = f * scale / m;
        }
        for (DType t : NnTesting.FLOAT_TYPES) {
            try (Executor ex = NnTesting.bind(op(kind, scale), in, shapes(ds, ls), t, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, null);
                assertClose(expected, ex.gradDict().get("data").toDoubleArray(), t, kind + " closed form");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"linear", "logistic", "mae"})
    void largeTensorsUseTheThreadedPath(String kind) {
        long[] ds = shape(400, 100);
        GradCheck.Inputs in = inputs(kind, ds, ds);
        double[] x = in.get("data"), l = in.get("reg_label");
        double[] y = NnTesting.map(x, v -> forwardRef(kind, v));
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            g[i] = (kind.equals("mae") ? (y[i] - l[i] > 0 ? 1 : -1) : y[i] - l[i]) * 0.5 / 100;
        }
        try (Executor ex = NnTesting.bind(op(kind, 0.5), in, shapes(ds, ds), DType.FLOAT64, Set.of(), Set.of("data"))) {
            NnTesting.forwardBackward(ex, null);
            assertClose(y, ex.outputs().get(0).toDoubleArray(), DType.FLOAT64, kind + " y");
            assertClose(g, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, kind + " grad");
        }
    }

    @Test
    void maeZeroDifferenceCountsAsMinusOne() {
        long[] ds = shape(2, 2);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", ds, new double[] {1, 2, 3, 4})
                .put("reg_label", ds, new double[] {1, 0, 3, 5});
        try (Executor ex = NnTesting.bind(op("mae", 1), in, shapes(ds, ds), DType.FLOAT32, Set.of(), Set.of("data"))) {
            NnTesting.forwardBackward(ex, null);
            assertArrayEquals(new double[] {-0.5, 0.5, -0.5, -0.5}, ex.gradDict().get("data").toDoubleArray());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"linear", "logistic", "mae"})
    void labelShapeInference(String kind) {
        Symbol s = Symbol.builder(kind.equals("linear") ? "LinearRegressionOutput"
                : kind.equals("logistic") ? "LogisticRegressionOutput" : "MAERegressionOutput")
                .name("reg").input(Symbol.variable("data")).build();
        assertEquals(List.of("data", "reg_label"), s.listArguments());
        assertArrayEquals(shape(5), s.inferShape(Map.of("data", shape(5, 1))).argShapes().get(1));
        assertArrayEquals(shape(5, 3), s.inferShape(Map.of("data", shape(5, 3))).argShapes().get(1));
    }

    @ParameterizedTest
    @ValueSource(strings = {"linear", "logistic", "mae"})
    void labelShapeMismatchIsRejected(String kind) {
        assertThrowsMessage(() -> NnTesting.bindAndClose(op(kind, 1), shapes(shape(3, 4), shape(3, 5))), "reg_label",
                "(3,5)", "(3,4)");
        assertThrowsMessage(() -> NnTesting.bindAndClose(op(kind, 1), shapes(shape(3, 4), shape(4, 3))), "reg_label",
                "(4,3)", "(3,4)");
    }

    @Test
    void gradReqAddAccumulates() {
        long[] ds = shape(3, 2);
        GradCheck.Inputs in = inputs("linear", ds, ds);
        double[] x = in.get("data"), l = in.get("reg_label");
        double[] once = new double[6];
        for (int i = 0; i < 6; i++) {
            once[i] = (x[i] - l[i]) / 2;
        }
        try (Executor ex = NnTesting.bind(op("linear", 1), in, shapes(ds, ds), DType.FLOAT64, Set.of("data"), Set.of())) {
            NnTesting.forwardBackward(ex, null);
            NnTesting.forwardBackward(ex, null);
            assertClose(NnTesting.scale(once, 2), ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "add x2");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"linear", "logistic", "mae"})
    void outputSurvivesBackwardAfterFullyConnected(String kind) {
        // fc -> regression output: the backward writes d_data in place over y where allowed, but y
        // is a graph output
        Symbol net;
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 2);
        Symbol l = Symbol.variable("reg_label");
        switch (kind) {
            case "linear": net = Symbol.linearRegressionOutput("reg", fc, l, 1); break;
            case "logistic": net = Symbol.logisticRegressionOutput("reg", fc, l, 1); break;
            default: net = Symbol.maeRegressionOutput("reg", fc, l, 1); break;
        }
        GradCheck.Inputs in = new GradCheck.Inputs()
                .put("data", shape(3, 4), rand(12, -1, 1, 1))
                .put("fc_weight", shape(2, 4), rand(8, -1, 1, 2))
                .put("fc_bias", shape(2), rand(2, -1, 1, 3))
                .put("reg_label", shape(3, 2), rand(6, 0.05, 0.95, 4));
        double[] z = FullyConnectedTest.reference(in.get("data"), in.get("fc_weight"), in.get("fc_bias"), 3, 4, 2);
        double[] y = NnTesting.map(z, v -> forwardRef(kind, v));
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", shape(3, 4));
        s.put("fc_weight", shape(2, 4));
        s.put("fc_bias", shape(2));
        s.put("reg_label", shape(3, 2));
        try (Executor ex = NnTesting.bind(net, in, s, DType.FLOAT64, Set.of(), Set.of("fc_weight", "fc_bias"))) {
            ex.forwardBackward();
            assertClose(y, ex.outputs().get(0).toDoubleArray(), DType.FLOAT64, "y after backward");
        }
        boolean nearKink = false;
        for (int i = 0; i < 6; i++) {
            nearKink |= Math.abs(z[i] - in.get("reg_label")[i]) < 1e-3;
        }
        if (!nearKink) {
            GradCheck.check(net, in, List.of("data", "fc_weight", "fc_bias"), 1e-6, 1e-6, 1e-9, v -> loss(kind,
                    FullyConnectedTest.reference(v.get("data"), v.get("fc_weight"), v.get("fc_bias"), 3, 4, 2),
                    v.get("reg_label"), 2, 1));
        }
    }
}
