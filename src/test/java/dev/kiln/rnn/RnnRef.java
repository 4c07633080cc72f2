package dev.kiln.rnn;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Plain-Java reference implementations of MXNet's cell equations (double precision, written from
 * the formulas, independent of the graph code) and helpers to run an unrolled graph.
 */
final class RnnRef {
    private RnnRef() {}

    static float[] random(Random r, int n, double scale) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            f[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return f;
    }

    static double sigmoid(double x) {
        return 1 / (1 + Math.exp(-x));
    }

    /** y[n][r] = sum_k W[r][k] x[n][k] + b[r]; W row-major (rows, cols). */
    static double[][] fc(double[][] x, float[] w, float[] b, int rows) {
        int cols = x[0].length;
        double[][] y = new double[x.length][rows];
        for (int n = 0; n < x.length; n++) {
            for (int r = 0; r < rows; r++) {
                double s = b[r];
                for (int k = 0; k < cols; k++) {
                    s += w[r * cols + k] * x[n][k];
                }
                y[n][r] = s;
            }
        }
        return y;
    }

    /** x[t] = rows of the NTC input (N, T, I) at time t. */
    static double[][][] steps(float[] data, int n, int t, int in) {
        double[][][] s = new double[t][n][in];
        for (int b = 0; b < n; b++) {
            for (int k = 0; k < t; k++) {
                for (int i = 0; i < in; i++) {
                    s[k][b][i] = data[(b * t + k) * in + i];
                }
            }
        }
        return s;
    }

    /** Result of a reference run: per-step outputs [T][N][H] and the final states. */
    record Run(double[][][] out, double[][][] states) {}

    static Run lstm(double[][][] x, int h, float[] iw, float[] ib, float[] hw, float[] hb) {
        int n = x[0].length;
        double[][] hPrev = new double[n][h];
        double[][] c = new double[n][h];
        double[][][] out = new double[x.length][][];
        for (int t = 0; t < x.length; t++) {
            double[][] gi = fc(x[t], iw, ib, 4 * h);
            double[][] gh = fc(hPrev, hw, hb, 4 * h);
            double[][] hn = new double[n][h];
            double[][] cn = new double[n][h];
            for (int b = 0; b < n; b++) {
                for (int k = 0; k < h; k++) {
                    double ig = sigmoid(gi[b][k] + gh[b][k]);
                    double fg = sigmoid(gi[b][h + k] + gh[b][h + k]);
                    double cc = Math.tanh(gi[b][2 * h + k] + gh[b][2 * h + k]);
                    double og = sigmoid(gi[b][3 * h + k] + gh[b][3 * h + k]);
                    cn[b][k] = fg * c[b][k] + ig * cc;
                    hn[b][k] = og * Math.tanh(cn[b][k]);
                }
            }
            hPrev = hn;
            c = cn;
            out[t] = hn;
        }
        return new Run(out, new double[][][] {hPrev, c});
    }

    static Run gru(double[][][] x, int h, float[] iw, float[] ib, float[] hw, float[] hb) {
        int n = x[0].length;
        double[][] hPrev = new double[n][h];
        double[][][] out = new double[x.length][][];
        for (int t = 0; t < x.length; t++) {
            double[][] gi = fc(x[t], iw, ib, 3 * h);
            double[][] gh = fc(hPrev, hw, hb, 3 * h);
            double[][] hn = new double[n][h];
            for (int b = 0; b < n; b++) {
                for (int k = 0; k < h; k++) {
                    double r = sigmoid(gi[b][k] + gh[b][k]);
                    double z = sigmoid(gi[b][h + k] + gh[b][h + k]);
                    double nn = Math.tanh(gi[b][2 * h + k] + r * gh[b][2 * h + k]);
                    hn[b][k] = (1 - z) * nn + z * hPrev[b][k];
                }
            }
            hPrev = hn;
            out[t] = hn;
        }
        return new Run(out, new double[][][] {hPrev});
    }

    static Run rnn(double[][][] x, int h, float[] iw, float[] ib, float[] hw, float[] hb, boolean relu) {
        int n = x[0].length;
        double[][] hPrev = new double[n][h];
        double[][][] out = new double[x.length][][];
        for (int t = 0; t < x.length; t++) {
            double[][] gi = fc(x[t], iw, ib, h);
            double[][] gh = fc(hPrev, hw, hb, h);
            double[][] hn = new double[n][h];
            for (int b = 0; b < n; b++) {
                for (int k = 0; k < h; k++) {
                    double s = gi[b][k] + gh[b][k];
                    hn[b][k] = relu ? Math.max(0, s) : Math.tanh(s);
                }
            }
            hPrev = hn;
            out[t] = hn;
        }
        return new Run(out, new double[][][] {hPrev});
    }

    /** Flattens per-step outputs [T][N][H] into NTC order. */
    static double[] ntc(double[][][] out) {
        int t = out.length;
        int n = out[0].length;
        int h = out[0][0].length;
        double[] f = new double[n * t * h];
        for (int b = 0; b < n; b++) {
            for (int k = 0; k < t; k++) {
                System.arraycopy(out[k][b], 0, f, (b * t + k) * h, h);
            }
        }
        return f;
    }

    /** Flattens per-step outputs [T][N][H] into TNC order. */
    static double[] tnc(double[][][] out) {
        int t = out.length;
        int n = out[0].length;
        int h = out[0][0].length;
        double[] f = new double[n * t * h];
        for (int k = 0; k < t; k++) {
            for (int b = 0; b < n; b++) {
                System.arraycopy(out[k][b], 0, f, (k * n + b) * h, h);
            }
        }
        return f;
    }

    static double[] flat(double[][] m) {
        double[] f = new double[m.length * m[0].length];
        for (int i = 0; i < m.length; i++) {
            System.arraycopy(m[i], 0, f, i * m[0].length, m[0].length);
        }
        return f;
    }

    /**
     * Binds {@code sym} with only the data shape given (everything else, including the zero begin
     * states' batch size, inferred), writes {@code values} into the named arguments, runs forward
     * and returns every output's values.
     */
    static List<float[]> forward(Symbol sym, Map<String, long[]> shapes, Map<String, float[]> values, boolean train) {
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : sym.listArguments()) {
            reqs.put(a, GradReq.NULL);
        }
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, Map.of(), reqs, new Executor.Options())) {
            for (Map.Entry<String, float[]> e : values.entrySet()) {
                NDArray a = ex.argDict().get(e.getKey());
                if (a == null) {
                    throw new AssertionError("no argument " + e.getKey() + " in " + sym.listArguments());
                }
                a.set(e.getValue());
            }
            ex.forward(train);
            return ex.outputs().stream().map(NDArray::toFloatArray).toList();
        }
    }

    static void assertClose(double[] want, float[] got, double tol, String what) {
        if (want.length != got.length) {
            throw new AssertionError(what + ": length " + got.length + ", expected " + want.length);
        }
        for (int i = 0; i < want.length; i++) {
            if (Math.abs(want[i] - got[i]) > tol) {
                throw new AssertionError(what + ": element " + i + " is " + got[i] + ", expected " + want[i]);
            }
        }
    }
}
