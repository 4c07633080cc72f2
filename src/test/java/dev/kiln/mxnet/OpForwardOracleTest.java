package dev.kiln.mxnet;

import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.op.Ops;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Forward values of Kiln's operators against the real MXNet 1.9.1 on the same float32 inputs:
 * both engines are called imperatively by operator name with the same MXNet parameter strings.
 * Every output must have MXNet's shape and agree to 1e-5 (absolute, or relative for values
 * above 1).
 */
@ExtendWith(NoLeaks.class)
class OpForwardOracleTest {
    static final double TOL = 1e-5;
    static final Map<String, Double> MAX_ERR = new LinkedHashMap<>();

    /** One operator call: name, MXNet parameters, input shapes, input value range. */
    record Case(String label, String op, Map<String, String> attrs, long[][] shapes, double lo, double hi) {
        Case(String op, Map<String, String> attrs, long[]... shapes) {
            this(op + " " + attrs, op, attrs, shapes, -2, 2);
        }

        Case range(double l, double h) {
            return new Case(label, op, attrs, shapes, l, h);
        }
    }

    static long[] s(long... d) {
        return d;
    }

    static Map<String, String> a(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    static List<Case> cases() {
        List<Case> c = new ArrayList<>();
        // FullyConnected
        c.add(new Case("FullyConnected", a("num_hidden", "6"), s(4, 3, 5), s(6, 15), s(6)));
        c.add(new Case("FullyConnected", a("num_hidden", "6", "flatten", "False"), s(4, 3, 5), s(6, 5), s(6)));
        c.add(new Case("FullyConnected", a("num_hidden", "7", "no_bias", "True"), s(8, 20), s(7, 20)));
        c.add(new Case("FullyConnected", a("num_hidden", "7", "no_bias", "True", "flatten", "False"), s(2, 3, 4, 20), s(7, 20)));
        // Activation
        for (String t : List.of("relu", "sigmoid", "tanh", "softrelu", "softsign")) {
            c.add(new Case("Activation", a("act_type", t), s(3, 17)).range(-6, 6));
        }
        // LeakyReLU
        c.add(new Case("LeakyReLU", a("act_type", "leaky", "slope", "0.1"), s(4, 9)));
        c.add(new Case("LeakyReLU", a("act_type", "leaky"), s(4, 9)));
        c.add(new Case("LeakyReLU", a("act_type", "elu", "slope", "0.3"), s(4, 9)));
        c.add(new Case("LeakyReLU", a("act_type", "selu"), s(4, 9)));
        c.add(new Case("LeakyReLU", a("act_type", "gelu"), s(4, 9)).range(-5, 5));
        c.add(new Case("LeakyReLU", a("act_type", "prelu"), s(2, 3, 5), s(3)));
        c.add(new Case("LeakyReLU", a("act_type", "prelu"), s(4, 6), s(1)));
        // softmax / log_softmax
        for (String op : List.of("softmax", "log_softmax")) {
            c.add(new Case(op, a(), s(4, 10)).range(-5, 5));
            c.add(new Case(op, a("axis", "1"), s(3, 4, 5)).range(-5, 5));
            c.add(new Case(op, a("axis", "0"), s(3, 4, 5)).range(-5, 5));
            c.add(new Case(op, a("axis", "-1", "temperature", "2.5"), s(6, 7)).range(-5, 5));
            c.add(new Case(op, a("axis", "1", "temperature", "0.5"), s(2, 5, 3)).range(-5, 5));
        }
        c.add(new Case("SoftmaxActivation", a(), s(4, 10)));
        c.add(new Case("SoftmaxActivation", a("mode", "channel"), s(2, 3, 4)));
        // SoftmaxOutput forward (the label only matters for the gradient)
        c.add(new Case("SoftmaxOutput", a(), s(5, 10), s(5)).range(0, 9));
        c.add(new Case("SoftmaxOutput", a("multi_output", "True"), s(2, 4, 3), s(2, 3)).range(0, 3));
        c.add(new Case("SoftmaxOutput", a("preserve_shape", "True"), s(2, 3, 4), s(2, 3)).range(0, 3));
        // AMP casts: rounding to float16 / bfloat16 (nearest even) as MXNet rounds; float32 multicast unchanged
        c.add(new Case("amp_cast", a("dtype", "float16"), s(7, 9)).range(-70000, 70000));
        c.add(new Case("amp_cast", a("dtype", "float16"), s(5, 11)).range(-1e-4, 1e-4));
        c.add(new Case("amp_cast", a("dtype", "bfloat16"), s(7, 9)).range(-3, 3));
        c.add(new Case("amp_multicast", a("num_outputs", "2"), s(3, 4), s(3, 4)));
        c.add(new Case("amp_multicast", a("num_outputs", "2", "cast_narrow", "True"), s(3, 4), s(3, 4)));
        // Reshape with special codes
        long[] r4 = s(2, 3, 4, 5);
        for (String shape : List.of("(0, -1)", "(-1,)", "(4, 0, -1)", "(-2,)", "(0, -2)", "(-3, -2)", "(0, -3, 5)", "(-4, 1, 2, -2)",
                "(2, -4, -1, 3, -2)", "(-3, -3)", "(0, 0, 0, 5)")) {
            c.add(new Case("Reshape", a("shape", shape), r4));
        }
        c.add(new Case("Reshape", a("shape", "(-1, 0)", "reverse", "True"), r4));
        c.add(new Case("Reshape", a("target_shape", "(0,)"), r4)); // deprecated target_shape: the 0 is inferred
        c.add(new Case("Reshape", a("target_shape", "(6, 0)"), r4));
        c.add(new Case("Reshape", a("shape", "(0, 0, -1)", "reverse", "True"), r4));
        c.add(new Case("Flatten", a(), r4));
        // transpose
        c.add(new Case("transpose", a(), s(2, 3, 4)));
        c.add(new Case("transpose", a("axes", "(1, 0, 2)"), s(2, 3, 4)));
        c.add(new Case("transpose", a("axes", "(2, 0, 3, 1)"), r4));
        c.add(new Case("transpose", a("axes", "(1, 0)"), s(17, 33)));
        // dot
        c.add(new Case("dot", a(), s(3, 4), s(4, 5)));
        c.add(new Case("dot", a("transpose_a", "True"), s(4, 3), s(4, 5)));
        c.add(new Case("dot", a("transpose_b", "True"), s(3, 4), s(5, 4)));
        c.add(new Case("dot", a("transpose_a", "True", "transpose_b", "True"), s(4, 3), s(5, 4)));
        c.add(new Case("dot", a(), s(2, 3, 4), s(4, 5)));
        c.add(new Case("dot", a(), s(6), s(6)));
        c.add(new Case("batch_dot", a(), s(2, 3, 4), s(2, 4, 5)));
        c.add(new Case("batch_dot", a("transpose_a", "True", "transpose_b", "True"), s(2, 4, 3), s(2, 5, 4)));
        // reductions
        for (String op : List.of("sum", "mean", "max", "min")) {
            c.add(new Case(op, a(), s(3, 4, 5)));
            c.add(new Case(op, a("axis", "1"), s(3, 4, 5)));
            c.add(new Case(op, a("axis", "-1", "keepdims", "True"), s(3, 4, 5)));
            c.add(new Case(op, a("axis", "(0, 2)", "keepdims", "True"), s(3, 4, 5)));
            c.add(new Case(op, a("axis", "1", "exclude", "True"), s(3, 4, 5)));
            c.add(new Case(op, a("axis", "(0, 2)", "exclude", "True", "keepdims", "True"), s(3, 4, 5)));
        }
        c.add(new Case("prod", a("axis", "1"), s(3, 4, 5)));
        c.add(new Case("nansum", a("axis", "0"), s(3, 4, 5)));
        // broadcast binary ops
        for (String op : List.of("broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div", "broadcast_maximum",
                "broadcast_minimum", "broadcast_equal", "broadcast_greater", "broadcast_lesser")) {
            c.add(new Case(op, a(), s(2, 3, 4), s(1, 3, 1)));
            c.add(new Case(op, a(), s(2, 1, 4), s(2, 3, 1)));
            c.add(new Case(op, a(), s(5, 6), s(5, 6)));
        }
        c.add(new Case("broadcast_power", a(), s(2, 3, 4), s(1, 3, 1)).range(0.1, 2));
        c.add(new Case("broadcast_to", a("shape", "(2, 3, 4)"), s(1, 3, 1)));
        c.add(new Case("broadcast_to", a("shape", "(2, 0, 4)"), s(1, 3, 1)));
        c.add(new Case("broadcast_axis", a("axis", "(0, 2)", "size", "(2, 4)"), s(1, 3, 1)));
        c.add(new Case("broadcast_like", a(), s(1, 3, 1), s(2, 3, 4)));
        // elementwise
        for (String op : List.of("elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_maximum", "_minimum")) {
            c.add(new Case(op, a(), s(3, 7), s(3, 7)));
        }
        for (String op : List.of("negative", "exp", "tanh", "sigmoid", "relu", "abs", "square", "sign", "floor", "ceil", "round")) {
            c.add(new Case(op, a(), s(3, 7)));
        }
        for (String op : List.of("log", "sqrt", "rsqrt", "reciprocal", "log1p")) {
            c.add(new Case(op, a(), s(3, 7)).range(0.1, 4));
        }
        for (String op : List.of("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
                "_maximum_scalar", "_minimum_scalar")) {
            c.add(new Case(op, a("scalar", "0.75"), s(3, 7)));
        }
        c.add(new Case("_rdiv_scalar", a("scalar", "0.75"), s(3, 7)).range(0.2, 3));
        c.add(new Case("_power_scalar", a("scalar", "2.5"), s(3, 7)).range(0.1, 3));
        c.add(new Case("_rpower_scalar", a("scalar", "1.7"), s(3, 7)));
        c.add(new Case("add_n", a("num_args", "3"), s(2, 5), s(2, 5), s(2, 5)));
        // clip
        c.add(new Case("clip", a("a_min", "-0.5", "a_max", "0.7"), s(4, 9)));
        c.add(new Case("clip", a("a_min", "0", "a_max", "1e30"), s(4, 9)));
        // the math, comparison and logical ops of kiln/elemwise_math.h
        for (String op : List.of("softsign", "sin", "cos", "arctan", "sinh", "cosh", "arcsinh", "degrees", "radians",
                "expm1", "erf", "cbrt", "rint", "fix", "trunc", "logical_not", "hard_sigmoid")) {
            c.add(new Case(op, a(), s(3, 7)));
        }
        for (String op : List.of("tan", "arcsin", "arccos", "arctanh", "erfinv")) {
            c.add(new Case(op, a(), s(3, 7)).range(-0.9, 0.9));
        }
        for (String op : List.of("log10", "log2", "rcbrt", "gamma", "gammaln")) {
            c.add(new Case(op, a(), s(3, 7)).range(0.2, 4));
        }
        c.add(new Case("arccosh", a(), s(3, 7)).range(1.1, 4));
        for (String op : List.of("_equal", "_not_equal", "_greater", "_greater_equal", "_lesser", "_lesser_equal",
                "_logical_and", "_logical_or", "_logical_xor", "_mod", "_hypot")) {
            c.add(new Case(op, a(), s(3, 7), s(3, 7)).range(-2, 2));
        }
        for (String op : List.of("broadcast_not_equal", "broadcast_greater_equal", "broadcast_lesser_equal",
                "broadcast_logical_and", "broadcast_logical_or", "broadcast_logical_xor", "broadcast_mod", "broadcast_hypot")) {
            c.add(new Case(op, a(), s(2, 3, 4), s(1, 3, 1)));
        }
        for (String op : List.of("_equal_scalar", "_not_equal_scalar", "_greater_scalar", "_greater_equal_scalar",
                "_lesser_scalar", "_lesser_equal_scalar", "_logical_and_scalar", "_logical_or_scalar", "_logical_xor_scalar",
                "_mod_scalar", "_rmod_scalar", "_hypot_scalar", "smooth_l1")) {
            c.add(new Case(op, a("scalar", "0.75"), s(3, 7)));
        }
        c.add(new Case("nanprod", a("axis", "1"), s(3, 4, 5)).range(0.5, 1.5));
        c.add(new Case("norm", a("axis", "1"), s(3, 4, 5)));
        c.add(new Case("norm", a("ord", "1", "axis", "(0, 2)", "keepdims", "True"), s(3, 4, 5)));
        // shape ops
        c.add(new Case("squeeze", a("axis", "(1,)"), s(3, 1, 4)));
        c.add(new Case("SwapAxis", a("dim1", "0", "dim2", "2"), s(2, 3, 4)));
        c.add(new Case("reverse", a("axis", "(1,)"), s(2, 3, 4)));
        c.add(new Case("slice_like", a("axes", "(0, 2)"), s(4, 3, 5), s(2, 7, 3)));
        c.add(new Case("reshape_like", a(), s(2, 6), s(3, 4)));
        c.add(new Case("shape_array", a(), s(2, 3, 4)));
        c.add(new Case("size_array", a(), s(2, 3, 4)));
        c.add(new Case("depth_to_space", a("block_size", "2"), s(1, 8, 2, 3)));
        c.add(new Case("space_to_depth", a("block_size", "2"), s(1, 2, 4, 6)));
        // index and misc ops (values double as coordinates: truncated, inside every axis)
        c.add(new Case("gather_nd", a(), s(3, 4), s(2, 5)).range(0, 2.9));
        c.add(new Case("argmax_channel", a(), s(3, 5)));
        c.add(new Case("diag", a("k", "1"), s(4, 4)));
        c.add(new Case("cumsum", a("axis", "1"), s(3, 4)));
        c.add(new Case("moments", a("axes", "(1,)"), s(3, 4, 5)));
        c.add(new Case("khatri_rao", a("num_args", "2"), s(3, 4), s(5, 4)));
        c.add(new Case("_contrib_div_sqrt_dim", a(), s(3, 8)));
        c.add(new Case("_contrib_arange_like", a("start", "1.5", "step", "0.5"), s(3, 4)));
        c.add(new Case("_contrib_box_iou", a(), s(5, 4), s(3, 4)).range(0, 10));
        // image ops
        c.add(new Case("_contrib_BilinearResize2D", a("height", "5", "width", "7"), s(2, 3, 4, 4)));
        c.add(new Case("_contrib_AdaptiveAvgPooling2D", a("output_size", "(2, 3)"), s(2, 3, 7, 8)));
        // GroupNorm (gamma, beta per group as in MXNet 1.x; mean and std outputs), L2Normalization, softmin
        c.add(new Case("GroupNorm", a("num_groups", "2", "output_mean_var", "True"), s(3, 4, 5), s(2), s(2)));
        c.add(new Case("GroupNorm", a("num_groups", "3", "eps", "0.01", "output_mean_var", "True"), s(2, 6, 2, 3), s(3),
                s(3)));
        c.add(new Case("GroupNorm", a("num_groups", "1"), s(2, 5, 7), s(1), s(1)));
        for (String mode : List.of("instance", "channel", "spatial")) {
            c.add(new Case("L2Normalization", a("mode", mode), s(2, 3, 4, 5)));
        }
        c.add(new Case("L2Normalization", a("eps", "0.5"), s(4, 6)));
        c.add(new Case("softmin", a(), s(4, 9)).range(-20, 20));
        c.add(new Case("softmin", a("axis", "1", "temperature", "2.5"), s(3, 5, 4)).range(-20, 20));
        // Concat / SliceChannel
        c.add(new Case("Concat", a("num_args", "3", "dim", "1"), s(2, 3, 4), s(2, 1, 4), s(2, 5, 4)));
        c.add(new Case("Concat", a("num_args", "2"), s(2, 3), s(2, 4)));
        c.add(new Case("Concat", a("num_args", "2", "dim", "0"), s(2, 3), s(5, 3)));
        c.add(new Case("Concat", a("num_args", "2", "dim", "-1"), s(2, 3, 2), s(2, 3, 5)));
        c.add(new Case("SliceChannel", a("num_outputs", "3"), s(2, 6, 4)));
        c.add(new Case("SliceChannel", a("num_outputs", "2", "axis", "2"), s(2, 3, 4)));
        c.add(new Case("SliceChannel", a("num_outputs", "3", "axis", "1", "squeeze_axis", "True"), s(2, 3, 4)));
        c.add(new Case("SliceChannel", a("num_outputs", "2", "axis", "-1"), s(3, 4)));
        c.add(new Case("expand_dims", a("axis", "1"), s(3, 4)));
        c.add(new Case("BlockGrad", a(), s(3, 4)));
        c.add(new Case("identity", a(), s(3, 4)));
        c.add(new Case("Dropout", a("p", "0.5"), s(3, 4))); // inference mode: identity
        c.add(new Case("ElementWiseSum", a("num_args", "2"), s(3, 4), s(3, 4)));
        c.add(new Case("zeros_like", a(), s(3, 4)));
        c.add(new Case("ones_like", a(), s(3, 4)));
        c.add(new Case("_power", a(), s(3, 4), s(3, 4)).range(0.1, 2));
        // deprecated aliases MXNet 1.x still accepts
        c.add(new Case("Softmax", a(), s(5, 10), s(5)).range(0, 9));
        c.add(new Case("sum_axis", a("axis", "1"), s(3, 4, 5)));
        c.add(new Case("max_axis", a("axis", "0", "keepdims", "True"), s(3, 4, 5)));
        c.add(new Case("min_axis", a("axis", "2"), s(3, 4, 5)));
        c.add(new Case("broadcast_plus", a(), s(2, 3, 4), s(1, 3, 1)));
        c.add(new Case("broadcast_minus", a(), s(2, 3, 4), s(1, 3, 1)));
        c.add(new Case("split", a("num_outputs", "2", "axis", "0"), s(4, 3)));
        c.add(new Case("flatten", a(), s(2, 3, 4)));
        c.add(new Case("concat", a("num_args", "2", "dim", "1"), s(2, 3), s(2, 4)));
        // regression outputs: forward is identity / sigmoid
        c.add(new Case("LinearRegressionOutput", a(), s(4, 3), s(4, 3)));
        c.add(new Case("LogisticRegressionOutput", a(), s(4, 3), s(4, 3)));
        c.add(new Case("MAERegressionOutput", a("grad_scale", "2"), s(4, 3), s(4, 3)));
        // optimizer updates (the new weight)
        c.add(new Case("sgd_update", a("lr", "0.1", "wd", "0.01", "rescale_grad", "0.5"), s(6, 5), s(6, 5)));
        c.add(new Case("sgd_update", a("lr", "0.1", "wd", "0", "rescale_grad", "1", "clip_gradient", "0.5"), s(6, 5), s(6, 5)));
        c.add(new Case("sgd_mom_update", a("lr", "0.1", "momentum", "0.9", "wd", "0.001", "rescale_grad", "0.25"), s(6, 5), s(6, 5),
                s(6, 5)));
        // creation ops (no inputs)
        c.add(new Case("_ones", a("shape", "(2, 3)")));
        c.add(new Case("_ones", a("shape", "(4,)", "dtype", "int32")));
        c.add(new Case("_full", a("shape", "(3, 2)", "value", "-1.3")));
        c.add(new Case("_full", a("shape", "(5,)", "value", "300", "dtype", "uint8")));
        c.add(new Case("_full", a("shape", "(2, 2)", "value", "-2.7", "dtype", "int8")));
        c.add(new Case("_zeros_without_dtype", a("shape", "(2, 3)", "dtype", "1")));
        c.add(new Case("_eye", a("N", "4")));
        c.add(new Case("_eye", a("N", "3", "M", "6", "k", "2", "dtype", "int32")));
        c.add(new Case("_eye", a("N", "5", "M", "3", "k", "-1", "dtype", "float64")));
        c.add(new Case("_linspace", a("start", "0", "stop", "1", "num", "11")));
        c.add(new Case("_linspace", a("start", "-7.25", "stop", "13.5", "num", "1001", "endpoint", "False", "dtype", "float64")));
        c.add(new Case("_linspace", a("start", "-2.5", "stop", "2.5", "num", "6", "dtype", "int32")));
        c.add(new Case("_linspace", a("start", "3", "stop", "9", "num", "1")));
        c.add(new Case("_linspace", a("start", "0", "stop", "10", "num", "7", "dtype", "float16")));
        return c;
    }

    static float[] random(Random rng, long[] shape, double lo, double hi) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (lo + (hi - lo) * rng.nextDouble());
        }
        return v;
    }

    @TestFactory
    Stream<DynamicTest> forwardMatchesMxnet() {
        MxOracle.assumeAvailable();
        List<Case> cs = cases();
        return cs.stream().map(c -> DynamicTest.dynamicTest(c.label() + " " + shapes(c.shapes()), () -> check(c)));
    }

    static String shapes(long[][] s) {
        StringBuilder b = new StringBuilder();
        for (long[] x : s) {
            b.append(Arrays.toString(x));
        }
        return b.toString();
    }

    static void check(Case c) {
        Assumptions.assumeTrue(Ops.isSupported(c.op()), "Kiln has no operator " + c.op() + " yet (MXNet 1.9 does)");
        Random rng = new Random(c.label().hashCode() * 31L + Arrays.deepHashCode(c.shapes()));
        float[][] in = new float[c.shapes().length][];
        for (int i = 0; i < in.length; i++) {
            boolean softmax = c.op().equals("SoftmaxOutput") || c.op().equals("Softmax");
            if (softmax && i == 1) { // class labels in [lo, hi)
                in[i] = random(rng, c.shapes()[i], c.lo(), c.hi());
                for (int j = 0; j < in[i].length; j++) {
                    in[i][j] = (float) Math.floor(in[i][j]);
                }
            } else {
                in[i] = random(rng, c.shapes()[i], softmax ? -3 : c.lo(), softmax ? 3 : c.hi());
            }
        }
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            NDArray[] kIn = new NDArray[in.length];
            ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[in.length];
            for (int i = 0; i < in.length; i++) {
                kIn[i] = NDArray.create(in[i], c.shapes()[i]);
                mIn[i] = MxOracle.create(m, in[i], c.shapes()[i]);
            }
            NDList mOut;
            try {
                mOut = MxOracle.invoke(m, c.op(), c.attrs(), mIn);
            } catch (RuntimeException e) {
                fail("MXNet rejects the case itself: " + e.getMessage(), e);
                return;
            }
            List<NDArray> kOut = NDArray.invoke(c.op(), c.attrs(), kIn);
            assertEquals(mOut.size(), kOut.size(), "number of outputs");
            double maxErr = 0;
            for (int o = 0; o < kOut.size(); o++) {
                long[] ms = mOut.get(o).getShape().getShape();
                assertArrayEquals(ms, kOut.get(o).shape().dims(), "shape of output " + o);
                float[] mv = mOut.get(o).toType(ai.djl.ndarray.types.DataType.FLOAT32, false).toFloatArray();
                float[] kv = kOut.get(o).toFloatArray();
                for (int i = 0; i < mv.length; i++) {
                    if ((Float.isNaN(mv[i]) && Float.isNaN(kv[i])) || (Float.isInfinite(mv[i]) && mv[i] == kv[i])) {
                        continue;  // both NaN, or the same infinity (float16 overflow)
                    }
                    double err = Math.abs((double) mv[i] - kv[i]) / Math.max(1.0, Math.abs(mv[i]));
                    if (!(err <= TOL)) {
                        fail(String.format(Locale.ROOT, "output %d element %d: kiln %s, mxnet %s (err %.3e)%n  kiln  %s%n  mxnet %s", o, i,
                                kv[i], mv[i], err, head(kv), head(mv)));
                    }
                    maxErr = Math.max(maxErr, err);
                }
            }
            synchronized (MAX_ERR) {
                MAX_ERR.merge(c.op(), maxErr, Math::max);
            }
        }
    }

    static String head(float[] v) {
        return Arrays.toString(Arrays.copyOf(v, Math.min(v.length, 12))) + (v.length > 12 ? "..." : "");
    }

    @AfterAll
    static void report() {
        if (!MAX_ERR.isEmpty()) {
            StringBuilder b = new StringBuilder("[OpForwardOracleTest] max error per op (vs MXNet " + MxOracle.version() + "):");
            MAX_ERR.forEach((k, v) -> b.append(String.format(Locale.ROOT, " %s=%.1e", k, v)));
            System.out.println(b);
        }
    }
}
