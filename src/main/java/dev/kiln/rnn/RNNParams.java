package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Container of parameter variables shared between cells, MXNet's {@code mx.rnn.RNNParams}: {@link
 * #get(String)} returns the variable {@code <prefix><name>}, creating it on first use, so cells
 * built on the same container share weights.
 *
 * <p>Ownership: holds symbols only (no native memory). Thread-safety: not thread-safe; build a
 * graph from one thread.
 */
public final class RNNParams {
    private final String prefix;
    private final Map<String, Symbol> params = new LinkedHashMap<>();

    /** A container without prefix. */
    public RNNParams() {
        this("");
    }

    /**
     * Creates a container.
     *
     * @param prefix prepended to every variable name (may be empty, not null)
     */
    public RNNParams(String prefix) {
        if (prefix == null) {
            throw new IllegalArgumentException("RNNParams: prefix is null");
        }
        this.prefix = prefix;
    }

    /** @return the prefix of the variables this container creates */
    public String prefix() {
        return prefix;
    }

    /**
     * Returns the variable {@code prefix + name}, creating it if missing.
     *
     * @param name the name after the prefix, e.g. {@code "i2h_weight"}
     * @return the shared variable
     */
    public Symbol get(String name) {
        return get(name, Map.of());
    }

    /**
     * Returns the variable {@code prefix + name}, creating it with {@code attrs} if missing (an
     * existing variable is returned unchanged, as MXNet does).
     *
     * @param name the name after the prefix
     * @param attrs variable attributes as for {@link Symbol#variable(String, Map)}, e.g. {@code
     *     init} -> an initializer's {@code dumps()}
     * @return the shared variable
     */
    public Symbol get(String name, Map<String, String> attrs) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("RNNParams.get: name is null or empty");
        }
        return params.computeIfAbsent(prefix + name, n -> Symbol.variable(n, attrs));
    }

    /** @return the variables created or merged so far by full name, in creation order (unmodifiable view) */
    public Map<String, Symbol> asMap() {
        return Collections.unmodifiableMap(params);
    }

    /** MXNet's {@code params._params.update(other._params)}. */
    void putAll(RNNParams other) {
        params.putAll(other.params);
    }
}
