package dev.kiln.gpu;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.op.Ops;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.FuzzGen;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A differential operator fuzzer: every registered operator is called with seeded random
 * attributes (defaults, boundary integers, odd tuples, unknown enum values) and random inputs
 * (ranks 0 to 4, empty dimensions, five dtypes, finite values) on a reference context and on a
 * test context, as {@code src/test/cpp/op_fuzz.cc} does under the sanitizers on the CPU alone.
 *
 * <p>Problems (the run fails): a call that throws anything but a {@link KilnException} (or the
 * {@link IllegalArgumentException} of a bad attribute), a test device that no longer computes after
 * a call (a sticky CUDA error; the run stops there), a call one side runs and the other refuses,
 * outputs on another device, and results that differ from the reference: integers at all, float32
 * and float64 beyond {@code 1e-3 + 1e-3 |ref|}, float16 beyond {@code 1e-2 + 1e-2 |ref|} (random
 * operators excepted). Operators without inputs run through an executor bound on each device
 * (an imperative call of one would run on the CPU). Calls whose outputs would exceed
 * {@link #MAX_OUT} elements are not made; a run stops after {@link #MAX_PROBLEMS} problems.
 *
 * <p>Not thread-safe; arrays live in a scope per call (no leaks).
 */
final class OpFuzz {
    static final long MAX_OUT = 1 << 18;
    /** A run stops after this many problems, or at once when the test device breaks. */
    static final int MAX_PROBLEMS = 50;

    /** What a run found. */
    record Report(int calls, int bothRan, int bothRefused, int skipped, List<String> problems, List<String> oneSided) {
        String summary() {
            return "op fuzz: " + calls + " calls, " + bothRan + " ran on both, " + bothRefused + " refused by both, " + skipped
                    + " skipped as too large, " + oneSided.size() + " ran on one side only, " + problems.size() + " problems";
        }

        String describe() {
            StringBuilder b = new StringBuilder(summary());
            for (String p : problems.subList(0, Math.min(20, problems.size()))) {
                b.append("\n  PROBLEM ").append(p);
            }
            for (String p : oneSided.subList(0, Math.min(20, oneSided.size()))) {
                b.append("\n  one-sided ").append(p);
            }
            return b.toString();
        }
    }

    private final FuzzGen gen;
    private final Context ref;
    private final Context test;
    private int calls, bothRan, bothRefused, skipped;
    private boolean broken;
    private final List<String> problems = new ArrayList<>();
    private final List<String> oneSided = new ArrayList<>();

    private final boolean specials;

    private OpFuzz(long seed, Context ref, Context test, int specialOdds) {
        this.gen = new FuzzGen(new Random(seed), POLICY).withSpecials(specialOdds);
        this.ref = ref;
        this.test = test;
        this.specials = specialOdds > 0;
    }

    /** {@code perOp} calls of every registered operator on {@code ref} and {@code test}. */
    static Report run(Context ref, Context test, long seed, int perOp) {
        return run(ref, test, seed, perOp, 0);
    }

    /**
     * {@code perOp} calls of every registered operator on {@code ref} and {@code test}, one float
     * input value in {@code specialOdds} NaN, +inf or -inf (0: none). Where one side gives NaN and
     * the other an infinity, the two met two infinities in another order (inf - inf): accepted.
     */
    static Report run(Context ref, Context test, long seed, int perOp, int specialOdds) {
        OpFuzz f = new OpFuzz(seed, ref, test, specialOdds);
        for (String op : Ops.list()) {
            for (int i = 0; i < perOp && !f.broken && f.problems.size() < MAX_PROBLEMS; i++) {
                f.call(op);
            }
        }
        return new Report(f.calls, f.bothRan, f.bothRefused, f.skipped, f.problems, f.oneSided);
    }

    /** Wild calls: boundary integers, huge floats, odd tuples, rank 0 and empty dimensions, unknown enum values. */
    private static final FuzzGen.Policy POLICY = new FuzzGen.Policy(
            new String[] {"-2147483648", "-3", "-2", "-1", "0", "0", "1", "1", "1", "2", "2", "3", "4", "5", "7", "64", "1048576",
                "2147483647"},
            new String[] {"0", "0", "1", "1", "0.5", "-0.5", "-1", "2", "3", "1e-07", "0.9", "0.999", "1e+30", "-1e+30"},
            new String[] {"()", "(0,)", "(-1,)", "(None,)", "(1, 1, 1, 1, 1, 1, 1, 1, 1)", "(2, -3)", "x", "(1,,2)", "(2147483647, 2)",
                "[1, 2]", "(None, None)", "(1, None, -1)"},
            new String[] {"", "abc", "None", "float32", "(1,2)"}, 8, 5, true,
            new DType[] {DType.FLOAT32, DType.FLOAT32, DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.INT32, DType.UINT8},
            3, false, 512);

    private void call(String op) {
        FuzzGen.Call c = gen.call(op);
        if (c == null) {
            return;
        }
        Map<String, String> attrs = c.attrs();
        List<long[]> shapes = c.shapes();
        if (tooLarge(op, attrs, shapes)) {
            skipped++;
            return;
        }
        calls++;
        String what = c.describe();
        Outcome a = invoke(ref, op, attrs, shapes, c.types(), c.values(), what);
        Outcome b = invoke(test, op, attrs, shapes, c.types(), c.values(), what);
        if (!test.equals(ref)) {
            checkHealthy(what);
        }
        if (a.results == null && b.results == null) {
            bothRefused++;
        } else if (a.results == null || b.results == null) {
            // the test device must take what the reference takes, and refuse what it refuses
            String side = what + ": " + (a.results == null ? ref + " refused (" + a.error + ")" : test + " refused (" + b.error + ")");
            oneSided.add(side);
            problems.add("one side only: " + side);
        } else {
            bothRan++;
            compare(op, what, a, b);
        }
    }

    private record Outcome(List<double[]> results, List<DType> types, List<long[]> shapes, String error) {}

    private Outcome invoke(Context ctx, String op, Map<String, String> attrs, List<long[]> shapes, List<DType> types,
            List<double[]> values, String what) {
        try (NDScope scope = NDScope.open()) {
            NDArray[] in = new NDArray[shapes.size()];
            for (int i = 0; i < in.length; i++) {
                NDArray host = NDArray.create(values.get(i), shapes.get(i)).asType(types.get(i));
                in[i] = ctx.isGpu() ? host.copyTo(ctx) : host;
            }
            if (in.length == 0) {  // an imperative call without inputs runs on the CPU: bind it on ctx
                dev.kiln.executor.Executor ex;
                try {
                    ex = dev.kiln.executor.Executor.simpleBind(Symbol.create(op, "f", attrs, null), ctx, Map.of(), null, null, null);
                } catch (KilnException | IllegalArgumentException e) {
                    return new Outcome(null, null, null, e.getMessage());
                }
                try (ex) {
                    return read(ex.forward(false).outputs(), ctx, what);
                } catch (KilnException | IllegalArgumentException e) {
                    return new Outcome(null, null, null, e.getMessage());
                }
            }
            List<NDArray> outs;
            try {
                outs = NDArray.invoke(op, attrs, in);
            } catch (KilnException | IllegalArgumentException e) {
                return new Outcome(null, null, null, e.getMessage());
            }
            return read(outs, ctx, what);
        } catch (RuntimeException e) {
            problems.add(what + " on " + ctx + ": " + e);
            return new Outcome(null, null, null, e.toString());
        }
    }

    /** The outputs' values (bfloat16 ones unread), types and shapes; each must be on ctx. */
    private Outcome read(List<NDArray> outs, Context ctx, String what) {
        List<double[]> res = new ArrayList<>();
        List<DType> ts = new ArrayList<>();
        List<long[]> ss = new ArrayList<>();
        for (NDArray o : outs) {
            if (!o.context().equals(ctx)) {
                problems.add(what + ": an output is on " + o.context() + ", not " + ctx);
            }
            ts.add(o.dtype());
            ss.add(o.shape().dims());
            if (o.dtype() == DType.BFLOAT16) {
                res.add(null);
            } else if (ctx.isGpu()) {
                try (NDArray h = o.copyTo(Context.cpu())) {
                    res.add(h.toDoubleArray());
                }
            } else {
                res.add(o.toDoubleArray());
            }
        }
        return new Outcome(res, ts, ss, null);
    }

    /** Whether the one-op graph's outputs would exceed MAX_OUT elements (false when inference fails). */
    private static boolean tooLarge(String op, Map<String, String> attrs, List<long[]> shapes) {
        try {
            Symbol[] vars = new Symbol[shapes.size()];
            Map<String, long[]> known = new LinkedHashMap<>();
            for (int i = 0; i < vars.length; i++) {
                vars[i] = Symbol.variable("in" + i);
                known.put("in" + i, shapes.get(i));
            }
            InferResult res = Symbol.create(op, "f", attrs, null, vars).inferShape(known);
            long total = 0;
            for (long[] s : res.outShapes()) {
                if (s == null) {
                    return false;
                }
                total += FuzzGen.size(s);
            }
            return total > MAX_OUT;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** A tiny computation on the test device must still give the right answer (no sticky error). */
    private void checkHealthy(String after) {
        try (NDScope scope = NDScope.open()) {
            float[] got = NDArray.create(new float[] {1, 2, 3}, 3).copyTo(test).mul(2).copyTo(Context.cpu()).toFloatArray();
            if (got[0] != 2 || got[1] != 4 || got[2] != 6) {
                problems.add(test + " computes wrong results after " + after);
                broken = true;
            }
        } catch (RuntimeException e) {
            problems.add(test + " is unusable after " + after + ": " + e.getMessage());
            broken = true;
        }
    }

    private void compare(String op, String what, Outcome a, Outcome b) {
        if (a.results.size() != b.results.size()) {
            problems.add(what + ": " + a.results.size() + " outputs on " + ref + ", " + b.results.size() + " on " + test);
            return;
        }
        boolean random = FuzzGen.isRandom(op);
        for (int k = 0; k < a.results.size(); k++) {
            if (!java.util.Arrays.equals(a.shapes.get(k), b.shapes.get(k)) || a.types.get(k) != b.types.get(k)) {
                problems.add(what + ": output " + k + " is " + java.util.Arrays.toString(a.shapes.get(k)) + " " + a.types.get(k)
                        + " on " + ref + ", " + java.util.Arrays.toString(b.shapes.get(k)) + " " + b.types.get(k) + " on " + test);
                continue;
            }
            DType t = a.types.get(k);
            if (random || a.results.get(k) == null) {
                continue;
            }
            // integers exactly (conversions follow kiln/int_convert.h on both), float16 to 1e-2
            double tol = t == DType.FLOAT32 || t == DType.FLOAT64 ? 1e-3 : t == DType.FLOAT16 ? 1e-2 : 0;
            double[] x = a.results.get(k), y = b.results.get(k);
            for (int i = 0; i < x.length; i++) {
                boolean order = specials && (Double.isNaN(x[i]) && Double.isInfinite(y[i]) || Double.isInfinite(x[i]) && Double.isNaN(y[i]));
                if (Double.compare(x[i], y[i]) != 0 && !order && !(Math.abs(x[i] - y[i]) <= tol + tol * Math.abs(x[i]))) {
                    problems.add(what + ": output " + k + "[" + i + "] is " + x[i] + " on " + ref + ", " + y[i] + " on " + test);
                    break;
                }
            }
        }
    }
}
