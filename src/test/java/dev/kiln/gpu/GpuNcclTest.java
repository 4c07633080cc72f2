package dev.kiln.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.Engine;
import dev.kiln.engine.KilnException;
import dev.kiln.kvstore.KVStore;
import dev.kiln.kvstore.Nccl;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * NCCL on the GPUs there are: a one-GPU clique (reduce and broadcast of one rank), two arrays on
 * one GPU refused, and with two or more GPUs the {@code device} store's sum and broadcast through
 * NCCL against the host sum. Skipped with the reason without a GPU or without NCCL.
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuNcclTest {
    @BeforeEach
    void needsGpuAndNccl() {
        Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
        Assumptions.assumeTrue(Nccl.describe().startsWith("NCCL "), "NCCL test skipped: " + Nccl.describe());
    }

    private static NDArray onGpu(int id, float... v) {
        try (NDArray h = NDArray.create(v, v.length)) {
            return h.copyTo(Context.gpu(id));
        }
    }

    private static float[] host(NDArray a) {
        try (NDArray h = a.copyTo(Context.cpu())) {
            return h.toFloatArray();
        }
    }

    @Test
    void oneGpuCliqueCopiesAndRefusesASharedDevice() {
        System.out.println("GpuNcclTest: " + Nccl.describe() + ", " + Engine.cudaDeviceCount() + " GPU(s)");
        try (NDArray a = onGpu(0, 1, -2, 3.5f); NDArray out = onGpu(0, 0, 0, 0); NDArray b = onGpu(0, 7, 8, 9)) {
            assertTrue(Nccl.reduceSum(List.of(a), out), Nccl.lastReason());
            assertArrayEquals(new float[] {1, -2, 3.5f}, host(out));
            assertTrue(Nccl.broadcast(List.of(a), 0), Nccl.lastReason());
            assertThrows(KilnException.class, () -> Nccl.reduceSum(List.of(a, b), out), "two arrays on gpu(0)");
        }
    }

    @Test
    void deviceStoreSumsAndBroadcastsOverSeveralGpus() {
        int n = Engine.cudaDeviceCount();
        Assumptions.assumeTrue(n >= 2, "needs two GPUs, this machine has " + n);
        List<NDArray> grads = new ArrayList<>(), outs = new ArrayList<>();
        float[] want = new float[1000];
        try (KVStore kv = KVStore.create("device"); NDArray init = NDArray.zeros(1000)) {
            for (int d = 0; d < n; d++) {
                float[] g = new float[1000];
                for (int i = 0; i < g.length; i++) {
                    g[i] = (float) (d + 1) * (i % 7 - 3);
                    want[i] += g[i];
                }
                grads.add(onGpu(d, g));
                outs.add(onGpu(d, new float[1000]));
            }
            kv.init(List.of("w"), List.of(init));
            kv.pushPull(List.of("w"), List.of(grads), List.of(outs));
            for (NDArray o : outs) {
                assertArrayEquals(want, host(o), 0f, "sum on " + o.context());
            }
        } finally {
            grads.forEach(NDArray::close);
            outs.forEach(NDArray::close);
        }
    }
}
