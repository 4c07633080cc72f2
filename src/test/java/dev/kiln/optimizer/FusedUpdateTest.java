package dev.kiln.optimizer;

import dev.kiln.engine.Engine;
import dev.kiln.engine.KilnException;
import dev.kiln.internal.Json;
import dev.kiln.internal.KilnNative;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.ndarray.Shape;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * FusedUpdate: one run equals the same calls made one by one, dynamic values are patched per
 * run (float, int and bool parameters), bad calls fail at add() with the call named, closed
 * arrays fail before anything runs, close is idempotent, nothing leaks, and the native entries
 * reject stale handles without crashing.
 */
@ExtendWith(NoLeaks.class)
public class FusedUpdateTest {
    static float[] rand(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian());
        }
        return a;
    }

    /** N calls in one run equal the same N calls made one by one with NDArray.invokeInto. */
    @Test
    void runEqualsSeparateInvokes() {
        Random r = new Random(7);
        int nParams = 5;
        List<NDArray> all = new ArrayList<>();
        try (FusedUpdate fu = new FusedUpdate()) {
            List<NDArray[]> ref = new ArrayList<>();
            List<NDArray[]> fused = new ArrayList<>();
            for (int p = 0; p < nParams; p++) {
                int n = 3 + 17 * p;
                float[] w = rand(r, n), g = rand(r, n), m = rand(r, n);
                NDArray[] a = {NDArray.create(w, n), NDArray.create(g, n), NDArray.create(m, n)};
                NDArray[] b = {NDArray.create(w, n), NDArray.create(g, n), NDArray.create(m, n)};
                ref.add(a);
                fused.add(b);
                all.addAll(List.of(a));
                all.addAll(List.of(b));
                int idx = fu.add("sgd_mom_update", Map.of("momentum", 0.9, "rescale_grad", 0.5), List.of("lr", "wd"),
                        List.of(b), List.of(b[0]));
                assertEquals(p, idx);
            }
            assertEquals(nParams, fu.size());
            assertEquals(2 * nParams, fu.numDynamic());
            for (int step = 0; step < 3; step++) {
                double[] dyn = new double[2 * nParams];
                for (int p = 0; p < nParams; p++) {
                    dyn[2 * p] = 0.1 / (1 + step + p);
                    dyn[2 * p + 1] = 1e-3 * p;
                    NDArray[] a = ref.get(p);
                    NDArray.invokeInto("sgd_mom_update", Map.of("momentum", 0.9, "rescale_grad", 0.5,
                            "lr", dyn[2 * p], "wd", dyn[2 * p + 1]), a[0], a);
                }
                fu.run(dyn);
                for (int p = 0; p < nParams; p++) {
                    assertArrayEquals(ref.get(p)[0].toFloatArray(), fused.get(p)[0].toFloatArray(), "weight " + p);
                    assertArrayEquals(ref.get(p)[2].toFloatArray(), fused.get(p)[2].toFloatArray(), "mom " + p);
                }
            }
        } finally {
            all.forEach(NDArray::close);
        }
    }

    /** On the CPU a plan never records a CUDA graph; its runs equal separate invokes whatever the values. */
    @Test
    void runsWithRepeatedAndChangedValuesEqualSeparateInvokes() {
        checkReplaysOn(Context.cpu());
    }

    /**
     * SGD-momentum and Adam calls run over a sequence of values (repeated, changed in one place
     * only, changed everywhere), with new gradients
     * before every run: each run's weights and states equal the same calls made one by one with
     * {@link NDArray#invokeInto}, bit for bit. On a GPU (graphs on) the second run in a row with
     * the same values is recorded as a CUDA graph and the third replayed, and a change of values
     * runs eagerly (so a replay never applies stale values); on the CPU nothing is recorded. Also
     * called by {@code GpuConsistencyTest} with gpu(0).
     *
     * @param ctx the device of the arrays
     */
    public static void checkReplaysOn(Context ctx) {
        boolean gpu = graphsExpectedOn(ctx);
        Random r = new Random(21);
        int n = 777;
        List<NDArray> all = new ArrayList<>();
        Map<String, Object> sgd = Map.of("momentum", 0.9, "rescale_grad", 0.25);
        Map<String, Object> adam = Map.of("beta1", 0.9, "beta2", 0.999, "epsilon", 1e-8, "rescale_grad", 0.25);
        try (FusedUpdate fu = new FusedUpdate()) {
            NDArray[] refSgd = new NDArray[3], fuSgd = new NDArray[3], refAdam = new NDArray[4], fuAdam = new NDArray[4];
            for (NDArray[] set : List.of(refSgd, fuSgd, refAdam, fuAdam)) {
                Random same = new Random(set.length);  // the reference and the fused arrays start equal
                for (int i = 0; i < set.length; i++) {
                    try (NDArray h = NDArray.create(i >= 2 ? new float[n] : rand(same, n), n)) {
                        set[i] = h.copyTo(ctx);
                    }
                    all.add(set[i]);
                }
            }
            fu.add("sgd_mom_update", sgd, List.of("lr", "wd"), List.of(fuSgd), List.of(fuSgd[0]));
            fu.add("adam_update", adam, List.of("lr", "wd"), List.of(fuAdam), List.of(fuAdam[0]));
            assertTrue(!fu.isGraphRecorded(), "nothing recorded before the first run");
            // a2 changes only Adam's wd (the last value), a3 only SGD's lr (the first): a fingerprint
            // that missed either would replay stale values there
            double[] a = {0.05, 1e-4, 0.01, 0.0}, a2 = {0.05, 1e-4, 0.01, 1e-3}, a3 = {0.04, 1e-4, 0.01, 1e-3};
            double[] b = {0.02, 0.0, 0.001, 1e-3};
            double[][] seq = {a, a, a, a2, a2, a3, a3, a3, b, a, a};
            boolean[] replayAfter = {false, true, true, false, true, false, true, true, false, false, true};
            for (int step = 0; step < seq.length; step++) {
                float[] g1 = rand(r, n), g2 = rand(r, n);
                for (NDArray[] set : List.of(refSgd, fuSgd)) {
                    try (NDArray h = NDArray.create(g1, n)) {
                        h.copyTo(set[1]);
                    }
                }
                for (NDArray[] set : List.of(refAdam, fuAdam)) {
                    try (NDArray h = NDArray.create(g2, n)) {
                        h.copyTo(set[1]);
                    }
                }
                double[] v = seq[step];
                Map<String, Object> s1 = new java.util.HashMap<>(sgd);
                s1.put("lr", v[0]);
                s1.put("wd", v[1]);
                NDArray.invokeInto("sgd_mom_update", s1, refSgd[0], refSgd);
                Map<String, Object> s2 = new java.util.HashMap<>(adam);
                s2.put("lr", v[2]);
                s2.put("wd", v[3]);
                NDArray.invokeInto("adam_update", s2, refAdam[0], refAdam);
                fu.run(v);
                assertEquals(gpu && replayAfter[step], fu.isGraphRecorded(), ctx + " step " + step + ": graph state");
                for (int i : new int[] {0, 2}) {
                    assertArrayEquals(host(refSgd[i]), host(fuSgd[i]), ctx + " step " + step + ": sgd array " + i);
                }
                for (int i : new int[] {0, 2, 3}) {
                    assertArrayEquals(host(refAdam[i]), host(fuAdam[i]), ctx + " step " + step + ": adam array " + i);
                }
            }
        } finally {
            all.forEach(NDArray::close);
        }
    }

    /** Whether fused updates on {@code ctx} are recorded as CUDA graphs: a GPU, without KILN_CUDA_GRAPHS=0 or KILN_CUDA_SYNC=1. */
    static boolean graphsExpectedOn(Context ctx) {
        String graphs = System.getenv("KILN_CUDA_GRAPHS"), sync = System.getenv("KILN_CUDA_SYNC");
        return ctx.devType() != Context.cpu().devType() && (graphs == null || graphs.isEmpty() || !graphs.startsWith("0"))
                && (sync == null || sync.isEmpty() || sync.startsWith("0"));
    }

    private static float[] host(NDArray a) {
        try (NDArray h = a.copyTo(Context.cpu())) {
            return h.toFloatArray();
        }
    }

    @Test
    void emptyRunAndWrongDynamicCount() {
        try (FusedUpdate fu = new FusedUpdate(); NDArray w = NDArray.create(new float[] {1, 2}, 2);
             NDArray g = NDArray.create(new float[] {1, 1}, 2)) {
            fu.run(new double[0]);
            fu.add("sgd_update", Map.of("lr", 0.5), List.of(), List.of(w, g), List.of(w));
            assertThrows(IllegalArgumentException.class, () -> fu.run(new double[1]));
            fu.run(null);
            assertArrayEquals(new float[] {0.5f, 1.5f}, w.toFloatArray());
        }
    }

    @Test
    void closedArrayThrowsBeforeAnyCallRuns() {
        NDArray w1 = NDArray.create(new float[] {1, 2}, 2);
        NDArray w2 = NDArray.create(new float[] {1, 2}, 2).setName("w2");
        NDArray g = NDArray.create(new float[] {1, 1}, 2);
        try (FusedUpdate fu = new FusedUpdate()) {
            fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w1, g), List.of(w1));
            fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w2, g), List.of(w2));
            w2.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> fu.run(new double[] {1, 1}));
            assertTrue(e.getMessage().contains("call 1") && e.getMessage().contains("w2"), e.getMessage());
            assertArrayEquals(new float[] {1, 2}, w1.toFloatArray(), "no call ran");
        } finally {
            w1.close();
            g.close();
        }
    }

    /**
     * A dynamic value that would change a call's shapes from those it was added with (one_hot's
     * depth, added at its placeholder 0) is refused before anything runs; the planned value runs.
     */
    @Test
    void aDynamicValueThatChangesShapesIsRefused() {
        try (FusedUpdate fu = new FusedUpdate(); NDArray idx = NDArray.create(new float[] {0, 2, 1}, 3);
             NDArray hot = NDArray.zeros(3, 0); NDArray w = NDArray.create(new float[] {1, 2}, 2);
             NDArray g = NDArray.create(new float[] {1, 1}, 2)) {
            fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w, g), List.of(w));
            fu.add("one_hot", Map.of(), List.of("depth"), List.of(idx), List.of(hot));
            fu.run(new double[] {0.5, 0});
            assertArrayEquals(new float[] {0.5f, 1.5f}, w.toFloatArray());
            KilnException e = assertThrows(KilnException.class, () -> fu.run(new double[] {0.5, 10}));
            assertTrue(e.getMessage().contains("depth=10") && e.getMessage().contains("(3,10)"), e.getMessage());
            assertArrayEquals(new float[] {0.5f, 1.5f}, w.toFloatArray(), "nothing ran");
            fu.run(new double[] {0.5, 0});
            assertArrayEquals(new float[] {0f, 1f}, w.toFloatArray());
        }
    }

    @Test
    void closeIsIdempotentAndUseAfterCloseThrows() {
        FusedUpdate fu = new FusedUpdate();
        fu.close();
        fu.close();
        assertThrows(IllegalStateException.class, () -> fu.run(new double[0]));
        assertThrows(IllegalStateException.class, fu::isGraphRecorded);
        assertThrows(IllegalStateException.class, () -> fu.add("sgd_update", Map.of(), List.of(), List.of(), List.of()));
    }

    @Test
    void badCallsThrow() {
        try (FusedUpdate fu = new FusedUpdate(); NDArray w = NDArray.create(new float[] {1, 2}, 2);
             NDArray g3 = NDArray.create(new float[] {1, 1, 1}, 3)) {
            assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of("lr", 1), List.of("lr"), List.of(w, g3), List.of(w)));
            assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of(), List.of("lr", "lr"), List.of(w, g3), List.of(w)));
            assertThrows(IllegalArgumentException.class, () -> fu.add("", Map.of(), List.of(), List.of(w), List.of(w)));
            assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of(), List.of(), List.of(w), List.of()));
        }
    }

    @Test
    void badOpShapeOrAttributeFailsWithKilnException() {
        for (int variant = 0; variant < 4; variant++) {
            try (FusedUpdate fu = new FusedUpdate(); NDArray w = NDArray.create(new float[] {1, 2}, 2);
                 NDArray g = NDArray.create(new float[] {1, 1}, 2); NDArray g3 = NDArray.create(new float[] {1, 1, 1}, 3)) {
                final int v = variant;
                Runnable add = switch (v) {
                    case 0 -> () -> fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w, g3), List.of(w));   // shape mismatch
                    case 1 -> () -> fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w), List.of(w));       // input count
                    case 2 -> () -> fu.add("sgd_update", Map.of("bogus", 1), List.of("lr"), List.of(w, g), List.of(w));  // bad attribute
                    default -> () -> fu.add("no_such_op", Map.of(), List.of("lr"), List.of(w, g), List.of(w));
                };
                RuntimeException e = assertThrows(RuntimeException.class, () -> {
                    add.run();
                    fu.run(new double[] {0.1});
                });
                assertTrue(e instanceof KilnException || e instanceof IllegalArgumentException, e.toString());
            }
        }
    }

    /** One call: op, static attrs, dynamic keys, shapes of the state inputs (after weight, grad), dtype. */
    record Spec(String op, Map<String, Object> attrs, List<String> dyn, int states, DType dtype, int master) {}

    static double[] dynValues(Spec s, int step, int p) {
        double[] v = new double[s.dyn().size()];
        for (int k = 0; k < v.length; k++) {
            v[k] = switch (s.dyn().get(k)) {
                case "lr" -> 0.02 / step + 0.001 * p;
                case "wd" -> 1e-3 * (p % 3);
                case "t" -> step;
                case "bias_correction" -> step % 2;
                case "rescale_grad" -> 0.5 + 0.1 * step;
                default -> throw new IllegalStateException(s.dyn().get(k));
            };
        }
        return v;
    }

    static Object attrOf(String key, double v) {
        return switch (key) {
            case "t" -> (int) v;
            case "bias_correction" -> v != 0;
            default -> v;
        };
    }

    /** Many different ops (MXNet and _kiln_, float32, float64, float16 mixed precision) in one plan. */
    @Test
    void mixedPlanEqualsSeparateInvokesBitForBit() {
        List<Spec> specs = List.of(
                new Spec("sgd_mom_update", Map.of("momentum", 0.9), List.of("lr", "wd"), 1, DType.FLOAT32, 0),
                new Spec("adam_update", Map.of("clip_gradient", 0.5), List.of("lr", "wd", "rescale_grad"), 2, DType.FLOAT32, 0),
                new Spec("rmsprop_update", Map.of("gamma1", 0.9), List.of("lr"), 1, DType.FLOAT64, 0),
                new Spec("ftml_update", Map.of(), List.of("lr", "t"), 3, DType.FLOAT32, 0),
                new Spec("lamb_update_phase1", Map.of("wd", 0.01), List.of("t", "bias_correction"), 2, DType.FLOAT32, 0),
                new Spec("_kiln_adagrad_update", Map.of(), List.of("lr", "wd"), 1, DType.FLOAT32, 0),
                new Spec("_kiln_adamax_update", Map.of("beta1", 0.8), List.of("lr", "t"), 2, DType.FLOAT64, 0),
                new Spec("mp_sgd_mom_update", Map.of("momentum", 0.9), List.of("lr", "wd"), 1, DType.FLOAT16, 1),
                new Spec("nag_mom_update", Map.of("momentum", 0.9, "lr", 0.05, "wd", 0.01), List.of(), 1, DType.FLOAT32, 0));
        Random r = new Random(3);
        try (NDScope scope = NDScope.open(); FusedUpdate fu = new FusedUpdate()) {
            List<NDArray[]> ref = new ArrayList<>(), fused = new ArrayList<>();
            List<NDArray> refOut = new ArrayList<>(), fusedOut = new ArrayList<>();
            for (int p = 0; p < specs.size(); p++) {
                Spec s = specs.get(p);
                int n = 50 + 97 * p;
                int nin = 2 + s.states() + s.master();
                NDArray[] a = new NDArray[nin], b = new NDArray[nin];
                for (int i = 0; i < nin; i++) {
                    DType t = i < 2 ? s.dtype() : (s.dtype() == DType.FLOAT16 ? DType.FLOAT32 : s.dtype());
                    float[] v = rand(r, n);
                    if (i >= 2 && i < 2 + s.states() && !s.op().contains("mom")) {
                        for (int j = 0; j < n; j++) {
                            v[j] = s.op().startsWith("ftml") ? 0 : Math.abs(v[j]);   // second moments are >= 0
                        }
                    }
                    a[i] = array(v, n, t);
                    b[i] = array(v, n, t);
                }
                ref.add(a);
                fused.add(b);
                // lamb_update_phase1 writes g into a new array; the others update the weight in place
                NDArray ra = s.op().startsWith("lamb") ? NDArray.zeros(new Shape(n), s.dtype(), Context.cpu()) : a[0];
                NDArray rb = s.op().startsWith("lamb") ? NDArray.zeros(new Shape(n), s.dtype(), Context.cpu()) : b[0];
                refOut.add(ra);
                fusedOut.add(rb);
                fu.add(s.op(), s.attrs(), s.dyn(), List.of(b), List.of(rb));
            }
            for (int step = 1; step <= 4; step++) {
                List<Double> dyn = new ArrayList<>();
                for (int p = 0; p < specs.size(); p++) {
                    Spec s = specs.get(p);
                    double[] v = dynValues(s, step, p);
                    Map<String, Object> attrs = new java.util.LinkedHashMap<>(s.attrs());
                    for (int k = 0; k < v.length; k++) {
                        dyn.add(v[k]);
                        attrs.put(s.dyn().get(k), attrOf(s.dyn().get(k), v[k]));
                    }
                    NDArray.invokeInto(s.op(), attrs, refOut.get(p), ref.get(p));
                }
                fu.run(dyn.stream().mapToDouble(Double::doubleValue).toArray());
                for (int p = 0; p < specs.size(); p++) {
                    String l = specs.get(p).op() + " step " + step;
                    assertArrayEquals(refOut.get(p).toBytes(), fusedOut.get(p).toBytes(), l + " output");
                    for (int i = 2; i < ref.get(p).length; i++) {
                        assertArrayEquals(ref.get(p)[i].toBytes(), fused.get(p)[i].toBytes(), l + " state " + i);
                    }
                }
            }
        }
    }

    static NDArray array(float[] v, int n, DType t) {
        NDArray a = NDArray.create(v, n);
        if (t == DType.FLOAT32) {
            return a;
        }
        if (t == DType.FLOAT64) {
            NDArray d = a.asType(DType.FLOAT64);
            a.close();
            return d;
        }
        // float16: round to nearest even in Java
        java.nio.ByteBuffer bb = java.nio.ByteBuffer.allocate(2 * n).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            bb.putShort(toHalf(x));
        }
        a.close();
        return NDArray.fromBytes(bb.array(), new Shape(n), DType.FLOAT16, Context.cpu());
    }

    /** float -> IEEE half, round to nearest even (normal range only: |x| < 65504, no subnormals needed here). */
    static short toHalf(float f) {
        int bits = Float.floatToIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int exp = ((bits >>> 23) & 0xff) - 127 + 15;
        int mant = bits & 0x7fffff;
        if (exp <= 0) {
            return (short) sign;   // tiny values flush to 0 in this helper
        }
        int h = sign | (exp << 10) | (mant >>> 13);
        int rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1)) {
            h++;
        }
        return (short) h;
    }

    @Test
    void dynamicValuesAreCheckedBeforeAnythingRuns() {
        try (NDScope scope = NDScope.open(); FusedUpdate fu = new FusedUpdate()) {
            NDArray w1 = NDArray.create(new float[] {1, 2}, 2), w2 = NDArray.create(new float[] {1, 2}, 2);
            NDArray g = NDArray.create(new float[] {1, 1}, 2);
            NDArray d = NDArray.zeros(2), v = NDArray.zeros(2), z = NDArray.zeros(2);
            fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w1, g), List.of(w1));
            fu.add("ftml_update", Map.of("lr", 0.1), List.of("beta1", "t"), List.of(w2, g, d, v, z), List.of(w2));
            KilnException e = assertThrows(KilnException.class, () -> fu.run(new double[] {0.5, 1.5, 1}));
            assertTrue(e.getMessage().contains("call 1") && e.getMessage().contains("beta1"), e.getMessage());
            e = assertThrows(KilnException.class, () -> fu.run(new double[] {0.5, 0.5, 1.5}));
            assertTrue(e.getMessage().contains("'t'") && e.getMessage().contains("integer"), e.getMessage());
            e = assertThrows(KilnException.class, () -> fu.run(new double[] {0.5, Double.NaN, 1}));
            assertTrue(e.getMessage().contains("beta1"), e.getMessage());
            assertArrayEquals(new float[] {1, 2}, w1.toFloatArray(), "call 0 did not run");
            fu.run(new double[] {0.5, 0.5, 1});
            assertArrayEquals(new float[] {0.5f, 1.5f}, w1.toFloatArray());
        }
    }

    @Test
    void addRejectsBadCallsNamingThem() {
        try (NDScope scope = NDScope.open(); FusedUpdate fu = new FusedUpdate()) {
            NDArray w = NDArray.create(new float[] {1, 2}, 2), g = NDArray.create(new float[] {1, 1}, 2);
            NDArray g3 = NDArray.zeros(3), w64 = NDArray.zeros(new Shape(2), DType.FLOAT64, Context.cpu());
            fu.add("sgd_update", Map.of("lr", 0.1), List.of(), List.of(w, g), List.of(w));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> fu.add("sgd_update", Map.of(), List.of("lrr"), List.of(w, g), List.of(w)));
            assertTrue(e.getMessage().contains("call 1") && e.getMessage().contains("'lrr' is not a parameter"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w, g3), List.of(w)));
            assertTrue(e.getMessage().contains("Shape inconsistent"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w, g), List.of(w64)));
            assertTrue(e.getMessage().contains("call 1") && e.getMessage().contains("Type inconsistent"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of(), List.of("lr"), List.of(w, g), List.of(w, g)));
            assertTrue(e.getMessage().contains("output arrays"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of("wd", "x"), List.of("lr"), List.of(w, g), List.of(w)));
            assertTrue(e.getMessage().contains("wd"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> fu.add("sgd_update", Map.of(), List.of(), List.of(w, g), List.of(w)));
            assertTrue(e.getMessage().contains("lr"), e.getMessage());   // required parameter neither static nor dynamic
            e = assertThrows(IllegalArgumentException.class, () -> fu.add("no_such_op", Map.of(), List.of(), List.of(w, g), List.of(w)));
            assertTrue(e.getMessage().contains("no_such_op"), e.getMessage());
            assertEquals(1, fu.size(), "failed adds leave the plan unchanged");
            assertEquals(0, fu.numDynamic());
            fu.run(null);
            assertArrayEquals(new float[] {0.9f, 1.9f}, w.toFloatArray());
        }
    }

    @Test
    void planIsALiveHandleUntilClosed() {
        long before = Engine.liveHandles();
        FusedUpdate fu = new FusedUpdate();
        assertEquals(before + 1, Engine.liveHandles());
        fu.close();
        assertEquals(before, Engine.liveHandles());
    }

    /** The native entries validate every handle: stale plan and array handles are errors, never crashes. */
    @Test
    void nativeEntriesRejectStaleHandles() {
        long[] plan = new long[1];
        assertEquals(0, KilnNative.kiln_fused_create(plan));
        NDArray w = NDArray.create(new float[] {1, 2}, 2), g = NDArray.create(new float[] {1, 1}, 2);
        long wh = w.handle();
        int[] index = new int[1];
        assertEquals(0, KilnNative.kiln_fused_add(plan[0], "sgd_update", "{}", Json.write(List.of("lr")), 2,
                new long[] {wh, g.handle()}, 1, new long[] {wh}, index));
        assertEquals(0, index[0]);
        int[] info = new int[2];
        assertEquals(0, KilnNative.kiln_fused_info(plan[0], info));
        assertEquals(1, info[0]);
        assertEquals(1, info[1]);
        assertEquals(0, KilnNative.kiln_fused_run(plan[0], 1, new double[] {0.5}));
        w.close();   // the native plan still holds the (now freed) handle
        assertNotEquals(0, KilnNative.kiln_fused_run(plan[0], 1, new double[] {0.5}));
        String msg = KilnNative.kiln_last_error();
        assertTrue(msg.contains("call 0") && msg.contains("'weight'") && msg.contains("closed"), msg);
        assertNotEquals(0, KilnNative.kiln_fused_run(plan[0], 2, new double[] {0.5, 1}));
        assertNotEquals(0, KilnNative.kiln_fused_add(plan[0], "sgd_update", "{}", "[\"lr\"]", 2, new long[] {wh, g.handle()}, 1,
                new long[] {wh}, index));
        assertEquals(0, KilnNative.kiln_fused_free(plan[0]));
        assertNotEquals(0, KilnNative.kiln_fused_free(plan[0]), "double free is an error");
        assertNotEquals(0, KilnNative.kiln_fused_run(plan[0], 0, new double[1]), "freed plan");
        assertTrue(KilnNative.kiln_last_error().contains("fused update"), KilnNative.kiln_last_error());
        assertNotEquals(0, KilnNative.kiln_fused_run(12345, 0, new double[1]), "never created");
        assertNotEquals(0, KilnNative.kiln_fused_add(g.handle(), "sgd_update", "{}", "[]", 0, new long[0], 0, new long[0], index),
                "an NDArray handle is not a plan");
        g.close();
    }
}
