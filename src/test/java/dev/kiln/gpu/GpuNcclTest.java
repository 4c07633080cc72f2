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

    /**
     * A batch larger than one NCCL group (3,000 sums of one rank each, NCCL takes 2,048 calls per
     * group) in four dtypes: every output equals its part, and a batched broadcast leaves its arrays
     * as they were. A batch whose sums have different numbers of GPUs is refused.
     */
    @Test
    void aBatchLargerThanOneNcclGroupSumsEveryCollective() {
        dev.kiln.ndarray.DType[] types = {dev.kiln.ndarray.DType.FLOAT32, dev.kiln.ndarray.DType.FLOAT16,
            dev.kiln.ndarray.DType.FLOAT64, dev.kiln.ndarray.DType.INT32};
        List<NDArray> all = new ArrayList<>();
        try {
            List<List<NDArray>> parts = new ArrayList<>();
            List<NDArray> outs = new ArrayList<>();
            List<float[]> want = new ArrayList<>();
            for (int k = 0; k < 3000; k++) {
                float[] v = {k, -k * 0.5f, k % 7};
                try (NDArray h = NDArray.create(v, v.length); NDArray t = h.asType(types[k % types.length])) {
                    NDArray p = t.copyTo(Context.gpu(0));
                    NDArray o = NDArray.zeros(new dev.kiln.ndarray.Shape(v.length), t.dtype(), Context.gpu(0));
                    all.add(p);
                    all.add(o);
                    parts.add(List.of(p));
                    outs.add(o);
                    want.add(host(t));  // the value in its own dtype, as the host rounds it
                }
            }
            assertTrue(Nccl.reduceSumAll(parts, outs), Nccl.lastReason());
            assertTrue(Nccl.broadcastAll(parts, new int[parts.size()]), Nccl.lastReason());
            for (int k = 0; k < parts.size(); k++) {
                assertArrayEquals(want.get(k), host(outs.get(k)), 0f, "sum " + k + " (" + types[k % types.length] + ")");
                assertArrayEquals(want.get(k), host(parts.get(k).get(0)), 0f, "broadcast " + k);
            }
            // a second sum over another list of GPUs (here: one more array) cannot join the batch
            assertThrows(IllegalArgumentException.class,
                    () -> Nccl.reduceSumAll(List.of(parts.get(0), List.of(outs.get(0), outs.get(1))), outs.subList(0, 2)));
        } finally {
            all.forEach(NDArray::close);
        }
    }

    /**
     * Six keys of different sizes with an SGD optimizer in the {@code device} store over every GPU:
     * after two steps every pulled copy equals w - lr * (sum of gradients) twice, computed on the
     * host, wherever the store placed each key.
     */
    @Test
    void deviceStoreUpdatesManyKeysSpreadOverSeveralGpus() {
        int n = Engine.cudaDeviceCount();
        Assumptions.assumeTrue(n >= 2, "needs two GPUs, this machine has " + n);
        int[] sizes = {5000, 10, 3000, 3000, 7, 20000};
        List<NDArray> all = new ArrayList<>();
        try (KVStore kv = KVStore.create("device")) {
            kv.setOptimizer(dev.kiln.optimizer.Optimizers.create("sgd", java.util.Map.of("learning_rate", 0.5)));
            List<String> keys = new ArrayList<>();
            List<List<NDArray>> grads = new ArrayList<>(), outs = new ArrayList<>();
            List<float[]> want = new ArrayList<>();
            for (int k = 0; k < sizes.length; k++) {
                keys.add("k" + k);
                float[] w0 = new float[sizes[k]];
                for (int i = 0; i < w0.length; i++) {
                    w0[i] = (i % 11) * 0.25f;
                }
                try (NDArray init = NDArray.create(w0, w0.length)) {
                    kv.init(List.of("k" + k), List.of(init));
                }
                float[] sum = new float[sizes[k]];
                List<NDArray> gk = new ArrayList<>(), ok = new ArrayList<>();
                for (int d = 0; d < n; d++) {
                    float[] g = new float[sizes[k]];
                    for (int i = 0; i < g.length; i++) {
                        g[i] = (d + 1) * ((i + k) % 5 - 2) * 0.125f;
                        sum[i] += g[i];
                    }
                    gk.add(onGpu(d, g));
                    ok.add(onGpu(d, new float[sizes[k]]));
                }
                all.addAll(gk);
                all.addAll(ok);
                grads.add(gk);
                outs.add(ok);
                float[] w = w0.clone();
                for (int step = 0; step < 2; step++) {
                    for (int i = 0; i < w.length; i++) {
                        w[i] -= 0.5f * sum[i];
                    }
                }
                want.add(w);
            }
            for (int step = 0; step < 2; step++) {
                kv.pushPull(keys, grads, outs);
            }
            for (int k = 0; k < sizes.length; k++) {
                for (NDArray o : outs.get(k)) {
                    assertArrayEquals(want.get(k), host(o), 0f, "key k" + k + " on " + o.context());
                }
            }
        } finally {
            all.forEach(NDArray::close);
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
            kv.push(List.of("w"), List.of(grads));
            // the sum went through NCCL, not the copy fallback (this test runs only where NCCL was found)
            assertTrue(Nccl.lastReason().isEmpty(), "the device store summed with NCCL: " + Nccl.lastReason());
            kv.pull(List.of("w"), List.of(outs));
            assertTrue(Nccl.lastReason().isEmpty(), "the device store broadcast with NCCL: " + Nccl.lastReason());
            for (NDArray o : outs) {
                assertArrayEquals(want, host(o), 0f, "sum on " + o.context());
            }
        } finally {
            grads.forEach(NDArray::close);
            outs.forEach(NDArray::close);
        }
    }
}
