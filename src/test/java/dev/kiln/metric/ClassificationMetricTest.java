package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Accuracy, top-k, F1, MCC, PCC, cross-entropy, perplexity: MXNet's test_metric.py cases and direct references. */
@ExtendWith(NoLeaks.class)
class ClassificationMetricTest {
    static NDArray nd(float[] data, long... shape) {
        return NDArray.create(data, shape);
    }

    // ---- F1 / MCC: MXNet's test_f1 / test_mcc -------------------------------------------------

    /** The four (label, pred) pairs of test_f1/test_mcc, created in the caller's scope. */
    private static List<List<NDArray>> f1Batches() {
        return List.of(
                List.of(nd(new float[] {1, 0}, 2), nd(new float[] {1, 0}, 2)),
                List.of(nd(new float[] {0.1f, 0.9f, 0.5f, 0.5f}, 2, 2), nd(new float[] {0.85f, 0.15f, 1f, 0f}, 2, 2)),
                List.of(nd(new float[] {0}, 1), nd(new float[] {1}, 1)),
                List.of(nd(new float[] {0.6f, 0.4f}, 1, 2), nd(new float[] {0.2f, 0.8f}, 1, 2)));
    }

    static double f1(int tp, int fp, int fn) {
        return 2.0 * tp / (2.0 * tp + fp + fn);
    }

    static double mcc(double tp, double fp, double fn, double tn) {
        return (tp * tn - fp * fn) / Math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn));
    }

    /**
     * Fresh micro and macro metrics are NaN; after all-negative labels and predictions both are 0
     * (not NaN); then both are reset. Arrays are created in the caller's scope.
     */
    private static void assertZeroWithoutPositives(EvalMetric micro, EvalMetric macro) {
        assertTrue(Double.isNaN(micro.get()) && Double.isNaN(macro.get()));
        NDArray p0 = nd(new float[] {0.9f, 0.1f, 0.8f, 0.2f}, 2, 2);
        NDArray l0 = nd(new float[] {0, 0}, 2);
        micro.update(l0, p0);
        macro.update(l0, p0);
        assertEquals(0.0, micro.get());
        assertEquals(0.0, macro.get());
        micro.reset();
        macro.reset();
    }

    /** Updates both metrics with one batch and checks their counts afterwards. */
    private static void updateBoth(EvalMetric micro, EvalMetric macro, List<NDArray> labels, List<NDArray> preds,
                                   int microNum, int macroNum) {
        micro.update(labels, preds);
        macro.update(labels, preds);
        assertEquals(microNum, micro.numInst());
        assertEquals(macroNum, macro.numInst());
    }

    @Test
    void f1MacroVersusMicro() {
        EvalMetric micro = Metrics.create("f1", Map.of("average", "micro"));
        F1 macro = new F1("macro");
        try (NDScope s = NDScope.open()) {
            // divide by zero: no positives anywhere gives 0, not NaN
            assertZeroWithoutPositives(micro, macro);

            List<List<NDArray>> b = f1Batches();
            updateBoth(micro, macro, b.get(0), b.get(1), 4, 1);
            double f1a = f1(1, 0, 1); // argmax of [.5,.5] is 0: TP 1, FN 1
            assertEquals(2 / 3.0, f1a, 1e-15);
            assertEquals(f1a, micro.get(), 1e-12);
            assertEquals(f1a, macro.get(), 1e-12);

            updateBoth(micro, macro, b.get(2), b.get(3), 6, 2);
            assertEquals(f1(2, 0, 1), micro.get(), 1e-12);
            assertEquals(0.8, micro.get(), 1e-12);
            assertEquals((f1a + f1(1, 0, 0)) / 2, macro.get(), 1e-12);
            // macro's global value is also a mean of per-call scores
            assertEquals(macro.get(), macro.getGlobal(), 1e-15);
        }
    }

    @Test
    void mccMacroVersusMicro() {
        EvalMetric micro = Metrics.create("mcc", Map.of("average", "micro"));
        MCC macro = new MCC("macro");
        try (NDScope s = NDScope.open()) {
            assertZeroWithoutPositives(micro, macro); // all-negative labels and predictions: 0, not NaN

            List<List<NDArray>> b = f1Batches();
            updateBoth(micro, macro, b.get(0), b.get(1), 4, 1);
            double mcc1 = mcc(1, 0, 1, 2);
            assertEquals(mcc1, micro.get(), 1e-12);
            assertEquals(mcc1, macro.get(), 1e-12);

            updateBoth(micro, macro, b.get(2), b.get(3), 6, 2);
            double mcc2 = mcc(1, 0, 0, 1);
            assertEquals(mcc(2, 0, 1, 3), micro.get(), 1e-12);
            assertEquals((mcc1 + mcc2) / 2, macro.get(), 1e-12);
        }
    }

    @Test
    void f1AndMccRejectMoreThanTwoClasses() {
        try (NDScope s = NDScope.open()) {
            NDArray pred = nd(new float[] {1, 0, 0, 1, 1, 0}, 3, 2);
            NDArray label = nd(new float[] {0, 1, 2}, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new F1().update(label, pred));
            assertTrue(e.getMessage().contains("binary"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new MCC().update(label, pred));
            // one value per row is required
            NDArray short2 = nd(new float[] {0, 1}, 2);
            e = assertThrows(IllegalArgumentException.class, () -> new F1().update(short2, pred));
            assertEquals("Shape of labels 2 does not match shape of predictions 3", e.getMessage());
        }
    }

    // ---- Accuracy ---------------------------------------------------------------------------

    @Test
    void accuracyWith2dLabel() {
        // test_acc_2d_label: label 2x3 against pred 6x2 is compared flattened
        float[] pred = {0.3f, 0.7f, 0f, 1f, 0.4f, 0.6f, 0.8f, 0.2f, 0.3f, 0.5f, 0.6f, 0.4f};
        float[] label = {0, 1, 1, 1, 0, 1};
        EvalMetric m = Metrics.create("acc");
        try (NDScope s = NDScope.open()) {
            m.update(List.of(nd(label, 2, 3)), List.of(nd(pred, 6, 2)));
        }
        int correct = 0;
        for (int i = 0; i < 6; i++) {
            int am = pred[2 * i + 1] > pred[2 * i] ? 1 : 0;
            correct += am == (int) label[i] ? 1 : 0;
        }
        assertEquals(correct / 6.0, m.get(), 0);
        assertEquals(1 / 3.0, m.get(), 1e-15);
    }

    @Test
    void accuracyArgmaxTieTakesFirstIndexAndLabelsTruncate() {
        EvalMetric m = new Accuracy();
        try (NDScope s = NDScope.open()) {
            // rows: tie -> 0; max at 2; tie between 1 and 2 -> 1
            NDArray pred = nd(new float[] {0.5f, 0.5f, 0.1f, 0.1f, 0.2f, 0.7f, 0f, 0.5f, 0.5f}, 3, 3);
            NDArray label = nd(new float[] {0.9f, 2.99f, 1.5f}, 3); // int32 truncation: 0, 2, 1
            m.update(label, pred);
        }
        assertEquals(1.0, m.get(), 0);
    }

    @Test
    void accuracyAlongAxisZeroAndSameShapeClassIndices() {
        try (NDScope s = NDScope.open()) {
            // axis 0: pred (C=2, N=3) -> argmax over rows
            NDArray pred = nd(new float[] {0.3f, 0f, 0.4f, 0.7f, 1f, 0.6f}, 2, 3);
            EvalMetric a0 = Metrics.create("acc", Map.of("axis", 0));
            a0.update(nd(new float[] {0, 1, 1}, 3), pred);
            assertEquals(2 / 3.0, a0.get(), 1e-15);
            // same shape: predictions are class indices, compared after truncation
            EvalMetric a = new Accuracy();
            a.update(nd(new float[] {0, 1, 2, 3}, 4), nd(new float[] {0.2f, 1.9f, 2f, 0f}, 4));
            assertEquals(3 / 4.0, a.get(), 0);
        }
    }

    @Test
    void accuracyErrors() {
        try (NDScope s = NDScope.open()) {
            NDArray label = nd(new float[] {0, 1, 1}, 3);
            NDArray pred = nd(GoldenVectorTest.PRED, 3, 2);
            // a module with one label and two outputs (MXNet's ValueError)
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Accuracy().update(List.of(label), List.of(pred, pred)));
            assertEquals("Shape of labels 1 does not match shape of predictions 2", e.getMessage());
            NDArray label4 = nd(new float[] {0, 1, 1, 0}, 4);
            e = assertThrows(IllegalArgumentException.class, () -> new Accuracy().update(label4, pred));
            assertEquals("Shape of labels 4 does not match shape of predictions 3", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new Accuracy(2).update(label, pred));
        }
    }

    /**
     * The argmax-by-operator path that predictions on a GPU take, run here on CPU arrays: the same
     * counts as the host path on MXNet's cases, on 3 axes and on random scores with many ties, and
     * the same errors. Argmax's one difference (a NaN in class 0) is asserted too.
     */
    @Test
    void accuracyReducedByTheArgmaxOperatorEqualsTheHostPath() {
        Random r = new Random(5);
        List<float[]> preds = new ArrayList<>();
        List<long[]> shapes = new ArrayList<>();
        for (long[] shape : new long[][] {{64, 10}, {7, 5, 3}, {1, 1}, {33, 2}}) {
            float[] p = new float[(int) Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
            for (int i = 0; i < p.length; i++) {
                p[i] = r.nextInt(4) * 0.25f;  // few distinct values: many ties
            }
            preds.add(p);
            shapes.add(shape);
        }
        for (int c = 0; c < preds.size(); c++) {
            long[] shape = shapes.get(c);
            for (int axis = -1; axis < shape.length; axis++) {
                double[][] got = new double[2][];
                for (int path = 0; path < 2; path++) {
                    EvalMetric.deviceReduceOnCpu = path == 1;
                    try (NDScope s = NDScope.open()) {
                        int ax = axis < 0 ? shape.length - 1 : axis;
                        long[] ls = HostTensor.dropAxis(shape, ax);
                        float[] label = new float[(int) Arrays.stream(ls).reduce(1, (a, b) -> a * b)];
                        Random lr = new Random(c * 10 + axis);
                        for (int i = 0; i < label.length; i++) {
                            label[i] = lr.nextInt((int) shape[ax]) + 0.5f;  // truncates to the class
                        }
                        EvalMetric m = new Accuracy(axis);
                        m.update(nd(label, ls), nd(preds.get(c), shape));
                        m.update(nd(label, ls), nd(preds.get(c), shape));
                        got[path] = new double[] {m.sumMetric(), m.numInst()};
                    } finally {
                        EvalMetric.deviceReduceOnCpu = false;
                    }
                }
                assertTrue(Arrays.equals(got[0], got[1]), "shape " + Arrays.toString(shape) + " axis " + axis + ": host "
                        + Arrays.toString(got[0]) + ", operator " + Arrays.toString(got[1]));
                assertEquals(2 * preds.get(c).length / shape[axis < 0 ? shape.length - 1 : axis], got[1][1], 0);
            }
        }
        EvalMetric.deviceReduceOnCpu = true;
        try (NDScope s = NDScope.open()) {
            accuracyWith2dLabel();
            accuracyArgmaxTieTakesFirstIndexAndLabelsTruncate();
            accuracyAlongAxisZeroAndSameShapeClassIndices();
            accuracyErrors();
            assertThrows(IllegalArgumentException.class, () -> new Accuracy(-3).update(nd(new float[] {0, 1, 1}, 3),
                    nd(GoldenVectorTest.PRED, 3, 2)));
            // NaN in class 0: the operator keeps class 0 (MXNet's metric calls the same operator); the host path skips NaN
            NDArray nan = nd(new float[] {Float.NaN, 0.5f}, 1, 2);
            EvalMetric op = new Accuracy();
            op.update(nd(new float[] {0}, 1), nan);
            assertEquals(1.0, op.get(), 0);
            EvalMetric.deviceReduceOnCpu = false;
            EvalMetric host = new Accuracy();
            host.update(nd(new float[] {1}, 1), nan);
            assertEquals(1.0, host.get(), 0);
        } finally {
            EvalMetric.deviceReduceOnCpu = false;
        }
    }

    // ---- Top-k ------------------------------------------------------------------------------

    /** Reference: label is among the k classes with the largest scores (ties to the lower index). */
    static double topKReference(float[] pred, float[] label, int n, int c, int k) {
        int hits = 0;
        for (int i = 0; i < n; i++) {
            final int row = i;
            Integer[] order = new Integer[c];
            for (int j = 0; j < c; j++) {
                order[j] = j;
            }
            Arrays.sort(order, Comparator.comparingDouble((Integer j) -> -pred[row * c + j]).thenComparingInt(j -> j));
            for (int j = 0; j < Math.min(k, c); j++) {
                if (order[j] == (int) label[i]) {
                    hits++;
                }
            }
        }
        return hits / (double) n;
    }

    @Test
    void topKAgainstSortedReference() {
        Random r = new Random(999);
        int n = 10;
        int c = 10;
        float[] pred = new float[n * c];
        for (int i = 0; i < pred.length; i++) {
            pred[i] = r.nextFloat();
        }
        float[] label = {2, 6, 9, 2, 3, 4, 7, 8, 9, 6};
        for (int k : new int[] {2, 3, 5, 9, 10, 12}) {
            EvalMetric m = Metrics.create("top_k_accuracy", k);
            assertEquals("top_k_accuracy_" + k, m.name());
            try (NDScope s = NDScope.open()) {
                m.update(nd(label, n), nd(pred, n, c));
            }
            assertEquals(topKReference(pred, label, n, c, k), m.get(), 0, "k=" + k);
            assertEquals(n, m.numInst());
        }
    }

    @Test
    void topKHandPickedAndOneDimensional() {
        try (NDScope s = NDScope.open()) {
            NDArray pred = nd(new float[] {
                0.1f, 0.5f, 0.2f, 0.2f,   // ranking 1, 2, 3, 0
                0.4f, 0.3f, 0.2f, 0.1f,   // ranking 0, 1, 2, 3
                0.0f, 0.0f, 0.0f, 1.0f}, 3, 4);  // ranking 3, 0, 1, 2 (ties to the lower index)
            NDArray label = nd(new float[] {2, 2, 0}, 3);
            TopKAccuracy k2 = new TopKAccuracy(2);
            k2.update(label, pred);
            assertEquals(2 / 3.0, k2.get(), 1e-15); // row 0: {1,2} hit; row 1: {0,1} miss; row 2: {3,0} hit
            TopKAccuracy k3 = new TopKAccuracy(3);
            k3.update(label, pred);
            assertEquals(1.0, k3.get(), 0);
            // 1-D predictions are class indices; counted in the global pair as well
            TopKAccuracy k1d = new TopKAccuracy(2);
            k1d.update(nd(new float[] {1, 2, 3}, 3), nd(new float[] {1, 0, 3}, 3));
            assertEquals(2 / 3.0, k1d.get(), 1e-15);
            assertEquals(2 / 3.0, k1d.getGlobal(), 1e-15);
            assertThrows(IllegalArgumentException.class, () -> k2.update(label, nd(new float[8], 2, 2, 2)));
        }
    }

    @Test
    void topKMustExceedOne() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new TopKAccuracy(1));
        assertTrue(e.getMessage().contains("Please use Accuracy"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("top_k_accuracy"));
        assertThrows(IllegalArgumentException.class, () -> Metrics.create("top_k_acc", 0));
    }

    // ---- cross-entropy / nll / perplexity ---------------------------------------------------

    @Test
    void nllLossIsMeanNegativeLogOfPicked() {
        // test_nll_loss
        EvalMetric m = Metrics.create("nll_loss");
        try (NDScope s = NDScope.open()) {
            m.update(List.of(nd(new float[] {2, 1}, 2)), List.of(nd(new float[] {0.2f, 0.3f, 0.5f, 0.6f, 0.1f, 0.3f}, 2, 3)));
        }
        assertEquals(-(Math.log(0.5f + 1e-12) + Math.log(0.1f + 1e-12)) / 2, m.get(), 1e-15);
    }

    @Test
    void crossEntropyRejectsBadLabels() {
        try (NDScope s = NDScope.open()) {
            NDArray pred = nd(GoldenVectorTest.PRED, 3, 2);
            assertThrows(IllegalArgumentException.class, () -> new CrossEntropy().update(nd(new float[] {0, 1}, 2), pred));
            assertThrows(IllegalArgumentException.class, () -> new CrossEntropy().update(nd(new float[] {0, 2, 1}, 3), pred));
            assertThrows(IllegalArgumentException.class, () -> new NegativeLogLikelihood().update(nd(new float[] {0, -1, 1}, 3), pred));
        }
    }

    @Test
    void perplexityMatchesDirectComputation() {
        // test_perplexity
        float[] pred = {0.8f, 0.2f, 0.2f, 0.8f, 0f, 1f};
        float[] label = {0, 1, 1};
        EvalMetric m = Metrics.create("perplexity", -1);
        try (NDScope s = NDScope.open()) {
            m.update(List.of(nd(label, 3)), List.of(nd(pred, 3, 2)));
        }
        double nll = 0;
        for (int i = 0; i < 3; i++) {
            nll -= Math.log(pred[2 * i + (int) label[i]]);
        }
        assertEquals(Math.exp(nll / 3), m.get(), 1e-15);
    }

    @Test
    void perplexityIgnoresLabelAndClampsZeroProbabilities() {
        // (2, 2, 3) predictions along the last axis; label -1 is ignored; probability 0 is clamped to 1e-10
        float[] pred = {
            0.2f, 0.3f, 0.5f, 0.1f, 0.1f, 0.8f,
            0.0f, 0.5f, 0.5f, 0.6f, 0.3f, 0.1f};
        float[] label = {2, -1, 0, 1};
        Perplexity m = new Perplexity(-1);
        try (NDScope s = NDScope.open()) {
            m.update(nd(label, 2, 2), nd(pred, 2, 2, 3));
        }
        double loss = -(Math.log(0.5f) + Math.log(1e-10) + Math.log(0.3f));
        assertEquals(loss, m.sumMetric(), 1e-12);
        assertEquals(3, m.numInst());
        assertEquals(Math.exp(loss / 3), m.get(), 1e-9);
        assertEquals(m.get(), m.getGlobal(), 0);
    }

    @Test
    void perplexityArgumentAndShapeErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Metrics.create("perplexity"));
        assertTrue(e.getMessage().contains("ignore_label"), e.getMessage());
        try (NDScope s = NDScope.open()) {
            NDArray pred = nd(GoldenVectorTest.PRED, 3, 2);
            assertThrows(IllegalArgumentException.class, () -> new Perplexity(null).update(nd(new float[] {0, 1}, 2), pred));
        }
    }

    // ---- PCC --------------------------------------------------------------------------------

    @Test
    void pccEqualsMicroMccOnBinaryAndPearsonOfArgmax() {
        Random r = new Random(7);
        EvalMetric pcc = Metrics.create("pcc");
        EvalMetric mcc = Metrics.create("mcc", Map.of("average", "micro"));
        List<Double> labelsSeen = new ArrayList<>();
        List<Double> argmaxSeen = new ArrayList<>();
        try (NDScope s = NDScope.open()) {
            for (int batch = 0; batch < 5; batch++) {
                int n = 8;
                float[] pred = new float[n * 2];
                float[] label = new float[n];
                for (int i = 0; i < n; i++) {
                    pred[2 * i] = r.nextFloat();
                    pred[2 * i + 1] = r.nextFloat();
                    label[i] = r.nextInt(2);
                    labelsSeen.add((double) label[i]);
                    argmaxSeen.add(pred[2 * i + 1] > pred[2 * i] ? 1.0 : 0.0);
                }
                pcc.update(nd(label, n), nd(pred, n, 2));
                mcc.update(nd(label, n), nd(pred, n, 2));
                assertEquals(mcc.get(), pcc.get(), 1e-12, "batch " + batch);
            }
        }
        // Pearson correlation of the labels with the argmax predictions
        double[] x = labelsSeen.stream().mapToDouble(Double::doubleValue).toArray();
        double[] y = argmaxSeen.stream().mapToDouble(Double::doubleValue).toArray();
        assertEquals(PearsonReference.pearson(x, y), pcc.get(), 1e-12);
    }

    @Test
    void pccMulticlassMatchesReferenceAndIgnoresOrderAndBatching() {
        int[][] cm = {{23, 13, 3}, {7, 19, 11}, {2, 5, 17}};
        int k = 3;
        // reference: Σ_klm C_kk C_lm − C_kl C_mk over the two sqrt terms
        double num = 0;
        for (int a = 0; a < k; a++) {
            for (int b = 0; b < k; b++) {
                for (int c = 0; c < k; c++) {
                    num += cm[a][a] * cm[b][c] - cm[a][b] * cm[c][a];
                }
            }
        }
        double d1 = 0;
        double d2 = 0;
        for (int a = 0; a < k; a++) {
            double row = 0;
            double col = 0;
            double otherRows = 0;
            double otherCols = 0;
            for (int b = 0; b < k; b++) {
                row += cm[a][b];
                col += cm[b][a];
                for (int c = 0; c < k; c++) {
                    if (b != a) {
                        otherRows += cm[b][c];
                        otherCols += cm[c][b];
                    }
                }
            }
            d1 += row * otherRows;
            d2 += col * otherCols;
        }
        double ref = num / (Math.sqrt(d1) * Math.sqrt(d2));

        List<float[]> pairs = new ArrayList<>(); // (pred class, label) per example, pred = row index
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                for (int c = 0; c < cm[i][j]; c++) {
                    pairs.add(new float[] {i, j});
                }
            }
        }
        EvalMetric whole = Metrics.create("pcc");
        EvalMetric shuffledBatches = Metrics.create("pcc");
        try (NDScope s = NDScope.open()) {
            whole.update(nd(column(pairs, 1), pairs.size()), nd(column(pairs, 0), pairs.size()));
            java.util.Collections.shuffle(pairs, new Random(3));
            for (int start = 0; start < pairs.size(); start += 13) {
                List<float[]> part = pairs.subList(start, Math.min(pairs.size(), start + 13));
                shuffledBatches.update(nd(column(part, 1), part.size()), nd(column(part, 0), part.size()));
            }
        }
        assertEquals(ref, whole.get(), 1e-12);
        assertEquals(ref, shuffledBatches.get(), 1e-12);
        assertEquals(3, ((PCC) whole).numClasses());
    }

    private static float[] column(List<float[]> rows, int c) {
        float[] out = new float[rows.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = rows.get(i)[c];
        }
        return out;
    }

    @Test
    void pccGrowsAndIsNanWithoutVariance() {
        PCC p = new PCC();
        try (NDScope s = NDScope.open()) {
            p.update(nd(new float[] {1, 1}, 2), nd(new float[] {1, 1}, 2));
            assertTrue(Double.isNaN(p.get()));
            p.update(nd(new float[] {0, 4}, 2), nd(new float[] {0, 4}, 2));
            assertEquals(5, p.numClasses());
            assertEquals(1.0, p.get(), 1e-12);
            assertThrows(IllegalArgumentException.class, () -> p.update(nd(new float[] {-1}, 1), nd(new float[] {0}, 1)));
        }
    }
}
