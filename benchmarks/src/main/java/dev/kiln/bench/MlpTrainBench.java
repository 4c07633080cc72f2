package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.cross_entropy_loss;
import static org.bytedeco.pytorch.global.torch.get_num_threads;
import static org.bytedeco.pytorch.global.torch.manual_seed;
import static org.bytedeco.pytorch.global.torch.rand;
import static org.bytedeco.pytorch.global.torch.randint;
import static org.bytedeco.pytorch.global.torch.relu;
import static org.bytedeco.pytorch.global.torch.set_num_threads;

import ai.djl.Device;
import ai.djl.Model;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.mxnet.engine.MxSymbolBlock;
import ai.djl.mxnet.jna.JnaUtils;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Parameter;
import ai.djl.training.DefaultTrainingConfig;
import ai.djl.training.GradientCollector;
import ai.djl.training.Trainer;
import ai.djl.training.initializer.Initializer;
import ai.djl.training.initializer.XavierInitializer;
import ai.djl.training.loss.Loss;
import ai.djl.training.optimizer.Optimizer;
import ai.djl.training.tracker.Tracker;
import ai.djl.util.PairList;
import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.PointerScope;
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
 * Training step of the MLP 784-512-512-10 (ReLU, softmax cross-entropy) at batch 128, in Kiln and
 * in two peers measured in the same run: Apache MXNet 1.9.1 (through DJL 0.36) and libtorch 2.10
 * (through the JavaCPP pytorch preset).
 *
 * <p>Scores are <b>samples/s</b> ({@code @OperationsPerInvocation(BATCH)}, ops/s): one invocation
 * is one batch of 128.
 *
 * <ul>
 *   <li>{@code kiln}, {@code mxnet}, {@code libtorch}: forward + backward (parameter gradients).
 *   <li>{@code kilnStep}, {@code mxnetStep}, {@code libtorchStep}: the same plus the SGD update
 *       (lr 0.1, momentum 0.9, no weight decay), i.e. a full training step.
 * </ul>
 *
 * <p>How each engine runs it:
 *
 * <ul>
 *   <li>Kiln: the symbol {@code data -> fc1 -> relu -> fc2 -> relu -> fc3 -> SoftmaxOutput
 *       (normalization=batch)}, bound once with {@code Executor.simpleBind}; a step is one
 *       {@code forwardBackward()} native call (+ one {@code sgd_mom_update} per parameter).
 *   <li>MXNet: the same graph as MXNet symbol JSON (FullyConnected, Activation, SoftmaxOutput
 *       normalization=batch), run by DJL's {@code MxSymbolBlock} as one CachedOp (static_alloc,
 *       static_shape) under autograd, i.e. symbolic execution as in MXNet's Module API (Apache's
 *       own Java/Scala Module package is not on Maven Central; see shared/spec/peers.md). MXNet is
 *       asynchronous: each invocation ends with {@code MXNDArrayWaitAll}, so the measured time
 *       contains the whole step (a Module.fit loop also synchronises every batch when it updates
 *       its metric).
 *   <li>libtorch: torch::nn::Linear x3 + relu + cross_entropy_loss, {@code loss.backward()},
 *       torch::optim::SGD; each invocation runs inside a {@code PointerScope} (Java-side tensor
 *       handles freed deterministically) and starts with {@code zero_grad(set_to_none=true)}.
 * </ul>
 *
 * <p>Input: one synthetic batch per trial (uniform [0,1) pixels, random labels 0..9), already in
 * each engine's memory; no host-to-engine copy is timed. Each engine lives in its own
 * {@code @State} class, so a fork loads only the engine it measures (run with forks &ge; 1: with
 * {@code -f 0} all three native stacks would share one process).
 *
 * <p>Threads: {@code -p threads=N} sets Kiln ({@code Engine.setNumThreads}) and libtorch
 * ({@code torch::set_num_threads}); MXNet reads its thread count from the environment at load, so
 * the launcher must also export {@code OMP_NUM_THREADS=N OPENBLAS_NUM_THREADS=N
 * MXNET_CPU_WORKER_NTHREADS=1} (and {@code OMP_WAIT_POLICY=PASSIVE}); benchmarks/run.sh does.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class MlpTrainBench {
    static final int BATCH = 128;
    static final int IN = 784;
    static final int HIDDEN = 512;
    static final int CLASSES = 10;
    static final double LR = 0.1;
    static final double MOMENTUM = 0.9;
    static final long SEED = 42;

    /** Same synthetic batch for every engine: pixels in [0,1), labels in 0..9. */
    static float[] syntheticData() {
        Random r = new Random(SEED);
        float[] x = new float[BATCH * IN];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat();
        }
        return x;
    }

    static float[] syntheticLabels() {
        Random r = new Random(SEED + 1);
        float[] y = new float[BATCH];
        for (int i = 0; i < y.length; i++) {
            y[i] = r.nextInt(CLASSES);
        }
        return y;
    }

    /** Warns when the environment's thread count disagrees with the threads parameter. */
    static void checkEnvThreads(String engine, int threads) {
        String omp = System.getenv("OMP_NUM_THREADS");
        if (omp == null || !omp.equals(Integer.toString(threads))) {
            System.out.println("# WARNING " + engine + ": OMP_NUM_THREADS=" + omp + " but threads=" + threads
                    + " (export OMP_NUM_THREADS/OPENBLAS_NUM_THREADS, see benchmarks/run.sh)");
        }
    }

    // ------------------------------------------------------------------------------------------
    // Kiln
    // ------------------------------------------------------------------------------------------

    @State(Scope.Thread)
    public static class KilnState {
        @Param({"1"})
        public int threads;

        /**
         * {@code float32}, or {@code amp-bf16}: the network converted by {@code Amp.convertSymbol}
         * to bfloat16 (FullyConnected on AVX512-BF16 where the CPU has it, float32 master weights).
         */
        @Param({"float32"})
        public String precision;

        Executor exec;
        List<dev.kiln.ndarray.NDArray[]> updates; // {weight, grad, momentum}
        Map<String, Object> sgd;

        static Symbol network() {
            Symbol data = Symbol.variable("data");
            Symbol x = Symbol.activation("relu1", Symbol.fullyConnected("fc1", data, HIDDEN), "relu");
            x = Symbol.activation("relu2", Symbol.fullyConnected("fc2", x, HIDDEN), "relu");
            x = Symbol.fullyConnected("fc3", x, CLASSES);
            return Symbol.builder("SoftmaxOutput").name("softmax").input(x).param("normalization", "batch").build();
        }

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            checkEnvThreads("kiln", threads);
            Symbol net = switch (precision) {
                case "float32" -> network();
                case "amp-bf16" -> dev.kiln.symbol.Amp.convertSymbol(network(), DType.BFLOAT16);
                default -> throw new IllegalArgumentException("precision " + precision + ": float32 or amp-bf16");
            };
            Map<String, GradReq> reqs = new LinkedHashMap<>();
            for (String a : net.listArguments()) {
                reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
            }
            exec = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {BATCH, IN}), Map.of(), reqs,
                    new Executor.Options());
            exec.argDict().get("data").set(syntheticData());
            exec.argDict().get("softmax_label").set(syntheticLabels());
            Random rng = new Random(SEED);
            updates = new ArrayList<>();
            for (Map.Entry<String, dev.kiln.ndarray.NDArray> e : exec.gradDict().entrySet()) {
                dev.kiln.ndarray.NDArray w = exec.argDict().get(e.getKey());
                float[] v = new float[(int) w.size()];
                if (e.getKey().endsWith("_weight")) { // Xavier uniform (avg, magnitude 3); biases 0
                    double bound = Math.sqrt(6.0 / (w.shape().get(0) + w.shape().get(1)));
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
                    }
                }
                w.set(v);
                dev.kiln.ndarray.NDArray mom = dev.kiln.ndarray.NDArray.zeros(w.shape(), DType.FLOAT32, Context.cpu()).detach();
                updates.add(new dev.kiln.ndarray.NDArray[] {w, e.getValue(), mom});
            }
            sgd = new LinkedHashMap<>();
            sgd.put("lr", LR);
            sgd.put("momentum", MOMENTUM);
            sgd.put("wd", 0.0);
            sgd.put("rescale_grad", 1.0); // SoftmaxOutput normalization=batch already divides by the batch
            System.out.println("# kiln precision=" + precision + " threads=" + Engine.numThreads() + " simd=" + Engine.simdIsa() + " blas="
                    + Engine.blasConfig());
        }

        void step() {
            for (dev.kiln.ndarray.NDArray[] u : updates) {
                dev.kiln.ndarray.NDArray.invokeInto("sgd_mom_update", sgd, u[0], u[0], u[1], u[2]);
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            exec.forward(false);
            System.out.println("# kiln end-of-trial loss=" + loss(exec.outputs().get(0).toFloatArray()));
            for (dev.kiln.ndarray.NDArray[] u : updates) {
                u[2].close();
            }
            exec.close();
        }
    }

    /** Mean cross-entropy of softmax probabilities {@code p} (BATCH x CLASSES) on the synthetic labels. */
    static double loss(float[] p) {
        float[] y = syntheticLabels();
        double l = 0;
        for (int k = 0; k < BATCH; k++) {
            l -= Math.log(Math.max(p[k * CLASSES + (int) y[k]], 1e-12));
        }
        return l / BATCH;
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void kiln(KilnState s) {
        s.exec.forwardBackward();
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void kilnStep(KilnState s) {
        s.exec.forwardBackward();
        s.step();
    }

    // ------------------------------------------------------------------------------------------
    // MXNet 1.9.1 through DJL: symbolic graph run as one CachedOp
    // ------------------------------------------------------------------------------------------

    @State(Scope.Thread)
    public static class MxState {
        @Param({"1"})
        public int threads;

        Model model;
        Trainer trainer;
        NDManager mgr;
        NDArray x;
        NDArray y;

        /** The MLP as MXNet symbol JSON (nnvm graph format, as Symbol.tojson() writes it). */
        static String symbolJson() {
            List<String> nodes = new ArrayList<>();
            List<Integer> args = new ArrayList<>();
            java.util.function.Function<String, Integer> variable = name -> {
                nodes.add("{\"op\":\"null\",\"name\":\"" + name + "\",\"inputs\":[]}");
                args.add(nodes.size() - 1);
                return nodes.size() - 1;
            };
            class Op {
                int add(String op, String name, String attrs, int... in) {
                    StringBuilder s = new StringBuilder();
                    for (int i : in) {
                        s.append(s.length() == 0 ? "" : ",").append('[').append(i).append(",0,0]");
                    }
                    nodes.add("{\"op\":\"" + op + "\",\"name\":\"" + name + "\",\"attrs\":{" + attrs + "},\"inputs\":["
                            + s + "]}");
                    return nodes.size() - 1;
                }

                int fc(String name, int in, int hidden) {
                    int w = variable.apply(name + "_weight");
                    int b = variable.apply(name + "_bias");
                    return add("FullyConnected", name, "\"num_hidden\":\"" + hidden + "\"", in, w, b);
                }

                int relu(String name, int in) {
                    return add("Activation", name, "\"act_type\":\"relu\"", in);
                }
            }
            Op g = new Op();
            int h = variable.apply("data");
            h = g.relu("relu1", g.fc("fc1", h, HIDDEN));
            h = g.relu("relu2", g.fc("fc2", h, HIDDEN));
            h = g.fc("fc3", h, CLASSES);
            int label = variable.apply("softmax_label");
            h = g.add("SoftmaxOutput", "softmax", "\"normalization\":\"batch\"", h, label);
            StringBuilder rowPtr = new StringBuilder("0");
            for (int i = 1; i <= nodes.size(); i++) {
                rowPtr.append(',').append(i);
            }
            return "{\"nodes\":[" + String.join(",", nodes) + "],\"arg_nodes\":" + args.toString().replace(" ", "")
                    + ",\"node_row_ptr\":[" + rowPtr + "],\"heads\":[[" + h
                    + ",0,0]],\"attrs\":{\"mxnet_version\":[\"int\",10900]}}";
        }

        @Setup(Level.Trial)
        public void setup() {
            checkEnvThreads("mxnet", threads);
            Shape in = new Shape(BATCH, IN);
            Shape lab = new Shape(BATCH);
            model = Model.newInstance("mlp", Device.cpu(), "MXNet");
            MxNDManager mm = (MxNDManager) model.getNDManager();
            ai.djl.mxnet.engine.Symbol sym = ai.djl.mxnet.engine.Symbol.loadJson(mm, symbolJson());
            MxSymbolBlock block = new MxSymbolBlock(mm, sym);
            block.setInputNames(List.of("data", "softmax_label"));
            // infer from "data" only: DJL 0.36's inferShape builds a wrong arg_ind_ptr for more than
            // one input and MXNet segfaults (shared/spec/peers.md); SoftmaxOutput infers the label
            Map<String, Shape> shapes = sym.inferShape(new PairList<>(List.of("data"), List.of(in)));
            for (Parameter p : block.getDirectParameters().values()) {
                p.setShape(shapes.get(p.getName()));
            }
            block.setInitializer(new XavierInitializer(), Parameter.Type.WEIGHT);
            block.setInitializer(Initializer.ZEROS, Parameter.Type.BIAS);
            model.setBlock(block);
            Optimizer sgd = Optimizer.sgd().setLearningRateTracker(Tracker.fixed((float) LR))
                    .optMomentum((float) MOMENTUM).optWeightDecays(0f).build();
            // the Loss object is not used: SoftmaxOutput in the graph produces the gradient
            trainer = model.newTrainer(new DefaultTrainingConfig(Loss.softmaxCrossEntropyLoss()).optOptimizer(sgd));
            trainer.initialize(in, lab);
            mgr = trainer.getManager();
            x = mgr.create(syntheticData(), in);
            x.setName("data");
            y = mgr.create(syntheticLabels(), lab);
            y.setName("softmax_label");
            System.out.println("# mxnet " + ai.djl.engine.Engine.getEngine("MXNet").getVersion() + " via DJL "
                    + ai.djl.engine.Engine.getDjlVersion() + " OMP_NUM_THREADS=" + System.getenv("OMP_NUM_THREADS")
                    + " MXNET_CPU_WORKER_NTHREADS=" + System.getenv("MXNET_CPU_WORKER_NTHREADS"));
        }

        /** One forward + backward (+ update); returns the softmax output of this step. */
        void run(boolean update, boolean checkLoss) {
            try (NDManager sub = mgr.newSubManager()) {
                x.tempAttach(sub);
                y.tempAttach(sub);
                NDArray prob;
                try (GradientCollector gc = trainer.newGradientCollector()) {
                    prob = trainer.forward(new NDList(x, y)).singletonOrThrow();
                    prob.attach(sub);
                    gc.backward(prob); // SoftmaxOutput ignores the head gradient
                }
                if (update) {
                    trainer.step();
                }
                if (checkLoss) {
                    NDArray p = prob.get(new NDIndex().addAllDim().addPickDim(y));
                    System.out.println("# mxnet end-of-trial loss=" + (-p.log().mean().getFloat()));
                }
                JnaUtils.waitAll(); // MXNet is asynchronous: the step is done only when its ops are
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            run(false, true);
            trainer.close();
            model.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void mxnet(MxState s) {
        s.run(false, false);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public void mxnetStep(MxState s) {
        s.run(true, false);
    }

    // ------------------------------------------------------------------------------------------
    // libtorch 2.10 through JavaCPP (org.bytedeco:pytorch)
    // ------------------------------------------------------------------------------------------

    static final class TorchMlp extends Module {
        final LinearImpl fc1;
        final LinearImpl fc2;
        final LinearImpl fc3;

        TorchMlp() {
            fc1 = register_module("fc1", new LinearImpl(IN, HIDDEN));
            fc2 = register_module("fc2", new LinearImpl(HIDDEN, HIDDEN));
            fc3 = register_module("fc3", new LinearImpl(HIDDEN, CLASSES));
        }

        Tensor forward(Tensor x) {
            return fc3.forward(relu(fc2.forward(relu(fc1.forward(x)))));
        }
    }

    @State(Scope.Thread)
    public static class TorchState {
        @Param({"1"})
        public int threads;

        TorchMlp net;
        SGD sgd;
        Tensor x;
        Tensor y;

        @Setup(Level.Trial)
        public void setup() {
            set_num_threads(threads);
            checkEnvThreads("libtorch", threads);
            manual_seed(SEED);
            net = new TorchMlp();
            SGDOptions opts = new SGDOptions(LR);
            opts.momentum().put(MOMENTUM);
            sgd = new SGD(net.parameters(), opts);
            x = rand(BATCH, IN);
            y = randint(0L, (long) CLASSES, new long[] {BATCH}); // int64 class indices
            System.out.println("# libtorch 2.10 via JavaCPP threads=" + get_num_threads());
        }

        /** One forward + backward (+ update); returns the loss when asked (else NaN). */
        float run(boolean update, boolean wantLoss) {
            try (PointerScope scope = new PointerScope()) {
                sgd.zero_grad(true);
                Tensor loss = cross_entropy_loss(net.forward(x), y);
                loss.backward();
                if (update) {
                    sgd.step();
                }
                return wantLoss ? loss.item_float() : Float.NaN;
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            System.out.println("# libtorch end-of-trial loss=" + run(false, true));
        }
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    @Fork(value = 1, jvmArgsPrepend = "-Dbench.omp.wait=PASSIVE", jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
    public void libtorch(TorchState s) {
        s.run(false, false);
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    @Fork(value = 1, jvmArgsPrepend = "-Dbench.omp.wait=PASSIVE", jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
    public void libtorchStep(TorchState s) {
        s.run(true, false);
    }
}
