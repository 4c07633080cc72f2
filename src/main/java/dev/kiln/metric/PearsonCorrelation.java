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
 * <p>Predictions on a GPU are reduced there (see {@link EvalMetric}): macro, each pair's
 * correlation goes to the device sum; micro, each pair's means and centred sums are merged there
 * into the device's pending statistics (Chan's pairwise update, which equals MXNet's streaming one
 * up to rounding), folded into the host's when the metric is read.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class PearsonCorrelation extends EvalMetric {
    private final String average;
    private final Moments local = new Moments();
    private final Moments global = new Moments();
    /** Micro: per device, the statistics of the elements reduced there since the last read. */
    private final Map<dev.kiln.ndarray.Context, Pending> pending = new java.util.LinkedHashMap<>();

    /**
     * Micro statistics of the elements of some pairs, on their device: {@code count} (known on the
     * host), and (1,) float64 arrays (owned, in no scope) of the label and prediction means, the
     * centred sums of squares and the co-moment.
     */
    private static final class Pending {
        double count;
        NDArray[] stats;  // meanL, meanP, sseL, sseP, conv

        /** Merges a block (its five statistics, in the caller's scope) as {@link Moments#merge}, on the device. */
        void merge(double nB, NDArray[] block) {
            NDArray[] next;  // in the caller's scope until every one is made
            double n = count + nB;
            if (count == 0) {
                next = new NDArray[5];
                for (int i = 0; i < 5; i++) {
                    next[i] = block[i].copy();
                }
            } else {
                double w = count * nB / n;
                NDArray dL = block[0].sub(stats[0]);
                NDArray dP = block[1].sub(stats[1]);
                next = new NDArray[] {
                    stats[0].add(dL.mul(nB / n)),
                    stats[1].add(dP.mul(nB / n)),
                    stats[2].add(block[2]).add(dL.square().mul(w)),
                    stats[3].add(block[3]).add(dP.square().mul(w)),
                    stats[4].add(block[4]).add(dL.mul(dP).mul(w)),
                };
            }
            close();  // nothing failed: the new statistics replace the old
            for (NDArray a : next) {
                a.detach();
            }
            stats = next;
            count = n;
        }

        void close() {
            if (stats != null) {
                for (NDArray a : stats) {
                    a.close();
                }
                stats = null;
            }
        }
    }

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

        /**
         * Merges a block of {@code nB} elements with label and prediction means {@code bL}, {@code
         * bP}, centred sums of squares {@code m2L}, {@code m2P} and co-moment {@code cB} (Chan et
         * al.'s pairwise update: the same statistics as {@link #add} of the block's elements).
         */
        void merge(double nB, double bL, double bP, double m2L, double m2P, double cB) {
            if (nB == 0) {
                return;
            }
            double nA = count;
            double n = nA + nB;
            double dL = bL - meanL;
            double dP = bP - meanP;
            double w = nA * nB / n;
            meanL += dL * (nB / n);
            meanP += dP * (nB / n);
            sseL += m2L + dL * dL * w;
            sseP += m2P + dP * dP * w;
            conv += cB + dL * dP * w;
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
        checkLabelShapes(labels, preds);
        boolean device = true;
        for (NDArray p : preds) {
            device &= reducesOnDevice(p) && p.size() > 0;
        }
        if (device) {
            List<HostTensor> hostLabels = new java.util.ArrayList<>();
            for (int i = 0; i < preds.size(); i++) {  // every pair checked before any is counted
                HostTensor label = HostTensor.of(labels.get(i));
                if (!Arrays.equals(label.dims(), preds.get(i).shape().dims())) {
                    throw new IllegalArgumentException("Shape of labels " + HostTensor.pyShape(label.dims())
                            + " does not match shape of predictions " + HostTensor.pyShape(preds.get(i).shape().dims()));
                }
                hostLabels.add(label);
            }
            for (int i = 0; i < preds.size(); i++) {
                NDArray pred = preds.get(i);
                try (NDScope scope = NDScope.open()) {
                    NDArray[] block = centredOnDevice(pred, hostLabels.get(i));
                    if (average.equals("macro")) {
                        // numpy's corrcoef, clipped to [-1, 1] (NaN, for a constant input, passes the clip as on the host)
                        accumulateOnDevice(block[4].div(block[2].sqrt().mul(block[3].sqrt())).clip(-1.0, 1.0), 1);
                    } else {
                        pending.computeIfAbsent(pred.context(), c -> new Pending()).merge(pred.size(), block);
                        numInst += 1;
                        globalNumInst += 1;
                    }
                }
            }
            return;
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
     * The flattened label (uploaded) and prediction (in float64) of one pair, on the prediction's
     * device, shape (1,) each: {mean label, mean prediction, Σ(l − mean)², Σ(p − mean)², Σ(l −
     * mean)(p − mean)}, two-pass as {@link #corrcoef}. Arrays in the caller's scope.
     */
    private static NDArray[] centredOnDevice(NDArray pred, HostTensor label) {
        long n = pred.size();
        NDArray p = DeviceReduce.cast(pred, DType.FLOAT64).reshape(n);
        NDArray l = DeviceReduce.upload(label.values(), new long[] {n}, pred.context());
        NDArray meanL = l.sum().reshape(1).div((double) n);
        NDArray meanP = p.sum().reshape(1).div((double) n);
        NDArray dl = DeviceReduce.op("broadcast_sub", Map.of(), l, meanL);
        NDArray dp = DeviceReduce.op("broadcast_sub", Map.of(), p, meanP);
        return new NDArray[] {meanL, meanP, dl.square().sum().reshape(1), dp.square().sum().reshape(1),
            dl.mul(dp).sum().reshape(1)};
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
        if (average.equals("macro")) {
            return sumMetric() / numInst;  // sumMetric() adds what waits on a device
        }
        readDeviceState();
        return local.pearson();
    }

    @Override
    public double getGlobal() {
        if (globalNumInst == 0) {
            return Double.NaN;
        }
        if (average.equals("macro")) {
            return globalSumMetric() / globalNumInst;
        }
        readDeviceState();
        return global.pearson();
    }

    /** Micro: merges each device's pending statistics into the local and global ones (one wait per device), then frees them. */
    @Override
    protected void readDeviceState() {
        try {
            for (Pending p : pending.values()) {
                if (p.count == 0) {
                    continue;
                }
                double[] v = new double[5];
                for (int i = 0; i < 5; i++) {
                    v[i] = p.stats[i].toDoubleArray()[0];
                }
                local.merge(p.count, v[0], v[1], v[2], v[3], v[4]);
                global.merge(p.count, v[0], v[1], v[2], v[3], v[4]);
            }
        } finally {
            dropDeviceState();
        }
    }

    @Override
    protected boolean hasDeviceState() {
        return !pending.isEmpty();
    }

    private void dropDeviceState() {
        pending.values().forEach(Pending::close);
        pending.clear();
    }

    @Override
    public void reset() {
        super.reset();
        dropDeviceState();
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
