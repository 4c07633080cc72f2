package dev.kiln.mxnet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.testutil.FreshJvm;

import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * {@link MxOpFuzz} against the real MXNet 1.9.1 in a JVM of its own (MXNet's unchecked paths may
 * abort a process), with MXNet's reference CPU kernels (MKL-DNN off) and its synchronous engine:
 * seeded random calls of every operator both engines register (forward values, and gradients
 * through both executors), and random graphs of 2 to 5 operators with skip connections (outputs,
 * gradients and auxiliary states: in-place and memory-sharing decisions, gradient accumulation,
 * zero-gradient pruning). Every difference must be one Kiln makes on purpose
 * ({@link MxOpFuzz#KNOWN}); a new one fails with the calls that show it.
 */
class MxOpFuzzTest {
    /** What one fuzzer run printed: the summary's numbers and every difference no KNOWN entry explains. */
    private record Found(Matcher summary, String differences) {}

    /** Runs {@link MxOpFuzz#main} in a fresh JVM on MXNet's reference kernels; skips when MXNet cannot load. */
    private static Found fuzz(String... args) throws Exception {
        FreshJvm.Result r = FreshJvm.run(MxOpFuzz.class, List.of("-Xmx1g"),
                Map.of("MXNET_MKLDNN_ENABLED", "0", "MXNET_ENGINE_TYPE", "NaiveEngine", "MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0",
                        "OMP_NUM_THREADS", "2"),
                args);
        Assumptions.assumeFalse(r.exitCode() == 3, "MXNet cannot load");
        StringBuilder found = new StringBuilder();
        for (String line : r.output().split("\n")) {
            if (line.startsWith("MISMATCH") || line.startsWith("KILN-ONLY") || line.startsWith("MX-ONLY")) {
                found.append(line, 0, Math.min(line.length(), 600)).append('\n');
            }
        }
        String tail = r.output().substring(Math.max(0, r.output().length() - 4000));
        assertEquals(0, r.exitCode(), "the fuzzer's JVM failed:\n" + tail);
        Matcher m = Pattern.compile("mx op fuzz: (\\d+) calls, (\\d+) ran on both.*, (\\d+) backward passes compared")
                .matcher(r.output());
        assertTrue(m.find(), "no summary:\n" + tail);
        System.out.println(m.group());
        return new Found(m, found.toString());
    }

    /**
     * More than {@code minBoth} {@code unit} (calls or graphs) ran on both engines, and every
     * difference is a known one ({@code what} names the run in the message).
     */
    private static void assertAgrees(Found f, int minBoth, String unit, String what) {
        assertTrue(Integer.parseInt(f.summary.group(2)) > minBoth, "too few " + unit + " ran on both: " + f.summary.group());
        assertEquals("", f.differences, "differences from MXNet that no KNOWN entry explains" + what);
    }

    @Test
    void randomCallsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        Found f = fuzz("20261129", "40");
        assertTrue(Integer.parseInt(f.summary.group(3)) > 500, "too few backward passes compared: " + f.summary.group());
        assertAgrees(f, 1000, "calls", "");
    }

    @Test
    void largeInputsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        // dimensions up to 32 (inputs up to 100,000 elements): the threaded, blocked and vectorized
        // paths of both engines, which the small calls above never reach
        assertAgrees(fuzz("20261130", "20", "dims=32"), 1000, "calls", " (large calls)");
        assertAgrees(fuzz("20261130", "1000", "graphs", "dims=32"), 700, "graphs", " (large graphs)");
    }

    @Test
    void nanAndInfiniteInputsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        // one float input value in 6 is NaN, +inf or -inf: the NaN rules of every operator and its gradient
        assertAgrees(fuzz("20261201", "20", "specials=6"), 1000, "calls", " (NaN and infinite inputs)");
    }

    @Test
    void randomGraphsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        assertAgrees(fuzz("20261129", "2000", "graphs"), 1500, "graphs", "");
    }
}
