package dev.kiln.kvstore;

import dev.kiln.ndarray.DType;

import java.nio.ByteBuffer;

/**
 * A process group: the few collective operations a distributed {@link KVStore} needs, supplied by
 * an existing collective engine (Gloo through the optional {@code kiln-kvstore-gloo} module, or
 * {@link ThreadCollective} for tests in one JVM). Kiln adds no protocol of its own: it only fuses
 * buffers, orders the calls and applies the update.
 *
 * <p>Every rank must issue the same operations, with the same sizes, in the same order. Buffers are
 * direct, in native byte order, and are read from their position to their limit; the caller keeps
 * them alive and untouched until the returned {@link Work} completes. Every operation has the
 * deadline given at creation ({@link DistEnv#timeout()}); a dead or hung peer makes {@link
 * Work#await()} throw {@link CollectiveException} instead of blocking.
 *
 * <p>Ownership: the collective owns its connections; {@link #close()} releases them (idempotent).
 * Thread-safety: one thread at a time issues operations; {@link #abort()} may be called from any
 * thread.
 */
public interface Collective extends AutoCloseable {
    /** This process's rank in {@code [0, size)}. */
    int rank();

    /** The number of processes in the group. */
    int size();

    /** The engine's name, e.g. {@code "gloo"}. */
    String backend();

    /** Starts an in-place elementwise sum over all ranks of {@code data} (float32 or float64 elements). */
    Work allreduceSum(ByteBuffer data, DType dtype);

    /** Starts copying {@code root}'s bytes of {@code data} into every other rank's {@code data}. */
    Work broadcast(ByteBuffer data, int root);

    /**
     * Starts gathering every rank's {@code in} (the same number of bytes on every rank) into
     * {@code out}, in rank order: {@code out} holds {@code size() * in.remaining()} bytes.
     */
    Work allgather(ByteBuffer in, ByteBuffer out);

    /** Blocks until every rank has reached this barrier (within the deadline). */
    void barrier();

    /** Gathers one long from every rank, in rank order (blocking). */
    default long[] allgatherLong(long value) {
        ByteBuffer in = ByteBuffer.allocateDirect(8).order(java.nio.ByteOrder.nativeOrder());
        ByteBuffer out = ByteBuffer.allocateDirect(8 * size()).order(java.nio.ByteOrder.nativeOrder());
        in.putLong(0, value);
        allgather(in, out).await();
        long[] r = new long[size()];
        for (int i = 0; i < r.length; i++) {
            r[i] = out.getLong(8 * i);
        }
        return r;
    }

    /** Tears the group down at once (other ranks' pending operations fail); safe from any thread. */
    void abort();

    /** Releases the group (idempotent). */
    @Override
    void close();

    /** A started operation. */
    interface Work {
        /** Waits for the operation to finish; throws {@link CollectiveException} on a peer failure or the deadline. */
        void await();
    }
}
