package dev.kiln.symbol;

import dev.kiln.ndarray.DType;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Attribute conventions shared by composition and JSON loading: MXNet's hidden keys and how
 * Java values are written as attribute strings. Package-private; stateless and thread-safe.
 */
final class SymbolAttrs {
    private SymbolAttrs() {}

    /** MXNet's kHiddenKeys: plain names that are stored as {@code __name__}. */
    static final List<String> HIDDEN_KEYS =
            List.of("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage", "profiler_scope");

    /**
     * The key under which {@code key} is stored, as MXNet's {@code MXSymbolSetAttr}: a hidden key
     * ({@code lr_mult}) becomes {@code __lr_mult__}; a key that ends in one ({@code
     * weight_lr_mult}) is rejected as MXNet does; anything else is kept.
     */
    static String storedKey(String key) {
        if (key == null || key.isEmpty()) {
            throw new IllegalArgumentException("attribute key is null or empty");
        }
        for (String k : HIDDEN_KEYS) {
            int pos = key.lastIndexOf(k);
            if (pos == 0 && k.length() == key.length()) {
                return "__" + key + "__";
            }
            if (pos > 0 && pos + k.length() == key.length() && !key.startsWith("__")) {
                throw new IllegalArgumentException("setting variable attributes with " + key + " is deprecated; "
                        + "set " + k + " on the variable instead (Symbol.variable(name, Map.of(\"" + k
                        + "\", ...))) and pass it as input '" + key.substring(0, Math.max(0, pos - 1)) + "'");
            }
        }
        return key;
    }

    /**
     * True for keys that MXNet's legacy upgrade (UpgradeJSON_FixParsing) removes before parsing
     * operator parameters: a hidden key at the start of the key, or at its end.
     */
    static boolean isLegacyHiddenPattern(String key) {
        for (String k : HIDDEN_KEYS) {
            int pos = key.lastIndexOf(k);
            if (pos == 0 || (pos >= 0 && pos == key.length() - k.length())) {
                return true;
            }
        }
        return false;
    }

    /**
     * Writes a Java value as MXNet writes Python values into attributes: booleans {@code
     * True}/{@code False}, integers in decimal, floating-point numbers like Python's {@code
     * repr} ({@code 2.0}, {@code 1e-05}), int/long arrays and collections as tuples ({@code (2,
     * 2)}, {@code (3,)}), {@link DType} as its name, anything else with {@code toString()}.
     */
    static String format(Object v) {
        if (v == null) {
            return "None";
        }
        if (v instanceof Boolean) {
            return ((Boolean) v) ? "True" : "False";
        }
        if (v instanceof Double) {
            return pyFloat((Double) v);
        }
        if (v instanceof Float) {
            float f = (Float) v;
            if (Float.isNaN(f) || Float.isInfinite(f)) {
                return pyFloat(f);
            }
            return pyFloat(new BigDecimal(Float.toString(f)), f);
        }
        if (v instanceof Number) {
            return v.toString();
        }
        if (v instanceof DType) {
            return ((DType) v).mxName();
        }
        if (v instanceof int[]) {
            int[] a = (int[]) v;
            StringBuilder sb = new StringBuilder("(");
            for (int i = 0; i < a.length; i++) {
                sb.append(i == 0 ? "" : ", ").append(a[i]);
            }
            return sb.append(a.length == 1 ? ",)" : ")").toString();
        }
        if (v instanceof long[]) {
            long[] a = (long[]) v;
            StringBuilder sb = new StringBuilder("(");
            for (int i = 0; i < a.length; i++) {
                sb.append(i == 0 ? "" : ", ").append(a[i]);
            }
            return sb.append(a.length == 1 ? ",)" : ")").toString();
        }
        if (v instanceof Collection) {
            Collection<?> c = (Collection<?>) v;
            StringBuilder sb = new StringBuilder("(");
            int i = 0;
            for (Object o : c) {
                sb.append(i++ == 0 ? "" : ", ").append(format(o));
            }
            return sb.append(c.size() == 1 ? ",)" : ")").toString();
        }
        return v.toString();
    }

    /** Python's {@code repr(float)}: shortest round-trip digits, exponent form outside [1e-4, 1e16). */
    static String pyFloat(double d) {
        if (Double.isNaN(d)) {
            return "nan";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "inf" : "-inf";
        }
        if (d == 0) {
            return (1 / d < 0) ? "-0.0" : "0.0";
        }
        BigDecimal exact = new BigDecimal(d);
        BigDecimal shortest = exact;
        for (int p = 1; p <= 17; p++) {
            BigDecimal r = exact.round(new MathContext(p, RoundingMode.HALF_EVEN));
            if (r.doubleValue() == d) {
                shortest = r;
                break;
            }
        }
        return pyFloat(shortest, d);
    }

    private static String pyFloat(BigDecimal value, double sign) {
        BigDecimal v = value.stripTrailingZeros();
        String digits = v.unscaledValue().abs().toString();
        int exp10 = digits.length() - 1 - v.scale();
        StringBuilder sb = new StringBuilder();
        if (sign < 0) {
            sb.append('-');
        }
        if (exp10 >= -4 && exp10 < 16) {
            if (exp10 >= 0) {
                if (digits.length() <= exp10 + 1) {
                    sb.append(digits).append("0".repeat(exp10 + 1 - digits.length())).append(".0");
                } else {
                    sb.append(digits, 0, exp10 + 1).append('.').append(digits.substring(exp10 + 1));
                }
            } else {
                sb.append("0.").append("0".repeat(-exp10 - 1)).append(digits);
            }
        } else {
            sb.append(digits.charAt(0));
            if (digits.length() > 1) {
                sb.append('.').append(digits.substring(1));
            }
            sb.append('e').append(exp10 < 0 ? '-' : '+');
            int a = Math.abs(exp10);
            if (a < 10) {
                sb.append('0');
            }
            sb.append(a);
        }
        return sb.toString();
    }

    /**
     * Converts a {@code Variable(...)} keyword to its stored form (Python {@code mx.sym.Variable}):
     * shape, lr_mult, wd_mult, dtype (as the numeric flag), init, stype (as the storage id)
     * become hidden attributes; other hidden keys as {@link #storedKey(String)}.
     */
    static void putVariableAttr(Map<String, String> out, String key, String value) {
        if (value == null) {
            throw new IllegalArgumentException("attribute " + key + " has a null value");
        }
        switch (key) {
            case "shape":
                out.put("__shape__", value);
                return;
            case "dtype":
                out.put("__dtype__", Integer.toString(dtypeFlag(value)));
                return;
            case "init":
                out.put("__init__", value);
                return;
            case "stype":
                out.put("__storage_type__", storageTypeId(value));
                return;
            default:
                out.put(storedKey(key), value);
        }
    }

    /** A dtype given by name ({@code "float16"}) or flag ({@code "2"}) as MXNet's numeric flag. */
    static int dtypeFlag(String value) {
        String v = value.trim();
        if (!v.isEmpty() && v.length() < 4 && v.chars().allMatch(Character::isDigit)) {
            return DType.fromId(Integer.parseInt(v)).id();
        }
        return DType.fromName(v).id();
    }

    private static String storageTypeId(String stype) {
        switch (stype) {
            case "default":
            case "0":
                return "0";
            case "row_sparse":
            case "1":
                return "1";
            case "csr":
            case "2":
                return "2";
            default:
                throw new IllegalArgumentException("unknown storage type \"" + stype + "\" (default, row_sparse, csr)");
        }
    }
}
