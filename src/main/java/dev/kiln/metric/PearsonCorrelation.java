package dev.kiln.metric;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Pearson correlation between predictions and labels, MXNet's {@code PearsonCorrelation}
 * (registry names {@code pearsoncorrelation}, {@code pearsonr}).
 *
 * <p>Label and prediction of a pair must have the same shape; both are flattened (in double).
 *
 * <ul>
 *   <li>{@code average="macro"} (default): {@code sum += corrcoef(pred, label)} (numpy's,
 *       clipped to [−1, 1]; NaN for a constant input), {@code num += 1} per pair;
 *   <li>{@code average="micro"}: streaming means, variances and co-moment of all elements since
 *       the last reset (Welford, batch form, exactly MXNet's update order); the value is {@code
 *       cov / ((n−1)·sqrt(ssp/(n−1))·sqrt(ssl/(n−1)))} with n the number of elements; {@code num
 *       += 1} per pair. The global value uses its own accumulators, which {@link #resetLocal()}
 *       keeps (MXNet 1.9 keeps no global micro state and reports 0).
 * </ul>
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class PearsonCorrelation extends EvalMetric {
    private final String average;
    private final Moments local = new Moments();
    private final Moments global = new Moments();

    /** Streaming statistics of (label, pred) element pairs. */
    private static final class Moments {
        double count;   // number of elements seen (same for labels and predictions)
        double meanL;
        double meanP;
        double sseL;    // Σ (l − mean_l)²
        double sseP;    // Σ (p − mean_p)²
        double conv;    // Σ (l − mean_l)(p − mean_p)

        void clear() {
            count = meanL = meanP = sseL = sseP = conv = 0;
        }

        /** MXNet's order: label variance, then co-moment (new label mean, old pred mean), then pred variance. */
        void add(double[] l, double[] p) {
            double n = count + l.length;
            double oldMeanL = meanL;
            double dm = 0;
            for (double v : l) {
                dm += (v - oldMeanL) / n;
            }
            double newMeanL = oldMeanL + dm;
            double m2 = 0;
            for (double v : l) {
                m2 += (v - oldMeanL) * (v - newMeanL);
            }
            meanL = newMeanL;
            sseL += m2;
            double c = 0;
            for (int i = 0; i < l.length; i++) {
                c += (l[i] - meanL) * (p[i] - meanP);
            }
            conv += c;
            double oldMeanP = meanP;
            dm = 0;
            for (double v : p) {
                dm += (v - oldMeanP) / n;
            }
            double newMeanP = oldMeanP + dm;
            m2 = 0;
            for (double v : p) {
                m2 += (v - oldMeanP) * (v - newMeanP);
            }
            meanP = newMeanP;
            sseP += m2;
            count = n;
        }

        double pearson() {
            double n = count;
            return conv / ((n - 1) * Math.sqrt(sseP / (n - 1)) * Math.sqrt(sseL / (n - 1)));
        }
    }

    /** Macro-averaged Pearson correlation named {@code pearsonr}. */
    public PearsonCorrelation() {
        this("pearsonr", null, null, "macro");
    }

    /**
     * Pearson correlation with the given averaging.
     *
     * @param average {@code "macro"} or {@code "micro"}
     */
    public PearsonCorrelation(String average) {
        this("pearsonr", null, null, average);
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
    public PearsonCorrelation(String name, List<String> outputNames, List<String> labelNames, String average) {
        super(name, outputNames, labelNames, true);
        this.average = checkAverage(average, "PearsonCorrelation");
    }

    /** {@code "macro"} or {@code "micro"}. */
    public String average() {
        return average;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        if (average.equals("macro")) {
            checkLabelShapes(labels, preds);
            boolean device = true;
            for (NDArray p : preds) {
                device &= reducesOnDevice(p) && p.size() > 0;
            }
            if (device) {
                for (int i = 0; i < preds.size(); i++) {
                    HostTensor label = HostTensor.of(labels.get(i));
                    NDArray pred = preds.get(i);
                    if (!Arrays.equals(label.dims(), pred.shape().dims())) {
                        throw new IllegalArgumentException("Shape of labels " + HostTensor.pyShape(label.dims())
                                + " does not match shape of predictions " + HostTensor.pyShape(pred.shape().dims()));
                    }
                    try (NDScope scope = NDScope.open()) {
                        accumulateOnDevice(corrcoefOnDevice(pred, label), 1);
                    }
                }
                return;
            }
        }
        forEachPair(labels, preds, (label, pred) -> {
            checkShapes(label, pred);
            if (average.equals("macro")) {
                accumulate(corrcoef(pred.values(), label.values()), 1);
            } else {
                local.add(label.values(), pred.values());
                global.add(label.values(), pred.values());
                numInst += 1;
                globalNumInst += 1;
            }
        });
    }

    /**
     * {@link #corrcoef} of the flattened prediction (on its device, in float64) and label (uploaded
     * there) by operators, shape (1,): the means, then the centred sums, then their ratio clipped to
     * [-1, 1] (NaN, for a constant input, passes the clip as on the host). Arrays in the caller's scope.
     */
    private static NDArray corrcoefOnDevice(NDArray pred, HostTensor label) {
        long n = pred.size();
        NDArray x = DeviceReduce.cast(pred, DType.FLOAT64).reshape(n);
        NDArray y = DeviceReduce.upload(label.values(), new long[] {n}, pred.context());
        NDArray dx = DeviceReduce.op("broadcast_sub", Map.of(), x, x.sum().reshape(1).div((double) n));
        NDArray dy = DeviceReduce.op("broadcast_sub", Map.of(), y, y.sum().reshape(1).div((double) n));
        NDArray sxy = dx.mul(dy).sum().reshape(1);
        NDArray sxx = dx.square().sum().reshape(1);
        NDArray syy = dy.square().sum().reshape(1);
        return sxy.div(sxx.sqrt().mul(syy.sqrt())).clip(-1.0, 1.0);
    }

    /** numpy's {@code corrcoef(x, y)[0, 1]}: two-pass covariance over the standard deviations, clipped to [−1, 1]. */
    static double corrcoef(double[] x, double[] y) {
        int n = x.length;
        double mx = 0;
        double my = 0;
        for (int i = 0; i < n; i++) {
            mx += x[i];
            my += y[i];
        }
        mx /= n;
        my /= n;
        double sxy = 0;
        double sxx = 0;
        double syy = 0;
        for (int i = 0; i < n; i++) {
            double dx = x[i] - mx;
            double dy = y[i] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        double r = sxy / (Math.sqrt(sxx) * Math.sqrt(syy));
        return Double.isNaN(r) ? r : Math.max(-1.0, Math.min(1.0, r));
    }

    @Override
    public double get() {
        if (numInst == 0) {
            return Double.NaN;
        }
        return average.equals("macro") ? sumMetric / numInst : local.pearson();
    }

    @Override
    public double getGlobal() {
        if (globalNumInst == 0) {
            return Double.NaN;
        }
        return average.equals("macro") ? globalSumMetric / globalNumInst : global.pearson();
    }

    @Override
    public void reset() {
        super.reset();
        local.clear();
        global.clear();
    }

    @Override
    public void resetLocal() {
        super.resetLocal();
        local.clear();
    }

    /** Records {@code average} (MXNet 1.9 omits it). */
    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("average", average);
    }
}
