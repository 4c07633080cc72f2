package dev.kiln.kvstore.launch;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Launcher} with real child processes: JVMs running {@link LauncherTestWorker}, and {@code
 * /bin/sh} where a process tree or plain timing is what matters. Bounds on time are generous (the
 * workers that must be stopped would otherwise sleep 60 s).
 */
class LauncherTest {
    /** Far below the 60 s the stopped workers would sleep, far above a loaded machine's JVM start. */
    private static final Duration STOPPED_WELL_BEFORE = Duration.ofSeconds(40);

    /** {@code java ... LauncherTestWorker args}: a small, quick-starting JVM whose classpath is the test classes. */
    private static List<String> worker(String... args) {
        List<String> cmd = new ArrayList<>(List.of(javaBinary(), "-Xshare:auto", "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC", "-Xmx32m", "-XX:-UsePerfData", "-cp", testClassesDir(),
                LauncherTestWorker.class.getName()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    private static String javaBinary() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    private static String testClassesDir() {
        try {
            return Path.of(LauncherTestWorker.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                    .toString();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static List<String> sh(String script) {
        return List.of("/bin/sh", "-c", script);
    }

    /** A launcher builder whose sink collects lines into {@code lines}. */
    private static Launcher.Builder builder(int n, List<String> cmd, List<String> lines) {
        return Launcher.builder().setWorkers(n).setCommand(cmd).optOutput(lines::add);
    }

    private static List<String> syncList() {
        return Collections.synchronizedList(new ArrayList<>());
    }

    private static void assertContains(String text, String fragment) {
        assertTrue(text.contains(fragment), "'" + text + "' should contain '" + fragment + "'");
    }

    @Test
    void everyRankSeesItsEnvironmentAndExitsZero(@TempDir Path dir) throws Exception {
        List<String> lines = syncList();
        Map<Integer, Long> pids = new ConcurrentHashMap<>();
        LaunchResult r = builder(3, worker("env"), lines).optEnv("KILN_TEST_EXTRA", "x y").optWorkingDir(dir)
                .optListener((attempt, rank, process) -> pids.put(rank, process.pid())).build().run();

        assertTrue(r.succeeded(), r.describe());
        assertEquals(0, r.exitStatus());
        assertEquals(List.of(0, 0, 0), List.of(r.exitCode(0), r.exitCode(1), r.exitCode(2)));
        assertEquals(1, r.attempts().size());
        int port = r.last().masterPort();
        assertTrue(port > 0 && port < 65536);
        for (int rank = 0; rank < 3; rank++) {
            assertEquals(List.of("env RANK=" + rank + " WORLD_SIZE=3 LOCAL_RANK=" + rank + " LOCAL_WORLD_SIZE=3"
                    + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " KILN_RESTART=0 KILN_TEST_EXTRA=x y",
                    "pid " + pids.get(rank), "cwd " + dir.toRealPath()), r.output(rank).stream()
                            .map(l -> l.startsWith("cwd ") ? "cwd " + realPath(l.substring(4)) : l).toList());
            assertTrue(lines.contains("[rank " + rank + "] pid " + pids.get(rank)), lines.toString());
        }
        assertContains(r.describe(), "all 3 ranks exited 0");
    }

    private static String realPath(String p) {
        try {
            return Path.of(p).toRealPath().toString();
        } catch (IOException e) {
            return p;
        }
    }

    @Test
    void firstFailureStopsTheOthers() throws Exception {
        List<String> lines = syncList();
        LaunchResult r = builder(3, worker("fail", "1", "3"), lines).build().run();

        assertFalse(r.succeeded());
        assertFalse(r.timedOut());
        assertEquals(1, r.failedRank().getAsInt());
        assertEquals(3, r.exitCode(1));
        assertEquals(3, r.exitStatus());
        assertTrue(r.last().stopped(0) && r.last().stopped(2) && !r.last().stopped(1));
        assertTrue(r.exitCode(0) != 0 && r.exitCode(2) != 0, "stopped ranks end by signal");
        assertTrue(r.wallTime().compareTo(STOPPED_WELL_BEFORE) < 0, r.wallTime().toString());
        assertEquals(List.of("rank 1 about to fail", "the cause, on stderr"), r.output(1));
        String d = r.describe();
        assertContains(d, "rank 1 failed with exit code 3 after ");
        assertContains(d, "; others stopped. Last output of rank 1: rank 1 about to fail | the cause, on stderr");
        assertTrue(lines.contains("[rank 1] rank 1 about to fail"), lines.toString());
    }

    @Test
    void rankKilledBySignalIsAFailure() throws Exception {
        AtomicReference<Launcher> launcher = new AtomicReference<>();
        List<String> lines = syncList();
        Launcher l = Launcher.builder().setWorkers(2).setCommand(worker("sleep")).optOutput(line -> {
            lines.add(line);
            if (line.equals("[rank 1] ready")) {
                launcher.get().process(1).orElseThrow().destroyForcibly(); // kill -9 through the exposed PID
            }
        }).build();
        launcher.set(l);
        LaunchResult r = l.run();

        assertEquals(1, r.failedRank().getAsInt(), r.describe());
        assertEquals(137, r.exitCode(1));
        assertEquals(137, r.exitStatus());
        assertTrue(r.last().stopped(0));
        assertContains(r.describe(), "rank 1 failed with exit code 137 (SIGKILL)");
        assertContains(r.describe(), "Last output of rank 1: ready");
        assertTrue(l.process(0).isEmpty(), "no live process after the run");
        assertTrue(r.wallTime().compareTo(STOPPED_WELL_BEFORE) < 0, r.wallTime().toString());
    }

    @Test
    void stoppingARankStopsItsWholeProcessTree(@TempDir Path dir) throws Exception {
        Path childFile = dir.resolve("child");
        // rank 0: a shell whose child sleeps; rank 1 fails once the child's PID is written
        String script = "if [ \"$RANK\" = 0 ]; then sleep 60 & echo $! > child.tmp; mv child.tmp child; wait; fi; "
                + "while [ ! -s child ]; do sleep 0.05; done; exit 4";
        LaunchResult r = Launcher.builder().setWorkers(2).setCommand(sh(script)).optWorkingDir(dir)
                .optOutput(line -> { }).optGrace(Duration.ofSeconds(1)).build().run();

        assertEquals(1, r.failedRank().getAsInt(), r.describe());
        assertEquals(4, r.exitCode(1));
        long child = Long.parseLong(Files.readString(childFile).trim());
        assertFalse(ProcessHandle.of(child).map(RankGroup::running).orElse(false), "rank 0's child " + child);
        assertContains(r.describe(), "Rank 1 printed nothing.");
    }

    @Test
    void aStoppedRankThatIgnoresSigtermIsKilled(@TempDir Path dir) throws Exception {
        // rank 0 SIGSTOPs itself (a hung worker: SIGTERM stays pending); rank 1 fails once rank 0 is stopped
        String script = "if [ \"$RANK\" = 0 ]; then echo $$ > pid.tmp; mv pid.tmp pid0; kill -STOP $$; fi; "
                + "while [ ! -s pid0 ] || ! grep -q '^State:.*T' /proc/$(cat pid0)/status; do sleep 0.05; done; exit 2";
        LaunchResult r = Launcher.builder().setWorkers(2).setCommand(sh(script)).optWorkingDir(dir)
                .optOutput(line -> { }).optGrace(Duration.ofMillis(300)).build().run();

        assertEquals(1, r.failedRank().getAsInt(), r.describe());
        assertEquals(2, r.exitCode(1));
        assertTrue(r.last().stopped(0));
        assertEquals(137, r.exitCode(0), "SIGKILL after the grace period");
    }

    @Test
    void outputIsPrefixedPerLineAndKeptPerRank() throws Exception {
        List<String> lines = syncList();
        String script = "echo out-$RANK-1; echo err-$RANK >&2; echo out-$RANK-2; i=0; "
                + "while [ $i -lt 30 ]; do echo line-$RANK-$i; i=$((i+1)); done";
        LaunchResult r = builder(2, sh(script), lines).optKeepLines(10).build().run();

        assertTrue(r.succeeded(), r.describe());
        for (int rank = 0; rank < 2; rank++) {
            String p = "[rank " + rank + "] ";
            List<String> mine = lines.stream().filter(l -> l.startsWith(p)).toList();
            assertEquals(33, mine.size(), mine.toString());
            assertEquals(List.of(p + "out-" + rank + "-1", p + "err-" + rank, p + "out-" + rank + "-2"),
                    mine.subList(0, 3));
            List<String> kept = r.output(rank);
            assertEquals(10, kept.size());
            assertEquals("line-" + rank + "-20", kept.get(0));
            assertEquals("line-" + rank + "-29", kept.get(9));
        }
        assertEquals(66, lines.size());
    }

    @Test
    void wallClockLimitStopsEveryoneAndOneRunAtATime() throws Exception {
        CountDownLatch started = new CountDownLatch(2);
        Launcher l = Launcher.builder().setWorkers(2).setCommand(sh("exec sleep 60")).optOutput(line -> { })
                .optTimeout(Duration.ofMillis(1500)).optListener((a, rank, p) -> started.countDown()).build();
        FutureTask<LaunchResult> run = new FutureTask<>(l::run);
        new Thread(run, "launcher-test-run").start();
        assertTrue(started.await(30, TimeUnit.SECONDS));
        assertThrows(IllegalStateException.class, l::run);
        LaunchResult r = run.get(STOPPED_WELL_BEFORE.toSeconds(), TimeUnit.SECONDS);

        assertTrue(r.timedOut());
        assertFalse(r.succeeded());
        assertTrue(r.failedRank().isEmpty());
        assertEquals(LaunchResult.TIMEOUT_STATUS, r.exitStatus());
        assertEquals(List.of(143, 143), List.of(r.exitCode(0), r.exitCode(1)), "SIGTERM ends sleep");
        assertTrue(r.wallTime().compareTo(Duration.ofMillis(1500)) >= 0, r.wallTime().toString());
        assertEquals("wall-clock limit of 1.5 s reached; all 2 ranks stopped.", r.describe());
    }

    @Test
    void restartAfterAFailureOnTheFirstAttempt() throws Exception {
        List<String> lines = syncList();
        LaunchResult r = builder(2, worker("fail-first", "1", "5"), lines).optMaxRestarts(2).build().run();

        assertTrue(r.succeeded(), r.describe());
        assertEquals(2, r.attempts().size());
        LaunchAttempt first = r.attempts().get(0);
        assertEquals(1, first.failedRank().getAsInt());
        assertEquals(5, first.exitCode(1));
        assertEquals(List.of("failing on the first attempt"), first.output(1));
        assertEquals(1, r.last().attempt());
        assertEquals(List.of("attempt 1 ok"), r.output(0));
        assertEquals(List.of("attempt 1 ok"), r.output(1));
        assertTrue(lines.stream().anyMatch(s -> s.startsWith("[launcher] rank 1 failed with exit code 5")
                && s.endsWith("Restarting the group (restart 1 of 2).")), lines.toString());
        assertContains(r.describe(), "attempt 2 (after 1 restart; attempt 1: rank 1 failed with exit code 5 after ");
        assertContains(r.describe(), "): all 2 ranks exited 0 in ");
    }

    @Test
    void restartsRunOutAndEveryAttemptIsReported() throws Exception {
        List<Integer> attempts = Collections.synchronizedList(new ArrayList<>());
        LaunchResult r = Launcher.builder().setWorkers(2).setCommand(sh("echo try $KILN_RESTART; exit 7"))
                .optOutput(line -> { }).optMaxRestarts(2).optListener((a, rank, p) -> attempts.add(a)).build().run();

        assertEquals(3, r.attempts().size());
        assertEquals(List.of(0, 0, 1, 1, 2, 2), attempts);
        assertEquals(7, r.exitStatus());
        for (LaunchAttempt a : r.attempts()) {
            assertEquals(7, a.exitCode(a.failedRank().getAsInt()));
            assertEquals(List.of("try " + a.attempt()), a.output(a.failedRank().getAsInt()));
        }
        assertContains(r.describe(), "attempt 3 (after 2 restarts; attempt 1: rank ");
        assertContains(r.describe(), "; attempt 2: rank ");
    }

    @Test
    void reportWording() {
        List<List<String>> out = List.of(List.of(), List.of("a", "b", "c", "d", "e", "f"), List.of(), List.of("x"));
        LaunchAttempt a = new LaunchAttempt(0, 1234, new int[] {143, 134, 0, 1},
                new boolean[] {true, false, false, false}, out, 1, null, Duration.ofMillis(3210),
                Duration.ofSeconds(4));
        assertEquals("rank 1 failed with exit code 134 (SIGABRT) after 3.2 s; rank 0 stopped; rank 3 also ended with "
                + "exit code 1. Last output of rank 1: b | c | d | e | f", a.describe());
        assertEquals("rank 1 failed with exit code 134 (SIGABRT) after 3.2 s; rank 0 stopped; rank 3 also ended with "
                + "exit code 1", a.summary());
        LaunchAttempt silent = new LaunchAttempt(1, 1, new int[] {LaunchAttempt.NO_EXIT, 0},
                new boolean[] {false, false}, List.of(List.of(), List.of()), 0, null, Duration.ofSeconds(1),
                Duration.ofSeconds(1));
        assertEquals("rank 0 failed with no exit (still alive after SIGKILL) after 1.0 s; the others had exited. "
                + "Rank 0 printed nothing.", silent.describe());
        assertEquals("exit code 137 (SIGKILL)", LaunchAttempt.codeText(137));
        assertEquals("exit code 139 (SIGSEGV)", LaunchAttempt.codeText(139));
        assertEquals("exit code 162 (signal 34)", LaunchAttempt.codeText(162));
        assertEquals("exit code 3", LaunchAttempt.codeText(3));
        assertEquals("exit code 255", LaunchAttempt.codeText(255));
        LaunchResult r = new LaunchResult(List.of(a, silent), Duration.ofSeconds(5));
        assertEquals(1, r.exitStatus(), "NO_EXIT is outside 1..255");
        assertEquals("attempt 2 (after 1 restart; attempt 1: " + a.summary() + "): " + silent.describe(), r.describe());
    }

    @Test
    void builderRefusesBadSettings() {
        Launcher.Builder b = Launcher.builder();
        assertThrows(IllegalArgumentException.class, () -> b.setWorkers(0));
        assertThrows(IllegalArgumentException.class, () -> b.setCommand(List.of()));
        assertThrows(IllegalArgumentException.class, () -> b.optEnv("RANK", "1"));
        assertThrows(IllegalArgumentException.class, () -> b.optEnv("A=B", "1"));
        assertThrows(IllegalArgumentException.class, () -> b.optTimeout(Duration.ZERO));
        assertThrows(IllegalArgumentException.class, () -> b.optMaxRestarts(-1));
        assertThrows(IllegalArgumentException.class, () -> b.optKeepLines(0));
        assertThrows(IllegalArgumentException.class, () -> b.optWorkingDir(Path.of("/no/such/dir")));
        IllegalStateException e = assertThrows(IllegalStateException.class, b::build);
        assertContains(e.getMessage(), "workers");
        b.setWorkers(1);
        assertContains(assertThrows(IllegalStateException.class, b::build).getMessage(), "command");
    }

    @Test
    void commandThatCannotStart() {
        Launcher l = Launcher.builder().setWorkers(2).setCommand(List.of("/no/such/program")).build();
        IOException e = assertThrows(IOException.class, l::run);
        assertContains(e.getMessage(), "cannot start rank 0 (/no/such/program)");
    }

    /** Runs {@link Launcher#cli} in this JVM; returns {status, stdout, stderr}. */
    private static Object[] cli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int status;
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
                PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            status = Launcher.cli(args, o, e);
        }
        return new Object[] {status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8)};
    }

    @Test
    void cliUsageErrorsExitTwo() {
        String[][] bad = {{}, {"-n"}, {"-n", "2"}, {"-n", "0", "--", "true"}, {"-n", "two", "--", "true"},
            {"--timeout", "-1", "-n", "1", "true"}, {"--max-restarts", "x", "-n", "1", "true"},
            {"--env", "NOEQUALS", "-n", "1", "true"}, {"--env", "RANK=1", "-n", "1", "true"}, {"--bogus", "1", "true"},
            {"--", "true"}};
        for (String[] args : bad) {
            Object[] res = cli(args);
            assertEquals(2, res[0], List.of(args).toString());
            assertContains((String) res[2], "launcher: ");
            assertContains((String) res[2], "usage: java -cp kiln.jar dev.kiln.kvstore.launch.Launcher -n N");
        }
        Object[] help = cli("--help");
        assertEquals(0, help[0]);
        assertContains((String) help[1], "usage:");
    }

    @Test
    void cliExitStatuses() {
        Object[] ok = cli("-n", "2", "--env", "GREETING=hi", "--", "/bin/sh", "-c", "echo $GREETING $RANK");
        assertEquals(0, ok[0], (String) ok[2]);
        assertContains((String) ok[1], "[rank 0] hi 0");
        assertContains((String) ok[1], "[rank 1] hi 1");
        assertEquals("", ok[2]);

        Object[] failed = cli("-n", "2", "--", "/bin/sh", "-c", "[ \"$RANK\" = 1 ] && exit 3; exec sleep 60");
        assertEquals(3, failed[0]);
        assertContains((String) failed[2], "launcher: rank 1 failed with exit code 3");

        Object[] timeout = cli("-n", "1", "--timeout", "0.5", "/bin/sh", "-c", "exec sleep 60");
        assertEquals(124, timeout[0]);
        assertContains((String) timeout[2], "wall-clock limit of 0.5 s reached");

        Object[] missing = cli("-n", "1", "--", "/no/such/program");
        assertEquals(1, missing[0]);
        assertContains((String) missing[2], "cannot start rank 0");
    }

    /** SIGTERM to a command-line launcher stops its ranks too (its shutdown hook). */
    @Test
    void sigtermToTheLauncherStopsTheRanks() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(javaBinary(), "-Xshare:auto", "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC", "-Xmx64m", "-cp", launcherClassPath(), Launcher.class.getName(), "-n", "2", "--",
                "/bin/sh", "-c", "echo pid $$; exec sleep 60"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        List<Long> pids = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            while (pids.size() < 2) {
                String line = in.readLine();
                if (line == null) {
                    break;
                }
                if (line.matches("\\[rank \\d] pid \\d+")) {
                    pids.add(Long.parseLong(line.substring(line.lastIndexOf(' ') + 1)));
                }
            }
            assertEquals(2, pids.size(), "both ranks started");
            p.destroy();
            assertTrue(p.waitFor(STOPPED_WELL_BEFORE.toSeconds(), TimeUnit.SECONDS));
            assertEquals(143, p.exitValue(), "the launcher ends by SIGTERM");
        }
        for (long pid : pids) {
            assertFalse(ProcessHandle.of(pid).map(RankGroup::running).orElse(false), "rank process " + pid);
        }
    }

    private static String launcherClassPath() {
        return System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    }

    /** The real {@code main} in its own JVM, launching JVM workers: its exit status is the failed rank's code. */
    @Test
    void cliInItsOwnJvm() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(javaBinary(), "-Xshare:auto", "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC", "-Xmx64m", "-cp", launcherClassPath(), Launcher.class.getName(), "-n", "2", "--"));
        cmd.addAll(worker("fail", "0", "9"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(STOPPED_WELL_BEFORE.toSeconds(), TimeUnit.SECONDS), out);
        assertEquals(9, p.exitValue(), out);
        assertContains(out, "[rank 0] rank 0 about to fail");
        assertContains(out, "launcher: rank 0 failed with exit code 9");
    }
}
