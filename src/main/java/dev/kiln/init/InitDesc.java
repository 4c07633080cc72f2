package dev.kiln.init;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Describes one parameter to initialise, MXNet's {@code mx.init.InitDesc}: the parameter's name,
 * the attributes of its variable (from {@code Symbol.attrDict()}, e.g. {@code __init__}, {@code
 * __lr_mult__}) and the global initializer that called for it.
 *
 * <p>MXNet's InitDesc is a {@code str} subclass; here {@link #toString()} returns the name, and
 * {@link #equals(Object)} compares name and attributes (not the global initializer).
 *
 * <p>Immutable and thread-safe; the attribute map is copied on construction.
 */
public final class InitDesc {
    private final String name;
    private final Map<String, String> attrs;
    private final Initializer globalInit;

    /**
     * Creates a descriptor.
     *
     * @param name the parameter name, e.g. {@code fc1_weight}
     * @param attrs the variable's attributes, or null for none (copied)
     * @param globalInit the global initializer to fall back to, or null; {@link
     *     Initializer#init(InitDesc, dev.kiln.ndarray.NDArray)} substitutes itself when null, as MXNet does
     * @throws IllegalArgumentException if {@code name} is null, or an attribute key or value is null
     */
    public InitDesc(String name, Map<String, String> attrs, Initializer globalInit) {
        if (name == null) {
            throw new IllegalArgumentException("InitDesc: the parameter name is null");
        }
        this.name = name;
        Map<String, String> a = new LinkedHashMap<>();
        if (attrs != null) {
            for (Map.Entry<String, String> e : attrs.entrySet()) {
                if (e.getKey() == null || e.getValue() == null) {
                    throw new IllegalArgumentException("InitDesc '" + name + "': attribute " + e.getKey() + " is null");
                }
                a.put(e.getKey(), e.getValue());
            }
        }
        this.attrs = Collections.unmodifiableMap(a);
        this.globalInit = globalInit;
    }

    /**
     * A descriptor with only a name (no attributes, no global initializer).
     *
     * @param name the parameter name
     */
    public InitDesc(String name) {
        this(name, null, null);
    }

    /** @return the parameter name */
    public String name() {
        return name;
    }

    /** @return the variable's attributes, unmodifiable, never null */
    public Map<String, String> attrs() {
        return attrs;
    }

    /** @return the global initializer, or null when none was set */
    public Initializer globalInit() {
        return globalInit;
    }

    /**
     * This descriptor with another global initializer.
     *
     * @param init the global initializer (may be null)
     * @return a new descriptor sharing name and attributes
     */
    public InitDesc withGlobalInit(Initializer init) {
        return new InitDesc(name, attrs, init);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof InitDesc d && d.name.equals(name) && d.attrs.equals(attrs);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, attrs);
    }

    /** @return the name, as MXNet's {@code str(desc)} */
    @Override
    public String toString() {
        return name;
    }
}
