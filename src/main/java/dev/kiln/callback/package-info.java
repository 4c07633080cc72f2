/**
 * Training callbacks, MXNet's {@code mx.callback} for the Module API.
 *
 * <p>Batch-end callbacks ({@link dev.kiln.callback.BatchEndCallback}, receiving a
 * {@link dev.kiln.callback.BatchEndParam}): {@link dev.kiln.callback.Speedometer},
 * {@link dev.kiln.callback.ProgressBar}, {@link dev.kiln.callback.Callbacks#logTrainMetric},
 * {@link dev.kiln.callback.LogValidationMetricsCallback} (also a score-end callback) and
 * {@link dev.kiln.callback.TrainingLog} (CSV and PNG curves). Epoch-end callbacks
 * ({@link dev.kiln.callback.EpochEndCallback}): {@link dev.kiln.callback.Callbacks#moduleCheckpoint}
 * for anything {@link dev.kiln.callback.Checkpointable} and
 * {@link dev.kiln.callback.Callbacks#doCheckpoint}.
 *
 * <p>Log lines match MXNet 1.9.1 character for character and go to SLF4J at INFO, one logger per
 * class ({@code dev.kiln.callback.Speedometer}, ...), where MXNet uses Python's root logger.
 * Callbacks are called from the training thread; unless a class says otherwise they are not
 * thread-safe, and none of them owns native memory.
 */
package dev.kiln.callback;
