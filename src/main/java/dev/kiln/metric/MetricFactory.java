package dev.kiln.metric;

import java.util.List;
import java.util.Map;

/**
 * Builds a metric from Python-style arguments: positional values in the constructor's order and
 * keyword values under MXNet's parameter names ({@code axis}, {@code top_k}, {@code name},
 * {@code output_names}, ...). Registered with {@link Metrics#register}.
 *
 * <p>Thread-safety: factories are called from any thread that calls {@link Metrics#create} and
 * must be stateless.
 */
@FunctionalInterface
public interface MetricFactory {
    /**
     * Creates a metric.
     *
     * @param args positional arguments (never null, possibly empty)
     * @param kwargs keyword arguments (never null, possibly empty)
     * @return a new metric
     * @throws IllegalArgumentException for unknown, missing or ill-typed arguments
     */
    EvalMetric create(List<Object> args, Map<String, Object> kwargs);
}
