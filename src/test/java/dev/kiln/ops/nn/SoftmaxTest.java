package dev.kiln.ops.nn;

import static dev.kiln.ops.nn.NnTesting.assertClose;
import static dev.kiln.ops.nn.NnTesting.shape;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
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

/** softmax, log_softmax, softmin and SoftmaxActivation. */
@ExtendWith(NoLeaks.class)
class SoftmaxTest {

    /** Softmax (or log-softmax) of x / t along {@code axis}, with max subtraction. */
    static double[] reference(double[] x, long[] s, int axis, double t, boolean log) {
        int ax = axis < 0 ? axis + s.length : axis;
        int outer = 1, inner = 1, k = (int) s[ax];
        for (int i = 0; i < ax; i++) {
            outer *= (int) s[i];
        }
        for (int i = ax + 1; i < s.length; i++) {
            inner *= (int) s[i];
        }
        double[] y = new double[x.length];
        for (int o = 0; o < outer; o++) {
            for (int j = 0; j < inner; j++) {
                double mx = Double.NEGATIVE_INFINITY;
                for (int c = 0; c < k; c++) {
                    mx = Math.max(mx, x[(o * k + c) * inner + j] / t);
                }
                double sum = 0;
                for (int c = 0; c < k; c++) {
                    sum += Math.exp(x[(o * k + c) * inner + j] / t - mx);
                }
                for (int c = 0; c < k; c++) {
                    int i = (o * k + c) * inner + j;
                    double z = x[i] / t - mx;
                    y[i] = log ? z - Math.log(sum) : Math.exp(z) / sum;
                }
            }
        }
        return y;
    }

    private static Symbol op(boolean log, int axis, double t) {
        Symbol d = Symbol.variable("data");
        if (Double.isNaN(t)) {
            return log ? Symbol.logSoftmax("sm", d, axis) : Symbol.softmax("sm", d, axis);
        }
        return log ? Symbol.logSoftmax("sm", d, axis, t) : Symbol.softmax("sm", d, axis, t);
    }

    @ParameterizedTest
    @CsvSource({"'3,7',-1,NaN", "'3,7',1,2.5", "'5,4',0,NaN", "'4,3,5',1,NaN", "'2,3,70',1,0.5", "'2,3,70',-2,NaN",
            "'2,2,3,2',2,NaN", "'6',0,NaN"})
    void forwardMatchesReference(String shapeStr, int axis, double t) {
        long[] s = parse(shapeStr);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(size(s), -3, 3, 1));
        for (boolean log : new boolean[] {false, true}) {
            double[] expected = reference(in.get("data"), s, axis, Double.isNaN(t) ? 1 : t, log);
            for (DType type : NnTesting.FLOAT_TYPES) {
                assertClose(expected, NnTesting.forward(op(log, axis, t), in, type), type,
                        (log ? "log_softmax " : "softmax ") + shapeStr + " axis " + axis);
            }
        }
    }

    @Test
    void defaultAxisIsLast() {
        long[] s = shape(3, 4);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(12, -3, 3, 2));
        assertClose(reference(in.get("data"), s, -1, 1, false),
                NnTesting.forward(Symbol.softmax("sm", Symbol.variable("data")), in, DType.FLOAT64), DType.FLOAT64, "softmax");
        assertClose(reference(in.get("data"), s, -1, 1, true),
                NnTesting.forward(Symbol.logSoftmax("sm", Symbol.variable("data")), in, DType.FLOAT64), DType.FLOAT64, "log");
    }

    @Test
    void largeInputsAreStable() {
        long[] s = shape(2, 3);
        double[] x = {1000, 1001, 1002, -1000, -1001, -1003};
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, x);
        for (DType t : NnTesting.FLOAT_TYPES) {
            double[] p = NnTesting.forward(op(false, -1, Double.NaN), in, t);
            double[] lp = NnTesting.forward(op(true, -1, Double.NaN), in, t);
            for (int i = 0; i < 6; i++) {
                assertTrue(Double.isFinite(p[i]) && Double.isFinite(lp[i]), t + " " + i);
            }
            assertClose(reference(x, s, -1, 1, false), p, t, "softmax large");
            assertClose(reference(x, s, -1, 1, true), lp, t, "log_softmax large");
        }
    }

    @ParameterizedTest
    @CsvSource({"'3,5',-1,NaN", "'3,5',1,2.0", "'2,3,4',1,NaN", "'2,3,4',0,0.7", "'2,2,66',1,NaN"})
    void numericGradient(String shapeStr, int axis, double t) {
        long[] s = parse(shapeStr);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(size(s), -2, 2, 3));
        for (boolean log : new boolean[] {false, true}) {
            GradCheck.check(op(log, axis, t), in, List.of("data"), 1e-5, 1e-6, 1e-8);
        }
    }

    @Test
    void largeTensorsUseTheThreadedPath() {
        for (String c : new String[] {"400,100;-1", "4,100,100;1", "3,130,90;2"}) {
            long[] s = parse(c.split(";")[0]);
            int axis = Integer.parseInt(c.split(";")[1]);
            int n = size(s);
            int ax = axis < 0 ? axis + s.length : axis;
            int k = (int) s[ax], inner = 1;
            for (int i = ax + 1; i < s.length; i++) {
                inner *= (int) s[i];
            }
            GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(n, -4, 4, 41));
            double[] dy = rand(n, -1, 1, 42);
            for (boolean log : new boolean[] {false, true}) {
                double t = 1.5;
                double[] y = reference(in.get("data"), s, axis, t, log);
                double[] dx = new double[n];
                for (int base = 0; base < n; base++) {
                    int o = base / (k * inner), j = base % inner;
                    if ((base / inner) % k != 0) {
                        continue;  // one pass per (o, j) line
                    }
                    double sum = 0;
                    for (int q = 0; q < k; q++) {
                        int i = (o * k + q) * inner + j;
                        sum += log ? dy[i] : dy[i] * y[i];
                    }
                    for (int q = 0; q < k; q++) {
                        int i = (o * k + q) * inner + j;
                        dx[i] = (log ? dy[i] - Math.exp(y[i]) * sum : y[i] * (dy[i] - sum)) / t;
                    }
                }
                try (Executor ex = NnTesting.bind(op(log, axis, t), in, Map.of("data", s), DType.FLOAT64, Set.of(),
                        Set.of("data"))) {
                    NnTesting.forwardBackward(ex, dy);
                    assertClose(y, ex.outputs().get(0).toDoubleArray(), DType.FLOAT64, c + " y");
                    assertClose(dx, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, c + " dx");
                }
            }
        }
    }

    @Test
    void gradReqAddAccumulates() {
        long[] s = shape(3, 4);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(12, -2, 2, 4));
        double[] dy = rand(12, -1, 1, 5);
        for (boolean log : new boolean[] {false, true}) {
            Symbol sym = op(log, -1, Double.NaN);
            double[] once;
            try (Executor ex = NnTesting.bind(sym, in, Map.of("data", s), DType.FLOAT64, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, dy);
                once = ex.gradDict().get("data").toDoubleArray();
            }
            try (Executor ex = NnTesting.bind(sym, in, Map.of("data", s), DType.FLOAT64, Set.of("data"), Set.of())) {
                NnTesting.forwardBackward(ex, dy);
                NnTesting.forwardBackward(ex, dy);
                assertClose(NnTesting.scale(once, 2), ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "add x2");
            }
        }
    }

    @Test
    void chainedSoftmaxKeepsSharedOutput() {
        // B = softmax(A * 2); C = log_softmax(B); D = B * 3: C's in-place forward must not clobber B
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.softmax("b", a.mul(2.0));
        Symbol c = Symbol.logSoftmax("c", b);
        Symbol g = Symbol.group(c, b.mul(3.0));
        long[] s = shape(2, 5);
        GradCheck.Inputs in = new GradCheck.Inputs().put("a", s, rand(10, -2, 2, 6));
        double[] bv = reference(NnTesting.scale(in.get("a"), 2), s, -1, 1, false);
        List<double[]> out = GradCheck.forward(g, in, DType.FLOAT64, true);
        assertClose(reference(bv, s, -1, 1, true), out.get(0), DType.FLOAT64, "C");
        assertClose(NnTesting.scale(bv, 3), out.get(1), DType.FLOAT64, "D");
        GradCheck.check(g, in, List.of("a"), 1e-6, 1e-6, 1e-9);
    }

    // ---- SoftmaxActivation ----------------------------------------------------------------------

    @Test
    void softmaxActivationInstanceNormalizesEachSample() {
        long[] s = shape(3, 2, 4);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(24, -3, 3, 7));
        double[] expected = reference(in.get("data"), shape(3, 8), -1, 1, false);
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(Symbol.softmaxActivation("sa", Symbol.variable("data")), in, t), t,
                    "instance");
            assertClose(expected,
                    NnTesting.forward(Symbol.softmaxActivation("sa", Symbol.variable("data"), "instance"), in, t), t,
                    "instance explicit");
        }
        GradCheck.check(Symbol.softmaxActivation("sa", Symbol.variable("data")), in, List.of("data"), 1e-6, 1e-6, 1e-9);
    }

    @Test
    void softmaxActivationChannelNormalizesAxisOne() {
        long[] s = shape(2, 3, 2, 2);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(24, -3, 3, 8));
        Symbol sym = Symbol.softmaxActivation("sa", Symbol.variable("data"), "channel");
        double[] expected = reference(in.get("data"), s, 1, 1, false);
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(sym, in, t), t, "channel");
        }
        GradCheck.check(sym, in, List.of("data"), 1e-6, 1e-6, 1e-9);
    }

    // ---- errors ----------------------------------------------------------------------------------

    @Test
    void axisOutOfRangeIsRejected() {
        Symbol sym = Symbol.softmax("sm", Symbol.variable("data"), 2);
        assertThrowsMessage(() -> NnTesting.bindAndClose(sym, Map.of("data", shape(2, 3))), "axis 2", "(2,3)");
        Symbol neg = Symbol.logSoftmax("sm", Symbol.variable("data"), -3);
        assertThrowsMessage(() -> NnTesting.bindAndClose(neg, Map.of("data", shape(2, 3))), "axis -3", "(2,3)");
    }

    @Test
    void useLengthIsRejectedAtBind() {
        for (String name : new String[] {"softmax", "log_softmax"}) {
            Symbol sym = Symbol.builder(name).name("sm").input(Symbol.variable("data")).param("use_length", true).build();
            assertEquals(List.of("data", "sm_length"), sym.listArguments());
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("data", shape(2, 3));
            shapes.put("sm_length", shape(2));
            assertThrowsMessage(() -> NnTesting.bindAndClose(sym, shapes), "use_length", "not supported");
        }
    }

    @Test
    void outputDtypeOtherThanInputIsRejected() {
        Symbol sym = Symbol.builder("softmax").name("sm").input(Symbol.variable("data")).param("dtype", DType.FLOAT64).build();
        assertThrowsMessage(() -> NnTesting.bindAndClose(sym, Map.of("data", shape(2, 3))), "dtype", "float64",
                "float32");
        // the input's own type is accepted
        try (Executor ex = NnTesting.bind(sym, Map.of("data", shape(2, 3)), DType.FLOAT64, a -> GradReq.NULL, 1)) {
            ex.forward(false);
            assertEquals(DType.FLOAT64, ex.outputs().get(0).dtype());
        }
    }

    @Test
    void softmaxActivationChannelNeedsRankThree() {
        Symbol sym = Symbol.softmaxActivation("sa", Symbol.variable("data"), "channel");
        assertThrowsMessage(() -> NnTesting.bindAndClose(sym, Map.of("data", shape(2, 3))), "channel", "(2,3)");
        assertThrowsMessage(() -> Symbol.softmaxActivation("sa", Symbol.variable("data"), "pixel"), "mode", "pixel");
    }

    static long[] parse(String s) {
        String[] p = s.split(",");
        long[] d = new long[p.length];
        for (int i = 0; i < p.length; i++) {
            d[i] = Long.parseLong(p[i].trim());
        }
        return d;
    }

    // ---- softmin: softmax of -x/T ------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({"'3,7',-1,1", "'3,7',1,2.5", "'4,3,5',1,1", "'2,3,70',-1,0.5", "'2,3,70',1,1", "'6',0,3"})
    void softminMatchesReferenceAndGradients(String shapeStr, int axis, double t) {
        long[] s = parse(shapeStr);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, rand(size(s), -3, 3, 11));
        Symbol sym = Symbol.softmin("sm", Symbol.variable("data"), axis, t);
        double[] expected = reference(in.get("data"), s, axis, -t, false);  // x / (-t) = -x / t
        for (DType type : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(sym, in, type), type, "softmin " + shapeStr + " axis " + axis);
        }
        GradCheck.check(sym, in, List.of("data"), 1e-5, 1e-6, 1e-8);
    }

    @Test
    void softminIsStableForLargeInputs() {
        // the stabilizer is min(x) (the largest -x/T): max(x) would overflow exp((max - x)/T)
        long[] s = shape(2, 40);
        double[] x = new double[80];
        for (int i = 0; i < 80; i++) {
            x[i] = (i % 2 == 0 ? 1000 : -1000) + i;
        }
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, x);
        for (DType t : NnTesting.FLOAT_TYPES) {
            double[] p = NnTesting.forward(Symbol.softmin("sm", Symbol.variable("data"), -1, 1), in, t);
            for (double v : p) {
                assertTrue(Double.isFinite(v), t + " softmin of large inputs");
            }
            assertClose(reference(x, s, -1, -1, false), p, t, "softmin large");
        }
    }
}
