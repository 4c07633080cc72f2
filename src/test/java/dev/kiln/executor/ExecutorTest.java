package dev.kiln.executor;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class ExecutorTest {
    static Symbol net() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), 3);
        return Symbol.softmaxOutput("softmax", fc);
    }

    @Test
    void headGradientsOfAnotherTypeAreConverted() {
        // MXNet's executor copies head gradients into its own buffers, converting the type: a float32
        // head for a float16 output, a float64 one for float32, give the gradients of the converted head
        Symbol y = Symbol.create("square", "sq", Map.of(), null, Symbol.variable("x"));
        double[] x = {0.5, -1.25, 2, 3};
        for (dev.kiln.ndarray.DType out : new dev.kiln.ndarray.DType[] {dev.kiln.ndarray.DType.FLOAT16, dev.kiln.ndarray.DType.FLOAT32}) {
            try (NDScope scope = NDScope.open();
                    Executor ex = Executor.simpleBind(y, Context.cpu(), Map.of("x", new long[] {4}), Map.of("x", out),
                            Map.of("x", GradReq.WRITE), null)) {
                ex.argDict().get("x").set(x);
                ex.forward(true);
                NDArray head = NDArray.create(new double[] {1, 0.5, -2, 0.25}, 4);  // float64
                ex.backward(head.asType(out == dev.kiln.ndarray.DType.FLOAT16 ? dev.kiln.ndarray.DType.FLOAT32
                        : dev.kiln.ndarray.DType.FLOAT64));
                assertArrayEquals(new double[] {1, -1.25, -8, 1.5}, ex.gradDict().get("x").toDoubleArray(), 1e-3, out + " output");
                KilnException e = assertThrows(KilnException.class, () -> ex.backward(NDArray.create(new double[] {1, 2}, 2)));
                assertTrue(e.getMessage().contains("must have shape (4,)"), e.getMessage());
            }
        }
    }

    @Test
    void bindUsesCallerArraysAndReshapeSharesParameters() {
        try (NDScope scope = NDScope.open()) {
            Map<String, NDArray> args = new LinkedHashMap<>();
            args.put("data", NDArray.create(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, 4, 2));
            args.put("fc_weight", NDArray.create(new float[] {1, 0, 0, 1, 1, 1}, 3, 2));
            args.put("fc_bias", NDArray.create(new float[] {0, 0, 0}, 3));
            args.put("softmax_label", NDArray.create(new float[] {0, 1, 2, 0}, 4));
            Map<String, NDArray> grads = Map.of("fc_weight", NDArray.zeros(3, 2));
            try (Executor ex = Executor.bind(net(), Context.cpu(), args, grads, Map.of("fc_weight", GradReq.WRITE), Map.of(), null)) {
                ex.forwardBackward();
                assertEquals(Shape.of(4, 3), ex.outputs().get(0).shape());
                float[] g = grads.get("fc_weight").toFloatArray();
                double s = 0;
                for (float v : g) {
                    s += Math.abs(v);
                }
                assertTrue(s > 0, "gradient written into the caller's array");
                try (Executor small = ex.reshape(Map.of("data", new long[] {2, 2}, "softmax_label", new long[] {2}))) {
                    assertEquals(Shape.of(2, 3), small.outputs().get(0).shape());
                    small.argDict().get("data").set(new float[] {1, 2, 3, 4});
                    small.forward(false);
                    float[] p = small.outputs().get(0).toFloatArray();
                    // logits row 0: (1, 2, 3)
                    double z = Math.exp(1) + Math.exp(2) + Math.exp(3);
                    assertEquals(Math.exp(3) / z, p[2], 1e-6);
                    // the parameter array is shared
                    assertTrue(small.argDict().get("fc_weight") == args.get("fc_weight"));
                }
            }
        }
    }

    @Test
    void bindErrorsNameTheArgumentAndShapes() {
        Map<String, long[]> shapes = Map.of("data", new long[] {4, 2}, "fc_weight", new long[] {3, 5});
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        KilnException e = assertThrows(KilnException.class,
                () -> Executor.simpleBind(net(), Context.cpu(), shapes, Map.of(), reqs, new Executor.Options()));
        assertTrue(e.getMessage().contains("fc") && e.getMessage().contains("(3,5)") && e.getMessage().contains("(3,2)"), e.getMessage());
        try (NDScope scope = NDScope.open()) {
            Map<String, NDArray> args = new LinkedHashMap<>();
            args.put("data", NDArray.zeros(4, 2));
            IllegalArgumentException m = assertThrows(IllegalArgumentException.class,
                    () -> Executor.bind(net(), Context.cpu(), args, Map.of(), Map.of(), Map.of(), null));
            assertTrue(m.getMessage().contains("fc_weight"), m.getMessage());
        }
    }

    @Test
    void closedExecutorThrowsAndCloseIsIdempotent() {
        Executor ex = Executor.simpleBind(net(), Context.cpu(), Map.of("data", new long[] {2, 2}), GradReq.WRITE);
        ex.close();
        ex.close();
        assertThrows(IllegalStateException.class, () -> ex.forward(false));
        assertThrows(IllegalStateException.class, ex::outputs);
    }

    @Test
    void float64ExecutionMatchesJava() {
        Symbol x = Symbol.variable("x");
        Symbol y = Symbol.sum(null, Symbol.exp(null, x).mul(x), 1, false);
        try (Executor ex = Executor.simpleBind(y, Context.cpu(), Map.of("x", new long[] {2, 3}),
                Map.of("x", dev.kiln.ndarray.DType.FLOAT64), Map.of("x", GradReq.WRITE), new Executor.Options());
                NDArray head = NDArray.create(new double[] {1, 1}, 2)) {
            double[] xv = {0.1, -0.2, 0.3, 1.5, -1, 2};
            ex.argDict().get("x").set(xv);
            ex.forward(true);
            ex.backward(head);
            double[] out = ex.outputs().get(0).toDoubleArray();
            double[] g = ex.gradDict().get("x").toDoubleArray();
            for (int r = 0; r < 2; r++) {
                double s = 0;
                for (int c = 0; c < 3; c++) {
                    double v = xv[r * 3 + c];
                    s += Math.exp(v) * v;
                    assertEquals(Math.exp(v) * (1 + v), g[r * 3 + c], 1e-12);
                }
                assertEquals(s, out[r], 1e-12);
            }
        }
    }

    @Test
    void makeLossGradientIsTheChainRuleOfItsInput() {
        Symbol x = Symbol.variable("x");
        Symbol loss = Symbol.create("MakeLoss", "loss", Map.of("grad_scale", "0.5", "normalization", "batch"), Map.of(),
                Symbol.square(null, x));
        dev.kiln.testutil.GradCheck.Inputs in = new dev.kiln.testutil.GradCheck.Inputs().random("x", new long[] {2, 3}, -1, 1, 3);
        // f = 0.5 / batch * sum x^2
        dev.kiln.testutil.GradCheck.check(loss, in, java.util.List.of("x"), 1e-6, 1e-6, 1e-9, v -> {
            double f = 0;
            for (double d : v.get("x")) {
                f += d * d;
            }
            return 0.5 / 2 * f;
        });
    }

    @Test
    void outputsAreReadableAfterForwardOnly() {
        try (Executor ex = Executor.simpleBind(net(), Context.cpu(), Map.of("data", new long[] {1, 2}), GradReq.NULL)) {
            ex.forward(false);
            assertArrayEquals(new float[] {1 / 3f, 1 / 3f, 1 / 3f}, ex.outputs().get(0).toFloatArray(), 1e-6f);
        }
    }

    /** Two variables named "x": bind refuses them (as MXNet does) before allocating anything. */
    @Test
    void duplicateArgumentNamesAreRefusedWithoutLeaks() {
        Symbol s = Symbol.create("elemwise_add", "e", null, null, Symbol.variable("x"), Symbol.variable("x"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Executor.simpleBind(s, Context.cpu(), Map.of("x", new long[] {3}), GradReq.WRITE));
        assertTrue(e.getMessage().contains("duplicated argument name \"x\""), e.getMessage());
        try (NDArray a = NDArray.zeros(Shape.of(3), dev.kiln.ndarray.DType.FLOAT32, Context.cpu())) {
            assertThrows(IllegalArgumentException.class,
                    () -> Executor.bind(s, Context.cpu(), Map.of("x", a), null, null, null, null));
        }
    }
}
