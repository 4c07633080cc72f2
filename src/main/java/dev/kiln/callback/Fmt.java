package dev.kiln.callback;

import java.math.BigDecimal;
import java.math.RoundingMode;

/**
 * Python/C {@code printf} number formatting for log lines, independent of the default locale:
 * {@code %.Nf} rounds the exact binary value half-to-even (as glibc does, so {@code 0.125} with
 * 2 digits is {@code 0.12}), keeps the sign of negative values that round to zero, and writes
 * {@code nan}, {@code inf}, {@code -inf} as Python does. Stateless, thread-safe.
 */
final class Fmt {
    private Fmt() {}

    /**
     * Formats like Python's {@code '%.<digits>f' % v}.
     *
     * @param v the value
     * @param digits digits after the point
     * @return the text
     */
    static String f(double v, int digits) {
        if (Double.isNaN(v)) {
            return "nan";
        }
        if (Double.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        String s = new BigDecimal(v).setScale(digits, RoundingMode.HALF_EVEN).toPlainString();
        if (Double.doubleToRawLongBits(v) < 0 && !s.startsWith("-")) {
            s = "-" + s;
        }
        return s;
    }

    /** Python's {@code '%f' % v} (6 digits). */
    static String f(double v) {
        return f(v, 6);
    }
}
