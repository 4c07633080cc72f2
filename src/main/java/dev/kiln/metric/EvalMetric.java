package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.AbstractMap;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * Base class of the evaluation metrics, MXNet's {@code mx.metric.EvalMetric}.
 *
 * <p>A metric accumulates a sum and a count twice: the <em>local</em> pair ({@link #sumMetric},
 * {@link #numInst}) which {@link #resetLocal()} clears (Speedometer and the batch-end callbacks
 * do this every few batches) and the <em>global</em> pair ({@link #globalSumMetric}, {@link
 * #globalNumInst}) which only {@link #reset()} clears (fit's end-of-epoch line uses it). Its
 * value is {@code sum / num}, or NaN when nothing was counted. A metric built without global
 * stats answers {@link #getGlobal()} with its local value.
 *
 * <p>Update with lists of labels and predictions paired by position ({@link #update(List,
 * List)}), with a single label/prediction array ({@link #update(NDArray, NDArray)}, MXNet's
 * {@code wrap=True}), or with ordered name maps ({@link #updateDict(Map, Map)}) filtered by
 * {@link #outputNames()} / {@link #labelNames()}.
 *
 * <p>Predictions on a GPU: {@link Accuracy}, {@link TopKAccuracy}, {@link CrossEntropy}, {@link
 * NegativeLogLikelihood}, {@link Perplexity}, {@link MSE}, {@link MAE}, {@link RMSE} and {@link
 * Loss} (with {@link Torch} and {@link Caffe}) reduce them there, with operators, to one number per
 * batch, and add it to a device sum (float64) without waiting for the device. That sum is copied
 * to the host (one wait) only when the metric is read: {@link #sumMetric()}, {@link #get()}, the
 * name-value lists, {@link #toString()} or {@link #resetLocal()}. Counts are known on the host at
 * once. Labels are read on the host (they come from the iterator there), checked, and uploaded.
 * {@link F1} and {@link MCC} (macro: a score per update; micro: their counts), {@link PCC} (its
 * confusion matrix) and {@link PearsonCorrelation} (macro: a correlation per pair; micro: its
 * means and centred sums) keep their statistics on the device in the same way until read. Custom
 * metrics, and CPU predictions, copy each batch to the host.
 *
 * <p>Ownership: metrics never keep a reference to the arrays passed in; the caller keeps (and
 * closes) its arrays. A metric owns its device sums (one 8-byte array per device, plus the counts
 * of micro F1/MCC, the confusion matrix of PCC, the statistics of micro PearsonCorrelation): a
 * read or {@link #reset()} frees them; a metric dropped with unread device sums leaves them to the
 * arrays' cleaner.
 *
 * <p>Thread-safety: not thread-safe; update and read a metric from one thread at a time.
 *
 * <p>Subclassing: implement {@link #update(List, List)} and add each contribution with {@link
 * #accumulate(double, double)} (or to the fields directly); pass {@code hasGlobalStats=true} to
 * the constructor when the subclass maintains the global pair; override {@link
 * #configKwargs(Map)} to make {@link #getConfig()} record constructor arguments.
 */
public abstract class EvalMetric {
    /** Local accumulated value (cleared by {@link #resetLocal()} and {@link #reset()}). */
    protected double sumMetric;
    /** Local number of instances. */
    protected double numInst;
    /** Global accumulated value (cleared only by {@link #reset()}). */
    protected double globalSumMetric;
    /** Global number of instances. */
    protected double globalNumInst;

    private final String name;
    private final List<String> outputNames;
    private final List<String> labelNames;
    private final boolean hasGlobalStats;
    /** Device sums not yet read: a (1,) float64 array per device, owned here, in no scope. */
    private final DeviceSums deviceSums = new DeviceSums();

    /**
     * Creates a metric with zeroed statistics.
     *
     * @param name display name (used in logs and as the key of {@link #getNameValue()})
     * @param outputNames outputs used by {@link #updateDict}, in order; {@code null} = all
     * @param labelNames labels used by {@link #updateDict}, in order; {@code null} = all
     * @param hasGlobalStats whether the subclass maintains the global pair
     */
    protected EvalMetric(String name, List<String> outputNames, List<String> labelNames, boolean hasGlobalStats) {
        if (name == null) {
            throw new IllegalArgumentException("metric name must not be null");
        }
        this.name = name;
        this.outputNames = outputNames == null ? null : List.copyOf(outputNames);
        this.labelNames = labelNames == null ? null : List.copyOf(labelNames);
        this.hasGlobalStats = hasGlobalStats;
    }

    /** The display name. */
    public String name() {
        return name;
    }

    /** Output names selected by {@link #updateDict}, or {@code null} for all outputs. */
    public List<String> outputNames() {
        return outputNames;
    }

    /** Label names selected by {@link #updateDict}, or {@code null} for all labels. */
    public List<String> labelNames() {
        return labelNames;
    }

    /** Whether this metric maintains global statistics separately from the local ones. */
    public boolean hasGlobalStats() {
        return hasGlobalStats;
    }

    // ---- updating -----------------------------------------------------------------------------

    /**
     * Adds one batch: labels and predictions are paired by position.
     *
     * @param labels the labels (borrowed, not kept)
     * @param preds the predictions (borrowed, not kept)
     * @throws IllegalArgumentException if the lists or the arrays do not match (MXNet's
     *     ValueError / assertion)
     */
    public abstract void update(List<NDArray> labels, List<NDArray> preds);

    /**
     * Adds one batch given as single arrays (MXNet accepts a bare NDArray where a list is
     * expected): the same as {@code update(List.of(label), List.of(pred))}.
     *
     * @param label the label array (borrowed); may be {@code null} only for metrics that ignore labels
     * @param pred the prediction array (borrowed)
     */
    public void update(NDArray label, NDArray pred) {
        update(label == null ? List.of() : List.of(label), List.of(pred));
    }

    /**
     * Updates from name-to-array maps (ordered, as {@code LinkedHashMap}): selects the
     * predictions named by {@link #outputNames()} (all values in map order when null) and the
     * labels named by {@link #labelNames()}, then calls {@link #update(List, List)}.
     *
     * @param labels label name to array (borrowed)
     * @param preds output name to array (borrowed)
     * @throws IllegalArgumentException if a selected name is missing
     */
    public void updateDict(Map<String, NDArray> labels, Map<String, NDArray> preds) {
        update(select(labels, labelNames, "label"), select(preds, outputNames, "output"));
    }

    private List<NDArray> select(Map<String, NDArray> m, List<String> names, String what) {
        if (names == null) {
            return new ArrayList<>(m.values());
        }
        List<NDArray> out = new ArrayList<>(names.size());
        for (String n : names) {
            NDArray a = m.get(n);
            if (a == null) {
                throw new IllegalArgumentException("metric '" + name + "': " + what + " '" + n + "' not found among " + m.keySet());
            }
            out.add(a);
        }
        return out;
    }

    /**
     * Adds a contribution to both the local and the global pair.
     *
     * @param sum added to the sums
     * @param num added to the counts
     */
    protected final void accumulate(double sum, double num) {
        sumMetric += sum;
        globalSumMetric += sum;
        numInst += num;
        globalNumInst += num;
    }

    /**
     * Adds a contribution reduced on a device: {@code sum} (one element, any dtype, borrowed) goes
     * to this metric's device sum for its context, converted to float64 there; {@code num} goes to
     * both counts now. Nothing waits for the device; the next read of a sum or value adds the
     * device sum to the local and global sums.
     *
     * @param sum the batch's contribution, one element, on any device
     * @param num added to the counts
     * @throws IllegalArgumentException if {@code sum} does not hold exactly one element
     */
    protected final void accumulateOnDevice(NDArray sum, double num) {
        if (sum.size() != 1) {
            throw new IllegalArgumentException("metric '" + name + "': a device contribution needs one element, got shape " + sum.shape());
        }
        try (NDScope s = NDScope.open()) {
            deviceSums.add(sum.reshape(1));
        }
        numInst += num;
        globalNumInst += num;
    }

    /**
     * For subclasses that keep statistics on a device beyond the device sums (counts, a confusion
     * matrix): fold them into the host statistics now (one wait per device) and free them. Called
     * before every read of the sums and before {@link #resetLocal()}; the default has none. The
     * subclass owns those device arrays: it frees them here and in its override of {@link #reset()}
     * (which drops them unread). Not thread-safe (as the metric).
     */
    protected void readDeviceState() {
    }

    /** Whether a subclass holds statistics on a device not yet read (see {@link #readDeviceState()}). */
    protected boolean hasDeviceState() {
        return false;
    }

    /** Adds the device sums to the local and global sums (one wait per device) and frees them. */
    private void readDeviceSums() {
        readDeviceState();
        for (double[] v : deviceSums.read()) {
            sumMetric += v[0];
            globalSumMetric += v[0];
        }
    }

    /** Whether some contribution still waits on a device (tests). */
    boolean hasDeviceSums() {
        return !deviceSums.isEmpty() || hasDeviceState();
    }

    /** Clears local and global statistics (device sums not yet read are dropped unread). */
    public void reset() {
        deviceSums.clear();
        sumMetric = 0;
        numInst = 0;
        globalSumMetric = 0;
        globalNumInst = 0;
    }

    /** Clears the local statistics only (device sums are first added to the global sum). */
    public void resetLocal() {
        readDeviceSums();
        sumMetric = 0;
        numInst = 0;
    }

    // ---- reading ------------------------------------------------------------------------------

    /** The local sum (MXNet's {@code sum_metric}). */
    public double sumMetric() {
        readDeviceSums();
        return sumMetric;
    }

    /** The local count (MXNet's {@code num_inst}). */
    public double numInst() {
        return numInst;
    }

    /** The global sum (MXNet's {@code global_sum_metric}). */
    public double globalSumMetric() {
        readDeviceSums();
        return globalSumMetric;
    }

    /** The global count (MXNet's {@code global_num_inst}). */
    public double globalNumInst() {
        return globalNumInst;
    }

    /**
     * The local value: {@code sumMetric() / numInst()}, NaN if nothing was counted.
     *
     * @return the value
     * @throws IllegalStateException for a composite that does not hold exactly one value
     */
    public double get() {
        return numInst() == 0 ? Double.NaN : sumMetric() / numInst();
    }

    /**
     * The global value ({@link #get()} when the metric has no global stats).
     *
     * @return the value
     * @throws IllegalStateException for a composite that does not hold exactly one value
     */
    public double getGlobal() {
        if (!hasGlobalStats) {
            return get();
        }
        return globalNumInst() == 0 ? Double.NaN : globalSumMetric() / globalNumInst();
    }

    /** The local (name, value) pairs: one pair, or one per child for a composite. */
    public List<Map.Entry<String, Double>> getNameValue() {
        return List.of(entry(name, get()));
    }

    /** The global (name, value) pairs (the local ones when the metric has no global stats). */
    public List<Map.Entry<String, Double>> getGlobalNameValue() {
        if (!hasGlobalStats) {
            return getNameValue();
        }
        return List.of(entry(name, getGlobal()));
    }

    static Map.Entry<String, Double> entry(String n, double v) {
        return new AbstractMap.SimpleImmutableEntry<>(n, v);
    }

    // ---- configuration ------------------------------------------------------------------------

    /**
     * The configuration from which {@link Metrics#create} rebuilds this metric: the constructor
     * arguments recorded by the subclass, then {@code metric} (the class name), {@code name},
     * {@code output_names} and {@code label_names}. Serialise with {@code Json.write} and pass the
     * text (or the map itself) to {@link Metrics#create}.
     *
     * @return a new mutable ordered map
     * @throws UnsupportedOperationException for metrics that cannot be serialised (CustomMetric)
     */
    public Map<String, Object> getConfig() {
        Map<String, Object> c = new LinkedHashMap<>();
        configKwargs(c);
        c.put("metric", getClass().getSimpleName());
        c.put("name", configName());
        c.put("output_names", outputNames == null ? null : new ArrayList<>(outputNames));
        c.put("label_names", labelNames == null ? null : new ArrayList<>(labelNames));
        return c;
    }

    /**
     * Adds this metric's constructor arguments (MXNet keyword names) to a config; none by default.
     *
     * @param config the config being built (kwargs come first, as in MXNet)
     */
    protected void configKwargs(Map<String, Object> config) {}

    /** The {@code name} recorded by {@link #getConfig()}; {@link #name()} unless the constructor decorates it. */
    protected String configName() {
        return name;
    }

    /** {@code EvalMetric: {'accuracy': 0.6666666666666666}}, as MXNet prints it. */
    @Override
    public String toString() {
        Map<String, Double> m = new LinkedHashMap<>();
        for (Map.Entry<String, Double> e : getNameValue()) {
            m.put(e.getKey(), e.getValue());
        }
        StringBuilder b = new StringBuilder("EvalMetric: {");
        boolean first = true;
        for (Map.Entry<String, Double> e : m.entrySet()) {
            b.append(first ? "" : ", ").append(PyRepr.ofString(e.getKey())).append(": ").append(PyRepr.ofDouble(e.getValue()));
            first = false;
        }
        return b.append('}').toString();
    }

    // ---- helpers for subclasses ---------------------------------------------------------------

    /**
     * MXNet's {@code check_label_shapes(labels, preds)}: the two lists must have the same length.
     *
     * @param labels the label list
     * @param preds the prediction list
     * @throws IllegalArgumentException "Shape of labels 1 does not match shape of predictions 2"
     */
    protected static void checkLabelShapes(List<?> labels, List<?> preds) {
        checkLengths(labels.size(), preds.size());
    }

    /** Tests only: run the device reductions on CPU arrays too (see {@link #reducesOnDevice}). */
    static volatile boolean deviceReduceOnCpu;

    /**
     * Whether a metric reduces {@code pred} with operators where it lives (see the class comment):
     * on a GPU. CPU arrays are read directly.
     */
    static boolean reducesOnDevice(NDArray pred) {
        return pred.context().isGpu() || deviceReduceOnCpu;
    }

    /**
     * The usual per-pair loop of {@link #update(List, List)}: {@link #checkLabelShapes}, then each
     * label and the prediction at the same position, copied to the host, go to {@code update}.
     *
     * @param labels the label list (borrowed)
     * @param preds the prediction list (borrowed)
     * @param update called once per pair with (label, prediction)
     */
    static void forEachPair(List<NDArray> labels, List<NDArray> preds, BiConsumer<HostTensor, HostTensor> update) {
        checkLabelShapes(labels, preds);
        for (int p = 0; p < labels.size(); p++) {
            HostTensor label = HostTensor.of(labels.get(p));
            HostTensor pred = HostTensor.of(preds.get(p));
            update.accept(label, pred);
        }
    }

    /** Checks MXNet's {@code average} argument: {@code "macro"} or {@code "micro"}; returns it. */
    static String checkAverage(String average, String metric) {
        if (!"macro".equals(average) && !"micro".equals(average)) {
            throw new IllegalArgumentException(metric + ": average must be 'macro' or 'micro', got " + average);
        }
        return average;
    }

    /** The same check on two counts (MXNet compares {@code len()} of numpy arrays this way). */
    static void checkLengths(long labels, long preds) {
        if (labels != preds) {
            throw new IllegalArgumentException("Shape of labels " + labels + " does not match shape of predictions " + preds);
        }
    }

    /**
     * MXNet's {@code check_label_shapes(label, pred, shape=True)}: the shapes must be equal.
     *
     * @param label one label array (host copy)
     * @param pred the matching prediction (host copy)
     * @throws IllegalArgumentException "Shape of labels (3,) does not match shape of predictions (3, 2)"
     */
    protected static void checkShapes(HostTensor label, HostTensor pred) {
        if (!label.sameShape(pred)) {
            throw new IllegalArgumentException("Shape of labels " + HostTensor.pyShape(label.dims())
                    + " does not match shape of predictions " + HostTensor.pyShape(pred.dims()));
        }
    }
}
