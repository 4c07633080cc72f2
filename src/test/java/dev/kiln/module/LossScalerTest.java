package dev.kiln.module;

import dev.kiln.examples.MnistMlp;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataIter;
import dev.kiln.io.MNISTIter;
import dev.kiln.io.ResizeIter;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Dynamic loss scaling on Module: exact in float32 (the same bits as no scaling on real MNIST, on
 * one and on two contexts), a NaN batch skipped with the weights and momentum untouched and the
 * scale halved, growth after the window, the scale reaching the executors, and bad arguments.
 */
@ExtendWith(NoLeaks.class)
class LossScalerTest {
    static final Path MNIST = Path.of("data/mnist");

    static DataIter mnist(int batches) {
        try {
            return mnistOrThrow(batches);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    static DataIter mnistOrThrow(int batches) throws java.io.IOException {
        return new ResizeIter(MNISTIter.builder().setImage(MNIST.resolve("train-images-idx3-ubyte.gz"))
                .setLabel(MNIST.resolve("train-labels-idx1-ubyte.gz")).setBatchSize(64).optFlat(true).optShuffle(false).build(),
                batches);
    }

    static Map<String, float[]> fit(List<Context> ctx, LossScaler scaler, int epochs) {
        try (NDScope s = NDScope.open(); DataIter train = mnist(30); Module mod = Module.builder(MnistMlp.network()).context(ctx).build()) {
            Initializer.seed(7);
            mod.bind(train.provideData(), train.provideLabel());
            mod.initParams(new Xavier());
            mod.setLossScaler(scaler);
            mod.fit(train, new BaseModule.FitArgs().numEpoch(epochs)
                    .optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9, "wd", 1e-4)));
            Map<String, float[]> out = new LinkedHashMap<>();
            mod.getParams().get(0).forEach((k, v) -> out.put(k, v.toFloatArray()));
            return out;
        }
    }

    /** Scaling by powers of two and dividing back is exact: the same bits as no scaler (the scale also grows once). */
    @Test
    void float32TrainingWithAScalerEqualsTrainingWithout() {
        for (List<Context> ctx : List.of(List.of(Context.cpu()), List.of(Context.cpu(0), Context.cpu(1)))) {
            Map<String, float[]> plain = fit(ctx, null, 2);
            LossScaler scaler = new LossScaler(1024, 2, 40, 1 << 20, 1);
            Map<String, float[]> scaled = fit(ctx, scaler, 2);
            assertEquals(2048, scaler.lossScale(), "60 clean steps with a window of 40 double the scale once");
            assertEquals(0, scaler.skippedSteps());
            plain.forEach((k, v) -> assertArrayEquals(v, scaled.get(k), k + " on " + ctx));
        }
    }

    /**
     * float16 parameters on two devices: each device's weight gradient (40000) is finite, their
     * sum (80000) is not in float16. The step is skipped (the sum is what the update would see),
     * the weights stay as they were and finite.
     */
    @Test
    void aFloat16GradientSumThatOverflowsAcrossDevicesIsSkipped() {
        dev.kiln.symbol.Symbol fc = dev.kiln.symbol.Symbol.create("FullyConnected", "fc", Map.of("num_hidden", "1", "no_bias", "True"),
                null, dev.kiln.symbol.Symbol.variable("data"));
        dev.kiln.symbol.Symbol loss = dev.kiln.symbol.Symbol.create("MakeLoss", "loss", Map.of("grad_scale", "20000"), null, fc);
        try (NDScope s = NDScope.open();
             Module mod = Module.builder(loss).labelNames(List.of()).context(Context.cpu(0), Context.cpu(1)).build()) {
            mod.bind(List.of(new dev.kiln.io.DataDesc("data", new long[] {4, 1}, dev.kiln.ndarray.DType.FLOAT16, "NC")), null, true,
                    false, false, null, "write");
            mod.initParams();
            NDArray w = NDArray.create(new float[] {0.5f}, 1, 1).asType(dev.kiln.ndarray.DType.FLOAT16);
            mod.setParams(Map.of("fc_weight", w), Map.of());
            mod.initOptimizer("local", "sgd", Map.of("learning_rate", 1e-6, "multi_precision", true), false);
            LossScaler scaler = new LossScaler(1, 2, 1000, 1 << 20, 1);
            mod.setLossScaler(scaler);
            NDArray ones = NDArray.create(new float[] {1, 1, 1, 1}, 4, 1).asType(dev.kiln.ndarray.DType.FLOAT16);
            mod.forwardBackward(new DataBatch(List.of(ones), List.of()));
            mod.update();
            assertEquals(1, scaler.skippedSteps(), "the summed float16 gradient overflows");
            assertEquals(0.5f, mod.getParams().get(0).get("fc_weight").toFloatArray()[0], 0f);
        }
    }

    /** Two devices, a scaler and a fixed parameter (no gradient): the update trains the others. */
    @Test
    void aFixedParameterOnTwoDevicesWithAScalerTrainsTheOthers() {
        dev.kiln.symbol.Symbol fc1 = dev.kiln.symbol.Symbol.create("FullyConnected", "fc1", Map.of("num_hidden", "4"), null,
                dev.kiln.symbol.Symbol.variable("data"));
        dev.kiln.symbol.Symbol fc2 = dev.kiln.symbol.Symbol.create("FullyConnected", "fc2", Map.of("num_hidden", "1"), null, fc1);
        dev.kiln.symbol.Symbol loss = dev.kiln.symbol.Symbol.create("MakeLoss", "loss", Map.of(), null, fc2);
        try (NDScope s = NDScope.open();
             Module mod = Module.builder(loss).labelNames(List.of()).fixedParamNames("fc1_weight")
                     .context(Context.cpu(0), Context.cpu(1)).build()) {
            mod.bind(List.of(new dev.kiln.io.DataDesc("data", new long[] {4, 3})), null, true, false, false, null, "write");
            mod.initParams();
            mod.initOptimizer("local", "sgd", Map.of("learning_rate", 0.1), false);
            mod.setLossScaler(new LossScaler());
            float[] w1 = mod.getParams().get(0).get("fc1_weight").toFloatArray();
            float[] b2 = mod.getParams().get(0).get("fc2_bias").toFloatArray();
            mod.forwardBackward(new DataBatch(List.of(NDArray.create(new float[12], 4, 3)), List.of()));
            mod.update();
            assertArrayEquals(w1, mod.getParams().get(0).get("fc1_weight").toFloatArray(), "the fixed parameter");
            assertFalse(java.util.Arrays.equals(b2, mod.getParams().get(0).get("fc2_bias").toFloatArray()), "fc2_bias trained");
        }
    }

    /** A batch with a NaN pixel: its step is skipped (weights and momentum as before), the scale halves; the next batch trains. */
    @Test
    void aNanBatchIsSkippedAndHalvesTheScale() {
        try (NDScope s = NDScope.open(); DataIter train = mnist(3); Module mod = Module.builder(MnistMlp.network()).build()) {
            Initializer.seed(7);
            mod.bind(train.provideData(), train.provideLabel());
            mod.initParams(new Xavier());
            mod.initOptimizer("local", "sgd", Map.of("learning_rate", 0.1, "momentum", 0.9), false);
            LossScaler scaler = new LossScaler();
            mod.setLossScaler(scaler);
            List<DataBatch> batches = new ArrayList<>();  // copies: the iterator may reuse its arrays
            while (train.hasNext()) {
                try (DataBatch b = train.next()) {  // the iterator hands each batch over
                    batches.add(new DataBatch(List.of(b.data().get(0).copyTo(Context.cpu())), List.of(b.label().get(0).copyTo(Context.cpu()))));
                }
            }
            mod.forwardBackward(batches.get(0));
            mod.update();
            Map<String, float[]> before = params(mod);
            Map<String, float[]> momBefore = states(mod);
            float[] x = batches.get(1).data().get(0).toFloatArray();
            x[123] = Float.NaN;
            try (NDArray poisoned = NDArray.create(x, batches.get(1).data().get(0).shape().dims())) {
                DataBatch bad = new DataBatch(List.of(poisoned), batches.get(1).label());
                mod.forwardBackward(bad);
                mod.update();
            }
            assertEquals(1, scaler.skippedSteps());
            assertEquals(32768, scaler.lossScale());
            Map<String, float[]> after = params(mod);
            before.forEach((k, v) -> assertArrayEquals(v, after.get(k), k + " untouched by the skipped step"));
            Map<String, float[]> momAfter = states(mod);
            momBefore.forEach((k, v) -> assertArrayEquals(v, momAfter.get(k), k + " momentum untouched"));
            mod.execGroup().executors().forEach(ex -> assertEquals(65536, ex.lossScale(), "set before the skipped backward"));
            mod.forwardBackward(batches.get(2));
            mod.execGroup().executors().forEach(ex -> assertEquals(32768, ex.lossScale(), "the halved scale reaches the executor"));
            mod.update();
            assertEquals(1, scaler.skippedSteps());
            assertFalse(java.util.Arrays.equals(before.get("fc1_weight"), params(mod).get("fc1_weight")), "the next step trains");
        }
    }

    @Test
    void scaleGrowsAfterTheWindowUpToItsMaximumAndFallsToItsMinimum() {
        LossScaler s = new LossScaler(4, 2, 3, 16, 1);
        try (NDScope scope = NDScope.open()) {
            List<NDArray> ok = List.of(NDArray.create(new float[] {1, 2}, 2));
            List<NDArray> bad = List.of(NDArray.create(new float[] {1, Float.POSITIVE_INFINITY}, 2));
            double[] want = {4, 4, 8, 8, 8, 16, 16, 16, 16};
            for (double w : want) {
                assertFalse(s.checkOverflow(ok));
                assertEquals(w, s.lossScale());
            }
            for (double w : new double[] {8, 4, 2, 1, 1}) {
                assertTrue(s.checkOverflow(bad));
                assertEquals(w, s.lossScale());
            }
            assertEquals(5, s.skippedSteps());
            // an overflow resets the run of clean steps
            assertFalse(s.checkOverflow(ok));
            assertFalse(s.checkOverflow(ok));
            assertTrue(s.checkOverflow(bad));
            assertFalse(s.checkOverflow(ok));
            assertFalse(s.checkOverflow(ok));
            assertEquals(1, s.lossScale());
        }
    }

    /** More arrays than one operator call takes (200): the flag gathers all of them; nulls are skipped. */
    @Test
    void overflowCheckCoversManyArrays() {
        try (NDScope scope = NDScope.open()) {
            List<NDArray> many = new ArrayList<>();
            for (int i = 0; i < 450; i++) {
                many.add(NDArray.create(new float[] {i, -i}, 2));
            }
            many.add(null);
            assertTrue(LossScaler.allFinite(many));
            many.set(301, NDArray.create(new float[] {0, Float.NaN}, 2));
            assertFalse(LossScaler.allFinite(many));
            assertTrue(LossScaler.allFinite(List.of()));
        }
    }

    @Test
    void badArgumentsThrow() {
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(0, 2, 10, 16, 1));
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(32, 2, 10, 16, 1));
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(4, 1, 10, 16, 1));
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(4, 2, 0, 16, 1));
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(4, Double.NaN, 10, 16, 1));
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(4, 2, 10, Double.POSITIVE_INFINITY, 1));
    }

    private static Map<String, float[]> params(Module mod) {
        Map<String, float[]> out = new LinkedHashMap<>();
        mod.getParams().get(0).forEach((k, v) -> out.put(k, v.toFloatArray()));
        return out;
    }

    private static Map<String, float[]> states(Module mod) {
        Map<String, float[]> out = new LinkedHashMap<>();
        mod.updater().states().forEach((k, v) -> {
            if (v instanceof NDArray a) {
                out.put(String.valueOf(k), a.toFloatArray());
            }
        });
        assertFalse(out.isEmpty(), "momentum states exist");
        return out;
    }
}
