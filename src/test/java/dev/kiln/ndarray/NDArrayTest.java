package dev.kiln.ndarray;

import dev.kiln.engine.Engine;
import dev.kiln.engine.KilnException;
import dev.kiln.engine.KilnOutOfMemoryException;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class NDArrayTest {
    @Test
    void closeIsIdempotentAndUseAfterCloseThrows() {
        NDArray a = NDArray.create(new float[] {1, 2, 3}, 3).setName("a");
        a.close();
        a.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, a::toFloatArray);
        assertTrue(e.getMessage().contains("'a'") && e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> a.add(1));
    }

    @Test
    void viewsKeepStorageAliveAfterTheOwnerCloses() {
        NDArray a = NDArray.create(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        NDArray v = a.reshape(3, 2);
        NDArray s = a.slice(1, 2);
        a.close();
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, v.toFloatArray());
        assertArrayEquals(new float[] {4, 5, 6}, s.toFloatArray());
        s.set(new float[] {7, 8, 9});
        assertArrayEquals(new float[] {1, 2, 3, 7, 8, 9}, v.toFloatArray());
        v.close();
        s.close();
        assertEquals(0, Engine.memory(Context.cpu()).currentBytes());
    }

    @Test
    void scopeClosesTemporariesButNotDetachedResults() {
        NDArray kept;
        NDArray a = NDArray.create(new double[] {1, 2, 3, 4}, 2, 2);
        try (NDScope scope = NDScope.open()) {
            NDArray t = a.mul(a).add(1);
            kept = t.sum().detach();
            assertTrue(scope.size() >= 2);
        }
        assertEquals(1 + 1 + 4 + 1 + 9 + 1 + 16 + 1 - 0, kept.scalar() + 0, 1e-12);
        kept.close();
        a.close();
    }

    @Test
    void arithmeticMatchesJava() {
        try (NDScope s = NDScope.open()) {
            NDArray a = NDArray.create(new double[] {1, -2, 3, -4, 5, -6}, 2, 3);
            NDArray b = NDArray.create(new double[] {0.5, 1, 1.5}, 3);
            assertArrayEquals(new double[] {1.5, -1, 4.5, -3.5, 6, -4.5}, a.add(b).toDoubleArray(), 1e-12);
            assertArrayEquals(new double[] {2, -4, 6, -8, 10, -12}, a.mul(2).toDoubleArray(), 1e-12);
            assertArrayEquals(new double[] {1, 2, 3, 4, 5, 6}, a.abs().toDoubleArray(), 1e-12);
            assertArrayEquals(new double[] {2, -5}, a.sum(1).toDoubleArray(), 1e-12);
            assertArrayEquals(new double[] {1, 5, 3}, a.clip(-1, 5).abs().max(0).toDoubleArray(), 1e-12);
            NDArray m = a.dot(NDArray.create(new double[] {1, 0, 0, 1, 1, 1}, 3, 2));
            assertArrayEquals(new double[] {4, 1, -10, -1}, m.toDoubleArray(), 1e-12);
            assertArrayEquals(new double[] {1, -4, -2, 5, 3, -6}, a.transpose().toDoubleArray(), 1e-12);
        }
    }

    @Test
    void randomIsSeededAndTypesConvert() {
        try (NDScope s = NDScope.open()) {
            NDArray u1 = NDArray.randomUniform(-1, 1, Shape.of(1000), DType.FLOAT32, Context.cpu(), 5);
            NDArray u2 = NDArray.randomUniform(-1, 1, Shape.of(1000), DType.FLOAT32, Context.cpu(), 5);
            assertArrayEquals(u1.toFloatArray(), u2.toFloatArray());
            double mean = u1.mean().scalar();
            assertTrue(Math.abs(mean) < 0.1, "mean " + mean);
            NDArray n = NDArray.randomNormal(3, 2, Shape.of(20000), DType.FLOAT64, Context.cpu(), 1);
            assertEquals(3, n.mean().scalar(), 0.1);
            NDArray i = NDArray.create(new float[] {1.7f, -2.2f}, 2).asType(DType.INT32);
            assertArrayEquals(new double[] {1, -2}, i.toDoubleArray(), 0);
        }
    }

    @Test
    void nioBuffersInAndOut() {
        try (NDArray a = NDArray.zeros(2, 2)) {
            ByteBuffer in = ByteBuffer.allocateDirect(16).order(ByteOrder.LITTLE_ENDIAN);
            in.putFloat(1).putFloat(2).putFloat(3).putFloat(4).flip();
            a.set(in);
            ByteBuffer out = ByteBuffer.allocateDirect(20).order(ByteOrder.LITTLE_ENDIAN);
            out.putInt(99);
            a.copyTo(out);
            assertEquals(20, out.position());
            assertEquals(3f, out.getFloat(12));
            ByteBuffer heap = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            a.copyTo(heap);
            assertEquals(4f, heap.getFloat(12));
            assertThrows(IllegalArgumentException.class, () -> a.copyTo(ByteBuffer.allocateDirect(8)));
        }
    }

    @Test
    void badInputGivesClearExceptions() {
        try (NDArray a = NDArray.zeros(2, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> a.set(new float[5]));
            assertTrue(e.getMessage().contains("(2,3)"), e.getMessage());
            KilnException k = assertThrows(KilnException.class, () -> a.reshape(4, 2));
            assertTrue(k.getMessage().contains("(2,3)") && k.getMessage().contains("(4,2)"), k.getMessage());
            assertThrows(KilnException.class, () -> a.slice(2, 5));
            try (NDScope s = NDScope.open()) {
                KilnException b = assertThrows(KilnException.class, () -> a.add(NDArray.zeros(4, 5)));
                assertTrue(b.getMessage().contains("(2,3)") && b.getMessage().contains("(4,5)"), b.getMessage());
            }
        }
        KilnOutOfMemoryException oom = assertThrows(KilnOutOfMemoryException.class,
                () -> NDArray.zeros(Shape.of(1L << 20, 1L << 20, 1L << 10), DType.FLOAT32, Context.cpu()));
        assertTrue(oom.getMessage().contains("out of memory"), oom.getMessage());
        KilnException gpu = assertThrows(KilnException.class, () -> NDArray.zeros(Shape.of(2), DType.FLOAT32, Context.gpu(0)));
        assertTrue(gpu.getMessage().toLowerCase().contains("cuda"), gpu.getMessage());
    }

    @Test
    void paramsRoundTripKeepsNamesTypesAndValues(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("x.params");
        Map<String, NDArray> m = new LinkedHashMap<>();
        try (NDScope s = NDScope.open()) {
            m.put("arg:w", NDArray.create(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
            m.put("aux:v", NDArray.create(new double[] {0.25, -1}, 2));
            NDArray.save(f, m);
            Map<String, NDArray> back = NDArray.load(f);
            assertEquals(m.keySet(), back.keySet());
            assertEquals(DType.FLOAT64, back.get("aux:v").dtype());
            assertEquals(Shape.of(2, 3), back.get("arg:w").shape());
            assertArrayEquals(m.get("arg:w").toFloatArray(), back.get("arg:w").toFloatArray());
            back.values().forEach(NDArray::close);
        }
        byte[] bytes = Files.readAllBytes(f);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x112L, b.getLong(0), "MXNet list magic");
        Files.write(f, java.util.Arrays.copyOf(bytes, bytes.length - 3));
        assertThrows(java.io.IOException.class, () -> NDArray.load(f));
    }

    /** A creation that fails after allocating frees what it allocated (NoLeaks checks it). */
    @Test
    void failedCreationLeavesNothingAllocated() {
        org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class,
                () -> NDArray.fromBytes(new byte[3], new Shape(2), DType.FLOAT32, Context.cpu()));
        org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> NDArray.create(new float[3], 2, 2));
    }
}
