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

    @Test
    void randomCallsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        Found f = fuzz("20261129", "40");
        assertTrue(Integer.parseInt(f.summary.group(2)) > 1000, "too few calls ran on both: " + f.summary.group());
        assertTrue(Integer.parseInt(f.summary.group(3)) > 500, "too few backward passes compared: " + f.summary.group());
        assertEquals("", f.differences, "differences from MXNet that no KNOWN entry explains");
    }

    @Test
    void largeInputsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        // dimensions up to 32 (inputs up to 100,000 elements): the threaded, blocked and vectorized
        // paths of both engines, which the small calls above never reach
        Found ops = fuzz("20261130", "20", "dims=32");
        assertTrue(Integer.parseInt(ops.summary.group(2)) > 1000, "too few calls ran on both: " + ops.summary.group());
        assertEquals("", ops.differences, "differences from MXNet that no KNOWN entry explains (large calls)");
        Found graphs = fuzz("20261130", "1000", "graphs", "dims=32");
        assertTrue(Integer.parseInt(graphs.summary.group(2)) > 700, "too few graphs ran on both: " + graphs.summary.group());
        assertEquals("", graphs.differences, "differences from MXNet that no KNOWN entry explains (large graphs)");
    }

    @Test
    void nanAndInfiniteInputsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        // one float input value in 6 is NaN, +inf or -inf: the NaN rules of every operator and its gradient
        Found f = fuzz("20261201", "20", "specials=6");
        assertTrue(Integer.parseInt(f.summary.group(2)) > 1000, "too few calls ran on both: " + f.summary.group());
        assertEquals("", f.differences, "differences from MXNet that no KNOWN entry explains (NaN and infinite inputs)");
    }

    @Test
    void randomGraphsAgreeWithMxnetOrDifferOnPurpose() throws Exception {
        Found f = fuzz("20261129", "2000", "graphs");
        assertTrue(Integer.parseInt(f.summary.group(2)) > 1500, "too few graphs ran on both: " + f.summary.group());
        assertEquals("", f.differences, "differences from MXNet that no KNOWN entry explains");
    }
}
