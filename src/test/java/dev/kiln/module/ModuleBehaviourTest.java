package dev.kiln.module;

import dev.kiln.io.DataBatch;
import dev.kiln.io.DataDesc;
import dev.kiln.io.DataIter;
import dev.kiln.io.NDArrayIter;
import dev.kiln.metric.Metrics;
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

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** More of MXNet's test_module.py: states, parameter-less modules, idx2name, batch references in fit, metrics per device. */
@ExtendWith(NoLeaks.class)
class ModuleBehaviourTest {

    /** test_module_states: state inputs are zero after bind; set_states(value) and set_states(states) change the outputs. */
    @Test
    void statesChangeTheNextOutputs() {
        Symbol data = Symbol.variable("data");
        Symbol state = Symbol.variable("state");
        Symbol out = Symbol.fullyConnected("fc", data.plus(state), 3);
        try (NDScope s = NDScope.open();
             Module mod = Module.builder(out).labelNames(List.of()).stateNames("state").build()) {
            // the state's shape is inferred from the data (states are not fed by the iterator)
            mod.bind(List.of(new DataDesc("data", new long[] {2, 4})), null, false, false, false, null, "write");
            mod.initParams(new dev.kiln.init.Uniform(0.5));
            float[] x = {1, 2, 3, 4, 5, 6, 7, 8};
            float[] zero = forward(mod, x);
            mod.setStates(null, 1.0);
            float[] one = forward(mod, x);
            assertNotEquals(zero[0], one[0]);
            List<List<NDArray>> st = mod.getStates();
            assertEquals(1f, st.get(0).get(0).toFloatArray()[0]);
            List<List<NDArray>> fresh = List.of(List.of(NDArray.create(new float[8], 2, 4)));
            mod.setStates(fresh, null);
            float[] again = forward(mod, x);
            assertEquals(zero[0], again[0], 1e-6);
            assertThrows(IllegalArgumentException.class, () -> mod.setStates(fresh, 1.0));
        }
    }

    private static float[] forward(Module mod, float[] x) {
        try (DataBatch b = new DataBatch(new ArrayList<>(List.of(NDArray.create(x, 2, 4).detach())), List.of())) {
            mod.forward(b, false);
            return mod.getOutputs().get(0).toFloatArray();
        }
    }

    /** test_module_update_no_pragram: a parameter-less symbol can init the optimizer and update. */
    @Test
    void parameterLessModuleUpdates() {
        Symbol sym = Symbol.variable("data").mul(2.0);
        try (NDScope s = NDScope.open(); Module mod = Module.builder(sym).labelNames(List.of()).build()) {
            mod.bind(List.of(new DataDesc("data", new long[] {3, 2})), null);
            mod.initParams();
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.1));
            try (DataBatch b = new DataBatch(new ArrayList<>(List.of(NDArray.create(new float[6], 3, 2).detach())), List.of())) {
                mod.forward(b, true);
                mod.backward(List.of(NDArray.create(new float[6], 3, 2)));
                mod.update();
            }
        }
    }

    /** test_module_init_optimizer: idx2name maps i to param_names[i] on one device, for a name or an optimizer object. */
    @Test
    void initOptimizerIdx2Name() {
        Symbol sym = ModuleStateTest.fcSoftmax();
        try (Module mod = new Module(sym)) {
            mod.bind(ModuleStateTest.data(4, 3), ModuleStateTest.label(4));
            mod.initParams();
            mod.initOptimizer("sgd", Map.of("learning_rate", 0.1));
            Map<Object, String> expected = new LinkedHashMap<>();
            expected.put(0, "fc_weight");
            expected.put(1, "fc_bias");
            assertEquals(expected, mod.optimizer().idx2name());
            assertEquals(0.25, mod.optimizer().rescaleGrad(), 1e-12, "rescale_grad = 1 / batch size");
            // an optimizer object gets idx2name only when it has none; its rescale_grad is kept
            dev.kiln.optimizer.Optimizer opt = dev.kiln.optimizer.Optimizers.create("sgd", Map.of("learning_rate", 0.1));
            mod.initOptimizer("local", opt, null, true);
            assertEquals(expected, opt.idx2name());
            assertEquals(1.0, opt.rescaleGrad(), 1e-12);
        }
    }

    /** test_reference_single_batch_during_fit: fit holds at most the current and the prefetched batch. */
    @Test
    void fitHoldsAtMostTwoBatches() {
        float[] x = new float[40 * 3];
        float[] y = new float[40];
        for (int i = 0; i < x.length; i++) {
            x[i] = (i % 7) / 7f;
        }
        for (int i = 0; i < y.length; i++) {
            y[i] = i % 2;
        }
        try (NDArrayIter inner = NDArrayIter.builder().setData(x, 40, 3).optLabel(y).setBatchSize(4).build();
             CountingIter it = new CountingIter(inner); Module mod = new Module(ModuleStateTest.fcSoftmax())) {
            mod.fit(it, new BaseModule.FitArgs().numEpoch(2));
            assertTrue(it.maxOpen <= 2, "open batches at once: " + it.maxOpen);
            assertEquals(0, it.open(), "every batch closed");
            assertEquals(20, it.served);
        }
    }

    /** Counts the batches handed out and still open. */
    static final class CountingIter extends DataIter {
        final DataIter inner;
        final List<DataBatch> live = new ArrayList<>();
        int maxOpen;
        int served;

        CountingIter(DataIter inner) {
            this.inner = inner;
        }

        int open() {
            live.removeIf(b -> b.data().get(0).isClosed());
            return live.size();
        }

        @Override
        public boolean hasNext() {
            return inner.hasNext();
        }

        @Override
        public DataBatch next() {
            DataBatch b = inner.next();
            served++;
            live.add(b);
            maxOpen = Math.max(maxOpen, open());
            return b;
        }

        @Override
        public void reset() {
            inner.reset();
        }

        @Override
        public int batchSize() {
            return inner.batchSize();
        }

        @Override
        public List<DataDesc> provideData() {
            return inner.provideData();
        }

        @Override
        public List<DataDesc> provideLabel() {
            return inner.provideLabel();
        }

        @Override
        public void close() {
            inner.close();
        }
    }

    /** The metric is updated once per device slice: accuracy counts every sample once with two contexts. */
    @Test
    void metricUpdatedPerDeviceSlice() {
        try (NDScope s = NDScope.open(); NDArrayIter it = ModuleFitTest.goldenIter();
             Module mod = Module.builder(ModuleStateTest.fcSoftmax()).context(dev.kiln.ndarray.Context.cpu(0),
                     dev.kiln.ndarray.Context.cpu(1)).build()) {
            mod.bind(it.provideData(), it.provideLabel(), false, false, false, null, "write");
            mod.setParams(ModuleFitTest.goldenInit(), Map.of());
            var acc = Metrics.create("acc");
            var mse = Metrics.create("mse");
            try (DataBatch b = it.next()) {
                mod.forward(b, false);
                mod.updateMetric(acc, b.label(), false);
                mod.updateMetric(mse, b.label(), false);
            }
            assertEquals(2, acc.numInst(), "2 samples over 2 devices");
            assertEquals(2, mse.numInst(), "MSE counts one per device slice");
        }
    }
}
