package dev.kiln.metric;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Python-style argument binding for the registry: positional values in parameter order, then
 * keywords; unknown keywords, duplicates, surplus positionals and missing required parameters
 * fail as Python's TypeError would (here {@link IllegalArgumentException}).
 */
final class Args {
    private final String metric;
    private final Map<String, Object> bound;

    private Args(String metric, Map<String, Object> bound) {
        this.metric = metric;
        this.bound = bound;
    }

    /**
     * Binds the arguments of {@code metric(params...)}.
     *
     * @param required how many leading parameters have no default
     */
    static Args bind(String metric, List<String> params, int required, List<Object> args, Map<String, Object> kwargs) {
        if (args.size() > params.size()) {
            throw new IllegalArgumentException(metric + " takes at most " + params.size() + " positional arguments "
                    + params + " but " + args.size() + " were given");
        }
        Map<String, Object> b = new LinkedHashMap<>();
        for (int i = 0; i < args.size(); i++) {
            b.put(params.get(i), args.get(i));
        }
        for (Map.Entry<String, Object> e : kwargs.entrySet()) {
            if (!params.contains(e.getKey())) {
                throw new IllegalArgumentException(metric + " got an unexpected keyword argument '" + e.getKey() + "' (parameters: " + params + ")");
            }
            if (b.containsKey(e.getKey())) {
                throw new IllegalArgumentException(metric + " got multiple values for argument '" + e.getKey() + "'");
            }
            b.put(e.getKey(), e.getValue());
        }
        for (int i = 0; i < required; i++) {
            if (!b.containsKey(params.get(i))) {
                throw new IllegalArgumentException(metric + " missing required argument '" + params.get(i) + "'");
            }
        }
        return new Args(metric, b);
    }

    boolean has(String p) {
        return bound.containsKey(p);
    }

    Object raw(String p) {
        return bound.get(p);
    }

    private IllegalArgumentException type(String p, String want) {
        Object v = bound.get(p);
        return new IllegalArgumentException(metric + ": argument '" + p + "' must be " + want + ", got "
                + (v == null ? "null" : v.getClass().getSimpleName() + " " + v));
    }

    int intArg(String p, int dflt) {
        if (!has(p)) {
            return dflt;
        }
        Object v = bound.get(p);
        if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            long l = ((Number) v).longValue();
            if (l == (int) l) {
                return (int) l;
            }
        }
        if ((v instanceof Double || v instanceof Float) && ((Number) v).doubleValue() == Math.rint(((Number) v).doubleValue())
                && Math.abs(((Number) v).doubleValue()) < Integer.MAX_VALUE) {
            return (int) ((Number) v).doubleValue();
        }
        throw type(p, "an integer");
    }

    double doubleArg(String p, double dflt) {
        if (!has(p)) {
            return dflt;
        }
        if (bound.get(p) instanceof Number n) {
            return n.doubleValue();
        }
        throw type(p, "a number");
    }

    /** A number or null (None). */
    Number numberOrNull(String p) {
        Object v = bound.get(p);
        if (v == null || v instanceof Number) {
            return (Number) v;
        }
        throw type(p, "a number or null");
    }

    boolean boolArg(String p, boolean dflt) {
        if (!has(p)) {
            return dflt;
        }
        if (bound.get(p) instanceof Boolean b) {
            return b;
        }
        throw type(p, "a boolean");
    }

    /** A string; an explicit null falls back to the default for {@code name} (MXNet's None default of CustomMetric). */
    String stringArg(String p, String dflt) {
        if (!has(p) || bound.get(p) == null) {
            return dflt;
        }
        if (bound.get(p) instanceof CharSequence s) {
            return s.toString();
        }
        throw type(p, "a string");
    }

    /** A list of strings, or null (None = all). */
    List<String> names(String p) {
        Object v = bound.get(p);
        if (v == null) {
            return null;
        }
        if (v instanceof List<?> l) {
            List<String> out = new ArrayList<>(l.size());
            for (Object o : l) {
                if (!(o instanceof CharSequence)) {
                    throw type(p, "a list of strings");
                }
                out.add(o.toString());
            }
            return out;
        }
        if (v instanceof String[] arr) {
            return List.of(arr);
        }
        throw type(p, "a list of strings or null");
    }

    /** A list (of child metric specs), or null. */
    List<?> listArg(String p) {
        Object v = bound.get(p);
        if (v == null || v instanceof List) {
            return (List<?>) v;
        }
        throw type(p, "a list");
    }
}
