package dev.kiln.optimizer;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.lr.LRScheduler;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The base of all optimizers, MXNet 1.9's {@code mx.optimizer.Optimizer} (module-api spec §5.1).
 *
 * <p><b>Learning rate.</b> Without a scheduler the rate is {@code learning_rate} (the class
 * default, 0.01 for the base, when not given). With a scheduler {@link #learningRate()} is the
 * scheduler's value at {@link #numUpdate()}; an explicitly given {@code learning_rate} that
 * differs from the scheduler's base rate overwrites it (with a warning), and {@link
 * #setLearningRate(double)} is refused.
 *
 * <p><b>Per-parameter multipliers.</b> Parameters are identified by an index: an {@link Integer}
 * ({@code param_index * num_devices + device} for local updates) or a {@link String} (the
 * parameter name, for updates on a kvstore). The effective rate of index {@code i} is the base
 * rate times {@code lr_mult[i]} if present, else {@code lr_mult[idx2name[i]]} (default 1); weight
 * decay likewise with {@code wd} and {@code wd_mult}. {@code lr_mult} is rebuilt by {@link
 * #setLrMult} from the {@code __lr_mult__} attributes of the symbol's arguments, then overlaid
 * with the given map. {@code wd_mult} is rebuilt by {@link #setWdMult}: 0 for every name in
 * {@code idx2name} that ends neither in {@code _weight} nor in {@code _gamma}, then the symbol's
 * {@code __wd_mult__} attributes, then the given map.
 *
 * <p><b>Update counting.</b> Each device has its own table of per-index counts; an index starts
 * at {@code begin_num_update} and is incremented before its learning rate is read, so the first
 * update sees {@code num_update = 1} and bias corrections start at {@code t = 1}; {@code
 * num_update} is the maximum count seen.
 *
 * <p><b>Multi-precision.</b> With {@code multi_precision} a float16 weight is updated through a
 * float32 master copy: the state is {@code (weight32, inner_state)} (SGD and NAG use {@code
 * (inner_state, weight32)}, as MXNet does), the gradient is cast to float32, the master copy is
 * updated and cast back into the weight.
 *
 * <p><b>Native updates.</b> A subclass expresses one parameter's update in {@link #update} as
 * calls of registered native operators added to an {@link UpdateStep}; the {@link Updater} runs
 * the calls of all parameters of one step in one native call ({@link FusedUpdate}).
 *
 * <p>Ownership: an optimizer owns no native memory; states are created by {@link
 * #createStateMultiPrecision} for the {@link Updater}, which owns them.
 *
 * <p>Thread-safety: not thread-safe (counters, scheduler); use from one thread at a time.
 */
public abstract class Optimizer {
    private static final Logger LOG = LoggerFactory.getLogger(Optimizer.class);

    /** The registry name, e.g. {@code "sgd"}. */
    private final String name;
    /** Gradient multiplier. */
    protected double rescaleGrad;
    /** The fixed learning rate, or null when a scheduler provides it. */
    protected Double lr;
    /** The scheduler, or null. */
    protected LRScheduler lrScheduler;
    /** Weight decay. */
    protected double wd;
    /** Gradient clipping bound, null = none. */
    protected Double clipGradient;
    /** Whether float16 weights are updated through float32 master copies. */
    protected boolean multiPrecision;
    private long beginNumUpdate;
    private long numUpdate;
    private final Map<Integer, Map<Object, Long>> allIndexUpdateCounts = new LinkedHashMap<>();
    private Map<Object, Long> indexUpdateCount;
    private Map<Object, String> idx2name = new LinkedHashMap<>();
    /** The symbol's attribute dict and argument names ({@code sym_info}), or null. */
    private Map<String, Map<String, String>> symAttrs;
    private List<String> symArgs;
    private Map<Object, Double> lrMult = new LinkedHashMap<>();
    private Map<Object, Double> wdMult = new LinkedHashMap<>();

    /**
     * Parses the base-class parameters ({@code rescale_grad, param_idx2name, wd, clip_gradient,
     * learning_rate, lr_scheduler, sym, begin_num_update, multi_precision}) from {@code p}.
     *
     * @param p the parameters; the subclass reads its own and then calls {@link Params#finish()}
     * @param defaultLearningRate the class default of {@code learning_rate}, used when neither a
     *     rate nor a scheduler is given
     * @throws IllegalArgumentException for a parameter of the wrong type
     */
    protected Optimizer(Params p, double defaultLearningRate) {
        this.name = p.optimizerName();
        this.rescaleGrad = p.dbl("rescale_grad", 1.0);
        this.wd = p.dbl("wd", 0.0);
        this.clipGradient = p.nullableDbl("clip_gradient");
        Double givenLr = p.nullableDbl("learning_rate");
        this.lrScheduler = p.scheduler("lr_scheduler");
        if (lrScheduler == null) {
            this.lr = givenLr == null ? defaultLearningRate : givenLr;
        } else {
            this.lr = givenLr;
            if (givenLr != null && lrScheduler.baseLr() != givenLr) {
                LOG.warn("learning rate from ``lr_scheduler`` has been overwritten by ``learning_rate`` in optimizer "
                        + "({} -> {})", lrScheduler.baseLr(), givenLr);
                lrScheduler.setBaseLr(givenLr);
            }
        }
        this.beginNumUpdate = p.lng("begin_num_update", 0);
        this.numUpdate = beginNumUpdate;
        this.indexUpdateCount = new LinkedHashMap<>();
        allIndexUpdateCounts.put(0, indexUpdateCount);
        this.multiPrecision = p.bool("multi_precision", false);
        Map<Object, String> i2n = p.idx2name("param_idx2name");
        if (i2n != null) {
            this.idx2name = i2n;
        }
        Symbol sym = p.symbol("sym");
        if (sym != null) {
            this.symAttrs = deepCopy(sym.attrDict());
            this.symArgs = List.copyOf(sym.listArguments());
        }
        setLrMult(Map.of());
        setWdMult(Map.of());
    }

    private static Map<String, Map<String, String>> deepCopy(Map<String, Map<String, String>> m) {
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        m.forEach((k, v) -> out.put(k, Collections.unmodifiableMap(new LinkedHashMap<>(v))));
        return out;
    }

    // =========================================================================================
    // What subclasses implement
    // =========================================================================================

    /**
     * Creates the state of one parameter: null, an {@link NDArray}, or a tuple ({@link #tuple})
     * of states. New arrays must be zero-initialised like {@code weight} (same shape, device).
     *
     * @param index the parameter index
     * @param weight the weight (not owned)
     * @return the state; its arrays become owned by the caller
     */
    protected abstract Object createState(Object index, NDArray weight);

    /**
     * Adds the native op calls that update one parameter to {@code step}. The update count of
     * {@code index} has already been incremented; read {@link #lr(Object)}, {@link #wd(Object)}
     * and {@link #updateCount(Object)} here.
     *
     * @param step the step being recorded
     * @param index the parameter index
     * @param weight the weight, updated in place
     * @param grad the gradient
     * @param state the state from {@link #createState}
     */
    protected abstract void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state);

    /**
     * Python attribute names and values of the subclass's hyper-parameters, as in the MXNet
     * object's {@code __dict__} (used to pickle the optimizer and by {@link #toString()}).
     *
     * @param out the map to fill
     */
    protected abstract void writeFields(Map<String, Object> out);

    /**
     * Restores the subclass's hyper-parameters from an MXNet object's {@code __dict__} (the
     * inverse of {@link #writeFields}); missing keys keep their current values.
     *
     * @param in the attributes
     * @throws IllegalArgumentException for a value of the wrong type
     */
    protected abstract void readFields(Map<String, Object> in);

    /**
     * The maximum number of parameters MXNet updates in one aggregated (multi-tensor) call, 0
     * when the optimizer does not aggregate. For aggregating optimizers the {@link Updater}
     * groups the parameters by weight dtype and, per group of at most this many, increments every
     * count before reading the learning rates (MXNet's order); otherwise each parameter is
     * counted right before its update.
     *
     * @return the aggregation size, {@code >= 0}
     */
    protected int aggregateNum() {
        return 0;
    }

    /**
     * Creates the state, adding a float32 master copy for a float16 weight when {@code
     * multi_precision} is on: {@code (weight32, createState(weight32))}.
     *
     * @param index the parameter index
     * @param weight the weight
     * @return the state (arrays owned by the caller)
     */
    protected Object createStateMultiPrecision(Object index, NDArray weight) {
        return createStateMultiPrecision(index, weight, true);
    }

    /**
     * {@link #createStateMultiPrecision(Object, NDArray)} with the order of the pair chosen: SGD
     * and NAG put the master copy last, {@code (createState(weight32), weight32)}.
     *
     * @param index the parameter index
     * @param weight the weight
     * @param masterFirst whether the master copy comes first in the pair
     * @return the state (arrays owned by the caller)
     */
    final Object createStateMultiPrecision(Object index, NDArray weight, boolean masterFirst) {
        if (multiPrecision && weight.dtype().isLowPrecision()) {
            NDArray w32 = weight.asType(DType.FLOAT32);
            try {
                Object inner = createState(index, w32);
                return masterFirst ? tuple(w32, inner) : tuple(inner, w32);
            } catch (RuntimeException e) {
                w32.close();
                throw e;
            }
        }
        if (weight.dtype().isLowPrecision()) {
            warnFloat16();
        }
        return createState(index, weight);
    }

    /** Logs MXNet's warning about float16 accumulation without multi-precision. */
    protected void warnFloat16() {
        LOG.warn("Accumulating with float16 in optimizer can lead to poor accuracy or slow convergence. "
                + "Consider using multi_precision=True option of the optimizer");
    }

    /**
     * Records the update of one parameter, through the float32 master copy for a float16 weight
     * with {@code multi_precision}: {@code g32 = Cast(grad)}, {@link #update} on the master copy,
     * {@code weight = Cast(w32)}.
     *
     * @param step the step
     * @param index the parameter index
     * @param weight the weight
     * @param grad the gradient
     * @param state the state from {@link #createStateMultiPrecision}
     */
    protected void updateMultiPrecision(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        if (multiPrecision && weight.dtype().isLowPrecision()) {
            List<?> st = (List<?>) state;
            NDArray w32 = (NDArray) st.get(0);
            NDArray g32 = step.scratch(grad.shape(), DType.FLOAT32, grad.context());
            step.add("Cast", attrs("dtype", "float32"), List.of(grad), List.of(g32));
            update(step, index, w32, g32, st.get(1));
            step.add("Cast", attrs("dtype", weight.dtype().mxName()), List.of(w32), List.of(weight));
        } else {
            update(step, index, weight, grad, state);
        }
    }

    /**
     * Records one step for several parameters (see {@link #aggregateNum()} for the order of
     * counting). Called by the {@link Updater} after {@link #setCurrentContext(int)}.
     */
    final void step(UpdateStep s, List<Object> keys, List<NDArray> weights, List<NDArray> grads, List<Object> states) {
        int agg = aggregateNum();
        if (agg <= 0) {
            for (int i = 0; i < keys.size(); i++) {
                countUpdate(keys.get(i));
                updateMultiPrecision(s, keys.get(i), weights.get(i), grads.get(i), states.get(i));
            }
            return;
        }
        Map<DType, List<Integer>> byType = new LinkedHashMap<>();
        for (int i = 0; i < keys.size(); i++) {
            byType.computeIfAbsent(weights.get(i).dtype(), t -> new ArrayList<>()).add(i);
        }
        for (List<Integer> group : byType.values()) {
            for (int start = 0; start < group.size(); start += agg) {
                List<Integer> chunk = group.subList(start, Math.min(group.size(), start + agg));
                for (int i : chunk) {
                    countUpdate(keys.get(i));
                }
                for (int i : chunk) {
                    updateMultiPrecision(s, keys.get(i), weights.get(i), grads.get(i), states.get(i));
                }
            }
        }
    }

    // =========================================================================================
    // Helpers for subclasses
    // =========================================================================================

    /**
     * A Python tuple of states (an unmodifiable list that may hold nulls).
     *
     * @param items the elements
     * @return the tuple
     */
    protected static List<Object> tuple(Object... items) {
        return Collections.unmodifiableList(new ArrayList<>(Arrays.asList(items)));
    }

    /**
     * An ordered attribute map from alternating keys and values ({@link Number} values become
     * dynamic attributes of the fused update, others static).
     *
     * @param kv key, value, key, value, ...
     * @return a new mutable map
     */
    protected static Map<String, Object> attrs(Object... kv) {
        if (kv.length % 2 != 0) {
            throw new IllegalArgumentException("attrs needs key/value pairs");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    /**
     * A zero array like {@code w} (same shape, dtype and device).
     *
     * @param w the template
     * @return a new array owned by the caller
     */
    protected static NDArray zerosLike(NDArray w) {
        return NDArray.zeros(w.shape(), w.dtype(), w.context());
    }

    /**
     * A tuple of {@code n} zero arrays like {@code w} (the usual optimizer state); if one cannot
     * be created, those already created are closed.
     *
     * @param w the template
     * @param n how many arrays
     * @return the tuple, its arrays owned by the caller
     */
    protected static List<Object> zerosTuple(NDArray w, int n) {
        List<NDArray> made = new ArrayList<>(n);
        try {
            for (int i = 0; i < n; i++) {
                made.add(zerosLike(w));
            }
        } catch (RuntimeException e) {
            made.forEach(NDArray::close);
            throw e;
        }
        return tuple(made.toArray());
    }

    /**
     * The inputs of an update operator: the weight, the gradient, then the state's arrays (the
     * state itself when it is an array, a tuple's arrays in order, null entries left out).
     *
     * @param weight the weight
     * @param grad the gradient
     * @param state null, an NDArray or a tuple of NDArrays (or nulls)
     * @return the input list
     */
    protected static List<NDArray> stateInputs(NDArray weight, NDArray grad, Object state) {
        List<NDArray> in = new ArrayList<>(List.of(weight, grad));
        if (state instanceof NDArray a) {
            in.add(a);
        } else if (state instanceof List<?> l) {
            for (Object o : l) {
                if (o != null) {
                    in.add((NDArray) o);
                }
            }
        }
        return in;
    }

    /**
     * The clipping bound for "kernel" optimizers, which pass {@code clip_gradient} to the
     * operator only when it is truthy (so null and 0 mean no clipping): the bound, or -1 (the
     * operators' "off").
     *
     * @return the value of the operator's {@code clip_gradient}
     */
    protected double kernelClip() {
        return clipGradient != null && clipGradient != 0.0 ? clipGradient : -1.0;
    }

    /**
     * The clipping bound for the optimizers MXNet implements in Python, which clip whenever
     * {@code clip_gradient is not None} (so 0 clips every gradient to 0). A negative bound turns
     * clipping off (MXNet would call {@code clip(g, -c, c)} with an empty range).
     *
     * @return the bound, or -1 for none
     */
    protected double pythonClip() {
        return clipGradient != null && clipGradient >= 0 ? clipGradient : -1.0;
    }

    /** Normalises an index or multiplier key: Integer (from any integral number) or String. */
    static Object normKey(Object k, String what) {
        if (k instanceof Integer || k instanceof String) {
            return k;
        }
        if (k instanceof Long || k instanceof Short || k instanceof Byte) {
            long v = ((Number) k).longValue();
            if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(what + " " + v + " is out of the int range");
            }
            return (int) v;
        }
        if (k instanceof byte[] b) {
            return new String(b, java.nio.charset.StandardCharsets.UTF_8);
        }
        throw new IllegalArgumentException(what + " must be an Integer or a String, got "
                + (k == null ? "null" : k.getClass().getSimpleName() + " " + k));
    }

    // =========================================================================================
    // Public API (MXNet base-class semantics)
    // =========================================================================================

    /** @return the registry name, e.g. {@code "sgd"} */
    public String name() {
        return name;
    }

    /** @return the gradient multiplier ({@code rescale_grad}) */
    public double rescaleGrad() {
        return rescaleGrad;
    }

    /**
     * Sets the gradient multiplier (Module sets {@code 1/batch_size}).
     *
     * @param r the multiplier
     */
    public void setRescaleGrad(double r) {
        this.rescaleGrad = r;
    }

    /** @return the weight decay */
    public double wd() {
        return wd;
    }

    /** @param wd the new weight decay */
    public void setWd(double wd) {
        this.wd = wd;
    }

    /** @return the gradient clipping bound, or null for none */
    public Double clipGradient() {
        return clipGradient;
    }

    /** @param c the gradient clipping bound, null for none */
    public void setClipGradient(Double c) {
        this.clipGradient = c;
    }

    /** @return whether float16 weights get float32 master copies */
    public boolean multiPrecision() {
        return multiPrecision;
    }

    /** @return the scheduler, or null */
    public LRScheduler lrScheduler() {
        return lrScheduler;
    }

    /**
     * The current learning rate: the scheduler's value at {@link #numUpdate()} (which may change
     * a stateful scheduler, as in MXNet) or the fixed rate.
     *
     * @return the base learning rate, before per-parameter multipliers
     */
    public double learningRate() {
        if (lrScheduler != null) {
            return lrScheduler.get(numUpdate);
        }
        return lr;
    }

    /**
     * Sets the fixed learning rate.
     *
     * @param lr the new rate
     * @throws IllegalStateException when a scheduler is defined (MXNet raises UserWarning)
     */
    public void setLearningRate(double lr) {
        if (lrScheduler != null) {
            throw new IllegalStateException("LRScheduler of the optimizer has already been defined. Note that "
                    + "set_learning_rate can mutate the value of the learning rate of the optimizer only when the "
                    + "LRScheduler of the optimizer is undefined.");
        }
        this.lr = lr;
    }

    /** @return the count new indices start from */
    public long beginNumUpdate() {
        return beginNumUpdate;
    }

    /** @return the largest update count seen (the scheduler's argument) */
    public long numUpdate() {
        return numUpdate;
    }

    /**
     * The update count of an index on the current device (its {@code t}).
     *
     * @param index the parameter index
     * @return the count, or {@link #beginNumUpdate()} if it was never updated
     */
    public long updateCount(Object index) {
        Long c = indexUpdateCount.get(normKey(index, "index"));
        return c == null ? beginNumUpdate : c;
    }

    /**
     * Selects the per-device table of update counts (the {@link Updater} calls this with the
     * device id of the first weight of each call).
     *
     * @param deviceId the device id
     */
    public void setCurrentContext(int deviceId) {
        indexUpdateCount = allIndexUpdateCounts.computeIfAbsent(deviceId, d -> new LinkedHashMap<>());
    }

    /**
     * Increments the update count of an index (MXNet's {@code _update_count}); a new index starts
     * at {@link #beginNumUpdate()}. {@link #numUpdate()} becomes the maximum count.
     *
     * @param index the parameter index
     */
    public void countUpdate(Object index) {
        Object k = normKey(index, "index");
        long c = indexUpdateCount.getOrDefault(k, beginNumUpdate) + 1;
        indexUpdateCount.put(k, c);
        numUpdate = Math.max(c, numUpdate);
    }

    /**
     * The effective learning rate of an index (base rate times its multiplier).
     *
     * @param index the parameter index
     * @return the rate
     */
    public double lr(Object index) {
        double base = learningRate();
        Object k = normKey(index, "index");
        Double m = lrMult.get(k);
        if (m != null) {
            return base * m;
        }
        String n = idx2name.get(k);
        if (n != null) {
            return base * lrMult.getOrDefault(n, 1.0);
        }
        return base;
    }

    /**
     * The effective weight decay of an index ({@code wd} times its multiplier).
     *
     * @param index the parameter index
     * @return the weight decay
     */
    public double wd(Object index) {
        Object k = normKey(index, "index");
        Double m = wdMult.get(k);
        if (m != null) {
            return wd * m;
        }
        String n = idx2name.get(k);
        if (n != null) {
            return wd * wdMult.getOrDefault(n, 1.0);
        }
        return wd;
    }

    /** @return an unmodifiable view of index -> parameter name */
    public Map<Object, String> idx2name() {
        return Collections.unmodifiableMap(idx2name);
    }

    /**
     * Replaces index -> name and recomputes the default multipliers (the {@code lr_mult} and
     * {@code wd_mult} overrides given earlier are dropped, as when MXNet builds the optimizer).
     *
     * @param m indices (Integer, or String) to names; copied
     */
    public void setIdx2Name(Map<Object, String> m) {
        setIdx2Name(m, true);
    }

    /**
     * Replaces index -> name, optionally without touching the multipliers. MXNet's Module does
     * the latter for an optimizer object the user built ({@code optimizer.idx2name =
     * idx2name.copy()}), so such an optimizer keeps weight decay on biases.
     *
     * @param m indices (Integer, or String) to names; copied
     * @param recomputeMultipliers whether to rebuild {@code lr_mult} and {@code wd_mult} (see
     *     {@link #setIdx2Name(Map)})
     */
    public void setIdx2Name(Map<Object, String> m, boolean recomputeMultipliers) {
        Map<Object, String> copy = new LinkedHashMap<>();
        if (m != null) {
            m.forEach((k, v) -> copy.put(normKey(k, "param_idx2name key"), Objects.requireNonNull(v, "param name")));
        }
        this.idx2name = copy;
        if (recomputeMultipliers) {
            setLrMult(Map.of());
            setWdMult(Map.of());
        }
    }

    /** @return an unmodifiable view of the learning-rate multipliers (keys names or indices) */
    public Map<Object, Double> lrMult() {
        return Collections.unmodifiableMap(lrMult);
    }

    /** @return an unmodifiable view of the weight-decay multipliers (keys names or indices) */
    public Map<Object, Double> wdMult() {
        return Collections.unmodifiableMap(wdMult);
    }

    /**
     * Rebuilds the learning-rate multipliers: the {@code __lr_mult__} attributes of the symbol's
     * arguments, overlaid with {@code m}.
     *
     * @param m multipliers by parameter name or index
     * @throws IllegalArgumentException for a symbol attribute that is not a number
     */
    public void setLrMult(Map<Object, Double> m) {
        Map<Object, Double> out = new LinkedHashMap<>();
        fromSymbol(out, "__lr_mult__");
        overlay(out, m);
        this.lrMult = out;
    }

    /**
     * Rebuilds the weight-decay multipliers: 0 for every name in {@code idx2name} ending neither
     * in {@code _weight} nor in {@code _gamma}, then the symbol's {@code __wd_mult__} attributes,
     * then {@code m}.
     *
     * @param m multipliers by parameter name or index
     * @throws IllegalArgumentException for a symbol attribute that is not a number
     */
    public void setWdMult(Map<Object, Double> m) {
        Map<Object, Double> out = new LinkedHashMap<>();
        for (String n : idx2name.values()) {
            if (!(n.endsWith("_weight") || n.endsWith("_gamma"))) {
                out.put(n, 0.0);
            }
        }
        fromSymbol(out, "__wd_mult__");
        overlay(out, m);
        this.wdMult = out;
    }

    private void fromSymbol(Map<Object, Double> out, String attr) {
        if (symArgs == null) {
            return;
        }
        for (String a : symArgs) {
            Map<String, String> at = symAttrs.get(a);
            if (at != null && at.containsKey(attr)) {
                try {
                    out.put(a, Double.parseDouble(at.get(attr).trim()));
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("argument " + a + ": " + attr + " '" + at.get(attr)
                            + "' is not a number");
                }
            }
        }
    }

    private static void overlay(Map<Object, Double> out, Map<Object, Double> m) {
        if (m != null) {
            m.forEach((k, v) -> out.put(normKey(k, "multiplier key"), Objects.requireNonNull(v, "multiplier of " + k)));
        }
    }

    // =========================================================================================
    // Pickling support (MXNet object __dict__)
    // =========================================================================================

    /**
     * The MXNet Python class name under {@code mxnet.optimizer.optimizer}, used when the optimizer
     * is pickled with its states.
     *
     * @return e.g. {@code "SGD"}
     */
    protected abstract String pythonClassName();

    /** The whole {@code __dict__} of the MXNet object (base fields, then the subclass's). */
    final Map<String, Object> pythonDict() {
        Map<String, Object> d = new LinkedHashMap<>();
        d.put("rescale_grad", rescaleGrad);
        d.put("lr_scheduler", lrScheduler == null ? null : SchedulerPickle.toPython(lrScheduler));
        d.put("lr", lr);
        d.put("wd", wd);
        d.put("lr_mult", new LinkedHashMap<>(lrMult));
        d.put("wd_mult", new LinkedHashMap<>(wdMult));
        d.put("begin_num_update", beginNumUpdate);
        d.put("num_update", numUpdate);
        Map<Object, Object> all = new LinkedHashMap<>();
        Map<Object, Object> current = null;
        for (Map.Entry<Integer, Map<Object, Long>> e : allIndexUpdateCounts.entrySet()) {
            Map<Object, Object> t = new LinkedHashMap<>(e.getValue());
            all.put(e.getKey(), t);
            if (e.getValue() == indexUpdateCount) {
                current = t;
            }
        }
        d.put("_all_index_update_counts", all);
        d.put("_index_update_count", current);
        d.put("clip_gradient", clipGradient);
        d.put("multi_precision", multiPrecision);
        d.put("aggregate_num", aggregateNum());
        d.put("idx2name", new LinkedHashMap<>(idx2name));
        if (symArgs == null) {
            d.put("sym_info", Pickle.Tuple.of());
        } else {
            Map<Object, Object> at = new LinkedHashMap<>();
            symAttrs.forEach((k, v) -> at.put(k, new LinkedHashMap<>(v)));
            d.put("sym_info", Pickle.Tuple.of(at, new ArrayList<>(symArgs)));
        }
        d.put("allow_np_array", false);
        writeFields(d);
        return d;
    }

    /** Restores base and subclass fields from an MXNet object's {@code __dict__}. */
    final void readPythonDict(Map<String, Object> d) {
        rescaleGrad = PyValues.dbl(d, "rescale_grad", rescaleGrad);
        wd = PyValues.dbl(d, "wd", wd);
        lr = PyValues.nullableDbl(d, "lr", lr);
        if (d.containsKey("lr_scheduler")) {
            lrScheduler = d.get("lr_scheduler") == null ? null : SchedulerPickle.fromPython(d.get("lr_scheduler"));
        }
        if (lr == null && lrScheduler == null) {
            throw new IllegalArgumentException("pickled optimizer has neither lr nor lr_scheduler");
        }
        clipGradient = PyValues.nullableDbl(d, "clip_gradient", clipGradient);
        multiPrecision = PyValues.bool(d, "multi_precision", multiPrecision);
        beginNumUpdate = PyValues.lng(d, "begin_num_update", beginNumUpdate);
        numUpdate = PyValues.lng(d, "num_update", numUpdate);
        if (d.get("_all_index_update_counts") instanceof Map<?, ?> all) {
            allIndexUpdateCounts.clear();
            Object current = d.get("_index_update_count");
            indexUpdateCount = null;
            for (Map.Entry<?, ?> e : all.entrySet()) {
                int dev = (int) PyValues.lng(e.getKey(), "device id");
                Map<Object, Long> t = new LinkedHashMap<>();
                if (!(e.getValue() instanceof Map<?, ?> m)) {
                    throw new IllegalArgumentException("_all_index_update_counts[" + dev + "] is not a dict");
                }
                m.forEach((k, v) -> t.put(normKey(PyValues.key(k), "index"), PyValues.lng(v, "update count")));
                allIndexUpdateCounts.put(dev, t);
                if (e.getValue() == current) {
                    indexUpdateCount = t;
                }
            }
            if (indexUpdateCount == null) {
                indexUpdateCount = allIndexUpdateCounts.computeIfAbsent(0, k -> new LinkedHashMap<>());
            }
        } else if (d.get("_index_update_count") instanceof Map<?, ?> m) {
            // MXNet before 1.6: one table
            allIndexUpdateCounts.clear();
            Map<Object, Long> t = new LinkedHashMap<>();
            m.forEach((k, v) -> t.put(normKey(PyValues.key(k), "index"), PyValues.lng(v, "update count")));
            allIndexUpdateCounts.put(0, t);
            indexUpdateCount = t;
        }
        if (d.get("idx2name") instanceof Map<?, ?> m) {
            Map<Object, String> i2n = new LinkedHashMap<>();
            m.forEach((k, v) -> i2n.put(normKey(PyValues.key(k), "idx2name key"), PyValues.str(v, "idx2name value")));
            idx2name = i2n;
        }
        if (d.get("sym_info") instanceof Pickle.Tuple t && t.size() == 2 && t.get(0) instanceof Map<?, ?> at
                && t.get(1) instanceof List<?> args) {
            Map<String, Map<String, String>> sa = new LinkedHashMap<>();
            at.forEach((k, v) -> {
                Map<String, String> inner = new LinkedHashMap<>();
                if (v instanceof Map<?, ?> vm) {
                    vm.forEach((a, b) -> inner.put(PyValues.str(a, "attribute name"), PyValues.str(b, "attribute value")));
                }
                sa.put(PyValues.str(k, "node name"), Collections.unmodifiableMap(inner));
            });
            List<String> as = new ArrayList<>();
            args.forEach(a -> as.add(PyValues.str(a, "argument name")));
            symAttrs = sa;
            symArgs = List.copyOf(as);
        }
        if (d.get("lr_mult") instanceof Map<?, ?> m) {
            Map<Object, Double> out = new LinkedHashMap<>();
            m.forEach((k, v) -> out.put(normKey(PyValues.key(k), "lr_mult key"), PyValues.dbl(v, "lr_mult")));
            lrMult = out;
        }
        if (d.get("wd_mult") instanceof Map<?, ?> m) {
            Map<Object, Double> out = new LinkedHashMap<>();
            m.forEach((k, v) -> out.put(normKey(PyValues.key(k), "wd_mult key"), PyValues.dbl(v, "wd_mult")));
            wdMult = out;
        }
        readFields(d);
    }

    @Override
    public String toString() {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("learning_rate", lr);
        f.put("wd", wd);
        f.put("rescale_grad", rescaleGrad);
        f.put("clip_gradient", clipGradient);
        writeFields(f);
        return getClass().getSimpleName() + f;
    }
}
