package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * Cross-entropy of the labelled class, MXNet's {@code CrossEntropy} (registry names {@code crossentropy}, {@code ce}).
 *
 * <p>For each pair: predictions are (N, C) probabilities, the label is flattened and must hold N
 * class indices (truncated to integers, each in 0..C-1); {@code sum += Σ_i −log(pred[i, label_i]
 * + eps)}, {@code num += N}. Local and global statistics are kept.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class CrossEntropy extends EvalMetric {
    private final double eps;

    /** With {@code eps = 1e-12}, named {@code cross-entropy}. */
    public CrossEntropy() {
        this(1e-12, "cross-entropy", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param eps added to each probability before the log
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public CrossEntropy(double eps, String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames, true);
        this.eps = eps;
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
            HostTensor pred = HostTensor.of(preds.get(p));
            accumulate(pickedNegLogSum(label, pred, eps, "CrossEntropy"), label.size());
        }
    }

    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("eps", eps);
    }

    /** {@code Σ_i −log(pred[i, int(label_i)] + eps)} for (N, C) predictions and N labels. */
    static double pickedNegLogSum(HostTensor label, HostTensor pred, double eps, String metric) {
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
