package dev.kiln.gpu;

import static dev.kiln.gpu.GpuCase.ints;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.shapes;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * GPU consistency cases of the nn operator family (see {@link GpuCase}): softmax, log_softmax,
 * SoftmaxActivation, SoftmaxOutput, LeakyReLU (every act_type; rrelu's random training slopes are
 * checked on the device), Activation (every act_type; its kernels live with the elementwise ops), the regression
 * outputs, Dropout, Pooling, Pad, Crop, UpSampling, _contrib_BilinearResize2D, _contrib_AdaptiveAvgPooling2D and
 * ROIPooling, with their backward ops through graph cases.
 * Each softmax launch shape (a warp per row, a block per row for rows > 512, a thread per row for
 * inner axes with >= 2048 rows) and each other kernel style has a case of more than 70k elements.
 * Dropout is random on the GPU (its own counter-based generator), so a custom case checks its
 * properties there: mask values, drop rate, the backward's use of the mask, new masks per call,
 * variational axes, inference identity.
 */
final class GpuNnCases implements GpuCases {

    private static Map<String, String> a(String... kv) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    private static final Symbol X = Symbol.variable("x");

    /** op(x) named "n". */
    private static Symbol un(String op, Map<String, String> attrs) {
        return Symbol.create(op, "n", attrs, null, X);
    }

    /** Values in [lo, lo + width), exact in float32. */
    private static GpuCase.Gen from(double lo, double width) {
        return (n, seed) -> {
            Random r = new Random(seed);
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = (float) (lo + width * r.nextDouble());
            }
            return v;
        };
    }

    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        softmax(c);
        softmaxOutput(c);
        leakyRelu(c);
        activation(c);
        regression(c);
        dropout(c);
        pooling(c);
        padCropUpsampling(c);
        imagePooling(c);
        boundingBoxes(c);
        return c;
    }

    // ---- softmax family --------------------------------------------------------------------------

    private static void softmax(List<GpuCase> c) {
        // warp per row (K <= 512), inner == 1
        c.add(GpuCase.graph("softmax_last_axis", un("softmax", a()), shapes("x", s(7, 33))).addTo());
        // inner > 1 with few rows: warp per row at stride inner; temperature
        c.add(GpuCase.graph("softmax_axis1_temperature", un("softmax", a("axis", "1", "temperature", "2.5")),
                shapes("x", s(4, 37, 5))).addTo());
        // thread per row (inner = 3000 >= 2048 rows)
        c.add(GpuCase.graph("softmax_axis0_columns", un("softmax", a("axis", "0")), shapes("x", s(3, 50, 60))));
        // block per row (K > 512)
        c.add(GpuCase.graph("softmax_long_rows", un("softmax", a()), shapes("x", s(3, 1500))).addTo());
        // many rows, many blocks
        c.add(GpuCase.graph("softmax_large", un("softmax", a()), shapes("x", s(600, 130))));
        c.add(GpuCase.graph("log_softmax_long_rows_temperature", un("log_softmax", a("temperature", "0.5")),
                shapes("x", s(6, 700))).addTo());
        c.add(GpuCase.graph("log_softmax_axis1", un("log_softmax", a("axis", "1")), shapes("x", s(5, 9, 11))).addTo());
        c.add(GpuCase.graph("log_softmax_axis1_columns_large", un("log_softmax", a("axis", "-2")),
                shapes("x", s(2, 10, 4100))));
        c.add(GpuCase.graph("log_softmax_large", un("log_softmax", a("axis", "-1")), shapes("x", s(700, 110))));
        // softmin: the stabilizer is the row minimum (warp, block and column paths)
        c.add(GpuCase.graph("softmin", un("softmin", a()), shapes("x", s(7, 33))).addTo());
        c.add(GpuCase.graph("softmin_long_rows_temperature", un("softmin", a("temperature", "2")), shapes("x", s(3, 1500)))
                .addTo());
        c.add(GpuCase.graph("softmin_axis0_columns", un("softmin", a("axis", "0")), shapes("x", s(3, 50, 60))));
        c.add(GpuCase.graph("SoftmaxActivation_instance", un("SoftmaxActivation", a()), shapes("x", s(4, 3, 5, 7)))
                .addTo());
        c.add(GpuCase.graph("SoftmaxActivation_channel", un("SoftmaxActivation", a("mode", "channel")),
                shapes("x", s(3, 6, 4, 5))).addTo());
        c.add(GpuCase.graph("SoftmaxActivation_channel_large", un("SoftmaxActivation", a("mode", "channel")),
                shapes("x", s(2, 16, 50, 50))));
    }

    private static Symbol softmaxOutput(Map<String, String> attrs) {
        return Symbol.create("SoftmaxOutput", "n", attrs, Map.of("data", X, "label", Symbol.variable("label")));
    }

    private static void softmaxOutput(List<GpuCase> c) {
        c.add(GpuCase.graph("SoftmaxOutput_default", softmaxOutput(a()), shapes("x", s(8, 10), "label", s(8)))
                .input("label", ints(0, 10)).addTo());
        c.add(GpuCase.graph("SoftmaxOutput_batch_norm", softmaxOutput(a("normalization", "batch",
                "grad_scale", "0.5")), shapes("x", s(5, 12), "label", s(5))).input("label", ints(0, 12))
                .noGrad("label"));
        c.add(GpuCase.graph("SoftmaxOutput_preserve_shape", softmaxOutput(a("preserve_shape", "True",
                "normalization", "batch")), shapes("x", s(3, 4, 7), "label", s(3, 4))).input("label", ints(0, 7)));
        c.add(GpuCase.graph("SoftmaxOutput_multi_output", softmaxOutput(a("multi_output", "True")),
                shapes("x", s(4, 5, 3, 3), "label", s(4, 9))).input("label", ints(0, 5)).addTo());
        c.add(GpuCase.graph("SoftmaxOutput_multi_output_valid_ignore", softmaxOutput(a("multi_output", "True",
                "normalization", "valid", "use_ignore", "True", "ignore_label", "1")),
                shapes("x", s(4, 5, 3, 3), "label", s(4, 9))).input("label", ints(0, 5)));
        c.add(GpuCase.graph("SoftmaxOutput_multi_output_batch", softmaxOutput(a("multi_output", "True",
                "normalization", "batch", "grad_scale", "2")),
                shapes("x", s(3, 4, 6), "label", s(3, 6))).input("label", ints(0, 4)).noGrad("label"));
        c.add(GpuCase.graph("SoftmaxOutput_smooth_valid_ignore", softmaxOutput(a("smooth_alpha", "0.1",
                "normalization", "valid", "use_ignore", "True", "ignore_label", "2")),
                shapes("x", s(9, 6), "label", s(9))).input("label", ints(0, 6)).addTo());
        c.add(GpuCase.graph("SoftmaxOutput_all_ignored_valid", softmaxOutput(a("normalization", "valid",
                "use_ignore", "True", "ignore_label", "-1")),
                shapes("x", s(4, 6), "label", s(4))).input("label", ints(-1, 0)));
        c.add(GpuCase.graph("SoftmaxOutput_nan_and_huge_labels", softmaxOutput(a("normalization", "valid")),
                shapes("x", s(5, 4), "label", s(5))).input("label", Double.NaN, 1, -7, 3e9, 2).noGrad("label"));
        c.add(GpuCase.graph("SoftmaxOutput_probability_label", softmaxOutput(a("grad_scale", "0.75")),
                shapes("x", s(6, 5), "label", s(6, 5))).input("label", from(0, 1)).addTo());
        c.add(GpuCase.graph("SoftmaxOutput_out_grad", softmaxOutput(a("out_grad", "True")),
                shapes("x", s(7, 4), "label", s(7))).input("label", ints(0, 4)).noGrad("label"));
        c.add(GpuCase.graph("SoftmaxOutput_large_valid", softmaxOutput(a("normalization", "valid", "use_ignore",
                "True", "ignore_label", "0")), shapes("x", s(1000, 80), "label", s(1000)))
                .input("label", ints(0, 80)).noGrad("label"));
        c.add(GpuCase.graph("Softmax_alias", Symbol.create("Softmax", "n", a(), Map.of("data", X, "label",
                Symbol.variable("label"))), shapes("x", s(4, 3), "label", s(4))).input("label", ints(0, 3))
                .noGrad("label"));
    }

    // ---- LeakyReLU / Activation ------------------------------------------------------------------

    private static void leakyRelu(List<GpuCase> c) {
        // slope >= 0: the backward reads the output; slope < 0: the data
        c.add(GpuCase.graph("LeakyReLU_leaky", un("LeakyReLU", a("act_type", "leaky", "slope", "0.3")),
                shapes("x", s(7, 13))).addTo());
        c.add(GpuCase.graph("LeakyReLU_leaky_negative_slope", un("LeakyReLU", a("act_type", "leaky", "slope", "-0.5")),
                shapes("x", s(5, 11))));
        c.add(GpuCase.graph("LeakyReLU_elu", un("LeakyReLU", a("act_type", "elu", "slope", "0.7")),
                shapes("x", s(6, 9))).addTo());
        c.add(GpuCase.graph("LeakyReLU_elu_negative_slope", un("LeakyReLU", a("act_type", "elu", "slope", "-0.2")),
                shapes("x", s(6, 9))));
        c.add(GpuCase.graph("LeakyReLU_selu", un("LeakyReLU", a("act_type", "selu")), shapes("x", s(4, 17))).addTo());
        c.add(GpuCase.graph("LeakyReLU_gelu", un("LeakyReLU", a("act_type", "gelu")), shapes("x", s(4, 17))).addTo());
        c.add(GpuCase.graph("LeakyReLU_leaky_large", un("LeakyReLU", a("act_type", "leaky", "slope", "0.1")),
                shapes("x", s(300, 250))));
        Symbol prelu = Symbol.create("LeakyReLU", "n", a("act_type", "prelu"),
                Map.of("data", X, "gamma", Symbol.variable("gamma")));
        c.add(GpuCase.graph("LeakyReLU_prelu_per_channel", prelu, shapes("x", s(4, 6, 5, 3), "gamma", s(6))).addTo());
        c.add(GpuCase.graph("LeakyReLU_prelu_shared", prelu, shapes("x", s(3, 4, 7), "gamma", s(1))).addTo());
        c.add(GpuCase.graph("LeakyReLU_prelu_rank1", prelu, shapes("x", s(19), "gamma", s(1))));
        c.add(GpuCase.graph("LeakyReLU_prelu_large", prelu, shapes("x", s(8, 16, 24, 24), "gamma", s(16)))
                .tol(1e-4, 1e-4, 1e-9, 1e-10));
        // rrelu: the mean slope at inference (deterministic); the training draws are checked on the device
        c.add(GpuCase.graph("LeakyReLU_rrelu_inference", un("LeakyReLU", a("act_type", "rrelu", "lower_bound", "0.1",
                "upper_bound", "0.3")), shapes("x", s(7, 19))).inference());
        c.add(GpuCase.custom("LeakyReLU_rrelu_training_on_gpu", GpuNnCases::rreluOnDevice, "LeakyReLU"));
    }

    /**
     * rrelu in training on ctx: positive inputs pass, negative ones get a slope in [lower, upper)
     * whose mean over 50,000 draws is the bounds' mean, the gradient uses the drawn slope, and a
     * second pass draws again; at inference the slope is the bounds' mean (float, as MXNet).
     */
    static void rreluOnDevice(Context ctx) {
        long[] shape = {250, 400};
        int n = 100000;
        double[][] xdy = inputsAndHeads(n, 4, true);
        double[] x = xdy[0], dy = xdy[1];
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            double tol = t == DType.FLOAT32 ? 1e-6 : 1e-12;
            for (double[] b : new double[][] {{0.125, 0.334}, {0.05, 0.5}}) {
                Symbol sym = un("LeakyReLU", a("act_type", "rrelu", "lower_bound", Double.toString(b[0]), "upper_bound",
                        Double.toString(b[1]))).get(0);  // the output (the mask is the second, as in MXNet)
                String what = "LeakyReLU(rrelu) " + Arrays.toString(b) + " " + t + " on " + ctx + ": ";
                double[][] res = runPasses(ctx, sym, shape, t, x, dy, true);
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    if (x[i] > 0) {
                        if (res[0][i] != x[i] || Math.abs(res[1][i] - dy[i]) > tol) {
                            throw new AssertionError(what + "positive input " + i + " changed: y " + res[0][i] + ", dx " + res[1][i]);
                        }
                        continue;
                    }
                    double m = res[0][i] / x[i];
                    if (m < b[0] - 4 * tol || m > b[1] + 4 * tol) {
                        throw new AssertionError(what + "slope[" + i + "] = " + m);
                    }
                    if (Math.abs(res[1][i] - dy[i] * m) > 4 * tol * (1 + Math.abs(dy[i]))) {
                        throw new AssertionError(what + "dx[" + i + "] = " + res[1][i] + ", dy * slope = " + dy[i] * m);
                    }
                    sum += m;
                }
                double mean = sum / (n / 2.0);
                if (Math.abs(mean - (b[0] + b[1]) / 2) > 0.005) {  // sd of the mean ~ 0.0006
                    throw new AssertionError(what + "mean slope " + mean);
                }
                if (Arrays.equals(res[0], res[2])) {
                    throw new AssertionError(what + "two training passes drew the same slopes");
                }
                double[][] inf = runPasses(ctx, sym, shape, t, x, dy, false);
                double slope = (double) (((float) b[0] + (float) b[1]) / 2.0f);
                for (int i = 0; i < n; i++) {
                    double want = x[i] > 0 ? x[i] : x[i] * slope;
                    if (Math.abs(inf[0][i] - want) > tol * Math.abs(want)) {
                        throw new AssertionError(what + "inference y[" + i + "] = " + inf[0][i] + ", expected " + want);
                    }
                }
            }
        }
    }

    private static void activation(List<GpuCase> c) {
        for (String t : new String[] {"relu", "sigmoid", "tanh", "softrelu", "softsign"}) {
            c.add(GpuCase.graph("Activation_" + t, un("Activation", a("act_type", t)), shapes("x", s(7, 13))).addTo());
        }
        c.add(GpuCase.graph("Activation_relu_large", un("Activation", a("act_type", "relu")), shapes("x", s(300, 250))));
    }

    // ---- regression outputs ----------------------------------------------------------------------

    private static void regression(List<GpuCase> c) {
        for (String op : new String[] {"LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput"}) {
            Symbol sym = Symbol.create(op, "n", a("grad_scale", "1.5"), Map.of("data", X, "label",
                    Symbol.variable("label")));
            c.add(GpuCase.graph(op, sym, shapes("x", s(6, 4), "label", s(6, 4))).addTo());
            c.add(GpuCase.graph(op + "_column", Symbol.create(op, "n", a(), Map.of("data", X, "label",
                    Symbol.variable("label"))), shapes("x", s(10, 1), "label", s(10))).noGrad("label"));
        }
        c.add(GpuCase.graph("LinearRegressionOutput_large", Symbol.create("LinearRegressionOutput", "n", a(),
                Map.of("data", X, "label", Symbol.variable("label"))), shapes("x", s(300, 240), "label", s(300, 240)))
                .noGrad("label"));
        // SVMOutput (L2 and L1; labels beyond the classes mark no target) and softmax_cross_entropy
        for (String linear : new String[] {"False", "True"}) {
            c.add(GpuCase.graph("SVMOutput use_linear=" + linear, Symbol.create("SVMOutput", "n", a("margin", "0.75",
                    "regularization_coefficient", "1.5", "use_linear", linear), Map.of("data", X, "label",
                    Symbol.variable("label"))), shapes("x", s(7, 5), "label", s(7))).input("label", ints(0, 6))
                    .noGrad("label").addTo());
        }
        c.add(GpuCase.graph("softmax_cross_entropy", Symbol.create("softmax_cross_entropy", "n", a(), Map.of("data", X,
                "label", Symbol.variable("label"))), shapes("x", s(9, 6), "label", s(9))).input("label", ints(0, 6))
                .noGrad("label").addTo());
        c.add(GpuCase.graph("softmax_cross_entropy large", Symbol.create("softmax_cross_entropy", "n", a(), Map.of("data", X,
                "label", Symbol.variable("label"))), shapes("x", s(2000, 30), "label", s(2000))).input("label", ints(0, 30))
                .noGrad("label").dtypes(DType.FLOAT64));
    }

    // ---- Dropout ----------------------------------------------------------------------------------

    private static void dropout(List<GpuCase> c) {
        // inference: identity (mask ones); the training behaviour is random, checked on the GPU below
        c.add(GpuCase.graph("Dropout_inference", un("Dropout", a("p", "0.4")), shapes("x", s(9, 31))).inference());
        c.add(GpuCase.graph("Dropout_p0_training", un("Dropout", a("p", "0")), shapes("x", s(5, 7))).addTo());
        c.add(GpuCase.custom("Dropout_training_on_gpu", GpuNnCases::dropoutOnGpu, "Dropout"));
    }

    private static void set(NDArray dst, double[] v) {
        try (NDArray h = NDArray.create(v, dst.shape().dims()); NDArray t = h.asType(dst.dtype())) {
            t.copyTo(dst);
        }
    }

    private static double[] host(NDArray a) {
        try (NDArray h = a.copyTo(Context.cpu())) {
            return h.toDoubleArray();
        }
    }

    /**
     * Forward (training or not) and backward with head dy of `sym` (Dropout, rrelu) on ctx; returns
     * {y, dx, y of a second forward}.
     */
    private static double[][] runPasses(Context ctx, Symbol sym, long[] shape, DType t, double[] x, double[] dy,
            boolean train) {
        Map<String, long[]> sh = shapes("x", shape);
        try (Executor ex = Executor.simpleBind(sym, ctx, sh, Map.of("x", t), Map.of("x", GradReq.WRITE),
                new Executor.Options().optSeed(17))) {
            set(ex.argDict().get("x"), x);
            ex.forward(train);
            double[] y = host(ex.outputs().get(0));
            try (NDArray head = NDArray.zeros(ex.outputs().get(0).shape(), t, ctx).detach()) {
                set(head, dy);
                ex.backward(head);
            }
            double[] dx = host(ex.gradDict().get("x"));
            ex.forward(train);
            double[] y2 = host(ex.outputs().get(0));
            return new double[][] {y, dx, y2};
        }
    }

    /**
     * n inputs of magnitude in [0.5, 1.5) (every other one negative when {@code alternate}) and n head
     * gradients in [-1, 1), float32-exact, from {@code seed}.
     */
    private static double[][] inputsAndHeads(int n, long seed, boolean alternate) {
        Random r = new Random(seed);
        double[] x = new double[n];
        double[] dy = new double[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((alternate && i % 2 == 1 ? -1 : 1) * (0.5 + r.nextDouble()));
            dy[i] = (float) (2 * r.nextDouble() - 1);
        }
        return new double[][] {x, dy};
    }

    static void dropoutOnGpu(Context ctx) {
        long[] shape = {250, 400};
        int n = 100000;
        double[][] xdy = inputsAndHeads(n, 3, false);
        double[] x = xdy[0], dy = xdy[1];
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            double tol = t == DType.FLOAT32 ? 1e-6 : 1e-12;
            for (double p : new double[] {0.3, 0.75}) {
                String what = "Dropout p=" + p + " " + t + " on " + ctx + ": ";
                double[][] res = runPasses(ctx, un("Dropout", a("p", Double.toString(p))), shape, t, x, dy, true);
                double keep = 1 / (1 - p);
                int zeros = 0;
                for (int i = 0; i < n; i++) {
                    double m = res[0][i] / x[i];
                    if (res[0][i] == 0) {
                        zeros++;
                    } else if (Math.abs(m - keep) > tol * keep) {
                        throw new AssertionError(what + "mask[" + i + "] = " + m + ", expected 0 or " + keep);
                    }
                    double want = dy[i] * m;
                    if (Math.abs(res[1][i] - want) > tol * (1 + Math.abs(want)) * 4) {
                        throw new AssertionError(what + "dx[" + i + "] = " + res[1][i] + ", dy * mask = " + want);
                    }
                }
                double rate = zeros / (double) n;
                if (Math.abs(rate - p) > 0.01) {  // sd of the rate <= 0.0016
                    throw new AssertionError(what + "drop rate " + rate);
                }
                if (Arrays.equals(res[0], res[2])) {
                    throw new AssertionError(what + "two training passes drew the same mask");
                }
            }
            // inference: identity, backward passes dy through
            double[][] inf = runPasses(ctx, un("Dropout", a("p", "0.5")), shape, t, x, dy, false);
            for (int i = 0; i < n; i++) {
                if (Math.abs(inf[0][i] - x[i]) > tol * Math.abs(x[i]) || Math.abs(inf[1][i] - dy[i]) > tol) {
                    throw new AssertionError("Dropout inference " + t + " on " + ctx + ": not the identity at " + i);
                }
            }
            // mode=always drops at inference too; p = 1 drops everything
            double[][] always = runPasses(ctx, un("Dropout", a("p", "0.5", "mode", "always")), shape, t, x, dy, false);
            long z = Arrays.stream(always[0]).filter(v -> v == 0).count();
            if (Math.abs(z / (double) n - 0.5) > 0.01) {
                throw new AssertionError("Dropout mode=always " + t + " on " + ctx + ": drop rate " + z / (double) n);
            }
            double[][] all = runPasses(ctx, un("Dropout", a("p", "1")), shape, t, x, dy, true);
            if (Arrays.stream(all[0]).anyMatch(v -> v != 0) || Arrays.stream(all[1]).anyMatch(v -> v != 0)) {
                throw new AssertionError("Dropout p=1 " + t + " on " + ctx + ": values survived");
            }
            // variational: the mask is shared along axis 1
            long[] vs = {4, 6, 25};
            int vn = 600;
            double[] vx = Arrays.copyOf(x, vn);
            double[] vdy = Arrays.copyOf(dy, vn);
            double[][] v = runPasses(ctx, un("Dropout", a("p", "0.5", "axes", "(1,)")), vs, t, vx, vdy, true);
            int vz = 0;
            for (int b = 0; b < 4; b++) {
                for (int k = 0; k < 25; k++) {
                    double m0 = v[0][(b * 6) * 25 + k] / vx[(b * 6) * 25 + k];
                    vz += m0 == 0 ? 1 : 0;
                    for (int ch = 0; ch < 6; ch++) {
                        int i = (b * 6 + ch) * 25 + k;
                        double m = v[0][i] / vx[i];
                        if (Math.abs(m - m0) > 1e-5 || Math.abs(v[1][i] - vdy[i] * m0) > 1e-5) {
                            throw new AssertionError("Dropout axes=(1,) " + t + " on " + ctx + ": mask not shared at " + i);
                        }
                    }
                }
            }
            if (vz < 20 || vz > 80) {
                throw new AssertionError("Dropout axes=(1,) " + t + " on " + ctx + ": " + vz + " of 100 columns dropped");
            }
        }
    }

    // ---- Pooling ----------------------------------------------------------------------------------

    private static Symbol pool(String... kv) {
        return un("Pooling", a(kv));
    }

    private static void pooling(List<GpuCase> c) {
        c.add(GpuCase.graph("Pooling_max_k3_s2_p1", pool("pool_type", "max", "kernel", "(3,3)", "stride", "(2,2)",
                "pad", "(1,1)"), shapes("x", s(2, 3, 9, 11))).addTo());
        c.add(GpuCase.graph("Pooling_max_2x2", pool("pool_type", "max", "kernel", "(2,2)", "stride", "(2,2)"),
                shapes("x", s(2, 4, 9, 8))).addTo());
        // ties: the first window element equal to the max gets the gradient
        c.add(GpuCase.graph("Pooling_max_ties_overlapping", pool("pool_type", "max", "kernel", "(3,2)"),
                shapes("x", s(2, 2, 7, 6))).input("x", ints(0, 3)).addTo());
        c.add(GpuCase.graph("Pooling_avg_include_pad", pool("pool_type", "avg", "kernel", "(3,3)", "stride", "(2,2)",
                "pad", "(1,1)"), shapes("x", s(2, 3, 9, 10))).addTo());
        c.add(GpuCase.graph("Pooling_avg_exclude_pad", pool("pool_type", "avg", "kernel", "(3,3)", "stride", "(2,1)",
                "pad", "(1,1)", "count_include_pad", "False"), shapes("x", s(2, 3, 9, 10))).addTo());
        c.add(GpuCase.graph("Pooling_sum", pool("pool_type", "sum", "kernel", "(2,3)", "stride", "(1,2)"),
                shapes("x", s(2, 3, 6, 9))).addTo());
        for (String pv : new String[] {"1", "2", "3"}) {
            c.add(GpuCase.graph("Pooling_lp" + pv, pool("pool_type", "lp", "p_value", pv, "kernel", "(2,2)", "stride",
                    "(2,2)", "pad", "(1,0)"), shapes("x", s(2, 3, 7, 8))).input("x", from(0.25, 1)).addTo());
        }
        c.add(GpuCase.graph("Pooling_global_max", pool("pool_type", "max", "global_pool", "True"),
                shapes("x", s(2, 5, 7, 6))).addTo());
        c.add(GpuCase.graph("Pooling_global_avg", pool("pool_type", "avg", "global_pool", "True", "kernel", "(1,1)"),
                shapes("x", s(2, 5, 7, 6))));
        c.add(GpuCase.graph("Pooling_max_full", pool("pool_type", "max", "kernel", "(3,3)", "stride", "(2,2)",
                "pooling_convention", "full"), shapes("x", s(1, 2, 8, 8))).addTo());
        c.add(GpuCase.graph("Pooling_avg_full", pool("pool_type", "avg", "kernel", "(3,3)", "stride", "(2,2)",
                "pooling_convention", "full"), shapes("x", s(1, 2, 8, 8))));
        c.add(GpuCase.graph("Pooling_1d_same", pool("pool_type", "max", "kernel", "(3,)", "stride", "(2,)",
                "pooling_convention", "same"), shapes("x", s(2, 3, 10))).addTo());
        c.add(GpuCase.graph("Pooling_1d_avg", pool("pool_type", "avg", "kernel", "(4,)", "stride", "(3,)", "pad",
                "(1,)"), shapes("x", s(2, 3, 17))));
        c.add(GpuCase.graph("Pooling_3d_max", pool("pool_type", "max", "kernel", "(2,3,2)", "stride", "(2,2,1)",
                "pad", "(1,0,1)"), shapes("x", s(1, 2, 5, 6, 7))).addTo());
        c.add(GpuCase.graph("Pooling_3d_avg", pool("pool_type", "avg", "kernel", "(2,3,2)", "stride", "(2,2,1)",
                "pad", "(1,0,1)", "count_include_pad", "False"), shapes("x", s(1, 2, 5, 6, 7))));
        c.add(GpuCase.graph("Pooling_max_large", pool("pool_type", "max", "kernel", "(3,3)", "stride", "(2,2)",
                "pad", "(1,1)"), shapes("x", s(4, 8, 48, 48))));
        c.add(GpuCase.graph("Pooling_avg_large", pool("pool_type", "avg", "kernel", "(2,2)", "stride", "(2,2)"),
                shapes("x", s(4, 8, 48, 48))));
        // channel-last layouts: strided planes (element stride C)
        c.add(GpuCase.graph("Pooling_NHWC_max", pool("pool_type", "max", "kernel", "(3,3)", "stride", "(2,2)", "pad", "(1,1)",
                "layout", "NHWC"), shapes("x", s(2, 9, 8, 5))).addTo());
        c.add(GpuCase.graph("Pooling_NHWC_avg_full", pool("pool_type", "avg", "kernel", "(3,2)", "stride", "(2,2)",
                "pooling_convention", "full", "count_include_pad", "False", "layout", "NHWC"), shapes("x", s(2, 7, 8, 3))).addTo());
        c.add(GpuCase.graph("Pooling_NWC_lp2", pool("pool_type", "lp", "p_value", "2", "kernel", "(3,)", "stride", "(2,)",
                "layout", "NWC"), shapes("x", s(3, 11, 4))));
        c.add(GpuCase.graph("Pooling_NDHWC_sum", pool("pool_type", "sum", "kernel", "(2,3,2)", "stride", "(2,2,1)",
                "pad", "(1,0,1)", "layout", "NDHWC"), shapes("x", s(1, 5, 6, 7, 3))));
        c.add(GpuCase.graph("Pooling_NHWC_global_max", pool("pool_type", "max", "global_pool", "True", "layout", "NHWC"),
                shapes("x", s(2, 6, 5, 7))));
    }

    // ---- Pad / Crop / UpSampling --------------------------------------------------------------------

    private static void padCropUpsampling(List<GpuCase> c) {
        c.add(GpuCase.graph("Pad_constant", un("Pad", a("mode", "constant", "pad_width", "(0,0,0,0,1,2,3,1)",
                "constant_value", "0.5")), shapes("x", s(2, 3, 5, 6))).addTo());
        c.add(GpuCase.graph("Pad_edge", un("Pad", a("mode", "edge", "pad_width", "(0,0,0,0,2,1,1,3)")),
                shapes("x", s(2, 3, 5, 6))).addTo());
        c.add(GpuCase.graph("Pad_edge_size1", un("Pad", a("mode", "edge", "pad_width", "(0,0,0,0,2,2,1,1)")),
                shapes("x", s(1, 2, 1, 5))).addTo());
        c.add(GpuCase.graph("Pad_reflect", un("Pad", a("mode", "reflect", "pad_width", "(0,0,0,0,2,1,3,2)")),
                shapes("x", s(2, 3, 5, 6))).addTo());
        c.add(GpuCase.graph("Pad_reflect_5d", un("Pad", a("mode", "reflect", "pad_width", "(0,0,0,0,1,2,2,1,1,3)")),
                shapes("x", s(1, 2, 3, 4, 5))).addTo());
        c.add(GpuCase.graph("Pad_edge_5d", un("Pad", a("mode", "edge", "pad_width", "(0,0,0,0,1,0,0,2,3,1)")),
                shapes("x", s(1, 2, 3, 4, 5))));
        c.add(GpuCase.graph("Pad_constant_5d", un("Pad", a("mode", "constant", "pad_width", "(0,0,0,0,1,1,0,2,1,0)")),
                shapes("x", s(2, 1, 3, 4, 2))));
        c.add(GpuCase.graph("Pad_reflect_large", un("Pad", a("mode", "reflect", "pad_width", "(0,0,0,0,3,3,3,3)")),
                shapes("x", s(4, 8, 40, 50))));

        c.add(GpuCase.graph("Crop_h_w_offset", un("Crop", a("num_args", "1", "h_w", "(3,4)", "offset", "(1,2)")),
                shapes("x", s(2, 3, 7, 8))).addTo());
        c.add(GpuCase.graph("Crop_center", un("Crop", a("num_args", "1", "h_w", "(4,5)", "center_crop", "True")),
                shapes("x", s(2, 3, 7, 8))));
        Symbol like = Symbol.create("Crop", "n", a("num_args", "2", "center_crop", "True"), null, X,
                Symbol.variable("like"));
        c.add(GpuCase.graph("Crop_like", like, shapes("x", s(2, 3, 9, 8), "like", s(1, 1, 5, 3))).addTo());
        c.add(GpuCase.graph("Crop_large", un("Crop", a("num_args", "1", "h_w", "(50,45)", "offset", "(3,7)")),
                shapes("x", s(4, 8, 60, 60))));

        c.add(GpuCase.graph("UpSampling_nearest", un("UpSampling", a("scale", "2", "sample_type", "nearest",
                "num_args", "1")), shapes("x", s(2, 3, 4, 5))).addTo());
        Symbol y = Symbol.variable("y");
        c.add(GpuCase.graph("UpSampling_concat", Symbol.create("UpSampling", "n", a("scale", "2", "sample_type",
                "nearest", "num_args", "2"), null, X, y), shapes("x", s(2, 3, 4, 4), "y", s(2, 2, 2, 2))).addTo());
        c.add(GpuCase.graph("UpSampling_sum", Symbol.create("UpSampling", "n", a("scale", "2", "sample_type",
                "nearest", "num_args", "2", "multi_input_mode", "sum"), null, X, y),
                shapes("x", s(2, 3, 4, 4), "y", s(2, 3, 8, 8))).addTo());
        c.add(GpuCase.graph("UpSampling_large", un("UpSampling", a("scale", "2", "sample_type", "nearest",
                "num_args", "1")), shapes("x", s(4, 8, 32, 32))));
    }
    // ---- BilinearResize2D / AdaptiveAvgPooling2D / ROIPooling ---------------------------------------

    private static void imagePooling(List<GpuCase> c) {
        String op = "_contrib_BilinearResize2D";
        c.add(GpuCase.graph("BilinearResize2D_up_align", un(op, a("height", "9", "width", "11")), shapes("x", s(2, 3, 4, 5))).addTo());
        c.add(GpuCase.graph("BilinearResize2D_down", un(op, a("height", "3", "width", "4", "align_corners", "False")),
                shapes("x", s(2, 3, 9, 10))).addTo());
        c.add(GpuCase.graph("BilinearResize2D_to_one", un(op, a("height", "1", "width", "6")), shapes("x", s(1, 2, 5, 3))));
        c.add(GpuCase.graph("BilinearResize2D_copy", un(op, a("height", "4", "width", "5")), shapes("x", s(2, 2, 4, 5))).addTo());
        c.add(GpuCase.graph("BilinearResize2D_odd_scale", un(op, a("mode", "odd_scale", "scale_height", "1.5", "scale_width", "0.5",
                "align_corners", "False")), shapes("x", s(1, 2, 7, 8))));
        c.add(GpuCase.graph("BilinearResize2D_to_even_up", un(op, a("mode", "to_even_up")), shapes("x", s(1, 2, 5, 7))));
        c.add(GpuCase.graph("BilinearResize2D_like", Symbol.create(op, "n", a("mode", "like", "align_corners", "False"), null, X,
                Symbol.variable("like")), shapes("x", s(2, 3, 5, 4), "like", s(1, 1, 8, 7))).addTo());
        c.add(GpuCase.graph("BilinearResize2D_large", un(op, a("height", "77", "width", "61", "align_corners", "False")),
                shapes("x", s(4, 8, 32, 40))));

        String ada = "_contrib_AdaptiveAvgPooling2D";
        c.add(GpuCase.graph("AdaptiveAvgPooling2D_global", un(ada, a()), shapes("x", s(2, 3, 5, 6))).addTo());
        c.add(GpuCase.graph("AdaptiveAvgPooling2D_overlap", un(ada, a("output_size", "(3, 4)")), shapes("x", s(2, 3, 7, 9))).addTo());
        c.add(GpuCase.graph("AdaptiveAvgPooling2D_up", un(ada, a("output_size", "(6, 5)")), shapes("x", s(1, 2, 4, 3))));
        c.add(GpuCase.graph("AdaptiveAvgPooling2D_large", un(ada, a("output_size", "7")), shapes("x", s(4, 32, 30, 33))));

        Symbol roi = Symbol.create("ROIPooling", "n", a("pooled_size", "(2, 3)", "spatial_scale", "0.5"), null, X,
                Symbol.variable("rois"));
        // whole map, inside, partly outside, outside (empty bins), malformed, a second batch image
        double[] boxes = {0, 0, 0, 13, 11, 1, 2, 2, 9, 7, 0, -4, -2, 5, 17, 1, 20, 20, 24, 30, 0, 6, 8, 2, 3, 1, 1, 1, 1, 1};
        c.add(GpuCase.graph("ROIPooling_bins", roi, shapes("x", s(2, 3, 6, 7), "rois", s(6, 5))).input("rois", boxes).addTo());
        // ties: the first maximum of each bin takes the gradient
        c.add(GpuCase.graph("ROIPooling_ties", roi, shapes("x", s(2, 3, 6, 7), "rois", s(6, 5))).input("rois", boxes)
                .input("x", ints(0, 3)));
        double[] many = new double[64 * 5];
        Random rng = new Random(7);
        for (int k = 0; k < 64; k++) {
            many[k * 5] = rng.nextInt(2);
            double x0 = rng.nextInt(60) - 4;
            double y0 = rng.nextInt(50) - 4;
            many[k * 5 + 1] = x0;
            many[k * 5 + 2] = y0;
            many[k * 5 + 3] = x0 + rng.nextInt(40);
            many[k * 5 + 4] = y0 + rng.nextInt(40);
        }
        c.add(GpuCase.graph("ROIPooling_large", Symbol.create("ROIPooling", "n", a("pooled_size", "(7, 7)", "spatial_scale", "0.25"),
                null, X, Symbol.variable("rois")), shapes("x", s(2, 32, 14, 16), "rois", s(64, 5))).input("rois", many));
    }

    // ---- _contrib_box_iou / box_nms / bipartite_matching / box_encode / box_decode --------------------

    private static void boundingBoxes(List<GpuCase> c) {
        Random rng = new Random(17);
        double[] det = new double[2 * 40 * 6];  // [id, score, x0, y0, x1, y1] rows on a grid: overlaps, ties, classes
        for (int i = 0; i < 80; i++) {
            det[i * 6] = rng.nextInt(3);
            det[i * 6 + 1] = rng.nextInt(16) / 16.0;
            det[i * 6 + 2] = rng.nextInt(10);
            det[i * 6 + 3] = rng.nextInt(10);
            det[i * 6 + 4] = det[i * 6 + 2] + 1 + rng.nextInt(6);
            det[i * 6 + 5] = det[i * 6 + 3] + 1 + rng.nextInt(6);
        }
        Symbol nms = Symbol.create("_contrib_box_nms", "n", a("overlap_thresh", "0.3", "valid_thresh", "0.1", "id_index", "0"), null, X);
        c.add(GpuCase.graph("box_nms_classes", nms, shapes("x", s(2, 40, 6))).input("x", det).addTo());
        c.add(GpuCase.graph("box_nms_force_topk_center", Symbol.create("_contrib_box_nms", "n", a("overlap_thresh", "0.2", "topk", "10",
                "id_index", "0", "force_suppress", "True", "out_format", "center"), null, X), shapes("x", s(2, 40, 6))).input("x", det));
        c.add(GpuCase.graph("box_nms_topk0", Symbol.create("_contrib_box_nms", "n", a("topk", "0"), null, X), shapes("x", s(2, 40, 6)))
                .input("x", det));
        double[] big = new double[4 * 1500 * 6];
        for (int i = 0; i < 6000; i++) {
            big[i * 6] = rng.nextInt(5);
            big[i * 6 + 1] = rng.nextInt(64) / 64.0;  // values exact in bfloat16 (LowPrecisionOpsTest): same order, same boxes
            big[i * 6 + 2] = rng.nextInt(128);
            big[i * 6 + 3] = rng.nextInt(128);
            big[i * 6 + 4] = big[i * 6 + 2] + 5 + rng.nextInt(60);
            big[i * 6 + 5] = big[i * 6 + 3] + 5 + rng.nextInt(60);
        }
        c.add(GpuCase.graph("box_nms_large", Symbol.create("_contrib_box_nms", "n", a("overlap_thresh", "0.45", "valid_thresh", "0.01",
                "topk", "400", "id_index", "0"), null, X), shapes("x", s(4, 1500, 6))).input("x", big));

        Symbol iou = Symbol.create("_contrib_box_iou", "n", a(), null, X, Symbol.variable("y"));
        c.add(GpuCase.graph("box_iou", iou, shapes("x", s(2, 5, 4), "y", s(7, 4))).input("x", Arrays.copyOfRange(det, 0, 40))
                .input("y", Arrays.copyOfRange(det, 100, 128)).forwardOnly());
        c.add(GpuCase.graph("box_iou_center", Symbol.create("_contrib_box_iou", "n", a("format", "center"), null, X, Symbol.variable("y")),
                shapes("x", s(30, 4), "y", s(3, 11, 4))).forwardOnly());

        double[] scores = new double[2 * 12 * 30];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = rng.nextInt(50) / 50.0;  // ties
        }
        c.add(GpuCase.graph("bipartite_matching", Symbol.create("_contrib_bipartite_matching", "n", a("threshold", "0.1"), null, X),
                shapes("x", s(2, 12, 30))).input("x", scores).forwardOnly());
        c.add(GpuCase.graph("bipartite_matching_ascend_topk", Symbol.create("_contrib_bipartite_matching", "n", a("threshold", "0.7",
                "is_ascend", "True", "topk", "4"), null, X), shapes("x", s(2, 12, 30))).input("x", scores).forwardOnly());

        double[] samples = new double[2 * 8];
        double[] matches = new double[2 * 8];
        for (int i = 0; i < 16; i++) {
            samples[i] = rng.nextInt(3) - 1;
            matches[i] = samples[i] > 0 ? rng.nextInt(3) : -1;
        }
        double[] anchors = new double[2 * 8 * 4];
        for (int i = 0; i < 16; i++) {
            anchors[i * 4] = rng.nextInt(5);
            anchors[i * 4 + 1] = rng.nextInt(5);
            anchors[i * 4 + 2] = anchors[i * 4] + 1 + rng.nextInt(4);
            anchors[i * 4 + 3] = anchors[i * 4 + 1] + 1 + rng.nextInt(4);
        }
        Symbol enc = Symbol.create("_contrib_box_encode", "n", a(), null, Symbol.variable("samples"), Symbol.variable("matches"),
                Symbol.variable("anchors"), Symbol.variable("refs"), Symbol.variable("means"), Symbol.variable("stds"));
        c.add(GpuCase.graph("box_encode", enc, shapes("samples", s(2, 8), "matches", s(2, 8), "anchors", s(2, 8, 4), "refs", s(2, 3, 4),
                "means", s(4), "stds", s(4))).input("samples", samples).input("matches", matches).input("anchors", anchors)
                .input("refs", Arrays.copyOf(anchors, 24)).input("means", 0, 0.1, 0, -0.1).input("stds", 0.1, 0.1, 0.2, 0.2).forwardOnly());
        c.add(GpuCase.graph("box_decode_corner_clip", Symbol.create("_contrib_box_decode", "n", a("format", "corner", "clip", "0.5",
                "std0", "0.1", "std1", "0.1", "std2", "0.2", "std3", "0.2"), null, X, Symbol.variable("anchors")),
                shapes("x", s(2, 8, 4), "anchors", s(1, 8, 4))).input("anchors", Arrays.copyOf(anchors, 32)).forwardOnly());
        c.add(GpuCase.graph("box_decode_center", Symbol.create("_contrib_box_decode", "n", a(), null, X, Symbol.variable("anchors")),
                shapes("x", s(3, 8, 4), "anchors", s(1, 8, 4))).input("anchors", Arrays.copyOf(anchors, 32)).forwardOnly());
    }
}
