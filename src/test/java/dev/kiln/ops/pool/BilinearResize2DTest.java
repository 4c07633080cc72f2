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
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * _contrib_BilinearResize2D: forward and backward against an independent Java reference (MXNet
 * 1.9.1's arithmetic: source coordinates in float), every mode, align_corners both ways, float64
 * numeric gradients, grad_req=add, a large case, the real MXNet, and errors.
 */
@ExtendWith(NoLeaks.class)
class BilinearResize2DTest {
    static final String OP = "_contrib_BilinearResize2D";

    // ---- reference ------------------------------------------------------------------------------

    /** Per output index along a dim: {i0, step} and the weight l1 of i0 + step (MXNet's float arithmetic). */
    record Taps(int[] i0, int[] step, double[] l1) {}

    static Taps taps(int in, int out, boolean align) {
        float scale = out > 1 ? (align ? (float) (in - 1) / (float) (out - 1) : (float) in / (float) out) : 0f;
        int[] i0 = new int[out];
        int[] st = new int[out];
        double[] l1 = new double[out];
        for (int o = 0; o < out; o++) {
            float r;
            if (align) {
                r = scale * (float) o;
            } else {
                r = (float) ((double) scale * (o + 0.5) - 0.5);
                r = r < 0 ? 0 : r;
            }
            i0[o] = (int) r;
            st[o] = i0[o] < in - 1 ? 1 : 0;
            l1[o] = r - (float) i0[o];
        }
        return new Taps(i0, st, l1);
    }

    /** Forward of [planes, h, w] to [planes, oh, ow]; a copy when the sizes are equal (as MXNet). */
    static double[] ref(double[] x, int planes, int h, int w, int oh, int ow, boolean align) {
        double[] y = new double[planes * oh * ow];
        if (h == oh && w == ow) {
            return x.clone();
        }
        Taps r = taps(h, oh, align);
        Taps c = taps(w, ow, align);
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < oh; i++) {
                double h1 = r.l1[i];
                double h0 = 1 - h1;
                int a = p * h * w + r.i0[i] * w;
                int b = a + r.step[i] * w;
                for (int j = 0; j < ow; j++) {
                    double w1 = c.l1[j];
                    double w0 = 1 - w1;
                    int u = c.i0[j];
                    int v = u + c.step[j];
                    y[(p * oh + i) * ow + j] = h0 * (w0 * x[a + u] + w1 * x[a + v]) + h1 * (w0 * x[b + u] + w1 * x[b + v]);
                }
            }
        }
        return y;
    }

    /** Backward: dy [planes, oh, ow] scattered to dx [planes, h, w]. */
    static double[] refGrad(double[] dy, int planes, int h, int w, int oh, int ow, boolean align) {
        if (h == oh && w == ow) {
            return dy.clone();
        }
        double[] dx = new double[planes * h * w];
        Taps r = taps(h, oh, align);
        Taps c = taps(w, ow, align);
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < oh; i++) {
                double h1 = r.l1[i];
                double h0 = 1 - h1;
                int a = p * h * w + r.i0[i] * w;
                int b = a + r.step[i] * w;
                for (int j = 0; j < ow; j++) {
                    double w1 = c.l1[j];
                    double w0 = 1 - w1;
                    int u = c.i0[j];
                    int v = u + c.step[j];
                    double g = dy[(p * oh + i) * ow + j];
                    dx[a + u] += h0 * w0 * g;
                    dx[a + v] += h0 * w1 * g;
                    dx[b + u] += h1 * w0 * g;
                    dx[b + v] += h1 * w1 * g;
                }
            }
        }
        return dx;
    }

    /** Forward and backward of one call against the reference, float64 and float32. */
    static void check(Map<String, String> attrs, long[] data, int oh, int ow, long seed) {
        int planes = (int) (data[0] * data[1]);
        int h = (int) data[2];
        int w = (int) data[3];
        boolean align = !"False".equals(attrs.get("align_corners"));
        Symbol sym = ImageTesting.op(OP, attrs, "data");
        double[] x = rand(data, -2, 2, seed);
        double[] head = rand(s(data[0], data[1], oh, ow), -1, 1, seed + 1);
        Map<String, long[]> sh = shapes("data", data);
        Map<String, double[]> vals = Map.of("data", x);
        assertArrayEquals(s(data[0], data[1], oh, ow), sym.inferShape(sh).outShapes().get(0), attrs.toString());
        for (DType t : BOTH) {
            assertClose(ref(x, planes, h, w, oh, ow, align), ImageTesting.forward(sym, sh, vals, t), t, attrs + " forward");
            assertClose(refGrad(head, planes, h, w, oh, ow, align),
                    ImageTesting.grads(sym, sh, vals, List.of("data"), GradReq.WRITE, 1, t, head).get("data"), t,
                    attrs + " backward");
        }
    }

    // ---- tests ----------------------------------------------------------------------------------

    @Test
    void sizeModeUpAndDownBothAlignments() {
        for (String al : List.of("True", "False")) {
            check(a("height", "7", "width", "9", "align_corners", al), s(2, 3, 4, 5), 7, 9, 1);   // up
            check(a("height", "3", "width", "2", "align_corners", al), s(2, 2, 7, 8), 3, 2, 2);   // down
            check(a("height", "1", "width", "1", "align_corners", al), s(1, 2, 5, 4), 1, 1, 3);   // to one pixel
            check(a("height", "5", "width", "3", "align_corners", al), s(1, 2, 1, 1), 5, 3, 4);   // from one pixel
            check(a("height", "4", "width", "6", "align_corners", al), s(1, 2, 4, 3), 4, 6, 5);   // one dim unchanged
            check(a("height", "4", "width", "5", "align_corners", al), s(2, 1, 4, 5), 4, 5, 6);   // copy
        }
    }

    @Test
    void scaleAndParityModes() {
        // size with scales: int(scale * H), int(scale * W)
        check(a("scale_height", "2", "scale_width", "1.5"), s(1, 2, 3, 5), 6, 7, 10);
        check(a("scale_height", "0.5", "scale_width", "0.5", "align_corners", "False"), s(1, 2, 7, 6), 3, 3, 11);
        // odd_scale: even sizes scale, odd ones keep their corners: (H - 1) * scale + 1
        check(a("mode", "odd_scale", "scale_height", "2", "scale_width", "2"), s(1, 1, 4, 5), 8, 9, 12);
        check(a("mode", "odd_scale", "scale_height", "0.5", "scale_width", "0.5", "align_corners", "False"), s(1, 2, 9, 8),
                5, 4, 13);
        check(a("mode", "to_even_down"), s(1, 2, 5, 6), 4, 6, 14);
        check(a("mode", "to_even_up", "align_corners", "False"), s(1, 2, 5, 6), 6, 6, 15);
        check(a("mode", "to_odd_down"), s(1, 2, 5, 6), 5, 5, 16);
        check(a("mode", "to_odd_up", "align_corners", "False"), s(1, 2, 5, 6), 5, 7, 17);
        // height / width are ignored outside size mode
        check(a("mode", "to_even_up", "height", "100", "width", "100"), s(1, 1, 3, 3), 4, 4, 18);
    }

    @Test
    void likeMode() {
        for (String al : List.of("True", "False")) {
            Symbol sym = ImageTesting.op(OP, a("mode", "like", "align_corners", al), "data", "like");
            assertEquals(List.of("data", "like"), sym.listArguments());
            long[] d = s(2, 3, 4, 5);
            long[] l = s(1, 7, 6, 3);
            double[] x = rand(d, -2, 2, 20);
            double[] like = rand(l, -2, 2, 21);
            double[] head = rand(s(2, 3, 6, 3), -1, 1, 22);
            Map<String, long[]> sh = shapes("data", d, "like", l);
            Map<String, double[]> vals = Map.of("data", x, "like", like);
            boolean align = al.equals("True");
            for (DType t : BOTH) {
                assertClose(ref(x, 6, 4, 5, 6, 3, align), ImageTesting.forward(sym, sh, vals, t), t, "like forward");
                Map<String, double[]> g = ImageTesting.grads(sym, sh, vals, List.of("data", "like"), GradReq.WRITE, 1, t, head);
                assertClose(refGrad(head, 6, 4, 5, 6, 3, align), g.get("data"), t, "like backward");
                assertClose(new double[like.length], g.get("like"), t, "like gets no gradient");
            }
            ImageTesting.gradCheck(sym, sh, vals, List.of("data"));
            ImageTesting.assertAddAccumulates(sym, sh, vals, List.of("data", "like"), head);
        }
    }

    @Test
    void numericGradients() {
        for (String al : List.of("True", "False")) {
            Symbol up = ImageTesting.op(OP, a("height", "5", "width", "7", "align_corners", al), "data");
            ImageTesting.gradCheck(up, shapes("data", s(1, 2, 3, 4)), Map.of("data", rand(s(1, 2, 3, 4), -1, 1, 30)),
                    List.of("data"));
            Symbol down = ImageTesting.op(OP, a("height", "2", "width", "3", "align_corners", al), "data");
            ImageTesting.gradCheck(down, shapes("data", s(2, 1, 5, 7)), Map.of("data", rand(s(2, 1, 5, 7), -1, 1, 31)),
                    List.of("data"));
        }
    }

    @Test
    void gradReqAddAccumulates() {
        Symbol sym = ImageTesting.op(OP, a("height", "6", "width", "4", "align_corners", "False"), "data");
        ImageTesting.assertAddAccumulates(sym, shapes("data", s(2, 2, 3, 5)), Map.of("data", rand(s(2, 2, 3, 5), -1, 1, 40)),
                List.of("data"), rand(s(2, 2, 6, 4), -1, 1, 41));
        Symbol copy = ImageTesting.op(OP, a("height", "3", "width", "5"), "data");
        ImageTesting.assertAddAccumulates(copy, shapes("data", s(2, 2, 3, 5)), Map.of("data", rand(s(2, 2, 3, 5), -1, 1, 42)),
                List.of("data"), rand(s(2, 2, 3, 5), -1, 1, 43));
    }

    @Test
    void largeThreadedCase() {
        // 8 * 16 planes of 48 x 40 -> 97 x 61: above the OpenMP threshold, odd sizes
        check(a("height", "97", "width", "61", "align_corners", "False"), s(8, 16, 48, 40), 97, 61, 50);
        check(a("height", "17", "width", "23"), s(8, 16, 48, 40), 17, 23, 51);
    }

    @Test
    void matchesMxnet() {
        for (String al : List.of("True", "False")) {
            ImageTesting.oracle(OP, a("height", "7", "width", "9", "align_corners", al), new double[][] {rand(s(2, 3, 4, 5), -2, 2, 60)},
                    s(2, 3, 4, 5));
            ImageTesting.oracle(OP, a("height", "3", "width", "2", "align_corners", al), new double[][] {rand(s(1, 2, 9, 7), -2, 2, 61)},
                    s(1, 2, 9, 7));
            ImageTesting.oracle(OP, a("mode", "odd_scale", "scale_height", "1.5", "scale_width", "0.7", "align_corners", al),
                    new double[][] {rand(s(1, 2, 7, 10), -2, 2, 62)}, s(1, 2, 7, 10));
            ImageTesting.oracle(OP, a("scale_height", "2.5", "scale_width", "0.4", "align_corners", al),
                    new double[][] {rand(s(1, 2, 6, 11), -2, 2, 63)}, s(1, 2, 6, 11));
            ImageTesting.oracle(OP, a("mode", "like", "align_corners", al),
                    new double[][] {rand(s(1, 2, 5, 4), -2, 2, 64), rand(s(3, 1, 8, 3), -2, 2, 65)}, s(1, 2, 5, 4), s(3, 1, 8, 3));
            for (String m : List.of("to_even_down", "to_even_up", "to_odd_down", "to_odd_up")) {
                ImageTesting.oracle(OP, a("mode", m, "align_corners", al), new double[][] {rand(s(1, 2, 5, 6), -2, 2, 66)},
                        s(1, 2, 5, 6));
            }
            ImageTesting.oracleGrad(OP, a("height", "7", "width", "3", "align_corners", al), new double[][] {rand(s(2, 2, 4, 5), -2, 2, 67)},
                    rand(s(2, 2, 7, 3), -1, 1, 68), Set.of(0), s(2, 2, 4, 5));
            ImageTesting.oracleGrad(OP, a("mode", "like", "align_corners", al),
                    new double[][] {rand(s(1, 2, 5, 4), -2, 2, 69), rand(s(1, 1, 9, 2), -2, 2, 70)}, rand(s(1, 2, 9, 2), -1, 1, 71),
                    Set.of(0, 1), s(1, 2, 5, 4), s(1, 1, 9, 2));
        }
    }

    @Test
    void symbolFactory() {
        Symbol s = Symbol.bilinearResize2D("r", Symbol.variable("x"), 6, 8, false);
        assertArrayEquals(s(2, 3, 6, 8), s.inferShape(Map.of("x", s(2, 3, 4, 4))).outShapes().get(0));
        Symbol like = Symbol.bilinearResize2DLike("r", Symbol.variable("x"), Symbol.variable("y"), true);
        assertEquals(List.of("x", "y"), like.listArguments());
        assertArrayEquals(s(2, 3, 5, 7), like.inferShape(Map.of("x", s(2, 3, 4, 4), "y", s(1, 1, 5, 7))).outShapes().get(0));
    }

    @Test
    void errors() {
        Map<String, long[]> three = new LinkedHashMap<>(Map.of("data", s(2, 3, 4)));
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("height", "2", "width", "2"), "data"), three, "4D", "(2,3,4)");
        OpTesting.assertThrowsMessage(() -> ImageTesting.op(OP, a("height", "0", "width", "2"), "data")
                .inferShape(shapes("data", s(1, 1, 2, 2))), "height");
        OpTesting.assertThrowsMessage(() -> ImageTesting.op(OP, a("height", "2", "width", "20000"), "data")
                .inferShape(shapes("data", s(1, 1, 2, 2))), "width");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("mode", "odd_scale"), "data"), shapes("data", s(1, 1, 2, 2)),
                "odd_scale", "scale_height");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("scale_height", "2"), "data"), shapes("data", s(1, 1, 2, 2)),
                "scale_width");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("scale_height", "-2", "scale_width", "1"), "data"),
                shapes("data", s(1, 1, 2, 2)), "out of range");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("scale_height", "1e30", "scale_width", "1"), "data"),
                shapes("data", s(1, 1, 2, 2)), "int16");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("mode", "like"), "data", "like"),
                shapes("data", s(1, 1, 2, 2), "like", s(3, 3)), "like", "4-D");
        // empty data (imperative calls: a symbol's 0 dimension means unknown, as MXNet's legacy shapes)
        PoolTesting.assertInvokeFails(OP, a("mode", "to_odd_down"), new long[][] {s(1, 1, 0, 3)}, "negative");
        PoolTesting.assertInvokeFails(OP, a("mode", "to_odd_up"), new long[][] {s(1, 1, 0, 3)}, "empty data");  // nothing to interpolate
        assertArrayEquals(s(1, 1, 0, 2), PoolTesting.outShape(OP, a("mode", "to_even_down"), s(1, 1, 1, 3)));  // an empty result
        OpTesting.assertThrowsMessage(() -> ImageTesting.op(OP, a("mode", "sideways"), "data")
                .inferShape(shapes("data", s(1, 1, 2, 2))), "sideways");
    }
}
