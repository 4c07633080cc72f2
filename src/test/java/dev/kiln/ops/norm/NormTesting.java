package dev.kiln.ops.norm;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.MxCompare;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * Helpers shared by the norm operator tests: one op applied to a data variable (its other inputs
 * created by the symbol API), run on Kiln's executor and on the real MXNet 1.9.1 (imperative, with
 * autograd for the backward) with the same inputs, head gradient and number of steps.
 */
final class NormTesting {
    private NormTesting() {}

    /** What one run gives: visible outputs, gradients of the non-aux inputs, inputs after the run. */
    record Run(List<double[]> outputs, List<double[]> grads, List<double[]> inputsAfter) {}

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
        Map<String, double[]> vals = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) {
            shp.put(names.get(i), shapes.get(i));
            types.put(names.get(i), t);
            vals.put(names.get(i), values.get(i));
            if (i < nargs) {
                reqs.put(names.get(i), head == null ? GradReq.NULL : req);
            }
        }
        MxCompare.Run r = MxCompare.kiln(s, shp, types, reqs, vals, train, head == null ? null : List.of(head), steps,
                new Executor.Options().optSeed(7));
        return new Run(r.outputs(), head == null ? List.of() : r.grads(), r.inputsAfter());
    }

    /**
     * The same on MXNet 1.9.1 in float32: imperative invoke in training / inference mode; with a
     * head gradient under autograd (loss = sum(output * head)) and {@code nargs} leading inputs
     * marked for gradients.
     */
    static Run mxnet(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values, boolean train,
            double[] head, int nargs, int steps) {
        MxCompare.Run r = MxCompare.mxnet(op, attrs, shapes, values, train, head == null ? null : List.of(head),
                head == null ? Set.of() : IntStream.range(0, nargs).boxed().collect(Collectors.toSet()), steps);
        return new Run(r.outputs(), head == null ? List.of() : r.grads().subList(0, nargs), r.inputsAfter());
    }
}
