package dev.kiln.metric;

import java.util.List;

/**
 * Dummy metric for Caffe criterions, MXNet's {@code Caffe} (registry name {@code caffe}): a {@link Loss}
 * named {@code caffe}.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class Caffe extends Loss {
    /** Caffe named {@code caffe}. */
    public Caffe() {
        this("caffe", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public Caffe(String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames);
    }
}
