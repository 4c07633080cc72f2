package dev.kiln.mxnet;

import ai.djl.mxnet.engine.MxNDManager;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.io.Mnist;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The MNIST MLP (784-512-512-10, ReLU, SoftmaxOutput) trained for 20 steps of plain SGD in Kiln
 * and in the real MXNet 1.9.1, from the same initial weights on the same 20 batches: the symbol is
 * the JSON Kiln's {@link Symbol#toJson()} emits, bound in MXNet by its own legacy executor
 * ({@code MXExecutorBind}, the Module API's engine), updated with MXNet's {@code sgd_update}.
 * The cross-entropy of each step's softmax output (before the update) must agree to 1e-4.
 */
@ExtendWith(NoLeaks.class)
class MlpLossCurveTest {
    static final int BATCH = 128;
    static final int STEPS = 20;
    static final double TOL = 1e-4;

    static Path mnistDir() {
        Path shared = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "mnist");
        for (Path p : List.of(shared, Path.of("data", "mnist"), Path.of("/work/main/data/mnist"))) {
            if (Files.exists(p.resolve("train-images-idx3-ubyte.gz")) || Files.exists(p.resolve("train-images-idx3-ubyte"))) {
                return p;
            }
        }
        return null;
    }

    /** Mean cross-entropy of softmax probabilities {@code p} (batch x 10) against the labels. */
    static double crossEntropy(float[] p, float[] labels) {
        double s = 0;
        for (int k = 0; k < labels.length; k++) {
            s -= Math.log(Math.max(p[k * 10 + (int) labels[k]], 1e-30f));
        }
        return s / labels.length;
    }

    @Test
    void lossCurveMatchesMxnet() throws IOException {
        MxOracle.assumeAvailable();
        Path dir = mnistDir();
        Assumptions.assumeTrue(dir != null, "MNIST not found under kiln.shared/data/mnist or data/mnist");
        Mnist.Data train = Mnist.load(dir, "train");

        Symbol net = dev.kiln.examples.MnistMlp.network();  // the main job's network
        String json = net.toJson();
        List<String> argNames = net.listArguments();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : argNames) {
            reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
        }
        Map<String, String> sgd = new LinkedHashMap<>();
        sgd.put("lr", "0.1");
        sgd.put("wd", "0");
        sgd.put("rescale_grad", Double.toString(1.0 / BATCH));

        double[] kilnLoss = new double[STEPS];
        double[] mxLoss = new double[STEPS];
        try (Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("data", new long[] {BATCH, 784}), Map.of(), reqs,
                new Executor.Options());
                MxNDManager m = MxOracle.newManager();
                ai.djl.mxnet.engine.Symbol mxSym = MxOracle.symbol(m, json)) {
            assertArrayEquals(argNames.toArray(new String[0]), mxSym.getArgNames(), "MXNet reads Kiln's argument list");

            // same initial weights in both engines: Xavier-uniform weights, small uniform biases
            Random rng = new Random(20261127L);
            Map<String, ai.djl.ndarray.NDArray> mxArgs = new LinkedHashMap<>();
            Map<String, ai.djl.ndarray.NDArray> mxGrads = new LinkedHashMap<>();
            for (String a : argNames) {
                NDArray w = ex.argDict().get(a);
                long[] shape = w.shape().dims();
                float[] v = new float[(int) w.size()];
                if (a.endsWith("_weight")) {
                    double bound = Math.sqrt(6.0 / (shape[0] + shape[1]));
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) ((rng.nextDouble() * 2 - 1) * bound);
                    }
                } else if (a.endsWith("_bias")) {
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) ((rng.nextDouble() * 2 - 1) * 0.01);
                    }
                }
                w.set(v);
                mxArgs.put(a, MxOracle.create(m, v, shape));
                if (reqs.get(a) != GradReq.NULL) {
                    mxGrads.put(a, m.zeros(new ai.djl.ndarray.types.Shape(shape)));
                }
            }

            try (MxOracle.Executor mx = new MxOracle.Executor(m, mxSym, mxArgs, mxGrads)) {
                NDArray data = ex.argDict().get("data");
                NDArray label = ex.argDict().get("softmax_label");
                float[] xb = new float[BATCH * 784];
                float[] yb = new float[BATCH];
                for (int step = 0; step < STEPS; step++) {
                    System.arraycopy(train.images(), step * BATCH * 784, xb, 0, xb.length);
                    System.arraycopy(train.labels(), step * BATCH, yb, 0, BATCH);

                    data.set(xb);
                    label.set(yb);
                    ex.forwardBackward();
                    kilnLoss[step] = crossEntropy(ex.outputs().get(0).toFloatArray(), yb);
                    for (Map.Entry<String, NDArray> g : ex.gradDict().entrySet()) {
                        NDArray w = ex.argDict().get(g.getKey());
                        NDArray.invokeInto("sgd_update", sgd, w, w, g.getValue());
                    }

                    mxArgs.get("data").set(xb);
                    mxArgs.get("softmax_label").set(yb);
                    mx.forward(true).backward();
                    mxLoss[step] = crossEntropy(mx.outputs().get(0).toFloatArray(), yb);
                    for (Map.Entry<String, ai.djl.ndarray.NDArray> g : mxGrads.entrySet()) {
                        ai.djl.ndarray.NDArray w = mxArgs.get(g.getKey());
                        MxOracle.invokeInto(m, "sgd_update", sgd, w, w, g.getValue());
                    }
                }

                // final weights agree too (reported, loosely checked: 20 steps of float32 drift)
                double maxW = 0;
                for (String a : mxGrads.keySet()) {
                    float[] k = ex.argDict().get(a).toFloatArray();
                    float[] x = mxArgs.get(a).toFloatArray();
                    for (int i = 0; i < k.length; i++) {
                        maxW = Math.max(maxW, Math.abs(k[i] - x[i]));
                    }
                }
                double maxDiff = 0;
                StringBuilder table = new StringBuilder();
                for (int s = 0; s < STEPS; s++) {
                    double d = Math.abs(kilnLoss[s] - mxLoss[s]);
                    maxDiff = Math.max(maxDiff, d);
                    table.append(String.format(Locale.ROOT, "  step %2d  kiln %.6f  mxnet %.6f  |diff| %.2e%n", s, kilnLoss[s],
                            mxLoss[s], d));
                }
                System.out.print("[MlpLossCurveTest] MXNet " + MxOracle.version() + ", SGD lr 0.1, batch " + BATCH + "\n" + table);
                System.out.printf(Locale.ROOT, "[MlpLossCurveTest] max |loss diff| over %d steps = %.3e, max |weight diff| after = %.3e%n",
                        STEPS, maxDiff, maxW);
                for (int s = 0; s < STEPS; s++) {
                    assertEquals(mxLoss[s], kilnLoss[s], TOL * Math.max(1.0, Math.abs(mxLoss[s])), "loss at step " + s + "\n" + table);
                }
                assertTrue(kilnLoss[STEPS - 1] < kilnLoss[0] * 0.8, "training does not reduce the loss\n" + table);
                assertTrue(maxW < 1e-3, "weights after " + STEPS + " steps differ by " + maxW);
            }
            mxArgs.values().forEach(ai.djl.ndarray.NDArray::close);
            mxGrads.values().forEach(ai.djl.ndarray.NDArray::close);
        }
    }
}
