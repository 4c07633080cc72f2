package dev.kiln.ops.index;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Bad parameters and shapes fail with a KilnException (never a crash); inference and float16 details. */
@ExtendWith(NoLeaks.class)
class IndexErrorsTest {

    static NDArray ramp(long... shape) {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = i;
        }
        return NDArray.create(v, shape);
    }

    static void fails(String op, Map<String, String> attrs, String fragment, long[]... shapes) {
        try (NDScope scope = NDScope.open()) {
            NDArray[] in = new NDArray[shapes.length];
            for (int i = 0; i < shapes.length; i++) {
                in[i] = ramp(shapes[i]);
            }
            KilnException e = assertThrows(KilnException.class, () -> NDArray.invoke(op, attrs, in), op + " " + attrs);
            assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
        }
    }

    @Test
    void badParametersAndShapes() {
        fails("Cast", a(), "dtype", s(2));
        fails("Cast", a("dtype", "complex64"), "dtype", s(2));
        fails("slice", a("begin", "(0,)"), "end", s(3));
        fails("slice", a("begin", "(0, 0)", "end", "(1,)"), "same length", s(3, 3));
        fails("slice", a("begin", "(0, 0, 0)", "end", "(1, 1, 1)"), "more entries", s(3, 3));
        fails("slice", a("begin", "(0,)", "end", "(2,)", "step", "(0,)"), "cannot be 0", s(3));
        fails("slice", a("begin", "(x,)", "end", "(2,)"), "begin", s(3));
        fails("slice_axis", a("axis", "2", "begin", "0", "end", "1"), "axis", s(3, 3));
        fails("slice_axis", a("axis", "0", "begin", "2", "end", "1"), "Invalid begin", s(3, 3));
        fails("slice_axis", a("axis", "0", "begin", "0", "end", "5"), "Invalid end", s(3, 3));
        fails("take", a("axis", "2"), "axis", s(3, 3), s(2));
        fails("take", a("mode", "bogus"), "mode", s(3, 3), s(2));
        fails("take", a("mode", "raise"), "out of bounds", s(3), s(5));  // ramp indices 0..4, axis size 3
        fails("pick", a("axis", "3"), "axis", s(3, 3), s(3));
        fails("pick", a("axis", "1"), "inconsistent", s(3, 3), s(4));
        fails("pick", a("axis", "None"), "axis=None", s(3, 3), s(3));
        fails("one_hot", a(), "depth", s(3));
        fails("one_hot", a("depth", "-1"), "depth", s(3));
        fails("where", a(), "same shape", s(2, 3), s(2, 3), s(3, 2));
        fails("where", a(), "condition", s(3, 2), s(2, 3), s(2, 3));
        fails("where", a(), "length", s(3), s(2, 3), s(2, 3));
        fails("argmax", a("axis", "2"), "axis", s(3, 3));
        fails("tile", a("reps", "(0, 2)"), "positive", s(2, 3));
        fails("tile", a("reps", "(-1,)"), "positive", s(2, 3));
        fails("repeat", a("repeats", "-1"), "negative", s(2, 3));
        fails("repeat", a("repeats", "2", "axis", "2"), "axis", s(2, 3));
        fails("repeat", a("repeats", "0", "axis", "2"), "axis", s(2, 3)); // checked before the empty result, as MXNet
        fails("stack", a("num_args", "2"), "shape", s(2, 3), s(3, 2));
        fails("stack", a("num_args", "2", "axis", "3"), "axis", s(2, 3), s(2, 3));
        fails("stack", a("num_args", "0"), "num_args", s(2, 3));
        fails("batch_dot", a(), "N-D", s(3, 4), s(4, 5));
        fails("batch_dot", a(), "mismatch", s(2, 3, 4), s(2, 5, 4));
        fails("batch_dot", a(), "batch", s(2, 3, 4), s(3, 4, 5));
        fails("batch_dot", a("forward_stype", "csr"), "forward_stype", s(2, 3, 4), s(2, 4, 5));
        fails("topk", a("k", "7"), "k must be smaller", s(2, 6));
        fails("topk", a("ret_typ", "all"), "ret_typ", s(2, 6));
        fails("topk", a("axis", "2"), "axis", s(2, 6));
        // indices the dtype cannot hold exactly are refused (MXNet documents the error)
        fails("topk", a("k", "2", "dtype", "float16"), "cannot hold the indices of 3000", s(2, 3000));
        fails("topk", a("k", "2", "ret_typ", "both", "axis", "None", "dtype", "uint8"), "cannot hold", s(16, 17));
        fails("argsort", a("dtype", "uint8"), "cannot hold", s(257));
        fails("sort", a("axis", "-3"), "axis", s(2, 6));
        fails("argsort", a("dtype", "int8"), "dtype", s(2, 6));
        fails("_arange", a("start", "0", "stop", "5", "step", "0"), "step=0");
        fails("_arange", a("start", "5", "stop", "0"), "range");
        fails("_arange", a("start", "0", "stop", "5", "repeat", "0"), "repeat");
        fails("_arange", a("stop", "5"), "start");
        fails("_arange", a("start", "0", "stop", "inf"), "stop");
        fails("_arange", a("start", "nan", "stop", "1"), "NaN");
        fails("_arange", a("start", "0", "stop", "1e30", "step", "1e-30"), "too many elements");
        // arity parameters are bounded, so a malformed count cannot exhaust memory
        fails("SliceChannel", a("num_outputs", "2147483647"), "num_outputs", s(2, 4));
        fails("Concat", a("num_args", "100000"), "num_args", s(2));
    }

    /** Indices a dtype holds exactly are fine; the hidden indices of 'value' and sort are exact at any size. */
    @Test
    void indexDtypesHoldEveryPosition() {
        try (NDScope scope = NDScope.open()) {
            NDArray x = ramp(256);
            assertEquals(255, NDArray.invoke("argsort", a("dtype", "uint8", "is_ascend", "False"), x).get(0).toFloatArray()[0]);
            // topk 'value' with dtype=float16 over 3000 elements: the gradient reaches every position
            // once (float16 positions above 2048 would round onto their neighbours)
            Symbol top = Symbol.create("topk", "t", a("ret_typ", "value", "k", "0", "axis", "None", "dtype", "float16"), null,
                    Symbol.variable("data"));
            try (dev.kiln.executor.Executor ex = dev.kiln.executor.Executor.simpleBind(top, dev.kiln.ndarray.Context.cpu(),
                    Map.of("data", s(3000)), Map.of(), Map.of("data", dev.kiln.executor.GradReq.WRITE), null)) {
                ex.argDict().get("data").set(ramp(3000).toFloatArray());
                ex.forward(true).backward(NDArray.full(new dev.kiln.ndarray.Shape(3000), 1, DType.FLOAT32, dev.kiln.ndarray.Context.cpu()));
                float[] g = ex.gradDict().get("data").toFloatArray();
                float[] ones = new float[3000];
                java.util.Arrays.fill(ones, 1f);
                assertArrayEquals(ones, g);
            }
        }
    }

    /** Integer _arange: MXNet's integer arithmetic (wraps past the type), exact in int64 past 2^53. */
    @Test
    void integerArangeWrapsAsMxnetAndStaysExact() {
        try (NDScope scope = NDScope.open()) {
            float[] u8 = NDArray.invoke("_arange", a("start", "0", "stop", "300", "dtype", "uint8")).get(0).toFloatArray();
            assertEquals(300, u8.length);
            for (int i = 0; i < 300; i++) {
                assertEquals(i % 256, u8[i], 0, "uint8 position " + i);
            }
            byte[] raw = NDArray.invoke("_arange", a("start", "9007199254740992", "stop", "9007199254740996", "dtype", "int64"))
                    .get(0).toBytes();
            java.nio.LongBuffer l = java.nio.ByteBuffer.wrap(raw).order(java.nio.ByteOrder.LITTLE_ENDIAN).asLongBuffer();
            for (int i = 0; i < 4; i++) {
                assertEquals((1L << 53) + i, l.get(i), "int64 position " + i);
            }
        }
    }

    /** NaN (of either sign) sorts after every number, NaNs by position (NumPy's order; the GPU's too). */
    @Test
    void nanSortsAfterEveryNumber() {
        double negNan = Double.longBitsToDouble(0xfff8000000000000L);
        double[] x = {3, Double.NaN, 1, negNan, 2, Double.NEGATIVE_INFINITY, 0};
        try (NDScope scope = NDScope.open()) {
            NDArray in = NDArray.create(x, x.length);
            assertArrayEquals(new float[] {5, 6, 2, 4, 0, 1, 3},
                    NDArray.invoke("argsort", a(), in).get(0).toFloatArray(), "ascending");
            assertArrayEquals(new float[] {1, 3, 0, 4}, NDArray.invoke("topk", a("k", "4"), in).get(0).toFloatArray(), "descending");
            double[] sorted = NDArray.invoke("sort", a(), in).get(0).toDoubleArray();
            assertArrayEquals(new double[] {Double.NEGATIVE_INFINITY, 0, 1, 2, 3}, java.util.Arrays.copyOf(sorted, 5));
            assertTrue(Double.isNaN(sorted[5]) && Double.isNaN(sorted[6]));
        }
    }

    /** Float to integer is defined for every value (kiln/int_convert.h): NaN 0, saturating, else truncating. */
    @Test
    void castToIntegersIsDefinedForNanInfinityAndOutOfRangeValues() {
        double[] x = {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, -1.5, 300.7, -300.7, 3e9, -3e9, 1e19, -1e19, 2.9, -0.5};
        double max64 = Long.MAX_VALUE, min64 = Long.MIN_VALUE;
        Map<String, double[]> want = Map.of(
                "int8", new double[] {0, 127, -128, -1, 127, -128, 127, -128, 127, -128, 2, 0},
                "uint8", new double[] {0, 255, 0, 0, 255, 0, 255, 0, 255, 0, 2, 0},
                "int32", new double[] {0, 2147483647, -2147483648, -1, 300, -300, 2147483647, -2147483648, 2147483647, -2147483648, 2, 0},
                "int64", new double[] {0, max64, min64, -1, 300, -300, 3e9, -3e9, max64, min64, 2, 0});
        try (NDScope scope = NDScope.open()) {
            for (DType from : List.of(DType.FLOAT64, DType.FLOAT32)) {
                NDArray in = NDArray.create(x, x.length).asType(from);
                for (Map.Entry<String, double[]> e : want.entrySet()) {
                    double[] got = NDArray.invoke("Cast", a("dtype", e.getKey()), in).get(0).toDoubleArray();
                    assertArrayEquals(e.getValue(), got, 0, from + " -> " + e.getKey());
                }
            }
        }
    }

    @Test
    void float16RoundsToNearestEven() {
        // 2049 lies halfway between float16 neighbours 2048 and 2050: ties go to the even 2048;
        // 2051 -> 2052; 65520 overflows to infinity; 1e-8 underflows to zero.
        try (NDScope scope = NDScope.open()) {
            NDArray x = NDArray.create(new float[] {2049f, 2051f, 65520f, 1e-8f, -2.5f, 0.1f}, 6);
            NDArray h = NDArray.invoke("Cast", a("dtype", "float16"), x).get(0);
            assertEquals(DType.FLOAT16, h.dtype());
            byte[] b = h.toBytes();
            int[] bits = new int[6];
            for (int i = 0; i < 6; i++) {
                bits[i] = (b[2 * i] & 0xff) | ((b[2 * i + 1] & 0xff) << 8);
            }
            assertEquals(0x6800, bits[0]);  // 2048
            assertEquals(0x6802, bits[1]);  // 2052
            assertEquals(0x7c00, bits[2]);  // +inf
            assertEquals(0x0000, bits[3]);  // +0
            assertEquals(0xc100, bits[4]);  // -2.5
            assertEquals(0x2e66, bits[5]);  // 0.1 -> 0.0999755859375
            float[] back = NDArray.invoke("Cast", a("dtype", "float32"), h).get(0).toFloatArray();
            assertArrayEquals(new float[] {2048f, 2052f, Float.POSITIVE_INFINITY, 0f, -2.5f, 0.0999755859375f}, back);
            int[] ints = new int[6];
            double[] ti = NDArray.invoke("Cast", a("dtype", "int32"), NDArray.create(new float[] {-2.7f, 2.7f, -0.5f, 3f, 100.9f, 0f}, 6))
                    .get(0).toDoubleArray();
            assertArrayEquals(new double[] {-2, 2, 0, 3, 100, 0}, ti);
        }
    }

    @Test
    void typeAndShapeInference() {
        Symbol data = Symbol.variable("data");
        Symbol idx = Symbol.variable("indices");
        InferResult t = Symbol.create("take", "t", a(), null, data, idx).inferType(Map.of("data", DType.FLOAT64));
        assertEquals(List.of(DType.FLOAT64, DType.INT32), t.argTypes());
        assertEquals(List.of(DType.FLOAT64), t.outTypes());
        InferResult c = Symbol.create("Cast", "c", a("dtype", "int64"), null, data).inferType(Map.of("data", DType.FLOAT32));
        assertEquals(List.of(DType.INT64), c.outTypes());
        InferResult k = Symbol.create("topk", "k", a("ret_typ", "both", "dtype", "int32"), null, data)
                .inferType(Map.of("data", DType.FLOAT64));
        assertEquals(List.of(DType.FLOAT64, DType.INT32), k.outTypes());
        InferResult o = Symbol.create("one_hot", "o", a("depth", "3", "dtype", "float64"), null, idx)
                .inferType(Map.of("indices", DType.INT32));
        assertEquals(List.of(DType.FLOAT64), o.outTypes());
        // shapes: pick infers the index shape from the data; batch_dot fills the contracted dim
        InferResult p = Symbol.create("pick", "p", a("axis", "1", "keepdims", "True"), null, data, Symbol.variable("index"))
                .inferShape(Map.of("data", new long[] {3, 4}));
        assertArrayEquals(new long[] {3, 1}, p.argShapes().get(1));
        assertArrayEquals(new long[] {3, 1}, p.outShapes().get(0));
        InferResult st = Symbol.create("stack", "st", a("num_args", "2", "axis", "-1"), null, data, idx)
                .inferShape(Map.of("data", new long[] {3, 4}));
        assertArrayEquals(new long[] {3, 4}, st.argShapes().get(1));
        assertArrayEquals(new long[] {3, 4, 2}, st.outShapes().get(0));
        InferResult ar = Symbol.create("_arange", "ar", a("start", "1", "stop", "7", "step", "2", "repeat", "2"), null)
                .inferShape(Map.of());
        assertArrayEquals(new long[] {6}, ar.outShapes().get(0));
        assertEquals(List.of("k_output0", "k_output1"),
                Symbol.create("topk", "k", a("ret_typ", "both"), null, data).listOutputs());
        assertEquals(List.of("s_output0"), Symbol.create("sort", "s", a(), null, data).listOutputs());
    }

    @Test
    void jsonRoundTripKeepsNoneEntriesAndHiddenOutputs() {
        Symbol x = Symbol.variable("data");
        Symbol sl = Symbol.create("slice", "sl", a("begin", "(None, -1)", "end", "(None, None)", "step", "(-1, -1)"), null, x);
        Symbol st = Symbol.create("sort", "so", a("axis", "0"), null, sl);
        Symbol back = Symbol.fromJson(st.toJson());
        assertEquals(st.listOutputs(), back.listOutputs());
        // x = [[0,1,2],[3,4,5]] -> slice [[5,4,3],[2,1,0]] -> sort along axis 0 [[2,1,0],[5,4,3]]
        for (Symbol s : List.of(st, back)) {
            dev.kiln.testutil.GradCheck.Inputs in = new dev.kiln.testutil.GradCheck.Inputs()
                    .put("data", new long[] {2, 3}, new double[] {0, 1, 2, 3, 4, 5});
            List<double[]> out = dev.kiln.testutil.GradCheck.forward(s, in, DType.FLOAT64, false);
            assertEquals(1, out.size());
            assertArrayEquals(new double[] {2, 1, 0, 5, 4, 3}, out.get(0));
        }
        // _arange in a graph: no inputs at all
        Symbol ar = Symbol.create("_arange", "ar", a("start", "2", "stop", "-1", "step", "-1", "repeat", "2"), null);
        List<double[]> v = dev.kiln.testutil.GradCheck.forward(Symbol.fromJson(ar.toJson()), new dev.kiln.testutil.GradCheck.Inputs(),
                DType.FLOAT32, false);
        assertArrayEquals(new double[] {2, 2, 1, 1, 0, 0}, v.get(0));
    }
}
