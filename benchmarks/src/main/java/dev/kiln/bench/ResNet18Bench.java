package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.adaptive_avg_pool2d;
import static org.bytedeco.pytorch.global.torch.rand;
import static org.bytedeco.pytorch.global.torch.relu;

import dev.kiln.engine.Engine;
import dev.kiln.init.Xavier;
import dev.kiln.symbol.Symbol;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.BatchNorm2dImpl;
import org.bytedeco.pytorch.BatchNormOptions;
import org.bytedeco.pytorch.Conv2dImpl;
import org.bytedeco.pytorch.Conv2dOptions;
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
 * ResNet-18 at CIFAR size (issue 6): 3x3 stem of 64, four stages of two basic blocks (64, 128,
 * 256, 512 channels; stride 2 and a 1x1 projection entering stages 2-4), BatchNorm and relu,
 * global average pooling, a 10-way classifier; batch 32 of 3x32x32, forward + backward + SGD
 * with momentum, in Kiln, Apache MXNet 1.9.1 (DJL, the same graph as symbol JSON, one CachedOp;
 * see {@link MxTrainStep}) and libtorch 2.10 (JavaCPP). Samples/s. Each trial ends by printing
 * the loss on the (random) batch after the timed steps: finite, and falling from about
 * ln 10 = 2.30 as the steps fit the batch.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class ResNet18Bench {
    static final int BATCH = 32;
    static final int[] WIDTHS = {64, 128, 256, 512};
    static final double LR = 0.05;
    static final double MOMENTUM = 0.9;

    static long[] k(long v) {
        return new long[] {v, v};
    }

    static Symbol convBn(String name, Symbol x, int filters, long kernel, long stride, long pad, boolean relu) {
        Symbol c = Symbol.convolutionNoBias(name + "_conv", x, k(kernel), filters, k(stride), k(pad), 1);
        Symbol b = Symbol.batchNorm(name + "_bn", c, false);
        return relu ? Symbol.activation(name + "_relu", b, "relu") : b;
    }

    static Symbol network() {
        Symbol x = convBn("stem", Symbol.variable("data"), 64, 3, 1, 1, true);
        int in = 64;
        for (int stage = 0; stage < 4; stage++) {
            for (int b = 0; b < 2; b++) {
                String name = "s" + stage + "b" + b;
                long stride = stage > 0 && b == 0 ? 2 : 1;
                Symbol y = convBn(name + "a", x, WIDTHS[stage], 3, stride, 1, true);
                y = convBn(name + "b", y, WIDTHS[stage], 3, 1, 1, false);
                Symbol shortcut = x;
                if (stride != 1 || in != WIDTHS[stage]) {
                    shortcut = convBn(name + "_proj", x, WIDTHS[stage], 1, stride, 0, false);
                }
                x = Symbol.activation(name + "_relu", y.plus(shortcut), "relu");
                in = WIDTHS[stage];
            }
        }
        Symbol pool = Symbol.globalPooling("pool", x, "avg");
        Symbol fc = Symbol.fullyConnected("fc", Symbol.flatten("flatten", pool), 10);
        return Symbol.builder("SoftmaxOutput").name("softmax").input(fc).param("normalization", "batch").build();
    }

    static float[] data() {
        Random r = new Random(42);
        float[] x = new float[BATCH * 3 * 32 * 32];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat();
        }
        return x;
    }

    static float[] labels() {
        Random r = new Random(43);
        float[] y = new float[BATCH];
        for (int i = 0; i < y.length; i++) {
            y[i] = r.nextInt(10);
        }
        return y;
    }

    @State(Scope.Thread)
    public static class KilnState {
        @Param({"1"})
        public int threads;

        KilnTrainStep step;

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            MlpTrainBench.checkEnvThreads("kiln", threads);
            step = new KilnTrainStep(network(), Map.of("data", new long[] {BATCH, 3, 32, 32}),
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
            step = new MxTrainStep("resnet18", network(), new long[] {BATCH, 3, 32, 32}, data(), labels(), LR, MOMENTUM,
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

    static final class TorchResNet18 extends Module {
        final List<Conv2dImpl> convs = new ArrayList<>();
        final List<BatchNorm2dImpl> bns = new ArrayList<>();
        final LinearImpl fc;
        int n;

        Conv2dImpl conv(int in, int out, long kernel, long stride, long pad) {
            Conv2dOptions o = new Conv2dOptions(in, out, new LongPointer(kernel, kernel));
            o.stride().put(new LongPointer(stride, stride));
            o.padding().put(new LongPointer(pad, pad));
            o.bias().put(false);
            Conv2dImpl c = register_module("conv" + n, new Conv2dImpl(o));
            BatchNorm2dImpl b = register_module("bn" + n, new BatchNorm2dImpl(new BatchNormOptions(out)));
            n++;
            convs.add(c);
            bns.add(b);
            return c;
        }

        // layer indices in convs/bns, in construction order
        final List<int[]> blocks = new ArrayList<>();  // {a, b, proj or -1}

        TorchResNet18() {
            conv(3, 64, 3, 1, 1);
            int in = 64;
            for (int stage = 0; stage < 4; stage++) {
                for (int b = 0; b < 2; b++) {
                    long stride = stage > 0 && b == 0 ? 2 : 1;
                    int a = n;
                    conv(in, WIDTHS[stage], 3, stride, 1);
                    int bb = n;
                    conv(WIDTHS[stage], WIDTHS[stage], 3, 1, 1);
                    int p = -1;
                    if (stride != 1 || in != WIDTHS[stage]) {
                        p = n;
                        conv(in, WIDTHS[stage], 1, stride, 0);
                    }
                    blocks.add(new int[] {a, bb, p});
                    in = WIDTHS[stage];
                }
            }
            fc = register_module("fc", new LinearImpl(512, 10));
        }

        Tensor cb(int i, Tensor x) {
            return bns.get(i).forward(convs.get(i).forward(x));
        }

        Tensor forward(Tensor x) {
            Tensor h = relu(cb(0, x));
            for (int[] blk : blocks) {
                Tensor y = cb(blk[1], relu(cb(blk[0], h)));
                Tensor s = blk[2] >= 0 ? cb(blk[2], h) : h;
                h = relu(y.add(s));
            }
            return fc.forward(adaptive_avg_pool2d(h, 1L, 1L).flatten(1, -1));
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
            TorchResNet18 net = new TorchResNet18();
            net.train(true);
            step = new TorchTrainStep(net, net::forward, rand(BATCH, 3, 32, 32), 10, BATCH, LR, MOMENTUM);
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
