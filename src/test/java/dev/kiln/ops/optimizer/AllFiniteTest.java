package dev.kiln.ops.optimizer;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.op.OpInfo;
import dev.kiln.op.Ops;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * all_finite and multi_all_finite (MXNet's AMP overflow check): the flag against a direct scan in
 * Java for float16, float32 and float64 inputs with Inf, -Inf and NaN at the start, the middle and
 * the end; init_output=False only lowers the flag; errors for integer inputs and a wrong array count.
 * {@link #checkOn} is also the GPU case (GpuOptimizerCases).
 */
@ExtendWith(NoLeaks.class)
public class AllFiniteTest {
    @Test
    void flagsMatchADirectScanOnTheCpu() {
        checkOn(Context.cpu());
    }

    /** The checks on {@code ctx}: arrays are made on the CPU and copied there. */
    public static void checkOn(Context ctx) {
        Random r = new Random(11);
        float[] bad = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN};
        for (DType t : new DType[] {DType.FLOAT16, DType.FLOAT32, DType.FLOAT64}) {
            for (int n : new int[] {1, 7, 1000, 70_001}) {
                for (int at : new int[] {-1, 0, n / 2, n - 1}) {  // -1: all finite
                    for (float v : at < 0 ? new float[] {0} : bad) {
                        float[] x = new float[n];
                        for (int i = 0; i < n; i++) {
                            x[i] = (r.nextFloat() - 0.5f) * 100;
                        }
                        if (at >= 0) {
                            x[at] = v;
                        }
                        double want = 1;
                        for (float f : x) {
                            want = Float.isFinite(f) ? want : 0;
                        }
                        String what = t + " n=" + n + " at=" + at + " " + v;
                        try (NDScope s = NDScope.open()) {
                            NDArray a = on(ctx, x, t);
                            NDArray good = on(ctx, new float[] {1, 2, 3}, t);
                            assertEquals(want, flag(NDArray.invoke("all_finite", Map.of(), a).get(0)), what);
                            assertEquals(want, flag(NDArray.invoke("multi_all_finite", Map.of("num_arrays", 2), good, a).get(0)), what);
                            assertEquals(want, flag(NDArray.invoke("multi_all_finite", Map.of("num_arrays", 2), a, good).get(0)), what);
                            // init_output=False: the flag can only fall
                            NDArray out = NDArray.zeros(new dev.kiln.ndarray.Shape(1), DType.FLOAT32, ctx);
                            NDArray.invokeInto("all_finite", Map.of("init_output", false), out, good);
                            assertEquals(0.0, flag(out), what + ": stays 0");
                            out.fill(1);
                            NDArray.invokeInto("multi_all_finite", Map.of("num_arrays", 1, "init_output", false), out, a);
                            assertEquals(want, flag(out), what + ": 1 lowered");
                            // init_output=None is the default (True): the flag is set first
                            out.fill(0);
                            NDArray.invokeInto("multi_all_finite", Map.of("num_arrays", 1, "init_output", "None"), out, good);
                            assertEquals(1.0, flag(out), what + ": init_output=None sets the flag");
                        }
                    }
                }
            }
        }
        try (NDScope s = NDScope.open()) {
            NDArray ints = on(ctx, new float[] {1, 2}, DType.INT32);
            assertThrows(KilnException.class, () -> NDArray.invoke("all_finite", Map.of(), ints));
            NDArray f = on(ctx, new float[] {1, 2}, DType.FLOAT32);
            assertThrows(KilnException.class, () -> NDArray.invoke("multi_all_finite", Map.of("num_arrays", 3), f, f));
            assertThrows(KilnException.class, () -> NDArray.invoke("multi_all_finite", Map.of("num_arrays", 0)));
        }
    }

    @Test
    void notDifferentiable() {
        for (String op : new String[] {"all_finite", "multi_all_finite"}) {
            OpInfo info = Ops.info(op);
            assertFalse(info.isDifferentiable(), op);
            assertEquals("True", info.param("init_output").defaultValue(), op + ".init_output");
        }
        assertEquals(java.util.List.of("array0", "array1", "array2"), Ops.info("multi_all_finite", Map.of("num_arrays", "3")).inputs());
    }

    private static NDArray on(Context ctx, float[] x, DType t) {
        try (NDArray f = NDArray.create(x, x.length); NDArray c = NDArray.invoke("Cast", Map.of("dtype", t.toString().toLowerCase()), f).get(0)) {
            return c.copyTo(ctx);
        }
    }

    private static double flag(NDArray a) {
        assertEquals(DType.FLOAT32, a.dtype());
        assertEquals(1, a.size());
        return a.toDoubleArray()[0];
    }
}
