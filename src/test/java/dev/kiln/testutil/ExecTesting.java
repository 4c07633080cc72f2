package dev.kiln.testutil;

import static dev.kiln.testutil.OpTesting.assertContains;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * Executor glue shared by the operator tests: bind with explicit values, read every output, run a
 * forward, gradients after one or more backward calls with given head gradients, and failing shape
 * inference. Every executor and array created here is closed here, except the executor that
 * {@link #bind} returns, which the caller owns and must close. Not thread-safe beyond Kiln's own
 * guarantees (tests call it from one thread).
 */
public final class ExecTesting {
    private ExecTesting() {}

    /** Forward outputs and their shapes. */
    public record Out(List<double[]> values, List<long[]> shapes) {
        public double[] v(int i) {
            return values.get(i);
        }

        public long[] s(int i) {
            return shapes.get(i);
        }
    }

    /**
     * simpleBind on the CPU with every named input of type {@code type} and the given requests, then
     * sets every argument in {@code values}. The caller owns the executor; on a failure it is closed.
     */
    public static Executor bind(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type,
            Map<String, GradReq> reqs, Executor.Options opt) {
        Map<String, DType> types = new LinkedHashMap<>();
        shapes.keySet().forEach(k -> types.put(k, type));
        Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, opt == null ? new Executor.Options() : opt);
        try {
            values.forEach((k, v) -> ex.argDict().get(k).set(v));
        } catch (RuntimeException e) {
            ex.close();
            throw e;
        }
        return ex;
    }

    /** Every visible output of {@code ex} (as float64) and its shape. */
    public static Out outputs(Executor ex) {
        List<double[]> v = new ArrayList<>();
        List<long[]> s = new ArrayList<>();
        for (NDArray o : ex.outputs()) {
            v.add(o.toDoubleArray());
            s.add(o.shape().dims());
        }
        return new Out(v, s);
    }

    /** Binds without gradients, runs an inference forward and returns every output. */
    public static Out forward(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType type,
            Executor.Options opt) {
        try (Executor ex = bind(sym, shapes, values, type, Map.of(), opt)) {
            ex.forward(false);
            return outputs(ex);
        }
    }

    /**
     * Gradients (by name) of the arguments in {@code wrt} (bound with {@code req}, every other
     * argument with NULL) after a training forward and {@code calls} backward passes; the head of
     * visible output k is {@code head.apply(k, shape of output k)}, in that output's dtype.
     */
    public static Map<String, double[]> grads(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values,
            List<String> wrt, GradReq req, int calls, DType type, BiFunction<Integer, long[], double[]> head,
            Executor.Options opt) {
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : sym.listArguments()) {
            reqs.put(a, wrt.contains(a) ? req : GradReq.NULL);
        }
        try (Executor ex = bind(sym, shapes, values, type, reqs, opt)) {
            List<NDArray> hs = new ArrayList<>();
            try {
                ex.forward(true);
                List<NDArray> outs = ex.outputs();
                for (int k = 0; k < outs.size(); k++) {
                    NDArray o = outs.get(k);
                    NDArray h = NDArray.zeros(o.shape(), o.dtype(), Context.cpu());
                    hs.add(h);
                    h.set(head.apply(k, o.shape().dims()));
                }
                for (int c = 0; c < calls; c++) {
                    ex.backward(hs.toArray(new NDArray[0]));
                }
            } finally {
                hs.forEach(NDArray::close);
            }
            Map<String, double[]> g = new LinkedHashMap<>();
            for (String x : wrt) {
                g.put(x, ex.gradDict().get(x).toDoubleArray());
            }
            return g;
        }
    }

    /**
     * Shape inference and binding (which goes through the same inference, and must leak nothing)
     * must both fail with a KilnException whose message contains every fragment.
     */
    public static KilnException assertInferFails(Symbol sym, Map<String, long[]> shapes, String... fragments) {
        KilnException e = assertThrows(KilnException.class, () -> sym.inferShape(shapes));
        assertContains(e.getMessage(), fragments);
        KilnException b = assertThrows(KilnException.class,
                () -> Executor.simpleBind(sym, Context.cpu(), shapes, GradReq.NULL).close());
        assertContains(b.getMessage(), fragments);
        return e;
    }
}
