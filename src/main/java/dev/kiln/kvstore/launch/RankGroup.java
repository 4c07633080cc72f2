package dev.kiln.kvstore.launch;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.Charset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One start of the whole group: N processes with the rendezvous environment, one output pump per
 * rank, the wait for the first abnormal exit, and the teardown of the survivors' process trees.
 *
 * <p>Owns its processes: {@link #close()} (idempotent) stops those still running. Thread-safety:
 * {@link #start()} and {@link #await} run on one thread; {@link #close()} and {@link #handle(int)}
 * may be called from any thread (a shutdown hook, a test).
 */
final class RankGroup implements AutoCloseable {
    /** How long the output pumps may take to drain after their processes ended. */
    private static final long DRAIN_NANOS = TimeUnit.SECONDS.toNanos(5);
    /** How long to wait for a process after SIGKILL before recording {@link LaunchAttempt#NO_EXIT}. */
    private static final long KILLED_WAIT_S = 10;
    /** Poll interval while waiting for stopped processes that are not our children. */
    private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

    private final Launcher launcher;
    private final int attempt;
    private final int port;
    private final Process[] processes;
    private final Pump[] pumps;
    private final boolean[] stopped;
    private long startNanos;

    RankGroup(Launcher launcher, int attempt, int port) {
        this.launcher = launcher;
        this.attempt = attempt;
        this.port = port;
        this.processes = new Process[launcher.workers()];
        this.pumps = new Pump[launcher.workers()];
        this.stopped = new boolean[launcher.workers()];
    }

    /** Starts every rank; on a failure to start one, stops those already running and rethrows. */
    void start() throws IOException {
        startNanos = System.nanoTime();
        for (int r = 0; r < processes.length; r++) {
            Process p;
            try {
                p = builder(r).start();
            } catch (IOException e) {
                close();
                throw new IOException("cannot start rank " + r + " (" + String.join(" ", launcher.command()) + "): "
                        + e.getMessage(), e);
            }
            synchronized (this) {
                processes[r] = p;
            }
            pumps[r] = new Pump(r, p);
            pumps[r].thread.start();
            launcher.listener().started(attempt, r, p.toHandle());
        }
    }

    private ProcessBuilder builder(int rank) {
        ProcessBuilder pb = new ProcessBuilder(launcher.command()).redirectErrorStream(true);
        if (launcher.workingDir() != null) {
            pb.directory(launcher.workingDir().toFile());
        }
        Map<String, String> env = pb.environment();
        env.putAll(launcher.extraEnv());
        env.put("RANK", Integer.toString(rank));
        env.put("WORLD_SIZE", Integer.toString(processes.length));
        env.put("LOCAL_RANK", Integer.toString(rank));
        env.put("LOCAL_WORLD_SIZE", Integer.toString(processes.length));
        env.put("MASTER_ADDR", Launcher.MASTER_ADDR);
        env.put("MASTER_PORT", Integer.toString(port));
        env.put("KILN_RESTART", Integer.toString(attempt));
        return pb;
    }

    /**
     * Waits until every rank has exited 0, one has ended abnormally, or {@code deadlineNanos}
     * ({@link System#nanoTime()}) passes; then stops the others and collects the outcome.
     *
     * @param limit the wall-clock limit to report if the deadline is what ended the wait
     */
    LaunchAttempt await(long deadlineNanos, Duration limit) throws InterruptedException {
        BlockingQueue<Integer> exited = new LinkedBlockingQueue<>();
        for (int r = 0; r < processes.length; r++) {
            int rank = r;
            processes[r].onExit().thenRun(() -> exited.add(rank));
        }
        int running = processes.length;
        int failed = -1;
        boolean timedOut = false;
        while (running > 0 && failed < 0 && !timedOut) {
            long left = deadlineNanos - System.nanoTime();
            Integer r = left > 0 ? exited.poll(left, TimeUnit.NANOSECONDS) : null;
            if (r == null) {
                timedOut = System.nanoTime() - deadlineNanos >= 0;
                continue;
            }
            running--;
            if (processes[r].exitValue() != 0) {
                failed = r;
            }
        }
        Duration endedAfter = Duration.ofNanos(System.nanoTime() - startNanos);
        close();
        int[] codes = exitCodes();
        List<List<String>> output = drainOutput();
        Duration wall = Duration.ofNanos(System.nanoTime() - startNanos);
        boolean[] stoppedCopy;
        synchronized (this) {
            stoppedCopy = stopped.clone();
        }
        return new LaunchAttempt(attempt, port, codes, stoppedCopy, output, failed, timedOut ? limit : null, endedAfter,
                wall);
    }

    /** Rank {@code rank}'s process while it runs. */
    synchronized ProcessHandle handle(int rank) {
        Process p = processes[rank];
        return p != null && p.isAlive() ? p.toHandle() : null;
    }

    /** Stops every rank still running (and its descendants); marks them {@linkplain LaunchAttempt#stopped stopped}. */
    @Override
    public void close() {
        List<ProcessHandle> roots = new ArrayList<>();
        synchronized (this) {
            for (int r = 0; r < processes.length; r++) {
                if (processes[r] != null && processes[r].isAlive()) {
                    stopped[r] = true;
                    roots.add(processes[r].toHandle());
                }
            }
        }
        stopTrees(roots, launcher.grace());
    }

    /**
     * Sends SIGTERM to {@code roots} and all their descendants, waits up to {@code grace} for them
     * to end, then SIGKILLs what is left (descendants listed again, in case new ones were forked) and
     * waits for that too (bounded: a process stuck in the kernel may outlive SIGKILL for a while).
     */
    static void stopTrees(List<ProcessHandle> roots, Duration grace) {
        if (roots.isEmpty()) {
            return;
        }
        List<ProcessHandle> all = withDescendants(roots);
        all.forEach(ProcessHandle::destroy);
        long end = System.nanoTime() + grace.toNanos();
        for (ProcessHandle h : all) {
            awaitExit(h, end - System.nanoTime());
        }
        List<ProcessHandle> left = withDescendants(roots);
        left.addAll(all);
        left.removeIf(h -> !running(h));
        left.forEach(ProcessHandle::destroyForcibly);
        long killedEnd = System.nanoTime() + TimeUnit.SECONDS.toNanos(KILLED_WAIT_S);
        for (ProcessHandle h : left) {
            awaitExit(h, killedEnd - System.nanoTime());
        }
    }

    private static List<ProcessHandle> withDescendants(List<ProcessHandle> roots) {
        List<ProcessHandle> all = new ArrayList<>();
        for (ProcessHandle root : roots) {
            root.descendants().forEach(all::add);
            all.add(root);
        }
        return all;
    }

    /** Waits up to {@code nanos} for {@code h} to end ({@linkplain #running zombies count as ended}). */
    private static void awaitExit(ProcessHandle h, long nanos) {
        long end = System.nanoTime() + nanos;
        while (running(h) && end - System.nanoTime() > 0) {
            try {
                h.onExit().get(Math.min(POLL_NANOS, end - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (TimeoutException | ExecutionException e) {
                // poll again: a zombie never completes onExit() until its new parent reaps it
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt(); // cleanup goes on; the caller sees the flag
                return;
            }
        }
    }

    /**
     * Whether {@code h} still runs. {@link ProcessHandle#isAlive()} is also true for a zombie: a
     * descendant whose parent we killed is re-parented to init (or a container's PID 1), which may
     * reap it late; it holds no resources, so it counts as ended (Linux: state {@code Z} in {@code
     * /proc/<pid>/stat}).
     */
    static boolean running(ProcessHandle h) {
        if (!h.isAlive()) {
            return false;
        }
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(h.pid()), "stat"));
            int close = stat.lastIndexOf(')');
            return close < 0 || close + 2 >= stat.length() || stat.charAt(close + 2) != 'Z';
        } catch (IOException | RuntimeException e) {
            return h.isAlive(); // no /proc (not Linux) or the process just ended
        }
    }

    private int[] exitCodes() throws InterruptedException {
        int[] codes = new int[processes.length];
        for (int r = 0; r < codes.length; r++) {
            codes[r] = processes[r].waitFor(KILLED_WAIT_S, TimeUnit.SECONDS) ? processes[r].exitValue()
                    : LaunchAttempt.NO_EXIT;
        }
        return codes;
    }

    /** Waits (bounded: an orphaned grandchild may hold a pipe open) for the pumps, then takes their lines. */
    private List<List<String>> drainOutput() throws InterruptedException {
        long end = System.nanoTime() + DRAIN_NANOS;
        List<List<String>> out = new ArrayList<>();
        for (Pump p : pumps) {
            long left = end - System.nanoTime();
            if (left > 0) {
                TimeUnit.NANOSECONDS.timedJoin(p.thread, left);
            }
            out.add(p.lines());
        }
        return out;
    }

    /** Copies one rank's merged stdout/stderr to the launcher's sink, line by line, and keeps the newest lines. */
    private final class Pump implements Runnable {
        private final int rank;
        private final Process process;
        private final ArrayDeque<String> kept = new ArrayDeque<>();
        private final Thread thread;

        Pump(int rank, Process process) {
            this.rank = rank;
            this.process = process;
            this.thread = new Thread(this, "kiln-launcher-a" + attempt + "-rank" + rank);
            this.thread.setDaemon(true);
        }

        @Override
        public void run() {
            String prefix = "[rank " + rank + "] ";
            try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    Charset.defaultCharset()))) {
                for (String line = in.readLine(); line != null; line = in.readLine()) {
                    keep(line);
                    launcher.emit(prefix + line);
                }
            } catch (IOException e) {
                // the pipe was closed under us (process destroyed): there is nothing more to read
            }
        }

        private synchronized void keep(String line) {
            if (kept.size() == launcher.keepLines()) {
                kept.removeFirst();
            }
            kept.addLast(line);
        }

        synchronized List<String> lines() {
            return List.copyOf(kept);
        }
    }
}
