package dev.kiln.init;

import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static dev.kiln.init.InitTesting.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Orthogonal initializer and the one-sided Jacobi SVD behind it. */
@ExtendWith(NoLeaks.class)
class OrthogonalTest {

    /** Max |G - scale²·I| where G = W·Wᵀ (rows) or Wᵀ·W (columns) of a row-major r×c matrix. */
    private static double gramError(double[] w, int r, int c, boolean rows, double scale) {
        int k = rows ? r : c;
        double worst = 0;
        for (int i = 0; i < k; i++) {
            for (int j = 0; j < k; j++) {
                double s = 0;
                int len = rows ? c : r;
                for (int t = 0; t < len; t++) {
                    s += rows ? w[i * c + t] * w[j * c + t] : w[t * c + i] * w[t * c + j];
                }
                worst = Math.max(worst, Math.abs(s - (i == j ? scale * scale : 0)));
            }
        }
        return worst;
    }

    @ParameterizedTest(name = "{0}x{1} {2} scale {3}")
    @CsvSource({
        "20, 50, uniform, 1.414", "50, 20, uniform, 1.414", "30, 30, normal, 1.0", "64, 7, normal, 2",
        "1, 9, uniform, 1.0", "9, 1, uniform, 1.0",
    })
    void weightsAreOrthonormalTimesScale(int nout, int nin, String rand, double scale) {
        double[] w = run(new Orthogonal(scale, rand), "fc_weight", nout, nin);
        // nout < nin: v is taken, rows orthonormal; nout >= nin: u, columns orthonormal
        boolean rows = nout < nin;
        double err = gramError(w, nout, nin, rows, scale);
        assertTrue(err < 1e-5 * scale * scale, "orthonormality error " + err);
    }

    @Test
    void higherRankWeightsAreFlattenedAfterTheFirstAxis() {
        // (8, 3, 2, 2): nout 8 < nin 12, so the 8 rows of length 12 are orthonormal
        double[] w = run(new Orthogonal(), "conv_weight", 8, 3, 2, 2);
        assertTrue(gramError(w, 8, 12, true, 1.414) < 1e-5);
        // (16, 2, 2, 2): 16 >= 8, columns orthonormal
        double[] v = run(new Orthogonal(1.0, "normal"), "conv_weight", 16, 2, 2, 2);
        assertTrue(gramError(v, 16, 8, false, 1.0) < 1e-5);
    }

    @Test
    void svdFactorReconstructsTheMatrix() {
        // A = U S V^T: check that the factor we keep spans A's row/column space: for tall A,
        // U U^T A = A; for wide A, A V V^T = A (V^T is what Orthogonal keeps)
        SplittableRandom r = new SplittableRandom(1);
        for (int[] mn : new int[][] {{12, 5}, {5, 12}, {7, 7}}) {
            int m = mn[0];
            int n = mn[1];
            double[] a = new double[m * n];
            for (int i = 0; i < a.length; i++) {
                a[i] = r.nextDouble(-1, 1);
            }
            double[] f = Svd.orthonormalFactor(a, m, n);
            double worst = 0;
            if (m >= n) {
                // P = U U^T (m x m); P A = A
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int k = 0; k < m; k++) {
                            double p = 0;
                            for (int t = 0; t < n; t++) {
                                p += f[i * n + t] * f[k * n + t];
                            }
                            s += p * a[k * n + j];
                        }
                        worst = Math.max(worst, Math.abs(s - a[i * n + j]));
                    }
                }
            } else {
                // P = V V^T (n x n) with V^T = f (m x n); A P = A
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int k = 0; k < n; k++) {
                            double p = 0;
                            for (int t = 0; t < m; t++) {
                                p += f[t * n + k] * f[t * n + j];
                            }
                            s += a[i * n + k] * p;
                        }
                        worst = Math.max(worst, Math.abs(s - a[i * n + j]));
                    }
                }
            }
            assertTrue(worst < 1e-12, m + "x" + n + ": reconstruction error " + worst);
        }
    }

    @Test
    void singularValuesOfAKnownMatrix() {
        // [[3, 0], [4, 5]] has singular values sqrt(45) and sqrt(5)
        double[][] cols = {{3, 4}, {0, 5}};
        double[] s = Svd.orthogonalizeColumns(cols, 2);
        double hi = Math.max(s[0], s[1]);
        double lo = Math.min(s[0], s[1]);
        assertEquals(Math.sqrt(45), hi, 1e-12);
        assertEquals(Math.sqrt(5), lo, 1e-12);
        // the first left singular vector (largest sigma) comes first: for A = diag(1, 3), it is e_2
        double[] f = Svd.orthonormalFactor(new double[] {1, 0, 0, 3}, 2, 2);
        assertEquals(1.0, Math.abs(f[1]), 1e-15);
        assertEquals(1.0, Math.abs(f[2]), 1e-15);
    }

    @Test
    void rankDeficientInputIsCompletedToAnOrthonormalSet() {
        // rank 1: every row equal
        double[] a = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3};
        double[] f = Svd.orthonormalFactor(a, 4, 3);
        assertTrue(gramError(f, 4, 3, false, 1.0) < 1e-12);
        double[] z = Svd.orthonormalFactor(new double[6], 2, 3);
        assertTrue(gramError(z, 2, 3, true, 1.0) < 1e-12);
    }

    @Test
    void dumpsAndErrors() {
        assertEquals("[\"orthogonal\", {\"scale\": 1.414, \"rand_type\": \"uniform\"}]", new Orthogonal().dumps());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Orthogonal(1, "gaussian"));
        assertTrue(e.getMessage().contains("Unknown random type"), e.getMessage());
    }
}
