package dev.kiln.module;

import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Module state machine, its assertions (spec 1.8) and the behaviours of MXNet's test_module.py. */
@ExtendWith(NoLeaks.class)
class ModuleStateTest {

    static Symbol fcSoftmax() {
        return Symbol.softmaxOutput("softmax", Symbol.fullyConnected("fc", Symbol.variable("data"), 2));
    }

    static List<DataDesc> data(long... shape) {
        return List.of(new DataDesc("data", shape));
    }

    static List<DataDesc> label(long n) {
        return List.of(new DataDesc("softmax_label", new long[] {n}));
    }

    static DataBatch batch(float[] x, long[] shape, float[] y) {
        List<NDArray> d = new ArrayList<>(List.of(NDArray.create(x, shape).detach()));
        List<NDArray> l = y == null ? List.of() : new ArrayList<>(List.of(NDArray.create(y, y.length).detach()));
        return new DataBatch(d, l);
    }

    @Test
    void outOfOrderCallsFailClearly() {
        try (Module mod = new Module(fcSoftmax())) {
            IllegalStateException e = assertThrows(IllegalStateException.class, mod::initParams);
            assertTrue(e.getMessage().contains("call bind before initializing the parameters"), e.getMessage());
            assertThrows(IllegalStateException.class, mod::getParams);
            assertThrows(IllegalStateException.class, mod::dataShapes);
            mod.bind(data(4, 3), label(4));
            assertTrue(mod.isBinded());
            try (DataBatch b = batch(new float[12], new long[] {4, 3}, new float[4])) {
                assertThrows(IllegalStateException.class, () -> mod.forward(b, true));
                assertThrows(IllegalStateException.class, mod::getOutputs);
                mod.initParams();
                assertThrows(IllegalStateException.class, mod::update, "update before init_optimizer");
                assertThrows(IllegalStateException.class, mod::getInputGrads, "inputs_need_grad is false");
                mod.forward(b, true);
                mod.backward(null);
                mod.initOptimizer("sgd", Map.of("learning_rate", 0.1));
                mod.update();
                // second calls only warn
                mod.bind(data(4, 3), label(4));
                mod.initParams();
                mod.initOptimizer("sgd", Map.of("learning_rate", 0.1));
                assertTrue(mod.isOptimizerInitialized());
            }
        }
        try (Module mod = new Module(fcSoftmax())) {
            mod.bind(data(4, 3), label(4), false, false, false, null, "write");
            mod.initParams();
            try (DataBatch b = batch(new float[12], new long[] {4, 3}, new float[4])) {
                mod.forward(b, false);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> mod.backward(null));
                assertTrue(e.getMessage().contains("re-bind with for_training=True to run backward"), e.getMessage());
            }
        }
        try (Module mod = new Module(fcSoftmax())) {
            assertThrows(IllegalArgumentException.class, () -> mod.bind(data(4, 3), label(4), false, true, false, null, "write"));
            assertFalse(mod.isBinded());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> mod.bind(List.of(new DataDesc("x", new long[] {4, 3})), label(4)));
            assertTrue(e.getMessage().contains("don't match names specified by data_names"), e.getMessage());
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Module.builder(fcSoftmax()).dataNames("nope").build());
        assertTrue(e.getMessage().contains("nope") && e.getMessage().contains("data"), e.getMessage());
        // label names only warn
        Module.builder(fcSoftmax()).labelNames("not_a_label").build().close();
    }

    @Test
    void closedModuleThrowsAndCloseIsIdempotent() {
        Module mod = new Module(fcSoftmax());
        mod.bind(data(2, 3), label(2));
        mod.initParams();
        mod.close();
        mod.close();
        assertThrows(IllegalStateException.class, mod::getParams);
        assertThrows(IllegalStateException.class, () -> mod.bind(data(2, 3), label(2)));
    }

    @Test
    void paramNamesExcludeInputsInListArgumentsOrder() {
        try (Module mod = new Module(fcSoftmax())) {
            assertEquals(List.of("fc_weight", "fc_bias"), mod.paramNames());
            assertEquals(List.of("softmax_output"), mod.outputNames());
        }
    }

    /** test_module_set_params: the missing/extra rules. */
    @Test
    void setParamsMissingAndExtraRules() {
        try (NDScope s = NDScope.open(); Module mod = new Module(fcSoftmax())) {
            mod.bind(data(2, 3), label(2));
            Map<String, NDArray> good = new LinkedHashMap<>();
            good.put("fc_weight", NDArray.create(new float[] {1, 2, 3, 4, 5, 6}, 2, 3));
            good.put("fc_bias", NDArray.create(new float[] {7, 8}, 2));
            mod.setParams(good, Map.of());
            assertArrayEquals(new float[] {7, 8}, mod.getParams().get(0).get("fc_bias").toFloatArray());

            Map<String, NDArray> missing = new LinkedHashMap<>(good);
            missing.remove("fc_bias");
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> mod.setParams(missing, Map.of(), false, true, false));
            assertTrue(e.getMessage().contains("fc_bias is not presented"), e.getMessage());

            Map<String, NDArray> extra = new LinkedHashMap<>(good);
            extra.put("ext", NDArray.create(new float[] {1}, 1));
            assertThrows(IllegalArgumentException.class, () -> mod.setParams(extra, Map.of(), true, true, false));
            mod.setParams(extra, Map.of(), true, true, true);
            // init_params ignores extras silently
            mod.initParams(null, extra, Map.of(), false, true, false);
        }
    }

    /** test_module_input_grads: grads come back in data_names order. */
    @Test
    void inputGradsFollowDataNamesOrder() {
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Symbol c = Symbol.variable("c");
        Symbol sum = a.plus(b.mul(2)).plus(c.mul(3));
        try (NDScope s = NDScope.open();
             Module mod = Module.builder(sum).dataNames("b", "c", "a").labelNames(List.of()).build()) {
            mod.bind(List.of(new DataDesc("b", new long[] {5, 5}), new DataDesc("c", new long[] {5, 5}),
                    new DataDesc("a", new long[] {5, 5})), null, true, true, false, null, "write");
            mod.initParams();
            float[] ones = new float[25];
            java.util.Arrays.fill(ones, 1f);
            List<NDArray> in = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                in.add(NDArray.create(ones, 5, 5).detach());
            }
            try (DataBatch batch = new DataBatch(in, List.of())) {
                mod.forward(batch, true);
                mod.backward(List.of(NDArray.create(ones, 5, 5)));
                List<NDArray> g = mod.getInputGrads();
                assertEquals(2f, g.get(0).toFloatArray()[0]);
                assertEquals(3f, g.get(1).toFloatArray()[0]);
                assertEquals(1f, g.get(2).toFloatArray()[0]);
            }
        }
    }

    /** test_module_reshape: rescale_grad is fixed at init_optimizer (bias -1 then -3), two CPU contexts. */
    @Test
    void reshapeKeepsRescaleGrad() {
        Symbol sym = Symbol.fullyConnected("fc", Symbol.variable("data"), 20);
        try (NDScope s = NDScope.open();
             Module mod = Module.builder(sym).labelNames(List.of()).context(Context.cpu(0), Context.cpu(1)).build()) {
            mod.bind(data(7, 20), null, true, false, false, null, "write");
            mod.initParams();
            mod.initOptimizer("sgd", Map.of("learning_rate", 1.0));
            step(mod, 7);
            assertArrayEquals(new long[] {7, 20}, mod.getOutputs().get(0).shape().dims());
            for (float v : mod.getParams().get(0).get("fc_bias").toFloatArray()) {
                assertEquals(-1f, v, 1e-6);
            }
            step(mod, 14);
            assertArrayEquals(new long[] {14, 20}, mod.getOutputs().get(0).shape().dims());
            for (float v : mod.getParams().get(0).get("fc_bias").toFloatArray()) {
                assertEquals(-3f, v, 1e-6);
            }
        }
    }

    /** getParams over two contexts averages float64 parameters in float64 (it rounded them to float32). */
    @Test
    void float64ParametersAverageInFloat64OverContexts() {
        Symbol sym = Symbol.fullyConnected("fc", Symbol.variable("data"), 3);
        try (NDScope s = NDScope.open();
             Module mod = Module.builder(sym).labelNames(List.of()).context(Context.cpu(0), Context.cpu(1)).build()) {
            mod.bind(List.of(new DataDesc("data", new long[] {4, 5}, dev.kiln.ndarray.DType.FLOAT64, "NC")), null, true, false, false,
                    null, "write");
            mod.initParams();
            double[] w = new double[15];
            java.util.Arrays.fill(w, 0.1);
            NDArray wd = NDArray.create(w, 3, 5).asType(dev.kiln.ndarray.DType.FLOAT64);
            NDArray bd = NDArray.create(new double[] {1.0 / 3, 0.7, 1e-9}, 3).asType(dev.kiln.ndarray.DType.FLOAT64);
            mod.setParams(Map.of("fc_weight", wd, "fc_bias", bd), Map.of());
            // an update that changes nothing (learning rate 0, zero gradients) makes getParams read the devices
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.0));
            mod.update();
            Map<String, NDArray> args = mod.getParams().get(0);
            assertEquals(dev.kiln.ndarray.DType.FLOAT64, args.get("fc_weight").dtype());
            for (double v : args.get("fc_weight").toDoubleArray()) {
                assertEquals(0.1, v, 0.0);
            }
            assertArrayEquals(new double[] {1.0 / 3, 0.7, 1e-9}, args.get("fc_bias").toDoubleArray(), 0.0);
        }
    }

    private static void step(Module mod, int n) {
        float[] ones = new float[n * 20];
        java.util.Arrays.fill(ones, 1f);
        try (DataBatch b = new DataBatch(new ArrayList<>(List.of(NDArray.create(ones, n, 20).detach())), List.of());
             NDArray og = NDArray.create(ones, n, 20).detach()) {
            mod.forward(b, null);
            mod.backward(List.of(og));
            mod.update();
        }
    }

    /** test_module_layout: TNC data is split along axis 1; outputs merge along their __layout__'s batch axis. */
    @Test
    void tncLayoutSplitsAlongAxisOne() {
        Symbol sym = Symbol.activation("relu", Symbol.variable("data"), "relu").setAttr("__layout__", "TNC");
        long[] dshape = {3, 8, 7};
        float[] x = new float[3 * 8 * 7];
        for (int i = 0; i < x.length; i++) {
            x[i] = (i % 11) - 5;
        }
        try (NDScope s = NDScope.open();
             Module mod = Module.builder(sym).labelNames(List.of()).context(Context.cpu(0), Context.cpu(1)).build()) {
            mod.bind(List.of(new DataDesc("data", dshape, dev.kiln.ndarray.DType.FLOAT32, "TNC")), null, true, true, false, null,
                    "write");
            mod.initParams();
            try (DataBatch b = new DataBatch(new ArrayList<>(List.of(NDArray.create(x, dshape).detach())), List.of())) {
                mod.forward(b, null);
                float[] ones = new float[x.length];
                java.util.Arrays.fill(ones, 1f);
                mod.backward(List.of(NDArray.create(ones, dshape)));
            }
            NDArray out = mod.getOutputs().get(0);
            assertArrayEquals(dshape, out.shape().dims());
            float[] o = out.toFloatArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(Math.max(0, x[i]), o[i], "merged output element " + i + " (order restored along axis 1)");
            }
            for (NDArray part : mod.getOutputsPerDevice().get(0)) {
                assertArrayEquals(new long[] {3, 4, 7}, part.shape().dims());
            }
            float[] g = mod.getInputGrads().get(0).toFloatArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(x[i] > 0 ? 1f : 0f, g[i], "input gradient element " + i);
            }
        }
    }

    /** Splitting follows Python 3's round-half-even with the remainder on the last device. */
    @Test
    void batchSlicing() {
        assertArrayEquals(new long[][] {{0, 2}, {2, 5}}, DataParallelExecutorGroup.splitInputSlice(5, List.of(1.0, 1.0)));
        assertArrayEquals(new long[][] {{0, 3}, {3, 6}, {6, 10}},
                DataParallelExecutorGroup.splitInputSlice(10, List.of(1.0, 1.0, 1.0)));
        assertArrayEquals(new long[][] {{0, 2}, {2, 7}}, DataParallelExecutorGroup.splitInputSlice(7, List.of(1.0, 2.0)));
        assertThrows(IllegalArgumentException.class, () -> DataParallelExecutorGroup.splitInputSlice(6, List.of(1.0, 1.0, 1.0, 1.0)));
        assertThrows(IllegalArgumentException.class, () -> DataParallelExecutorGroup.splitInputSlice(2, List.of(1.0, 1.0, 1.0)));
    }

    /** grad_req='add' is never zeroed by update(). */
    @Test
    void gradReqAddAccumulates() {
        Symbol sym = Symbol.fullyConnected("fc", Symbol.variable("data"), 3);
        try (NDScope s = NDScope.open(); Module mod = Module.builder(sym).labelNames(List.of()).build()) {
            mod.bind(data(2, 4), null, true, false, false, null, "add");
            mod.initParams();
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.0));
            float[] ones = new float[8];
            java.util.Arrays.fill(ones, 1f);
            for (int i = 1; i <= 3; i++) {
                try (DataBatch b = new DataBatch(new ArrayList<>(List.of(NDArray.create(ones, 2, 4).detach())), List.of())) {
                    mod.forward(b, true);
                    mod.backward(List.of(NDArray.create(new float[] {1, 1, 1, 1, 1, 1}, 2, 3)));
                    mod.update();
                }
                NDArray g = mod.execGroup().executors().get(0).gradDict().get("fc_bias");
                assertEquals(2f * i, g.toFloatArray()[0], 1e-6);
            }
        }
    }

    /** With a shared module the parameter dictionaries are aliased. */
    @Test
    void sharedModuleAliasesParameters() {
        try (Module a = new Module(fcSoftmax()); Module b = new Module(fcSoftmax())) {
            a.bind(data(4, 3), label(4));
            a.initParams();
            b.bind(data(2, 3), label(2), true, false, false, a, "write");
            assertTrue(b.isParamsInitialized());
            assertSame(a.getParams().get(0), b.getParams().get(0));
            assertSame(a.execGroup().executors().get(0).argDict().get("fc_weight"),
                    b.execGroup().executors().get(0).argDict().get("fc_weight"));
        }
    }
}
