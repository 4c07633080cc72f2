package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * MXNet's test_global_metric for every metric: a metric that calls resetLocal() after each update
 * reports, as its global value, exactly the local value of a copy that is never reset; and
 * resetLocal() clears only the local statistics.
 */
@ExtendWith(NoLeaks.class)
class GlobalMetricTest {
    static double meanAbsDiff(HostTensor label, HostTensor pred) {
        double s = 0;
        for (int i = 0; i < label.size(); i++) {
            s += Math.abs(label.get(i) - pred.get(i));
        }
        return s / label.size();
    }

    /** name, factory, rows, classes, same-shape inputs (regression) or (N, C) scores with class labels. */
    static Stream<Arguments> metrics() {
        return Stream.of(
                Arguments.of("acc", (Supplier<EvalMetric>) () -> Metrics.create("acc"), 10, 10, false),
                Arguments.of("top_k_accuracy 3", (Supplier<EvalMetric>) () -> Metrics.create("TopKAccuracy", Map.of("top_k", 3)), 10, 10, false),
                Arguments.of("f1 macro", (Supplier<EvalMetric>) () -> Metrics.create("f1"), 10, 2, false),
                Arguments.of("f1 micro", (Supplier<EvalMetric>) () -> Metrics.create("f1", Map.of("average", "micro")), 10, 2, false),
                Arguments.of("mcc macro", (Supplier<EvalMetric>) () -> Metrics.create("mcc"), 10, 2, false),
                Arguments.of("mcc micro", (Supplier<EvalMetric>) () -> Metrics.create("mcc", Map.of("average", "micro")), 10, 2, false),
                Arguments.of("perplexity -1", (Supplier<EvalMetric>) () -> Metrics.create("perplexity", -1), 10, 10, false),
                Arguments.of("pearsonr macro", (Supplier<EvalMetric>) () -> Metrics.create("pearsonr"), 10, 10, true),
                Arguments.of("pearsonr micro", (Supplier<EvalMetric>) () -> Metrics.create("pearsonr", Map.of("average", "micro")), 10, 10, true),
                Arguments.of("pcc", (Supplier<EvalMetric>) () -> Metrics.create("pcc"), 10, 2, false),
                Arguments.of("pcc 4 classes", (Supplier<EvalMetric>) () -> Metrics.create("pcc"), 10, 4, false),
                Arguments.of("nll_loss", (Supplier<EvalMetric>) () -> Metrics.create("nll_loss"), 10, 10, false),
                Arguments.of("loss", (Supplier<EvalMetric>) () -> Metrics.create("loss"), 10, 10, false),
                Arguments.of("ce", (Supplier<EvalMetric>) () -> Metrics.create("ce"), 10, 10, false),
                Arguments.of("mae", (Supplier<EvalMetric>) () -> Metrics.create("mae"), 10, 10, true),
                Arguments.of("mse", (Supplier<EvalMetric>) () -> Metrics.create("mse"), 10, 10, true),
                Arguments.of("rmse", (Supplier<EvalMetric>) () -> Metrics.create("rmse"), 10, 10, true),
                Arguments.of("custom", (Supplier<EvalMetric>) () -> Metrics.create(GlobalMetricTest::meanAbsDiff), 10, 10, true),
                Arguments.of("composite acc+f1", (Supplier<EvalMetric>) () -> Metrics.create(List.of("acc", "f1")), 10, 2, false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("metrics")
    void globalEqualsUnresetLocal(String label, Supplier<EvalMetric> factory, int n, int c, boolean sameShape) {
        EvalMetric resetting = factory.get();
        EvalMetric plain = factory.get();
        Random r = new Random(label.hashCode());
        for (int step = 0; step < 10; step++) {
            try (NDScope s = NDScope.open()) {
                NDArray pred;
                NDArray lab;
                if (sameShape) {
                    pred = NDArray.create(uniform(r, n * c), n, c);
                    lab = NDArray.create(uniform(r, n * c), n, c);
                } else {
                    float[] p = uniform(r, n * c);
                    for (int i = 0; i < n; i++) { // rows sum to 1: valid probabilities
                        float sum = 0;
                        for (int j = 0; j < c; j++) {
                            sum += p[i * c + j];
                        }
                        for (int j = 0; j < c; j++) {
                            p[i * c + j] /= sum;
                        }
                    }
                    float[] l = new float[n];
                    for (int i = 0; i < n; i++) {
                        l[i] = r.nextInt(c);
                    }
                    pred = NDArray.create(p, n, c);
                    lab = NDArray.create(l, n);
                }
                resetting.update(List.of(lab), List.of(pred));
                resetting.resetLocal();
                plain.update(List.of(lab), List.of(pred));
            }
            assertEquals(plain.getNameValue(), resetting.getGlobalNameValue(), label + " step " + step);
            for (Map.Entry<String, Double> e : resetting.getNameValue()) {
                assertTrue(Double.isNaN(e.getValue()), label + ": local value after resetLocal must be NaN, got " + e);
            }
        }
        if (!(resetting instanceof CompositeEvalMetric)) {
            assertEquals(0, resetting.numInst(), label);
            assertEquals(plain.numInst(), resetting.globalNumInst(), label);
            assertEquals(plain.getGlobal(), plain.get(), label);
        }
        resetting.reset();
        assertTrue(Double.isNaN(resetting.getGlobalNameValue().get(0).getValue()), label + " after reset()");
    }

    private static float[] uniform(Random r, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = r.nextFloat();
        }
        return f;
    }
}
