package dev.kiln.kvstore.gloo;

import dev.kiln.kvstore.Collective;
import dev.kiln.kvstore.CollectiveException;
import dev.kiln.kvstore.DistEnv;
import dev.kiln.ndarray.DType;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import java.util.regex.Pattern;

import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.javacpp.SizeTPointer;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.AllgatherOptions;
import org.bytedeco.pytorch.AllreduceOptions;
import org.bytedeco.pytorch.BarrierOptions;
import org.bytedeco.pytorch.BroadcastOptions;
import org.bytedeco.pytorch.GlooDeviceVector;
import org.bytedeco.pytorch.ProcessGroupGloo;
import org.bytedeco.pytorch.ReduceOp;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.bytedeco.pytorch.gloo.Device;

/**
 * A {@link Collective} over PyTorch c10d's Gloo process group (libtorch 2.10 through the JavaCPP
 * {@code org.bytedeco:pytorch} preset). This is the only class that touches the preset: the binding
 * is young, so everything torch-specific stays here and is easy to swap.
 *
 * <p>Rendezvous: rank 0 hosts a c10d {@code TCPStore} at {@code MASTER_ADDR:MASTER_PORT}, every other
 * rank connects to it, and {@link #join} returns once all {@code WORLD_SIZE} ranks have joined and
 * the Gloo full mesh is connected. The transport device is the interface(s) named by {@code
 * GLOO_SOCKET_IFNAME} (comma-separated) if set, else 127.0.0.1 when the master address is a loopback
 * address, else the address this host's name resolves to (Gloo's default device).
 *
 * <p>Data: every operation wraps the caller's direct buffer, from its position to its limit, as a
 * libtorch tensor without copying ({@code from_blob}); Gloo reads and writes the caller's memory.
 * Operations of zero bytes complete at once without calling Gloo (every rank skips them alike).
 *
 * <p>Deadlines and failures: Gloo fails an operation that does not complete within {@link
 * DistEnv#timeout()} of starting, and at once when a peer's connection closes (a dead peer). {@link
 * Work#await()} turns every failure into a {@link CollectiveException} naming this rank, the
 * operation, its byte count and Gloo's message; it also gives up by itself shortly after the
 * deadline. After the first failure, or {@link #abort()}, every later operation throws at once.
 *
 * <p>Threads: libtorch's intra-op pool is set to one thread on first use ({@code
 * torch::set_num_threads(1)}, process-wide), so it does not compete with Kiln's kernels; Gloo's
 * reductions run on the process group's own worker threads (c10d's default, 2), which also let two
 * started operations progress together.
 *
 * <p>Ownership: the collective owns the store, the process group and the native handles of every
 * started operation; a {@link Work}'s handles are released when it completes, the rest by {@link
 * #close()}. The caller's buffers must stay reachable and untouched until the operation's {@code
 * await()} returns (or throws); the collective also keeps a reference to them until then.
 * Thread-safety: one thread issues operations and awaits them; {@link #abort()} and {@link
 * #close()} may be called from any thread.
 */
public final class GlooCollective implements Collective {
    /** Extra time after the deadline for Gloo to report its own timeout before {@code await} gives up. */
    private static final long GRACE_NANOS = TimeUnit.SECONDS.toNanos(2);
    /** Longest sleep between two completion checks in {@code await} (short: it adds to every op's latency). */
    private static final long MAX_POLL_NANOS = TimeUnit.MICROSECONDS.toNanos(200);
    /** How often a rank retries reaching rank 0's store during rendezvous. */
    private static final long STORE_RETRY_MILLIS = 100;
    /** The source-location prefix of c10d/Gloo messages, e.g. {@code [/path/gloo/transport/tcp/pair.cc:547] }. */
    private static final Pattern SOURCE_PREFIX = Pattern.compile("^\\[[^\\]]*[/:][^\\]]*\\]\\s*");
    /**
     * What close() left to the OS because an operation was still in flight in Gloo: the group (whose
     * destructor would block until Gloo's timeout), its store, and the works with their buffers.
     */
    private static final List<Object> ABANDONED = new ArrayList<>();
    private static volatile boolean nativesLoaded;

    private final int rank;
    private final int size;
    private final long timeoutNanos;
    private final TCPStore store;
    private final ProcessGroupGloo group;
    /** Started operations whose native handles are not yet released. */
    private final Set<GlooWork> inFlight = ConcurrentHashMap.newKeySet();
    /** Guards the native group against {@link #abort()} racing {@link #close()}. */
    private final Object lifecycle = new Object();
    private volatile boolean closed;
    /** Why the group is unusable (first failure or abort); null while healthy. */
    private volatile String broken;

    private GlooCollective(DistEnv env, TCPStore store, ProcessGroupGloo group) {
        this.rank = env.rank();
        this.size = env.worldSize();
        this.timeoutNanos = env.timeout().toNanos();
        this.store = store;
        this.group = group;
    }

    /**
     * Joins the process group described by {@code env}: blocks until every rank has joined, or
     * throws {@link CollectiveException} once the deadline ({@link DistEnv#timeout()}) has passed.
     *
     * @throws IllegalArgumentException if {@code env} is inconsistent (rank outside the world, bad port, no timeout)
     * @throws IllegalStateException if libtorch's natives cannot be loaded on this platform
     */
    public static GlooCollective join(DistEnv env) {
        checkEnv(env);
        loadNatives();
        long deadline = System.nanoTime() + env.timeout().toNanos();
        String where = env.masterAddr() + ":" + env.masterPort();
        if (env.rank() != 0) {
            awaitStore(env, deadline);
        }
        TCPStore store = null;
        try (PointerScope scope = new PointerScope()) {
            store = retained(openStore(env, deadline));
            ProcessGroupGloo group = retained(openGroup(env, store));
            return new GlooCollective(env, store, group);
        } catch (RuntimeException e) {
            if (store != null) {
                store.releaseReference();
            }
            throw new CollectiveException(prefix(env.rank(), env.worldSize()) + "rendezvous at " + where
                    + " failed: " + causeText(e), e);
        }
    }

    /**
     * Loads libtorch and its Gloo bindings and sets libtorch's intra-op threads to 1 (idempotent).
     * Called by {@link #join}; tests call it once in the parent JVM so that worker JVMs started
     * together find JavaCPP's cache already extracted (concurrent first extraction crashed a JVM).
     */
    static synchronized void loadNatives() {
        if (!nativesLoaded) {
            try {
                Loader.load(torch.class);
                Loader.load(ProcessGroupGloo.class);
            } catch (LinkageError e) {
                throw new IllegalStateException("gloo: cannot load libtorch's natives for " + Loader.getPlatform()
                        + "; is org.bytedeco:pytorch:2.10.0-1.5.13 with classifier " + Loader.getPlatform()
                        + " on the class path?", e);
            }
            torch.set_num_threads(1);
            nativesLoaded = true;
        }
    }

    /** DistEnv checks rank, world and port range itself; port 0 (in-process doubles) and sub-millisecond deadlines are left. */
    private static void checkEnv(DistEnv env) {
        if (env.masterPort() < 1 || env.masterPort() > 65535) {
            throw new IllegalArgumentException("gloo: MASTER_PORT " + env.masterPort() + " is not a TCP port (1..65535)");
        }
        if (env.timeout().toMillis() == 0) {
            throw new IllegalArgumentException("gloo: the deadline must be at least 1 ms, got " + env.timeout());
        }
    }

    /**
     * Waits until rank 0's store accepts TCP connections, so that a missing store host fails at the
     * deadline (c10d's own client retries once more after its timeout, taking about twice as long).
     */
    private static void awaitStore(DistEnv env, long deadline) {
        IOException last = null;
        while (true) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0) {
                throw new CollectiveException(prefix(env.rank(), env.worldSize()) + "rendezvous: no store at "
                        + env.masterAddr() + ":" + env.masterPort() + " (hosted by rank 0) within " + env.timeout()
                        + (last == null ? "" : ": " + last.getMessage()));
            }
            try (Socket probe = new Socket()) {
                probe.connect(new InetSocketAddress(env.masterAddr(), env.masterPort()), (int) Math.min(left, 1000));
                return;
            } catch (IOException e) {
                last = e;
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(Math.min(STORE_RETRY_MILLIS, left)));
            }
        }
    }

    private static TCPStore openStore(DistEnv env, long deadline) {
        long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
        SizeTPointer workers = new SizeTPointer(1).put(env.worldSize());
        TCPStoreOptions options = new TCPStoreOptions()
                .port((short) env.masterPort())
                .isServer(env.rank() == 0)
                .numWorkers(workers)
                .waitWorkers(true)
                .timeout(new Milliseconds(left));
        return new TCPStore(env.masterAddr(), options);
    }

    private static ProcessGroupGloo openGroup(DistEnv env, TCPStore store) {
        ProcessGroupGloo.Options options = ProcessGroupGloo.Options.create(new Milliseconds(env.timeout().toMillis()));
        options.devices(new GlooDeviceVector(devices(env.masterAddr())));
        return new ProcessGroupGloo(store, env.rank(), env.worldSize(), options);
    }

    /** The transport devices: GLOO_SOCKET_IFNAME's interfaces, else loopback or this host's address. */
    private static Device[] devices(String masterAddr) {
        String ifnames = System.getenv("GLOO_SOCKET_IFNAME");
        if (ifnames != null && !ifnames.isBlank()) {
            return Arrays.stream(ifnames.trim().split("\\s*,\\s*"))
                    .map(ProcessGroupGloo::createDeviceForInterface)
                    .toArray(Device[]::new);
        }
        if (isLoopback(masterAddr)) {
            return new Device[] {ProcessGroupGloo.createDeviceForHostname("127.0.0.1")};
        }
        return new Device[] {ProcessGroupGloo.createDefaultDevice()};
    }

    private static boolean isLoopback(String host) {
        try {
            return InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            return false;  // the store connection reports the unknown host
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String backend() {
        return "gloo";
    }

    @Override
    public Work allreduceSum(ByteBuffer data, DType dtype) {
        ScalarType type = switch (dtype) {
            case FLOAT32 -> ScalarType.Float;
            case FLOAT64 -> ScalarType.Double;
            default -> throw new IllegalArgumentException("gloo allreduceSum: float32 or float64 elements, got " + dtype);
        };
        checkBuffer("allreduceSum", "data", data, true);
        if (data.remaining() % dtype.bytes() != 0) {
            throw new IllegalArgumentException("gloo allreduceSum: " + data.remaining() + " bytes is not a whole number of "
                    + dtype + " elements (" + dtype.bytes() + " bytes each)");
        }
        return start("allreduceSum", data.remaining(), new ByteBuffer[] {data}, () -> {
            AllreduceOptions options = new AllreduceOptions().reduceOp(new ReduceOp(ReduceOp.RedOpType.SUM));
            return group.allreduce(new TensorVector(tensor(data, type, dtype.bytes())), options);
        });
    }

    @Override
    public Work broadcast(ByteBuffer data, int root) {
        if (root < 0 || root >= size) {
            throw new IllegalArgumentException("gloo broadcast: root " + root + " is outside a world of size " + size);
        }
        checkBuffer("broadcast", "data", data, root != rank);
        return start("broadcast", data.remaining(), new ByteBuffer[] {data}, () -> {
            BroadcastOptions options = new BroadcastOptions().rootRank(root).rootTensor(0);
            return group.broadcast(new TensorVector(tensor(data, ScalarType.Byte, 1)), options);
        });
    }

    /** Uses c10d's {@code _allgather_base} (one flat output tensor), which Gloo implements in 2.10. */
    @Override
    public Work allgather(ByteBuffer in, ByteBuffer out) {
        checkBuffer("allgather", "in", in, false);
        checkBuffer("allgather", "out", out, true);
        if ((long) in.remaining() * size != out.remaining()) {
            throw new IllegalArgumentException("gloo allgather: out holds " + out.remaining() + " bytes, expected size "
                    + size + " x in " + in.remaining() + " = " + (long) in.remaining() * size);
        }
        return start("allgather", in.remaining(), new ByteBuffer[] {in, out}, () -> group._allgather_base(
                tensor(out, ScalarType.Byte, 1), tensor(in, ScalarType.Byte, 1), new AllgatherOptions()));
    }

    @Override
    public void barrier() {
        startNative("barrier", 0, new ByteBuffer[0], () -> group.barrier(new BarrierOptions())).await();
    }

    /**
     * Marks the group unusable at once: a pending {@link Work#await()} in another thread, and every
     * later operation, throws {@link CollectiveException}. Gloo 2.10 cannot cancel an operation in
     * flight ({@code ProcessGroupGloo} keeps c10d's no-op {@code Backend::abort}, called here anyway),
     * so the other ranks see the failure when this process closes its connections: when it exits,
     * or at their deadline.
     */
    @Override
    public void abort() {
        if (broken == null) {
            broken = "the group was aborted on rank " + rank;
        }
        synchronized (lifecycle) {
            if (!closed) {
                group.abort();
            }
        }
    }

    /**
     * Releases the process group and the store (idempotent). If an operation is still in flight in
     * Gloo (it was aborted or gave up at the deadline), the native group is left to the process
     * instead: its destructor would block until Gloo's own timeout.
     */
    @Override
    public void close() {
        synchronized (lifecycle) {
            if (closed) {
                return;
            }
            closed = true;
            if (broken == null) {
                broken = "the group was closed on rank " + rank;
            }
            boolean busy = inFlight.stream().anyMatch(w -> !w.work.isCompleted());
            if (busy) {
                synchronized (ABANDONED) {
                    ABANDONED.add(group);  // never released: keeps the GC from running its blocking destructor
                    ABANDONED.add(store);
                    ABANDONED.addAll(inFlight);
                }
            } else {
                inFlight.forEach(GlooWork::releaseAtClose);
                group.releaseReference();
                store.releaseReference();
            }
            inFlight.clear();
        }
    }

    private void checkBuffer(String op, String name, ByteBuffer b, boolean written) {
        if (b == null) {
            throw new IllegalArgumentException("gloo " + op + ": " + name + " is null");
        }
        if (!b.isDirect()) {
            throw new IllegalArgumentException("gloo " + op + ": " + name + " must be a direct ByteBuffer (Gloo reads its memory in place)");
        }
        if (b.order() != ByteOrder.nativeOrder()) {
            throw new IllegalArgumentException("gloo " + op + ": " + name + " must be in native byte order (" + ByteOrder.nativeOrder()
                    + "), got " + b.order() + "; note that slice() and duplicate() reset the order");
        }
        if (written && b.isReadOnly()) {
            throw new IllegalArgumentException("gloo " + op + ": " + name + " is read-only but receives data");
        }
    }

    private Work start(String op, long bytes, ByteBuffer[] buffers, Supplier<org.bytedeco.pytorch.Work> launch) {
        if (bytes == 0) {
            checkUsable(op, bytes);
            return () -> { };
        }
        return startNative(op, bytes, buffers, launch);
    }

    private Work startNative(String op, long bytes, ByteBuffer[] buffers, Supplier<org.bytedeco.pytorch.Work> launch) {
        GlooWork work = new GlooWork(op, bytes, buffers);
        synchronized (lifecycle) {  // close() from another thread must not free the group under the launch
            checkUsable(op, bytes);
            // an own scope, so that the caller's PointerScope (Kiln's NDScope) cannot free the work in flight;
            // the tensors, vectors and options die with it: the c10d work holds what it needs natively
            try (PointerScope scope = new PointerScope()) {
                work.work = retained(launch.get());
            } catch (RuntimeException e) {
                throw failed(op, bytes, causeText(e), e);
            }
            inFlight.add(work);
        }
        return work;
    }

    private void checkUsable(String op, long bytes) {
        if (closed) {
            throw new IllegalStateException(prefix(rank, size) + op + " after close()");
        }
        if (broken != null) {
            throw new CollectiveException(prefix(rank, size) + op + " of " + bytes + " bytes refused: " + broken);
        }
    }

    /** A 1-d tensor over {@code b}'s bytes from its position to its limit, without a copy. */
    private static Tensor tensor(ByteBuffer b, ScalarType type, int elementBytes) {
        return torch.from_blob(new BytePointer(b), new long[] {b.remaining() / elementBytes}, new TensorOptions(type));
    }

    private CollectiveException failed(String op, long bytes, String cause, Throwable e) {
        String message = op + " of " + bytes + " bytes failed: " + cause;
        if (broken == null) {
            broken = "an earlier " + message;
        }
        return new CollectiveException(prefix(rank, size) + message, e);
    }

    private static String prefix(int rank, int size) {
        return "gloo rank " + rank + " of " + size + ": ";
    }

    /** The first line of a c10d/Gloo message, without its source-location prefix or C++ stack. */
    private static String causeText(Throwable e) {
        String m = e.getMessage();
        if (m == null || m.isBlank()) {
            return e.getClass().getName();
        }
        String first = m.strip().lines().findFirst().orElse(m);
        return SOURCE_PREFIX.matcher(first).replaceFirst("");
    }

    @SuppressWarnings("unchecked")
    private static <T extends Pointer> T retained(T p) {
        return (T) p.retainReference();
    }

    /** One started operation: the c10d work and the caller's buffers, whose memory Gloo uses. */
    private final class GlooWork implements Work {
        private final String op;
        private final long bytes;
        private final long started = System.nanoTime();
        private ByteBuffer[] buffers;  // kept reachable until released
        private org.bytedeco.pytorch.Work work;  // retained; released when done or by close()
        private boolean done;
        private CollectiveException failure;

        GlooWork(String op, long bytes, ByteBuffer[] buffers) {
            this.op = op;
            this.bytes = bytes;
            this.buffers = buffers;
        }

        /** Whether Gloo is done with the work; true once close() has released it. */
        boolean isCompletedNatively() {
            synchronized (lifecycle) {
                return work.isNull() || work.isCompleted();
            }
        }

        @Override
        public void await() {
            if (!done) {
                done = true;
                failure = outcome();
                release();
            }
            if (failure != null) {
                throw failure;
            }
        }

        /** Waits for the c10d work, then asks it (its wait) for the result: null on success. */
        private CollectiveException outcome() {
            String interrupted = waitForCompletion();
            if (interrupted != null) {
                return failed(op, bytes, interrupted, null);
            }
            try {
                synchronized (lifecycle) {  // completed: c10d's wait returns at once (or throws its error)
                    if (closed) {
                        return failed(op, bytes, "interrupted: " + broken, null);
                    }
                    return work._wait() ? null : failed(op, bytes, "c10d reported the work as unsuccessful", null);
                }
            } catch (RuntimeException e) {
                return failed(op, bytes, causeText(e), e);
            }
        }

        /**
         * Polls the c10d work, so that {@link #abort()} or {@link #close()} from another thread and the
         * deadline end the wait; returns why it ended early, or null once the work has completed.
         */
        private String waitForCompletion() {
            long deadline = started + timeoutNanos + GRACE_NANOS;
            long sleep = 1_000;
            while (!isCompletedNatively()) {
                String why = broken;
                if (why != null) {
                    return "interrupted: " + why;
                }
                if (System.nanoTime() - deadline > 0) {
                    return "no completion within the deadline of " + TimeUnit.NANOSECONDS.toMillis(timeoutNanos) + " ms";
                }
                LockSupport.parkNanos(sleep);
                sleep = Math.min(2 * sleep, MAX_POLL_NANOS);
            }
            return null;
        }

        /** Releases the c10d work unless it is still running in Gloo (then close() abandons it). */
        private void release() {
            synchronized (lifecycle) {
                if (closed || !work.isCompleted()) {
                    return;
                }
                inFlight.remove(this);
                work.releaseReference();
                buffers = null;
            }
        }

        void releaseAtClose() {
            work.releaseReference();
            buffers = null;
        }
    }
}
