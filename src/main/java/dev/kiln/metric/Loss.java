package dev.kiln.metric;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.List;

/**
 * Mean of the network's outputs, for outputs that already are losses: MXNet's {@code Loss}
 * (registry name {@code loss}; {@link Torch} and {@link Caffe} are the same with other names).
 *
 * <p>Labels are ignored (any list, or {@code null}); for each prediction {@code sum += Σ pred},
 * {@code num += pred.size}. Local and global statistics are kept.
 *
 * <p>Ownership and thread-safety: as {@link EvalMetric} (arrays are borrowed; not thread-safe).
 */
public class Loss extends EvalMetric {
    /** Loss named {@code loss}. */
    public Loss() {
        this("loss", null, null);
    }

    /**
     * The full MXNet constructor.
     *
     * @param name display name
     * @param outputNames outputs used by {@link #updateDict} ({@code null} = all)
     * @param labelNames labels used by {@link #updateDict} ({@code null} = all)
     */
    public Loss(String name, List<String> outputNames, List<String> labelNames) {
        super(name, outputNames, labelNames, true);
    }

    /**
     * Adds the sum and the element count of every prediction.
     *
     * @param labels ignored (may be {@code null})
     * @param preds the loss outputs (borrowed)
     */
    @Override
    public void update(List<NDArray> labels, List<NDArray> preds) {
        for (NDArray p : preds) {
            if (reducesOnDevice(p) && p.size() > 0) {
                try (NDScope scope = NDScope.open()) {
                    accumulateOnDevice(DeviceReduce.cast(p, DType.FLOAT64).sum(), p.size());
                }
                continue;
            }
            HostTensor t = HostTensor.of(p);
            double s = 0;
            for (double v : t.values()) {
                s += v;
            }
            accumulate(s, t.size());
        }
    }
}
