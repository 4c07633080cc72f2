package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.testutil.NoLeaks;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The Java float16 reference decoder, and the native conversions checked against it. */
@ExtendWith(NoLeaks.class)
class HalfFloatsTest {
    @Test
    void decodesEveryClassOfValue() {
        assertEquals(1.0f, HalfFloats.toFloat((short) 0x3c00));
        assertEquals(-2.0f, HalfFloats.toFloat((short) 0xc000));
        assertEquals(65504f, HalfFloats.toFloat((short) 0x7bff));
        assertEquals(0x1p-24f, HalfFloats.toFloat((short) 0x0001));          // smallest subnormal
        assertEquals(0x3ffp-24f, HalfFloats.toFloat((short) 0x03ff));        // largest subnormal
        assertEquals(0x1p-14f, HalfFloats.toFloat((short) 0x0400));          // smallest normal
        assertEquals(Float.POSITIVE_INFINITY, HalfFloats.toFloat((short) 0x7c00));
        assertEquals(Float.NEGATIVE_INFINITY, HalfFloats.toFloat((short) 0xfc00));
        assertTrue(Float.isNaN(HalfFloats.toFloat((short) 0x7e00)));
        assertEquals(Float.floatToIntBits(-0.0f), Float.floatToIntBits(HalfFloats.toFloat((short) 0x8000)));
        // every finite float16 round-trips through the test's encoder
        for (int h = 0; h < 0x10000; h++) {
            int exp = (h >>> 10) & 0x1f;
            if (exp == 0 || exp == 31) {
                continue;
            }
            assertEquals((short) h, MultiPrecisionTest.toHalfBits(HalfFloats.toFloat((short) h)), "bits " + h);
        }
    }

    @Test
    void convertsArrays() {
        ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        b.putShort((short) 0x3c00).putShort((short) 0xb800).putShort((short) 0x0001).putShort((short) 0x7c00);
        try (NDArray h = NDArray.fromBytes(b.array(), new Shape(2, 2), DType.FLOAT16, Context.cpu());
             NDArray f = HalfFloats.toFloat32(h)) {
            assertEquals(DType.FLOAT32, f.dtype());
            assertEquals(new Shape(2, 2), f.shape());
            assertArrayEquals(new float[] {1, -0.5f, 0x1p-24f, Float.POSITIVE_INFINITY}, f.toFloatArray());
            assertThrows(IllegalArgumentException.class, () -> HalfFloats.toFloat32(f));
        }
    }

    /** Every float16 bit pattern: the native widening equals the Java decoder, bit for bit. */
    @Test
    void nativeWideningMatchesTheReferenceForEveryPattern() {
        ByteBuffer b = ByteBuffer.allocate(2 * 0x10000).order(ByteOrder.LITTLE_ENDIAN);
        for (int h = 0; h < 0x10000; h++) {
            b.putShort((short) h);
        }
        try (NDArray h = NDArray.fromBytes(b.array(), new Shape(0x10000), DType.FLOAT16, Context.cpu());
             NDArray f = h.asType(DType.FLOAT32)) {
            float[] got = f.toFloatArray();
            for (int i = 0; i < 0x10000; i++) {
                float want = HalfFloats.toFloat((short) i);
                if (Float.isNaN(want)) {
                    assertTrue(Float.isNaN(got[i]), "bits " + i);
                } else {
                    assertEquals(Float.floatToIntBits(want), Float.floatToIntBits(got[i]), "bits " + i);
                }
            }
        }
    }

    /** Native rounding float32 -> float16 equals the Java encoder (nearest even) on values around every float16. */
    @Test
    void nativeRoundingMatchesTheReferenceEncoder() {
        java.util.Random r = new java.util.Random(7);
        float[] x = new float[20000];
        for (int i = 0; i < x.length; i++) {
            int bits = 0x0400 + r.nextInt(0x7bfe - 0x0400);  // a normal float16 below the largest
            float base = HalfFloats.toFloat((short) bits);
            // the float16 value, the midpoint to the next one (a tie), and points near it
            float next = HalfFloats.toFloat((short) (bits + 1));
            float[] pick = {base, (base + next) / 2, Math.nextUp((base + next) / 2), Math.nextDown((base + next) / 2)};
            x[i] = (r.nextBoolean() ? 1 : -1) * pick[r.nextInt(4)];
        }
        try (NDArray f = NDArray.create(x, x.length); NDArray h = f.asType(DType.FLOAT16)) {
            ByteBuffer got = ByteBuffer.wrap(h.toBytes()).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < x.length; i++) {
                assertEquals(MultiPrecisionTest.toHalfBits(x[i]), got.getShort(), "value " + x[i]);
            }
        }
    }
}
