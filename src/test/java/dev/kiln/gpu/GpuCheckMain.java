package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.core.LauncherFactory;
import org.junit.platform.launcher.listeners.SummaryGeneratingListener;
import org.junit.platform.launcher.listeners.TestExecutionSummary;

import java.io.PrintWriter;

import static org.junit.platform.engine.discovery.DiscoverySelectors.selectPackage;
import static org.junit.platform.launcher.TagFilter.includeTags;
import static org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder.request;

/**
 * Runs the {@code @Tag("gpu")} tests of {@code dev.kiln.gpu} without Maven, for a GPU machine with only a bundled JRE:
 * {@code TESTS=1 scripts/gpu-check.sh}, then {@code bash .gpu-bundle/run.sh dev.kiln.gpu.GpuCheckMain}.
 * Prints the devices, one line per finished test (so a hang or a crash still shows where it stopped),
 * each failure and a closing "N passed, N failed" line; exits non-zero on failure.
 */
public final class GpuCheckMain {
    private GpuCheckMain() {}

    /** Entry point. */
    public static void main(String[] args) {
        System.out.println("Kiln GPU check: " + Engine.cudaDescribe().replace('\n', ' '));
        LauncherDiscoveryRequest req = request().selectors(selectPackage("dev.kiln.gpu")).filters(includeTags("gpu")).build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        launcher.execute(req, listener, new Progress());
        TestExecutionSummary s = listener.getSummary();
        s.printFailuresTo(new PrintWriter(System.out, true), 30);
        long passed = s.getTestsSucceededCount();
        long failed = s.getTestsFailedCount();
        System.out.println(passed + " passed, " + failed + " failed, " + s.getTestsAbortedCount() + " aborted (skipped by an assumption, e.g. no GPU), "
                + s.getTestsSkippedCount() + " disabled; " + s.getTestsFoundCount() + " found");
        System.exit(failed == 0 && s.getTestsAbortedCount() == 0 ? 0 : 1);
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
