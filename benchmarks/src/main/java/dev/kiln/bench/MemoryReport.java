package dev.kiln.bench;

import static org.bytedeco.pytorch.global.torch.ones;
import static org.bytedeco.pytorch.global.torch.rand;

import ai.djl.Device;
import ai.djl.mxnet.jna.JnaUtils;
import ai.djl.ndarray.NDManager;
import dev.kiln.engine.Engine;
import dev.kiln.init.Xavier;
import dev.kiln.ndarray.NDArray;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Memory of one training step per network and engine (issue 6): for each network ({@link Nets})
 * and each engine (Kiln, MXNet 1.9.1 through DJL, libtorch 2.10 through JavaCPP) a fresh JVM
 * loads the engine, reads its peak resident memory (VmHWM in /proc/self/status) as the baseline,
 * builds the network, runs two training steps (forward, backward, SGD-momentum update) and reads
 * VmHWM again. The table gives the baseline and the growth (peak - baseline): what the network,
 * its gradients, optimizer state and the engine's working memory took. For Kiln it adds the
 * memory planner's planned bytes ({@code Executor.memoryReport()}: intermediates and gradient
 * buffers) and what MXNet 1.x's planner would plan for the same graph.
 *
 * <p>The child JVMs run with a fixed, pre-touched heap ({@code -Xms=-Xmx}, AlwaysPreTouch), so
 * Java heap growth does not show up as engine memory. Thread settings come from the environment
 * (OMP_NUM_THREADS, as benchmarks/run.sh exports them).
 *
 * <p>Usage: {@code java -cp benchmarks.jar dev.kiln.bench.MemoryReport [nets] [engines]} with
 * comma-separated lists (default {@code mlp,lenet,resnet18} and {@code kiln,mxnet,libtorch});
 * batches: 128 for the MLP and LeNet, 32 for ResNet-18 (as their training benchmarks). Exit
 * status 1 if a child failed (its output is printed).
 */
public final class MemoryReport {
    private static final String TAG = "MEMORY ";

    private MemoryReport() {}

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("--child")) {
            child(args[1], Nets.of(args[2]), Integer.parseInt(args[3]));
            return;
        }
        List<String> nets = List.of((args.length > 0 ? args[0] : "mlp,lenet,resnet18").split(","));
        List<String> engines = List.of((args.length > 1 ? args[1] : "kiln,mxnet,libtorch").split(","));
        List<String[]> rows = new ArrayList<>();
        boolean failed = false;
        for (String net : nets) {
            for (String engine : engines) {
                String[] row = runChild(engine, net, batchOf(net));
                failed |= row == null;
                if (row != null) {
                    rows.add(row);
                }
            }
        }
        printTable(rows);
        if (failed) {
            System.exit(1);
        }
    }

    static int batchOf(String net) {
        return Nets.of(net) == Nets.RESNET18 ? 32 : 128;
    }

    /** Runs one child JVM; returns its result fields, or null (after printing its output) when it failed. */
    private static String[] runChild(String engine, String net, int batch) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "-Xms256m", "-Xmx256m", "-XX:+AlwaysPreTouch", "-Xss8m",
                "-Dai.djl.offline=true", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"));
        String cache = System.getProperty("org.bytedeco.javacpp.cachedir");
        if (cache != null) {
            cmd.add("-Dorg.bytedeco.javacpp.cachedir=" + cache);
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), MemoryReport.class.getName(), "--child", engine,
                net, Integer.toString(batch)));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        StringBuilder out = new StringBuilder();
        String[] result = null;
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                out.append(line).append('\n');
                if (line.startsWith(TAG)) {
                    result = line.substring(TAG.length()).trim().split(" ");
                }
            }
        }
        int rc = p.waitFor();
        if (rc != 0 || result == null) {
            System.out.println("# memory child " + engine + " " + net + " failed (exit " + rc + "):\n" + out);
            return null;
        }
        System.out.print(out.toString().lines().filter(l -> l.startsWith("# ")).map(l -> l + "\n")
                .reduce("", String::concat));
        return result;
    }

    /** Peak resident set size of this process in bytes (VmHWM). */
    static long peakResidentBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmHWM:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IllegalStateException("no VmHWM in /proc/self/status (Linux only)");
    }

    /** Loads one engine, measures, prints one "MEMORY engine net batch baseline peak planned mxplanned loss" line. */
    private static void child(String engine, Nets net, int batch) throws IOException {
        int threads = Integer.parseInt(System.getenv().getOrDefault("OMP_NUM_THREADS", "1"));
        long base;
        long planned = -1;
        long mxPlanned = -1;
        double loss;
        float[] labels = Nets.labels(batch);
        long[] shape = net.dataShape(batch);
        switch (engine) {
            case "kiln" -> {
                Engine.setNumThreads(threads);
                NDArray.zeros(new dev.kiln.ndarray.Shape(1), dev.kiln.ndarray.DType.FLOAT32, dev.kiln.ndarray.Context.cpu())
                        .close();
                base = peakResidentBytes();
                try (KilnTrainStep s = new KilnTrainStep(net.symbol(), Map.of("data", shape),
                        Map.of("data", net.data(batch), "softmax_label", labels), new Xavier(), n -> n, NetBench.LR,
                        NetBench.MOMENTUM)) {
                    s.run();
                    s.run();
                    dev.kiln.executor.MemoryReport r = s.exec.memoryReport();
                    planned = r.plannedBytes();
                    mxPlanned = r.mxnetPlannedBytes();
                    loss = s.loss(labels);
                }
            }
            case "mxnet" -> {
                try (NDManager m = NDManager.newBaseManager(Device.cpu(), "MXNet")) {
                    m.ones(new ai.djl.ndarray.types.Shape(1)).add(1).getFloat();
                }
                JnaUtils.waitAll();
                base = peakResidentBytes();
                try (MxTrainStep s = new MxTrainStep(net.name(), net.symbol(), shape, net.data(batch), labels, NetBench.LR,
                        NetBench.MOMENTUM, true)) {
                    s.run();
                    s.run();
                    loss = s.loss();
                }
            }
            case "libtorch" -> {
                TorchTrainStep.prepare(threads);
                ones(1).add(ones(1)).item_float();
                base = peakResidentBytes();
                Nets.TorchNet n = net.torch();
                TorchTrainStep s = new TorchTrainStep(n.module(), n.forward(), rand(shape), Nets.CLASSES, batch,
                        NetBench.LR, NetBench.MOMENTUM);
                s.run();
                s.run();
                loss = s.loss();
            }
            default -> throw new IllegalArgumentException("engine must be kiln, mxnet or libtorch: " + engine);
        }
        long peak = peakResidentBytes();
        System.out.println(TAG + String.join(" ", engine, net.name().toLowerCase(Locale.ROOT), Integer.toString(batch),
                Long.toString(base), Long.toString(peak), Long.toString(planned), Long.toString(mxPlanned),
                String.format(Locale.ROOT, "%.4f", loss)));
        System.exit(0);  // the peers' native threads need not wind down
    }

    private static String mib(long bytes) {
        return bytes < 0 ? "-" : String.format(Locale.ROOT, "%.1f", bytes / 1048576.0);
    }

    private static void printTable(List<String[]> rows) {
        System.out.println();
        System.out.println("Memory of two training steps (fresh JVM per row; MiB; growth = peak RSS - RSS peak after loading the engine)");
        System.out.printf(Locale.ROOT, "%-9s %5s %-9s %10s %10s %12s %14s %8s%n", "net", "batch", "engine", "baseline",
                "growth", "kiln plan", "mxnet plan*", "loss");
        for (String[] r : rows) {
            long base = Long.parseLong(r[3]);
            long peak = Long.parseLong(r[4]);
            System.out.printf(Locale.ROOT, "%-9s %5s %-9s %10s %10s %12s %14s %8s%n", r[1], r[2], r[0], mib(base),
                    mib(peak - base), mib(Long.parseLong(r[5])), mib(Long.parseLong(r[6])), r[7]);
        }
        System.out.println("* kiln plan: bytes Kiln's planner planned (intermediates and gradient buffers); mxnet plan:"
                + " what MXNet 1.x's planner would plan for the same graph, computed by Kiln (not measured in MXNet).");
    }
}
