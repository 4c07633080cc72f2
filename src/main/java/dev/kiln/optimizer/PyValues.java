package dev.kiln.optimizer;

import java.math.BigInteger;
import java.util.Map;

/** Conversions of unpickled Python values, with messages naming the field. Internal; stateless. */
final class PyValues {
    private PyValues() {}

    static double dbl(Object v, String what) {
        if (v instanceof Double d) {
            return d;
        }
        if (v instanceof Long || v instanceof Integer) {
            return ((Number) v).doubleValue();
        }
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        throw new IllegalArgumentException(what + " must be a float, got " + Pickle.typeName(v));
    }

    static long lng(Object v, String what) {
        if (v instanceof Long || v instanceof Integer) {
            return ((Number) v).longValue();
        }
        if (v instanceof Boolean b) {
            return b ? 1 : 0;
        }
        if (v instanceof Double d && d == Math.rint(d) && Math.abs(d) < 9e15) {
            return d.longValue();
        }
        if (v instanceof BigInteger) {
            throw new IllegalArgumentException(what + " " + v + " does not fit in 64 bits");
        }
        throw new IllegalArgumentException(what + " must be an int, got " + Pickle.typeName(v));
    }

    static boolean bool(Object v, String what) {
        if (v instanceof Boolean b) {
            return b;
        }
        if (v instanceof Long l) {
            return l != 0;
        }
        throw new IllegalArgumentException(what + " must be a bool, got " + Pickle.typeName(v));
    }

    // Fields of an unpickled __dict__: the converted value when the key is present, else current.

    static double dbl(Map<String, ?> d, String key, double current) {
        return d.containsKey(key) ? dbl(d.get(key), key) : current;
    }

    /** As {@link #dbl(Map, String, double)}; None becomes null. */
    static Double nullableDbl(Map<String, ?> d, String key, Double current) {
        if (!d.containsKey(key)) {
            return current;
        }
        return d.get(key) == null ? null : dbl(d.get(key), key);
    }

    static long lng(Map<String, ?> d, String key, long current) {
        return d.containsKey(key) ? lng(d.get(key), key) : current;
    }

    static boolean bool(Map<String, ?> d, String key, boolean current) {
        return d.containsKey(key) ? bool(d.get(key), key) : current;
    }

    static String str(Object v, String what) {
        if (v instanceof String s) {
            return s;
        }
        if (v instanceof byte[] b) {
            return new String(b, java.nio.charset.StandardCharsets.UTF_8);
        }
        throw new IllegalArgumentException(what + " must be a str, got " + Pickle.typeName(v));
    }

    /** A dict key as Integer/String material: Long keys stay numbers, bytes become strings. */
    static Object key(Object k) {
        if (k instanceof byte[] b) {
            return new String(b, java.nio.charset.StandardCharsets.UTF_8);
        }
        if (k instanceof Long || k instanceof Integer || k instanceof String) {
            return k;
        }
        throw new IllegalArgumentException("unsupported key type " + Pickle.typeName(k) + " (int or str expected)");
    }
}
