package dev.kiln.optimizer;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@ExtendWith(NoLeaks.class)
class FusedUpdateTest {
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

    @Test
    void closeIsIdempotentAndUseAfterCloseThrows() {
        FusedUpdate fu = new FusedUpdate();
        fu.close();
        fu.close();
        assertThrows(IllegalStateException.class, () -> fu.run(new double[0]));
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
}
