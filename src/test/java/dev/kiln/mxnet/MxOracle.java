package dev.kiln.mxnet;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.mxnet.engine.MxNDArray;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.mxnet.engine.Symbol;
import ai.djl.mxnet.jna.JnaUtils;
import ai.djl.mxnet.jna.LibUtils;
import ai.djl.mxnet.jna.MxnetLibrary;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.Shape;
import ai.djl.util.PairList;
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;
import org.junit.jupiter.api.Assumptions;

import java.lang.reflect.Proxy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The real Apache MXNet 1.9.1 (DJL 0.36's build of the pip library, loaded from the
 * {@code mxnet-native-mkl} jar, offline) as a test oracle. Everything goes through MXNet's own C
 * API: operators by name with MXNet parameter strings ({@code MXImperativeInvokeEx}), symbols
 * from JSON ({@code MXSymbolCreateFromJSON}), the legacy executor ({@code MXExecutorBind},
 * the engine behind MXNet's Module API) and {@code MXNDArraySave}/{@code MXNDArrayLoad}.
 *
 * <p>DJL switches MXNet to NumPy shape semantics globally; the oracle switches it back off, so
 * the legacy operators behave as in MXNet 1.x's Symbol/Module API (e.g. {@code axis=()} and the
 * Reshape codes).
 *
 * <p>The one place the tests load MXNet: {@code dev.kiln.io.MxIterOracle} (MXNet's native data
 * iterators) and {@code dev.kiln.optimizer.MxRef} (optimizer operators) build on the public
 * members here.
 */
public final class MxOracle {
    private static final String REASON;
    private static final MxNDManager MANAGER;
    private static final NativeLibrary LIB;

    static {
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        if (System.getProperty("DJL_CACHE_DIR") == null && System.getenv("DJL_CACHE_DIR") == null) {
            System.setProperty("DJL_CACHE_DIR", Path.of("target", "djl-cache").toAbsolutePath().toString());
        }
        String reason = null;
        MxNDManager mgr = null;
        NativeLibrary lib = null;
        try {
            Engine engine = Engine.getEngine("MXNet");
            JnaUtils.setNumpyMode(JnaUtils.NumpyMode.OFF);
            mgr = (MxNDManager) engine.newBaseManager(Device.cpu());
            MxnetLibrary proxy = LibUtils.loadLibrary();
            lib = ((Library.Handler) Proxy.getInvocationHandler(proxy)).getNativeLibrary();
            int version = JnaUtils.getVersion();
            if (version < 10900 || version >= 20000) {
                reason = "MXNet library reports version " + version + ", the oracle needs 1.9.x";
            }
        } catch (Throwable t) {
            Throwable root = t;
            while (root.getCause() != null && root.getCause() != root) {
                root = root.getCause();
            }
            reason = "MXNet native library (DJL mxnet-engine + mxnet-native-mkl, offline) cannot load: " + t
                    + (root != t ? " caused by " + root : "");
        }
        REASON = reason;
        MANAGER = mgr;
        LIB = lib;
    }

    private MxOracle() {}

    /** Whether the real MXNet library loaded. */
    public static boolean available() {
        return REASON == null;
    }

    /** Skips the calling test (visibly) when MXNet cannot load. */
    public static void assumeAvailable() {
        Assumptions.assumeTrue(REASON == null, REASON);
    }

    /** MXNet's version number (10900 for the 1.9.1 jar). */
    static int version() {
        return JnaUtils.getVersion();
    }

    /** A child manager on the CPU: close it to free every MXNet array made through it. */
    public static MxNDManager newManager() {
        return MANAGER.newSubManager(Device.cpu());
    }

    /** A float32 MXNet array of the manager holding {@code data} (row-major) with the given shape. */
    public static NDArray create(MxNDManager m, float[] data, long... shape) {
        return m.create(data, new Shape(shape));
    }

    /** MXNet parameters as strings, in the given order. */
    static PairList<String, String> params(Map<String, String> attrs) {
        PairList<String, String> p = new PairList<>();
        attrs.forEach(p::add);
        return p;
    }

    /** Runs a registered MXNet operator by name; returns all of its visible outputs. */
    public static NDList invoke(MxNDManager m, String op, Map<String, String> attrs, NDArray... inputs) {
        return m.invoke(djlName(op), new NDList(inputs), params(attrs));
    }

    /**
     * DJL's name of an MXNet operator: its function table drops the {@code _contrib_} and {@code _random_}
     * prefixes (so {@code gamma} is the gamma function there: {@code _random_gamma} goes by its alias).
     */
    static String djlName(String op) {
        if (op.equals("_random_gamma")) {
            return "random_gamma";
        }
        for (String prefix : new String[] {"_contrib_", "_random_"}) {
            if (op.startsWith(prefix)) {
                return op.substring(prefix.length());
            }
        }
        return op;
    }

    /** Runs an operator writing its (single) output into {@code out} (e.g. sgd_update in place). */
    public static void invokeInto(MxNDManager m, String op, Map<String, String> attrs, NDArray out, NDArray... inputs) {
        m.invoke(op, inputs, new NDArray[] {out}, params(attrs));
    }

    private static Pointer handle(NDArray a) {
        return ((MxNDArray) a).getHandle();
    }

    /** A native array of the given pointers (at least one slot, so an empty list is still a valid address). */
    static Memory pointers(List<Pointer> ps) {
        Memory mem = new Memory((long) Native.POINTER_SIZE * Math.max(1, ps.size()));
        mem.clear();
        for (int i = 0; i < ps.size(); i++) {
            mem.setPointer((long) i * Native.POINTER_SIZE, ps.get(i));
        }
        return mem;
    }

    /**
     * Calls an MXNet C API function by name.
     *
     * @throws IllegalStateException with {@code MXGetLastError}'s message when it returns non-zero
     */
    public static void call(String fn, Object... args) {
        int rc = LIB.getFunction(fn).invokeInt(args);
        if (rc != 0) {
            String err = LIB.getFunction("MXGetLastError").invokeString(new Object[0], false);
            throw new IllegalStateException(fn + " failed: " + err);
        }
    }

    /** {@code MXNDArraySave}: MXNet writes the named arrays as a {@code .params} file. */
    public static void save(Path file, Map<String, NDArray> arrays) {
        List<Pointer> hs = new ArrayList<>();
        List<String> keys = new ArrayList<>();
        arrays.forEach((k, v) -> {
            keys.add(k);
            hs.add(handle(v));
        });
        call("MXNDArraySave", file.toString(), hs.size(), pointers(hs), keys.toArray(new String[0]));
    }

    /** {@code MXNDArrayLoad}: name -> array, in file order (unnamed lists get "0", "1", ...). */
    public static Map<String, NDArray> load(MxNDManager m, Path file) {
        NDList list = JnaUtils.loadNdArray(m, file, Device.cpu());
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (int i = 0; i < list.size(); i++) {
            NDArray a = list.get(i);
            out.put(a.getName() == null ? Integer.toString(i) : a.getName(), a);
        }
        return out;
    }

    /** Parses symbol JSON with {@code MXSymbolCreateFromJSON} (closed with the manager). */
    public static Symbol symbol(MxNDManager m, String json) {
        return Symbol.loadJson(m, json);
    }

    /**
     * MXNet's legacy graph executor ({@code MXExecutorBind}, what Module.bind uses) on the
     * caller's arrays. Gradient requests: "write" for arguments that have a gradient array,
     * "null" otherwise.
     */
    public static final class Executor implements AutoCloseable {
        private final MxNDManager manager;
        private Pointer handle;
        private final List<NDArray> outputs = new ArrayList<>();

        public Executor(MxNDManager manager, Symbol symbol, Map<String, NDArray> args, Map<String, NDArray> grads) {
            this(manager, symbol, args, grads, Map.of());
        }

        /** With auxiliary states (BatchNorm's moving statistics), by name. */
        public Executor(MxNDManager manager, Symbol symbol, Map<String, NDArray> args, Map<String, NDArray> grads,
                Map<String, NDArray> aux) {
            this(manager, symbol, args, grads, aux, Map.of());
        }

        /**
         * With gradient requests by name (MXNet's codes: 0 null, 1 write, 3 add); an argument with a
         * gradient array and no entry gets write.
         */
        public Executor(MxNDManager manager, Symbol symbol, Map<String, NDArray> args, Map<String, NDArray> grads,
                Map<String, NDArray> aux, Map<String, Integer> reqs) {
            this.manager = manager;
            String[] names = symbol.getArgNames();
            List<Pointer> in = new ArrayList<>();
            List<Pointer> g = new ArrayList<>();
            int[] req = new int[names.length];
            for (int i = 0; i < names.length; i++) {
                NDArray a = args.get(names[i]);
                if (a == null) {
                    throw new IllegalArgumentException("no MXNet array for argument " + names[i]);
                }
                in.add(handle(a));
                NDArray gr = grads.get(names[i]);
                g.add(gr == null ? null : handle(gr));
                req[i] = gr == null ? 0 : reqs.getOrDefault(names[i], 1); // kNullOp, kWriteTo or the request given
            }
            String[] auxNames = symbol.getAuxNames();
            List<Pointer> x = new ArrayList<>();
            for (String a : auxNames) {
                NDArray arr = aux.get(a);
                if (arr == null) {
                    throw new IllegalArgumentException("no MXNet array for auxiliary state " + a);
                }
                x.add(handle(arr));
            }
            PointerByReference out = new PointerByReference();
            call("MXExecutorBind", symbol.getHandle(), 1, 0, names.length, pointers(in), pointers(g), req, x.size(),
                    x.isEmpty() ? Pointer.NULL : pointers(x), out);
            handle = out.getValue();
            IntByReference n = new IntByReference();
            PointerByReference outs = new PointerByReference();
            call("MXExecutorOutputs", handle, n, outs);
            Pointer[] hs = outs.getValue().getPointerArray(0, n.getValue());
            for (Pointer h : hs) {
                outputs.add(manager.create(h));
            }
        }

        /** MXNet's executor debug string ({@code MXExecutorPrint}), with its "Total N MB allocated" line. */
        public String debugString() {
            PointerByReference out = new PointerByReference();
            call("MXExecutorPrint", handle, out);
            return out.getValue().getString(0);
        }

        public Executor forward(boolean isTrain) {
            call("MXExecutorForward", handle, isTrain ? 1 : 0);
            return this;
        }

        /** Backward for loss-terminated graphs (no head gradients). */
        public Executor backward() {
            call("MXExecutorBackward", handle, 0, Pointer.NULL);
            return this;
        }

        /** Backward with one head gradient per output. */
        public Executor backward(List<NDArray> heads) {
            List<Pointer> hs = new ArrayList<>();
            heads.forEach(h -> hs.add(handle(h)));
            call("MXExecutorBackward", handle, hs.size(), pointers(hs));
            return this;
        }

        /** The outputs (they share the executor's memory and change with every forward). */
        public List<NDArray> outputs() {
            return outputs;
        }

        @Override
        public void close() {
            if (handle != null) {
                outputs.forEach(NDArray::close);
                call("MXExecutorFree", handle);
                handle = null;
            }
        }
    }
}
