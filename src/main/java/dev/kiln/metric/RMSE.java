package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;

/**
 * Root mean squared error, MXNet's {@code RMSE} (registry name {@code rmse}).
 *
 * <p>For each (label, prediction) pair: a 1-D label or prediction is reshaped to (N, 1), then
 * {@code v = sqrt(mean((label − pred)²))} over their numpy broadcast (so a (3,) label against (3, 2)
 * predictions compares each label with both columns); {@code sum += v}, {@code num += 1}. The
 * value is therefore the mean of per-pair (per-batch, per-device) values, not a per-sample mean.
 * Local and global statistics are kept.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class RMSE extends EvalMetric {
    /** RMSE named {@code rmse}. */
    public RMSE() {
        this("rmse", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public RMSE(String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames, true);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if the lists differ in length or a pair does not broadcast
     */
    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        Regression.update(this, labels, preds, Regression.Kind.RMSE);
    }
}
