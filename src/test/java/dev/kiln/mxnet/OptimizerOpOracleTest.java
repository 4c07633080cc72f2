package dev.kiln.mxnet;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.types.DataType;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.ndarray.Shape;
import dev.kiln.optimizer.FusedUpdate;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The optimizer update operators against the real MXNet 1.9.1: the same initial weights and
 * states (copied byte for byte), the same random gradients and the same MXNet parameter strings
 * for 10 steps, with clipping on and off, weight decay and rescale_grad; after every step the
 * weight and every state must agree to 1e-6 (absolute, or relative above 1). float16 weights of
 * the mixed-precision ops must agree exactly. Both the in-place call (out = weight, what MXNet's
 * Python optimizers do) and a separate output array are checked.
 */
@ExtendWith(NoLeaks.class)
class OptimizerOpOracleTest {
    static final double TOL = 1e-6;
    static final int STEPS = 10;
    static final Map<String, Double> MAX_ERR = new LinkedHashMap<>();

    /** How an input is initialised. */
    enum Init { WEIGHT, GRAD, ZERO, POSITIVE, NORMAL, MASTER }

    /**
     * One op configuration. inputs: one Init per op input (weight first, grad second); the
     * MASTER input is a float32 copy of the weight. attrs: MXNet parameter strings; "t" is set to
     * the step number (1..10) when tStep.
     */
    record Case(String op, Map<String, String> attrs, List<Init> inputs, boolean tStep, DType dtype, boolean inPlace) {
        String label() {
            return op + " " + dtype + (inPlace ? " in-place " : " out ") + attrs;
        }

        Case with(DType t, boolean ip) {
            return new Case(op, attrs, inputs, tStep, t, ip);
        }
    }

    static Map<String, String> a(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    static final Init W = Init.WEIGHT, G = Init.GRAD, Z = Init.ZERO, P = Init.POSITIVE, N = Init.NORMAL, M = Init.MASTER;

    static List<Case> baseCases() {
        List<Case> c = new ArrayList<>();
        DType f = DType.FLOAT32;
        for (String clip : new String[] {null, "0.3"}) {
            Map<String, String> common = a("wd", "0.01", "rescale_grad", "0.5");
            if (clip != null) {
                common.put("clip_gradient", clip);
            }
            c.add(new Case("nag_mom_update", merge(a("lr", "0.1", "momentum", "0.9"), common), List.of(W, G, N), false, f, true));
            c.add(new Case("adam_update", merge(a("lr", "0.01", "beta1", "0.8", "beta2", "0.99", "epsilon", "1e-6"), common),
                    List.of(W, G, Z, Z), false, f, true));
            c.add(new Case("adam_update", merge(a("lr", "0.05"), common), List.of(W, G, N, P), false, f, true));
            c.add(new Case("rmsprop_update", merge(a("lr", "0.01", "gamma1", "0.9"), common), List.of(W, G, Z), false, f, true));
            c.add(new Case("rmsprop_update", merge(a("lr", "0.02", "clip_weights", "1.5"), common), List.of(W, G, P), false, f, true));
            c.add(new Case("rmspropalex_update", merge(a("lr", "0.01", "gamma1", "0.9", "gamma2", "0.8"), common),
                    List.of(W, G, Z, Z, Z), false, f, true));
            c.add(new Case("rmspropalex_update", merge(a("lr", "0.003", "clip_weights", "1.2"), common), List.of(W, G, Z, Z, N), false, f, true));
            c.add(new Case("ftrl_update", merge(a("lr", "0.1", "lamda1", "0.02", "beta", "0.5"), common), List.of(W, G, N, P), false, f, true));
            c.add(new Case("ftrl_update", merge(a("lr", "0.2"), common), List.of(W, G, Z, Z), false, f, true));
            c.add(new Case("signsgd_update", merge(a("lr", "0.05"), common), List.of(W, G), false, f, true));
            c.add(new Case("signum_update", merge(a("lr", "0.05", "momentum", "0.9", "wd_lh", "0.1"), common), List.of(W, G, N), false, f, true));
            c.add(new Case("signum_update", merge(a("lr", "0.05"), common), List.of(W, G, Z), false, f, true));
            Map<String, String> ftml = new LinkedHashMap<>(common);
            if (clip != null) {
                ftml.remove("clip_gradient");
                ftml.put("clip_grad", clip);
            }
            c.add(new Case("ftml_update", merge(a("lr", "0.05", "beta1", "0.6", "beta2", "0.999", "epsilon", "1e-8"), ftml),
                    List.of(W, G, Z, Z, Z), true, f, true));
            c.add(new Case("ftml_update", merge(a("lr", "0.1"), ftml), List.of(W, G, Z, Z, Z), true, f, true));
            c.add(new Case("mp_sgd_update", merge(a("lr", "0.1"), common), List.of(W, G, M), false, DType.FLOAT16, true));
            c.add(new Case("mp_sgd_mom_update", merge(a("lr", "0.1", "momentum", "0.9"), common), List.of(W, G, N, M), false,
                    DType.FLOAT16, true));
            c.add(new Case("mp_nag_mom_update", merge(a("lr", "0.1", "momentum", "0.9"), common), List.of(W, G, N, M), false,
                    DType.FLOAT16, true));
        }
        // defaults only (checks every default against MXNet's)
        c.add(new Case("nag_mom_update", a("lr", "0.1"), List.of(W, G, N), false, f, true));
        c.add(new Case("adam_update", a("lr", "0.01"), List.of(W, G, Z, Z), false, f, true));
        c.add(new Case("rmsprop_update", a("lr", "0.01"), List.of(W, G, Z), false, f, true));
        c.add(new Case("rmspropalex_update", a("lr", "0.01"), List.of(W, G, Z, Z, Z), false, f, true));
        c.add(new Case("ftrl_update", a("lr", "0.1"), List.of(W, G, Z, Z), false, f, true));
        c.add(new Case("signum_update", a("lr", "0.01"), List.of(W, G, N), false, f, true));
        c.add(new Case("ftml_update", a("lr", "0.01"), List.of(W, G, Z, Z, Z), true, f, true));
        c.add(new Case("mp_sgd_update", a("lr", "0.1"), List.of(W, G, M), false, DType.FLOAT16, true));
        c.add(new Case("mp_nag_mom_update", a("lr", "0.1", "momentum", "0.9"), List.of(W, G, N, M), false, DType.FLOAT32, true));
        c.add(new Case("mp_sgd_mom_update", a("lr", "0.1", "momentum", "0.9", "clip_gradient", "0.2"), List.of(W, G, N, M), false,
                DType.FLOAT32, true));
        // clip_gradient 0 clips every gradient to 0
        c.add(new Case("adam_update", a("lr", "0.01", "clip_gradient", "0"), List.of(W, G, Z, Z), false, f, true));
        return c;
    }

    static Map<String, String> merge(Map<String, String> x, Map<String, String> y) {
        Map<String, String> m = new LinkedHashMap<>(x);
        m.putAll(y);
        return m;
    }

    static List<Case> cases() {
        List<Case> all = new ArrayList<>();
        for (Case c : baseCases()) {
            all.add(c);
            all.add(c.with(c.dtype(), false));                       // separate output array
            if (c.dtype() == DType.FLOAT32 && !c.op().startsWith("mp_")) {
                all.add(c.with(DType.FLOAT64, true));                // float64 data
            }
        }
        return all;
    }

    @TestFactory
    Stream<DynamicTest> tenStepsAgreeWithMxnet() {
        MxOracle.assumeAvailable();
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.label(), () -> run(c)));
    }

    static DataType djl(DType t) {
        return switch (t) {
            case FLOAT16 -> DataType.FLOAT16;
            case FLOAT64 -> DataType.FLOAT64;
            default -> DataType.FLOAT32;
        };
    }

    /** An MXNet array with the given values, converted to dtype. */
    static ai.djl.ndarray.NDArray mx(MxNDManager m, double[] v, long[] shape, DType t) {
        return m.create(v, new ai.djl.ndarray.types.Shape(shape)).toType(djl(t), false);
    }

    /** A Kiln array with exactly the bytes of an MXNet array. */
    static NDArray kiln(ai.djl.ndarray.NDArray x, DType t) {
        return NDArray.fromBytes(x.toByteArray(), new Shape(x.getShape().getShape()), t, Context.cpu());
    }

    static double[] values(byte[] b, DType t) {
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        double[] v = new double[b.length / t.bytes()];
        for (int i = 0; i < v.length; i++) {
            v[i] = switch (t) {
                case FLOAT16 -> halfToFloat(buf.getShort());
                case FLOAT64 -> buf.getDouble();
                default -> buf.getFloat();
            };
        }
        return v;
    }

    static float halfToFloat(short h) {
        int bits = h & 0xffff;
        int sign = (bits >>> 15) << 31, exp = (bits >>> 10) & 0x1f, mant = bits & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            float f = mant / 1024f / 16384f;   // subnormal: mant * 2^-24
            return sign != 0 ? -f : f;
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    static double[] random(Random r, int n, Init init) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = switch (init) {
                case WEIGHT -> -2 + 4 * r.nextDouble();
                case GRAD, NORMAL -> r.nextGaussian();
                case POSITIVE -> 0.05 + r.nextDouble();
                default -> 0;
            };
        }
        return v;
    }

    static void compare(String what, byte[] kiln, byte[] mxnet, DType t, double tol, String label) {
        double[] k = values(kiln, t), x = values(mxnet, t);
        assertEquals(x.length, k.length, what + " size");
        double maxErr = 0;
        for (int i = 0; i < k.length; i++) {
            if (Double.isNaN(k[i]) && Double.isNaN(x[i])) {
                continue;
            }
            double err = Math.abs(k[i] - x[i]) / Math.max(1.0, Math.abs(x[i]));
            if (!(err <= tol)) {
                fail(String.format(Locale.ROOT, "%s: %s element %d: kiln %s, mxnet %s (err %.3e)", label, what, i, k[i], x[i], err));
            }
            maxErr = Math.max(maxErr, err);
        }
        synchronized (MAX_ERR) {
            MAX_ERR.merge(label.substring(0, label.indexOf(' ')), maxErr, Math::max);
        }
    }

    static void run(Case c) {
        long[] shape = {7, 45};   // 315 elements: more than one 256-element block of the sqrt kernels
        int n = 7 * 45;
        Random r = new Random(c.label().hashCode());
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            int nin = c.inputs().size();
            ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[nin];
            NDArray[] kIn = new NDArray[nin];
            DType[] types = new DType[nin];
            double[] w0 = random(r, n, Init.WEIGHT);
            for (int i = 0; i < nin; i++) {
                Init init = c.inputs().get(i);
                boolean mp = c.op().startsWith("mp_");
                types[i] = (mp && i >= 2) ? DType.FLOAT32 : c.dtype();
                double[] v = init == Init.WEIGHT || init == Init.MASTER ? w0 : random(r, n, init);
                mIn[i] = mx(m, v, shape, types[i]);
                if (init == Init.MASTER && c.dtype() == DType.FLOAT16) {
                    // MXNet's master copy: weight.astype(float32) of the float16 weight
                    mIn[i] = mIn[0].toType(DataType.FLOAT32, true);
                }
                kIn[i] = kiln(mIn[i], types[i]);
            }
            ai.djl.ndarray.NDArray mOut = c.inPlace() ? mIn[0] : mx(m, new double[n], shape, c.dtype());
            NDArray kOut = c.inPlace() ? kIn[0] : kiln(mOut, c.dtype());
            for (int step = 1; step <= STEPS; step++) {
                double[] grad = random(r, n, Init.GRAD);
                mIn[1] = mx(m, grad, shape, c.dtype());
                kIn[1].close();
                kIn[1] = kiln(mIn[1], c.dtype());
                Map<String, String> attrs = new LinkedHashMap<>(c.attrs());
                if (c.tStep()) {
                    attrs.put("t", Integer.toString(step));
                }
                MxOracle.invokeInto(m, c.op(), attrs, mOut, mIn);
                NDArray.invokeInto(c.op(), attrs, kOut, kIn);
                String label = c.label() + " step " + step;
                compare("output", kOut.toBytes(), mOut.toByteArray(), c.dtype(), c.dtype() == DType.FLOAT16 ? 0 : TOL, label);
                for (int i = 2; i < nin; i++) {
                    compare("state " + i, kIn[i].toBytes(), mIn[i].toByteArray(), types[i], TOL, label);
                }
                if (!c.inPlace()) {
                    compare("weight (unchanged)", kIn[0].toBytes(), mIn[0].toByteArray(), c.dtype(), 0, label);
                }
            }
        }
    }

    /** LAMB: phase 1 (g and the states) and phase 2 (the weight), chained for 10 steps. */
    @TestFactory
    Stream<DynamicTest> lambAgreesWithMxnet() {
        MxOracle.assumeAvailable();
        List<DynamicTest> t = new ArrayList<>();
        for (DType dt : List.of(DType.FLOAT32, DType.FLOAT64)) {
            for (boolean bias : List.of(true, false)) {
                for (String clip : new String[] {null, "0.3"}) {
                    Map<String, String> p1 = a("beta1", "0.8", "beta2", "0.99", "epsilon", "1e-6", "bias_correction", bias ? "True" : "False",
                            "wd", "0.01", "rescale_grad", "0.5");
                    if (clip != null) {
                        p1.put("clip_gradient", clip);
                    }
                    Map<String, String> p2 = bias ? a("lr", "0.05") : a("lr", "0.05", "lower_bound", "0.5", "upper_bound", "3");
                    t.add(DynamicTest.dynamicTest("lamb " + dt + " " + p1 + " " + p2, () -> lamb(dt, p1, p2)));
                }
            }
            t.add(DynamicTest.dynamicTest("lamb defaults " + dt, () -> lamb(dt, a("wd", "0"), a("lr", "0.01"))));
        }
        return t.stream();
    }

    static void lamb(DType dt, Map<String, String> p1, Map<String, String> p2) {
        long[] shape = {9, 31};
        int n = 9 * 31;
        Random r = new Random(p1.hashCode() * 31L + p2.hashCode() + dt.ordinal());
        String label = "lamb " + dt + " " + p1 + " " + p2;
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray mw = mx(m, random(r, n, Init.WEIGHT), shape, dt), mm = mx(m, new double[n], shape, dt),
                    mv = mx(m, new double[n], shape, dt);
            NDArray kw = kiln(mw, dt), km = kiln(mm, dt), kv = kiln(mv, dt);
            for (int step = 1; step <= STEPS; step++) {
                ai.djl.ndarray.NDArray mg = mx(m, random(r, n, Init.GRAD), shape, dt);
                NDArray kg = kiln(mg, dt);
                Map<String, String> a1 = new LinkedHashMap<>(p1);
                a1.put("t", Integer.toString(step));
                ai.djl.ndarray.NDArray mgOut = MxOracle.invoke(m, "lamb_update_phase1", a1, mw, mg, mm, mv).get(0);
                NDArray kgOut = NDArray.invoke("lamb_update_phase1", a1, kw, kg, km, kv).get(0);
                String l = label + " step " + step;
                compare("g", kgOut.toBytes(), mgOut.toByteArray(), dt, TOL, l);
                compare("mean", km.toBytes(), mm.toByteArray(), dt, TOL, l);
                compare("var", kv.toBytes(), mv.toByteArray(), dt, TOL, l);
                // the same norms for both engines (from MXNet's g and weight, in double)
                double r1 = norm(values(mw.toByteArray(), dt)), r2 = norm(values(mgOut.toByteArray(), dt));
                ai.djl.ndarray.NDArray mr1 = mx(m, new double[] {r1}, new long[] {1}, dt), mr2 = mx(m, new double[] {r2}, new long[] {1}, dt);
                NDArray kr1 = kiln(mr1, dt), kr2 = kiln(mr2, dt);
                MxOracle.invokeInto(m, "lamb_update_phase2", p2, mw, mw, mgOut, mr1, mr2);
                NDArray.invokeInto("lamb_update_phase2", p2, kw, kw, kgOut, kr1, kr2);
                compare("weight", kw.toBytes(), mw.toByteArray(), dt, TOL, l);
            }
        }
    }

    static double norm(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x * x;
        }
        return Math.sqrt(s);
    }

    /** A FusedUpdate of several MXNet ops with dynamic lr/wd/t equals MXNet op by op. */
    @Test
    void fusedUpdateAgreesWithMxnet() {
        MxOracle.assumeAvailable();
        long[] shape = {5, 13};
        int n = 65;
        Random r = new Random(11);
        List<Case> plan = List.of(
                new Case("adam_update", a("beta1", "0.8", "rescale_grad", "0.5", "clip_gradient", "0.4"), List.of(W, G, Z, Z), false,
                        DType.FLOAT32, true),
                new Case("ftml_update", a("rescale_grad", "0.5"), List.of(W, G, Z, Z, Z), true, DType.FLOAT32, true),
                new Case("nag_mom_update", a("momentum", "0.9"), List.of(W, G, N), false, DType.FLOAT32, true),
                new Case("mp_sgd_mom_update", a("momentum", "0.9"), List.of(W, G, N, M), false, DType.FLOAT16, true));
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager(); FusedUpdate fu = new FusedUpdate()) {
            List<ai.djl.ndarray.NDArray[]> mx = new ArrayList<>();
            List<NDArray[]> kl = new ArrayList<>();
            for (Case c : plan) {
                int nin = c.inputs().size();
                ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[nin];
                NDArray[] kIn = new NDArray[nin];
                for (int i = 0; i < nin; i++) {
                    DType t = c.op().startsWith("mp_") && i >= 2 ? DType.FLOAT32 : c.dtype();
                    mIn[i] = c.inputs().get(i) == Init.MASTER ? mIn[0].toType(DataType.FLOAT32, true)
                            : mx(m, random(r, n, c.inputs().get(i)), shape, t);
                    kIn[i] = kiln(mIn[i], t);
                }
                mx.add(mIn);
                kl.add(kIn);
                fu.add(c.op(), c.attrs(), c.tStep() ? List.of("lr", "wd", "t") : List.of("lr", "wd"), List.of(kIn), List.of(kIn[0]));
            }
            for (int step = 1; step <= 5; step++) {
                List<Double> dyn = new ArrayList<>();
                for (int p = 0; p < plan.size(); p++) {
                    Case c = plan.get(p);
                    ai.djl.ndarray.NDArray[] mIn = mx.get(p);
                    NDArray[] kIn = kl.get(p);
                    double[] g = random(r, n, Init.GRAD);
                    mIn[1] = mx(m, g, shape, c.dtype());
                    try (NDArray tmp = kiln(mIn[1], c.dtype())) {
                        tmp.copyTo(kIn[1]);
                    }
                    double lr = 0.01 * (p + 1) / step, wd = 0.001 * p;
                    Map<String, String> attrs = merge(c.attrs(), a("lr", Double.toString(lr), "wd", Double.toString(wd)));
                    dyn.add(lr);
                    dyn.add(wd);
                    if (c.tStep()) {
                        attrs.put("t", Integer.toString(step));
                        dyn.add((double) step);
                    }
                    MxOracle.invokeInto(m, c.op(), attrs, mIn[0], mIn);
                }
                fu.run(dyn.stream().mapToDouble(Double::doubleValue).toArray());
                for (int p = 0; p < plan.size(); p++) {
                    Case c = plan.get(p);
                    String l = "fused " + c.op() + " step " + step;
                    compare("weight", kl.get(p)[0].toBytes(), mx.get(p)[0].toByteArray(), c.dtype(), c.dtype() == DType.FLOAT16 ? 0 : TOL, l);
                    for (int i = 2; i < c.inputs().size(); i++) {
                        DType t = c.op().startsWith("mp_") ? DType.FLOAT32 : c.dtype();
                        compare("state " + i, kl.get(p)[i].toBytes(), mx.get(p)[i].toByteArray(), t, TOL, l);
                    }
                }
            }
        }
    }

    @AfterAll
    static void report() {
        if (!MAX_ERR.isEmpty()) {
            StringBuilder b = new StringBuilder("[OptimizerOpOracleTest] max error per op (vs MXNet " + MxOracle.version() + "):");
            MAX_ERR.forEach((k, v) -> b.append(String.format(Locale.ROOT, " %s=%.1e", k, v)));
            System.out.println(b);
        }
    }
}
