package dev.kiln.ops.elemwise;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.types.DataType;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * NaN through maximum and minimum, against the real MXNet 1.9.1: a NaN on either side gives NaN
 * (MXNet's maximum returns a NaN lhs, and a NaN rhs loses every comparison); argmax and argmin
 * give the first NaN's position. Found by the graph fuzzer (MxOpFuzz), where sqrt or log of a
 * negative fed a maximum or an argmax.
 */
@ExtendWith(NoLeaks.class)
class NanOracleTest {
    static final float NAN = Float.NaN;

    @Test
    void maximumAndMinimumPropagateNaNAsMxnet() {
        MxOracle.assumeAvailable();
        float[] a = {NAN, 1, NAN, -2, 3};
        float[] b = {1, NAN, NAN, 5, -1};
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            for (String op : List.of("_maximum", "_minimum", "broadcast_maximum", "broadcast_minimum")) {
                double[] got = NDArray.invoke(op, Map.of(), NDArray.create(a, 5), NDArray.create(b, 5)).get(0).toDoubleArray();
                double[] want = MxOracle.invoke(m, op, Map.of(), MxOracle.create(m, a, 5), MxOracle.create(m, b, 5)).get(0)
                        .toType(DataType.FLOAT64, false).toDoubleArray();
                assertArrayEquals(want, got, 0, op);
            }
            // argmax / argmin: the first NaN wins (as NumPy)
            float[] x = {1, NAN, 3, 2, /* row 2 */ 4, 5, NAN, NAN, /* row 3 */ NAN, 0, 9, -9};
            for (String op : List.of("argmax", "argmin")) {
                for (String axis : List.of("0", "1")) {
                    Map<String, String> at = Map.of("axis", axis);
                    double[] got = NDArray.invoke(op, at, NDArray.create(x, 3, 4)).get(0).toDoubleArray();
                    double[] want = MxOracle.invoke(m, op, at, MxOracle.create(m, x, 3, 4)).get(0).toType(DataType.FLOAT64, false)
                            .toDoubleArray();
                    assertArrayEquals(want, got, 0, op + " axis " + axis);
                }
            }
            for (String op : List.of("_maximum_scalar", "_minimum_scalar")) {
                Map<String, String> s = Map.of("scalar", "0.5");
                double[] got = NDArray.invoke(op, s, NDArray.create(a, 5)).get(0).toDoubleArray();
                double[] want = MxOracle.invoke(m, op, s, MxOracle.create(m, a, 5)).get(0).toType(DataType.FLOAT64, false).toDoubleArray();
                assertArrayEquals(want, got, 0, op);
            }
        }
    }
}
