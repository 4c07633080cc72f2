package dev.kiln.metric;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.util.Arrays;
import java.util.stream.DoubleStream;

/**
 * A small read-only host copy of an array: row-major {@code double} values plus a shape. This is
 * what metrics compute on (MXNet's metrics call {@code asnumpy()}) and what a {@link
 * CustomMetric} function receives as its label and prediction.
 *
 * <p>Ownership: a HostTensor is plain Java memory; it never refers to the {@link NDArray} it was
 * copied from, so the array may be closed right after {@link #of(NDArray)} returns.
 *
 * <p>Thread-safety: immutable, safe to share between threads.
 */
public final class HostTensor {
    private final double[] data; // (size) row-major values
    private final long[] shape;  // (ndim) dimensions

    private HostTensor(double[] data, long[] shape) {
        this.data = data;
        this.shape = shape;
    }

    /**
     * Copies an array to the host. float32 values are widened exactly; other types go through
     * {@link NDArray#toDoubleArray()} so int64 labels keep all their bits.
     *
     * @param a the array (borrowed: read once, not kept)
     * @return a new host tensor with the array's shape
     */
    public static HostTensor of(NDArray a) {
        long[] shape = a.shape().dims();
        double[] d;
        if (a.dtype() == DType.FLOAT32) {
            float[] f = a.toFloatArray();
            d = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                d[i] = f[i];
            }
        } else {
            d = a.toDoubleArray();
        }
        return new HostTensor(d, shape);
    }

    /**
     * A tensor holding a copy of {@code data} with the given shape.
     *
     * @param data row-major values
     * @param shape dimensions (each >= 0) whose product is {@code data.length}
     * @return the tensor
     * @throws IllegalArgumentException if the shape does not match the data length
     */
    public static HostTensor of(double[] data, long... shape) {
        long n = 1;
        for (long s : shape) {
            if (s < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + pyShape(shape));
            }
            n *= s;
        }
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + pyShape(shape) + " needs " + n + " values, got " + data.length);
        }
        return new HostTensor(data.clone(), shape.clone());
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    /** Number of dimensions. */
    public int ndim() {
        return shape.length;
    }

    /**
     * One dimension.
     *
     * @param axis the axis; negative counts from the end
     * @return its length
     */
    public long dim(int axis) {
        return shape[normalizeAxis(axis, shape.length, "dim")];
    }

    /** Number of elements. */
    public int size() {
        return data.length;
    }

    /**
     * One element by flat (row-major) index.
     *
     * @param flatIndex 0 .. size()-1
     * @return the value
     */
    public double get(int flatIndex) {
        return data[flatIndex];
    }

    /**
     * One element by its multi-dimensional index.
     *
     * @param index one index per dimension
     * @return the value
     * @throws IllegalArgumentException if the index has the wrong rank or is out of range
     */
    public double at(long... index) {
        if (index.length != shape.length) {
            throw new IllegalArgumentException("index of rank " + index.length + " for a tensor of shape " + pyShape(shape));
        }
        long flat = 0;
        for (int i = 0; i < shape.length; i++) {
            if (index[i] < 0 || index[i] >= shape[i]) {
                throw new IllegalArgumentException("index " + Arrays.toString(index) + " out of range for shape " + pyShape(shape));
            }
            flat = flat * shape[i] + index[i];
        }
        return data[(int) flat];
    }

    /** A copy of the values (row-major). */
    public double[] toArray() {
        return data.clone();
    }

    /** The values as a stream (row-major). */
    public DoubleStream stream() {
        return Arrays.stream(data);
    }

    /** The backing values without a copy; callers in this package must not modify them. */
    double[] values() {
        return data;
    }

    /** The backing shape without a copy; callers in this package must not modify it. */
    long[] dims() {
        return shape;
    }

    /** True if both shapes are equal. */
    boolean sameShape(HostTensor o) {
        return Arrays.equals(shape, o.shape);
    }

    /** {@code HostTensor(3, 2)[0.3, 0.7, ...]}: the shape and up to 8 values. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("HostTensor").append(pyShape(shape)).append('[');
        for (int i = 0; i < Math.min(8, data.length); i++) {
            b.append(i > 0 ? ", " : "").append(data[i]);
        }
        return b.append(data.length > 8 ? ", ...]" : "]").toString();
    }

    // ---- helpers shared by the metrics --------------------------------------------------------

    /** Python's tuple notation for a shape: {@code (3,)}, {@code (3, 2)}, {@code ()}. */
    static String pyShape(long[] s) {
        StringBuilder b = new StringBuilder("(");
        for (int i = 0; i < s.length; i++) {
            b.append(i > 0 ? ", " : "").append(s[i]);
        }
        return b.append(s.length == 1 ? ",)" : ")").toString();
    }

    static int normalizeAxis(int axis, int ndim, String what) {
        int a = axis < 0 ? axis + ndim : axis;
        if (a < 0 || a >= ndim) {
            throw new IllegalArgumentException(what + ": axis " + axis + " is out of range for " + ndim + "-D input");
        }
        return a;
    }

    /**
     * Index of the largest value along {@code axis} for every other position (MXNet's {@code
     * argmax}; the first index wins a tie; NaN never wins). The result has the input's shape with
     * {@code axis} removed, flattened row-major.
     */
    static int[] argmax(HostTensor t, int axis, String what) {
        int ax = normalizeAxis(axis, t.shape.length, what);
        int outer = 1;
        int inner = 1;
        for (int i = 0; i < ax; i++) {
            outer *= (int) t.shape[i];
        }
        for (int i = ax + 1; i < t.shape.length; i++) {
            inner *= (int) t.shape[i];
        }
        int c = (int) t.shape[ax];
        int[] out = new int[outer * inner];
        for (int o = 0; o < outer; o++) {
            for (int in = 0; in < inner; in++) {
                int base = o * c * inner + in;
                int best = 0;
                double bestV = c > 0 ? t.data[base] : Double.NaN;
                for (int k = 1; k < c; k++) {
                    double v = t.data[base + k * inner];
                    if (v > bestV || (Double.isNaN(bestV) && !Double.isNaN(v))) {
                        best = k;
                        bestV = v;
                    }
                }
                out[o * inner + in] = best;
            }
        }
        return out;
    }

    /**
     * The predicted class of each label element, as {@link Accuracy} and {@link PCC} read it:
     * {@code pred} argmax'd over {@code axis} when its shape differs from {@code label}'s,
     * otherwise its values cast to int32; flattened row-major.
     */
    static int[] predictedClasses(HostTensor pred, HostTensor label, int axis, String what) {
        if (!pred.sameShape(label)) {
            return argmax(pred, axis, what);
        }
        int[] out = new int[pred.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = toInt32(pred.get(i));
        }
        return out;
    }

    /** The shape with {@code axis} removed. */
    static long[] dropAxis(long[] shape, int axis) {
        long[] out = new long[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) {
            if (i != axis) {
                out[j++] = shape[i];
            }
        }
        return out;
    }

    /** Truncation towards zero, as numpy's {@code astype('int32')} for in-range values. */
    static int toInt32(double v) {
        return (int) v;
    }
}
