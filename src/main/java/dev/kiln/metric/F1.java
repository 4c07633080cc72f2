package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;

/**
 * F1 score of a binary classifier, MXNet's {@code F1} (registry name {@code f1}).
 *
 * <p>Predictions are (N, 2) scores reduced with argmax over axis 1; labels hold N values of
 * which at most two are distinct; class 1 is positive. {@code precision = TP/(TP+FP)}, {@code
 * recall = TP/(TP+FN)}, {@code F1 = 2PR/(P+R)}, each 0 when its denominator is 0.
 *
 * <ul>
 *   <li>{@code average="macro"} (default): every {@code update} call adds the F1 of that call's
 *       counts with {@code num += 1} and then clears all counts, so the value (local and
 *       global) is the mean of per-call F1 scores;
 *   <li>{@code average="micro"}: the value is the F1 of all counts since the last reset, and
 *       {@link #numInst()} is the number of examples.
 * </ul>
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class F1 extends BinaryClassificationMetric {
    /** Macro-averaged F1 named {@code f1}. */
    public F1() {
        this("f1", null, null, "macro");
    }

    /**
     * F1 with the given averaging.
     *
     * @param average {@code "macro"} or {@code "micro"}
     */
    public F1(String average) {
        this("f1", null, null, average);
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
    public F1(String name, List<String> outputNames, List<String> labelNames, String average) {
        super(name, outputNames, labelNames, average, "F1");
    }

    @Override
    double score(BinaryStats stats, boolean global) {
        return stats.fscore(global);
    }

    /** 2 TP / max(PP + LP, 1): 2PR/(P+R) with P = TP/PP and R = TP/LP, and 0 when TP = 0 (as {@link BinaryStats#fscore}). */
    @Override
    NDArray scoreOnDevice(NDArray tp, NDArray pp, long lp, long n) {
        return tp.mul(2.0).div(atLeastOne(pp.add((double) lp)));
    }
}
