package dev.kiln.callback;

import dev.kiln.metric.EvalMetric;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Logs the metric's local values as validation results (MXNet's
 * {@code mx.callback.LogValidationMetricsCallback}): one INFO line
 * {@code Epoch[<epoch>] Validation-<name>=<%f>} per (name, value) pair; nothing when the
 * parameter has no metric. Meant as a score-end (eval-end) callback, usable as a batch-end one.
 *
 * <p>Stateless and thread-safe; holds no resources.
 */
public final class LogValidationMetricsCallback implements BatchEndCallback {
    private static final Logger LOG = LoggerFactory.getLogger(LogValidationMetricsCallback.class);

    private final Consumer<String> sink;

    /** A callback logging through SLF4J. */
    public LogValidationMetricsCallback() {
        this(LOG::info);
    }

    /** Test hook: writes the lines to {@code sink}. */
    LogValidationMetricsCallback(Consumer<String> sink) {
        this.sink = Objects.requireNonNull(sink, "sink");
    }

    /**
     * Logs the metric's values.
     *
     * @param param epoch and metric (may be null)
     */
    @Override
    public void invoke(BatchEndParam param) {
        EvalMetric m = param.evalMetric();
        if (m == null) {
            return;
        }
        for (Map.Entry<String, Double> nv : m.getNameValue()) {
            sink.accept(String.format(Locale.ROOT, "Epoch[%d] Validation-%s=%s", param.epoch(), nv.getKey(),
                    Fmt.f(nv.getValue())));
        }
    }
}
