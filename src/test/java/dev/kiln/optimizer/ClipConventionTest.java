package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Gradient clipping flags (spec §5.2): the "kernel" optimizers clip only when {@code
 * clip_gradient} is truthy (0 = off), the optimizers MXNet writes in Python whenever it is not
 * None (0 clips every gradient to 0). A negative bound is "off" for both.
 */
@ExtendWith(NoLeaks.class)
class ClipConventionTest {
    static final List<String> KERNEL = List.of("sgd", "nag", "adam", "rmsprop", "ftrl", "signum", "ftml", "lamb");
    static final List<String> PYTHON = List.of("adagrad", "adadelta", "nadam", "adamax");

    static float[] twoSteps(String name, Object clip, Map<String, Object> extra) {
        Map<String, Object> p = new LinkedHashMap<>(Map.of("learning_rate", 0.1, "momentum", 0.9));
        if (!List.of("sgd", "nag", "signum").contains(name)) {
            p.remove("momentum");
        }
        p.putAll(extra);
        if (clip != null) {
            p.put("clip_gradient", clip);
        }
        try (Updater u = new Updater(Optimizers.create(name, p));
             NDArray w = NDArray.create(new float[] {1, -2, 3}, 3);
             NDArray g = NDArray.create(new float[] {0.5f, -1, 2}, 3)) {
            u.update(0, g, w);
            g.set(new float[] {0.1f, 0.2f, -0.3f});
            u.update(0, g, w);
            return w.toFloatArray();
        }
    }

    @Test
    void kernelOptimizersTreatZeroAsOff() {
        for (String n : KERNEL) {
            float[] none = twoSteps(n, null, Map.of());
            assertArrayEquals(none, twoSteps(n, 0.0, Map.of()), n + ": clip 0");
            assertArrayEquals(none, twoSteps(n, -1.0, Map.of()), n + ": clip -1");
            assertFalse(Arrays.equals(none, twoSteps(n, 0.05, Map.of())), n + ": clip 0.05 must change the result");
        }
    }

    @Test
    void pythonOptimizersClipToZeroWithZero() {
        for (String n : List.of("adagrad", "adadelta", "nadam")) {
            float[] none = twoSteps(n, null, Map.of());
            assertFalse(Arrays.equals(new float[] {1, -2, 3}, none), n + " moves without clipping");
            // every gradient clipped to 0 leaves the weight where it was (no weight decay here)
            assertArrayEquals(new float[] {1, -2, 3}, twoSteps(n, 0.0, Map.of()), 1e-7f, n + ": clip 0");
            assertArrayEquals(none, twoSteps(n, -1.0, Map.of()), n + ": clip -1 is off");
            assertFalse(Arrays.equals(none, twoSteps(n, 0.05, Map.of())), n + ": clip 0.05");
        }
        // Adamax divides by u = max(beta2 * u, |G|) = 0: MXNet's 0/0 gives NaN weights
        float[] adamax = twoSteps("adamax", 0.0, Map.of());
        assertTrue(Float.isNaN(adamax[0]), Arrays.toString(adamax));
        assertFalse(Arrays.equals(twoSteps("adamax", null, Map.of()), twoSteps("adamax", 0.05, Map.of())));
    }

    @Test
    void rmspropClipWeightsIsTruthy() {
        float[] none = twoSteps("rmsprop", null, Map.of());
        assertArrayEquals(none, twoSteps("rmsprop", null, Map.of("clip_weights", 0.0)));
        float[] clipped = twoSteps("rmsprop", null, Map.of("clip_weights", 0.5));
        for (float v : clipped) {
            assertTrue(Math.abs(v) <= 0.5f, Arrays.toString(clipped));
        }
        float[] centered = twoSteps("rmsprop", null, Map.of("clip_weights", 0.5, "centered", true));
        for (float v : centered) {
            assertTrue(Math.abs(v) <= 0.5f, Arrays.toString(centered));
        }
    }

    @Test
    void weightDecayIsOutsideTheClipForSgdAndInsideForAdam() {
        // huge weight decay, tiny clip: SGD still decays (wd outside the clip), Adam's G is clipped to +-c
        Map<String, Object> wd = Map.of("wd", 100.0);
        float[] sgd = twoSteps("sgd", 1e-3, Map.of("wd", 100.0, "momentum", 0.0));
        float[] sgdNoWd = twoSteps("sgd", 1e-3, Map.of("momentum", 0.0));
        assertTrue(Math.abs(sgd[0] - sgdNoWd[0]) > 1, "SGD's weight decay is not clipped");
        float[] adam = twoSteps("adam", 1e-3, wd);
        float[] adamNoWd = twoSteps("adam", 1e-3, Map.of());
        // with G = clip(g + wd*w) = +-c the step has the sign of w: the two runs differ only where sign(g) != sign(w)
        assertEquals(adamNoWd[0], adam[0], 1e-6);
    }
}
