package dev.kiln.kvstore;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.optimizer.Optimizers;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The distributed KVStore contract (MXNet's tests/nightly/dist_sync_kvstore.py) on ranks that are
 * threads ({@link ThreadCollective}); values are exactly representable, so equality is exact. The
 * same contract runs on real processes over Gloo in kvstore-gloo.
 */
@ExtendWith(NoLeaks.class)
class DistKVStoreTest {
    @TempDir
    Path tmp;

    static final Shape SHAPE = new Shape(3, 5);
    static final Shape BIG = new Shape(1200, 7);

    static float[] full(Shape s, float v) {
        float[] a = new float[(int) s.size()];
        Arrays.fill(a, v);
        return a;
    }

    static NDArray nd(Shape s, float v) {
        return NDArray.create(full(s, v), s.dims());
    }

    static float[] pull(KVStore kv, String key, Shape s) {
        try (NDArray out = NDArray.zeros(s, DType.FLOAT32, Context.cpu())) {
            kv.pull(List.of(key), List.of(List.of(out)));
            return out.toFloatArray();
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void initKeepsRankZerosValueAndPushSumsOverWorkers(int n) throws Exception {
        List<float[]> got = ThreadRanks.all(n, (rank, c) -> {
            try (KVStore kv = KVStore.create("dist_sync", c, 64); NDArray v = nd(SHAPE, rank + 1); NDArray b = nd(BIG, 10 * rank)) {
                assertEquals(rank, kv.rank());
                assertEquals(n, kv.numWorkers());
                assertTrue(kv.isDistributed());
                kv.init(List.of("3", "99"), List.of(v, b));
                assertArrayEquals(full(SHAPE, 1), pull(kv, "3", SHAPE), "rank 0's value wins");
                assertArrayEquals(full(BIG, 0), pull(kv, "99", BIG), "rank 0's value wins");
                float[] last = null;
                for (int i = 0; i < 3; i++) {
                    try (NDArray g = nd(SHAPE, rank + 1); NDArray g2 = nd(SHAPE, 2 * (rank + 1)); NDArray gb = nd(BIG, rank)) {
                        kv.push(List.of("3", "99"), List.of(List.of(g, g2), List.of(gb)));
                    }
                    last = pull(kv, "3", SHAPE);
                    assertArrayEquals(full(BIG, n * (n - 1) / 2f), pull(kv, "99", BIG), "no updater: the stored value is the sum");
                }
                return last;
            }
        });
        for (float[] g : got) {
            assertArrayEquals(full(SHAPE, 3f * n * (n + 1) / 2), g, "sum over 2 devices and " + n + " workers");
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void replicatedOptimizerGivesEveryWorkerTheSameUpdate(int n) throws Exception {
        float rate = 0.25f;
        List<float[]> got = ThreadRanks.all(n, (rank, c) -> {
            try (KVStore kv = KVStore.create("dist_sync", c, 100); NDArray w = nd(BIG, 1)) {
                kv.setOptimizer(Optimizers.create("sgd", Map.of("learning_rate", 1.0, "rescale_grad", (double) rate)));
                kv.init(List.of("w"), List.of(w));
                float[] last = null;
                for (int i = 0; i < 3; i++) {
                    try (NDArray g = nd(BIG, rank + 1); NDArray out = NDArray.zeros(BIG, DType.FLOAT32, Context.cpu())) {
                        kv.pushPull(List.of("w"), List.of(List.of(g)), List.of(List.of(out)));
                        last = out.toFloatArray();
                        assertArrayEquals(full(BIG, 1 - rate * n * (n + 1) / 2f * (i + 1)), last, "step " + i);
                    }
                }
                return last;
            }
        });
        for (int r = 1; r < n; r++) {
            assertArrayEquals(got.get(0), got.get(r));
        }
    }

    @Test
    void broadcastRowSparsePullAndBarrier() throws Exception {
        ThreadRanks.all(3, (rank, c) -> {
            float[] rows = new float[12];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = (rank + 1) * 100 + i;
            }
            try (KVStore kv = KVStore.create("dist_sync", c); NDArray v = NDArray.create(rows, 4, 3);
                 NDArray o1 = NDArray.zeros(new Shape(4, 3), DType.FLOAT32, Context.cpu());
                 NDArray o2 = NDArray.zeros(new Shape(4, 3), DType.FLOAT32, Context.cpu());
                 NDArray ids = NDArray.create(new float[] {3, 1, 3}, 3)) {
                kv.broadcast(List.of("e"), List.of(v), List.of(List.of(o1, o2)));
                assertEquals(100, o1.toFloatArray()[0]);
                assertArrayEquals(o1.toFloatArray(), o2.toFloatArray());
                kv.rowSparsePull("e", o1, ids);
                assertArrayEquals(new float[] {0, 0, 0, 103, 104, 105, 0, 0, 0, 109, 110, 111}, o1.toFloatArray());
                try (NDArray bad = NDArray.create(new float[] {4}, 1)) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> kv.rowSparsePull("e", o1, bad));
                    assertTrue(e.getMessage().contains("row id 4.0 of key 'e'"), e.getMessage());
                }
                kv.barrier();
                assertThrows(IllegalArgumentException.class, () -> kv.broadcast(List.of("e"), List.of(v), List.of(List.of(o1))),
                        "a key is initialised once");
            }
            return null;
        });
    }

    /** 2-bit compression, worked by hand: threshold 0.5, residual carried to the second step. */
    @Test
    void twoBitCompressionMatchesTheHandWorkedSums() throws Exception {
        float[][] g1 = {{0.6f, -0.2f, 0.3f, -0.7f, 0.0f}, {0.2f, -0.4f, 1.5f, -0.1f, 0.5f}};
        float[][] g2 = {{0.0f, -0.4f, 0.3f, 0.0f, 0.0f}, {0.3f, -0.2f, 0.0f, -0.5f, -0.5f}};
        List<float[][]> got = ThreadRanks.all(2, (rank, c) -> {
            try (KVStore kv = KVStore.create("dist_sync", c); NDArray z = NDArray.zeros(new Shape(5), DType.FLOAT32, Context.cpu())) {
                kv.setGradientCompression(Map.of("type", "2bit", "threshold", 0.5));
                kv.init(List.of("k"), List.of(z));
                float[][] out = new float[2][];
                for (int step = 0; step < 2; step++) {
                    try (NDArray g = NDArray.create(step == 0 ? g1[rank] : g2[rank], 5)) {
                        kv.push(List.of("k"), List.of(List.of(g)));
                    }
                    out[step] = pull(kv, "k", new Shape(5));
                }
                return out;
            }
        });
        // step 1: rank 0 sends (+.5, 0, 0, -.5, 0), keeps (.1, -.2, .3, -.2, 0);
        //         rank 1 sends (0, 0, +.5, 0, +.5), keeps (.2, -.4, 1.0, -.1, 0)
        float[] s1 = {0.5f, 0f, 0.5f, -0.5f, 0.5f};
        // step 2: rank 0 residual+g = (.1, -.6, .6, -.2, 0) -> (0, -.5, +.5, 0, 0);
        //         rank 1 residual+g = (.5, -.6, 1.0, -.6, -.5) -> (+.5, -.5, +.5, -.5, -.5)
        float[] s2 = {0.5f, -1.0f, 1.0f, -0.5f, -0.5f};
        for (float[][] r : got) {
            assertArrayEquals(s1, r[0]);
            assertArrayEquals(s2, r[1]);
        }
    }

    @Test
    void deviceStoreCompressesEachDevice() {
        try (KVStore kv = KVStore.create("device"); NDArray z = NDArray.zeros(new Shape(4), DType.FLOAT32, Context.cpu());
             NDArray a = NDArray.create(new float[] {0.7f, 0.2f, -0.9f, 0.4f}, 4); NDArray b = NDArray.create(new float[] {0.3f, 0.3f, 0f, 0.2f}, 4)) {
            kv.setGradientCompression(Map.of("type", "2bit", "threshold", 0.5));
            kv.init(List.of("k"), List.of(z));
            kv.push(List.of("k"), List.of(List.of(a, b)));
            assertArrayEquals(new float[] {0.5f, 0f, -0.5f, 0f}, pull(kv, "k", new Shape(4)));
            kv.push(List.of("k"), List.of(List.of(a, b)));
            // residuals after step 1: a (.2, .2, -.4, .4), b (.3, .3, 0, .2); step 2: a sees (.9, .4, -1.3, .8) and sends
            // (+.5, 0, -.5, +.5); b sees (.6, .6, 0, .4) and sends (+.5, +.5, 0, 0): one quantum per value and step
            assertArrayEquals(new float[] {1.0f, 0.5f, -0.5f, 0.5f}, pull(kv, "k", new Shape(4)));
        }
    }

    /** A key given twice in one push: all its values summed, one update (MXNet's grouping). */
    @Test
    void aRepeatedKeyInOnePushIsSummedAndUpdatedOnce() {
        for (String type : List.of("local", "device")) {
            try (KVStore kv = KVStore.create(type); NDArray w = nd(new Shape(2), 1); NDArray a = nd(new Shape(2), 2);
                 NDArray b = nd(new Shape(2), 3); NDArray c = nd(new Shape(2), 5)) {
                kv.init(List.of("w"), List.of(w));
                kv.push(List.of("w", "w"), List.of(List.of(a, b), List.of(c)));
                assertArrayEquals(new float[] {10, 10}, pull(kv, "w", new Shape(2)), type + ": the sum of all values");
                kv.setOptimizer(dev.kiln.optimizer.Optimizers.create("sgd", Map.of("learning_rate", 0.5)));
                kv.push(List.of("w", "w"), List.of(List.of(a), List.of(b)));
                assertArrayEquals(new float[] {7.5f, 7.5f}, pull(kv, "w", new Shape(2)), type + ": one update with 2 + 3");
            }
        }
    }

    @Test
    void compressionParametersAreChecked() {
        try (KVStore local = KVStore.create("local"); KVStore dev = KVStore.create("device")) {
            assertThrows(IllegalArgumentException.class, () -> local.setGradientCompression(Map.of("type", "2bit")));
            assertTrue(assertThrows(IllegalArgumentException.class, () -> dev.setGradientCompression(Map.of("type", "1bit")))
                    .getMessage().contains("'1bit' is not supported"));
            assertThrows(IllegalArgumentException.class, () -> dev.setGradientCompression(Map.of("type", "2bit", "threshold", -1)));
            assertThrows(IllegalArgumentException.class, () -> dev.setGradientCompression(Map.of("type", "2bit", "thresh", 1)));
            assertThrows(IllegalArgumentException.class, () -> dev.setGradientCompression(Map.of()));
        }
    }

    @Test
    void storeTypesAndMissingEngine() {
        IllegalArgumentException a = assertThrows(IllegalArgumentException.class, () -> KVStore.create("dist_async"));
        assertTrue(a.getMessage().contains("not offered") && a.getMessage().contains("dist_sync"), a.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KVStore.create("dist_device_async"));
        assertThrows(IllegalArgumentException.class, () -> KVStore.create("nccl2"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> KVStore.create("dist_sync"));
        assertTrue(e.getMessage().contains("kiln-kvstore-gloo"), e.getMessage());
        try (KVStore kv = KVStore.create("local")) {
            assertEquals(1, kv.numWorkers());
            assertEquals(0, kv.rank());
            assertTrue(kv.isCapable("optimizer"));
            kv.barrier();
        }
    }

    @Test
    void workersWithDifferentParametersAreRefused() throws InterruptedException {
        var out = ThreadRanks.run(2, Duration.ofSeconds(10), (rank, c) -> {
            try (KVStore kv = KVStore.create("dist_sync", c); NDArray v = nd(rank == 0 ? SHAPE : BIG, 1)) {
                kv.init(List.of("w"), List.of(v));
                return null;
            }
        });
        for (var o : out) {
            assertInstanceOf(IllegalStateException.class, o.error());
            assertTrue(o.error().getMessage().contains("initialised different keys"), o.error().getMessage());
        }
    }

    @Test
    void aDeadPeerFailsThePushWithTheKeysNamed() throws InterruptedException {
        var out = ThreadRanks.run(2, Duration.ofSeconds(2), (rank, c) -> {
            try (KVStore kv = KVStore.create("dist_sync", c); NDArray v = nd(SHAPE, 1)) {
                kv.init(List.of("fc1_weight"), List.of(v));
                if (rank == 1) {
                    return null; // leaves without pushing
                }
                long t0 = System.nanoTime();
                CollectiveException e = assertThrows(CollectiveException.class, () -> kv.push(List.of("fc1_weight"), List.of(List.of(v))));
                assertTrue((System.nanoTime() - t0) / 1e9 < 15, "failed by the deadline");
                return e.getMessage();
            }
        });
        assertNull(out.get(1).error());
        assertNull(out.get(0).error());
        String msg = (String) out.get(0).value();
        assertNotNull(msg);
        assertTrue(msg.contains("rank 0/2") && msg.contains("allreduce of key 'fc1_weight'") && msg.contains("timed out"), msg);
    }

    @Test
    void optimizerStatesSaveAndLoadInEveryWorker() throws Exception {
        ThreadRanks.all(2, (rank, c) -> {
            Path f = tmp.resolve("opt-" + rank + ".states");
            try (KVStore kv = KVStore.create("dist_sync", c); NDArray w = nd(SHAPE, 1); NDArray g = nd(SHAPE, rank)) {
                kv.setOptimizer(Optimizers.create("sgd", Map.of("learning_rate", 0.5, "momentum", 0.9)));
                kv.init(List.of("w"), List.of(w));
                kv.push(List.of("w"), List.of(List.of(g)));
                kv.saveOptimizerStates(f);
                kv.loadOptimizerStates(f);
                assertTrue(Files.size(f) > 0);
            }
            return null;
        });
        assertArrayEquals(Files.readAllBytes(tmp.resolve("opt-0.states")), Files.readAllBytes(tmp.resolve("opt-1.states")),
                "replicas hold equal states");
    }

    @Test
    void bucketsSplitByDtypeAndSize() throws Exception {
        ThreadRanks.all(2, (rank, c) -> {
            List<String> keys = new ArrayList<>();
            List<NDArray> vals = new ArrayList<>();
            try (KVStore kv = KVStore.create("dist_sync", c, 40)) {
                for (int i = 0; i < 7; i++) {
                    keys.add("k" + i);
                    vals.add(NDArray.full(new Shape(i + 1), rank + 1, i % 3 == 0 ? DType.FLOAT64 : DType.FLOAT32, Context.cpu()));
                }
                kv.init(keys, vals);
                List<List<NDArray>> grads = new ArrayList<>();
                vals.forEach(v -> grads.add(List.of(v)));
                kv.push(keys, grads);
                for (int i = 0; i < 7; i++) {
                    try (NDArray o = NDArray.zeros(new Shape(i + 1), vals.get(i).dtype(), Context.cpu())) {
                        kv.pull(List.of(keys.get(i)), List.of(List.of(o)));
                        for (double d : o.toDoubleArray()) {
                            assertEquals(3.0, d, "key " + i);
                        }
                    }
                }
            } finally {
                vals.forEach(NDArray::close);
            }
            return null;
        });
    }
}
