package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.cross_entropy_loss;
import static org.bytedeco.pytorch.global.torch.get_num_threads;
import static org.bytedeco.pytorch.global.torch.manual_seed;
import static org.bytedeco.pytorch.global.torch.randint;
import static org.bytedeco.pytorch.global.torch.randn;
import static org.bytedeco.pytorch.global.torch.set_num_threads;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.InitDesc;
import dev.kiln.init.Uniform;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.optimizer.FusedUpdate;
import dev.kiln.symbol.Symbol;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.LSTMImpl;
import org.bytedeco.pytorch.LinearImpl;
import org.bytedeco.pytorch.Module;
import org.bytedeco.pytorch.SGD;
import org.bytedeco.pytorch.SGDOptions;
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

        Executor exec;
        FusedUpdate update;
        List<dev.kiln.ndarray.NDArray> moms = new ArrayList<>();
        double[] lr;

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            MlpTrainBench.checkEnvThreads("kiln", threads);
            Symbol net = network();
            Map<String, GradReq> reqs = new LinkedHashMap<>();
            for (String a : net.listArguments()) {
                reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
            }
            exec = Executor.simpleBind(net, Context.cpu(),
                    Map.of("data", new long[] {SEQ, BATCH, INPUT}, "softmax_label", new long[] {SEQ, BATCH}), Map.of(), reqs,
                    new Executor.Options());
            Random r = new Random(42);
            float[] x = new float[SEQ * BATCH * INPUT];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            float[] y = new float[SEQ * BATCH];
            for (int i = 0; i < y.length; i++) {
                y[i] = r.nextInt(CLASSES);
            }
            exec.argDict().get("data").set(x);
            exec.argDict().get("softmax_label").set(y);
            dev.kiln.init.Initializer.seed(42);
            Uniform init = new Uniform(1.0 / Math.sqrt(HIDDEN));
            update = new FusedUpdate();
            Map<String, Object> sgd = Map.of("momentum", MOMENTUM, "wd", 0.0, "rescale_grad", 1.0);
            for (Map.Entry<String, dev.kiln.ndarray.NDArray> e : exec.gradDict().entrySet()) {
                dev.kiln.ndarray.NDArray w = exec.argDict().get(e.getKey());
                // the packed LSTM vector is initialized like a weight (uniform), fc_bias to zero
                init.init(new InitDesc(e.getKey().replace("parameters", "weight")), w);
                dev.kiln.ndarray.NDArray mom = dev.kiln.ndarray.NDArray.zeros(w.shape(), DType.FLOAT32, Context.cpu()).detach();
                moms.add(mom);
                update.add("sgd_mom_update", sgd, List.of("lr"), List.of(w, e.getValue(), mom), List.of(w));
            }
            lr = new double[update.size()];
            Arrays.fill(lr, LR);
            System.out.println("# kiln threads=" + Engine.numThreads() + " simd=" + Engine.simdIsa());
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            update.close();
            moms.forEach(dev.kiln.ndarray.NDArray::close);
            exec.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void kilnStep(KilnState s) {
        s.exec.forwardBackward();
        s.update.run(s.lr);
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

        TorchLstm net;
        SGD sgd;
        Tensor x;
        Tensor y;

        @Setup(Level.Trial)
        public void setup() {
            set_num_threads(threads);
            MlpTrainBench.checkEnvThreads("libtorch", threads);
            manual_seed(42);
            net = new TorchLstm();
            SGDOptions opts = new SGDOptions(LR);
            opts.momentum().put(MOMENTUM);
            sgd = new SGD(net.parameters(), opts);
            x = randn(SEQ, BATCH, INPUT);
            y = randint(0L, (long) CLASSES, new long[] {SEQ * BATCH});
            System.out.println("# libtorch threads=" + get_num_threads());
        }

        void run() {
            try (PointerScope scope = new PointerScope()) {
                sgd.zero_grad(true);
                Tensor loss = cross_entropy_loss(net.forward(x), y);
                loss.backward();
                sgd.step();
            }
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void libtorchStep(TorchState s) {
        s.run();
    }
}
