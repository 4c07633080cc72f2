package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * multi_precision with float16 weights (spec §5.1): SGD and NAG keep {@code (momentum or None,
 * weight32)} and run the mp_* kernels; the float32 master copy follows the float32 update on the
 * float16-rounded gradients, and the weight is its float16 rounding.
 */
@ExtendWith(NoLeaks.class)
class MultiPrecisionTest {
    static final float[] W0 = {1, -2, 3};
    static final float[] G1 = {0.5f, -1, 2};
    static final float[] G2 = {0.1f, 0.2f, -0.3f};

    /** IEEE binary16 bits of a float, rounded to nearest even (finite, normal-range inputs). */
    static short toHalfBits(float f) {
        int x = Float.floatToIntBits(f);
        int sign = (x >>> 16) & 0x8000;
        int exp = ((x >>> 23) & 0xff) - 127 + 15;
        int mant = x & 0x7fffff;
        if (f == 0) {
            return (short) sign;
        }
        if (exp <= 0 || exp >= 31) {
            throw new IllegalArgumentException("test helper handles normal float16 values only: " + f);
        }
        int h = (exp << 10) | (mant >>> 13);
        int rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest == 0x1000 && (h & 1) == 1)) {
            h++;
        }
        return (short) (sign | h);
    }

    static float fromHalfBits(short h) {
        int sign = (h & 0x8000) << 16;
        int exp = (h >>> 10) & 0x1f;
        int mant = h & 0x3ff;
        if (exp == 0 && mant == 0) {
            return Float.intBitsToFloat(sign);
        }
        if (exp == 0 || exp == 31) {
            throw new IllegalArgumentException("test helper handles normal float16 values only");
        }
        return Float.intBitsToFloat(sign | ((exp - 15 + 127) << 23) | (mant << 13));
    }

    static NDArray half(float[] v) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(2 * v.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putShort(toHalfBits(f));
        }
        return NDArray.fromBytes(b.array(), new Shape(v.length), DType.FLOAT16, Context.cpu());
    }

    static float[] halfValues(NDArray a) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(a.toBytes()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[(int) a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = fromHalfBits(b.getShort());
        }
        return out;
    }

    static float[] roundedToHalf(float[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = fromHalfBits(toHalfBits(v[i]));
        }
        return out;
    }

    /** Two steps on float32 weights with the float16-rounded gradients: the master copy's reference. */
    static float[][] float32Reference(String name, Map<String, Object> params) {
        try (Updater u = new Updater(Optimizers.create(name, params));
             NDArray w = NDArray.create(W0, 3);
             NDArray g = NDArray.create(roundedToHalf(G1), 3)) {
            u.update(0, g, w);
            g.set(roundedToHalf(G2));
            u.update(0, g, w);
            List<NDArray> flat = new java.util.ArrayList<>();
            OptimizerGoldenTest.flatten(u.states().get(0), flat);
            return new float[][] {w.toFloatArray(), flat.isEmpty() ? null : flat.get(0).toFloatArray()};
        }
    }

    static void checkMasterCopy(String name, Map<String, Object> params, boolean withMomentum) {
        float[][] ref = float32Reference(name, params);
        Map<String, Object> mp = new java.util.LinkedHashMap<>(params);
        mp.put("multi_precision", true);
        try (Updater u = new Updater(Optimizers.create(name, mp));
             NDArray w = half(W0);
             NDArray g = half(G1);
             NDArray g2 = half(G2)) {
            u.update(0, g, w);
            u.update(0, g2, w);
            List<?> st = assertInstanceOf(List.class, u.states().get(0));
            assertEquals(2, st.size());
            NDArray w32 = assertInstanceOf(NDArray.class, st.get(1));
            assertEquals(DType.FLOAT32, w32.dtype());
            assertArrayEquals(ref[0], w32.toFloatArray(), 1e-6f, name + " master copy");
            assertArrayEquals(roundedToHalf(ref[0]), halfValues(w), 0f, name + " float16 weight");
            assertEquals(DType.FLOAT16, w.dtype());
            if (withMomentum) {
                NDArray mom = assertInstanceOf(NDArray.class, st.get(0));
                assertEquals(DType.FLOAT32, mom.dtype());
                assertArrayEquals(ref[1], mom.toFloatArray(), 1e-6f, name + " momentum");
            } else {
                assertNull(st.get(0));
            }
            // the .states layout is (momentum or None, weight32)
            Map<?, ?> d = assertInstanceOf(Map.class, Pickle.load(u.getStates(false)));
            Pickle.Tuple t = assertInstanceOf(Pickle.Tuple.class, d.get(0L));
            assertEquals(2, t.size());
            assertEquals(DType.FLOAT32.id(), recordDtype(PickleTest.handleOf(t.get(1))));
        }
    }

    static int recordDtype(byte[] rec) {
        // V2 record of a 1-D array: magic, stype, ndim, dim, dev_type, dev_id, dtype flag
        return java.nio.ByteBuffer.wrap(rec, 4 + 4 + 4 + 8 + 4 + 4, 4).order(java.nio.ByteOrder.LITTLE_ENDIAN).getInt();
    }

    @Test
    void sgdWithMomentum() {
        checkMasterCopy("sgd", OptimizerBaseTest.kw("learning_rate", 0.1, "momentum", 0.9, "wd", 0.01, "rescale_grad", 0.5,
                "clip_gradient", 0.6), true);
    }

    @Test
    void sgdWithoutMomentum() {
        checkMasterCopy("sgd", OptimizerBaseTest.kw("learning_rate", 0.1, "wd", 0.01), false);
    }

    @Test
    void nagWithMomentum() {
        checkMasterCopy("nag", OptimizerBaseTest.kw("learning_rate", 0.1, "momentum", 0.9, "wd", 0.01), true);
    }

    @Test
    void nagWithoutMomentum() {
        checkMasterCopy("nag", OptimizerBaseTest.kw("learning_rate", 0.1, "wd", 0.01), false);
    }

    /**
     * The other optimizers use the base-class layout {@code (weight32, inner_state)} and update the
     * master copy through native {@code Cast} calls (float16 gradient to float32, master copy back
     * to float16). The numbers are checked once the {@code Cast} operator is registered.
     */
    @Test
    void otherOptimizersKeepAFloat32MasterCopy() {
        for (String name : List.of("adam", "rmsprop", "adagrad", "adadelta", "ftrl", "signum", "lamb", "adamax", "nadam",
                "ftml")) {
            Map<String, Object> params = OptimizerBaseTest.kw("learning_rate", 0.1, "wd", 0.01);
            Map<String, Object> mp = new java.util.LinkedHashMap<>(params);
            mp.put("multi_precision", true);
            try (Updater u = new Updater(Optimizers.create(name, mp));
                 NDArray w = half(W0);
                 NDArray g = half(G1);
                 NDArray g2 = half(G2)) {
                if (!dev.kiln.op.Ops.isSupported("Cast")) {
                    assertThrows(IllegalArgumentException.class, () -> u.update(0, g, w), name);
                } else {
                    u.update(0, g, w);
                    u.update(0, g2, w);
                }
                List<?> st = assertInstanceOf(List.class, u.states().get(0), name);
                NDArray w32 = assertInstanceOf(NDArray.class, st.get(0), name);
                assertEquals(DType.FLOAT32, w32.dtype());
                if (dev.kiln.op.Ops.isSupported("Cast")) {
                    float[][] ref = float32Reference(name, params);
                    assertArrayEquals(ref[0], w32.toFloatArray(), 1e-6f, name + " master copy");
                    assertArrayEquals(roundedToHalf(ref[0]), halfValues(w), 0f, name + " float16 weight");
                }
            }
        }
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.kiln.op.Ops.isSupported("Cast"),
                "the native Cast operator is not registered yet: float16 master-copy updates of these optimizers "
                        + "were checked for their state layout only");
    }

    @Test
    void float32WeightsIgnoreMultiPrecision() {
        try (Updater u = new Updater(Optimizers.create("sgd", OptimizerBaseTest.kw("multi_precision", true, "momentum", 0.9)));
             NDArray w = NDArray.create(W0, 3);
             NDArray g = NDArray.create(G1, 3)) {
            u.update(0, g, w);
            assertInstanceOf(NDArray.class, u.states().get(0));
        }
    }

    /**
     * Without multi_precision a float16 weight and its momentum stay float16 (MXNet's "accumulating
     * with float16"): each step computes in float32 and rounds the new momentum and weight once.
     */
    @Test
    void float16WithoutMultiPrecisionKeepsFloat16States() {
        try (Updater u16 = new Updater(Optimizers.create("sgd", OptimizerBaseTest.kw("momentum", 0.9, "learning_rate", 0.1)));
             Updater u32 = new Updater(Optimizers.create("sgd", OptimizerBaseTest.kw("momentum", 0.9, "learning_rate", 0.1)));
             NDArray w = half(W0);
             NDArray g = half(G1);
             NDArray w32 = NDArray.create(W0, 3);
             NDArray g32 = NDArray.create(G1, 3)) {
            u16.update(0, g, w);
            u32.update(0, g32, w32);
            NDArray mom = (NDArray) u16.states().get(0);
            assertEquals(DType.FLOAT16, mom.dtype());
            float[] want = w32.toFloatArray();
            float[] got = w.toFloatArray();
            for (int i = 0; i < want.length; i++) {
                assertEquals(fromHalfBits(toHalfBits(want[i])), got[i], "weight " + i);
            }
            float[] wantMom = ((NDArray) u32.states().get(0)).toFloatArray();
            float[] gotMom = mom.toFloatArray();
            for (int i = 0; i < wantMom.length; i++) {
                assertEquals(fromHalfBits(toHalfBits(wantMom[i])), gotMom[i], "momentum " + i);
            }
        }
    }
}
