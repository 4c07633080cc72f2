package dev.kiln.ops.index;

import static dev.kiln.ops.index.NdTesting.in;
import static dev.kiln.ops.index.NdTesting.values;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.mxnet.engine.MxNDManager;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * khatri_rao (the column-wise Kronecker product) against a Java reference, Kiln's gradient (MXNet
 * registers none) against its definition and numeric gradients, grad_req=add, a large case, the
 * errors and MXNet 1.9.1's forward.
 */
@ExtendWith(NoLeaks.class)
class KhatriRaoTest {

    static Symbol kr(int n) {
        Symbol[] in = new Symbol[n];
        for (int i = 0; i < n; i++) {
            in[i] = Symbol.variable("m" + i);
        }
        return Symbol.create("khatri_rao", "op", a("num_args", "" + n), null, in);
    }

    /** out[(i_0, ..., i_{n-1}), c] = prod_j A_j[i_j, c], the first input slowest. */
    static double[] ref(List<double[]> mats, long[] rows, int k) {
        int total = 1;
        for (long r : rows) {
            total *= (int) r;
        }
        double[] out = new double[total * k];
        for (int row = 0; row < total; row++) {
            for (int c = 0; c < k; c++) {
                int rem = row;
                double p = 1;
                for (int j = mats.size() - 1; j >= 0; j--) {
                    p *= mats.get(j)[(int) (rem % rows[j]) * k + c];
                    rem /= (int) rows[j];
                }
                out[row * k + c] = p;
            }
        }
        return out;
    }

    /** dA_j = the sum over output rows of g * the other factors. */
    static double[] gradRef(List<double[]> mats, long[] rows, int k, double[] g, int j) {
        int total = g.length / k;
        double[] d = new double[(int) rows[j] * k];
        for (int row = 0; row < total; row++) {
            for (int c = 0; c < k; c++) {
                int rem = row, ij = 0;
                double p = g[row * k + c];
                for (int l = mats.size() - 1; l >= 0; l--) {
                    int il = (int) (rem % rows[l]);
                    rem /= (int) rows[l];
                    if (l == j) {
                        ij = il;
                    } else {
                        p *= mats.get(l)[il * k + c];
                    }
                }
                d[ij * k + c] += p;
            }
        }
        return d;
    }

    static NdTesting.Result run(long[] rows, int k, List<double[]> mats, DType t, GradReq req, double[] head, int passes) {
        Map<String, NdTesting.In> ins = new LinkedHashMap<>();
        for (int j = 0; j < rows.length; j++) {
            ins.put("m" + j, in(s(rows[j], k), t, mats.get(j), req));
        }
        return NdTesting.run(kr(rows.length), ins, head == null ? null : List.of(head), passes);
    }

    @Test
    void forwardGradientAndAdd() {
        for (long[] rows : new long[][] {s(3), s(2, 3), s(3, 1, 4), s(2, 2, 2, 3)}) {
            int k = 5;
            List<double[]> mats = new ArrayList<>();
            for (int j = 0; j < rows.length; j++) {
                mats.add(values((int) rows[j] * k, 10 + j));
            }
            double[] out = ref(mats, rows, k);
            double[] head = values(out.length, 3);
            for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
                NdTesting.Result r = run(rows, k, mats, t, GradReq.WRITE, head, 1);
                assertArrayEquals(s(out.length / k, k), r.shapes().get(0));
                assertArrayEquals(out, r.out(0), 1e-6, "khatri_rao " + java.util.Arrays.toString(rows) + " " + t);
                NdTesting.Result add = run(rows, k, mats, t, GradReq.ADD, head, 2);
                for (int j = 0; j < rows.length; j++) {
                    double[] g = gradRef(mats, rows, k, head, j);
                    assertArrayEquals(g, r.grads().get("m" + j), 1e-6, "d m" + j + " " + t);
                    for (int i = 0; i < g.length; i++) {
                        g[i] *= 2;
                    }
                    assertArrayEquals(g, add.grads().get("m" + j), 2e-6, "grad_req=add d m" + j + " " + t);
                }
            }
        }
    }

    @Test
    void numericGradientAndLargeCase() {
        GradCheck.check(kr(3), new GradCheck.Inputs().random("m0", s(2, 3), -1, 1, 1).random("m1", s(3, 3), -1, 1, 2)
                .random("m2", s(2, 3), -1, 1, 3), List.of("m0", "m1", "m2"), 1e-5, 1e-6, 1e-8);
        long[] rows = s(40, 30, 20);
        List<double[]> mats = List.of(values(40 * 8, 4), values(30 * 8, 5), values(20 * 8, 6));
        NdTesting.Result r = run(rows, 8, mats, DType.FLOAT32, null, null, 0);
        assertArrayEquals(ref(mats, rows, 8), r.out(0), 1e-6);
    }

    @Test
    void errors() {
        ExecTesting.assertInferFails(kr(2), Map.of("m0", s(2, 3), "m1", s(4, 5)), "another number of columns");
        ExecTesting.assertInferFails(kr(2), Map.of("m0", s(2, 3, 1), "m1", s(4, 3)), "must be a matrix");
    }

    @Test
    void againstMxnet() {
        MxOracle.assumeAvailable();
        long[] rows = s(2, 3, 2);
        List<double[]> mats = List.of(values(8, 7), values(12, 8), values(8, 9));
        float[] expected;
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray[] in = new ai.djl.ndarray.NDArray[3];
            for (int j = 0; j < 3; j++) {
                in[j] = MxOracle.create(m, OpTesting.toFloat(mats.get(j)), rows[j], 4);
            }
            expected = MxOracle.invoke(m, "khatri_rao", a("num_args", "3"), in).get(0).toFloatArray();
        }
        assertArrayEquals(OpTesting.toDouble(expected), run(rows, 4, mats, DType.FLOAT32, null, null, 0).out(0), 1e-6);
    }
}
