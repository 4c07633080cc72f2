package dev.kiln.bench;

import dev.kiln.engine.Engine;
import dev.kiln.engine.Engine.ConvAlgorithm;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
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
 * One convolution layer of LeNet at batch 128, per kernel family: im2col + OpenBLAS GEMM versus
 * the direct AVX-512 kernels ({@link Engine#setConvolutionAlgorithm}). {@code fwd} times the
 * forward; {@code bwd} the backward (weight and bias gradients, plus the data gradient for conv2,
 * which always runs im2col + GEMM). Microseconds per call; the ratio im2col / direct decides
 * which family {@code AUTO} picks for a layer shape. Kiln only (the peers have no switch).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx1g", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class ConvAlgoBench {

    @State(Scope.Thread)
    public static class Layer {
        /** conv1: 1 -> 20 channels, 28x28, 5x5 (25 taps); conv2: 20 -> 50, 12x12, 5x5 (500 taps). */
        @Param({"conv1", "conv2"})
        public String layer;

        @Param({"IM2COL", "DIRECT"})
        public String algo;

        @Param({"1"})
        public int threads;

        Executor exec;
        NDArray head;

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            MlpTrainBench.checkEnvThreads("kiln", threads);
            Engine.setConvolutionAlgorithm(ConvAlgorithm.valueOf(algo));
            boolean first = layer.equals("conv1");
            int c = first ? 1 : 20, hw = first ? 28 : 12, o = first ? 20 : 50;
            Symbol conv = Symbol.convolution("conv", Symbol.variable("data"), new long[] {5, 5}, o, null, null);
            Map<String, GradReq> reqs = new LinkedHashMap<>();
            reqs.put("data", first ? GradReq.NULL : GradReq.WRITE);  // as in LeNet
            reqs.put("conv_weight", GradReq.WRITE);
            reqs.put("conv_bias", GradReq.WRITE);
            exec = Executor.simpleBind(conv, Context.cpu(), Map.of("data", new long[] {128, c, hw, hw}), Map.of(), reqs,
                    new Executor.Options());
            Random r = new Random(42);
            float[] x = new float[128 * c * hw * hw];
            for (int i = 0; i < x.length; i++) {
                x[i] = r.nextFloat();
            }
            exec.argDict().get("data").set(x);
            float[] w = new float[o * c * 25];
            for (int i = 0; i < w.length; i++) {
                w[i] = (float) r.nextGaussian() * 0.1f;
            }
            exec.argDict().get("conv_weight").set(w);
            long[] os = {128, o, hw - 4, hw - 4};
            float[] h = new float[128 * o * (hw - 4) * (hw - 4)];
            for (int i = 0; i < h.length; i++) {
                h[i] = (float) r.nextGaussian() * 0.01f;
            }
            head = NDArray.create(h, os).detach();
            exec.forward(true);
            System.out.println("# kiln " + layer + " algo=" + Engine.convolutionAlgorithm() + " threads=" + Engine.numThreads());
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            head.close();
            exec.close();
            Engine.setConvolutionAlgorithm(ConvAlgorithm.AUTO);
        }
    }

    @Benchmark
    public void fwd(Layer s) {
        s.exec.forward(true);
    }

    @Benchmark
    public void bwd(Layer s) {
        s.exec.backward(s.head);
    }
}
