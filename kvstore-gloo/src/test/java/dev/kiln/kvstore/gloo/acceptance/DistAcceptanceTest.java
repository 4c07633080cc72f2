package dev.kiln.kvstore.gloo.acceptance;

import dev.kiln.examples.MnistDist;
import dev.kiln.kvstore.launch.LaunchResult;
import dev.kiln.kvstore.launch.Launcher;
import dev.kiln.ndarray.NDArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 9's acceptance on real worker processes over Gloo on 127.0.0.1, started by Kiln's
 * {@link Launcher}: the KVStore contract on 2 and 4 processes; {@code Module.fit} of the MNIST MLP
 * on 2 and 4 workers equals one process with the combined batch and leaves identical weights on
 * every rank; a killed worker fails the job within seconds naming it, and a restart from the last
 * checkpoint ends with the weights of an uninterrupted run; a hung worker makes the others stop at
 * the deadline with a report naming rank, epoch and step.
 */
class DistAcceptanceTest {
    static final Path MNIST = Path.of(System.getProperty("kiln.root", "..")).resolve("data/mnist").toAbsolutePath();

    @TempDir
    Path tmp;

    static List<String> java(Class<?> main, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",
                "-cp", System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")), main.getName()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    static LaunchResult launch(int n, List<String> cmd, Consumer<String> sink, Launcher[] handle, String timeoutS) throws Exception {
        Launcher l = Launcher.builder().setWorkers(n).setCommand(cmd).optEnv("KV_TIMEOUT_S", timeoutS)
                .optTimeout(Duration.ofMinutes(4)).optOutput(sink).build();
        if (handle != null) {
            handle[0] = l;
        }
        return l.run();
    }

    static LaunchResult launch(int n, List<String> cmd) throws Exception {
        return launch(n, cmd, System.out::println, null, "60");
    }

    static Map<String, float[]> params(Path file) throws IOException {
        Map<String, float[]> out = new LinkedHashMap<>();
        Map<String, NDArray> m = NDArray.load(file);
        m.forEach((k, v) -> {
            out.put(k, v.toFloatArray());
            v.close();
        });
        return out;
    }

    static double maxRelDiff(Map<String, float[]> a, Map<String, float[]> b) {
        double worst = 0;
        for (String k : b.keySet()) {
            float[] x = a.get(k);
            float[] y = b.get(k);
            double num = 0;
            double den = 0;
            for (int i = 0; i < y.length; i++) {
                num = Math.max(num, Math.abs(x[i] - y[i]));
                den = Math.max(den, Math.abs(y[i]));
            }
            worst = Math.max(worst, num / den);
        }
        return worst;
    }

    static void assertSame(Map<String, float[]> a, Map<String, float[]> b, String what) {
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, v) -> assertArrayEquals(v, b.get(k), what + ": " + k));
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void kvstoreContractOnProcesses(int n) throws Exception {
        LaunchResult r = launch(n, java(ContractWorker.class, tmp.toString()));
        assertTrue(r.succeeded(), r.describe());
        LaunchResult c = launch(n, java(ContractWorker.class, tmp.toString(), "compression"));
        assertTrue(c.succeeded(), c.describe());
        for (int rank = 0; rank < n; rank++) {
            List<String> out = r.output(rank);
            for (String check : List.of("ok init", "ok push", "ok optimizer", "ok broadcast", "CONTRACT PASS")) {
                assertTrue(out.contains(check), "rank " + rank + " printed '" + check + "': " + out);
            }
            for (String check : List.of("ok compression", "CONTRACT PASS")) {
                assertTrue(c.output(rank).contains(check), "rank " + rank + " printed '" + check + "': " + c.output(rank));
            }
            assertArrayEquals(Files.readAllBytes(tmp.resolve("states-rank0")), Files.readAllBytes(tmp.resolve("states-rank" + rank)),
                    "optimizer states of rank " + rank + " equal rank 0's");
        }
    }

    static String[] mnistArgs(String... more) {
        return mnistArgs(3200, more);
    }

    static String[] mnistArgs(int samples, String... more) {
        List<String> a = new ArrayList<>(List.of("--samples", Integer.toString(samples), "--batch", "16", "--data", MNIST.toString()));
        a.addAll(List.of(more));
        return a.toArray(new String[0]);
    }

    /**
     * N worker processes x batch 16 against one process with batch N x 16 on N CPU contexts (each
     * context computes what one worker computes; the local KVStore sums them): on 2 workers over 2
     * epochs at lr 0.1, equal bit for bit (a sum of two is the same in any order); on 4, for the
     * first two steps, within rounding (Gloo's ring adds the four partial sums in another order than
     * the KVStore). Then, for the first two steps, against one process that computes the combined
     * batch in one GEMM per layer.
     *
     * <p>Two steps, not an epoch, wherever the sums differ in order: the comparison with one context
     * sums each weight gradient in another order (one chain of 16 N products against N chains of 16
     * added by the reduction), the one with 4 contexts adds four partial sums in another order, and
     * once two runs differ
     * in rounding, a pre-activation that lands within rounding of zero puts a ReLU on different sides
     * in the two. One such flip moves a whole row of fc1's weights (one step of lr x delta x pixels /
     * batch), and lr 0.1 with momentum 0.9 carries it on: in one recorded case, the sum of all
     * parameters agreed to 1e-7 relative for 6 steps, jumped by 0.028 at step 7 and the weights ended
     * an epoch 18% apart (Frobenius) while three other pairs of the same runs stayed within 3e-7.
     * Whether an epoch holds such a flip depends on every last bit of every GEMM, not on
     * distributed training (on 2026-11-28's machine the 4-context run over 2 epochs ended 16% apart
     * at the last commit that had passed, with no Kiln change). The two steps check what the
     * comparison is for: the reduced worker gradients, the rescaling and the update equal one
     * process's on the combined batch.
     */
    @ParameterizedTest
    @ValueSource(ints = {2, 4})
    @Timeout(value = 5, unit = TimeUnit.MINUTES)
    void fitOnWorkersEqualsOneProcessWithTheCombinedBatch(int n) throws Exception {
        String workers = Integer.toString(n);
        for (boolean contexts : new boolean[] {true, false}) {
            // 2 epochs of 3,200 samples against 2 contexts (bit for bit); 2 steps otherwise
            boolean epochsLong = contexts && n == 2;
            int samples = epochsLong ? 3200 : 2 * 16 * n;
            String epochs = epochsLong ? "2" : "1";
            Path d = tmp.resolve("dist" + contexts);
            LaunchResult r = launch(n, java(MnistDist.class, mnistArgs(samples, "--epochs", epochs, "--out", d.toString())));
            assertTrue(r.succeeded(), r.describe());
            Map<String, float[]> dist = params(d.resolve("params-rank0.params"));
            for (int rank = 1; rank < n; rank++) {
                assertSame(dist, params(d.resolve("params-rank" + rank + ".params")), "rank " + rank + " holds rank 0's weights");
            }
            Path ref = tmp.resolve("ref" + contexts);
            String[] refArgs = mnistArgs(samples, "--epochs", epochs, "--reference", workers, "--devices", contexts ? workers : "1", "--out",
                    ref.toString());
            LaunchResult one = launch(1, java(MnistDist.class, refArgs));
            assertTrue(one.succeeded(), one.describe());
            Map<String, float[]> reference = params(ref.resolve("params-rank0.params"));
            double diff = maxRelDiff(dist, reference);
            System.out.printf("MNIST MLP, %s, %d worker processes x batch 16 vs one process x batch %d on %s: max relative difference %.3g%n",
                    epochsLong ? "2 epochs" : "2 steps", n, 16 * n, contexts ? n + " contexts" : "1 context", diff);
            if (n == 2 && contexts) {
                assertSame(reference, dist, "2 workers = one process on 2 contexts, bit for bit");
            }
            assertTrue(diff < 1e-5, "relative difference " + diff);
        }
    }

    @Test
    @Timeout(value = 6, unit = TimeUnit.MINUTES)
    void killedWorkerFailsTheJobAndARestartFinishesWithTheSameWeights() throws Exception {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        Files.createDirectories(a);
        Files.createDirectories(b);
        LaunchResult whole = launch(2, java(MnistDist.class, mnistArgs("--epochs", "3", "--checkpoint", a.resolve("ck").toString(), "--out",
                a.toString())));
        assertTrue(whole.succeeded(), whole.describe());

        Launcher[] l = new Launcher[1];
        AtomicLong killedAt = new AtomicLong();
        List<String> cmd = java(MnistDist.class, mnistArgs("--epochs", "3", "--checkpoint", b.resolve("ck").toString(), "--out", b.toString(),
                "--progress", "10"));
        LaunchResult killed = launch(2, cmd, line -> {
            System.out.println(line);
            if (line.endsWith("rank 1 epoch 1 step 40") && killedAt.get() == 0) {
                killedAt.set(System.nanoTime());
                l[0].process(1).ifPresent(ProcessHandle::destroyForcibly);
            }
        }, l, "60");
        long end = System.nanoTime();
        assertTrue(killedAt.get() > 0, "the worker reached epoch 1 step 40");
        assertFalse(killed.succeeded());
        assertEquals(1, killed.failedRank().orElse(-1), killed.describe());
        assertEquals(137, killed.exitCode(1), killed.describe());
        assertTrue(killed.describe().startsWith("rank 1 failed with exit code 137 (SIGKILL)"), killed.describe());
        double seconds = (end - killedAt.get()) / 1e9;
        System.out.printf("kill -9 of rank 1 at epoch 1 step 40: the launcher returned %.2f s later: %s%n", seconds, killed.describe());
        assertTrue(seconds < 15, "job stopped within seconds, took " + seconds);
        assertTrue(Files.exists(b.resolve("ck-0001.params")) && !Files.exists(b.resolve("ck-0002.params")), "the last checkpoint is epoch 1's");

        LaunchResult restart = launch(2, cmd);
        assertTrue(restart.succeeded(), restart.describe());
        assertTrue(restart.output(0).stream().anyMatch(s -> s.contains("resuming from") && s.contains("ck-0001")), restart.output(0).toString());
        Map<String, float[]> uninterrupted = params(a.resolve("params-rank0.params"));
        Map<String, float[]> resumed = params(b.resolve("params-rank0.params"));
        double d = maxRelDiff(resumed, uninterrupted);
        System.out.printf("restart from epoch 1's checkpoint vs uninterrupted run: max relative difference %.3g%n", d);
        assertSame(resumed, params(b.resolve("params-rank1.params")), "both ranks equal after the restart");
        assertTrue(d <= 1e-6, "restart equals the uninterrupted run, difference " + d);
    }

    @Test
    @Timeout(value = 3, unit = TimeUnit.MINUTES)
    void hungWorkerStopsTheOthersAtTheDeadlineWithRankEpochAndStep() throws Exception {
        Launcher[] l = new Launcher[1];
        AtomicLong stoppedAt = new AtomicLong();
        LaunchResult r = launch(2, java(MnistDist.class, mnistArgs("--epochs", "2", "--progress", "10")), line -> {
            System.out.println(line);
            if (line.endsWith("rank 1 epoch 0 step 30") && stoppedAt.get() == 0) {
                stoppedAt.set(System.nanoTime());
                l[0].process(1).ifPresent(p -> signal("STOP", p.pid()));
            }
        }, l, "5");
        assertTrue(stoppedAt.get() > 0, "rank 1 reached step 30");
        assertEquals(0, r.failedRank().orElse(-1), r.describe());
        assertEquals(3, r.exitCode(0), r.describe());
        String report = String.join("\n", r.output(0));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("FAILED distributed training stopped on rank 0 of 2 at epoch 0, step (\\d+): "
                // Gloo words the deadline either way, depending on which side of the pair notices first
                + ".*([Tt]imed out|[Aa]pplication timeout).*").matcher(report);
        assertTrue(m.find(), report);
        assertTrue(Integer.parseInt(m.group(1)) >= 30, "rank 0 stopped after the step rank 1 hung at: " + m.group(0));
        System.out.println("hung rank 1 (SIGSTOP at step 30), KV_TIMEOUT_S=5: " + r.describe());
    }

    static void signal(String sig, long pid) {
        try {
            new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).inheritIO().start().waitFor();
        } catch (IOException | InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }
}
