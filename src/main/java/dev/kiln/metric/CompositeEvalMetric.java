package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Several metrics updated together, MXNet's {@code CompositeEvalMetric} (registry names {@code
 * compositeevalmetric}, {@code composite}; {@link Metrics#create} builds one from a list).
 *
 * <p>{@link #update}, {@link #reset} and {@link #resetLocal} go to every child in order; {@link
 * #updateDict} first keeps only the entries named by this composite's own output/label names
 * (when set) and then calls each child's {@code updateDict}. {@link #getNameValue()} and {@link
 * #getGlobalNameValue()} concatenate the children's pairs (a nested composite contributes all of
 * its pairs). {@link #get()} is defined only when exactly one value results.
 *
 * <p>Ownership: the composite holds its children (closing nothing: metrics own no native
 * memory); arrays passed to update are borrowed. Thread-safety: not thread-safe.
 */
public class CompositeEvalMetric extends EvalMetric {
    private final List<EvalMetric> metrics = new ArrayList<>();

    /** An empty composite named {@code composite}. */
    public CompositeEvalMetric() {
        this(null, "composite", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param metrics children, each anything {@link Metrics#create} accepts; {@code null} = none
     * @param name display name
     * @param outputNames outputs kept by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels kept by {@link #updateDict} ({@code null} = all)
     */
    public CompositeEvalMetric(List<?> metrics, String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames, true);
        if (metrics != null) {
            for (Object m : metrics) {
                add(m);
            }
        }
    }

    /**
     * Adds a child.
     *
     * @param metric an {@link EvalMetric} or anything else {@link Metrics#create} accepts
     * @return this composite
     */
    public CompositeEvalMetric add(Object metric) {
        metrics.add(Metrics.create(metric));
        return this;
    }

    /**
     * One child.
     *
     * @param index position in the order of {@link #add}
     * @return the child
     * @throws IllegalArgumentException if the index is out of range
     */
    public EvalMetric getMetric(int index) {
        if (index < 0 || index >= metrics.size()) {
            throw new IllegalArgumentException("Metric index " + index + " is out of range 0 and " + metrics.size());
        }
        return metrics.get(index);
    }

    /** The children, in order (unmodifiable view). */
    public List<EvalMetric> metrics() {
        return Collections.unmodifiableList(metrics);
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        for (EvalMetric m : metrics) {
            m.update(labels, preds);
        }
    }

    @Override
    public void updateDict(Map<String, NDArray> labels, Map<String, NDArray> preds) {
        if (labelNames() != null) {
            labels = filter(labels, labelNames());
        }
        if (outputNames() != null) {
            preds = filter(preds, outputNames());
        }
        for (EvalMetric m : metrics) {
            m.updateDict(labels, preds);
        }
    }

    private static Map<String, NDArray> filter(Map<String, NDArray> m, List<String> keep) {
        Map<String, NDArray> out = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : m.entrySet()) {
            if (keep.contains(e.getKey())) {
                out.put(e.getKey(), e.getValue());
            }
        }
        return out;
    }

    @Override
    public void reset() {
        super.reset();
        for (EvalMetric m : metrics) {
            m.reset();
        }
    }

    @Override
    public void resetLocal() {
        super.resetLocal();
        for (EvalMetric m : metrics) {
            m.resetLocal();
        }
    }

    @Override
    public List<Map.Entry<String, Double>> getNameValue() {
        List<Map.Entry<String, Double>> out = new ArrayList<>();
        for (EvalMetric m : metrics) {
            out.addAll(m.getNameValue());
        }
        return Collections.unmodifiableList(out);
    }

    @Override
    public List<Map.Entry<String, Double>> getGlobalNameValue() {
        List<Map.Entry<String, Double>> out = new ArrayList<>();
        for (EvalMetric m : metrics) {
            out.addAll(m.getGlobalNameValue());
        }
        return Collections.unmodifiableList(out);
    }

    /**
     * The single local value.
     *
     * @throws IllegalStateException unless the children hold exactly one value; use {@link #getNameValue()}
     */
    @Override
    public double get() {
        return single(getNameValue());
    }

    /**
     * The single global value.
     *
     * @throws IllegalStateException unless the children hold exactly one value; use {@link #getGlobalNameValue()}
     */
    @Override
    public double getGlobal() {
        return single(getGlobalNameValue());
    }

    private double single(List<Map.Entry<String, Double>> nv) {
        if (nv.size() != 1) {
            throw new IllegalStateException("composite metric '" + name() + "' holds " + nv.size()
                    + " values; use getNameValue()/getGlobalNameValue()");
        }
        return nv.get(0).getValue();
    }

    /** Adds {@code metrics}: the children's configs, in order. */
    @Override
    public Map<String, Object> getConfig() {
        Map<String, Object> c = super.getConfig();
        List<Object> children = new ArrayList<>();
        for (EvalMetric m : metrics) {
            children.add(m.getConfig());
        }
        c.put("metrics", children);
        return c;
    }
}
