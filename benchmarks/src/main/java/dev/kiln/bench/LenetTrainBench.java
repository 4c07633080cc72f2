package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.max_pool2d;
import static org.bytedeco.pytorch.global.torch.rand;
import static org.bytedeco.pytorch.global.torch.relu;

import dev.kiln.engine.Engine;
import dev.kiln.init.Xavier;
import dev.kiln.symbol.Symbol;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Conv2dImpl;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.Tensor;
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
 * LeNet training step (issue 4's speed target): conv 5x5 20 - relu - max pool 2 - conv 5x5 50 -
 * relu - max pool 2 - fc 500 - relu - fc 10 - softmax cross-entropy, batch 128 of 1x28x28, SGD
 * with momentum, in Kiln, Apache MXNet 1.9.1 (DJL, one CachedOp) and libtorch 2.10 (JavaCPP),
 * measured in one run. Samples/s ({@code @OperationsPerInvocation(BATCH)}); forward + backward +
 * update per invocation. Engines are set up as in {@link MlpTrainBench} (same thread rules, one
 * synthetic batch already in each engine's memory).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class LenetTrainBench {
    static final int BATCH = 128;
    static final double LR = 0.05;
    static final double MOMENTUM = 0.9;

    static float[] data() {
        java.util.Random r = new java.util.Random(42);
        float[] x = new float[BATCH * 784];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat();
        }
        return x;
    }

    static float[] labels() {
        java.util.Random r = new java.util.Random(43);
        float[] y = new float[BATCH];
        for (int i = 0; i < y.length; i++) {
            y[i] = r.nextInt(10);
        }
        return y;
    }

    /** LeNet with SoftmaxOutput normalization=batch (so no rescale_grad is needed in any engine). */
    static Symbol network() {
        long[] k5 = {5, 5};
        long[] k2 = {2, 2};
        Symbol x = Symbol.variable("data");
        x = Symbol.activation("relu1", Symbol.convolution("conv1", x, k5, 20, null, null), "relu");
        x = Symbol.pooling("pool1", x, "max", k2, k2, null);
        x = Symbol.activation("relu2", Symbol.convolution("conv2", x, k5, 50, null, null), "relu");
        x = Symbol.pooling("pool2", x, "max", k2, k2, null);
        x = Symbol.activation("relu3", Symbol.fullyConnected("fc1", Symbol.flatten("flatten", x), 500), "relu");
        x = Symbol.fullyConnected("fc2", x, 10);
        return Symbol.builder("SoftmaxOutput").name("softmax").input(x).param("normalization", "batch").build();
    }

    // ---- Kiln ----------------------------------------------------------------------------------

    @State(Scope.Thread)
    public static class KilnState {
        @Param({"1"})
        public int threads;

        KilnTrainStep step;

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            MlpTrainBench.checkEnvThreads("kiln", threads);
            step = new KilnTrainStep(network(), Map.of("data", new long[] {BATCH, 1, 28, 28}),
                    Map.of("data", data(), "softmax_label", labels()), new Xavier(), n -> n, LR, MOMENTUM);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            System.out.println("# kiln end-of-trial loss=" + step.loss(labels()));
            step.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void kilnStep(KilnState s) {
        s.step.run();
    }

    // ---- MXNet 1.9.1 (DJL) ----------------------------------------------------------------------

    @State(Scope.Thread)
    public static class MxState {
        @Param({"1"})
        public int threads;

        MxTrainStep step;

        @Setup(Level.Trial)
        public void setup() {
            MlpTrainBench.checkEnvThreads("mxnet", threads);
            // Kiln writes MXNet's symbol JSON: the same graph runs in both engines
            step = new MxTrainStep("lenet", network(), new long[] {BATCH, 1, 28, 28}, data(), labels(), LR, MOMENTUM,
                    true);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            System.out.println("# mxnet end-of-trial loss=" + step.loss());
            step.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void mxnetStep(MxState s) {
        s.step.run();
    }

    // ---- libtorch 2.10 (JavaCPP) ----------------------------------------------------------------

    static final class TorchLenet extends Module {
        final Conv2dImpl conv1;
        final Conv2dImpl conv2;
        final LinearImpl fc1;
        final LinearImpl fc2;

        TorchLenet() {
            conv1 = register_module("conv1", new Conv2dImpl(1, 20, new LongPointer(5L, 5L)));
            conv2 = register_module("conv2", new Conv2dImpl(20, 50, new LongPointer(5L, 5L)));
            fc1 = register_module("fc1", new LinearImpl(800, 500));
            fc2 = register_module("fc2", new LinearImpl(500, 10));
        }

        Tensor forward(Tensor x) {
            Tensor h = max_pool2d(relu(conv1.forward(x)), 2, 2);
            h = max_pool2d(relu(conv2.forward(h)), 2, 2);
            return fc2.forward(relu(fc1.forward(h.flatten(1, -1))));
        }
    }

    @State(Scope.Thread)
    public static class TorchState {
        @Param({"1"})
        public int threads;

        TorchTrainStep step;

        @Setup(Level.Trial)
        public void setup() {
            TorchTrainStep.prepare(threads);
            TorchLenet net = new TorchLenet();
            step = new TorchTrainStep(net, net::forward, rand(BATCH, 1, 28, 28), 10, BATCH, LR, MOMENTUM);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            System.out.println("# libtorch end-of-trial loss=" + step.loss());
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    @Fork(value = 1, jvmArgsPrepend = "-Dbench.omp.wait=PASSIVE", jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
    public void libtorchStep(TorchState s) {
        s.step.run();
    }
}
