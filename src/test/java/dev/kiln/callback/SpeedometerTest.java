package dev.kiln.callback;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SpeedometerTest {
    /** A clock the test moves by hand. */
    private static final class Clock {
        long now = 1_000_000_000L;

        void advanceMillis(long ms) {
            now += ms * 1_000_000L;
        }
    }

    private final Clock clock = new Clock();
    private final List<String> lines = new ArrayList<>();

    private void call(Speedometer s, int epoch, int nbatch, FakeMetric m, long millisBefore) {
        clock.advanceMillis(millisBefore);
        s.invoke(new BatchEndParam(epoch, nbatch, m));
    }

    @Test
    void autoResetLogsEveryFrequentBatchesWithTabsAndResetsLocal() {
        Speedometer s = new Speedometer(4, 2, true, () -> clock.now, lines::add);
        FakeMetric m = new FakeMetric("accuracy", "cross-entropy").set(0.25, 1.0992612);
        call(s, 0, 0, m, 100);      // init: starts the clock, logs nothing
        call(s, 0, 1, m, 250);
        call(s, 0, 2, m, 250);      // 2 batches x 4 samples in 0.5 s
        assertEquals(List.of("Epoch[0] Batch [0-2]\tSpeed: 16.00 samples/sec\taccuracy=0.250000\tcross-entropy=1.099261"),
                lines);
        assertEquals(1, m.resetLocalCalls);
        assertEquals(0, m.resetCalls);

        m.set(0.5, 0.75);
        call(s, 0, 3, m, 1000);
        call(s, 0, 4, m, 1000);     // 8 samples in 2 s since the last line
        assertEquals("Epoch[0] Batch [2-4]\tSpeed: 4.00 samples/sec\taccuracy=0.500000\tcross-entropy=0.750000", lines.get(1));
        assertEquals(2, m.resetLocalCalls);
        assertEquals(2, lines.size());
    }

    @Test
    void withoutAutoResetTheRangeStartsAtZeroAndTheMetricIsKept() {
        Speedometer s = new Speedometer(10, 3, false, () -> clock.now, lines::add);
        FakeMetric m = new FakeMetric("accuracy").set(0.875);
        for (int b = 0; b <= 6; b++) {
            call(s, 1, b, m, 100);
        }
        // lines at nbatch 3 (3 batches x 10 samples in 0.3 s) and 6
        assertEquals(List.of("Epoch[1] Batch [0-3]\tSpeed: 100.00 samples/sec\taccuracy=0.875000",
                "Epoch[1] Batch [0-6]\tSpeed: 100.00 samples/sec\taccuracy=0.875000"), lines);
        assertEquals(0, m.resetLocalCalls);
    }

    @Test
    void withoutMetricLogsIterLine() {
        Speedometer s = new Speedometer(3, 2, true, () -> clock.now, lines::add);
        call(s, 2, 0, null, 0);
        call(s, 2, 1, null, 1000);
        call(s, 2, 2, null, 1000);
        assertEquals(List.of("Iter[2] Batch [2]\tSpeed: 3.00 samples/sec"), lines);
    }

    @Test
    void zeroIntervalIsInfinite() {
        Speedometer s = new Speedometer(3, 1, true, () -> clock.now, lines::add);
        call(s, 0, 0, null, 0);
        call(s, 0, 1, null, 0);
        assertEquals(List.of("Iter[0] Batch [1]\tSpeed: inf samples/sec"), lines);
    }

    @Test
    void aLowerBatchIndexRestartsTheMeter() {
        Speedometer s = new Speedometer(1, 2, true, () -> clock.now, lines::add);
        FakeMetric m = new FakeMetric("acc").set(1);
        for (int b = 0; b <= 3; b++) {
            call(s, 0, b, m, 1000);
        }
        assertEquals(1, lines.size());   // nbatch 2 only
        // epoch 1: nbatch 0 (< last count 3) re-initialises: no line at 0 although 0 % 2 == 0
        call(s, 1, 0, m.set(0.5), 5000);
        assertEquals(1, lines.size());
        call(s, 1, 1, m, 500);
        call(s, 1, 2, m, 500);            // the clock restarted at epoch 1 batch 0: 2 samples in 1 s
        assertEquals("Epoch[1] Batch [0-2]\tSpeed: 2.00 samples/sec\tacc=0.500000", lines.get(1));
        // same batch index again is not a restart (last_count > count is strict)
        call(s, 1, 2, m.set(0.25), 250);
        assertEquals("Epoch[1] Batch [0-2]\tSpeed: 8.00 samples/sec\tacc=0.250000", lines.get(2));
    }

    @Test
    void numbersUseADotInEveryLocale() {
        Locale saved = Locale.getDefault();
        Locale.setDefault(Locale.GERMANY);
        try {
            Speedometer s = new Speedometer(1, 1, true, () -> clock.now, lines::add);
            call(s, 0, 0, null, 0);
            call(s, 0, 1, new FakeMetric("mse").set(0.5), 3);
            assertEquals("Epoch[0] Batch [0-1]\tSpeed: 333.33 samples/sec\tmse=0.500000", lines.get(0));
        } finally {
            Locale.setDefault(saved);
        }
    }

    @Test
    void rejectsBadArguments() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Speedometer(0));
        assertTrue(e.getMessage().contains("batchSize"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Speedometer(8, 0));
        assertTrue(e.getMessage().contains("frequent"), e.getMessage());
    }
}
