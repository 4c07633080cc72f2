package dev.kiln.module;

import dev.kiln.callback.Callbacks;
import dev.kiln.init.Xavier;
import dev.kiln.io.DataBatch;
import dev.kiln.io.NDArrayIter;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code fit}, {@code score} and {@code predict} against the end-to-end vectors verified on MXNet
 * 1.9.1 (spec 10.2), for one device and for two CPU contexts; checkpoint resume; update paths.
 */
@ExtendWith(NoLeaks.class)
class ModuleFitTest {
    @TempDir
    Path tmp;

    static final float[] X = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f, 1.1f, 1.2f, 0.3f, 0.1f, 0.2f};
    static final float[] Y = {0, 1, 1, 0, 1};

    static NDArrayIter goldenIter() {
        return NDArrayIter.builder().setData(X, 5, 3).optLabel(Y).setBatchSize(2).build();
    }

    static Map<String, NDArray> goldenInit() {
        Map<String, NDArray> m = new LinkedHashMap<>();
        m.put("fc_weight", NDArray.create(new float[] {0.1f, -0.2f, 0.3f, -0.4f, 0.5f, -0.6f}, 2, 3));
        m.put("fc_bias", NDArray.create(new float[] {0.01f, -0.02f}, 2));
        return m;
    }

    private void golden(List<Context> ctx) {
        try (NDScope s = NDScope.open(); NDArrayIter it = goldenIter();
             Module mod = Module.builder(ModuleStateTest.fcSoftmax()).context(ctx).build()) {
            mod.fit(it, new BaseModule.FitArgs().numEpoch(2).optimizer("sgd")
                    .optimizerParams(Map.of("learning_rate", 0.5, "momentum", 0.9, "wd", 0.1))
                    .evalMetric(List.of("acc", "ce")).argParams(goldenInit()));
            Map<String, NDArray> p = mod.getParams().get(0);
            assertClose(new float[] {-0.0488457f, 0.0304333f, 0.1651963f, -0.0257265f, 0.0441389f, -0.2397685f},
                    p.get("fc_weight").toFloatArray(), 1e-6);
            assertClose(new float[] {0.0522852f, -0.0622851f}, p.get("fc_bias").toFloatArray(), 1e-6);

            List<Map.Entry<String, Double>> score = mod.score(it, List.of("acc", "ce"));
            assertEquals("accuracy", score.get(0).getKey());
            assertEquals(0.5, score.get(0).getValue(), 1e-9, "6 samples counted, pad included");
            assertEquals("cross-entropy", score.get(1).getKey());
            assertEquals(0.705588, score.get(1).getValue(), 1e-5);

            List<NDArray> pred = mod.predict(it);
            assertEquals(1, pred.size());
            assertArrayEquals(new long[] {5, 2}, pred.get(0).shape().dims(), "pad removed");
            assertClose(new float[] {0.557496f, 0.442504f, 0.584542f, 0.415458f, 0.611089f, 0.388911f, 0.636992f, 0.363008f,
                    0.546678f, 0.453322f}, pred.get(0).toFloatArray(), 2e-6);
            pred.forEach(NDArray::close);
        }
    }

    @Test
    void goldenFitOneDevice() {
        golden(List.of(Context.cpu()));
    }

    @Test
    void goldenFitTwoContextsMatchesOneDevice() {
        golden(List.of(Context.cpu(0), Context.cpu(1)));
    }

    @Test
    void twoContextsWithoutKvstoreUseLocalUpdaterPerDevice() {
        // kvstore 'device' with update_on_kvstore: same numbers as 'local'
        try (NDScope s = NDScope.open(); NDArrayIter it = goldenIter();
             Module mod = Module.builder(ModuleStateTest.fcSoftmax()).context(Context.cpu(0), Context.cpu(1)).build()) {
            mod.fit(it, new BaseModule.FitArgs().numEpoch(2).kvstore("device")
                    .optimizerParams(Map.of("learning_rate", 0.5, "momentum", 0.9, "wd", 0.1)).argParams(goldenInit()));
            assertTrue(mod.updateOnKvstore());
            assertClose(new float[] {0.0522852f, -0.0622851f}, mod.getParams().get(0).get("fc_bias").toFloatArray(), 1e-6);
        }
    }

    @Test
    void predictAndIterPredictRemovePadScoreKeepsIt() {
        try (NDScope s = NDScope.open(); NDArrayIter it = goldenIter(); Module mod = new Module(ModuleStateTest.fcSoftmax())) {
            mod.bind(it.provideData(), it.provideLabel(), false, false, false, null, "write");
            mod.setParams(goldenInit(), Map.of());
            int rows = 0;
            int batches = 0;
            for (BaseModule.PredictStep st : mod.iterPredict(it, null, true)) {
                rows += (int) st.outputs().get(0).shape().get(0);
                assertEquals(batches++, st.nbatch());
            }
            assertEquals(5, rows);
            assertEquals(3, batches);
            List<List<NDArray>> per = mod.predictBatches(it, 2, true);
            assertEquals(2, per.size(), "num_batch stops early");
            per.forEach(l -> l.forEach(NDArray::close));
            try (NDArray x = NDArray.create(X, 5, 3); NDArray out = mod.predict(x)) {
                assertArrayEquals(new long[] {5, 2}, out.shape().dims(), "predict(NDArray) reshapes to the array's batch");
            }
        }
    }

    /** Resuming fit from a checkpoint with optimizer states gives the parameters of an uninterrupted run. */
    @Test
    void resumeFromCheckpointEqualsUninterruptedRun() throws Exception {
        Symbol net = Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc2",
                Symbol.activation("relu1", Symbol.fullyConnected("fc1", Symbol.variable("data"), 8), "relu"), 2));
        Map<String, Object> opt = Map.of("learning_rate", 0.3, "momentum", 0.9, "wd", 0.01);
        float[] full;
        try (NDScope s = NDScope.open(); NDArrayIter it = goldenIter(); Module mod = new Module(net)) {
            dev.kiln.init.Initializer.seed(7);
            mod.fit(it, new BaseModule.FitArgs().numEpoch(4).optimizerParams(opt).initializer(new Xavier()));
            full = mod.getParams().get(0).get("fc1_weight").toFloatArray();
        }
        String prefix = tmp.resolve("ck").toString();
        try (NDScope s = NDScope.open(); NDArrayIter it = goldenIter(); Module mod = new Module(net)) {
            dev.kiln.init.Initializer.seed(7);
            mod.fit(it, new BaseModule.FitArgs().numEpoch(2).optimizerParams(opt).initializer(new Xavier())
                    .epochEndCallback(Callbacks.moduleCheckpoint(mod, prefix, 1, true)));
        }
        assertTrue(Files.exists(Path.of(prefix + "-0002.states")));
        assertTrue(Files.exists(Path.of(prefix + "-symbol.json")));
        try (NDScope s = NDScope.open(); NDArrayIter it = goldenIter(); Module mod = Module.load(prefix, 2, true, null)) {
            mod.fit(it, new BaseModule.FitArgs().beginEpoch(2).numEpoch(4).optimizerParams(opt));
            assertClose(full, mod.getParams().get(0).get("fc1_weight").toFloatArray(), 1e-6);
        }
        // without the optimizer states the momentum restarts and the result differs
        try (NDScope s = NDScope.open(); NDArrayIter it = goldenIter(); Module mod = Module.load(prefix, 2, false, null)) {
            mod.fit(it, new BaseModule.FitArgs().beginEpoch(2).numEpoch(4).optimizerParams(opt));
            float[] w = mod.getParams().get(0).get("fc1_weight").toFloatArray();
            double diff = 0;
            for (int i = 0; i < w.length; i++) {
                diff = Math.max(diff, Math.abs(w[i] - full[i]));
            }
            assertTrue(diff > 1e-4, "momentum state matters: " + diff);
        }
    }

    /** Two CPU contexts train the MNIST MLP to the parameters of one context with the same total batch. */
    @Test
    void twoContextsMatchOneContextOnMnist() throws Exception {
        Path dir = Path.of("data/mnist");
        float[][] result = new float[2][];
        List<List<Context>> setups = List.of(List.of(Context.cpu()), List.of(Context.cpu(0), Context.cpu(1)));
        for (int run = 0; run < 2; run++) {
            try (NDScope s = NDScope.open();
                 dev.kiln.io.DataIter train = new dev.kiln.io.ResizeIter(dev.kiln.io.MNISTIter.builder()
                         .setImage(dir.resolve("train-images-idx3-ubyte.gz")).setLabel(dir.resolve("train-labels-idx1-ubyte.gz"))
                         .setBatchSize(64).optFlat(true).optShuffle(false).build(), 20);
                 Module mod = Module.builder(dev.kiln.examples.MnistMlp.network()).context(setups.get(run)).build()) {
                dev.kiln.init.Initializer.seed(99);
                mod.fit(train, new BaseModule.FitArgs().numEpoch(1).initializer(new Xavier())
                        .optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9, "wd", 1e-4)));
                result[run] = mod.getParams().get(0).get("fc1_weight").toFloatArray();
            }
        }
        double maxDiff = 0;
        double maxAbs = 0;
        for (int i = 0; i < result[0].length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(result[0][i] - result[1][i]));
            maxAbs = Math.max(maxAbs, Math.abs(result[0][i]));
        }
        assertTrue(maxDiff < 1e-5 * Math.max(1, maxAbs), "max |one - two contexts| = " + maxDiff);
    }

    /** save_params / load_params round trip with arg: and aux: names. */
    @Test
    void saveAndLoadParams() throws Exception {
        Path f = tmp.resolve("p.params");
        try (NDScope s = NDScope.open(); Module a = new Module(ModuleStateTest.fcSoftmax());
             Module b = new Module(ModuleStateTest.fcSoftmax())) {
            a.bind(ModuleStateTest.data(2, 3), ModuleStateTest.label(2));
            a.initParams(new Xavier());
            a.saveParams(f);
            Map<String, NDArray> raw = NDArray.load(f);
            assertEquals(List.of("arg:fc_weight", "arg:fc_bias"), new ArrayList<>(raw.keySet()));
            b.bind(ModuleStateTest.data(2, 3), ModuleStateTest.label(2));
            b.loadParams(f);
            assertArrayEquals(a.getParams().get(0).get("fc_weight").toFloatArray(), b.getParams().get(0).get("fc_weight").toFloatArray());
        }
    }

    static void assertClose(float[] expected, float[] actual, double tol) {
        assertEquals(expected.length, actual.length, "length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], tol, "element " + i);
        }
    }
}
