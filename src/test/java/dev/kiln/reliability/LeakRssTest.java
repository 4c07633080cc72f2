package dev.kiln.reliability;

import dev.kiln.engine.Engine;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.DataBatch;
import dev.kiln.metric.Accuracy;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.FreshJvm;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Long training runs of the MNIST MLP (784-512-512-10, batch 128, synthetic MNIST-shaped data)
 * through {@link Module}'s intermediate API (forward, backward, update, updateMetric), sampling the
 * process's resident memory ({@code VmRSS} of /proc/self/status) and the native CPU allocator's
 * outstanding bytes at regular intervals. Resident memory must be flat after warm-up, the native
 * allocator's outstanding bytes constant during training and back to the starting value after
 * close. The default suite runs 1,000 steps; the 10,000-step run is tagged {@code slow}
 * ({@code mvn -Pslow test -Dtest=LeakRssTest}).
 */
@ExtendWith(NoLeaks.class)
class LeakRssTest {
    static final int BATCH = 128;

    static Symbol mlp() {
        Symbol x = Symbol.variable("data");
        x = Symbol.activation("relu1", Symbol.fullyConnected("fc1", x, 512), "relu");
        x = Symbol.activation("relu2", Symbol.fullyConnected("fc2", x, 512), "relu");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc3", x, 10));
    }

    /** VmRSS of this process in bytes. */
    static long rssBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IOException("no VmRSS in /proc/self/status");
    }

    /** Synthetic MNIST-like batches: pixels in [0, 1), the label a function of the pixels. */
    static List<DataBatch> batches(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<DataBatch> out = new ArrayList<>();
        for (int b = 0; b < n; b++) {
            float[] x = new float[BATCH * 784];
            float[] y = new float[BATCH];
            for (int i = 0; i < BATCH; i++) {
                int cls = r.nextInt(10);
                y[i] = cls;
                for (int j = 0; j < 784; j++) {
                    x[i * 784 + j] = (float) (r.nextDouble() * 0.5 + ((j % 10) == cls ? 0.5 : 0.0));
                }
            }
            out.add(new DataBatch(List.of(NDArray.create(x, BATCH, 784)), List.of(NDArray.create(y, BATCH))));
        }
        return out;
    }

    /**
     * Runs {@code steps} training steps and checks memory; returns the samples (MiB) for printing.
     */
    static void run(int steps, int every) throws IOException {
        Engine.MemoryStats start = Engine.memory(Context.cpu());
        long handles0 = Engine.liveHandles();
        List<Long> rss = new ArrayList<>();
        List<Long> nativeBytes = new ArrayList<>();
        long t0 = System.nanoTime();
        double acc = Double.NaN;
        List<Long> heap = new ArrayList<>();
        List<DataBatch> data = batches(8, 42);
        try (Module mod = new Module(mlp())) {
            mod.bind(Map.of("data", new long[] {BATCH, 784}), Map.of("softmax_label", new long[] {BATCH}), true);
            Initializer.seed(1);
            mod.initParams(new Xavier(), null, null, false, false, false);
            mod.initOptimizer("local", "sgd", Map.of("learning_rate", 0.05, "momentum", 0.9, "wd", 1e-4), false);
            Accuracy metric = new Accuracy();
            for (int step = 0; step <= steps; step++) {
                if (step % every == 0) {
                    System.gc();
                    rss.add(rssBytes());
                    nativeBytes.add(Engine.memory(Context.cpu()).currentBytes());
                    heap.add(Runtime.getRuntime().totalMemory());
                    if (step > 0) {
                        acc = metric.get();
                        System.out.printf("LeakRssTest step %5d: RSS %.1f MiB, native outstanding %.2f MiB, Java heap committed %.1f MiB"
                                + " (used %.1f), accuracy %.3f, %.1f s%n", step, rss.get(rss.size() - 1) / 1048576.0,
                                nativeBytes.get(nativeBytes.size() - 1) / 1048576.0, heap.get(heap.size() - 1) / 1048576.0,
                                (Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory()) / 1048576.0, acc,
                                (System.nanoTime() - t0) / 1e9);
                        metric.reset();
                    }
                }
                if (step == steps) {
                    break;
                }
                DataBatch b = data.get(step % data.size());
                mod.forward(b, true);
                mod.backward(null);
                mod.update();
                mod.updateMetric(metric, b.label(), false);
            }
        } finally {
            data.forEach(DataBatch::close);
        }
        long afterClose = Engine.memory(Context.cpu()).currentBytes();
        System.out.printf("LeakRssTest %d steps: %.1f s; RSS samples (MiB) %s; native bytes start %d, during %s, after close %d%n",
                steps, (System.nanoTime() - t0) / 1e9, rss.stream().map(v -> String.format("%.1f", v / 1048576.0)).toList(),
                start.currentBytes(), nativeBytes, afterClose);
        // warm-up: the first fifth of the run (allocator pools, JIT, heap sizing)
        int warm = rss.size() / 5;
        long minAfter = Long.MAX_VALUE;
        long maxAfter = Long.MIN_VALUE;
        for (int i = warm; i < rss.size(); i++) {
            minAfter = Math.min(minAfter, rss.get(i));
            maxAfter = Math.max(maxAfter, rss.get(i));
        }
        long growth = rss.get(rss.size() - 1) - rss.get(warm);
        assertTrue(growth < 16L << 20, "RSS grew by " + growth / 1048576.0 + " MiB after warm-up: " + rss);
        assertTrue(maxAfter - minAfter < 32L << 20, "RSS varies by " + (maxAfter - minAfter) / 1048576.0 + " MiB after warm-up");
        for (int i = 1; i < nativeBytes.size(); i++) {
            assertEquals(nativeBytes.get(1), nativeBytes.get(i), "native outstanding bytes change during training: " + nativeBytes);
        }
        assertEquals(start.currentBytes(), afterClose, "native outstanding bytes after close");
        assertEquals(handles0, Engine.liveHandles(), "live handles after close");
        assertTrue(acc > 0.5, "the MLP learns the synthetic task (accuracy " + acc + ")");
    }

    @Test
    void thousandStepsMemoryFlat() throws Exception {
        inFreshJvm(1000, 100);
    }

    @Test
    @Tag("slow")
    void tenThousandStepsMemoryFlat() throws Exception {
        inFreshJvm(10000, 1000);
    }

    /**
     * Runs {@link #run} in a JVM of its own: the suite's JVM carries the memory of every test before
     * (direct buffers awaiting GC, malloc arenas of finished threads), which moved its RSS by 45 MiB
     * in the middle of a run once, with this test's own memory flat. The JVM compiles with C1 only:
     * C2's compile arenas raised RSS in steps of 13-17 MiB at times that depend on the JIT, not on
     * the step count (after 1,000 steps in CI, +17.5 MiB at step 1,550 here, later returned), with
     * the native allocator's bytes constant; with C1 only, RSS stayed within 0.1 MiB over 2,000 steps.
     * Kiln's steps run in native code, so the choice of Java compiler does not hide a leak.
     */
    static void inFreshJvm(int steps, int every) throws Exception {
        FreshJvm.Result r = FreshJvm.run(LeakRssTest.class, List.of("-Xmx512m", "-XX:TieredStopAtLevel=1"), Map.of(),
                Integer.toString(steps), Integer.toString(every));
        System.out.print(r.output());
        assertEquals(0, r.exitCode(), "the measuring JVM failed:\n" + r.output());
    }

    /** The measurement in this JVM: {@code steps every}; exits 1 with the failure on stdout. */
    public static void main(String[] args) {
        try {
            run(Integer.parseInt(args[0]), Integer.parseInt(args[1]));
        } catch (Throwable t) {
            t.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }
}
