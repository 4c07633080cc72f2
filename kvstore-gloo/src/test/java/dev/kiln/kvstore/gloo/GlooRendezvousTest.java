package dev.kiln.kvstore.gloo;

import static dev.kiln.kvstore.gloo.Ranks.millis;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Rendezvous across real worker JVMs (scenario {@code join} of {@link GlooWorker}): a missing rank
 * fails the others by the deadline with a {@link dev.kiln.kvstore.CollectiveException}, and
 * {@code GLOO_SOCKET_IFNAME} picks the transport interface.
 */
class GlooRendezvousTest {
    /** Rank 0 (the store host) never starts: rank 1 fails once the 4 s deadline has passed. */
    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void missingStoreHostFailsTheRendezvous() {
        try (Ranks job = Ranks.start(2, new int[] {1}, 4, GlooWorker.class, "join")) {
            assertEquals(0, job.awaitExit(1, Duration.ofSeconds(60)), job.describe());
            String failed = job.line(1, "JOIN_FAILED").orElseThrow(() -> new AssertionError(job.describe()));
            System.out.println("rank 1: " + failed);
            assertTrue(millis(failed) >= 3500 && millis(failed) < 20_000, failed);
            assertTrue(failed.contains("gloo rank 1 of 2") && failed.contains("no store at 127.0.0.1:"), failed);
        }
    }

    /** Rank 2 of 3 never starts: ranks 0 and 1 both fail the rendezvous instead of waiting forever. */
    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void missingWorkerFailsTheRendezvous() {
        try (Ranks job = Ranks.start(3, new int[] {0, 1}, 4, GlooWorker.class, "join")) {
            int[] codes = job.awaitAll(Duration.ofSeconds(60));
            for (int rank : new int[] {0, 1}) {
                assertEquals(0, codes[rank], job.describe());
                String failed = job.line(rank, "JOIN_FAILED").orElseThrow(() -> new AssertionError(job.describe()));
                System.out.println("rank " + rank + ": " + failed);
                assertTrue(millis(failed) < 30_000, failed);
                assertTrue(failed.contains("gloo rank " + rank + " of 3") && failed.contains("rendezvous"), failed);
            }
        }
    }

    /** GLOO_SOCKET_IFNAME=lo: both ranks join over the loopback interface. */
    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void interfaceNamedInGlooSocketIfnameCarriesTheGroup() {
        try (Ranks job = Ranks.start(2, new int[] {0, 1}, 30, Map.of("GLOO_SOCKET_IFNAME", "lo"), GlooWorker.class, "join")) {
            int[] codes = job.awaitAll(Duration.ofSeconds(60));
            for (int rank : new int[] {0, 1}) {
                assertEquals(0, codes[rank], job.describe());
                assertTrue(job.line(rank, "JOINED rank " + rank).isPresent(), job.describe());
            }
        }
    }

    /** GLOO_SOCKET_IFNAME naming no interface of this machine fails the rendezvous, naming it. */
    @Test
    @Timeout(value = 90, unit = TimeUnit.SECONDS)
    void unknownInterfaceInGlooSocketIfnameFailsTheRendezvous() {
        try (Ranks job = Ranks.start(1, new int[] {0}, 30, Map.of("GLOO_SOCKET_IFNAME", "nosuchif0"), GlooWorker.class, "join")) {
            assertEquals(0, job.awaitExit(0, Duration.ofSeconds(60)), job.describe());
            String failed = job.line(0, "JOIN_FAILED").orElseThrow(() -> new AssertionError(job.describe()));
            assertTrue(failed.contains("gloo rank 0 of 1: rendezvous") && failed.contains("nosuchif0"), failed);
        }
    }
}
