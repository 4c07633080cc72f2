package dev.kiln.callback;

/**
 * Called by {@code fit} after every training batch (and by {@code score} after every evaluation
 * batch and once at the end, as a score-end callback), MXNet's {@code batch_end_callback}.
 *
 * <p>Implementations may read and {@code resetLocal()} the metric in the parameter; they must
 * not keep the metric or the locals beyond the call unless they document it. The loops call
 * callbacks from the training thread only, in list order.
 */
@FunctionalInterface
public interface BatchEndCallback {
    /**
     * Handles the end of one batch.
     *
     * @param param epoch, batch index, metric and locals of the calling loop
     */
    void invoke(BatchEndParam param);
}
