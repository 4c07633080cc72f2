package dev.kiln.ops.index;

import static dev.kiln.testutil.OpTesting.a;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Forward values of the index-family operators against the real MXNet 1.9.1 on the same float32
 * inputs, over a grid of parameters. Index inputs are integer-valued floats (some out of range to
 * exercise clip/wrap); outputs of any dtype are compared as float32 (relative 1e-5).
 */
@ExtendWith(NoLeaks.class)
class IndexOracleTest {
    static final double TOL = 1e-5;

    /** One input: shape and value range; integer = floor the values. */
    record In(long[] shape, double lo, double hi, boolean integer) {}

    record Case(String op, Map<String, String> attrs, List<In> ins, String dtype) {
        Case(String op, Map<String, String> attrs, List<In> ins) {
            this(op, attrs, ins, "float32");
        }

        /** The same case with the data inputs (not the index inputs) in another dtype, integer-valued in [0, 50). */
        Case as(String t) {
            List<In> l = new ArrayList<>();
            for (In i : ins) {
                l.add(i.integer() ? i : new In(i.shape(), 0, 50, true));
            }
            return new Case(op, attrs, l, t);
        }

        String label() {
            StringBuilder b = new StringBuilder(op + " " + attrs + " " + dtype);
            for (In i : ins) {
                b.append(Arrays.toString(i.shape()));
            }
            return b.toString();
        }
    }

    static In x(long... s) {
        return new In(s, -2, 2, false);
    }

    static In idx(double lo, double hi, long... s) {
        return new In(s, lo, hi, true);
    }

    static Case c(String op, Map<String, String> attrs, In... ins) {
        return new Case(op, attrs, List.of(ins));
    }

    static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        // Cast (values in [-300, 300] so integer casts truncate and wrap like C)
        for (String t : List.of("float16", "float32", "float64", "int32", "int64", "int8", "uint8")) {
            c.add(c("Cast", a("dtype", t), new In(new long[] {4, 7}, t.equals("uint8") ? 0 : -100, 100, false)));
        }
        c.add(c("Cast", a("dtype", "int32"), new In(new long[] {50}, 0, 250, false)));
        c.add(c("Cast", a("dtype", "uint8"), new In(new long[] {50}, 0, 250, false)));
        c.add(c("Cast", a("dtype", "float16"), new In(new long[] {300}, -70000, 70000, false)));
        c.add(c("Cast", a("dtype", "float16"), new In(new long[] {300}, -1e-4, 1e-4, false)));
        // slice
        long[] s3 = {4, 5, 6};
        for (String[] bes : new String[][] {
            {"(1,)", "(3,)", "()"}, {"(0, 1)", "(4, 4)", "()"}, {"(None, 1, 2)", "(None, None, -1)", "()"},
            {"(-1, None)", "(None, 2)", "(-1, 1)"}, {"(None, None, None)", "(None, None, None)", "(2, -2, 3)"},
            {"(3, 4, 5)", "(0, 0, 0)", "(-1, -2, -3)"}, {"(-3, -10, 1)", "(10, 10, -1)", "(1, 2, 1)"},
            {"(2, 0)", "(1, 5)", "(1, 1)"}, {"(0,)", "(4,)", "(None,)"}, {"(1, None)", "(-1, None)", "(None, -1)"},
            {"(-100,)", "(100,)", "(3,)"}, {"(5,)", "(None,)", "(-1,)"}}) {
            c.add(c("slice", a("begin", bes[0], "end", bes[1], "step", bes[2]), x(s3)));
        }
        c.add(c("slice", a("begin", "(1, 2)", "end", "(3, 4)"), x(5, 6)));
        // slice_axis
        for (String[] abe : new String[][] {{"0", "1", "3"}, {"1", "0", "None"}, {"-1", "-4", "-1"}, {"2", "2", "6"},
            {"1", "-5", "None"}}) {
            c.add(c("slice_axis", a("axis", abe[0], "begin", abe[1], "end", abe[2]), x(s3)));
        }
        // take
        for (String mode : List.of("clip", "wrap", "raise")) {
            double lo = mode.equals("raise") ? 0 : -7;
            double hi = mode.equals("raise") ? 3.99 : 9;
            c.add(c("take", a("mode", mode), x(4, 3), idx(lo, hi, 5)));
            c.add(c("take", a("axis", "1", "mode", mode), x(2, 4, 3), idx(lo, hi, 2, 3)));
            c.add(c("take", a("axis", "-1", "mode", mode), x(2, 3, 4), idx(lo, hi, 7)));
        }
        c.add(c("take", a(), x(6), idx(0, 6, 2, 2)));
        // one_hot
        c.add(c("one_hot", a("depth", "5"), idx(-2, 7, 8)));
        c.add(c("one_hot", a("depth", "4", "on_value", "3.5", "off_value", "-1"), idx(0, 4, 2, 3)));
        c.add(c("one_hot", a("depth", "6", "dtype", "int32"), idx(0, 6, 5)));
        c.add(c("one_hot", a("depth", "3", "dtype", "float64"), idx(0, 3, 2, 2)));
        // pick
        for (String mode : List.of("clip", "wrap")) {
            c.add(c("pick", a("axis", "1", "mode", mode), x(4, 5), idx(-7, 9, 4)));
            c.add(c("pick", a("axis", "0", "keepdims", "True", "mode", mode), x(4, 5), idx(-5, 8, 1, 5)));
            c.add(c("pick", a("axis", "-1", "mode", mode), x(2, 3, 4), idx(-5, 8, 2, 3)));
            c.add(c("pick", a("axis", "1", "keepdims", "True", "mode", mode), x(2, 3, 4), idx(0, 3, 2, 1, 4)));
        }
        c.add(c("pick", a(), x(3, 4), idx(0, 4, 3)));
        // the index may keep the picked axis as 1 (labels of shape (N, 1)), whatever keepdims says
        c.add(c("pick", a("axis", "1"), x(3, 4), idx(0, 4, 3, 1)));
        c.add(c("pick", a("axis", "1", "keepdims", "True"), x(3, 4), idx(0, 4, 3)));
        c.add(c("pick", a("axis", "1"), x(2, 3, 2), idx(0, 3, 2, 1, 2)));
        c.add(c("pick", a("axis", "0"), x(5), idx(0, 5, 1))); // legacy shapes: (1,)
        // where
        c.add(c("where", a(), idx(0, 2, 3, 4), x(3, 4), x(3, 4)));
        c.add(c("where", a(), idx(0, 2, 3), x(3, 4, 2), x(3, 4, 2)));
        c.add(c("where", a(), idx(-1, 2, 6), x(6), x(6)));
        // argmax / argmin
        for (String op : List.of("argmax", "argmin")) {
            c.add(c(op, a(), x(3, 4, 5)));
            c.add(c(op, a("keepdims", "True"), x(3, 4)));
            c.add(c(op, a("axis", "1"), x(3, 4, 5)));
            c.add(c(op, a("axis", "0", "keepdims", "True"), x(3, 4, 5)));
            c.add(c(op, a("axis", "-1"), x(3, 4, 5)));
            c.add(c(op, a("axis", "0"), x(7))); // legacy shapes: (1,), not ()
        }
        // tile
        for (String reps : List.of("(2,)", "(2, 3)", "(1, 2, 1)", "(2, 1, 3, 2)", "()")) {
            c.add(c("tile", a("reps", reps), x(2, 3)));
        }
        c.add(c("tile", a("reps", "(3,)"), x(2, 3, 4)));
        // repeat
        c.add(c("repeat", a("repeats", "3"), x(2, 3)));
        c.add(c("repeat", a("repeats", "2", "axis", "0"), x(2, 3, 4)));
        c.add(c("repeat", a("repeats", "3", "axis", "1"), x(2, 3, 4)));
        c.add(c("repeat", a("repeats", "2", "axis", "-1"), x(2, 3, 4)));
        c.add(c("repeat", a("repeats", "0", "axis", "1"), x(2, 3)));
        // stack
        c.add(c("stack", a("num_args", "3"), x(2, 3), x(2, 3), x(2, 3)));
        c.add(c("stack", a("num_args", "2", "axis", "1"), x(2, 3, 4), x(2, 3, 4)));
        c.add(c("stack", a("num_args", "2", "axis", "-1"), x(2, 3), x(2, 3)));
        c.add(c("stack", a("num_args", "2", "axis", "2"), x(2, 3), x(2, 3)));
        c.add(c("stack", a("num_args", "1"), x(4)));
        // batch_dot
        c.add(c("batch_dot", a(), x(2, 3, 4), x(2, 4, 5)));
        c.add(c("batch_dot", a("transpose_a", "True"), x(3, 4, 2), x(3, 4, 5)));
        c.add(c("batch_dot", a("transpose_b", "True"), x(3, 2, 4), x(3, 5, 4)));
        c.add(c("batch_dot", a("transpose_a", "True", "transpose_b", "True"), x(2, 4, 3), x(2, 5, 4)));
        c.add(c("batch_dot", a(), x(2, 3, 2, 4), x(2, 3, 4, 3)));
        // topk / sort / argsort
        for (String ret : List.of("indices", "value", "mask", "both")) {
            c.add(c("topk", a("ret_typ", ret), x(3, 6)));
            c.add(c("topk", a("ret_typ", ret, "k", "3", "axis", "1"), x(3, 5, 4)));
            c.add(c("topk", a("ret_typ", ret, "k", "2", "axis", "0", "is_ascend", "True"), x(3, 5)));
            c.add(c("topk", a("ret_typ", ret, "k", "0", "axis", "-1"), x(2, 5)));
            c.add(c("topk", a("ret_typ", ret, "k", "4", "axis", "None"), x(3, 4)));
        }
        c.add(c("topk", a("k", "2", "dtype", "int32"), x(3, 6)));
        c.add(c("topk", a("k", "2", "ret_typ", "both", "dtype", "int64"), x(3, 6)));
        c.add(c("topk", a("k", "2", "ret_typ", "indices", "dtype", "float64"), x(3, 6)));
        for (String asc : List.of("True", "False")) {
            c.add(c("sort", a("is_ascend", asc), x(3, 6)));
            c.add(c("sort", a("axis", "0", "is_ascend", asc), x(4, 3, 2)));
            c.add(c("sort", a("axis", "None", "is_ascend", asc), x(4, 3)));
            c.add(c("argsort", a("is_ascend", asc), x(3, 6)));
            c.add(c("argsort", a("axis", "1", "is_ascend", asc), x(4, 3, 2)));
            c.add(c("argsort", a("axis", "None", "is_ascend", asc, "dtype", "int32"), x(4, 3)));
        }
        // _arange (no inputs)
        c.add(c("_arange", a("start", "5")));
        c.add(c("_arange", a("start", "1", "stop", "4", "step", "0.5")));
        c.add(c("_arange", a("start", "10", "stop", "-2", "step", "-3", "repeat", "2")));
        c.add(c("_arange", a("start", "2.5", "stop", "9", "dtype", "int32")));
        // DType(start): a negative start wraps into an unsigned or narrow type, as MXNet's cast on x86
        c.add(c("_arange", a("start", "-3", "stop", "3", "dtype", "uint8")));
        c.add(c("_arange", a("start", "-200", "stop", "-190", "dtype", "int8")));
        c.add(c("_arange", a("start", "0", "stop", "7", "step", "2", "dtype", "float64", "repeat", "3")));
        // integer and float16 data through the same kernels
        List<Case> typed = new ArrayList<>();
        for (String t : List.of("int32", "int64", "uint8", "int8", "float16", "float64")) {
            typed.add(c("slice", a("begin", "(None, 1)", "end", "(None, -1)", "step", "(-1, 2)"), x(3, 6)).as(t));
            typed.add(c("slice_axis", a("axis", "1", "begin", "1", "end", "3"), x(3, 6)).as(t));
            typed.add(c("take", a("axis", "1", "mode", "wrap"), x(3, 4), idx(-5, 9, 5)).as(t));
            typed.add(c("pick", a("axis", "1"), x(3, 4), idx(0, 4, 3)).as(t));
            typed.add(c("where", a(), idx(0, 2, 3, 4), x(3, 4), x(3, 4)).as(t));
            typed.add(c("tile", a("reps", "(2, 2)"), x(2, 3)).as(t));
            typed.add(c("repeat", a("repeats", "2", "axis", "0"), x(2, 3)).as(t));
            typed.add(c("stack", a("num_args", "2", "axis", "1"), x(2, 3), x(2, 3)).as(t));
            typed.add(c("argmax", a("axis", "1"), x(3, 7)).as(t));
            typed.add(c("Cast", a("dtype", "float32"), x(3, 7)).as(t));
            typed.add(c("Cast", a("dtype", "int32"), x(3, 7)).as(t));
        }
        c.addAll(typed);
        // large enough for the OpenMP paths (> 32768 elements)
        c.add(c("Cast", a("dtype", "float16"), x(256, 160)));
        c.add(c("slice", a("begin", "(None, 1)", "end", "(None, None)", "step", "(1, 2)"), x(300, 250)));
        c.add(c("slice_axis", a("axis", "0", "begin", "1", "end", "-1"), x(300, 250)));
        c.add(c("take", a("axis", "0", "mode", "wrap"), x(200, 300), idx(-300, 300, 150)));
        c.add(c("pick", a("axis", "1"), x(400, 100), idx(0, 100, 400)));
        c.add(c("one_hot", a("depth", "100"), idx(0, 100, 500)));
        c.add(c("where", a(), idx(0, 2, 200, 200), x(200, 200), x(200, 200)));
        c.add(c("argmax", a("axis", "0"), x(200, 200)));
        c.add(c("tile", a("reps", "(30, 40)"), x(8, 9)));
        c.add(c("repeat", a("repeats", "4", "axis", "1"), x(100, 100)));
        c.add(c("stack", a("num_args", "2", "axis", "0"), x(200, 100), x(200, 100)));
        c.add(c("batch_dot", a(), x(40, 30, 20), x(40, 20, 30)));
        c.add(c("topk", a("k", "5", "ret_typ", "both"), x(400, 100)));
        c.add(c("sort", a("axis", "0"), x(300, 120)));
        c.add(c("_arange", a("start", "0", "stop", "50000", "repeat", "2")));
        // MXNet 1.9.1 aliases
        c.add(c("crop", a("begin", "(1, 0)", "end", "(3, 2)"), x(4, 3)));
        c.add(c("choose_element_0index", a("axis", "1"), x(3, 4), idx(0, 4, 3)));
        c.add(c("cast", a("dtype", "int32"), x(3, 4)));
        return c;
    }

    static String numpy(String t) {
        return switch (t) {
            case "float16" -> "<f2";
            case "float64" -> "<f8";
            case "int32" -> "<i4";
            case "int64" -> "<i8";
            case "int8" -> "|i1";
            case "uint8" -> "|u1";
            default -> "<f4";
        };
    }

    static float[] values(Random rng, In in) {
        long n = 1;
        for (long d : in.shape()) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            double d = in.lo() + (in.hi() - in.lo()) * rng.nextDouble();
            v[i] = (float) (in.integer() ? Math.floor(d) : d);
        }
        return v;
    }

    @TestFactory
    Stream<DynamicTest> forwardMatchesMxnet() {
        MxOracle.assumeAvailable();
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.label(), () -> check(c)));
    }

    static void check(Case c) {
        Random rng = new Random(c.label().hashCode());
        float[][] in = new float[c.ins().size()][];
        for (int i = 0; i < in.length; i++) {
            in[i] = values(rng, c.ins().get(i));
        }
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            NDArray[] kIn = new NDArray[in.length];
            ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[in.length];
            for (int i = 0; i < in.length; i++) {
                kIn[i] = NDArray.create(in[i], c.ins().get(i).shape());
                mIn[i] = MxOracle.create(m, in[i], c.ins().get(i).shape());
                boolean data = !c.ins().get(i).integer() || !c.dtype().equals("float32") && c.ins().get(i).lo() == 0
                        && c.ins().get(i).hi() == 50;
                if (data && !c.dtype().equals("float32")) {
                    kIn[i] = NDArray.invoke("Cast", Map.of("dtype", c.dtype()), kIn[i]).get(0);
                    mIn[i] = mIn[i].toType(ai.djl.ndarray.types.DataType.fromNumpy(numpy(c.dtype())), false);
                }
            }
            NDList mOut = MxOracle.invoke(m, c.op(), c.attrs(), mIn);
            List<NDArray> kOut = NDArray.invoke(c.op(), c.attrs(), kIn);
            assertEquals(mOut.size(), kOut.size(), "number of outputs");
            for (int o = 0; o < kOut.size(); o++) {
                assertEquals(mOut.get(o).getDataType().toString().toLowerCase(Locale.ROOT),
                        kOut.get(o).dtype().toString().toLowerCase(Locale.ROOT), "dtype of output " + o);
            }
            MxCompare.assertOutputsMatch(mOut, kOut, TOL, c.label());
        }
    }
}
