package dev.kiln.rnn;

import ai.djl.mxnet.engine.MxNDManager;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.symbol.NameManager;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Parameter, node and state names follow MXNet's naming rules; the unrolled graph's JSON loads
 * in the real MXNet 1.9.1 library, which lists the same arguments and computes the same outputs.
 */
@ExtendWith(NoLeaks.class)
class CellNamesTest {
    /** The word-LM graph of example/rnn (without Embedding): data -> 2 LSTM layers -> pred -> softmax. */
    static Symbol lm(int t, int h, int vocab) {
        SequentialRNNCell stack = new SequentialRNNCell();
        for (int i = 0; i < 2; i++) {
            stack.add(new LSTMCell(h, "lstm_l" + i + "_", null, 0.0));
        }
        Unrolled u = stack.unroll(t, Symbol.variable("data"), null, "NTC", true);
        Symbol pred = Symbol.reshape(null, u.merged(), -1, h);
        pred = Symbol.fullyConnected("pred", pred, vocab);
        Symbol label = Symbol.reshape(null, Symbol.variable("softmax_label"), -1);
        return Symbol.softmaxOutput("softmax", pred, label);
    }

    @Test
    void twoLayerLstmArgumentsAsMxnet() {
        Symbol net;
        try (NameManager nm = NameManager.scope()) {
            net = lm(5, 8, 10);
        }
        // MXNet: list_arguments() of the lstm_bucketing graph minus embed_weight
        assertEquals(List.of("data", "lstm_l0_i2h_weight", "lstm_l0_i2h_bias", "lstm_l0_h2h_weight", "lstm_l0_h2h_bias",
                "lstm_l1_i2h_weight", "lstm_l1_i2h_bias", "lstm_l1_h2h_weight", "lstm_l1_h2h_bias", "pred_weight", "pred_bias",
                "softmax_label"), net.listArguments());
        List<String> internals = net.getInternals().listOutputs();
        for (String n : List.of("lstm_l0_begin_state_0_output", "lstm_l0_begin_state_1_output", "lstm_l1_begin_state_1_output",
                "lstm_l0_t0_i2h_output", "lstm_l0_t0_h2h_output", "lstm_l0_t0_slice_output0", "lstm_l0_t0_slice_output3",
                "lstm_l0_t0_i_output", "lstm_l0_t0_f_output", "lstm_l0_t0_c_output", "lstm_l0_t0_o_output",
                "lstm_l0_t0_state_output", "lstm_l0_t4_out_output", "lstm_l1_t4_out_output")) {
            assertTrue(internals.contains(n), n + " in " + internals);
        }
        Map<String, Map<String, String>> attrs = net.attrDict();
        assertEquals("[\"lstmbias\", {\"forget_bias\": 0.0}]", attrs.get("lstm_l0_i2h_bias").get("__init__"));
        assertEquals("(0, 8)", attrs.get("lstm_l0_begin_state_0").get("shape"));
        assertEquals("NC", attrs.get("lstm_l0_begin_state_0").get("__layout__"));
        // shapes inferred from data alone, zero states included
        Map<String, long[]> shapes = net.inferShape(Map.of("data", new long[] {3, 5, 6}, "softmax_label", new long[] {3, 5})).argShapeMap();
        assertArrayEquals(new long[] {32, 6}, shapes.get("lstm_l0_i2h_weight"));
        assertArrayEquals(new long[] {32, 8}, shapes.get("lstm_l1_i2h_weight"));
        assertArrayEquals(new long[] {32, 8}, shapes.get("lstm_l1_h2h_weight"));
        assertArrayEquals(new long[] {10, 8}, shapes.get("pred_weight"));
    }

    @Test
    void defaultPrefixesAndNodeNames() {
        LSTMCell lstm = new LSTMCell(4);
        assertEquals("[\"lstmbias\", {\"forget_bias\": 1.0}]",
                lstm.params().asMap().get("lstm_i2h_bias").listAttr().get("__init__"));
        assertEquals(List.of("lstm_i2h_weight", "lstm_h2h_weight", "lstm_i2h_bias", "lstm_h2h_bias"),
                new ArrayList<>(lstm.params().asMap().keySet()), "MXNet creates them in this order");
        GRUCell gru = new GRUCell(4);
        Unrolled g = gru.unroll(2, Symbol.variable("data"), null, "NTC", false);
        assertEquals("gru_t1_out", g.outputs().get(1).name());
        List<String> gi = g.outputs().get(1).getInternals().listOutputs();
        assertTrue(gi.contains("gru_t1__i2h_output"), gi.toString());
        assertTrue(gi.contains("gru_t1__h2h_slice_output2"), gi.toString());
        assertTrue(gi.contains("gru_t1__r_act_output") && gi.contains("gru_t1__z_act_output")
                && gi.contains("gru_t1__h_act_output"), gi.toString());
        RNNCell rnn = new RNNCell(4);
        Unrolled r = rnn.unroll(3, Symbol.variable("data"), null, "NTC", false);
        assertEquals("rnn_t2_out", r.outputs().get(2).name());
        assertEquals(List.of("data", "rnn_i2h_weight", "rnn_i2h_bias", "rnn_h2h_weight", "rnn_h2h_bias"),
                r.outputs().get(2).listArguments());
        // unroll resets the counters: a second unroll reuses t0.. and begin_state_0
        Unrolled r2 = rnn.unroll(1, Symbol.variable("data"), null, "NTC", false);
        assertEquals("rnn_t0_out", r2.outputs().get(0).name());
        assertTrue(r2.outputs().get(0).getInternals().listOutputs().contains("rnn_begin_state_0_output"));
        // begin states as variables become arguments; the counter runs on from the last reset (as MXNet)
        assertEquals("rnn_begin_state_1", rnn.beginState(BaseRNNCell.StateFactory.variables()).get(0).name());
        rnn.reset();
        Unrolled rv = rnn.unroll(2, Symbol.variable("data"), rnn.beginState(BaseRNNCell.StateFactory.variables()), "NTC", true);
        assertTrue(rv.merged().listArguments().contains("rnn_begin_state_0"));
    }

    @Test
    void sharedParamsAndModifierRules() {
        RNNParams p = new RNNParams("shared_");
        RNNCell a = new RNNCell(4, "tanh", "a_", p);
        RNNCell b = new RNNCell(4, "tanh", "b_", p);
        Symbol out = b.unroll(2, a.unroll(2, Symbol.variable("data"), null, "NTC", false).outputs(), null, "NTC", true)
                .merged();
        assertEquals(List.of("data", "shared_i2h_weight", "shared_i2h_bias", "shared_h2h_weight", "shared_h2h_bias"),
                out.listArguments(), "both cells use one set of weights");

        LSTMCell base = new LSTMCell(4);
        ResidualCell res = new ResidualCell(base);
        IllegalStateException e = assertThrows(IllegalStateException.class, base::beginState);
        assertTrue(e.getMessage().contains("Call the modifier cell instead"), e.getMessage());
        assertEquals(2, res.beginState().size(), "the modifier may create the base cell's states");

        SequentialRNNCell withParams = new SequentialRNNCell(new RNNParams("s_"));
        RNNCell shared = new RNNCell(4);
        shared.params();
        IllegalStateException e2 = assertThrows(IllegalStateException.class, () -> withParams.add(shared));
        assertTrue(e2.getMessage().contains("not both"), e2.getMessage());
        withParams.add(new RNNCell(4, "tanh", "fresh_", null));

        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> new RNNCell(4).unroll(3, List.of(Symbol.variable("x")), null, "NTC", null));
        assertTrue(bad.getMessage().contains("1 input steps given for length 3"), bad.getMessage());
        IllegalArgumentException layout = assertThrows(IllegalArgumentException.class,
                () -> new RNNCell(4).unroll(3, Symbol.variable("x"), null, "NC", null));
        assertTrue(layout.getMessage().contains("layout"), layout.getMessage());
        assertThrows(UnsupportedOperationException.class, () -> new BidirectionalCell(new RNNCell(2, "tanh", "l_", null),
                new RNNCell(2, "tanh", "r_", null)).step(Symbol.variable("x"), List.of()));
    }

    @Test
    void realMxnetLoadsTheUnrolledLstmAndAgrees() {
        MxOracle.assumeAvailable();
        int n = 2;
        int t = 4;
        int in = 3;
        int h = 5;
        SequentialRNNCell stack = new SequentialRNNCell();
        stack.add(new LSTMCell(h, "lstm_l0_", null, 1.0));
        stack.add(new GRUCell(h, "gru_l1_", null));
        Unrolled u;
        try (NameManager nm = NameManager.scope()) {
            u = stack.unroll(t, Symbol.variable("data"), null, "NTC", true);
        }
        List<Symbol> outs = new ArrayList<>();
        outs.add(u.merged());
        outs.addAll(u.states());
        Symbol net = Symbol.group(outs);
        Map<String, long[]> shapes = net.inferShape(Map.of("data", new long[] {n, t, in})).argShapeMap();
        Random r = new Random(5);
        Map<String, float[]> vals = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            long[] s = shapes.get(a);
            long size = 1;
            for (long d : s) {
                size *= d;
            }
            vals.put(a, RnnRef.random(r, (int) size, 0.7));
        }
        List<float[]> kiln = RnnRef.forward(net, Map.of("data", new long[] {n, t, in}), vals, false);
        try (MxNDManager m = MxOracle.newManager(); ai.djl.mxnet.engine.Symbol mx = MxOracle.symbol(m, net.toJson())) {
            assertArrayEquals(net.listArguments().toArray(new String[0]), mx.getArgNames(), "MXNet reads the same arguments");
            Map<String, ai.djl.ndarray.NDArray> args = new LinkedHashMap<>();
            for (String a : net.listArguments()) {
                args.put(a, MxOracle.create(m, vals.get(a), shapes.get(a)));
            }
            try (MxOracle.Executor ex = new MxOracle.Executor(m, mx, args, Map.of())) {
                ex.forward(false);
                assertEquals(kiln.size(), ex.outputs().size());
                for (int i = 0; i < kiln.size(); i++) {
                    float[] want = ex.outputs().get(i).toFloatArray();
                    double[] w = new double[want.length];
                    for (int k = 0; k < w.length; k++) {
                        w[k] = want[k];
                    }
                    RnnRef.assertClose(w, kiln.get(i), 1e-5, "output " + i + " vs MXNet");
                }
            }
        }
    }

    @Test
    void realMxnetGradientsOfTheUnrolledLm() {
        MxOracle.assumeAvailable();
        int n = 3;
        int t = 9;   // more than 8 steps: MXNet sums the shared weights' gradients with a _grad_add chain
        int in = 4;
        int h = 6;
        int vocab = 7;
        Symbol net;
        try (NameManager nm = NameManager.scope()) {
            net = lm(t, h, vocab);
        }
        Map<String, long[]> given = Map.of("data", new long[] {n, t, in}, "softmax_label", new long[] {n, t});
        Map<String, long[]> shapes = net.inferShape(given).argShapeMap();
        Random r = new Random(9);
        Map<String, float[]> vals = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            long size = 1;
            for (long d : shapes.get(a)) {
                size *= d;
            }
            float[] v = RnnRef.random(r, (int) size, 0.5);
            if (a.equals("softmax_label")) {
                for (int i = 0; i < v.length; i++) {
                    v[i] = r.nextInt(vocab);
                }
            }
            vals.put(a, v);
        }
        Map<String, dev.kiln.executor.GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, given.containsKey(a) ? dev.kiln.executor.GradReq.NULL : dev.kiln.executor.GradReq.WRITE);
        }
        try (dev.kiln.executor.Executor ex = dev.kiln.executor.Executor.simpleBind(net, dev.kiln.ndarray.Context.cpu(), given,
                Map.of(), reqs, new dev.kiln.executor.Executor.Options());
                MxNDManager m = MxOracle.newManager();
                ai.djl.mxnet.engine.Symbol mx = MxOracle.symbol(m, net.toJson())) {
            Map<String, ai.djl.ndarray.NDArray> args = new LinkedHashMap<>();
            Map<String, ai.djl.ndarray.NDArray> grads = new LinkedHashMap<>();
            for (String a : net.listArguments()) {
                ex.argDict().get(a).set(vals.get(a));
                args.put(a, MxOracle.create(m, vals.get(a), shapes.get(a)));
                if (!given.containsKey(a)) {
                    grads.put(a, m.zeros(new ai.djl.ndarray.types.Shape(shapes.get(a))));
                }
            }
            ex.forwardBackward();
            try (MxOracle.Executor mex = new MxOracle.Executor(m, mx, args, grads)) {
                mex.forward(true).backward();
                for (String a : grads.keySet()) {
                    float[] want = grads.get(a).toFloatArray();
                    float[] got = ex.gradDict().get(a).toFloatArray();
                    double[] w = new double[want.length];
                    double max = 0;
                    for (int i = 0; i < w.length; i++) {
                        w[i] = want[i];
                        max = Math.max(max, Math.abs(want[i]));
                    }
                    assertTrue(max > 0, a + " has a non-zero gradient");
                    RnnRef.assertClose(w, got, 1e-5 + 1e-4 * max, "gradient of " + a + " vs MXNet");
                }
            }
        }
    }
}
