package dev.kiln.optimizer;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.mxnet.jna.JnaUtils;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.util.PairList;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;

/**
 * The real MXNet 1.9.1 (DJL's build, offline, test scope) as the optimizer oracle: operators are
 * called by name with MXNet parameter strings, as {@code optimizer.py} calls them. The same setup
 * as {@code dev.kiln.mxnet.MxOracle} (package-private there): NumPy shape semantics off.
 */
final class MxRef {
    private static final String REASON;
    private static final MxNDManager MANAGER;

    static {
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", Path.of("target", "djl-cache").toAbsolutePath().toString());
        }
        String reason = null;
        MxNDManager mgr = null;
        try {
            Engine engine = Engine.getEngine("MXNet");
            JnaUtils.setNumpyMode(JnaUtils.NumpyMode.OFF);
            mgr = (MxNDManager) engine.newBaseManager(Device.cpu());
            int version = JnaUtils.getVersion();
            if (version < 10900 || version >= 20000) {
                reason = "MXNet library reports version " + version + ", the oracle needs 1.9.x";
            }
        } catch (Throwable t) {
            reason = "MXNet native library (DJL mxnet-engine + mxnet-native-mkl, offline) cannot load: " + t;
        }
        REASON = reason;
        MANAGER = mgr;
    }

    private MxRef() {}

    static void assumeAvailable() {
        Assumptions.assumeTrue(REASON == null, REASON);
    }

    /** A child manager: closing it frees every MXNet array made through it. */
    static MxNDManager newManager() {
        return MANAGER.newSubManager(Device.cpu());
    }

    static NDArray create(MxNDManager m, float[] data) {
        return m.create(data, new Shape(data.length));
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

    private static PairList<String, String> params(Map<String, String> attrs) {
        PairList<String, String> p = new PairList<>();
        attrs.forEach(p::add);
        return p;
    }

    /** Runs an operator; returns its first output (a new array of the manager). */
    static NDArray op(MxNDManager m, String op, Map<String, String> attrs, NDArray... inputs) {
        NDList out = m.invoke(op, new NDList(inputs), params(attrs));
        return out.get(0);
    }

    /** Runs an operator writing its output into {@code out} (e.g. {@code out=weight}). */
    static void opInto(MxNDManager m, String op, Map<String, String> attrs, NDArray out, NDArray... inputs) {
        m.invoke(op, inputs, new NDArray[] {out}, params(attrs));
    }
}
