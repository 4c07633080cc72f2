package dev.kiln.rnn;

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

import static dev.kiln.rnn.RnnRef.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Forward values of unrolled RNN/LSTM/GRU cells equal a plain-Java implementation of MXNet's
 * equations with the same weights (1e-5), for NTC and TNC layouts, merged and per-step outputs,
 * and the final states; the zero begin states' batch size is inferred at bind.
 */
@ExtendWith(NoLeaks.class)
class CellForwardTest {
    static final int N = 2;
    static final int T = 4;
    static final int I = 3;
    static final int H = 5;

    private static Map<String, float[]> weights(Random r, String prefix, int gates, int in) {
        Map<String, float[]> w = new LinkedHashMap<>();
        w.put(prefix + "i2h_weight", RnnRef.random(r, gates * H * in, 0.6));
        w.put(prefix + "i2h_bias", RnnRef.random(r, gates * H, 0.3));
        w.put(prefix + "h2h_weight", RnnRef.random(r, gates * H * H, 0.6));
        w.put(prefix + "h2h_bias", RnnRef.random(r, gates * H, 0.3));
        return w;
    }

    private static RnnRef.Run ref(String kind, double[][][] x, Map<String, float[]> w, String p) {
        float[] iw = w.get(p + "i2h_weight");
        float[] ib = w.get(p + "i2h_bias");
        float[] hw = w.get(p + "h2h_weight");
        float[] hb = w.get(p + "h2h_bias");
        switch (kind) {
            case "lstm":
                return RnnRef.lstm(x, H, iw, ib, hw, hb);
            case "gru":
                return RnnRef.gru(x, H, iw, ib, hw, hb);
            case "rnn_relu":
                return RnnRef.rnn(x, H, iw, ib, hw, hb, true);
            default:
                return RnnRef.rnn(x, H, iw, ib, hw, hb, false);
        }
    }

    private static BaseRNNCell cell(String kind) {
        switch (kind) {
            case "lstm":
                return new LSTMCell(H);
            case "gru":
                return new GRUCell(H);
            case "rnn_relu":
                return new RNNCell(H, "relu", "rnn_", null);
            default:
                return new RNNCell(H);
        }
    }

    private static int gates(String kind) {
        return kind.equals("lstm") ? 4 : kind.equals("gru") ? 3 : 1;
    }

    private void checkMergedNtc(String kind) {
        Random r = new Random(kind.hashCode());
        BaseRNNCell c = cell(kind);
        float[] data = RnnRef.random(r, N * T * I, 1.0);
        Map<String, float[]> w = weights(r, c.prefix(), gates(kind), I);
        Unrolled u;
        try (NameManager nm = NameManager.scope()) {
            u = c.unroll(T, Symbol.variable("data"), null, "NTC", true);
        }
        List<Symbol> outs = new ArrayList<>();
        outs.add(u.merged());
        outs.addAll(u.states());
        Map<String, float[]> vals = new LinkedHashMap<>(w);
        vals.put("data", data);
        List<float[]> got = RnnRef.forward(Symbol.group(outs), Map.of("data", new long[] {N, T, I}), vals, false);
        RnnRef.Run want = ref(kind, RnnRef.steps(data, N, T, I), w, c.prefix());
        assertClose(RnnRef.ntc(want.out()), got.get(0), 1e-5, kind + " outputs");
        assertEquals(want.states().length, u.states().size());
        for (int s = 0; s < want.states().length; s++) {
            assertClose(RnnRef.flat(want.states()[s]), got.get(1 + s), 1e-5, kind + " state " + s);
        }
    }

    @Test
    void lstmMatchesReference() {
        checkMergedNtc("lstm");
    }

    @Test
    void gruMatchesReference() {
        checkMergedNtc("gru");
    }

    @Test
    void rnnTanhMatchesReference() {
        checkMergedNtc("rnn_tanh");
    }

    @Test
    void rnnReluMatchesReference() {
        checkMergedNtc("rnn_relu");
    }

    @Test
    void tncLayoutAndPerStepOutputs() {
        Random r = new Random(7);
        LSTMCell c = new LSTMCell(H);
        float[] ntcData = RnnRef.random(r, N * T * I, 1.0);
        // the same sequence in TNC order
        float[] tncData = new float[ntcData.length];
        for (int b = 0; b < N; b++) {
            for (int t = 0; t < T; t++) {
                System.arraycopy(ntcData, (b * T + t) * I, tncData, (t * N + b) * I, I);
            }
        }
        Map<String, float[]> w = weights(r, "lstm_", 4, I);
        RnnRef.Run want = ref("lstm", RnnRef.steps(ntcData, N, T, I), w, "lstm_");

        Unrolled merged = c.unroll(T, Symbol.variable("data"), null, "TNC", true);
        Map<String, float[]> vals = new LinkedHashMap<>(w);
        vals.put("data", tncData);
        List<float[]> got = RnnRef.forward(merged.merged(), Map.of("data", new long[] {T, N, I}), vals, false);
        assertClose(RnnRef.tnc(want.out()), got.get(0), 1e-5, "TNC merged");

        Unrolled steps = c.unroll(T, Symbol.variable("data"), null, "TNC", false);
        assertEquals(T, steps.outputs().size());
        got = RnnRef.forward(Symbol.group(steps.outputs()), Map.of("data", new long[] {T, N, I}), vals, false);
        for (int t = 0; t < T; t++) {
            assertClose(RnnRef.flat(want.out()[t]), got.get(t), 1e-5, "step " + t);
        }
    }

    @Test
    void listInputsAndGivenBeginStates() {
        Random r = new Random(11);
        GRUCell c = new GRUCell(H);
        List<Symbol> in = new ArrayList<>();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, float[]> vals = new LinkedHashMap<>(weights(r, "gru_", 3, I));
        float[] data = RnnRef.random(r, N * T * I, 1.0);
        double[][][] x = RnnRef.steps(data, N, T, I);
        for (int t = 0; t < T; t++) {
            in.add(Symbol.variable("x" + t));
            shapes.put("x" + t, new long[] {N, I});
            float[] f = new float[N * I];
            for (int b = 0; b < N; b++) {
                for (int i = 0; i < I; i++) {
                    f[b * I + i] = (float) x[t][b][i];
                }
            }
            vals.put("x" + t, f);
        }
        List<Symbol> begin = c.beginState(BaseRNNCell.StateFactory.variables());
        assertEquals("gru_begin_state_0", begin.get(0).name());
        shapes.put("gru_begin_state_0", new long[] {N, H});
        // a zero fed state gives the same result as the reference (which starts at zero)
        vals.put("gru_begin_state_0", new float[N * H]);
        Unrolled u = c.unroll(T, in, begin, "NTC", true);
        List<float[]> got = RnnRef.forward(u.merged(), shapes, vals, false);
        RnnRef.Run want = ref("gru", x, vals, "gru_");
        assertClose(RnnRef.ntc(want.out()), got.get(0), 1e-5, "GRU with list inputs");
    }
}
