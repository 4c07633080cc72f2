package dev.kiln.kvstore.gloo;

import dev.kiln.kvstore.Collective;
import dev.kiln.kvstore.CollectiveException;
import dev.kiln.kvstore.CollectiveProvider;
import dev.kiln.kvstore.DistEnv;
import dev.kiln.ndarray.DType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.ServiceLoader;
import java.util.concurrent.TimeUnit;

/**
 * One rank of a test job (started by {@link Ranks}); the first argument picks the scenario. It
 * reports on stdout, one fact per line, which the tests parse:
 * {@code OK <check>}, {@code FAIL <check> <why>}, {@code JOINED}, {@code JOIN_FAILED ms=<t> <message>},
 * {@code READY pid=<pid>}, {@code DETECTED ms=<t> <message>}, {@code NEXT ms=<t> <message>},
 * {@code CLOSED ms=<t>}. Exit code: 0 when every check passed, 1 when one failed, 2 on an unexpected
 * error; a halting victim exits with 3.
 *
 * <p>Values are small integers (times powers of two), exactly representable, so sums are exact
 * whatever the summation order.
 */
public final class GlooWorker {
    private static int failures;

    private GlooWorker() {
    }

    /** Scenarios: {@code ops}, {@code loop <victim> halt|stop <iteration>}, {@code join}. */
    public static void main(String[] args) {
        int code;
        try {
            code = switch (args[0]) {
                case "ops" -> ops();
                case "loop" -> loop(Integer.parseInt(args[1]), args[2], Integer.parseInt(args[3]));
                case "join" -> join();
                default -> throw new IllegalArgumentException("unknown scenario " + args[0]);
            };
        } catch (Throwable t) {
            System.out.println("ERROR " + t);
            t.printStackTrace(System.out);
            code = 2;
        }
        System.out.flush();
        System.exit(code);
    }

    private static Collective connect() {
        CollectiveProvider gloo = ServiceLoader.load(CollectiveProvider.class).stream()
                .map(ServiceLoader.Provider::get)
                .filter(p -> p.name().equals("gloo"))
                .findFirst()
                .orElseThrow(() -> new IllegalStateException("no gloo CollectiveProvider on the class path"));
        return gloo.join(DistEnv.fromEnvironment());
    }

    // ---- scenario "ops": every operation's result on every rank

    private static int ops() {
        Collective c = connect();
        int n = c.size();
        check("identity", c.rank() == DistEnv.fromEnvironment().rank() && n == DistEnv.fromEnvironment().worldSize()
                && c.backend().equals("gloo"), "rank " + c.rank() + " size " + n);
        for (int count : new int[] {1, 3, 1001, 65_537, 30 * 1024 * 1024 / 4}) {
            allreduceFloat(c, count);
        }
        for (int count : new int[] {1, 7, 4099}) {
            allreduceDouble(c, count);
        }
        allreduceRegion(c);
        twoInFlight(c);
        broadcast(c, 0, 1237);
        broadcast(c, n - 1, 4096 + 5);
        allgather(c, 333);
        long[] got = c.allgatherLong(c.rank() * 1_000_000_007L + 5);
        long[] want = new long[n];
        Arrays.setAll(want, r -> r * 1_000_000_007L + 5);
        check("allgatherLong", Arrays.equals(got, want), Arrays.toString(got));
        barrier(c);
        if (n == 2) {
            abortWhilePending(c);
        }
        c.close();
        c.close();
        return failures == 0 ? 0 : 1;
    }

    /** data[i] = (rank+1) * (i % 1000 + 1) summed over ranks: n(n+1)/2 * (i % 1000 + 1). */
    private static void allreduceFloat(Collective c, int count) {
        ByteBuffer b = direct(4 * count);
        for (int i = 0; i < count; i++) {
            b.putFloat(4 * i, (c.rank() + 1) * (i % 1000 + 1));
        }
        c.allreduceSum(b, DType.FLOAT32).await();
        long tri = (long) c.size() * (c.size() + 1) / 2;
        int bad = -1;
        for (int i = 0; i < count && bad < 0; i++) {
            if (b.getFloat(4 * i) != tri * (i % 1000 + 1)) {
                bad = i;
            }
        }
        check("allreduce float32 " + count, bad < 0, bad < 0 ? "" : "element " + bad + " = " + b.getFloat(4 * bad));
    }

    /** data[i] = i + rank/8: sum n*i + n(n-1)/16. */
    private static void allreduceDouble(Collective c, int count) {
        ByteBuffer b = direct(8 * count);
        for (int i = 0; i < count; i++) {
            b.putDouble(8 * i, i + c.rank() / 8.0);
        }
        c.allreduceSum(b, DType.FLOAT64).await();
        int n = c.size();
        int bad = -1;
        for (int i = 0; i < count && bad < 0; i++) {
            if (b.getDouble(8 * i) != (double) n * i + n * (n - 1) / 16.0) {
                bad = i;
            }
        }
        check("allreduce float64 " + count, bad < 0, bad < 0 ? "" : "element " + bad + " = " + b.getDouble(8 * bad));
    }

    /** Only the floats between position and limit take part; the ones around them are untouched. */
    private static void allreduceRegion(Collective c) {
        ByteBuffer b = direct(4 * 10);
        for (int i = 0; i < 10; i++) {
            b.putFloat(4 * i, i + 1);
        }
        b.position(4 * 2).limit(4 * 7);
        c.allreduceSum(b, DType.FLOAT32).await();
        boolean kept = b.position() == 8 && b.limit() == 28;
        b.clear();
        float[] got = new float[10];
        float[] want = new float[10];
        for (int i = 0; i < 10; i++) {
            got[i] = b.getFloat(4 * i);
            want[i] = i >= 2 && i < 7 ? c.size() * (i + 1) : i + 1;
        }
        check("allreduce region", Arrays.equals(got, want) && kept, Arrays.toString(got) + " position/limit kept: " + kept);
    }

    /** Two operations started before either is awaited, awaited in reverse order. */
    private static void twoInFlight(Collective c) {
        ByteBuffer a = direct(4 * 5000);
        ByteBuffer d = direct(8 * 3000);
        for (int i = 0; i < 5000; i++) {
            a.putFloat(4 * i, c.rank() + 1);
        }
        for (int i = 0; i < 3000; i++) {
            d.putDouble(8 * i, 2.0 * (c.rank() + 1));
        }
        Collective.Work wa = c.allreduceSum(a, DType.FLOAT32);
        Collective.Work wd = c.allreduceSum(d, DType.FLOAT64);
        wd.await();
        wa.await();
        wa.await();  // awaiting again is harmless
        double tri = c.size() * (c.size() + 1) / 2.0;
        check("two in flight", a.getFloat(0) == tri && a.getFloat(4 * 4999) == tri && d.getDouble(8 * 2999) == 2 * tri,
                a.getFloat(0) + " " + d.getDouble(0));
    }

    private static void broadcast(Collective c, int root, int bytes) {
        ByteBuffer b = direct(bytes);
        for (int i = 0; i < bytes; i++) {
            b.put(i, c.rank() == root ? (byte) (i * 7 + root) : (byte) 0x55);
        }
        c.broadcast(b, root).await();
        int bad = -1;
        for (int i = 0; i < bytes && bad < 0; i++) {
            if (b.get(i) != (byte) (i * 7 + root)) {
                bad = i;
            }
        }
        check("broadcast root " + root, bad < 0, "byte " + bad);
    }

    private static void allgather(Collective c, int bytes) {
        ByteBuffer in = direct(bytes);
        ByteBuffer out = direct(bytes * c.size());
        for (int i = 0; i < bytes; i++) {
            in.put(i, (byte) (c.rank() * 31 + i));
        }
        c.allgather(in, out).await();
        int bad = -1;
        for (int i = 0; i < bytes * c.size() && bad < 0; i++) {
            if (out.get(i) != (byte) (i / bytes * 31 + i % bytes)) {
                bad = i;
            }
        }
        check("allgather", bad < 0, "byte " + bad);
    }

    /** Ranks arrive at different times; nobody leaves before the last one has arrived. */
    private static void barrier(Collective c) {
        sleepMillis(150L * c.rank());
        long arrived = System.currentTimeMillis();
        c.barrier();
        long left = System.currentTimeMillis();
        long lastArrival = Arrays.stream(c.allgatherLong(arrived)).max().getAsLong();
        check("barrier", left >= lastArrival, "left at " + left + ", last arrival " + lastArrival);
    }

    /**
     * Rank 0 starts a barrier that rank 1 never joins and aborts it from another thread: the pending
     * await must throw at once, later operations too, and close must not block.
     */
    private static void abortWhilePending(Collective c) {
        if (c.rank() != 0) {
            sleepMillis(1500);
            return;
        }
        ByteBuffer b = direct(4 * 1024);
        Collective.Work pending = c.allreduceSum(b, DType.FLOAT32);  // rank 1 never issues it
        Thread aborter = new Thread(() -> {
            sleepMillis(300);
            c.abort();
        });
        long t0 = System.nanoTime();
        aborter.start();
        String message = expectFailure(pending::await);
        long ms = millisSince(t0);
        check("abort interrupts await", message.contains("abort") && message.contains("rank 0") && ms < 5000,
                ms + " ms: " + message);
        String next = expectFailure(() -> c.broadcast(direct(8), 0));
        check("operation after abort", next.contains("abort"), next);
        long tc = System.nanoTime();
        c.close();
        check("close after abort", millisSince(tc) < 3000, millisSince(tc) + " ms");
        String closed = expectState(() -> c.barrier());
        check("operation after close", closed.contains("close"), closed);
    }

    // ---- scenario "loop": a victim dies or hangs mid-run, the others must notice

    /**
     * Every rank allreduces 256 KiB every 20 ms. The victim halts (exit 3) at {@code iteration}, or
     * prints READY there and carries on until the test stops it with SIGSTOP. The others report how
     * long their failing operation took, whether the next one fails at once, and how long close takes.
     */
    private static int loop(int victim, String mode, int iteration) {
        Collective c = connect();
        ByteBuffer b = direct(256 * 1024);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        for (int i = 0; System.nanoTime() < end; i++) {
            if (c.rank() == victim && i == iteration) {
                if (mode.equals("halt")) {
                    System.out.println("HALTING at " + i);
                    System.out.flush();
                    Runtime.getRuntime().halt(3);
                }
                System.out.println("READY pid=" + ProcessHandle.current().pid());
                System.out.flush();
            }
            long t0 = System.nanoTime();
            try {
                c.allreduceSum(b, DType.FLOAT32).await();
            } catch (CollectiveException e) {
                System.out.println("DETECTED ms=" + millisSince(t0) + " iteration=" + i + " " + e.getMessage());
                long t1 = System.nanoTime();
                String next = expectFailure(() -> c.allreduceSum(b, DType.FLOAT32).await());
                System.out.println("NEXT ms=" + millisSince(t1) + " " + next);
                long t2 = System.nanoTime();
                c.close();
                System.out.println("CLOSED ms=" + millisSince(t2));
                return 0;
            }
            sleepMillis(20);
        }
        System.out.println("FAIL loop no failure seen within 90 s");
        return 1;
    }

    // ---- scenario "join": rendezvous only (the tests launch it with a rank missing)

    private static int join() {
        long t0 = System.nanoTime();
        try (Collective c = connect()) {
            System.out.println("JOINED rank " + c.rank());
        } catch (CollectiveException e) {
            System.out.println("JOIN_FAILED ms=" + millisSince(t0) + " " + e.getMessage());
        }
        return 0;
    }

    // ---- helpers

    private static void check(String name, boolean ok, String detail) {
        if (ok) {
            System.out.println("OK " + name);
        } else {
            failures++;
            System.out.println("FAIL " + name + " " + detail);
        }
    }

    /** Runs {@code op}, which must throw CollectiveException; returns its message. */
    private static String expectFailure(Runnable op) {
        try {
            op.run();
        } catch (CollectiveException e) {
            return e.getMessage();
        }
        return "<no CollectiveException>";
    }

    /** Runs {@code op}, which must throw IllegalStateException; returns its message. */
    private static String expectState(Runnable op) {
        try {
            op.run();
        } catch (IllegalStateException e) {
            return e.getMessage();
        }
        return "<no IllegalStateException>";
    }

    static ByteBuffer direct(int bytes) {
        return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
    }

    private static long millisSince(long t0) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    }

    private static void sleepMillis(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
