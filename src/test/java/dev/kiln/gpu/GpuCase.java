package dev.kiln.gpu;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.op.Ops;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One GPU consistency case: the same work run on two contexts (the CPU, the reference, and
 * {@code gpu(0)}) with the same inputs, then every result compared with per-dtype tolerances.
 *
 * <p>Three kinds:
 * <ul>
 *   <li>{@link #graph}: a symbol bound with {@code simpleBind}; forward (training or inference),
 *       backward with seeded head gradients; compares the outputs, every argument gradient and the
 *       auxiliary states after the pass. With {@link #addTo()} a second executor bound with
 *       {@code GradReq.ADD} runs forward+backward twice (the kAddTo path of every backward kernel).</li>
 *   <li>{@link #invoke}: an operator called imperatively ({@code NDArray.invoke}); compares every
 *       output and every input after the call (optimizer updates mutate their state inputs).</li>
 *   <li>{@link #custom}: a check that does its own assertions on the GPU (random ops such as
 *       Dropout, where the values cannot equal the CPU's).</li>
 * </ul>
 * Inputs are seeded uniform values in [-1, 1) (exact in float32) unless {@link #input} gives a
 * generator for a name. Every array is closed before a run returns. Immutable after building;
 * not thread-safe while being built.
 */
public final class GpuCase {
    /** Generator of one input: (element count, seed) to values. */
    public interface Gen extends BiFunction<Integer, Long, double[]> {}

    enum Kind { GRAPH, INVOKE, CUSTOM }

    private final Kind kind;
    private final String label;
    private final Set<String> covers = new LinkedHashSet<>();
    // GRAPH
    private Symbol symbol;
    private Map<String, long[]> shapes = new LinkedHashMap<>();
    // INVOKE
    private String op;
    private Map<String, ?> attrs = Map.of();
    private List<long[]> invokeShapes = List.of();
    // CUSTOM
    private Consumer<Context> custom;
    // common
    private final Map<String, Gen> gens = new LinkedHashMap<>();
    private final Map<String, DType> fixedTypes = new LinkedHashMap<>();
    private List<DType> dtypes = List.of(DType.FLOAT32, DType.FLOAT64);
    private boolean train = true;
    private boolean backward = true;
    private boolean addTo;
    private final Set<String> noGrad = new LinkedHashSet<>();
    private double rtol32 = 1e-4, atol32 = 1e-5, rtol64 = 1e-9, atol64 = 1e-11;

    private GpuCase(Kind kind, String label) {
        this.kind = kind;
        this.label = label;
    }

    /** A graph case: {@code shapes} gives the shape of every argument (and, optionally, auxiliary state) by name. */
    public static GpuCase graph(String label, Symbol symbol, Map<String, long[]> shapes) {
        GpuCase c = new GpuCase(Kind.GRAPH, label);
        c.symbol = symbol;
        c.shapes = new LinkedHashMap<>(shapes);
        c.covers.addAll(forwardOps(symbol));
        return c;
    }

    /** An imperative case: {@code op(attrs, inputs...)} with inputs of the given shapes (named in0, in1, ...). */
    public static GpuCase invoke(String label, String op, Map<String, ?> attrs, long[]... inputShapes) {
        GpuCase c = new GpuCase(Kind.INVOKE, label);
        c.op = op;
        c.attrs = attrs;
        c.invokeShapes = List.of(inputShapes);
        c.covers.add(canonical(op));
        return c;
    }

    /** A check run only on the GPU context it is given; it asserts by itself. {@code covers} names the ops. */
    public static GpuCase custom(String label, Consumer<Context> check, String... covers) {
        GpuCase c = new GpuCase(Kind.CUSTOM, label);
        c.custom = check;
        for (String o : covers) {
            c.covers.add(canonical(o));
        }
        return c;
    }

    // ---- input generators ------------------------------------------------------------------------

    /** Seeded values uniform in [lo, hi), each exact in float32. */
    public static Gen uniform(double lo, double hi) {
        return seeded(r -> (float) (lo + (hi - lo) * r.nextDouble()));
    }

    /** Seeded integers uniform in [lo, hi), as doubles (indices, class labels). */
    public static Gen ints(int lo, int hi) {
        return seeded(r -> lo + r.nextInt(hi - lo));
    }

    /** n values drawn one after the other from a Random seeded with the case's seed. */
    private static Gen seeded(java.util.function.ToDoubleFunction<Random> draw) {
        return (n, seed) -> {
            Random r = new Random(seed);
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = draw.applyAsDouble(r);
            }
            return v;
        };
    }

    // ---- options -----------------------------------------------------------------------------

    /** Values of input {@code name} (an argument, auxiliary state, or in0.. for invoke cases). */
    public GpuCase input(String name, Gen gen) {
        gens.put(name, gen);
        return this;
    }

    /** Fixed values of input {@code name}. */
    public GpuCase input(String name, double... values) {
        gens.put(name, (n, s) -> {
            if (values.length != n) {
                throw new IllegalArgumentException(label + ": input " + name + " needs " + n + " values, " + values.length + " given");
            }
            return values.clone();
        });
        return this;
    }

    /** Input {@code name} keeps this dtype whatever the case's dtype (e.g. int32 indices). */
    public GpuCase type(String name, DType t) {
        fixedTypes.put(name, t);
        return this;
    }

    /** The dtypes to run (default float32 and float64). */
    public GpuCase dtypes(DType... t) {
        dtypes = List.of(t);
        return this;
    }

    /** Inference forward (is_train = false) and no backward. */
    public GpuCase inference() {
        train = false;
        backward = false;
        return this;
    }

    /** Training forward without a backward pass. */
    public GpuCase forwardOnly() {
        backward = false;
        return this;
    }

    /** Also run with every gradient request ADD, forward+backward twice. */
    public GpuCase addTo() {
        addTo = true;
        return this;
    }

    /** Arguments bound with GradReq.NULL (indices, labels that have no gradient). */
    public GpuCase noGrad(String... names) {
        noGrad.addAll(List.of(names));
        return this;
    }

    /** Tolerances (relative, absolute) for float32 and float64. */
    public GpuCase tol(double rtol32, double atol32, double rtol64, double atol64) {
        this.rtol32 = rtol32;
        this.atol32 = atol32;
        this.rtol64 = rtol64;
        this.atol64 = atol64;
        return this;
    }

    /** Also counts as covering these operators (e.g. aliases or ops reached through a backward). */
    public GpuCase covers(String... ops) {
        for (String o : ops) {
            covers.add(canonical(o));
        }
        return this;
    }

    // ---- queries -----------------------------------------------------------------------------

    /** The case's label, as shown in test names. */
    public String label() {
        return label;
    }

    /** Canonical names of the forward operators the case exercises. */
    public Set<String> covered() {
        return covers;
    }

    /** True for a custom case (runs on the GPU only). */
    public boolean isCustom() {
        return kind == Kind.CUSTOM;
    }

    // ---- running -------------------------------------------------------------------------------

    /**
     * Runs the case on {@code ref} and on {@code test} and asserts that every result agrees; for a
     * custom case runs its check on {@code test}.
     */
    public void check(Context ref, Context test) {
        if (kind == Kind.CUSTOM) {
            custom.accept(test);
            return;
        }
        for (DType t : dtypes) {
            Map<String, double[]> a = run(ref, t);
            Map<String, double[]> b = run(test, t);
            if (!a.keySet().equals(b.keySet())) {
                throw new AssertionError(label + " " + t + ": results " + a.keySet() + " vs " + b.keySet());
            }
            double rtol = t == DType.FLOAT64 ? rtol64 : rtol32;
            double atol = t == DType.FLOAT64 ? atol64 : atol32;
            for (String k : a.keySet()) {
                GradCheck.assertClose(a.get(k), b.get(k), rtol, atol, label + " " + t + " " + k + " (" + ref + " vs " + test + ")");
            }
        }
    }

    /** Every result of one run on {@code ctx} in dtype {@code t}, by name, as float64. */
    public Map<String, double[]> run(Context ctx, DType t) {
        return run(ctx, t, null);
    }

    /**
     * As {@link #run(Context, DType)}, with every input value (arguments, auxiliary states, head
     * gradients; not inputs of a fixed type) first rounded through {@code through} when it is not
     * null: a float32 run on exactly the values a float16 run sees.
     */
    public Map<String, double[]> run(Context ctx, DType t, DType through) {
        return kind == Kind.GRAPH ? runGraph(ctx, t, through) : runInvoke(ctx, t, through);
    }

    /** True when the case runs in dtype {@code t} by default. */
    public boolean runsIn(DType t) {
        return dtypes.contains(t);
    }

    /** v rounded to the nearest values of {@code through} (null: unchanged). */
    private static double[] roundThrough(double[] v, DType through) {
        if (through == null) {
            return v;
        }
        try (NDArray d = NDArray.create(v, v.length); NDArray r = d.asType(through)) {
            return r.toDoubleArray();
        }
    }

    private double[] values(String name, long[] shape, int salt) {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        long seed = (label + "/" + name).hashCode() * 31L + salt;
        Gen g = gens.get(name);
        if (g != null) {
            return g.apply(n, seed);
        }
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (2 * r.nextDouble() - 1);
        }
        return v;
    }

    private static double[] toHost(NDArray a) {
        try (NDArray h = a.copyTo(Context.cpu())) {
            return h.toDoubleArray();
        }
    }

    private Map<String, double[]> runGraph(Context ctx, DType t, DType through) {
        Map<String, double[]> out = new LinkedHashMap<>();
        runGraphOnce(ctx, t, through, GradReq.WRITE, 1, out, "");
        if (addTo && backward) {
            runGraphOnce(ctx, t, through, GradReq.ADD, 2, out, "add:");
        }
        return out;
    }

    private void runGraphOnce(Context ctx, DType t, DType through, GradReq req, int passes, Map<String, double[]> out,
            String prefix) {
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, long[]> argShapes = new LinkedHashMap<>();
        List<String> args = symbol.listArguments();
        for (String a : args) {
            reqs.put(a, backward && !noGrad.contains(a) ? req : GradReq.NULL);
        }
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            if (args.contains(e.getKey())) {
                argShapes.put(e.getKey(), e.getValue());
                types.put(e.getKey(), fixedTypes.getOrDefault(e.getKey(), t));
            }
        }
        try (Executor ex = Executor.simpleBind(symbol, ctx, argShapes, types, reqs, new Executor.Options())) {
            for (Map.Entry<String, NDArray> e : ex.argDict().entrySet()) {
                NDArray a = e.getValue();
                double[] v = values(e.getKey(), a.shape().dims(), 0);
                setFromHost(a, fixedTypes.containsKey(e.getKey()) ? v : roundThrough(v, through));
            }
            for (Map.Entry<String, NDArray> e : ex.auxDict().entrySet()) {
                NDArray a = e.getValue();
                setFromHost(a, roundThrough(values(e.getKey(), a.shape().dims(), 0), through));
            }
            for (int p = 0; p < passes; p++) {
                ex.forward(train);
                if (backward) {
                    List<NDArray> heads = new ArrayList<>();
                    try {
                        int i = 0;
                        for (NDArray o : ex.outputs()) {
                            NDArray h = NDArray.zeros(o.shape(), o.dtype(), ctx).detach();
                            heads.add(h);
                            setFromHost(h, roundThrough(values("head" + i++, o.shape().dims(), 0), through));
                        }
                        ex.backward(heads.toArray(new NDArray[0]));
                    } finally {
                        heads.forEach(NDArray::close);
                    }
                }
            }
            int i = 0;
            for (NDArray o : ex.outputs()) {
                out.put(prefix + "out" + i++, toHost(o));
            }
            if (backward) {
                for (Map.Entry<String, NDArray> g : ex.gradDict().entrySet()) {
                    if (g.getValue() != null && reqs.get(g.getKey()) != GradReq.NULL) {
                        out.put(prefix + "d" + g.getKey(), toHost(g.getValue()));
                    }
                }
            }
            for (Map.Entry<String, NDArray> e : ex.auxDict().entrySet()) {
                out.put(prefix + "aux:" + e.getKey(), toHost(e.getValue()));
            }
        }
    }

    private static void setFromHost(NDArray dst, double[] v) {
        try (NDArray h = NDArray.create(v, dst.shape().dims()); NDArray c = h.asType(dst.dtype())) {
            c.copyTo(dst);
        }
    }

    private Map<String, double[]> runInvoke(Context ctx, DType t, DType through) {
        Map<String, double[]> out = new LinkedHashMap<>();
        List<NDArray> ins = new ArrayList<>();
        List<NDArray> outs = List.of();
        try {
            for (int i = 0; i < invokeShapes.size(); i++) {
                String name = "in" + i;
                NDArray a = NDArray.zeros(new dev.kiln.ndarray.Shape(invokeShapes.get(i)), fixedTypes.getOrDefault(name, t), ctx).detach();
                ins.add(a);
                double[] v = values(name, invokeShapes.get(i), 0);
                setFromHost(a, fixedTypes.containsKey(name) ? v : roundThrough(v, through));
            }
            outs = NDArray.invoke(op, attrs, ins.toArray(new NDArray[0]));
            for (int i = 0; i < outs.size(); i++) {
                outs.get(i).detach();
                out.put("out" + i, toHost(outs.get(i)));
            }
            for (int i = 0; i < ins.size(); i++) {
                out.put("in" + i + " after", toHost(ins.get(i)));
            }
        } finally {
            ins.forEach(NDArray::close);
            outs.forEach(NDArray::close);
        }
        return out;
    }

    // ---- operator names --------------------------------------------------------------------------

    private static final Pattern OP = Pattern.compile("\"op\"\\s*:\\s*\"([^\"]+)\"");

    /** Canonical names of the operators in a symbol's graph (variables excluded). */
    static Set<String> forwardOps(Symbol s) {
        Set<String> ops = new LinkedHashSet<>();
        Matcher m = OP.matcher(s.toJson());
        while (m.find()) {
            if (!"null".equals(m.group(1))) {
                ops.add(canonical(m.group(1)));
            }
        }
        return ops;
    }

    /** The registry's canonical name of an operator or alias. */
    static String canonical(String op) {
        return Ops.info(op).name();
    }

    @Override
    public String toString() {
        return label;
    }
}
