package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.LARGE;
import static dev.kiln.ops.elemwise.ElemTesting.assertInferFails;
import static dev.kiln.ops.elemwise.ElemTesting.assertValues;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * sgd_update and sgd_mom_update against MXNet's formulas: g = rescale_grad * grad, clipped to
 * [-c, c] when clip_gradient c >= 0; sgd: w -= lr * (g + wd * w); momentum: m = momentum * m -
 * lr * (g + wd * w), w += m. The parameters are float32 in MXNet (applied as DType(float(p))).
 */
@ExtendWith(NoLeaks.class)
class SgdOpsTest {

    /** Hyper-parameters; NaN = not given (the op's default). */
    record Cfg(double lr, double momentum, double wd, double rescale, double clip) {
        Map<String, Object> attrs(boolean withMomentum) {
            Map<String, Object> a = new LinkedHashMap<>();
            a.put("lr", lr);
            if (withMomentum && !Double.isNaN(momentum)) {
                a.put("momentum", momentum);
            }
            if (!Double.isNaN(wd)) {
                a.put("wd", wd);
            }
            if (!Double.isNaN(rescale)) {
                a.put("rescale_grad", rescale);
            }
            if (!Double.isNaN(clip)) {
                a.put("clip_gradient", clip);
            }
            return a;
        }

        static double p(double v, double dflt) {
            return (float) (Double.isNaN(v) ? dflt : v);  // MXNet real_t
        }

        /** The clipped, rescaled gradient. */
        double g(double grad) {
            double g = p(rescale, 1) * grad;
            double c = p(clip, -1);
            if (c >= 0) {
                g = Math.max(Math.min(g, c), -c);
            }
            return g;
        }

        /** One sgd_update step on w (in place). */
        void sgd(double[] w, double[] grad) {
            double lr = p(this.lr, 0);
            double wd = p(this.wd, 0);
            for (int i = 0; i < w.length; i++) {
                w[i] -= lr * (g(grad[i]) + wd * w[i]);
            }
        }

        /** One sgd_mom_update step on w and m (in place). */
        void mom(double[] w, double[] grad, double[] m) {
            double lr = p(this.lr, 0);
            double wd = p(this.wd, 0);
            double mu = p(momentum, 0);
            for (int i = 0; i < w.length; i++) {
                m[i] = mu * m[i] - lr * (g(grad[i]) + wd * w[i]);
                w[i] += m[i];
            }
        }

        @Override
        public String toString() {
            return attrs(true).toString();
        }
    }

    static final double NONE = Double.NaN;

    static Stream<Cfg> configs() {
        return Stream.of(
                new Cfg(0.1, 0.9, NONE, NONE, NONE),            // defaults: wd 0, rescale 1, no clipping
                new Cfg(0.05, 0.5, 0.01, 0.5, NONE),            // weight decay, rescale
                new Cfg(0.1, 0.9, 0.001, 2.0, 0.3),             // clipping active on most elements
                new Cfg(0.2, 0.9, 0.01, 1.0, 0.0),              // clip_gradient 0: every gradient clipped to 0
                new Cfg(0.01, 0.0, 1e-4, 1.0 / 32, -1.0),       // explicit "off", momentum 0
                new Cfg(0.3, 0.7, 0.05, 3.0, 5.0));             // clip bound above every |g|
    }

    private static double[] weights(int n, long seed) {
        return rand(n, -2, 2, 0, seed);
    }

    private static double[] gradient(int n, long seed) {
        return rand(n, -1.5, 1.5, 0, seed);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void sgdUpdateInPlace(Cfg cfg) {
        for (int n : new int[] {6, LARGE}) {
            for (DType t : BOTH) {
                double[] w = weights(n, 1);
                try (NDScope scope = NDScope.open()) {
                    NDArray wa = NDArray.create(w, n).asType(t);
                    for (int step = 0; step < 3; step++) {
                        double[] g = gradient(n, 10 + step);
                        NDArray ga = NDArray.create(g, n).asType(t);
                        NDArray.invokeInto("sgd_update", cfg.attrs(false), wa, wa, ga);
                        cfg.sgd(w, g);
                        assertValues(w, wa.toDoubleArray(), t, 1, "sgd_update step " + step + " " + cfg);
                        if (t == DType.FLOAT32) {  // the reference continues from the float32 weights
                            w = wa.toDoubleArray();
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void sgdMomUpdateInPlace(Cfg cfg) {
        for (int n : new int[] {6, LARGE}) {
            for (DType t : BOTH) {
                double[] w = weights(n, 2);
                double[] m = new double[n];
                try (NDScope scope = NDScope.open()) {
                    NDArray wa = NDArray.create(w, n).asType(t);
                    NDArray ma = NDArray.create(m, n).asType(t);
                    for (int step = 0; step < 3; step++) {
                        double[] g = gradient(n, 20 + step);
                        NDArray ga = NDArray.create(g, n).asType(t);
                        NDArray.invokeInto("sgd_mom_update", cfg.attrs(true), wa, wa, ga, ma);
                        cfg.mom(w, g, m);
                        assertValues(m, ma.toDoubleArray(), t, 1, "sgd_mom_update momentum step " + step + " " + cfg);
                        assertValues(w, wa.toDoubleArray(), t, 1, "sgd_mom_update weight step " + step + " " + cfg);
                        if (t == DType.FLOAT32) {
                            w = wa.toDoubleArray();
                            m = ma.toDoubleArray();
                        }
                    }
                }
            }
        }
    }

    @Test
    void outOfPlaceLeavesTheWeightAlone() {
        Cfg cfg = new Cfg(0.1, 0.9, 0.01, 1, NONE);
        double[] w = weights(10, 3);
        double[] g = gradient(10, 4);
        for (DType t : BOTH) {
            try (NDScope scope = NDScope.open()) {
                NDArray wa = NDArray.create(w, 10).asType(t);
                NDArray ga = NDArray.create(g, 10).asType(t);
                NDArray ma = NDArray.create(new double[10], 10).asType(t);
                NDArray out = NDArray.invoke("sgd_update", cfg.attrs(false), wa, ga).get(0);
                double[] e = w.clone();
                cfg.sgd(e, g);
                assertValues(e, out.toDoubleArray(), t, 1, "sgd_update (new array)");
                assertArrayEquals(w, wa.toDoubleArray(), "weight untouched");
                List<NDArray> outs = NDArray.invoke("sgd_mom_update", cfg.attrs(true), wa, ga, ma);
                assertEquals(1, outs.size(), "one visible output");
                double[] e2 = w.clone();
                double[] m2 = new double[10];
                cfg.mom(e2, g, m2);
                assertValues(e2, outs.get(0).toDoubleArray(), t, 1, "sgd_mom_update (new array)");
                assertValues(m2, ma.toDoubleArray(), t, 1, "momentum mutated in place");
                assertArrayEquals(w, wa.toDoubleArray(), "weight untouched");
                // lazy_update (row_sparse only in MXNet) is accepted and changes nothing for dense arrays
                Map<String, Object> lazy = new LinkedHashMap<>(cfg.attrs(false));
                lazy.put("lazy_update", false);
                assertArrayEquals(out.toDoubleArray(), NDArray.invoke("sgd_update", lazy, wa, ga).get(0).toDoubleArray(),
                        "lazy_update=False");
            }
        }
    }

    @Test
    void momentumUpdateInAGraphMutatesTheAuxState() {
        Symbol upd = Symbol.create("sgd_mom_update", "upd",
                Map.of("lr", "0.1", "momentum", "0.9", "wd", "0.01", "clip_gradient", "0.5"), null,
                Symbol.variable("w"), Symbol.variable("g"), Symbol.variable("mom"));
        assertEquals(List.of("w", "g"), upd.listArguments());
        assertEquals(List.of("mom"), upd.listAuxiliaryStates());
        Cfg cfg = new Cfg(0.1, 0.9, 0.01, NONE, 0.5);
        int n = 1001;
        double[] w = weights(n, 5);
        double[] g = gradient(n, 6);
        double[] m = rand(n, -0.1, 0.1, 0, 7);
        for (DType t : BOTH) {
            Map<String, DType> types = Map.of("w", t, "g", t, "mom", t);
            try (Executor ex = Executor.simpleBind(upd, Context.cpu(), shapes("w", shape(n), "g", shape(n), "mom", shape(n)),
                    types, Map.of("w", GradReq.NULL, "g", GradReq.NULL), new Executor.Options())) {
                ex.argDict().get("w").set(w);
                ex.argDict().get("g").set(g);
                ex.auxDict().get("mom").set(m);
                double[] ew = w.clone();
                double[] em = m.clone();
                for (int step = 0; step < 2; step++) {
                    ex.forward(false);
                    cfg.mom(ew, g, em);
                    // the output is the new weight; the weight argument itself only changes if fed back
                    assertValues(em, ex.auxDict().get("mom").toDoubleArray(), t, 1, "graph momentum step " + step);
                    assertValues(ew, ex.outputs().get(0).toDoubleArray(), t, 1, "graph weight step " + step);
                    ew = w.clone();  // w is not fed back: next step starts from the same weight
                }
            }
        }
    }

    @Test
    void errors() {
        Symbol w = Symbol.variable("w");
        Symbol g = Symbol.variable("g");
        assertThrowsMessage(() -> Symbol.create("sgd_update", "u", Map.of(), null, w, g), "sgd_update",
                "required parameter 'lr' is missing");
        assertInferFails(Symbol.create("sgd_update", "u", Map.of("lr", "0.1"), null, w, g),
                shapes("w", shape(3), "g", shape(4)), "Shape inconsistent", "(4,)", "(3,)");
        try (NDScope scope = NDScope.open()) {
            NDArray wa = NDArray.create(new double[3], 3);
            NDArray ga = NDArray.create(new double[4], 4);
            NDArray ma = NDArray.create(new double[3], 3);
            assertThrowsMessage(() -> NDArray.invokeInto("sgd_update", Map.of(), wa, wa, wa), "sgd_update", "lr", "missing");
            assertThrowsMessage(() -> NDArray.invokeInto("sgd_update", Map.of("lr", 0.1), wa, wa, ga), "sgd_update", "(4,)");
            assertThrowsMessage(() -> NDArray.invokeInto("sgd_mom_update", Map.of("lr", 0.1), wa, wa, wa),
                    "sgd_mom_update", "expects 3 inputs");
            assertThrowsMessage(() -> NDArray.invokeInto("sgd_mom_update", Map.of("lr", 0.1, "momentum", "x"), wa, wa, wa, ma),
                    "sgd_mom_update", "momentum");
        }
    }
}
