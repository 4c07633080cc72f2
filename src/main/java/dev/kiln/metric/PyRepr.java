package dev.kiln.metric;

import java.math.BigDecimal;

/** Python's {@code repr} of a float, so {@link EvalMetric#toString()} prints as MXNet does. */
final class PyRepr {
    private PyRepr() {}

    /**
     * {@code repr(float(v))}: {@code nan}, {@code inf}, {@code 0.5}, {@code 2.0}, {@code 1e-05},
     * {@code 1e+16}; fixed notation for decimal exponents -4..15, scientific otherwise.
     */
    static String ofDouble(double v) {
        if (Double.isNaN(v)) {
            return "nan";
        }
        if (Double.isInfinite(v)) {
            return v > 0 ? "inf" : "-inf";
        }
        if (v == 0) {
            return (1 / v < 0) ? "-0.0" : "0.0";
        }
        // shortest digits that round-trip (Double.toString), then Python's layout
        BigDecimal bd = new BigDecimal(Double.toString(Math.abs(v))).stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int exp = digits.length() - 1 - bd.scale(); // decimal exponent of the first digit
        StringBuilder b = new StringBuilder(v < 0 ? "-" : "");
        if (exp >= -5 + 1 && exp < 16) {
            if (exp >= 0) {
                if (digits.length() <= exp + 1) {
                    b.append(digits).append("0".repeat(exp + 1 - digits.length())).append(".0");
                } else {
                    b.append(digits, 0, exp + 1).append('.').append(digits.substring(exp + 1));
                }
            } else {
                b.append("0.").append("0".repeat(-exp - 1)).append(digits);
            }
        } else {
            b.append(digits.charAt(0));
            if (digits.length() > 1) {
                b.append('.').append(digits.substring(1));
            }
            b.append('e').append(exp < 0 ? '-' : '+');
            int a = Math.abs(exp);
            b.append(a < 10 ? "0" : "").append(a);
        }
        return b.toString();
    }

    /** {@code repr(str)} for simple names: single quotes, backslash and quote escaped. */
    static String ofString(String s) {
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }
}
