package dev.kiln.ops.seq;

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
 * Helpers for the fused RNN operator tests: one configuration ({@link Case}), its inputs, and runs
 * of the same inputs and head gradients on Kiln's executor and on the real MXNet 1.9.1
 * (imperative, autograd for the backward: loss = sum_k sum(output_k * head_k)).
 */
final class RnnTesting {
    private RnnTesting() {}

    /** One RNN configuration: mode, layers, directions, state outputs, sizes, dropout. */
    record Case(String mode, int layers, boolean bidirectional, boolean stateOutputs, int seq, int batch, int input,
            int hidden, double p) {
        Case(String mode, int layers, boolean bidirectional, boolean stateOutputs) {
            this(mode, layers, bidirectional, stateOutputs, 5, 3, 4, 6, 0);
        }

        int dirs() {
            return bidirectional ? 2 : 1;
        }

        int gates() {
            return switch (mode) {
                case "lstm" -> 4;
                case "gru" -> 3;
                default -> 1;
            };
        }

        boolean lstm() {
            return mode.equals("lstm");
        }

        /** MXNet's GetRnnParamSize. */
        int paramSize() {
            int size = hidden * dirs() * gates();
            return (input + hidden + 2) * size + (layers - 1) * (hidden * dirs() + hidden + 2) * size;
        }

        Map<String, String> attrs() {
            Map<String, String> a = new LinkedHashMap<>();
            a.put("state_size", Integer.toString(hidden));
            a.put("num_layers", Integer.toString(layers));
            a.put("mode", mode);
            a.put("bidirectional", bidirectional ? "True" : "False");
            a.put("state_outputs", stateOutputs ? "True" : "False");
            if (p != 0) {
                a.put("p", Double.toString(p));
            }
            return a;
        }

        /** Input shapes in operator order: data, parameters, state[, state_cell]. */
        List<long[]> shapes() {
            List<long[]> s = new ArrayList<>();
            s.add(new long[] {seq, batch, input});
            s.add(new long[] {paramSize()});
            long[] st = {(long) layers * dirs(), batch, hidden};
            s.add(st);
            if (lstm()) {
                s.add(st);
            }
            return s;
        }

        /** Visible output shapes: output[, state_output[, statecell_output]]. */
        List<long[]> outShapes() {
            List<long[]> s = new ArrayList<>();
            s.add(new long[] {seq, batch, (long) dirs() * hidden});
            if (stateOutputs) {
                long[] st = {(long) layers * dirs(), batch, hidden};
                s.add(st);
                if (lstm()) {
                    s.add(st);
                }
            }
            return s;
        }

        Case withP(double rate) {
            return new Case(mode, layers, bidirectional, stateOutputs, seq, batch, input, hidden, rate);
        }

        @Override
        public String toString() {
            return mode + " L=" + layers + (bidirectional ? " bi" : "") + (stateOutputs ? " states" : "") + " T=" + seq
                    + " N=" + batch + " I=" + input + " H=" + hidden + (p != 0 ? " p=" + p : "");
        }
    }

    /** What one run gives: visible outputs and the gradients of every input (empty without heads). */
    record Run(List<double[]> outputs, List<double[]> grads) {}

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

    /** Inputs of a case: data in [-1, 1), parameters in [-0.4, 0.4), states in [-0.5, 0.5). */
    static List<double[]> values(Case c, long seed) {
        List<long[]> s = c.shapes();
        List<double[]> v = new ArrayList<>();
        v.add(rand(size(s.get(0)), -1, 1, seed));
        v.add(rand(size(s.get(1)), -0.4, 0.4, seed + 1));
        for (int i = 2; i < s.size(); i++) {
            v.add(rand(size(s.get(i)), -0.5, 0.5, seed + i));
        }
        return v;
    }

    /** Head gradients for every visible output. */
    static List<double[]> heads(Case c, long seed) {
        List<double[]> h = new ArrayList<>();
        int k = 0;
        for (long[] s : c.outShapes()) {
            h.add(rand(size(s), -1, 1, seed + k++));
        }
        return h;
    }

    /** The RNN node "n" on variable "data"; parameters and states are auto-created. */
    static Symbol node(Map<String, String> attrs) {
        return Symbol.create("RNN", "n", attrs, null, Symbol.variable("data"));
    }

    static List<String> argNames(Case c) {
        List<String> n = new ArrayList<>(List.of("data", "n_parameters", "n_state"));
        if (c.lstm()) {
            n.add("n_state_cell");
        }
        return n;
    }

    /**
     * Kiln: {@code steps} times forward (train or not) and, with heads, backward (request {@code req}
     * for every input). The executor binds from the data shape alone (the rest is inferred).
     */
    static Run kiln(Case c, List<double[]> values, boolean train, List<double[]> heads, DType t, GradReq req, int steps) {
        Symbol s = node(c.attrs());
        List<String> names = argNames(c);
        assertEquals(names, s.listArguments());
        Map<String, long[]> shp = new LinkedHashMap<>();
        shp.put("data", c.shapes().get(0));
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String n : names) {
            types.put(n, t);
            reqs.put(n, heads == null ? GradReq.NULL : req);
        }
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), shp, types, reqs, new Executor.Options().optSeed(7))) {
            for (int i = 0; i < names.size(); i++) {
                ex.argDict().get(names.get(i)).set(values.get(i));
            }
            for (int k = 0; k < steps; k++) {
                ex.forward(train);
                if (heads != null) {
                    List<NDArray> hs = new ArrayList<>();
                    try {
                        for (int j = 0; j < ex.outputs().size(); j++) {
                            NDArray o = ex.outputs().get(j);
                            NDArray h = NDArray.zeros(o.shape(), o.dtype(), Context.cpu());
                            hs.add(h);
                            h.set(heads.get(j));
                        }
                        ex.backward(hs.toArray(new NDArray[0]));
                    } finally {
                        hs.forEach(NDArray::close);
                    }
                }
            }
            List<double[]> outs = new ArrayList<>();
            for (NDArray o : ex.outputs()) {
                outs.add(o.toDoubleArray());
            }
            List<double[]> grads = new ArrayList<>();
            if (heads != null) {
                for (String n : names) {
                    grads.add(ex.gradDict().get(n).toDoubleArray());
                }
            }
            return new Run(outs, grads);
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

    /** MXNet 1.9.1 in float32: imperative RNN, with heads under autograd (gradients of every input). */
    static Run mxnet(Case c, List<double[]> values, boolean train, List<double[]> heads) {
        MxOracle.assumeAvailable();
        List<long[]> shapes = c.shapes();
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray[] in = new ai.djl.ndarray.NDArray[values.size()];
            for (int i = 0; i < in.length; i++) {
                in[i] = MxOracle.create(m, f32(values.get(i)), shapes.get(i));
                if (heads != null) {
                    in[i].setRequiresGradient(true);
                }
            }
            NDList out;
            if (heads == null) {
                boolean prev = MxGradientCollector.setTraining(train);
                try {
                    out = MxOracle.invoke(m, "RNN", c.attrs(), in);
                } finally {
                    MxGradientCollector.setTraining(prev);
                }
            } else {
                try (GradientCollector gc = Engine.getEngine("MXNet").newGradientCollector()) {
                    if (!train) {
                        MxGradientCollector.setTraining(false);
                    }
                    out = MxOracle.invoke(m, "RNN", c.attrs(), in);
                    List<long[]> os = c.outShapes();
                    ai.djl.ndarray.NDArray loss = null;
                    for (int k = 0; k < out.size(); k++) {
                        ai.djl.ndarray.NDArray h = MxOracle.create(m, f32(heads.get(k)), os.get(k));
                        ai.djl.ndarray.NDArray prod = MxOracle.invoke(m, "elemwise_mul", Map.of(), out.get(k), h).get(0);
                        ai.djl.ndarray.NDArray sk = MxOracle.invoke(m, "sum", Map.of(), prod).get(0);
                        loss = loss == null ? sk : MxOracle.invoke(m, "elemwise_add", Map.of(), loss, sk).get(0);
                    }
                    gc.backward(loss);
                }
            }
            List<double[]> outs = new ArrayList<>();
            for (ai.djl.ndarray.NDArray o : out) {
                outs.add(f64(o.toFloatArray()));
            }
            List<double[]> grads = new ArrayList<>();
            if (heads != null) {
                for (ai.djl.ndarray.NDArray x : in) {
                    grads.add(f64(x.getGradient().toFloatArray()));
                }
            }
            return new Run(outs, grads);
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
