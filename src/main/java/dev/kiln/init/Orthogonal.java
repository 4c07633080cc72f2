package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Orthogonal initialisation (Saxe et al. 2013; MXNet's {@code mx.init.Orthogonal}, registered as
 * {@code orthogonal}): for a weight with {@code nout = shape[0]} rows and {@code nin =
 * prod(shape[1:])} columns, draws an nout×nin matrix from U(-1, 1) ({@code "uniform"}) or N(0, 1)
 * ({@code "normal"}), takes its thin SVD {@code u·s·vᵀ} (computed in double precision in Java),
 * keeps {@code u} when it has the matrix's shape (nout ≥ nin: orthonormal columns) and {@code
 * vᵀ} otherwise (orthonormal rows), multiplies by {@code scale} and reshapes. Defaults {@code
 * (1.414, "uniform")}. The SVD is a one-sided Jacobi iteration: about 1 s of CPU for a 512×784
 * weight, growing with the larger dimension times the square of the smaller.
 *
 * <p>Immutable; thread-safe; never owns the arrays it writes.
 */
public final class Orthogonal extends Initializer {
    private final double scale;
    private final String randType;

    /** {@code Orthogonal(1.414, "uniform")}. */
    public Orthogonal() {
        this(1.414, "uniform");
    }

    /**
     * Creates the initializer.
     *
     * @param scale the factor applied to the orthonormal matrix (a Python int or float for {@link #dumps()})
     * @param randType {@code "uniform"} or {@code "normal"}
     * @throws IllegalArgumentException for another rand_type or a null or non-finite scale (MXNet
     *     fails only when the initializer is used)
     */
    public Orthogonal(Number scale, String randType) {
        super(kw(scale, randType));
        if (scale == null || !Double.isFinite(scale.doubleValue())) {
            throw new IllegalArgumentException("Orthogonal: scale must be a finite number, got " + scale);
        }
        if (!"uniform".equals(randType) && !"normal".equals(randType)) {
            throw new IllegalArgumentException("Orthogonal: Unknown random type: " + randType + " (expected \"uniform\" or \"normal\")");
        }
        this.scale = scale.doubleValue();
        this.randType = randType;
    }

    private static Map<String, Object> kw(Number scale, String randType) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("scale", scale);
        m.put("rand_type", randType);
        return m;
    }

    static Orthogonal fromKwargs(Map<String, Object> kwargs) {
        Kwargs k = new Kwargs("orthogonal", kwargs);
        Number scale = k.number("scale", 1.414);
        String rand = k.string("rand_type", "uniform");
        k.done();
        return new Orthogonal(scale, rand);
    }

    /** @return the scale */
    public double scale() {
        return scale;
    }

    /** @return {@code "uniform"} or {@code "normal"} */
    public String randType() {
        return randType;
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        long[] shape = arr.shape().dims();
        if (shape.length < 1) {
            throw new IllegalArgumentException("Orthogonal: parameter " + desc.name() + " is a scalar (shape ())");
        }
        int n = Fill.javaSize(arr, "parameter " + desc.name());
        int nout = (int) shape[0];
        int nin = nout == 0 ? 0 : n / nout;
        double[] tmp = "uniform".equals(randType) ? Fill.uniformDoubles(n, -1.0, 1.0) : Fill.normalDoubles(n, 0.0, 1.0);
        double[] res = Svd.orthonormalFactor(tmp, nout, nin);
        for (int i = 0; i < res.length; i++) {
            res[i] *= scale;
        }
        Fill.values(arr, res);
    }
}
