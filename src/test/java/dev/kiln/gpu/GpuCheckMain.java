package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
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
 * Prints the devices, each failure and a closing "N passed, N failed" line; exits non-zero on failure.
 */
public final class GpuCheckMain {
    private GpuCheckMain() {}

    /** Entry point. */
    public static void main(String[] args) {
        System.out.println("Kiln GPU check: " + Engine.cudaDescribe().replace('\n', ' '));
        LauncherDiscoveryRequest req = request().selectors(selectPackage("dev.kiln.gpu")).filters(includeTags("gpu")).build();
        Launcher launcher = LauncherFactory.create();
        SummaryGeneratingListener listener = new SummaryGeneratingListener();
        launcher.execute(req, listener);
        TestExecutionSummary s = listener.getSummary();
        s.printFailuresTo(new PrintWriter(System.out, true), 30);
        long passed = s.getTestsSucceededCount();
        long failed = s.getTestsFailedCount();
        System.out.println(passed + " passed, " + failed + " failed, " + s.getTestsAbortedCount() + " aborted (skipped by an assumption, e.g. no GPU), "
                + s.getTestsSkippedCount() + " disabled; " + s.getTestsFoundCount() + " found");
        System.exit(failed == 0 && s.getTestsAbortedCount() == 0 ? 0 : 1);
    }
}
