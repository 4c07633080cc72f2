package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * LSTM bias (MXNet's {@code mx.init.LSTMBias}, registered as {@code lstmbias}): all zeros except
 * the forget gate, the second of the four gate blocks — rows {@code [H, 2H)} with {@code H =
 * floor(rows/4)} — which get {@code forget_bias} (default 1.0). Immutable; thread-safe; never
 * owns the arrays it writes.
 */
public final class LSTMBias extends Initializer {
    private final double forgetBias;

    /** {@code LSTMBias(forget_bias=1.0)}. */
    public LSTMBias() {
        this(1.0);
    }

    /**
     * Creates the initializer.
     *
     * @param forgetBias the forget-gate bias (a Python int or float for {@link #dumps()})
     * @throws IllegalArgumentException if null
     */
    public LSTMBias(Number forgetBias) {
        super(kw(forgetBias));
        this.forgetBias = forgetBias.doubleValue();
    }

    private static Map<String, Object> kw(Number forgetBias) {
        if (forgetBias == null) {
            throw new IllegalArgumentException("LSTMBias: forget_bias is null");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("forget_bias", forgetBias);
        return m;
    }

    static LSTMBias fromKwargs(Map<String, Object> kwargs) {
        Kwargs k = new Kwargs("lstmbias", kwargs);
        Number fb = k.number("forget_bias", 1.0);
        k.done();
        return new LSTMBias(fb);
    }

    /** @return the forget-gate bias */
    public double forgetBias() {
        return forgetBias;
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        long[] shape = arr.shape().dims();
        if (shape.length < 1) {
            throw new IllegalArgumentException("LSTMBias: parameter " + desc.name() + " has no rows (shape " + Shapes.py(shape) + ")");
        }
        int n = Fill.javaSize(arr, "parameter " + desc.name());
        long hidden = shape[0] / 4;
        long row = Shapes.product(shape, 1);
        double[] v = new double[n];
        for (long i = hidden * row; i < 2 * hidden * row; i++) {
            v[(int) i] = forgetBias;
        }
        Fill.values(arr, v);
    }
}
