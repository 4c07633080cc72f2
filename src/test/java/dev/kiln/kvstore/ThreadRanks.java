package dev.kiln.kvstore;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** Runs one body per rank, each on its own thread with its {@link ThreadCollective} member (tests). */
public final class ThreadRanks {
    private ThreadRanks() {}

    /** A rank's work. */
    @FunctionalInterface
    public interface Body<T> {
        T run(int rank, Collective group) throws Exception;
    }

    /** What each rank returned, or what it threw (then the result is null). */
    public record Outcome<T>(T value, Throwable error) {}

    /** Runs {@code body} on {@code n} ranks and returns every rank's outcome (waits at most a minute). */
    public static <T> List<Outcome<T>> run(int n, Duration timeout, Body<T> body) throws InterruptedException {
        List<Collective> members = ThreadCollective.group(n, timeout);
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            List<Future<T>> fs = new ArrayList<>();
            for (int r = 0; r < n; r++) {
                int rank = r;
                fs.add(pool.submit(() -> {
                    try (Collective c = members.get(rank)) {
                        return body.run(rank, c);
                    }
                }));
            }
            List<Outcome<T>> out = new ArrayList<>();
            for (Future<T> f : fs) {
                try {
                    out.add(new Outcome<>(f.get(60, TimeUnit.SECONDS), null));
                } catch (ExecutionException e) {
                    out.add(new Outcome<>(null, e.getCause()));
                } catch (java.util.concurrent.TimeoutException e) {
                    throw new AssertionError("a rank did not finish within 60 s", e);
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    /** Runs {@code body} on {@code n} ranks; rethrows the first failure; returns the values in rank order. */
    public static <T> List<T> all(int n, Body<T> body) throws Exception {
        List<T> values = new ArrayList<>();
        for (Outcome<T> o : run(n, Duration.ofSeconds(20), body)) {
            if (o.error() != null) {
                if (o.error() instanceof Exception e) {
                    throw e;
                }
                throw new AssertionError(o.error());
            }
            values.add(o.value());
        }
        return values;
    }
}
