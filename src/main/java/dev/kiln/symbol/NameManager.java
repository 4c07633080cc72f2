package dev.kiln.symbol;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Gives automatic names to operator nodes, like MXNet's {@code mx.name.NameManager}: a node
 * created without a name is called {@code <hint><counter>}, where the hint is the lower-cased
 * operator name and the counter counts per hint from 0 ({@code fullyconnected0}, {@code
 * fullyconnected1}, {@code activation0}, ...). A name given by the user always wins.
 *
 * <p>Each thread has its own default manager (as in MXNet, whose current manager is
 * thread-local), so names do not depend on what other threads create. {@link #scope()} starts
 * a fresh set of counters for the current thread until the scope is closed:
 *
 * <pre>{@code
 * try (NameManager names = NameManager.scope()) {
 *     Symbol fc = Symbol.fullyConnected(null, data, 10);   // "fullyconnected0"
 * }
 * }</pre>
 *
 * <p>{@link #prefix(String)} is MXNet's {@code mx.name.Prefix}: every name created in the scope,
 * given or automatic, gets the prefix.
 *
 * <p>Thread-safety: {@link #current()}, {@link #scope()} and {@link #prefix(String)} act on the
 * calling thread only. A manager's {@link #get(String, String)} is synchronized, so a manager
 * may be shared, but scopes must be opened and closed on the same thread.
 */
public class NameManager implements AutoCloseable {
    private static final ThreadLocal<Deque<NameManager>> STACK = ThreadLocal.withInitial(() -> {
        Deque<NameManager> d = new ArrayDeque<>();
        d.push(new NameManager(null));
        return d;
    });

    private final Map<String, Integer> counters = new HashMap<>();
    private final String prefix;
    private boolean closed;
    private final boolean scoped;

    private NameManager(String prefix) {
        this(prefix, false);
    }

    private NameManager(String prefix, boolean scoped) {
        this.prefix = prefix == null ? "" : prefix;
        this.scoped = scoped;
    }

    /**
     * Returns the calling thread's current manager: the innermost open scope, else the thread's
     * default manager.
     *
     * @return the current manager
     */
    public static NameManager current() {
        return STACK.get().peek();
    }

    /**
     * Opens a scope with fresh counters on the calling thread; close it (try-with-resources) to
     * return to the previous manager.
     *
     * @return the new manager, now current
     */
    public static NameManager scope() {
        NameManager m = new NameManager(null, true);
        STACK.get().push(m);
        return m;
    }

    /**
     * Opens a scope with fresh counters that prefixes every name ({@code mx.name.Prefix}), e.g.
     * with prefix {@code "net_"} a FullyConnected named {@code fc1} becomes {@code net_fc1} and
     * an unnamed one {@code net_fullyconnected0}.
     *
     * @param prefix the prefix
     * @return the new manager, now current
     */
    public static NameManager prefix(String prefix) {
        NameManager m = new NameManager(prefix, true);
        STACK.get().push(m);
        return m;
    }

    /**
     * Returns the name to use for a new node.
     *
     * @param name the user's name, or null/empty for an automatic one
     * @param hint the hint for automatic names (usually the operator name; lower-cased here)
     * @return {@code name} (with this manager's prefix), or {@code <prefix><hint><counter>}
     */
    public synchronized String get(String name, String hint) {
        if (name != null && !name.isEmpty()) {
            return prefix + name;
        }
        String h = hint == null ? "" : hint.toLowerCase(Locale.ROOT);
        int n = counters.getOrDefault(h, 0);
        counters.put(h, n + 1);
        return prefix + h + n;
    }

    /**
     * Closes this scope and makes the previous manager current. Idempotent. Closing the
     * thread's default manager does nothing.
     *
     * @throws IllegalStateException if a scope opened later on this thread is still open, or
     *     the scope belongs to another thread
     */
    @Override
    public void close() {
        if (!scoped || closed) {
            return;
        }
        Deque<NameManager> d = STACK.get();
        if (d.peek() != this) {
            throw new IllegalStateException(d.contains(this)
                    ? "NameManager scopes closed out of order: close the inner scope first"
                    : "NameManager scope closed on a thread that did not open it");
        }
        d.pop();
        closed = true;
    }
}
