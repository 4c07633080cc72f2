package dev.kiln.ops.seq;

import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.MxCompare;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
        Map<String, double[]> vals = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            types.put(names.get(i), t);
            reqs.put(names.get(i), heads == null ? GradReq.NULL : req);
            vals.put(names.get(i), values.get(i));
        }
        MxCompare.Run r = MxCompare.kiln(s, shp, types, reqs, vals, train, heads, steps, new Executor.Options().optSeed(7));
        return new Run(r.outputs(), heads == null ? List.of() : r.grads());
    }

    /** MXNet 1.9.1 in float32: imperative RNN, with heads under autograd (gradients of every input). */
    static Run mxnet(Case c, List<double[]> values, boolean train, List<double[]> heads) {
        MxCompare.Run r = MxCompare.mxnet("RNN", c.attrs(), c.shapes(), values, train, heads, null, 1);
        return new Run(r.outputs(), heads == null ? List.of() : r.grads());
    }
}
