package dev.kiln.module;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Dynamic loss scaling, MXNet's {@code mx.contrib.amp.LossScaler}: the loss gradients are
 * multiplied by {@link #lossScale()} so that small float16 gradients do not flush to zero, the
 * optimizer divides them back, and a step whose gradients overflowed (any Inf or NaN) is skipped
 * and halves the scale; after {@code window} clean steps in a row the scale doubles, up to {@code
 * maxScale}. Powers of two keep the scaling exact: with float32 gradients that do not overflow,
 * training with a scaler gives the same bits as training without one.
 *
 * <p>Install it with {@link Module#setLossScaler}; the module then sets each executor's loss scale
 * ({@link dev.kiln.executor.Executor#setLossScale}) before its backward and checks the gradients in
 * {@link Module#update()} with the {@code multi_all_finite} operator on each gradient's device (one
 * float per device comes back to the host). The scale reaches every gradient: loss operators apply
 * it, and head gradients given to {@code backward} for outputs that are not losses are multiplied
 * by it too; so the input gradients ({@code getInputGrads}) are scaled as well. Not supported: a
 * loss operator fed by another loss operator's output (e.g. {@code MakeLoss} after {@code
 * SoftmaxOutput(out_grad=True)}), whose gradient would carry the scale twice.
 *
 * <p>Differences from MXNet: MXNet's scaler works with Gluon's Trainer only; this one works with
 * {@link Module}. MXNet lets the scale fall without bound; here it stops at {@code minScale} (1 by
 * default), so a run whose gradients are NaN for a real reason keeps skipping at a scale that still
 * means something.
 *
 * <p>Ownership: holds no native memory. Thread-safety: not thread-safe; one module uses it.
 */
public final class LossScaler {
    private final double factor;
    private final int window;
    private final double maxScale;
    private final double minScale;
    private double scale;
    private int clean;
    private long skipped;

    /** MXNet's defaults: scale 2^16, factor 2, window 2000, at most 2^24 (and at least 1). */
    public LossScaler() {
        this(65536, 2, 2000, 16777216, 1);
    }

    /**
     * A scaler with its own schedule.
     *
     * @param initScale the first scale
     * @param factor the scale is divided by it after an overflow and multiplied after {@code window} clean steps (&gt; 1)
     * @param window clean steps in a row before the scale grows (&gt;= 1)
     * @param maxScale the largest scale
     * @param minScale the smallest scale (&gt; 0)
     * @throws IllegalArgumentException for values that are not finite, or out of range
     */
    public LossScaler(double initScale, double factor, int window, double maxScale, double minScale) {
        if (!(minScale > 0) || !(maxScale >= minScale) || !Double.isFinite(maxScale) || !(initScale >= minScale)
                || !(initScale <= maxScale) || !(factor > 1) || !Double.isFinite(factor) || window < 1) {
            throw new IllegalArgumentException("LossScaler: need 0 < minScale <= initScale <= maxScale (finite), factor > 1 and "
                    + "window >= 1; got initScale " + initScale + ", factor " + factor + ", window " + window + ", maxScale "
                    + maxScale + ", minScale " + minScale);
        }
        this.scale = initScale;
        this.factor = factor;
        this.window = window;
        this.maxScale = maxScale;
        this.minScale = minScale;
    }

    /** The scale the next backward uses. */
    public double lossScale() {
        return scale;
    }

    /** Steps skipped so far because their gradients overflowed. */
    public long skippedSteps() {
        return skipped;
    }

    /**
     * Checks one step's gradients and moves the scale: halves it (by {@code factor}) when any
     * element is Inf or NaN, else counts a clean step and grows it after {@code window} of them.
     * The scale the step was computed with is the one {@link #lossScale()} returned before this call.
     *
     * @param grads the gradients of the step (borrowed; any devices, float16/32/64); nulls are skipped
     * @return whether the step overflowed (and must be skipped)
     */
    public boolean checkOverflow(List<NDArray> grads) {
        boolean overflow = !allFinite(grads);
        if (overflow) {
            scale = Math.max(minScale, scale / factor);
            clean = 0;
            skipped++;
        } else if (++clean >= window) {
            clean = 0;
            scale = Math.min(maxScale, scale * factor);
        }
        return overflow;
    }

    /** True when every element of every array is finite: multi_all_finite per device, one float back each. */
    static boolean allFinite(List<NDArray> arrays) {
        Map<Context, List<NDArray>> byDevice = new LinkedHashMap<>();
        for (NDArray a : arrays) {
            if (a != null) {
                byDevice.computeIfAbsent(a.context(), c -> new ArrayList<>()).add(a);
            }
        }
        try (NDScope scope = NDScope.open()) {
            List<NDArray> flags = new ArrayList<>();
            for (List<NDArray> group : byDevice.values()) {
                // MXNet checks 200 arrays per call; so does this (an operator call has a bounded input list)
                NDArray flag = null;
                for (int i = 0; i < group.size(); i += 200) {
                    List<NDArray> part = group.subList(i, Math.min(group.size(), i + 200));
                    Map<String, Object> attrs = Map.of("num_arrays", part.size(), "init_output", flag == null);
                    if (flag == null) {
                        flag = NDArray.invoke("multi_all_finite", attrs, part.toArray(new NDArray[0])).get(0);
                    } else {
                        NDArray.invokeInto("multi_all_finite", attrs, flag, part.toArray(new NDArray[0]));
                    }
                }
                flags.add(flag);
            }
            for (NDArray f : flags) {
                if (f.toFloatArray()[0] == 0f) {
                    return false;
                }
            }
            return true;
        }
    }

    @Override
    public String toString() {
        return "LossScaler(scale=" + scale + ", factor=" + factor + ", window=" + window + ", maxScale=" + maxScale + ", minScale="
                + minScale + ", skipped=" + skipped + ")";
    }
}
