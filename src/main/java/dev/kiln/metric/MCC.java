package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;

/**
 * Matthews correlation coefficient of a binary classifier, MXNet's {@code MCC} (registry name
 * {@code mcc}); see {@link PCC} for the multi-class generalisation.
 *
 * <p>Same confusion counts as {@link F1} (argmax over axis 1 of (N, 2) predictions, at most two
 * distinct labels, class 1 positive). {@code MCC = (TP·TN − FP·FN) / sqrt(product of the
 * non-zero terms among TP+FP, TP+FN, TN+FP, TN+FN)}, 0 when there are no examples (so
 * all-negative labels with negative predictions give 0, not NaN). Macro and micro averaging
 * exactly as {@link F1}: macro adds one MCC per {@code update} call and clears the counts.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class MCC extends BinaryClassificationMetric {
    /** Macro-averaged MCC named {@code mcc}. */
    public MCC() {
        this("mcc", null, null, "macro");
    }

    /**
     * MCC with the given averaging.
     *
     * @param average {@code "macro"} or {@code "micro"}
     */
    public MCC(String average) {
        this("mcc", null, null, average);
    }

    /**
     * The full MXNet constructor.
     *
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     * @param average {@code "macro"} or {@code "micro"}
     * @throws IllegalArgumentException for another averaging
     */
    public MCC(String name, List<String> outputNames, List<String> labelNames, String average) {
        super(name, outputNames, labelNames, average, "MCC");
    }

    @Override
    double score(BinaryStats stats, boolean global) {
        return stats.matthewscc(global);
    }

    /**
     * (N TP - PP LP) / sqrt(max(PP, 1) max(N - PP, 1) max(LP, 1) max(N - LP, 1)): {@link
     * BinaryStats#mcc} written with the predicted positives PP and label positives LP (TP TN - FP FN
     * = N TP - PP LP; the four marginal terms are PP, N - PP, LP, N - LP, a zero one counted as 1).
     */
    @Override
    NDArray scoreOnDevice(NDArray tp, NDArray pp, long lp, long n) {
        NDArray num = tp.mul((double) n).sub(pp.mul((double) lp));
        double labelTerms = (double) Math.max(lp, 1) * (double) Math.max(n - lp, 1);
        NDArray den = atLeastOne(pp).mul(atLeastOne(pp.rsub((double) n))).mul(labelTerms).sqrt();
        return num.div(den);
    }
}
