package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MAE/MSE/RMSE (broadcasting, per-call means, bare arrays), Pearson macro/micro, Loss. */
@ExtendWith(NoLeaks.class)
class RegressionAndCorrelationTest {
    static NDArray nd(float[] data, long... shape) {
        return NDArray.create(data, shape);
    }

    @Test
    void singleArrayInput() {
        // test_single_array_input: pred [[1,2,3,4]], label = pred + 0.1, bare arrays
        try (NDScope s = NDScope.open()) {
            NDArray pred = nd(new float[] {1, 2, 3, 4}, 1, 4);
            NDArray label = pred.add(0.1);
            EvalMetric mse = Metrics.create("mse");
            mse.update(label, pred);
            assertEquals(0.01, mse.get(), 1e-6);
            EvalMetric mae = Metrics.create("mae");
            mae.update(label, pred);
            assertEquals(0.1, mae.get(), 1e-6);
            EvalMetric rmse = Metrics.create("rmse");
            rmse.update(label, pred);
            assertEquals(0.1, rmse.get(), 1e-6);
        }
    }

    @Test
    void valuesAreMeansOfPerCallMeans() {
        // batch 1: 2 samples with error 1; batch 2: 1 sample with error 4 -> mean of batch means, not of samples
        MSE mse = new MSE();
        MAE mae = new MAE();
        RMSE rmse = new RMSE();
        try (NDScope s = NDScope.open()) {
            for (EvalMetric m : List.of(mse, mae, rmse)) {
                m.update(nd(new float[] {1, 2}, 2), nd(new float[] {0, 1}, 2));
                m.update(nd(new float[] {5}, 1), nd(new float[] {1}, 1));
                assertEquals(2, m.numInst());
            }
        }
        assertEquals((1 + 16) / 2.0, mse.get(), 1e-12);
        assertEquals((1 + 4) / 2.0, mae.get(), 1e-12);
        assertEquals((1 + 4) / 2.0, rmse.get(), 1e-12);
    }

    @Test
    void broadcastingFollowsNumpy() {
        // label (2,3) against pred (3,): the 1-D pred becomes (3,1) and does NOT broadcast with (2,3)
        try (NDScope s = NDScope.open()) {
            NDArray label23 = nd(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            NDArray pred3 = nd(new float[] {1, 1, 1}, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new MSE().update(label23, pred3));
            assertTrue(e.getMessage().contains("(2, 3) (3, 1)"), e.getMessage());
            // label (2,1,3) against pred (4,3): broadcast to (2,4,3)
            float[] l = {1, 2, 3, 4, 5, 6};
            float[] p = new float[12];
            Random r = new Random(1);
            for (int i = 0; i < p.length; i++) {
                p[i] = r.nextFloat();
            }
            MAE mae = new MAE();
            mae.update(nd(l, 2, 1, 3), nd(p, 4, 3));
            double sum = 0;
            for (int a = 0; a < 2; a++) {
                for (int b = 0; b < 4; b++) {
                    for (int c = 0; c < 3; c++) {
                        sum += Math.abs(l[a * 3 + c] - (double) p[b * 3 + c]);
                    }
                }
            }
            assertEquals(sum / 24, mae.get(), 1e-12);
            // float64 inputs are read without loss
            MSE m64 = new MSE();
            m64.update(NDArray.create(new double[] {0.1, 0.2}, 2), NDArray.create(new double[] {0.3, 0.5}, 2));
            assertEquals((0.2 * 0.2 + 0.3 * 0.3) / 2, m64.get(), 1e-16);
        }
    }

    @Test
    void pearsonMacroAndMicroIncludingStreaming() {
        // test_pearsonr
        float[] pred1 = {0.3f, 0.7f, 0f, 1f, 0.4f, 0.6f};
        float[] label1 = {1, 0, 0, 1, 0, 1};
        float[] pred2 = {1, 2, 3, 2, 4, 6};
        float[] label2 = {1, 0, 0, 1, 0, 1};
        EvalMetric macro = Metrics.create("pearsonr", Map.of("average", "macro"));
        EvalMetric micro = Metrics.create("pearsonr", Map.of("average", "micro"));
        assertTrue(Double.isNaN(macro.get()) && Double.isNaN(micro.get()));
        double r1 = PearsonReference.pearson(PearsonReference.widen(pred1), PearsonReference.widen(label1));
        assertEquals(0.42163704544016178, r1, 1e-7); // MXNet's docstring value
        try (NDScope s = NDScope.open()) {
            macro.update(nd(label1, 3, 2), nd(pred1, 3, 2));
            micro.update(nd(label1, 3, 2), nd(pred1, 3, 2));
            assertEquals(r1, macro.get(), 1e-12);
            assertEquals(r1, micro.get(), 1e-12);

            // micro streams over both batches; macro on the concatenation gives the same value
            double r12 = PearsonReference.pearson(
                    PearsonReference.concat(PearsonReference.widen(pred1), PearsonReference.widen(pred2)),
                    PearsonReference.concat(PearsonReference.widen(label1), PearsonReference.widen(label2)));
            macro.reset();
            micro.update(nd(label2, 3, 2), nd(pred2, 3, 2));
            float[] pred12 = new float[12];
            float[] label12 = new float[12];
            System.arraycopy(pred1, 0, pred12, 0, 6);
            System.arraycopy(pred2, 0, pred12, 6, 6);
            System.arraycopy(label1, 0, label12, 0, 6);
            System.arraycopy(label2, 0, label12, 6, 6);
            macro.update(nd(label12, 6, 2), nd(pred12, 6, 2));
            assertEquals(r12, macro.get(), 1e-12);
            assertEquals(r12, micro.get(), 1e-12);
            assertEquals(2, micro.numInst());
        }
    }

    @Test
    void pearsonMicroStreamingOverManyBatchesAndResetLocal() {
        Random r = new Random(5);
        PearsonCorrelation micro = new PearsonCorrelation("micro");
        double[] allP = new double[0];
        double[] allL = new double[0];
        double[] lastP = null;
        double[] lastL = null;
        try (NDScope s = NDScope.open()) {
            for (int b = 0; b < 6; b++) {
                int n = 3 + b;
                float[] p = new float[n];
                float[] l = new float[n];
                for (int i = 0; i < n; i++) {
                    l[i] = (float) r.nextGaussian();
                    p[i] = (float) (0.5 * l[i] + r.nextGaussian());
                }
                if (b == 5) {
                    micro.resetLocal();
                    lastP = PearsonReference.widen(p);
                    lastL = PearsonReference.widen(l);
                }
                micro.update(nd(l, n), nd(p, n));
                allP = PearsonReference.concat(allP, PearsonReference.widen(p));
                allL = PearsonReference.concat(allL, PearsonReference.widen(l));
            }
        }
        assertEquals(PearsonReference.pearson(allP, allL), micro.getGlobal(), 1e-12);
        assertEquals(PearsonReference.pearson(lastP, lastL), micro.get(), 1e-12);
    }

    @Test
    void pearsonNeedsEqualShapes() {
        try (NDScope s = NDScope.open()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new PearsonCorrelation().update(nd(new float[] {0, 1, 1}, 3), nd(GoldenVectorTest.PRED, 3, 2)));
            assertEquals("Shape of labels (3,) does not match shape of predictions (3, 2)", e.getMessage());
        }
    }

    @Test
    void lossAcceptsListOrBareArrayAndIgnoresLabels() {
        // test_loss_update
        EvalMetric m1 = Metrics.create("loss");
        EvalMetric m2 = Metrics.create("loss");
        try (NDScope s = NDScope.open()) {
            NDArray pred = nd(GoldenVectorTest.PRED, 3, 2);
            m1.update(null, List.of(pred));
            m2.update(null, pred);
        }
        assertEquals(m1.get(), m2.get(), 0);
        assertEquals(0.5, m1.get(), 1e-7);
        assertEquals("torch", Metrics.create("torch").name());
        assertEquals("caffe", Metrics.create("caffe").name());
        assertTrue(Metrics.create("Caffe") instanceof Loss);
    }
}
