package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Initialises weights with samples from N(0, sigma²) (MXNet's {@code mx.init.Normal}, registered
 * as {@code normal}; sigma is the standard deviation, default 0.01). Seeded as described in
 * {@link Initializer}. Immutable; thread-safe; never owns the arrays it writes.
 */
public final class Normal extends Initializer {
    private final double sigma;

    /** {@code Normal(sigma=0.01)}. */
    public Normal() {
        this(0.01);
    }

    /**
     * Creates the initializer.
     *
     * @param sigma the standard deviation (a Python int or float for {@link #dumps()})
     * @throws IllegalArgumentException if sigma is null, negative or not finite
     */
    public Normal(Number sigma) {
        super(kw(sigma));
        this.sigma = sigma.doubleValue();
        if (!(this.sigma >= 0) || Double.isInfinite(this.sigma)) {
            throw new IllegalArgumentException("Normal: sigma must be a finite number >= 0, got " + sigma);
        }
    }

    private static Map<String, Object> kw(Number sigma) {
        if (sigma == null) {
            throw new IllegalArgumentException("Normal: sigma is null");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("sigma", sigma);
        return m;
    }

    static Normal fromKwargs(Map<String, Object> kwargs) {
        Kwargs k = new Kwargs("normal", kwargs);
        Number sigma = k.number("sigma", 0.01);
        k.done();
        return new Normal(sigma);
    }

    /** @return the standard deviation */
    public double sigma() {
        return sigma;
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        Fill.normal(arr, 0.0, sigma);
    }
}
