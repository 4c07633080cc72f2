package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.rand;

import dev.kiln.engine.Engine;
import dev.kiln.init.Xavier;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The executor matrix of issue 6: every network ({@link Nets}: MLP 784-512-512-10, LeNet,
 * ResNet-18 at CIFAR size) at batch 1, 32 and 128, in three modes, in Kiln, Apache MXNet 1.9.1
 * (DJL, one CachedOp, {@link MxTrainStep}) and libtorch 2.10 (JavaCPP, {@link TorchTrainStep}):
 *
 * <ul>
 *   <li>{@code forward}: an inference forward (Kiln bound without gradients, MXNet outside
 *       autograd, libtorch in eval mode under a NoGradGuard; BatchNorm on moving statistics);
 *   <li>{@code backward}: forward (training mode) + backward to every parameter's gradient;
 *   <li>{@code step}: the same plus an SGD-momentum update of every parameter (lr 0.05,
 *       momentum 0.9).
 * </ul>
 *
 * <p>Microseconds per call (one call = one batch); a Kiln / peer ratio is the peer's time over
 * Kiln's (above 1: Kiln is faster). Inputs are one synthetic batch already in each engine's
 * memory (the same pixels for Kiln and MXNet; libtorch draws its own). Each trial ends with a
 * "# engine net batch mode end-of-trial loss=" line: finite, about ln 10 = 2.3 for
 * {@code forward}/{@code backward} (parameters stay at their initial values) and lower for
 * {@code step}. The engines' state classes are separate, so a fork loads only the engine it
 * measures. ResNet-18 at batch 128 takes seconds per step at one thread: its iterations hold one
 * or two calls each.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class NetBench {
    static final double LR = 0.05;
    static final double MOMENTUM = 0.9;

    /** The parameters every engine's state shares (JMH wants @State on a class with @Param). */
    @State(Scope.Thread)
    public abstract static class Params {
        @Param({"mlp", "lenet", "resnet18"})
        public String net;

        @Param({"1", "32", "128"})
        public int batch;

        @Param({"forward", "backward", "step"})
        public String mode;

        @Param({"1"})
        public int threads;

        Nets network() {
            return Nets.of(net);
        }

        boolean train() {
            return !mode.equals("forward");
        }

        /** Dispatches on the mode. */
        void run(Runnable forward, Runnable backward, Runnable step) {
            switch (mode) {
                case "forward" -> forward.run();
                case "backward" -> backward.run();
                case "step" -> step.run();
                default -> throw new IllegalArgumentException("mode must be forward, backward or step: " + mode);
            }
        }

        void report(String engine, double loss) {
            System.out.println("# " + engine + " " + net + " batch=" + batch + " " + mode + " end-of-trial loss=" + loss);
        }
    }

    // ---- Kiln ----------------------------------------------------------------------------------

    @State(Scope.Thread)
    public static class KilnState extends Params {
        KilnTrainStep step;

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            MlpTrainBench.checkEnvThreads("kiln", threads);
            Nets n = network();
            step = new KilnTrainStep(n.symbol(), Map.of("data", n.dataShape(batch)),
                    Map.of("data", n.data(batch), "softmax_label", Nets.labels(batch)), new Xavier(), k -> k, LR, MOMENTUM,
                    train());
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            report("kiln", step.loss(Nets.labels(batch)));
            step.close();
        }
    }

    @Benchmark
    public void kiln(KilnState s) {
        s.run(s.step::forward, s.step::forwardBackward, s.step::run);
    }

    // ---- MXNet 1.9.1 (DJL) ----------------------------------------------------------------------

    @State(Scope.Thread)
    public static class MxState extends Params {
        MxTrainStep step;

        @Setup(Level.Trial)
        public void setup() {
            MlpTrainBench.checkEnvThreads("mxnet", threads);
            Nets n = network();
            step = new MxTrainStep(net, n.symbol(), n.dataShape(batch), n.data(batch), Nets.labels(batch), LR, MOMENTUM,
                    train());
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            report("mxnet", train() ? step.loss() : step.inferenceLoss());
            step.close();
        }
    }

    @Benchmark
    public void mxnet(MxState s) {
        s.run(s.step::forward, s.step::forwardBackward, s.step::run);
    }

    // ---- libtorch 2.10 (JavaCPP) ----------------------------------------------------------------

    @State(Scope.Thread)
    public static class TorchState extends Params {
        TorchTrainStep step;

        @Setup(Level.Trial)
        public void setup() {
            TorchTrainStep.prepare(threads);
            Nets.TorchNet n = network().torch();
            n.module().train(train());
            step = new TorchTrainStep(n.module(), n.forward(),
                    rand(network().dataShape(batch)), Nets.CLASSES, batch, LR, MOMENTUM);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            report("libtorch", step.loss());
        }
    }

    @Benchmark
    @Fork(value = 1, jvmArgsPrepend = "-Dbench.omp.wait=PASSIVE", jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
    public void libtorch(TorchState s) {
        s.run(s.step::forward, s.step::forwardBackward, s.step::run);
    }
}
