package dev.kiln.rnn;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;

import java.util.List;

/**
 * Byte-exact copies between weight arrays for pack/unpack (any dtype, values never converted).
 * Internal. Every method returns a new array owned by the caller.
 */
final class Weights {
    private Weights() {}

    /** An array's bytes read once, for taking many slices. */
    static final class Source {
        private final NDArray a;
        private byte[] bytes;

        Source(NDArray a) {
            this.a = a;
        }

        /** Elements [offset, offset + count) in row-major order, copied into {@code shape}. */
        NDArray range(long offset, long count, long[] shape, String what) {
            if (offset < 0 || count < 0 || offset + count > a.size()) {
                throw new IllegalArgumentException(what + ": elements [" + offset + ", " + (offset + count)
                        + ") are outside an array of " + a.size() + " elements (shape " + a.shape() + ")");
            }
            if (bytes == null) {
                bytes = a.toBytes();
            }
            int es = a.dtype().bytes();
            byte[] part = new byte[Math.toIntExact(count * es)];
            System.arraycopy(bytes, Math.toIntExact(offset * es), part, 0, part.length);
            return NDArray.fromBytes(part, new Shape(shape), a.dtype(), a.context());
        }

        /** Rows [begin, end) of axis 0. */
        NDArray rows(long begin, long end, String what) {
            long[] d = a.shape().dims();
            if (d.length < 1 || begin < 0 || end > d[0] || begin > end) {
                throw new IllegalArgumentException(what + ": cannot take rows [" + begin + ", " + end
                        + ") of an array of shape " + a.shape());
            }
            long row = 1;
            for (int i = 1; i < d.length; i++) {
                row *= d[i];
            }
            long[] nd = d.clone();
            nd[0] = end - begin;
            return range(begin * row, (end - begin) * row, nd, what);
        }
    }

    /** Row-major concatenation of the arrays' elements into one array of {@code shape}. */
    static NDArray concat(List<NDArray> parts, long[] shape, String what) {
        if (parts.isEmpty()) {
            throw new IllegalArgumentException(what + ": nothing to concatenate");
        }
        NDArray first = parts.get(0);
        long total = 0;
        for (NDArray p : parts) {
            if (p.dtype() != first.dtype()) {
                throw new IllegalArgumentException(what + ": mixed dtypes " + first.dtype() + " and " + p.dtype());
            }
            total += p.size();
        }
        long want = new Shape(shape).size();
        if (total != want) {
            throw new IllegalArgumentException(what + ": the parts hold " + total + " elements but shape " + new Shape(shape)
                    + " needs " + want);
        }
        byte[] out = new byte[Math.toIntExact(total * first.dtype().bytes())];
        int pos = 0;
        for (NDArray p : parts) {
            byte[] b = p.toBytes();
            System.arraycopy(b, 0, out, pos, b.length);
            pos += b.length;
        }
        return NDArray.fromBytes(out, new Shape(shape), first.dtype(), first.context());
    }
}
