package dev.kiln.rnn;

import java.util.Arrays;

/**
 * Shape and layout of one recurrent state, MXNet's {@code state_info} entry {@code {'shape': (0,
 * H), '__layout__': 'NC'}}; a 0 dimension (the batch) is left for shape inference.
 *
 * <p>Immutable and thread-safe.
 */
public final class StateInfo {
    private final long[] shape;
    private final String layout;

    /**
     * Creates a state description.
     *
     * @param shape the shape, 0 for unknown dimensions
     * @param layout the layout string, e.g. {@code "NC"} or {@code "LNC"}
     */
    public StateInfo(long[] shape, String layout) {
        if (shape == null || layout == null) {
            throw new IllegalArgumentException("StateInfo: shape and layout are required");
        }
        this.shape = shape.clone();
        this.layout = layout;
    }

    /** @return a copy of the shape (0 = unknown) */
    public long[] shape() {
        return shape.clone();
    }

    /** @return the layout, e.g. {@code "NC"} */
    public String layout() {
        return layout;
    }

    /** @return the shape as MXNet writes a tuple attribute, e.g. {@code (0, 4)} */
    public String shapeString() {
        StringBuilder sb = new StringBuilder("(");
        for (int i = 0; i < shape.length; i++) {
            sb.append(i == 0 ? "" : ", ").append(shape[i]);
        }
        return sb.append(shape.length == 1 ? ",)" : ")").toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StateInfo s && Arrays.equals(shape, s.shape) && layout.equals(s.layout);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(shape) * 31 + layout.hashCode();
    }

    @Override
    public String toString() {
        return "{shape=" + shapeString() + ", __layout__=" + layout + "}";
    }
}
