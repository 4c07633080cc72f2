package dev.kiln.ops.pool;

import static dev.kiln.ops.pool.ImageTesting.BOTH;
import static dev.kiln.ops.pool.ImageTesting.assertClose;
import static dev.kiln.ops.pool.ImageTesting.rand;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * _contrib_AdaptiveAvgPooling2D: forward and backward against an independent Java reference
 * (MXNet's windows floor(i*H/oh) .. ceil((i+1)*H/oh), divided in float), every output_size form,
 * overlapping and upsampling windows, float64 numeric gradients, grad_req=add, a large case, the
 * real MXNet, and errors.
 */
@ExtendWith(NoLeaks.class)
class AdaptiveAvgPooling2DTest {
    static final String OP = "_contrib_AdaptiveAvgPooling2D";

    static int start(int o, int out, int in) {
        return (int) Math.floor((float) (o * in) / (float) out);
    }

    static int end(int o, int out, int in) {
        return (int) Math.ceil((float) ((o + 1) * in) / (float) out);
    }

    static double[] ref(double[] x, int planes, int h, int w, int oh, int ow) {
        double[] y = new double[planes * oh * ow];
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < oh; i++) {
                for (int j = 0; j < ow; j++) {
                    double sum = 0;
                    int n = 0;
                    for (int r = start(i, oh, h); r < end(i, oh, h); r++) {
                        for (int c = start(j, ow, w); c < end(j, ow, w); c++) {
                            sum += x[(p * h + r) * w + c];
                            n++;
                        }
                    }
                    y[(p * oh + i) * ow + j] = sum / n;
                }
            }
        }
        return y;
    }

    static double[] refGrad(double[] dy, int planes, int h, int w, int oh, int ow) {
        double[] dx = new double[planes * h * w];
        for (int p = 0; p < planes; p++) {
            for (int i = 0; i < oh; i++) {
                for (int j = 0; j < ow; j++) {
                    int r0 = start(i, oh, h);
                    int r1 = end(i, oh, h);
                    int c0 = start(j, ow, w);
                    int c1 = end(j, ow, w);
                    double g = dy[(p * oh + i) * ow + j] / ((r1 - r0) * (c1 - c0));
                    for (int r = r0; r < r1; r++) {
                        for (int c = c0; c < c1; c++) {
                            dx[(p * h + r) * w + c] += g;
                        }
                    }
                }
            }
        }
        return dx;
    }

    static void check(String outputSize, long[] data, int oh, int ow, long seed) {
        Map<String, String> attrs = outputSize == null ? a() : a("output_size", outputSize);
        int planes = (int) (data[0] * data[1]);
        Symbol sym = ImageTesting.op(OP, attrs, "data");
        double[] x = rand(data, -2, 2, seed);
        double[] head = rand(s(data[0], data[1], oh, ow), -1, 1, seed + 1);
        Map<String, long[]> sh = shapes("data", data);
        Map<String, double[]> vals = Map.of("data", x);
        assertArrayEquals(s(data[0], data[1], oh, ow), sym.inferShape(sh).outShapes().get(0), attrs.toString());
        for (DType t : BOTH) {
            assertClose(ref(x, planes, (int) data[2], (int) data[3], oh, ow), ImageTesting.forward(sym, sh, vals, t), t,
                    attrs + " forward");
            assertClose(refGrad(head, planes, (int) data[2], (int) data[3], oh, ow),
                    ImageTesting.grads(sym, sh, vals, List.of("data"), GradReq.WRITE, 1, t, head).get("data"), t,
                    attrs + " backward");
        }
    }

    @Test
    void outputSizeForms() {
        check(null, s(2, 3, 5, 4), 1, 1, 1);             // default (): global average
        check("()", s(2, 3, 5, 4), 1, 1, 2);
        check("3", s(2, 3, 7, 9), 3, 3, 3);              // one int: square
        check("(4,)", s(1, 2, 8, 8), 4, 4, 4);           // divisible: plain 2x2 average pooling
        check("(3, 2)", s(2, 2, 7, 5), 3, 2, 5);         // overlapping windows (7 % 3 != 0)
        check("(5, 7)", s(1, 2, 3, 4), 5, 7, 6);         // larger than the input: windows of 1 or 2
        check("(6, 6)", s(1, 1, 6, 6), 6, 6, 7);         // identity
        check("(1, 4)", s(2, 2, 3, 9), 1, 4, 8);
        check("(0, 3)", s(2, 2, 3, 9), 0, 3, 9);         // empty output (as MXNet): the data gradient is 0
    }

    @Test
    void numericGradients() {
        for (String os : List.of("(3, 2)", "(4, 5)", "1")) {
            Symbol sym = ImageTesting.op(OP, a("output_size", os), "data");
            ImageTesting.gradCheck(sym, shapes("data", s(2, 2, 5, 4)), Map.of("data", rand(s(2, 2, 5, 4), -1, 1, 10)),
                    List.of("data"));
        }
    }

    @Test
    void gradReqAddAccumulates() {
        Symbol sym = ImageTesting.op(OP, a("output_size", "(3, 4)"), "data");
        ImageTesting.assertAddAccumulates(sym, shapes("data", s(2, 3, 7, 6)), Map.of("data", rand(s(2, 3, 7, 6), -1, 1, 20)),
                List.of("data"), rand(s(2, 3, 3, 4), -1, 1, 21));
    }

    @Test
    void largeThreadedCase() {
        check("(7, 7)", s(8, 64, 30, 33), 7, 7, 30);
        check("(45, 40)", s(4, 32, 30, 33), 45, 40, 31);
    }

    @Test
    void matchesMxnet() {
        for (String os : List.of("()", "1", "(3,)", "(3, 2)", "(5, 7)", "(2, 4)")) {
            ImageTesting.oracle(OP, a("output_size", os), new double[][] {rand(s(2, 3, 7, 5), -2, 2, 40)}, s(2, 3, 7, 5));
        }
        ImageTesting.oracleGrad(OP, a("output_size", "(3, 2)"), new double[][] {rand(s(2, 2, 7, 5), -2, 2, 41)},
                rand(s(2, 2, 3, 2), -1, 1, 42), Set.of(0), s(2, 2, 7, 5));
        ImageTesting.oracleGrad(OP, a("output_size", "(5, 6)"), new double[][] {rand(s(1, 2, 3, 4), -2, 2, 43)},
                rand(s(1, 2, 5, 6), -1, 1, 44), Set.of(0), s(1, 2, 3, 4));
    }

    @Test
    void symbolFactory() {
        Symbol p = Symbol.adaptiveAvgPooling2D("p", Symbol.variable("x"), 3, 2);
        assertArrayEquals(s(2, 4, 3, 2), p.inferShape(Map.of("x", s(2, 4, 9, 9))).outShapes().get(0));
        Symbol g = Symbol.adaptiveAvgPooling2D("g", Symbol.variable("x"));
        assertArrayEquals(s(2, 4, 1, 1), g.inferShape(Map.of("x", s(2, 4, 9, 9))).outShapes().get(0));
    }

    @Test
    void errors() {
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("output_size", "2"), "data"), shapes("data", s(2, 3, 4)), "4D", "(2,3,4)");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("output_size", "(-1, 2)"), "data"), shapes("data", s(1, 1, 4, 4)),
                "output_size=(-1,2)", "negative");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("output_size", "(-2,)"), "data"), shapes("data", s(1, 1, 4, 4)),
                "negative");
        ExecTesting.assertInferFails(ImageTesting.op(OP, a("output_size", "(2, 2, 2)"), "data"), shapes("data", s(1, 1, 4, 4)),
                "output_size=(2,2,2)", "(height, width)");
        OpTesting.assertThrowsMessage(() -> ImageTesting.op(OP, a("output_size", "(2, 2)", "kernel", "(2, 2)"), "data")
                .inferShape(shapes("data", s(1, 1, 4, 4))), "kernel");
    }
}
