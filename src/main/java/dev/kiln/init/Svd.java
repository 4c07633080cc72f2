package dev.kiln.init;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * Thin singular value decomposition in double precision by one-sided (Hestenes) Jacobi rotations,
 * enough for {@link Orthogonal}. Package-private; stateless.
 *
 * <p>For a tall p×q matrix B (p ≥ q) the columns are rotated pairwise until every pair is
 * orthogonal to working precision; then B·V = U·S, the column norms are the singular values and
 * the normalised columns are U. A wide matrix is handled through its transpose. Cost per sweep
 * ~3·p·q² flops; random matrices take 10 to 15 sweeps (about 0.1 s of CPU for 128×784, 1 s for
 * 512×784, 2.5 s for 784×784).
 */
final class Svd {
    private static final int MAX_SWEEPS = 60;

    private Svd() {}

    /**
     * numpy's {@code u, s, vh = svd(a, full_matrices=False)} followed by MXNet Orthogonal's choice:
     * {@code u} (m×n, orthonormal columns) when {@code m >= n}, else {@code vh} (m×n, orthonormal
     * rows). Singular vectors are ordered by decreasing singular value, as LAPACK; their signs are
     * arbitrary. Rank-deficient inputs are completed to an orthonormal set.
     *
     * @param a row-major m×n values (not modified)
     * @param m rows
     * @param n columns
     * @return row-major m×n
     */
    static double[] orthonormalFactor(double[] a, int m, int n) {
        if ((long) m * n != a.length) {
            throw new IllegalArgumentException("matrix " + m + "x" + n + " needs " + (long) m * n + " values, got " + a.length);
        }
        if (m == 0 || n == 0) {
            return new double[0];
        }
        boolean tall = m >= n;
        int p = tall ? m : n;
        int q = tall ? n : m;
        // columns of B = A (tall) or A^T (wide), each contiguous
        double[][] col = new double[q][p];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                if (tall) {
                    col[j][i] = a[i * n + j];
                } else {
                    col[i][j] = a[i * n + j];
                }
            }
        }
        double[] sigma = orthogonalizeColumns(col, p);
        Integer[] order = IntStream.range(0, q).boxed().toArray(Integer[]::new);
        Arrays.sort(order, Comparator.comparingDouble((Integer j) -> -sigma[j]));
        double[][] u = new double[q][];
        double smax = sigma[order[0]];
        double tiny = Math.max(smax * p * 1e-15, Double.MIN_NORMAL);
        int accepted = 0;
        for (int r = 0; r < q; r++) {
            int j = order[r];
            if (sigma[j] > tiny) {
                double[] c = col[j];
                double inv = 1.0 / sigma[j];
                for (int k = 0; k < p; k++) {
                    c[k] *= inv;
                }
                u[r] = c;
                accepted++;
            }
        }
        if (accepted < q) {
            complete(u, p);
        }
        double[] res = new double[m * n];
        for (int r = 0; r < q; r++) {
            double[] c = u[r];
            for (int k = 0; k < p; k++) {
                if (tall) {
                    res[k * n + r] = c[k];
                } else {
                    res[r * n + k] = c[k];
                }
            }
        }
        return res;
    }

    /** Rotates the columns in place until pairwise orthogonal; returns their norms (the singular values). */
    static double[] orthogonalizeColumns(double[][] col, int p) {
        int q = col.length;
        double[] norm2 = new double[q];
        for (int j = 0; j < q; j++) {
            norm2[j] = dot(col[j], col[j], p);
        }
        double tol = Math.max(p, 1) * 2.220446049250313e-16;
        for (int sweep = 0; sweep < MAX_SWEEPS; sweep++) {
            int rotations = 0;
            for (int i = 0; i < q - 1; i++) {
                double[] ci = col[i];
                for (int j = i + 1; j < q; j++) {
                    double alpha = norm2[i];
                    double beta = norm2[j];
                    if (alpha == 0 || beta == 0) {
                        continue;
                    }
                    double[] cj = col[j];
                    double gamma = dot(ci, cj, p);
                    if (Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) {
                        continue;
                    }
                    rotations++;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = (zeta >= 0 ? 1.0 : -1.0) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
                    double c = 1.0 / Math.sqrt(1 + t * t);
                    double s = c * t;
                    for (int k = 0; k < p; k++) {
                        double x = ci[k];
                        double y = cj[k];
                        ci[k] = c * x - s * y;
                        cj[k] = s * x + c * y;
                    }
                    norm2[i] = alpha - t * gamma;
                    norm2[j] = beta + t * gamma;
                }
            }
            for (int j = 0; j < q; j++) {
                norm2[j] = dot(col[j], col[j], p);
            }
            if (rotations == 0) {
                break;
            }
        }
        double[] sigma = new double[q];
        for (int j = 0; j < q; j++) {
            sigma[j] = Math.sqrt(norm2[j]);
        }
        return sigma;
    }

    /** Fills the null slots of {@code u} with unit vectors orthogonal to all others (Gram-Schmidt on e_k). */
    private static void complete(double[][] u, int p) {
        int next = 0;
        for (int r = 0; r < u.length; r++) {
            if (u[r] != null) {
                continue;
            }
            while (next < p) {
                double[] v = new double[p];
                v[next++] = 1.0;
                for (int pass = 0; pass < 2; pass++) {
                    for (double[] w : u) {
                        if (w != null) {
                            double d = dot(v, w, p);
                            for (int k = 0; k < p; k++) {
                                v[k] -= d * w[k];
                            }
                        }
                    }
                }
                double nv = Math.sqrt(dot(v, v, p));
                if (nv > 0.5) {
                    for (int k = 0; k < p; k++) {
                        v[k] /= nv;
                    }
                    u[r] = v;
                    break;
                }
            }
        }
    }

    private static double dot(double[] x, double[] y, int p) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int k = 0;
        for (; k + 3 < p; k += 4) {
            s0 += x[k] * y[k];
            s1 += x[k + 1] * y[k + 1];
            s2 += x[k + 2] * y[k + 2];
            s3 += x[k + 3] * y[k + 3];
        }
        for (; k < p; k++) {
            s0 += x[k] * y[k];
        }
        return (s0 + s1) + (s2 + s3);
    }
}
