package dev.kiln.module;

import dev.kiln.init.Uniform;
import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.io.NDArrayIter;
import dev.kiln.metric.Accuracy;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SequentialModule (MXNet's sequential_module.py) against the equivalent single Module. */
@ExtendWith(NoLeaks.class)
class SequentialModuleTest {
    static final int N = 6;
    static final int IN = 5;

    /** data -> fc1(8) -> relu -> fc2(4) -> softmax: the reference network in one symbol. */
    static Symbol whole() {
        Symbol h = Symbol.activation("act1", Symbol.fullyConnected("fc1", Symbol.variable("data"), 8), "relu");
        Symbol o = Symbol.activation("act2", Symbol.fullyConnected("fc2", h, 6), "tanh");
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc3", o, 4));
    }

    /** The same network as three modules: fc1+relu | fc2+tanh (auto-wired input "h") | fc3+softmax (takes labels). */
    static SequentialModule chain() {
        Module m1 = Module.builder(Symbol.activation("act1", Symbol.fullyConnected("fc1", Symbol.variable("data"), 8), "relu"))
                .labelNames(List.of()).build();
        Module m2 = Module.builder(Symbol.activation("act2", Symbol.fullyConnected("fc2", Symbol.variable("h"), 6), "tanh"))
                .dataNames("h").labelNames(List.of()).build();
        Module m3 = Module.builder(Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc3", Symbol.variable("act2_output"), 4)))
                .dataNames("act2_output").build();
        return new SequentialModule().add(m1).add(m2, false, true).add(m3, true, false);
    }

    static float[] seq(int n, float scale) {
        return seq(n, scale, 0.3);
    }

    static float[] seq(int n, float scale, double phase) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (Math.sin(i * 1.7 + phase) * scale);
        }
        return v;
    }

    static Map<String, NDArray> params() {
        Map<String, NDArray> p = new LinkedHashMap<>();
        long[][] shapes = {{8, IN}, {8}, {6, 8}, {6}, {4, 6}, {4}};
        String[] names = {"fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "fc3_weight", "fc3_bias"};
        for (int i = 0; i < names.length; i++) {
            long n = new Shape(shapes[i]).size();
            p.put(names[i], NDArray.create(seq((int) n, 0.5f + 0.1f * i, i), shapes[i]));
        }
        return p;
    }

    private static DataBatch batch() {
        float[] x = seq(N * IN, 1.5f);
        float[] y = new float[N];
        for (int i = 0; i < N; i++) {
            y[i] = (i * 3) % 4;
        }
        return new DataBatch(new ArrayList<>(List.of(NDArray.create(x, N, IN).detach())),
                new ArrayList<>(List.of(NDArray.create(y, N).detach())));
    }

    private static List<DataDesc> data() {
        return List.of(new DataDesc("data", new long[] {N, IN}));
    }

    private static List<DataDesc> label() {
        return List.of(new DataDesc("softmax_label", new long[] {N}));
    }

    /** Same parameters: same outputs, parameter gradients and input gradients (1e-6); one SGD step gives the same parameters. */
    @Test
    void equalsTheSingleModule() {
        try (NDScope s = NDScope.open(); SequentialModule seq = chain(); Module one = new Module(whole())) {
            Map<String, NDArray> p = params();
            seq.bind(data(), label(), true, true, false, null, "write");
            one.bind(data(), label(), true, true, false, null, "write");
            seq.setParams(p, Map.of());
            one.setParams(p, Map.of());
            seq.initOptimizer("sgd", Map.of("learning_rate", 0.5, "momentum", 0.9));
            one.initOptimizer("sgd", Map.of("learning_rate", 0.5, "momentum", 0.9));
            for (int step = 0; step < 3; step++) {
                try (DataBatch b = batch()) {
                    seq.forwardBackward(b);
                    one.forwardBackward(b);
                    assertArrayEquals(one.getOutputs().get(0).toFloatArray(), seq.getOutputs().get(0).toFloatArray(), 1e-6f);
                    assertArrayEquals(one.getInputGrads().get(0).toFloatArray(), seq.getInputGrads().get(0).toFloatArray(), 1e-6f);
                    Map<String, NDArray> g1 = one.execGroup().executors().get(0).gradDict();
                    for (BaseModule m : seq.modules()) {
                        Map<String, NDArray> g2 = ((Module) m).execGroup().executors().get(0).gradDict();
                        for (String n : ((Module) m).paramNames()) {
                            assertArrayEquals(g1.get(n).toFloatArray(), g2.get(n).toFloatArray(), 1e-6f, "gradient of " + n);
                        }
                    }
                    seq.update();
                    one.update();
                }
            }
            Map<String, NDArray> a = one.getParams().get(0);
            Map<String, NDArray> b = seq.getParams().get(0);
            assertEquals(a.keySet(), b.keySet());
            for (String n : a.keySet()) {
                assertArrayEquals(a.get(n).toFloatArray(), b.get(n).toFloatArray(), 1e-6f, n);
            }
        }
    }

    /** Names, shapes and bind flags as MXNet sets them. */
    @Test
    void bindPropagatesShapesLabelsAndInputGrads() {
        try (SequentialModule seq = chain()) {
            assertEquals(List.of("data"), seq.dataNames());
            assertEquals(List.of("softmax_output"), seq.outputNames());
            seq.bind(data(), label());
            List<BaseModule> ms = seq.modules();
            assertTrue(!ms.get(0).inputsNeedGrad() && ms.get(1).inputsNeedGrad() && ms.get(2).inputsNeedGrad(),
                    "modules after the first need input gradients so backward chains");
            assertEquals(List.of(new DataDesc("h", new long[] {N, 8})), ms.get(1).dataShapes(), "auto wiring renames the data");
            assertNull(ms.get(0).labelShapes());
            assertEquals(label(), ms.get(2).labelShapes());
            assertEquals(label(), seq.labelShapes());
            assertArrayEquals(new long[] {N, 4}, seq.outputShapes().get(0).getValue());
            assertThrows(IllegalStateException.class, seq::getInputGrads);
        }
        try (SequentialModule seq = new SequentialModule()) {
            seq.add(Module.builder(Symbol.fullyConnected("fc", Symbol.variable("data"), 3)).labelNames(List.of()).build());
            seq.bind(data(), label());
            assertNull(seq.labelShapes(), "nobody takes labels -> no label shapes");
        }
        try (SequentialModule empty = new SequentialModule()) {
            assertThrows(IllegalStateException.class, () -> empty.bind(data(), label()));
        }
    }

    /** Two modules with the same parameter name are refused at init_params. */
    @Test
    void duplicatedParameterNamesAreRefused() {
        try (SequentialModule seq = new SequentialModule()) {
            seq.add(Module.builder(Symbol.fullyConnected("fc", Symbol.variable("data"), 5)).labelNames(List.of()).build());
            seq.add(Module.builder(Symbol.fullyConnected("fc", Symbol.variable("fc_output"), 5)).dataNames("fc_output")
                    .labelNames(List.of()).build());
            seq.bind(data(), null);
            IllegalStateException e = assertThrows(IllegalStateException.class, seq::initParams);
            assertTrue(e.getMessage().contains("Duplicated parameter names") && e.getMessage().contains("fc_weight"), e.getMessage());
        }
    }

    /** fit through BaseModule on real data (sklearn iris): accuracy well above chance. */
    @Test
    void fitsIris() throws IOException {
        Path f = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "sklearn", "iris.csv");
        List<String> lines = Files.readAllLines(f);
        List<float[]> rows = new ArrayList<>();
        for (String l : lines) {
            String[] t = l.split(",");
            try {
                float[] r = new float[t.length];
                for (int i = 0; i < t.length; i++) {
                    r[i] = Float.parseFloat(t[i].trim());
                }
                rows.add(r);
            } catch (NumberFormatException header) {
                // the header line
            }
        }
        int n = rows.size();
        float[] x = new float[n * 4];
        float[] y = new float[n];
        // interleave the classes (the file is sorted by class)
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        java.util.Collections.shuffle(order, new java.util.Random(5));
        for (int i = 0; i < n; i++) {
            float[] r = rows.get(order.get(i));
            System.arraycopy(r, 0, x, i * 4, 4);
            y[i] = r[4];
        }
        // standardize the four features
        for (int c = 0; c < 4; c++) {
            double mean = 0;
            double sq = 0;
            for (int i = 0; i < n; i++) {
                mean += x[i * 4 + c];
            }
            mean /= n;
            for (int i = 0; i < n; i++) {
                sq += (x[i * 4 + c] - mean) * (x[i * 4 + c] - mean);
            }
            double sd = Math.sqrt(sq / n);
            for (int i = 0; i < n; i++) {
                x[i * 4 + c] = (float) ((x[i * 4 + c] - mean) / sd);
            }
        }
        Module m1 = Module.builder(Symbol.activation("a1", Symbol.fullyConnected("f1", Symbol.variable("data"), 16), "relu"))
                .labelNames(List.of()).build();
        Module m2 = Module.builder(Symbol.softmaxOutput("softmax", Symbol.fullyConnected("f2", Symbol.variable("x"), 3)))
                .dataNames("x").build();
        try (NDArrayIter it = NDArrayIter.builder().setData(x, n, 4).optLabel(y).setBatchSize(10).build();
             SequentialModule seq = new SequentialModule().add(m1).add(m2, true, true)) {
            seq.fit(it, new BaseModule.FitArgs().numEpoch(30).initializer(new Uniform(0.3))
                    .optimizerParams(Map.of("learning_rate", 0.1, "momentum", 0.9)));
            double acc = seq.score(it, new Accuracy()).get(0).getValue();
            System.out.println("SequentialModule iris training accuracy " + acc);
            assertTrue(acc > 0.9, "accuracy " + acc);
        }
    }

    /** Module outputs feed the next module without copies of the batch labels; states stay on the right devices. */
    @Test
    void forwardWithoutLabelsForInference() {
        try (NDScope s = NDScope.open(); SequentialModule seq = chain(); Module one = new Module(whole())) {
            Map<String, NDArray> p = params();
            seq.bind(data(), null, false, false, false, null, "write");
            one.bind(data(), null, false, false, false, null, "write");
            seq.setParams(p, Map.of());
            one.setParams(p, Map.of());
            NDArray x = NDArray.create(seq(N * IN, 2f), N, IN);
            try (DataBatch b = new DataBatch(new ArrayList<>(List.of(x.copy().detach())), null)) {
                seq.forward(b, false);
                one.forward(b, false);
                assertArrayEquals(one.getOutputs().get(0).toFloatArray(), seq.getOutputs().get(0).toFloatArray(), 1e-6f);
            }
            assertThrows(IllegalStateException.class, () -> seq.backward(null));
            assertEquals(DType.FLOAT32, seq.getOutputs().get(0).dtype());
            assertEquals(Context.cpu(), seq.getOutputs().get(0).context());
        }
    }
}
