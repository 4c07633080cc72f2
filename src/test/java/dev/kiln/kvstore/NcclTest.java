package dev.kiln.kvstore;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The NCCL entry points without a GPU: arrays on the CPU are declined with the reason (the
 * {@code device} store then sums through host copies, as its other tests check), bad arguments
 * fail clearly, and nothing leaks. {@code GpuNcclTest} covers the GPU side.
 */
@ExtendWith(NoLeaks.class)
class NcclTest {
    @Test
    void cpuArraysAreDeclinedWithTheReason() {
        assertFalse(Nccl.describe().isEmpty());
        try (NDArray a = NDArray.create(new float[] {1, 2, 3}, 3); NDArray b = NDArray.create(new float[] {4, 5, 6}, 3)) {
            assertFalse(Nccl.reduceSum(List.of(a, b), a));
            assertTrue(Nccl.lastReason().contains("GPU"), Nccl.lastReason());
            assertArrayEquals(new float[] {1, 2, 3}, a.toFloatArray(), "untouched");
            assertFalse(Nccl.broadcast(List.of(a, b), 0));
            assertArrayEquals(new float[] {4, 5, 6}, b.toFloatArray(), "untouched");
            assertThrows(KilnException.class, () -> Nccl.broadcast(List.of(a, b), 2));
            assertThrows(KilnException.class, () -> Nccl.reduceSum(List.of(), a));
        }
    }

    /** Batches: CPU arrays declined untouched, mismatched lists refused, an empty batch is done. */
    @Test
    void batchesOfCpuArraysAreDeclinedAndBadBatchesRefused() {
        try (NDArray a = NDArray.create(new float[] {1, 2}, 2); NDArray b = NDArray.create(new float[] {3, 4}, 2);
             NDArray c = NDArray.create(new float[] {5, 6}, 2)) {
            assertFalse(Nccl.reduceSumAll(List.of(List.of(a, b), List.of(b, c)), List.of(a, b)));
            assertTrue(Nccl.lastReason().contains("collective 0"), Nccl.lastReason());
            assertFalse(Nccl.broadcastAll(List.of(List.of(a, b), List.of(c, a)), new int[] {1, 0}));
            assertArrayEquals(new float[] {1, 2}, a.toFloatArray(), "untouched");
            assertArrayEquals(new float[] {3, 4}, b.toFloatArray(), "untouched");
            assertThrows(IllegalArgumentException.class, () -> Nccl.reduceSumAll(List.of(List.of(a, b)), List.of(a, b)));
            assertThrows(IllegalArgumentException.class, () -> Nccl.reduceSumAll(List.of(List.of(a, b), List.of(c)), List.of(a, c)));
            assertThrows(IllegalArgumentException.class, () -> Nccl.broadcastAll(List.of(List.of(a, b)), new int[] {0, 1}));
            assertThrows(KilnException.class, () -> Nccl.broadcastAll(List.of(List.of(a, b), List.of(b, c)), new int[] {0, 2}));
            assertTrue(Nccl.reduceSumAll(List.of(), List.of()));
            assertTrue(Nccl.lastReason().isEmpty());
        }
    }

    /** The device store on two CPU contexts still sums (through host copies). */
    @Test
    void deviceStoreWithoutGpusSumsAsBefore() {
        try (KVStore kv = KVStore.create("device");
             NDArray init = NDArray.create(new float[] {0, 0}, 2);
             NDArray g0 = NDArray.create(new float[] {1, 2}, 2);
             NDArray g1 = NDArray.zeros(new dev.kiln.ndarray.Shape(2), dev.kiln.ndarray.DType.FLOAT32, Context.cpu(1));
             NDArray o0 = NDArray.create(new float[] {0, 0}, 2);
             NDArray o1 = NDArray.zeros(new dev.kiln.ndarray.Shape(2), dev.kiln.ndarray.DType.FLOAT32, Context.cpu(1))) {
            g1.set(new float[] {10, 20});
            kv.init(List.of("w"), List.of(init));
            kv.pushPull(List.of("w"), List.of(List.of(g0, g1)), List.of(List.of(o0, o1)));
            assertArrayEquals(new float[] {11, 22}, o0.toFloatArray());
            assertArrayEquals(new float[] {11, 22}, o1.toFloatArray());
        }
    }
}
