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

    /**
     * The score of one macro update on the device, shape (1,) float64, from {@code tp} (true
     * positives) and {@code pp} (predicted positives), both (1,) float64 on the predictions'
     * device, and the host-known label positives {@code lp} and example count {@code n} (> 0).
     */
    abstract NDArray scoreOnDevice(NDArray tp, NDArray pp, long lp, long n);

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        checkLabelShapes(labels, preds);
        if (average.equals("macro") && updateOnDevice(labels, preds)) {
            return;
        }
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

    /**
     * A macro update with every prediction on one device (reducesOnDevice): the labels are
     * checked on the host as {@link BinaryStats#update} does, the counts that depend on the
     * predictions (true and predicted positives) are reduced by operators where they live, and the
     * update's score is computed there and added to the device sum, so nothing waits for the
     * device. False (nothing done) when the host path is to run: predictions on the host or on
     * several devices, or no example. Argmax's rule for NaN scores is the operator's (see
     * {@link Accuracy}).
     */
    private boolean updateOnDevice(List<NDArray> labels, List<NDArray> preds) {
        if (preds.isEmpty()) {
            return false;
        }
        dev.kiln.ndarray.Context ctx = preds.get(0).context();
        for (NDArray p : preds) {
            if (!reducesOnDevice(p) || !p.context().equals(ctx)) {
                return false;
            }
        }
        long n = 0, lp = 0;
        List<float[]> labelTrue = new java.util.ArrayList<>();
        for (int i = 0; i < preds.size(); i++) {
            NDArray pred = preds.get(i);
            if (pred.shape().ndim() != 2) {
                throw new IllegalArgumentException(metric + " needs 2-D predictions (batch, classes), got shape "
                        + HostTensor.pyShape(pred.shape().dims()));
            }
            HostTensor label = HostTensor.of(labels.get(i));
            long rows = pred.shape().get(0);
            if (pred.shape().get(1) == 0) {
                return false;  // no class: the host path's error
            }
            checkLengths(label.size(), rows);
            java.util.Set<Integer> distinct = new java.util.HashSet<>();
            float[] lt = new float[label.size()];
            for (int k = 0; k < lt.length; k++) {
                int c = HostTensor.toInt32(label.get(k));
                distinct.add(c);
                lt[k] = c == 1 ? 1f : 0f;
                lp += c == 1 ? 1 : 0;
            }
            if (distinct.size() > 2) {
                throw new IllegalArgumentException(metric + " currently only supports binary classification (labels " + distinct + ")");
            }
            labelTrue.add(lt);
            n += rows;
        }
        if (n == 0) {
            return false;
        }
        try (dev.kiln.ndarray.NDScope scope = dev.kiln.ndarray.NDScope.open()) {
            NDArray tp = null, pp = null;
            for (int i = 0; i < preds.size(); i++) {
                NDArray pred = preds.get(i);
                // class indices (N,) as float32, then 1 where the class is 1: 1 - min(|k - 1|, 1)
                NDArray cls = DeviceReduce.op("argmax", java.util.Map.of("axis", 1), DeviceReduce.atLeastFloat32(pred));
                NDArray positive = DeviceReduce.cast(cls.sub(1.0).abs().clip(0, 1).rsub(1.0), dev.kiln.ndarray.DType.FLOAT64);
                NDArray lab = DeviceReduce.upload(toDouble(labelTrue.get(i)), positive.shape().dims(), ctx);
                NDArray t = positive.mul(lab).sum().reshape(1);
                NDArray q = positive.sum().reshape(1);
                tp = tp == null ? t : tp.add(t);
                pp = pp == null ? q : pp.add(q);
            }
            accumulateOnDevice(scoreOnDevice(tp, pp, lp, n), 1);
        }
        return true;
    }

    private static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    /** max(x, 1) elementwise on x's device (x: non-negative integer counts, so 0 becomes 1). */
    static NDArray atLeastOne(NDArray x) {
        return DeviceReduce.op("_maximum_scalar", java.util.Map.of("scalar", 1.0), x);
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
