package dev.kiln.metric;

import java.util.List;

/**
 * Dummy metric for Torch criterions, MXNet's {@code Torch} (registry name {@code torch}): a {@link Loss}
 * named {@code torch}.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class Torch extends Loss {
    /** Torch named {@code torch}. */
    public Torch() {
        this("torch", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public Torch(String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames);
    }
}
