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

/** The float16 decoding used for multi-precision master copies. */
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
}
