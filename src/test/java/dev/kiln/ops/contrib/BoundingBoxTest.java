package dev.kiln.ops.contrib;

import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The bounding-box operators (_contrib_box_iou, _contrib_box_nms, _contrib_bipartite_matching,
 * _contrib_box_encode, _contrib_box_decode): forward against independent Java references in both
 * float types, box_nms's gradient (reference, numeric, grad_req=add), the zero gradients of the
 * others, large cases, MXNet 1.9.1 itself, and errors.
 */
@ExtendWith(NoLeaks.class)
class BoundingBoxTest {
    static final DType[] BOTH = {DType.FLOAT64, DType.FLOAT32};

    static Symbol op(String op, Map<String, String> attrs, String... inputs) {
        Symbol[] in = new Symbol[inputs.length];
        for (int i = 0; i < in.length; i++) {
            in[i] = Symbol.variable(inputs[i]);
        }
        return Symbol.create(op, "op", attrs, null, in);
    }

    static void assertClose(double[] e, double[] g, DType t, String what) {
        assertEquals(e.length, g.length, what + ": length");
        double r = t == DType.FLOAT64 ? 1e-12 : 1e-5;
        for (int i = 0; i < e.length; i++) {
            if (Double.isNaN(e[i]) ? !Double.isNaN(g[i]) : !(Math.abs(e[i] - g[i]) <= r * (Math.abs(e[i]) + 1))) {
                fail(String.format(Locale.ROOT, "%s %s[%d]: expected %s, got %s", what, t, i, e[i], g[i]));
            }
        }
    }

    static void oracle(String op, Map<String, String> attrs, double[][] in, long[]... shapes) {
        float[][] f = new float[in.length][];
        for (int i = 0; i < in.length; i++) {
            f[i] = OpTesting.toFloat(in[i]);
        }
        MxCompare.forward(op, attrs, attrs, f, shapes, 1e-5, op + " " + attrs + " " + Arrays.deepToString(shapes), false);
    }

    /** Random box coordinates on a grid of quarters (exact in float32, far from IoU thresholds' ties mostly). */
    static double[] boxes(int n, boolean center, long seed) {
        Random rng = new Random(seed);
        double[] b = new double[n * 4];
        for (int i = 0; i < n; i++) {
            double x0 = rng.nextInt(40) / 4.0;
            double y0 = rng.nextInt(40) / 4.0;
            double w = rng.nextInt(24) / 4.0 - (i % 9 == 5 ? 1 : 0);  // some degenerate / negative widths
            double h = rng.nextInt(24) / 4.0;
            b[i * 4] = center ? x0 + w / 2 : x0;
            b[i * 4 + 1] = center ? y0 + h / 2 : y0;
            b[i * 4 + 2] = center ? w : x0 + w;
            b[i * 4 + 3] = center ? h : y0 + h;
        }
        return b;
    }

    // ---- box_iou -------------------------------------------------------------------------------------

    static double inter1(double a1, double a2, double b1, double b2, boolean center) {
        double w;
        if (!center) {
            w = Math.min(a2, b2) - Math.max(a1, b1);
        } else {
            w = Math.min(b1 + b2 / 2, a1 + a2 / 2) - Math.max(b1 - b2 / 2, a1 - a2 / 2);
        }
        return w > 0 ? w : 0;
    }

    static double area(double[] b, int o, boolean center) {
        double w = center ? b[o + 2] : b[o + 2] - b[o];
        double h = center ? b[o + 3] : b[o + 3] - b[o + 1];
        return w < 0 || h < 0 ? 0 : w * h;
    }

    static double inter(double[] a, int i, double[] b, int j, boolean center) {
        return inter1(a[i], a[i + 2], b[j], b[j + 2], center) * inter1(a[i + 1], a[i + 3], b[j + 1], b[j + 3], center);
    }

    static double[] iouRef(double[] l, double[] r, boolean center) {
        int nl = l.length / 4;
        int nr = r.length / 4;
        double[] y = new double[nl * nr];
        for (int i = 0; i < nl; i++) {
            for (int j = 0; j < nr; j++) {
                double in = inter(l, i * 4, r, j * 4, center);
                y[i * nr + j] = in <= 0 ? 0 : in / (area(l, i * 4, center) + area(r, j * 4, center) - in);
            }
        }
        return y;
    }

    @Test
    void boxIouAgainstReferenceAndMxnet() {
        for (String f : new String[] {"corner", "center"}) {
            boolean c = f.equals("center");
            double[] l = boxes(6, c, 1);
            double[] r = boxes(5, c, 2);
            Symbol sym = op("_contrib_box_iou", a("format", f), "lhs", "rhs");
            for (DType t : BOTH) {
                double[] y = ExecTesting.forward(sym, shapes("lhs", s(2, 3, 4), "rhs", s(5, 4)), Map.of("lhs", l, "rhs", r), t, null).v(0);
                assertClose(iouRef(l, r, c), y, t, "box_iou " + f);
            }
            oracle("_contrib_box_iou", a("format", f), new double[][] {l, r}, s(2, 3, 4), s(5, 4));
            oracle("_contrib_box_iou", a("format", f), new double[][] {l, r}, s(6, 4), s(1, 5, 4));
        }
        // the documented example
        double[] y = ExecTesting.forward(op("_contrib_box_iou", a(), "lhs", "rhs"), shapes("lhs", s(2, 4), "rhs", s(1, 4)),
                Map.of("lhs", new double[] {0.5, 0.5, 1.0, 1.0, 0.0, 0.0, 0.5, 0.5}, "rhs", new double[] {0.25, 0.25, 0.75, 0.75}),
                DType.FLOAT64, null).v(0);
        assertClose(new double[] {1 / 7.0, 1 / 7.0}, y, DType.FLOAT64, "box_iou example");
        // NaN and infinite coordinates: MXNet's comparisons (NaN intersects nothing)
        double[] odd = {Double.NaN, 0, 1, 1, 0, 0, Double.POSITIVE_INFINITY, 2, Double.NEGATIVE_INFINITY, 0, 1, 1};
        oracle("_contrib_box_iou", a(), new double[][] {odd, boxes(3, false, 3)}, s(3, 4), s(3, 4));
    }

    @Test
    void zeroGradients() {
        Symbol iou = op("_contrib_box_iou", a(), "lhs", "rhs");
        Map<String, double[]> g = ExecTesting.grads(iou, shapes("lhs", s(3, 4), "rhs", s(2, 4)),
                Map.of("lhs", boxes(3, false, 4), "rhs", boxes(2, false, 5)), List.of("lhs", "rhs"), GradReq.WRITE, 1,
                DType.FLOAT64, (k, sh) -> OpTesting.rand(6, -1, 1, 6), null);
        assertClose(new double[12], g.get("lhs"), DType.FLOAT64, "box_iou d/dlhs");
        assertClose(new double[8], g.get("rhs"), DType.FLOAT64, "box_iou d/drhs");
        Symbol dec = op("_contrib_box_decode", a(), "data", "anchors");
        Map<String, double[]> gd = ExecTesting.grads(dec, shapes("data", s(1, 3, 4), "anchors", s(1, 3, 4)),
                Map.of("data", OpTesting.rand(12, -1, 1, 7), "anchors", boxes(3, true, 8)), List.of("data"), GradReq.WRITE, 1,
                DType.FLOAT64, (k, sh) -> OpTesting.rand(12, -1, 1, 9), null);
        assertClose(new double[12], gd.get("data"), DType.FLOAT64, "box_decode d/ddata");
    }

    @Test
    void boxIouErrors() {
        Symbol sym = op("_contrib_box_iou", a(), "lhs", "rhs");
        ExecTesting.assertInferFails(sym, shapes("lhs", s(3, 5), "rhs", s(2, 4)), "lhs", "last dimension of 4");
        ExecTesting.assertInferFails(sym, shapes("lhs", s(3, 4), "rhs", s(4)), "rhs", "at least 2 dims");
        OpTesting.assertThrowsMessage(() -> op("_contrib_box_iou", a("format", "xywh"), "lhs", "rhs")
                .inferShape(shapes("lhs", s(3, 4), "rhs", s(2, 4))), "format");
    }

    // ---- box_nms -------------------------------------------------------------------------------------

    record Nms(double[] y, double[] rec) {}

    /** MXNet 1.9.1's box_nms in plain Java (float parameters rounded to float as MXNet holds them). */
    static Nms nmsRef(double[] x, int b, int n, int w, double overlap, double valid, int topk, int coord, int score, int id,
            int background, boolean force, boolean inCenter, boolean outCenter) {
        double[] y = new double[x.length];
        double[] rec = new double[b * n];
        Arrays.fill(y, -1);
        Arrays.fill(rec, -1);
        if (topk == 0) {
            for (int i = 0; i < b * n; i++) {
                rec[i] = i;
            }
            return new Nms(x.clone(), rec);
        }
        float ov = (float) overlap;
        float vt = (float) valid;
        for (int bb = 0; bb < b; bb++) {
            int base = bb * n;
            List<Integer> cand = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                double[] row = Arrays.copyOfRange(x, (base + i) * w, (base + i + 1) * w);
                if (row[score] > vt && (id < 0 || row[id] != background)) {
                    cand.add(i);
                }
            }
            cand.sort(Comparator.comparingDouble((Integer i) -> -x[(base + i) * w + score]));  // stable: ties by position
            int k = Math.min(cand.size(), topk < 0 ? n : topk);
            boolean[] gone = new boolean[k];
            for (int r = 0; r < k; r++) {
                if (gone[r]) {
                    continue;
                }
                int ro = (base + cand.get(r)) * w;
                for (int p = r + 1; p < k; p++) {
                    int po = (base + cand.get(p)) * w;
                    if (gone[p] || (!force && id >= 0 && (int) x[ro + id] != (int) x[po + id])) {
                        continue;
                    }
                    double in = inter(x, ro + coord, x, po + coord, inCenter);
                    double iou = in / (area(x, ro + coord, inCenter) + area(x, po + coord, inCenter) - in);
                    if (iou > ov) {
                        gone[p] = true;
                    }
                }
            }
            int count = 0;
            for (int j = 0; j < k; j++) {
                if (gone[j]) {
                    continue;
                }
                int src = base + cand.get(j);
                int dst = (base + count) * w;
                System.arraycopy(x, src * w, y, dst, w);
                if (inCenter != outCenter && y[dst + coord] >= 0) {
                    double p0 = y[dst + coord];
                    double p1 = y[dst + coord + 1];
                    double p2 = y[dst + coord + 2];
                    double p3 = y[dst + coord + 3];
                    if (outCenter) {
                        y[dst + coord] = (p0 + p2) / 2;
                        y[dst + coord + 1] = (p1 + p3) / 2;
                        y[dst + coord + 2] = p2 - p0;
                        y[dst + coord + 3] = p3 - p1;
                    } else {
                        y[dst + coord] = p0 - p2 / 2;
                        y[dst + coord + 1] = p1 - p3 / 2;
                        y[dst + coord + 2] = p0 + p2 / 2;
                        y[dst + coord + 3] = p1 + p3 / 2;
                    }
                }
                rec[base + count] = src;
                count++;
            }
        }
        return new Nms(y, rec);
    }

    /** Rows [id, score, x0, y0, x1, y1, extra] of b batches of n boxes; ids in 0..2, scores distinct quarters. */
    static double[] detections(int b, int n, long seed) {
        Random rng = new Random(seed);
        double[] x = new double[b * n * 7];
        double[] bx = boxes(b * n, false, seed + 1);
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < b * n; i++) {
            order.add(i);
        }
        java.util.Collections.shuffle(order, rng);
        for (int i = 0; i < b * n; i++) {
            x[i * 7] = rng.nextInt(3);
            x[i * 7 + 1] = order.get(i) / (double) (b * n) - 0.25 + (i % 5 == 0 && i > 0 ? 0 : 0);  // some below 0
            System.arraycopy(bx, i * 4, x, i * 7 + 2, 4);
            x[i * 7 + 6] = rng.nextInt(100) / 10.0;
        }
        if (n > 3) {
            x[1] = x[7 + 1];  // a tie of scores: kept in position order
        }
        return x;
    }

    static Map<String, String> nmsAttrs(double overlap, double valid, int topk, int id, int background, boolean force, String in,
            String out) {
        return a("overlap_thresh", Double.toString(overlap), "valid_thresh", Double.toString(valid), "topk", Integer.toString(topk),
                "id_index", Integer.toString(id), "background_id", Integer.toString(background), "force_suppress",
                force ? "True" : "False", "in_format", in, "out_format", out);
    }

    static void checkNms(double[] x, int b, int n, double overlap, double valid, int topk, int id, int background, boolean force,
            String in, String out, long seed) {
        Map<String, String> attrs = nmsAttrs(overlap, valid, topk, id, background, force, in, out);
        Symbol sym = op("_contrib_box_nms", attrs, "data");
        long[] xs = s(b, n, 7);
        Nms ref = nmsRef(x, b, n, 7, overlap, valid, topk, 2, 1, id, background, force, in.equals("center"), out.equals("center"));
        double[] head = OpTesting.rand(x.length, -1, 1, seed);
        double[] dx = new double[x.length];
        for (int i = 0; i < b * n; i++) {
            int r = (int) ref.rec[i];
            if (r >= 0) {
                System.arraycopy(head, i * 7, dx, r * 7, 7);
            }
        }
        for (DType t : BOTH) {
            assertClose(ref.y, ExecTesting.forward(sym, shapes("data", xs), Map.of("data", x), t, null).v(0), t, "box_nms " + attrs);
            Map<String, double[]> g = ExecTesting.grads(sym, shapes("data", xs), Map.of("data", x), List.of("data"), GradReq.WRITE, 1,
                    t, (k, sh) -> head, null);
            assertClose(dx, g.get("data"), t, "box_nms backward " + attrs);
        }
    }

    @Test
    void boxNmsAgainstReference() {
        double[] x = detections(2, 12, 10);
        checkNms(x, 2, 12, 0.5, 0, -1, -1, -1, false, "corner", "corner", 11);
        checkNms(x, 2, 12, 0.3, 0.2, -1, 0, -1, false, "corner", "corner", 12);  // per class
        checkNms(x, 2, 12, 0.3, 0, -1, 0, -1, true, "corner", "center", 13);     // force_suppress, converted
        checkNms(x, 2, 12, 0.2, -1, 5, 0, 1, false, "corner", "corner", 14);     // topk, background class 1
        checkNms(x, 2, 12, 0.1, 0.5, 4, -1, -1, false, "center", "corner", 15);
        checkNms(x, 2, 12, 0.5, 0, 0, -1, -1, false, "corner", "corner", 16);    // topk 0: a copy
        checkNms(x, 2, 12, 0.5, 2.0, -1, -1, -1, false, "corner", "corner", 17); // nothing valid: all -1
        // the documented example
        double[] ex = {0, 0.5, 0.1, 0.1, 0.2, 0.2, 1, 0.4, 0.1, 0.1, 0.2, 0.2, 0, 0.3, 0.1, 0.1, 0.14, 0.14, 2, 0.6, 0.5, 0.5, 0.7, 0.8};
        double[] y = ExecTesting.forward(op("_contrib_box_nms", a("overlap_thresh", "0.1", "id_index", "0", "force_suppress", "True"),
                "data"), shapes("data", s(4, 6)), Map.of("data", ex), DType.FLOAT64, null).v(0);
        assertClose(new double[] {2, 0.6, 0.5, 0.5, 0.7, 0.8, 0, 0.5, 0.1, 0.1, 0.2, 0.2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
                y, DType.FLOAT64, "box_nms example");
    }

    @Test
    void boxNmsGradients() {
        double[] x = detections(1, 6, 20);
        x[1] += 0.01;  // no tie of scores: a numeric step must not reorder the boxes
        Symbol sym = op("_contrib_box_nms", nmsAttrs(0.3, 0, -1, 0, -1, false, "corner", "corner"), "data");
        GradCheck.Inputs in = new GradCheck.Inputs();
        in.put("data", s(1, 6, 7), x);
        GradCheck.check(sym, in, List.of("data"), 1e-6, 1e-6, 1e-8);
        double[] head = OpTesting.rand(42, -1, 1, 21);
        for (DType t : BOTH) {
            Map<String, double[]> once = ExecTesting.grads(sym, shapes("data", s(1, 6, 7)), Map.of("data", x), List.of("data"),
                    GradReq.WRITE, 1, t, (k, sh) -> head, null);
            Map<String, double[]> twice = ExecTesting.grads(sym, shapes("data", s(1, 6, 7)), Map.of("data", x), List.of("data"),
                    GradReq.ADD, 2, t, (k, sh) -> head, null);
            double[] e = once.get("data").clone();
            double total = 0;
            for (int i = 0; i < e.length; i++) {
                e[i] *= 2;
                total += Math.abs(e[i]);
            }
            assertTrue(total > 0, "box_nms gradient is all zero");
            assertClose(e, twice.get("data"), t, "box_nms grad_req=add");
        }
    }

    @Test
    void boxNmsLargeCase() {
        // an SSD-sized batch: 4 images of 2000 detections
        double[] x = detections(4, 2000, 30);
        checkNms(x, 4, 2000, 0.4537, 0.01, 400, 0, -1, false, "corner", "corner", 31);
    }

    @Test
    void boxNmsMatchesMxnet() {
        double[] x = detections(2, 12, 40);
        for (Map<String, String> attrs : List.of(nmsAttrs(0.5, 0, -1, -1, -1, false, "corner", "corner"),
                nmsAttrs(0.3, 0.2, -1, 0, -1, false, "corner", "center"), nmsAttrs(0.2, 0, 5, 0, 1, false, "center", "corner"),
                nmsAttrs(0.3, 0, 3, 0, -1, true, "corner", "corner"), nmsAttrs(0.5, 0, 0, -1, -1, false, "corner", "corner"))) {
            oracle("_contrib_box_nms", attrs, new double[][] {x}, s(2, 12, 7));
            oracle("_contrib_box_nms", attrs, new double[][] {x}, s(4, 6, 7));
        }
        oracle("_contrib_box_non_maximum_suppression", a("coord_start", "3", "score_index", "0", "id_index", "1"),
                new double[][] {detections(1, 10, 41)}, s(2, 5, 7));
    }

    @Test
    void boxNmsErrors() {
        ExecTesting.assertInferFails(op("_contrib_box_nms", a(), "data"), shapes("data", s(5, 4)), "at least 5");
        ExecTesting.assertInferFails(op("_contrib_box_nms", a(), "data"), shapes("data", s(6)), "at least 2 dims");
        ExecTesting.assertInferFails(op("_contrib_box_nms", a("score_index", "3"), "data"), shapes("data", s(5, 6)),
                "score_index=3", "conflicts");
        ExecTesting.assertInferFails(op("_contrib_box_nms", a("coord_start", "3"), "data"), shapes("data", s(5, 6)), "out of range");
        ExecTesting.assertInferFails(op("_contrib_box_nms", a("id_index", "1"), "data"), shapes("data", s(5, 6)), "id_index=1",
                "score_index");
        ExecTesting.assertInferFails(op("_contrib_box_nms", a("id_index", "9"), "data"), shapes("data", s(5, 6)), "id_index=9");
    }

    // ---- bipartite_matching --------------------------------------------------------------------------

    static double[][] matchRef(double[] x, int b, int n, int m, boolean ascend, double threshold, int topk) {
        double[] rows = new double[b * n];
        double[] cols = new double[b * m];
        Arrays.fill(rows, -1);
        Arrays.fill(cols, -1);
        float th = (float) threshold;
        for (int bb = 0; bb < b; bb++) {
            int base = bb * n * m;
            List<Integer> order = new ArrayList<>();
            for (int e = 0; e < n * m; e++) {
                order.add(e);
            }
            order.sort(Comparator.comparingDouble((Integer e) -> ascend ? x[base + e] : -x[base + e]));
            int count = 0;
            for (int e : order) {
                int r = e / m;
                int c = e % m;
                if (rows[bb * n + r] != -1 || cols[bb * m + c] != -1) {
                    continue;
                }
                double v = x[base + e];
                if (!(ascend ? v < th : v > th)) {
                    break;
                }
                rows[bb * n + r] = c;
                cols[bb * m + c] = r;
                if (topk > 0 && ++count > topk) {
                    break;
                }
            }
        }
        return new double[][] {rows, cols};
    }

    static void checkMatch(double[] x, int b, int n, int m, boolean ascend, double threshold, int topk) {
        Map<String, String> attrs = a("is_ascend", ascend ? "True" : "False", "threshold", Double.toString(threshold), "topk",
                Integer.toString(topk));
        Symbol sym = op("_contrib_bipartite_matching", attrs, "data");
        double[][] ref = matchRef(x, b, n, m, ascend, threshold, topk);
        for (DType t : BOTH) {
            ExecTesting.Out o = ExecTesting.forward(sym, shapes("data", s(b, n, m)), Map.of("data", x), t, null);
            assertClose(ref[0], o.v(0), t, "bipartite_matching x " + attrs);
            assertClose(ref[1], o.v(1), t, "bipartite_matching y " + attrs);
        }
    }

    static double[] scores(int size, long seed) {
        double[] x = OpTesting.rand(size, 0, 1, seed);
        for (int i = 0; i < size; i += 7) {
            x[i] = 0.5;  // ties, broken by position
        }
        return x;
    }

    @Test
    void bipartiteMatchingAgainstReferenceAndMxnet() {
        double[] x = scores(2 * 5 * 4, 50);
        for (boolean asc : new boolean[] {false, true}) {
            for (int topk : new int[] {-1, 1, 2}) {
                checkMatch(x, 2, 5, 4, asc, asc ? 0.8 : 0.2, topk);
                oracle("_contrib_bipartite_matching", a("is_ascend", asc ? "True" : "False", "threshold", asc ? "0.8" : "0.2", "topk",
                        Integer.toString(topk)), new double[][] {x}, s(2, 5, 4));
            }
        }
        // the documented example
        ExecTesting.Out o = ExecTesting.forward(op("_contrib_bipartite_matching", a("threshold", "1e-12"), "data"),
                shapes("data", s(3, 2)), Map.of("data", new double[] {0.5, 0.6, 0.1, 0.2, 0.3, 0.4}), DType.FLOAT64, null);
        assertClose(new double[] {1, -1, 0}, o.v(0), DType.FLOAT64, "example x");
        assertClose(new double[] {2, 0}, o.v(1), DType.FLOAT64, "example y");
        // a large case: 100 ground truths against 3000 anchors
        checkMatch(scores(2 * 100 * 300, 51), 2, 100, 300, false, 0.05, -1);
        OpTesting.assertThrowsMessage(() -> op("_contrib_bipartite_matching", a(), "data").inferShape(shapes("data", s(3, 2))),
                "threshold");
        ExecTesting.assertInferFails(op("_contrib_bipartite_matching", a("threshold", "0"), "data"), shapes("data", s(3)),
                "at least 2 dims");
    }

    // ---- box_encode / box_decode -----------------------------------------------------------------------

    @Test
    void boxEncodeAndDecode() {
        int b = 2;
        int n = 6;
        int m = 3;
        double[] samples = {1, 0, -1, 1, 1, 0, 1, 1, -1, 0, 1, 0};
        double[] matches = {0, -1, 2, 1, 2, 9, 2, 0, -1, 1, 1, -1};  // unmatched (-1, 9) only where samples are not positive
        double[] anchors = boxes(b * n, false, 60);
        for (int i = 0; i < b * n; i++) {
            anchors[i * 4 + 2] = anchors[i * 4] + 1 + i % 3;  // positive sizes
            anchors[i * 4 + 3] = anchors[i * 4 + 1] + 2 + i % 2;
        }
        double[] refs = Arrays.copyOf(anchors, b * m * 4);
        for (int i = 0; i < refs.length; i++) {
            refs[i] += i % 4 >= 2 ? 1.5 : 0.25;
        }
        double[] means = {0.1, -0.1, 0, 0.2};
        double[] stds = {0.1, 0.1, 0.2, 0.2};
        double[] targets = new double[b * n * 4];
        double[] masks = new double[b * n * 4];
        for (int i = 0; i < b * n; i++) {
            if (samples[i] <= 0.5) {
                continue;
            }
            int ro = ((i / n) * m + (int) matches[i]) * 4;
            double rw = refs[ro + 2] - refs[ro];
            double rh = refs[ro + 3] - refs[ro + 1];
            double aw = anchors[i * 4 + 2] - anchors[i * 4];
            double ah = anchors[i * 4 + 3] - anchors[i * 4 + 1];
            targets[i * 4] = ((refs[ro] + rw / 2 - anchors[i * 4] - aw / 2) / aw - means[0]) / stds[0];
            targets[i * 4 + 1] = ((refs[ro + 1] + rh / 2 - anchors[i * 4 + 1] - ah / 2) / ah - means[1]) / stds[1];
            targets[i * 4 + 2] = (Math.log(rw / aw) - means[2]) / stds[2];
            targets[i * 4 + 3] = (Math.log(rh / ah) - means[3]) / stds[3];
            Arrays.fill(masks, i * 4, i * 4 + 4, 1);
        }
        Symbol enc = op("_contrib_box_encode", a(), "samples", "matches", "anchors", "refs", "means", "stds");
        Map<String, long[]> sh = shapes("samples", s(b, n), "matches", s(b, n), "anchors", s(b, n, 4), "refs", s(b, m, 4), "means", s(4),
                "stds", s(4));
        Map<String, double[]> vals = Map.of("samples", samples, "matches", matches, "anchors", anchors, "refs", refs, "means", means,
                "stds", stds);
        for (DType t : BOTH) {
            ExecTesting.Out o = ExecTesting.forward(enc, sh, vals, t, null);
            assertClose(targets, o.v(0), t, "box_encode targets");
            assertClose(masks, o.v(1), t, "box_encode masks");
        }
        oracle("_contrib_box_encode", a(), new double[][] {samples, matches, anchors, refs, means, stds}, s(b, n), s(b, n),
                s(b, n, 4), s(b, m, 4), s(4), s(4));
        // a positive sample matched outside refs: refused (MXNet reads outside refs)
        double[] bad = matches.clone();
        bad[0] = 3;
        OpTesting.assertThrowsMessage(() -> ExecTesting.forward(enc, sh, Map.of("samples", samples, "matches", bad, "anchors", anchors,
                "refs", refs, "means", means, "stds", stds), DType.FLOAT32, null), "matches[0, 0]", "not a row of refs");
        ExecTesting.assertInferFails(enc, shapes("samples", s(b, n), "matches", s(b, n), "anchors", s(b, n, 3), "refs", s(b, m, 4)),
                "anchors", "(B, N, 4)");

        // decode: the offsets back to boxes, against a reference, in both anchor formats, with and without clip
        double[] offs = OpTesting.rand(b * n * 4, -1, 1, 61);
        for (String f : new String[] {"corner", "center"}) {
            for (double clip : new double[] {-1, 0.3}) {
                Map<String, String> attrs = a("std0", "0.1", "std1", "0.1", "std2", "0.2", "std3", "0.25", "clip", Double.toString(clip),
                        "format", f);
                double[] st = {0.1, 0.1, 0.2, 0.25};
                double[] ref = new double[b * n * 4];
                for (int i = 0; i < b * n; i++) {
                    int ao = (i % n) * 4;
                    double ax = anchors[ao];
                    double ay = anchors[ao + 1];
                    double aw = anchors[ao + 2];
                    double ah = anchors[ao + 3];
                    if (f.equals("corner")) {
                        aw -= ax;
                        ah -= ay;
                        ax += aw / 2;
                        ay += ah / 2;
                    }
                    double ox = offs[i * 4] * st[0] * aw + ax;
                    double oy = offs[i * 4 + 1] * st[1] * ah + ay;
                    double dw = offs[i * 4 + 2] * st[2];
                    double dh = offs[i * 4 + 3] * st[3];
                    if (clip > 0) {
                        dw = Math.min(dw, clip);
                        dh = Math.min(dh, clip);
                    }
                    double ow = Math.exp(dw) * aw / 2;
                    double oh = Math.exp(dh) * ah / 2;
                    ref[i * 4] = ox - ow;
                    ref[i * 4 + 1] = oy - oh;
                    ref[i * 4 + 2] = ox + ow;
                    ref[i * 4 + 3] = oy + oh;
                }
                Symbol dec = op("_contrib_box_decode", attrs, "data", "anchors");
                for (DType t : BOTH) {
                    double[] y = ExecTesting.forward(dec, shapes("data", s(b, n, 4), "anchors", s(1, n, 4)),
                            Map.of("data", offs, "anchors", Arrays.copyOf(anchors, n * 4)), t, null).v(0);
                    // float32: the std parameters are floats in MXNet and Kiln; compare loosely
                    double[] tol = y.clone();
                    for (int i = 0; i < y.length; i++) {
                        if (Math.abs(y[i] - ref[i]) <= 1e-5 * (Math.abs(ref[i]) + 1)) {
                            tol[i] = ref[i];
                        }
                    }
                    assertClose(ref, tol, DType.FLOAT64, "box_decode " + attrs + " " + t);
                }
                oracle("_contrib_box_decode", attrs, new double[][] {offs, Arrays.copyOf(anchors, n * 4)}, s(b, n, 4), s(1, n, 4));
            }
        }
        ExecTesting.assertInferFails(op("_contrib_box_decode", a(), "data", "anchors"), shapes("data", s(2, 6, 4), "anchors", s(1, 5, 4)),
                "anchors", "N = 6");
        ExecTesting.assertInferFails(op("_contrib_box_decode", a(), "data", "anchors"), shapes("data", s(6, 4), "anchors", s(1, 6, 4)),
                "data", "(B, N, 4)");
    }

    @Test
    void symbolFactories() {
        Symbol iou = Symbol.boxIou("iou", Symbol.variable("a"), Symbol.variable("b"), "corner");
        org.junit.jupiter.api.Assertions.assertArrayEquals(s(2, 3, 5),
                iou.inferShape(Map.of("a", s(2, 3, 4), "b", s(5, 4))).outShapes().get(0));
        Symbol nms = Symbol.boxNms("nms", Symbol.variable("det"), 0.45, 0.01, 100, false);
        assertEquals(1, nms.listOutputs().size());  // temp is hidden
        org.junit.jupiter.api.Assertions.assertArrayEquals(s(2, 50, 6),
                nms.inferShape(Map.of("det", s(2, 50, 6))).outShapes().get(0));
        Symbol m = Symbol.bipartiteMatching("m", Symbol.variable("s"), 0.5);
        assertEquals(2, m.listOutputs().size());
        Symbol d = Symbol.boxDecode("d", Symbol.variable("x"), Symbol.variable("an"), new double[] {0.1, 0.1, 0.2, 0.2}, 4.1, "corner");
        org.junit.jupiter.api.Assertions.assertArrayEquals(s(2, 9, 4),
                d.inferShape(Map.of("x", s(2, 9, 4), "an", s(1, 9, 4))).outShapes().get(0));
    }
}
