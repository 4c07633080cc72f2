package dev.kiln.reliability;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.DataBatch;
import dev.kiln.metric.Accuracy;
import dev.kiln.module.Module;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Seeded CPU training is reproducible (docs/module-api.md, "Determinism"): the same initializer
 * seed ({@link Initializer#seed}), executor seed ({@link Executor.Options#optSeed}, Dropout's
 * generator), data and thread count give bit-identical parameters, outputs and metrics. Checked
 * for an MLP with Dropout and a small CNN (Convolution, BatchNorm, Pooling, Dropout) trained with
 * momentum SGD through forward / backward / update / updateMetric, with 1 and with 2 threads, and
 * the documented relation between 1-thread and 2-thread runs is checked too.
 */
@ExtendWith(NoLeaks.class)
class DeterminismTest {
    static final int STEPS = 30;
    int threadsBefore;

    @BeforeEach
    void saveThreads() {
        threadsBefore = Engine.numThreads();
    }

    @AfterEach
    void restoreThreads() {
        Engine.setNumThreads(threadsBefore);
    }

    static Symbol mlp() {
        Symbol x = Symbol.variable("data");
        x = Symbol.activation("relu1", Symbol.fullyConnected("fc1", x, 64), "relu");
        x = Symbol.dropout("drop1", x, 0.3);
        x = Symbol.activation("relu2", Symbol.fullyConnected("fc2", x, 32), "relu");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc3", x, 10));
    }

    static Symbol cnn() {
        Symbol x = Symbol.variable("data");
        x = Symbol.convolution("conv1", x, new long[] {3, 3}, 8, new long[] {1, 1}, new long[] {1, 1});
        x = Symbol.batchNorm("bn1", x, false);
        x = Symbol.activation("relu1", x, "relu");
        x = Symbol.pooling("pool1", x, "max", new long[] {2, 2}, new long[] {2, 2}, new long[] {0, 0});
        x = Symbol.convolution("conv2", x, new long[] {3, 3}, 8, new long[] {1, 1}, new long[] {1, 1});
        x = Symbol.activation("relu2", x, "relu");
        x = Symbol.dropout("drop1", Symbol.flatten("flat", x), 0.25);
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", x, 10));
    }

    record Run(float[] params, float[] outputs, double metric) {}

    /** Trains {@code STEPS} steps; returns every parameter and aux state (sorted by name), the last outputs and the metric. */
    static Run train(Symbol net, long[] dataShape, int threads, long seed) {
        Engine.setNumThreads(threads);
        int batch = (int) dataShape[0];
        int feat = 1;
        for (int i = 1; i < dataShape.length; i++) {
            feat *= (int) dataShape[i];
        }
        SplittableRandom r = new SplittableRandom(99);
        List<DataBatch> data = new ArrayList<>();
        for (int b = 0; b < 4; b++) {
            float[] x = new float[batch * feat];
            float[] y = new float[batch];
            for (int i = 0; i < batch; i++) {
                int cls = r.nextInt(10);
                y[i] = cls;
                for (int j = 0; j < feat; j++) {
                    x[i * feat + j] = (float) (r.nextDouble() + (j % 10 == cls ? 0.8 : 0));
                }
            }
            data.add(new DataBatch(List.of(NDArray.create(x, dataShape)), List.of(NDArray.create(y, batch))));
        }
        try (Module mod = Module.builder(net).executorOptions(new Executor.Options().optSeed(seed)).build()) {
            mod.bind(Map.of("data", dataShape), Map.of("softmax_label", new long[] {batch}), true);
            Initializer.seed(seed);
            mod.initParams(new Xavier(), null, null, false, false, false);
            mod.initOptimizer("local", "sgd", Map.of("learning_rate", 0.05, "momentum", 0.9, "wd", 1e-4), false);
            Accuracy acc = new Accuracy();
            for (int step = 0; step < STEPS; step++) {
                DataBatch b = data.get(step % data.size());
                mod.forward(b, true);
                mod.backward(null);
                mod.update();
                mod.updateMetric(acc, b.label(), false);
            }
            List<Float> all = new ArrayList<>();
            Map<String, NDArray> args = mod.getParams().get(0);
            Map<String, NDArray> aux = mod.getParams().get(1);
            for (Map<String, NDArray> m : List.of(args, aux)) {
                m.keySet().stream().sorted().forEach(k -> {
                    for (float v : m.get(k).toFloatArray()) {
                        all.add(v);
                    }
                });
            }
            float[] p = new float[all.size()];
            for (int i = 0; i < p.length; i++) {
                p[i] = all.get(i);
            }
            float[] out = mod.getOutputs().get(0).toFloatArray();
            return new Run(p, out, acc.get());
        } finally {
            data.forEach(DataBatch::close);
        }
    }

    static double maxRelDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1e-3, Math.abs(a[i])));
        }
        return m;
    }

    static final long[] MLP_SHAPE = {32, 100};
    static final long[] CNN_SHAPE = {16, 1, 12, 12};

    private static void repeats(Symbol net, long[] shape, int threads) {
        Run a = train(net, shape, threads, 5);
        Run b = train(net, shape, threads, 5);
        assertArrayEquals(a.params(), b.params(), "parameters repeat bit for bit with " + threads + " thread(s)");
        assertArrayEquals(a.outputs(), b.outputs(), "outputs repeat bit for bit with " + threads + " thread(s)");
        assertTrue(a.metric() == b.metric(), "metric repeats");
        // the seed matters: another executor / initializer seed gives other numbers
        Run c = train(net, shape, threads, 6);
        assertFalse(java.util.Arrays.equals(a.params(), c.params()), "another seed gives other parameters");
    }

    @Test
    void mlpRepeatsBitForBitOneThread() {
        repeats(mlp(), MLP_SHAPE, 1);
    }

    @Test
    void mlpRepeatsBitForBitTwoThreads() {
        repeats(mlp(), MLP_SHAPE, 2);
    }

    @Test
    void cnnRepeatsBitForBitOneThread() {
        repeats(cnn(), CNN_SHAPE, 1);
    }

    @Test
    void cnnRepeatsBitForBitTwoThreads() {
        repeats(cnn(), CNN_SHAPE, 2);
    }

    /**
     * The documented relation: the MLP (FullyConnected, Activation, Dropout, SoftmaxOutput, SGD)
     * gives bit-identical results with 1 and 2 threads; the CNN does not (Convolution sums its
     * per-thread weight-gradient accumulators, so the summation order follows the thread count)
     * but stays within 1e-3 relative after 30 steps.
     */
    @Test
    void oneVersusTwoThreads() {
        Run one = train(mlp(), MLP_SHAPE, 1, 5);
        Run two = train(mlp(), MLP_SHAPE, 2, 5);
        report("MLP", one, two);
        assertArrayEquals(one.params(), two.params(), "MLP parameters: 1 and 2 threads bit-identical");
        assertArrayEquals(one.outputs(), two.outputs(), "MLP outputs: 1 and 2 threads bit-identical");
        Run cone = train(cnn(), CNN_SHAPE, 1, 5);
        Run ctwo = train(cnn(), CNN_SHAPE, 2, 5);
        report("CNN", cone, ctwo);
        assertTrue(maxRelDiff(cone.params(), ctwo.params()) < 1e-3, "CNN parameters: 1 vs 2 threads within 1e-3 relative");
        assertTrue(maxRelDiff(cone.outputs(), ctwo.outputs()) < 1e-3, "CNN outputs: 1 vs 2 threads within 1e-3 relative");
    }

    private static void report(String what, Run one, Run two) {
        System.out.printf("DeterminismTest %s: 1 vs 2 threads bit-identical params %b, outputs %b; max rel diff params %.3g, outputs %.3g%n",
                what, java.util.Arrays.equals(one.params(), two.params()), java.util.Arrays.equals(one.outputs(), two.outputs()),
                maxRelDiff(one.params(), two.params()), maxRelDiff(one.outputs(), two.outputs()));
    }
}
