package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * "Xavier" initialisation (MXNet's {@code mx.init.Xavier}, registered as {@code xavier}): for a
 * weight of shape (out, in, k1, k2, ...), {@code hw = k1·k2·...} (1 for 2-D), {@code fan_in =
 * in·hw}, {@code fan_out = out·hw}; {@code factor} is {@code (fan_in + fan_out)/2} ({@code
 * "avg"}), {@code fan_in} ({@code "in"}) or {@code fan_out} ({@code "out"}); {@code scale =
 * sqrt(magnitude/factor)}; samples come from U(-scale, scale) ({@code "uniform"}) or N(0,
 * scale²) ({@code "gaussian"}). Defaults {@code ("uniform", "avg", 3)}.
 *
 * <p>Unknown {@code rnd_type}/{@code factor_type} values are rejected when the initializer is
 * constructed (MXNet: when first used) with MXNet's messages "Unknown random type" / "Incorrect
 * factor type"; arrays of rank below 2 are rejected at {@code init} ("Xavier initializer cannot
 * be applied to vector ...").
 *
 * <p>Immutable; thread-safe; never owns the arrays it writes.
 */
public class Xavier extends Initializer {
    private final String rndType;
    private final String factorType;
    private final double magnitude;

    /** {@code Xavier("uniform", "avg", 3)}. */
    public Xavier() {
        this("uniform", "avg", 3);
    }

    /**
     * Creates the initializer.
     *
     * @param rndType {@code "uniform"} or {@code "gaussian"}
     * @param factorType {@code "avg"}, {@code "in"} or {@code "out"}
     * @param magnitude the scale of the random numbers (a Python int or float for {@link #dumps()})
     * @throws IllegalArgumentException for an unknown type or a null, negative or non-finite magnitude
     */
    public Xavier(String rndType, String factorType, Number magnitude) {
        this(kw(rndType, factorType, magnitude), rndType, factorType, magnitude);
    }

    /** For subclasses (MSRAPrelu) that dump other keyword arguments. */
    Xavier(Map<String, ?> kwargs, String rndType, String factorType, Number magnitude) {
        super(kwargs);
        if (!"uniform".equals(rndType) && !"gaussian".equals(rndType)) {
            throw new IllegalArgumentException("Unknown random type: " + rndType + " (expected \"uniform\" or \"gaussian\")");
        }
        if (!"avg".equals(factorType) && !"in".equals(factorType) && !"out".equals(factorType)) {
            throw new IllegalArgumentException("Incorrect factor type: " + factorType + " (expected \"avg\", \"in\" or \"out\")");
        }
        if (magnitude == null || !(magnitude.doubleValue() >= 0) || Double.isInfinite(magnitude.doubleValue())) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": magnitude must be a finite number >= 0, got " + magnitude);
        }
        this.rndType = rndType;
        this.factorType = factorType;
        this.magnitude = magnitude.doubleValue();
    }

    private static Map<String, Object> kw(String rndType, String factorType, Number magnitude) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("rnd_type", rndType);
        m.put("factor_type", factorType);
        m.put("magnitude", magnitude);
        return m;
    }

    static Xavier fromKwargs(Map<String, Object> kwargs) {
        Kwargs k = new Kwargs("xavier", kwargs);
        String rnd = k.string("rnd_type", "uniform");
        String factor = k.string("factor_type", "avg");
        Number magnitude = k.number("magnitude", 3L);
        k.done();
        return new Xavier(rnd, factor, magnitude);
    }

    /** @return {@code "uniform"} or {@code "gaussian"} */
    public String rndType() {
        return rndType;
    }

    /** @return {@code "avg"}, {@code "in"} or {@code "out"} */
    public String factorType() {
        return factorType;
    }

    /** @return the magnitude */
    public double magnitude() {
        return magnitude;
    }

    /**
     * The bound (uniform) or standard deviation (gaussian) used for an array of this shape.
     *
     * @param name the parameter name, for the error message
     * @param shape the array's dims
     * @return {@code sqrt(magnitude / factor)}
     * @throws IllegalArgumentException if the rank is below 2
     */
    public double scale(String name, long[] shape) {
        if (shape.length < 2) {
            throw new IllegalArgumentException("Xavier initializer cannot be applied to vector " + name
                    + ". It requires at least 2D.");
        }
        double hw = shape.length > 2 ? Shapes.product(shape, 2) : 1.0;
        double fanIn = shape[1] * hw;
        double fanOut = shape[0] * hw;
        double factor = switch (factorType) {
            case "avg" -> (fanIn + fanOut) / 2.0;
            case "in" -> fanIn;
            default -> fanOut;
        };
        return Math.sqrt(magnitude / factor);
    }

    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        double scale = scale(desc.name(), arr.shape().dims());
        if ("uniform".equals(rndType)) {
            Fill.uniform(arr, -scale, scale);
        } else {
            Fill.normal(arr, 0.0, scale);
        }
    }
}
