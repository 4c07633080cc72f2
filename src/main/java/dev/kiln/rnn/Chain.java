package dev.kiln.rnn;

import dev.kiln.ndarray.NDArray;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Weight conversions over several cells (MXNet's {@code _cells_unpack_weights}/{@code _cells_pack_weights}). Internal. */
final class Chain {
    private Chain() {}

    interface Conv {
        Map<String, NDArray> apply(BaseRNNCell cell, Map<String, NDArray> args);
    }

    static Map<String, NDArray> unpack(List<BaseRNNCell> cells, Map<String, NDArray> args) {
        return run(cells, args, BaseRNNCell::unpackWeights);
    }

    static Map<String, NDArray> pack(List<BaseRNNCell> cells, Map<String, NDArray> args) {
        return run(cells, args, BaseRNNCell::packWeights);
    }

    /**
     * Applies the conversion cell by cell; arrays created by one step and consumed by a later one
     * are closed, so only the caller's arrays and the final new arrays remain.
     */
    static Map<String, NDArray> run(List<BaseRNNCell> cells, Map<String, NDArray> args, Conv conv) {
        Set<NDArray> callers = Collections.newSetFromMap(new IdentityHashMap<>());
        callers.addAll(args.values());
        Map<String, NDArray> cur = args;
        for (BaseRNNCell c : cells) {
            Map<String, NDArray> next = conv.apply(c, cur);
            closeDropped(cur, next, callers);
            cur = next;
        }
        return new java.util.LinkedHashMap<>(cur);
    }

    /** Closes arrays of {@code before} that are neither the caller's nor still in {@code after}. */
    static void closeDropped(Map<String, NDArray> before, Map<String, NDArray> after, Set<NDArray> callers) {
        Set<NDArray> kept = Collections.newSetFromMap(new IdentityHashMap<>());
        kept.addAll(after.values());
        for (NDArray a : before.values()) {
            if (!callers.contains(a) && !kept.contains(a)) {
                a.close();
            }
        }
    }
}
