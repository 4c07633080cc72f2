package dev.kiln.ops.seq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.MxCompare;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

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
        Map<String, double[]> vals = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            shp.put(names.get(i), shapes.get(i));
            ty.put(names.get(i), types.get(i));
            rq.put(names.get(i), head == null ? GradReq.NULL : reqs.get(i));
            vals.put(names.get(i), values.get(i));
        }
        MxCompare.Run r = MxCompare.kiln(s, shp, ty, rq, vals, head != null, head == null ? null : List.of(head), steps,
                new Executor.Options().optSeed(7));
        return new Run(r.outputs().get(0), r.outShapes().get(0), r.grads());
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

    /**
     * The same on MXNet 1.9.1 in float32: forward only when {@code head} is null, otherwise under
     * autograd with loss = sum(output * head) and gradients for the inputs in {@code gradInputs}.
     */
    static Run mxnet(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values, double[] head,
            Set<Integer> gradInputs) {
        MxCompare.Run r = MxCompare.mxnet(op, attrs, shapes, values, null, head == null ? null : List.of(head),
                gradInputs, 1);
        return new Run(r.outputs().get(0), r.outShapes().get(0), r.grads());
    }

    /** simpleBind with the given shapes (float32, no gradients) and close; for error cases. */
    static void bind(Symbol s, Map<String, long[]> shapes) {
        Executor.simpleBind(s, Context.cpu(), shapes, GradReq.NULL).close();
    }
}
