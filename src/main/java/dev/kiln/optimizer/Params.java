package dev.kiln.optimizer;

import dev.kiln.optimizer.lr.LRScheduler;
import dev.kiln.symbol.Symbol;

import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Keyword arguments of an optimizer constructor, by MXNet name ({@code learning_rate}, {@code
 * momentum}, ...): each getter consumes its key, converting the value; {@link #finish()} rejects
 * the keys no getter consumed, as Python rejects an unexpected keyword argument.
 *
 * <p>Accepted value types: numbers as any {@link Number} or a numeric {@link String}; booleans as
 * {@link Boolean} or {@code "True"/"False"/"true"/"false"/"1"/"0"}; a null value means "not
 * given" for nullable parameters ({@code clip_gradient}, {@code learning_rate}, ...) and the
 * default otherwise.
 *
 * <p>Thread-safety: not thread-safe; used by one constructor call.
 */
public final class Params {
    private final String optimizerName;
    private final Map<String, Object> values;
    private final Set<String> used = new LinkedHashSet<>();

    /**
     * Wraps keyword arguments.
     *
     * @param optimizerName the optimizer's registry name, used in messages
     * @param values the arguments (copied; may be null for none)
     * @throws IllegalArgumentException for a null key
     */
    public Params(String optimizerName, Map<String, ?> values) {
        this.optimizerName = optimizerName;
        this.values = new LinkedHashMap<>();
        if (values != null) {
            for (Map.Entry<String, ?> e : values.entrySet()) {
                if (e.getKey() == null) {
                    throw new IllegalArgumentException("optimizer " + optimizerName + ": null parameter name");
                }
                this.values.put(e.getKey(), e.getValue());
            }
        }
    }

    /** @return the optimizer name given at construction */
    public String optimizerName() {
        return optimizerName;
    }

    /**
     * Whether a key was given (with any value, null included); does not consume it.
     *
     * @param key the MXNet parameter name
     * @return true if present
     */
    public boolean has(String key) {
        return values.containsKey(key);
    }

    /**
     * Consumes a key.
     *
     * @param key the MXNet parameter name
     * @return the raw value, or null when absent
     */
    public Object take(String key) {
        used.add(key);
        return values.get(key);
    }

    private IllegalArgumentException bad(String key, Object v, String expected) {
        return new IllegalArgumentException("optimizer " + optimizerName + ": parameter " + key + " must be " + expected
                + ", got " + (v == null ? "null" : v.getClass().getSimpleName() + " '" + v + "'"));
    }

    /**
     * A float parameter.
     *
     * @param key the name
     * @param dflt the default
     * @return the value
     */
    public double dbl(String key, double dflt) {
        Double v = nullableDbl(key);
        return v == null ? dflt : v;
    }

    /**
     * A float parameter that may be None.
     *
     * @param key the name
     * @return the value, or null when absent or null
     */
    public Double nullableDbl(String key) {
        Object v = take(key);
        if (v == null) {
            return null;
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        if (v instanceof String s) {
            try {
                return Double.parseDouble(s.trim());
            } catch (NumberFormatException e) {
                throw bad(key, v, "a number");
            }
        }
        throw bad(key, v, "a number");
    }

    /**
     * An integer parameter.
     *
     * @param key the name
     * @param dflt the default
     * @return the value
     */
    public long lng(String key, long dflt) {
        Object v = take(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) {
            return ((Number) v).longValue();
        }
        if (v instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue()) && !Double.isInfinite(n.doubleValue())) {
            return (long) n.doubleValue();
        }
        if (v instanceof String s) {
            try {
                return Long.parseLong(s.trim());
            } catch (NumberFormatException e) {
                throw bad(key, v, "an integer");
            }
        }
        throw bad(key, v, "an integer");
    }

    /**
     * A boolean parameter.
     *
     * @param key the name
     * @param dflt the default
     * @return the value
     */
    public boolean bool(String key, boolean dflt) {
        Object v = take(key);
        if (v == null) {
            return dflt;
        }
        if (v instanceof Boolean b) {
            return b;
        }
        if (v instanceof String s) {
            switch (s.trim()) {
                case "True", "true", "1" -> {
                    return true;
                }
                case "False", "false", "0" -> {
                    return false;
                }
                default -> throw bad(key, v, "a boolean");
            }
        }
        throw bad(key, v, "a boolean");
    }

    /**
     * A scheduler parameter.
     *
     * @param key the name
     * @return the scheduler (not copied: the optimizer uses and mutates it), or null
     */
    public LRScheduler scheduler(String key) {
        Object v = take(key);
        if (v == null || v instanceof LRScheduler) {
            return (LRScheduler) v;
        }
        throw bad(key, v, "an LRScheduler");
    }

    /**
     * A symbol parameter.
     *
     * @param key the name
     * @return the symbol, or null
     */
    public Symbol symbol(String key) {
        Object v = take(key);
        if (v == null || v instanceof Symbol) {
            return (Symbol) v;
        }
        throw bad(key, v, "a Symbol");
    }

    /**
     * An index -> name map ({@code param_idx2name}).
     *
     * @param key the name
     * @return a normalised copy (Integer or String keys), or null when absent
     */
    public Map<Object, String> idx2name(String key) {
        Object v = take(key);
        if (v == null) {
            return null;
        }
        if (!(v instanceof Map<?, ?> m)) {
            throw bad(key, v, "a dict of param indexes to names");
        }
        Map<Object, String> out = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw bad(key, e.getValue(), "a dict of param indexes to names (value of " + e.getKey() + ")");
            }
            out.put(Optimizer.normKey(e.getKey(), "param_idx2name key"), s);
        }
        return out;
    }

    /**
     * Rejects every key no getter consumed.
     *
     * @throws IllegalArgumentException naming the unexpected keys
     */
    public void finish() {
        Set<String> extra = new TreeSet<>(values.keySet());
        extra.removeAll(used);
        if (!extra.isEmpty()) {
            throw new IllegalArgumentException("optimizer " + optimizerName + " got unexpected parameter"
                    + (extra.size() > 1 ? "s " : " ") + extra + " (known: " + new TreeSet<>(used) + ")");
        }
    }
}
