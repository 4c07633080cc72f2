package dev.kiln.metric;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.List;
import java.util.Map;

/**
 * Perplexity, MXNet's {@code Perplexity} (registry name {@code perplexity}): {@code exp} of the
 * mean negative log-probability of the labelled classes.
 *
 * <p>For each pair: the label's element count must equal {@code pred.size / pred.shape[axis]};
 * {@code p = pick(pred, int32(label), axis)} (indices clipped to the valid range, MXNet's
 * default {@code mode='clip'}); positions whose label equals {@code ignoreLabel} get {@code p =
 * 1} and are not counted; {@code loss -= Σ log(max(1e-10, p))}. The losses and counts of all
 * pairs of one update are added to both the local and the global statistics. {@link #get()} is
 * {@code exp(sum / num)}.
 *
 * <p>{@code ignoreLabel} is a required argument that may be {@code null} (nothing ignored): {@code
 * Metrics.create("perplexity")} fails, {@code Metrics.create("perplexity", -1)} works.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class Perplexity extends EvalMetric {
    private final Number ignoreLabel;
    private final int axis;

    /**
     * Perplexity over the last axis, named {@code perplexity}.
     *
     * @param ignoreLabel label value to skip, or {@code null} for none
     */
    public Perplexity(Number ignoreLabel) {
        this(ignoreLabel, -1, "perplexity", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param ignoreLabel label value to skip, or {@code null} for none
     * @param axis the class axis of the predictions (negative counts from the end)
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public Perplexity(Number ignoreLabel, int axis, String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames, true);
        this.ignoreLabel = canonical(ignoreLabel);
        this.axis = axis;
    }

    /** Integral values as Long, others as Double, so configs compare equal after a JSON round trip. */
    static Number canonical(Number n) {
        if (n == null) {
            return null;
        }
        double d = n.doubleValue();
        if (d == Math.rint(d) && !Double.isInfinite(d) && Math.abs(d) < 1e18) {
            return (long) d;
        }
        return d;
    }

    /** The ignored label value, or {@code null}. */
    public Number ignoreLabel() {
        return ignoreLabel;
    }

    /** The class axis. */
    public int axis() {
        return axis;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        checkLabelShapes(labels, preds);
        double loss = 0;
        double num = 0;
        for (int p = 0; p < labels.size(); p++) {
            HostTensor label = HostTensor.of(labels.get(p));
            NDArray pa = preds.get(p);
            long[] ps = pa.shape().dims();
            int ax = checkShapes(label, ps);
            int c = (int) ps[ax];
            if (reducesOnDevice(pa)) {
                // pred [.., C at ax, ..], classes and weights [pred's shape without ax]
                float[] classes = new float[label.size()];
                double[] weights = new double[label.size()];
                long counted = 0;
                for (int i = 0; i < classes.length; i++) {
                    double l = label.get(i);
                    if (ignoreLabel == null || l != ignoreLabel.doubleValue()) {
                        classes[i] = Math.max(0, Math.min(c - 1, HostTensor.toInt32(l)));
                        weights[i] = 1;
                        counted++;
                    }
                }
                long[] ls = HostTensor.dropAxis(ps, ax);
                try (NDScope scope = NDScope.open()) {
                    NDArray lab = DeviceReduce.upload(classes, ls, pa.context());
                    NDArray w = DeviceReduce.upload(weights, ls, pa.context());
                    NDArray picked = DeviceReduce.cast(DeviceReduce.op("pick", Map.of("axis", ax), pa, lab), DType.FLOAT64);
                    NDArray logs = DeviceReduce.op("_maximum_scalar", Map.of("scalar", "1e-10"), picked).log();
                    accumulateOnDevice(logs.mul(w).sum().neg(), counted);
                }
                continue;
            }
            HostTensor pred = HostTensor.of(pa);
            int inner = 1;
            for (int i = ax + 1; i < ps.length; i++) {
                inner *= (int) ps[i];
            }
            double[] pv = pred.values();
            for (int i = 0; i < label.size(); i++) {
                double l = label.get(i);
                if (ignoreLabel != null && l == ignoreLabel.doubleValue()) {
                    num -= 1; // p = 1 contributes log(1) = 0
                } else {
                    int k = Math.max(0, Math.min(c - 1, HostTensor.toInt32(l)));
                    int outer = i / inner;
                    int in = i % inner;
                    double prob = pv[(outer * c + k) * inner + in];
                    loss -= Math.log(Math.max(1e-10, prob));
                }
                num += 1;
            }
        }
        accumulate(loss, num);
    }

    /** The class axis of {@code ps}, checked against the label's element count. */
    private int checkShapes(HostTensor label, long[] ps) {
        if (ps.length == 0) {
            throw new IllegalArgumentException("Perplexity needs predictions with a class axis, got shape ()");
        }
        int ax = HostTensor.normalizeAxis(axis, ps.length, "Perplexity");
        long size = 1;
        for (long d : ps) {
            size *= d;
        }
        long c = ps[ax];
        if (c == 0 || (long) label.size() * c != size) {
            throw new IllegalArgumentException("Perplexity: shape mismatch: label " + HostTensor.pyShape(label.dims())
                    + " vs. pred " + HostTensor.pyShape(ps) + " (the label needs pred.size / pred.shape[" + axis + "] elements)");
        }
        return ax;
    }

    /** {@code exp(sum / num)}, NaN if nothing was counted. */
    @Override
    public double get() {
        return numInst() == 0 ? Double.NaN : Math.exp(sumMetric() / numInst());
    }

    /** {@code exp(globalSum / globalNum)}, NaN if nothing was counted. */
    @Override
    public double getGlobal() {
        return globalNumInst() == 0 ? Double.NaN : Math.exp(globalSumMetric() / globalNumInst());
    }

    /** Records {@code ignore_label} and {@code axis} (MXNet 1.9 records only {@code ignore_label}). */
    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("ignore_label", ignoreLabel);
        config.put("axis", axis);
    }
}
