package dev.kiln.metric;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A metric's running sums kept on the devices until read: one float64 array per device, every
 * contribution of that device added to it there without waiting for the device. Used for the
 * device sum of every metric ({@link EvalMetric#accumulateOnDevice}), the counts of micro F1/MCC
 * and the confusion matrix of {@link PCC}.
 *
 * <p>Ownership: owns its arrays; {@link #read()} and {@link #clear()} free them. Contributions are
 * borrowed. Not thread-safe (as the metric).
 */
final class DeviceSums {
    private final Map<Context, NDArray> sums = new LinkedHashMap<>();

    /**
     * Adds {@code v} (borrowed; converted to float64 on its device) to the sum of its device, which
     * has its shape (the first contribution of a device sets it).
     */
    void add(NDArray v) {
        try (NDScope s = NDScope.open()) {
            NDArray d = DeviceReduce.cast(v, DType.FLOAT64);
            NDArray acc = sums.get(v.context());
            if (acc == null) {
                sums.put(v.context(), d.copy().detach());
            } else {
                NDArray.invokeInto("elemwise_add", Map.of(), acc, acc, d);
            }
        }
    }

    boolean isEmpty() {
        return sums.isEmpty();
    }

    /** Each device's sum, copied to the host (one wait per device), in the order the devices came; then frees them. */
    List<double[]> read() {
        List<double[]> out = new ArrayList<>();
        try {
            for (NDArray acc : sums.values()) {
                out.add(acc.toDoubleArray());
            }
        } finally {
            clear();
        }
        return out;
    }

    /** Frees the sums unread. */
    void clear() {
        sums.values().forEach(NDArray::close);
        sums.clear();
    }
}
