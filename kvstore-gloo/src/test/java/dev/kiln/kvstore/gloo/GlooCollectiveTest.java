package dev.kiln.kvstore.gloo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every operation of {@link GlooCollective} across real worker JVMs on 127.0.0.1 (scenario
 * {@code ops} of {@link GlooWorker}): allreduceSum in float32 and float64 (odd sizes, a region of a
 * buffer, 30 MB, two operations in flight), broadcast from rank 0 and from the last rank, allgather
 * in rank order, allgatherLong, barrier, and on 2 ranks abort of a pending operation.
 */
class GlooCollectiveTest {
    private static final List<String> CHECKS = List.of("identity", "allreduce float32 1", "allreduce float32 3",
            "allreduce float32 1001", "allreduce float32 65537", "allreduce float32 7864320", "allreduce float64 1",
            "allreduce float64 7", "allreduce float64 4099", "allreduce region", "two in flight", "broadcast root 0",
            "allgather", "allgatherLong", "barrier");
    private static final List<String> ABORT_CHECKS = List.of("abort interrupts await", "operation after abort",
            "close after abort", "operation after close");

    @ParameterizedTest(name = "{0} ranks")
    @ValueSource(ints = {2, 4})
    @Timeout(value = 150, unit = TimeUnit.SECONDS)
    void everyOperationGivesTheExactResultOnEveryRank(int world) {
        try (Ranks job = Ranks.start(world, 60, GlooWorker.class, "ops")) {
            int[] codes = job.awaitAll(Duration.ofSeconds(120));
            for (int rank = 0; rank < world; rank++) {
                String report = job.describe();
                assertEquals(0, codes[rank], "rank " + rank + " exit code\n" + report);
                List<String> lines = job.lines(rank);
                assertTrue(lines.stream().noneMatch(l -> l.startsWith("FAIL") || l.startsWith("ERROR")), report);
                for (String check : CHECKS) {
                    assertTrue(lines.contains("OK " + check), "rank " + rank + " lacks OK " + check + "\n" + report);
                }
                assertTrue(lines.contains("OK broadcast root " + (world - 1)), report);
                if (world == 2 && rank == 0) {
                    for (String check : ABORT_CHECKS) {
                        assertTrue(lines.contains("OK " + check), "rank 0 lacks OK " + check + "\n" + report);
                    }
                }
            }
        }
    }
}
