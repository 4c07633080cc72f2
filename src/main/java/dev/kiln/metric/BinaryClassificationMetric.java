package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * What {@link F1} and {@link MCC} share: the confusion counts ({@link BinaryStats}) and their
 * macro/micro averaging (described on {@link F1}); a subclass only scores the counts.
 */
abstract class BinaryClassificationMetric extends EvalMetric {
    private final String average;
    private final String metric;
    private final BinaryStats stats = new BinaryStats();

    /**
     * The subclass's constructor arguments, plus {@code metric}, the class name that prefixes
     * error messages.
     *
     * @throws IllegalArgumentException for an averaging other than macro or micro
     */
    BinaryClassificationMetric(String name, List<String> outputNames, List<String> labelNames, String average, String metric) {
        super(name, outputNames, labelNames, true);
        this.average = checkAverage(average, metric);
        this.metric = metric;
    }

    /** {@code "macro"} or {@code "micro"}. */
    public String average() {
        return average;
    }

    /** The score of the local ({@code global == false}) or the global counts of {@code stats}. */
    abstract double score(BinaryStats stats, boolean global);

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        forEachPair(labels, preds, (label, pred) -> stats.update(label, pred, metric));
        if (average.equals("macro")) {
            sumMetric += score(stats, false);
            globalSumMetric += score(stats, true);
            numInst += 1;
            globalNumInst += 1;
            stats.reset();
        } else {
            sumMetric = score(stats, false) * stats.total();
            globalSumMetric = score(stats, true) * stats.globalTotal();
            numInst = stats.total();
            globalNumInst = stats.globalTotal();
        }
    }

    @Override
    public void reset() {
        super.reset();
        stats.reset();
    }

    @Override
    public void resetLocal() {
        super.resetLocal();
        stats.resetLocal();
    }

    /** Records {@code average} (MXNet 1.9 omits it, so its round trip turns micro into macro). */
    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("average", average);
    }
}
