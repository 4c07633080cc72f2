package dev.kiln.ndarray;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Owns the arrays created while it is open on the current thread (DJL's NDManager, JavaCPP's
 * PointerScope): closing the scope closes every array attached to it that was not
 * {@linkplain NDArray#detach() detached}. Scopes nest; a new array attaches to the innermost
 * open scope of its creating thread, or to none (then its creator owns it).
 *
 * <pre>{@code
 * try (NDScope scope = NDScope.open()) {
 *     NDArray t = a.mul(b).add(1);      // temporaries belong to the scope
 *     result = t.sum().detach();        // survives the scope; the caller closes it
 * }
 * }</pre>
 *
 * <p>Thread-safety: a scope belongs to the thread that opened it; close it on that thread.
 */
public final class NDScope implements AutoCloseable {
    private static final ThreadLocal<Deque<NDScope>> STACK = ThreadLocal.withInitial(ArrayDeque::new);

    private final Set<NDArray> arrays = new LinkedHashSet<>();
    private boolean closed;

    private NDScope() {}

    /** Opens a scope on the current thread. */
    public static NDScope open() {
        NDScope s = new NDScope();
        STACK.get().push(s);
        return s;
    }

    static void attachToCurrent(NDArray a) {
        NDScope s = STACK.get().peek();
        if (s != null) {
            s.arrays.add(a);
            a.scope = s;
        }
    }

    void remove(NDArray a) {
        arrays.remove(a);
    }

    /** Attaches an array to this scope (moving it from its current scope, if any). */
    public NDArray attach(NDArray a) {
        if (closed) {
            throw new IllegalStateException("scope is closed");
        }
        if (a.scope != null) {
            a.scope.remove(a);
        }
        arrays.add(a);
        a.scope = this;
        return a;
    }

    /** Number of arrays the scope currently owns. */
    public int size() {
        return arrays.size();
    }

    /** Closes every array still attached and removes the scope from its thread's stack. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        List<NDArray> list = new ArrayList<>(arrays);
        arrays.clear();
        for (NDArray a : list) {
            a.scope = null;
            a.close();
        }
        STACK.get().remove(this);
    }
}
