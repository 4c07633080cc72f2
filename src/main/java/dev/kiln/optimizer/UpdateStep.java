package dev.kiln.optimizer;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The native op calls of one optimizer step, as an {@link Optimizer} records them for the
 * {@link Updater}, which runs them all in one native call ({@link FusedUpdate}). Created only by
 * the Updater.
 *
 * <p>Attributes whose value is a {@link Number} are <em>dynamic</em>: their values are passed on
 * every run, so a cached fused update is reused across steps while the calls (operator, attribute
 * names, static values, arrays) stay the same. Other values (booleans, strings) are static.
 *
 * <p>Ownership: the arrays given to {@link #add} are borrowed (the weight, gradient and state
 * arrays stay owned by their owners); arrays from {@link #scratch} belong to the Updater, which
 * reuses them across steps and closes them.
 *
 * <p>Thread-safety: not thread-safe; used by one thread during one {@code Updater.update}.
 */
public final class UpdateStep {
    /** One recorded call. */
    record Call(String op, String[] keys, Object[] values, NDArray[] inputs, NDArray[] outputs) {
        boolean sameShape(Call o) {
            if (!op.equals(o.op) || keys.length != o.keys.length || inputs.length != o.inputs.length
                    || outputs.length != o.outputs.length) {
                return false;
            }
            for (int i = 0; i < keys.length; i++) {
                if (!keys[i].equals(o.keys[i])) {
                    return false;
                }
                boolean dyn = values[i] instanceof Number;
                if (dyn != o.values[i] instanceof Number || !dyn && !values[i].equals(o.values[i])) {
                    return false;
                }
            }
            for (int i = 0; i < inputs.length; i++) {
                if (inputs[i] != o.inputs[i]) {
                    return false;
                }
            }
            for (int i = 0; i < outputs.length; i++) {
                if (outputs[i] != o.outputs[i]) {
                    return false;
                }
            }
            return true;
        }
    }

    private final List<Call> calls = new ArrayList<>();
    private final List<NDArray> oldScratch;
    private final List<NDArray> scratch = new ArrayList<>();
    private final List<NDArray> created = new ArrayList<>();

    UpdateStep(List<NDArray> previousScratch) {
        this.oldScratch = previousScratch;
    }

    /**
     * Records one call of a registered operator.
     *
     * @param op the operator name, e.g. {@code "adam_update"}
     * @param attrs attributes by MXNet name; {@link Number} values are dynamic, others static
     *     (booleans are written {@code True}/{@code False})
     * @param inputs input arrays (borrowed)
     * @param outputs output arrays written in place (borrowed), e.g. the weight
     * @throws IllegalArgumentException for a null name, attribute or array, or no outputs
     */
    public void add(String op, Map<String, ?> attrs, List<NDArray> inputs, List<NDArray> outputs) {
        if (op == null || op.isEmpty()) {
            throw new IllegalArgumentException("UpdateStep.add: operator name is null or empty");
        }
        int n = attrs == null ? 0 : attrs.size();
        String[] keys = new String[n];
        Object[] values = new Object[n];
        int i = 0;
        if (attrs != null) {
            for (Map.Entry<String, ?> e : attrs.entrySet()) {
                keys[i] = Objects.requireNonNull(e.getKey(), "attribute name");
                values[i] = e.getValue();
                if (values[i] == null) {
                    throw new IllegalArgumentException("UpdateStep.add(" + op + "): attribute " + keys[i] + " is null");
                }
                if (values[i] instanceof Number num) {
                    values[i] = num.doubleValue();
                }
                i++;
            }
        }
        NDArray[] in = inputs.toArray(new NDArray[0]);
        NDArray[] out = outputs.toArray(new NDArray[0]);
        for (NDArray a : in) {
            Objects.requireNonNull(a, op + " input");
        }
        for (NDArray a : out) {
            Objects.requireNonNull(a, op + " output");
        }
        if (out.length == 0) {
            throw new IllegalArgumentException("UpdateStep.add(" + op + "): no output array");
        }
        calls.add(new Call(op, keys, values, in, out));
    }

    /**
     * A temporary array for this step (e.g. LAMB's update direction or a float32 gradient copy).
     * The same request in the same position of the next step returns the same array, so the fused
     * update can be reused; its content is undefined until an op writes it.
     *
     * @param shape the shape
     * @param dtype the element type
     * @param ctx the device
     * @return an array owned by the Updater
     */
    public NDArray scratch(Shape shape, DType dtype, Context ctx) {
        int i = scratch.size();
        if (i < oldScratch.size()) {
            NDArray a = oldScratch.get(i);
            if (!a.isClosed() && a.shape().equals(shape) && a.dtype() == dtype && a.context().equals(ctx)) {
                scratch.add(a);
                return a;
            }
        }
        NDArray a = NDArray.zeros(shape, dtype, ctx).detach();
        created.add(a);
        scratch.add(a);
        return a;
    }

    List<Call> calls() {
        return Collections.unmodifiableList(calls);
    }

    List<NDArray> scratchArrays() {
        return scratch;
    }

    /** Arrays allocated by this step (not reused from the previous one). */
    List<NDArray> createdScratch() {
        return created;
    }

    /** The dynamic values in call order. */
    double[] dynamicValues() {
        int n = 0;
        for (Call c : calls) {
            for (Object v : c.values) {
                if (v instanceof Number) {
                    n++;
                }
            }
        }
        double[] out = new double[n];
        int i = 0;
        for (Call c : calls) {
            for (Object v : c.values) {
                if (v instanceof Number num) {
                    out[i++] = num.doubleValue();
                }
            }
        }
        return out;
    }
}
