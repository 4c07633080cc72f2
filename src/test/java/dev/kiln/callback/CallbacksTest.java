package dev.kiln.callback;

import dev.kiln.module.Checkpoints;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class CallbacksTest {
    // ---- log_train_metric -----------------------------------------------------------------

    @Test
    void logTrainMetricFiresAtBatchZeroAndEveryPeriodThenResetsLocal() {
        List<String> lines = new ArrayList<>();
        BatchEndCallback cb = Callbacks.logTrainMetric(2, true, lines::add);
        FakeMetric m = new FakeMetric("accuracy", "cross-entropy");
        for (int b = 0; b < 5; b++) {
            m.set(0.5 + b / 10.0, 1.0 / (b + 1));
            cb.invoke(new BatchEndParam(3, b, m));
        }
        assertEquals(List.of(
                "Iter[3] Batch[0] Train-accuracy=0.500000", "Iter[3] Batch[0] Train-cross-entropy=1.000000",
                "Iter[3] Batch[2] Train-accuracy=0.700000", "Iter[3] Batch[2] Train-cross-entropy=0.333333",
                "Iter[3] Batch[4] Train-accuracy=0.900000", "Iter[3] Batch[4] Train-cross-entropy=0.200000"), lines);
        assertEquals(3, m.resetLocalCalls);
        assertEquals(0, m.resetCalls);
    }

    @Test
    void logTrainMetricWithoutResetOrMetric() {
        List<String> lines = new ArrayList<>();
        BatchEndCallback cb = Callbacks.logTrainMetric(1, false, lines::add);
        FakeMetric m = new FakeMetric("mse").set(Double.NaN);
        cb.invoke(new BatchEndParam(0, 0, m));
        cb.invoke(new BatchEndParam(0, 1, null));
        assertEquals(List.of("Iter[0] Batch[0] Train-mse=nan"), lines);
        assertEquals(0, m.resetLocalCalls);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Callbacks.logTrainMetric(0));
        assertTrue(e.getMessage().contains("period"), e.getMessage());
    }

    @Test
    void logValidationMetrics() {
        List<String> lines = new ArrayList<>();
        LogValidationMetricsCallback cb = new LogValidationMetricsCallback(lines::add);
        cb.invoke(new BatchEndParam(4, 7, new FakeMetric("accuracy", "f1").set(0.5, 0.8)));
        cb.invoke(new BatchEndParam(5, 0, null));
        assertEquals(List.of("Epoch[4] Validation-accuracy=0.500000", "Epoch[4] Validation-f1=0.800000"), lines);
    }

    @Test
    void batchEndParamChecksAndNormalises() {
        BatchEndParam p = new BatchEndParam(1, 2, null, null);
        assertEquals(Map.of(), p.locals());
        assertThrows(IllegalArgumentException.class, () -> new BatchEndParam(-1, 0, null));
        assertThrows(IllegalArgumentException.class, () -> new BatchEndParam(0, -1, null));
    }

    // ---- module_checkpoint ----------------------------------------------------------------

    @Test
    void moduleCheckpointSavesEveryPeriodWithOneBasedEpochs() {
        List<String> calls = new ArrayList<>();
        Checkpointable mod = (prefix, epoch, states) -> calls.add(prefix + ":" + epoch + ":" + states);
        EpochEndCallback every2 = Callbacks.moduleCheckpoint(mod, "run/ck", 2, true);
        for (int e = 0; e < 5; e++) {
            every2.invoke(e, null, Map.of(), Map.of());
        }
        assertEquals(List.of("run/ck:2:true", "run/ck:4:true"), calls);

        calls.clear();
        EpochEndCallback periodZero = Callbacks.moduleCheckpoint(mod, "p", 0, false);   // max(1, 0) = 1
        EpochEndCallback defaults = Callbacks.moduleCheckpoint(mod, "d");
        for (int e = 0; e < 2; e++) {
            periodZero.invoke(e, null, Map.of(), Map.of());
            defaults.invoke(e, null, Map.of(), Map.of());
        }
        assertEquals(List.of("p:1:false", "d:1:false", "p:2:false", "d:2:false"), calls);
    }

    @Test
    void moduleCheckpointWrapsIoErrors() {
        IOException cause = new IOException("disk full");
        EpochEndCallback cb = Callbacks.moduleCheckpoint((p, e, s) -> {
            throw cause;
        }, "x", 1, false);
        UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> cb.invoke(0, null, Map.of(), Map.of()));
        assertSame(cause, e.getCause());
        assertTrue(e.getMessage().contains("epoch 1"), e.getMessage());
    }

    // ---- do_checkpoint with real files ------------------------------------------------------

    private static Symbol net() {
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", Symbol.variable("data"), 2));
    }

    @Test
    void doCheckpointWritesSymbolAndParamsEveryPeriod(@TempDir Path dir) throws IOException {
        Symbol sym = net();
        String prefix = dir.resolve("ck").toString();
        try (NDArray w = NDArray.create(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
             NDArray b = NDArray.create(new float[] {0.5f, -0.5f}, 2);
             NDArray mm = NDArray.create(new float[] {7, 8}, 2)) {
            Map<String, NDArray> arg = new LinkedHashMap<>();
            arg.put("fc_weight", w);
            arg.put("fc_bias", b);
            Map<String, NDArray> aux = Map.of("bn_moving_mean", mm);
            EpochEndCallback cb = Callbacks.doCheckpoint(prefix, 2);
            for (int e = 0; e < 4; e++) {
                cb.invoke(e, sym, arg, aux);
            }
            assertFalse(w.isClosed(), "the callback must not close the module's arrays");
        }
        // epochs 1 and 3 (0-based) end with saves named 0002 and 0004; only complete files remain
        assertEquals(new TreeSet<>(List.of("ck-0002.params", "ck-0004.params", "ck-symbol.json")), fileNames(dir));
        assertEquals(sym.toJson(), Files.readString(dir.resolve("ck-symbol.json"), StandardCharsets.UTF_8));

        Map<String, NDArray> loaded = NDArray.load(dir.resolve("ck-0004.params"));
        try {
            assertEquals(List.of("arg:fc_weight", "arg:fc_bias", "aux:bn_moving_mean"), new ArrayList<>(loaded.keySet()));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, loaded.get("arg:fc_weight").toFloatArray());
            assertArrayEquals(new long[] {2, 3}, loaded.get("arg:fc_weight").shape().dims());
            assertArrayEquals(new float[] {0.5f, -0.5f}, loaded.get("arg:fc_bias").toFloatArray());
            assertArrayEquals(new float[] {7, 8}, loaded.get("aux:bn_moving_mean").toFloatArray());
        } finally {
            loaded.values().forEach(NDArray::close);
        }

        try (Checkpoints.Checkpoint ck = Checkpoints.load(prefix, 2)) {
            assertEquals(sym.listArguments(), ck.symbol().listArguments());
            assertEquals(List.of("fc_weight", "fc_bias"), new ArrayList<>(ck.argParams().keySet()));
            assertEquals(List.of("bn_moving_mean"), new ArrayList<>(ck.auxParams().keySet()));
            assertArrayEquals(new float[] {0.5f, -0.5f}, ck.argParams().get("fc_bias").toFloatArray());
        }
    }

    @Test
    void doCheckpointWithoutSymbolWritesOnlyParams(@TempDir Path dir) {
        EpochEndCallback cb = Callbacks.doCheckpoint(dir.resolve("p").toString());
        try (NDArray a = NDArray.create(new float[] {1}, 1)) {
            cb.invoke(0, null, Map.of("a", a), Map.of());
        }
        assertEquals(new TreeSet<>(List.of("p-0001.params")), fileNames(dir));
    }

    @Test
    void doCheckpointReportsAMissingFolder(@TempDir Path dir) {
        EpochEndCallback cb = Callbacks.doCheckpoint(dir.resolve("no/such/dir/ck").toString(), 1);
        try (NDArray a = NDArray.create(new float[] {1}, 1)) {
            UncheckedIOException e = assertThrows(UncheckedIOException.class, () -> cb.invoke(0, null, Map.of("a", a), Map.of()));
            assertTrue(e.getMessage().contains("epoch 1"), e.getMessage());
        }
    }

    @Test
    void loadParamsSplitsAtTheFirstColonAndDropsOtherPrefixes(@TempDir Path dir) throws IOException {
        Map<String, NDArray> raw = new LinkedHashMap<>();
        try (NDArray a = NDArray.create(new float[] {1}, 1);
             NDArray b = NDArray.create(new float[] {2}, 1);
             NDArray c = NDArray.create(new float[] {3}, 1);
             NDArray d = NDArray.create(new float[] {4}, 1);
             NDArray e = NDArray.create(new float[] {5}, 1)) {
            raw.put("arg:x:y", a);
            raw.put("aux:m", b);
            raw.put("other:c", c);
            raw.put("nocolon", d);
            raw.put("arg:w", e);
            NDArray.save(dir.resolve("m-0007.params"), raw);
        }
        try (Checkpoints.Checkpoint ck = Checkpoints.loadParams(dir.resolve("m").toString(), 7)) {
            assertNull(ck.symbol());
            assertEquals(List.of("x:y", "w"), new ArrayList<>(ck.argParams().keySet()));
            assertEquals(List.of("m"), new ArrayList<>(ck.auxParams().keySet()));
            assertArrayEquals(new float[] {5}, ck.argParams().get("w").toFloatArray());
        }
        assertThrows(IllegalArgumentException.class, () -> Checkpoints.paramsFile("m", -1));
        assertEquals(Path.of("m-0012.params"), Checkpoints.paramsFile("m", 12));
    }

    private static TreeSet<String> fileNames(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).collect(Collectors.toCollection(TreeSet::new));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
