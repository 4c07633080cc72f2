package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;

/**
 * Mean absolute error, MXNet's {@code MAE} (registry name {@code mae}).
 *
 * <p>For each (label, prediction) pair: a 1-D label or prediction is reshaped to (N, 1), then
 * {@code v = mean(|label − pred|)} over their numpy broadcast (so a (3,) label against (3, 2)
 * predictions compares each label with both columns); {@code sum += v}, {@code num += 1}. The
 * value is therefore the mean of per-pair (per-batch, per-device) values, not a per-sample mean.
 * Local and global statistics are kept.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class MAE extends EvalMetric {
    /** MAE named {@code mae}. */
    public MAE() {
        this("mae", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public MAE(String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames, true);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException if the lists differ in length or a pair does not broadcast
     */
    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        Regression.update(this, labels, preds, Regression.Kind.MAE);
    }
}
