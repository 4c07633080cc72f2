package dev.kiln.ops.nn;

import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.MxCompare;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * SVMOutput (a loss layer: forward identity, backward the L1 / squared hinge gradient) and
 * softmax_cross_entropy (the summed cross entropy of softmax(data) and the labels, with a head
 * gradient) against Java references, numeric gradients (SVMOutput's of the hinge objective it
 * differentiates), grad_req=add, large cases, the errors and MXNet 1.9.1 itself.
 */
@ExtendWith(NoLeaks.class)
class SvmAndCrossEntropyTest {

    static double[] vals(int n, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (r.nextInt(256) - 128) / 64.0;
        }
        return v;
    }

    static double[] labels(int n, int classes, long seed) {
        Random r = new Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = r.nextInt(classes);
        }
        return v;
    }

    static Symbol op(String name, Map<String, String> attrs) {
        return Symbol.create(name, "op", attrs, null, Symbol.variable("data"), Symbol.variable("label"));
    }

    /** Forward outputs (k = 0) and data gradients (k = 1) after {@code passes} backward passes (head h, may be null). */
    static double[][] run(Symbol sym, long[] ds, double[] data, double[] label, DType t, GradReq req, double[] h, int passes) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("data", ds);
        shapes.put("label", s(ds[0]));
        Map<String, DType> types = Map.of("data", t, "label", t);
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, Map.of("data", req), new Executor.Options())) {
            ex.argDict().get("data").set(data);
            ex.argDict().get("label").set(label);
            ex.forward(true);
            double[] out = ex.outputs().get(0).toDoubleArray();
            List<NDArray> heads = new ArrayList<>();
            try {
                if (h != null) {
                    NDArray head = NDArray.zeros(ex.outputs().get(0).shape(), t, Context.cpu());
                    heads.add(head);
                    head.set(h);
                }
                for (int p = 0; p < passes; p++) {
                    ex.backward(heads.toArray(new NDArray[0]));
                }
            } finally {
                heads.forEach(NDArray::close);
            }
            return new double[][] {out, ex.gradDict().get("data").toDoubleArray()};
        }
    }

    // ---- SVMOutput ----------------------------------------------------------------------------------

    /** The hinge objective SVMOutput differentiates: c * sum max(0, margin -+ x) (squared for L2). */
    static double svmLoss(double[] x, double[] label, int c, double margin, double coef, boolean linear) {
        double l = 0;
        for (int i = 0; i < x.length; i++) {
            int s = i / c, j = i % c;
            double h = j == (int) label[s] ? Math.max(0, margin - x[i]) : Math.max(0, margin + x[i]);
            l += coef * (linear ? h : h * h);
        }
        return l;
    }

    static double[] svmGrad(double[] x, double[] label, int c, double margin, double coef, boolean linear) {
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            int s = i / c, j = i % c;
            boolean target = j == (int) label[s];
            double h = target ? margin - x[i] : margin + x[i];
            double dh = target ? -1 : 1;
            g[i] = h > 0 ? coef * dh * (linear ? 1 : 2 * h) : 0;
        }
        return g;
    }

    @Test
    void svmOutputForwardGradientAndAdd() {
        for (boolean linear : new boolean[] {false, true}) {
            for (double[] mc : new double[][] {{1, 1}, {0.5, 2.5}}) {
                Map<String, String> attrs = a("margin", "" + mc[0], "regularization_coefficient", "" + mc[1], "use_linear",
                        linear ? "True" : "False");
                long[] ds = s(6, 5);
                double[] x = vals(30, 1);
                double[] label = labels(6, 5, 2);
                label[3] = 7;  // out of range: no target class in that sample
                for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                    double[][] r = run(op("SVMOutput", attrs), ds, x, label, t, GradReq.WRITE, null, 1);
                    assertArrayEquals(x, r[0], "SVMOutput forward " + attrs);
                    assertArrayEquals(svmGrad(x, label, 5, mc[0], mc[1], linear), r[1], 1e-6, "SVMOutput gradient " + attrs + " " + t);
                    double[][] twice = run(op("SVMOutput", attrs), ds, x, label, t, GradReq.ADD, null, 2);
                    double[] e = svmGrad(x, label, 5, mc[0], mc[1], linear);
                    for (int i = 0; i < e.length; i++) {
                        e[i] *= 2;
                    }
                    assertArrayEquals(e, twice[1], 1e-6, "SVMOutput grad_req=add " + attrs + " " + t);
                }
                // numeric gradient of the objective (inputs away from the hinges' kinks)
                double[] xs = new double[12];
                for (int i = 0; i < xs.length; i++) {
                    xs[i] = (i % 2 == 0 ? 1 : -1) * (0.1 + 0.37 * i) + (i % 3) * 0.05;
                }
                double[] ls = {0, 3, 1};
                double margin = mc[0], coef = mc[1];
                GradCheck.check(op("SVMOutput", attrs), new GradCheck.Inputs().put("data", s(3, 4), xs).put("label", s(3), ls),
                        List.of("data"), 1e-6, 1e-5, 1e-7, v -> svmLoss(v.get("data"), v.get("label"), 4, margin, coef, linear));
            }
        }
        double[] x = vals(2000 * 10, 3);
        double[] label = labels(2000, 10, 4);
        double[][] r = run(op("SVMOutput", a()), s(2000, 10), x, label, DType.FLOAT32, GradReq.WRITE, null, 1);
        assertArrayEquals(svmGrad(x, label, 10, 1, 1, false), r[1], 1e-6);
        ExecTesting.assertInferFails(op("SVMOutput", a()), Map.of("data", s(4, 3), "label", s(3)), "Shape inconsistent");
    }

    // ---- softmax_cross_entropy ------------------------------------------------------------------------

    static double sceRef(double[] x, double[] label, int c) {
        double total = 0;
        for (int s = 0; s < label.length; s++) {
            double m = Double.NEGATIVE_INFINITY, e = 0;
            for (int j = 0; j < c; j++) {
                m = Math.max(m, x[s * c + j]);
            }
            for (int j = 0; j < c; j++) {
                e += Math.exp(x[s * c + j] - m);
            }
            total += Math.log(e) - (x[s * c + (int) label[s]] - m);
        }
        return total;
    }

    static double[] sceGrad(double[] x, double[] label, int c, double g) {
        double[] d = new double[x.length];
        for (int s = 0; s < label.length; s++) {
            double m = Double.NEGATIVE_INFINITY, e = 0;
            for (int j = 0; j < c; j++) {
                m = Math.max(m, x[s * c + j]);
            }
            for (int j = 0; j < c; j++) {
                e += Math.exp(x[s * c + j] - m);
            }
            for (int j = 0; j < c; j++) {
                d[s * c + j] = g * (Math.exp(x[s * c + j] - m) / e - (j == (int) label[s] ? 1 : 0));
            }
        }
        return d;
    }

    @Test
    void softmaxCrossEntropy() {
        Symbol sym = op("softmax_cross_entropy", a());
        for (long[] ds : new long[][] {s(4, 3), s(1, 7), s(500, 40)}) {
            int n = (int) ds[0], c = (int) ds[1];
            double[] x = vals(n * c, 5);
            double[] label = labels(n, c, 6);
            if (n > 1) {
                label[1] = c - 0.5;  // truncated to the last class
            }
            for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                double tol = t == DType.FLOAT64 ? 1e-12 : 1e-5;
                double[][] r = run(sym, ds, x, label, t, GradReq.WRITE, new double[] {1.5}, 1);
                double ref = sceRef(x, label, c);
                assertArrayEquals(new double[] {ref}, r[0], tol * Math.max(1, Math.abs(ref)), "loss " + t);
                assertArrayEquals(sceGrad(x, label, c, 1.5), r[1], tol, "gradient " + t);
                double[][] twice = run(sym, ds, x, label, t, GradReq.ADD, new double[] {1.5}, 2);
                assertArrayEquals(sceGrad(x, label, c, 3.0), twice[1], 2 * tol, "grad_req=add " + t);
            }
        }
        GradCheck.check(sym, new GradCheck.Inputs().random("data", s(3, 4), -2, 2, 7).put("label", s(3), new double[] {2, 0, 3}),
                List.of("data"), 1e-6, 1e-6, 1e-8);
        assertThrowsMessage(() -> run(sym, s(2, 3), vals(6, 8), new double[] {0, 3}, DType.FLOAT32, GradReq.NULL, null, 0),
                "softmax_cross_entropy: label 3 of sample 1 is out of range for 3 classes");
        assertThrowsMessage(() -> run(sym, s(2, 3), vals(6, 8), new double[] {Double.NaN, 0}, DType.FLOAT32, GradReq.NULL, null, 0),
                "label NaN of sample 0");
        ExecTesting.assertInferFails(sym, Map.of("data", s(2, 3, 4), "label", s(2)), "only accepts 2-D data");
        ExecTesting.assertInferFails(sym, Map.of("data", s(2, 3), "label", s(3)), "Shape inconsistent");
    }

    @Test
    void againstMxnet() {
        double[] x = vals(20, 9);
        double[] label = labels(5, 4, 10);
        label[2] = 9;  // SVMOutput: out of range, no target
        for (String attrs : new String[] {"L2", "L1"}) {
            Map<String, String> at = a("margin", "0.75", "regularization_coefficient", "1.5", "use_linear", attrs.equals("L1") ? "True" : "False");
            MxCompare.Run m = MxCompare.mxnet("SVMOutput", at, List.of(s(5, 4), s(5)), List.of(x, label), null,
                    List.of(new double[20]), Set.of(0), 1);
            double[][] k = run(op("SVMOutput", at), s(5, 4), x, label, DType.FLOAT32, GradReq.WRITE, null, 1);
            assertArrayEquals(m.outputs().get(0), k[0], 1e-6, "SVMOutput " + attrs);
            assertArrayEquals(m.grads().get(0), k[1], 1e-6, "SVMOutput gradient " + attrs);
        }
        label[2] = 3;
        MxCompare.Run m = MxCompare.mxnet("softmax_cross_entropy", a(), List.of(s(5, 4), s(5)), List.of(x, label), null,
                List.of(new double[] {0.75}), Set.of(0), 1);
        double[][] k = run(op("softmax_cross_entropy", a()), s(5, 4), x, label, DType.FLOAT32, GradReq.WRITE, new double[] {0.75}, 1);
        assertArrayEquals(m.outShapes().get(0), s(1));
        assertArrayEquals(m.outputs().get(0), k[0], 1e-5, "softmax_cross_entropy");
        assertArrayEquals(m.grads().get(0), k[1], 1e-6, "softmax_cross_entropy gradient");
    }
}
