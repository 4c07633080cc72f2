package dev.kiln.metric;

import java.util.List;

/**
 * Negative log-likelihood of the labelled class, MXNet's {@code NegativeLogLikelihood} (registry names {@code negativeloglikelihood}, {@code nll_loss}); the same formula as {@link CrossEntropy}.
 *
 * <p>For each pair: predictions are (N, C) probabilities, the label is flattened and must hold N
 * class indices (truncated to integers, each in 0..C-1); {@code sum += Σ_i −log(pred[i, label_i]
 * + eps)}, {@code num += N}. Local and global statistics are kept.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class NegativeLogLikelihood extends PickedClassLogLoss {
    /** With {@code eps = 1e-12}, named {@code nll-loss}. */
    public NegativeLogLikelihood() {
        this(1e-12, "nll-loss", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param eps added to each probability before the log
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public NegativeLogLikelihood(double eps, String name, List<String> outputNames, List<String> labelNames) {
        super(eps, name, outputNames, labelNames, "NegativeLogLikelihood");
    }
}
