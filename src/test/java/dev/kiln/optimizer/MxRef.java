package dev.kiln.optimizer;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDArray;
import dev.kiln.mxnet.MxOracle;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Helpers for the optimizer oracle on top of {@link MxOracle} (the real MXNet 1.9.1, DJL's build,
 * offline, test scope; NumPy shape semantics off): MXNet parameter strings as
 * {@code optimizer.py} writes them, and operators called by name. Tests call {@link
 * MxOracle#assumeAvailable()} first and make arrays in an {@link MxOracle#newManager()}.
 */
final class MxRef {
    private MxRef() {}

    /** A 1-D float32 MXNet array of the manager holding {@code data}. */
    static NDArray create(MxNDManager m, float[] data) {
        return MxOracle.create(m, data, data.length);
    }

    /** Python's str(float) for MXNet parameter strings (full precision). */
    static String num(double v) {
        return Double.toString(v);
    }

    static Map<String, String> attrs(Object... kv) {
        Map<String, String> a = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            Object v = kv[i + 1];
            a.put((String) kv[i], v instanceof Double d ? num(d) : v instanceof Boolean b ? (b ? "True" : "False")
                    : String.valueOf(v));
        }
        return a;
    }

    /** Runs an operator; returns its first output (a new array of the manager). */
    static NDArray op(MxNDManager m, String op, Map<String, String> attrs, NDArray... inputs) {
        return MxOracle.invoke(m, op, attrs, inputs).get(0);
    }

    /** Runs an operator writing its output into {@code out} (e.g. {@code out=weight}). */
    static void opInto(MxNDManager m, String op, Map<String, String> attrs, NDArray out, NDArray... inputs) {
        MxOracle.invokeInto(m, op, attrs, out, inputs);
    }
}
