package dev.kiln.executor;

import dev.kiln.engine.KilnException;
import dev.kiln.internal.Json;
import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.Symbol;

import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A symbol bound to arrays on one device: shapes inferred, memory planned once (one arena for
 * every intermediate and gradient buffer), and a flat list of kernel calls. {@link #forward},
 * {@link #backward} and {@link #forwardBackward} each make one native call.
 *
 * <p>Ownership: an executor created by {@link #simpleBind} owns its argument, gradient and aux
 * arrays and closes them in {@link #close()}; one created by {@link #bind} only references the
 * caller's arrays (the caller closes them). Outputs are owned by the executor and are valid until
 * it is closed; their contents change with every forward.
 *
 * <p>Thread-safety: not thread-safe; use one executor per thread (they may share read-only
 * parameter arrays through {@link #bind}).
 */
public final class Executor implements AutoCloseable {
    private final Symbol symbol;
    private final Context ctx;
    private final List<String> argNames;
    private final List<String> auxNames;
    private final Map<String, NDArray> args;
    private final Map<String, NDArray> grads;
    private final Map<String, NDArray> aux;
    private final Map<String, GradReq> reqs;
    private final List<NDArray> outputs = new ArrayList<>();
    /** Input arrays a {@link #reshape} created (the shared ones belong to the original executor). */
    private final List<NDArray> ownedExtra = new ArrayList<>();
    private final boolean ownsArrays;
    private final Options options;
    private long handle;
    /** Native monitor mode: 0 off, 1 op outputs, 2 op inputs and outputs. */
    private int monitorMode;
    /** Views on the monitor snapshots handed out since the last pass (closed on the next one). */
    private List<Map.Entry<String, NDArray>> monitorViews;

    /** Bind options (planner switches and the seed of Dropout's generator). */
    public static final class Options {
        boolean mxnetCompatiblePlan;
        int matchRange = 16;
        boolean inplace = true;
        long seed;

        /** Plan exactly as MXNet 1.x does (4 bytes per element, never-read outputs get a block). */
        public Options optMxnetCompatiblePlan(boolean v) {
            mxnetCompatiblePlan = v;
            return this;
        }

        /** The planner's match range (0 disables reuse; default 16). */
        public Options optMatchRange(int v) {
            matchRange = v;
            return this;
        }

        /** Allows (default) or forbids in-place reuse. */
        public Options optInplace(boolean v) {
            inplace = v;
            return this;
        }

        /** Seed of the executor's random generator (Dropout). */
        public Options optSeed(long v) {
            seed = v;
            return this;
        }

        String json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("mxnet_compatible_plan", mxnetCompatiblePlan);
            m.put("match_range", (long) matchRange);
            m.put("inplace", inplace);
            m.put("seed", seed);
            return Json.write(m);
        }
    }

    private Executor(Symbol symbol, Context ctx, Map<String, NDArray> args, Map<String, NDArray> grads, Map<String, GradReq> reqs,
            Map<String, NDArray> aux, boolean owns, Options options) {
        this(symbol, ctx, args, grads, reqs, aux, owns, options, null);
    }

    private Executor(Symbol symbol, Context ctx, Map<String, NDArray> args, Map<String, NDArray> grads, Map<String, GradReq> reqs,
            Map<String, NDArray> aux, boolean owns, Options options, Executor sharedExec) {
        checkUniqueNames(symbol);
        this.symbol = symbol;
        this.ctx = ctx;
        this.argNames = symbol.listArguments();
        this.auxNames = symbol.listAuxiliaryStates();
        this.args = args;
        this.grads = grads;
        this.reqs = reqs;
        this.aux = aux;
        this.ownsArrays = owns;
        this.options = options;
        long[] a = new long[argNames.size()];
        long[] g = new long[argNames.size()];
        int[] r = new int[argNames.size()];
        for (int i = 0; i < a.length; i++) {
            String n = argNames.get(i);
            NDArray arr = args.get(n);
            if (arr == null) {
                throw new IllegalArgumentException("bind: no array for argument '" + n + "'; arguments are " + argNames);
            }
            a[i] = arr.handle();
            GradReq q = reqs.getOrDefault(n, GradReq.NULL);
            NDArray gr = grads.get(n);
            if (q != GradReq.NULL && gr == null) {
                throw new IllegalArgumentException("bind: grad_req of '" + n + "' is " + q + " but no gradient array was given");
            }
            r[i] = q.code();
            g[i] = q == GradReq.NULL ? 0 : gr.handle();
        }
        long[] x = new long[auxNames.size()];
        for (int i = 0; i < x.length; i++) {
            NDArray arr = aux.get(auxNames.get(i));
            if (arr == null) {
                throw new IllegalArgumentException("bind: no array for auxiliary state '" + auxNames.get(i) + "'");
            }
            x[i] = arr.handle();
        }
        long[] out = new long[1];
        long shared = sharedExec == null ? 0 : sharedExec.h();
        Native.check(KilnNative.kiln_exec_bind_shared(symbol.toJson(), ctx.devType(), ctx.devId(), a.length, a, g, r, x.length, x,
                options.json(), shared, out), "bind");
        handle = out[0];
        long[] outs = new long[256];
        int[] n = new int[1];
        Native.check(KilnNative.kiln_exec_outputs(handle, outs.length, outs, n), "outputs");
        for (int i = 0; i < n[0]; i++) {
            outputs.add(NDArray.fromHandle(outs[i]).detach());
        }
    }

    /**
     * Binds to the caller's arrays. {@code argGrads} holds a gradient array for every argument
     * whose {@code gradReqs} entry is not NULL (missing entries mean NULL).
     */
    public static Executor bind(Symbol symbol, Context ctx, Map<String, NDArray> args, Map<String, NDArray> argGrads,
            Map<String, GradReq> gradReqs, Map<String, NDArray> aux, Options options) {
        return new Executor(symbol, ctx, new LinkedHashMap<>(args), new LinkedHashMap<>(argGrads == null ? Map.of() : argGrads),
                new LinkedHashMap<>(gradReqs == null ? Map.of() : gradReqs), new LinkedHashMap<>(aux == null ? Map.of() : aux), false,
                options == null ? new Options() : options);
    }

    /**
     * Like {@link #bind(Symbol, Context, Map, Map, Map, Map, Options)}, but the new executor joins
     * the intermediate-memory pool of {@code sharedExec} (MXNet's {@code shared_exec}, spec
     * executor-and-memory-planner.md 1.10): its planned blocks are placed into the arenas that
     * {@code sharedExec} and the other executors of the pool already hold, and only the blocks that
     * do not fit get a new arena, which then joins the pool; the temp workspace is shared and grows
     * to the largest request. Binding the largest graph first (the default bucket) makes every
     * later executor allocate nothing for its intermediates.
     *
     * <p>The executors of a pool overwrite each other's intermediates and outputs: run them one at
     * a time and read an executor's outputs before running another one. Each may be closed in any
     * order (the pool lives as long as one of them). Parameter arrays are not shared by this call:
     * pass the same arrays in {@code args} for that.
     *
     * @param sharedExec an open executor on the same device, or null (same as {@code bind})
     * @throws dev.kiln.engine.KilnException if the devices differ or the graph cannot be bound
     */
    public static Executor bind(Symbol symbol, Context ctx, Map<String, NDArray> args, Map<String, NDArray> argGrads,
            Map<String, GradReq> gradReqs, Map<String, NDArray> aux, Options options, Executor sharedExec) {
        return new Executor(symbol, ctx, new LinkedHashMap<>(args), new LinkedHashMap<>(argGrads == null ? Map.of() : argGrads),
                new LinkedHashMap<>(gradReqs == null ? Map.of() : gradReqs), new LinkedHashMap<>(aux == null ? Map.of() : aux), false,
                options == null ? new Options() : options, sharedExec);
    }

    /**
     * Allocates zero-filled arguments, gradients and aux states from the given input shapes
     * (everything else inferred) and binds. {@code gradReq} applies to every argument not named
     * in {@code inputShapes} ... see {@link #simpleBind(Symbol, Context, Map, Map, Map, Options)}.
     */
    public static Executor simpleBind(Symbol symbol, Context ctx, Map<String, long[]> inputShapes, GradReq gradReq) {
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : symbol.listArguments()) {
            reqs.put(a, inputShapes.containsKey(a) ? GradReq.NULL : gradReq);
        }
        return simpleBind(symbol, ctx, inputShapes, Map.of(), reqs, new Options());
    }

    /**
     * Allocates zero-filled arguments, gradients (for arguments whose request is not NULL) and
     * aux states with shapes inferred from {@code inputShapes}, in {@code types} (default float32),
     * and binds ({@code types}, {@code gradReqs} or {@code options} null: none given, the defaults;
     * an argument missing from {@code gradReqs} gets no gradient, unlike MXNet's default 'write').
     * The executor owns these arrays.
     */
    public static Executor simpleBind(Symbol symbol, Context ctx, Map<String, long[]> inputShapes, Map<String, DType> types,
            Map<String, GradReq> gradReqs, Options options) {
        if (types == null) {
            types = Map.of();
        }
        if (gradReqs == null) {
            gradReqs = Map.of();
        }
        checkUniqueNames(symbol);
        Map<String, Object> known = new LinkedHashMap<>();
        Map<String, Object> shapes = new LinkedHashMap<>();
        inputShapes.forEach((k, v) -> {
            List<Object> l = new ArrayList<>();
            for (long d : v) {
                l.add(d);
            }
            shapes.put(k, l);
        });
        Map<String, Object> tmap = new LinkedHashMap<>();
        types.forEach((k, v) -> tmap.put(k, v.mxName()));
        known.put("shapes", shapes);
        known.put("types", tmap);
        known.put("partial", false);
        String res = Native.string(KilnNative.kiln_infer(symbol.toJson(), Json.write(known)), "simple_bind");
        Map<String, Object> r = Json.asObject(Json.parse(res), "infer");
        List<Object> argShapes = Json.asArray(r.get("arg_shapes"), "arg_shapes");
        List<Object> argTypes = Json.asArray(r.get("arg_types"), "arg_types");
        List<Object> auxShapes = Json.asArray(r.get("aux_shapes"), "aux_shapes");
        List<Object> auxTypes = Json.asArray(r.get("aux_types"), "aux_types");
        List<String> argNames = symbol.listArguments();
        List<String> auxNames = symbol.listAuxiliaryStates();
        Map<String, NDArray> args = new LinkedHashMap<>();
        Map<String, NDArray> grads = new LinkedHashMap<>();
        Map<String, NDArray> aux = new LinkedHashMap<>();
        List<String> untyped = new ArrayList<>();
        for (int i = 0; i < argNames.size(); i++) {
            if (argTypes.get(i) == null) {
                untyped.add(argNames.get(i));
            }
        }
        if (!untyped.isEmpty()) {  // some types were given, and these could not be inferred from them
            throw new KilnException("simple_bind: infer_type: cannot infer the dtypes of " + String.join(", ", untyped)
                    + "; provide them in types");
        }
        try {
            for (int i = 0; i < argNames.size(); i++) {
                Shape s = toShape(argShapes.get(i));
                DType t = DType.fromName(Json.asString(argTypes.get(i), "type"));
                String n = argNames.get(i);
                args.put(n, NDArray.zeros(s, t, ctx).setName(n).detach());
                if (gradReqs.getOrDefault(n, GradReq.NULL) != GradReq.NULL) {
                    grads.put(n, NDArray.zeros(s, t, ctx).setName("grad of " + n).detach());
                }
            }
            for (int i = 0; i < auxNames.size(); i++) {
                Shape s = toShape(auxShapes.get(i));
                DType t = DType.fromName(Json.asString(auxTypes.get(i), "type"));
                aux.put(auxNames.get(i), NDArray.zeros(s, t, ctx).setName(auxNames.get(i)).detach());
            }
            return new Executor(symbol, ctx, args, grads, new LinkedHashMap<>(gradReqs), aux, true,
                    options == null ? new Options() : options);
        } catch (RuntimeException e) {
            args.values().forEach(NDArray::close);
            grads.values().forEach(NDArray::close);
            aux.values().forEach(NDArray::close);
            throw e;
        }
    }

    private static Shape toShape(Object o) {
        List<Object> l = Json.asArray(o, "shape");
        long[] d = new long[l.size()];
        for (int i = 0; i < d.length; i++) {
            d[i] = Json.asLong(l.get(i), "dim");
        }
        return new Shape(d);
    }

    private long h() {
        if (handle == 0) {
            throw new IllegalStateException("executor is closed");
        }
        return handle;
    }

    /** Runs the forward pass ({@code isTrain} switches Dropout and similar ops to training mode). */
    public Executor forward(boolean isTrain) {
        h();
        dropMonitorViews();
        Native.check(KilnNative.kiln_exec_forward(h(), isTrain ? 1 : 0), "forward");
        return this;
    }

    /** Runs the backward pass; head gradients are needed only when the outputs are not losses. */
    public Executor backward(NDArray... headGrads) {
        long[] hs = new long[headGrads.length];
        for (int i = 0; i < hs.length; i++) {
            hs[i] = headGrads[i].handle();
        }
        h();
        dropMonitorViews();
        Native.check(KilnNative.kiln_exec_backward(h(), hs.length, hs), "backward");
        return this;
    }

    /** Forward (training mode) and backward in one native call (loss-terminated graphs). */
    public Executor forwardBackward() {
        h();
        dropMonitorViews();
        Native.check(KilnNative.kiln_exec_forward_backward(h()), "forward_backward");
        return this;
    }

    /**
     * Loss scaling: from the next backward on, the gradients of the graph's loss operators
     * (SoftmaxOutput, the regression outputs, MakeLoss) are multiplied by {@code scale} on top of
     * their {@code grad_scale}, and so are the head gradients passed to {@link #backward(NDArray...)}
     * for outputs that are not loss operators (the caller's arrays are not changed). Float16 gradients that would underflow stay representable; divide the optimizer's
     * rescale by the same factor ({@link dev.kiln.module.LossScaler} does both).
     *
     * @param scale finite and positive; 1 turns scaling off
     * @throws dev.kiln.engine.KilnException for any other value, or after close
     */
    public Executor setLossScale(double scale) {
        Native.check(KilnNative.kiln_exec_set_loss_scale(h(), scale), "setLossScale");
        return this;
    }

    /** The loss scale set by {@link #setLossScale} (1 by default). */
    public double lossScale() {
        double[] out = new double[1];
        Native.check(KilnNative.kiln_exec_loss_scale(h(), out), "lossScale");
        return out[0];
    }

    /** The visible outputs (owned by the executor). */
    public List<NDArray> outputs() {
        h();
        return Collections.unmodifiableList(outputs);
    }

    /** Argument arrays by name. */
    public Map<String, NDArray> argDict() {
        return Collections.unmodifiableMap(args);
    }

    /** Gradient arrays by argument name (only arguments whose request is not NULL). */
    public Map<String, NDArray> gradDict() {
        return Collections.unmodifiableMap(grads);
    }

    /** Auxiliary state arrays by name. */
    public Map<String, NDArray> auxDict() {
        return Collections.unmodifiableMap(aux);
    }

    /** The bound symbol. */
    public Symbol symbol() {
        return symbol;
    }

    /** The device. */
    public Context context() {
        return ctx;
    }

    /**
     * A new executor for new input shapes that shares this executor's parameter, gradient and aux
     * arrays (their shapes must not change); inputs named in {@code newShapes} get new arrays.
     * Like MXNet's {@code Executor.reshape}, the new executor is bound with this one as shared
     * executor: it joins this executor's memory pool and allocates only the intermediates that do
     * not fit (none when shrinking). This executor stays valid, but the two overwrite each other's
     * intermediates and outputs: run them one at a time. The new one does not own the shared
     * arrays.
     */
    public Executor reshape(Map<String, long[]> newShapes) {
        h();  // a closed executor: IllegalStateException before anything is allocated
        Map<String, NDArray> a = new LinkedHashMap<>(args);
        Map<String, NDArray> g = new LinkedHashMap<>(grads);
        List<NDArray> created = new ArrayList<>();
        try {
            for (Map.Entry<String, long[]> e : newShapes.entrySet()) {
                NDArray old = args.get(e.getKey());
                if (old == null) {
                    throw new IllegalArgumentException("reshape: '" + e.getKey() + "' is not an argument");
                }
                NDArray n = NDArray.zeros(new Shape(e.getValue()), old.dtype(), ctx).setName(e.getKey()).detach();
                created.add(n);
                a.put(e.getKey(), n);
                if (g.containsKey(e.getKey())) {
                    NDArray ng = NDArray.zeros(new Shape(e.getValue()), old.dtype(), ctx).detach();
                    created.add(ng);
                    g.put(e.getKey(), ng);
                }
            }
            Executor ex = new Executor(symbol, ctx, a, g, reqs, aux, false, options, this);
            ex.ownedExtra.addAll(created);
            return ex;
        } catch (RuntimeException e) {
            created.forEach(NDArray::close);
            throw e;
        }
    }

    // ---- monitor ------------------------------------------------------------------------------

    /**
     * Switches MXNet's executor monitor on or off (the native side of
     * {@link dev.kiln.module.Monitor}). While on, every operator output of a pass (and, with
     * {@code monitorAll}, every operator input) is copied into a snapshot arena that the executor
     * allocates once here and frees when monitoring is switched off or the executor is closed; an
     * output that nothing reads, which the plan does not compute, is computed into its snapshot,
     * as MXNet computes it. While off (the default) a pass does no extra work and holds no
     * snapshot memory. Changing the setting drops the current snapshots and closes the arrays
     * {@link #monitorEntries()} returned.
     *
     * @throws IllegalStateException if the executor is closed
     */
    public Executor setMonitor(boolean on, boolean monitorAll) {
        int mode = on ? (monitorAll ? 2 : 1) : 0;
        long h = h();
        if (mode == monitorMode) {
            return this;
        }
        dropMonitorViews();
        Native.check(KilnNative.kiln_exec_set_monitor(h, mode), "setMonitor");
        monitorMode = mode;
        return this;
    }

    /** True while the monitor is on (see {@link #setMonitor}). */
    public boolean isMonitoring() {
        return monitorMode != 0;
    }

    /** True while the monitor also snapshots operator inputs ({@code monitorAll}). */
    public boolean isMonitoringAll() {
        return monitorMode == 2;
    }

    /**
     * What the monitor saw during the last forward pass and the backward pass after it, in
     * execution order, named as MXNet's monitor callback names them: {@code fc1_output},
     * {@code act1_output}, backward nodes {@code fc1_backward_output0/1/2}; with
     * {@code monitorAll} also the inputs, {@code fc1_data}, {@code act1_input0} ..., each
     * variable input first under its own name ({@code data}). Empty while monitoring is off or
     * before the first pass with it on.
     *
     * <p>Ownership: the arrays are read-only views owned by the executor; they hold the values of
     * the last pass and are closed by the next forward/backward, by {@link #setMonitor} and by
     * {@link #close()} (copy what must outlive that). Calling this again without a pass in
     * between returns the same list.
     *
     * @throws IllegalStateException if the executor is closed
     */
    public List<Map.Entry<String, NDArray>> monitorEntries() {
        long h = h();
        if (monitorMode == 0) {
            return List.of();
        }
        if (monitorViews != null) {
            return monitorViews;
        }
        long[] out = new long[64];
        int[] n = new int[1];
        while (true) {
            String names = Native.string(KilnNative.kiln_exec_monitor_entries(h, out.length, out, n), "monitorEntries");
            if (n[0] > out.length) {
                out = new long[n[0]];
                continue;
            }
            List<Object> nameList = Json.asArray(Json.parse(names), "monitor names");
            List<Map.Entry<String, NDArray>> views = new ArrayList<>(n[0]);
            for (int i = 0; i < n[0]; i++) {
                String name = Json.asString(nameList.get(i), "monitor name");
                NDArray v = NDArray.fromHandle(out[i]).detach().setName("monitor snapshot " + name);
                views.add(new AbstractMap.SimpleImmutableEntry<>(name, v));
            }
            monitorViews = Collections.unmodifiableList(views);
            return monitorViews;
        }
    }

    private void dropMonitorViews() {
        if (monitorViews != null) {
            monitorViews.forEach(e -> e.getValue().close());
            monitorViews = null;
        }
    }

    /**
     * Arrays are bound by name, so two variables with one name cannot both get an array (MXNet's
     * bind refuses them the same way, in symbol.py's _check_arguments).
     */
    private static void checkUniqueNames(Symbol symbol) {
        for (List<String> names : List.of(symbol.listArguments(), symbol.listAuxiliaryStates())) {
            java.util.Set<String> seen = new java.util.HashSet<>();
            for (String n : names) {
                if (!seen.add(n)) {
                    throw new IllegalArgumentException("Find duplicated argument name \"" + n
                            + "\", please make the weight name non-duplicated (using name arguments), arguments are " + names);
                }
            }
        }
    }

    /** True once {@link #close()} has run. */
    public boolean isClosed() {
        return handle == 0;
    }

    /** The memory plan: planned, naive and MXNet-compatible bytes, blocks and entries. */
    public MemoryReport memoryReport() {
        return new MemoryReport(Native.string(KilnNative.kiln_exec_report(h()), "memory report"));
    }

    /** Frees the plan's memory and, for {@link #simpleBind}, the arrays. Idempotent. */
    @Override
    public void close() {
        if (handle == 0) {
            return;
        }
        outputs.forEach(NDArray::close);
        outputs.clear();
        dropMonitorViews();
        monitorMode = 0;
        Native.check(KilnNative.kiln_exec_free(handle), "executor close");
        handle = 0;
        ownedExtra.forEach(NDArray::close);
        if (ownsArrays) {
            args.values().forEach(NDArray::close);
            grads.values().forEach(NDArray::close);
            aux.values().forEach(NDArray::close);
        }
    }
}
