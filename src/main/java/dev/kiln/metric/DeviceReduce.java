package dev.kiln.metric;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.util.Map;

/**
 * The operator compositions behind the metrics' device path: predictions on a GPU are reduced
 * there to one number per batch, which {@link EvalMetric#accumulateOnDevice} adds to a device
 * sum that is read only when the metric is read. Labels come from the host (the iterator's
 * arrays), are checked there and uploaded (one small host-to-device copy, no wait for the device).
 *
 * <p>Every method returns new arrays attached to the current {@link dev.kiln.ndarray.NDScope};
 * callers open a scope around one update. Nothing here waits for the device: no value is copied
 * back, and dtype conversions run the {@code Cast} operator where the array lives.
 */
final class DeviceReduce {
    private DeviceReduce() {}

    /** The first output of {@code op} on {@code inputs}' device. */
    static NDArray op(String op, Map<String, ?> attrs, NDArray... inputs) {
        return NDArray.invoke(op, attrs, inputs).get(0);
    }

    /** {@code a} converted to {@code type} by the Cast operator on a's device; {@code a} itself when it already is. */
    static NDArray cast(NDArray a, DType type) {
        return a.dtype() == type ? a : op("Cast", Map.of("dtype", type.mxName()), a);
    }

    /** {@code a} as float32, or as float64 when it is float64 (16-bit and integer arrays widen to float32). */
    static NDArray atLeastFloat32(NDArray a) {
        return a.dtype() == DType.FLOAT64 ? a : cast(a, DType.FLOAT32);
    }

    /** Host values as a float32 array of {@code shape} on {@code ctx}. */
    static NDArray upload(float[] values, long[] shape, Context ctx) {
        NDArray host = NDArray.create(values, shape);
        return ctx.isGpu() ? host.copyTo(ctx) : host;
    }

    /** Host values as a float64 array of {@code shape} on {@code ctx}. */
    static NDArray upload(double[] values, long[] shape, Context ctx) {
        NDArray host = NDArray.create(values, shape);
        return ctx.isGpu() ? host.copyTo(ctx) : host;
    }

    /**
     * How many positions of the broadcast of {@code a} and {@code b} hold different values, for
     * integer-valued float arrays (class indices): {@code sum(clip(|a - b|, 0, 1))}, shape (1,).
     * Both are compared as float32, which holds every index below 2^24 exactly.
     */
    static NDArray countDifferent(NDArray a, NDArray b) {
        NDArray a32 = cast(a, DType.FLOAT32);
        NDArray b32 = cast(b, DType.FLOAT32);
        NDArray d = a32.shape().equals(b32.shape()) ? a32.sub(b32) : op("broadcast_sub", Map.of(), a32, b32);
        return d.abs().clip(0, 1).sum();
    }

    /** Truncated int32 class indices of host labels, as float32 values (MXNet's {@code astype('int32')}). */
    static float[] int32Labels(HostTensor label) {
        float[] out = new float[label.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = HostTensor.toInt32(label.get(i));
        }
        return out;
    }
}
