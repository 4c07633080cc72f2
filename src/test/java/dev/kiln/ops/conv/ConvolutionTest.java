package dev.kiln.ops.conv;

import static dev.kiln.ops.conv.ConvTesting.bindAndRun;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/** Convolution: forward vs MXNet 1.9.1 over a parameter grid, float64 gradients, shape inference, errors. */
@ExtendWith(NoLeaks.class)
class ConvolutionTest {

    record Case(Map<String, String> attrs, long[][] shapes) {}

    static Case c(Map<String, String> attrs, long[]... shapes) {
        return new Case(attrs, shapes);
    }

    static List<Case> grid() {
        List<Case> cs = new ArrayList<>();
        // 1-D (NCW)
        cs.add(c(a("kernel", "(3,)", "num_filter", "4"), s(2, 3, 10), s(4, 3, 3), s(4)));
        cs.add(c(a("kernel", "(3,)", "num_filter", "4", "stride", "(2,)", "pad", "(1,)"), s(2, 3, 11), s(4, 3, 3), s(4)));
        cs.add(c(a("kernel", "(2,)", "num_filter", "6", "dilate", "(3,)", "num_group", "3", "no_bias", "True"), s(3, 6, 12),
                s(6, 2, 2)));
        cs.add(c(a("kernel", "(1,)", "num_filter", "5"), s(2, 4, 7), s(5, 4, 1), s(5)));
        // 2-D (NCHW)
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "8"), s(2, 3, 9, 9), s(8, 3, 3, 3), s(8)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "8", "pad", "(1, 1)"), s(2, 3, 9, 9), s(8, 3, 3, 3), s(8)));
        cs.add(c(a("kernel", "(3, 2)", "num_filter", "5", "stride", "(2, 3)", "pad", "(1, 2)"), s(2, 4, 11, 13), s(5, 4, 3, 2),
                s(5)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "4", "dilate", "(2, 2)", "pad", "(2, 1)"), s(1, 2, 10, 9), s(4, 2, 3, 3),
                s(4)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "6", "num_group", "2", "stride", "(2, 2)"), s(2, 4, 9, 8), s(6, 2, 3, 3),
                s(6)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "6", "num_group", "6", "pad", "(1, 1)"), s(2, 6, 7, 7), s(6, 1, 3, 3),
                s(6))); // depthwise
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "12", "num_group", "6", "pad", "(1, 1)", "stride", "(2, 2)"),
                s(2, 6, 8, 8), s(12, 1, 3, 3), s(12))); // depthwise, multiplier 2
        cs.add(c(a("kernel", "(5, 5)", "num_filter", "7", "no_bias", "True"), s(3, 2, 12, 12), s(7, 2, 5, 5)));
        cs.add(c(a("kernel", "(1, 1)", "num_filter", "5"), s(2, 6, 4, 5), s(5, 6, 1, 1), s(5)));
        cs.add(c(a("kernel", "(1, 1)", "num_filter", "4", "stride", "(2, 2)"), s(2, 3, 5, 5), s(4, 3, 1, 1), s(4)));
        cs.add(c(a("kernel", "(5, 5)", "num_filter", "20"), s(4, 1, 28, 28), s(20, 1, 5, 5), s(20))); // LeNet conv1
        cs.add(c(a("kernel", "(5, 5)", "num_filter", "50"), s(4, 20, 12, 12), s(50, 20, 5, 5), s(50))); // LeNet conv2
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "4", "workspace", "512", "cudnn_off", "True", "cudnn_tune", "fastest",
                "layout", "NCHW"), s(2, 3, 6, 6), s(4, 3, 3, 3), s(4)));
        cs.add(c(a("kernel", "(4, 4)", "num_filter", "3", "pad", "(3, 3)", "stride", "(3, 3)"), s(1, 2, 5, 6), s(3, 2, 4, 4),
                s(3)));
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "3"), s(5, 2, 10, 10), s(3, 2, 3, 3), s(3))); // chunks of 4 + 1 images
        // stride 2 along the width with a kernel at least 2 wide: the even/odd split of the rows
        cs.add(c(a("kernel", "(3, 3)", "num_filter", "6", "stride", "(2, 2)", "pad", "(1, 1)"), s(2, 4, 10, 10),
                s(6, 4, 3, 3), s(6))); // ResNet's downsampling 3x3
        cs.add(c(a("kernel", "(3, 2)", "num_filter", "4", "stride", "(1, 2)", "pad", "(2, 1)", "dilate", "(2, 1)"),
                s(2, 3, 8, 9), s(4, 3, 3, 2), s(4))); // odd width, dilated height
        // 3-D (NCDHW)
        cs.add(c(a("kernel", "(2, 3, 3)", "num_filter", "4", "pad", "(1, 1, 0)", "stride", "(1, 2, 1)"), s(2, 3, 5, 6, 5),
                s(4, 3, 2, 3, 3), s(4)));
        return cs;
    }

    @TestFactory
    Stream<DynamicTest> forwardMatchesMxnet() {
        return grid().stream().map(cs -> DynamicTest.dynamicTest(cs.attrs().toString(),
                () -> ConvTesting.checkAgainstMxnet("Convolution", cs.attrs(), cs.shapes())));
    }

    /** Direct convolution in float64: x [N, C, D0, D1, D2] (spatial padded to 3 with leading 1s). */
    static double[] reference(double[] x, double[] w, double[] b, long[] xs, int o, int g, int[] k, int[] st, int[] p, int[] dl,
            int[] q) {
        int n = (int) xs[0], c = (int) xs[1];
        int[] d = {(int) xs[2], (int) xs[3], (int) xs[4]};
        int cg = c / g, og = o / g;
        double[] y = new double[n * o * q[0] * q[1] * q[2]];
        int idx = 0;
        for (int in = 0; in < n; in++) {
            for (int oc = 0; oc < o; oc++) {
                int gi = oc / og;
                for (int a0 = 0; a0 < q[0]; a0++) {
                    for (int a1 = 0; a1 < q[1]; a1++) {
                        for (int a2 = 0; a2 < q[2]; a2++) {
                            double sum = b == null ? 0 : b[oc];
                            for (int ic = 0; ic < cg; ic++) {
                                for (int k0 = 0; k0 < k[0]; k0++) {
                                    int i0 = a0 * st[0] - p[0] + k0 * dl[0];
                                    for (int k1 = 0; k1 < k[1]; k1++) {
                                        int i1 = a1 * st[1] - p[1] + k1 * dl[1];
                                        for (int k2 = 0; k2 < k[2]; k2++) {
                                            int i2 = a2 * st[2] - p[2] + k2 * dl[2];
                                            if (i0 < 0 || i1 < 0 || i2 < 0 || i0 >= d[0] || i1 >= d[1] || i2 >= d[2]) {
                                                continue;
                                            }
                                            int cc = gi * cg + ic;
                                            double xv = x[(((in * c + cc) * d[0] + i0) * d[1] + i1) * d[2] + i2];
                                            double wv = w[(((oc * cg + ic) * k[0] + k0) * k[1] + k1) * k[2] + k2];
                                            sum += xv * wv;
                                        }
                                    }
                                }
                            }
                            y[idx++] = sum;
                        }
                    }
                }
            }
        }
        return y;
    }

    @Test
    void forwardFloat64MatchesDirectLoop() {
        // 2-D grouped, strided, padded, dilated
        long[] xs = s(2, 4, 9, 8);
        Symbol conv = Symbol.create("Convolution", "c", a("kernel", "(3, 2)", "num_filter", "6", "num_group", "2", "stride",
                "(2, 1)", "pad", "(1, 2)", "dilate", "(1, 2)"), null, Symbol.variable("data"));
        InferResult r = conv.inferShape(Map.of("data", xs));
        long[] ys = r.outShapes().get(0);
        assertArrayEquals(s(2, 6, 5, 10), ys);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", xs, rand(size(xs), -1, 1, 1))
                .put("c_weight", s(6, 2, 3, 2), rand(72, -1, 1, 2)).put("c_bias", s(6), rand(6, -1, 1, 3));
        double[] ref = reference(in.get("data"), in.get("c_weight"), in.get("c_bias"), s(2, 4, 1, 9, 8), 6, 2,
                new int[] {1, 3, 2}, new int[] {1, 2, 1}, new int[] {0, 1, 2}, new int[] {1, 1, 2}, new int[] {1, 5, 10});
        double[] got = GradCheck.forward(conv, in, DType.FLOAT64, false).get(0);
        GradCheck.assertClose(ref, got, 1e-12, 1e-12, "conv float64");
        double[] got32 = GradCheck.forward(conv, in, DType.FLOAT32, false).get(0);
        GradCheck.assertClose(ref, got32, 1e-5, 1e-5, "conv float32");
    }

    private static void gradCheck(Map<String, String> attrs, long[] xs, long[] ws, boolean bias) {
        Symbol conv = Symbol.create("Convolution", "c", attrs, null, Symbol.variable("data"));
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", xs, rand(size(xs), -1, 1, 11))
                .put("c_weight", ws, rand(size(ws), -1, 1, 12));
        List<String> wrt = new ArrayList<>(List.of("data", "c_weight"));
        if (bias) {
            in.put("c_bias", s(ws[0]), rand((int) ws[0], -1, 1, 13));
            wrt.add("c_bias");
        }
        GradCheck.check(conv, in, wrt, 1e-6, 1e-6, 1e-8);
    }

    @Test
    void gradient1d() {
        gradCheck(a("kernel", "(3,)", "num_filter", "3", "stride", "(2,)", "pad", "(1,)", "dilate", "(2,)"), s(2, 2, 9),
                s(3, 2, 3), true);
    }

    @Test
    void gradient2dStridePadDilate() {
        gradCheck(a("kernel", "(3, 2)", "num_filter", "3", "stride", "(2, 1)", "pad", "(1, 1)", "dilate", "(1, 2)"),
                s(2, 2, 6, 5), s(3, 2, 3, 2), true);
    }

    /** Stride 2 along the width (the even/odd row split of im2col and col2im): odd and even widths, padding 0-2. */
    @Test
    void gradient2dStrideTwoAlongTheWidth() {
        gradCheck(a("kernel", "(3, 3)", "num_filter", "3", "stride", "(2, 2)", "pad", "(1, 1)"), s(2, 2, 7, 9),
                s(3, 2, 3, 3), true);
        gradCheck(a("kernel", "(3, 2)", "num_filter", "2", "stride", "(1, 2)", "pad", "(2, 0)", "dilate", "(2, 1)"),
                s(1, 2, 6, 8), s(2, 2, 3, 2), false);
        gradCheck(a("kernel", "(2, 5)", "num_filter", "2", "stride", "(3, 2)", "pad", "(0, 2)"), s(1, 3, 5, 11),
                s(2, 3, 2, 5), true);
    }

    @Test
    void gradient2dGroupsNoBias() {
        gradCheck(a("kernel", "(2, 2)", "num_filter", "4", "num_group", "2", "no_bias", "True"), s(2, 4, 4, 4),
                s(4, 2, 2, 2), false);
    }

    @Test
    void gradientDepthwise() {
        gradCheck(a("kernel", "(3, 3)", "num_filter", "3", "num_group", "3", "pad", "(1, 1)"), s(2, 3, 4, 4), s(3, 1, 3, 3),
                true);
    }

    @Test
    void gradient1x1() {
        gradCheck(a("kernel", "(1, 1)", "num_filter", "3"), s(2, 4, 3, 3), s(3, 4, 1, 1), true);
    }

    @Test
    void gradientPartialLastChunk() {
        // P = 64 output pixels: the kernels take 4 images per GEMM, the fifth forms a short chunk
        gradCheck(a("kernel", "(3, 3)", "num_filter", "2"), s(5, 1, 10, 10), s(2, 1, 3, 3), true);
    }

    /**
     * Float32 im2col rows without padding and of whole 8-float vectors (LeNet's conv2: 8 output
     * columns, conv1: 24) take their own loop; float64, which the central-difference checks use,
     * takes the generic one. The float32 forward, data and weight gradients must match float64's,
     * with the direct and Winograd kernels off so that im2col + GEMM runs every pass.
     */
    @Test
    void float32UnpaddedVectorRowsMatchFloat64() {
        for (long[][] xw : new long[][][] {{s(3, 20, 12, 12), s(7, 20, 5, 5)}, {s(2, 1, 28, 28), s(4, 1, 5, 5)},
                {s(2, 3, 18, 10), s(5, 3, 3, 3)}}) {
            float32MatchesFloat64(xw[0], xw[1], 1, false, "");
        }
    }

    /**
     * Float32 layers of at least 32 filters run Kiln's strided GEMM (core/blas.cc) for the forward
     * and data-gradient products, and, with one group of at most 64 filters and 128+ taps, for the
     * weight gradient too. Against float64 (OpenBLAS's dgemm): LeNet's conv2 (50 filters: 48 in the
     * kernel's vectors, 2 by dot products), 33 filters (32 + 1), 40 (padded to 48), pixel counts that
     * are not whole vectors, several images per chunk (fewer than 64 pixels), groups, more than 64
     * filters, gradients written and added, on 1 and 2 threads.
     */
    @Test
    void float32StridedGemmShapesMatchFloat64() {
        int threads0 = Engine.numThreads();
        try {
            long[][][] cases = {{s(3, 20, 12, 12), s(50, 20, 5, 5), s(1)}, {s(3, 16, 11, 13), s(40, 16, 3, 3), s(1)},
                {s(6, 16, 9, 8), s(33, 16, 3, 3), s(1)}, {s(2, 8, 10, 10), s(64, 4, 3, 3), s(2)}, {s(2, 20, 8, 8), s(70, 20, 3, 3), s(1)},
                {s(1, 20, 12, 12), s(50, 20, 5, 5), s(1)}};
            for (int threads : new int[] {1, 2}) {
                Engine.setNumThreads(threads);
                for (long[][] c : cases) {
                    float32MatchesFloat64(c[0], c[1], (int) c[2][0], true, ", " + threads + " thread(s)");
                    float32MatchesFloat64(c[0], c[1], (int) c[2][0], false, ", " + threads + " thread(s)");
                }
            }
        } finally {
            Engine.setNumThreads(threads0);
        }
    }

    /**
     * One forward and backward pass of a convolution (data xs, weight ws, groups) in float64 and in
     * float32 through im2col + GEMM (direct and Winograd kernels off): output, data and weight
     * gradients must agree. With {@code add}, the gradients are added to random initial values.
     */
    private static void float32MatchesFloat64(long[] xs, long[] ws, int groups, boolean add, String where) {
        Engine.ConvAlgorithm algo0 = Engine.convolutionAlgorithm();
        Engine.setConvolutionAlgorithm(Engine.ConvAlgorithm.IM2COL);
        try {
            Symbol conv = Symbol.create("Convolution", "c", a("kernel", "(" + ws[2] + ", " + ws[3] + ")", "num_filter",
                    Long.toString(ws[0]), "num_group", Integer.toString(groups)), null, Symbol.variable("data"));
            GradReq req = add ? GradReq.ADD : GradReq.WRITE;
            Map<DType, List<double[]>> got = new LinkedHashMap<>();
            for (DType t : List.of(DType.FLOAT64, DType.FLOAT32)) {
                Map<String, long[]> shapes = Map.of("data", xs, "c_weight", ws);
                Map<String, GradReq> reqs = Map.of("data", req, "c_weight", req, "c_bias", GradReq.WRITE);
                try (Executor ex = Executor.simpleBind(conv, Context.cpu(), shapes, Map.of("data", t, "c_weight", t), reqs,
                        new Executor.Options().optSeed(7))) {
                    ex.argDict().get("data").set(rand((int) size(xs), -1, 1, 21));
                    ex.argDict().get("c_weight").set(rand((int) size(ws), -1, 1, 22));
                    ex.argDict().get("c_bias").set(rand((int) ws[0], -1, 1, 23));
                    if (add) {
                        ex.gradDict().get("data").set(rand((int) size(xs), -1, 1, 25));
                        ex.gradDict().get("c_weight").set(rand((int) size(ws), -1, 1, 26));
                    }
                    ex.forward(true);
                    NDArray out = ex.outputs().get(0);
                    try (NDArray head = NDArray.zeros(out.shape(), t, Context.cpu())) {
                        head.set(rand((int) out.shape().size(), -1, 1, 24));
                        ex.backward(head);
                    }
                    got.put(t, List.of(out.toDoubleArray(), ex.gradDict().get("data").toDoubleArray(),
                            ex.gradDict().get("c_weight").toDoubleArray()));
                }
            }
            String[] what = {"output", "data gradient", "weight gradient"};
            for (int i = 0; i < 3; i++) {
                GradCheck.assertClose(got.get(DType.FLOAT64).get(i), got.get(DType.FLOAT32).get(i), 1e-4, 1e-4,
                        what[i] + (add && i > 0 ? " (added)" : "") + " of " + Arrays.toString(xs) + " * " + Arrays.toString(ws)
                                + ", groups " + groups + where);
            }
        } finally {
            Engine.setConvolutionAlgorithm(algo0);
        }
    }

    @Test
    void gradient3d() {
        gradCheck(a("kernel", "(2, 2, 2)", "num_filter", "2", "pad", "(1, 0, 1)", "stride", "(1, 2, 1)"), s(1, 2, 3, 4, 3),
                s(2, 2, 2, 2, 2), true);
    }

    @Test
    void gradientManyImagesUsesThreadedPath() {
        // enough work for several threads: the per-thread weight-gradient accumulators are summed
        Symbol conv = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "8", "pad", "(1, 1)"), null,
                Symbol.variable("data"));
        long[] xs = s(16, 4, 12, 12);
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", xs, rand(size(xs), -1, 1, 1))
                .put("c_weight", s(8, 4, 3, 3), rand(288, -1, 1, 2)).put("c_bias", s(8), rand(8, -1, 1, 3));
        double[] dy = rand(16 * 8 * 144, -1, 1, 4);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", xs);
        shapes.put("c_weight", s(8, 4, 3, 3));
        shapes.put("c_bias", s(8));
        Map<String, double[]> first = new LinkedHashMap<>();
        for (int threads : new int[] {1, 2}) {
            int old = Engine.numThreads();
            Engine.setNumThreads(threads);
            try (Executor ex = bind(conv, shapes, in, GradReq.WRITE)) {
                ex.forward(true);
                try (NDArray h = NDArray.create(dy, 16, 8, 12, 12)) {
                    ex.backward(h);
                }
                for (String k : shapes.keySet()) {
                    double[] g = ex.gradDict().get(k).toDoubleArray();
                    if (first.containsKey(k)) {
                        GradCheck.assertClose(first.get(k), g, 1e-10, 1e-10, "threads " + threads + " " + k);
                    } else {
                        first.put(k, g);
                    }
                }
            } finally {
                Engine.setNumThreads(old);
            }
        }
    }

    static Executor bind(Symbol sym, Map<String, long[]> shapes, GradCheck.Inputs in, GradReq req) {
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String k : shapes.keySet()) {
            types.put(k, DType.FLOAT64);
            reqs.put(k, req);
        }
        Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, new Executor.Options().optSeed(1));
        for (String k : shapes.keySet()) {
            ex.argDict().get(k).set(in.get(k));
        }
        return ex;
    }

    @Test
    void gradReqAddAccumulates() {
        Symbol conv = Symbol.create("Convolution", "c", a("kernel", "(2, 2)", "num_filter", "3", "pad", "(1, 0)"), null,
                Symbol.variable("data"));
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", s(2, 2, 4, 4));
        shapes.put("c_weight", s(3, 2, 2, 2));
        shapes.put("c_bias", s(3));
        GradCheck.Inputs in = new GradCheck.Inputs().put("data", s(2, 2, 4, 4), rand(64, -1, 1, 1))
                .put("c_weight", s(3, 2, 2, 2), rand(24, -1, 1, 2)).put("c_bias", s(3), rand(3, -1, 1, 3));
        Map<String, double[]> once = new LinkedHashMap<>();
        try (Executor ex = bind(conv, shapes, in, GradReq.WRITE)) {
            ex.forward(true);
            ex.backward(ex.outputs().get(0));
            for (String k : shapes.keySet()) {
                once.put(k, ex.gradDict().get(k).toDoubleArray());
            }
        }
        try (Executor ex = bind(conv, shapes, in, GradReq.ADD)) {
            for (String k : shapes.keySet()) {
                ex.gradDict().get(k).fill(0.5);
            }
            for (int i = 0; i < 2; i++) {
                ex.forward(true);
                ex.backward(ex.outputs().get(0));
            }
            for (String k : shapes.keySet()) {
                double[] e = once.get(k).clone();
                for (int i = 0; i < e.length; i++) {
                    e[i] = 2 * e[i] + 0.5;
                }
                GradCheck.assertClose(e, ex.gradDict().get(k).toDoubleArray(), 1e-12, 1e-12, "add " + k);
            }
        }
    }

    @Test
    void shapeInferenceFromData() {
        Symbol conv = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "8", "num_group", "2", "stride",
                "(2, 2)", "pad", "(1, 1)"), null, Symbol.variable("data"));
        assertEquals(List.of("data", "c_weight", "c_bias"), conv.listArguments());
        assertEquals(List.of("c_output"), conv.listOutputs());
        InferResult r = conv.inferShape(Map.of("data", s(5, 4, 15, 16)));
        assertArrayEquals(s(8, 2, 3, 3), r.argShapes().get(1));
        assertArrayEquals(s(8), r.argShapes().get(2));
        assertArrayEquals(s(5, 8, 8, 8), r.outShapes().get(0));

        Symbol c1 = Symbol.create("Convolution", "c", a("kernel", "(3,)", "num_filter", "2", "no_bias", "True"), null,
                Symbol.variable("data"));
        assertEquals(List.of("data", "c_weight"), c1.listArguments());
        InferResult r1 = c1.inferShape(Map.of("data", s(3, 5, 10)));
        assertArrayEquals(s(2, 5, 3), r1.argShapes().get(1));
        assertArrayEquals(s(3, 2, 8), r1.outShapes().get(0));
    }

    @Test
    void errorCases() {
        Symbol data = Symbol.variable("data");
        // num_filter missing
        assertThrowsMessage(() -> Symbol.create("Convolution", "c", a("kernel", "(3, 3)"), null, data), "num_filter");
        // kernel missing
        assertThrowsMessage(() -> Symbol.create("Convolution", "c", a("num_filter", "3"), null, data), "kernel");
        // num_filter out of range
        assertThrowsMessage(() -> Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "0"), null, data),
                "num_filter");
        // channels not divisible by num_group
        Symbol g = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "4", "num_group", "2"), null, data);
        assertThrowsMessage(() -> bindAndRun(g, Map.of("data", s(1, 3, 6, 6))), "num_group");
        // num_filter not divisible by num_group
        Symbol g2 = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "3", "num_group", "2"), null, data);
        assertThrowsMessage(() -> bindAndRun(g2, Map.of("data", s(1, 4, 6, 6))), "num_group");
        // kernel larger than the padded input
        Symbol big = Symbol.create("Convolution", "c", a("kernel", "(5, 5)", "num_filter", "2", "pad", "(1, 0)"), null, data);
        assertThrowsMessage(() -> bindAndRun(big, Map.of("data", s(1, 1, 4, 4))), "kernel size exceed input");
        Symbol dil = Symbol.create("Convolution", "c", a("kernel", "(3,)", "num_filter", "2", "dilate", "(3,)"), null, data);
        assertThrowsMessage(() -> bindAndRun(dil, Map.of("data", s(1, 1, 6))), "kernel size exceed input");
        // bad layout
        Symbol nhwc = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "2", "layout", "NHWC"), null, data);
        assertThrowsMessage(() -> bindAndRun(nhwc, Map.of("data", s(1, 6, 6, 3))), "layout", "NHWC");
        assertThrowsMessage(() -> Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "2", "layout", "XYZ"),
                null, data), "layout");
        // data rank does not match the kernel
        Symbol c2 = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "2"), null, data);
        assertThrowsMessage(() -> bindAndRun(c2, Map.of("data", s(1, 2, 6))), "4D");
        // stride with another rank than the kernel
        Symbol st = Symbol.create("Convolution", "c", a("kernel", "(3, 3)", "num_filter", "2", "stride", "(2,)"), null, data);
        assertThrowsMessage(() -> bindAndRun(st, Map.of("data", s(1, 2, 6, 6))), "stride");
        // 4-D kernel, zero stride
        Symbol k4 = Symbol.create("Convolution", "c", a("kernel", "(1, 1, 1, 1)", "num_filter", "2"), null, data);
        assertThrowsMessage(() -> bindAndRun(k4, Map.of("data", s(1, 2, 2, 2, 2, 2))), "kernel");
        Symbol s0 = Symbol.create("Convolution", "c", a("kernel", "(2, 2)", "num_filter", "2", "stride", "(0, 1)"), null, data);
        assertThrowsMessage(() -> bindAndRun(s0, Map.of("data", s(1, 2, 6, 6))), "stride");
        // weight of the wrong shape
        Map<String, long[]> sh = new LinkedHashMap<>();
        sh.put("data", s(1, 2, 6, 6));
        sh.put("c_weight", s(2, 3, 3, 3));
        assertThrowsMessage(() -> bindAndRun(c2, sh), "c_weight", "(2,3,3,3)", "(2,2,3,3)");
    }
}
