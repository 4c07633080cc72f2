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
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Sequential, Bidirectional, Residual, Dropout and Zoneout cells: graphs bind and compute what MXNet's cells compute. */
@ExtendWith(NoLeaks.class)
class CombinatorTest {
    static final int N = 2;
    static final int T = 3;
    static final int I = 4;
    static final int H = 4;

    private static Map<String, float[]> rnnWeights(Random r, String p, int in) {
        Map<String, float[]> w = new LinkedHashMap<>();
        w.put(p + "i2h_weight", RnnRef.random(r, H * in, 0.6));
        w.put(p + "i2h_bias", RnnRef.random(r, H, 0.3));
        w.put(p + "h2h_weight", RnnRef.random(r, H * H, 0.6));
        w.put(p + "h2h_bias", RnnRef.random(r, H, 0.3));
        return w;
    }

    private static RnnRef.Run tanhRef(double[][][] x, Map<String, float[]> w, String p) {
        return RnnRef.rnn(x, H, w.get(p + "i2h_weight"), w.get(p + "i2h_bias"), w.get(p + "h2h_weight"), w.get(p + "h2h_bias"),
                false);
    }

    private static double[][][] reversed(double[][][] x) {
        double[][][] r = new double[x.length][][];
        for (int t = 0; t < x.length; t++) {
            r[t] = x[x.length - 1 - t];
        }
        return r;
    }

    @Test
    void sequentialStacksLayers() {
        Random r = new Random(1);
        SequentialRNNCell st = new SequentialRNNCell();
        st.add(new RNNCell(H, "tanh", "a_", null)).add(new RNNCell(H, "tanh", "b_", null));
        Map<String, float[]> vals = new LinkedHashMap<>(rnnWeights(r, "a_", I));
        vals.putAll(rnnWeights(r, "b_", H));
        float[] data = RnnRef.random(r, N * T * I, 1);
        vals.put("data", data);
        Unrolled u = st.unroll(T, Symbol.variable("data"), null, "NTC", true);
        assertEquals(2, u.states().size());
        List<Symbol> outs = new ArrayList<>(List.of(u.merged()));
        outs.addAll(u.states());
        List<float[]> got = RnnRef.forward(Symbol.group(outs), Map.of("data", new long[] {N, T, I}), vals, false);
        RnnRef.Run a = tanhRef(RnnRef.steps(data, N, T, I), vals, "a_");
        RnnRef.Run b = tanhRef(a.out(), vals, "b_");
        assertClose(RnnRef.ntc(b.out()), got.get(0), 1e-5, "stack output");
        assertClose(RnnRef.flat(a.states()[0]), got.get(1), 1e-5, "layer a final state");
        assertClose(RnnRef.flat(b.states()[0]), got.get(2), 1e-5, "layer b final state");

        // stepping the stack by hand gives the same last output
        st.reset();
        List<Symbol> states = st.beginState();
        Symbol x = Symbol.variable("data");
        List<Symbol> steps = Seq.split(x, 1, T);
        Step s = null;
        for (int t = 0; t < T; t++) {
            s = st.step(steps.get(t), states);
            states = s.states();
        }
        float[] last = RnnRef.forward(s.output(), Map.of("data", new long[] {N, T, I}), vals, false).get(0);
        assertClose(RnnRef.flat(b.out()[T - 1]), last, 1e-5, "stepped stack");
    }

    @Test
    void bidirectionalConcatenatesForwardAndReversed() {
        Random r = new Random(2);
        Map<String, float[]> vals = new LinkedHashMap<>(rnnWeights(r, "l_", I));
        vals.putAll(rnnWeights(r, "r_", I));
        float[] data = RnnRef.random(r, N * T * I, 1);
        vals.put("data", data);
        double[][][] x = RnnRef.steps(data, N, T, I);
        RnnRef.Run l = tanhRef(x, vals, "l_");
        RnnRef.Run rr = tanhRef(reversed(x), vals, "r_");
        double[][][] want = new double[T][N][2 * H];
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < N; b++) {
                System.arraycopy(l.out()[t][b], 0, want[t][b], 0, H);
                System.arraycopy(rr.out()[T - 1 - t][b], 0, want[t][b], H, H);
            }
        }
        for (Boolean merge : new Boolean[] {true, false}) {
            BidirectionalCell bi = new BidirectionalCell(new RNNCell(H, "tanh", "l_", null), new RNNCell(H, "tanh", "r_", null));
            Unrolled u;
            try (NameManager nm = NameManager.scope()) {
                u = bi.unroll(T, Symbol.variable("data"), null, "NTC", merge);
            }
            assertEquals(2, u.states().size());
            if (merge) {
                assertEquals("bi_out", u.merged().name());
                float[] got = RnnRef.forward(u.merged(), Map.of("data", new long[] {N, T, I}), vals, false).get(0);
                assertClose(RnnRef.ntc(want), got, 1e-5, "merged");
            } else {
                assertEquals("bi_t2", u.outputs().get(2).name());
                List<float[]> got = RnnRef.forward(Symbol.group(u.outputs()), Map.of("data", new long[] {N, T, I}), vals, false);
                for (int t = 0; t < T; t++) {
                    assertClose(RnnRef.flat(want[t]), got.get(t), 1e-5, "step " + t);
                }
            }
            List<float[]> st = RnnRef.forward(Symbol.group(u.states()), Map.of("data", new long[] {N, T, I}), vals, false);
            assertClose(RnnRef.flat(l.states()[0]), st.get(0), 1e-5, "left final state");
            assertClose(RnnRef.flat(rr.states()[0]), st.get(1), 1e-5, "right final state (after the first input)");
        }
    }

    @Test
    void residualAddsTheInput() {
        Random r = new Random(3);
        Map<String, float[]> vals = new LinkedHashMap<>(rnnWeights(r, "rnn_", I));
        float[] data = RnnRef.random(r, N * T * I, 1);
        vals.put("data", data);
        double[][][] x = RnnRef.steps(data, N, T, I);
        RnnRef.Run base = tanhRef(x, vals, "rnn_");
        double[][][] want = new double[T][N][H];
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < N; b++) {
                for (int k = 0; k < H; k++) {
                    want[t][b][k] = base.out()[t][b][k] + x[t][b][k];
                }
            }
        }
        ResidualCell res = new ResidualCell(new RNNCell(H));
        Unrolled merged = res.unroll(T, Symbol.variable("data"), null, "NTC", true);
        assertTrue(merged.merged().name().endsWith("_plus_residual"), merged.merged().name());
        assertClose(RnnRef.ntc(want), RnnRef.forward(merged.merged(), Map.of("data", new long[] {N, T, I}), vals, false).get(0),
                1e-5, "merged residual");
        Unrolled list = res.unroll(T, Symbol.variable("data"), null, "NTC", false);
        assertEquals("rnn_t1_out_plus_residual", list.outputs().get(1).name());
        assertClose(RnnRef.flat(want[1]),
                RnnRef.forward(list.outputs().get(1), Map.of("data", new long[] {N, T, I}), vals, false).get(0), 1e-5, "step 1");
    }

    @Test
    void dropoutCellDropsOnlyInTraining() {
        Random r = new Random(4);
        float[] data = RnnRef.random(r, N * T * I, 1);
        DropoutCell d = new DropoutCell(0.5);
        Unrolled u = d.unroll(T, Symbol.variable("data"), null, "NTC", true);
        assertTrue(u.states().isEmpty());
        assertEquals(List.of("data"), u.merged().listArguments());
        long dropouts = u.merged().getInternals().listOutputs().stream().filter(n -> n.startsWith("dropout") && n.endsWith("_output")).count();
        assertEquals(1, dropouts, "one Dropout node over the whole merged sequence");
        Map<String, float[]> vals = Map.of("data", data);
        float[] inference = RnnRef.forward(u.merged(), Map.of("data", new long[] {N, T, I}), vals, false).get(0);
        double[] dd = new double[data.length];
        for (int i = 0; i < dd.length; i++) {
            dd[i] = data[i];
        }
        assertClose(dd, inference, 0, "identity at inference");
        float[] train = RnnRef.forward(u.merged(), Map.of("data", new long[] {N, T, I}), vals, true).get(0);
        int zeros = 0;
        for (int i = 0; i < train.length; i++) {
            assertTrue(train[i] == 0f || Math.abs(train[i] - 2 * data[i]) < 1e-6, "dropped or scaled by 1/(1-p)");
            zeros += train[i] == 0f ? 1 : 0;
        }
        assertTrue(zeros > 0 && zeros < train.length, "some but not all dropped: " + zeros);
        Unrolled perStep = d.unroll(T, Symbol.variable("data"), null, "NTC", false);
        assertEquals(T, perStep.outputs().size());
        assertThrows(IllegalArgumentException.class, () -> new DropoutCell(1.0));
    }

    @Test
    void zoneoutEqualsBaseAtInferenceAndMixesInTraining() {
        Random r = new Random(5);
        Map<String, float[]> vals = new LinkedHashMap<>(rnnWeights(r, "rnn_", I));
        float[] data = RnnRef.random(r, N * T * I, 1);
        vals.put("data", data);
        RnnRef.Run base = tanhRef(RnnRef.steps(data, N, T, I), vals, "rnn_");
        ZoneoutCell z = new ZoneoutCell(new RNNCell(H), 0.5, 0.5);
        Unrolled u = z.unroll(T, Symbol.variable("data"), null, "NTC", true);
        float[] inf = RnnRef.forward(u.merged(), Map.of("data", new long[] {N, T, I}), vals, false).get(0);
        assertClose(RnnRef.ntc(base.out()), inf, 1e-5, "zoneout is the identity at inference");
        float[] train = RnnRef.forward(u.merged(), Map.of("data", new long[] {N, T, I}), vals, true).get(0);
        // step 0: each output element is the new value or the previous output (zeros)
        for (int b = 0; b < N; b++) {
            for (int k = 0; k < H; k++) {
                float v = train[(b * T) * H + k];
                assertTrue(v == 0f || Math.abs(v - base.out()[0][b][k]) < 1e-5, "step 0 element " + v);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> new ZoneoutCell(new FusedRNNCell(2, 1, "lstm"), 0.1, 0.1));
    }
}
