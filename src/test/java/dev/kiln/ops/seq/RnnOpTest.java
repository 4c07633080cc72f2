package dev.kiln.ops.seq;

import static dev.kiln.testutil.OpTesting.assertNear;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The fused RNN operator (rnn_relu, rnn_tanh, lstm, gru; layers, bidirectional, state outputs)
 * against MXNet 1.9.1's RNN: forward in training and inference, gradients of data, parameters
 * and states from MXNet's autograd; float64 numeric gradients; shape inference; dropout between
 * layers; the packed parameter layout; errors.
 */
@ExtendWith(NoLeaks.class)
class RnnOpTest {
    private static final double TOL = 1e-4;
    private static final List<String> MODES = List.of("rnn_relu", "rnn_tanh", "lstm", "gru");

    private static List<RnnTesting.Case> allCases() {
        List<RnnTesting.Case> cs = new ArrayList<>();
        for (String m : MODES) {
            for (int l : new int[] {1, 2}) {
                for (boolean bi : new boolean[] {false, true}) {
                    for (boolean so : new boolean[] {false, true}) {
                        cs.add(new RnnTesting.Case(m, l, bi, so));
                    }
                }
            }
        }
        return cs;
    }

    private static void compare(RnnTesting.Run mx, RnnTesting.Run k, double tol, String what) {
        assertEquals(mx.outputs().size(), k.outputs().size(), what + ": number of outputs");
        for (int i = 0; i < mx.outputs().size(); i++) {
            assertNear(mx.outputs().get(i), k.outputs().get(i), tol, what + " output " + i);
        }
        assertEquals(mx.grads().size(), k.grads().size(), what + ": number of gradients");
        String[] names = {"data", "parameters", "state", "state_cell"};
        for (int i = 0; i < mx.grads().size(); i++) {
            assertNear(mx.grads().get(i), k.grads().get(i), tol, what + " grad of " + names[i]);
        }
    }

    @Test
    void forwardMatchesMxnet() {
        int seed = 0;
        for (RnnTesting.Case c : allCases()) {
            List<double[]> v = RnnTesting.values(c, 100 + seed++);
            for (boolean train : new boolean[] {false, true}) {
                RnnTesting.Run mx = RnnTesting.mxnet(c, v, train, null);
                RnnTesting.Run k = RnnTesting.kiln(c, v, train, null, DType.FLOAT32, GradReq.NULL, 1);
                compare(mx, k, TOL, c + (train ? " train" : " inference"));
                RnnTesting.Run k64 = RnnTesting.kiln(c, v, train, null, DType.FLOAT64, GradReq.NULL, 1);
                compare(mx, k64, TOL, c + (train ? " train" : " inference") + " float64");
            }
        }
    }

    @Test
    void gradientsMatchMxnetAutograd() {
        int seed = 0;
        for (RnnTesting.Case c : allCases()) {
            List<double[]> v = RnnTesting.values(c, 300 + seed);
            List<double[]> h = RnnTesting.heads(c, 500 + seed++);
            RnnTesting.Run mx = RnnTesting.mxnet(c, v, true, h);
            RnnTesting.Run k = RnnTesting.kiln(c, v, true, h, DType.FLOAT32, GradReq.WRITE, 1);
            compare(mx, k, TOL, c + " backward");
        }
    }

    @Test
    void longerSequencesAndWiderLayersMatchMxnet() {
        // T and H large enough that the batched step GEMMs and the threading thresholds matter
        for (String m : MODES) {
            RnnTesting.Case c = new RnnTesting.Case(m, 2, true, true, 12, 9, 17, 33, 0);
            List<double[]> v = RnnTesting.values(c, 41);
            List<double[]> h = RnnTesting.heads(c, 43);
            RnnTesting.Run mx = RnnTesting.mxnet(c, v, true, h);
            RnnTesting.Run k = RnnTesting.kiln(c, v, true, h, DType.FLOAT32, GradReq.WRITE, 1);
            compare(mx, k, TOL, c + " backward");
        }
    }

    @Test
    void threadedKernelsMatchMxnetAndSerial() {
        // batch x gates large enough that the per-step loops and the GEMMs split across threads
        int before = dev.kiln.engine.Engine.numThreads();
        try {
            for (String m : List.of("lstm", "gru")) {
                RnnTesting.Case c = new RnnTesting.Case(m, 2, true, true, 4, 24, 8, 128, 0);
                List<double[]> v = RnnTesting.values(c, 51);
                List<double[]> h = RnnTesting.heads(c, 53);
                dev.kiln.engine.Engine.setNumThreads(3);
                RnnTesting.Run k3 = RnnTesting.kiln(c, v, true, h, DType.FLOAT32, GradReq.WRITE, 1);
                dev.kiln.engine.Engine.setNumThreads(1);
                RnnTesting.Run k1 = RnnTesting.kiln(c, v, true, h, DType.FLOAT32, GradReq.WRITE, 1);
                compare(k1, k3, 1e-5, c + " 3 threads vs 1");
                compare(RnnTesting.mxnet(c, v, true, h), k3, TOL, c + " 3 threads vs MXNet");
            }
        } finally {
            dev.kiln.engine.Engine.setNumThreads(before);
        }
    }

    private static GradCheck.Inputs gradInputs(RnnTesting.Case c, long seed) {
        List<double[]> v = RnnTesting.values(c, seed);
        List<long[]> s = c.shapes();
        List<String> names = RnnTesting.argNames(c);
        GradCheck.Inputs in = new GradCheck.Inputs();
        for (int i = 0; i < names.size(); i++) {
            in.put(names.get(i), s.get(i), v.get(i));
        }
        return in;
    }

    @Test
    void numericGradients() {
        for (String m : MODES) {
            for (RnnTesting.Case c : List.of(new RnnTesting.Case(m, 2, true, true, 3, 2, 3, 2, 0),
                    new RnnTesting.Case(m, 1, false, false, 4, 2, 2, 3, 0),
                    new RnnTesting.Case(m, 2, true, true, 1, 1, 2, 2, 0))) {
                GradCheck.check(RnnTesting.node(c.attrs()), gradInputs(c, 61), RnnTesting.argNames(c), 1e-6, 1e-5, 1e-7);
            }
        }
    }

    @Test
    void gradReqAddAccumulates() {
        for (String m : List.of("lstm", "gru")) {
            RnnTesting.Case c = new RnnTesting.Case(m, 2, true, true);
            List<double[]> v = RnnTesting.values(c, 7);
            List<double[]> h = RnnTesting.heads(c, 8);
            RnnTesting.Run once = RnnTesting.kiln(c, v, true, h, DType.FLOAT64, GradReq.WRITE, 1);
            RnnTesting.Run twice = RnnTesting.kiln(c, v, true, h, DType.FLOAT64, GradReq.ADD, 2);
            for (int i = 0; i < once.grads().size(); i++) {
                double[] g = once.grads().get(i).clone();
                for (int j = 0; j < g.length; j++) {
                    g[j] *= 2;
                }
                assertNear(g, twice.grads().get(i), 1e-12, m + " add x2 grad " + i);
            }
        }
    }

    @Test
    void shapeInferenceFromDataAlone() {
        RnnTesting.Case c = new RnnTesting.Case("lstm", 3, true, true, 7, 5, 11, 4, 0);
        Symbol s = RnnTesting.node(c.attrs());
        assertEquals(List.of("data", "n_parameters", "n_state", "n_state_cell"), s.listArguments());
        assertEquals(List.of("n_output", "n_state_output", "n_statecell_output"), s.listOutputs());
        InferResult r = s.inferShape(Map.of("data", new long[] {7, 5, 11}));
        // GetRnnParamSize: (I + H + 2) * 4H * D + (L - 1) * (D*H + H + 2) * 4H * D
        long p = (11 + 4 + 2) * 16 * 2 + 2 * (8 + 4 + 2) * 16 * 2;
        assertArrayEquals(new long[] {p}, r.argShapes().get(1));
        assertArrayEquals(new long[] {6, 5, 4}, r.argShapes().get(2));
        assertArrayEquals(new long[] {6, 5, 4}, r.argShapes().get(3));
        assertArrayEquals(new long[] {7, 5, 8}, r.outShapes().get(0));
        assertArrayEquals(new long[] {6, 5, 4}, r.outShapes().get(2));
        assertEquals(List.of("n_output"), RnnTesting.node(new RnnTesting.Case("gru", 1, false, false).attrs()).listOutputs());
        assertEquals(List.of("n_output", "n_state_output"),
                RnnTesting.node(new RnnTesting.Case("rnn_tanh", 1, false, true).attrs()).listOutputs());
        for (String m : MODES) {
            RnnTesting.Case k = new RnnTesting.Case(m, 2, false, false, 3, 2, 5, 7, 0);
            InferResult ri = RnnTesting.node(k.attrs()).inferShape(Map.of("data", new long[] {3, 2, 5}));
            assertArrayEquals(new long[] {k.paramSize()}, ri.argShapes().get(1), m);
        }
        // the batch of an unknown data shape comes back from the state
        InferResult part = s.inferShapePartial(Map.of("n_state", new long[] {6, 5, 4}));
        assertEquals(5, part.argShapes().get(0)[1]);
    }

    @Test
    void zeroBeginStatesWithUnknownBatchAsFusedRnnCell() {
        // FusedRNNCell.begin_state: zeros of shape (L*D, 0, H), the batch inferred from the data
        RnnTesting.Case c = new RnnTesting.Case("lstm", 2, true, true);
        Map<String, Symbol> named = new LinkedHashMap<>();
        named.put("data", Symbol.variable("data"));
        named.put("parameters", Symbol.variable("n_parameters"));
        named.put("state", Symbol.create("_zeros", "begin_state_0", Map.of("shape", "(4, 0, 6)"), null));
        named.put("state_cell", Symbol.create("_zeros", "begin_state_1", Map.of("shape", "(4, 0, 6)"), null));
        Symbol s = Symbol.create("RNN", "n", c.attrs(), named);
        assertEquals(List.of("data", "n_parameters"), s.listArguments());
        List<double[]> v = RnnTesting.values(c, 23);
        List<double[]> h = RnnTesting.heads(c, 29);
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), Map.of("data", c.shapes().get(0)),
                Map.of("data", DType.FLOAT32, "n_parameters", DType.FLOAT32),
                Map.of("data", GradReq.WRITE, "n_parameters", GradReq.WRITE), new Executor.Options())) {
            assertArrayEquals(c.shapes().get(1), ex.argDict().get("n_parameters").shape().dims());
            ex.argDict().get("data").set(v.get(0));
            ex.argDict().get("n_parameters").set(v.get(1));
            ex.forward(true);
            List<double[]> zv = new ArrayList<>(List.of(v.get(0), v.get(1), new double[v.get(2).length],
                    new double[v.get(3).length]));
            RnnTesting.Run ref = RnnTesting.kiln(c, zv, true, h, DType.FLOAT32, GradReq.WRITE, 1);
            List<dev.kiln.ndarray.NDArray> hs = new ArrayList<>();
            try {
                for (int j = 0; j < ex.outputs().size(); j++) {
                    assertNear(ref.outputs().get(j), ex.outputs().get(j).toDoubleArray(), 0, "output " + j);
                    dev.kiln.ndarray.NDArray a = dev.kiln.ndarray.NDArray.zeros(ex.outputs().get(j).shape(),
                            DType.FLOAT32, Context.cpu());
                    hs.add(a);
                    a.set(h.get(j));
                }
                ex.backward(hs.toArray(new dev.kiln.ndarray.NDArray[0]));
            } finally {
                hs.forEach(dev.kiln.ndarray.NDArray::close);
            }
            assertNear(ref.grads().get(0), ex.gradDict().get("data").toDoubleArray(), 0, "data grad");
            assertNear(ref.grads().get(1), ex.gradDict().get("n_parameters").toDoubleArray(), 0, "parameters grad");
        }
    }

    @Test
    void dropoutOnlyBetweenLayersAndOnlyInTraining() {
        for (String m : MODES) {
            RnnTesting.Case c0 = new RnnTesting.Case(m, 2, true, true);
            RnnTesting.Case cp = c0.withP(0.5);
            List<double[]> v = RnnTesting.values(c0, 77);
            // inference ignores p
            RnnTesting.Run a = RnnTesting.kiln(c0, v, false, null, DType.FLOAT64, GradReq.NULL, 1);
            RnnTesting.Run b = RnnTesting.kiln(cp, v, false, null, DType.FLOAT64, GradReq.NULL, 1);
            for (int i = 0; i < a.outputs().size(); i++) {
                assertNear(a.outputs().get(i), b.outputs().get(i), 0, m + " inference with p output " + i);
            }
            // training drops: the outputs change, reproducibly for the executor's seed
            RnnTesting.Run t1 = RnnTesting.kiln(cp, v, true, null, DType.FLOAT64, GradReq.NULL, 1);
            RnnTesting.Run t2 = RnnTesting.kiln(cp, v, true, null, DType.FLOAT64, GradReq.NULL, 1);
            assertNear(t1.outputs().get(0), t2.outputs().get(0), 0, m + " same seed, same masks");
            assertTrue(!Arrays.equals(a.outputs().get(0), t1.outputs().get(0)), m + ": dropout changed nothing");
            // the first layer's final states are not affected by the dropout after it
            int half = a.outputs().get(1).length / 2;
            assertNear(Arrays.copyOf(a.outputs().get(1), half), Arrays.copyOf(t1.outputs().get(1), half), 0,
                    m + " layer-0 state unaffected");
        }
    }

    /** The packed parameters of layer {@code l} of case {@code c} as a one-layer parameter vector. */
    private static double[] layerParams(RnnTesting.Case c, double[] packed, int l) {
        int gh = c.gates() * c.hidden();
        int d = c.dirs();
        int in0 = c.input();
        int inL = d * c.hidden();
        long wTotal = (long) d * (in0 + c.hidden()) * gh + (long) (c.layers() - 1) * d * (inL + c.hidden()) * gh;
        List<Double> out = new ArrayList<>();
        for (int dir = 0; dir < d; dir++) {
            long off = l == 0 ? (long) dir * (in0 + c.hidden()) * gh
                    : (long) d * (in0 + c.hidden()) * gh + (long) ((l - 1) * d + dir) * (inL + c.hidden()) * gh;
            int in = l == 0 ? in0 : inL;
            for (long i = 0; i < (long) (in + c.hidden()) * gh; i++) {
                out.add(packed[(int) (off + i)]);
            }
        }
        for (int dir = 0; dir < d; dir++) {
            long off = wTotal + (long) (l * d + dir) * 2 * gh;
            for (int i = 0; i < 2 * gh; i++) {
                out.add(packed[(int) (off + i)]);
            }
        }
        double[] r = new double[out.size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = out.get(i);
        }
        return r;
    }

    @Test
    void packedLayoutSplitsIntoLayers() {
        // a 2-layer RNN equals layer 0 followed by layer 1, each a 1-layer RNN with its slice of
        // the packed vector (the layout documented in rnn.cc)
        for (String m : MODES) {
            for (boolean bi : new boolean[] {false, true}) {
                RnnTesting.Case c = new RnnTesting.Case(m, 2, bi, true);
                List<double[]> v = RnnTesting.values(c, 91);
                RnnTesting.Run full = RnnTesting.kiln(c, v, false, null, DType.FLOAT64, GradReq.NULL, 1);
                int sl = c.dirs() * c.batch() * c.hidden();
                RnnTesting.Case c1 = new RnnTesting.Case(m, 1, bi, true, c.seq(), c.batch(), c.input(), c.hidden(), 0);
                List<double[]> v1 = new ArrayList<>(List.of(v.get(0), layerParams(c, v.get(1), 0),
                        Arrays.copyOfRange(v.get(2), 0, sl)));
                if (c.lstm()) {
                    v1.add(Arrays.copyOfRange(v.get(3), 0, sl));
                }
                RnnTesting.Run l0 = RnnTesting.kiln(c1, v1, false, null, DType.FLOAT64, GradReq.NULL, 1);
                RnnTesting.Case c2 = new RnnTesting.Case(m, 1, bi, true, c.seq(), c.batch(), c.dirs() * c.hidden(), c.hidden(), 0);
                List<double[]> v2 = new ArrayList<>(List.of(l0.outputs().get(0), layerParams(c, v.get(1), 1),
                        Arrays.copyOfRange(v.get(2), sl, 2 * sl)));
                if (c.lstm()) {
                    v2.add(Arrays.copyOfRange(v.get(3), sl, 2 * sl));
                }
                RnnTesting.Run l1 = RnnTesting.kiln(c2, v2, false, null, DType.FLOAT64, GradReq.NULL, 1);
                assertNear(l1.outputs().get(0), full.outputs().get(0), 1e-12, m + " bi=" + bi + " output");
                double[] hy = new double[2 * sl];
                System.arraycopy(l0.outputs().get(1), 0, hy, 0, sl);
                System.arraycopy(l1.outputs().get(1), 0, hy, sl, sl);
                assertNear(hy, full.outputs().get(1), 1e-12, m + " bi=" + bi + " state_output");
            }
        }
    }

    @Test
    void dropoutMasksReachTheBackward() {
        // p so close to 1 that every inter-layer element is dropped (fixed seed): layer 1 then sees
        // zero input, and nothing flows back into layer 0 or the data
        for (String m : MODES) {
            RnnTesting.Case c = new RnnTesting.Case(m, 2, true, false).withP(0.9999999);
            List<double[]> v = RnnTesting.values(c, 17);
            List<double[]> h = RnnTesting.heads(c, 19);
            RnnTesting.Run full = RnnTesting.kiln(c, v, true, h, DType.FLOAT64, GradReq.WRITE, 1);
            int sl = c.dirs() * c.batch() * c.hidden();
            RnnTesting.Case c1 = new RnnTesting.Case(m, 1, true, false, c.seq(), c.batch(), c.dirs() * c.hidden(),
                    c.hidden(), 0);
            List<double[]> v1 = new ArrayList<>(List.of(new double[c.seq() * c.batch() * c.dirs() * c.hidden()],
                    layerParams(c, v.get(1), 1), Arrays.copyOfRange(v.get(2), sl, 2 * sl)));
            if (c.lstm()) {
                v1.add(Arrays.copyOfRange(v.get(3), sl, 2 * sl));
            }
            RnnTesting.Run one = RnnTesting.kiln(c1, v1, true, h, DType.FLOAT64, GradReq.WRITE, 1);
            assertNear(one.outputs().get(0), full.outputs().get(0), 1e-12, m + " output");
            assertNear(new double[v.get(0).length], full.grads().get(0), 0, m + " data grad");
            double[] l0 = layerParams(c, full.grads().get(1), 0);
            assertNear(new double[l0.length], l0, 0, m + " layer-0 parameter grads");
            assertNear(one.grads().get(1), layerParams(c, full.grads().get(1), 1), 1e-12, m + " layer-1 parameter grads");
            for (int i = 2; i < one.grads().size(); i++) {
                assertNear(new double[sl], Arrays.copyOfRange(full.grads().get(i), 0, sl), 0, m + " layer-0 state grad " + i);
                assertNear(one.grads().get(i), Arrays.copyOfRange(full.grads().get(i), sl, 2 * sl), 1e-12,
                        m + " layer-1 state grad " + i);
            }
        }
    }

    @Test
    void lstmGateOrderIsIfgo() {
        // one step, one unit, zero state, zero input weights: gates come from the biases alone
        // (b_x = [i, f, g, o] = [0.3, -0.2, 0.5, 0.7], b_h = 0): c = sigmoid(.3) * tanh(.5), h = sigmoid(.7) * tanh(c)
        RnnTesting.Case c = new RnnTesting.Case("lstm", 1, false, true, 1, 1, 1, 1, 0);
        double[] p = new double[c.paramSize()];  // W_x [4,1], W_h [4,1], b_x [4], b_h [4]
        p[8] = 0.3;
        p[9] = -0.2;
        p[10] = 0.5;
        p[11] = 0.7;
        RnnTesting.Run r = RnnTesting.kiln(c, List.of(new double[] {1}, p, new double[1], new double[1]), false, null,
                DType.FLOAT64, GradReq.NULL, 1);
        double cell = 1 / (1 + Math.exp(-0.3)) * Math.tanh(0.5);
        double h = 1 / (1 + Math.exp(-0.7)) * Math.tanh(cell);
        assertEquals(h, r.outputs().get(0)[0], 1e-12);
        assertEquals(cell, r.outputs().get(2)[0], 1e-12);
    }

    @Test
    void clipNanWithoutRangeIsIgnoredAsInMxnet() {
        RnnTesting.Case c = new RnnTesting.Case("lstm", 1, false, true);
        List<double[]> v = RnnTesting.values(c, 5);
        RnnTesting.Run a = RnnTesting.kiln(c, v, false, null, DType.FLOAT64, GradReq.NULL, 1);
        Map<String, String> attrs = c.attrs();
        attrs.put("lstm_state_clip_nan", "True");
        Symbol s = RnnTesting.node(attrs);
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), Map.of("data", c.shapes().get(0)),
                Map.of("data", DType.FLOAT64), Map.of(), new Executor.Options())) {
            List<String> names = RnnTesting.argNames(c);
            for (int i = 0; i < names.size(); i++) {
                ex.argDict().get(names.get(i)).set(v.get(i));
            }
            ex.forward(false);
            for (int i = 0; i < 3; i++) {
                assertNear(a.outputs().get(i), ex.outputs().get(i).toDoubleArray(), 0, "clip_nan output " + i);
            }
        }
    }

    @Test
    void imperativeInvokeMatchesExecutor() {
        for (String m : MODES) {
            RnnTesting.Case c = new RnnTesting.Case(m, 2, true, true);
            List<double[]> v = RnnTesting.values(c, 13);
            RnnTesting.Run a = RnnTesting.kiln(c, v, false, null, DType.FLOAT32, GradReq.NULL, 1);
            List<dev.kiln.ndarray.NDArray> in = new ArrayList<>();
            List<dev.kiln.ndarray.NDArray> out = List.of();
            try {
                List<long[]> shapes = c.shapes();
                for (int i = 0; i < v.size(); i++) {
                    float[] f = new float[v.get(i).length];
                    for (int j = 0; j < f.length; j++) {
                        f[j] = (float) v.get(i)[j];
                    }
                    in.add(dev.kiln.ndarray.NDArray.create(f, shapes.get(i)));
                }
                out = dev.kiln.ndarray.NDArray.invoke("RNN", c.attrs(), in.toArray(new dev.kiln.ndarray.NDArray[0]));
                assertEquals(a.outputs().size(), out.size(), m + " visible outputs");
                for (int i = 0; i < out.size(); i++) {
                    assertNear(a.outputs().get(i), out.get(i).toDoubleArray(), 0, m + " imperative output " + i);
                }
            } finally {
                in.forEach(dev.kiln.ndarray.NDArray::close);
                out.forEach(dev.kiln.ndarray.NDArray::close);
            }
        }
    }

    @Test
    void errors() {
        Map<String, String> lstm = new RnnTesting.Case("lstm", 2, false, false).attrs();
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("data", new long[] {5, 3, 4});
        // wrong state shape
        Map<String, long[]> bad = new LinkedHashMap<>(s);
        bad.put("n_state", new long[] {1, 3, 6});
        assertThrowsMessage(() -> Executor.simpleBind(RnnTesting.node(lstm), Context.cpu(), bad, GradReq.NULL).close(),
                "RNN", "n_state", "(1,3,6)", "(2,3,6)");
        Map<String, long[]> badCell = new LinkedHashMap<>(s);
        badCell.put("n_state_cell", new long[] {2, 4, 6});
        assertThrowsMessage(() -> Executor.simpleBind(RnnTesting.node(lstm), Context.cpu(), badCell, GradReq.NULL).close(),
                "RNN", "n_state_cell", "(2,4,6)", "(2,3,6)");
        // parameters size mismatch
        Map<String, long[]> badP = new LinkedHashMap<>(s);
        badP.put("n_parameters", new long[] {100});
        assertThrowsMessage(() -> Executor.simpleBind(RnnTesting.node(lstm), Context.cpu(), badP, GradReq.NULL).close(),
                "RNN", "n_parameters", "(100,)", "(" + new RnnTesting.Case("lstm", 2, false, false).paramSize() + ",)");
        // data not 3-D
        assertThrowsMessage(() -> RnnTesting.node(lstm).inferShape(Map.of("data", new long[] {5, 12})), "RNN",
                "3-D", "(5,12)");
        // bad mode, missing parameters
        Map<String, String> badMode = new LinkedHashMap<>(lstm);
        badMode.put("mode", "lstm2");
        assertThrowsMessage(() -> RnnTesting.node(badMode), "RNN", "mode", "lstm2");
        Map<String, String> noSize = new LinkedHashMap<>(lstm);
        noSize.remove("state_size");
        assertThrowsMessage(() -> RnnTesting.node(noSize), "RNN", "state_size");
        // options MXNet's CPU operator rejects
        for (String[] kv : new String[][] {{"projection_size", "3"}, {"lstm_state_clip_min", "-1"},
                {"lstm_state_clip_max", "1"}, {"use_sequence_length", "True"}, {"p", "1"}}) {
            Map<String, String> a = new LinkedHashMap<>(lstm);
            a.put(kv[0], kv[1]);
            assertThrowsMessage(() -> Executor.simpleBind(RnnTesting.node(a), Context.cpu(), s, GradReq.NULL).close(),
                    "RNN", kv[0]);
        }
    }
}
