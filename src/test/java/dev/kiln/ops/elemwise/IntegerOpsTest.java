package dev.kiln.ops.elemwise;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Integer arrays through the elementwise families (the integer wrapper, kiln/low_precision.h):
 * every case runs in Kiln and in the real MXNet 1.9.1 on the same int32 / uint8 / int8 / int64
 * inputs and must agree exactly, wrapping included. Inputs avoid what MXNet leaves undefined or
 * dies of (integer division by zero is SIGFPE there); Kiln's answers for those are tested on their
 * own.
 */
@ExtendWith(NoLeaks.class)
class IntegerOpsTest {
    static final DType[] TYPES = {DType.INT32, DType.UINT8, DType.INT8, DType.INT64};

    /** One call: op, attributes, input shapes, input value ranges [lo, hi] (integers, zero excluded when nonzero). */
    record Case(String op, Map<String, String> attrs, long[][] shapes, int lo, int hi, boolean nonzero, DType type) {
        @Override
        public String toString() {
            return op + " " + attrs + " " + type;
        }
    }

    static Map<String, String> a(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    static long[][] s(long[]... s) {
        return s;
    }

    static long[] d(long... d) {
        return d;
    }

    static Stream<Case> cases() {
        List<Case> c = new ArrayList<>();
        for (DType t : TYPES) {
            boolean unsigned = t == DType.UINT8;
            int lo = unsigned ? 0 : -120, hi = 250;
            // same shape and broadcast arithmetic (8-bit results wrap: 200 + 100 = 44 in uint8)
            for (String op : List.of("elemwise_add", "elemwise_sub", "elemwise_mul", "_maximum", "_minimum")) {
                c.add(new Case(op, a(), s(d(4, 6), d(4, 6)), lo, hi, false, t));
            }
            c.add(new Case("elemwise_div", a(), s(d(4, 6), d(4, 6)), lo, hi, true, t));
            c.add(new Case("_power", a(), s(d(3, 5), d(3, 5)), unsigned ? 1 : -3, 3, true, t));
            for (String op : List.of("broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_maximum", "broadcast_minimum")) {
                c.add(new Case(op, a(), s(d(2, 3, 4), d(3, 1)), lo, hi, false, t));
            }
            c.add(new Case("broadcast_div", a(), s(d(2, 3, 4), d(1, 4)), lo, hi, true, t));
            // scalars apply as DType(scalar): 2.7 -> 2, -1.5 -> -1
            for (String op : List.of("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_maximum_scalar",
                    "_minimum_scalar")) {
                c.add(new Case(op, a("scalar", unsigned ? "2.7" : "-1.5"), s(d(5, 4)), lo, hi, false, t));
            }
            c.add(new Case("_mul_scalar", a("scalar", "0.5"), s(d(5, 4)), lo, hi, false, t)); // multiplies by 0
            c.add(new Case("_div_scalar", a("scalar", "2.7"), s(d(5, 4)), lo, hi, false, t));
            c.add(new Case("_rdiv_scalar", a("scalar", "100"), s(d(5, 4)), lo, hi, true, t));
            c.add(new Case("_power_scalar", a("scalar", "2"), s(d(5, 4)), -11, 11, false, t));
            c.add(new Case("_rpower_scalar", a("scalar", "2"), s(d(5, 4)), 0, 6, false, t));
            // unary: sqrt and log of positives (MXNet's conversion of NaN / -inf is undefined)
            for (String op : List.of("negative", "abs", "square")) {
                c.add(new Case(op, a(), s(d(6, 5)), lo, hi, false, t));
            }
            c.add(new Case("sqrt", a(), s(d(6, 5)), 0, 120, false, t));
            c.add(new Case("log", a(), s(d(6, 5)), 1, 120, false, t));
            c.add(new Case("exp", a(), s(d(6, 5)), 0, 4, false, t));
            c.add(new Case("clip", a("a_min", "-3.5", "a_max", "20.9"), s(d(6, 5)), lo, hi, false, t));
            // reductions: sums wrap in the type as MXNet's; mean truncates
            for (String op : List.of("sum", "max", "min")) {
                c.add(new Case(op, a("axis", "1"), s(d(4, 7, 3)), lo, hi, false, t));
                c.add(new Case(op, a(), s(d(4, 7)), lo, hi, false, t));
            }
            c.add(new Case("mean", a("axis", "0"), s(d(5, 6)), 0, 20, false, t));
            c.add(new Case("sum", a("axis", "(0, 2)", "keepdims", "True"), s(d(3, 4, 5)), 0, 9, false, t));
            // fills and sums of arrays
            c.add(new Case("zeros_like", a(), s(d(3, 4)), lo, hi, false, t));
            c.add(new Case("ones_like", a(), s(d(3, 4)), lo, hi, false, t));
            c.add(new Case("add_n", a("num_args", "3"), s(d(10), d(10), d(10)), lo, hi, false, t));
        }
        return c.stream();
    }

    static double[] values(Case c, int i) {
        Random r = new Random(31L * i + c.toString().hashCode());
        int n = (int) Arrays.stream(c.shapes[i]).reduce(1, (x, y) -> x * y);
        double[] v = new double[n];
        for (int k = 0; k < n; k++) {
            int x;
            // no zero divisors (MXNet: SIGFPE), no zero bases of _power (negative exponents)
            boolean noZero = c.nonzero && (i > 0 || c.op.equals("_power") || c.op.startsWith("_rdiv"));
            do {
                x = c.lo + r.nextInt(c.hi - c.lo + 1);
            } while (noZero && x == 0);
            v[k] = x;
        }
        return v;
    }

    static DataType djl(DType t) {
        switch (t) {
            case INT32: return DataType.INT32;
            case UINT8: return DataType.UINT8;
            case INT8: return DataType.INT8;
            default: return DataType.INT64;
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void equalsMxnetExactly(Case c) {
        MxOracle.assumeAvailable();
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            NDArray[] in = new NDArray[c.shapes.length];
            ai.djl.ndarray.NDArray[] mx = new ai.djl.ndarray.NDArray[c.shapes.length];
            for (int i = 0; i < in.length; i++) {
                in[i] = NDArray.create(values(c, i), c.shapes[i]).asType(c.type);
                // the same integers (after Kiln's conversion into the type) as MXNet arrays of the type
                double[] held = in[i].toDoubleArray();
                float[] f = new float[held.length];
                for (int k = 0; k < f.length; k++) {
                    f[k] = (float) held[k];
                }
                mx[i] = MxOracle.create(m, f, c.shapes[i]).toType(djl(c.type), false);
            }
            List<NDArray> out = NDArray.invoke(c.op, c.attrs, in);
            NDList want = MxOracle.invoke(m, c.op, c.attrs, mx);
            assertEquals(want.size(), out.size(), c + ": outputs");
            for (int o = 0; o < out.size(); o++) {
                assertEquals(c.type, out.get(o).dtype(), c + ": dtype");
                assertArrayEquals(want.get(o).getShape().getShape(), out.get(o).shape().dims(), c + ": shape");
                double[] w = want.get(o).toType(DataType.FLOAT64, false).toDoubleArray();
                assertArrayEquals(w, out.get(o).toDoubleArray(), 0, c + ": values");
            }
        }
    }

    @Test
    void eightBitArithmeticWrapsAndScalarsTruncate() {
        try (NDScope scope = NDScope.open()) {
            NDArray x = NDArray.create(new double[] {200, 250, 7}, 3).asType(DType.UINT8);
            NDArray y = NDArray.create(new double[] {100, 10, 3}, 3).asType(DType.UINT8);
            assertArrayEquals(new double[] {44, 4, 10}, NDArray.invoke("elemwise_add", Map.of(), x, y).get(0).toDoubleArray());
            assertArrayEquals(new double[] {100, 240, 4}, NDArray.invoke("elemwise_sub", Map.of(), x, y).get(0).toDoubleArray());
            assertArrayEquals(new double[] {(200 * 100) % 256, (250 * 10) % 256, 21},
                    NDArray.invoke("elemwise_mul", Map.of(), x, y).get(0).toDoubleArray());
            // sum of uint8 wraps once: 457 mod 256
            assertArrayEquals(new double[] {457 % 256}, NDArray.invoke("sum", Map.of(), x).get(0).toDoubleArray());
            // DType(scalar): 2.9 -> 2, 0.5 -> 0
            assertArrayEquals(new double[] {400 % 256, 500 % 256, 14}, NDArray.invoke("_mul_scalar", Map.of("scalar", "2.9"), x).get(0).toDoubleArray());
            assertArrayEquals(new double[] {0, 0, 0}, NDArray.invoke("_mul_scalar", Map.of("scalar", "0.5"), x).get(0).toDoubleArray());
            NDArray big = NDArray.create(new double[] {65536, -7}, 2).asType(DType.INT32);
            // int32 wraps: 2^32 -> 0; division truncates toward zero
            assertArrayEquals(new double[] {0, 49}, NDArray.invoke("elemwise_mul", Map.of(), big, big).get(0).toDoubleArray());
            assertArrayEquals(new double[] {32768, -3}, NDArray.invoke("_div_scalar", Map.of("scalar", "2"), big).get(0).toDoubleArray());
        }
    }

    @Test
    void int64ResultsAreExactBelowTwoTo53() {
        // every double from 2^52 up is an integer: odd ones must stay themselves (no rounding to a
        // neighbour), and a quotient just below an integer truncates, however large the dividend
        double p52 = 4503599627370496.0;
        try (NDScope scope = NDScope.open()) {
            NDArray x = NDArray.create(new double[] {p52 + 1, 2 * p52 - 1, -(p52 + 1), p52 + 3}, 4).asType(DType.INT64);
            NDArray zero = NDArray.create(new double[4], 4).asType(DType.INT64);
            assertArrayEquals(x.toDoubleArray(), NDArray.invoke("elemwise_add", Map.of(), x, zero).get(0).toDoubleArray());
            assertArrayEquals(new double[] {p52 + 2, 2 * p52, -p52, p52 + 4},
                    NDArray.invoke("_plus_scalar", Map.of("scalar", "1"), x).get(0).toDoubleArray());
            // (2^52 + 1) / 2 = 2^51 + 0.5 -> 2^51, (2^53 - 1) / 2 -> 2^52 - 1, (2^52 + 3) / 2 -> 2^51 + 1
            assertArrayEquals(new double[] {p52 / 2, p52 - 1, -p52 / 2, Math.floor((p52 + 3) / 2)},
                    NDArray.invoke("_div_scalar", Map.of("scalar", "2"), x).get(0).toDoubleArray());
            // 3^33 = 5559060566555523 < 2^53, exactly
            NDArray three = NDArray.create(new double[] {3}, 1).asType(DType.INT64);
            assertArrayEquals(new double[] {5559060566555523.0},
                    NDArray.invoke("_power_scalar", Map.of("scalar", "33"), three).get(0).toDoubleArray());
        }
    }

    @Test
    void undefinedIntegerResultsAreZero() {
        // MXNet dies of SIGFPE on an integer division by zero and converts NaN / -inf by C++'s
        // undefined cast; Kiln gives 0 (docs/mxnet-differences.md)
        try (NDScope scope = NDScope.open()) {
            NDArray x = NDArray.create(new double[] {5, 0, -3, 4}, 4).asType(DType.INT32);
            NDArray z = NDArray.create(new double[] {0, 0, 2, 0}, 4).asType(DType.INT32);
            assertArrayEquals(new double[] {0, 0, -1, 0}, NDArray.invoke("elemwise_div", Map.of(), x, z).get(0).toDoubleArray());
            assertArrayEquals(new double[] {0, 0, 0, 0}, NDArray.invoke("_div_scalar", Map.of("scalar", "0.3"), x).get(0).toDoubleArray());
            assertArrayEquals(new double[] {2, 0, 0, 2}, NDArray.invoke("sqrt", Map.of(), x).get(0).toDoubleArray());
            assertArrayEquals(new double[] {1, 0, 0, 1}, NDArray.invoke("log", Map.of(), x).get(0).toDoubleArray());
        }
    }

    @Test
    void integerGraphRunsForwardAndRefusesGradients() {
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Symbol net = Symbol.create("sum", "s", Map.of("axis", "1"), null,
                Symbol.create("broadcast_mul", "m", Map.of(), null, a, Symbol.create("_plus_scalar", "p", Map.of("scalar", "1"), null, b)));
        try (NDScope scope = NDScope.open()) {
            NDArray av = NDArray.create(new double[] {1, 2, 3, 4, 5, 6}, 2, 3).asType(DType.INT32);
            NDArray bv = NDArray.create(new double[] {1, -2, 0}, 1, 3).asType(DType.INT32);
            try (Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("a", new long[] {2, 3}, "b", new long[] {1, 3}),
                    Map.of("a", DType.INT32, "b", DType.INT32), Map.of("a", GradReq.NULL, "b", GradReq.NULL), null)) {
                av.copyTo(ex.argDict().get("a"));
                bv.copyTo(ex.argDict().get("b"));
                NDArray out = ex.forward(false).outputs().get(0);
                assertEquals(DType.INT32, out.dtype());
                assertArrayEquals(new double[] {1 * 2 - 2 * 1 + 3 * 1, 4 * 2 - 5 * 1 + 6 * 1}, out.toDoubleArray());
            }
            // gradients of integer arrays: the backward kernels refuse them, naming the type
            try (Executor ex = Executor.simpleBind(net, Context.cpu(), Map.of("a", new long[] {2, 3}, "b", new long[] {1, 3}),
                    Map.of("a", DType.INT32, "b", DType.INT32), Map.of("a", GradReq.WRITE, "b", GradReq.NULL), null)) {
                ex.forward(true);
                NDArray head = NDArray.create(new double[] {1, 1}, 2).asType(DType.INT32);
                KilnException e = assertThrows(KilnException.class, () -> ex.backward(head));
                assertTrue(e.getMessage().contains("int32"), e.getMessage());
            }
        }
    }

    @Test
    void variableInputOpsCountTheirInputsAndManyOutputsComeBack() {
        try (NDScope scope = NDScope.open()) {
            NDArray x = NDArray.create(new double[] {1, 2}, 2);
            // num_args defaults to the number of inputs (MXNet's key_var_num_args)
            assertArrayEquals(new double[] {1, 2, 1, 2, 1, 2}, NDArray.invoke("Concat", Map.of("dim", "0"), x, x, x).get(0).toDoubleArray());
            assertArrayEquals(new double[] {3, 6}, NDArray.invoke("add_n", Map.of(), x, x, x).get(0).toDoubleArray());
            assertArrayEquals(new long[] {2, 2}, NDArray.invoke("stack", Map.of(), x, x).get(0).shape().dims());
            // more than 16 visible outputs
            NDArray wide = NDArray.create(new double[40], 2, 20);
            List<NDArray> parts = NDArray.invoke("SliceChannel", Map.of("num_outputs", "20", "axis", "1"), wide);
            assertEquals(20, parts.size());
            assertArrayEquals(new long[] {2, 1}, parts.get(19).shape().dims());
        }
    }
}
