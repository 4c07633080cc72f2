package dev.kiln.module;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Batch-axis slicing and concatenation for the executor group. */
final class Slicing {
    private Slicing() {}

    /**
     * Copies {@code src[..., begin:end, ...]} (slice along {@code axis}) into {@code dst}, which
     * has the sliced shape. Axis 0 is a view plus one native copy; other axes copy row blocks.
     */
    static void copySlice(NDArray src, int axis, long begin, long end, NDArray dst) {
        long[] s = src.shape().dims();
        if (axis < 0 || axis >= s.length) {
            throw new IllegalArgumentException("batch axis " + axis + " is out of range for " + src.shape());
        }
        if (begin < 0 || end > s[axis] || begin >= end) {
            throw new IllegalArgumentException("slice [" + begin + ", " + end + ") is out of range for axis " + axis + " of " + src.shape());
        }
        if (axis == 0) {
            try (NDArray v = src.slice(begin, end)) {
                v.copyTo(dst);
            }
            return;
        }
        long outer = 1;
        for (int i = 0; i < axis; i++) {
            outer *= s[i];
        }
        long inner = 1;
        for (int i = axis + 1; i < s.length; i++) {
            inner *= s[i];
        }
        // src viewed as [outer, s[axis] * inner]: row o of dst is src row o, columns [begin*inner, end*inner).
        try (NDArray flat = src.reshape(outer, s[axis] * inner); NDArray t = flat.transpose();
             NDArray rows = t.slice(begin * inner, end * inner); NDArray back = rows.transpose()) {
            back.copyTo(dst);
        }
    }

    /** The most inputs of one Concat call (the registry's bound on arity parameters). */
    static final int MAX_CONCAT = 65536;

    /**
     * A new array: {@code parts} concatenated along {@code axis}, on {@code ctx}. More than
     * {@link #MAX_CONCAT} parts (a predict over that many batches) are concatenated in groups, then
     * the groups.
     */
    static NDArray concat(List<NDArray> parts, int axis, Context ctx) {
        if (parts.size() > MAX_CONCAT) {
            List<NDArray> groups = new ArrayList<>();
            try {
                for (int from = 0; from < parts.size(); from += MAX_CONCAT) {
                    groups.add(concat(parts.subList(from, Math.min(parts.size(), from + MAX_CONCAT)), axis, ctx));
                }
                return concat(groups, axis, ctx);
            } finally {
                groups.forEach(NDArray::close);
            }
        }
        List<NDArray> moved = new ArrayList<>();
        try {
            NDArray[] in = new NDArray[parts.size()];
            for (int i = 0; i < in.length; i++) {
                NDArray p = parts.get(i);
                if (p.context().equals(ctx)) {
                    in[i] = p;
                } else {
                    in[i] = p.copyTo(ctx).detach();
                    moved.add(in[i]);
                }
            }
            return NDArray.invoke("Concat", Map.of("dim", axis, "num_args", in.length), in).get(0).detach();
        } finally {
            moved.forEach(NDArray::close);
        }
    }
}
