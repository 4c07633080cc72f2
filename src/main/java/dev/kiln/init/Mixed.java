package dev.kiln.init;

import dev.kiln.ndarray.NDArray;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Several initializers chosen by parameter name (MXNet's {@code mx.init.Mixed}): the first regular
 * expression that matches at the <em>start</em> of the name (Python's {@code re.match}; here
 * {@link java.util.regex.Matcher#lookingAt()}) picks the initializer, which then runs its full
 * dispatch ({@code __init__} attribute and suffix rules) for that parameter. Example: {@code new
 * Mixed(List.of("bias", ".*"), List.of(new Zero(), new Uniform(0.1)))}.
 *
 * <p>Not registered and not serialisable ({@link #dumps()} throws), as in MXNet. Equality is
 * identity. Immutable; thread-safe if its initializers are; never owns the arrays it writes.
 */
public final class Mixed extends Initializer {
    private final List<Pattern> patterns;
    private final List<Initializer> initializers;

    /**
     * Creates the initializer.
     *
     * @param patterns regular expressions (Java syntax, which agrees with Python's for the usual
     *     patterns), tried in order
     * @param initializers one initializer per pattern
     * @throws IllegalArgumentException if the lists differ in length, hold nulls, or a pattern is invalid
     */
    public Mixed(List<String> patterns, List<? extends Initializer> initializers) {
        super();
        if (patterns == null || initializers == null || patterns.size() != initializers.size()) {
            throw new IllegalArgumentException("Mixed: patterns and initializers must be lists of the same length, got "
                    + (patterns == null ? "null" : patterns.size()) + " and "
                    + (initializers == null ? "null" : initializers.size()));
        }
        List<Pattern> ps = new ArrayList<>();
        for (String p : patterns) {
            if (p == null) {
                throw new IllegalArgumentException("Mixed: a pattern is null");
            }
            try {
                ps.add(Pattern.compile(p));
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("Mixed: invalid pattern '" + p + "': " + e.getDescription(), e);
            }
        }
        for (Initializer i : initializers) {
            if (i == null) {
                throw new IllegalArgumentException("Mixed: an initializer is null");
            }
        }
        this.patterns = List.copyOf(ps);
        this.initializers = List.copyOf(initializers);
    }

    private Initializer pick(String name) {
        for (int i = 0; i < patterns.size(); i++) {
            if (patterns.get(i).matcher(name).lookingAt()) {
                return initializers.get(i);
            }
        }
        throw new IllegalArgumentException("Parameter name " + name + " did not match any pattern. Consider "
                + "adding a \".*\" pattern at the end with a default Initializer.");
    }

    /**
     * Runs the first matching initializer's {@code init} on the parameter.
     *
     * @throws IllegalArgumentException if no pattern matches (MXNet's ValueError)
     */
    @Override
    public void init(InitDesc desc, NDArray arr) {
        pick(desc.name()).init(desc, arr);
    }

    /** Runs the first matching initializer's {@code initLegacy}. */
    @Override
    public void initLegacy(String name, NDArray arr) {
        if (name == null) {
            throw new IllegalArgumentException("name must be a string, got null");
        }
        pick(name).initLegacy(name, arr);
    }

    /** Runs the first matching initializer's weight rule (used only if Mixed is reached as a weight rule). */
    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        pick(desc.name()).initWeight(desc, arr);
    }

    /** @throws UnsupportedOperationException always: Mixed is not serialisable */
    @Override
    public String dumps() {
        throw new UnsupportedOperationException("Mixed initializers cannot be serialised (MXNet does not register them)");
    }

    @Override
    public boolean equals(Object o) {
        return this == o;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }

    @Override
    public String toString() {
        List<String> p = new ArrayList<>();
        for (int i = 0; i < patterns.size(); i++) {
            p.add(patterns.get(i).pattern() + " -> " + initializers.get(i));
        }
        return "Mixed" + p;
    }
}
