package dev.kiln.optimizer;

import dev.kiln.engine.Engine;
import dev.kiln.internal.Json;
import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;
import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A fused multi-tensor update: a list of registered-operator calls (typically one optimizer
 * update per parameter, e.g. {@code sgd_mom_update(weight, grad, mom)}) that {@link #run} executes
 * in order in one native call.
 *
 * <p>Each call has static attributes, fixed when it is {@linkplain #add added}, and dynamic
 * attributes (e.g. {@code lr}, {@code wd}, {@code t}) whose values are given to every
 * {@link #run}: the values of call 0 first (in the order of its {@code dynamicKeys}), then those
 * of call 1, and so on.
 *
 * <p>Ownership: the input and output arrays are borrowed; the caller keeps them open while this
 * object runs them. Running after one of them was closed throws {@link IllegalStateException}
 * naming the call and the array, before any call is executed. {@link #close()} releases this
 * object's own resources only (idempotent); any use after close throws
 * {@link IllegalStateException}.
 *
 * <p>Thread-safety: not thread-safe; use one instance from one thread at a time.
 */
public final class FusedUpdate implements AutoCloseable {
    static {
        Engine.init();
    }

    /** One op call. */
    private record Call(String op, String staticJson, Map<String, String> staticAttrs, List<String> dynamicKeys,
                        NDArray[] inputs, NDArray[] outputs) {}

    private final List<Call> calls = new ArrayList<>();
    private int numDynamic;
    private boolean closed;

    /** An empty update list. */
    public FusedUpdate() {}

    /**
     * Adds one call of a registered op. {@code inputs}/{@code outputs} are borrowed (the caller
     * keeps ownership); outputs are written in place (an output that is the same array as an input
     * is updated in place, e.g. the weight). {@code dynamicKeys} are attribute names whose values
     * are supplied on every {@link #run}; they must not also appear in {@code staticAttrs}.
     *
     * @return the call index
     * @throws IllegalArgumentException for a null/empty op name, duplicate or conflicting keys,
     *         null arrays, or no outputs
     * @throws IllegalStateException when this object or one of the arrays is closed
     */
    public int add(String op, Map<String, ?> staticAttrs, List<String> dynamicKeys, List<NDArray> inputs, List<NDArray> outputs) {
        checkOpen();
        if (op == null || op.isEmpty()) {
            throw new IllegalArgumentException("FusedUpdate.add: operator name is null or empty");
        }
        Map<String, String> st = new LinkedHashMap<>();
        if (staticAttrs != null) {
            for (Map.Entry<String, ?> e : staticAttrs.entrySet()) {
                if (e.getKey() == null || e.getValue() == null) {
                    throw new IllegalArgumentException("FusedUpdate.add(" + op + "): null attribute name or value");
                }
                st.put(e.getKey(), attrValue(e.getValue()));
            }
        }
        List<String> dyn = dynamicKeys == null ? List.of() : List.copyOf(dynamicKeys);
        Set<String> seen = new HashSet<>();
        for (String k : dyn) {
            if (!seen.add(k)) {
                throw new IllegalArgumentException("FusedUpdate.add(" + op + "): dynamic key '" + k + "' given twice");
            }
            if (st.containsKey(k)) {
                throw new IllegalArgumentException("FusedUpdate.add(" + op + "): '" + k + "' is both a static and a dynamic attribute");
            }
        }
        NDArray[] in = arrays(op, "input", inputs);
        NDArray[] out = arrays(op, "output", outputs);
        if (out.length == 0) {
            throw new IllegalArgumentException("FusedUpdate.add(" + op + "): at least one output array is needed");
        }
        calls.add(new Call(op, Json.write(st), st, dyn, in, out));
        numDynamic += dyn.size();
        return calls.size() - 1;
    }

    private static NDArray[] arrays(String op, String what, List<NDArray> list) {
        if (list == null) {
            return new NDArray[0];
        }
        NDArray[] a = list.toArray(new NDArray[0]);
        for (int i = 0; i < a.length; i++) {
            if (a[i] == null) {
                throw new IllegalArgumentException("FusedUpdate.add(" + op + "): " + what + " " + i + " is null");
            }
            if (a[i].isClosed()) {
                throw new IllegalStateException("FusedUpdate.add(" + op + "): " + what + " " + i + " is closed");
            }
        }
        return a;
    }

    /** The number of calls. */
    public int size() {
        return calls.size();
    }

    /** The total number of dynamic values {@link #run} expects. */
    public int numDynamic() {
        return numDynamic;
    }

    /**
     * Runs every call in order in one native call; {@code dyn} holds the dynamic values of call 0,
     * then call 1, ... (its length must equal {@link #numDynamic()}).
     *
     * @throws IllegalArgumentException when {@code dyn} has the wrong length
     * @throws IllegalStateException when this object or an array of a call is closed
     * @throws dev.kiln.engine.KilnException when an op rejects its attributes or arrays (calls
     *         before the failing one have been applied)
     */
    public void run(double[] dyn) {
        checkOpen();
        int n = dyn == null ? 0 : dyn.length;
        if (n != numDynamic) {
            throw new IllegalArgumentException("FusedUpdate.run: " + numDynamic + " dynamic values expected, " + n + " given");
        }
        // handles first, so a closed array fails before any call has run
        long[][] ins = new long[calls.size()][];
        long[][] outs = new long[calls.size()][];
        for (int c = 0; c < calls.size(); c++) {
            Call call = calls.get(c);
            ins[c] = handles(c, call, "input", call.inputs);
            outs[c] = handles(c, call, "output", call.outputs);
        }
        int d = 0;
        for (int c = 0; c < calls.size(); c++) {
            Call call = calls.get(c);
            String attrs = call.staticJson;
            if (!call.dynamicKeys.isEmpty()) {
                Map<String, String> a = new LinkedHashMap<>(call.staticAttrs);
                for (String k : call.dynamicKeys) {
                    a.put(k, Double.toString(dyn[d++]));
                }
                attrs = Json.write(a);
            }
            long[] o = outs[c].clone();
            int[] nout = new int[1];
            Native.check(KilnNative.kiln_op_invoke(call.op, attrs, ins[c].length, ins[c], o.length, o, nout),
                    "FusedUpdate call " + c + " (" + call.op + ")");
        }
    }

    private static long[] handles(int c, Call call, String what, NDArray[] arrays) {
        long[] h = new long[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            if (arrays[i].isClosed()) {
                throw new IllegalStateException("FusedUpdate call " + c + " (" + call.op + "): " + what + " " + i
                        + (arrays[i].name() != null ? " '" + arrays[i].name() + "'" : "") + " is closed");
            }
            h[i] = arrays[i].handle();
        }
        return h;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("FusedUpdate is closed");
        }
    }

    static String attrValue(Object v) {
        if (v instanceof Boolean b) {
            return b ? "True" : "False";
        }
        return String.valueOf(v);
    }

    /** Releases this object's resources (not the arrays). Idempotent. */
    @Override
    public void close() {
        closed = true;
        calls.clear();
    }
}
