package dev.kiln.gpu;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.testutil.GradCheck;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;

/**
 * GPU consistency cases of the Optimizer operator family (see {@link GpuCase}): every update
 * operator (sgd_update and sgd_mom_update included, whose kernels live with the elementwise ops)
 * called imperatively with default and with non-default hyper-parameters (clip_gradient set and
 * unset, wd, rescale_grad, the op's own options), odd sizes, and per operator one size above 70k
 * elements (float32; the same parameters at 1001 elements in float64); the output and every
 * (mutated) input are compared. Custom cases (run on cpu(0) and the context under test, compared)
 * cover what the harness cannot express: float16 weights of the mixed-precision ops (the harness's
 * casts do not convert to float16) and the usual in-place call {@code out = weight}
 * (kWriteInplace; nag_mom_update and mp_nag_mom_update read the new weight back when the output
 * aliases it). The GPU kernels round as the CPU kernels do (no FMA contraction), so the default
 * tolerances hold with room to spare.
 */
final class GpuOptimizerCases implements GpuCases {
    private static final long[] SMALL = {5, 7};
    private static final long[] ODD = {257};
    private static final long[] BIG = {70001};
    private static final long[] MID = {1001};

    /** Values in [lo, lo + width) in steps of 2^-10 (exact in float16, so the same in every dtype). */
    private static GpuCase.Gen from(double lo, double width) {
        return (n, s) -> {
            Random r = new Random(s);
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = lo + Math.floor(r.nextDouble() * 1024 * width) / 1024;
            }
            return v;
        };
    }

    private static final GpuCase.Gen POS = from(0.0625, 1);  // second moments, histories: > 0
    private static final GpuCase.Gen SYM = from(-1.0, 2);   // weights, gradients, first moments
    private static final GpuCase.Gen BIG_N = from(1.0, 1); // rmspropalex's n >= g^2 keeps n - g^2 >= 0

    private static long[][] shapes(long[] shape, int count) {
        long[][] s = new long[count][];
        for (int i = 0; i < count; i++) {
            s[i] = shape;
        }
        return s;
    }

    /** op(attrs, count inputs of `shape`). */
    private static GpuCase upd(String label, String op, Map<String, ?> attrs, long[] shape, int count) {
        return GpuCase.invoke(label, op, attrs, shapes(shape, count));
    }

    /**
     * The non-default hyper-parameter case of an update op: n = 70001 (many blocks) in float32, and
     * n = 1001 in float64 (smaller, to keep the CPU time of the catalogue modest); `opts` adds the
     * input generators.
     */
    private static void big(List<GpuCase> c, String label, String op, Map<String, ?> attrs, int count,
                            UnaryOperator<GpuCase> opts) {
        c.add(opts.apply(upd(label, op, attrs, BIG, count)).dtypes(DType.FLOAT32));
        c.add(opts.apply(upd(label.replace(" big", "") + " float64", op, attrs, MID, count)).dtypes(DType.FLOAT64));
    }

    /** attrs as a mutable map in insertion order (Map.of holds at most 10 pairs). */
    private static Map<String, Object> a(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    /** The gradient hyper-parameters with clipping, weight decay and rescaling, plus `head`. */
    private static Map<String, Object> grad(String clipName, Object... head) {
        Map<String, Object> m = a(head);
        m.put("wd", 0.05);
        m.put("rescale_grad", 1.75);
        m.put(clipName, 0.8);
        return m;
    }

    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        String cg = "clip_gradient";

        // sgd_update, sgd_mom_update (kernels in ops/elemwise.cu)
        c.add(upd("sgd_update plain", "sgd_update", a("lr", 0.1), ODD, 2));
        big(c, "sgd_update clip wd rescale big", "sgd_update", grad(cg, "lr", 0.1), 2, k -> k);
        c.add(upd("sgd_mom_update plain", "sgd_mom_update", a("lr", 0.1, "momentum", 0.9), SMALL, 3));
        big(c, "sgd_mom_update clip wd rescale big", "sgd_mom_update", grad(cg, "lr", 0.1, "momentum", 0.9), 3, k -> k);

        // momentum.cc
        c.add(upd("nag_mom_update plain", "nag_mom_update", a("lr", 0.1, "momentum", 0.9), ODD, 3));
        big(c, "nag_mom_update clip wd rescale big", "nag_mom_update", grad(cg, "lr", 0.05, "momentum", 0.7), 3, k -> k);
        c.add(upd("signsgd_update plain", "signsgd_update", a("lr", 0.1), SMALL, 2)
                .input("in1", -1, 0, 1, 0.5, -0.5, 0, 0, 2, -2, 0.25, -0.25, 0, 1, -1, 0, 0.5, 0.5, -0.5, 0, 3, -3, 0, 1, 1, -1,
                        0, 0, 0.125, -0.125, 0, 1, 0, -1, 2, 0));
        big(c, "signsgd_update wd big", "signsgd_update", grad(cg, "lr", 0.01), 2, k -> k);
        c.add(upd("signum_update plain", "signum_update", a("lr", 0.1, "momentum", 0.9), ODD, 3));
        Map<String, Object> signum = grad(cg, "lr", 0.01, "momentum", 0.8);
        signum.put("wd_lh", 0.02);
        big(c, "signum_update clip wd wd_lh big", "signum_update", signum, 3, k -> k);
        c.add(upd("signum_update rescale no clip", "signum_update",
                a("lr", 0.01, "momentum", 0.8, "rescale_grad", 0.5, "wd", 0.1), ODD, 3));

        // adaptive.cc
        c.add(upd("adam_update plain", "adam_update", a("lr", 0.01), ODD, 4).input("in3", POS));
        big(c, "adam_update clip wd rescale big", "adam_update",
                grad(cg, "lr", 0.001, "beta1", 0.8, "beta2", 0.99, "epsilon", 1e-6), 4, k -> k.input("in3", POS));
        c.add(upd("rmsprop_update plain", "rmsprop_update", a("lr", 0.01), SMALL, 3).input("in2", POS));
        Map<String, Object> rms = grad(cg, "lr", 0.05, "gamma1", 0.9, "epsilon", 1e-6);
        rms.put("clip_weights", 0.9);
        big(c, "rmsprop_update clip clip_weights big", "rmsprop_update", rms, 3, k -> k.input("in2", POS));
        c.add(upd("rmspropalex_update plain", "rmspropalex_update", a("lr", 0.01), ODD, 5).input("in2", BIG_N));
        Map<String, Object> alex = grad(cg, "lr", 0.05, "gamma1", 0.9, "gamma2", 0.8, "epsilon", 1e-6);
        alex.put("clip_weights", 0.95);
        big(c, "rmspropalex_update clip clip_weights big", "rmspropalex_update", alex, 5, k -> k.input("in2", BIG_N));
        c.add(upd("ftrl_update plain", "ftrl_update", a("lr", 0.1), ODD, 4).input("in3", POS));
        big(c, "ftrl_update clip wd lamda1 beta big", "ftrl_update", grad(cg, "lr", 0.2, "lamda1", 0.3, "beta", 0.5), 4,
                k -> k.input("in3", POS));
        c.add(upd("ftml_update plain", "ftml_update", a("lr", 0.01, "t", 1), SMALL, 5).input("in2", POS).input("in3", POS));
        big(c, "ftml_update clip_grad wd rescale big", "ftml_update",
                grad("clip_grad", "lr", 0.02, "beta1", 0.5, "beta2", 0.99, "epsilon", 1e-6, "t", 7), 5,
                k -> k.input("in2", POS).input("in3", POS));
        c.add(upd("lamb_update_phase1 plain", "lamb_update_phase1", a("t", 1, "wd", 0.0), ODD, 4).input("in3", POS));
        big(c, "lamb_update_phase1 clip wd rescale big", "lamb_update_phase1",
                grad(cg, "t", 5, "beta1", 0.85, "beta2", 0.98, "epsilon", 1e-5), 4, k -> k.input("in3", POS));
        c.add(upd("lamb_update_phase1 no bias correction", "lamb_update_phase1",
                a("t", 3, "wd", 0.01, "bias_correction", false, "rescale_grad", 2.0), SMALL, 4).input("in3", POS));
        long[] one = {1};
        c.add(GpuCase.invoke("lamb_update_phase2 ratio", "lamb_update_phase2", a("lr", 0.1), ODD, ODD, one, one)
                .input("in2", 2.5).input("in3", 0.75));
        c.add(GpuCase.invoke("lamb_update_phase2 bounds big", "lamb_update_phase2",
                a("lr", 0.05, "lower_bound", 0.5, "upper_bound", 2.0), BIG, BIG, one, one)
                .input("in2", 3.5).input("in3", 1.25).dtypes(DType.FLOAT32));
        c.add(GpuCase.invoke("lamb_update_phase2 lower bound", "lamb_update_phase2",
                a("lr", 0.05, "lower_bound", 0.5, "upper_bound", 2.0), SMALL, SMALL, one, one).input("in2", 0.25).input("in3", 1.25));
        c.add(GpuCase.invoke("lamb_update_phase2 zero norm", "lamb_update_phase2", a("lr", 0.05), SMALL, SMALL, one, one)
                .input("in2", 0.0).input("in3", 1.25));

        // mixed_precision.cc: weight, grad float16 (custom cases: the harness's casts do not convert to float16)
        // or the case dtype; the master weight and momentum float32
        String[] mp = {"mp_sgd_update", "mp_sgd_mom_update", "mp_nag_mom_update"};
        for (String op : mp) {
            int count = op.equals("mp_sgd_update") ? 3 : 4;
            Map<String, Object> plain = op.equals("mp_sgd_update") ? a("lr", 0.1) : a("lr", 0.1, "momentum", 0.9);
            Map<String, Object> full = op.equals("mp_sgd_update") ? grad(cg, "lr", 0.05) : grad(cg, "lr", 0.05, "momentum", 0.7);
            DType[] types = count == 3 ? new DType[] {DType.FLOAT16, DType.FLOAT16, DType.FLOAT32}
                    : new DType[] {DType.FLOAT16, DType.FLOAT16, DType.FLOAT32, DType.FLOAT32};
            c.add(direct(op + " float16 plain", op, plain, false, 257, count, Map.of(), types));
            c.add(direct(op + " float16 clip wd rescale big", op, full, false, (int) BIG[0], count, Map.of(), types));
            c.add(direct(op + " float16 in place", op, full, true, 1001, count, Map.of(), types));
            c.add(f32States(upd(op + " float32/float64 weights", op, full, SMALL, count), count));
        }

        // mixed_precision.cc: the loss scaler's overflow check (custom: the flag is one float, the inputs hold Inf/NaN)
        c.add(GpuCase.custom("all_finite / multi_all_finite flags", dev.kiln.ops.optimizer.AllFiniteTest::checkOn, "all_finite",
                "multi_all_finite"));

        // kiln_updates.cc
        c.add(upd("_kiln_adagrad_update plain", "_kiln_adagrad_update", a("lr", 0.1), ODD, 3).input("in2", POS));
        big(c, "_kiln_adagrad_update clip wd rescale big", "_kiln_adagrad_update", grad(cg, "lr", 0.05, "epsilon", 1e-6), 3,
                k -> k.input("in2", POS));
        c.add(upd("_kiln_adadelta_update plain", "_kiln_adadelta_update", a(), SMALL, 4).input("in2", POS).input("in3", POS));
        big(c, "_kiln_adadelta_update clip wd rescale big", "_kiln_adadelta_update", grad(cg, "rho", 0.8, "epsilon", 1e-4), 4,
                k -> k.input("in2", POS).input("in3", POS));
        c.add(upd("_kiln_adamax_update plain", "_kiln_adamax_update", a("lr", 0.01, "t", 1), ODD, 4).input("in3", POS));
        big(c, "_kiln_adamax_update clip wd rescale big", "_kiln_adamax_update",
                grad(cg, "lr", 0.002, "t", 9, "beta1", 0.85, "beta2", 0.99), 4, k -> k.input("in3", POS));
        c.add(upd("_kiln_nadam_update plain", "_kiln_nadam_update",
                a("lr", 0.01, "t", 1, "momentum_t", 0.45, "momentum_t_1", 0.4501, "m_schedule", 0.45), SMALL, 4).input("in3", POS));
        big(c, "_kiln_nadam_update clip wd rescale big", "_kiln_nadam_update",
                grad(cg, "lr", 0.002, "t", 4, "momentum_t", 0.4503, "momentum_t_1", 0.4504, "m_schedule", 0.0411, "beta2", 0.99,
                        "epsilon", 1e-6), 4, k -> k.input("in3", POS));

        // the usual in-place call: out = weight
        c.add(direct("nag_mom_update in place", "nag_mom_update", grad(cg, "lr", 0.05, "momentum", 0.7), true, 1001, 3, Map.of()));
        c.add(direct("adam_update in place", "adam_update", grad(cg, "lr", 0.01), true, 1001, 4, Map.of(3, POS)));
        c.add(direct("_kiln_adadelta_update in place", "_kiln_adadelta_update", grad(cg, "rho", 0.9), true, 1001, 4,
                Map.of(2, POS, 3, POS)));
        return c;
    }

    /** Inputs 2.. of a mixed-precision op (mom, weight32) stay float32. */
    private static GpuCase f32States(GpuCase k, int count) {
        for (int i = 2; i < count; i++) {
            k.type("in" + i, DType.FLOAT32);
        }
        return k;
    }

    /**
     * A custom case run on cpu(0) and on the context under test, compared: {@code op(attrs, in0, in1, ...)}
     * into a new output, or with {@code inPlace} the usual {@code invokeInto(op, attrs, out = in0, in0, ...)};
     * every input is compared after the call. Inputs of n elements of the given dtypes (float16
     * included), or float32 and float64 throughout when none are given.
     */
    private static GpuCase direct(String label, String op, Map<String, Object> attrs, boolean inPlace, int n, int count,
                                  Map<Integer, GpuCase.Gen> gens, DType... types) {
        List<DType[]> runs = new ArrayList<>();
        if (types.length > 0) {
            runs.add(types);
        } else {
            for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64}) {
                DType[] all = new DType[count];
                Arrays.fill(all, t);
                runs.add(all);
            }
        }
        return GpuCase.custom(label, test -> {
            for (DType[] run : runs) {
                Map<String, double[]> ref = runDirect(Context.cpu(), op, attrs, inPlace, n, count, gens, run, label);
                Map<String, double[]> got = runDirect(test, op, attrs, inPlace, n, count, gens, run, label);
                if (!ref.keySet().equals(got.keySet())) {
                    throw new AssertionError(label + ": results " + ref.keySet() + " vs " + got.keySet());
                }
                boolean f64 = run[0] == DType.FLOAT64;
                for (String k : ref.keySet()) {
                    GradCheck.assertClose(ref.get(k), got.get(k), f64 ? 1e-9 : 1e-4, f64 ? 1e-11 : 1e-5,
                            label + " " + run[0] + " " + k + " (cpu vs " + test + ")");
                }
            }
        }, op);
    }

    private static Map<String, double[]> runDirect(Context ctx, String op, Map<String, Object> attrs, boolean inPlace, int n,
                                                   int count, Map<Integer, GpuCase.Gen> gens, DType[] types, String label) {
        Map<String, double[]> out = new LinkedHashMap<>();
        List<NDArray> ins = new ArrayList<>();
        List<NDArray> outs = List.of();
        try {
            for (int i = 0; i < count; i++) {
                double[] v = gens.getOrDefault(i, SYM).apply(n, (long) (label + "/in" + i).hashCode());
                ins.add(upload(v, types[i], ctx));
            }
            if (inPlace) {
                NDArray.invokeInto(op, attrs, ins.get(0), ins.toArray(new NDArray[0]));
            } else {
                outs = NDArray.invoke(op, attrs, ins.toArray(new NDArray[0]));
                for (int i = 0; i < outs.size(); i++) {
                    outs.get(i).detach();
                    out.put("out" + i, download(outs.get(i)));
                }
            }
            for (int i = 0; i < count; i++) {
                out.put("in" + i + " after", download(ins.get(i)));
            }
        } finally {
            ins.forEach(NDArray::close);
            outs.forEach(NDArray::close);
        }
        return out;
    }

    /** A new [v.length] array of dtype t on ctx holding v (float16: v must be exact in float16). */
    private static NDArray upload(double[] v, DType t, Context ctx) {
        if (t == DType.FLOAT16) {
            ByteBuffer b = ByteBuffer.allocate(2 * v.length).order(ByteOrder.LITTLE_ENDIAN);
            for (double x : v) {
                b.putShort(toHalf(x));
            }
            return NDArray.fromBytes(b.array(), new Shape(v.length), t, ctx).detach();
        }
        NDArray a = NDArray.zeros(new Shape(v.length), t, ctx).detach();
        try (NDArray h = NDArray.create(v, v.length); NDArray c = h.asType(t)) {
            c.copyTo(a);
        }
        return a;
    }

    private static double[] download(NDArray a) {
        if (a.dtype() == DType.FLOAT16) {
            ByteBuffer b = ByteBuffer.wrap(a.toBytes()).order(ByteOrder.LITTLE_ENDIAN);
            double[] v = new double[b.capacity() / 2];
            for (int i = 0; i < v.length; i++) {
                v[i] = fromHalf(b.getShort());
            }
            return v;
        }
        try (NDArray h = a.copyTo(Context.cpu())) {
            return h.toDoubleArray();
        }
    }

    /** IEEE binary16 bits of x, which must be a float16 value (normal, subnormal or zero). */
    private static short toHalf(double x) {
        int sign = x < 0 || (x == 0 && 1 / x < 0) ? 0x8000 : 0;
        double m = Math.abs(x);
        if (m == 0) {
            return (short) sign;
        }
        int e = Math.max(Math.getExponent(m), -14);
        double mant = m / Math.scalb(1.0, e) * 1024;  // [1024, 2048) normal, [0, 1024) subnormal
        if (mant != Math.rint(mant) || e > 15) {
            throw new IllegalArgumentException(x + " is not a float16 value");
        }
        int bits = mant >= 1024 ? ((e + 15) << 10) | ((int) mant - 1024) : (int) mant;
        return (short) (sign | bits);
    }

    /** The value of IEEE binary16 bits (as dev.kiln.optimizer.HalfFloats). */
    private static double fromHalf(short bits) {
        int h = bits & 0xffff;
        double sign = (h & 0x8000) != 0 ? -1 : 1;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) {
            return mant != 0 ? Double.NaN : sign * Double.POSITIVE_INFINITY;
        }
        if (exp == 0) {
            return sign * mant * 0x1p-24;
        }
        return sign * (1 + mant / 1024.0) * Math.scalb(1.0, exp - 15);
    }
}
