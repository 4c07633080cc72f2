package dev.kiln.testutil;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.ToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Numeric gradient checks in float64, as MXNet's {@code check_numeric_gradient}: the outputs are
 * projected onto fixed random tensors to get a scalar f, whose gradient the backward pass computes
 * (head gradients = the projections); central differences of f give the reference. For loss
 * operators (which ignore head gradients) the caller supplies the scalar objective whose gradient
 * the loss op computes.
 */
public final class GradCheck {
    private GradCheck() {}

    /** Inputs of a check: values (row-major, float64) and shapes by argument / aux name. */
    public static final class Inputs {
        final Map<String, double[]> values = new LinkedHashMap<>();
        final Map<String, long[]> shapes = new LinkedHashMap<>();

        /** Adds an input with explicit values. */
        public Inputs put(String name, long[] shape, double[] v) {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            if (n != v.length) {
                throw new IllegalArgumentException(name + ": " + v.length + " values for shape " + new Shape(shape));
            }
            values.put(name, v.clone());
            shapes.put(name, shape.clone());
            return this;
        }

        /** Adds an input with uniform random values in [lo, hi). */
        public Inputs random(String name, long[] shape, double lo, double hi, long seed) {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            Random r = new Random(seed);
            double[] v = new double[(int) n];
            for (int i = 0; i < v.length; i++) {
                v[i] = lo + (hi - lo) * r.nextDouble();
            }
            return put(name, shape, v);
        }

        /** The values of an input. */
        public double[] get(String name) {
            return values.get(name);
        }
    }

    /** Runs a forward pass in float64 (or float32) and returns every visible output as doubles. */
    public static List<double[]> forward(Symbol sym, Inputs in, DType type, boolean isTrain) {
        try (Executor ex = bind(sym, in, type, List.of())) {
            ex.forward(isTrain);
            List<double[]> out = new ArrayList<>();
            for (NDArray o : ex.outputs()) {
                out.add(o.toDoubleArray());
            }
            return out;
        }
    }

    static Executor bind(Symbol sym, Inputs in, DType type, Collection<String> wrt) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        List<String> args = sym.listArguments();
        for (Map.Entry<String, long[]> e : in.shapes.entrySet()) {
            if (args.contains(e.getKey())) {
                shapes.put(e.getKey(), e.getValue());
                types.put(e.getKey(), type);
            }
        }
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : args) {
            reqs.put(a, wrt.contains(a) ? GradReq.WRITE : GradReq.NULL);
        }
        Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, new Executor.Options().optSeed(7));
        try {
            for (Map.Entry<String, double[]> e : in.values.entrySet()) {
                NDArray a = ex.argDict().get(e.getKey());
                if (a == null) {
                    a = ex.auxDict().get(e.getKey());
                }
                if (a == null) {
                    throw new IllegalArgumentException("'" + e.getKey() + "' is not an argument or aux state of the symbol");
                }
                a.set(e.getValue());
            }
        } catch (RuntimeException e) {
            ex.close();
            throw e;
        }
        return ex;
    }

    /**
     * Checks d f / d x for every x in {@code wrt}, f = sum_k <p_k, out_k> with p_k ~ N(0,1) (seed
     * 1234); every element of every argument in {@code wrt} is perturbed, so keep inputs small.
     */
    public static void check(Symbol sym, Inputs in, Collection<String> wrt, double eps, double rtol, double atol) {
        check(sym, in, wrt, eps, rtol, atol, null);
    }

    /**
     * Like {@link #check(Symbol, Inputs, Collection, double, double, double)}; when {@code lossObjective}
     * is not null the graph ends in a loss op: backward runs without head gradients and f is
     * {@code lossObjective} applied to the inputs after a forward pass (the loss the op differentiates).
     */
    public static void check(Symbol sym, Inputs in, Collection<String> wrt, double eps, double rtol, double atol,
            ToDoubleFunction<Map<String, double[]>> lossObjective) {
        try (Executor ex = bind(sym, in, DType.FLOAT64, wrt)) {
            ex.forward(true);
            List<double[]> proj = new ArrayList<>();
            List<NDArray> heads = new ArrayList<>();
            try {
                Random r = new Random(1234);
                for (NDArray o : ex.outputs()) {
                    double[] p = new double[(int) o.size()];
                    for (int i = 0; i < p.length; i++) {
                        p[i] = r.nextGaussian();
                    }
                    proj.add(p);
                    heads.add(NDArray.create(p, o.shape().dims()));
                }
                if (lossObjective == null) {
                    ex.backward(heads.toArray(new NDArray[0]));
                } else {
                    ex.backward();
                }
            } finally {
                heads.forEach(NDArray::close);
            }
            Map<String, double[]> analytic = new LinkedHashMap<>();
            for (String x : wrt) {
                NDArray g = ex.gradDict().get(x);
                if (g == null) {
                    fail("no gradient array for '" + x + "'");
                }
                analytic.put(x, g.toDoubleArray());
            }
            for (String x : wrt) {
                NDArray arg = ex.argDict().get(x);
                double[] v = in.values.get(x).clone();
                double[] a = analytic.get(x);
                for (int i = 0; i < v.length; i++) {
                    double orig = v[i];
                    v[i] = orig + eps;
                    arg.set(v);
                    double fp = objective(ex, proj, in, x, v, lossObjective);
                    v[i] = orig - eps;
                    arg.set(v);
                    double fm = objective(ex, proj, in, x, v, lossObjective);
                    v[i] = orig;
                    arg.set(v);
                    double numeric = (fp - fm) / (2 * eps);
                    double tol = atol + rtol * Math.abs(numeric);
                    if (Math.abs(numeric - a[i]) > tol) {
                        assertEquals(numeric, a[i], tol, "d f / d " + x + "[" + i + "] of " + sym.name()
                                + " (numeric vs backward)");
                    }
                }
            }
        }
    }

    private static double objective(Executor ex, List<double[]> proj, Inputs in, String x, double[] v,
            ToDoubleFunction<Map<String, double[]>> lossObjective) {
        if (lossObjective != null) {
            Map<String, double[]> vals = new LinkedHashMap<>(in.values);
            vals.put(x, v);
            return lossObjective.applyAsDouble(vals);
        }
        ex.forward(true);
        double f = 0;
        List<NDArray> outs = ex.outputs();
        for (int k = 0; k < outs.size(); k++) {
            double[] o = outs.get(k).toDoubleArray();
            double[] p = proj.get(k);
            for (int i = 0; i < o.length; i++) {
                f += o[i] * p[i];
            }
        }
        return f;
    }

    /** Asserts two arrays agree elementwise within atol + rtol * |expected| (equal values agree, NaN and infinities included). */
    public static void assertClose(double[] expected, double[] actual, double rtol, double atol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            if (Double.compare(expected[i], actual[i]) == 0) {
                continue;  // the same value: NaN where NaN is expected, an equal infinity
            }
            double tol = atol + rtol * Math.abs(expected[i]);
            if (!(Math.abs(expected[i] - actual[i]) <= tol)) {
                assertEquals(expected[i], actual[i], tol, what + "[" + i + "]");
            }
        }
    }
}
