package dev.kiln.callback;

import dev.kiln.metric.EvalMetric;

import java.util.Map;

/**
 * What a batch-end, eval-batch-end or score-end callback receives (MXNet's
 * {@code model.BatchEndParam}).
 *
 * <p>In {@code fit} and {@code score}, {@code nbatch} is the 0-based index of the batch just
 * processed; for a score-end callback it is the number of batches processed. The metric is the
 * live metric of the loop (callbacks may read it and call {@link EvalMetric#resetLocal()}, as
 * {@link Speedometer} does); it may be null, and every callback in this package then logs
 * nothing. {@code locals} stands in for Python's {@code locals()}: a read-only view of whatever
 * the calling loop chose to expose (never null; empty when nothing was exposed).
 *
 * <p>Ownership: the record does not own the metric or anything in {@code locals}; they stay the
 * caller's. Thread-safety: the record is immutable, the objects it refers to are not.
 *
 * @param epoch the 0-based epoch
 * @param nbatch the 0-based batch index (batch-end) or the batch count (score-end); {@code >= 0}
 * @param evalMetric the loop's metric, or null
 * @param locals the caller's exposed state (null becomes an empty map)
 */
public record BatchEndParam(int epoch, int nbatch, EvalMetric evalMetric, Map<String, Object> locals) {
    /**
     * Checks and normalises the fields.
     *
     * @throws IllegalArgumentException if epoch or nbatch is negative
     */
    public BatchEndParam {
        if (epoch < 0) {
            throw new IllegalArgumentException("BatchEndParam: epoch must be >= 0, got " + epoch);
        }
        if (nbatch < 0) {
            throw new IllegalArgumentException("BatchEndParam: nbatch must be >= 0, got " + nbatch);
        }
        locals = locals == null ? Map.of() : locals;
    }

    /**
     * A parameter without locals.
     *
     * @param epoch the 0-based epoch
     * @param nbatch the batch index or count
     * @param evalMetric the metric, or null
     */
    public BatchEndParam(int epoch, int nbatch, EvalMetric evalMetric) {
        this(epoch, nbatch, evalMetric, Map.of());
    }
}
