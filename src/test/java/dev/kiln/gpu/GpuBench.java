package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import dev.kiln.examples.CnnNets;
import dev.kiln.examples.MnistMlp;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Amp;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * GPU training-step benchmark, the Kiln half of the benchmark in {@code scripts/gpu-device-run.sh} (the PyTorch half is
 * {@code scripts/gpu-bench-torch.py}, which prints lines of the same form): for each network, one
 * executor on {@code gpu(0)}, fixed random data already on the device, then timed steps of forward
 * + backward ({@code forwardBackward}) + SGD-momentum update of every parameter (one {@code
 * FusedUpdate}, as {@code Module.update}). Each line ends with the peak of device memory in use
 * over that net ({@code peak <MiB>}, as PyTorch's {@code torch.cuda.max_memory_allocated}). Prints {@code BENCH <net> <batch> <ms/step>
 * <samples/s>} lines; the median of {@code --repeats} timed blocks is reported. {@code
 * resnet50-amp} is ResNet-50 converted by {@link Amp#convertSymbol} to bfloat16 (float32 master
 * weights, as PyTorch's bf16 autocast), printed as {@code BENCH kiln-amp resnet50 ...}; {@code
 * resnet50-tf32} is float32 ResNet-50 with {@link Engine#setCudaTf32} on ({@code BENCH kiln-tf32
 * resnet50 ...}, against PyTorch's allow_tf32 line). Convolutions take MXNet's default {@code
 * cudnn_tune} (limited_workspace: cuDNN algorithms timed at the first step, as PyTorch's {@code
 * cudnn.benchmark = True}); the warm-up steps absorb the timing.
 *
 * <p>Usage: {@code GpuBench [--nets mlp,lenet,resnet50,resnet50-amp,resnet50-tf32] [--steps N]
 * [--repeats N]}.
 */
public final class GpuBench {
    private GpuBench() {}

    /** Entry point. */
    public static void main(String[] args) {
        String nets = "mlp,lenet,resnet50,resnet50-amp,resnet50-tf32";  // the TF32 line last: the first a timeout cuts
        int steps = 50;
        int repeats = 5;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--nets" -> nets = args[i + 1];
                case "--steps" -> steps = Integer.parseInt(args[i + 1]);
                case "--repeats" -> repeats = Integer.parseInt(args[i + 1]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        System.out.println("Kiln GPU bench: " + Engine.cudaDescribe().replace('\n', ' '));
        System.out.println("KILN_CUDA_GRAPHS=" + System.getenv().getOrDefault("KILN_CUDA_GRAPHS", "(unset: graphs on)"));
        for (String net : nets.split(",")) {
            switch (net.trim()) {
                case "mlp" -> run("kiln", "mlp", MnistMlp.network(), new long[] {128, 784}, steps, repeats);
                case "lenet" -> run("kiln", "lenet", CnnNets.lenet(), new long[] {128, 1, 28, 28}, steps, repeats);
                case "resnet50" -> run("kiln", "resnet50", CnnNets.resnet50(1000), new long[] {64, 3, 224, 224},
                        Math.max(5, steps / 5), repeats);
                case "resnet50-tf32" -> {
                    boolean before = Engine.cudaTf32();
                    Engine.setCudaTf32(true);
                    try {
                        run("kiln-tf32", "resnet50", CnnNets.resnet50(1000), new long[] {64, 3, 224, 224},
                                Math.max(5, steps / 5), repeats);
                    } finally {
                        Engine.setCudaTf32(before);
                    }
                }
                case "resnet50-amp" -> run("kiln-amp", "resnet50", Amp.convertSymbol(CnnNets.resnet50(1000), DType.BFLOAT16),
                        new long[] {64, 3, 224, 224}, Math.max(5, steps / 5), repeats);
                default -> throw new IllegalArgumentException("unknown net " + net);
            }
        }
        // after the nets: which convolutions cuDNN took or declined, and the allocator's state
        System.out.println("Kiln GPU bench, after: " + Engine.cudaDescribe().replace('\n', ' '));
    }

    private static void run(String mode, String name, Symbol net, long[] dataShape, int steps, int repeats) {
        Context gpu = Context.gpu(0);
        int batch = (int) dataShape[0];
        Map<String, long[]> shapes = Map.of("data", dataShape, "softmax_label", new long[] {batch});
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
        }
        Map<String, DType> types = Map.of("data", DType.FLOAT32, "softmax_label", DType.FLOAT32);
        Engine.resetPeak(gpu);  // the peak of device bytes in use over this net (as torch.cuda.max_memory_allocated)
        List<NDArray> moms = new ArrayList<>();
        dev.kiln.optimizer.FusedUpdate fused = null;
        try (Executor ex = Executor.simpleBind(net, gpu, shapes, types, reqs, new Executor.Options())) {
            Random r = new Random(1);
            for (Map.Entry<String, NDArray> e : ex.argDict().entrySet()) {
                NDArray a = e.getValue();
                double[] v = new double[(int) a.size()];
                double scale = e.getKey().equals("data") ? 1.0 : Math.sqrt(2.0 / Math.max(1, a.size() / Math.max(1, a.shape().dims()[0])));
                for (int i = 0; i < v.length; i++) {
                    v[i] = e.getKey().equals("softmax_label") ? r.nextInt(10) : r.nextGaussian() * scale;
                }
                if (e.getKey().endsWith("_gamma")) {
                    java.util.Arrays.fill(v, 1.0);
                } else if (e.getKey().endsWith("_beta") || e.getKey().endsWith("_bias")) {
                    java.util.Arrays.fill(v, 0.0);
                }
                try (NDArray h = NDArray.create(v, a.shape().dims()); NDArray c = h.asType(DType.FLOAT32)) {
                    c.copyTo(a);
                }
            }
            for (Map.Entry<String, NDArray> e : ex.auxDict().entrySet()) {
                e.getValue().fill(e.getKey().endsWith("_var") ? 1.0 : 0.0);
            }
            List<String> params = new ArrayList<>();
            for (Map.Entry<String, GradReq> e : reqs.entrySet()) {
                if (e.getValue() != GradReq.NULL) {
                    params.add(e.getKey());
                    moms.add(NDArray.zeros(ex.argDict().get(e.getKey()).shape(), DType.FLOAT32, gpu).detach());
                }
            }
            // the update as Module.update runs it: one FusedUpdate of every parameter's sgd_mom_update,
            // with lr and wd as dynamic values (constant here, so from the second step on a graph replay)
            fused = new dev.kiln.optimizer.FusedUpdate();
            for (int p = 0; p < params.size(); p++) {
                NDArray w = ex.argDict().get(params.get(p));
                fused.add("sgd_mom_update", Map.of("momentum", 0.9, "rescale_grad", 1.0 / batch), List.of("lr", "wd"),
                        List.of(w, ex.gradDict().get(params.get(p)), moms.get(p)), List.of(w));
            }
            double[] dyn = new double[2 * params.size()];
            for (int p = 0; p < params.size(); p++) {
                dyn[2 * p] = 0.01;
                dyn[2 * p + 1] = 1e-4;
            }
            dev.kiln.optimizer.FusedUpdate update = fused;
            Runnable step = () -> {
                ex.forwardBackward();  // one native call (one graph replay), as Module.forwardBackward
                update.run(dyn);       // one native call (one graph replay), as Module.update
            };
            for (int i = 0; i < 5; i++) {
                step.run();
            }
            sync(ex);
            double[] ms = new double[repeats];
            for (int rep = 0; rep < repeats; rep++) {
                long t0 = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    step.run();
                }
                sync(ex);
                ms[rep] = (System.nanoTime() - t0) / 1e6 / steps;
            }
            java.util.Arrays.sort(ms);
            double med = ms[repeats / 2];
            String graphs = (ex.memoryReport().json().contains("\"recorded\":true") ? "graphs" : "eager")
                    + (update.isGraphRecorded() ? "+update-graph" : "");
            double peakMiB = Engine.memory(gpu).peakBytes() / (double) (1 << 20);
            System.out.printf(Locale.ROOT, "BENCH %s %s %d %.3f %.1f %s (min %.3f max %.3f ms) peak %.0f MiB%n", mode, name,
                    batch, med, batch * 1000.0 / med, graphs, ms[0], ms[repeats - 1], peakMiB);
        } finally {
            if (fused != null) {
                fused.close();
            }
            moms.forEach(NDArray::close);
        }
    }

    /** Waits for the device: reading an output back synchronizes with every kernel before it. */
    private static void sync(Executor ex) {
        try (NDArray h = ex.outputs().get(0).copyTo(Context.cpu())) {
            double[] v = h.toDoubleArray();
            if (!Double.isFinite(v[0])) {
                throw new IllegalStateException("non-finite output " + v[0]);
            }
        }
    }
}
