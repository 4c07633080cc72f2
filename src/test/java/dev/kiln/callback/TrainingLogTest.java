package dev.kiln.callback;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TrainingLogTest {
    private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    /** A clock that moves one second every time it is read by the test's {@link #tick()}. */
    private long now = 5_000_000_000L;

    private void tick() {
        now += 1_000_000_000L;
    }

    private TrainingLog open(Path dir, int frequent, boolean autoReset, boolean chart) throws IOException {
        return TrainingLog.builder().setCsvFile(dir.resolve("log.csv")).setBatchSize(10).optFrequent(frequent)
                .optAutoReset(autoReset).optChartFile(chart ? dir.resolve("log.png") : null).optClock(() -> now).build();
    }

    private void batch(TrainingLog log, int epoch, int nbatch, FakeMetric m) {
        tick();
        log.invoke(new BatchEndParam(epoch, nbatch, m));
    }

    private static List<String> lines(Path csv) throws IOException {
        return Files.readAllLines(csv, StandardCharsets.UTF_8);
    }

    private static List<Map.Entry<String, Double>> nv(String n1, double v1, String n2, double v2) {
        return List.of(Map.entry(n1, v1), Map.entry(n2, v2));
    }

    @Test
    void recordsBatchTrainAndValidationRowsAndDrawsAPng(@TempDir Path dir) throws IOException {
        FakeMetric m = new FakeMetric("accuracy", "cross-entropy");
        TrainingLog log = open(dir, 2, false, true);
        assertEquals(List.of(TrainingLog.CSV_HEADER), lines(log.csvFile()));

        batch(log, 0, 0, m.set(0.5, 1.5, 0.5, 1.5));
        batch(log, 0, 1, m.set(0.75, 1.25, 0.625, 1.375));
        batch(log, 0, 2, m.set(0.25, 2.0, 0.5, 1.5));
        batch(log, 0, 3, m.set(1.0, 0.5, 0.625, 1.25));
        tick();
        log.scoreEndCallback().invoke(new BatchEndParam(0, 2, new FakeMetric("accuracy", "cross-entropy").set(0.5, 1.0)));
        List<String> epoch0 = List.of(TrainingLog.CSV_HEADER,
                "batch,0,1,20,2.000,accuracy,0.75",
                "batch,0,1,20,2.000,cross-entropy,1.25",
                "batch,0,3,40,4.000,accuracy,1.0",
                "batch,0,3,40,4.000,cross-entropy,0.5",
                "train,0,,40,5.000,accuracy,0.625",          // fit's global values, taken at the last batch
                "train,0,,40,5.000,cross-entropy,1.25",
                "validation,0,,40,5.000,accuracy,0.5",
                "validation,0,,40,5.000,cross-entropy,1.0");
        // every row is on disk before close, and the chart is already drawn
        assertEquals(epoch0, lines(log.csvFile()));
        assertTrue(Files.exists(dir.resolve("log.png")));
        // the same values again from the training loop: nothing new
        tick();
        log.epochEnd(0, nv("accuracy", 0.625, "cross-entropy", 1.25), nv("accuracy", 0.5, "cross-entropy", 1.0));
        assertEquals(epoch0, lines(log.csvFile()));

        batch(log, 1, 0, m.set(0.5, 1, 0.5, 1));
        batch(log, 1, 1, m.set(1.0, 0.25, 0.75, 0.625));
        batch(log, 1, 2, m.set(0, 3, 0.5, 1.5));
        batch(log, 1, 3, m.set(0.5, 0.75, 0.5, 1.25));
        tick();
        log.epochEnd(1, null, nv("accuracy", 0.75, "cross-entropy", 0.8));
        log.close();
        log.close();   // idempotent

        List<String> expected = new java.util.ArrayList<>(epoch0);
        expected.addAll(List.of(
                "batch,1,1,60,8.000,accuracy,1.0",
                "batch,1,1,60,8.000,cross-entropy,0.25",
                "batch,1,3,80,10.000,accuracy,0.5",
                "batch,1,3,80,10.000,cross-entropy,0.75",
                "train,1,,80,11.000,accuracy,0.5",
                "train,1,,80,11.000,cross-entropy,1.25",
                "validation,1,,80,11.000,accuracy,0.75",
                "validation,1,,80,11.000,cross-entropy,0.8"));
        assertEquals(expected, lines(log.csvFile()));
        assertEquals(0, m.resetLocalCalls, "the log must not reset the metric unless configured");

        byte[] png = Files.readAllBytes(dir.resolve("log.png"));
        assertArrayEquals(PNG_SIGNATURE, Arrays.copyOf(png, 8));
        BufferedImage img = ImageIO.read(dir.resolve("log.png").toFile());
        assertNotNull(img, "ImageIO cannot decode the chart");
        assertEquals(2 * 640, img.getWidth());   // two metrics side by side
        assertEquals(420, img.getHeight());
        assertFalse(isBlank(img), "the chart is empty");
        // atomic writes leave no temporary files behind
        assertEquals(new TreeSet<>(List.of("log.csv", "log.png")), fileNames(dir));

        IllegalStateException closed = assertThrows(IllegalStateException.class, () -> log.invoke(new BatchEndParam(2, 0, m)));
        assertTrue(closed.getMessage().contains("closed"), closed.getMessage());
        assertThrows(IllegalStateException.class, () -> log.epochEnd(2, null, null));
    }

    @Test
    void autoResetQuotingAndSpecialValues(@TempDir Path dir) throws IOException {
        FakeMetric m = new FakeMetric("a,\"b\"").set(Double.NaN);
        try (TrainingLog log = open(dir, 1, true, false)) {
            batch(log, 0, 0, m);
            batch(log, 0, 1, null);                       // no metric: counted, not recorded
            batch(log, 0, 2, m.set(Double.POSITIVE_INFINITY));
            assertEquals(2, m.resetLocalCalls);
            assertThrows(IllegalStateException.class, log::renderChart);
        }
        assertEquals(List.of(TrainingLog.CSV_HEADER,
                "batch,0,0,10,1.000,\"a,\"\"b\"\"\",nan",
                "batch,0,2,30,3.000,\"a,\"\"b\"\"\",inf",
                "train,0,,30,3.000,\"a,\"\"b\"\"\",inf"), lines(dir.resolve("log.csv")));
        assertEquals(new TreeSet<>(List.of("log.csv")), fileNames(dir));
    }

    @Test
    void laterDifferentValuesSupersedeAndCloseRewritesTheFile(@TempDir Path dir) throws IOException {
        FakeMetric m = new FakeMetric("accuracy");
        TrainingLog log = open(dir, 100, false, true);
        batch(log, 0, 0, m.set(0.5, 0.4));
        batch(log, 1, 0, m.set(0.5, 0.7));              // new epoch: epoch 0's train value (0.4) is recorded
        tick();
        log.epochEnd(0, List.of(Map.entry("accuracy", 0.45)), null);   // explicit value wins
        assertEquals(List.of(TrainingLog.CSV_HEADER,
                "train,0,,10,2.000,accuracy,0.4",
                "train,0,,20,3.000,accuracy,0.45"), lines(log.csvFile()));
        log.close();                                    // epoch 1's train value from the batches
        assertEquals(List.of(TrainingLog.CSV_HEADER,
                "train,0,,20,3.000,accuracy,0.45",
                "train,1,,20,3.000,accuracy,0.7"), lines(log.csvFile()));
        BufferedImage img = ImageIO.read(dir.resolve("log.png").toFile());
        assertEquals(640, img.getWidth());
        assertEquals(new TreeSet<>(List.of("log.csv", "log.png")), fileNames(dir));
    }

    @Test
    void threeMetricsMakeATwoByTwoGridAndTheFolderIsCreated(@TempDir Path dir) throws IOException {
        Path sub = dir.resolve("runs/1");
        try (TrainingLog log = new TrainingLog(sub.resolve("l.csv"), sub.resolve("l.png"), 4, 1)) {
            FakeMetric m = new FakeMetric("a", "b", "c").set(1, 2, 3);
            for (int b = 0; b < 3; b++) {
                log.invoke(new BatchEndParam(0, b, m));
            }
        }
        BufferedImage img = ImageIO.read(sub.resolve("l.png").toFile());
        assertEquals(2 * 640, img.getWidth());
        assertEquals(2 * 420, img.getHeight());
        assertEquals(1 + 9 + 3, lines(sub.resolve("l.csv")).size());
    }

    @Test
    void rejectsBadSettings(@TempDir Path dir) {
        assertThrows(IllegalArgumentException.class, () -> TrainingLog.builder().setBatchSize(1).build());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrainingLog.builder().setCsvFile(dir.resolve("x.csv")).build());
        assertTrue(e.getMessage().contains("batchSize"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> TrainingLog.builder().setCsvFile(dir.resolve("x.csv")).setBatchSize(1).optFrequent(0).build());
        assertThrows(IllegalArgumentException.class, () -> new TrainingLog(dir.resolve("x"), dir.resolve("x"), 1, 1));
        Path notADir = dir.resolve("file");
        assertThrows(IOException.class, () -> {
            Files.writeString(notADir, "x");
            new TrainingLog(notADir.resolve("x.csv"), null, 1, 1).close();
        });
    }

    private static boolean isBlank(BufferedImage img) {
        int first = img.getRGB(0, 0);
        for (int y = 0; y < img.getHeight(); y += 3) {
            for (int x = 0; x < img.getWidth(); x += 3) {
                if (img.getRGB(x, y) != first) {
                    return false;
                }
            }
        }
        return true;
    }

    private static TreeSet<String> fileNames(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
