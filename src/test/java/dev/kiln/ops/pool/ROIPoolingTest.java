package dev.kiln.ops.pool;

import static dev.kiln.ops.pool.ImageTesting.BOTH;
import static dev.kiln.ops.pool.ImageTesting.assertClose;
import static dev.kiln.ops.pool.ImageTesting.rand;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * ROIPooling: forward and backward against an independent Java reference (MXNet 1.9.1's rounding,
 * bins and first-maximum rule, in the data type's arithmetic), clipped, malformed and empty rois,
 * ties, float64 numeric gradients, grad_req=add, a large case, the real MXNet, and errors (bad
 * shapes, batch indices outside the data, NaN coordinates).
 */
@ExtendWith(NoLeaks.class)
class ROIPoolingTest {
    static final String OP = "ROIPooling";
    static final double NEG_FLT_MAX = -Float.MAX_VALUE;

    /** a op b in float32 (f32) or float64 arithmetic. */
    static double mul(double a, double b, boolean f32) {
        return f32 ? (double) ((float) a * (float) b) : a * b;
    }

    static double div(double a, double b, boolean f32) {
        return f32 ? (double) ((float) a / (float) b) : a / b;
    }

    /** C's round: half away from zero. */
    static int round(double v) {
        return (int) (Math.signum(v) * Math.floor(Math.abs(v) + 0.5));
    }

    /** Output [R, C, PH, PW] and the flat data index each took (-1: none). */
    record Ref(double[] y, int[] arg) {}

    static Ref ref(double[] x, long[] xs, double[] rois, int ph, int pw, double scale, boolean f32) {
        int n = (int) xs[0];
        int c = (int) xs[1];
        int h = (int) xs[2];
        int w = (int) xs[3];
        int r = rois.length / 5;
        double[] y = new double[r * c * ph * pw];
        int[] arg = new int[y.length];
        for (int k = 0; k < r; k++) {
            int b = (int) rois[k * 5];
            assertEquals(true, b >= 0 && b < n, "reference needs valid rois");
            int x0 = round(mul(rois[k * 5 + 1], scale, f32));
            int y0 = round(mul(rois[k * 5 + 2], scale, f32));
            int x1 = round(mul(rois[k * 5 + 3], scale, f32));
            int y1 = round(mul(rois[k * 5 + 4], scale, f32));
            double binH = div(Math.max(y1 - y0 + 1, 1), ph, f32);
            double binW = div(Math.max(x1 - x0 + 1, 1), pw, f32);
            for (int ch = 0; ch < c; ch++) {
                for (int i = 0; i < ph; i++) {
                    int hs = Math.min(Math.max((int) Math.floor(mul(i, binH, f32)) + y0, 0), h);
                    int he = Math.min(Math.max((int) Math.ceil(mul(i + 1, binH, f32)) + y0, 0), h);
                    for (int j = 0; j < pw; j++) {
                        int ws = Math.min(Math.max((int) Math.floor(mul(j, binW, f32)) + x0, 0), w);
                        int we = Math.min(Math.max((int) Math.ceil(mul(j + 1, binW, f32)) + x0, 0), w);
                        boolean empty = he <= hs || we <= ws;
                        double v = empty ? 0 : NEG_FLT_MAX;
                        int at = -1;
                        for (int u = hs; u < he; u++) {
                            for (int q = ws; q < we; q++) {
                                int idx = ((b * c + ch) * h + u) * w + q;
                                if (x[idx] > v) {
                                    v = x[idx];
                                    at = idx;
                                }
                            }
                        }
                        int o = ((k * c + ch) * ph + i) * pw + j;
                        y[o] = v;
                        arg[o] = at;
                    }
                }
            }
        }
        return new Ref(y, arg);
    }

    static double[] refGrad(Ref r, double[] dy, int dataSize) {
        double[] dx = new double[dataSize];
        for (int o = 0; o < dy.length; o++) {
            if (r.arg[o] >= 0) {
                dx[r.arg[o]] += dy[o];
            }
        }
        return dx;
    }

    static Symbol roi(int ph, int pw, double scale) {
        return ImageTesting.op(OP, a("pooled_size", "(" + ph + ", " + pw + ")", "spatial_scale", Double.toString(scale)), "data",
                "rois");
    }

    static void check(double[] x, long[] xs, double[] rois, int ph, int pw, double scale, long seed) {
        Symbol sym = roi(ph, pw, scale);
        long[] rs = s(rois.length / 5, 5);
        Map<String, long[]> sh = shapes("data", xs, "rois", rs);
        Map<String, double[]> vals = Map.of("data", x, "rois", rois);
        double[] head = rand(s(rs[0], xs[1], ph, pw), -1, 1, seed);
        for (DType t : BOTH) {
            Ref r = ref(x, xs, rois, ph, pw, scale, t == DType.FLOAT32);
            assertClose(r.y, ImageTesting.forward(sym, sh, vals, t), t, "ROIPooling forward");
            Map<String, double[]> g = ImageTesting.grads(sym, sh, vals, List.of("data", "rois"), GradReq.WRITE, 1, t, head);
            assertClose(refGrad(r, head, x.length), g.get("data"), t, "ROIPooling backward");
            assertClose(new double[rois.length], g.get("rois"), t, "rois get no gradient");
        }
    }

    /** Random rois on a batch of n over an image of about (h, w) / scale, some partly outside, some malformed. */
    static double[] rois(int count, int n, double h, double w, long seed) {
        Random rng = new Random(seed);
        double[] r = new double[count * 5];
        for (int k = 0; k < count; k++) {
            r[k * 5] = rng.nextInt(n);
            for (int d = 0; d < 2; d++) {
                double lim = d == 0 ? w : h;
                double a = Math.floor(rng.nextDouble() * (lim + 4)) - 2;
                double b = Math.floor(rng.nextDouble() * (lim + 4)) - 2;
                r[k * 5 + 1 + d] = Math.min(a, b);
                r[k * 5 + 3 + d] = k % 7 == 3 ? Math.min(a, b) - 1 : Math.max(a, b); // some malformed: end < start
            }
        }
        return r;
    }

    @Test
    void forwardAndBackwardAgainstReference() {
        long[] xs = s(2, 3, 6, 7);
        double[] x = rand(xs, -2, 2, 1);
        // full image, partial, a 1x1 box, a box outside the map (empty bins: 0), a malformed box
        double[] boxes = {
            0, 0, 0, 6, 5,
            1, 2, 1, 5, 4,
            0, 3, 3, 3, 3,
            1, 9, 9, 12, 12,
            0, 4, 4, 2, 1,
            1, -3, -2, 2, 8,
        };
        check(x, xs, boxes, 2, 2, 1.0, 2);
        check(x, xs, boxes, 3, 4, 1.0, 3);
        check(x, xs, boxes, 2, 3, 0.5, 4);       // rounding of scaled coordinates (x.5 away from zero)
        check(x, xs, rois(20, 2, 12, 14, 5), 3, 2, 0.5, 6);
        check(x, xs, rois(20, 2, 24, 28, 7), 2, 2, 0.25, 8);
        check(x, xs, new double[] {-0.5, 0, 0, 3, 3}, 2, 2, 1.0, 9);  // batch index -0.5 truncates to 0, as MXNet
    }

    @Test
    void tiesTakeTheFirstMaximumAndEmptyOrNegativeInfinityBinsGetNoGradient() {
        long[] xs = s(1, 2, 5, 5);
        double[] x = new double[25 * 2];
        Random rng = new Random(11);
        for (int i = 0; i < x.length; i++) {
            x[i] = rng.nextInt(3);  // many ties
        }
        for (int i = 25; i < 50; i++) {
            x[i] = Double.NEGATIVE_INFINITY;  // channel 1: nothing above -FLT_MAX
        }
        check(x, xs, new double[] {0, 0, 0, 4, 4, 0, 1, 0, 3, 4, 0, 7, 7, 9, 9}, 2, 2, 1.0, 12);
        try (NDScope scope = NDScope.open()) {
            double[] y = NDArray.invoke(OP, a("pooled_size", "(1, 1)", "spatial_scale", "1"), NDArray.create(x, xs),
                    NDArray.create(new double[] {0, 0, 0, 4, 4}, s(1, 5))).get(0).toDoubleArray();
            assertEquals(2.0, y[0]);
            assertEquals(NEG_FLT_MAX, y[1]);
        }
    }

    @Test
    void numericGradient() {
        long[] xs = s(2, 2, 5, 6);
        Symbol sym = roi(2, 3, 0.5);
        double[] boxes = {0, 0, 0, 10, 8, 1, 2, 2, 8, 9, 1, 1, 3, 5, 6, 0, 4, 0, 11, 4};
        ImageTesting.gradCheck(sym, shapes("data", xs, "rois", s(4, 5)), Map.of("data", rand(xs, -1, 1, 20), "rois", boxes),
                List.of("data"));
    }

    @Test
    void gradReqAddAccumulates() {
        long[] xs = s(2, 3, 6, 6);
        double[] boxes = rois(6, 2, 6, 6, 30);
        ImageTesting.assertAddAccumulates(roi(2, 2, 1.0), shapes("data", xs, "rois", s(6, 5)),
                Map.of("data", rand(xs, -1, 1, 31), "rois", boxes), List.of("data", "rois"), rand(s(6, 3, 2, 2), -1, 1, 32));
    }

    @Test
    void largeCase() {
        // a Fast R-CNN sized head: 64 rois of a 2 x 64 x 38 x 50 feature map (stride 16), 7 x 7 bins
        long[] xs = s(2, 64, 38, 50);
        check(rand(xs, -2, 2, 40), xs, rois(64, 2, 38 * 16, 50 * 16, 41), 7, 7, 0.0625, 42);
    }

    @Test
    void matchesMxnet() {
        long[] xs = s(2, 3, 8, 9);
        double[] boxes = {0, 0, 0, 7, 7, 1, 2, 1, 6, 7, 0, 3, 3, 3, 3, 1, 12, 12, 14, 15, 0, 5, 6, 1, 2, 1, -3, -1, 4, 9};
        for (double scale : new double[] {1.0, 0.5, 0.75}) {
            for (int[] p : new int[][] {{2, 2}, {3, 2}, {1, 4}}) {
                Map<String, String> attrs = a("pooled_size", "(" + p[0] + ", " + p[1] + ")", "spatial_scale", Double.toString(scale));
                ImageTesting.oracle(OP, attrs, new double[][] {rand(xs, -2, 2, 50), boxes}, xs, s(6, 5));
                ImageTesting.oracleGrad(OP, attrs, new double[][] {rand(xs, -2, 2, 51), boxes}, rand(s(6, 3, p[0], p[1]), -1, 1, 52),
                        Set.of(0, 1), xs, s(6, 5));
            }
        }
    }

    @Test
    void symbolFactoryAndHiddenOutput() {
        Symbol p = Symbol.roiPooling("roi", Symbol.variable("feat"), Symbol.variable("boxes"), 7, 6, 0.0625);
        assertEquals(List.of("feat", "boxes"), p.listArguments());
        assertEquals(1, p.listOutputs().size());  // maxidx is hidden
        assertArrayEquals(s(10, 256, 7, 6), p.inferShape(Map.of("feat", s(2, 256, 38, 50), "boxes", s(10, 5))).outShapes().get(0));
    }

    @Test
    void errors() {
        Symbol sym = roi(2, 2, 1.0);
        ExecTesting.assertInferFails(sym, shapes("data", s(1, 2, 4, 4), "rois", s(3, 4)), "rois", "[num_rois, 5]", "(3,4)");
        ExecTesting.assertInferFails(sym, shapes("data", s(1, 2, 4, 4), "rois", s(3, 5, 1)), "rois", "[num_rois, 5]");
        ExecTesting.assertInferFails(sym, shapes("data", s(2, 4, 4), "rois", s(3, 5)), "data", "4D");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("pooled_size", "(2,)", "spatial_scale", "1"), "data", "rois"),
                shapes("data", s(1, 2, 4, 4), "rois", s(3, 5)), "pooled_size=(2,)", "two positive sizes");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("pooled_size", "(0, 2)", "spatial_scale", "1"), "data", "rois"),
                shapes("data", s(1, 2, 4, 4), "rois", s(3, 5)), "pooled_size=(0,2)");
        OpTesting.assertThrowsMessage(() -> ImageTesting.op(OP, a("pooled_size", "(2, 2)", "spatial_scale", "2"), "data", "rois")
                .inferShape(shapes("data", s(1, 2, 4, 4), "rois", s(3, 5))), "spatial_scale");
        OpTesting.assertThrowsMessage(() -> ImageTesting.op(OP, a("spatial_scale", "1"), "data", "rois")
                .inferShape(shapes("data", s(1, 2, 4, 4), "rois", s(3, 5))), "pooled_size");
        // rois the kernel cannot use: refused at run time, naming the roi
        long[] xs = s(2, 1, 4, 4);
        for (double[] bad : new double[][] {{2, 0, 0, 1, 1}, {-1, 0, 0, 1, 1}, {Double.NaN, 0, 0, 1, 1}, {1e10, 0, 0, 1, 1}}) {
            double[] boxes = {0, 0, 0, 3, 3, bad[0], bad[1], bad[2], bad[3], bad[4]};
            OpTesting.assertThrowsMessage(() -> ImageTesting.forward(sym, shapes("data", xs, "rois", s(2, 5)),
                    Map.of("data", rand(xs, -1, 1, 60), "rois", boxes), DType.FLOAT32), "rois[1]", "batch index", "batch of 2");
        }
        double[] nanBox = {0, 0, 0, 3, 3, 1, 0, Double.NaN, 1, 1};
        OpTesting.assertThrowsMessage(() -> ImageTesting.forward(sym, shapes("data", xs, "rois", s(2, 5)),
                Map.of("data", rand(xs, -1, 1, 61), "rois", nanBox), DType.FLOAT64), "rois[1]", "not a number");
        // infinite coordinates are clamped: the box covers the whole map
        try (NDScope scope = NDScope.open()) {
            double[] x = rand(xs, -1, 1, 62);
            double[] y = NDArray.invoke(OP, a("pooled_size", "(1, 1)", "spatial_scale", "1"), NDArray.create(x, xs),
                    NDArray.create(new double[] {1, Double.NEGATIVE_INFINITY, -1e30, Double.POSITIVE_INFINITY, 1e30}, s(1, 5)))
                    .get(0).toDoubleArray();
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 16; i < 32; i++) {
                max = Math.max(max, x[i]);
            }
            assertEquals(max, y[0]);
        }
    }
}
