package dev.kiln.optimizer;

import dev.kiln.engine.Engine;
import dev.kiln.internal.Json;
import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;
import dev.kiln.ndarray.NDArray;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A fused multi-tensor update: a list of registered-operator calls (typically one optimizer
 * update per parameter, e.g. {@code sgd_mom_update(weight, grad, mom)}) that {@link #run} executes
 * in order in ONE native call ({@code kiln_fused_run}).
 *
 * <p>Each call has static attributes, fixed when it is {@linkplain #add added}, and dynamic
 * attributes (numeric parameters such as {@code lr}, {@code wd}, {@code t}) whose values are given
 * to every {@link #run}: the values of call 0 first (in the order of its {@code dynamicKeys}), then
 * those of call 1, and so on. {@link #add} parses and checks everything once (operator,
 * attributes, argument count, shapes, types, devices); a run only patches the dynamic values
 * (no string parsing) and calls the kernels.
 *
 * <p>Ownership: the input and output arrays are borrowed; the caller keeps them open while this
 * object runs them. Running after one of them was closed throws {@link IllegalStateException}
 * naming the call and the array, before any call is executed. This object owns a native plan;
 * {@link #close()} frees it (idempotent; the arrays are not touched), and any use after close
 * throws {@link IllegalStateException}. A plan that is never closed is freed by a
 * {@link Cleaner} with a warning, as a backstop only.
 *
 * <p>Thread-safety: not thread-safe; use one instance from one thread at a time, and do not
 * close or write its arrays from another thread during {@link #run}.
 */
public final class FusedUpdate implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(FusedUpdate.class);
    private static final Cleaner CLEANER = Cleaner.create();

    static {
        Engine.init();
    }

    /** One op call (Java side: the arrays, for the closed-array checks and messages). */
    private record Call(String op, NDArray[] inputs, NDArray[] outputs) {}

    /** Native plan holder shared with the cleaner (must not reference the FusedUpdate). */
    private static final class State implements Runnable {
        final AtomicLong handle;
        volatile boolean explicitClose;

        State(long h) {
            handle = new AtomicLong(h);
        }

        @Override
        public void run() {
            long h = handle.getAndSet(0);
            if (h != 0) {
                if (!explicitClose) {
                    LOG.warn("a FusedUpdate was garbage-collected without close(); freeing its native plan");
                }
                KilnNative.kiln_fused_free(h);
            }
        }
    }

    private final State state;
    private final List<Call> calls = new ArrayList<>();
    private int numDynamic;

    /** An empty update list. */
    public FusedUpdate() {
        long[] out = new long[1];
        Native.check(KilnNative.kiln_fused_create(out), "FusedUpdate");
        state = new State(out[0]);
        CLEANER.register(this, state);
    }

    /**
     * Adds one call of a registered op. {@code inputs}/{@code outputs} are borrowed (the caller
     * keeps ownership); {@code outputs} are the op's visible outputs, written in place (an output
     * that is the same array as an input is updated in place, e.g. the weight). {@code dynamicKeys}
     * name numeric parameters whose values are supplied on every {@link #run}; they must not also
     * appear in {@code staticAttrs}. Attribute values may be strings, numbers or booleans.
     *
     * @return the call index
     * @throws IllegalArgumentException for an unknown op, bad or conflicting attributes, the
     *         wrong number of arrays, or arrays whose shapes, types or devices the op rejects
     *         (the message names the call, the op and the argument)
     * @throws IllegalStateException when this object or one of the arrays is closed
     */
    public int add(String op, Map<String, ?> staticAttrs, List<String> dynamicKeys, List<NDArray> inputs, List<NDArray> outputs) {
        long h = plan();
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
        int[] index = new int[1];
        int rc = KilnNative.kiln_fused_add(h, op, Json.write(st), Json.write(new ArrayList<Object>(dyn)), in.length, handles(in),
                out.length, handles(out), index);
        java.lang.ref.Reference.reachabilityFence(this);  // the cleaner must not free the plan during the call
        if (rc != 0) {
            throw new IllegalArgumentException("FusedUpdate.add(" + op + "): " + KilnNative.kiln_last_error());
        }
        calls.add(new Call(op, in, out));
        numDynamic += dyn.size();
        return index[0];
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

    private static long[] handles(NDArray[] a) {
        long[] h = new long[a.length];
        for (int i = 0; i < a.length; i++) {
            h[i] = a[i].handle();
        }
        return h;
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
     * then call 1, ... (its length must equal {@link #numDynamic()}; null = none). Integer and
     * boolean parameters take integral values (booleans: nonzero = true).
     *
     * @throws IllegalArgumentException when {@code dyn} has the wrong length
     * @throws IllegalStateException when this object or an array of a call is closed (nothing ran)
     * @throws dev.kiln.engine.KilnException when a dynamic value is out of its parameter's range
     *         or would change a call's shapes from those it was added with, such as {@code
     *         one_hot}'s depth (nothing ran), or a kernel fails (the calls before it have been applied)
     */
    public void run(double[] dyn) {
        long h = plan();
        int n = dyn == null ? 0 : dyn.length;
        if (n != numDynamic) {
            throw new IllegalArgumentException("FusedUpdate.run: " + numDynamic + " dynamic values expected, " + n + " given");
        }
        for (int c = 0; c < calls.size(); c++) {
            Call call = calls.get(c);
            checkOpen(c, call, "input", call.inputs);
            checkOpen(c, call, "output", call.outputs);
        }
        try {
            Native.check(KilnNative.kiln_fused_run(h, n, n == 0 ? new double[1] : dyn), "FusedUpdate.run");
        } finally {
            java.lang.ref.Reference.reachabilityFence(this);  // the cleaner must not free the plan during the run
        }
    }

    /**
     * Whether the runs replay a CUDA graph: on one GPU, a run whose dynamic values are those of the
     * run before it is recorded and then replayed while they stay the same (an SGD step at a
     * constant learning rate is one graph launch); a run with other values runs eagerly. Always
     * false on the CPU, with {@code KILN_CUDA_GRAPHS=0}, or after a recording failed.
     *
     * @return true when the last run was (and the next run with the same values will be) a replay
     * @throws IllegalStateException when this object is closed
     */
    public boolean isGraphRecorded() {
        int[] out = new int[1];
        try {
            Native.check(KilnNative.kiln_fused_graph(plan(), out), "FusedUpdate.isGraphRecorded");
        } finally {
            java.lang.ref.Reference.reachabilityFence(this);
        }
        return out[0] == 1;
    }

    private static void checkOpen(int c, Call call, String what, NDArray[] arrays) {
        for (int i = 0; i < arrays.length; i++) {
            if (arrays[i].isClosed()) {
                throw new IllegalStateException("FusedUpdate call " + c + " (" + call.op + "): " + what + " " + i
                        + (arrays[i].name() != null ? " '" + arrays[i].name() + "'" : "") + " is closed");
            }
        }
    }

    private long plan() {
        long h = state.handle.get();
        if (h == 0) {
            throw new IllegalStateException("FusedUpdate is closed");
        }
        return h;
    }

    static String attrValue(Object v) {
        if (v instanceof Boolean b) {
            return b ? "True" : "False";
        }
        return String.valueOf(v);
    }

    /**
     * Frees the native plan (not the arrays). Idempotent.
     *
     * @throws dev.kiln.engine.KilnException while another thread runs the plan (it stays open then)
     */
    @Override
    public void close() {
        long h = state.handle.getAndSet(0);
        if (h == 0) {
            return;
        }
        int rc = KilnNative.kiln_fused_free(h);
        if (rc != 0) {
            state.handle.compareAndSet(0, h);  // refused (in use): still open, and still the cleaner's
            Native.check(rc, "FusedUpdate.close");
        }
        state.explicitClose = true;
        calls.clear();
    }
}
