package dev.kiln.kvstore;

import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;
import dev.kiln.ndarray.NDArray;

import java.util.List;

/**
 * NCCL collectives over arrays on several GPUs of one process, behind KVStore {@code device}:
 * NCCL ({@code libnccl.so.2}) is opened at run time in a {@code -Pcuda} build, as cuBLAS and cuDNN
 * are; {@code KILN_NCCL=0} disables it. Each call is issued as NCCL group calls on every device's
 * stream (a batch of collectives shares them) and is finished before it returns. When NCCL cannot
 * take a call (no CUDA build, no NCCL library, an array on the CPU) the methods return false and
 * the caller sums or copies another way.
 *
 * <p>Stateless from Java; the communicators of each device list are made on first use and kept
 * for the life of the process. Thread-safe (calls are serialized natively).
 */
public final class Nccl {
    private Nccl() {}

    /** "NCCL 2.x.y from path", or why NCCL is not available. */
    public static String describe() {
        return Native.string(KilnNative.kiln_nccl_describe(), "ncclDescribe");
    }

    /**
     * {@code out = sum(parts)} through {@code ncclReduce}: {@link #reduceSumAll} of one sum.
     *
     * @param parts arrays on distinct GPUs, one dtype and size (borrowed)
     * @param out the result, on the GPU of one of the parts (borrowed)
     * @return false when NCCL cannot take the call ({@link #lastReason()} says why); out is then untouched
     * @throws dev.kiln.engine.KilnException for two parts on one GPU, mismatched arrays, or an NCCL failure
     */
    public static boolean reduceSum(List<NDArray> parts, NDArray out) {
        return reduceSumAll(List.of(parts), List.of(out));
    }

    /**
     * {@code outs[k] = sum(parts[k])} for every k through {@code ncclReduce}, issued as one batch: as
     * few NCCL group calls as NCCL takes (2,048 per-GPU calls each) and one wait for all of them,
     * instead of a group and a wait per sum.
     *
     * @param parts for each sum, arrays on distinct GPUs of one dtype and size; every sum's arrays on
     *     the same GPUs in the same order (borrowed)
     * @param outs each sum's result, on the GPU of one of its parts (borrowed)
     * @return false when NCCL cannot take the batch ({@link #lastReason()} says why); nothing is then changed
     * @throws dev.kiln.engine.KilnException for two parts of a sum on one GPU, sums over different
     *     GPUs, mismatched arrays, or an NCCL failure
     */
    public static boolean reduceSumAll(List<List<NDArray>> parts, List<NDArray> outs) {
        if (parts.size() != outs.size()) {
            throw new IllegalArgumentException("NCCL reduce: " + parts.size() + " lists of parts but " + outs.size() + " outputs");
        }
        if (parts.isEmpty()) {
            return record(true, "");
        }
        int[] done = new int[1];
        String why = Native.string(KilnNative.kiln_nccl_reduce_sum(parts.size(), width(parts), handles(parts), handles(List.of(outs)), done),
                "NCCL reduce");
        return record(done[0] == 1, why);
    }

    /**
     * {@code arrays[i] = arrays[root]} for every i through {@code ncclBroadcast}: {@link #broadcastAll} of one.
     *
     * @param arrays arrays on distinct GPUs, one dtype and size (borrowed)
     * @param root the index of the source
     * @return false when NCCL cannot take the call ({@link #lastReason()} says why)
     * @throws dev.kiln.engine.KilnException for two arrays on one GPU, mismatched arrays, a bad root or an NCCL failure
     */
    public static boolean broadcast(List<NDArray> arrays, int root) {
        return broadcastAll(List.of(arrays), new int[] {root});
    }

    /**
     * {@code arrays[k][i] = arrays[k][roots[k]]} for every k and i through {@code ncclBroadcast}, as
     * one batch (see {@link #reduceSumAll}).
     *
     * @param arrays for each broadcast, arrays on distinct GPUs of one dtype and size; every
     *     broadcast's on the same GPUs in the same order (borrowed)
     * @param roots each broadcast's source index
     * @return false when NCCL cannot take the batch ({@link #lastReason()} says why); nothing is then changed
     * @throws dev.kiln.engine.KilnException as {@link #reduceSumAll}, or for a bad root
     */
    public static boolean broadcastAll(List<List<NDArray>> arrays, int[] roots) {
        if (arrays.size() != roots.length) {
            throw new IllegalArgumentException("NCCL broadcast: " + arrays.size() + " lists of arrays but " + roots.length + " roots");
        }
        if (arrays.isEmpty()) {
            return record(true, "");
        }
        int[] done = new int[1];
        String why = Native.string(KilnNative.kiln_nccl_broadcast(arrays.size(), width(arrays), handles(arrays), roots, done),
                "NCCL broadcast");
        return record(done[0] == 1, why);
    }

    private static final ThreadLocal<String> REASON = ThreadLocal.withInitial(() -> "");

    /** Why this thread's last {@link #reduceSum} or {@link #broadcast} returned false ("" after a success). */
    public static String lastReason() {
        return REASON.get();
    }

    private static boolean record(boolean done, String why) {
        REASON.set(done ? "" : why);
        return done;
    }

    /** The common length of the lists (each collective's number of GPUs). */
    private static int width(List<List<NDArray>> lists) {
        int n = lists.isEmpty() ? 0 : lists.get(0).size();
        for (List<NDArray> l : lists) {
            if (l.size() != n) {
                throw new IllegalArgumentException("NCCL: one batch runs over one list of GPUs, but its lists have "
                        + n + " and " + l.size() + " arrays");
            }
        }
        return n;
    }

    /** The handles of the lists, one after another. */
    private static long[] handles(List<List<NDArray>> lists) {
        long[] h = new long[lists.stream().mapToInt(List::size).sum()];
        int i = 0;
        for (List<NDArray> l : lists) {
            for (NDArray a : l) {
                h[i++] = a.handle();
            }
        }
        return h;
    }
}
