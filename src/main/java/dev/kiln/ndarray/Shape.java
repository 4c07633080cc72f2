package dev.kiln.ndarray;

import java.util.Arrays;

/** An immutable array shape such as {@code (64,784)}. Thread-safe. */
public final class Shape {
    private final long[] dims;

    /** A shape with the given dimensions (each >= 0). */
    public Shape(long... dims) {
        for (long d : dims) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(dims));
            }
        }
        this.dims = dims.clone();
    }

    /** Shorthand for {@code new Shape(dims)}. */
    public static Shape of(long... dims) {
        return new Shape(dims);
    }

    /** Number of dimensions. */
    public int ndim() {
        return dims.length;
    }

    /** Dimension {@code i}; negative {@code i} counts from the end. */
    public long get(int i) {
        return dims[i < 0 ? dims.length + i : i];
    }

    /** Number of elements. */
    public long size() {
        long s = 1;
        for (long d : dims) {
            s = Math.multiplyExact(s, d);
        }
        return s;
    }

    /** A copy of the dimensions. */
    public long[] dims() {
        return dims.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Shape s && Arrays.equals(s.dims, dims);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(dims);
    }

    /** MXNet's notation: {@code (64,784)}, {@code (10,)}, {@code ()}. */
    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("(");
        for (int i = 0; i < dims.length; i++) {
            if (i > 0) {
                b.append(',');
            }
            b.append(dims[i]);
        }
        if (dims.length == 1) {
            b.append(',');
        }
        return b.append(')').toString();
    }
}
