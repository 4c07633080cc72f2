package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.List;
import java.util.Map;

/**
 * Classification accuracy, MXNet's {@code Accuracy} (registry names {@code accuracy}, {@code acc}).
 *
 * <p>For each (label, prediction) pair: when the shapes differ the prediction is reduced with
 * {@code argmax} over {@link #axis()} (the first index wins a tie); both are then cast to int32
 * by truncation and flattened, and must have the same number of elements (so a 2×3 label array
 * against 6×C predictions works); {@code sum += #(pred == label)}, {@code num += count}. Local
 * and global statistics are kept.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class Accuracy extends EvalMetric {
    private final int axis;

    /** Accuracy over axis 1 named {@code accuracy}. */
    public Accuracy() {
        this(1, "accuracy", null, null);
    }

    /**
     * Accuracy over the given class axis.
     *
     * @param axis the axis holding the classes in predictions (negative counts from the end)
     */
    public Accuracy(int axis) {
        this(axis, "accuracy", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param axis class axis of the predictions
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public Accuracy(int axis, String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames, true);
        this.axis = axis;
    }

    /** The class axis of the predictions. */
    public int axis() {
        return axis;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        checkLabelShapes(labels, preds);
        for (int p = 0; p < labels.size(); p++) {
            HostTensor label = HostTensor.of(labels.get(p));
            NDArray pred = preds.get(p);
            if (reducesOnDevice(pred) && !pred.shape().equals(labels.get(p).shape())) {
                updateOnDevice(label, pred);
                continue;
            }
            int[] predLabel = HostTensor.predictedClasses(HostTensor.of(pred), label, axis, "Accuracy");
            checkLengths(label.size(), predLabel.length);
            long correct = 0;
            for (int i = 0; i < predLabel.length; i++) {
                if (predLabel[i] == HostTensor.toInt32(label.get(i))) {
                    correct++;
                }
            }
            accumulate(correct, predLabel.length);
        }
    }

    /**
     * The count of correct predictions by operators on pred's device, added to the device sum:
     * {@code argmax} over the classes, then the positions equal to the int32 labels. The
     * operator's rule for NaN (a NaN in class 0 wins, later NaNs are skipped) is MXNet's, whose
     * metric calls the same operator; the host path skips NaN.
     */
    private void updateOnDevice(HostTensor label, NDArray pred) {
        int ax = HostTensor.normalizeAxis(axis, pred.shape().ndim(), "Accuracy");
        long classes = pred.shape().get(ax);
        if (classes == 0) {
            throw new IllegalArgumentException("Accuracy: no classes along axis " + axis + " of predictions " + pred.shape());
        }
        long n = pred.size() / classes;
        checkLengths(label.size(), n);
        try (NDScope scope = NDScope.open()) {
            // float16 holds class indices exactly only up to 2048: argmax on float32 scores
            NDArray cls = DeviceReduce.op("argmax", Map.of("axis", ax), DeviceReduce.atLeastFloat32(pred));
            NDArray lab = DeviceReduce.upload(DeviceReduce.int32Labels(label), cls.shape().dims(), pred.context());
            accumulateOnDevice(DeviceReduce.countDifferent(cls, lab).rsub(n), n);
        }
    }

    @Override
    protected void configKwargs(Map<String, Object> config) {
        config.put("axis", axis);
    }
}
