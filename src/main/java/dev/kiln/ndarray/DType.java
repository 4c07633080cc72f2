package dev.kiln.ndarray;

/**
 * Element types, numbered as MXNet numbers them (the ids are part of the {@code .params} format).
 * Kernels compute in {@link #FLOAT32} and {@link #FLOAT64}. Every floating-point operator also takes
 * {@link #FLOAT16} and {@link #BFLOAT16}: it widens them to float32, computes, and rounds each output
 * once (to nearest even), so accumulation is in float32 (docs/mixed-precision.md). Integer types
 * can be stored, loaded, saved, converted and used as indices.
 */
public enum DType {
    FLOAT32(0, "float32", 4),
    FLOAT64(1, "float64", 8),
    FLOAT16(2, "float16", 2),
    UINT8(3, "uint8", 1),
    INT32(4, "int32", 4),
    INT8(5, "int8", 1),
    INT64(6, "int64", 8),
    /** The upper half of a float32 (8 exponent bits, 7 mantissa bits); MXNet's flag 12. */
    BFLOAT16(12, "bfloat16", 2);

    private final int id;
    private final String mxName;
    private final int bytes;

    DType(int id, String mxName, int bytes) {
        this.id = id;
        this.mxName = mxName;
        this.bytes = bytes;
    }

    /** MXNet's type flag. */
    public int id() {
        return id;
    }

    /** MXNet's name, e.g. {@code "float32"}. */
    public String mxName() {
        return mxName;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** The type with MXNet's flag {@code id}; throws {@link IllegalArgumentException} for unknown ids. */
    public static DType fromId(int id) {
        for (DType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown dtype id " + id);
    }

    /** The type with MXNet's name; throws {@link IllegalArgumentException} for unknown names. */
    public static DType fromName(String name) {
        for (DType t : values()) {
            if (t.mxName.equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "'");
    }

    /** True for float16 and bfloat16. */
    public boolean isLowPrecision() {
        return this == FLOAT16 || this == BFLOAT16;
    }

    /** True for float16, bfloat16, float32 and float64. */
    public boolean isFloatingPoint() {
        return isLowPrecision() || this == FLOAT32 || this == FLOAT64;
    }

    @Override
    public String toString() {
        return mxName;
    }
}
