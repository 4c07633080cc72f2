package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.lr.FactorScheduler;
import dev.kiln.optimizer.lr.LRScheduler;
import dev.kiln.optimizer.lr.MultiFactorScheduler;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Base-class semantics of module-api spec §5.1 and MXNet's test_optimizer.py base tests. */
@ExtendWith(NoLeaks.class)
class OptimizerBaseTest {

    static Map<String, Object> kw(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    // ---- learning rate vs scheduler ---------------------------------------------------------

    @Test
    void mxnetTestLearningRate() {
        Optimizer o1 = Optimizers.create("sgd", kw("learning_rate", 0.01));
        o1.setLearningRate(0.2);
        assertEquals(0.2, o1.learningRate());

        FactorScheduler s2 = new FactorScheduler(1, 1);
        Optimizer o2 = Optimizers.create("sgd", kw("lr_scheduler", s2, "learning_rate", 0.3));
        assertEquals(0.3, o2.learningRate());
        o2.lrScheduler().setBaseLr(0.4);
        assertEquals(0.4, o2.learningRate());

        Optimizer o3 = Optimizers.create("sgd", kw("lr_scheduler", new FactorScheduler(1, 1, 1e-8, 1024, 0, 0,
                LRScheduler.WarmupMode.LINEAR)));
        assertEquals(1024, o3.learningRate());
    }

    @Test
    void mxnetTestLearningRateExpectUserWarning() {
        Optimizer o = Optimizers.create("sgd", kw("lr_scheduler", new FactorScheduler(1, 1), "learning_rate", 0.3));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> o.setLearningRate(0.5));
        assertTrue(e.getMessage().contains("LRScheduler"), e.getMessage());
    }

    @Test
    void classDefaultsAndTheSchedulerBase() {
        assertEquals(0.01, Optimizers.create("sgd", null).learningRate());
        assertEquals(0.001, Optimizers.create("adam", null).learningRate());
        assertEquals(0.002, Optimizers.create("adamax", null).learningRate());
        assertEquals(0.1, Optimizers.create("ftrl", null).learningRate());
        assertEquals(0.001, Optimizers.create("rmsprop", null).learningRate());
        assertEquals(0.001, Optimizers.create("lamb", null).learningRate());
        assertEquals(0.001, Optimizers.create("nadam", null).learningRate());
        // a class default never overwrites the scheduler's base rate (only an explicit learning_rate does)
        FactorScheduler s = new FactorScheduler(1, 1, 1e-8, 0.5, 0, 0, LRScheduler.WarmupMode.LINEAR);
        Optimizer adam = Optimizers.create("adam", kw("lr_scheduler", s));
        assertEquals(0.5, adam.learningRate());
        // the same learning rate as the scheduler's base leaves it alone
        Optimizer same = Optimizers.create("adam", kw("lr_scheduler", s, "learning_rate", 0.5));
        assertEquals(0.5, same.learningRate());
    }

    @Test
    void theSchedulerIsCalledWithNumUpdate() {
        MultiFactorScheduler s = new MultiFactorScheduler(new long[] {2}, 0.1, 1, 0, 0, LRScheduler.WarmupMode.LINEAR);
        Optimizer o = Optimizers.create("sgd", kw("lr_scheduler", s));
        assertEquals(1, o.learningRate());
        o.countUpdate(0);
        o.countUpdate(0);
        assertEquals(1, o.lr(0), 1e-12);
        o.countUpdate(0);  // num_update 3 > 2
        assertEquals(0.1, o.lr(0), 1e-12);
        assertEquals(3, o.numUpdate());
    }

    // ---- lr_mult / wd_mult -------------------------------------------------------------------

    /** MXNet's test_lr_wd_mult network. */
    static Symbol lrWdNet() {
        Symbol data = Symbol.variable("data");
        Symbol bias = Symbol.variable("fc1_bias", Map.of("lr_mult", "1.0"));
        Symbol fc1 = Symbol.create("FullyConnected", "fc1", Map.of("num_hidden", "10", "lr_mult", "0"),
                Map.of("bias", bias), data);
        return Symbol.create("FullyConnected", "fc2", Map.of("num_hidden", "10", "wd_mult", "0.5"), null, fc1);
    }

    static Map<Object, String> idx2name(String... names) {
        Map<Object, String> m = new LinkedHashMap<>();
        for (int i = 0; i < names.length; i++) {
            m.put(i, names[i]);
        }
        return m;
    }

    @Test
    void mxnetTestLrWdMult() {
        Symbol net = lrWdNet();
        assertEquals(List.of("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"), net.listArguments());
        Optimizer o = Optimizers.create("sgd", kw("learning_rate", 1.0, "sym", net, "param_idx2name",
                idx2name("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"), "rescale_grad", 0.2));
        assertEquals(Map.of("fc1_bias", 1.0, "fc1_weight", 0.0), new HashMap<>(o.lrMult()));
        assertEquals(Map.of("fc2_bias", 0.5, "fc2_weight", 0.5, "fc1_bias", 0.0), new HashMap<>(o.wdMult()));
        assertEquals(0.0, o.lr(0));
        assertEquals(1.0, o.lr(1));
        assertEquals(1.0, o.lr(2));
        assertEquals(1.0, o.lr("fc2_bias"));  // a kvstore name key without a multiplier
        assertEquals(0.0, o.lr("fc1_weight"));  // a kvstore name key with one

        // an lr_mult 0 weight does not move; its neighbour does
        try (Updater u = new Updater(o);
             NDArray w0 = NDArray.create(new float[] {1, 2}, 2);
             NDArray g0 = NDArray.create(new float[] {1, 1}, 2);
             NDArray w1 = NDArray.create(new float[] {1, 2}, 2);
             NDArray g1 = NDArray.create(new float[] {1, 1}, 2)) {
            u.update(List.of(0, 1), List.of(g0, g1), List.of(w0, w1));
            assertArrayEquals(new float[] {1, 2}, w0.toFloatArray());
            assertArrayEquals(new float[] {0.8f, 1.8f}, w1.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void weightDecayDefaultsToZeroForNonWeights() {
        Optimizer o = Optimizers.create("sgd", kw("wd", 0.1, "param_idx2name",
                idx2name("fc_weight", "fc_bias", "bn_gamma", "bn_beta", "emb", "conv_weight_x")));
        assertEquals(0.1, o.wd(0), 1e-15);
        assertEquals(0.0, o.wd(1));
        assertEquals(0.1, o.wd(2), 1e-15);
        assertEquals(0.0, o.wd(3));
        assertEquals(0.0, o.wd(4));
        assertEquals(0.0, o.wd(5));
        assertEquals(0.1, o.wd(6), 1e-15);  // unknown index: plain wd
        assertEquals(0.1, o.wd("x"), 1e-15);
        // without idx2name every index keeps wd (a user-built optimizer)
        assertEquals(0.1, Optimizers.create("sgd", kw("wd", 0.1)).wd(1), 1e-15);
    }

    @Test
    void multipliersByIndexOrNameAndOverrides() {
        Optimizer o = Optimizers.create("sgd", kw("learning_rate", 2.0, "wd", 1.0, "param_idx2name",
                idx2name("a_weight", "a_bias")));
        Map<Object, Double> lm = new LinkedHashMap<>();
        lm.put(0, 0.5);          // by index
        lm.put("a_bias", 3.0);   // by name
        o.setLrMult(lm);
        assertEquals(1.0, o.lr(0));
        assertEquals(6.0, o.lr(1));
        Map<Object, Double> wm = new LinkedHashMap<>();
        wm.put(1L, 0.25);        // Long index keys are normalised
        o.setWdMult(wm);
        assertEquals(0.25, o.wd(1));
        assertEquals(0.0, o.wdMult().get("a_bias"));  // the default rule is rebuilt, the index wins
        // a new idx2name recomputes the defaults and drops the overrides
        o.setIdx2Name(idx2name("b_gamma", "b_beta"));
        assertEquals(2.0, o.lr(0));
        assertEquals(Map.of("b_beta", 0.0), o.wdMult());
        assertEquals(0.0, o.wd(1));
        assertThrows(IllegalArgumentException.class, () -> o.setIdx2Name(Map.of(1.5, "x")));
        // Module's assignment for a user-built optimizer keeps the multipliers (biases keep wd)
        Optimizer user = Optimizers.create("sgd", kw("wd", 1.0));
        user.setIdx2Name(idx2name("c_weight", "c_bias"), false);
        assertEquals("c_bias", user.idx2name().get(1));
        assertEquals(1.0, user.wd(1));
    }

    @Test
    void symbolWdMultOverridesTheBiasRule() {
        Symbol data = Symbol.variable("data");
        Symbol fc = Symbol.create("FullyConnected", "fc", Map.of("num_hidden", "3", "wd_mult", "0.5"), null, data);
        Optimizer o = Optimizers.create("sgd", kw("sym", fc, "wd", 1.0, "param_idx2name", idx2name("fc_weight", "fc_bias")));
        assertEquals(0.5, o.wd(1));
        assertEquals(0.5, o.wd(0));
    }

    // ---- update counting ---------------------------------------------------------------------

    @Test
    void countsStartAtBeginNumUpdateAndArePerDevice() {
        Optimizer o = Optimizers.create("adam", kw("begin_num_update", 5));
        assertEquals(5, o.numUpdate());
        assertEquals(5, o.updateCount(0));
        o.countUpdate(0);
        assertEquals(6, o.updateCount(0));
        assertEquals(6, o.numUpdate());
        o.countUpdate(0);
        o.countUpdate("w");
        assertEquals(7, o.updateCount(0));
        assertEquals(6, o.updateCount("w"));
        o.setCurrentContext(1);
        assertEquals(5, o.updateCount(0));  // device 1 has its own table
        o.countUpdate(0);
        assertEquals(6, o.updateCount(0));
        assertEquals(7, o.numUpdate());    // the maximum over all
        o.setCurrentContext(0);
        assertEquals(7, o.updateCount(0));
    }

    /** A scheduler whose rate is the update count itself. */
    static final class CountScheduler extends LRScheduler {
        CountScheduler() {
            super(1, 0, 0, WarmupMode.LINEAR);
        }

        @Override
        public double get(long numUpdate) {
            return numUpdate;
        }
    }

    /** One SGD step of key 1 (new) after five of key 0; returns how far key 1's weight moved. */
    static double newKeyStep(int aggregateNum) {
        SGD sgd = new SGD(kw("lr_scheduler", new CountScheduler()));
        sgd.setAggregateNum(aggregateNum);
        try (Updater u = new Updater(sgd);
             NDArray w0 = NDArray.zeros(1);
             NDArray w1 = NDArray.zeros(1);
             NDArray g = NDArray.create(new float[] {-1}, 1)) {
            for (int i = 0; i < 5; i++) {
                u.update(List.of(0), List.of(g), List.of(w0));
            }
            assertEquals(1 + 2 + 3 + 4 + 5, w0.toFloatArray()[0], 1e-5);
            u.update(List.of(1, 0), List.of(g, g), List.of(w1, w0));
            return w1.toFloatArray()[0];
        }
    }

    @Test
    void aggregatedOptimizersCountTheWholeGroupBeforeReadingRates() {
        // MXNet's SGD (aggregate_num 4) counts keys 1 and 0 first: num_update 6 for both
        assertEquals(6, newKeyStep(4), 1e-6);
        // one key at a time: key 1 reaches count 1 while num_update is still 5
        assertEquals(5, newKeyStep(0), 1e-6);
    }

    @Test
    void firstUpdateSeesT1() {
        Optimizer o = Optimizers.create("sgd", null);
        try (Updater u = new Updater(o); NDArray w = NDArray.zeros(2); NDArray g = NDArray.zeros(2)) {
            u.update(List.of(3), List.of(g), List.of(w));
            assertEquals(1, o.updateCount(3));
            assertEquals(1, o.numUpdate());
        }
    }

    // ---- registry and parameters -------------------------------------------------------------

    @Test
    void registryIsCaseInsensitive() {
        assertInstanceOf(SGD.class, Optimizers.create("SGD", null));
        assertInstanceOf(SGD.class, Optimizers.create("ccSGD", null));
        assertInstanceOf(Adam.class, Optimizers.create("Adam", Map.of()));
        assertInstanceOf(RMSProp.class, Optimizers.create("RMSProp", null));
        assertInstanceOf(FTML.class, Optimizers.create("ftml", null));
        assertInstanceOf(LAMB.class, Optimizers.create("LAMB", null));
        List<String> builtIn = List.of("adadelta", "adagrad", "adam", "adamax", "ccsgd", "ftml", "ftrl", "lamb", "nadam",
                "nag", "rmsprop", "sgd", "signum");
        assertTrue(Optimizers.names().containsAll(builtIn), Optimizers.names().toString());
        for (String n : builtIn) {
            assertEquals(n.equals("ccsgd") ? "sgd" : n, Optimizers.create(n, null).name());
        }
    }

    @Test
    void unknownNamesAndParametersFail() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create("foo", null));
        assertEquals("Cannot find optimizer foo", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create("LARS", null));
        assertTrue(e.getMessage().startsWith("Cannot find optimizer LARS"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create("sgd", kw("momentun", 0.9)));
        assertTrue(e.getMessage().contains("momentun"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create("adam", kw("momentum", 0.9)));
        assertTrue(e.getMessage().contains("momentum"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create("sgd", kw("learning_rate", "fast")));
        assertTrue(e.getMessage().contains("learning_rate"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Optimizers.create("sgd", kw("param_idx2name", List.of("a"))));
        assertTrue(e.getMessage().contains("param_idx2name"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Optimizers.create("sgd", kw("lr_scheduler", 0.1)));
        assertThrows(IllegalArgumentException.class, () -> Optimizers.create("sgd", kw("multi_precision", "maybe")));
        assertThrows(IllegalArgumentException.class, () -> Optimizers.create("sgd", kw("begin_num_update", 1.5)));
        assertThrows(IllegalArgumentException.class, () -> Optimizers.create("sgd", kw("sym", "net")));
        assertThrows(NullPointerException.class, () -> Optimizers.create(null, null));
    }

    @Test
    void parametersAcceptNumbersStringsAndBooleans() {
        SGD s = (SGD) Optimizers.create("sgd", kw("learning_rate", "0.5", "momentum", 0.9f, "multi_precision", "True",
                "rescale_grad", 1, "clip_gradient", null, "begin_num_update", 3L, "lazy_update", false));
        assertEquals(0.5, s.learningRate());
        assertEquals(0.9f, (float) s.momentum());
        assertTrue(s.multiPrecision());
        assertEquals(1.0, s.rescaleGrad());
        assertEquals(null, s.clipGradient());
        assertEquals(3, s.numUpdate());
        s.setRescaleGrad(0.25);
        assertEquals(0.25, s.rescaleGrad());
        assertNotEquals("", s.toString());
    }

    @Test
    void customOptimizersCanBeRegistered() {
        Optimizers.register("MySgd", p -> new SGD(p));
        assertInstanceOf(SGD.class, Optimizers.create("mysgd", kw("momentum", 0.5)));
    }
}
