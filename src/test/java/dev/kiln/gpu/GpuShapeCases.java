package dev.kiln.gpu;

import static dev.kiln.gpu.GpuCase.ints;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.shapes;

import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * GPU consistency cases of the Shape operator family (see {@link GpuCase}): layout ops (reshape
 * family, transpose, Concat, SliceChannel, stack, slice, slice_axis, tile, repeat), rearranging ops
 * (broadcast_to/like/axis, squeeze, SwapAxis, reverse, reshape_like, slice_like, shape_array,
 * size_array, depth_to_space, space_to_depth), gathers by index
 * (take, pick, one_hot, Embedding, where, argmax, argmin, _arange, _contrib_arange_like, batch_take,
 * argmax_channel, gather_nd, scatter_nd, ravel_multi_index, unravel_index, diag), ordering (sort, argsort, topk),
 * dot, batch_dot, FullyConnected and the Sequence* ops. Backward ops are reached through the graph
 * cases' backward passes; index inputs come from generators (including out-of-range values for the
 * clip/wrap modes) and get no gradient.
 */
final class GpuShapeCases implements GpuCases {
    private static Symbol v(String name) {
        return Symbol.variable(name);
    }

    private static Symbol op(String op, Map<String, String> attrs, Symbol... in) {
        return Symbol.create(op, null, attrs, null, in);
    }

    private static Symbol opNamed(String op, Map<String, String> attrs, Map<String, Symbol> in) {
        return Symbol.create(op, null, attrs, in);
    }

    /** Values with many ties: multiples of 0.25 in [-1, 1) (exact in every float type). */
    private static GpuCase.Gen ties() {
        return (n, seed) -> {
            Random r = new Random(seed);
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = (r.nextInt(8) - 4) * 0.25;
            }
            return v;
        };
    }

    /** Distinct values (a shuffled ramp scaled into [-1, 1)): no ties, exact in float32. */
    private static GpuCase.Gen distinct() {
        return (n, seed) -> {
            Random r = new Random(seed);
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = (i - n / 2) / 65536.0;
            }
            for (int i = n - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
            return v;
        };
    }

    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        layout(c);
        rearranging(c);
        slicing(c);
        index(c);
        ordering(c);
        products(c);
        sequence(c);
        return c;
    }

    private static void layout(List<GpuCase> c) {
        Symbol x = v("x");
        // reshape family (the planner may alias; the transpose after Reshape forces a real copy)
        c.add(GpuCase.graph("Reshape(0,-1)", op("Reshape", Map.of("shape", "(0,-1)"), x),
                shapes("x", s(4, 6, 5))).addTo());
        c.add(GpuCase.graph("Reshape+transpose", op("transpose", Map.of(), op("Reshape", Map.of("shape", "(-1,7)"), x)),
                shapes("x", s(3, 14))).addTo());
        c.add(GpuCase.graph("Flatten", op("Flatten", Map.of(), x), shapes("x", s(3, 4, 5))).addTo());
        c.add(GpuCase.graph("expand_dims", op("expand_dims", Map.of("axis", "1"), x), shapes("x", s(3, 4))).addTo());
        c.add(GpuCase.graph("Reshape large", op("Reshape", Map.of("shape", "(-1,)"), op("tile", Map.of("reps", "(1,1)"), x)),
                shapes("x", s(300, 250))).dtypes(DType.FLOAT32));
        // transpose
        c.add(GpuCase.graph("transpose (0,2,3,1)", op("transpose", Map.of("axes", "(0,2,3,1)"), x),
                shapes("x", s(2, 3, 4, 5))).addTo());
        c.add(GpuCase.graph("transpose default", op("transpose", Map.of(), x), shapes("x", s(7, 9))));
        c.add(GpuCase.graph("transpose unit dims", op("transpose", Map.of("axes", "(4,3,2,1,0)"), x),
                shapes("x", s(2, 1, 3, 1, 4))));
        c.add(GpuCase.graph("transpose large", op("transpose", Map.of(), x), shapes("x", s(300, 257))).dtypes(DType.FLOAT32));
        // Concat / SliceChannel / stack
        Symbol a = v("a"), b = v("b"), d = v("d");
        c.add(GpuCase.graph("Concat dim=1", op("Concat", Map.of("num_args", "3", "dim", "1"), a, b, d),
                shapes("a", s(2, 3, 4), "b", s(2, 5, 4), "d", s(2, 1, 4))).addTo());
        c.add(GpuCase.graph("Concat dim=0", op("Concat", Map.of("num_args", "2", "dim", "0"), a, b),
                shapes("a", s(3, 5), "b", s(4, 5))));
        c.add(GpuCase.graph("Concat dim=-1", op("Concat", Map.of("num_args", "2", "dim", "-1"), a, b),
                shapes("a", s(3, 2, 5), "b", s(3, 2, 7))).addTo());
        c.add(GpuCase.graph("SliceChannel axis=1", op("SliceChannel", Map.of("num_outputs", "3", "axis", "1"), x),
                shapes("x", s(2, 6, 5))).addTo());
        c.add(GpuCase.graph("SliceChannel squeeze", op("SliceChannel",
                Map.of("num_outputs", "3", "axis", "0", "squeeze_axis", "1"), x), shapes("x", s(3, 4, 5))));
        c.add(GpuCase.graph("SliceChannel large", op("SliceChannel", Map.of("num_outputs", "2", "axis", "-1"), x),
                shapes("x", s(300, 260))).dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("stack axis=1", op("stack", Map.of("num_args", "3", "axis", "1"), a, b, d),
                shapes("a", s(4, 5), "b", s(4, 5), "d", s(4, 5))).addTo());
        c.add(GpuCase.graph("stack axis=-1", op("stack", Map.of("num_args", "2", "axis", "-1"), a, b),
                shapes("a", s(3, 2), "b", s(3, 2))));
        c.add(GpuCase.graph("stack axis=0", op("stack", Map.of("num_args", "2", "axis", "0"), a, b),
                shapes("a", s(3, 7), "b", s(3, 7))));
    }

    /** broadcast_to/like/axis, squeeze, SwapAxis, reverse, reshape_like, slice_like, shape/size_array, depth_to_space. */
    private static void rearranging(List<GpuCase> c) {
        Symbol x = v("x");
        Symbol a = v("a"), b = v("b");
        c.add(GpuCase.graph("broadcast_to", op("broadcast_to", Map.of("shape", "(3,0,4)"), x), shapes("x", s(1, 5, 1))).addTo());
        c.add(GpuCase.graph("broadcast_to large", op("broadcast_to", Map.of("shape", "(4,300,70)"), x), shapes("x", s(1, 300, 1)))
                .dtypes(DType.FLOAT32).tol(1e-4, 1e-4, 1e-9, 1e-11));
        c.add(GpuCase.graph("broadcast_like", op("broadcast_like", Map.of(), a, b), shapes("a", s(2, 1, 3), "b", s(2, 4, 3))).addTo());
        c.add(GpuCase.graph("broadcast_like axes", op("broadcast_like", Map.of("lhs_axes", "(0,)", "rhs_axes", "(-1,)"), a, b),
                shapes("a", s(1, 3), "b", s(2, 5))));
        c.add(GpuCase.graph("broadcast_axis", op("broadcast_axis", Map.of("axis", "(0,2)", "size", "(3,4)"), x),
                shapes("x", s(1, 5, 1))).addTo());
        c.add(GpuCase.graph("squeeze", op("squeeze", Map.of(), x), shapes("x", s(1, 4, 1, 3))).addTo());
        c.add(GpuCase.graph("squeeze axis", op("squeeze", Map.of("axis", "(-1,)"), x), shapes("x", s(2, 3, 1))));
        c.add(GpuCase.graph("SwapAxis", op("SwapAxis", Map.of("dim1", "0", "dim2", "2"), x), shapes("x", s(2, 3, 4))).addTo());
        c.add(GpuCase.graph("SwapAxis negative", op("SwapAxis", Map.of("dim1", "-1", "dim2", "1"), x), shapes("x", s(2, 3, 4, 5))));
        c.add(GpuCase.graph("SwapAxis large", op("SwapAxis", Map.of("dim1", "0", "dim2", "1"), x), shapes("x", s(300, 257)))
                .dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("reverse", op("reverse", Map.of("axis", "(0,2)"), x), shapes("x", s(3, 4, 5))).addTo());
        c.add(GpuCase.graph("reverse twice and negative", op("reverse", Map.of("axis", "(1,1,-1)"), x), shapes("x", s(2, 3, 4))));
        c.add(GpuCase.graph("reverse large", op("reverse", Map.of("axis", "(1,)"), x), shapes("x", s(70, 1100))).dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("reshape_like", op("reshape_like", Map.of(), a, b), shapes("a", s(2, 3, 4), "b", s(6, 4))).addTo());
        c.add(GpuCase.graph("reshape_like ranges", op("reshape_like", Map.of("lhs_begin", "0", "lhs_end", "1", "rhs_begin", "0",
                "rhs_end", "2"), a, b), shapes("a", s(30, 7), "b", s(15, 2, 4))));
        c.add(GpuCase.graph("slice_like", op("slice_like", Map.of(), a, b), shapes("a", s(4, 5, 6), "b", s(2, 3, 4))).addTo());
        c.add(GpuCase.graph("slice_like axes", op("slice_like", Map.of("axes", "(0,-1)"), a, b), shapes("a", s(4, 5, 6), "b", s(3, 1, 2))));
        c.add(GpuCase.graph("slice_like large", op("slice_like", Map.of(), a, b), shapes("a", s(400, 300), "b", s(350, 250)))
                .dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("shape_array", op("shape_array", Map.of(), x), shapes("x", s(2, 3, 4))));
        c.add(GpuCase.graph("size_array", op("size_array", Map.of(), x), shapes("x", s(2, 3, 4))));
        c.add(GpuCase.invoke("shape_array int32", "shape_array", Map.of(), s(5, 1, 2)).input("in0", ints(0, 9)).type("in0", DType.INT32));
        c.add(GpuCase.graph("depth_to_space", op("depth_to_space", Map.of("block_size", "2"), x), shapes("x", s(2, 8, 3, 2))).addTo());
        c.add(GpuCase.graph("space_to_depth", op("space_to_depth", Map.of("block_size", "3"), x), shapes("x", s(1, 2, 6, 3))).addTo());
        c.add(GpuCase.graph("depth_to_space large", op("depth_to_space", Map.of("block_size", "2"), x), shapes("x", s(2, 16, 48, 48)))
                .dtypes(DType.FLOAT32));
        for (DType t : new DType[] {DType.FLOAT16, DType.INT32, DType.UINT8}) {
            c.add(GpuCase.invoke("broadcast_to " + t.mxName(), "broadcast_to", Map.of("shape", "(3,0)"), s(1, 4)).input("in0", ints(0, 100)).type("in0", t));
            c.add(GpuCase.invoke("reverse " + t.mxName(), "reverse", Map.of("axis", "(0,1)"), s(3, 4)).input("in0", ints(0, 100)).type("in0", t));
            c.add(GpuCase.invoke("SwapAxis " + t.mxName(), "SwapAxis", Map.of("dim1", "0", "dim2", "1"), s(3, 4)).input("in0", ints(0, 100)).type("in0", t));
            c.add(GpuCase.invoke("depth_to_space " + t.mxName(), "depth_to_space", Map.of("block_size", "2"), s(1, 4, 2, 3))
                    .input("in0", ints(0, 100)).type("in0", t));
        }
    }

    private static void slicing(List<GpuCase> c) {
        Symbol x = v("x");
        c.add(GpuCase.graph("slice steps", op("slice", Map.of("begin", "(1,None,5)", "end", "(4,None,0)",
                "step", "(1,1,-2)"), x), shapes("x", s(4, 5, 6))).addTo());
        c.add(GpuCase.graph("slice simple", op("slice", Map.of("begin", "(0,1)", "end", "(2,3)"), x),
                shapes("x", s(3, 4, 5))));
        c.add(GpuCase.graph("slice large", op("slice", Map.of("begin", "(1,3)", "end", "(399,197)", "step", "(2,1)"), x),
                shapes("x", s(400, 200))).dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("slice_axis", op("slice_axis", Map.of("axis", "1", "begin", "1", "end", "4"), x),
                shapes("x", s(3, 6, 2))).addTo());
        c.add(GpuCase.graph("slice_axis negative", op("slice_axis", Map.of("axis", "-1", "begin", "-3", "end", "None"), x),
                shapes("x", s(4, 5))));
        c.add(GpuCase.graph("tile", op("tile", Map.of("reps", "(2,3)"), x), shapes("x", s(3, 4))).addTo());
        c.add(GpuCase.graph("tile promote", op("tile", Map.of("reps", "(2,1,3)"), x), shapes("x", s(4, 5))));
        c.add(GpuCase.graph("tile short reps", op("tile", Map.of("reps", "(3,)"), x), shapes("x", s(2, 3, 4))).addTo());
        c.add(GpuCase.graph("tile large", op("tile", Map.of("reps", "(1,3)"), x), shapes("x", s(100, 300))).dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("repeat axis=1", op("repeat", Map.of("repeats", "3", "axis", "1"), x),
                shapes("x", s(3, 4, 5))).addTo());
        c.add(GpuCase.graph("repeat flat", op("repeat", Map.of("repeats", "2"), x), shapes("x", s(4, 5))));
        c.add(GpuCase.graph("repeat large", op("repeat", Map.of("repeats", "4", "axis", "0"), x),
                shapes("x", s(150, 130))).dtypes(DType.FLOAT32));
    }

    private static void index(List<GpuCase> c) {
        Symbol a = v("a"), idx = v("indices");
        // take: clip (out-of-range both sides), wrap, raise (valid indices), several axes, index dtypes
        c.add(GpuCase.graph("take clip axis=1", op("take", Map.of("axis", "1"), a, idx),
                shapes("a", s(5, 4, 3), "indices", s(2, 3))).input("indices", ints(-2, 7)).noGrad("indices").addTo());
        c.add(GpuCase.graph("take wrap axis=-1", op("take", Map.of("axis", "-1", "mode", "wrap"), a, idx),
                shapes("a", s(3, 5), "indices", s(11))).input("indices", ints(-12, 12)).noGrad("indices")
                .type("indices", DType.INT32).addTo());
        c.add(GpuCase.graph("take raise axis=0", op("take", Map.of("axis", "0", "mode", "raise"), a, idx),
                shapes("a", s(6, 4), "indices", s(3, 4))).input("indices", ints(0, 6)).noGrad("indices")
                .type("indices", DType.INT64));
        c.add(GpuCase.graph("take large", op("take", Map.of(), a, idx), shapes("a", s(1000, 80), "indices", s(900)))
                .input("indices", ints(0, 1000)).noGrad("indices").type("indices", DType.INT32).dtypes(DType.FLOAT32));
        // Embedding (data clipped into [0, input_dim)); weight dtype follows the dtype parameter
        Symbol data = v("data"), w = v("weight");
        for (DType t : new DType[] {DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16}) {
            String dt = t.mxName();
            c.add(GpuCase.graph("Embedding " + dt, op("Embedding", Map.of("input_dim", "10", "output_dim", "6", "dtype", dt),
                    data, w), shapes("data", s(4, 7), "weight", s(10, 6))).input("data", ints(-1, 12)).noGrad("data")
                    .dtypes(t).addTo());
        }
        c.add(GpuCase.graph("Embedding large", op("Embedding", Map.of("input_dim", "500", "output_dim", "40"), data, w),
                shapes("data", s(2000), "weight", s(500, 40))).input("data", ints(0, 500)).noGrad("data")
                .type("data", DType.INT32).dtypes(DType.FLOAT32).tol(1e-4, 1e-5, 1e-9, 1e-11));
        // pick
        Symbol x = v("x"), index = v("index");
        c.add(GpuCase.graph("pick axis=1 clip", op("pick", Map.of("axis", "1"), x, index),
                shapes("x", s(4, 5, 3), "index", s(4, 3))).input("index", ints(-1, 7)).noGrad("index").addTo());
        c.add(GpuCase.graph("pick wrap keepdims", op("pick", Map.of("axis", "-1", "mode", "wrap", "keepdims", "1"), x, index),
                shapes("x", s(4, 5), "index", s(4, 1))).input("index", ints(-7, 7)).noGrad("index"));
        c.add(GpuCase.graph("pick axis=0", op("pick", Map.of("axis", "0"), x, index),
                shapes("x", s(6, 7), "index", s(7))).input("index", ints(0, 6)).noGrad("index")
                .type("index", DType.INT32).addTo());
        // one_hot (out-of-range indices give rows of off_value)
        c.add(GpuCase.invoke("one_hot float64", "one_hot", Map.of("depth", 5, "on_value", 2.0, "off_value", -1.0,
                "dtype", "float64"), s(3, 4)).input("in0", ints(-1, 7)));
        c.add(GpuCase.invoke("one_hot int32", "one_hot", Map.of("depth", 6, "dtype", "int32"), s(9))
                .input("in0", ints(0, 6)).type("in0", DType.INT32));
        c.add(GpuCase.graph("one_hot graph", op("one_hot", Map.of("depth", "4"), idx), shapes("indices", s(5)))
                .input("indices", ints(0, 4)).forwardOnly());
        // where (same-shape and 1-D conditions)
        Symbol cond = v("cond"), y = v("y");
        c.add(GpuCase.graph("where", op("where", Map.of(), cond, x, y), shapes("cond", s(4, 5), "x", s(4, 5), "y", s(4, 5)))
                .input("cond", ints(0, 2)).noGrad("cond").addTo());
        c.add(GpuCase.graph("where 1-D cond", op("where", Map.of(), cond, x, y), shapes("cond", s(4), "x", s(4, 3),
                "y", s(4, 3))).input("cond", ints(-1, 2)).noGrad("cond").type("cond", DType.INT32));
        // argmax / argmin (ties: the first position wins)
        c.add(GpuCase.graph("argmax axis=1 keepdims", op("argmax", Map.of("axis", "1", "keepdims", "1"), x),
                shapes("x", s(4, 9, 3))).input("x", ties()).forwardOnly());
        c.add(GpuCase.graph("argmin axis=None", op("argmin", Map.of(), x), shapes("x", s(5, 6))).input("x", ties())
                .forwardOnly());
        c.add(GpuCase.graph("argmax large", op("argmax", Map.of("axis", "0"), x), shapes("x", s(300, 250))).forwardOnly().dtypes(DType.FLOAT64));
        // _arange
        c.add(GpuCase.invoke("_arange float64", "_arange", Map.of("start", 2, "stop", 11, "step", 1.5, "repeat", 2,
                "dtype", "float64")));
        c.add(GpuCase.invoke("_arange int32", "_arange", Map.of("start", 7, "step", 1, "dtype", "int32")));
        c.add(GpuCase.invoke("_arange uint8 from -3 (wraps)", "_arange", Map.of("start", -3, "stop", 3, "dtype", "uint8")));
        c.add(GpuCase.graph("_contrib_arange_like axis=1", op("_contrib_arange_like", Map.of("start", "1.5", "step", "0.5",
                "repeat", "2", "axis", "1"), x), shapes("x", s(3, 7))).forwardOnly());
        c.add(GpuCase.invoke("_contrib_arange_like int32", "_contrib_arange_like", Map.of("start", 3), s(4, 5))
                .dtypes(DType.INT32));
        // batch_take (int32 indices, clipped), argmax_channel (ties: the first maximum)
        c.add(GpuCase.graph("batch_take", op("batch_take", Map.of(), a, idx), shapes("a", s(6, 5), "indices", s(6)))
                .input("indices", ints(-2, 8)).noGrad("indices").type("indices", DType.INT32).addTo());
        c.add(GpuCase.graph("batch_take large", op("batch_take", Map.of(), a, idx), shapes("a", s(3000, 70), "indices", s(3000)))
                .input("indices", ints(0, 70)).noGrad("indices").type("indices", DType.INT32).dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("argmax_channel", op("argmax_channel", Map.of(), x), shapes("x", s(4, 3, 9))).input("x", ties())
                .forwardOnly());
        // gather_nd / scatter_nd: negative coordinates, repeated positions (gather_nd's gradient adds them in
        // index order, scatter_nd's last position wins), every index dtype
        c.add(GpuCase.graph("gather_nd", op("gather_nd", Map.of(), a, idx), shapes("a", s(5, 4, 3), "indices", s(2, 3, 4)))
                .input("indices", ints(-4, 4)).noGrad("indices").addTo());
        c.add(GpuCase.graph("gather_nd int64 full", op("gather_nd", Map.of(), a, idx), shapes("a", s(4, 4), "indices", s(2, 9)))
                .input("indices", ints(-4, 4)).noGrad("indices").type("indices", DType.INT64).addTo());
        c.add(GpuCase.graph("gather_nd large", op("gather_nd", Map.of(), a, idx), shapes("a", s(300, 40, 8), "indices", s(2, 5000)))
                .input("indices", ints(0, 40)).noGrad("indices").type("indices", DType.INT32).dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("scatter_nd", op("scatter_nd", Map.of("shape", "(5, 4, 3)"), a, idx),
                shapes("a", s(6, 3), "indices", s(2, 6))).input("indices", ints(-4, 4)).noGrad("indices").addTo());
        // ravel_multi_index / unravel_index (plain arithmetic: values beyond the shape too)
        c.add(GpuCase.invoke("ravel_multi_index", "ravel_multi_index", Map.of("shape", "(3, 4, 5)"), s(3, 11))
                .input("in0", ints(-2, 6)));
        c.add(GpuCase.invoke("unravel_index int32", "unravel_index", Map.of("shape", "(3, 4, 5)"), s(13))
                .input("in0", ints(-70, 70)).dtypes(DType.INT32));
        c.add(GpuCase.invoke("unravel_index", "_unravel_index", Map.of("shape", "(6, 7)"), s(9)).input("in0", ints(0, 42)));
        // diag: 1-D to matrix, planes of a 3-D array (off-diagonal), the gradient the other way
        c.add(GpuCase.graph("diag 1-D k=-2", op("diag", Map.of("k", "-2"), x), shapes("x", s(5))).addTo());
        c.add(GpuCase.graph("diag 3-D k=1 axes 2,0", op("diag", Map.of("k", "1", "axis1", "2", "axis2", "0"), x),
                shapes("x", s(4, 3, 6))).addTo());
        c.add(GpuCase.invoke("diag int32", "diag", Map.of("k", "1"), s(5, 4)).input("in0", ints(-9, 9)).dtypes(DType.INT32));
        // khatri_rao (Kiln's gradient: each factor's element sums its output rows)
        c.add(GpuCase.graph("khatri_rao 3 inputs", Symbol.create("khatri_rao", null, Map.of("num_args", "3"), null, v("p"), v("q"),
                v("w")), shapes("p", s(2, 4), "q", s(3, 4), "w", s(2, 4))).addTo());
        c.add(GpuCase.graph("scatter_nd uint8", op("scatter_nd", Map.of("shape", "(9,)"), a, idx),
                shapes("a", s(7), "indices", s(1, 7))).input("indices", ints(0, 9)).noGrad("indices").type("indices", DType.UINT8));
    }

    private static void ordering(List<GpuCase> c) {
        Symbol x = v("x");
        c.add(GpuCase.graph("sort axis=-1 ties", op("sort", Map.of(), x), shapes("x", s(4, 37))).input("x", ties()).addTo());
        c.add(GpuCase.graph("sort axis=0 descending", op("sort", Map.of("axis", "0", "is_ascend", "0"), x),
                shapes("x", s(9, 4, 3))).input("x", ties()));
        c.add(GpuCase.graph("sort axis=None", op("sort", Map.of("axis", "None"), x), shapes("x", s(6, 7)))
                .input("x", distinct()));
        c.add(GpuCase.graph("sort long rows (global path)", op("sort", Map.of("is_ascend", "0"), x), shapes("x", s(3, 5000)))
                .input("x", ties()).dtypes(DType.FLOAT32));
        c.add(GpuCase.graph("sort many rows", op("sort", Map.of(), x), shapes("x", s(70, 1100))).input("x", distinct())
                .dtypes(DType.FLOAT32));
        // NaN (of either sign) after every number, ties by position, as on the CPU
        double negNan = Double.longBitsToDouble(0xfff8000000000000L);
        double[] nans = {3, Double.NaN, 1, negNan, 2, Double.NEGATIVE_INFINITY, Double.NaN, 0, 5, Double.POSITIVE_INFINITY, negNan, -1};
        c.add(GpuCase.graph("argsort with NaN", op("argsort", Map.of("dtype", "int32"), x), shapes("x", s(2, 6)))
                .input("x", nans).forwardOnly());
        c.add(GpuCase.graph("topk with NaN descending", op("topk", Map.of("k", "3", "axis", "None", "dtype", "int32"), x),
                shapes("x", s(12))).input("x", nans).forwardOnly());
        c.add(GpuCase.graph("argsort int32", op("argsort", Map.of("axis", "1", "is_ascend", "0", "dtype", "int32"), x),
                shapes("x", s(3, 10, 2))).input("x", ties()).forwardOnly());
        c.add(GpuCase.graph("argsort float32 axis=None", op("argsort", Map.of("axis", "None"), x), shapes("x", s(5, 5)))
                .input("x", ties()).forwardOnly());
        c.add(GpuCase.graph("argsort int64 long", op("argsort", Map.of("dtype", "int64"), x), shapes("x", s(2, 4500)))
                .input("x", ties()).forwardOnly().dtypes(DType.FLOAT64));
        c.add(GpuCase.graph("topk value", op("topk", Map.of("axis", "1", "k", "3", "ret_typ", "value"), x),
                shapes("x", s(4, 8, 2))).input("x", ties()).addTo());
        c.add(GpuCase.graph("topk both ascend", op("topk", Map.of("axis", "0", "k", "2", "ret_typ", "both", "is_ascend", "1"), x),
                shapes("x", s(6, 5))).input("x", ties()));
        c.add(GpuCase.graph("topk indices int32", op("topk", Map.of("k", "4", "dtype", "int32"), x), shapes("x", s(3, 9)))
                .input("x", ties()).forwardOnly());
        c.add(GpuCase.graph("topk indices default", op("topk", Map.of("k", "2", "axis", "None"), x), shapes("x", s(4, 6)))
                .input("x", distinct()).forwardOnly());
        c.add(GpuCase.graph("topk mask", op("topk", Map.of("k", "2", "ret_typ", "mask"), x), shapes("x", s(5, 7)))
                .input("x", ties()).forwardOnly());
        c.add(GpuCase.graph("topk value axis=None k<1", op("topk", Map.of("k", "0", "ret_typ", "value", "axis", "None"), x),
                shapes("x", s(3, 4))).input("x", distinct()));
    }

    private static void products(List<GpuCase> c) {
        Symbol a = v("a"), b = v("b");
        c.add(GpuCase.graph("dot 2-D", op("dot", Map.of(), a, b), shapes("a", s(4, 5), "b", s(5, 3))).addTo());
        c.add(GpuCase.graph("dot transpose_a", op("dot", Map.of("transpose_a", "1"), a, b), shapes("a", s(5, 4), "b", s(5, 3)))
                .addTo());
        c.add(GpuCase.graph("dot transpose_b", op("dot", Map.of("transpose_b", "1"), a, b), shapes("a", s(4, 5), "b", s(3, 5))));
        c.add(GpuCase.graph("dot transpose both", op("dot", Map.of("transpose_a", "1", "transpose_b", "1"), a, b),
                shapes("a", s(5, 4), "b", s(3, 5))).addTo());
        c.add(GpuCase.graph("dot 1-D x 1-D", op("dot", Map.of(), a, b), shapes("a", s(7), "b", s(7))).addTo());
        c.add(GpuCase.graph("dot N-D", op("dot", Map.of(), a, b), shapes("a", s(2, 3, 4), "b", s(4, 5, 2))));
        c.add(GpuCase.graph("dot 1-D x 2-D", op("dot", Map.of(), a, b), shapes("a", s(5), "b", s(5, 3))));
        c.add(GpuCase.graph("dot large", op("dot", Map.of(), a, b), shapes("a", s(300, 64), "b", s(64, 260)))
                .tol(1e-4, 1e-4, 1e-9, 1e-11));
        c.add(GpuCase.graph("batch_dot", op("batch_dot", Map.of(), a, b), shapes("a", s(3, 4, 5), "b", s(3, 5, 2))).addTo());
        c.add(GpuCase.graph("batch_dot transpose_a", op("batch_dot", Map.of("transpose_a", "1"), a, b),
                shapes("a", s(3, 5, 4), "b", s(3, 5, 2))).addTo());
        c.add(GpuCase.graph("batch_dot transpose_b", op("batch_dot", Map.of("transpose_b", "1"), a, b),
                shapes("a", s(3, 4, 5), "b", s(3, 2, 5))));
        c.add(GpuCase.graph("batch_dot transpose both 4-D", op("batch_dot", Map.of("transpose_a", "1", "transpose_b", "1"), a, b),
                shapes("a", s(2, 3, 5, 4), "b", s(2, 3, 6, 5))).addTo());
        // FullyConnected (ops/fully_connected.cu)
        Symbol x = v("x"), w = v("w"), bias = v("bias");
        c.add(GpuCase.graph("FullyConnected flatten", opNamed("FullyConnected", Map.of("num_hidden", "6"),
                Map.of("data", x, "weight", w, "bias", bias)), shapes("x", s(4, 3, 5), "w", s(6, 15), "bias", s(6))).addTo());
        c.add(GpuCase.graph("FullyConnected no flatten", opNamed("FullyConnected", Map.of("num_hidden", "6", "flatten", "0"),
                Map.of("data", x, "weight", w, "bias", bias)), shapes("x", s(4, 3, 5), "w", s(6, 5), "bias", s(6))).addTo());
        c.add(GpuCase.graph("FullyConnected no_bias", opNamed("FullyConnected", Map.of("num_hidden", "7", "no_bias", "1"),
                Map.of("data", x, "weight", w)), shapes("x", s(5, 9), "w", s(7, 9))).addTo());
        c.add(GpuCase.graph("FullyConnected large", opNamed("FullyConnected", Map.of("num_hidden", "300"),
                Map.of("data", x, "weight", w, "bias", bias)), shapes("x", s(260, 33), "w", s(300, 33), "bias", s(300)))
                .tol(1e-4, 1e-4, 1e-9, 1e-11));
    }

    private static void sequence(List<GpuCase> c) {
        Symbol x = v("data"), len = v("sequence_length");
        for (String op : new String[] {"SequenceLast", "SequenceMask", "SequenceReverse"}) {
            boolean mask = op.equals("SequenceMask");
            Map<String, String> plain = mask ? Map.of("value", "-2") : Map.of();
            Map<String, String> withLen = mask ? Map.of("use_sequence_length", "1", "value", "0.5")
                    : Map.of("use_sequence_length", "1");
            c.add(GpuCase.graph(op, opNamed(op, plain, Map.of("data", x)), shapes("data", s(5, 3, 4))).addTo());
            // lengths out of [1, T] on both sides: clamped as on the CPU
            c.add(GpuCase.graph(op + " lengths", opNamed(op, withLen, Map.of("data", x, "sequence_length", len)),
                    shapes("data", s(6, 4, 2), "sequence_length", s(4))).input("sequence_length", ints(-1, 9))
                    .noGrad("sequence_length").addTo());
            c.add(GpuCase.graph(op + " int32 lengths", opNamed(op, withLen, Map.of("data", x, "sequence_length", len)),
                    shapes("data", s(7, 5), "sequence_length", s(5))).input("sequence_length", ints(1, 8))
                    .noGrad("sequence_length").type("sequence_length", DType.INT32));
            if (!op.equals("SequenceReverse")) {
                Map<String, String> axis1 = new LinkedHashMap<>(withLen);
                axis1.put("axis", "1");
                c.add(GpuCase.graph(op + " axis=1", opNamed(op, axis1, Map.of("data", x, "sequence_length", len)),
                        shapes("data", s(4, 6, 3), "sequence_length", s(4))).input("sequence_length", ints(0, 8))
                        .noGrad("sequence_length").addTo());
            }
        }
        c.add(GpuCase.graph("SequenceMask large", opNamed("SequenceMask", Map.of("use_sequence_length", "1"),
                Map.of("data", x, "sequence_length", len)), shapes("data", s(100, 30, 25), "sequence_length", s(30)))
                .input("sequence_length", ints(0, 101)).noGrad("sequence_length").dtypes(DType.FLOAT64));
        c.add(GpuCase.graph("SequenceReverse large", opNamed("SequenceReverse", Map.of("use_sequence_length", "1"),
                Map.of("data", x, "sequence_length", len)), shapes("data", s(100, 30, 25), "sequence_length", s(30)))
                .input("sequence_length", ints(1, 101)).noGrad("sequence_length").dtypes(DType.FLOAT32));
    }
}
