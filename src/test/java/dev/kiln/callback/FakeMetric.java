package dev.kiln.callback;

import dev.kiln.metric.EvalMetric;
import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A test metric whose local and global values are set by the test; counts resets. Each name
 * has a local and a global value; {@link #resetLocal()} sets the local values to NaN (as a real
 * metric with no instances reports).
 */
final class FakeMetric extends EvalMetric {
    final List<String> names;
    final double[] local;
    final double[] global;
    int resetLocalCalls;
    int resetCalls;

    FakeMetric(String... names) {
        super(names[0], null, null, true);
        this.names = List.of(names);
        this.local = new double[names.length];
        this.global = new double[names.length];
    }

    FakeMetric set(double... localThenGlobal) {
        for (int i = 0; i < names.size(); i++) {
            local[i] = localThenGlobal[i];
            global[i] = localThenGlobal.length > names.size() ? localThenGlobal[names.size() + i] : localThenGlobal[i];
        }
        return this;
    }

    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        throw new UnsupportedOperationException("not used by the callback tests");
    }

    @Override
    public void resetLocal() {
        if (local == null) {
            return;   // called from the superclass constructor
        }
        resetLocalCalls++;
        java.util.Arrays.fill(local, Double.NaN);
    }

    @Override
    public void reset() {
        if (local == null) {
            return;   // called from the superclass constructor
        }
        resetCalls++;
        java.util.Arrays.fill(local, Double.NaN);
        java.util.Arrays.fill(global, Double.NaN);
    }

    @Override
    public List<Map.Entry<String, Double>> getNameValue() {
        return pairs(local);
    }

    @Override
    public List<Map.Entry<String, Double>> getGlobalNameValue() {
        return pairs(global);
    }

    private List<Map.Entry<String, Double>> pairs(double[] v) {
        List<Map.Entry<String, Double>> out = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) {
            out.add(Map.entry(names.get(i), v[i]));
        }
        return out;
    }
}
