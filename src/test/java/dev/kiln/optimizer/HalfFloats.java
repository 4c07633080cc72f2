package dev.kiln.optimizer;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A Java reference decoder of IEEE binary16, independent of the native conversions it checks
 * (every float16 value is a float32 value, so decoding is exact). Stateless.
 */
final class HalfFloats {
    private HalfFloats() {}

    /** The float32 value of IEEE binary16 bits (subnormals, infinities and NaN included). */
    static float toFloat(short bits) {
        int h = bits & 0xffff;
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mant << 13));
        }
        if (exp == 0) {
            if (mant == 0) {
                return Float.intBitsToFloat(sign);
            }
            // subnormal: mant * 2^-24
            float v = mant * 0x1p-24f;
            return sign != 0 ? -v : v;
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    /**
     * A new float32 copy (same shape and device) of a float16 array, decoded in Java.
     *
     * @param half the float16 array (not closed)
     * @return a new array owned by the caller
     */
    static NDArray toFloat32(NDArray half) {
        if (half.dtype() != DType.FLOAT16) {
            throw new IllegalArgumentException("expected a float16 array, got " + half.dtype());
        }
        ByteBuffer in = ByteBuffer.wrap(half.toBytes()).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer out = ByteBuffer.allocate(in.capacity() * 2).order(ByteOrder.LITTLE_ENDIAN);
        while (in.hasRemaining()) {
            out.putFloat(toFloat(in.getShort()));
        }
        return NDArray.fromBytes(out.array(), half.shape(), DType.FLOAT32, half.context());
    }
}
