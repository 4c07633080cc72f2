package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Initialises weights with samples from U(-scale, scale) (MXNet's {@code mx.init.Uniform},
 * registered as {@code uniform}; default scale 0.07 — note that {@code Module.initParams} defaults
 * to {@code Uniform(0.01)}). Seeded as described in {@link Initializer}. Immutable; thread-safe;
 * never owns the arrays it writes.
 */
public final class Uniform extends Initializer {
    private final double scale;

    /** {@code Uniform(scale=0.07)}. */
    public Uniform() {
        this(0.07);
    }

    /**
     * Creates the initializer.
     *
     * @param scale the bound (a Python int or float for {@link #dumps()}: {@code 1} vs {@code 1.0})
     * @throws IllegalArgumentException if scale is null, negative or not finite
     */
    public Uniform(Number scale) {
        super(kw(scale));
        this.scale = scale.doubleValue();
        if (!(this.scale >= 0) || Double.isInfinite(this.scale)) {
            throw new IllegalArgumentException("Uniform: scale must be a finite number >= 0, got " + scale);
        }
    }

    private static Map<String, Object> kw(Number scale) {
        if (scale == null) {
            throw new IllegalArgumentException("Uniform: scale is null");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("scale", scale);
        return m;
    }

    static Uniform fromKwargs(Map<String, Object> kwargs) {
        Kwargs k = new Kwargs("uniform", kwargs);
        Number scale = k.number("scale", 0.07);
        k.done();
        return new Uniform(scale);
    }

    /** @return the bound */
    public double scale() {
        return scale;
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        Fill.uniform(arr, -scale, scale);
    }
}
