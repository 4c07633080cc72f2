package dev.kiln.ops.norm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.engine.Engine;
import ai.djl.mxnet.engine.MxGradientCollector;
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

import org.junit.jupiter.api.function.Executable;

/**
 * Helpers shared by the norm operator tests: one op applied to a data variable (its other inputs
 * created by the symbol API), run on Kiln's executor and on the real MXNet 1.9.1 (imperative, with
 * autograd for the backward) with the same inputs, head gradient and number of steps.
 */
final class NormTesting {
    private NormTesting() {}

    /** What one run gives: visible outputs, gradients of the non-aux inputs, inputs after the run. */
    record Run(List<double[]> outputs, List<double[]> grads, List<double[]> inputsAfter) {}

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

    /** The node: op named "n" on variable "data"; its other inputs are auto-created. */
    static Symbol node(String op, Map<String, String> attrs) {
        return Symbol.create(op, "n", attrs, null, Symbol.variable("data"));
    }

    /** Input names of the node in operator order (arguments, then aux states). */
    static List<String> inputNames(Symbol s) {
        List<String> names = new ArrayList<>(s.listArguments());
        names.addAll(s.listAuxiliaryStates());
        return names;
    }

    /**
     * Runs {@code steps} times: forward (train or not), then, when {@code head} is not null,
     * backward with that head gradient on output 0 (gradients of every argument written).
     */
    static Run kiln(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values, boolean train,
            double[] head, int steps, DType t) {
        return kiln(op, attrs, shapes, values, train, head, steps, t, GradReq.WRITE);
    }

    /** Like the other overload, with gradient request {@code req} for every argument when {@code head} is given. */
    static Run kiln(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values, boolean train,
            double[] head, int steps, DType t, GradReq req) {
        Symbol s = node(op, attrs);
        List<String> names = inputNames(s);
        int nargs = s.listArguments().size();
        Map<String, long[]> shp = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            shp.put(names.get(i), shapes.get(i));
            types.put(names.get(i), t);
            if (i < nargs) {
                reqs.put(names.get(i), head == null ? GradReq.NULL : req);
            }
        }
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), shp, types, reqs, new Executor.Options().optSeed(7))) {
            for (int i = 0; i < names.size(); i++) {
                NDArray a = i < nargs ? ex.argDict().get(names.get(i)) : ex.auxDict().get(names.get(i));
                a.set(values.get(i));
            }
            for (int k = 0; k < steps; k++) {
                ex.forward(train);
                if (head != null) {
                    NDArray o = ex.outputs().get(0);
                    try (NDArray h = NDArray.zeros(o.shape(), o.dtype(), Context.cpu())) {
                        h.set(head);
                        NDArray[] heads = new NDArray[ex.outputs().size()];
                        List<NDArray> extra = new ArrayList<>();
                        heads[0] = h;
                        for (int j = 1; j < heads.length; j++) {
                            NDArray oj = ex.outputs().get(j);
                            heads[j] = NDArray.zeros(oj.shape(), oj.dtype(), Context.cpu());
                            extra.add(heads[j]);
                        }
                        try {
                            ex.backward(heads);
                        } finally {
                            extra.forEach(NDArray::close);
                        }
                    }
                }
            }
            List<double[]> outs = new ArrayList<>();
            for (NDArray o : ex.outputs()) {
                outs.add(o.toDoubleArray());
            }
            List<double[]> grads = new ArrayList<>();
            List<double[]> after = new ArrayList<>();
            for (int i = 0; i < names.size(); i++) {
                if (i < nargs) {
                    if (head != null) {
                        grads.add(ex.gradDict().get(names.get(i)).toDoubleArray());
                    }
                    after.add(ex.argDict().get(names.get(i)).toDoubleArray());
                } else {
                    after.add(ex.auxDict().get(names.get(i)).toDoubleArray());
                }
            }
            return new Run(outs, grads, after);
        }
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
     * The same on MXNet 1.9.1 in float32: imperative invoke in training / inference mode; with a
     * head gradient under autograd (loss = sum(output * head)) and {@code nargs} leading inputs
     * marked for gradients.
     */
    static Run mxnet(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values, boolean train,
            double[] head, int nargs, int steps) {
        MxOracle.assumeAvailable();
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray[] in = new ai.djl.ndarray.NDArray[values.size()];
            for (int i = 0; i < in.length; i++) {
                in[i] = MxOracle.create(m, f32(values.get(i)), shapes.get(i));
            }
            NDList out = null;
            if (head != null) {
                for (int i = 0; i < nargs; i++) {
                    in[i].setRequiresGradient(true);
                }
            }
            for (int k = 0; k < steps; k++) {
                if (head == null) {
                    boolean prev = MxGradientCollector.setTraining(train);
                    try {
                        out = MxOracle.invoke(m, op, attrs, in);
                    } finally {
                        MxGradientCollector.setTraining(prev);
                    }
                } else {
                    try (GradientCollector gc = Engine.getEngine("MXNet").newGradientCollector()) {
                        if (!train) {
                            MxGradientCollector.setTraining(false);
                        }
                        out = MxOracle.invoke(m, op, attrs, in);
                        ai.djl.ndarray.NDArray h = MxOracle.create(m, f32(head), shapes.get(0));
                        ai.djl.ndarray.NDArray prod = MxOracle.invoke(m, "elemwise_mul", Map.of(), out.get(0), h).get(0);
                        ai.djl.ndarray.NDArray loss = MxOracle.invoke(m, "sum", Map.of(), prod).get(0);
                        gc.backward(loss);
                    }
                }
            }
            List<double[]> outs = new ArrayList<>();
            for (ai.djl.ndarray.NDArray o : out) {
                outs.add(f64(o.toFloatArray()));
            }
            List<double[]> grads = new ArrayList<>();
            List<double[]> after = new ArrayList<>();
            for (int i = 0; i < in.length; i++) {
                if (head != null && i < nargs) {
                    grads.add(f64(in[i].getGradient().toFloatArray()));
                }
                after.add(f64(in[i].toFloatArray()));
            }
            return new Run(outs, grads, after);
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
}
