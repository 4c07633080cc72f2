package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.engine.DiscoverySelector;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectClass;
import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;
import static org.junit.platform.launcher.TagFilter.includeTags;
import static org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder.request;

/**
 * Runs the {@code @Tag("gpu")} tests of {@code dev.kiln.gpu} without Maven, for a GPU machine with only a bundled JRE:
 * {@code TESTS=1 scripts/gpu-check.sh}, then {@code bash .gpu-bundle/run.sh dev.kiln.gpu.GpuCheckMain}.
 * Prints the devices, one line per finished test (so a hang or a crash still shows where it stopped),
 * each failure and a closing "N passed, N failed" line; exits non-zero on failure.
 *
 * <p>Each test class runs in a JVM of its own (the same java, class path and JVM options), so an
 * error that poisons the CUDA context (an illegal address is sticky: every later call fails) or a
 * crash costs the results of that class only; the closing line sums the classes and names those
 * that crashed or were killed ({@code KILN_GPU_CLASS_TIMEOUT} seconds per class, default 150).
 * {@code --in-process} runs every class in this JVM; {@code --class NAME} runs one.
 */
public final class GpuCheckMain {
    private GpuCheckMain() {}

    private static final Pattern SUMMARY =
            Pattern.compile("^(\\d+) passed, (\\d+) failed, (\\d+) aborted .*; (\\d+) found$");

    /** Entry point. */
    public static void main(String[] args) throws Exception {
        if (args.length == 2 && args[0].equals("--class")) {
            System.exit(runInProcess(selectClass(args[1]), false));
        }
        System.out.println("Kiln GPU check: " + Engine.cudaDescribe().replace('\n', ' '));
        if (args.length == 1 && args[0].equals("--in-process")) {
            System.exit(runInProcess(selectPackage("dev.kiln.gpu"), true));
        }
        if (args.length != 0) {
            throw new IllegalArgumentException("usage: GpuCheckMain [--in-process | --class NAME]");
        }
        System.exit(runIsolated());
    }

    /** Runs the selected tests here; prints the failures and the closing line; returns the exit code. */
    private static int runInProcess(DiscoverySelector selector, boolean header) {
        LauncherDiscoveryRequest req = request().selectors(selector).filters(includeTags("gpu")).build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        launcher.execute(req, listener, new Progress());
        TestExecutionSummary s = listener.getSummary();
        s.printFailuresTo(new PrintWriter(System.out, true), 30);
        long passed = s.getTestsSucceededCount();
        long failed = s.getTestsFailedCount();
        System.out.println(passed + " passed, " + failed + " failed, " + s.getTestsAbortedCount() + " aborted (skipped by an assumption, e.g. no GPU), "
                + s.getTestsSkippedCount() + " disabled; " + s.getTestsFoundCount() + " found");
        System.out.flush();
        return failed == 0 && s.getTestsAbortedCount() == 0 ? 0 : 1;
    }

    /** One child JVM per test class, in name order; sums their closing lines. */
    private static int runIsolated() throws IOException, InterruptedException {
        LauncherDiscoveryRequest req = request().selectors(selectPackage("dev.kiln.gpu")).filters(includeTags("gpu")).build();
        TestPlan plan = LauncherFactory.create().discover(req);
        Set<String> classes = new TreeSet<>();
        for (TestIdentifier root : plan.getRoots()) {
            for (TestIdentifier c : plan.getChildren(root)) {
                c.getSource().filter(ClassSource.class::isInstance).map(src -> ((ClassSource) src).getClassName())
                        .ifPresent(classes::add);
            }
        }
        String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
        List<String> jvm = ManagementFactory.getRuntimeMXBean().getInputArguments();
        String limit = System.getenv("KILN_GPU_CLASS_TIMEOUT");
        long classTimeout = limit == null || limit.isEmpty() ? 150 : Long.parseLong(limit.trim());
        long[] total = new long[4];  // passed, failed, aborted, found
        List<String> crashed = new ArrayList<>();
        for (String cls : classes) {
            List<String> cmd = new ArrayList<>();
            cmd.add(java);
            cmd.addAll(jvm);
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), GpuCheckMain.class.getName(), "--class", cls));
            long t0 = System.nanoTime();
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            boolean[] timedOut = {false};
            Thread watchdog = new Thread(() -> {  // a hung class must not use up the whole run's time
                try {
                    if (!p.waitFor(classTimeout, TimeUnit.SECONDS)) {
                        timedOut[0] = true;
                        p.destroyForcibly();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            watchdog.setDaemon(true);
            watchdog.start();
            boolean summarized = false;
            try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    System.out.println(line);
                    Matcher m = SUMMARY.matcher(line);
                    if (m.matches()) {
                        for (int i = 0; i < 4; i++) {
                            total[i] += Long.parseLong(m.group(i + 1));
                        }
                        summarized = true;
                    }
                }
            }
            int rc = p.waitFor();
            watchdog.join();
            String name = cls.replace("dev.kiln.gpu.", "");
            System.out.printf(Locale.ROOT, "CLASS %s exit %d in %.1f s%s%n", name, rc, (System.nanoTime() - t0) / 1e9,
                    timedOut[0] ? " (killed after " + classTimeout + " s)" : "");
            if (!summarized) {
                crashed.add(name + (timedOut[0] ? " (timed out)" : " (exit " + rc + ")"));
            }
        }
        System.out.println(total[0] + " passed, " + total[1] + " failed, " + total[2] + " aborted (skipped by an assumption, e.g. no GPU), 0 disabled; "
                + total[3] + " found in " + classes.size() + " classes (one JVM each)"
                + (crashed.isEmpty() ? "" : "; CRASHED before finishing: " + String.join(", ", crashed)));
        return total[1] == 0 && total[2] == 0 && crashed.isEmpty() ? 0 : 1;
    }

    /** One line per finished test: its outcome, wall time and name. */
    private static final class Progress implements TestExecutionListener {
        private final java.util.Map<String, Long> started = new java.util.concurrent.ConcurrentHashMap<>();

        @Override
        public void executionStarted(TestIdentifier id) {
            if (id.isTest()) started.put(id.getUniqueId(), System.nanoTime());
        }

        @Override
        public void executionFinished(TestIdentifier id, TestExecutionResult result) {
            if (!id.isTest()) return;
            long ms = (System.nanoTime() - started.getOrDefault(id.getUniqueId(), System.nanoTime())) / 1_000_000;
            String what = switch (result.getStatus()) {
                case SUCCESSFUL -> "ok  ";
                case ABORTED -> "skip";
                case FAILED -> "FAIL";
            };
            String why = result.getThrowable().map(t -> "  " + String.valueOf(t.getMessage()).lines().findFirst().orElse("")).orElse("");
            System.out.println("TEST " + what + " " + ms + " ms  " + parent(id) + " " + id.getDisplayName() + why);
        }

        private static String parent(TestIdentifier id) {
            String u = id.getUniqueId();
            int c = u.indexOf("[class:");
            return c < 0 ? "" : u.substring(c + 7, u.indexOf(']', c)).replace("dev.kiln.gpu.", "");
        }
    }
}
