package dev.kiln.init;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Initialises weights to a constant (MXNet's {@code mx.init.Constant}, registered as {@code
 * constant}): a scalar, or an array broadcast (NumPy rules) to the parameter's shape. {@link
 * #dumps()} writes an array value as nested lists ({@code ["constant", {"value": [[1.0, 2.0],
 * [3.0, 4.0]]}]}); {@code new Constant(1)} dumps {@code {"value": 1}} and {@code new
 * Constant(1.0)} {@code {"value": 1.0}}.
 *
 * <p>Array values are copied on construction (an {@link NDArray} given here is read, not kept,
 * unlike MXNet which keeps a reference). Immutable; thread-safe; never owns the arrays it writes.
 */
public final class Constant extends Initializer {
    private final Double scalar;
    private final double[] data;
    private final long[] shape;

    /**
     * A scalar constant.
     *
     * @param value the value (a Python int or float for {@link #dumps()})
     * @throws IllegalArgumentException if value is null
     */
    public Constant(Number value) {
        super(kw(requireValue(value)));
        this.scalar = value.doubleValue();
        this.data = null;
        this.shape = null;
    }

    /**
     * An array constant from row-major values.
     *
     * @param values the values (copied)
     * @param shape the value's shape; its size must equal {@code values.length}
     * @throws IllegalArgumentException on a size mismatch
     */
    public Constant(double[] values, long... shape) {
        this(values.clone(), shape.clone(), false);
    }

    /**
     * An array constant copied from an NDArray (read now; the array stays the caller's).
     *
     * @param value the value
     */
    public Constant(NDArray value) {
        this(value.toDoubleArray(), value.shape().dims(), isIntegral(value.dtype()));
    }

    /**
     * An array constant from nested lists of numbers, as JSON gives them ({@code [[1, 2], [3, 4]]}).
     *
     * @param nested the nested lists (rectangular)
     * @throws IllegalArgumentException if the lists are ragged or hold something other than numbers
     */
    public Constant(List<?> nested) {
        super(kw(normalize(nested)));
        List<Long> dims = new ArrayList<>();
        Object o = nested;
        while (o instanceof List<?> l) {
            dims.add((long) l.size());
            o = l.isEmpty() ? null : l.get(0);
        }
        this.shape = dims.stream().mapToLong(Long::longValue).toArray();
        this.data = new double[Math.toIntExact(Shapes.product(shape, 0))];
        int[] pos = {0};
        flatten(nested, 0, pos);
        this.scalar = null;
    }

    private Constant(double[] values, long[] shape, boolean integral) {
        super(kw(nest(values, shape, integral)));
        this.scalar = null;
        this.data = values;
        this.shape = shape;
    }

    private static Number requireValue(Number v) {
        if (v == null) {
            throw new IllegalArgumentException("Constant: value is null");
        }
        return v;
    }

    private static boolean isIntegral(DType t) {
        return t == DType.UINT8 || t == DType.INT8 || t == DType.INT32 || t == DType.INT64;
    }

    private static Map<String, Object> kw(Object value) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("value", value);
        return m;
    }

    /** Row-major values as nested lists (Python's {@code ndarray.tolist()}). */
    private static List<Object> nest(double[] values, long[] shape, boolean integral) {
        if (Shapes.product(shape, 0) != values.length) {
            throw new IllegalArgumentException("Constant: " + values.length + " values do not fill shape " + Shapes.py(shape));
        }
        if (shape.length == 0) {
            throw new IllegalArgumentException("Constant: use Constant(Number) for a scalar value");
        }
        int[] pos = {0};
        return nestLevel(values, shape, 0, pos, integral);
    }

    private static List<Object> nestLevel(double[] values, long[] shape, int axis, int[] pos, boolean integral) {
        List<Object> out = new ArrayList<>((int) shape[axis]);
        for (long i = 0; i < shape[axis]; i++) {
            if (axis == shape.length - 1) {
                double v = values[pos[0]++];
                out.add(integral ? (Object) (long) v : (Object) v);
            } else {
                out.add(nestLevel(values, shape, axis + 1, pos, integral));
            }
        }
        return out;
    }

    private void flatten(Object o, int axis, int[] pos) {
        if (axis == shape.length) {
            if (!(o instanceof Number n)) {
                throw new IllegalArgumentException("Constant: the value holds " + (o == null ? "null" : o.getClass().getSimpleName())
                        + " where a number was expected at nesting depth " + axis + " (ragged lists?)");
            }
            data[pos[0]++] = n.doubleValue();
            return;
        }
        if (!(o instanceof List<?> l) || l.size() != shape[axis]) {
            throw new IllegalArgumentException("Constant: the nested lists are not rectangular (expected shape " + Shapes.py(shape) + ")");
        }
        for (Object x : l) {
            flatten(x, axis + 1, pos);
        }
    }

    static Constant fromKwargs(Map<String, Object> kwargs) {
        Kwargs k = new Kwargs("constant", kwargs);
        Object v = k.required("value");
        k.done();
        if (v instanceof List<?> l) {
            return new Constant(l);
        }
        if (v instanceof Number n) {
            return new Constant(n);
        }
        throw new IllegalArgumentException("initializer 'constant': value must be a number or nested lists of numbers, got "
                + (v == null ? "null" : v.getClass().getSimpleName()));
    }

    /** @return true for a scalar value */
    public boolean isScalar() {
        return scalar != null;
    }

    /** @return the scalar value, or NaN for an array value */
    public double scalarValue() {
        return scalar != null ? scalar : Double.NaN;
    }

    /** @return a copy of the array value's shape, or null for a scalar */
    public long[] valueShape() {
        return shape == null ? null : shape.clone();
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        if (scalar != null) {
            Fill.constant(arr, scalar);
        } else {
            broadcastAssign(desc, arr, data, shape);
        }
    }

    /**
     * {@code arr[:] = value} with NumPy broadcasting of {@code value} (shape {@code vshape}) to
     * the array's shape.
     */
    static void broadcastAssign(InitDesc desc, NDArray arr, double[] value, long[] vshape) {
        long[] t = arr.shape().dims();
        int m = vshape.length;
        int lead = 0;
        while (m - lead > t.length && vshape[lead] == 1) {
            lead++;
        }
        long[] v = Arrays.copyOfRange(vshape, lead, m);
        boolean ok = v.length <= t.length;
        for (int i = 0; ok && i < v.length; i++) {
            long td = t[t.length - v.length + i];
            ok = v[i] == td || v[i] == 1;
        }
        if (!ok) {
            throw new IllegalArgumentException("Constant: cannot broadcast a value of shape " + Shapes.py(vshape)
                    + " to parameter " + desc.name() + " of shape " + Shapes.py(t));
        }
        if (Arrays.equals(v, t)) {
            Fill.values(arr, value);
            return;
        }
        int n = Fill.javaSize(arr, "parameter " + desc.name());
        // source stride of each target axis (0 where the value is broadcast)
        long[] srcStride = new long[t.length];
        long s = 1;
        for (int i = v.length - 1; i >= 0; i--) {
            int ti = t.length - v.length + i;
            srcStride[ti] = v[i] == 1 ? 0 : s;
            s *= v[i];
        }
        double[] out = new double[n];
        long[] idx = new long[t.length];
        long src = 0;
        for (int k = 0; k < n; k++) {
            out[k] = value[(int) src];
            // advance the multi-index (last axis fastest) and the source offset
            for (int a = t.length - 1; a >= 0; a--) {
                idx[a]++;
                src += srcStride[a];
                if (idx[a] < t[a]) {
                    break;
                }
                src -= srcStride[a] * idx[a];
                idx[a] = 0;
            }
        }
        Fill.values(arr, out);
    }
}
