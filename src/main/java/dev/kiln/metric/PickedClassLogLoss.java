package dev.kiln.metric;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.List;
import java.util.Map;

/**
 * The formula shared by {@link CrossEntropy} and {@link NegativeLogLikelihood}: for each pair,
 * {@code sum += Σ_i −log(pred[i, label_i] + eps)} over (N, C) probabilities and N class indices,
 * {@code num += N}; {@code eps} is recorded in the config.
 */
abstract class PickedClassLogLoss extends EvalMetric {
    private final double eps;
    private final String metric;

    /**
     * The subclass's constructor arguments, plus {@code metric}, the class name that prefixes
     * error messages.
     */
    PickedClassLogLoss(double eps, String name, List<String> outputNames, List<String> labelNames, String metric) {
        super(name, outputNames, labelNames, true);
        this.eps = eps;
        this.metric = metric;
    }

    /** The constant added to each probability. */
    public double eps() {
        return eps;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        checkLabelShapes(labels, preds);
        for (int p = 0; p < labels.size(); p++) {
            HostTensor label = HostTensor.of(labels.get(p));
            NDArray pred = preds.get(p);
            if (reducesOnDevice(pred)) {
                long[] ps = pred.shape().dims();
                checkShapes(label, ps);
                long[] idx = classIndices(label, ps[1]);
                float[] classes = new float[idx.length];  // pick takes float indices: exact below 2^24 classes
                for (int i = 0; i < idx.length; i++) {
                    classes[i] = idx[i];
                }
                try (NDScope scope = NDScope.open()) {
                    // pred (N, C), classes (N) -> picked (N) -> sum of -log(p + eps) in float64, shape (1)
                    NDArray lab = DeviceReduce.upload(classes, new long[] {ps[0]}, pred.context());
                    NDArray picked = DeviceReduce.op("pick", Map.of("axis", 1), pred, lab);
                    NDArray logs = DeviceReduce.cast(picked, DType.FLOAT64).add(eps).log();
                    accumulateOnDevice(logs.sum().neg(), label.size());
                }
            } else {
                HostTensor hp = HostTensor.of(pred);
                checkShapes(label, hp.dims());
                accumulate(pickedNegLogSum(label, hp), label.size());
            }
        }
    }

    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("eps", eps);
    }

    /** (N, C) predictions and N labels, or the errors MXNet's indexing raises. */
    private void checkShapes(HostTensor label, long[] ps) {
        if (ps.length != 2) {
            throw new IllegalArgumentException(metric + " needs 2-D predictions (batch, classes), got shape " + HostTensor.pyShape(ps));
        }
        if (label.size() != ps[0]) {
            throw new IllegalArgumentException(metric + ": " + label.size() + " labels for " + ps[0] + " predictions (label shape "
                    + HostTensor.pyShape(label.dims()) + ", pred shape " + HostTensor.pyShape(ps) + ")");
        }
    }

    /** The labels truncated to class indices, each checked to lie in [0, c). */
    private long[] classIndices(HostTensor label, long c) {
        long[] out = new long[label.size()];
        for (int i = 0; i < out.length; i++) {
            long k = (long) label.get(i);
            if (k < 0 || k >= c) {
                throw new IllegalArgumentException(metric + ": label " + label.get(i) + " at position " + i + " is not a class index in [0, " + c + ")");
            }
            out[i] = k;
        }
        return out;
    }

    /** {@code Σ_i −log(pred[i, int(label_i)] + eps)} for (N, C) predictions and N labels (checked). */
    private double pickedNegLogSum(HostTensor label, HostTensor pred) {
        int c = (int) pred.dim(1);
        long[] classes = classIndices(label, c);
        double[] pv = pred.values();
        double sum = 0;
        for (int i = 0; i < classes.length; i++) {
            sum += -Math.log(pv[(int) (i * (long) c + classes[i])] + eps);
        }
        return sum;
    }
}
