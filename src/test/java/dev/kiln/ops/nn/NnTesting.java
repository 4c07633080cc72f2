package dev.kiln.ops.nn;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Function;

/** Small helpers shared by the nn operator tests (inputs, binding, tolerances, error checks). */
final class NnTesting {
    private NnTesting() {}

    static final List<DType> FLOAT_TYPES = List.of(DType.FLOAT64, DType.FLOAT32);

    static long[] shape(long... d) {
        return d;
    }

    /** Class labels in [0, k) as doubles. */
    static double[] labels(int n, int k, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = r.nextInt(k);
        }
        return v;
    }

    static double[] scale(double[] a, double s) {
        double[] o = a.clone();
        for (int i = 0; i < o.length; i++) {
            o[i] *= s;
        }
        return o;
    }

    static double[] map(double[] a, java.util.function.DoubleUnaryOperator f) {
        double[] o = new double[a.length];
        for (int i = 0; i < o.length; i++) {
            o[i] = f.applyAsDouble(a[i]);
        }
        return o;
    }

    /** Tight for float64, float32-rounding sized for float32. */
    static void assertClose(double[] expected, double[] actual, DType t, String what) {
        if (t == DType.FLOAT64) {
            GradCheck.assertClose(expected, actual, 1e-12, 1e-12, what + " (float64)");
        } else {
            GradCheck.assertClose(expected, actual, 1e-5, 1e-6, what + " (float32)");
        }
    }

    /** First visible output of a forward pass. */
    static double[] forward(Symbol sym, GradCheck.Inputs in, DType t, boolean isTrain) {
        return GradCheck.forward(sym, in, t, isTrain).get(0);
    }

    static double[] forward(Symbol sym, GradCheck.Inputs in, DType t) {
        return forward(sym, in, t, false);
    }

    /** Binds with simpleBind in type {@code t}: the given shapes, the request for every argument from {@code req}. */
    static Executor bind(Symbol sym, Map<String, long[]> shapes, DType t, Function<String, GradReq> req, long seed) {
        Map<String, DType> types = new LinkedHashMap<>();
        for (String k : shapes.keySet()) {
            types.put(k, t);
        }
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : sym.listArguments()) {
            reqs.put(a, req.apply(a));
        }
        return Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, new Executor.Options().optSeed(seed));
    }

    /** Binds and sets every argument in {@code values} ({@code shapes} gives their shapes). */
    static Executor bind(Symbol sym, GradCheck.Inputs in, Map<String, long[]> shapes, DType t, Set<String> add,
            Set<String> write) {
        Executor ex = bind(sym, shapes, t, a -> add.contains(a) ? GradReq.ADD : write.contains(a) ? GradReq.WRITE : GradReq.NULL, 7);
        try {
            for (String k : shapes.keySet()) {
                ex.argDict().get(k).set(in.get(k));
            }
        } catch (RuntimeException e) {
            ex.close();
            throw e;
        }
        return ex;
    }

    /** Runs forward + backward with the head gradient {@code head} (or none for losses). */
    static void forwardBackward(Executor ex, double[] head) {
        ex.forward(true);
        if (head == null) {
            ex.backward();
            return;
        }
        NDArray out = ex.outputs().get(0);
        try (NDArray h = NDArray.zeros(out.shape(), out.dtype(), Context.cpu())) {
            h.set(head);
            ex.backward(h);
        }
    }

    /** Builds and binds in float32 with the given shapes, closing the executor if binding works. */
    static void bindAndClose(Symbol sym, Map<String, long[]> shapes) {
        try (Executor ex = bind(sym, shapes, DType.FLOAT32, a -> GradReq.NULL, 7)) {
            ex.forward(false);
        }
    }
}
