package dev.kiln.optimizer;

import static dev.kiln.optimizer.MxRef.attrs;
import static dev.kiln.optimizer.MxRef.op;
import static dev.kiln.optimizer.MxRef.opInto;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.types.DataType;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Ten steps of every optimizer against the real MXNet 1.9.1. For operators MXNet has natively
 * the reference calls the MXNet operator with the hyper-parameters {@code optimizer.py} passes
 * (including the bias-corrected {@code lr_t} of Adam and the update count {@code t}); for the
 * optimizers MXNet writes in Python (AdaGrad, AdaDelta, Adamax, Nadam) the reference composes
 * MXNet NDArray operators in {@code optimizer.py}'s order. Weights and states must agree to
 * 1e-6 (relative above 1).
 */
@ExtendWith(NoLeaks.class)
class MxnetParityTest {
    static final int N = 37;
    static final int STEPS = 10;
    static final double LR = 0.05;
    static final double WD = 0.03;
    static final double R = 0.7;
    static final double TOL = 1e-6;
    static final Map<String, Double> MAX_ERR = new LinkedHashMap<>();

    /** One MXNet reference step; {@code t} is the update count (1 on the first step). */
    interface Ref {
        void step(MxNDManager m, int t, ai.djl.ndarray.NDArray w, ai.djl.ndarray.NDArray g, ai.djl.ndarray.NDArray[] s);
    }

    record Case(String label, String optimizer, Map<String, Object> params, int states, Ref ref) {
        @Override
        public String toString() {
            return label;
        }
    }

    static Map<String, Object> kw(Object... kv) {
        return OptimizerBaseTest.kw(kv);
    }

    static Map<String, Object> base(Double clip, Object... extra) {
        Map<String, Object> p = kw("learning_rate", LR, "wd", WD, "rescale_grad", R);
        if (clip != null) {
            p.put("clip_gradient", clip);
        }
        p.putAll(kw(extra));
        return p;
    }

    static double kclip(Double c) {
        return c == null ? -1 : c;
    }

    static ai.djl.ndarray.NDArray s(MxNDManager m, String op, ai.djl.ndarray.NDArray x, double scalar) {
        return op(m, op, attrs("scalar", scalar), x);
    }

    static ai.djl.ndarray.NDArray b(MxNDManager m, String op, ai.djl.ndarray.NDArray x, ai.djl.ndarray.NDArray y) {
        return op(m, op, attrs(), x, y);
    }

    static ai.djl.ndarray.NDArray clip(MxNDManager m, ai.djl.ndarray.NDArray x, Double c) {
        return c == null ? x : op(m, "clip", attrs("a_min", -c, "a_max", c), x);
    }

    static Stream<Case> cases() {
        List<Case> c = new ArrayList<>();
        for (Double clip : new Double[] {null, 0.3}) {
            String cl = clip == null ? "" : " clip " + clip;
            double kc = kclip(clip);
            c.add(new Case("sgd" + cl, "sgd", base(clip), 0, (m, t, w, g, st) ->
                    opInto(m, "sgd_update", attrs("lr", LR, "wd", WD, "rescale_grad", R, "clip_gradient", kc), w, w, g)));
            c.add(new Case("sgd momentum" + cl, "sgd", base(clip, "momentum", 0.9), 1, (m, t, w, g, st) ->
                    opInto(m, "sgd_mom_update", attrs("lr", LR, "momentum", 0.9, "wd", WD, "rescale_grad", R,
                            "clip_gradient", kc), w, w, g, st[0])));
            c.add(new Case("nag" + cl, "nag", base(clip, "momentum", 0.9), 1, (m, t, w, g, st) ->
                    opInto(m, "nag_mom_update", attrs("lr", LR, "momentum", 0.9, "wd", WD, "rescale_grad", R,
                            "clip_gradient", kc), w, w, g, st[0])));
            c.add(new Case("adam" + cl, "adam", base(clip), 2, (m, t, w, g, st) -> {
                double lrT = LR * Math.sqrt(1. - Math.pow(0.999, t)) / (1. - Math.pow(0.9, t));
                opInto(m, "adam_update", attrs("lr", lrT, "beta1", 0.9, "beta2", 0.999, "epsilon", 1e-8, "wd", WD,
                        "rescale_grad", R, "clip_gradient", kc), w, w, g, st[0], st[1]);
            }));
            c.add(new Case("rmsprop" + cl, "rmsprop", base(clip, "clip_weights", 0.9), 1, (m, t, w, g, st) ->
                    opInto(m, "rmsprop_update", attrs("lr", LR, "gamma1", 0.9, "epsilon", 1e-8, "wd", WD, "rescale_grad", R,
                            "clip_gradient", kc, "clip_weights", 0.9), w, w, g, st[0])));
            c.add(new Case("rmsprop centered" + cl, "rmsprop", base(clip, "centered", true), 3, (m, t, w, g, st) ->
                    opInto(m, "rmspropalex_update", attrs("lr", LR, "gamma1", 0.9, "gamma2", 0.9, "epsilon", 1e-8, "wd", WD,
                            "rescale_grad", R, "clip_gradient", kc), w, w, g, st[0], st[1], st[2])));
            c.add(new Case("ftrl" + cl, "ftrl", base(clip), 2, (m, t, w, g, st) ->
                    opInto(m, "ftrl_update", attrs("lr", LR, "lamda1", 0.01, "beta", 1.0, "wd", WD, "rescale_grad", R,
                            "clip_gradient", kc), w, w, g, st[0], st[1])));
            c.add(new Case("signum" + cl, "signum", base(clip, "wd_lh", 0.1), 1, (m, t, w, g, st) ->
                    opInto(m, "signum_update", attrs("lr", LR, "momentum", 0.9, "wd", WD, "rescale_grad", R,
                            "clip_gradient", kc, "wd_lh", 0.1), w, w, g, st[0])));
            c.add(new Case("signsgd" + cl, "signum", base(clip, "momentum", 0.0), 0, (m, t, w, g, st) ->
                    opInto(m, "signsgd_update", attrs("lr", LR, "wd", WD, "rescale_grad", R, "clip_gradient", kc), w, w, g)));
            c.add(new Case("ftml" + cl, "ftml", base(clip), 3, (m, t, w, g, st) ->
                    opInto(m, "ftml_update", attrs("lr", LR, "beta1", 0.6, "beta2", 0.999, "epsilon", 1e-8, "t", t,
                            "wd", WD, "rescale_grad", R, "clip_grad", kc), w, w, g, st[0], st[1], st[2])));
            c.add(new Case("lamb" + cl, "lamb", base(clip, "lower_bound", 0.5, "upper_bound", 2.0), 2, (m, t, w, g, st) -> {
                ai.djl.ndarray.NDArray u = op(m, "lamb_update_phase1", attrs("beta1", 0.9, "beta2", 0.999, "epsilon", 1e-6,
                        "t", t, "bias_correction", true, "wd", WD, "rescale_grad", R, "clip_gradient", kc), w, g, st[0], st[1]);
                ai.djl.ndarray.NDArray r1 = op(m, "norm", attrs(), w);
                ai.djl.ndarray.NDArray r2 = op(m, "norm", attrs(), u);
                opInto(m, "lamb_update_phase2", attrs("lr", LR, "lower_bound", 0.5, "upper_bound", 2.0), w, w, u, r1, r2);
            }));
            // --- optimizers MXNet writes in Python, composed from MXNet operators -----------------------
            c.add(new Case("adagrad" + cl, "adagrad", base(clip), 1, (m, t, w, g, st) -> {
                ai.djl.ndarray.NDArray gg = clip(m, s(m, "_mul_scalar", g, R), clip);
                opInto(m, "elemwise_add", attrs(), st[0], st[0], op(m, "square", attrs(), gg));
                ai.djl.ndarray.NDArray div = b(m, "elemwise_div", gg, op(m, "sqrt", attrs(), s(m, "_plus_scalar", st[0], 1e-7)));
                ai.djl.ndarray.NDArray upd = s(m, "_mul_scalar", b(m, "elemwise_add", div, s(m, "_mul_scalar", w, WD)), -LR);
                opInto(m, "elemwise_add", attrs(), w, w, upd);
            }));
            c.add(new Case("adadelta" + cl, "adadelta", base(clip), 2, (m, t, w, g, st) -> {
                double rho = 0.9;
                double eps = 1e-5;
                opInto(m, "_mul_scalar", attrs("scalar", R), g, g);  // grad *= rescale_grad (in place)
                ai.djl.ndarray.NDArray gg = clip(m, g, clip);
                b(m, "elemwise_add", s(m, "_mul_scalar", st[0], rho), b(m, "elemwise_mul", s(m, "_mul_scalar", gg, 1 - rho), gg))
                        .copyTo(st[0]);
                ai.djl.ndarray.NDArray cur = b(m, "elemwise_mul", b(m, "elemwise_div",
                        op(m, "sqrt", attrs(), s(m, "_plus_scalar", st[1], eps)),
                        op(m, "sqrt", attrs(), s(m, "_plus_scalar", st[0], eps))), gg);
                b(m, "elemwise_add", s(m, "_mul_scalar", st[1], rho), b(m, "elemwise_mul", s(m, "_mul_scalar", cur, 1 - rho), cur))
                        .copyTo(st[1]);
                opInto(m, "elemwise_sub", attrs(), w, w, b(m, "elemwise_add", cur, s(m, "_mul_scalar", w, WD)));
            }));
            c.add(new Case("adamax" + cl, "adamax", base(clip), 2, (m, t, w, g, st) -> {
                double b1 = 0.9;
                double b2 = 0.999;
                double lrT = LR / (1. - Math.pow(b1, t));
                ai.djl.ndarray.NDArray gg = clip(m, b(m, "elemwise_add", s(m, "_mul_scalar", g, R), s(m, "_mul_scalar", w, WD)), clip);
                b(m, "elemwise_add", s(m, "_mul_scalar", st[0], b1), s(m, "_mul_scalar", gg, 1. - b1)).copyTo(st[0]);
                b(m, "_maximum", s(m, "_mul_scalar", st[1], b2), op(m, "abs", attrs(), gg)).copyTo(st[1]);
                opInto(m, "elemwise_sub", attrs(), w, w, b(m, "elemwise_div", s(m, "_mul_scalar", st[0], lrT), st[1]));
            }));
            double[] mSchedule = {1.0};
            c.add(new Case("nadam" + cl, "nadam", base(clip), 2, (m, t, w, g, st) -> {
                double b1 = 0.9;
                double b2 = 0.999;
                double eps = 1e-8;
                double sd = 0.004;
                if (t == 1) {
                    mSchedule[0] = 1.0;
                }
                ai.djl.ndarray.NDArray gg = clip(m, b(m, "elemwise_add", s(m, "_mul_scalar", g, R), s(m, "_mul_scalar", w, WD)), clip);
                double mt = b1 * (1. - 0.5 * Math.pow(0.96, t * sd));
                double mt1 = b1 * (1. - 0.5 * Math.pow(0.96, (t + 1) * sd));
                mSchedule[0] = mSchedule[0] * mt;
                double mNext = mSchedule[0] * mt1;
                b(m, "elemwise_add", s(m, "_mul_scalar", st[0], b1), s(m, "_mul_scalar", gg, 1. - b1)).copyTo(st[0]);
                b(m, "elemwise_add", s(m, "_mul_scalar", st[1], b2), b(m, "elemwise_mul", s(m, "_mul_scalar", gg, 1. - b2), gg))
                        .copyTo(st[1]);
                ai.djl.ndarray.NDArray gp = s(m, "_div_scalar", gg, 1. - mSchedule[0]);
                ai.djl.ndarray.NDArray mp = s(m, "_div_scalar", st[0], 1. - mNext);
                ai.djl.ndarray.NDArray vp = s(m, "_div_scalar", st[1], 1. - Math.pow(b2, t));
                ai.djl.ndarray.NDArray mbar = b(m, "elemwise_add", s(m, "_mul_scalar", gp, 1. - mt), s(m, "_mul_scalar", mp, mt1));
                opInto(m, "elemwise_sub", attrs(), w, w, b(m, "elemwise_div", s(m, "_mul_scalar", mbar, LR),
                        s(m, "_plus_scalar", op(m, "sqrt", attrs(), vp), eps)));
            }));
        }
        return c.stream();
    }

    static float[] random(Random r, double scale) {
        float[] v = new float[N];
        for (int i = 0; i < N; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    static void compare(String what, float[] mx, float[] kiln, String label) {
        double max = 0;
        for (int i = 0; i < mx.length; i++) {
            double err = Math.abs(mx[i] - kiln[i]) / Math.max(1, Math.abs(mx[i]));
            if (!(err <= TOL) && !(Float.isNaN(mx[i]) && Float.isNaN(kiln[i]))) {
                fail(label + ": " + what + "[" + i + "] MXNet " + mx[i] + " Kiln " + kiln[i]);
            }
            max = Math.max(max, Float.isNaN(mx[i]) ? 0 : err);
        }
        MAX_ERR.merge(label, max, Math::max);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void tenStepsMatchMxnet(Case c) {
        MxOracle.assumeAvailable();
        Random rnd = new Random(c.label.hashCode());
        float[] w0 = random(rnd, 1);
        float[][] grads = new float[STEPS][];
        for (int t = 0; t < STEPS; t++) {
            grads[t] = random(rnd, 1.5);
        }
        try (MxNDManager m = MxOracle.newManager();
             Updater u = new Updater(Optimizers.create(c.optimizer, c.params));
             NDArray w = NDArray.create(w0, N);
             NDArray g = NDArray.zeros(N)) {
            ai.djl.ndarray.NDArray mw = MxRef.create(m, w0);
            ai.djl.ndarray.NDArray[] ms = new ai.djl.ndarray.NDArray[c.states];
            for (int i = 0; i < ms.length; i++) {
                ms[i] = m.zeros(new ai.djl.ndarray.types.Shape(N));
            }
            for (int t = 1; t <= STEPS; t++) {
                g.set(grads[t - 1]);
                u.update(0, g, w);
                try (MxNDManager step = (MxNDManager) m.newSubManager()) {
                    ai.djl.ndarray.NDArray mg = MxRef.create(step, grads[t - 1]);
                    c.ref.step(step, t, mw, mg, ms);
                    compare("gradient after step " + t, mg.toFloatArray(), g.toFloatArray(), c.label);
                }
                compare("weight after step " + t, mw.toFloatArray(), w.toFloatArray(), c.label);
            }
            List<NDArray> flat = new ArrayList<>();
            OptimizerGoldenTest.flatten(u.states().get(0), flat);
            assertEquals(c.states, flat.size(), c.label + ": number of state arrays");
            for (int i = 0; i < ms.length; i++) {
                compare("state " + i, ms[i].toFloatArray(), flat.get(i).toFloatArray(), c.label);
            }
        }
    }

    static float[] halfAsFloats(ai.djl.ndarray.NDArray h) {
        return h.toType(DataType.FLOAT32, false).toFloatArray();
    }

    @Test
    void multiPrecisionSgdMatchesMxnet() {
        MxOracle.assumeAvailable();
        for (boolean momentum : new boolean[] {false, true}) {
            String label = "mp_sgd" + (momentum ? "_mom" : "");
            Random rnd = new Random(label.hashCode());
            float[] w0 = MultiPrecisionTest.roundedToHalf(random(rnd, 1));
            Map<String, Object> p = base(0.8, "multi_precision", true);
            if (momentum) {
                p.put("momentum", 0.9);
            }
            try (MxNDManager m = MxOracle.newManager();
                 Updater u = new Updater(Optimizers.create("sgd", p));
                 NDArray w = MultiPrecisionTest.half(w0)) {
                ai.djl.ndarray.NDArray mw = op(m, "Cast", attrs("dtype", "float16"), MxRef.create(m, w0));
                ai.djl.ndarray.NDArray w32 = op(m, "Cast", attrs("dtype", "float32"), mw);
                ai.djl.ndarray.NDArray mom = m.zeros(new ai.djl.ndarray.types.Shape(N));
                for (int t = 1; t <= STEPS; t++) {
                    float[] gv = random(rnd, 1.5);
                    try (NDArray g = MultiPrecisionTest.half(gv); MxNDManager step = (MxNDManager) m.newSubManager()) {
                        u.update(0, g, w);
                        ai.djl.ndarray.NDArray mg = op(step, "Cast", attrs("dtype", "float16"), MxRef.create(step, gv));
                        if (momentum) {
                            opInto(step, "mp_sgd_mom_update", attrs("lr", LR, "momentum", 0.9, "wd", WD, "rescale_grad", R,
                                    "clip_gradient", 0.8), mw, mw, mg, mom, w32);
                        } else {
                            opInto(step, "mp_sgd_update", attrs("lr", LR, "wd", WD, "rescale_grad", R, "clip_gradient", 0.8),
                                    mw, mw, mg, w32);
                        }
                    }
                    List<?> st = (List<?>) u.states().get(0);
                    compare("weight32 after step " + t, w32.toFloatArray(), ((NDArray) st.get(1)).toFloatArray(), label);
                    float[] mh = halfAsFloats(mw);
                    float[] kh = MultiPrecisionTest.halfValues(w);
                    for (int i = 0; i < N; i++) {
                        assertEquals(mh[i], kh[i], 0f, label + " float16 weight[" + i + "] after step " + t);
                    }
                    if (momentum) {
                        compare("momentum after step " + t, mom.toFloatArray(), ((NDArray) st.get(0)).toFloatArray(), label);
                    }
                }
            }
        }
    }

    @AfterAll
    static void report() {
        if (!MAX_ERR.isEmpty()) {
            StringBuilder b = new StringBuilder("[MxnetParityTest] max relative error per optimizer over " + STEPS + " steps:");
            MAX_ERR.forEach((k, v) -> b.append(String.format("%n  %-28s %.3g", k, v)));
            System.out.println(b);
        }
    }
}
