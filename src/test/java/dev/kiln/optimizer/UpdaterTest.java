package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.ndarray.Shape;
import dev.kiln.optimizer.lr.FactorScheduler;
import dev.kiln.optimizer.lr.LRScheduler;
import dev.kiln.testutil.NoLeaks;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The Updater (spec §5.4): lazy states, the cached fused update, input checks and the .states pickle (§7.4). */
@ExtendWith(NoLeaks.class)
public class UpdaterTest {
    static Map<String, Object> kw(Object... kv) {
        return OptimizerBaseTest.kw(kv);
    }

    @Test
    void statesAreCreatedLazilyInFirstUseOrder() {
        try (Updater u = new Updater(Optimizers.create("sgd", kw("momentum", 0.9, "learning_rate", 0.1)));
             NDArray w = NDArray.create(new float[] {1, 2}, 2);
             NDArray g = NDArray.create(new float[] {1, 1}, 2);
             NDArray b = NDArray.create(new float[] {0}, 1);
             NDArray gb = NDArray.create(new float[] {2}, 1)) {
            assertTrue(u.states().isEmpty());
            u.update("fc_bias", gb, b);
            u.update(List.of(7, "fc_bias"), List.of(g, gb), List.of(w, b));
            assertEquals(List.of("fc_bias", 7), new ArrayList<>(u.states().keySet()));
            NDArray m = assertInstanceOf(NDArray.class, u.states().get(7));
            assertArrayEquals(new float[] {-0.1f, -0.1f}, m.toFloatArray(), 1e-7f);
            // bias: m1 = -0.2, w1 = -0.2; m2 = 0.9 * -0.2 - 0.2 = -0.38, w2 = -0.58
            assertArrayEquals(new float[] {-0.58f}, b.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void statesSurviveTheCallersScope() {
        try (Updater u = new Updater(Optimizers.create("adam", null));
             NDArray w = NDArray.create(new float[] {1, 2}, 2);
             NDArray g = NDArray.create(new float[] {1, 1}, 2)) {
            try (NDScope scope = NDScope.open()) {
                u.update(0, g, w);
            }
            List<?> st = assertInstanceOf(List.class, u.states().get(0));
            assertTrue(((NDArray) st.get(0)).toFloatArray()[0] != 0);
        }
    }

    @Test
    void aCpuUpdaterNeverRecordsAGraph() {
        checkGraphsOn(Context.cpu());
    }

    /**
     * An SGD-momentum Updater on {@code ctx} over seven steps with new gradients each step and a
     * learning-rate change before the fifth: the weights equal those of the same Updater on the CPU
     * after every step, and on a GPU (graphs on) the fused update replays a CUDA graph from the
     * second step with the same learning rate on (never on the CPU). Also called by {@code
     * GpuConsistencyTest} with gpu(0).
     *
     * @param ctx the device of the weights and gradients
     */
    public static void checkGraphsOn(Context ctx) {
        boolean gpu = FusedUpdateTest.graphsExpectedOn(ctx);
        SGD onDev = (SGD) Optimizers.create("sgd", kw("learning_rate", 0.1, "momentum", 0.9, "wd", 1e-4));
        SGD onCpu = (SGD) Optimizers.create("sgd", kw("learning_rate", 0.1, "momentum", 0.9, "wd", 1e-4));
        java.util.Random r = new java.util.Random(4);
        int[] sizes = {300, 7};
        List<NDArray> all = new java.util.ArrayList<>();
        try (Updater u = new Updater(onDev); Updater ref = new Updater(onCpu)) {
            List<NDArray> w = new java.util.ArrayList<>(), g = new java.util.ArrayList<>();
            List<NDArray> wc = new java.util.ArrayList<>(), gc = new java.util.ArrayList<>();
            for (int n : sizes) {
                float[] v = new float[n];
                for (int i = 0; i < n; i++) {
                    v[i] = (float) r.nextGaussian();
                }
                try (NDArray h = NDArray.create(v, n)) {
                    w.add(h.copyTo(ctx));
                    wc.add(h.copyTo(Context.cpu()));
                }
                g.add(NDArray.zeros(new dev.kiln.ndarray.Shape(n), DType.FLOAT32, ctx));
                gc.add(NDArray.zeros(new dev.kiln.ndarray.Shape(n), DType.FLOAT32, Context.cpu()));
            }
            all.addAll(w);
            all.addAll(g);
            all.addAll(wc);
            all.addAll(gc);
            boolean[] recordedAfter = {false, true, true, true, false, true, true};
            for (int step = 0; step < recordedAfter.length; step++) {
                if (step == 4) {
                    onDev.setLearningRate(0.05);
                    onCpu.setLearningRate(0.05);
                }
                for (int p = 0; p < sizes.length; p++) {
                    float[] v = new float[sizes[p]];
                    for (int i = 0; i < v.length; i++) {
                        v[i] = (float) r.nextGaussian();
                    }
                    try (NDArray h = NDArray.create(v, sizes[p])) {
                        h.copyTo(g.get(p));
                        h.copyTo(gc.get(p));
                    }
                }
                u.update(List.of(0, 1), g, w);
                ref.update(List.of(0, 1), gc, wc);
                assertEquals(gpu && recordedAfter[step], u.fusedGraphRecorded(), ctx + " step " + step + ": graph state");
                assertEquals(1, u.fusedBuilds(), "one fused update for every step");
                for (int p = 0; p < sizes.length; p++) {
                    try (NDArray h = w.get(p).copyTo(Context.cpu())) {
                        assertArrayEquals(wc.get(p).toFloatArray(), h.toFloatArray(), 1e-6f, ctx + " step " + step + " weight " + p);
                    }
                }
            }
        } finally {
            all.forEach(NDArray::close);
        }
    }

    @Test
    void theFusedUpdateIsBuiltOnceAndReused() {
        SGD sgd = (SGD) Optimizers.create("sgd", kw("learning_rate", 1.0, "momentum", 0.5));
        try (Updater u = new Updater(sgd);
             NDArray w0 = NDArray.zeros(3);
             NDArray w1 = NDArray.zeros(2);
             NDArray g0 = NDArray.create(new float[] {1, 1, 1}, 3);
             NDArray g1 = NDArray.create(new float[] {-1, -1}, 2)) {
            for (int i = 0; i < 3; i++) {
                u.update(List.of(0, 1), List.of(g0, g1), List.of(w0, w1));
            }
            assertEquals(1, u.fusedBuilds());
            assertEquals(2, u.fusedSize());  // one op call per parameter, all in one native run
            // m: -1, -1.5, -1.75 -> w: -1, -2.5, -4.25
            assertArrayEquals(new float[] {-4.25f, -4.25f, -4.25f}, w0.toFloatArray(), 1e-6f);
            // per-step values (lr, wd, ...) are dynamic: changing them keeps the fused update
            sgd.setLearningRate(0.0);
            sgd.setRescaleGrad(3);
            u.update(List.of(0, 1), List.of(g0, g1), List.of(w0, w1));
            assertEquals(1, u.fusedBuilds());
            // m = 0.5 * -1.75 = -0.875 -> w = -5.125
            assertArrayEquals(new float[] {-5.125f, -5.125f, -5.125f}, w0.toFloatArray(), 1e-6f);
            // other arrays or keys rebuild it
            try (NDArray g0b = NDArray.create(new float[] {0, 0, 0}, 3)) {
                u.update(List.of(0, 1), List.of(g0b, g1), List.of(w0, w1));
                assertEquals(2, u.fusedBuilds());
            }
            u.update(List.of(1), List.of(g1), List.of(w1));
            assertEquals(3, u.fusedBuilds());
            assertEquals(1, u.fusedSize());
        }
    }

    /**
     * Each device's parameters updated in turn by one Updater (Module with several contexts and
     * the optimizer off the kvstore) keep one fused update each, built once: SGD and LAMB (whose
     * steps use scratch arrays), bit for bit as one Updater per weight set.
     */
    @Test
    void alternatingWeightSetsKeepOneFusedUpdateEach() {
        for (String opt : List.of("sgd", "lamb")) {
            java.util.Random r = new java.util.Random(3);
            List<NDArray> all = new java.util.ArrayList<>();
            java.util.function.Supplier<Map<String, Object>> params = () -> opt.equals("sgd")
                    ? kw("learning_rate", 0.1, "momentum", 0.9) : kw("learning_rate", 0.1, "wd", 0.01);
            try (Updater shared = new Updater(Optimizers.create(opt, params.get()));
                 Updater onlyA = new Updater(Optimizers.create(opt, params.get()));
                 Updater onlyB = new Updater(Optimizers.create(opt, params.get()))) {
                // two "devices": weights, gradients and reference copies for keys (0, 2) and (1, 3)
                List<List<NDArray>> w = new java.util.ArrayList<>(), g = new java.util.ArrayList<>(), ref = new java.util.ArrayList<>();
                for (int d = 0; d < 2; d++) {
                    List<NDArray> wd = new java.util.ArrayList<>(), gd = new java.util.ArrayList<>(), rd = new java.util.ArrayList<>();
                    for (int n : new int[] {5, 3}) {
                        float[] v = new float[n];
                        for (int i = 0; i < n; i++) {
                            v[i] = (float) r.nextGaussian();
                        }
                        wd.add(NDArray.create(v, n));
                        rd.add(NDArray.create(v, n));
                        gd.add(NDArray.zeros(n));
                    }
                    w.add(wd);
                    g.add(gd);
                    ref.add(rd);
                    all.addAll(wd);
                    all.addAll(gd);
                    all.addAll(rd);
                }
                List<List<Object>> keys = List.of(List.of(0, 2), List.of(1, 3));
                for (int step = 0; step < 5; step++) {
                    for (int d = 0; d < 2; d++) {
                        for (NDArray gi : g.get(d)) {
                            float[] v = new float[(int) gi.size()];
                            for (int i = 0; i < v.length; i++) {
                                v[i] = (float) r.nextGaussian();
                            }
                            gi.set(v);
                        }
                        shared.update(keys.get(d), g.get(d), w.get(d));
                        (d == 0 ? onlyA : onlyB).update(keys.get(d), g.get(d), ref.get(d));
                    }
                }
                assertEquals(2, shared.fusedBuilds(), opt + ": one fused update per weight set");
                assertEquals(2, shared.fusedPlans(), opt);
                for (int d = 0; d < 2; d++) {
                    for (int i = 0; i < 2; i++) {
                        assertArrayEquals(ref.get(d).get(i).toFloatArray(), w.get(d).get(i).toFloatArray(), 0f, opt + " device " + d + " weight " + i);
                    }
                }
            } finally {
                all.forEach(NDArray::close);
            }
        }
    }

    /** A plan whose weights were closed (a rebind) is freed at the next update, not kept until evicted. */
    @Test
    void plansOfClosedWeightsAreFreed() {
        try (Updater u = new Updater(Optimizers.create("sgd", kw("learning_rate", 0.1)))) {
            try (NDArray w = NDArray.zeros(4); NDArray g = NDArray.create(new float[] {1, 2, 3, 4}, 4)) {
                u.update(List.of(0), List.of(g), List.of(w));
                assertEquals(1, u.fusedPlans());
            }
            try (NDArray w2 = NDArray.zeros(4); NDArray g2 = NDArray.create(new float[] {1, 1, 1, 1}, 4)) {
                u.update(List.of(0), List.of(g2), List.of(w2));
                assertEquals(1, u.fusedPlans(), "the closed weights' plan was dropped");
                assertEquals(2, u.fusedBuilds());
                assertArrayEquals(new float[] {-0.1f, -0.1f, -0.1f, -0.1f}, w2.toFloatArray(), 1e-7f);
            }
        }
    }

    @Test
    void badInputIsRejected() {
        try (Updater u = new Updater(Optimizers.create("sgd", null));
             NDArray w = NDArray.zeros(2);
             NDArray g = NDArray.zeros(2);
             NDArray g3 = NDArray.zeros(3);
             NDArray g64 = NDArray.zeros(new Shape(2), DType.FLOAT64, Context.cpu())) {
            assertThrows(IllegalArgumentException.class, () -> u.update(List.of(0, 1), List.of(g), List.of(w)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> u.update(List.of(0, 0), List.of(g, g), List.of(w, w)));
            assertTrue(e.getMessage().contains("twice"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> u.update(List.of(0), List.of(g3), List.of(w)));
            assertTrue(e.getMessage().contains("shape"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> u.update(List.of(0), List.of(g64), List.of(w)));
            assertTrue(e.getMessage().contains("dtype"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> u.update(List.of(1.5), List.of(g), List.of(w)));
            assertTrue(e.getMessage().contains("Integer or a String"), e.getMessage());
            assertThrows(NullPointerException.class, () -> u.update(Arrays.asList(0), Arrays.asList((NDArray) null),
                    List.of(w)));
            // byte[] keys (kvstore names from ctypes) become strings
            u.update(List.of("w".getBytes(StandardCharsets.UTF_8)), List.of(g), List.of(w));
            assertTrue(u.states().containsKey("w"));
            u.update(List.of(), List.of(), List.of());  // nothing to do
            NDArray closed = NDArray.zeros(2);
            closed.close();
            assertThrows(IllegalStateException.class, () -> u.update(List.of(5), List.of(closed), List.of(w)));
        }
        Updater u = new Updater(Optimizers.create("sgd", null));
        u.close();
        u.close();
        assertThrows(IllegalStateException.class, () -> u.getStates(false));
        assertThrows(IllegalStateException.class, () -> u.update(List.of(), List.of(), List.of()));
        assertThrows(NullPointerException.class, () -> new Updater(null));
    }

    // ---- raw records --------------------------------------------------------------------------

    @Test
    void rawRecordIsByteExact() {
        try (NDArray a = NDArray.create(new float[] {1.5f, -2.0f}, 2)) {
            assertEquals(PickleTest.REC, PickleTest.HEX.formatHex(NDArrayRecord.encode(a)));
        }
        try (NDArray b = NDArrayRecord.decode(PickleTest.HEX.parseHex(PickleTest.REC), "test")) {
            assertEquals(new Shape(2), b.shape());
            assertArrayEquals(new float[] {1.5f, -2.0f}, b.toFloatArray());
        }
        try (NDArray d = NDArray.create(new double[] {0.25, 1, 2, 3, 4, 5}, 2, 3)) {
            byte[] rec = NDArrayRecord.encode(d);
            try (NDArray back = NDArrayRecord.decode(rec, "test")) {
                assertEquals(DType.FLOAT64, back.dtype());
                assertEquals(new Shape(2, 3), back.shape());
                assertArrayEquals(d.toDoubleArray(), back.toDoubleArray());
            }
        }
    }

    @Test
    void malformedRecordsAreRejected() {
        byte[] rec = PickleTest.HEX.parseHex(PickleTest.REC);
        byte[] trailing = Arrays.copyOf(rec, rec.length + 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NDArrayRecord.decode(trailing, "k"));
        assertTrue(e.getMessage().contains("after the array data"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> NDArrayRecord.decode(Arrays.copyOf(rec, rec.length - 1), "k"));
        byte[] sparse = rec.clone();
        sparse[4] = 1;
        e = assertThrows(IllegalArgumentException.class, () -> NDArrayRecord.decode(sparse, "k"));
        assertTrue(e.getMessage().contains("row_sparse"), e.getMessage());
        byte[] none = PickleTest.HEX.parseHex("c9fa93f90000000000000000");
        assertThrows(IllegalArgumentException.class, () -> NDArrayRecord.decode(none, "k"));
    }

    // ---- .states pickles ----------------------------------------------------------------------

    @Test
    void readsAProtocol4PickleWrittenByCPython() {
        try (Updater u = new Updater(Optimizers.create("adam", null))) {
            u.setStates(PickleTest.HEX.parseHex(PickleTest.P4));
            assertEquals(List.of(0, 1, "fc1_weight"), new ArrayList<>(u.states().keySet()));
            assertArrayEquals(new float[] {1.5f, -2f}, ((NDArray) u.states().get(0)).toFloatArray());
            assertNull(u.states().get(1));
            List<?> t = assertInstanceOf(List.class, u.states().get("fc1_weight"));
            assertArrayEquals(new float[] {0.25f}, ((NDArray) t.get(0)).toFloatArray());
            assertArrayEquals(new float[] {-1, 2, 3}, ((NDArray) t.get(1)).toFloatArray());
            // and writes the same content back (protocol 3, the minimal sequence)
            Map<?, ?> again = assertInstanceOf(Map.class, Pickle.load(u.getStates(false)));
            Map<?, ?> orig = assertInstanceOf(Map.class, Pickle.load(PickleTest.HEX.parseHex(PickleTest.P4)));
            assertTrue(Pickle.deepEquals(orig, again));
        }
    }

    @Test
    void statesRoundTripAndTrainingContinues() {
        float[] g1 = {0.5f, -1, 2};
        float[] g2 = {0.1f, 0.2f, -0.3f};
        // uninterrupted: three steps
        float[] want;
        try (Updater u = new Updater(Optimizers.create("sgd", kw("momentum", 0.9, "learning_rate", 0.1)));
             NDArray w = NDArray.create(new float[] {1, -2, 3}, 3);
             NDArray g = NDArray.create(g1, 3)) {
            u.update("w", g, w);
            g.set(g2);
            u.update("w", g, w);
            u.update("w", g, w);
            want = w.toFloatArray();
        }
        byte[] saved;
        try (Updater u = new Updater(Optimizers.create("sgd", kw("momentum", 0.9, "learning_rate", 0.1)));
             NDArray w = NDArray.create(new float[] {1, -2, 3}, 3);
             NDArray g = NDArray.create(g1, 3)) {
            u.update("w", g, w);
            g.set(g2);
            u.update("w", g, w);
            saved = u.getStates(false);
            // the structure MXNet expects: {'w': NDArray}
            Map<?, ?> d = assertInstanceOf(Map.class, Pickle.load(saved));
            assertEquals(List.of("w"), new ArrayList<>(d.keySet()));
            byte[] rec = PickleTest.handleOf(d.get("w"));
            try (NDArray m = NDArrayRecord.decode(rec, "w")) {
                assertArrayEquals(((NDArray) u.states().get("w")).toFloatArray(), m.toFloatArray());
            }
            // continue in a fresh updater from the saved states
            try (Updater v = new Updater(Optimizers.create("sgd", kw("momentum", 0.9, "learning_rate", 0.1)))) {
                v.setStates(saved);
                v.update("w", g, w);
                assertArrayEquals(want, w.toFloatArray(), 1e-7f);
            }
        }
    }

    @Test
    void badPicklesKeepTheCurrentStates() {
        try (Updater u = new Updater(Optimizers.create("sgd", kw("momentum", 0.9)));
             NDArray w = NDArray.zeros(2);
             NDArray g = NDArray.create(new float[] {1, 1}, 2)) {
            u.update(0, g, w);
            Map<Object, Object> handle = new LinkedHashMap<>();
            handle.put("handle", new Pickle.ByteArray(PickleTest.HEX.parseHex(PickleTest.REC)));
            Map<Object, Object> sparse = new LinkedHashMap<>();
            sparse.put(0, new Pickle.PObject(StatesCodec.NDARRAY, Pickle.Tuple.of((Object) null), false, handle));
            sparse.put(1, new Pickle.PObject(new Pickle.Global("mxnet.ndarray.sparse", "RowSparseNDArray"),
                    Pickle.Tuple.of((Object) null), false, handle));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> u.setStates(Pickle.dump(sparse)));
            assertTrue(e.getMessage().contains("sparse"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> u.setStates(Pickle.dump(List.of(1L))));
            assertThrows(IllegalArgumentException.class, () -> u.setStates(Pickle.dump(Map.of(0, "x"))));
            assertThrows(IllegalArgumentException.class, () -> u.setStates(new byte[] {1, 2, 3}));
            assertInstanceOf(NDArray.class, u.states().get(0));
            u.update(0, g, w);  // still usable
        }
    }

    @Test
    void aLoadedStateOfTheWrongShapeFailsOnUse() {
        try (Updater u = new Updater(Optimizers.create("sgd", kw("momentum", 0.9)));
             NDArray w = NDArray.zeros(3);
             NDArray g = NDArray.zeros(3)) {
            u.setStates(PickleTest.HEX.parseHex(PickleTest.P4));  // key 0 holds a (2,) array
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> u.update(0, g, w));
            assertTrue(e.getMessage().contains("key 0") && e.getMessage().contains("(2,)"), e.getMessage());
        }
    }

    @Test
    void theOptimizerCanBeDumpedWithTheStates() {
        Map<Object, String> i2n = new LinkedHashMap<>();
        i2n.put(0, "fc_weight");
        i2n.put(1, "fc_bias");
        FactorScheduler sched = new FactorScheduler(2, 0.5, 1e-8, 0.4, 1, 0.1, LRScheduler.WarmupMode.LINEAR);
        SGD sgd = new SGD(kw("momentum", 0.9, "learning_rate", 0.4, "lr_scheduler", sched, "wd", 0.01,
                "param_idx2name", i2n, "clip_gradient", 5.0, "rescale_grad", 0.125));
        sgd.setLrMult(Map.of("fc_bias", 2.0));
        try (Updater u = new Updater(sgd);
             NDArray w = NDArray.zeros(2);
             NDArray b = NDArray.zeros(1);
             NDArray g = NDArray.create(new float[] {1, 1}, 2);
             NDArray gb = NDArray.create(new float[] {1}, 1)) {
            for (int i = 0; i < 5; i++) {
                u.update(List.of(0, 1), List.of(g, gb), List.of(w, b));
            }
            byte[] blob = u.getStates(true);
            try (Updater v = new Updater(Optimizers.create("adam", null))) {
                v.setStates(blob);
                SGD o = assertInstanceOf(SGD.class, v.optimizer());
                assertEquals(0.9, o.momentum());
                assertEquals(0.01, o.wd());
                assertEquals(5.0, o.clipGradient());
                assertEquals(0.125, o.rescaleGrad());
                assertEquals(5, o.numUpdate());
                assertEquals(5, o.updateCount(1));
                assertEquals(i2n, o.idx2name());
                assertEquals(2.0, o.lrMult().get("fc_bias"));
                assertEquals(0.0, o.wdMult().get("fc_bias"));
                FactorScheduler s = assertInstanceOf(FactorScheduler.class, o.lrScheduler());
                assertEquals(sched.baseLr(), s.baseLr());
                assertEquals(sched.count(), s.count());
                assertEquals(0.1, s.warmupBeginLr());
                assertEquals(sched.get(9), s.get(9));
                // the states came along
                assertArrayEquals(((NDArray) u.states().get(0)).toFloatArray(), ((NDArray) v.states().get(0)).toFloatArray());
                // and the restored updater continues exactly like the original
                try (NDArray w2 = w.copy(); NDArray b2 = b.copy()) {
                    u.update(List.of(0, 1), List.of(g, gb), List.of(w, b));
                    v.update(List.of(0, 1), List.of(g, gb), List.of(w2, b2));
                    assertArrayEquals(w.toFloatArray(), w2.toFloatArray());
                    assertArrayEquals(b.toFloatArray(), b2.toFloatArray());
                }
            }
        }
    }

    @Test
    void readsAnOptimizerPickledByCPython() {
        try (Updater u = new Updater(Optimizers.create("adam", null))) {
            u.setStates(PickleTest.HEX.parseHex(PickleTest.OPT4));
            SGD o = assertInstanceOf(SGD.class, u.optimizer());
            assertEquals(0.1, o.learningRate());
            assertEquals(0.9, o.momentum());
            assertEquals(3, o.numUpdate());
            assertEquals(3, o.updateCount(0));
            assertEquals(Map.of(0, "fc_weight"), o.idx2name());
            assertTrue(u.states().containsKey(0));
            assertNull(u.states().get(0));
        }
    }

    @Test
    void everyOptimizerDumpsAndReloads() {
        for (String name : List.of("sgd", "nag", "adam", "adagrad", "rmsprop", "adadelta", "ftrl", "signum", "lamb",
                "adamax", "nadam", "ftml")) {
            Optimizer o = Optimizers.create(name, kw("learning_rate", 0.25, "wd", 0.5));
            try (Updater u = new Updater(o)) {
                try (Updater v = new Updater(Optimizers.create("sgd", null))) {
                    v.setStates(u.getStates(true));
                    Optimizer r = v.optimizer();
                    assertSame(o.getClass(), r.getClass(), name);
                    assertEquals(o.toString(), r.toString(), name);
                    assertEquals(0.25, r.learningRate(), name);
                }
            }
        }
    }

    static float[][] run(String name, boolean together, boolean freshPerKey) {
        Map<String, Object> p = kw("learning_rate", 0.1, "wd", 0.01);
        Optimizer shared = Optimizers.create(name, p);
        try (Updater u0 = new Updater(shared);
             Updater u1 = new Updater(freshPerKey ? Optimizers.create(name, p) : shared);
             NDArray w0 = NDArray.create(new float[] {1, -2, 3}, 3);
             NDArray w1 = NDArray.create(new float[] {0.5f, 0.25f}, 2);
             NDArray g0 = NDArray.create(new float[] {0.5f, -1, 2}, 3);
             NDArray g1 = NDArray.create(new float[] {-1, 0.75f}, 2)) {
            for (int step = 0; step < 3; step++) {
                if (together) {
                    u0.update(List.of(0, 1), List.of(g0, g1), List.of(w0, w1));
                } else {
                    u0.update(0, g0, w0);
                    u1.update(1, g1, w1);
                }
            }
            return new float[][] {w0.toFloatArray(), w1.toFloatArray()};
        }
    }

    @Test
    void oneCallForManyParametersEqualsOneCallEach() {
        for (String name : List.of("sgd", "nag", "adam", "adagrad", "rmsprop", "adadelta", "ftrl", "signum", "lamb",
                "adamax", "nadam", "ftml")) {
            float[][] together = run(name, true, false);
            float[][] apart = run(name, false, false);
            assertArrayEquals(apart[0], together[0], name);
            assertArrayEquals(apart[1], together[1], name);
        }
    }

    @Test
    void nadamSharesOneMomentumScheduleAcrossParameters() {
        float[][] shared = run("nadam", false, false);
        float[][] separate = run("nadam", false, true);
        // from the second step on every key sees the product of all earlier updates of all keys
        assertTrue(Math.abs(separate[0][0] - shared[0][0]) > 1e-6, "the first key sees the shared schedule");
        assertTrue(Math.abs(separate[1][0] - shared[1][0]) > 1e-6, "the second key sees the shared schedule");
        Nadam n = new Nadam();
        try (Updater u = new Updater(n); NDArray w = NDArray.zeros(2); NDArray g = NDArray.zeros(2);
             NDArray w2 = NDArray.zeros(1); NDArray g2 = NDArray.zeros(1)) {
            u.update(List.of(0, 1), List.of(g, g2), List.of(w, w2));
            double mu1 = 0.9 * (1 - 0.5 * Math.pow(0.96, 0.004));
            assertEquals(mu1 * mu1, n.mSchedule(), 1e-15);
        }
    }
}
