package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * GPU kernels (FullyConnected through cuBLAS, elementwise, activations, SGD) agree with the CPU
 * kernels. Needs a {@code -Pcuda} build and a CUDA device; skipped with the reason otherwise.
 * On a GPU machine: {@code scripts/gpu-check.sh}.
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuConsistencyTest {
    @BeforeEach
    void needsGpu() {
        Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
    }

    static Symbol mlp() {
        Symbol fc1 = Symbol.fullyConnected("fc1", Symbol.variable("data"), 64);
        Symbol a1 = Symbol.activation("a1", fc1, "tanh");
        Symbol fc2 = Symbol.fullyConnected("fc2", a1.mul(2.0).plus(a1), 10);
        Symbol a2 = Symbol.activation("a2", fc2, "relu");
        return Symbol.exp(null, a2.mul(0.1));
    }

    private static Map<String, double[]> run(Context ctx, DType t, Map<String, double[]> vals) {
        Symbol s = mlp();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : s.listArguments()) {
            reqs.put(a, GradReq.WRITE);
        }
        Map<String, double[]> out = new LinkedHashMap<>();
        try (Executor ex = Executor.simpleBind(s, ctx, Map.of("data", new long[] {8, 20}), Map.of("data", t), reqs,
                new Executor.Options())) {
            for (Map.Entry<String, double[]> e : vals.entrySet()) {
                try (NDArray host = NDArray.create(e.getValue(), ex.argDict().get(e.getKey()).shape().dims());
                        NDArray cast = host.asType(t)) {
                    cast.copyTo(ex.argDict().get(e.getKey()));
                }
            }
            ex.forward(true);
            try (NDArray head = NDArray.full(ex.outputs().get(0).shape(), 1.0, t, ctx)) {
                ex.backward(head);
            }
            out.putAll(outputAndGradients(ex));
        }
        return out;
    }

    /** The executor's first output ("out") and every gradient ("d" + argument name), read back to the host. */
    static Map<String, double[]> outputAndGradients(Executor ex) {
        Map<String, double[]> out = new LinkedHashMap<>();
        try (NDArray o = ex.outputs().get(0).copyTo(Context.cpu())) {
            out.put("out", o.toDoubleArray());
        }
        for (Map.Entry<String, NDArray> g : ex.gradDict().entrySet()) {
            try (NDArray h = g.getValue().copyTo(Context.cpu())) {
                out.put("d" + g.getKey(), h.toDoubleArray());
            }
        }
        return out;
    }

    @Test
    void mlpForwardAndGradientsMatchCpu() {
        Random r = new Random(3);
        Map<String, double[]> vals = new LinkedHashMap<>();
        Map<String, long[]> shapes = Map.of("data", new long[] {8, 20}, "fc1_weight", new long[] {64, 20}, "fc1_bias", new long[] {64},
                "fc2_weight", new long[] {10, 64}, "fc2_bias", new long[] {10});
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            int n = 1;
            for (long d : e.getValue()) {
                n *= d;
            }
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = r.nextGaussian() * 0.3;
            }
            vals.put(e.getKey(), v);
        }
        for (DType t : List.of(DType.FLOAT64, DType.FLOAT32)) {
            Map<String, double[]> cpu = run(Context.cpu(), t, vals);
            Map<String, double[]> gpu = run(Context.gpu(0), t, vals);
            double tol = t == DType.FLOAT64 ? 1e-10 : 1e-4;
            for (String k : cpu.keySet()) {
                GradCheck.assertClose(cpu.get(k), gpu.get(k), tol, tol, t + " " + k);
            }
        }
    }

    /** fill, seeded random draws and dtype-converting copies on device arrays (staged through the host). */
    @Test
    void fillRandomAndConvertingCopiesOnTheGpu() {
        Context gpu = Context.gpu(0);
        dev.kiln.ndarray.Shape shape = new dev.kiln.ndarray.Shape(3, 5);
        try (NDArray f = NDArray.full(shape, 2.5, DType.FLOAT32, gpu); NDArray fh = f.copyTo(Context.cpu());
             NDArray u = NDArray.randomUniform(-1, 1, shape, DType.FLOAT32, gpu, 7);
             NDArray uc = NDArray.randomUniform(-1, 1, shape, DType.FLOAT32, Context.cpu(), 7);
             NDArray uh = u.copyTo(Context.cpu());
             NDArray u64 = u.asType(DType.FLOAT64); NDArray u64h = u64.copyTo(Context.cpu());
             NDArray back = NDArray.zeros(shape, DType.FLOAT32, gpu); NDArray backh = u64h.copyTo(back).copyTo(Context.cpu())) {
            double[] want = new double[15];
            java.util.Arrays.fill(want, 2.5);
            org.junit.jupiter.api.Assertions.assertArrayEquals(want, fh.toDoubleArray(), "full on gpu(0)");
            org.junit.jupiter.api.Assertions.assertArrayEquals(uc.toDoubleArray(), uh.toDoubleArray(), "seeded uniform: gpu(0) vs cpu");
            org.junit.jupiter.api.Assertions.assertEquals(DType.FLOAT64, u64h.dtype());
            org.junit.jupiter.api.Assertions.assertArrayEquals(uh.toDoubleArray(), u64h.toDoubleArray(), "float32 -> float64 on gpu(0)");
            org.junit.jupiter.api.Assertions.assertArrayEquals(uh.toDoubleArray(), backh.toDoubleArray(), "float64 cpu -> float32 gpu(0)");
        }
    }

    /** Accuracy on gpu(0) predictions (argmax on the device, one index per example copied back) counts as on the CPU. */
    @Test
    void accuracyOnGpuPredictionsCountsAsOnTheCpu() {
        Random r = new Random(3);
        float[] p = new float[128 * 10];
        float[] l = new float[128];
        for (int i = 0; i < p.length; i++) {
            p[i] = r.nextInt(5) * 0.25f;  // ties: the first index wins on both
        }
        for (int i = 0; i < l.length; i++) {
            l[i] = r.nextInt(10);
        }
        try (NDArray pc = NDArray.create(p, 128, 10); NDArray pg = pc.copyTo(Context.gpu(0)); NDArray lc = NDArray.create(l, 128)) {
            dev.kiln.metric.Accuracy onCpu = new dev.kiln.metric.Accuracy();
            dev.kiln.metric.Accuracy onGpu = new dev.kiln.metric.Accuracy();
            onCpu.update(lc, pc);
            onGpu.update(lc, pg);
            org.junit.jupiter.api.Assertions.assertEquals(onCpu.sumMetric(), onGpu.sumMetric(), 0, "correct predictions");
            org.junit.jupiter.api.Assertions.assertEquals(128, onGpu.numInst(), 0);
        }
    }

    /**
     * Host-device copies through the pinned staging slots keep every byte: sizes around the slot
     * limits (70 MiB is two chunks of a 64 MiB slot), more copies queued than there are slots, and
     * each host source overwritten as soon as its copy returns (the copy must have taken it by then).
     */
    @Test
    void hostDeviceCopiesKeepEveryByte() {
        Random r = new Random(11);
        java.util.List<NDArray> onGpu = new java.util.ArrayList<>();
        java.util.List<byte[]> want = new java.util.ArrayList<>();
        try {
            for (int round = 0; round < 3; round++) {
                for (long n : new long[] {1, 3, 255, 4096 + 7, (1 << 20) + 5, round == 0 ? (70L << 20) + 13 : 9}) {
                    byte[] b = new byte[(int) n];
                    r.nextBytes(b);
                    try (NDArray host = NDArray.fromBytes(b, new dev.kiln.ndarray.Shape(n), DType.UINT8, Context.cpu())) {
                        onGpu.add(host.copyTo(Context.gpu(0)));
                        host.fill(7);
                    }
                    want.add(b);
                }
            }
            for (int i = 0; i < want.size(); i++) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(want.get(i), onGpu.get(i).toBytes(), "copy " + i);
            }
            // device -> device, then back
            try (NDArray twice = onGpu.get(4).copy()) {
                org.junit.jupiter.api.Assertions.assertArrayEquals(want.get(4), twice.toBytes());
            }
        } finally {
            onGpu.forEach(NDArray::close);
        }
    }

    /**
     * KVStore {@code device} with GPU values keeps the key, the sum, Adam's update and its states on
     * gpu(0) (after the first push); {@code local} with the same values on the CPU updates on the
     * CPU. Weights after three pushes and the saved states agree; states saved from the GPU store
     * load into a fresh CPU store.
     */
    @Test
    void deviceStoreUpdatesOnTheGpuAsTheLocalStoreOnTheCpu() throws java.io.IOException {
        Random r = new Random(21);
        float[] w0 = new float[4096];
        float[][] grads = new float[3][4096];
        for (int i = 0; i < w0.length; i++) {
            w0[i] = (float) r.nextGaussian();
            for (float[] g : grads) {
                g[i] = (float) r.nextGaussian();
            }
        }
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("kiln-kv");
        float[][] got = new float[2][];
        for (int t = 0; t < 2; t++) {
            Context ctx = t == 0 ? Context.cpu() : Context.gpu(0);
            try (dev.kiln.kvstore.KVStore kv = dev.kiln.kvstore.KVStore.create(t == 0 ? "local" : "device");
                 NDArray init = NDArray.create(w0, 4096); NDArray out = NDArray.zeros(new dev.kiln.ndarray.Shape(4096), DType.FLOAT32, ctx)) {
                kv.setOptimizer(dev.kiln.optimizer.Optimizers.create("adam", Map.of("learning_rate", 0.01, "wd", 0.001)));
                kv.init(List.of("w"), List.of(init));
                for (float[] g : grads) {
                    try (NDArray h = NDArray.create(g, 4096); NDArray gd = h.copyTo(ctx)) {
                        kv.pushPull(List.of("w"), List.of(List.of(gd)), List.of(List.of(out)));
                    }
                }
                got[t] = out.toFloatArray();
                kv.saveOptimizerStates(dir.resolve("s" + t));
            }
        }
        org.junit.jupiter.api.Assertions.assertArrayEquals(got[0], got[1], 1e-6f, "weights after three Adam steps");
        try (dev.kiln.kvstore.KVStore kv = dev.kiln.kvstore.KVStore.create("local"); NDArray init = NDArray.create(w0, 4096)) {
            kv.setOptimizer(dev.kiln.optimizer.Optimizers.create("adam", Map.of("learning_rate", 0.01, "wd", 0.001)));
            kv.init(List.of("w"), List.of(init));
            kv.loadOptimizerStates(dir.resolve("s1"));
            try (NDArray g = NDArray.create(grads[0], 4096)) {
                kv.push(List.of("w"), List.of(List.of(g)));
            }
        }
        for (String f : new String[] {"s0", "s1"}) {
            java.nio.file.Files.deleteIfExists(dir.resolve(f));
        }
        java.nio.file.Files.deleteIfExists(dir);
    }

    /**
     * Every metric with a device path (accuracy, top-k, cross-entropy, NLL, perplexity, MSE, MAE,
     * RMSE, loss) on float32 and float16 predictions on gpu(0): the same counts and sums as the
     * host path on the CPU, held on the GPU until read.
     */
    @Test
    void metricsReduceOnTheGpuAsOnTheHost() {
        dev.kiln.metric.DeviceMetricTest.checkOn(Context.gpu(0));
    }

    /**
     * A fused optimizer update (SGD momentum and Adam) on gpu(0): recorded as a CUDA graph at the
     * second run with the same values, replayed at the third, eager again when the values change,
     * and every run bit for bit equal to the same updates invoked one by one.
     */
    @Test
    void fusedUpdateReplaysAGraphWithTheEagerBits() {
        dev.kiln.optimizer.FusedUpdateTest.checkReplaysOn(Context.gpu(0));
    }

    /**
     * An SGD-momentum Updater (what Module.update runs) on gpu(0): the same weights as on the CPU
     * at every step, its fused update replayed as a CUDA graph from the second step with the same
     * learning rate, eager again after a change of learning rate.
     */
    @Test
    void updaterReplaysItsFusedUpdateOnTheGpu() {
        dev.kiln.optimizer.UpdaterTest.checkGraphsOn(Context.gpu(0));
    }

    /**
     * Three trainers (two MLPs, a LeNet) on gpu(0) at once, one per thread, each recording its
     * passes and its fused update as CUDA graphs while the others run and a side thread copies and
     * computes on the device: each trainer's results equal its run alone, bit for bit.
     */
    @Test
    void trainersOnOneGpuAtOnceMatchEachRunAlone() throws Exception {
        dev.kiln.reliability.ConcurrentTrainingTest.checkOn(Context.gpu(0));
    }

    /** Every loss operator's GPU gradient scales with the executor's loss scale (the CPU test's checks on gpu(0)). */
    @Test
    void lossScaleReachesEveryLossOperatorOnTheGpu() {
        dev.kiln.executor.LossScaleTest.checkOn(Context.gpu(0));
        dev.kiln.executor.LossScaleTest.checkHeadsOn(Context.gpu(0));
    }
}
