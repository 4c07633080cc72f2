package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;

/**
 * Multi-class Matthews correlation (the discrete Pearson correlation of a K×K confusion matrix),
 * MXNet's {@code PCC} (registry name {@code pcc}).
 *
 * <p>For each pair: labels are cast to int32 and flattened; predictions are argmax'd over axis 1
 * when their shape differs from the label's, otherwise taken as class indices (int32); the
 * confusion matrix {@code C[pred][label]} (starting 2×2, grown when a larger class index
 * appears) gets one count per element, in a local and a global copy. {@code num += 1} per
 * update call. The value, from {@code n = ΣC}, row sums {@code x}, column sums {@code y}, is
 * {@code (Σ_k C_kk·n − Σ_k x_k·y_k) / sqrt(Σ x(n−x) · Σ y(n−y))}, NaN when either variance term
 * is 0. For two classes it equals {@link MCC}.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class PCC extends EvalMetric {
    private int k = 2;
    private double[][] lcm = new double[2][2];
    private double[][] gcm = new double[2][2];

    /** PCC named {@code pcc}. */
    public PCC() {
        this("pcc", null, null, true);
    }

    /**
     * The full MXNet constructor.
     *
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     * @param hasGlobalStats whether {@link #getGlobal()} reports the global matrix (MXNet's
     *     {@code has_global_stats}, default true)
     */
    public PCC(String name, List<String> outputNames, List<String> labelNames, boolean hasGlobalStats) {
        super(name, outputNames, labelNames, hasGlobalStats);
    }

    /** The current number of classes (size of the confusion matrix). */
    public int numClasses() {
        return k;
    }

    private void grow(int newK) {
        lcm = grown(lcm, newK);
        gcm = grown(gcm, newK);
        k = newK;
    }

    private static double[][] grown(double[][] m, int newK) {
        double[][] g = new double[newK][newK];
        for (int i = 0; i < m.length; i++) {
            System.arraycopy(m[i], 0, g[i], 0, m.length);
        }
        return g;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        forEachPair(labels, preds, (label, pred) -> {
            int[] pl = HostTensor.predictedClasses(pred, label, 1, "PCC");
            checkLengths(label.size(), pl.length);
            int[] ll = new int[label.size()];
            int max = 0;
            for (int i = 0; i < ll.length; i++) {
                ll[i] = HostTensor.toInt32(label.get(i));
                if (ll[i] < 0 || pl[i] < 0) {
                    throw new IllegalArgumentException("PCC: negative class index (label " + ll[i] + ", prediction " + pl[i] + ") at position " + i);
                }
                max = Math.max(max, Math.max(ll[i], pl[i]));
            }
            if (max >= k) {
                grow(max + 1);
            }
            for (int i = 0; i < ll.length; i++) {
                lcm[pl[i]][ll[i]] += 1;
                gcm[pl[i]][ll[i]] += 1;
            }
        });
        numInst += 1;
        globalNumInst += 1;
    }

    /** MCC of a confusion matrix: (Σ C_kk·n − Σ x_k y_k) / sqrt(Σ x(n−x) · Σ y(n−y)); NaN when a variance is 0. */
    static double calcMcc(double[][] cm) {
        int kk = cm.length;
        double n = 0;
        double[] x = new double[kk];
        double[] y = new double[kk];
        for (int i = 0; i < kk; i++) {
            for (int j = 0; j < kk; j++) {
                n += cm[i][j];
                x[i] += cm[i][j];
                y[j] += cm[i][j];
            }
        }
        double covXx = 0;
        double covYy = 0;
        double covXy = 0;
        for (int i = 0; i < kk; i++) {
            covXx += x[i] * (n - x[i]);
            covYy += y[i] * (n - y[i]);
            covXy += cm[i][i] * n - x[i] * y[i];
        }
        if (covXx == 0 || covYy == 0) {
            return Double.NaN;
        }
        return covXy / Math.sqrt(covXx * covYy);
    }

    /** {@code mcc(local matrix) × numInst} (MXNet's computed {@code sum_metric}). */
    @Override
    public double sumMetric() {
        return calcMcc(lcm) * numInst;
    }

    /** {@code mcc(global matrix) × globalNumInst}. */
    @Override
    public double globalSumMetric() {
        return calcMcc(gcm) * globalNumInst;
    }

    @Override
    public void reset() {
        super.reset();
        gcm = new double[k][k];
        lcm = new double[k][k];
    }

    @Override
    public void resetLocal() {
        super.resetLocal();
        lcm = new double[k][k];
    }
}
