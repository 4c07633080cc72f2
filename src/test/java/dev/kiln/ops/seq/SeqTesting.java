package dev.kiln.ops.seq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.engine.Engine;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import ai.djl.training.GradientCollector;
import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.function.Executable;

/**
 * Helpers shared by the ops/seq tests: one op applied to a variable "data" (its other inputs
 * auto-created by the symbol API as n_weight, n_sequence_length), run on Kiln's executor and on
 * the real MXNet 1.9.1 (imperative, autograd for the backward) with the same inputs and head
 * gradient.
 */
final class SeqTesting {
    private SeqTesting() {}

    /** The visible output 0 and one gradient per input (null where none was requested). */
    record Run(double[] output, long[] outShape, List<double[]> grads) {}

    static int size(long[] s) {
        long n = 1;
        for (long d : s) {
            n *= d;
        }
        return (int) n;
    }

    /** Values exactly representable in float32, uniform in [lo, hi). */
    static double[] rand(int n, double lo, double hi, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (lo + (hi - lo) * r.nextDouble());
        }
        return v;
    }

    /** Integers uniform in [lo, hi). */
    static double[] randInt(int n, int lo, int hi, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = lo + r.nextInt(hi - lo);
        }
        return v;
    }

    /** The node: op named "n" on variable "data". */
    static Symbol node(String op, Map<String, String> attrs) {
        return Symbol.create(op, "n", attrs, null, Symbol.variable("data"));
    }

    /**
     * Binds the node with the given shapes, input types and gradient requests (one per argument),
     * runs {@code steps} times forward(train) and, when {@code head} is not null, backward with it.
     */
    static Run kiln(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values,
            List<DType> types, List<GradReq> reqs, double[] head, int steps) {
        Symbol s = node(op, attrs);
        List<String> names = s.listArguments();
        assertEquals(shapes.size(), names.size(), "inputs of " + op + ": " + names);
        Map<String, long[]> shp = new LinkedHashMap<>();
        Map<String, DType> ty = new LinkedHashMap<>();
        Map<String, GradReq> rq = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            shp.put(names.get(i), shapes.get(i));
            ty.put(names.get(i), types.get(i));
            rq.put(names.get(i), head == null ? GradReq.NULL : reqs.get(i));
        }
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), shp, ty, rq, new Executor.Options().optSeed(7))) {
            for (int i = 0; i < names.size(); i++) {
                ex.argDict().get(names.get(i)).set(values.get(i));
            }
            for (int k = 0; k < steps; k++) {
                ex.forward(head != null);
                if (head != null) {
                    NDArray o = ex.outputs().get(0);
                    try (NDArray h = NDArray.zeros(o.shape(), o.dtype(), Context.cpu())) {
                        h.set(head);
                        ex.backward(h);
                    }
                }
            }
            NDArray o = ex.outputs().get(0);
            List<double[]> grads = new ArrayList<>();
            for (int i = 0; i < names.size(); i++) {
                NDArray g = head == null ? null : ex.gradDict().get(names.get(i));
                grads.add(g == null ? null : g.toDoubleArray());
            }
            return new Run(o.toDoubleArray(), o.shape().dims(), grads);
        }
    }

    /** {@link #kiln} with every input of type {@code t} and gradient request {@code req} for data only. */
    static Run kiln(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values, DType t,
            GradReq req, double[] head, int steps) {
        List<DType> types = new ArrayList<>();
        List<GradReq> reqs = new ArrayList<>();
        for (int i = 0; i < shapes.size(); i++) {
            types.add(t);
            reqs.add(i == 0 ? req : GradReq.NULL);
        }
        return kiln(op, attrs, shapes, values, types, reqs, head, steps);
    }

    private static float[] f32(double[] v) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            f[i] = (float) v[i];
        }
        return f;
    }

    private static double[] f64(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    /**
     * The same on MXNet 1.9.1 in float32: forward only when {@code head} is null, otherwise under
     * autograd with loss = sum(output * head) and gradients for the inputs in {@code gradInputs}.
     */
    static Run mxnet(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values, double[] head,
            Set<Integer> gradInputs) {
        MxOracle.assumeAvailable();
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray[] in = new ai.djl.ndarray.NDArray[values.size()];
            for (int i = 0; i < in.length; i++) {
                in[i] = MxOracle.create(m, f32(values.get(i)), shapes.get(i));
                if (head != null && gradInputs.contains(i)) {
                    in[i].setRequiresGradient(true);
                }
            }
            NDList out;
            if (head == null) {
                out = MxOracle.invoke(m, op, attrs, in);
            } else {
                try (GradientCollector gc = Engine.getEngine("MXNet").newGradientCollector()) {
                    out = MxOracle.invoke(m, op, attrs, in);
                    ai.djl.ndarray.NDArray h = MxOracle.create(m, f32(head), out.get(0).getShape().getShape());
                    ai.djl.ndarray.NDArray prod = MxOracle.invoke(m, "elemwise_mul", Map.of(), out.get(0), h).get(0);
                    ai.djl.ndarray.NDArray loss = MxOracle.invoke(m, "sum", Map.of(), prod).get(0);
                    gc.backward(loss);
                }
            }
            List<double[]> grads = new ArrayList<>();
            for (int i = 0; i < in.length; i++) {
                grads.add(head != null && gradInputs.contains(i) ? f64(in[i].getGradient().toFloatArray()) : null);
            }
            return new Run(f64(out.get(0).toFloatArray()), out.get(0).getShape().getShape(), grads);
        }
    }

    /** |a - e| <= tol * max(1, |e|) elementwise. */
    static void assertNear(double[] expected, double[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + ": length");
        for (int i = 0; i < expected.length; i++) {
            double err = Math.abs(expected[i] - actual[i]) / Math.max(1.0, Math.abs(expected[i]));
            if (!(err <= tol)) {
                fail(what + "[" + i + "]: expected " + expected[i] + ", got " + actual[i] + " (err " + err + ")");
            }
        }
    }

    /** Asserts a KilnException or IllegalArgumentException whose message has every fragment. */
    static String assertThrowsMessage(Executable e, String... fragments) {
        try {
            e.execute();
        } catch (KilnException | IllegalArgumentException ex) {
            String msg = String.valueOf(ex.getMessage());
            for (String f : fragments) {
                assertTrue(msg.contains(f), "message should contain '" + f + "': " + msg);
            }
            return msg;
        } catch (Throwable t) {
            fail("expected KilnException or IllegalArgumentException, got " + t, t);
        }
        fail("expected an exception containing " + List.of(fragments));
        return null;
    }

    /** simpleBind with the given shapes (float32, no gradients) and close; for error cases. */
    static void bind(Symbol s, Map<String, long[]> shapes) {
        Executor.simpleBind(s, Context.cpu(), shapes, GradReq.NULL).close();
    }
}
