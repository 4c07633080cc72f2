package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * A metric computed by a Java function of (label, prediction), MXNet's {@code CustomMetric}
 * (registry name {@code custommetric}; {@link Metrics#create} turns a {@link Feval} into one).
 *
 * <pre>{@code
 * EvalMetric mae = CustomMetric.of("my-mae", (label, pred) ->
 *         IntStream.range(0, label.size()).mapToDouble(i -> Math.abs(label.get(i) - pred.get(i))).average().orElse(0));
 * EvalMetric hits = CustomMetric.ofSumNum("hits", (label, pred) -> new CustomMetric.SumNum(countHits(label, pred), label.size()));
 * }</pre>
 *
 * <p>For each (label, prediction) pair the function receives host copies ({@link HostTensor});
 * a {@link Feval} result {@code v} adds {@code sum += v, num += 1}, a {@link SumNumFeval} result
 * adds its sum and count. Local and global statistics are kept. Unless {@code
 * allowExtraOutputs}, the label and prediction lists must have the same length; with it, pairs
 * are formed up to the shorter list. Without a name, a lambda or anonymous class is named
 * {@code custom(<lambda>)} (as MXNet names Python lambdas) and a named class by its simple name.
 * {@link #getConfig()} is not supported.
 *
 * <p>Ownership: the HostTensors passed to the function are fresh host copies that it may keep;
 * the metric keeps no reference to the arrays passed to {@code update}.
 *
 * <p>Thread-safety: not thread-safe; the function runs on the thread that calls {@code update}.
 */
public class CustomMetric extends EvalMetric {
    /** A metric function returning one value per (label, prediction) pair; each call counts as one instance. */
    @FunctionalInterface
    public interface Feval {
        /**
         * Evaluates one pair.
         *
         * @param label the labels of one batch (host copy)
         * @param pred the predictions of one batch (host copy)
         * @return the value added to the sum
         */
        double apply(HostTensor label, HostTensor pred);
    }

    /** A metric function returning a (sum, count) contribution per pair (MXNet's tuple return). */
    @FunctionalInterface
    public interface SumNumFeval {
        /**
         * Evaluates one pair.
         *
         * @param label the labels of one batch (host copy)
         * @param pred the predictions of one batch (host copy)
         * @return the sum and the count to add
         */
        SumNum apply(HostTensor label, HostTensor pred);
    }

    /**
     * A (sum, count) contribution.
     *
     * @param sum added to the metric's sum
     * @param num added to the metric's count
     */
    public record SumNum(double sum, double num) {}

    private final Object function;       // the Feval or SumNumFeval given by the user
    private final SumNumFeval feval;
    private final boolean allowExtraOutputs;

    /**
     * A custom metric named after the function.
     *
     * @param feval the function
     */
    public CustomMetric(Feval feval) {
        this(feval, null, false, null, null);
    }

    /**
     * The full MXNet constructor for a scalar function.
     *
     * @param feval the function
     * @param name display name; {@code null} derives it from the function
     * @param allowExtraOutputs pair labels and predictions up to the shorter list instead of requiring equal lengths
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public CustomMetric(Feval feval, String name, boolean allowExtraOutputs, List<String> outputNames, List<String> labelNames) {
        this(requireFunction(feval), adapt(feval), name, allowExtraOutputs, outputNames, labelNames);
    }


    private CustomMetric(Object function, SumNumFeval impl, String name, boolean allowExtraOutputs,
                         List<String> outputNames, List<String> labelNames) {
        super(name != null ? name : defaultName(function), outputNames, labelNames, true);
        this.function = function;
        this.feval = impl;
        this.allowExtraOutputs = allowExtraOutputs;
    }

    /**
     * A named custom metric from a scalar function.
     *
     * @param name display name ({@code null} derives it from the function)
     * @param feval the function
     * @return the metric
     */
    public static CustomMetric of(String name, Feval feval) {
        return new CustomMetric(feval, name, false, null, null);
    }

    /**
     * A named custom metric from a (sum, count) function.
     *
     * @param name display name ({@code null} derives it from the function)
     * @param feval the function
     * @return the metric
     */
    public static CustomMetric ofSumNum(String name, SumNumFeval feval) {
        return ofSumNum(feval, name, false, null, null);
    }

    /**
     * The full MXNet constructor for a (sum, count) function (a factory method, because a
     * constructor overload would make lambdas ambiguous).
     *
     * @param feval the function
     * @param name display name; {@code null} derives it from the function
     * @param allowExtraOutputs pair labels and predictions up to the shorter list instead of requiring equal lengths
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     * @return the metric
     */
    public static CustomMetric ofSumNum(SumNumFeval feval, String name, boolean allowExtraOutputs,
                                        List<String> outputNames, List<String> labelNames) {
        return new CustomMetric(requireFunction(feval), feval, name, allowExtraOutputs, outputNames, labelNames);
    }

    private static Object requireFunction(Object f) {
        if (f == null) {
            throw new IllegalArgumentException("CustomMetric: the metric function must not be null");
        }
        return f;
    }

    private static SumNumFeval adapt(Feval f) {
        return f == null ? null : (l, p) -> new SumNum(f.apply(l, p), 1);
    }

    /** MXNet's rule: the function's name, wrapped as {@code custom(...)} when it contains {@code '<'} (lambdas). */
    static String defaultName(Object f) {
        Class<?> c = f.getClass();
        String simple = c.getSimpleName();
        if (c.isSynthetic() || c.isAnonymousClass() || simple.isEmpty() || simple.contains("$$Lambda")) {
            return "custom(<lambda>)";
        }
        return simple;
    }

    /** The user's function (a {@link Feval} or a {@link SumNumFeval}). */
    public Object function() {
        return function;
    }

    /** Whether unequal label/prediction list lengths are accepted. */
    public boolean allowExtraOutputs() {
        return allowExtraOutputs;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        if (!allowExtraOutputs) {
            checkLabelShapes(labels, preds);
        }
        int n = Math.min(labels.size(), preds.size());
        for (int i = 0; i < n; i++) {
            HostTensor label = HostTensor.of(labels.get(i));
            HostTensor pred = HostTensor.of(preds.get(i));
            SumNum r = feval.apply(label, pred);
            if (r == null) {
                throw new IllegalStateException("CustomMetric '" + name() + "': the function returned null");
            }
            accumulate(r.sum(), r.num());
        }
    }

    /**
     * Not supported: a Java function cannot be written to a config.
     *
     * @throws UnsupportedOperationException always
     */
    @Override
    public Map<String, Object> getConfig() {
        throw new UnsupportedOperationException("CustomMetric cannot be serialized");
    }
}
