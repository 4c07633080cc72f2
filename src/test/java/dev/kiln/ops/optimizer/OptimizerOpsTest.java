package dev.kiln.ops.optimizer;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.ndarray.Shape;
import dev.kiln.op.OpInfo;
import dev.kiln.op.Ops;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The optimizer update operators without MXNet: the Kiln-internal {@code _kiln_*} ops (MXNet's
 * Python optimizers AdaGrad, AdaDelta, Adamax, Nadam) against an independent double-precision
 * Java transcription of spec 5.3 and against the spec's verified two-step vectors; signatures,
 * defaults and mutated inputs of every new op; and the error cases (shape mismatch, wrong input
 * count, bad attributes, wrong dtypes). The MXNet ops themselves are checked bit for bit against
 * MXNet 1.9.1 in {@code dev.kiln.mxnet.OptimizerOpOracleTest}.
 */
@ExtendWith(NoLeaks.class)
class OptimizerOpsTest {

    // ---- double-precision references of the Python optimizers (spec 5.3) -------------------------

    /** Hyper-parameters; clip < 0 = None. */
    record Hp(double lr, double wd, double rescale, double clip, double beta1, double beta2, double eps, double rho) {
        double clipped(double g) {
            return clip >= 0 ? Math.max(-clip, Math.min(clip, g)) : g;
        }
    }

    /** One Python-optimizer step on w and the states (in place); t = update count (1-based). */
    interface Ref {
        void step(Hp p, int t, double[] w, double[] g, double[][] s, double[] sched);
    }

    static final Ref ADAGRAD = (p, t, w, g, s, sched) -> {
        for (int i = 0; i < w.length; i++) {
            double G = p.clipped(p.rescale * g[i]);
            s[0][i] += G * G;
            w[i] -= p.lr * (G / Math.sqrt(s[0][i] + p.eps) + p.wd * w[i]);
        }
    };

    static final Ref ADADELTA = (p, t, w, g, s, sched) -> {
        for (int i = 0; i < w.length; i++) {
            g[i] *= p.rescale;    // MXNet rescales the gradient buffer in place
            double G = p.clipped(g[i]);
            s[0][i] = p.rho * s[0][i] + (1 - p.rho) * G * G;
            double d = Math.sqrt(s[1][i] + p.eps) / Math.sqrt(s[0][i] + p.eps) * G;
            s[1][i] = p.rho * s[1][i] + (1 - p.rho) * d * d;
            w[i] -= d + p.wd * w[i];
        }
    };

    static final Ref ADAMAX = (p, t, w, g, s, sched) -> {
        double lrT = p.lr / (1 - Math.pow(p.beta1, t));
        for (int i = 0; i < w.length; i++) {
            double G = p.clipped(p.rescale * g[i] + p.wd * w[i]);
            s[0][i] = p.beta1 * s[0][i] + (1 - p.beta1) * G;
            s[1][i] = Math.max(p.beta2 * s[1][i], Math.abs(G));
            w[i] -= lrT * s[0][i] / s[1][i];
        }
    };

    static final double SCHEDULE_DECAY = 0.004;

    /** Nadam; sched[0] = the optimizer's m_schedule (updated here). */
    static final Ref NADAM = (p, t, w, g, s, sched) -> {
        double mt = p.beta1 * (1 - 0.5 * Math.pow(0.96, t * SCHEDULE_DECAY));
        double mt1 = p.beta1 * (1 - 0.5 * Math.pow(0.96, (t + 1) * SCHEDULE_DECAY));
        sched[0] *= mt;
        double next = sched[0] * mt1;
        for (int i = 0; i < w.length; i++) {
            double G = p.clipped(p.rescale * g[i] + p.wd * w[i]);
            s[0][i] = p.beta1 * s[0][i] + (1 - p.beta1) * G;
            s[1][i] = p.beta2 * s[1][i] + (1 - p.beta2) * G * G;
            double gp = G / (1 - sched[0]), mp = s[0][i] / (1 - next), vp = s[1][i] / (1 - Math.pow(p.beta2, t));
            double mbar = (1 - mt) * gp + mt1 * mp;
            w[i] -= p.lr * mbar / (Math.sqrt(vp) + p.eps);
        }
    };

    /** The op attributes for step t (what an optimizer passes); sched[0] is Nadam's m_schedule before the step. */
    static Map<String, Object> attrs(String op, Hp p, int t, double[] sched) {
        Map<String, Object> a = new LinkedHashMap<>();
        switch (op) {
            case "_kiln_adagrad_update" -> {
                a.put("lr", p.lr);
                a.put("epsilon", p.eps);
            }
            case "_kiln_adadelta_update" -> {
                a.put("rho", p.rho);
                a.put("epsilon", p.eps);
            }
            case "_kiln_adamax_update" -> {
                a.put("lr", p.lr);
                a.put("t", t);
                a.put("beta1", p.beta1);
                a.put("beta2", p.beta2);
            }
            default -> {
                double mt = p.beta1 * (1 - 0.5 * Math.pow(0.96, t * SCHEDULE_DECAY));
                double mt1 = p.beta1 * (1 - 0.5 * Math.pow(0.96, (t + 1) * SCHEDULE_DECAY));
                a.put("lr", p.lr);
                a.put("t", t);
                a.put("momentum_t", mt);
                a.put("momentum_t_1", mt1);
                a.put("m_schedule", sched[0] * mt);
                a.put("beta1", p.beta1);
                a.put("beta2", p.beta2);
                a.put("epsilon", p.eps);
            }
        }
        a.put("wd", p.wd);
        a.put("rescale_grad", p.rescale);
        if (p.clip >= 0) {
            a.put("clip_gradient", p.clip);
        }
        return a;
    }

    record KilnOp(String op, Ref ref, int states) {}

    static final List<KilnOp> KILN_OPS = List.of(new KilnOp("_kiln_adagrad_update", ADAGRAD, 1),
            new KilnOp("_kiln_adadelta_update", ADADELTA, 2), new KilnOp("_kiln_adamax_update", ADAMAX, 2),
            new KilnOp("_kiln_nadam_update", NADAM, 2));

    static List<Hp> grid(String op) {
        double eps = op.contains("adagrad") ? 1e-7 : op.contains("adadelta") ? 1e-5 : 1e-8;
        return List.of(
                new Hp(0.01, 0, 1, -1, 0.9, 0.999, eps, 0.9),           // defaults-like
                new Hp(0.05, 0.03, 0.14, -1, 0.8, 0.99, eps, 0.95),     // wd, rescale
                new Hp(0.02, 0.05, 0.8, 0.4, 0.9, 0.999, eps, 0.9),     // clipping active
                new Hp(0.02, 0.01, 1, 0, 0.9, 0.999, eps, 0.9));        // clip 0: every gradient clipped to 0
    }

    @TestFactory
    Stream<DynamicTest> kilnOpsMatchDoubleReference() {
        List<DynamicTest> tests = new ArrayList<>();
        for (KilnOp k : KILN_OPS) {
            for (Hp p : grid(k.op())) {
                for (DType dt : List.of(DType.FLOAT64, DType.FLOAT32)) {
                    tests.add(DynamicTest.dynamicTest(k.op() + " " + dt + " " + p, () -> tenSteps(k, p, dt)));
                }
            }
        }
        return tests.stream();
    }

    static void tenSteps(KilnOp k, Hp p, DType dt) {
        int n = 300;  // more than one 256-element block of the sqrt kernels
        Random r = new Random(k.op().hashCode() * 31L + p.hashCode());
        double[] w = new double[n];
        double[][] s = new double[k.states()][n];
        for (int i = 0; i < n; i++) {
            w[i] = -2 + 4 * r.nextDouble();
        }
        double[] sched = {1.0};
        double tol = dt == DType.FLOAT64 ? 1e-12 : 2e-5;
        try (NDScope scope = NDScope.open()) {
            NDArray kw = array(w, dt);
            NDArray[] ks = new NDArray[k.states()];
            for (int j = 0; j < ks.length; j++) {
                ks[j] = array(s[j], dt);
            }
            for (int t = 1; t <= 10; t++) {
                double[] g = new double[n];
                for (int i = 0; i < n; i++) {
                    g[i] = r.nextGaussian();
                }
                NDArray kg = array(g, dt);
                Map<String, Object> a = attrs(k.op(), p, t, sched);
                NDArray[] in = new NDArray[2 + ks.length];
                in[0] = kw;
                in[1] = kg;
                System.arraycopy(ks, 0, in, 2, ks.length);
                NDArray.invokeInto(k.op(), a, kw, in);
                k.ref().step(p, t, w, g, s, sched);
                String l = k.op() + " " + dt + " step " + t;
                assertClose(w, kw.toDoubleArray(), tol, l + " weight");
                for (int j = 0; j < ks.length; j++) {
                    assertClose(s[j], ks[j].toDoubleArray(), tol, l + " state " + j);
                }
                if (k.op().equals("_kiln_adadelta_update")) {
                    assertClose(g, kg.toDoubleArray(), tol, l + " gradient buffer (rescaled in place)");
                }
            }
        }
    }

    static NDArray array(double[] v, DType dt) {
        NDArray a = NDArray.zeros(new Shape(v.length), dt, Context.cpu());
        a.set(v);
        return a;
    }

    static void assertClose(double[] want, double[] got, double tol, String what) {
        assertEquals(want.length, got.length, what + " size");
        for (int i = 0; i < want.length; i++) {
            if (Double.isNaN(want[i]) && Double.isNaN(got[i])) {
                continue;   // e.g. Adamax with every gradient clipped to 0: 0 / 0, in MXNet too
            }
            double err = Math.abs(want[i] - got[i]) / Math.max(1, Math.abs(want[i]));
            if (!(err <= tol)) {
                fail(String.format(Locale.ROOT, "%s element %d: want %s, got %s (err %.3e)", what, i, want[i], got[i], err));
            }
        }
    }

    // ---- spec 5.3 verified two-step vectors (MXNet's Python optimizers) --------------------------

    /** Runs two optimizer steps of a _kiln_ op on w0 = [1, -2, 3] with g1, g2; returns [w, states...]. */
    static double[][] twoSteps(KilnOp k, Hp p) {
        double[] sched = {1.0};
        try (NDScope scope = NDScope.open()) {
            NDArray w = NDArray.create(new float[] {1, -2, 3}, 3);
            NDArray[] in = new NDArray[2 + k.states()];
            in[0] = w;
            for (int j = 0; j < k.states(); j++) {
                in[2 + j] = NDArray.zeros(3);
            }
            float[][] grads = {{0.5f, -1, 2}, {0.1f, 0.2f, -0.3f}};
            for (int t = 1; t <= 2; t++) {
                in[1] = NDArray.create(grads[t - 1], 3);
                NDArray.invokeInto(k.op(), attrs(k.op(), p, t, sched), w, in);
                if (k.op().contains("nadam")) {
                    sched[0] *= p.beta1 * (1 - 0.5 * Math.pow(0.96, t * SCHEDULE_DECAY));
                }
            }
            double[][] out = new double[1 + k.states()][];
            out[0] = w.toDoubleArray();
            for (int j = 0; j < k.states(); j++) {
                out[1 + j] = in[2 + j].toDoubleArray();
            }
            return out;
        }
    }

    static void assertVec(double[] want, double[] got, double tol, String what) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol * Math.max(1, Math.abs(want[i])), what + "[" + i + "]");
        }
    }

    @Test
    void specTwoStepVectors() {
        double[][] r = twoSteps(KILN_OPS.get(0), new Hp(0.1, 0.01, 1, -1, 0, 0, 1e-7, 0));
        assertVec(new double[] {0.8784894, -1.9157137, 2.9089372}, r[0], 1e-6, "adagrad w");
        assertVec(new double[] {0.26, 1.04, 4.09}, r[1], 1e-6, "adagrad history");

        r = twoSteps(KILN_OPS.get(1), new Hp(0, 0.01, 1, -1, 0, 0, 1e-5, 0.9));
        assertVec(new double[] {0.9672856, -1.9532176, 2.9326086}, r[0], 1e-6, "adadelta w");
        assertVec(new double[] {0.0235, 0.094, 0.369}, r[1], 1e-6, "adadelta acc_g");
        assertVec(new double[] {9.8e-6, 9.9e-6, 9.5e-6}, r[2], 1e-7, "adadelta acc_delta");

        r = twoSteps(KILN_OPS.get(2), new Hp(0.1, 0, 1, -1, 0.9, 0.999, 0, 0));
        assertVec(new double[] {0.8420473, -1.8631210, 2.8604870}, r[0], 1e-6, "adamax w");
        assertVec(new double[] {0.055, -0.07, 0.15}, r[1], 1e-6, "adamax m");
        assertVec(new double[] {0.4995, 0.999, 1.998}, r[2], 1e-6, "adamax u");

        r = twoSteps(KILN_OPS.get(3), new Hp(0.1, 0, 1, -1, 0.9, 0.999, 1e-8, 0));
        assertVec(new double[] {0.8676667, -1.9086739, 2.9036264}, r[0], 1e-6, "nadam w");
        assertVec(new double[] {0.055, -0.07, 0.15}, r[1], 1e-6, "nadam m");
        assertVec(new double[] {0.0002598, 0.001039, 0.004086}, r[2], 6e-7, "nadam v");
    }

    // ---- signatures ------------------------------------------------------------------------------

    record Sig(String op, List<String> inputs, List<Integer> mutate, Map<String, String> defaults, List<String> required) {}

    static Map<String, String> d(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    static final Map<String, String> BASE = d("wd", "0", "rescale_grad", "1", "clip_gradient", "-1");

    static Map<String, String> base(String... kv) {
        Map<String, String> m = new LinkedHashMap<>(BASE);
        m.putAll(d(kv));
        return m;
    }

    static final List<Sig> SIGNATURES = List.of(
            new Sig("nag_mom_update", List.of("weight", "grad", "mom"), List.of(2), base("momentum", "0"), List.of("lr")),
            new Sig("adam_update", List.of("weight", "grad", "mean", "var"), List.of(2, 3),
                    base("beta1", "0.9", "beta2", "0.999", "epsilon", "1e-08", "lazy_update", "True"), List.of("lr")),
            new Sig("rmsprop_update", List.of("weight", "grad", "n"), List.of(2),
                    base("gamma1", "0.95", "epsilon", "1e-08", "clip_weights", "-1"), List.of("lr")),
            new Sig("rmspropalex_update", List.of("weight", "grad", "n", "g", "delta"), List.of(2, 3, 4),
                    base("gamma1", "0.95", "gamma2", "0.9", "epsilon", "1e-08", "clip_weights", "-1"), List.of("lr")),
            new Sig("ftrl_update", List.of("weight", "grad", "z", "n"), List.of(2, 3), base("lamda1", "0.01", "beta", "1"), List.of("lr")),
            new Sig("ftml_update", List.of("weight", "grad", "d", "v", "z"), List.of(2, 3, 4),
                    d("beta1", "0.6", "beta2", "0.999", "wd", "0", "rescale_grad", "1", "clip_grad", "-1"), List.of("lr", "t")),
            new Sig("signsgd_update", List.of("weight", "grad"), List.of(), base(), List.of("lr")),
            new Sig("signum_update", List.of("weight", "grad", "mom"), List.of(2), base("momentum", "0", "wd_lh", "0"), List.of("lr")),
            new Sig("lamb_update_phase1", List.of("weight", "grad", "mean", "var"), List.of(2, 3),
                    d("beta1", "0.9", "beta2", "0.999", "epsilon", "1e-06", "bias_correction", "True", "rescale_grad", "1",
                            "clip_gradient", "-1"), List.of("t", "wd")),
            new Sig("lamb_update_phase2", List.of("weight", "g", "r1", "r2"), List.of(), d("lower_bound", "-1", "upper_bound", "-1"),
                    List.of("lr")),
            new Sig("mp_sgd_update", List.of("weight", "grad", "weight32"), List.of(2), base("lazy_update", "True"), List.of("lr")),
            new Sig("mp_sgd_mom_update", List.of("weight", "grad", "mom", "weight32"), List.of(2, 3),
                    base("momentum", "0", "lazy_update", "True"), List.of("lr")),
            new Sig("mp_nag_mom_update", List.of("weight", "grad", "mom", "weight32"), List.of(2, 3), base("momentum", "0"), List.of("lr")),
            new Sig("_kiln_adagrad_update", List.of("weight", "grad", "history"), List.of(2), base("epsilon", "1e-07"), List.of("lr")),
            new Sig("_kiln_adadelta_update", List.of("weight", "grad", "acc_g", "acc_delta"), List.of(1, 2, 3),
                    base("rho", "0.9", "epsilon", "1e-05"), List.of()),
            new Sig("_kiln_adamax_update", List.of("weight", "grad", "m", "u"), List.of(2, 3), base("beta1", "0.9", "beta2", "0.999"),
                    List.of("lr", "t")),
            new Sig("_kiln_nadam_update", List.of("weight", "grad", "m", "v"), List.of(2, 3),
                    base("beta1", "0.9", "beta2", "0.999", "epsilon", "1e-08"), List.of("lr", "t", "momentum_t", "momentum_t_1", "m_schedule")));

    @Test
    void signaturesDefaultsAndMutatedInputs() {
        for (Sig s : SIGNATURES) {
            OpInfo info = Ops.info(s.op());
            assertEquals(s.inputs(), info.inputs(), s.op() + " inputs");
            assertEquals(s.mutate(), info.mutateInputs(), s.op() + " mutated inputs");
            assertEquals(1, info.numVisibleOutputs(), s.op() + " outputs");
            assertFalse(info.isDifferentiable(), s.op() + " is not differentiable");
            s.defaults().forEach((k, v) -> assertEquals(v, info.param(k).defaultValue(), s.op() + "." + k + " default"));
            for (String k : s.required()) {
                assertTrue(info.param(k).isRequired(), s.op() + "." + k + " is required");
            }
        }
        assertEquals("9.9999999392252903e-09", Ops.info("ftml_update").param("epsilon").defaultValue(), "MXNet's double(1e-8f)");
    }

    // ---- error cases -------------------------------------------------------------------------------

    /** Minimal valid attributes for each op. */
    static Map<String, Object> valid(String op) {
        Map<String, Object> a = new LinkedHashMap<>();
        switch (op) {
            case "lamb_update_phase1" -> {
                a.put("t", 1);
                a.put("wd", 0.0);
            }
            case "ftml_update", "_kiln_adamax_update" -> {
                a.put("lr", 0.1);
                a.put("t", 1);
            }
            case "_kiln_nadam_update" -> {
                a.put("lr", 0.1);
                a.put("t", 1);
                a.put("momentum_t", 0.5);
                a.put("momentum_t_1", 0.5);
                a.put("m_schedule", 0.5);
            }
            case "_kiln_adadelta_update" -> { }
            default -> a.put("lr", 0.1);
        }
        return a;
    }

    static NDArray[] validInputs(Sig s) {
        NDArray[] in = new NDArray[s.inputs().size()];
        boolean mp = s.op().startsWith("mp_");
        for (int i = 0; i < in.length; i++) {
            boolean norm = s.op().equals("lamb_update_phase2") && i >= 2;
            Shape shape = new Shape(norm ? new long[] {1} : new long[] {2, 3});
            in[i] = mp && i < 2 ? NDArray.zeros(shape, DType.FLOAT16, Context.cpu()) : NDArray.full(shape, 0.5, DType.FLOAT32, Context.cpu());
        }
        return in;
    }

    static void expectFailure(String what, Runnable r, String... fragments) {
        RuntimeException e = assertThrows(RuntimeException.class, r::run, what);
        assertTrue(e instanceof KilnException || e instanceof IllegalArgumentException, what + ": " + e);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), what + ": message '" + e.getMessage() + "' lacks '" + f + "'");
        }
    }

    @TestFactory
    Stream<DynamicTest> errorCases() {
        return SIGNATURES.stream().map(s -> DynamicTest.dynamicTest(s.op(), () -> {
            try (NDScope scope = NDScope.open()) {
                NDArray[] in = validInputs(s);
                NDArray out = in[0];
                NDArray.invokeInto(s.op(), valid(s.op()), out, in);   // the valid call works
                // shape mismatch: a grad (or g) of another shape
                NDArray[] bad = in.clone();
                bad[1] = NDArray.zeros(new Shape(3, 2), in[1].dtype(), Context.cpu());
                expectFailure(s.op() + " shape", () -> NDArray.invokeInto(s.op(), valid(s.op()), out, bad), s.op(), "Shape inconsistent");
                // wrong input count
                NDArray[] fewer = java.util.Arrays.copyOf(in, in.length - 1);
                expectFailure(s.op() + " count", () -> NDArray.invokeInto(s.op(), valid(s.op()), out, fewer), s.op(), "inputs");
                // unknown attribute
                Map<String, Object> unknown = new LinkedHashMap<>(valid(s.op()));
                unknown.put("no_such_param", 1);
                expectFailure(s.op() + " unknown attr", () -> NDArray.invokeInto(s.op(), unknown, out, in), "no_such_param");
                // malformed value
                Map<String, Object> malformed = new LinkedHashMap<>(valid(s.op()));
                String key = s.defaults().keySet().stream().filter(k -> !k.equals("lazy_update") && !k.equals("bias_correction"))
                        .findFirst().orElseThrow();
                malformed.put(key, "abc");
                expectFailure(s.op() + " malformed " + key, () -> NDArray.invokeInto(s.op(), malformed, out, in), key);
                // missing required parameter
                for (String req : s.required()) {
                    Map<String, Object> missing = new LinkedHashMap<>(valid(s.op()));
                    missing.remove(req);
                    expectFailure(s.op() + " missing " + req, () -> NDArray.invokeInto(s.op(), missing, out, in), req);
                }
                // integer data are not supported
                NDArray[] ints = in.clone();
                ints[0] = NDArray.zeros(in[0].shape(), DType.INT32, Context.cpu());
                ints[1] = NDArray.zeros(in[1].shape(), DType.INT32, Context.cpu());
                expectFailure(s.op() + " int32", () -> NDArray.invokeInto(s.op(), valid(s.op()), ints[0], ints), "int32");
            }
        }));
    }

    @Test
    void specificErrors() {
        try (NDScope scope = NDScope.open()) {
            NDArray w = NDArray.zeros(2, 3), g = NDArray.zeros(2, 3), d = NDArray.zeros(2, 3), v = NDArray.zeros(2, 3), z = NDArray.zeros(2, 3);
            // ftml beta1 must be in [0, 1]
            expectFailure("ftml beta1", () -> NDArray.invokeInto("ftml_update", Map.of("lr", 0.1, "t", 1, "beta1", 1.5), w, w, g, d, v, z),
                    "beta1");
            // mixed precision: the master copy must be float32
            NDArray w16 = NDArray.zeros(new Shape(2, 3), DType.FLOAT16, Context.cpu());
            NDArray g16 = NDArray.zeros(new Shape(2, 3), DType.FLOAT16, Context.cpu());
            NDArray w64 = NDArray.zeros(new Shape(2, 3), DType.FLOAT64, Context.cpu());
            expectFailure("mp weight32 float64", () -> NDArray.invokeInto("mp_sgd_update", Map.of("lr", 0.1), w16, w16, g16, w64),
                    "weight32");
            // ... and weight and grad share a type
            expectFailure("mp grad float32", () -> NDArray.invokeInto("mp_sgd_update", Map.of("lr", 0.1), w16, w16, g, w), "grad");
            // lamb phase 2: r1 and r2 hold one value
            NDArray r2 = NDArray.zeros(2);
            NDArray r1 = NDArray.zeros(1);
            expectFailure("lamb r2", () -> NDArray.invokeInto("lamb_update_phase2", Map.of("lr", 0.1), w, w, g, r1, r2), "r2");
            // non-integer t
            expectFailure("t 1.5", () -> NDArray.invokeInto("ftml_update", Map.of("lr", 0.1, "t", "1.5"), w, w, g, d, v, z), "t");
        }
    }

    /** The output honours its request: a separate output leaves the weight untouched. */
    @Test
    void separateOutputLeavesWeightAlone() {
        try (NDScope scope = NDScope.open()) {
            NDArray w = NDArray.create(new float[] {1, -2, 3}, 3);
            NDArray g = NDArray.create(new float[] {0.5f, -1, 2}, 3);
            NDArray h = NDArray.zeros(3);
            NDArray out = NDArray.zeros(3);
            NDArray.invokeInto("_kiln_adagrad_update", Map.of("lr", 0.1), out, w, g, h);
            assertEquals(List.of(1.0, -2.0, 3.0), List.of(w.toDoubleArray()[0], w.toDoubleArray()[1], w.toDoubleArray()[2]));
            double[] o = out.toDoubleArray();
            // history = g^2; out = w - 0.1 * g / sqrt(g^2 + 1e-7)
            for (int i = 0; i < 3; i++) {
                double gi = new double[] {0.5, -1, 2}[i], wi = new double[] {1, -2, 3}[i];
                assertEquals(wi - 0.1 * gi / Math.sqrt(gi * gi + 1e-7), o[i], 1e-6);
            }
        }
    }
}
