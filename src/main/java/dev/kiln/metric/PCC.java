package dev.kiln.metric;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.List;
import java.util.Map;

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
    /** Confusion counts of device updates not folded yet: (pendingK, pendingK) per device. */
    private final DeviceSums pending = new DeviceSums();
    private int pendingK;

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
        readDeviceState();
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
        checkLabelShapes(labels, preds);
        if (updateOnDevice(labels, preds)) {
            numInst += 1;
            globalNumInst += 1;
            return;
        }
        readDeviceState();  // the counts so far, before the host path grows the matrices
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

    /**
     * An update whose predictions are all scores on one device (reducesOnDevice, a class axis 1
     * of at least one class, a shape other than the label's): per pair the confusion counts
     * {@code one_hot(argmax(pred))^T · one_hot(label)} (K×K, float64) are computed there and added
     * to the device matrix, which is folded into the host matrices when the metric is read; K
     * covers the score columns and the labels, and the host matrices grow at the fold only as far
     * as a class actually counted (as the host path grows them). Labels are checked on the host
     * first. False (nothing done) when the host path is to run: predictions on the host, class
     * indices as predictions, several devices, a negative label (the host path names it).
     */
    private boolean updateOnDevice(List<NDArray> labels, List<NDArray> preds) {
        if (preds.isEmpty()) {
            return false;
        }
        Context ctx = preds.get(0).context();
        int[][] lls = new int[preds.size()][];
        int want = Math.max(k, pendingK);
        for (int i = 0; i < preds.size(); i++) {
            NDArray pred = preds.get(i);
            NDArray label = labels.get(i);
            if (!reducesOnDevice(pred) || !pred.context().equals(ctx) || pred.shape().ndim() < 2
                    || pred.shape().equals(label.shape()) || pred.shape().get(1) == 0) {
                return false;
            }
            HostTensor l = HostTensor.of(label);
            checkLengths(l.size(), pred.size() / pred.shape().get(1));
            int[] ll = new int[l.size()];
            for (int j = 0; j < ll.length; j++) {
                ll[j] = HostTensor.toInt32(l.get(j));
                if (ll[j] < 0) {
                    return false;
                }
                want = Math.max(want, ll[j] + 1);
            }
            want = (int) Math.max(want, pred.shape().get(1));
            lls[i] = ll;
        }
        if (pendingK != 0 && want > pendingK) {
            readDeviceState();  // a wider matrix from now on
        }
        try (NDScope scope = NDScope.open()) {
            NDArray cm = null;
            for (int i = 0; i < preds.size(); i++) {
                NDArray pred = preds.get(i);
                NDArray cls = DeviceReduce.op("argmax", Map.of("axis", 1), DeviceReduce.atLeastFloat32(pred)).reshape(lls[i].length);
                float[] lf = new float[lls[i].length];
                for (int j = 0; j < lf.length; j++) {
                    lf[j] = lls[i][j];
                }
                NDArray lab = DeviceReduce.upload(lf, new long[] {lf.length}, ctx);
                Map<String, Object> hot = Map.of("depth", want, "dtype", "float64");
                NDArray p = DeviceReduce.op("one_hot", hot, cls);  // (M, K)
                NDArray q = DeviceReduce.op("one_hot", hot, lab);  // (M, K)
                NDArray c = DeviceReduce.op("dot", Map.of("transpose_a", true), p, q);  // (K, K): [pred][label]
                cm = cm == null ? c : cm.add(c);
            }
            pending.add(cm);
            pendingK = want;
        }
        return true;
    }

    /** Folds the device matrices into the local and global matrices (one wait per device). */
    @Override
    protected void readDeviceState() {
        if (pending.isEmpty()) {
            return;
        }
        int kk = pendingK;
        pendingK = 0;
        double[] sum = new double[kk * kk];
        for (double[] v : pending.read()) {
            for (int i = 0; i < sum.length; i++) {
                sum[i] += v[i];
            }
        }
        int top = -1;  // the largest class counted, as prediction or label
        for (int i = 0; i < kk; i++) {
            for (int j = 0; j < kk; j++) {
                if (sum[i * kk + j] != 0) {
                    top = Math.max(top, Math.max(i, j));
                }
            }
        }
        if (top >= k) {
            grow(top + 1);
        }
        for (int i = 0; i <= top; i++) {
            for (int j = 0; j <= top; j++) {
                lcm[i][j] += sum[i * kk + j];
                gcm[i][j] += sum[i * kk + j];
            }
        }
    }

    @Override
    protected boolean hasDeviceState() {
        return !pending.isEmpty();
    }

    private void dropDeviceState() {
        pending.clear();
        pendingK = 0;
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
        readDeviceState();
        return calcMcc(lcm) * numInst;
    }

    /** {@code mcc(global matrix) × globalNumInst}. */
    @Override
    public double globalSumMetric() {
        readDeviceState();
        return calcMcc(gcm) * globalNumInst;
    }

    @Override
    public void reset() {
        super.reset();
        dropDeviceState();
        gcm = new double[k][k];
        lcm = new double[k][k];
    }

    @Override
    public void resetLocal() {
        super.resetLocal();
        lcm = new double[k][k];
    }
}
