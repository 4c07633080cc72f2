package dev.kiln.init;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Reads constructor keyword arguments given to {@link Initializer#create} (from JSON or a map),
 * failing like Python does on missing or unexpected ones. Package-private; single-use, not
 * thread-safe.
 */
final class Kwargs {
    private final String initName;
    private final Map<String, Object> left;

    Kwargs(String initName, Map<String, ?> kwargs) {
        this.initName = initName;
        this.left = new LinkedHashMap<>(kwargs == null ? Map.of() : kwargs);
    }

    private IllegalArgumentException error(String msg) {
        return new IllegalArgumentException("initializer '" + initName + "': " + msg);
    }

    boolean has(String key) {
        return left.containsKey(key);
    }

    Object required(String key) {
        if (!left.containsKey(key)) {
            throw error("missing required argument '" + key + "'");
        }
        return left.remove(key);
    }

    Object raw(String key, Object def) {
        return left.containsKey(key) ? left.remove(key) : def;
    }

    Number number(String key, Number def) {
        Object v = left.containsKey(key) ? left.remove(key) : def;
        if (v instanceof Number n) {
            return n;
        }
        if (v instanceof String s) {
            // MXNet's kwargs sometimes arrive as strings (e.g. from symbol attributes)
            String t = s.trim();
            try {
                return Long.parseLong(t);
            } catch (NumberFormatException notInt) {
                switch (t.toLowerCase(java.util.Locale.ROOT)) {
                    case "inf", "+inf", "infinity" -> { return Double.POSITIVE_INFINITY; }
                    case "-inf", "-infinity" -> { return Double.NEGATIVE_INFINITY; }
                    case "nan" -> { return Double.NaN; }
                    default -> { }
                }
                try {
                    return Double.parseDouble(t);
                } catch (NumberFormatException e) {
                    throw error("argument '" + key + "' must be a number, got \"" + s + "\"");
                }
            }
        }
        throw error("argument '" + key + "' must be a number, got " + (v == null ? "null" : v.getClass().getSimpleName()));
    }

    String string(String key, String def) {
        Object v = left.containsKey(key) ? left.remove(key) : def;
        if (v instanceof String s) {
            return s;
        }
        throw error("argument '" + key + "' must be a string, got " + (v == null ? "null" : v.getClass().getSimpleName()));
    }

    /** Throws Python's "unexpected keyword argument" error if any argument was not consumed. */
    void done() {
        if (!left.isEmpty()) {
            throw error("__init__() got an unexpected keyword argument '" + left.keySet().iterator().next() + "'");
        }
    }
}
