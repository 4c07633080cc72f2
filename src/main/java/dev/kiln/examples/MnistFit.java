package dev.kiln.examples;

import dev.kiln.callback.BatchEndCallback;
import dev.kiln.callback.Callbacks;
import dev.kiln.callback.ProgressBar;
import dev.kiln.callback.Speedometer;
import dev.kiln.callback.TrainingLog;
import dev.kiln.engine.Engine;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.MNISTIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.symbol.Symbol;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The main job: MXNet's classic {@code Module.fit} on MNIST with the MLP 784-512-512-10, as a
 * Python MXNet user would write it:
 *
 * <pre>{@code
 * train = mx.io.MNISTIter(image=..., label=..., batch_size=128, flat=True, shuffle=True)
 * mod = mx.mod.Module(mlp, context=mx.cpu())
 * mod.fit(train, eval_data=val, optimizer='sgd',
 *         optimizer_params={'learning_rate': 0.1, 'momentum': 0.9, 'wd': 1e-4},
 *         initializer=mx.init.Xavier(), eval_metric='acc', num_epoch=10,
 *         batch_end_callback=[mx.callback.Speedometer(128, 100), mx.callback.ProgressBar(468)])
 * }</pre>
 *
 * <p>Data: the four gzipped IDX files of MNIST shipped in {@code data/mnist} (see its README).
 * With {@code --log DIR} the metrics go to {@code DIR/mnist-train.csv} and the curves to
 * {@code DIR/mnist-train.png}; with {@code --checkpoint PREFIX} a checkpoint is written each epoch.
 */
public final class MnistFit {
    private MnistFit() {}

    /** Validation metrics of the last epoch, and training speed. */
    public record Result(double trainAccuracy, double validationAccuracy, double samplesPerSecond) {}

    /** Trains on {@code cpu(0)} and returns the last epoch's validation accuracy; {@code quiet} drops the per-batch output. */
    public static Result fit(Path dir, int epochs, int batch, double lr, double momentum, long seed, boolean quiet, Path logDir,
            String checkpointPrefix) throws IOException {
        return fit(dir, epochs, batch, lr, momentum, seed, quiet, logDir, checkpointPrefix, Context.cpu());
    }

    /** As {@link #fit(Path, int, int, double, double, long, boolean, Path, String)} on the device {@code ctx} (e.g. {@code gpu(0)}). */
    public static Result fit(Path dir, int epochs, int batch, double lr, double momentum, long seed, boolean quiet, Path logDir,
            String checkpointPrefix, Context ctx) throws IOException {
        Symbol net = MnistMlp.network();
        Initializer.seed(seed);
        try (MNISTIter train = MNISTIter.builder().setImage(dir.resolve("train-images-idx3-ubyte.gz"))
                .setLabel(dir.resolve("train-labels-idx1-ubyte.gz")).setBatchSize(batch).optFlat(true).optShuffle(true)
                .optSeed((int) seed).build();
             MNISTIter val = MNISTIter.builder().setImage(dir.resolve("t10k-images-idx3-ubyte.gz"))
                .setLabel(dir.resolve("t10k-labels-idx1-ubyte.gz")).setBatchSize(100).optFlat(true).optShuffle(false).build();
             Module mod = Module.builder(net).context(ctx).build()) {
            int batchesPerEpoch = train.numExamples() / batch;
            List<BatchEndCallback> cbs = new ArrayList<>();
            TrainingLog log = null;
            if (logDir != null) {
                Files.createDirectories(logDir);
                log = new TrainingLog(logDir.resolve("mnist-train.csv"), logDir.resolve("mnist-train.png"), batch, 100);
                cbs.add(log);
            }
            if (!quiet) {
                cbs.add(new Speedometer(batch, 100));
                cbs.add(new ProgressBar(batchesPerEpoch));
            }
            double[] trainAcc = {Double.NaN};
            double[] valAcc = {Double.NaN};
            long[] seen = {0};
            long[] nanos = {0};
            long[] tic = {System.nanoTime()};
            BaseModule.FitArgs args = new BaseModule.FitArgs().evalData(val).evalMetric("acc").numEpoch(epochs)
                    .optimizer("sgd").optimizerParams(Map.of("learning_rate", lr, "momentum", momentum, "wd", 1e-4))
                    .initializer(new Xavier())
                    .batchEndCallback(cbs.toArray(new BatchEndCallback[0]))
                    .batchEndCallback(p -> {
                        if (p.nbatch() == 0) {
                            tic[0] = System.nanoTime();
                        } else {
                            seen[0] += batch;
                        }
                        if (p.nbatch() == batchesPerEpoch - 1) {
                            nanos[0] += System.nanoTime() - tic[0];
                        }
                    })
                    .epochSummary((epoch, tr, va) -> {
                        trainAcc[0] = tr.isEmpty() ? Double.NaN : tr.get(0).getValue();
                        valAcc[0] = va.isEmpty() ? Double.NaN : va.get(0).getValue();
                    });
            if (log != null) {
                args.evalEndCallback(log.scoreEndCallback());
            }
            if (checkpointPrefix != null) {
                args.epochEndCallback(Callbacks.moduleCheckpoint(mod, checkpointPrefix, 1, true));
            }
            try {
                mod.fit(train, args);
            } finally {
                if (log != null) {
                    log.close();
                }
            }
            return new Result(trainAcc[0], valAcc[0], nanos[0] == 0 ? 0 : seen[0] / (nanos[0] / 1e9));
        }
    }

    /**
     * Command line: {@code --epochs N --batch N --lr X --momentum X --threads N --seed N --data DIR --log DIR
     * --checkpoint PREFIX --gpu ID} ({@code --gpu} trains on {@code gpu(ID)} of a {@code -Pcuda} build).
     */
    public static void main(String[] args) throws IOException {
        int epochs = 10;
        int batch = 128;
        double lr = 0.1;
        double momentum = 0.9;
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
        long seed = 42;
        Path dir = Path.of("data/mnist");
        Path logDir = Path.of("target/mnist-log");
        String ck = null;
        Context ctx = Context.cpu();
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--epochs" -> epochs = Integer.parseInt(args[i + 1]);
                case "--batch" -> batch = Integer.parseInt(args[i + 1]);
                case "--lr" -> lr = Double.parseDouble(args[i + 1]);
                case "--momentum" -> momentum = Double.parseDouble(args[i + 1]);
                case "--threads" -> threads = Integer.parseInt(args[i + 1]);
                case "--seed" -> seed = Long.parseLong(args[i + 1]);
                case "--data" -> dir = Path.of(args[i + 1]);
                case "--log" -> logDir = Path.of(args[i + 1]);
                case "--checkpoint" -> ck = args[i + 1];
                case "--gpu" -> ctx = Context.gpu(Integer.parseInt(args[i + 1]));
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Engine.setNumThreads(threads);
        System.out.printf("Kiln Module.fit on MNIST, MLP 784-512-512-10: %d epochs, batch %d, SGD lr %.3g momentum %.2f, on %s, %d threads, %s%n",
                epochs, batch, lr, momentum, ctx, threads, Engine.simdIsa());
        Result r = fit(dir, epochs, batch, lr, momentum, seed, false, logDir, ck, ctx);
        System.out.printf("%nfinal validation accuracy %.4f, %.0f samples/s; curves in %s%n", r.validationAccuracy(),
                r.samplesPerSecond(), logDir.resolve("mnist-train.png"));
    }
}
