package dev.kiln.init;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * MSRA ("He") initialisation for PReLU networks (MXNet's {@code mx.init.MSRAPrelu}, registered as
 * {@code msraprelu}): {@link Xavier} with {@code rnd_type="gaussian"} and {@code magnitude =
 * 2/(1 + slope²)}. {@link #dumps()} shows only {@code factor_type} and {@code slope}, as MXNet.
 * Defaults {@code ("avg", 0.25)}. Immutable; thread-safe; never owns the arrays it writes.
 */
public final class MSRAPrelu extends Xavier {
    private final double slope;

    /** {@code MSRAPrelu("avg", 0.25)}. */
    public MSRAPrelu() {
        this("avg", 0.25);
    }

    /**
     * Creates the initializer.
     *
     * @param factorType {@code "avg"}, {@code "in"} or {@code "out"}
     * @param slope the initial slope of the PReLU nonlinearities (a Python int or float for {@link #dumps()})
     * @throws IllegalArgumentException for an unknown factor type or a null or non-finite slope
     */
    public MSRAPrelu(String factorType, Number slope) {
        super(kw(factorType, slope), "gaussian", factorType, magnitude(slope));
        this.slope = slope.doubleValue();
    }

    private static double magnitude(Number slope) {
        if (slope == null || !Double.isFinite(slope.doubleValue())) {
            throw new IllegalArgumentException("MSRAPrelu: slope must be a finite number, got " + slope);
        }
        double s = slope.doubleValue();
        return 2.0 / (1 + s * s);
    }

    private static Map<String, Object> kw(String factorType, Number slope) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("factor_type", factorType);
        m.put("slope", slope);
        return m;
    }

    static MSRAPrelu fromKwargs(Map<String, Object> kwargs) {
        Kwargs k = new Kwargs("msraprelu", kwargs);
        String factor = k.string("factor_type", "avg");
        Number slope = k.number("slope", 0.25);
        k.done();
        return new MSRAPrelu(factor, slope);
    }

    /** @return the PReLU slope */
    public double slope() {
        return slope;
    }
}
