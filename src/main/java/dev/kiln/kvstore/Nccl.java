package dev.kiln.kvstore;

import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;
import dev.kiln.ndarray.NDArray;

import java.util.List;

/**
 * NCCL collectives over arrays on several GPUs of one process, behind KVStore {@code device}:
 * NCCL ({@code libnccl.so.2}) is opened at run time in a {@code -Pcuda} build, as cuBLAS and cuDNN
 * are; {@code KILN_NCCL=0} disables it. Each call is one NCCL group call on every device's stream,
 * finished before it returns. When NCCL cannot take a call (no CUDA build, no NCCL library, an
 * array on the CPU) the methods return false and the caller sums or copies another way.
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
     * {@code out = sum(parts)} through {@code ncclReduce}.
     *
     * @param parts arrays on distinct GPUs, one dtype and size (borrowed)
     * @param out the result, on the GPU of one of the parts (borrowed)
     * @return false when NCCL cannot take the call ({@link #lastReason()} says why); out is then untouched
     * @throws dev.kiln.engine.KilnException for two parts on one GPU, mismatched arrays, or an NCCL failure
     */
    public static boolean reduceSum(List<NDArray> parts, NDArray out) {
        long[] h = handles(parts);
        int[] done = new int[1];
        String why = Native.string(KilnNative.kiln_nccl_reduce_sum(h.length, h, out.handle(), done), "NCCL reduce");
        return record(done[0] == 1, why);
    }

    /**
     * {@code arrays[i] = arrays[root]} for every i through {@code ncclBroadcast}.
     *
     * @param arrays arrays on distinct GPUs, one dtype and size (borrowed)
     * @param root the index of the source
     * @return false when NCCL cannot take the call ({@link #lastReason()} says why)
     * @throws dev.kiln.engine.KilnException for two arrays on one GPU, mismatched arrays, a bad root or an NCCL failure
     */
    public static boolean broadcast(List<NDArray> arrays, int root) {
        long[] h = handles(arrays);
        int[] done = new int[1];
        String why = Native.string(KilnNative.kiln_nccl_broadcast(h.length, h, root, done), "NCCL broadcast");
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

    private static long[] handles(List<NDArray> arrays) {
        long[] h = new long[arrays.size()];
        for (int i = 0; i < h.length; i++) {
            h[i] = arrays.get(i).handle();
        }
        return h;
    }
}
