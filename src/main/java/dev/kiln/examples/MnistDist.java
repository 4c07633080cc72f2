package dev.kiln.examples;

import dev.kiln.callback.Callbacks;
import dev.kiln.engine.Engine;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.Mnist;
import dev.kiln.io.NDArrayIter;
import dev.kiln.kvstore.DistributedTrainingException;
import dev.kiln.kvstore.KVStore;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Data-parallel training of the MNIST MLP (784-512-512-10) with {@code Module.fit} over a
 * distributed KVStore, MXNet's recipe:
 * <pre>{@code
 * kv = mx.kv.create('dist_sync')
 * train = mx.io.MNISTIter(..., batch_size=32, num_parts=kv.num_workers, part_index=kv.rank)
 * mod.fit(train, kvstore=kv, optimizer='sgd', ...)   # rescale_grad = 1/(32 x workers)
 * }</pre>
 * Run it under the launcher, e.g. {@code Launcher -n 2 -- java -cp ... dev.kiln.examples.MnistDist}
 * with {@code kiln-kvstore-gloo} on the class path. Each worker takes the contiguous shard {@code
 * [rank, rank + 1) x samples / workers} of the first {@code --samples} training images, in order (no
 * shuffle, so a restart replays the same batches). {@code --checkpoint PREFIX}: rank 0 writes a
 * checkpoint with optimizer states after every epoch, and a new run resumes from the latest one.
 * {@code --reference N} runs one process with batch {@code N x batch} over the same sample stream N
 * workers see (step i takes batch i of every shard, in rank order): its parameters must equal the
 * distributed run's. {@code --out DIR} writes each rank's final parameters to {@code
 * DIR/params-rank<r>.params}; {@code --devices K} trains on K CPU contexts (the batch is sliced
 * as MXNet slices it and the KVStore sums the K gradients; with {@code --reference N --devices N}
 * each device computes exactly what one of N workers computes); {@code --progress K} prints {@code rank r epoch e step s} every K
 * steps.
 */
public final class MnistDist {
    private MnistDist() {}

    /** Command-line options. */
    public record Options(String kvstore, int epochs, int batch, int samples, double lr, double momentum, long seed, String checkpoint,
            int reference, Path data, Path out, int threads, int progress, int devices) {
        /** Parses {@code --name value} pairs. */
        public static Options parse(String[] args) {
            Map<String, String> m = new LinkedHashMap<>();
            for (int i = 0; i < args.length; i += 2) {
                if (!args[i].startsWith("--") || i + 1 >= args.length) {
                    throw new IllegalArgumentException("expected --option value pairs, got '" + args[i] + "'");
                }
                m.put(args[i].substring(2), args[i + 1]);
            }
            // each option is removed as it is read: what is left is unknown
            java.util.function.BinaryOperator<String> take = (k, d) -> {
                String v = m.remove(k);
                return v == null ? d : v;
            };
            String out = take.apply("out", null);
            Options o = new Options(take.apply("kvstore", "dist_sync"), Integer.parseInt(take.apply("epochs", "2")),
                    Integer.parseInt(take.apply("batch", "32")), Integer.parseInt(take.apply("samples", "60000")),
                    Double.parseDouble(take.apply("lr", "0.1")), Double.parseDouble(take.apply("momentum", "0.9")),
                    Long.parseLong(take.apply("seed", "42")), take.apply("checkpoint", null), Integer.parseInt(take.apply("reference", "0")),
                    Path.of(take.apply("data", "data/mnist")), out == null ? null : Path.of(out),
                    Integer.parseInt(take.apply("threads", "1")), Integer.parseInt(take.apply("progress", "0")),
                    Integer.parseInt(take.apply("devices", "1")));
            if (!m.isEmpty()) {
                throw new IllegalArgumentException("unknown options " + m.keySet());
            }
            return o;
        }
    }

    /**
     * Trains this worker's shard through {@code kv} (null: one process; with {@code o.reference() > 1}
     * the combined-batch reference) and returns the final parameters, copied to Java arrays. {@code
     * initial}, when not null, replaces the Xavier initialisation (threads of one JVM share the
     * initializer's seed generator, so they pass the same start explicitly).
     */
    public static Map<String, float[]> train(Options o, KVStore kv, Map<String, float[]> initial) throws IOException {
        int workers = kv == null ? 1 : kv.numWorkers();
        int rank = kv == null ? 0 : kv.rank();
        int ref = Math.max(1, o.reference());
        Mnist.Data d = Mnist.load(o.data(), "train");
        int samples = Math.min(o.samples(), d.count());
        int parts = kv == null ? ref : workers;
        int shard = samples / parts;
        int steps = shard / o.batch();
        if (steps < 1) {
            throw new IllegalArgumentException(samples + " samples over " + parts + " workers give no batch of " + o.batch());
        }
        int dim = d.rows() * d.cols();
        int rows = kv == null ? steps * o.batch() * ref : steps * o.batch();
        float[] x = new float[rows * dim];
        float[] y = new float[rows];
        for (int i = 0; i < rows; i++) {
            // worker: row i of its shard; reference: step s takes batch s of shard 0, 1, ... in turn
            int src = kv == null
                    ? (i / o.batch() % ref) * shard + (i / (o.batch() * ref)) * o.batch() + i % o.batch()
                    : rank * shard + i;
            System.arraycopy(d.images(), src * dim, x, i * dim, dim);
            y[i] = d.labels()[src];
        }
        int batch = kv == null ? o.batch() * ref : o.batch();
        int begin = 0;
        Initializer.seed(o.seed());
        Module mod;
        int latest = o.checkpoint() == null ? 0 : latestCheckpoint(o.checkpoint(), o.epochs());
        if (latest > 0) {
            mod = Module.load(o.checkpoint(), latest, true, b -> b.context(contexts(o.devices())));
            begin = latest;
            System.out.printf(Locale.ROOT, "rank %d: resuming from %s-%04d (epoch %d)%n", rank, o.checkpoint(), latest, latest);
        } else {
            mod = Module.builder(MnistMlp.network()).context(contexts(o.devices())).build();
        }
        try (NDScope scope = NDScope.open(); NDArrayIter it = NDArrayIter.builder().setData(x, rows, dim).optLabel(y).setBatchSize(batch)
                .build(); Module m = mod) {
            BaseModule.FitArgs args = new BaseModule.FitArgs().kvstore(kv != null ? kv : "local").evalMetric("acc").numEpoch(o.epochs()).beginEpoch(begin)
                    .optimizer("sgd").optimizerParams(Map.of("learning_rate", o.lr(), "momentum", o.momentum(), "wd", 1e-4))
                    .initializer(new Xavier());
            if (o.progress() > 0) {
                args.batchEndCallback(p -> {
                    if ((p.nbatch() + 1) % o.progress() == 0) {
                        System.out.printf(Locale.ROOT, "rank %d epoch %d step %d%n", rank, p.epoch(), p.nbatch() + 1);
                        System.out.flush();
                    }
                });
            }
            if (initial != null && begin == 0) {
                Map<String, NDArray> init = new LinkedHashMap<>();
                initial.forEach((k, v) -> init.put(k, NDArray.create(v, MnistMlp.paramShape(k))));
                args.argParams(init);
            }
            if (o.checkpoint() != null && rank == 0) {
                args.epochEndCallback(Callbacks.moduleCheckpoint(m, o.checkpoint(), 1, true));
            }
            long[] clock = {0, 0}; // start of step 10, steps timed since
            args.batchEndCallback(p -> {
                if (clock[0] == 0 && p.nbatch() == 9) {
                    clock[0] = System.nanoTime();
                } else if (clock[0] != 0) {
                    clock[1]++;
                }
            });
            m.fit(it, args);
            if (clock[1] > 0) {
                double ms = (System.nanoTime() - clock[0]) / 1e6 / clock[1];
                System.out.printf(Locale.ROOT, "rank %d: %.3f ms per step (batch %d, %d steps timed, the epoch-end work included), "
                        + "%.0f samples/s per worker%n", rank, ms, batch, clock[1], batch * 1000 / ms);
            }
            Map<String, float[]> out = new LinkedHashMap<>();
            m.getParams().get(0).forEach((k, v) -> out.put(k, v.toFloatArray()));
            return out;
        }
    }

    private static java.util.List<Context> contexts(int devices) {
        java.util.List<Context> c = new java.util.ArrayList<>();
        for (int d = 0; d < devices; d++) {
            c.add(Context.cpu(d));
        }
        return c;
    }

    /** The latest epoch in {@code 1..maxEpoch} with both a .params and a .states file under {@code prefix}, or 0. */
    static int latestCheckpoint(String prefix, int maxEpoch) {
        for (int e = maxEpoch; e >= 1; e--) {
            if (Files.exists(Path.of(String.format(Locale.ROOT, "%s-%04d.params", prefix, e)))
                    && Files.exists(Path.of(String.format(Locale.ROOT, "%s-%04d.states", prefix, e)))) {
                return e;
            }
        }
        return 0;
    }

    /** See the class comment; exits 3 with a one-line report when distributed training fails. */
    public static void main(String[] args) throws IOException {
        Options o = Options.parse(args);
        Engine.setNumThreads(o.threads());
        Map<String, float[]> params;
        int rank = 0;
        try (KVStore kv = o.reference() > 0 ? null : KVStore.create(o.kvstore())) {
            rank = kv == null ? 0 : kv.rank();
            if (kv != null) {
                System.out.printf(Locale.ROOT, "rank %d of %d: kvstore %s over %s, batch %d per worker%n", kv.rank(), kv.numWorkers(),
                        kv.type(), kv.collective() == null ? "one process" : kv.collective().backend(), o.batch());
            }
            params = train(o, kv, null);
        } catch (DistributedTrainingException e) {
            System.err.println("FAILED " + e.getMessage());
            System.exit(3);
            return;
        }
        if (o.out() != null) {
            Files.createDirectories(o.out());
            try (NDScope s = NDScope.open()) {
                Map<String, NDArray> nd = new LinkedHashMap<>();
                params.forEach((k, v) -> nd.put(k, NDArray.create(v, v.length)));
                NDArray.save(o.out().resolve("params-rank" + rank + ".params"), nd);
            }
        }
        System.out.printf(Locale.ROOT, "rank %d done%n", rank);
    }
}
