package dev.kiln.kvstore.gloo;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A distributed job for tests: one worker JVM per rank ({@code java -cp <test class path> main
 * args}) on 127.0.0.1, with torchrun's environment contract and a fresh free port, each rank's
 * output collected line by line. {@link #close()} kills every worker still running. Not
 * thread-safe (one test thread drives it); the output lists are safe to read while workers run.
 */
final class Ranks implements AutoCloseable {
    private final int worldSize;
    private final int port;
    private final List<Process> processes = new ArrayList<>();
    private final List<Integer> ranks = new ArrayList<>();
    private final List<List<String>> outputs = new ArrayList<>();

    private Ranks(int worldSize, int port) {
        this.worldSize = worldSize;
        this.port = port;
    }

    /** Starts every rank of a world of {@code worldSize} running {@code main args}. */
    static Ranks start(int worldSize, double timeoutSeconds, Class<?> main, String... args) {
        int[] all = new int[worldSize];
        for (int r = 0; r < worldSize; r++) {
            all[r] = r;
        }
        return start(worldSize, all, timeoutSeconds, main, args);
    }

    /** Starts only {@code launched} of a world of {@code worldSize} (the others never show up). */
    static Ranks start(int worldSize, int[] launched, double timeoutSeconds, Class<?> main, String... args) {
        return start(worldSize, launched, timeoutSeconds, Map.of(), main, args);
    }

    /** Starts {@code launched} of a world of {@code worldSize}, with {@code extraEnv} added to each rank's environment. */
    static Ranks start(int worldSize, int[] launched, double timeoutSeconds, Map<String, String> extraEnv, Class<?> main,
            String... args) {
        // extract libtorch into JavaCPP's cache here first: JVMs extracting it together crashed (SIGBUS)
        GlooCollective.loadNatives();
        Ranks job = new Ranks(worldSize, freePort());
        try {
            for (int rank : launched) {
                job.launch(rank, timeoutSeconds, extraEnv, main, args);
            }
        } catch (RuntimeException e) {
            job.close();
            throw e;
        }
        return job;
    }

    private void launch(int rank, double timeoutSeconds, Map<String, String> extraEnv, Class<?> main, String[] args) {
        List<String> command = new ArrayList<>(List.of(javaBinary(), "-Xmx256m", "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1", "-cp", testClassPath(), main.getName()));
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.remove("GLOO_SOCKET_IFNAME");
        env.put("RANK", Integer.toString(rank));
        env.put("WORLD_SIZE", Integer.toString(worldSize));
        env.put("LOCAL_RANK", Integer.toString(rank));
        env.put("MASTER_ADDR", "127.0.0.1");
        env.put("MASTER_PORT", Integer.toString(port));
        env.put("KV_TIMEOUT_S", Double.toString(timeoutSeconds));
        env.put("OPENBLAS_NUM_THREADS", "1");
        env.put("OMP_NUM_THREADS", "1");
        env.putAll(extraEnv);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start rank " + rank + ": " + command, e);
        }
        List<String> lines = Collections.synchronizedList(new ArrayList<>());
        processes.add(p);
        ranks.add(rank);
        outputs.add(lines);
        Thread reader = new Thread(() -> collect(p, lines), "rank-" + rank + "-output");
        reader.setDaemon(true);
        reader.start();
    }

    private static void collect(Process p, List<String> lines) {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                lines.add(line);
            }
        } catch (IOException e) {
            lines.add("<output lost: " + e + ">");
        }
    }

    /** The surefire class path (the real one, also when surefire runs from a manifest-only jar). */
    private static String testClassPath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path");
    }

    private static String javaBinary() {
        return System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
    }

    /** A TCP port that was free on the loopback interface a moment ago. */
    static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The OS process id of {@code rank}. */
    long pid(int rank) {
        return process(rank).pid();
    }

    /** Sends a signal to {@code rank}'s JVM, e.g. {@code "STOP"} (Java has no API for it). */
    void signal(int rank, String signal) {
        try {
            Process kill = new ProcessBuilder("kill", "-" + signal, Long.toString(pid(rank))).inheritIO().start();
            if (kill.waitFor() != 0) {
                fail("kill -" + signal + " of rank " + rank + " failed\n" + describe());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
        }
    }

    /** Waits until {@code rank} prints a line matching {@code match}; fails (with all output) after {@code limit}. */
    String awaitLine(int rank, Predicate<String> match, Duration limit) {
        long end = System.nanoTime() + limit.toNanos();
        while (System.nanoTime() < end) {
            Optional<String> hit = find(rank, match);
            if (hit.isPresent()) {
                return hit.get();
            }
            if (!process(rank).isAlive()) {
                sleepMillis(200);  // let the reader drain the last lines
                return find(rank, match).orElseGet(() -> fail("rank " + rank + " exited without the expected line\n" + describe()));
            }
            sleepMillis(50);
        }
        return fail("rank " + rank + " printed no expected line within " + limit + "\n" + describe());
    }

    /**
     * Waits for {@code rank} to exit and returns its exit code; fails (killing every worker, with all
     * output) if it is still running after {@code limit}.
     */
    int awaitExit(int rank, Duration limit) {
        try {
            if (!process(rank).waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)) {
                String report = describe();
                close();
                fail("rank " + rank + " still running after " + limit + "\n" + report);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            fail("interrupted");
        }
        sleepMillis(100);  // the reader thread may still hold the last lines
        return process(rank).exitValue();
    }

    /** Waits for every launched rank to exit within {@code limit} (one deadline for all); returns exit codes by launch order. */
    int[] awaitAll(Duration limit) {
        long end = System.nanoTime() + limit.toNanos();
        int[] codes = new int[ranks.size()];
        for (int i = 0; i < ranks.size(); i++) {
            codes[i] = awaitExit(ranks.get(i), Duration.ofNanos(Math.max(0, end - System.nanoTime())));
        }
        return codes;
    }

    /** A snapshot of {@code rank}'s output lines. */
    List<String> lines(int rank) {
        List<String> out = outputs.get(index(rank));
        synchronized (out) {
            return new ArrayList<>(out);
        }
    }

    /** The first line of {@code rank}'s output that starts with {@code prefix}, if any. */
    Optional<String> line(int rank, String prefix) {
        return find(rank, l -> l.startsWith(prefix));
    }

    /** The {@code ms=<t>} value of a worker's report line. */
    static long millis(String line) {
        int at = line.indexOf("ms=") + 3;
        int end = line.indexOf(' ', at);
        return Long.parseLong(line.substring(at, end < 0 ? line.length() : end));
    }

    /** Every rank's output, for failure messages. */
    String describe() {
        StringBuilder sb = new StringBuilder();
        for (int rank : ranks) {
            Process p = process(rank);
            sb.append("---- rank ").append(rank).append(" (pid ").append(p.pid()).append(", ")
                    .append(p.isAlive() ? "running" : "exit " + p.exitValue()).append(")\n");
            lines(rank).forEach(l -> sb.append(l).append('\n'));
        }
        return sb.toString();
    }

    /** Kills every worker still running (SIGKILL, which also ends a stopped one) and waits for it. */
    @Override
    public void close() {
        for (Process p : processes) {
            if (p.isAlive()) {
                p.destroyForcibly();
            }
        }
        for (Process p : processes) {
            try {
                p.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private Optional<String> find(int rank, Predicate<String> match) {
        return lines(rank).stream().filter(match).findFirst();
    }

    private Process process(int rank) {
        return processes.get(index(rank));
    }

    private int index(int rank) {
        int i = ranks.indexOf(rank);
        if (i < 0) {
            throw new IllegalArgumentException("rank " + rank + " was not launched");
        }
        return i;
    }

    private static void sleepMillis(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
