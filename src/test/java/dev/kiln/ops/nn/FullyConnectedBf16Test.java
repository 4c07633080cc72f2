package dev.kiln.ops.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * FullyConnected in bfloat16 (AVX512-BF16 pair dot products where the CPU has them, else float32 on
 * widened copies) against a float64 reference on the same bfloat16 values rounded once: forward,
 * the three gradients, grad_req add, odd input sizes (an unpaired last element) and row / column
 * counts that leave partial register blocks. Each output is within one bfloat16 unit of the
 * correctly rounded value (the float32 sums differ from float64 by far less than that).
 */
@ExtendWith(NoLeaks.class)
class FullyConnectedBf16Test {
    /** The value rounded to bfloat16 as Kiln rounds (through float32, then to nearest even). */
    static double bf16(double v) {
        int u = Float.floatToIntBits((float) v);
        u += 0x7fff + ((u >>> 16) & 1);
        return Float.intBitsToFloat(u & 0xffff0000);
    }

    static double[] rand(Random r, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = bf16(2 * r.nextDouble() - 1);
        }
        return v;
    }

    /**
     * |got - want| at most one bfloat16 unit of want (2^-7 relative) plus the float32 summation's
     * error, 2^-20 of the sum of the terms' magnitudes (it matters only where the terms cancel).
     */
    static void assertWithinOneUnit(double[] want, double[] mag, double[] got, String what) {
        assertEquals(want.length, got.length, what);
        int exact = 0;
        for (int i = 0; i < want.length; i++) {
            double tol = Math.abs(want[i]) * 0x1p-7 + mag[i] * 0x1p-20;
            assertTrue(Math.abs(got[i] - want[i]) <= tol, what + "[" + i + "]: " + got[i] + " vs " + want[i]);
            exact += got[i] == want[i] ? 1 : 0;
        }
        assertTrue(exact >= 0.95 * want.length, what + ": only " + exact + " of " + want.length + " correctly rounded");
    }

    @Test
    void forwardAndGradientsMatchTheReference() {
        for (int[] dims : new int[][] {{37, 301, 70}, {128, 784, 512}, {3, 5, 17}, {9, 64, 10}}) {
            int m = dims[0], d = dims[1], h = dims[2];
            Random r = new Random(m * 31L + d);
            double[] x = rand(r, m * d), w = rand(r, h * d), b = rand(r, h), gy = rand(r, m * h);
            Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("data"), h);
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("data", new long[] {m, d});
            shapes.put("fc_weight", new long[] {h, d});
            shapes.put("fc_bias", new long[] {h});
            Map<String, double[]> values = Map.of("data", x, "fc_weight", w, "fc_bias", b);

            double[] y = new double[m * h], dx = new double[m * d], dw = new double[h * d], db = new double[h];
            double[] my = new double[m * h], mdx = new double[m * d], mdw = new double[h * d], mdb = new double[h];
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < h; j++) {
                    double s = b[j], g = gy[i * h + j];
                    my[i * h + j] = Math.abs(b[j]);
                    for (int p = 0; p < d; p++) {
                        s += x[i * d + p] * w[j * d + p];
                        my[i * h + j] += Math.abs(x[i * d + p] * w[j * d + p]);
                        dw[j * d + p] += g * x[i * d + p];
                        mdw[j * d + p] += Math.abs(g * x[i * d + p]);
                        dx[i * d + p] += g * w[j * d + p];
                        mdx[i * d + p] += Math.abs(g * w[j * d + p]);
                    }
                    y[i * h + j] = bf16(s);
                    db[j] += g;
                    mdb[j] += Math.abs(g);
                }
            }
            String at = " (" + m + "x" + d + " -> " + h + ")";
            assertWithinOneUnit(y, my, ExecTesting.forward(fc, shapes, values, DType.BFLOAT16, null).v(0), "y" + at);

            Map<String, double[]> g = ExecTesting.grads(fc, shapes, values, List.of("data", "fc_weight", "fc_bias"), GradReq.WRITE,
                    1, DType.BFLOAT16, (k, s) -> gy, null);
            assertWithinOneUnit(round(dx), mdx, g.get("data"), "dx" + at);
            assertWithinOneUnit(round(dw), mdw, g.get("fc_weight"), "dw" + at);
            assertWithinOneUnit(round(db), mdb, g.get("fc_bias"), "db" + at);

            // grad_req add, two backward passes: round(round(g) + g) per element
            Map<String, double[]> g2 = ExecTesting.grads(fc, shapes, values, List.of("fc_weight"), GradReq.ADD, 2, DType.BFLOAT16,
                    (k, s) -> gy, null);
            double[] twice = new double[dw.length];
            for (int i = 0; i < dw.length; i++) {
                twice[i] = bf16(bf16(dw[i]) + dw[i]);
            }
            double[] mtwice = new double[dw.length];
            for (int i = 0; i < dw.length; i++) {
                mtwice[i] = 2 * mdw[i];
            }
            assertWithinOneUnit(twice, mtwice, g2.get("fc_weight"), "dw add" + at);
        }
    }

    static double[] round(double[] v) {
        double[] o = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            o[i] = bf16(v[i]);
        }
        return o;
    }
}
