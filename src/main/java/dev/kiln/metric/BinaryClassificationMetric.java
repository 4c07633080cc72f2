package dev.kiln.metric;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.List;
import java.util.Map;

/**
 * What {@link F1} and {@link MCC} share: the confusion counts ({@link BinaryStats}) and their
 * macro/micro averaging (described on {@link F1}); a subclass only scores the counts.
 *
 * <p>Predictions on a GPU are counted there (see {@link EvalMetric}): the true positives TP and
 * predicted positives PP by operators, the label positives LP and the examples N on the host,
 * where the labels are checked as on the host path. With {@code average="macro"} each update's
 * score is computed on the device and added to the device sum; with {@code "micro"} TP and PP
 * are summed on the device and folded into the counts when the metric is read (the other counts
 * follow: FP = PP - TP, FN = LP - TP, TN = N - PP - LP + TP). Nothing waits for the device
 * between reads. Argmax's rule for NaN scores is then the operator's (see {@link Accuracy}).
 */
abstract class BinaryClassificationMetric extends EvalMetric {
    private final String average;
    private final String metric;
    private final BinaryStats stats = new BinaryStats();
    /** micro: TP and PP of the device updates not folded yet, (2,) per device. */
    private final DeviceSums pendingCounts = new DeviceSums();
    private long pendingLp;
    private long pendingN;

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

    /**
     * The score of one macro update on the device, shape (1,) float64, from {@code tp} (true
     * positives) and {@code pp} (predicted positives), both (1,) float64 on the predictions'
     * device, and the host-known label positives {@code lp} and example count {@code n} (> 0).
     */
    abstract NDArray scoreOnDevice(NDArray tp, NDArray pp, long lp, long n);

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        checkLabelShapes(labels, preds);
        if (updateOnDevice(labels, preds)) {
            return;
        }
        readDeviceState();  // micro: the counts so far, before the host path scores them
        forEachPair(labels, preds, (label, pred) -> stats.update(label, pred, metric));
        if (average.equals("macro")) {
            sumMetric += score(stats, false);
            globalSumMetric += score(stats, true);
            numInst += 1;
            globalNumInst += 1;
            stats.reset();
        } else {
            scoreMicro();
        }
    }

    /** micro: the sums and counts from the counts (MXNet sets them so after every update). */
    private void scoreMicro() {
        sumMetric = score(stats, false) * stats.total();
        globalSumMetric = score(stats, true) * stats.globalTotal();
        numInst = stats.total();
        globalNumInst = stats.globalTotal();
    }

    /**
     * An update with every prediction on one device (reducesOnDevice), as the class comment
     * says. False (nothing done) when the host path is to run: predictions on the host or on
     * several devices, or no example.
     */
    private boolean updateOnDevice(List<NDArray> labels, List<NDArray> preds) {
        if (preds.isEmpty()) {
            return false;
        }
        Context ctx = preds.get(0).context();
        for (NDArray p : preds) {
            if (!reducesOnDevice(p) || !p.context().equals(ctx)) {
                return false;
            }
        }
        long n = 0, lp = 0;
        double[][] labelTrue = new double[preds.size()][];
        for (int i = 0; i < preds.size(); i++) {
            NDArray pred = preds.get(i);
            BinaryStats.checkPredictions(pred.shape().dims(), metric);
            if (pred.shape().get(1) == 0) {
                return false;  // no class: the host path's error
            }
            HostTensor label = HostTensor.of(labels.get(i));
            long rows = pred.shape().get(0);
            checkLengths(label.size(), rows);
            labelTrue[i] = BinaryStats.labelPositives(label, metric);
            for (double v : labelTrue[i]) {
                lp += (long) v;
            }
            n += rows;
        }
        if (n == 0) {
            return false;
        }
        try (NDScope scope = NDScope.open()) {
            NDArray tp = null, pp = null;
            for (int i = 0; i < preds.size(); i++) {
                // class indices (N,) as float32, then 1 where the class is 1: 1 - min(|k - 1|, 1)
                NDArray cls = DeviceReduce.op("argmax", Map.of("axis", 1), DeviceReduce.atLeastFloat32(preds.get(i)));
                NDArray positive = DeviceReduce.cast(cls.sub(1.0).abs().clip(0, 1).rsub(1.0), DType.FLOAT64);
                NDArray lab = DeviceReduce.upload(labelTrue[i], positive.shape().dims(), ctx);
                NDArray t = positive.mul(lab).sum().reshape(1);
                NDArray q = positive.sum().reshape(1);
                tp = tp == null ? t : tp.add(t);
                pp = pp == null ? q : pp.add(q);
            }
            if (average.equals("macro")) {
                accumulateOnDevice(scoreOnDevice(tp, pp, lp, n), 1);
            } else {
                pendingCounts.add(DeviceReduce.op("Concat", Map.of("num_args", 2, "dim", 0), tp, pp));  // [TP, PP]
                pendingLp += lp;
                pendingN += n;
                numInst += n;  // micro counts examples: known now
                globalNumInst += n;
            }
        }
        return true;
    }

    /** micro: folds the device counts into the local and global counts (one wait per device). */
    @Override
    protected void readDeviceState() {
        if (pendingCounts.isEmpty()) {
            return;
        }
        long tp = 0, pp = 0;
        long lp = pendingLp, n = pendingN;
        pendingLp = 0;  // the host counts go with the device ones, whatever happens
        pendingN = 0;
        for (double[] v : pendingCounts.read()) {
            tp += Math.round(v[0]);
            pp += Math.round(v[1]);
        }
        stats.add(tp, pp - tp, lp - tp, n - pp - lp + tp);
        scoreMicro();
    }

    @Override
    protected boolean hasDeviceState() {
        return !pendingCounts.isEmpty();
    }

    private void dropDeviceState() {
        pendingCounts.clear();
        pendingLp = 0;
        pendingN = 0;
    }

    @Override
    public void reset() {
        super.reset();
        dropDeviceState();
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

    /** max(x, 1) elementwise on x's device (x: non-negative integer counts, so 0 becomes 1). */
    static NDArray atLeastOne(NDArray x) {
        return DeviceReduce.op("_maximum_scalar", Map.of("scalar", 1.0), x);
    }
}
