package dev.kiln.module;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.examples.CnnNets;
import dev.kiln.examples.MnistMlp;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.Cifar10;
import dev.kiln.io.DataIter;
import dev.kiln.io.MNISTIter;
import dev.kiln.io.ResizeIter;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Amp;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

/**
 * Automatic mixed precision end to end: {@link Amp#convertSymbol} puts the casts where MXNet's
 * pass puts them, the converted MLP trains on real MNIST in float16 (with a loss scaler) and in
 * bfloat16 to the float32 network's accuracy, a converted CIFAR ResNet (BatchNorm on float16
 * data, residual additions through amp_multicast) follows the float32 run, and checkpoints are
 * written without the casts and load into the float32 network.
 */
@ExtendWith(NoLeaks.class)
class AmpTrainingTest {
    @TempDir
    Path tmp;

    static final Path MNIST = Path.of("data/mnist");

    static DataIter mnist(String images, String labels, int batches) throws java.io.IOException {
        DataIter it = MNISTIter.builder().setImage(MNIST.resolve(images)).setLabel(MNIST.resolve(labels)).setBatchSize(100)
                .optFlat(true).optShuffle(false).build();
        return batches > 0 ? new ResizeIter(it, batches) : it;
    }

    /** Node names and ops of a symbol's JSON, in order. */
    static Map<String, String> nodes(Symbol s) {
        Map<String, String> m = new LinkedHashMap<>();
        java.util.regex.Matcher x = java.util.regex.Pattern.compile("\"op\": \"([^\"]+)\",\\s*\"name\": \"([^\"]+)\"").matcher(s.toJson());
        while (x.find()) {
            m.put(x.group(2), x.group(1));
        }
        return m;
    }

    @Test
    void castsGoWhereMxnetPutsThem() {
        Symbol net = MnistMlp.network();
        Symbol amp = Amp.convertSymbol(net, DType.FLOAT16);
        Map<String, String> n = nodes(amp);
        // every FullyConnected input (data, weight, bias) is cast to float16, each entry once
        for (String in : List.of("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "fc3_weight", "fc3_bias")) {
            assertEquals("amp_cast", n.get(in + "_amp_cast_float16"), in + " in " + n);
        }
        // as in MXNet, fc2's float16 input from relu1 is cast too (a same-type cast, which the planner aliases) ...
        assertEquals("amp_cast", n.get("relu1_0_amp_cast_float16"), n.toString());
        // ... and the float32-only SoftmaxOutput gets its inputs cast back
        assertEquals("amp_cast", n.get("fc3_0_amp_cast_float32"), n.toString());
        assertEquals("amp_cast", n.get("softmax_label_amp_cast_float32"), n.toString());
        assertEquals(net.listArguments(), amp.listArguments(), "the casts add no arguments");

        InferResult t = amp.inferType(Map.of("data", DType.FLOAT32));
        assertEquals(List.of(DType.FLOAT32), t.outTypes(), "SoftmaxOutput runs in float32");
        t.argTypes().forEach(d -> assertEquals(DType.FLOAT32, d, "parameters stay float32"));
        InferResult in = amp.getInternals().inferType(Map.of("data", DType.FLOAT32));
        List<String> outs = amp.getInternals().listOutputs();
        assertEquals(DType.FLOAT16, in.outTypes().get(outs.indexOf("fc1_output")));
        assertEquals(DType.FLOAT16, in.outTypes().get(outs.indexOf("relu2_output")));

        // removing the casts gives the original graph back, byte for byte
        assertEquals(net.toJson(), amp.removeAmpCast().toJson());
        assertSame(net, net.removeAmpCast(), "nothing to remove");
        assertThrows(IllegalArgumentException.class, () -> Amp.convertSymbol(net, DType.FLOAT64));
    }

    @Test
    void widestTypeOpsGetOneMulticastAndExclusionsStayAsTheyAre() {
        Symbol net = CnnNets.cifarResNet(1);
        Symbol amp = Amp.convertSymbol(net, DType.BFLOAT16);
        Map<String, String> n = nodes(amp);
        long multicasts = n.values().stream().filter("amp_multicast"::equals).count();
        assertEquals(3, multicasts, "one per residual addition: " + n);
        assertEquals("amp_cast", n.get("data_amp_cast_bfloat16"));
        // an excluded convolution keeps its float32 inputs
        Symbol ex = Amp.convertSymbol(net, DType.FLOAT16, Amp.TARGET_DTYPE_OPS, Amp.FP32_OPS, Amp.WIDEST_TYPE_OPS,
                Amp.CONDITIONAL_FP32_OPS, Set.of("stem_conv"));
        assertFalse(nodes(ex).containsKey("data_amp_cast_float16"), "stem_conv is excluded");
        InferResult in = amp.getInternals().inferType(Map.of("data", DType.FLOAT32));
        List<String> outs = amp.getInternals().listOutputs();
        assertEquals(DType.BFLOAT16, in.outTypes().get(outs.indexOf("stem_bn_output")), "BatchNorm keeps bfloat16 data");
        assertEquals(DType.FLOAT32, in.auxTypes().get(0), "and float32 statistics");
    }

    /** Test accuracy of the MNIST MLP after one epoch on 20,000 images, float32 or AMP. */
    static double fitMlp(DType amp, Path checkpoint) throws Exception {
        Symbol net = amp == null ? MnistMlp.network() : Amp.convertSymbol(MnistMlp.network(), amp);
        try (DataIter train = mnist("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 200);
             DataIter test = mnist("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 0);
             Module mod = new Module(net)) {
            Initializer.seed(5);
            mod.bind(train.provideData(), train.provideLabel());
            mod.initParams(new Xavier());
            if (amp == DType.FLOAT16) {
                mod.setLossScaler(new LossScaler());
            }
            mod.fit(train, new BaseModule.FitArgs().numEpoch(1).optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9)));
            mod.getParams().get(0).values().forEach(p -> assertEquals(DType.FLOAT32, p.dtype(), "master weights are float32"));
            if (checkpoint != null) {
                mod.saveCheckpoint(checkpoint.toString(), 1, false);
            }
            return mod.score(test, "acc").get(0).getValue();
        }
    }

    @Test
    void mlpTrainsInFloat16AndBfloat16ToTheFloat32Accuracy() throws Exception {
        double fp32 = fitMlp(null, null);
        Path prefix = tmp.resolve("amp-mlp");
        double fp16 = fitMlp(DType.FLOAT16, prefix);
        double bf16 = fitMlp(DType.BFLOAT16, null);
        System.out.printf("MNIST MLP, 1 epoch of 20,000 images: test accuracy float32 %.4f, AMP float16 %.4f, AMP bfloat16 %.4f%n",
                fp32, fp16, bf16);
        assertTrue(fp32 > 0.94, "float32 " + fp32);
        assertTrue(Math.abs(fp16 - fp32) < 0.01, "float16 " + fp16 + " vs float32 " + fp32);
        assertTrue(Math.abs(bf16 - fp32) < 0.015, "bfloat16 " + bf16 + " vs float32 " + fp32);

        // the checkpoint holds the float32 network (no casts) and float32 weights; it scores the same in float32
        String json = Files.readString(Path.of(prefix + "-symbol.json"));
        assertFalse(json.contains("amp_cast"), json);
        assertEquals(MnistMlp.network().toJson(), json);
        try (DataIter test = mnist("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 0);
             Module loaded = Module.load(prefix.toString(), 1)) {
            loaded.bind(test.provideData(), test.provideLabel(), false, false, false, null, "write");
            double acc = loaded.score(test, "acc").get(0).getValue();
            assertTrue(Math.abs(acc - fp16) < 0.005, "float32 scoring of the float16-trained weights " + acc + " vs " + fp16);
        }
    }

    /**
     * Parameter gradients of a CIFAR ResNet-8 on one batch of 32 real images (seeded Gaussian
     * weights, loss scale 1024), each data value multiplied by (1 + noise * N(0,1)).
     */
    static Map<String, float[]> resnetGrads(Symbol net, Cifar10.Data data, double noise) {
        Map<String, long[]> shapes = Map.of("data", new long[] {32, 3, 32, 32}, "softmax_label", new long[] {32});
        float[] images = java.util.Arrays.copyOf(data.images(), 32 * 3 * 32 * 32);
        java.util.Random rn = new java.util.Random(9);
        for (int i = 0; i < images.length; i++) {
            images[i] *= (float) (1 + noise * rn.nextGaussian());
        }
        try (dev.kiln.executor.Executor ex = dev.kiln.executor.Executor.simpleBind(net, dev.kiln.ndarray.Context.cpu(), shapes,
                dev.kiln.executor.GradReq.WRITE)) {
            java.util.Random r = new java.util.Random(3);
            for (Map.Entry<String, NDArray> e : ex.argDict().entrySet()) {
                float[] v = new float[(int) e.getValue().size()];
                if (e.getKey().equals("data")) {
                    v = images;
                } else if (e.getKey().equals("softmax_label")) {
                    v = java.util.Arrays.copyOf(data.labels(), 32);
                } else {
                    for (int i = 0; i < v.length; i++) {
                        v[i] = e.getKey().endsWith("gamma") ? 1 : (float) (0.1 * r.nextGaussian());
                    }
                }
                e.getValue().set(v);
            }
            ex.setLossScale(1024);
            ex.forward(true);
            ex.backward();
            Map<String, float[]> g = new LinkedHashMap<>();
            ex.gradDict().forEach((k, v) -> {
                if (v != null && !k.equals("data") && !k.equals("softmax_label")) {
                    g.put(k, v.toFloatArray());
                }
            });
            return g;
        }
    }

    static double sq(float[] a) {
        double s = 0;
        for (float x : a) {
            s += x * (double) x;
        }
        return s;
    }

    static double relDiff(float[] a, float[] b) {
        double num = 0, den = 0;
        for (int i = 0; i < a.length; i++) {
            num += (a[i] - b[i]) * (double) (a[i] - b[i]);
            den += a[i] * (double) a[i];
        }
        return Math.sqrt(num / Math.max(den, 1e-30));
    }

    /**
     * The gradients of a converted CIFAR ResNet (float16 convolutions, BatchNorm on float16 data,
     * residual additions through amp_multicast) differ from float32 by no more than float32's own
     * gradients move when the input images carry noise of the low-precision type's rounding size:
     * the network's gradient is that sensitive (BatchNorm's backward cancels), the AMP path adds no
     * error of its own.
     */
    @Test
    void cifarResNetGradientsAreWithinRoundingNoise() throws Exception {
        Path dir = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "cifar10-jpeg");
        assumeTrue(Files.exists(dir.resolve("data_batch_1.bin.gz")), "CIFAR-10 subset not available: " + dir);
        Cifar10.Data data = Cifar10.load(dir.resolve("data_batch_1.bin.gz"), 32);
        data.standardize();
        Map<String, float[]> ref = resnetGrads(CnnNets.cifarResNet(1), data, 0);
        for (DType t : List.of(DType.FLOAT16, DType.BFLOAT16)) {
            double unit = t == DType.FLOAT16 ? 0x1p-11 : 0x1p-8;  // half an ulp at 1: the rounding size
            Map<String, float[]> low = resnetGrads(Amp.convertSymbol(CnnNets.cifarResNet(1), t), data, 0);
            Map<String, float[]> noisy = resnetGrads(CnnNets.cifarResNet(1), data, unit);
            double worst = 0;
            for (String k : ref.keySet()) {
                double dLow = relDiff(ref.get(k), low.get(k));
                double dNoise = relDiff(ref.get(k), noisy.get(k));
                assertNotEquals(0.0, dLow, k + ": " + t + " really ran");
                assertTrue(dLow <= 2 * dNoise + 2 * unit, k + " " + t + ": gradient off by " + dLow + ", input noise moves it by " + dNoise);
                worst = Math.max(worst, dLow / (dNoise + unit));
            }
            System.out.printf("CIFAR ResNet-8 gradients, AMP %s: at most %.2fx the change from %.1e input noise in float32%n", t, worst,
                    unit);
        }
    }
}
