package dev.kiln.callback;

import dev.kiln.metric.EvalMetric;
import dev.kiln.metric.Metrics;
import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The callbacks with the real metrics of dev.kiln.metric (spec §2.3 reference batch). */
@ExtendWith(NoLeaks.class)
class RealMetricCallbacksTest {
    private long now;

    /** preds [[.3,.7],[0,1],[.4,.6]], labels [0,1,1]: accuracy 2/3, cross-entropy 0.5715995 (spec §2.3). */
    private static void update(EvalMetric m) {
        try (NDArray label = NDArray.create(new float[] {0, 1, 1}, 3);
             NDArray pred = NDArray.create(new float[] {0.3f, 0.7f, 0, 1, 0.4f, 0.6f}, 3, 2)) {
            m.update(List.of(label), List.of(pred));
        }
    }

    @Test
    void speedometerResetsOnlyTheLocalStatistics() {
        EvalMetric m = Metrics.create(List.of("acc", "ce"));
        List<String> lines = new ArrayList<>();
        Speedometer s = new Speedometer(3, 2, true, () -> now, lines::add);
        for (int b = 0; b < 3; b++) {
            update(m);
            now += 250_000_000L;
            s.invoke(new BatchEndParam(0, b, m));
        }
        assertEquals(List.of("Epoch[0] Batch [0-2]\tSpeed: 12.00 samples/sec\taccuracy=0.666667\tcross-entropy=0.571599"),
                lines);
        assertTrue(Double.isNaN(m.getNameValue().get(0).getValue()), "local accuracy after reset_local");
        assertEquals(2.0 / 3, m.getGlobalNameValue().get(0).getValue(), 1e-7);   // fit's epoch line is unaffected
    }

    @Test
    void logTrainMetricAndTrainingLogWithRealMetrics(@TempDir Path dir) throws IOException {
        EvalMetric m = Metrics.create("acc");
        List<String> lines = new ArrayList<>();
        BatchEndCallback logTrain = Callbacks.logTrainMetric(1, true, lines::add);
        try (TrainingLog log = TrainingLog.builder().setCsvFile(dir.resolve("t.csv")).setBatchSize(3).optFrequent(1)
                .optClock(() -> now).build()) {
            for (int b = 0; b < 2; b++) {
                update(m);
                BatchEndParam p = new BatchEndParam(0, b, m);
                log.invoke(p);          // before the resetting callback
                logTrain.invoke(p);
            }
        }
        assertEquals(List.of("Iter[0] Batch[0] Train-accuracy=0.666667", "Iter[0] Batch[1] Train-accuracy=0.666667"), lines);
        List<String> csv = Files.readAllLines(dir.resolve("t.csv"), StandardCharsets.UTF_8);
        assertEquals(4, csv.size(), csv.toString());
        assertTrue(csv.get(1).startsWith("batch,0,0,3,0.000,accuracy,0.666666"), csv.get(1));
        assertTrue(csv.get(3).startsWith("train,0,,6,0.000,accuracy,0.666666"), csv.get(3));
    }
}
