package dev.kiln.metric;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.List;
import java.util.Map;

/**
 * Top-k accuracy, MXNet's {@code TopKAccuracy} (registry names {@code topkaccuracy},
 * {@code top_k_accuracy}, {@code top_k_acc}): a sample counts as correct when its label is among
 * the {@code k} classes with the largest scores.
 *
 * <p>Predictions are (N, C) scores (cast to float32 as MXNet does); labels hold N class indices
 * (cast to int32 by truncation, any shape with N elements); {@code num += N}. The name becomes
 * {@code <name>_<k>} (e.g. {@code top_k_accuracy_5}). {@code k} must be greater than 1 (use
 * {@link Accuracy} otherwise); a {@code k} of at least C counts every in-range label as correct.
 * Ties at the k-th score are broken towards the lower class index (numpy's {@code argpartition}
 * leaves this unspecified). 1-D predictions are taken as predicted class indices.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class TopKAccuracy extends EvalMetric {
    private final int topK;
    private final String baseName;

    /**
     * Top-k accuracy named {@code top_k_accuracy_<k>}.
     *
     * @param topK k, greater than 1
     */
    public TopKAccuracy(int topK) {
        this(topK, "top_k_accuracy", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param topK k, greater than 1
     * @param name base display name; {@code _<k>} is appended
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     * @throws IllegalArgumentException if {@code topK <= 1}
     */
    public TopKAccuracy(int topK, String name, List<String> outputNames, List<String> labelNames) {
        super(checkTopK(topK, name) + "_" + topK, outputNames, labelNames, true);
        this.topK = topK;
        this.baseName = name;
    }

    private static String checkTopK(int topK, String name) {
        if (topK <= 1) {
            throw new IllegalArgumentException("Please use Accuracy if top_k is no more than 1 (got top_k=" + topK + ")");
        }
        if (name == null) {
            throw new IllegalArgumentException("metric name must not be null");
        }
        return name;
    }

    /** k. */
    public int topK() {
        return topK;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        checkLabelShapes(labels, preds);
        for (int p = 0; p < labels.size(); p++) {
            NDArray pa = preds.get(p);
            if (reducesOnDevice(pa) && pa.shape().ndim() == 2) {
                updateOnDevice(HostTensor.of(labels.get(p)), pa);
            } else {
                updateOnHost(HostTensor.of(labels.get(p)), HostTensor.of(pa));
            }
        }
    }

    private void updateOnHost(HostTensor label, HostTensor pred) {
        if (pred.ndim() > 2) {
            throw new IllegalArgumentException("Predictions should be no more than 2 dims, got shape " + HostTensor.pyShape(pred.dims()));
        }
        long n = pred.ndim() == 0 ? 1 : pred.dim(0);
        checkLengths(label.size(), n);
        long correct = 0;
        if (pred.ndim() < 2) {
            for (int i = 0; i < n; i++) {
                if (HostTensor.toInt32(pred.get(i)) == HostTensor.toInt32(label.get(i))) {
                    correct++;
                }
            }
        } else {
            int c = (int) pred.dim(1);
            for (int i = 0; i < n; i++) {
                if (inTopK(pred.values(), i * c, c, HostTensor.toInt32(label.get(i)))) {
                    correct++;
                }
            }
        }
        accumulate(correct, n);
    }

    /**
     * (N, C) scores on their device: {@code topk} indices (float32 scores, ties to the lower
     * index, as on the host), then the rows whose k indices hold the label. Indices are distinct,
     * so correct = N·k − (positions that differ from the label). Scores with NaN may rank
     * differently from the host path (the operator sorts NaN as the largest score).
     */
    private void updateOnDevice(HostTensor label, NDArray pred) {
        long n = pred.shape().get(0);
        long c = pred.shape().get(1);
        checkLengths(label.size(), n);
        if (n == 0 || c == 0) {
            accumulate(0, n);  // no class: no label is in range
            return;
        }
        long k = Math.min(topK, c);
        try (NDScope scope = NDScope.open()) {
            NDArray idx = DeviceReduce.op("topk", Map.of("axis", 1, "k", k, "ret_typ", "indices", "is_ascend", false),
                    DeviceReduce.cast(pred, DType.FLOAT32));
            NDArray lab = DeviceReduce.upload(DeviceReduce.int32Labels(label), new long[] {n, 1}, pred.context());
            accumulateOnDevice(DeviceReduce.countDifferent(idx, lab).rsub(n * k), n);
        }
    }

    /** True if class {@code label} is among the topK largest of row[off .. off+c). */
    private boolean inTopK(double[] row, int off, int c, int label) {
        if (label < 0 || label >= c) {
            return false;
        }
        float v = (float) row[off + label];
        // classes ranked above the label: larger scores, or equal scores with a lower index
        int above = 0;
        for (int j = 0; j < c; j++) {
            float w = (float) row[off + j];
            if (w > v || (w == v && j < label)) {
                above++;
            }
        }
        return above < topK;
    }

    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("top_k", topK);
    }

    /** The name given to the constructor (without the {@code _<k>} suffix), so a config round trip keeps the name. */
    @Override
    protected String configName() {
        return baseName;
    }
}
