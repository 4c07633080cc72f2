package dev.kiln.examples;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.io.Mnist;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The main job at this stage: trains the MLP 784-512-512-10 on MNIST with the Executor API and
 * SGD with momentum (one native call for forward+backward, one fused update op per parameter),
 * printing the loss and accuracy per epoch and the test accuracy.
 *
 * <pre>
 * mvn -q -DskipTests package exec:java [-Dexec.args="--epochs 10 --batch 128 --lr 0.1 --threads 1 --data data/mnist"]
 * </pre>
 */
public final class MnistMlp {
    private MnistMlp() {}

    /** Result of a run: per-epoch training loss and accuracy, and the final test accuracy. */
    public record Result(List<Double> trainLoss, List<Double> trainAccuracy, double testAccuracy, long samplesPerSecond) {}

    /** The network: data -> fc1(512) -> relu -> fc2(512) -> relu -> fc3(10) -> SoftmaxOutput. */
    public static Symbol network() {
        Symbol data = Symbol.variable("data");
        Symbol fc1 = Symbol.fullyConnected("fc1", data, 512);
        Symbol act1 = Symbol.activation("relu1", fc1, "relu");
        Symbol fc2 = Symbol.fullyConnected("fc2", act1, 512);
        Symbol act2 = Symbol.activation("relu2", fc2, "relu");
        Symbol fc3 = Symbol.fullyConnected("fc3", act2, 10);
        return Symbol.softmaxOutput("softmax", fc3);
    }

    /** The shape of parameter {@code name} of {@link #network()} (e.g. fc1_weight: 512 x 784). */
    public static long[] paramShape(String name) {
        return switch (name) {
            case "fc1_weight" -> new long[] {512, 784};
            case "fc2_weight" -> new long[] {512, 512};
            case "fc3_weight" -> new long[] {10, 512};
            case "fc1_bias", "fc2_bias" -> new long[] {512};
            case "fc3_bias" -> new long[] {10};
            default -> throw new IllegalArgumentException("MnistMlp has no parameter '" + name + "'");
        };
    }

    /** Trains and evaluates; prints progress when {@code verbose}. */
    public static Result train(Path dataDir, int epochs, int batch, double lr, double momentum, long seed, boolean verbose)
            throws IOException {
        Mnist.Data train = Mnist.load(dataDir, "train");
        Mnist.Data test = Mnist.load(dataDir, "t10k");
        Symbol net = network();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
        }
        List<Double> losses = new ArrayList<>();
        List<Double> accs = new ArrayList<>();
        long sps;
        double testAcc;
        try (Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {batch, 784}), Map.of(), reqs,
                new Executor.Options())) {
            if (verbose) {
                System.out.print(ex.memoryReport());
            }
            Random rng = new Random(seed);
            Map<String, NDArray> moms = new LinkedHashMap<>();
            for (Map.Entry<String, NDArray> e : ex.gradDict().entrySet()) {
                NDArray w = ex.argDict().get(e.getKey());
                float[] v = new float[(int) w.size()];
                if (e.getKey().endsWith("_weight")) {
                    // Xavier uniform, as MXNet's Xavier(factor_type="avg", magnitude=3)
                    double bound = Math.sqrt(6.0 / (w.shape().get(0) + w.shape().get(1)));
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
                    }
                }
                w.set(v);
                moms.put(e.getKey(), NDArray.zeros(w.shape(), DType.FLOAT32, Context.cpu()));
            }
            NDArray data = ex.argDict().get("data");
            NDArray label = ex.argDict().get("softmax_label");
            NDArray prob = ex.outputs().get(0);
            Map<String, Object> upd = new LinkedHashMap<>();
            upd.put("lr", lr);
            upd.put("momentum", momentum);
            upd.put("wd", 1e-4);
            upd.put("rescale_grad", 1.0 / batch);
            int n = train.count();
            int[] order = new int[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            float[] xb = new float[batch * 784];
            float[] yb = new float[batch];
            long samples = 0;
            long nanos = 0;
            try {
                for (int epoch = 0; epoch < epochs; epoch++) {
                    for (int i = n - 1; i > 0; i--) {
                        int j = rng.nextInt(i + 1);
                        int t = order[i];
                        order[i] = order[j];
                        order[j] = t;
                    }
                    double loss = 0;
                    long correct = 0;
                    long seen = 0;
                    long t0 = System.nanoTime();
                    for (int b = 0; b + batch <= n; b += batch) {
                        for (int k = 0; k < batch; k++) {
                            int s = order[b + k];
                            System.arraycopy(train.images(), s * 784, xb, k * 784, 784);
                            yb[k] = train.labels()[s];
                        }
                        data.set(xb);
                        label.set(yb);
                        ex.forwardBackward();
                        for (Map.Entry<String, NDArray> e : ex.gradDict().entrySet()) {
                            NDArray w = ex.argDict().get(e.getKey());
                            NDArray.invokeInto("sgd_mom_update", upd, w, w, e.getValue(), moms.get(e.getKey()));
                        }
                        float[] p = prob.toFloatArray();
                        for (int k = 0; k < batch; k++) {
                            int y = (int) yb[k];
                            loss -= Math.log(Math.max(p[k * 10 + y], 1e-12));
                            int arg = 0;
                            for (int c = 1; c < 10; c++) {
                                if (p[k * 10 + c] > p[k * 10 + arg]) {
                                    arg = c;
                                }
                            }
                            correct += arg == y ? 1 : 0;
                        }
                        seen += batch;
                    }
                    nanos += System.nanoTime() - t0;
                    samples += seen;
                    losses.add(loss / seen);
                    accs.add((double) correct / seen);
                    if (verbose) {
                        System.out.printf("epoch %d: train cross-entropy %.4f, train accuracy %.4f, %.0f samples/s%n", epoch,
                                loss / seen, (double) correct / seen, seen / ((System.nanoTime() - t0) / 1e9));
                    }
                }
            } finally {
                moms.values().forEach(NDArray::close);
            }
            sps = nanos == 0 ? 0 : (long) (samples / (nanos / 1e9));
            // test: forward only, inference mode; the last partial batch is padded
            long correct = 0;
            for (int b = 0; b < test.count(); b += batch) {
                int m = Math.min(batch, test.count() - b);
                java.util.Arrays.fill(xb, 0f);
                System.arraycopy(test.images(), b * 784, xb, 0, m * 784);
                data.set(xb);
                ex.forward(false);
                float[] p = prob.toFloatArray();
                for (int k = 0; k < m; k++) {
                    int arg = 0;
                    for (int c = 1; c < 10; c++) {
                        if (p[k * 10 + c] > p[k * 10 + arg]) {
                            arg = c;
                        }
                    }
                    correct += arg == (int) test.labels()[b + k] ? 1 : 0;
                }
            }
            testAcc = (double) correct / test.count();
        }
        if (verbose) {
            System.out.printf("test accuracy %.4f (%d test images)%n", testAcc, test.count());
        }
        return new Result(losses, accs, testAcc, sps);
    }

    /** Command line: {@code --epochs N --batch N --lr X --momentum X --threads N --data DIR --seed N}. */
    public static void main(String[] args) throws IOException {
        int epochs = 10;
        int batch = 128;
        double lr = 0.1;
        double momentum = 0.9;
        int threads = Math.max(1, Runtime.getRuntime().availableProcessors());
        long seed = 42;
        Path dir = Path.of("data/mnist");
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--epochs" -> epochs = Integer.parseInt(args[i + 1]);
                case "--batch" -> batch = Integer.parseInt(args[i + 1]);
                case "--lr" -> lr = Double.parseDouble(args[i + 1]);
                case "--momentum" -> momentum = Double.parseDouble(args[i + 1]);
                case "--threads" -> threads = Integer.parseInt(args[i + 1]);
                case "--seed" -> seed = Long.parseLong(args[i + 1]);
                case "--data" -> dir = Path.of(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        Engine.setNumThreads(threads);
        System.out.printf("Kiln MNIST MLP 784-512-512-10: %d epochs, batch %d, SGD lr %.3g momentum %.2f, %d threads, %s, %s%n", epochs,
                batch, lr, momentum, threads, Engine.simdIsa(), Engine.blasConfig());
        train(dir, epochs, batch, lr, momentum, seed, true);
    }
}
