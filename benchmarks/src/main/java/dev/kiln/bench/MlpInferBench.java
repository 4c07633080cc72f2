package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.manual_seed;
import static org.bytedeco.pytorch.global.torch.rand;
import static org.bytedeco.pytorch.global.torch.set_num_threads;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.mxnet.engine.MxSymbolBlock;
import ai.djl.mxnet.jna.JnaUtils;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.ParameterStore;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.initializer.XavierInitializer;
import ai.djl.util.PairList;
import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.InitDesc;
import dev.kiln.init.Xavier;
import dev.kiln.ndarray.Context;
import dev.kiln.symbol.Symbol;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;
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
 * MLP 784-512-512-10 inference (issue 6): one forward pass on a batch already in each engine's
 * memory, batch 1 and 128, in Kiln (executor), MXNet 1.9.1 (DJL, one CachedOp, waited for) and
 * libtorch 2.10 (JavaCPP, no-grad). Microseconds per forward. {@code kilnCallOverhead} is the
 * time of a whole forward of a one-element graph: the cost of crossing from Java into the native
 * executor and back (issue 6 asks for under 2 us).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class MlpInferBench {
    static final int IN = 784;

    static float[] data(int batch) {
        Random r = new Random(42);
        float[] x = new float[batch * IN];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat();
        }
        return x;
    }

    @State(Scope.Thread)
    public static class KilnState {
        @Param({"1", "128"})
        public int batch;

        @Param({"1"})
        public int threads;

        Executor exec;
        Executor tiny;

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            MlpTrainBench.checkEnvThreads("kiln", threads);
            Symbol net = MlpTrainBench.KilnState.network();
            exec = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {batch, IN}), GradReq.NULL);
            dev.kiln.init.Initializer.seed(42);
            Xavier xavier = new Xavier();
            exec.argDict().forEach((k, v) -> {
                if (k.endsWith("weight") || k.endsWith("bias")) {
                    xavier.init(new InitDesc(k), v);
                }
            });
            exec.argDict().get("data").set(data(batch));
            Symbol one = Symbol.fullyConnected("fc", Symbol.variable("data"), 1);
            tiny = Executor.simpleBind(one, Context.cpu(), Map.of("data", new long[] {1, 1}), GradReq.NULL);
            System.out.println("# kiln threads=" + Engine.numThreads() + " batch=" + batch);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            tiny.close();
            exec.close();
        }
    }

    @Benchmark
    public Object kiln(KilnState s) {
        return s.exec.forward(false);
    }

    @Benchmark
    public Object kilnCallOverhead(KilnState s) {
        return s.tiny.forward(false);
    }

    @State(Scope.Thread)
    public static class MxState {
        @Param({"1", "128"})
        public int batch;

        @Param({"1"})
        public int threads;

        Model model;
        MxSymbolBlock block;
        ParameterStore ps;
        NDManager mgr;
        ai.djl.ndarray.NDArray x;
        ai.djl.ndarray.NDArray y;

        @Setup(Level.Trial)
        public void setup() {
            MlpTrainBench.checkEnvThreads("mxnet", threads);
            Shape in = new Shape(batch, IN);
            Shape lab = new Shape(batch);
            model = Model.newInstance("mlp-infer", Device.cpu(), "MXNet");
            MxNDManager mm = (MxNDManager) model.getNDManager();
            ai.djl.mxnet.engine.Symbol sym = ai.djl.mxnet.engine.Symbol.loadJson(mm, MlpTrainBench.MxState.symbolJson());
            block = new MxSymbolBlock(mm, sym);
            block.setInputNames(List.of("data", "softmax_label"));
            Map<String, Shape> shapes = sym.inferShape(new PairList<>(List.of("data"), List.of(in)));
            for (Parameter p : block.getDirectParameters().values()) {
                p.setShape(shapes.get(p.getName()));
            }
            block.setInitializer(new XavierInitializer(), Parameter.Type.WEIGHT);
            block.setInitializer(Initializer.ZEROS, Parameter.Type.BIAS);
            block.initialize(mm, DataType.FLOAT32, in, lab);
            mgr = mm;
            ps = new ParameterStore(mm, false);
            x = mm.create(data(batch), in);
            x.setName("data");
            y = mm.zeros(lab);
            y.setName("softmax_label");
            System.out.println("# mxnet batch=" + batch + " OMP_NUM_THREADS=" + System.getenv("OMP_NUM_THREADS"));
        }

        Object run() {
            try (NDManager sub = mgr.newSubManager()) {
                x.tempAttach(sub);
                y.tempAttach(sub);
                ai.djl.ndarray.NDArray out = block.forward(ps, new NDList(x, y), false).singletonOrThrow();
                out.attach(sub);
                JnaUtils.waitAll();
                return out;
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            model.close();
        }
    }

    @Benchmark
    public Object mxnet(MxState s) {
        return s.run();
    }

    @State(Scope.Thread)
    public static class TorchState {
        @Param({"1", "128"})
        public int batch;

        @Param({"1"})
        public int threads;

        MlpTrainBench.TorchMlp net;
        Tensor x;

        @Setup(Level.Trial)
        public void setup() {
            set_num_threads(threads);
            MlpTrainBench.checkEnvThreads("libtorch", threads);
            manual_seed(42);
            net = new MlpTrainBench.TorchMlp();
            net.eval();
            x = rand(batch, IN);
            System.out.println("# libtorch batch=" + batch);
        }

        Object run() {
            try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
                return net.forward(x).size(0);
            }
        }
    }

    @Benchmark
    @Fork(value = 1, jvmArgsPrepend = "-Dbench.omp.wait=PASSIVE", jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
    public Object libtorch(TorchState s) {
        return s.run();
    }
}
