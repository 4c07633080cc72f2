package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The spec's verified MXNet 1.9 values (module-api.md §2.3) on preds [[0.3,0.7],[0,1],[0.4,0.6]]
 * and labels [0,1,1], each also checked against a plain double loop written here.
 */
@ExtendWith(NoLeaks.class)
class GoldenVectorTest {
    static final float[] PRED = {0.3f, 0.7f, 0f, 1f, 0.4f, 0.6f};
    static final float[] LABEL = {0, 1, 1};

    /** Updates a fresh metric created from {@code spec} once with the golden pair. */
    static EvalMetric updated(Object spec, Object... args) {
        EvalMetric m = Metrics.create(spec, args);
        try (NDScope s = NDScope.open()) {
            m.update(List.of(NDArray.create(LABEL, 3)), List.of(NDArray.create(PRED, 3, 2)));
        }
        return m;
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "acc,          accuracy,      0.6666666666666666, 1e-12",
        "f1,           f1,            0.8,                1e-12",
        "mcc,          mcc,           0.0,                0",
        "ce,           cross-entropy, 0.5715994835,       1e-7",
        "nll_loss,     nll-loss,      0.5715994835,       1e-7",
        "mae,          mae,           0.5,                1e-7",
        "mse,          mse,           0.35,               1e-7",
        "rmse,         rmse,          0.5916080,          1e-7",
        "loss,         loss,          0.5,                1e-7",
    })
    void mxnetValues(String spec, String name, double expected, double tol) {
        EvalMetric m = updated(spec);
        assertEquals(name, m.name());
        assertEquals(expected, m.get(), tol, spec);
        assertEquals(expected, m.getGlobal(), tol, spec + " global");
        assertEquals(List.of(EvalMetric.entry(name, m.get())), m.getNameValue());
    }

    @Test
    void countsMatchMxnet() {
        EvalMetric acc = updated("acc");
        assertEquals(2, acc.sumMetric());
        assertEquals(3, acc.numInst());
        EvalMetric ce = updated("ce");
        assertEquals(1.7147985, ce.sumMetric(), 1e-6);
        assertEquals(3, ce.numInst());
        EvalMetric loss = updated("loss");
        assertEquals(3, loss.sumMetric(), 1e-6);
        assertEquals(6, loss.numInst());
    }

    @Test
    void perplexityWithoutIgnoreLabel() {
        EvalMetric m = updated(new Perplexity(null));
        assertEquals(1.7710976, m.get(), 1e-6);
        // reference: exp(mean(-log p[label]))
        double nll = 0;
        for (int i = 0; i < 3; i++) {
            nll -= Math.log(PRED[i * 2 + (int) LABEL[i]]);
        }
        assertEquals(Math.exp(nll / 3), m.get(), 1e-12);
    }

    @Test
    void crossEntropyEqualsDirectLoop() {
        double sum = 0;
        for (int i = 0; i < 3; i++) {
            sum += -Math.log((double) PRED[i * 2 + (int) LABEL[i]] + 1e-12);
        }
        assertEquals(sum / 3, updated("ce").get(), 1e-15);
        assertEquals(sum / 3, updated("nll_loss").get(), 1e-15);
    }

    @Test
    void regressionMetricsEqualDirectBroadcastLoops() {
        // label (3,) becomes (3,1) and broadcasts against pred (3,2)
        double abs = 0;
        double sq = 0;
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 2; j++) {
                double d = LABEL[i] - (double) PRED[i * 2 + j];
                abs += Math.abs(d);
                sq += d * d;
            }
        }
        assertEquals(abs / 6, updated("mae").get(), 1e-15);
        assertEquals(sq / 6, updated("mse").get(), 1e-15);
        assertEquals(Math.sqrt(sq / 6), updated("rmse").get(), 1e-15);
    }

    @Test
    void accuracyAndF1EqualDirectLoops() {
        int correct = 0;
        int tp = 0;
        int fp = 0;
        int fn = 0;
        for (int i = 0; i < 3; i++) {
            int argmax = PRED[i * 2 + 1] > PRED[i * 2] ? 1 : 0;
            int l = (int) LABEL[i];
            correct += argmax == l ? 1 : 0;
            tp += argmax == 1 && l == 1 ? 1 : 0;
            fp += argmax == 1 && l != 1 ? 1 : 0;
            fn += argmax != 1 && l == 1 ? 1 : 0;
        }
        double precision = tp / (double) (tp + fp);
        double recall = tp / (double) (tp + fn);
        assertEquals(correct / 3.0, updated("acc").get(), 0);
        assertEquals(2 * precision * recall / (precision + recall), updated("f1").get(), 1e-15);
    }

    @Test
    void toStringAsMxnetPrints() {
        assertEquals("EvalMetric: {'accuracy': 0.6666666666666666}", updated("acc").toString());
        assertEquals("EvalMetric: {'mcc': 0.0}", updated("mcc").toString());
        assertEquals("EvalMetric: {'accuracy': nan}", new Accuracy().toString());
        assertEquals("EvalMetric: {'accuracy': 0.6666666666666666, 'f1': 0.8}", updated(List.of("acc", "f1")).toString());
    }

    @Test
    void compositeConcatenatesChildren() {
        // MXNet's CompositeEvalMetric docstring: (['accuracy', 'f1'], [0.6666666666666666, 0.8])
        EvalMetric c = updated(List.of(new Accuracy(), new F1()));
        assertEquals(List.of(EvalMetric.entry("accuracy", 2 / 3.0), EvalMetric.entry("f1", 0.8)), c.getNameValue());
        assertEquals(c.getNameValue(), c.getGlobalNameValue());
    }
}
