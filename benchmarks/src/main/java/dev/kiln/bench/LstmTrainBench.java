package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.randn;

import dev.kiln.engine.Engine;
import dev.kiln.init.Uniform;
import dev.kiln.symbol.Symbol;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.LSTMImpl;
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
 * LSTM training step (issue 5): one LSTM layer, input 256, hidden 256, sequence 64, batch 32
 * (time-major), followed by a 65-way classifier over every step (a character language model's
 * shape) and softmax cross-entropy, SGD with momentum. Kiln runs MXNet's fused {@code RNN} op;
 * libtorch runs {@code torch::nn::LSTM}. Samples/s = sequences per second
 * ({@code @OperationsPerInvocation(BATCH)}).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class LstmTrainBench {
    static final int BATCH = 32;
    static final int SEQ = 64;
    static final int INPUT = 256;
    static final int HIDDEN = 256;
    static final int CLASSES = 65;
    static final double LR = 0.05;
    static final double MOMENTUM = 0.9;

    static Symbol network() {
        Symbol data = Symbol.variable("data");  // [SEQ, BATCH, INPUT]
        Map<String, String> rnn = new LinkedHashMap<>();
        rnn.put("state_size", Integer.toString(HIDDEN));
        rnn.put("num_layers", "1");
        rnn.put("mode", "lstm");
        Symbol h0 = Symbol.create("_zeros", "h0", Map.of("shape", "(1, " + BATCH + ", " + HIDDEN + ")"), null);
        Symbol c0 = Symbol.create("_zeros", "c0", Map.of("shape", "(1, " + BATCH + ", " + HIDDEN + ")"), null);
        Symbol out = Symbol.create("RNN", "lstm", rnn, null, data, Symbol.variable("lstm_parameters"), h0, c0);
        Symbol flat = Symbol.create("Reshape", "flat", Map.of("shape", "(-1, " + HIDDEN + ")"), null, out);
        Symbol fc = Symbol.fullyConnected("fc", flat, CLASSES);
        Symbol label = Symbol.create("Reshape", "label_flat", Map.of("shape", "(-1,)"), null,
                Symbol.variable("softmax_label"));
        return Symbol.builder("SoftmaxOutput").name("softmax").input(fc).input(label).param("normalization", "batch")
                .build();
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
            Random r = new Random(42);
            float[] x = new float[SEQ * BATCH * INPUT];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            float[] y = new float[SEQ * BATCH];
            for (int i = 0; i < y.length; i++) {
                y[i] = r.nextInt(CLASSES);
            }
            // the packed LSTM vector is initialized like a weight (uniform), fc_bias to zero
            step = new KilnTrainStep(network(),
                    Map.of("data", new long[] {SEQ, BATCH, INPUT}, "softmax_label", new long[] {SEQ, BATCH}),
                    Map.of("data", x, "softmax_label", y), new Uniform(1.0 / Math.sqrt(HIDDEN)),
                    n -> n.replace("parameters", "weight"), LR, MOMENTUM);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            step.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void kilnStep(KilnState s) {
        s.step.run();
    }

    // ---- libtorch 2.10 (JavaCPP) ----------------------------------------------------------------

    static final class TorchLstm extends Module {
        final LSTMImpl lstm;
        final LinearImpl fc;

        TorchLstm() {
            lstm = register_module("lstm", new LSTMImpl(INPUT, HIDDEN));
            fc = register_module("fc", new LinearImpl(HIDDEN, CLASSES));
        }

        Tensor forward(Tensor x) {
            Tensor out = lstm.forward(x).get0();  // [SEQ, BATCH, HIDDEN]
            return fc.forward(out.reshape(-1, HIDDEN));
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
            TorchLstm net = new TorchLstm();
            step = new TorchTrainStep(net, net::forward, randn(SEQ, BATCH, INPUT), CLASSES, SEQ * BATCH, LR, MOMENTUM);
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    @Fork(value = 1, jvmArgsPrepend = "-Dbench.omp.wait=PASSIVE", jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
    public void libtorchStep(TorchState s) {
        s.step.run();
    }
}
