package dev.kiln.reliability;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.examples.CnnNets;
import dev.kiln.examples.MnistMlp;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.Optimizers;
import dev.kiln.optimizer.Updater;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Several trainers on one device at once, one per thread (docs/module-api.md, "Threads"): each
 * thread binds its own executor, copies a new batch in, runs forward and backward and an SGD
 * {@link Updater} step, eight steps in all, while a further thread copies arrays to and from the
 * device and runs imperative operators on it. Every trainer's outputs and weights equal those of
 * the same trainer run alone, bit for bit, and the side thread's results are exact.
 *
 * <p>On a GPU this is the case the CUDA graph recordings must survive: every trainer records its
 * passes and its fused update at its second step, all at about the same time (a barrier starts
 * them together), each on a stream of its own, while the others' kernels run on the device's
 * stream and the side thread's copies on the legacy stream. Also called by {@code
 * GpuConsistencyTest} with gpu(0).
 */
@ExtendWith(NoLeaks.class)
public class ConcurrentTrainingTest {
    private static final int STEPS = 8;

    /** One trainer: a network, its data shape and its seed. */
    private record Trainer(Symbol net, long[] dataShape, int seed) {}

    private static List<Trainer> trainers() {
        return List.of(new Trainer(MnistMlp.network(), new long[] {32, 784}, 1),
                new Trainer(MnistMlp.network(), new long[] {48, 784}, 2),
                new Trainer(CnnNets.lenet(), new long[] {16, 1, 28, 28}, 3));
    }

    @Test
    void trainersOnTheCpuAtOnceMatchEachRunAlone() throws Exception {
        checkOn(Context.cpu());
    }

    /**
     * Runs every trainer alone, then all at once with the side thread, on {@code ctx}, and compares.
     *
     * @param ctx the device every trainer and the side thread use
     */
    public static void checkOn(Context ctx) throws Exception {
        boolean gpu = ctx.isGpu();
        List<Trainer> ts = trainers();
        List<List<float[]>> alone = new ArrayList<>();
        for (Trainer t : ts) {
            alone.add(train(t, ctx, null, gpu));
        }
        ExecutorService pool = Executors.newFixedThreadPool(ts.size() + 1);
        try {
            CyclicBarrier start = new CyclicBarrier(ts.size() + 1);
            AtomicBoolean done = new AtomicBoolean();
            List<Future<List<float[]>>> runs = new ArrayList<>();
            for (Trainer t : ts) {
                runs.add(pool.submit(() -> train(t, ctx, start, gpu)));
            }
            AtomicInteger sideRounds = new AtomicInteger();
            Future<?> side = pool.submit(() -> {
                start.await(60, TimeUnit.SECONDS);
                sideTraffic(ctx, done, sideRounds);
                return null;
            });
            for (int i = 0; i < ts.size(); i++) {
                List<float[]> together = runs.get(i).get(300, TimeUnit.SECONDS);
                assertEquals(alone.get(i).size(), together.size());
                for (int k = 0; k < together.size(); k++) {
                    assertArrayEquals(alone.get(i).get(k), together.get(k),
                            ctx + " trainer " + i + " result " + k + ": run with the others vs run alone");
                }
            }
            done.set(true);
            side.get(60, TimeUnit.SECONDS);
            assertTrue(sideRounds.get() > 0, "the side thread ran");
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * Trains {@code t} for {@link #STEPS} steps on {@code ctx} (after {@code start}, when given):
     * the first output of every step, then every weight at the end.
     */
    private static List<float[]> train(Trainer t, Context ctx, CyclicBarrier start, boolean gpu) throws Exception {
        Symbol net = t.net();
        Map<String, long[]> shapes = Map.of("data", t.dataShape(), "softmax_label", new long[] {t.dataShape()[0]});
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
        }
        Map<String, DType> types = Map.of("data", DType.FLOAT32, "softmax_label", DType.FLOAT32);
        List<float[]> res = new ArrayList<>();
        try (Executor ex = Executor.simpleBind(net, ctx, shapes, types, reqs, new Executor.Options());
             Updater u = new Updater(Optimizers.create("sgd", Map.of("learning_rate", 0.05, "momentum", 0.9)))) {
            Random r = new Random(t.seed());
            List<String> names = new ArrayList<>();
            List<NDArray> weights = new ArrayList<>(), grads = new ArrayList<>();
            List<Object> idx = new ArrayList<>();
            for (Map.Entry<String, NDArray> e : ex.argDict().entrySet()) {
                if (reqs.get(e.getKey()) == GradReq.NULL) {
                    continue;
                }
                e.getValue().set(gaussian(r, e.getValue().size(), 0.1));
                idx.add(names.size());
                names.add(e.getKey());
                weights.add(e.getValue());
                grads.add(ex.gradDict().get(e.getKey()));
            }
            if (start != null) {
                start.await(60, TimeUnit.SECONDS);
            }
            NDArray data = ex.argDict().get("data"), label = ex.argDict().get("softmax_label");
            for (int step = 0; step < STEPS; step++) {
                data.set(gaussian(r, data.size(), 1.0));
                float[] y = new float[(int) label.size()];
                for (int i = 0; i < y.length; i++) {
                    y[i] = r.nextInt(10);
                }
                label.set(y);
                ex.forward(true);
                ex.backward();
                u.update(idx, grads, weights);
                res.add(ex.outputs().get(0).toFloatArray());
            }
            for (NDArray w : weights) {
                res.add(w.toFloatArray());
            }
            if (gpu && graphsOn()) {
                // every pass kind (forward, backward) recorded: a recording spoiled by another
                // thread's work would leave its pass eager ("recorded":false) with the same bits
                String report = ex.memoryReport().json();
                assertTrue(report.contains("\"recorded\":true") && !report.contains("\"recorded\":false"),
                        "every pass replays a CUDA graph: " + report);
                assertTrue(u.fusedGraphRecorded(), "the fused SGD update replays a graph");
            }
        }
        return res;
    }

    private static boolean graphsOn() {
        String graphs = System.getenv("KILN_CUDA_GRAPHS"), sync = System.getenv("KILN_CUDA_SYNC");
        return (graphs == null || graphs.isEmpty() || !graphs.startsWith("0")) && (sync == null || sync.isEmpty() || sync.startsWith("0"));
    }

    /**
     * Until {@code done}: arrays created on {@code ctx} and copied in, device-to-device copies,
     * imperative operators and copies out, each result checked exactly against the host.
     */
    private static void sideTraffic(Context ctx, AtomicBoolean done, AtomicInteger rounds) {
        Random r = new Random(99);
        while (!done.get() || rounds.get() == 0) {
            int n = 1000 + r.nextInt(50_000);
            float[] a = gaussian(r, n, 1.0), b = gaussian(r, n, 1.0);
            float[] want = new float[n];
            for (int i = 0; i < n; i++) {
                float twice = a[i] * 2f;
                want[i] = twice + b[i];
            }
            try (NDArray ha = NDArray.create(a, n); NDArray hb = NDArray.create(b, n);
                 NDArray da = ha.copyTo(ctx); NDArray db = NDArray.zeros(da.shape(), DType.FLOAT32, ctx);
                 NDArray twice = da.mul(2.0)) {
                hb.copyTo(db);
                try (NDArray db2 = db.copy(); NDArray sum = twice.add(db2)) {
                    assertArrayEquals(want, sum.toFloatArray(), "side thread round " + rounds.get() + ": 2a + b");
                    assertArrayEquals(b, db2.toFloatArray(), "side thread round " + rounds.get() + ": device copy");
                }
            }
            rounds.incrementAndGet();
        }
    }

    private static float[] gaussian(Random r, long n, double scale) {
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * scale);
        }
        return v;
    }
}
