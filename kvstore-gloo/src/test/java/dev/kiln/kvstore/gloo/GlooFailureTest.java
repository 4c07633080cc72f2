package dev.kiln.kvstore.gloo;

import static dev.kiln.kvstore.gloo.Ranks.millis;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Failures across real worker JVMs (scenario {@code loop} of {@link GlooWorker}): a dead peer and a
 * hung peer must each end in a {@link dev.kiln.kvstore.CollectiveException} on the other ranks,
 * never in a hang. Time bounds are
 * generous (a loaded 2-core machine) but well below what a hang or a wrong mechanism would take.
 */
class GlooFailureTest {

    /**
     * A peer that halts mid-run (rank 1, or rank 0, which hosts the store): the others' operation
     * fails long before the 60 s deadline, the next one at once, and close does not block.
     */
    @ParameterizedTest(name = "victim rank {0}")
    @ValueSource(ints = {1, 0})
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void deadPeerMakesTheOthersFailQuickly(int victim) {
        try (Ranks job = Ranks.start(3, 60, GlooWorker.class, "loop", Integer.toString(victim), "halt", "10")) {
            int[] codes = job.awaitAll(Duration.ofSeconds(100));
            String report = job.describe();
            assertEquals(3, codes[victim], "the victim halts with 3\n" + report);
            for (int rank = 0; rank < 3; rank++) {
                if (rank == victim) {
                    continue;
                }
                assertEquals(0, codes[rank], report);
                long ms = detected(job, rank, report);
                assertTrue(ms < 20_000, "rank " + rank + " took " + ms + " ms to notice a dead peer\n" + report);
                String next = job.line(rank, "NEXT").orElseThrow();
                assertTrue(millis(next) < 1000 && next.contains("gloo rank " + rank), report);
                assertTrue(millis(job.line(rank, "CLOSED").orElseThrow()) < 10_000, report);
            }
        }
    }

    /** A peer stopped with SIGSTOP: the other rank fails by the 5 s deadline (plus grace), not never. */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void hungPeerMakesTheOthersFailByTheDeadline() {
        try (Ranks job = Ranks.start(2, 5, GlooWorker.class, "loop", "1", "stop", "10")) {
            job.awaitLine(1, l -> l.startsWith("READY"), Duration.ofSeconds(60));
            job.signal(1, "STOP");
            assertEquals(0, job.awaitExit(0, Duration.ofSeconds(60)), job.describe());
            String report = job.describe();
            long ms = detected(job, 0, report);
            assertTrue(ms >= 3000 && ms < 20_000, "a hung peer is found by the deadline: " + ms + " ms\n" + report);
            assertTrue(job.line(0, "DETECTED").orElseThrow().contains("allreduceSum of 262144 bytes"), report);
            job.signal(1, "KILL");
        }
    }

    /** The duration of the failing operation reported by {@code rank}; echoes the report line. */
    private static long detected(Ranks job, int rank, String report) {
        String line = job.line(rank, "DETECTED").orElseThrow(() -> new AssertionError("rank " + rank + " saw no failure\n" + report));
        System.out.println("rank " + rank + ": " + line + " | " + job.line(rank, "NEXT").orElse("") + " | "
                + job.line(rank, "CLOSED").orElse(""));
        assertTrue(line.contains("gloo rank " + rank), line);
        return millis(line);
    }

}
