package dev.kiln.reliability;

import dev.kiln.engine.Engine;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.module.Checkpoints;
import dev.kiln.module.Module;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.ParamsFile;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoints are written atomically ({@link dev.kiln.internal.AtomicFiles}: temporary file in
 * the same folder, fsync, rename over the final name, fsync of the folder): a separate JVM writes
 * large checkpoints ({@link Module#saveCheckpoint}, 16 MiB of parameters) in a loop and is killed
 * ({@link Process#destroyForcibly}) in the middle of a write; the file under the final name is then
 * always a complete, loadable earlier or just-finished checkpoint. Loading verifies sizes: a
 * truncated .params file is rejected with a message, never read as a short array.
 */
@ExtendWith(NoLeaks.class)
class AtomicCheckpointTest {
    static final int HIDDEN = 2048;

    @TempDir
    Path tmp;

    static Symbol net() {
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", Symbol.variable("data"), HIDDEN));
    }

    /**
     * Child process: binds the net, then for i = 1, 2, ... sets every weight to i and saves
     * checkpoint epoch 1, printing "BEGIN i" before and "SAVED i" after each save.
     */
    public static void main(String[] args) throws Exception {
        String prefix = args[0];
        Engine.init();
        try (Module mod = new Module(net())) {
            mod.bind(Map.of("data", new long[] {1, HIDDEN}), Map.of("softmax_label", new long[] {1}), false);
            Initializer.seed(1);
            mod.initParams(new Xavier(), null, null, false, false, false);
            for (int i = 1; ; i++) {
                try (NDArray w = NDArray.zeros(HIDDEN, HIDDEN).fill(i); NDArray b = NDArray.zeros(HIDDEN).fill(i)) {
                    mod.setParams(Map.of("fc_weight", w, "fc_bias", b), Map.of(), false, true, false);
                }
                System.out.println("BEGIN " + i);
                System.out.flush();
                mod.saveCheckpoint(prefix, 1, false);
                System.out.println("SAVED " + i);
                System.out.flush();
            }
        }
    }

    static Process startWriter(String prefix) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path")));
        for (String p : new String[] {"java.library.path", "org.bytedeco.javacpp.cachedir", "user.home"}) {
            if (System.getProperty(p) != null) {
                cmd.add("-D" + p + "=" + System.getProperty(p));
            }
        }
        cmd.add(AtomicCheckpointTest.class.getName());
        cmd.add(prefix);
        return new ProcessBuilder(cmd).redirectErrorStream(true).start();
    }

    /** Checks the checkpoint under its final name: complete, loadable, weights all equal to one save index. */
    static int verify(String prefix) throws IOException {
        Path file = Checkpoints.paramsFile(prefix, 1);
        long expected = 0;
        List<ParamsFile.Entry> entries = ParamsFile.read(file);
        assertEquals(2, entries.size(), "entries in " + file);
        int value = -1;
        for (ParamsFile.Entry e : entries) {
            float[] v = e.toFloatArray();
            expected += v.length;
            for (float x : v) {
                if (value < 0) {
                    value = (int) x;
                }
                assertEquals(value, x, "every value of one checkpoint comes from the same save (" + e.name() + ")");
            }
        }
        assertEquals((long) HIDDEN * HIDDEN + HIDDEN, expected);
        try (Checkpoints.Checkpoint ck = Checkpoints.load(prefix, 1)) {
            assertEquals(value, ck.argParams().get("fc_bias").toFloatArray()[0]);
        }
        return value;
    }

    static boolean tempFileHasData(Path dir) {
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.toList()) {
                if (p.getFileName().toString().endsWith(".params.tmp") || p.getFileName().toString().contains(".params.")) {
                    try {
                        if (Files.size(p) > 0) {
                            return true;
                        }
                    } catch (IOException ignored) {
                        // renamed or removed meanwhile
                    }
                }
            }
        } catch (IOException ignored) {
            // listing raced with a rename
        }
        return false;
    }

    @Test
    void killedWriterLeavesPreviousCheckpointIntact() throws Exception {
        String prefix = tmp.resolve("ck").toString();
        Path file = Checkpoints.paramsFile(prefix, 1);
        long[] delaysMicros = {-1, 0, 3000, -1, 40000, -1};  // -1: as soon as the temporary file has data
        int partialTemps = 0;
        for (long delay : delaysMicros) {
            Process p = startWriter(prefix);
            AtomicInteger saved = new AtomicInteger(0);
            AtomicInteger begun = new AtomicInteger(0);
            StringBuilder log = new StringBuilder();
            Thread reader = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                    for (String line; (line = r.readLine()) != null; ) {
                        synchronized (log) {
                            log.append(line).append('\n');
                        }
                        if (line.startsWith("SAVED ")) {
                            saved.set(Integer.parseInt(line.substring(6).trim()));
                        } else if (line.startsWith("BEGIN ")) {
                            begun.set(Integer.parseInt(line.substring(6).trim()));
                        }
                    }
                } catch (IOException ignored) {
                    // the process was killed
                }
            });
            reader.start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
            while (saved.get() < 2 && p.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertTrue(saved.get() >= 2, "the writer saved two checkpoints; output:\n" + log);
            // kill during the next save: wait for its BEGIN, then a little longer
            int target = saved.get() + 1;
            while (begun.get() < target && p.isAlive()) {
                Thread.onSpinWait();
            }
            // then until the temporary file of this save has data in it (the kill lands mid-write),
            // or the given delay for the trials that kill at other points of the save
            if (delay < 0) {
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
                while (p.isAlive() && System.nanoTime() < until && !tempFileHasData(tmp)) {
                    Thread.onSpinWait();
                }
            } else if (delay > 0) {
                TimeUnit.MICROSECONDS.sleep(delay);
            }
            int savedAtKill = saved.get();
            p.destroyForcibly();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "killed writer exits");
            reader.join(10_000);
            int savedAfter = saved.get();
            assertTrue(Files.exists(file), "a checkpoint exists under the final name");
            int value = verify(prefix);
            System.out.printf("AtomicCheckpointTest: killed %s after BEGIN %d (acknowledged saves %d..%d): file holds save %d, %d bytes%n",
                    delay < 0 ? "mid-write (temporary file has data)" : delay + " us", target, savedAtKill, savedAfter, value, Files.size(file));
            assertTrue(value >= savedAtKill && value <= savedAfter + 1,
                    "the file holds the last acknowledged save or the one in flight, got " + value + " (acknowledged " + savedAtKill + ")");
            try (Stream<Path> s = Files.list(tmp)) {
                for (Path left : s.filter(x -> x.getFileName().toString().endsWith(".tmp")).toList()) {
                    // an interrupted write leaves its temporary file (never under the final name); a
                    // later successful write does not reuse it
                    assertTrue(left.getFileName().toString().startsWith("." + file.getFileName() + ".")
                            || left.getFileName().toString().startsWith(".ck-symbol.json."), "temporary name: " + left);
                    partialTemps++;
                    Files.delete(left);
                }
            }
        }
        System.out.println("AtomicCheckpointTest: temporary files left by killed writers: " + partialTemps);
        assertTrue(partialTemps > 0, "at least one kill interrupted a write in progress");
    }

    @Test
    void truncatedParamsFileIsRejected() throws Exception {
        String prefix = tmp.resolve("small").toString();
        Symbol net = Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", Symbol.variable("data"), 16));
        try (Module mod = new Module(net)) {
            mod.bind(Map.of("data", new long[] {2, 8}), Map.of("softmax_label", new long[] {2}), false);
            mod.initParams(new Xavier(), null, null, false, false, false);
            mod.saveCheckpoint(prefix, 3, false);
        }
        Path file = Checkpoints.paramsFile(prefix, 3);
        byte[] full = Files.readAllBytes(file);
        try (Checkpoints.Checkpoint ck = Checkpoints.load(prefix, 3)) {
            assertEquals(16 * 8, ck.argParams().get("fc_weight").size());
        }
        for (int len : new int[] {0, 7, 16, 24, 40, full.length / 2, full.length - 64, full.length - 1}) {
            byte[] cut = java.util.Arrays.copyOf(full, len);
            Files.write(file, cut);
            IOException e = assertThrows(IOException.class, () -> Checkpoints.load(prefix, 3), "truncated to " + len + " bytes");
            assertTrue(e.getMessage() != null && e.getMessage().contains(file.getFileName().toString()),
                    "message names the file: " + e.getMessage());
        }
    }
}
