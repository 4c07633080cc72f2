package dev.kiln.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.Engine;
import dev.kiln.examples.CnnNets;
import dev.kiln.examples.MnistFit;
import dev.kiln.examples.MnistMlp;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.DataIter;
import dev.kiln.io.MNISTIter;
import dev.kiln.io.ResizeIter;
import dev.kiln.module.BaseModule;
import dev.kiln.module.LossScaler;
import dev.kiln.module.Module;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Amp;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Training on the GPU end to end: Module.fit on real MNIST on {@code gpu(0)}, checkpoints written
 * from the GPU read back on the CPU, and CUDA graph replays that equal the eager pass bit for bit.
 * Needs a {@code -Pcuda} build and a CUDA device; skipped with the reason otherwise.
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuModuleTest {
    @TempDir
    Path tmp;

    @BeforeEach
    void needsGpu() {
        Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
    }

    private static Path mnist() {
        Path dir = Path.of("data/mnist");
        Assumptions.assumeTrue(Files.exists(dir.resolve("train-images-idx3-ubyte.gz")), "MNIST in data/mnist (run from the repository root)");
        return dir;
    }

    @Test
    void mnistFitOnGpuMatchesTheCpuRun() throws Exception {
        Path dir = mnist();
        MnistFit.Result gpu = MnistFit.fit(dir, 2, 128, 0.1, 0.9, 42, true, null, tmp.resolve("g").toString(), Context.gpu(0));
        MnistFit.Result cpu = MnistFit.fit(dir, 2, 128, 0.1, 0.9, 42, true, null, null, Context.cpu());
        System.out.printf("MNIST MLP 2 epochs: gpu(0) val acc %.4f at %.0f samples/s, cpu val acc %.4f at %.0f samples/s%n",
                gpu.validationAccuracy(), gpu.samplesPerSecond(), cpu.validationAccuracy(), cpu.samplesPerSecond());
        assertTrue(gpu.validationAccuracy() >= 0.96, "gpu validation accuracy " + gpu.validationAccuracy());
        assertEquals(cpu.validationAccuracy(), gpu.validationAccuracy(), 0.01, "gpu vs cpu validation accuracy");

        // the GPU checkpoint scores the same on the CPU
        try (MNISTIter val = MNISTIter.builder().setImage(dir.resolve("t10k-images-idx3-ubyte.gz"))
                .setLabel(dir.resolve("t10k-labels-idx1-ubyte.gz")).setBatchSize(100).optFlat(true).build();
             Module m = Module.load(tmp.resolve("g").toString(), 2, false, b -> b.context(Context.cpu()))) {
            m.bind(val.provideData(), val.provideLabel(), false, false, false, null, "write");
            m.initParams(null, null, null, false, false, false);
            double acc = m.score(val, "acc").get(0).getValue();
            assertEquals(gpu.validationAccuracy(), acc, 1e-3, "GPU checkpoint scored on the CPU");
        }
    }

    /** Test accuracy of the AMP MLP (float32 master weights) after 200 batches of 100 on {@code ctx}. */
    private static double fitAmp(Path dir, DType t, Context ctx) throws Exception {
        try (DataIter train = new ResizeIter(MNISTIter.builder().setImage(dir.resolve("train-images-idx3-ubyte.gz"))
                .setLabel(dir.resolve("train-labels-idx1-ubyte.gz")).setBatchSize(100).optFlat(true).build(), 200);
             MNISTIter test = MNISTIter.builder().setImage(dir.resolve("t10k-images-idx3-ubyte.gz"))
                     .setLabel(dir.resolve("t10k-labels-idx1-ubyte.gz")).setBatchSize(100).optFlat(true).build();
             Module mod = Module.builder(Amp.convertSymbol(MnistMlp.network(), t)).context(ctx).build()) {
            Initializer.seed(5);
            mod.bind(train.provideData(), train.provideLabel());
            mod.initParams(new Xavier());
            if (t == DType.FLOAT16) {
                mod.setLossScaler(new LossScaler());
            }
            mod.fit(train, new BaseModule.FitArgs().numEpoch(1)
                    .optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9)));
            return mod.score(test, "acc").get(0).getValue();
        }
    }

    /** Mixed precision on the GPU (cublasGemmEx in float16 / bfloat16) trains as on the CPU. */
    @Test
    void ampMlpTrainsOnTheGpuAsOnTheCpu() throws Exception {
        Path dir = mnist();
        for (DType t : List.of(DType.FLOAT16, DType.BFLOAT16)) {
            double gpu = fitAmp(dir, t, Context.gpu(0));
            double cpu = fitAmp(dir, t, Context.cpu());
            System.out.printf("AMP %s MNIST MLP, 200 batches: gpu(0) test acc %.4f, cpu %.4f%n", t, gpu, cpu);
            assertTrue(gpu >= 0.92, t + " gpu accuracy " + gpu);
            assertEquals(cpu, gpu, 0.01, t + " gpu vs cpu accuracy");
        }
    }

    /** Forward + backward three times on the same inputs: eager, recorded + replayed, replayed. */
    @Test
    void cudaGraphReplayEqualsTheEagerPassAndTheCpu() {
        Symbol[] nets = {MnistMlp.network(), CnnNets.lenet()};
        long[][] dataShapes = {{64, 784}, {32, 1, 28, 28}};
        for (int n = 0; n < nets.length; n++) {
            Symbol net = nets[n];
            Map<String, long[]> shapes = Map.of("data", dataShapes[n], "softmax_label", new long[] {dataShapes[n][0]});
            List<Map<String, double[]>> gpuPasses = passes(net, shapes, Context.gpu(0), 3);
            List<Map<String, double[]>> cpuPasses = passes(net, shapes, Context.cpu(), 1);
            for (String k : gpuPasses.get(0).keySet()) {
                assertArrayEquals(gpuPasses.get(0).get(k), gpuPasses.get(1).get(k), "net " + n + " " + k + ": recorded pass vs eager");
                assertArrayEquals(gpuPasses.get(0).get(k), gpuPasses.get(2).get(k), "net " + n + " " + k + ": replay vs eager");
                GradCheck.assertClose(cpuPasses.get(0).get(k), gpuPasses.get(0).get(k), 1e-3, 1e-5, "net " + n + " " + k + ": gpu vs cpu");
            }
        }
    }

    private static List<Map<String, double[]>> passes(Symbol net, Map<String, long[]> shapes, Context ctx, int count) {
        List<Map<String, double[]>> res = new ArrayList<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
        }
        Map<String, DType> types = new LinkedHashMap<>();
        shapes.keySet().forEach(k -> types.put(k, DType.FLOAT32));
        try (Executor ex = Executor.simpleBind(net, ctx, shapes, types, reqs, new Executor.Options())) {
            Random r = new Random(5);
            for (Map.Entry<String, NDArray> e : ex.argDict().entrySet()) {
                double[] v = new double[(int) e.getValue().size()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = e.getKey().equals("softmax_label") ? r.nextInt(10) : (float) (r.nextGaussian() * 0.1);
                }
                try (NDArray h = NDArray.create(v, e.getValue().shape().dims()); NDArray c = h.asType(DType.FLOAT32)) {
                    c.copyTo(e.getValue());
                }
            }
            for (int p = 0; p < count; p++) {
                ex.forward(true);
                ex.backward();
                Map<String, double[]> out = new LinkedHashMap<>();
                try (NDArray o = ex.outputs().get(0).copyTo(Context.cpu())) {
                    out.put("out", o.toDoubleArray());
                }
                for (Map.Entry<String, NDArray> g : ex.gradDict().entrySet()) {
                    if (reqs.get(g.getKey()) != GradReq.NULL) {
                        try (NDArray h = g.getValue().copyTo(Context.cpu())) {
                            out.put("d" + g.getKey(), h.toDoubleArray());
                        }
                    }
                }
                res.add(out);
            }
            if (ctx.isGpu()) {
                String report = ex.memoryReport().json();
                assertTrue(report.contains("\"recorded\":true"), "CUDA graphs recorded: " + report.substring(0, Math.min(600, report.length())));
            }
        }
        return res;
    }
}
