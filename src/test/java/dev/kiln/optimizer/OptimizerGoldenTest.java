package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.kiln.ndarray.NDArray;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The verified two-step vectors of module-api spec §5.3 (MXNet 1.9): w0 = [1, -2, 3], g1 = [0.5,
 * -1, 2], g2 = [0.1, 0.2, -0.3], one index, default hyper-parameters unless listed. Weights are
 * compared to 1e-6 (the table's seven decimals); states to half a unit of the last digit shown.
 */
@ExtendWith(NoLeaks.class)
class OptimizerGoldenTest {
    static final float[] W0 = {1, -2, 3};
    static final float[] G1 = {0.5f, -1, 2};
    static final float[] G2 = {0.1f, 0.2f, -0.3f};

    /** An expected state array (in flattened state order) with its tolerance. */
    record S(double tol, double... v) {}

    record Case(String label, String optimizer, Map<String, Object> params, double[] w, S... states) {
        @Override
        public String toString() {
            return label;
        }
    }

    static Map<String, Object> kw(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    static double[] d(double... v) {
        return v;
    }

    static Stream<Case> cases() {
        return Stream.of(
                new Case("sgd lr 0.1", "sgd", kw("learning_rate", 0.1), d(0.94, -1.92, 2.83)),
                new Case("sgd lr 0.1 mu 0.9 wd 0.01 r 0.5 clip 0.6", "sgd", kw("learning_rate", 0.1, "momentum", 0.9,
                        "wd", 0.01, "rescale_grad", 0.5, "clip_gradient", 0.6), d(0.9446260, -1.9092519, 2.8923631),
                        new S(5e-7, -0.029374, 0.038748, -0.044637)),
                new Case("nag lr 0.1 mu 0.9 wd 0.01", "nag", kw("learning_rate", 0.1, "momentum", 0.9, "wd", 0.01),
                        d(0.8411526, -1.7583052, 2.5022151), new S(5e-8, -0.0566539, 0.0733839, -0.1548551)),
                new Case("adam lr 0.1 wd 0.01", "adam", kw("learning_rate", 0.1, "wd", 0.01),
                        d(0.8189141, -1.8470329, 2.8434346), new S(5e-5, 0.0568, -0.0737, 0.1556),
                        new S(5e-8, 0.0002717, 0.0010721, 0.0041902)),
                new Case("adagrad lr 0.1 wd 0.01", "adagrad", kw("learning_rate", 0.1, "wd", 0.01),
                        d(0.8784894, -1.9157137, 2.9089372), new S(1e-6, 0.26, 1.04, 4.09)),
                new Case("rmsprop lr 0.1", "rmsprop", kw("learning_rate", 0.1), d(0.6185395, -1.7490051, 2.7331588),
                        new S(1e-6, 0.0235, 0.094, 0.369)),
                new Case("rmsprop lr 0.1 centered", "rmsprop", kw("learning_rate", 0.1, "centered", true),
                        d(0.2967812, -1.4336693, 2.4176316), new S(1e-6, 0.0235, 0.094, 0.369),
                        new S(1e-6, 0.055, -0.07, 0.15), new S(5e-7, -0.3698855, 0.2329974, -0.2490352)),
                new Case("adadelta wd 0.01", "adadelta", kw("wd", 0.01), d(0.9672856, -1.9532176, 2.9326086),
                        new S(1e-6, 0.0235, 0.094, 0.369), new S(5e-8, 9.8e-6, 9.9e-6, 9.5e-6)),
                new Case("ftrl lr 0.1 wd 0.01", "ftrl", kw("learning_rate", 0.1, "wd", 0.01),
                        d(0.2925153, -0.9589224, 1.9422785), new S(5e-5, -4.42962, 19.387943, -58.732357),
                        new S(1e-6, 0.26, 1.04, 4.09)),
                new Case("signum lr 0.1 mu 0.9 wd 0.01 wd_lh 0.1", "signum", kw("learning_rate", 0.1, "momentum", 0.9,
                        "wd", 0.01, "wd_lh", 0.1), d(0.7811, -1.7612, 2.7413003), new S(5e-6, -0.05679, 0.07368, -0.15557)),
                new Case("signum lr 0.1 mu 0", "signum", kw("learning_rate", 0.1, "momentum", 0.0), d(0.8, -2.0, 3.0)),
                new Case("adamax lr 0.1", "adamax", kw("learning_rate", 0.1), d(0.8420473, -1.8631210, 2.8604870),
                        new S(1e-6, 0.055, -0.07, 0.15), new S(1e-6, 0.4995, 0.999, 1.998)),
                new Case("nadam lr 0.1", "nadam", kw("learning_rate", 0.1), d(0.8676667, -1.9086739, 2.9036264),
                        new S(1e-6, 0.055, -0.07, 0.15), new S(5e-7, 0.0002598, 0.001039, 0.004086)),
                new Case("ftml lr 0.1", "ftml", kw("learning_rate", 0.1), d(0.8826618, -1.9173383, 2.9131150),
                        new S(5e-6, 2.3070276, 4.6140552, 9.1500645), new S(5e-7, 0.0002597, 0.001039, 0.0040859),
                        new S(5e-5, -2.036325, 8.846704, -26.655189)),
                new Case("lamb lr 0.1 wd 0.01", "lamb", kw("learning_rate", 0.1, "wd", 0.01),
                        d(0.5420228, -1.6247959, 2.6072817), new S(1e-6, 0.055, -0.07, 0.15),
                        new S(5e-7, 0.0002597, 0.001039, 0.0040859)));
    }

    static void flatten(Object state, List<NDArray> out) {
        if (state instanceof NDArray a) {
            out.add(a);
        } else if (state instanceof List<?> l) {
            l.forEach(s -> flatten(s, out));
        }
    }

    static void assertClose(double[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what + " length");
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], tol, what + "[" + i + "]");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void twoSteps(Case c) {
        Optimizer opt = Optimizers.create(c.optimizer, c.params);
        try (Updater u = new Updater(opt);
             NDArray w = NDArray.create(W0, 3);
             NDArray g = NDArray.create(G1, 3)) {
            u.update(List.of(0), List.of(g), List.of(w));
            g.set(G2);
            u.update(List.of(0), List.of(g), List.of(w));
            assertClose(c.w, w.toFloatArray(), 1e-6, "weight");
            Object state = u.states().get(0);
            List<NDArray> flat = new ArrayList<>();
            flatten(state, flat);
            if (c.states.length == 0) {
                assertNull(state, "state");
            }
            assertEquals(c.states.length, flat.size(), "number of state arrays");
            for (int i = 0; i < c.states.length; i++) {
                assertClose(c.states[i].v(), flat.get(i).toFloatArray(), c.states[i].tol(), "state " + i);
            }
        }
    }
}
