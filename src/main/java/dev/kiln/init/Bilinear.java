package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

/**
 * Bilinear up-sampling kernel for deconvolution weights (MXNet's {@code mx.init.Bilinear},
 * registered as {@code bilinear}; UpSampling(bilinear) names it in its weight's {@code __init__}).
 * For a weight (N, C, H, W): {@code f = ceil(W/2)}, {@code c = (2f - 1 - f mod 2) / (2f)}, and
 * the element in column x, row y is {@code (1 - |x/f - c|)·(1 - |y/f - c|)} for every (n, c).
 * A 1×1×4×4 weight becomes the outer product of [1/4, 3/4, 3/4, 1/4]. As in MXNet, W is the
 * fourth and H the third dimension; values are computed in double and rounded to float32.
 * Immutable; thread-safe; never owns the arrays it writes.
 */
public final class Bilinear extends Initializer {
    /** Creates the initializer. */
    public Bilinear() {
        super();
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        fill(desc, arr);
    }

    static void fill(InitDesc desc, NDArray arr) {
        long[] shape = arr.shape().dims();
        if (shape.length < 4) {
            throw new IllegalArgumentException("Bilinear initializer needs a 4-D weight (N, C, H, W) for " + desc.name()
                    + ", got shape " + Shapes.py(shape));
        }
        int n = Fill.javaSize(arr, "parameter " + desc.name());
        long w = shape[3];
        long h = shape[2];
        double f = Math.ceil(w / 2.0);
        double c = (2 * f - 1 - f % 2) / (2.0 * f);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            long x = i % w;
            long y = (i / w) % h;
            v[i] = (float) ((1 - Math.abs(x / f - c)) * (1 - Math.abs(y / f - c)));
        }
        Fill.values(arr, v);
    }
}
