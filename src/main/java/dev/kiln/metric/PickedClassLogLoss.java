package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

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
        forEachPair(labels, preds, (label, pred) -> accumulate(pickedNegLogSum(label, pred), label.size()));
    }

    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("eps", eps);
    }

    /** {@code Σ_i −log(pred[i, int(label_i)] + eps)} for (N, C) predictions and N labels. */
    private double pickedNegLogSum(HostTensor label, HostTensor pred) {
        if (pred.ndim() != 2) {
            throw new IllegalArgumentException(metric + " needs 2-D predictions (batch, classes), got shape " + HostTensor.pyShape(pred.dims()));
        }
        long n = pred.dim(0);
        int c = (int) pred.dim(1);
        if (label.size() != n) {
            throw new IllegalArgumentException(metric + ": " + label.size() + " labels for " + n + " predictions (label shape "
                    + HostTensor.pyShape(label.dims()) + ", pred shape " + HostTensor.pyShape(pred.dims()) + ")");
        }
        double[] pv = pred.values();
        double sum = 0;
        for (int i = 0; i < n; i++) {
            long k = (long) label.get(i);
            if (k < 0 || k >= c) {
                throw new IllegalArgumentException(metric + ": label " + label.get(i) + " at position " + i + " is not a class index in [0, " + c + ")");
            }
            sum += -Math.log(pv[(int) (i * (long) c + k)] + eps);
        }
        return sum;
    }
}
