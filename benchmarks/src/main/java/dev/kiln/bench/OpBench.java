package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.conv2d;
import static org.bytedeco.pytorch.global.torch.convolution_backward;
import static org.bytedeco.pytorch.global.torch.from_blob;
import static org.bytedeco.pytorch.global.torch.linear;
import static org.bytedeco.pytorch.global.torch.max_pool2d;
import static org.bytedeco.pytorch.global.torch.max_pool2d_with_indices;
import static org.bytedeco.pytorch.global.torch.max_pool2d_with_indices_backward;
import static org.bytedeco.pytorch.global.torch.native_batch_norm;
import static org.bytedeco.pytorch.global.torch.native_batch_norm_backward;
import static org.bytedeco.pytorch.global.torch.softmax;

import ai.djl.Device;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.mxnet.engine.MxNDArray;
import ai.djl.mxnet.jna.JnaUtils;
import ai.djl.mxnet.jna.LibUtils;
import ai.djl.ndarray.NDManager;
import ai.djl.util.PairList;
import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import com.sun.jna.ptr.PointerByReference;
import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.BoolPointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Adam;
import org.bytedeco.pytorch.AdamOptions;
import org.bytedeco.pytorch.LongArrayRefOptional;
import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Optimizer;
import org.bytedeco.pytorch.SGD;
import org.bytedeco.pytorch.SGDOptions;
import org.bytedeco.pytorch.T_TensorTensorTensor_T;
import org.bytedeco.pytorch.T_TensorTensor_T;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.TensorVector;
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
 * Per-operator micro benchmarks (issue 6), Kiln against MXNet 1.9.1 (DJL, imperative
 * {@code MXImperativeInvoke} into preallocated outputs; backward passes through MXNet's autograd
 * ({@code MXAutogradBackward}) with the graph of one recorded op retained) and libtorch 2.10 (the ATen functions themselves
 * through JavaCPP, under a NoGradGuard), on shapes of the benchmark networks ({@link Case}).
 * Kiln runs each op as a one-op symbol bound once ({@code Executor}, as {@link ConvAlgoBench}),
 * or, for the optimizer updates, {@code NDArray.invokeInto}.
 *
 * <p>Passes: {@code fwd} an inference forward; {@code bwddata} only the input gradient;
 * {@code bwdweight} only the weight gradient (convolutions have no bias here); {@code bwd} the
 * input gradient (pooling); {@code fwdbwd} a training forward and the gradients of the input,
 * gamma and beta (BatchNorm). Optimizer updates run on 2^20 floats: {@code sgd_mom_update}
 * (lr 0.01, momentum 0.9) and {@code adam_update} (lr 0.001, betas 0.9/0.999, eps 1e-8); libtorch
 * has no such fused kernel in its C++ API, so it runs {@code torch::optim::SGD/Adam::step} on one
 * parameter (a few ATen calls each; its Adam applies the bias correction, which MXNet's
 * {@code adam_update} leaves to the caller's learning rate, so its check sum differs slightly).
 *
 * <p>Every engine gets the same input, weight and head-gradient values (seeded); setup prints
 * "# engine case shape=... sum=..." of the first result, so the smoke run shows the three engines
 * compute the same thing (BatchNorm: gamma's gradient). Found that way: libtorch 2.10's oneDNN
 * convolution (this JavaCPP build) returns wrong forward values for 20 input channels (5x5 and 3x3
 * kernels; 1, 16 and 64 channels were right) on the project's machine (conv5_lenet2: error 0.6
 * on outputs of order 1 against a float64 convolution; right with oneDNN switched off, {@code -Dbench.torch.mkldnn=false}, see TorchTrainStep). Microseconds per call; Kiln / peer ratio = peer time / Kiln time.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
public class OpBench {
    static final int UPDATE_SIZE = 1 << 20;

    enum Kind { FC, CONV, POOL, BN, SOFTMAX, SGD_MOM, ADAM }

    /** One operator at one shape in one pass; the JMH parameter is the lower-case name. */
    enum Case {
        FC_MLP1_FWD(Kind.FC, "fwd", new long[] {128, 784}, 512, 0, 0, 0),
        FC_MLP2_FWD(Kind.FC, "fwd", new long[] {128, 512}, 512, 0, 0, 0),
        CONV5_LENET1_FWD(Kind.CONV, "fwd", new long[] {128, 1, 28, 28}, 20, 5, 1, 0),
        CONV5_LENET1_BWDWEIGHT(Kind.CONV, "bwdweight", new long[] {128, 1, 28, 28}, 20, 5, 1, 0),
        CONV5_LENET2_FWD(Kind.CONV, "fwd", new long[] {128, 20, 12, 12}, 50, 5, 1, 0),
        CONV5_LENET2_BWDDATA(Kind.CONV, "bwddata", new long[] {128, 20, 12, 12}, 50, 5, 1, 0),
        CONV5_LENET2_BWDWEIGHT(Kind.CONV, "bwdweight", new long[] {128, 20, 12, 12}, 50, 5, 1, 0),
        CONV3_RES64_FWD(Kind.CONV, "fwd", new long[] {32, 64, 32, 32}, 64, 3, 1, 1),
        CONV3_RES64_BWDDATA(Kind.CONV, "bwddata", new long[] {32, 64, 32, 32}, 64, 3, 1, 1),
        CONV3_RES64_BWDWEIGHT(Kind.CONV, "bwdweight", new long[] {32, 64, 32, 32}, 64, 3, 1, 1),
        CONV3_RES256_FWD(Kind.CONV, "fwd", new long[] {32, 256, 8, 8}, 256, 3, 1, 1),
        CONV3_RES256_BWDDATA(Kind.CONV, "bwddata", new long[] {32, 256, 8, 8}, 256, 3, 1, 1),
        CONV3_RES256_BWDWEIGHT(Kind.CONV, "bwdweight", new long[] {32, 256, 8, 8}, 256, 3, 1, 1),
        MAXPOOL2_LENET1_FWD(Kind.POOL, "fwd", new long[] {128, 20, 24, 24}, 0, 2, 2, 0),
        MAXPOOL2_LENET1_BWD(Kind.POOL, "bwd", new long[] {128, 20, 24, 24}, 0, 2, 2, 0),
        BATCHNORM_RES64_FWDBWD(Kind.BN, "fwdbwd", new long[] {32, 64, 32, 32}, 0, 0, 0, 0),
        SOFTMAX_128X10_FWD(Kind.SOFTMAX, "fwd", new long[] {128, 10}, 0, 0, 0, 0),
        SOFTMAX_128X1000_FWD(Kind.SOFTMAX, "fwd", new long[] {128, 1000}, 0, 0, 0, 0),
        SGD_MOM_UPDATE_1M(Kind.SGD_MOM, "update", new long[] {UPDATE_SIZE}, 0, 0, 0, 0),
        ADAM_UPDATE_1M(Kind.ADAM, "update", new long[] {UPDATE_SIZE}, 0, 0, 0, 0);

        final Kind kind;
        final String pass;
        final long[] in;
        final int out;     // FC hidden units / conv filters
        final long kernel;
        final long stride;
        final long pad;

        Case(Kind kind, String pass, long[] in, int out, long kernel, long stride, long pad) {
            this.kind = kind;
            this.pass = pass;
            this.in = in;
            this.out = out;
            this.kernel = kernel;
            this.stride = stride;
            this.pad = pad;
        }

        static Case of(String name) {
            return valueOf(name.toUpperCase(Locale.ROOT));
        }

        /** The weight's shape (FC: [out, in]; conv: [out, in channels, k, k]; BN: gamma [C]), or null. */
        long[] weightShape() {
            return switch (kind) {
                case FC -> new long[] {out, in[1]};
                case CONV -> new long[] {out, in[1], kernel, kernel};
                case BN -> new long[] {in[1]};
                case SGD_MOM, ADAM -> in;
                default -> null;
            };
        }

        /** The output's shape (head gradients have it). */
        long[] outShape() {
            return switch (kind) {
                case FC -> new long[] {in[0], out};
                case CONV -> new long[] {in[0], out, conv(in[2]), conv(in[3])};
                case POOL -> new long[] {in[0], in[1], in[2] / stride, in[3] / stride};
                default -> in;
            };
        }

        private long conv(long size) {
            return (size + 2 * pad - kernel) / stride + 1;
        }

        long[] k(long v) {
            return new long[] {v, v};
        }

        /** MXNet's attribute syntax for a square window: "(v, v)". */
        String tuple(long v) {
            return "(" + v + ", " + v + ")";
        }
    }

    static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Seeded values uniform in [-scale/2, scale/2): the same arrays in every engine. */
    static float[] values(long[] shape, long seed, float scale) {
        float[] u = Nets.uniform((int) count(shape), seed);
        for (int i = 0; i < u.length; i++) {
            u[i] = (u[i] - 0.5f) * scale;
        }
        return u;
    }

    static float[] input(Case c) {
        return values(c.in, 1, 2f);
    }

    /** Weights in [-0.1, 0.1); BatchNorm's gamma in [0.9, 1.1). */
    static float[] weight(Case c) {
        float[] w = values(c.weightShape(), 2, 0.2f);
        if (c.kind == Kind.BN) {
            for (int i = 0; i < w.length; i++) {
                w[i] += 1f;
            }
        }
        return w;
    }

    static float[] bias(Case c) {
        return values(new long[] {c.out}, 3, 0.2f);
    }

    static float[] head(Case c) {
        return values(c.outShape(), 4, 0.02f);
    }

    static double sum(float[] v) {
        double s = 0;
        for (float f : v) {
            s += f;
        }
        return s;
    }

    /** The parameters every engine's state shares (JMH wants @State on a class with @Param). */
    @State(Scope.Thread)
    public abstract static class Params {
        @Param({"fc_mlp1_fwd", "fc_mlp2_fwd", "conv5_lenet1_fwd", "conv5_lenet1_bwdweight", "conv5_lenet2_fwd",
                "conv5_lenet2_bwddata", "conv5_lenet2_bwdweight", "conv3_res64_fwd", "conv3_res64_bwddata",
                "conv3_res64_bwdweight", "conv3_res256_fwd", "conv3_res256_bwddata", "conv3_res256_bwdweight",
                "maxpool2_lenet1_fwd", "maxpool2_lenet1_bwd", "batchnorm_res64_fwdbwd", "softmax_128x10_fwd",
                "softmax_128x1000_fwd", "sgd_mom_update_1m", "adam_update_1m"})
        public String op;

        @Param({"1"})
        public int threads;

        Case c;

        void check(String engine, long[] shape, double sum) {
            System.out.println("# " + engine + " " + op + " shape=" + Arrays.toString(shape) + " sum="
                    + String.format(Locale.ROOT, "%.6g", sum));
        }
    }

    // ---- Kiln ----------------------------------------------------------------------------------

    @State(Scope.Thread)
    public static class KilnOp extends Params {
        Executor exec;
        NDArray head;
        NDArray[] update;  // weight, grad, state...
        Map<String, Object> attrs;
        String updateOp;
        Runnable call;

        @Setup(Level.Trial)
        public void setup() {
            Engine.setNumThreads(threads);
            MlpTrainBench.checkEnvThreads("kiln", threads);
            c = Case.of(op);
            if (c.kind == Kind.SGD_MOM || c.kind == Kind.ADAM) {
                setupUpdate();
            } else {
                setupExecutor();
            }
        }

        private void setupUpdate() {
            boolean adam = c.kind == Kind.ADAM;
            updateOp = adam ? "adam_update" : "sgd_mom_update";
            attrs = adam ? Map.of("lr", 0.001, "beta1", 0.9, "beta2", 0.999, "epsilon", 1e-8, "wd", 0.0, "rescale_grad", 1.0)
                    : Map.of("lr", 0.01, "momentum", 0.9, "wd", 0.0, "rescale_grad", 1.0);
            update = new NDArray[adam ? 4 : 3];
            update[0] = NDArray.create(weight(c), c.in).detach();
            update[1] = NDArray.create(values(c.in, 5, 0.02f), c.in).detach();
            for (int i = 2; i < update.length; i++) {
                update[i] = NDArray.zeros(new dev.kiln.ndarray.Shape(c.in), dev.kiln.ndarray.DType.FLOAT32, Context.cpu())
                        .detach();
            }
            call = () -> NDArray.invokeInto(updateOp, attrs, update[0], update);
            call.run();
            check("kiln", c.in, sum(update[0].toFloatArray()));
        }

        private void setupExecutor() {
            Symbol data = Symbol.variable("data");
            Symbol sym = switch (c.kind) {
                case FC -> Symbol.fullyConnected("op", data, c.out);
                case CONV -> Symbol.convolutionNoBias("op", data, c.k(c.kernel), c.out, c.k(c.stride), c.k(c.pad), 1);
                case POOL -> Symbol.pooling("op", data, "max", c.k(c.kernel), c.k(c.stride), null);
                // eps 1e-5 as libtorch's default (MXNet's is 1e-3); the MXNet side passes it too
                case BN -> Symbol.builder("BatchNorm").name("op").input(data).param("fix_gamma", false)
                        .param("eps", 1e-5).build();
                case SOFTMAX -> Symbol.softmax("op", data);
                default -> throw new IllegalStateException(c.toString());
            };
            Map<String, GradReq> reqs = new LinkedHashMap<>();
            for (String a : sym.listArguments()) {
                boolean isData = a.equals("data");
                boolean grad = switch (c.pass) {
                    case "bwddata", "bwd" -> isData;
                    case "bwdweight" -> a.equals("op_weight");
                    case "fwdbwd" -> true;
                    default -> false;
                };
                reqs.put(a, grad ? GradReq.WRITE : GradReq.NULL);
            }
            exec = Executor.simpleBind(sym, Context.cpu(), Map.of("data", c.in), Map.of(), reqs, new Executor.Options());
            exec.argDict().get("data").set(input(c));
            if (c.weightShape() != null) {  // FC and conv weights, BatchNorm's gamma
                exec.argDict().get(c.kind == Kind.BN ? "op_gamma" : "op_weight").set(weight(c));
            }
            if (c.kind == Kind.FC) {
                exec.argDict().get("op_bias").set(bias(c));
            }
            exec.auxDict().forEach((k, a) -> {
                float[] v = new float[(int) a.size()];
                Arrays.fill(v, k.endsWith("moving_var") ? 1f : 0f);
                a.set(v);
            });
            head = NDArray.create(head(c), c.outShape()).detach();
            NDArray result;
            switch (c.pass) {
                case "fwd" -> {
                    call = () -> exec.forward(false);
                    call.run();
                    result = exec.outputs().get(0);
                }
                case "fwdbwd" -> {
                    call = () -> exec.forward(true).backward(head);
                    call.run();
                    result = exec.gradDict().get("op_gamma");  // the data gradient sums to ~0 by construction
                }
                default -> {  // backward only: the forward's saved state stays valid
                    exec.forward(true);
                    call = () -> exec.backward(head);
                    call.run();
                    result = exec.gradDict().values().iterator().next();
                }
            }
            check("kiln", result.shape().dims(), sum(result.toFloatArray()));
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            if (exec != null) {
                head.close();
                exec.close();
            } else {
                Arrays.stream(update).forEach(NDArray::close);
            }
        }
    }

    @Benchmark
    public void kiln(KilnOp s) {
        s.call.run();
    }

    // ---- MXNet 1.9.1 (DJL) ----------------------------------------------------------------------

    @State(Scope.Thread)
    public static class MxOp extends Params {
        NDManager mgr;
        Function autogradBackward;
        Runnable call;

        @Setup(Level.Trial)
        public void setup() {
            MlpTrainBench.checkEnvThreads("mxnet", threads);
            c = Case.of(op);
            mgr = NDManager.newBaseManager(Device.cpu(), "MXNet");  // loads libmxnet
            autogradBackward = NativeLibrary.getInstance(LibUtils.getLibName()).getFunction("MXAutogradBackward");
            MxNDManager mm = (MxNDManager) mgr;
            ai.djl.ndarray.NDArray x = array(input(c), c.in);
            ai.djl.ndarray.NDArray result;
            PairList<String, Object> p = new PairList<>();
            switch (c.kind) {
                case SGD_MOM, ADAM -> {
                    boolean adam = c.kind == Kind.ADAM;
                    ai.djl.ndarray.NDArray w = array(weight(c), c.in);
                    ai.djl.ndarray.NDArray g = array(values(c.in, 5, 0.02f), c.in);
                    p.add("lr", adam ? 0.001 : 0.01);
                    p.add("wd", 0.0);
                    p.add("rescale_grad", 1.0);
                    ai.djl.ndarray.NDArray[] in;
                    if (adam) {
                        p.add("beta1", 0.9);
                        p.add("beta2", 0.999);
                        p.add("epsilon", 1e-8);
                        in = new ai.djl.ndarray.NDArray[] {w, g, mgr.zeros(x.getShape()), mgr.zeros(x.getShape())};
                    } else {
                        p.add("momentum", 0.9);
                        in = new ai.djl.ndarray.NDArray[] {w, g, mgr.zeros(x.getShape())};
                    }
                    String name = adam ? "adam_update" : "sgd_mom_update";
                    ai.djl.ndarray.NDArray[] out = {w};
                    call = () -> {
                        mm.invoke(name, in, out, p);
                        JnaUtils.waitAll();
                    };
                    call.run();
                    result = w;
                }
                case SOFTMAX -> {
                    p.add("axis", -1);
                    result = imperative(mm, "softmax", new ai.djl.ndarray.NDArray[] {x}, p);
                }
                case FC -> {
                    p.add("num_hidden", c.out);
                    ai.djl.ndarray.NDArray w = array(weight(c), c.weightShape());
                    ai.djl.ndarray.NDArray b = array(bias(c), new long[] {c.out});
                    result = imperative(mm, "FullyConnected", new ai.djl.ndarray.NDArray[] {x, w, b}, p);
                }
                case CONV -> {
                    p.add("kernel", c.tuple(c.kernel));
                    p.add("stride", c.tuple(c.stride));
                    p.add("pad", c.tuple(c.pad));
                    p.add("num_filter", c.out);
                    p.add("no_bias", "True");
                    ai.djl.ndarray.NDArray w = array(weight(c), c.weightShape());
                    ai.djl.ndarray.NDArray[] in = {x, w};
                    result = switch (c.pass) {
                        case "fwd" -> imperative(mm, "Convolution", in, p);
                        case "bwddata" -> recordedBackward(mm, "Convolution", in, p, x);
                        default -> recordedBackward(mm, "Convolution", in, p, w);
                    };
                }
                case POOL -> {
                    p.add("kernel", c.tuple(c.kernel));
                    p.add("stride", c.tuple(c.stride));
                    p.add("pool_type", "max");
                    ai.djl.ndarray.NDArray[] in = {x};
                    result = c.pass.equals("fwd") ? imperative(mm, "Pooling", in, p) : recordedBackward(mm, "Pooling", in, p, x);
                }
                case BN -> {
                    p.add("fix_gamma", "False");
                    p.add("eps", 1e-5);
                    p.add("momentum", 0.9);
                    ai.djl.ndarray.NDArray gamma = array(weight(c), c.weightShape());
                    ai.djl.ndarray.NDArray beta = mgr.zeros(gamma.getShape());
                    ai.djl.ndarray.NDArray mean = mgr.zeros(gamma.getShape());
                    ai.djl.ndarray.NDArray var = mgr.ones(gamma.getShape());
                    x.setRequiresGradient(true);
                    gamma.setRequiresGradient(true);
                    beta.setRequiresGradient(true);
                    ai.djl.ndarray.NDArray[] in = {x, gamma, beta, mean, var};
                    ai.djl.ndarray.NDArray head = array(head(c), c.outShape());
                    call = () -> {
                        try (NDManager sub = mgr.newSubManager()) {
                            JnaUtils.autogradSetIsRecording(true);
                            JnaUtils.autogradSetTraining(true);
                            ai.djl.ndarray.NDArray y = mm.invoke("BatchNorm", in, p);
                            JnaUtils.autogradSetIsRecording(false);
                            JnaUtils.autogradSetTraining(false);
                            y.attach(sub);
                            backward(y, head, false);
                            JnaUtils.waitAll();
                        }
                    };
                    call.run();
                    result = gamma.getGradient();
                }
                default -> throw new IllegalStateException(c.toString());
            }
            check("mxnet", result.getShape().getShape(), result.sum().getFloat());
        }

        /**
         * MXNet's {@code MXAutogradBackward} with a head gradient: DJL's own backward always
         * passes ones (its {@code autogradBackwardExecute} ignores the head gradient it is given).
         */
        private void backward(ai.djl.ndarray.NDArray y, ai.djl.ndarray.NDArray head, boolean retainGraph) {
            int rc = autogradBackward.invokeInt(new Object[] {1, new PointerByReference(((MxNDArray) y).getHandle()),
                    new PointerByReference(((MxNDArray) head).getHandle()), retainGraph ? 1 : 0});
            if (rc != 0) {
                throw new IllegalStateException("MXAutogradBackward failed with " + rc);
            }
        }

        ai.djl.ndarray.NDArray array(float[] v, long[] shape) {
            return mgr.create(v, new ai.djl.ndarray.types.Shape(shape));
        }

        /** A forward into a preallocated output (MXNet's inference mode, not recorded). */
        private ai.djl.ndarray.NDArray imperative(MxNDManager mm, String name, ai.djl.ndarray.NDArray[] in,
                PairList<String, Object> p) {
            ai.djl.ndarray.NDArray first = mm.invoke(name, in, p);  // allocates the output once
            ai.djl.ndarray.NDArray[] out = {first};
            call = () -> {
                mm.invoke(name, in, out, p);
                JnaUtils.waitAll();
            };
            call.run();
            return first;
        }

        /**
         * Records one training-mode forward of {@code name} with only {@code wrt} needing a
         * gradient; each call then runs the retained graph's backward from the case's head gradient.
         */
        private ai.djl.ndarray.NDArray recordedBackward(MxNDManager mm, String name, ai.djl.ndarray.NDArray[] in,
                PairList<String, Object> p, ai.djl.ndarray.NDArray wrt) {
            wrt.setRequiresGradient(true);
            JnaUtils.autogradSetIsRecording(true);
            JnaUtils.autogradSetTraining(true);
            ai.djl.ndarray.NDArray y = mm.invoke(name, in, p);
            JnaUtils.autogradSetIsRecording(false);
            JnaUtils.autogradSetTraining(false);
            ai.djl.ndarray.NDArray head = array(head(c), c.outShape());
            call = () -> {
                backward(y, head, true);
                JnaUtils.waitAll();
            };
            call.run();
            return wrt.getGradient();
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            mgr.close();
        }
    }

    @Benchmark
    public void mxnet(MxOp s) {
        s.call.run();
    }

    // ---- libtorch 2.10 (JavaCPP) ----------------------------------------------------------------

    @State(Scope.Thread)
    public static class TorchOp extends Params {
        Runnable call;
        Optimizer optimizer;
        Tensor result;
        final List<Object> keep = new java.util.ArrayList<>();  // tensors the calls use

        @Setup(Level.Trial)
        public void setup() {
            TorchTrainStep.prepare(threads);
            c = Case.of(op);
            Tensor x = tensor(input(c), c.in);
            long[] k = c.k(c.kernel);
            long[] st = c.k(c.stride);
            long[] pd = c.k(c.pad);
            long[] one = {1, 1};
            switch (c.kind) {
                case SGD_MOM, ADAM -> {
                    Tensor w = tensor(weight(c), c.in).set_requires_grad(true);
                    Tensor g = tensor(values(c.in, 5, 0.02f), c.in);
                    w.mul(g).sum().backward();  // w.grad = g
                    TensorVector params = new TensorVector(w);
                    if (c.kind == Kind.ADAM) {
                        AdamOptions o = new AdamOptions(0.001);
                        optimizer = new Adam(params, o);
                    } else {
                        SGDOptions o = new SGDOptions(0.01);
                        o.momentum().put(0.9);
                        optimizer = new SGD(params, o);
                    }
                    keep.add(params);
                    call = () -> {
                        try (PointerScope scope = new PointerScope()) {
                            optimizer.step();
                        }
                    };
                    call.run();
                    result = w;
                }
                case FC -> {
                    Tensor w = tensor(weight(c), c.weightShape());
                    Tensor b = tensor(bias(c), new long[] {c.out});
                    result = timed(() -> linear(x, w, b));
                }
                case SOFTMAX -> result = timed(() -> softmax(x, 1));
                case POOL -> {
                    if (c.pass.equals("fwd")) {
                        result = timed(() -> max_pool2d(x, k, st, new long[] {0, 0}, one, false));
                    } else {
                        Tensor idx;
                        try (NoGradGuard g = new NoGradGuard()) {
                            T_TensorTensor_T r = max_pool2d_with_indices(x, k, st, new long[] {0, 0}, one, false);
                            idx = r.get1();
                        }
                        Tensor gy = tensor(head(c), c.outShape());
                        result = timed(() -> max_pool2d_with_indices_backward(gy, x, k, st, new long[] {0, 0}, one, false, idx));
                    }
                }
                case CONV -> {
                    Tensor w = tensor(weight(c), c.weightShape());
                    if (c.pass.equals("fwd")) {
                        result = timed(() -> conv2d(x, w, new TensorOptional(), st, pd, one, 1));
                    } else {
                        Tensor gy = tensor(head(c), c.outShape());
                        boolean data = c.pass.equals("bwddata");
                        BoolPointer mask = new BoolPointer(3).put(0, data).put(1, !data).put(2, false);
                        keep.add(mask);
                        result = timed(() -> {
                            T_TensorTensorTensor_T r = convolution_backward(gy, x, w, new LongArrayRefOptional(), st, pd, one,
                                    false, new long[] {0, 0}, 1, mask);
                            return data ? r.get0() : r.get1();
                        });
                    }
                }
                case BN -> {
                    Tensor gamma = tensor(weight(c), c.weightShape());
                    int channels = (int) c.in[1];
                    Tensor beta = tensor(new float[channels], c.weightShape());
                    float[] ones = new float[channels];
                    Arrays.fill(ones, 1f);
                    Tensor mean = tensor(new float[channels], c.weightShape());
                    Tensor var = tensor(ones, c.weightShape());
                    Tensor gy = tensor(head(c), c.outShape());
                    BoolPointer mask = new BoolPointer(3).put(0, true).put(1, true).put(2, true);
                    keep.add(mask);
                    result = timed(() -> {
                        T_TensorTensorTensor_T f = native_batch_norm(x, new TensorOptional(gamma), new TensorOptional(beta),
                                new TensorOptional(mean), new TensorOptional(var), true, 0.1, 1e-5);
                        return native_batch_norm_backward(gy, x, new TensorOptional(gamma), new TensorOptional(mean),
                                new TensorOptional(var), new TensorOptional(f.get1()), new TensorOptional(f.get2()), true, 1e-5,
                                mask).get1();  // gamma's gradient, as the other engines' check
                    });
                }
                default -> throw new IllegalStateException(c.toString());
            }
            try (NoGradGuard g = new NoGradGuard()) {
                check("libtorch", result.sizes().vec().get(), result.sum().item_float());
            }
        }

        /** Runs {@code op} once under a NoGradGuard and makes it the timed call; returns that first result. */
        private Tensor timed(java.util.function.Supplier<Tensor> f) {
            call = () -> {
                try (PointerScope scope = new PointerScope(); NoGradGuard g = new NoGradGuard()) {
                    f.get();
                }
            };
            call.run();
            try (NoGradGuard g = new NoGradGuard()) {
                return f.get();
            }
        }

        private Tensor tensor(float[] v, long[] shape) {
            FloatPointer p = new FloatPointer(v);
            Tensor t = from_blob(p, shape).clone();
            p.close();
            return t;
        }
    }

    @Benchmark
    @Fork(value = 1, jvmArgsPrepend = "-Dbench.omp.wait=PASSIVE", jvmArgsAppend = {"-Xmx2g", "-Xss8m", "-Dai.djl.offline=true",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"})
    public void libtorch(TorchOp s) {
        s.call.run();
    }
}
