package dev.kiln.kvstore;

import dev.kiln.ndarray.DType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The in-process test double of {@link Collective}: {@code n} ranks that are threads of one JVM,
 * meeting at a barrier. Sums are taken in rank order in the buffer's precision, so every rank gets
 * bit-identical results, as with Gloo's allreduce. A rank that stops calling makes the others fail
 * at the deadline; {@link #abort()} makes them fail at once.
 *
 * <p>Ownership: members share one group object and no native memory. Thread-safety: each member is
 * used by its own thread; {@link #abort()} may be called from any thread.
 */
public final class ThreadCollective implements Collective {
    private static final Work DONE = () -> { };

    private final Group g;
    private final int rank;
    private boolean closed;

    private static final class Group {
        final int size;
        final long timeoutNanos;
        final CyclicBarrier barrier;
        final ByteBuffer[] slots;
        volatile String abortedBy;

        Group(int size, Duration timeout) {
            this.size = size;
            this.timeoutNanos = timeout.toNanos();
            this.barrier = new CyclicBarrier(size);
            this.slots = new ByteBuffer[size];
        }
    }

    private ThreadCollective(Group g, int rank) {
        this.g = g;
        this.rank = rank;
    }

    /** Creates the {@code size} members of one group; member {@code r} is rank {@code r}. */
    public static List<Collective> group(int size, Duration timeout) {
        if (size < 1) {
            throw new IllegalArgumentException("ThreadCollective needs at least 1 rank, got " + size);
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("ThreadCollective timeout must be positive, got " + timeout);
        }
        Group g = new Group(size, timeout);
        List<Collective> members = new ArrayList<>(size);
        for (int r = 0; r < size; r++) {
            members.add(new ThreadCollective(g, r));
        }
        return members;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return g.size;
    }

    @Override
    public String backend() {
        return "threads";
    }

    @Override
    public Work allreduceSum(ByteBuffer data, DType dtype) {
        int width = dtype == DType.FLOAT32 ? 4 : dtype == DType.FLOAT64 ? 8 : -1;
        if (width < 0) {
            throw new IllegalArgumentException("allreduceSum sums float32 or float64, got " + dtype);
        }
        check(data, "allreduceSum");
        if (data.remaining() % width != 0) {
            throw new IllegalArgumentException("allreduceSum: " + data.remaining() + " bytes is not a whole number of " + dtype + " elements");
        }
        ByteBuffer[] in = exchange(data, "allreduceSum");
        int n = data.remaining() / width;
        ByteBuffer sum = ByteBuffer.allocate(data.remaining()).order(ByteOrder.nativeOrder());
        for (int i = 0; i < n; i++) {
            if (width == 4) {
                float s = in[0].getFloat(in[0].position() + 4 * i);
                for (int r = 1; r < g.size; r++) {
                    s += in[r].getFloat(in[r].position() + 4 * i);
                }
                sum.putFloat(4 * i, s);
            } else {
                double s = in[0].getDouble(in[0].position() + 8 * i);
                for (int r = 1; r < g.size; r++) {
                    s += in[r].getDouble(in[r].position() + 8 * i);
                }
                sum.putDouble(8 * i, s);
            }
        }
        sync("allreduceSum");
        data.duplicate().put(sum);
        return DONE;
    }

    @Override
    public Work broadcast(ByteBuffer data, int root) {
        check(data, "broadcast");
        if (root < 0 || root >= g.size) {
            throw new IllegalArgumentException("broadcast root " + root + " is outside [0, " + g.size + ")");
        }
        ByteBuffer[] in = exchange(data, "broadcast");
        if (rank != root) {
            data.duplicate().put(in[root].duplicate());
        }
        sync("broadcast");
        return DONE;
    }

    @Override
    public Work allgather(ByteBuffer in, ByteBuffer out) {
        check(in, "allgather");
        check(out, "allgather");
        if (out.remaining() != (long) g.size * in.remaining()) {
            throw new IllegalArgumentException("allgather: out has " + out.remaining() + " bytes, needs " + g.size + " x " + in.remaining());
        }
        ByteBuffer[] all = exchange(in, "allgather");
        ByteBuffer o = out.duplicate();
        for (ByteBuffer b : all) {
            o.put(b.duplicate());
        }
        sync("allgather");
        return DONE;
    }

    @Override
    public void barrier() {
        open();
        sync("barrier");
    }

    /** Publishes this rank's buffer and waits for everyone's; checks that the sizes agree. */
    private ByteBuffer[] exchange(ByteBuffer mine, String op) {
        g.slots[rank] = mine.duplicate().order(ByteOrder.nativeOrder()); // duplicate() resets the order to big-endian
        sync(op);
        ByteBuffer[] all = g.slots.clone();
        for (int r = 0; r < g.size; r++) {
            if (all[r].remaining() != mine.remaining()) {
                String msg = "rank " + rank + ": " + op + " sizes differ: rank " + r + " has " + all[r].remaining() + " bytes, rank "
                        + rank + " has " + mine.remaining();
                sync(op);
                throw new CollectiveException(msg);
            }
        }
        return all;
    }

    private void sync(String op) {
        String aborted = g.abortedBy;
        if (aborted != null) {
            throw new CollectiveException("rank " + rank + ": " + op + " failed: the group was aborted by " + aborted);
        }
        try {
            g.barrier.await(g.timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new CollectiveException("rank " + rank + ": " + op + " timed out after "
                    + Duration.ofNanos(g.timeoutNanos).toMillis() + " ms waiting for the other ranks", e);
        } catch (BrokenBarrierException e) {
            String by = g.abortedBy;
            throw new CollectiveException("rank " + rank + ": " + op + " failed: "
                    + (by != null ? "the group was aborted by " + by : "another rank failed or timed out"), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CollectiveException("rank " + rank + ": " + op + " interrupted", e);
        }
    }

    private void check(ByteBuffer b, String op) {
        open();
        if (!b.isDirect() || b.order() != ByteOrder.nativeOrder()) {
            throw new IllegalArgumentException(op + " needs a direct buffer in native byte order");
        }
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("rank " + rank + ": the collective is closed");
        }
    }

    @Override
    public void abort() {
        g.abortedBy = "rank " + rank;
        g.barrier.reset();
    }

    @Override
    public void close() {
        closed = true;
    }
}
