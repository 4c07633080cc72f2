package dev.kiln.ops.nn;

import static dev.kiln.ops.nn.NnTesting.assertClose;
import static dev.kiln.ops.nn.NnTesting.shape;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.Executor;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.DoubleUnaryOperator;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Activation (relu, sigmoid, tanh, softrelu, softsign). */
@ExtendWith(NoLeaks.class)
class ActivationTest {

    static DoubleUnaryOperator ref(String act) {
        switch (act) {
            case "relu": return x -> x > 0 ? x : 0;
            case "sigmoid": return x -> 1 / (1 + Math.exp(-x));
            case "tanh": return Math::tanh;
            case "softrelu": return x -> x > 20 ? x : Math.log1p(Math.exp(x));
            case "softsign": return x -> x / (1 + Math.abs(x));
            default: throw new IllegalArgumentException(act);
        }
    }

    static DoubleUnaryOperator dref(String act) {
        switch (act) {
            case "relu": return x -> x > 0 ? 1 : 0;
            case "sigmoid": return x -> { double s = 1 / (1 + Math.exp(-x)); return s * (1 - s); };
            case "tanh": return x -> 1 - Math.tanh(x) * Math.tanh(x);
            case "softrelu": return x -> 1 / (1 + Math.exp(-x));
            case "softsign": return x -> 1 / ((1 + Math.abs(x)) * (1 + Math.abs(x)));
            default: throw new IllegalArgumentException(act);
        }
    }

    private static final long[] SHAPE = shape(3, 4, 5);

    private static double[] data() {
        double[] x = rand(60, -4, 4, 1e-3, 1);
        x[0] = 25;    // softrelu's x > 20 branch
        x[1] = -30;   // saturated sigmoid / softrelu
        x[2] = 19.5;
        x[3] = -0.75;
        return x;
    }

    @ParameterizedTest
    @ValueSource(strings = {"relu", "sigmoid", "tanh", "softrelu", "softsign"})
    void forwardMatchesReference(String act) {
        Symbol s = Symbol.activation("act", Symbol.variable("data"), act);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", SHAPE, data());
        double[] expected = NnTesting.map(in.get("data"), ref(act));
        for (DType t : NnTesting.FLOAT_TYPES) {
            assertClose(expected, NnTesting.forward(s, in, t), t, act);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"relu", "sigmoid", "tanh", "softrelu", "softsign"})
    void numericGradient(String act) {
        Symbol s = Symbol.activation("act", Symbol.variable("data"), act);
        // away from relu's kink at 0 (|x| >= 0.1 >> eps)
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", shape(2, 3, 4), rand(24, -3, 3, 0.1, 2));
        GradCheck.check(s, in, List.of("data"), 1e-6, 1e-6, 1e-9);
    }

    @ParameterizedTest
    @ValueSource(strings = {"relu", "sigmoid", "tanh", "softrelu", "softsign"})
    void backwardMatchesAnalyticDerivative(String act) {
        Symbol s = Symbol.activation("act", Symbol.variable("data"), act);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", SHAPE, data());
        double[] dy = rand(60, -1, 1, 3);
        double[] x = in.get("data");
        double[] expected = new double[60];
        for (int i = 0; i < 60; i++) {
            expected[i] = dy[i] * dref(act).applyAsDouble(x[i]);
        }
        for (DType t : NnTesting.FLOAT_TYPES) {
            try (Executor ex = NnTesting.bind(s, in, Map.of("data", SHAPE), t, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, dy);
                assertClose(expected, ex.gradDict().get("data").toDoubleArray(), t, act + " dx");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"relu", "sigmoid", "softsign"})
    void gradReqAddAccumulates(String act) {
        Symbol s = Symbol.activation("act", Symbol.variable("data"), act);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", shape(4, 5), rand(20, -2, 2, 0.1, 4));
        double[] dy = rand(20, -1, 1, 5);
        double[] once;
        try (Executor ex = NnTesting.bind(s, in, Map.of("data", shape(4, 5)), DType.FLOAT64, Set.of(), Set.of("data"))) {
            NnTesting.forwardBackward(ex, dy);
            NnTesting.forwardBackward(ex, dy);
            once = ex.gradDict().get("data").toDoubleArray();
        }
        try (Executor ex = NnTesting.bind(s, in, Map.of("data", shape(4, 5)), DType.FLOAT64, Set.of("data"), Set.of())) {
            NnTesting.forwardBackward(ex, dy);
            NnTesting.forwardBackward(ex, dy);
            assertClose(NnTesting.scale(once, 2), ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, "add x2");
        }
    }

    @Test
    void largeTensorsUseTheThreadedPath() {
        long[] s = shape(200, 250);
        double[] x = rand(50000, -5, 5, 1e-3, 21);
        double[] dy = rand(50000, -1, 1, 22);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s, x);
        for (String act : new String[] {"relu", "sigmoid", "tanh", "softrelu", "softsign"}) {
            Symbol sym = Symbol.activation("act", Symbol.variable("data"), act);
            double[] expected = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                expected[i] = dy[i] * dref(act).applyAsDouble(x[i]);
            }
            try (Executor ex = NnTesting.bind(sym, in, Map.of("data", s), DType.FLOAT64, Set.of(), Set.of("data"))) {
                NnTesting.forwardBackward(ex, dy);
                assertClose(NnTesting.map(x, ref(act)), ex.outputs().get(0).toDoubleArray(), DType.FLOAT64, act + " y");
                assertClose(expected, ex.gradDict().get("data").toDoubleArray(), DType.FLOAT64, act + " dx");
            }
        }
    }

    @Test
    void reluPassesNaN() {
        Symbol s = Symbol.activation("act", Symbol.variable("data"), "relu");
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", shape(3), new double[] {Double.NaN, -1, 2});
        double[] y = NnTesting.forward(s, in, DType.FLOAT32);
        assertTrue(Double.isNaN(y[0]));
        assertEquals(0, y[1]);
        assertEquals(2, y[2]);
    }

    @Test
    void unknownActTypeIsRejected() {
        assertThrowsMessage(() -> Symbol.activation("act", Symbol.variable("data"), "swish"), "act_type", "swish");
        assertThrowsMessage(() -> Symbol.builder("Activation").input(Symbol.variable("data")).build(), "act_type", "missing");
    }

    @Test
    void chainedActivationsDoNotClobberSharedInput() {
        // B = sigmoid(A); C = sigmoid(B); D = B * 2: C's in-place forward must not overwrite B,
        // which D still reads
        Symbol b = Symbol.activation("b", Symbol.variable("a"), "sigmoid");
        Symbol c = Symbol.activation("c", b, "sigmoid");
        Symbol d = b.mul(2.0);
        Symbol g = Symbol.group(c, d);
        GradCheck.Inputs in = new GradCheck.Inputs().put("a", shape(3, 4), rand(12, -3, 3, 6));
        DoubleUnaryOperator sig = ref("sigmoid");
        double[] bv = NnTesting.map(in.get("a"), sig);
        for (DType t : NnTesting.FLOAT_TYPES) {
            List<double[]> out = GradCheck.forward(g, in, t, true);
            assertClose(NnTesting.map(bv, sig), out.get(0), t, "C");
            assertClose(NnTesting.scale(bv, 2), out.get(1), t, "D");
        }
        GradCheck.check(g, in, List.of("a"), 1e-6, 1e-6, 1e-9);
    }

    @ParameterizedTest
    @ValueSource(strings = {"relu", "sigmoid", "tanh", "softrelu", "softsign"})
    void chainOnInternalTensorsGradients(String act) {
        // E = act(act(A * 1.5) + A): internal inputs, the in-place forward and the backward that
        // reads y (or x for softsign) must agree
        Symbol a = Symbol.variable("a");
        Symbol first = Symbol.activation("f1", a.mul(1.5), act);
        Symbol e = Symbol.activation("f2", first.plus(a), act);
        GradCheck.Inputs in = new GradCheck.Inputs().put("a", shape(2, 5), rand(10, 0.2, 2, 7));
        GradCheck.check(e, in, List.of("a"), 1e-6, 1e-6, 1e-9);
        double[] x = in.get("a");
        double[] expected = new double[10];
        for (int i = 0; i < 10; i++) {
            expected[i] = ref(act).applyAsDouble(ref(act).applyAsDouble(1.5 * x[i]) + x[i]);
        }
        assertClose(expected, NnTesting.forward(e, in, DType.FLOAT64), DType.FLOAT64, act + " chain");
    }
}
