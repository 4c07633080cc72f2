package dev.kiln.kvstore.gloo;

import static dev.kiln.kvstore.gloo.GlooWorker.direct;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.kvstore.CollectiveException;
import dev.kiln.kvstore.CollectiveProvider;
import dev.kiln.kvstore.DistEnv;
import dev.kiln.ndarray.DType;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ServiceLoader;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Argument checks, lifecycle and discovery of {@link GlooCollective}, in this JVM on a group of one
 * (rank 0 hosts the store and is the only worker): bad buffers and arguments throw {@link
 * IllegalArgumentException} before anything reaches Gloo, use after close throws {@link
 * IllegalStateException}, abort makes later operations throw {@link CollectiveException}.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class GlooPreconditionTest {
    private static GlooCollective solo;

    @BeforeAll
    static void joinGroupOfOne() {
        solo = GlooCollective.join(env(0, 1, Ranks.freePort()));
    }

    @AfterAll
    static void closeGroup() {
        solo.close();
    }

    @Test
    void providerIsFoundByServiceLoaderAndServesTheDistStores() {
        CollectiveProvider gloo = ServiceLoader.load(CollectiveProvider.class).stream()
                .map(ServiceLoader.Provider::get)
                .filter(p -> p.name().equals("gloo"))
                .findFirst()
                .orElseThrow();
        assertTrue(gloo.supports("dist_sync") && gloo.supports("dist_device_sync") && gloo.supports("DIST_SYNC"));
        assertFalse(gloo.supports("local") || gloo.supports("dist_async") || gloo.supports("nccl") || gloo.supports(null));
    }

    @Test
    void groupOfOneLeavesDataAsItIs() {
        assertEquals(0, solo.rank());
        assertEquals(1, solo.size());
        ByteBuffer f = direct(12);
        f.putFloat(0, 1.5f).putFloat(4, -2f).putFloat(8, 3f);
        solo.allreduceSum(f, DType.FLOAT32).await();
        assertEquals(-2f, f.getFloat(4));
        ByteBuffer in = direct(3).put(0, (byte) 7).put(1, (byte) 8).put(2, (byte) 9);
        ByteBuffer out = direct(3);
        solo.allgather(in, out).await();
        assertEquals(9, out.get(2));
        solo.broadcast(in, 0).await();
        assertEquals(7, in.get(0));
        solo.barrier();
        assertArrayEquals(new long[] {42}, solo.allgatherLong(42));
        solo.allreduceSum(direct(0), DType.FLOAT64).await();  // zero bytes: nothing to do
    }

    @Test
    void badBuffersAreRejectedWithTheReason() {
        rejects("direct ByteBuffer", () -> solo.allreduceSum(ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()), DType.FLOAT32));
        ByteBuffer foreign = ByteBuffer.allocateDirect(8).order(ByteOrder.nativeOrder() == ByteOrder.BIG_ENDIAN
                ? ByteOrder.LITTLE_ENDIAN : ByteOrder.BIG_ENDIAN);
        rejects("native byte order", () -> solo.allreduceSum(foreign, DType.FLOAT32));
        rejects("native byte order", () -> solo.broadcast(direct(8).slice(), 0));
        rejects("read-only", () -> solo.allreduceSum(direct(8).asReadOnlyBuffer().order(ByteOrder.nativeOrder()), DType.FLOAT32));
        rejects("is null", () -> solo.broadcast(null, 0));
        rejects("whole number of float32", () -> solo.allreduceSum(direct(6), DType.FLOAT32));
        rejects("whole number of float64", () -> solo.allreduceSum(direct(12), DType.FLOAT64));
        rejects("float32 or float64", () -> solo.allreduceSum(direct(8), DType.INT32));
        rejects("expected size 1 x in 4 = 4", () -> solo.allgather(direct(4), direct(5)));
        rejects("root 1 is outside", () -> solo.broadcast(direct(4), 1));
        rejects("root -1 is outside", () -> solo.broadcast(direct(4), -1));
    }

    @Test
    void badEnvironmentIsRejected() {
        rejects("rank 2 is outside [0, 2)", () -> GlooCollective.join(env(2, 2, 1234)));
        rejects("masterPort 70000 is outside 0..65535", () -> GlooCollective.join(env(0, 1, 70000)));
        rejects("not a TCP port", () -> GlooCollective.join(env(0, 1, 0)));
        rejects("at least 1 ms", () -> GlooCollective.join(new DistEnv(0, 1, 0, "127.0.0.1", 1234, Duration.ofNanos(1000))));
    }

    @Test
    void abortAndCloseEndTheGroup() {
        GlooCollective c = GlooCollective.join(env(0, 1, Ranks.freePort()));
        c.barrier();
        c.abort();
        CollectiveException e = assertThrows(CollectiveException.class, () -> c.allreduceSum(direct(4), DType.FLOAT32));
        assertTrue(e.getMessage().contains("gloo rank 0 of 1: allreduceSum of 4 bytes refused: the group was aborted on rank 0"),
                e.getMessage());
        c.close();
        c.close();
        IllegalStateException s = assertThrows(IllegalStateException.class, c::barrier);
        assertTrue(s.getMessage().contains("barrier after close()"), s.getMessage());
        c.abort();  // harmless after close
    }

    @Test
    void portInUseFailsTheRendezvousWithTheAddress() throws IOException {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            CollectiveException e = assertThrows(CollectiveException.class,
                    () -> GlooCollective.join(env(0, 1, taken.getLocalPort())));
            assertTrue(e.getMessage().startsWith("gloo rank 0 of 1: rendezvous at 127.0.0.1:" + taken.getLocalPort() + " failed: "),
                    e.getMessage());
        }
    }

    private static void rejects(String reason, Runnable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        assertTrue(e.getMessage().contains(reason), "expected '" + reason + "' in: " + e.getMessage());
    }

    private static DistEnv env(int rank, int world, int port) {
        return new DistEnv(rank, world, 0, "127.0.0.1", port, Duration.ofSeconds(10));
    }
}
