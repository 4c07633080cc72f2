package dev.kiln.metric;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The metrics' device path (predictions reduced by operators where they live, sums kept on the
 * device until read) against the host path: same counts, same sums to 1e-12, same errors. Here the
 * device path runs on CPU arrays ({@link EvalMetric#deviceReduceOnCpu}); {@code
 * GpuConsistencyTest} runs {@link #checkOn} on gpu(0).
 */
@ExtendWith(NoLeaks.class)
public class DeviceMetricTest {
    /** One metric and the batches it is updated with (each batch a list of label/prediction pairs). */
    record Case(String what, Supplier<EvalMetric> metric, List<List<float[]>> labels, List<List<long[]>> labelShapes,
                List<List<float[]>> preds, List<List<long[]>> predShapes) {}

    private static long size(long[] s) {
        return Arrays.stream(s).reduce(1, (a, b) -> a * b);
    }

    /** Scores in [0, 1] with few distinct values (many ties); about 1 in 20 exactly 0 (CrossEntropy's eps). */
    private static float[] scores(Random r, long[] shape) {
        float[] p = new float[(int) size(shape)];
        for (int i = 0; i < p.length; i++) {
            p[i] = r.nextInt(20) == 0 ? 0 : r.nextInt(6) / 5f;
        }
        return p;
    }

    private static float[] classes(Random r, long[] shape, int c, float frac) {
        float[] l = new float[(int) size(shape)];
        for (int i = 0; i < l.length; i++) {
            l[i] = r.nextInt(c) + frac;  // fractions truncate to the class
        }
        return l;
    }

    private static float[] values(Random r, long[] shape) {
        float[] v = new float[(int) size(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    /** Three batches of one pair each, then one batch of two pairs, with the given shapes. */
    private static Case classification(String what, Supplier<EvalMetric> m, long[] predShape, long[] labelShape, int c, int seed) {
        Random r = new Random(seed);
        List<List<float[]>> ls = new ArrayList<>();
        List<List<long[]>> lss = new ArrayList<>();
        List<List<float[]>> ps = new ArrayList<>();
        List<List<long[]>> pss = new ArrayList<>();
        for (int b = 0; b < 4; b++) {
            int pairs = b == 3 ? 2 : 1;
            List<float[]> l = new ArrayList<>();
            List<float[]> p = new ArrayList<>();
            for (int q = 0; q < pairs; q++) {
                l.add(classes(r, labelShape, c, b == 1 ? 0.5f : 0));
                p.add(scores(r, predShape));
            }
            ls.add(l);
            ps.add(p);
            lss.add(java.util.Collections.nCopies(pairs, labelShape));
            pss.add(java.util.Collections.nCopies(pairs, predShape));
        }
        return new Case(what, m, ls, lss, ps, pss);
    }

    private static Case regression(String what, Supplier<EvalMetric> m, long[] predShape, long[] labelShape, int seed) {
        Random r = new Random(seed);
        List<List<float[]>> ls = new ArrayList<>();
        List<List<float[]>> ps = new ArrayList<>();
        for (int b = 0; b < 3; b++) {
            ls.add(List.of(values(r, labelShape)));
            ps.add(List.of(values(r, predShape)));
        }
        return new Case(what, m, ls, java.util.Collections.nCopies(3, List.of(labelShape)), ps,
                java.util.Collections.nCopies(3, List.of(predShape)));
    }

    static List<Case> cases() {
        long[] nc = {37, 11};
        long[] n = {37};
        List<Case> c = new ArrayList<>();
        c.add(classification("accuracy (37, 11)", Accuracy::new, nc, n, 11, 1));
        c.add(classification("accuracy axis 0", () -> new Accuracy(0), new long[] {5, 9}, new long[] {9}, 5, 2));
        c.add(classification("accuracy (4, 6, 3) axis 1", () -> new Accuracy(1), new long[] {4, 6, 3}, new long[] {4, 3}, 6, 3));
        c.add(classification("accuracy (37, 1) labels", Accuracy::new, nc, new long[] {37, 1}, 11, 4));
        for (int k : new int[] {2, 3, 20}) {
            c.add(classification("top-" + k, () -> new TopKAccuracy(k), nc, n, 11, 10 + k));
        }
        c.add(classification("cross-entropy", CrossEntropy::new, nc, n, 11, 5));
        c.add(classification("nll-loss", NegativeLogLikelihood::new, nc, new long[] {37, 1}, 11, 6));
        c.add(classification("perplexity", () -> new Perplexity(null), nc, n, 11, 7));
        c.add(classification("perplexity ignore 2", () -> new Perplexity(2), nc, n, 11, 8));
        c.add(classification("perplexity axis 1", () -> new Perplexity(2, 1, "perplexity", null, null),
                new long[] {4, 6, 3}, new long[] {4, 3}, 8, 9));  // labels 6 and 7 clip to class 5
        for (Supplier<EvalMetric> m : List.<Supplier<EvalMetric>>of(MSE::new, MAE::new, RMSE::new)) {
            String name = m.get().name();
            c.add(regression(name + " (37,) vs (37, 1)", m, new long[] {37, 1}, n, 20));
            c.add(regression(name + " (37,) vs (37, 3)", m, new long[] {37, 3}, n, 21));
            c.add(regression(name + " (37, 2) vs (37, 2)", m, new long[] {37, 2}, new long[] {37, 2}, 22));
            c.add(regression(name + " (6, 1, 4) vs (5, 1)", m, new long[] {5, 1}, new long[] {6, 1, 4}, 23));
        }
        // binary classifiers (macro: per-update scores on the device; micro: counts on the device
        // until read): 2 and 3 score columns (a predicted class 2 is negative), labels 0/1 and
        // 0/1.5 (truncated), batches with one and two pairs
        for (Supplier<EvalMetric> m : List.<Supplier<EvalMetric>>of(F1::new, MCC::new, () -> new F1("micro"),
                () -> new MCC("micro"))) {
            String name = m.get().name() + " " + ((BinaryClassificationMetric) m.get()).average();
            c.add(classification(name + " (37, 2)", m, new long[] {37, 2}, n, 2, 40));
            c.add(classification(name + " (37, 3)", m, new long[] {37, 3}, n, 2, 41));
            c.add(classification(name + " (5, 2)", m, new long[] {5, 2}, new long[] {5}, 2, 42));
        }
        // PCC: the confusion matrix on the device until read; labels beyond the score columns grow it
        c.add(classification("pcc (37, 11)", PCC::new, nc, n, 11, 50));
        c.add(classification("pcc (37, 4) labels to 5", PCC::new, new long[] {37, 4}, n, 6, 51));
        c.add(classification("pcc (4, 6, 3)", PCC::new, new long[] {4, 6, 3}, new long[] {4, 3}, 6, 52));
        // PearsonCorrelation: macro, a correlation per pair; micro, the merged statistics on the device
        c.add(regression("pearsonr (37,)", PearsonCorrelation::new, n, n, 53));
        c.add(regression("pearsonr (6, 5)", PearsonCorrelation::new, new long[] {6, 5}, new long[] {6, 5}, 54));
        c.add(regression("pearsonr micro (37,)", () -> new PearsonCorrelation("micro"), n, n, 55));
        c.add(regression("pearsonr micro (6, 5)", () -> new PearsonCorrelation("micro"), new long[] {6, 5}, new long[] {6, 5}, 56));
        c.add(regression("loss (4, 6, 3)", Loss::new, new long[] {4, 6, 3}, n, 30));
        c.add(regression("torch (37,)", Torch::new, n, n, 31));
        return c;
    }

    /**
     * Runs the case's batches; predictions in {@code dtype} on {@code ctx}, labels on the CPU.
     * Returns the four statistics, then the local and global values.
     */
    private static double[] run(Case c, Context ctx, DType dtype, boolean devicePath, boolean[] heldOnDevice) {
        boolean was = EvalMetric.deviceReduceOnCpu;
        EvalMetric.deviceReduceOnCpu = devicePath && !ctx.isGpu();
        try {
            EvalMetric m = c.metric().get();
            for (int b = 0; b < c.labels().size(); b++) {
                try (NDScope s = NDScope.open()) {
                    List<NDArray> labels = new ArrayList<>();
                    List<NDArray> preds = new ArrayList<>();
                    for (int q = 0; q < c.labels().get(b).size(); q++) {
                        labels.add(NDArray.create(c.labels().get(b).get(q), c.labelShapes().get(b).get(q)));
                        NDArray p = NDArray.create(c.preds().get(b).get(q), c.predShapes().get(b).get(q)).asType(dtype);
                        preds.add(ctx.isGpu() ? p.copyTo(ctx) : p);
                    }
                    m.update(labels, preds);
                }
            }
            heldOnDevice[0] = m.hasDeviceSums();
            double[] out = {m.sumMetric(), m.numInst(), m.globalSumMetric(), m.globalNumInst(), Double.NaN, Double.NaN};
            assertFalse(m.hasDeviceSums(), c.what() + ": a read leaves nothing on the device");
            out[4] = m.get();
            out[5] = m.getGlobal();
            assertFalse(m.hasDeviceSums(), c.what() + ": a read leaves nothing on the device");
            return out;
        } finally {
            EvalMetric.deviceReduceOnCpu = was;
        }
    }

    /**
     * Every case, float32 and float16 predictions: the device path on {@code ctx} (the flag on the
     * CPU, the GPU itself otherwise) against the host path on CPU predictions.
     */
    public static void checkOn(Context ctx) {
        for (Case c : cases()) {
            for (DType dtype : List.of(DType.FLOAT32, DType.FLOAT16)) {
                boolean[] held = new boolean[1];
                double[] host = run(c, Context.cpu(), dtype, false, held);
                assertFalse(held[0], c.what() + ": the host path keeps nothing on a device");
                double[] dev = run(c, ctx, dtype, true, held);
                assertTrue(held[0], c.what() + ": the device path keeps its sums on the device until read");
                String at = c.what() + " " + dtype + " on " + ctx + ": host " + Arrays.toString(host) + ", device " + Arrays.toString(dev);
                for (int i = 0; i < host.length; i++) {
                    assertEquals(host[i], dev[i], 1e-12 * Math.max(1, Math.abs(host[i])), at);
                }
            }
        }
    }

    @Test
    void everyDeviceMetricMatchesTheHostPath() {
        checkOn(Context.cpu());
    }

    /** Counts are known at once; sums wait on the device until a read; resetLocal moves them to the global sum first; reset drops them. */
    @Test
    void deviceSumsAreReadWhenTheMetricIsRead() {
        EvalMetric.deviceReduceOnCpu = true;
        try (NDScope s = NDScope.open()) {
            NDArray label = NDArray.create(new float[] {0, 1, 1, 0}, 4);
            NDArray pred = NDArray.create(new float[] {0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f, 0.3f, 0.7f}, 4, 2);
            Accuracy m = new Accuracy();
            m.update(label, pred);
            assertEquals(4, m.numInst(), 0);
            assertTrue(m.hasDeviceSums());
            assertEquals(0.5, m.get(), 0);
            assertFalse(m.hasDeviceSums());
            m.update(label, pred);
            m.resetLocal();
            assertFalse(m.hasDeviceSums());
            assertEquals(0, m.numInst(), 0);
            assertEquals(4, m.globalSumMetric(), 0);
            assertEquals(0.5, m.getGlobal(), 0);
            m.update(label, pred);
            m.reset();
            assertFalse(m.hasDeviceSums());
            assertEquals(0, m.globalSumMetric(), 0);
            assertTrue(Double.isNaN(m.getGlobal()));
            m.update(label, pred);
            assertEquals("EvalMetric: {'accuracy': 0.5}", m.toString());
            // a composite reads its children
            CompositeEvalMetric both = new CompositeEvalMetric(List.of(new Accuracy(), new CrossEntropy()), "composite", null, null);
            both.update(label, pred);
            assertEquals(0.5, both.getNameValue().get(0).getValue(), 0);
            double ce = -(Math.log(0.9f + 1e-12) + Math.log(0.8f + 1e-12) + Math.log(0.4f + 1e-12) + Math.log(0.3f + 1e-12)) / 4;
            assertEquals(ce, both.getNameValue().get(1).getValue(), 1e-12);
        } finally {
            EvalMetric.deviceReduceOnCpu = false;
        }
    }

    /** Values after each step of: update, read, two updates, resetLocal, update, read, reset, update. */
    private static List<Double> microSequence(Supplier<EvalMetric> make, boolean device) {
        boolean was = EvalMetric.deviceReduceOnCpu;
        EvalMetric.deviceReduceOnCpu = device;
        List<Double> seen = new ArrayList<>();
        try (NDScope s = NDScope.open()) {
            Random r = new Random(77);
            EvalMetric m = make.get();
            int[] round = {0};
            java.util.function.IntConsumer update = rows -> {
                if (m instanceof PearsonCorrelation) {
                    m.update(NDArray.create(values(r, new long[] {rows}), rows), NDArray.create(values(r, new long[] {rows}), rows));
                    return;
                }
                // PCC: labels 0..1, then 0..4 (the matrix grows past the 3 score columns)
                int c = m instanceof PCC && round[0]++ >= 2 ? 5 : 2;
                float[] l = classes(r, new long[] {rows}, c, 0);
                float[] p = scores(r, new long[] {rows, 3});
                m.update(NDArray.create(l, rows), NDArray.create(p, rows, 3));
            };
            Runnable read = () -> {
                if (m instanceof PCC pcc) {
                    seen.add((double) pcc.numClasses());
                }
                seen.add(m.get());
                seen.add(m.getGlobal());
                seen.add(m.numInst());
                seen.add(m.globalNumInst());
            };
            update.accept(13);
            read.run();
            update.accept(7);
            update.accept(21);
            assertEquals(device, m.hasDeviceSums());
            read.run();
            update.accept(9);
            m.resetLocal();
            read.run();
            update.accept(30);
            read.run();
            m.reset();
            assertFalse(m.hasDeviceSums());
            update.accept(11);
            read.run();
        } finally {
            EvalMetric.deviceReduceOnCpu = was;
        }
        return seen;
    }

    /**
     * micro F1/MCC, PCC and PearsonCorrelation: the device statistics are folded at each read as
     * the host path counts them, resetLocal and reset included.
     */
    @Test
    void microCountsFoldOnReadAsTheHostPath() {
        for (Supplier<EvalMetric> make : List.<Supplier<EvalMetric>>of(() -> new F1("micro"), () -> new MCC("micro"), PCC::new,
                () -> new PearsonCorrelation("micro"), PearsonCorrelation::new)) {
            List<Double> host = microSequence(make, false);
            List<Double> dev = microSequence(make, true);
            assertEquals(host.size(), dev.size());
            for (int i = 0; i < host.size(); i++) {
                assertEquals(host.get(i), dev.get(i), 1e-12, make.get().name() + " value " + i + ": host " + host + ", device " + dev);
            }
        }
    }

    /** The device path checks labels and shapes on the host first and fails as the host path does, queueing nothing. */
    @Test
    void deviceErrorsAreTheHostErrors() {
        for (boolean device : new boolean[] {false, true}) {
            EvalMetric.deviceReduceOnCpu = device;
            try (NDScope s = NDScope.open()) {
                NDArray p = NDArray.create(new float[] {0.2f, 0.8f, 0.5f, 0.5f, 1, 0}, 3, 2);
                List<Supplier<EvalMetric>> metrics = List.of(CrossEntropy::new, NegativeLogLikelihood::new);
                for (Supplier<EvalMetric> make : metrics) {
                    EvalMetric m = make.get();
                    assertThrows(IllegalArgumentException.class, () -> m.update(NDArray.create(new float[] {0, 2, 1}, 3), p),
                            "class 2 of 2");
                    assertThrows(IllegalArgumentException.class, () -> m.update(NDArray.create(new float[] {0, -1, 1}, 3), p));
                    assertThrows(IllegalArgumentException.class, () -> m.update(NDArray.create(new float[] {0, 1}, 2), p));
                    assertThrows(IllegalArgumentException.class, () -> m.update(NDArray.create(new float[] {0, 1, 0}, 3),
                            p.reshape(3, 2, 1)));
                    assertFalse(m.hasDeviceSums());
                    assertEquals(0, m.numInst(), 0);
                }
                EvalMetric acc = new Accuracy();
                assertThrows(IllegalArgumentException.class, () -> acc.update(NDArray.create(new float[] {0, 1}, 2), p));
                EvalMetric top = new TopKAccuracy(2);
                assertThrows(IllegalArgumentException.class, () -> top.update(NDArray.create(new float[] {0, 1}, 2), p));
                EvalMetric ppl = new Perplexity(null);
                assertThrows(IllegalArgumentException.class, () -> ppl.update(NDArray.create(new float[] {0, 1}, 2), p));
                EvalMetric mse = new MSE();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> mse.update(NDArray.create(new float[] {0, 1, 2, 3}, 2, 2), NDArray.create(new float[6], 2, 3)));
                assertEquals("operands could not be broadcast together with shapes (2, 2) (2, 3)", e.getMessage());
                List<EvalMetric> binary = List.of(new F1(), new MCC());
                for (EvalMetric b : binary) {
                    IllegalArgumentException three = assertThrows(IllegalArgumentException.class,
                            () -> b.update(NDArray.create(new float[] {0, 1, 2}, 3), p));
                    assertTrue(three.getMessage().contains("only supports binary classification"), three.getMessage());
                    assertThrows(IllegalArgumentException.class, () -> b.update(NDArray.create(new float[] {0, 1}, 2), p));
                    IllegalArgumentException dims = assertThrows(IllegalArgumentException.class,
                            () -> b.update(NDArray.create(new float[] {0, 1, 0}, 3), p.reshape(3, 2, 1)));
                    assertTrue(dims.getMessage().contains("2-D predictions"), dims.getMessage());
                }
                List<EvalMetric> all = new ArrayList<>(List.of(acc, top, ppl, mse));
                all.addAll(binary);
                for (EvalMetric m : all) {
                    assertFalse(m.hasDeviceSums());
                    assertEquals(0, m.numInst(), 0);
                }
                // empty predictions: NaN from the host path on both
                EvalMetric empty = new MSE();
                empty.update(NDArray.create(new float[0], 0), NDArray.create(new float[0], 0));
                assertTrue(Double.isNaN(empty.get()));
            } finally {
                EvalMetric.deviceReduceOnCpu = false;
            }
        }
    }
}
