package dev.kiln.rnn;

import ai.djl.mxnet.engine.MxNDManager;
import dev.kiln.init.InitDesc;
import dev.kiln.init.Initializer;
import dev.kiln.init.Xavier;
import dev.kiln.internal.Json;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.op.Ops;
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
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * FusedRNNCell: the packed layout (offsets from the formula in MXNet's rnn_impl.h /
 * FusedRNNCell._slice_weights), exact pack/unpack round trips, unfuse() names, the fusedrnn
 * initializer, and the fused graph run by the real MXNet 1.9.1 library against the unfused
 * stack run by Kiln with the converted weights.
 */
@ExtendWith(NoLeaks.class)
class FusedRNNCellTest {
    private static float[] arange(int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = i;
        }
        return f;
    }

    @Test
    void layoutOffsetsFollowTheFormula() {
        int in = 3;
        int h = 2;
        int layers = 2;
        FusedRNNCell cell = new FusedRNNCell(h, layers, "lstm", true, 0, false, 1.0, null, null);
        int g = 4;
        int d = 2;
        long total = (long) (in + h + 2) * g * h * d + (long) (layers - 1) * (d * h + h + 2) * g * h * d;
        assertEquals(total, cell.parameterSize(in));
        try (NDScope s = NDScope.open()) {
            NDArray vec = NDArray.create(arange((int) total), total);
            Map<String, NDArray> un = cell.unpackWeights(Map.of("lstm_parameters", vec));
            assertEquals(2 * layers * d * g * 2, un.size(), "i2h/h2h weight and bias per gate, direction, layer");
            // independent offsets: weights of (layer, dir) blocks first, then all biases
            long off = 0;
            long[] wOff = new long[layers * d];
            for (int l = 0; l < layers; l++) {
                long li = l == 0 ? in : (long) d * h;
                for (int k = 0; k < d; k++) {
                    wOff[l * d + k] = off;
                    off += (long) g * h * li + (long) g * h * h;
                }
            }
            long biasStart = off;
            // layer 1, direction r, h2h, gate o (index 3): after i2h [G*H, D*H] and 3 h2h gate blocks
            long expect = wOff[1 * d + 1] + (long) g * h * (d * h) + 3L * h * h;
            assertEquals((float) expect, un.get("lstm_r1_h2h_o_weight").toFloatArray()[0]);
            assertArrayEquals(new long[] {h, h}, un.get("lstm_r1_h2h_o_weight").shape().dims());
            assertArrayEquals(new long[] {h, d * h}, un.get("lstm_l1_i2h_f_weight").shape().dims());
            assertArrayEquals(new long[] {h, in}, un.get("lstm_l0_i2h_c_weight").shape().dims());
            assertEquals((float) (wOff[0] + 2L * h * in), un.get("lstm_l0_i2h_c_weight").toFloatArray()[0]);
            // biases: per (layer, dir): i2h [G*H] then h2h [G*H]
            long bl0r = biasStart + 2L * g * h;
            assertEquals((float) (bl0r + (long) g * h + h), un.get("lstm_r0_h2h_f_bias").toFloatArray()[0]);
            assertEquals((float) (total - 1), un.get("lstm_r1_h2h_o_bias").toFloatArray()[h - 1], "last element");

            // exact round trips, both conversions
            Map<String, NDArray> packed = cell.packWeights(un);
            assertArrayEquals(vec.toBytes(), packed.get("lstm_parameters").toBytes());
            Map<String, NDArray> cells = cell.unpackToCells(Map.of("lstm_parameters", vec));
            assertArrayEquals(new long[] {g * h, in}, cells.get("lstm_l0_i2h_weight").shape().dims());
            assertArrayEquals(new long[] {g * h, d * h}, cells.get("lstm_r1_i2h_weight").shape().dims());
            assertArrayEquals(new long[] {g * h}, cells.get("lstm_l1_h2h_bias").shape().dims());
            // the unfused cell's forget block is rows [H, 2H) of the fused i2h weight
            assertArrayEquals(un.get("lstm_l0_i2h_f_weight").toFloatArray(),
                    java.util.Arrays.copyOfRange(cells.get("lstm_l0_i2h_weight").toFloatArray(), h * in, 2 * h * in));
            Map<String, NDArray> back = cell.packFromCells(cells);
            assertEquals(List.of("lstm_parameters"), new ArrayList<>(back.keySet()));
            assertArrayEquals(vec.toBytes(), back.get("lstm_parameters").toBytes());

            // the converted names are exactly the unfused stack's parameters
            Unrolled u = cell.unfuse().unroll(2, Symbol.variable("data"), null, "NTC", true);
            List<String> params = new ArrayList<>(u.merged().listArguments());
            params.remove("data");
            assertEquals(new java.util.TreeSet<>(params), new java.util.TreeSet<>(cells.keySet()));
            assertTrue(u.merged().name().startsWith("lstm_bi_l1_out"), u.merged().name());

            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> cell.unpackWeights(Map.of("lstm_parameters", NDArray.zeros(total + 1))));
            assertTrue(e.getMessage().contains("Invalid parameters size"), e.getMessage());
            IllegalArgumentException miss = assertThrows(IllegalArgumentException.class, () -> cell.unpackWeights(Map.of()));
            assertTrue(miss.getMessage().contains("lstm_parameters"), miss.getMessage());
        }
    }

    @Test
    void gruAndRnnModes() {
        try (NDScope s = NDScope.open()) {
            for (String mode : List.of("gru", "rnn_tanh", "rnn_relu")) {
                FusedRNNCell cell = new FusedRNNCell(3, 3, mode, false, 0.2, false, 1.0, null, null);
                long n = cell.parameterSize(4);
                NDArray vec = NDArray.create(RnnRef.random(new Random(1), (int) n, 1), n);
                Map<String, NDArray> cells = cell.unpackToCells(Map.of(mode + "_parameters", vec));
                assertEquals(12, cells.size(), mode);
                assertArrayEquals(vec.toBytes(), cell.packFromCells(cells).get(mode + "_parameters").toBytes(), mode);
                SequentialRNNCell st = cell.unfuse();
                assertEquals(5, st.cells().size(), "3 layers with 2 dropout cells between them");
                assertTrue(st.cells().get(1) instanceof DropoutCell);
                assertEquals(mode + "__dropout0_", st.cells().get(1).prefix());
            }
        }
        assertThrows(IllegalArgumentException.class, () -> new FusedRNNCell(3, 1, "lstmx"));
        assertEquals(List.of(new StateInfo(new long[] {4, 0, 3}, "LNC"), new StateInfo(new long[] {4, 0, 3}, "LNC")),
                new FusedRNNCell(3, 2, "lstm", true, 0, false, 1.0, null, null).stateInfo());
        assertThrows(UnsupportedOperationException.class, () -> new FusedRNNCell(3, 1, "gru").step(Symbol.variable("x"),
                List.of()));
    }

    @Test
    void fusedRnnInitializerSetsForgetBiases() {
        FusedRNNCell cell = new FusedRNNCell(3, 2, "lstm", false, 0, false, 2.5, null, null);
        String init = cell.parameter().listAttr().get("__init__");
        assertEquals("[\"fusedrnn\", {\"init\": null, \"num_hidden\": 3, \"num_layers\": 2, \"mode\": \"lstm\", "
                + "\"bidirectional\": false, \"forget_bias\": 2.5}]", init);
        try (NDScope s = NDScope.open()) {
            long n = cell.parameterSize(5);
            NDArray vec = NDArray.zeros(n);
            new Xavier().init(new InitDesc("lstm_parameters", Map.of("__init__", init), null), vec);
            Map<String, NDArray> un = cell.unpackWeights(Map.of("lstm_parameters", vec));
            for (Map.Entry<String, NDArray> e : un.entrySet()) {
                float[] v = e.getValue().toFloatArray();
                if (e.getKey().endsWith("_f_bias")) {
                    for (float x : v) {
                        assertEquals(2.5f, x, e.getKey());
                    }
                } else if (e.getKey().endsWith("_bias")) {
                    for (float x : v) {
                        assertEquals(0f, x, e.getKey());
                    }
                } else {
                    double sq = 0;
                    for (float x : v) {
                        sq += x * x;
                    }
                    assertTrue(sq > 0, e.getKey() + " initialized by Xavier");
                }
            }
            Initializer back = Initializer.create(init);
            assertEquals(init, back.dumps());
        }
    }

    // ---- the fused graph in real MXNet vs the unfused stack in Kiln ----------------------------

    /** Runs {@code build}; the native RNN op (ops/seq/rnn.cc) must be registered. */
    static <T> T withRnnOp(Supplier<T> build) {
        assertTrue(Ops.isSupported("RNN"), "the native RNN op is registered");
        return build.get();
    }

    @Test
    void fusedGraphArgumentsAndStates() throws ReflectiveOperationException {
        FusedRNNCell cell = new FusedRNNCell(4, 2, "lstm", false, 0, true, 1.0, null, null);
        Unrolled u = withRnnOp(() -> {
            try (NameManager nm = NameManager.scope()) {
                return cell.unroll(3, Symbol.variable("data"), null, "NTC", true);
            }
        });
        assertEquals(List.of("data", "lstm_parameters"), u.merged().listArguments());
        assertEquals(2, u.states().size());
        String json = u.merged().toJson();
        assertTrue(json.contains("\"op\": \"RNN\"") || json.contains("\"op\":\"RNN\""), json);
        assertTrue(json.contains("\"name\": \"lstm_rnn\"") || json.contains("\"name\":\"lstm_rnn\""), json);
        assertTrue(json.contains("lstm_begin_state_1"), json);
    }

    private void mxnetFusedMatchesKilnUnfused(String mode, boolean bidirectional, String layout) throws Exception {
        MxOracle.assumeAvailable();
        int n = 2;
        int t = 3;
        int in = 4;
        int h = 3;
        int layers = 2;
        FusedRNNCell cell = new FusedRNNCell(h, layers, mode, bidirectional, 0, false, 1.0, null, null);
        long[] dataShape = layout.equals("NTC") ? new long[] {n, t, in} : new long[] {t, n, in};
        Symbol fused = withRnnOp(() -> {
            try (NameManager nm = NameManager.scope()) {
                return cell.unroll(t, Symbol.variable("data"), null, layout, true).merged();
            }
        });
        Symbol unfused;
        try (NameManager nm = NameManager.scope()) {
            unfused = cell.unfuse().unroll(t, Symbol.variable("data"), null, layout, true).merged();
        }
        Random r = new Random(mode.hashCode() + (bidirectional ? 1 : 0));
        long size = cell.parameterSize(in);
        float[] params = RnnRef.random(r, (int) size, 0.5);
        float[] data = RnnRef.random(r, n * t * in, 1.0);
        Map<String, float[]> vals = new LinkedHashMap<>();
        vals.put("data", data);
        try (NDScope s = NDScope.open()) {
            Map<String, NDArray> cells = cell.unpackToCells(Map.of(mode + "_parameters", NDArray.create(params, size)));
            cells.forEach((k, v) -> vals.put(k, v.toFloatArray()));
        }
        float[] kiln = RnnRef.forward(unfused, Map.of("data", dataShape), vals, false).get(0);
        try (MxNDManager m = MxOracle.newManager(); ai.djl.mxnet.engine.Symbol mx = MxOracle.symbol(m, fused.toJson())) {
            assertArrayEquals(new String[] {"data", mode + "_parameters"}, mx.getArgNames());
            Map<String, ai.djl.ndarray.NDArray> args = new LinkedHashMap<>();
            args.put("data", MxOracle.create(m, data, dataShape));
            args.put(mode + "_parameters", MxOracle.create(m, params, size));
            try (MxOracle.Executor ex = new MxOracle.Executor(m, mx, args, Map.of())) {
                ex.forward(false);
                float[] want = ex.outputs().get(0).toFloatArray();
                double[] w = new double[want.length];
                for (int i = 0; i < w.length; i++) {
                    w[i] = want[i];
                }
                RnnRef.assertClose(w, kiln, 1e-5, mode + (bidirectional ? " bidirectional " : " ") + layout);
            }
        }
    }

    @Test
    void mxnetFusedLstmEqualsUnfused() throws Exception {
        mxnetFusedMatchesKilnUnfused("lstm", false, "TNC");
    }

    @Test
    void mxnetFusedBidirectionalLstmEqualsUnfused() throws Exception {
        mxnetFusedMatchesKilnUnfused("lstm", true, "NTC");
    }

    @Test
    void mxnetFusedGruEqualsUnfused() throws Exception {
        mxnetFusedMatchesKilnUnfused("gru", true, "TNC");
    }

    @Test
    void mxnetFusedRnnReluEqualsUnfused() throws Exception {
        mxnetFusedMatchesKilnUnfused("rnn_relu", false, "NTC");
    }

    @Test
    void mxnetFusedFinalStatesAndPerStepOutputsEqualUnfused() throws Exception {
        MxOracle.assumeAvailable();
        int n = 2;
        int t = 4;
        int in = 3;
        int h = 2;
        FusedRNNCell cell = new FusedRNNCell(h, 2, "lstm", true, 0, true, 1.0, null, null);
        Unrolled fused = withRnnOp(() -> {
            try (NameManager nm = NameManager.scope()) {
                return cell.unroll(t, Symbol.variable("data"), null, "TNC", false);
            }
        });
        assertEquals(t, fused.outputs().size());
        assertEquals(2, fused.states().size());
        List<Symbol> fusedOuts = new ArrayList<>(fused.outputs());
        fusedOuts.addAll(fused.states());
        Symbol fusedNet = Symbol.group(fusedOuts);
        Unrolled un;
        try (NameManager nm = NameManager.scope()) {
            un = cell.unfuse().unroll(t, Symbol.variable("data"), null, "TNC", false);
        }
        // unfused states: per layer [l_h, l_c, r_h, r_c]; the fused op stacks h of (layer, dir) then c
        assertEquals(8, un.states().size());
        List<Symbol> unOuts = new ArrayList<>(un.outputs());
        unOuts.addAll(un.states());
        Random r = new Random(17);
        long size = cell.parameterSize(in);
        float[] params = RnnRef.random(r, (int) size, 0.5);
        float[] data = RnnRef.random(r, n * t * in, 1.0);
        Map<String, float[]> vals = new LinkedHashMap<>();
        vals.put("data", data);
        try (NDScope s = NDScope.open()) {
            cell.unpackToCells(Map.of("lstm_parameters", NDArray.create(params, size))).forEach((k, v) -> vals.put(k, v.toFloatArray()));
        }
        List<float[]> kiln = RnnRef.forward(Symbol.group(unOuts), Map.of("data", new long[] {t, n, in}), vals, false);
        try (MxNDManager m = MxOracle.newManager(); ai.djl.mxnet.engine.Symbol mx = MxOracle.symbol(m, fusedNet.toJson())) {
            Map<String, ai.djl.ndarray.NDArray> args = new LinkedHashMap<>();
            args.put("data", MxOracle.create(m, data, t, n, in));
            args.put("lstm_parameters", MxOracle.create(m, params, size));
            try (MxOracle.Executor ex = new MxOracle.Executor(m, mx, args, Map.of())) {
                ex.forward(false);
                for (int k = 0; k < t; k++) {
                    RnnRef.assertClose(toDouble(ex.outputs().get(k).toFloatArray()), kiln.get(k), 1e-5, "step " + k);
                }
                float[] hy = ex.outputs().get(t).toFloatArray();        // (L*D, N, H)
                float[] cy = ex.outputs().get(t + 1).toFloatArray();
                int nh = n * h;
                for (int layer = 0; layer < 2; layer++) {
                    for (int d = 0; d < 2; d++) {
                        int idx = layer * 2 + d;
                        int base = t + layer * 4 + d * 2;   // unfused: l_h, l_c, r_h, r_c per layer
                        RnnRef.assertClose(toDouble(java.util.Arrays.copyOfRange(hy, idx * nh, (idx + 1) * nh)), kiln.get(base),
                                1e-5, "h of layer " + layer + " dir " + d);
                        RnnRef.assertClose(toDouble(java.util.Arrays.copyOfRange(cy, idx * nh, (idx + 1) * nh)),
                                kiln.get(base + 1), 1e-5, "c of layer " + layer + " dir " + d);
                    }
                }
            }
        }
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Test
    void stepCellGateUnpackRoundTrip() {
        try (NDScope s = NDScope.open()) {
            int h = 3;
            int in = 2;
            LSTMCell lstm = new LSTMCell(h);
            Map<String, NDArray> args = new LinkedHashMap<>();
            args.put("lstm_i2h_weight", NDArray.create(arange(4 * h * in), 4 * h, in));
            args.put("lstm_i2h_bias", NDArray.create(arange(4 * h), 4 * h));
            args.put("lstm_h2h_weight", NDArray.create(arange(4 * h * h), 4 * h, h));
            args.put("lstm_h2h_bias", NDArray.create(arange(4 * h), 4 * h));
            args.put("other", NDArray.zeros(1));
            Map<String, NDArray> un = lstm.unpackWeights(args);
            assertEquals(17, un.size());
            assertTrue(un.get("other") == args.get("other"), "untouched entries are passed through");
            assertArrayEquals(new long[] {h, in}, un.get("lstm_i2h_c_weight").shape().dims());
            assertEquals(2f * h * in, un.get("lstm_i2h_c_weight").toFloatArray()[0]);
            assertEquals((float) h, un.get("lstm_h2h_f_bias").toFloatArray()[0]);
            Map<String, NDArray> back = lstm.packWeights(un);
            for (String k : List.of("lstm_i2h_weight", "lstm_i2h_bias", "lstm_h2h_weight", "lstm_h2h_bias")) {
                assertArrayEquals(args.get(k).toBytes(), back.get(k).toBytes(), k);
                assertArrayEquals(args.get(k).shape().dims(), back.get(k).shape().dims(), k);
            }
            GRUCell gru = new GRUCell(h);
            Map<String, NDArray> g = new LinkedHashMap<>();
            g.put("gru_i2h_weight", NDArray.zeros(3 * h, in));
            g.put("gru_i2h_bias", NDArray.zeros(3 * h));
            g.put("gru_h2h_weight", NDArray.zeros(3 * h, h));
            g.put("gru_h2h_bias", NDArray.zeros(3 * h));
            assertTrue(gru.unpackWeights(g).keySet().containsAll(List.of("gru_i2h_r_weight", "gru_i2h_z_weight",
                    "gru_i2h_o_weight", "gru_h2h_o_bias")));
            g.put("gru_h2h_bias", NDArray.zeros(2 * h));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gru.unpackWeights(g));
            assertTrue(e.getMessage().contains("gru_h2h_bias") && e.getMessage().contains("9 rows"), e.getMessage());
        }
    }

    @Test
    void conversionsCloseTheirIntermediatesAndLeaveInputsAlone() {
        FusedRNNCell cell = new FusedRNNCell(2, 2, "gru", true, 0, false, 1.0, null, null);
        long size = cell.parameterSize(3);
        NDArray vec = NDArray.create(RnnRef.random(new Random(3), (int) size, 1), size);
        byte[] before = vec.toBytes();
        Map<String, NDArray> cells = cell.unpackToCells(Map.of("gru_parameters", vec));
        Map<String, NDArray> back = cell.packFromCells(cells);
        assertArrayEquals(before, vec.toBytes(), "input not modified");
        assertArrayEquals(before, back.get("gru_parameters").toBytes());
        assertTrue(!vec.isClosed(), "input not closed");
        // closing what the caller owns (the input and the returned new arrays) leaves nothing alive (NoLeaks)
        back.values().forEach(NDArray::close);
        cells.values().forEach(NDArray::close);
        vec.close();
    }

    /**
     * Kiln's own fused RNN op (ops/seq/rnn.cc) against the unfused stack of cells with the same
     * weights (issue 5: 1e-5): forward outputs, the data gradient, and the parameter gradient
     * (the unfused cells' gradients packed into the fused layout), for a 2-layer bidirectional
     * lstm, gru and rnn_tanh with default zero states.
     */
    @Test
    void kilnFusedOpEqualsUnfusedStack() throws Exception {
        int n = 2;
        int t = 3;
        int in = 3;
        int h = 4;
        for (String mode : List.of("lstm", "gru", "rnn_tanh")) {
            FusedRNNCell cell = new FusedRNNCell(h, 2, mode, true, 0, false, 1.0, null, null);
            Symbol fused = withRnnOp(() -> cell.unroll(t, Symbol.variable("data"), null, "NTC", true).merged());
            Symbol unfused = cell.unfuse().unroll(t, Symbol.variable("data"), null, "NTC", true).merged();
            Random r = new Random(mode.hashCode());
            long size = cell.parameterSize(in);
            float[] params = RnnRef.random(r, (int) size, 0.5);
            float[] data = RnnRef.random(r, n * t * in, 1.0);
            float[] head = RnnRef.random(r, n * t * 2 * h, 1.0);
            String pname = mode + "_parameters";
            try (NDScope s = NDScope.open()) {
                Map<String, NDArray> cells = cell.unpackToCells(Map.of(pname, NDArray.create(params, size)));
                Map<String, long[]> shapes = new LinkedHashMap<>();
                shapes.put("data", new long[] {n, t, in});
                Map<String, dev.kiln.executor.GradReq> reqs = new LinkedHashMap<>();
                for (String a : unfused.listArguments()) {
                    reqs.put(a, dev.kiln.executor.GradReq.WRITE);
                }
                try (dev.kiln.executor.Executor eu = dev.kiln.executor.Executor.simpleBind(unfused,
                        dev.kiln.ndarray.Context.cpu(), shapes, Map.of(), reqs, new dev.kiln.executor.Executor.Options());
                     dev.kiln.executor.Executor ef = dev.kiln.executor.Executor.simpleBind(fused,
                        dev.kiln.ndarray.Context.cpu(), shapes, Map.of(),
                        Map.of("data", dev.kiln.executor.GradReq.WRITE, pname, dev.kiln.executor.GradReq.WRITE),
                        new dev.kiln.executor.Executor.Options())) {
                    eu.argDict().get("data").set(data);
                    ef.argDict().get("data").set(data);
                    ef.argDict().get(pname).set(params);
                    cells.forEach((k, v) -> eu.argDict().get(k).set(v.toFloatArray()));
                    long[] os = {n, t, 2 * h};
                    eu.forward(true);
                    ef.forward(true);
                    RnnRef.assertClose(toDouble(eu.outputs().get(0).toFloatArray()), ef.outputs().get(0).toFloatArray(),
                            1e-5, "Kiln fused " + mode + " forward vs unfused");
                    eu.backward(NDArray.create(head, os));
                    ef.backward(NDArray.create(head, os));
                    RnnRef.assertClose(toDouble(eu.gradDict().get("data").toFloatArray()),
                            ef.gradDict().get("data").toFloatArray(), 1e-5, "Kiln fused " + mode + " data gradient");
                    Map<String, NDArray> cellGrads = new LinkedHashMap<>();
                    for (String k : cells.keySet()) {
                        cellGrads.put(k, eu.gradDict().get(k));
                    }
                    float[] packed = cell.packFromCells(cellGrads).get(pname).toFloatArray();
                    RnnRef.assertClose(toDouble(packed), ef.gradDict().get(pname).toFloatArray(), 1e-5,
                            "Kiln fused " + mode + " parameter gradient");
                }
            }
        }
    }

    /**
     * Module.initParams on a fused LSTM graph applies the fusedrnn initializer from the
     * parameters' __init__ attribute (forget biases = forget_bias, other biases 0). Needs the RNN
     * op for shape inference; until it is registered, bind must fail naming RNN.
     */
    @Test
    void moduleInitializesFusedParametersThroughTheAttribute() throws Exception {
        FusedRNNCell cell = new FusedRNNCell(3, 2, "lstm", false, 0, false, 0.75, null, null);
        Symbol net = withRnnOp(() -> {
            Symbol out = cell.unroll(4, Symbol.variable("data"), null, "TNC", true).merged();
            return Symbol.makeLoss("loss", Symbol.sum(null, out));
        });
        try (dev.kiln.module.Module mod = dev.kiln.module.Module.builder(net).dataNames("data").labelNames().build()) {
            Map<String, long[]> data = Map.of("data", new long[] {4, 2, 5});
            if (!Ops.isSupported("RNN")) {
                RuntimeException e = assertThrows(RuntimeException.class, () -> mod.bind(data, Map.of(), true));
                assertTrue(e.getMessage().contains("RNN"), e.getMessage());
                return;
            }
            mod.bind(data, Map.of(), true);
            mod.initParams(new Xavier(), null, null, false, false, false);
            NDArray p = mod.getParams().get(0).get("lstm_parameters");
            assertEquals(cell.parameterSize(5), p.size());
            try (NDScope s = NDScope.open()) {
                Map<String, NDArray> un = cell.unpackWeights(Map.of("lstm_parameters", p));
                for (Map.Entry<String, NDArray> e : un.entrySet()) {
                    if (e.getKey().endsWith("_bias")) {
                        float want = e.getKey().endsWith("_f_bias") ? 0.75f : 0f;
                        for (float x : e.getValue().toFloatArray()) {
                            assertEquals(want, x, e.getKey());
                        }
                    }
                }
            }
        }
    }
}
