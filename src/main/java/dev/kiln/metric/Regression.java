package dev.kiln.metric;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;

/** The shared per-pair loop of {@link MAE}, {@link MSE} and {@link RMSE}. */
final class Regression {
    private Regression() {}

    /**
     * For each pair: 1-D label/prediction reshaped to (N, 1); {@code mean(f(label, pred))} over
     * their numpy broadcast; the caller's {@code post} maps that mean to the contribution.
     */
    static void update(EvalMetric m, List<NDArray> labels, List<NDArray> preds, DoubleBinaryOperator f,
                       DoubleUnaryOperator post) {
        EvalMetric.forEachPair(labels, preds, (label, pred) -> {
            m.accumulate(post.applyAsDouble(broadcastMean(label, pred, f)), 1);
        });
    }

    private static long[] asColumn(long[] s) {
        return s.length == 1 ? new long[] {s[0], 1} : s;
    }

    /** {@code mean(f(a, b))} over the numpy broadcast of a and b (1-D operands as columns); NaN if empty. */
    static double broadcastMean(HostTensor a, HostTensor b, DoubleBinaryOperator f) {
        long[] sa = asColumn(a.dims());
        long[] sb = asColumn(b.dims());
        int nd = Math.max(sa.length, sb.length);
        long[] out = new long[nd];
        long[] strideA = new long[nd];
        long[] strideB = new long[nd];
        long ra = 1;
        long rb = 1;
        for (int i = nd - 1; i >= 0; i--) {
            int ia = i - (nd - sa.length);
            int ib = i - (nd - sb.length);
            long da = ia >= 0 ? sa[ia] : 1;
            long db = ib >= 0 ? sb[ib] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException("operands could not be broadcast together with shapes "
                        + HostTensor.pyShape(sa) + " " + HostTensor.pyShape(sb));
            }
            out[i] = Math.max(da, db);
            if (da == 0 || db == 0) {
                out[i] = 0;
            }
            strideA[i] = da == 1 ? 0 : ra;
            strideB[i] = db == 1 ? 0 : rb;
            ra *= da;
            rb *= db;
        }
        long total = 1;
        for (long d : out) {
            total *= d;
        }
        if (total == 0) {
            return Double.NaN; // numpy: mean of an empty array
        }
        double[] va = a.values();
        double[] vb = b.values();
        long[] idx = new long[nd];
        long offA = 0;
        long offB = 0;
        double sum = 0;
        for (long n = 0; n < total; n++) {
            sum += f.applyAsDouble(va[(int) offA], vb[(int) offB]);
            // odometer increment over the output shape
            for (int i = nd - 1; i >= 0; i--) {
                idx[i]++;
                offA += strideA[i];
                offB += strideB[i];
                if (idx[i] < out[i]) {
                    break;
                }
                offA -= strideA[i] * idx[i];
                offB -= strideB[i] * idx[i];
                idx[i] = 0;
            }
        }
        return sum / total;
    }
}
