package dev.kiln.bench;

import dev.kiln.engine.Engine;
import dev.kiln.examples.MnistMlp;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.Mnist;
import dev.kiln.io.NDArrayIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.FusedUpdate;
import dev.kiln.symbol.Symbol;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the Java layer of the Module API costs: one epoch of the MLP 784-512-512-10 on the first
 * {@value #BATCHES} batches of 128 real MNIST images, SGD lr 0.1 momentum 0.9 wd 1e-4, accuracy
 * tracked, in samples/s.
 *
 * <ul>
 *   <li>{@code executorLoop}: issue #2's raw loop (MnistMlp.train): copy the batch into the
 *       executor's inputs, one forward+backward call, one {@code sgd_mom_update} per parameter,
 *       accuracy from the probabilities in Java.
 *   <li>{@code moduleFit}: {@code Module.fit} for one epoch over an {@code NDArrayIter} on the same
 *       samples: new batch arrays per batch, bind/init checks, prefetch, the fused optimizer call,
 *       the Accuracy metric, epoch logging (at WARN level, so not printed), parameter sync.
 *   <li>{@code executorLoopFused}: the raw loop with the update as one fused native call, the
 *       way Module's Updater runs it: moduleFit / executorLoopFused isolates the Java layer's
 *       cost (issue 3 asks for &lt; 3%).
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class ModuleFitBench {
    static final int BATCH = 128;
    static final int BATCHES = 50;
    static final int N = BATCH * BATCHES;

    @Param({"1"})
    public int threads;

    float[] images;
    float[] labels;
    // raw executor loop
    Executor ex;
    Map<String, NDArray> moms = new LinkedHashMap<>();
    Map<String, Object> upd = new LinkedHashMap<>();
    FusedUpdate fused;
    // Module.fit
    Module mod;
    NDArrayIter iter;
    int epoch;

    static Path mnistDir() {
        for (String c : new String[] {"data/mnist", "../data/mnist", System.getProperty("kiln.mnist", "data/mnist")}) {
            if (Files.exists(Path.of(c, "train-images-idx3-ubyte.gz"))) {
                return Path.of(c);
            }
        }
        throw new IllegalStateException("MNIST not found: run from the repository root or set -Dkiln.mnist=DIR");
    }

    @Setup(Level.Trial)
    public void setup() throws IOException {
        // every fit call after the first warns "Already bound" etc., as MXNet does: keep them out of the log
        System.setProperty("org.slf4j.simpleLogger.log.dev.kiln.module.Module", "error");
        Engine.setNumThreads(threads);
        Mnist.Data train = Mnist.load(mnistDir(), "train");
        images = new float[N * 784];
        labels = new float[N];
        System.arraycopy(train.images(), 0, images, 0, images.length);
        System.arraycopy(train.labels(), 0, labels, 0, labels.length);

        Symbol net = MnistMlp.network();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
        }
        ex = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {BATCH, 784}), Map.of(), reqs, new Executor.Options());
        Initializer.seed(1);
        Xavier xavier = new Xavier();
        for (Map.Entry<String, NDArray> e : ex.gradDict().entrySet()) {
            NDArray w = ex.argDict().get(e.getKey());
            xavier.init(new dev.kiln.init.InitDesc(e.getKey()), w);
            moms.put(e.getKey(), NDArray.zeros(w.shape(), DType.FLOAT32, Context.cpu()).detach());
        }
        upd.put("lr", 0.1);
        upd.put("momentum", 0.9);
        upd.put("wd", 1e-4);
        upd.put("rescale_grad", 1.0 / BATCH);
        fused = new FusedUpdate();
        Map<String, Object> fixed = new LinkedHashMap<>(upd);
        fixed.remove("lr");
        for (Map.Entry<String, NDArray> e : ex.gradDict().entrySet()) {
            NDArray w = ex.argDict().get(e.getKey());
            fused.add("sgd_mom_update", fixed, java.util.List.of("lr"), java.util.List.of(w, e.getValue(), moms.get(e.getKey())),
                    java.util.List.of(w));
        }

        iter = NDArrayIter.builder().setData(images, N, 784).optLabel(labels).setBatchSize(BATCH).build();
        mod = new Module(net);
        Initializer.seed(1);
        mod.fit(iter, fitArgs(0));
        epoch = 1;
    }

    static BaseModule.FitArgs fitArgs(int epoch) {
        return new BaseModule.FitArgs().beginEpoch(epoch).numEpoch(epoch + 1).initializer(new Xavier())
                .optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9, "wd", 1e-4));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        mod.close();
        iter.close();
        fused.close();
        moms.values().forEach(NDArray::close);
        ex.close();
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public long executorLoop() {
        return rawEpoch(() -> {
            for (Map.Entry<String, NDArray> e : ex.gradDict().entrySet()) {
                NDArray w = ex.argDict().get(e.getKey());
                NDArray.invokeInto("sgd_mom_update", upd, w, w, e.getValue(), moms.get(e.getKey()));
            }
        });
    }

    /** The raw loop with the update as one fused native call (what Module's Updater does). */
    @Benchmark
    @OperationsPerInvocation(N)
    public long executorLoopFused() {
        double[] lr = new double[fused.size()];
        java.util.Arrays.fill(lr, 0.1);
        return rawEpoch(() -> fused.run(lr));
    }

    /** One epoch of issue #2's loop with the given parameter update; returns the correct predictions. */
    private long rawEpoch(Runnable update) {
        NDArray data = ex.argDict().get("data");
        NDArray label = ex.argDict().get("softmax_label");
        NDArray prob = ex.outputs().get(0);
        float[] xb = new float[BATCH * 784];
        float[] yb = new float[BATCH];
        long correct = 0;
        for (int b = 0; b < BATCHES; b++) {
            System.arraycopy(images, b * BATCH * 784, xb, 0, xb.length);
            System.arraycopy(labels, b * BATCH, yb, 0, BATCH);
            data.set(xb);
            label.set(yb);
            ex.forwardBackward();
            update.run();
            float[] p = prob.toFloatArray();
            for (int k = 0; k < BATCH; k++) {
                int arg = 0;
                for (int c = 1; c < 10; c++) {
                    if (p[k * 10 + c] > p[k * 10 + arg]) {
                        arg = c;
                    }
                }
                correct += arg == (int) yb[k] ? 1 : 0;
            }
        }
        return correct;
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public void moduleFit() {
        mod.fit(iter, fitArgs(epoch++));
    }
}
