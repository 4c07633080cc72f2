package dev.kiln.kvstore;

import dev.kiln.engine.Engine;
import dev.kiln.examples.MnistDist;
import dev.kiln.io.NDArrayIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code Module.fit} over {@code dist_sync} on ranks that are threads: N workers with batch B end
 * with the parameters of one process with batch N x B over the same samples (MNIST MLP), every
 * worker holds the same weights, ranks agree on the number of steps, and a failing peer stops fit
 * with a report naming rank, epoch and step. The same runs on real processes over Gloo in
 * kvstore-gloo.
 */
@ExtendWith(NoLeaks.class)
class DistModuleFitTest {
    private static int threads;

    @BeforeAll
    static void oneThreadEach() {
        threads = Engine.numThreads();
        Engine.setNumThreads(1);
    }

    @AfterAll
    static void restore() {
        Engine.setNumThreads(threads);
    }

    static Map<String, float[]> initial(long seed) {
        Random r = new Random(seed);
        Map<String, float[]> m = new LinkedHashMap<>();
        for (String k : List.of("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "fc3_weight", "fc3_bias")) {
            long n = 1;
            for (long d : dev.kiln.examples.MnistMlp.paramShape(k)) {
                n *= d;
            }
            float[] a = new float[(int) n];
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) ((r.nextDouble() - 0.5) * 0.1);
            }
            m.put(k, a);
        }
        return m;
    }

    static double maxRelDiff(Map<String, float[]> a, Map<String, float[]> b) {
        double worst = 0;
        for (String k : a.keySet()) {
            float[] x = a.get(k);
            float[] y = b.get(k);
            double num = 0;
            double den = 0;
            for (int i = 0; i < x.length; i++) {
                num = Math.max(num, Math.abs(x[i] - y[i]));
                den = Math.max(den, Math.abs(y[i]));
            }
            worst = Math.max(worst, num / den);
        }
        return worst;
    }

    /**
     * The reference is one process with the combined batch on N CPU contexts: the batch is sliced as
     * MXNet slices it, so each context computes what one worker computes, and the local KVStore sums
     * the N gradients in device order, the order in which ThreadCollective sums ranks. The results
     * are therefore bit-identical. (One context with one N x B GEMM differs by rounding only, but a
     * rounding-size change can flip a ReLU at zero, and at lr 0.1 the runs then part; see
     * docs/distributed.md.)
     */
    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    void workersEqualOneProcessWithTheCombinedBatch(int n) throws Exception {
        String[] common = {"--samples", "2560", "--batch", "16", "--epochs", "2"};
        MnistDist.Options o = MnistDist.Options.parse(common);
        Map<String, float[]> init = initial(7);
        List<Map<String, float[]>> dist = ThreadRanks.all(n, (rank, c) -> {
            try (KVStore kv = KVStore.create("dist_sync", c)) {
                return MnistDist.train(o, kv, init);
            }
        });
        List<String> refArgs = new ArrayList<>(List.of(common));
        refArgs.addAll(List.of("--reference", Integer.toString(n), "--devices", Integer.toString(n)));
        Map<String, float[]> one = MnistDist.train(MnistDist.Options.parse(refArgs.toArray(new String[0])), null, init);
        for (int r = 0; r < n; r++) {
            for (String k : one.keySet()) {
                assertArrayEquals(dist.get(0).get(k), dist.get(r).get(k), "rank " + r + " holds rank 0's " + k);
            }
        }
        for (String k : one.keySet()) {
            assertArrayEquals(one.get(k), dist.get(0).get(k), k + ": " + n + " workers x batch 16 = one process x batch " + 16 * n
                    + " on " + n + " contexts, bit for bit");
        }
        assertTrue(maxRelDiff(init, one) > 1e-2, "training moved the weights");
    }

    static Symbol fc() {
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", Symbol.variable("data"), 2));
    }

    @Test
    void ranksStopTogetherWhenOnePartitionIsShorter() throws Exception {
        List<Integer> steps = ThreadRanks.all(2, (rank, c) -> {
            int rows = rank == 0 ? 40 : 28; // 10 and 7 batches of 4
            float[] x = new float[rows * 3];
            float[] y = new float[rows];
            for (int i = 0; i < rows; i++) {
                x[3 * i] = i % 5;
                y[i] = i % 2;
            }
            int[] seen = {0};
            try (NDScope s = NDScope.open(); KVStore kv = KVStore.create("dist_sync", c);
                 NDArrayIter it = NDArrayIter.builder().setData(x, rows, 3).optLabel(y).setBatchSize(4).build();
                 Module m = Module.builder(fc()).context(Context.cpu()).build()) {
                m.fit(it, new BaseModule.FitArgs().kvstore(kv).numEpoch(2).batchEndCallback(p -> seen[0]++));
            }
            return seen[0];
        });
        assertEquals(List.of(14, 14), steps, "7 steps per epoch on both ranks");
    }

    @Test
    void aFailingPeerStopsFitWithRankEpochAndStep() throws InterruptedException {
        var out = ThreadRanks.run(2, Duration.ofSeconds(3), (rank, c) -> {
            float[] x = new float[64 * 3];
            float[] y = new float[64];
            try (NDScope s = NDScope.open(); KVStore kv = KVStore.create("dist_sync", c);
                 NDArrayIter it = NDArrayIter.builder().setData(x, 64, 3).optLabel(y).setBatchSize(4).build();
                 Module m = Module.builder(fc()).context(Context.cpu()).build()) {
                m.fit(it, new BaseModule.FitArgs().kvstore(kv).numEpoch(3).batchEndCallback(p -> {
                    if (rank == 1 && p.epoch() == 1 && p.nbatch() == 5) {
                        throw new IllegalStateException("worker 1 crashes");
                    }
                }));
            }
            return null;
        });
        assertInstanceOf(IllegalStateException.class, out.get(1).error());
        DistributedTrainingException e = assertInstanceOf(DistributedTrainingException.class, out.get(0).error());
        assertEquals(0, e.rank());
        assertEquals(2, e.numWorkers());
        assertEquals(1, e.epoch());
        assertEquals(6, e.step(), "rank 0 waits for rank 1 in the next step's collective");
        assertTrue(e.getMessage().contains("rank 0 of 2 at epoch 1, step 6") && e.getMessage().contains("timed out"), e.getMessage());
        assertInstanceOf(CollectiveException.class, e.getCause());
    }

    @Test
    void rescaleGradIsOneOverBatchTimesWorkers() throws Exception {
        List<Double> rescale = ThreadRanks.all(2, (rank, c) -> {
            try (NDScope s = NDScope.open(); KVStore kv = KVStore.create("dist_sync", c);
                 NDArrayIter it = NDArrayIter.builder().setData(new float[24], 8, 3).optLabel(new float[8]).setBatchSize(4).build();
                 Module m = Module.builder(fc()).context(Context.cpu()).build()) {
                m.bind(it.provideData(), it.provideLabel(), true, false, false, null, "write");
                m.initParams(new dev.kiln.init.Uniform(0.01), null, null, false, false, false);
                m.initOptimizer(kv, "sgd", Map.of("learning_rate", 0.1), false);
                return m.optimizer().rescaleGrad();
            }
        });
        assertEquals(List.of(1.0 / 8, 1.0 / 8), rescale);
    }
}
