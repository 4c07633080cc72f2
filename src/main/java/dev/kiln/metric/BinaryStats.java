package dev.kiln.metric;

import java.util.HashSet;
import java.util.Set;

/**
 * Confusion counts of a binary classifier, local and global (MXNet's private
 * {@code _BinaryClassificationMetrics}); shared by {@link F1} and {@link MCC}.
 */
final class BinaryStats {
    long tp, fp, fn, tn;                     // local
    long gtp, gfp, gfn, gtn;                 // global

    /**
     * Adds one (label, prediction) pair: predictions (N, C) are argmax'd over axis 1, labels (N
     * elements) cast to int32; class 1 is the positive class.
     */
    void update(HostTensor label, HostTensor pred, String metric) {
        checkPredictions(pred.dims(), metric);
        int[] predLabel = HostTensor.argmax(pred, 1, metric);
        checkCount(label.size(), predLabel.length);
        double[] positive = labelPositives(label, metric);
        long dtp = 0, dfp = 0, dfn = 0, dtn = 0;
        for (int i = 0; i < predLabel.length; i++) {
            boolean predTrue = predLabel[i] == 1;
            boolean labelTrue = positive[i] == 1;
            if (predTrue && labelTrue) {
                dtp++;
            } else if (predTrue) {
                dfp++;
            } else if (labelTrue) {
                dfn++;
            } else {
                dtn++;
            }
        }
        add(dtp, dfp, dfn, dtn);
    }

    /** Predictions must be (batch, classes). */
    static void checkPredictions(long[] dims, String metric) {
        if (dims.length != 2) {
            throw new IllegalArgumentException(metric + " needs 2-D predictions (batch, classes), got shape " + HostTensor.pyShape(dims));
        }
    }

    /**
     * 1 where the label (cast to int32) is the positive class 1, else 0; throws when the labels
     * hold more than two distinct classes.
     */
    static double[] labelPositives(HostTensor label, String metric) {
        Set<Integer> distinct = new HashSet<>();
        double[] positive = new double[label.size()];
        for (int i = 0; i < positive.length; i++) {
            int c = HostTensor.toInt32(label.get(i));
            distinct.add(c);
            positive[i] = c == 1 ? 1 : 0;
        }
        if (distinct.size() > 2) {
            throw new IllegalArgumentException(metric + " currently only supports binary classification (labels " + distinct + ")");
        }
        return positive;
    }

    /** Adds counts taken elsewhere (the device path of {@link BinaryClassificationMetric}) to the local and global counts. */
    void add(long dtp, long dfp, long dfn, long dtn) {
        tp += dtp;
        fp += dfp;
        fn += dfn;
        tn += dtn;
        gtp += dtp;
        gfp += dfp;
        gfn += dfn;
        gtn += dtn;
    }

    private static void checkCount(long labels, long preds) {
        EvalMetric.checkLengths(labels, preds);
    }

    long total() {
        return tp + fp + fn + tn;
    }

    long globalTotal() {
        return gtp + gfp + gfn + gtn;
    }

    double fscore(boolean global) {
        return global ? fscore(gtp, gfp, gfn) : fscore(tp, fp, fn);
    }

    /** 2PR/(P+R) with P = TP/(TP+FP), R = TP/(TP+FN); each 0 when its denominator is 0. */
    static double fscore(long tp, long fp, long fn) {
        double precision = tp + fp > 0 ? (double) tp / (tp + fp) : 0.0;
        double recall = tp + fn > 0 ? (double) tp / (tp + fn) : 0.0;
        return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
    }

    double matthewscc(boolean global) {
        return global ? mcc(gtp, gfp, gfn, gtn) : mcc(tp, fp, fn, tn);
    }

    /** (TP·TN − FP·FN) / sqrt(product of the non-zero marginal terms); 0 with no examples. */
    static double mcc(long tp, long fp, long fn, long tn) {
        if (tp + fp + fn + tn == 0) {
            return 0.0;
        }
        double[] terms = {tp + fp, tp + fn, tn + fp, tn + fn};
        double denom = 1.0;
        for (double t : terms) {
            if (t != 0.0) {
                denom *= t;
            }
        }
        return ((double) tp * tn - (double) fp * fn) / Math.sqrt(denom);
    }

    void resetLocal() {
        tp = fp = fn = tn = 0;
    }

    void reset() {
        resetLocal();
        gtp = gfp = gfn = gtn = 0;
    }
}
