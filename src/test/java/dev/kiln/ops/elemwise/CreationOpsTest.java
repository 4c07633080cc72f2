package dev.kiln.ops.elemwise;

import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The creation operators _ones, _full, _zeros_without_dtype, _eye and _linspace (ops/index/creation.cc):
 * values against Java references in every output type, shapes (from the parameters, or inferred
 * from a consumer for 0 dims), and the errors. MXNet comparisons: OpForwardOracleTest.
 */
@ExtendWith(NoLeaks.class)
class CreationOpsTest {

    /** The single output of {@code sym} (no arguments unless shapes/values are given), with its dtype and shape. */
    record Result(double[] v, DType type, long[] shape) {}

    static Result run(Symbol sym, Map<String, long[]> shapes, Map<String, double[]> values, DType argType) {
        try (Executor ex = ExecTesting.bind(sym, shapes, values, argType, Map.of(), null)) {
            ex.forward(false);
            NDArray o = ex.outputs().get(0);
            return new Result(o.toDoubleArray(), o.dtype(), o.shape().dims());
        }
    }

    static Result run(Symbol sym) {
        return run(sym, Map.of(), Map.of(), DType.FLOAT32);
    }

    static double[] filled(int n, double v) {
        double[] r = new double[n];
        java.util.Arrays.fill(r, v);
        return r;
    }

    @Test
    void onesAndFullInEveryType() {
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.INT32, DType.INT64, DType.UINT8, DType.INT8)) {
            Result o = run(Symbol.ones(null, t, 2, 3));
            assertEquals(t, o.type(), "_ones dtype");
            assertArrayEquals(new long[] {2, 3}, o.shape());
            assertArrayEquals(filled(6, 1), o.v(), "_ones " + t);
            Result f = run(Symbol.full(null, 2.5, t, 3, 1, 2));
            assertEquals(t, f.type(), "_full dtype");
            assertArrayEquals(new long[] {3, 1, 2}, f.shape());
            boolean integral = t == DType.INT32 || t == DType.INT64 || t == DType.UINT8 || t == DType.INT8;
            assertArrayEquals(filled(6, integral ? 2 : 2.5), f.v(), "_full 2.5 " + t);
        }
        // the default dtype is float32; a negative value truncates toward zero in an integer type
        assertEquals(DType.FLOAT32, run(Symbol.ones(null, null, 4)).type());
        assertArrayEquals(filled(4, -3), run(Symbol.full(null, -3.7, DType.INT32, 4)).v());
        assertArrayEquals(filled(2, (float) 0.1), run(Symbol.full(null, 0.1, null, 2)).v(), "float32 rounding");
        assertArrayEquals(filled(2, 0.1), run(Symbol.full(null, 0.1, DType.FLOAT64, 2)).v(), "float64 keeps the double");
    }

    @Test
    void unknownDimsComeFromTheConsumer() {
        Symbol x = Symbol.variable("x");
        double[] xv = {1, 2, 3, 4, 5, 6};
        Symbol sum = Symbol.create("elemwise_add", null, Map.of(), Map.of("lhs", Symbol.ones(null, null, 0, 3), "rhs", x));
        Result r = run(sum, Map.of("x", new long[] {2, 3}), Map.of("x", xv), DType.FLOAT32);
        assertArrayEquals(new double[] {2, 3, 4, 5, 6, 7}, r.v());
        // _zeros_without_dtype: the type (float64 here) and the shape come from the consumer
        Symbol z = Symbol.builder("_zeros_without_dtype").param("shape", new long[] {0, 0}).build();
        Symbol zs = Symbol.create("elemwise_add", null, Map.of(), Map.of("lhs", z, "rhs", x));
        Result zr = run(zs, Map.of("x", new long[] {3, 2}), Map.of("x", xv), DType.FLOAT64);
        assertEquals(DType.FLOAT64, zr.type());
        assertArrayEquals(xv, zr.v());
        // alone, it needs its dtype (an MXNet type number: 6 = int64)
        Result zi = run(Symbol.builder("_zeros_without_dtype").param("shape", new long[] {2, 2}).param("dtype", 6).build());
        assertEquals(DType.INT64, zi.type());
        assertArrayEquals(filled(4, 0), zi.v());
        assertThrowsMessage(() -> run(Symbol.builder("_zeros_without_dtype").param("shape", new long[] {2}).build()), "type");
    }

    static double[] eyeRef(int n, int m, int k) {
        double[] r = new double[n * m];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                r[i * m + j] = j - i == k ? 1 : 0;
            }
        }
        return r;
    }

    @Test
    void eyeMatchesItsDefinition() {
        int[][] cases = {{3, 5, 1}, {4, 0, 0}, {5, 3, -2}, {3, 3, 7}, {2, 6, -5}, {1, 1, 0}, {6, 4, 3}};
        for (int[] c : cases) {
            for (DType t : List.of(DType.FLOAT32, DType.FLOAT64, DType.INT32, DType.UINT8)) {
                Result r = run(Symbol.eye(null, c[0], c[1], c[2], t));
                int m = c[1] == 0 ? c[0] : c[1];
                assertEquals(t, r.type());
                assertArrayEquals(new long[] {c[0], m}, r.shape(), "shape");
                assertArrayEquals(eyeRef(c[0], m, c[2]), r.v(), "eye N=" + c[0] + " M=" + c[1] + " k=" + c[2] + " " + t);
            }
        }
        Result empty = run(Symbol.eye(null, 0, 4, 0, null));
        assertArrayEquals(new long[] {0, 4}, empty.shape());
    }

    @Test
    void linspaceMatchesNumpy() {
        assertArrayEquals(new double[] {0, 0.25, 0.5, 0.75, 1}, run(Symbol.linspace(null, 0, 1, 5, true, DType.FLOAT64)).v());
        assertArrayEquals(new double[] {0, 0.2, 0.4, 0.6000000000000001, 0.8},
                run(Symbol.linspace(null, 0, 1, 5, false, DType.FLOAT64)).v());
        assertArrayEquals(new double[] {3}, run(Symbol.linspace(null, 3, 9, 1, true, null)).v(), "one value: start");
        assertArrayEquals(new double[] {3}, run(Symbol.linspace(null, 3, 9, 1, false, null)).v());
        Result none = run(Symbol.linspace(null, 3, 9, 0, true, null));
        assertArrayEquals(new long[] {0}, none.shape());
        // descending, float32: start + step * i in double, then rounded
        Result d = run(Symbol.linspace(null, 2, -1, 7, true, null));
        for (int i = 0; i < 7; i++) {
            assertEquals((float) (2 + (-3.0 / 6) * i), d.v()[i], 0, "descending " + i);
        }
        // integer types truncate toward zero
        Result ints = run(Symbol.linspace(null, -2.5, 2.5, 6, true, DType.INT32));
        assertEquals(DType.INT32, ints.type());
        assertArrayEquals(new double[] {-2, -1, 0, 0, 1, 2}, ints.v());
        // no fused multiply-add: the product is rounded before the sum, so linspace(-1, 1, 64) ends at 1 exactly
        assertEquals(1, run(Symbol.linspace(null, -1, 1, 64, true, DType.INT8)).v()[63]);
        // a long one against the reference formula
        Result big = run(Symbol.linspace(null, -7.25, 13.5, 100001, false, DType.FLOAT64));
        double step = (13.5 + 7.25) / 100001;
        for (int i = 0; i < 100001; i += 997) {
            assertEquals(-7.25 + step * i, big.v()[i], 0, "element " + i);
        }
    }

    @Test
    void imperativeCallsAgree() {
        try (NDArray e = NDArray.invoke("_eye", Map.of("N", 3, "k", -1)).get(0)) {
            assertArrayEquals(eyeRef(3, 3, -1), e.toDoubleArray());
            assertEquals(Context.cpu(), e.context());
        }
        try (NDArray f = NDArray.invoke("_full", Map.of("shape", "(2, 2)", "value", 7, "dtype", "int8")).get(0)) {
            assertEquals(DType.INT8, f.dtype());
            assertArrayEquals(filled(4, 7), f.toDoubleArray());
        }
    }

    @Test
    void errors() {
        assertThrowsMessage(() -> run(Symbol.eye(null, -1, 0, 0, null)), "_eye", "N");
        assertArrayEquals(new long[] {3, 3}, run(Symbol.eye(null, 3, -2, 0, null)).shape(), "M < 0 means N, as in MXNet");
        assertThrowsMessage(() -> run(Symbol.eye(null, 3_000_000_000L, 3_000_000_000L, 0, null)), "_eye", "too many elements");
        assertThrowsMessage(() -> run(Symbol.linspace(null, 0, 1, -1, true, null)), "_linspace", "num");
        assertThrowsMessage(() -> run(Symbol.builder("_linspace").param("start", 0).param("num", 3).build()), "stop");
        assertThrowsMessage(() -> run(Symbol.builder("_full").param("shape", new long[] {2}).build()), "value");
        assertThrowsMessage(() -> run(Symbol.ones(null, null, -2, 3)), "_ones", "negative dimension");
        assertThrowsMessage(() -> run(Symbol.full(null, 1, null, 1L << 40, 1L << 40, 1L << 40)), "_full", "too many elements");
        assertThrowsMessage(() -> run(Symbol.ones(null, "bfloat17", 2)), "dtype");
        assertThrowsMessage(() -> run(Symbol.builder("_zeros_without_dtype").param("shape", new long[] {2}).param("dtype", 9).build()),
                "dtype");
        // a shape far beyond memory: a clear error, not a crash
        assertThrowsMessage(() -> run(Symbol.ones(null, DType.FLOAT64, 1L << 31, 1L << 31)));
    }
}
