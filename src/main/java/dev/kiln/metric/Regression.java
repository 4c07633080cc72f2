package dev.kiln.metric;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.DoubleBinaryOperator;

/** The shared per-pair loop of {@link MAE}, {@link MSE} and {@link RMSE}. */
final class Regression {
    private Regression() {}

    /** The three formulas: the elementwise error (host function and operator) and the per-pair map. */
    enum Kind {
        MSE("square", false, (l, p) -> (l - p) * (l - p)),
        MAE("abs", false, (l, p) -> Math.abs(l - p)),
        RMSE("square", true, (l, p) -> (l - p) * (l - p));

        final String op;
        final boolean sqrt;
        final DoubleBinaryOperator f;

        Kind(String op, boolean sqrt, DoubleBinaryOperator f) {
            this.op = op;
            this.sqrt = sqrt;
            this.f = f;
        }
    }

    /**
     * For each pair: 1-D label/prediction reshaped to (N, 1); {@code v = mean(err(label, pred))}
     * over their numpy broadcast, {@code sqrt(v)} for RMSE; added with count 1. Predictions on a
     * GPU are reduced there (label uploaded in float64, prediction cast to float64).
     */
    static void update(EvalMetric m, List<NDArray> labels, List<NDArray> preds, Kind kind) {
        EvalMetric.checkLabelShapes(labels, preds);
        for (int p = 0; p < labels.size(); p++) {
            HostTensor label = HostTensor.of(labels.get(p));
            NDArray pred = preds.get(p);
            if (EvalMetric.reducesOnDevice(pred) && pred.size() > 0 && label.size() > 0) {
                long[] sa = asColumn(label.dims());
                long[] sb = asColumn(pred.shape().dims());
                broadcastShape(sa, sb);  // the numpy error, checked before anything runs
                int nd = Math.max(sa.length, sb.length);
                try (NDScope scope = NDScope.open()) {
                    // label [sa], pred [sb], both padded on the left to nd dims; err [broadcast]; v [1]
                    NDArray l = DeviceReduce.upload(label.values(), padded(sa, nd), pred.context());
                    NDArray q = DeviceReduce.cast(pred, DType.FLOAT64).reshape(padded(sb, nd));
                    NDArray err = DeviceReduce.op(kind.op, Map.of(), DeviceReduce.op("broadcast_sub", Map.of(), l, q));
                    NDArray v = err.mean();
                    m.accumulateOnDevice(kind.sqrt ? v.sqrt() : v, 1);
                }
            } else {
                double v = broadcastMean(label, HostTensor.of(pred), kind.f);
                m.accumulate(kind.sqrt ? Math.sqrt(v) : v, 1);
            }
        }
    }

    private static long[] asColumn(long[] s) {
        return s.length == 1 ? new long[] {s[0], 1} : s;
    }

    private static long[] padded(long[] s, int nd) {
        long[] out = new long[nd];
        Arrays.fill(out, 1);
        System.arraycopy(s, 0, out, nd - s.length, s.length);
        return out;
    }

    /** numpy's broadcast of two shapes, or its error. */
    private static long[] broadcastShape(long[] sa, long[] sb) {
        int nd = Math.max(sa.length, sb.length);
        long[] out = new long[nd];
        for (int i = nd - 1; i >= 0; i--) {
            int ia = i - (nd - sa.length);
            int ib = i - (nd - sb.length);
            long da = ia >= 0 ? sa[ia] : 1;
            long db = ib >= 0 ? sb[ib] : 1;
            if (da != db && da != 1 && db != 1) {
                throw new IllegalArgumentException("operands could not be broadcast together with shapes "
                        + HostTensor.pyShape(sa) + " " + HostTensor.pyShape(sb));
            }
            out[i] = da == 0 || db == 0 ? 0 : Math.max(da, db);
        }
        return out;
    }

    /** {@code mean(f(a, b))} over the numpy broadcast of a and b (1-D operands as columns); NaN if empty. */
    static double broadcastMean(HostTensor a, HostTensor b, DoubleBinaryOperator f) {
        long[] sa = asColumn(a.dims());
        long[] sb = asColumn(b.dims());
        long[] out = broadcastShape(sa, sb);
        int nd = out.length;
        long[] strideA = new long[nd];
        long[] strideB = new long[nd];
        long ra = 1;
        long rb = 1;
        for (int i = nd - 1; i >= 0; i--) {
            int ia = i - (nd - sa.length);
            int ib = i - (nd - sb.length);
            long da = ia >= 0 ? sa[ia] : 1;
            long db = ib >= 0 ? sb[ib] : 1;
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
