package dev.kiln.metric;

import java.util.List;

/**
 * Cross-entropy of the labelled class, MXNet's {@code CrossEntropy} (registry names {@code crossentropy}, {@code ce}).
 *
 * <p>For each pair: predictions are (N, C) probabilities, the label is flattened and must hold N
 * class indices (truncated to integers, each in 0..C-1); {@code sum += Σ_i −log(pred[i, label_i]
 * + eps)}, {@code num += N}. Local and global statistics are kept.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class CrossEntropy extends PickedClassLogLoss {
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
        super(eps, name, outputNames, labelNames, "CrossEntropy");
    }
}
