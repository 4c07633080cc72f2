package dev.kiln.kvstore;

import dev.kiln.internal.AtomicFiles;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.Updater;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;

/**
 * MXNet's key-value store for data-parallel training.
 *
 * <ul>
 *   <li>{@code local} and {@code device}: one process, several devices. {@link #push} sums the
 *       values given for a key (one per device). {@code local} keeps its copies, merge buffers and
 *       optimizer states on the CPU. {@code device} moves a key's copy to one of its values' GPUs
 *       at the key's first push whose values are all on GPUs (and the store has no gradient
 *       compression), the one holding the fewest bytes of keys so far, as MXNet's {@code device}
 *       store spreads its merge buffers: the sum (NCCL when the values are on distinct GPUs), the
 *       optimizer's update (one call per GPU) and its states then stay on that GPU, and a pull
 *       copies from there; other keys stay on the CPU.</li>
 *   <li>{@code dist_sync} and {@code dist_device_sync}: several processes (see {@link DistEnv});
 *       after the local sum, the gradients of all workers are summed with an allreduce of an
 *       existing collective engine ({@link Collective}: Gloo in the optional {@code kiln-kvstore-gloo}
 *       jar), fused into buckets of about 25 MB ({@code KILN_KVSTORE_BUCKET_MB}). The optimizer is
 *       replicated: every worker applies the same update to the same weights, which is MXNet's
 *       {@code dist_sync} maths (one process with the combined batch) without parameter servers.
 *       {@link #init} keeps rank 0's values (broadcast), as MXNet does. {@code dist_async} is not
 *       offered.</li>
 * </ul>
 *
 * With an optimizer installed ({@link #setOptimizer}) the sum is the gradient and the store updates
 * its own copy of the weight, all keys of a push in one fused native call; without one the sum
 * replaces the stored value. {@link #pull} copies the stored value to every output.
 *
 * <p>Ownership: the store owns its copies, its merge buffers, the updater's states and, when it
 * created it, the collective; {@link #close()} frees them (idempotent). Values passed in are only
 * read. Thread-safety: not thread-safe; in the distributed stores every rank must call the same
 * methods with the same keys in the same order.
 */
public final class KVStore implements AutoCloseable {
    private static final long DEFAULT_BUCKET_BYTES = 25L << 20;

    private final String type;
    private final Context home = Context.cpu(0);
    private final Map<String, NDArray> store = new LinkedHashMap<>();
    private final Map<String, NDArray> merged = new LinkedHashMap<>();
    /** {@code device} store: per key, the NCCL reduction's result on the first value's GPU, when the key stayed on the CPU. */
    private final Map<String, NDArray> mergedOnDevice = new LinkedHashMap<>();
    /** {@code device} store: bytes of the keys moved to each GPU so far (placement's load). */
    private final Map<Context, Long> placedBytes = new java.util.HashMap<>();
    /** {@code device} store: keys whose placement was decided (at their first push). */
    private final java.util.Set<String> placed = new java.util.HashSet<>();
    private final Collective group;
    private final boolean ownsGroup;
    private final long bucketBytes;
    private final List<ByteBuffer> bucketBuffers = new ArrayList<>();
    private final List<ByteBuffer> gatherBuffers = new ArrayList<>();
    private GradientCompression compression;
    private Updater updater;
    private boolean closed;

    private KVStore(String type, Collective group, boolean ownsGroup, long bucketBytes) {
        this.type = type;
        this.group = group;
        this.ownsGroup = ownsGroup;
        this.bucketBytes = bucketBytes;
    }

    /**
     * Creates a store: {@code "local"}, {@code "device"}, {@code "dist_sync"} or {@code
     * "dist_device_sync"}. The distributed types join the process group described by the environment
     * ({@link DistEnv#fromEnvironment()}) through the first {@link CollectiveProvider} found on the
     * class path that serves the type ({@code KILN_KVSTORE_BACKEND} picks one by name).
     */
    public static KVStore create(String type) {
        checkType(type);
        if (!isDist(type)) {
            return new KVStore(type, null, false, DEFAULT_BUCKET_BYTES);
        }
        CollectiveProvider p = provider(type, System.getenv("KILN_KVSTORE_BACKEND"));
        return new KVStore(type, p.join(DistEnv.fromEnvironment()), true, bucketBytesFromEnv());
    }

    /**
     * Creates a distributed store ({@code "dist_sync"} or {@code "dist_device_sync"}) over a
     * collective the caller made (an embedding launcher, or {@link ThreadCollective} in tests). The
     * store does not close {@code group}.
     */
    public static KVStore create(String type, Collective group) {
        return create(type, group, bucketBytesFromEnv());
    }

    /** As {@link #create(String, Collective)}, fusing at most {@code bucketBytes} per collective call (one bigger key goes alone). */
    public static KVStore create(String type, Collective group, long bucketBytes) {
        checkType(type);
        if (!isDist(type)) {
            throw new IllegalArgumentException("KVStore '" + type + "' is a single-process store; a collective is for dist_sync and dist_device_sync");
        }
        if (bucketBytes < 4) {
            throw new IllegalArgumentException("KVStore bucket size must be at least 4 bytes, got " + bucketBytes);
        }
        return new KVStore(type, group, false, bucketBytes);
    }

    private static void checkType(String type) {
        if (type != null && type.startsWith("dist") && type.contains("async")) {
            throw new IllegalArgumentException("KVStore '" + type + "' is not offered: Kiln has no parameter servers. Use 'dist_sync' "
                    + "(synchronous allreduce, MXNet's dist_sync maths) or 'dist_device_sync'");
        }
        if (!List.of("local", "device", "dist_sync", "dist_device_sync").contains(type)) {
            throw new IllegalArgumentException("unknown KVStore type '" + type + "': Kiln has 'local', 'device', 'dist_sync' and 'dist_device_sync'");
        }
    }

    private static boolean isDist(String type) {
        return type.startsWith("dist");
    }

    private static CollectiveProvider provider(String type, String wanted) {
        List<String> seen = new ArrayList<>();
        for (CollectiveProvider p : ServiceLoader.load(CollectiveProvider.class)) {
            seen.add(p.name());
            if ((wanted == null || wanted.equals(p.name())) && p.supports(type)) {
                return p;
            }
        }
        if (seen.isEmpty()) {
            throw new IllegalStateException("KVStore '" + type + "' needs a collective engine on the class path: add dev.kiln:kiln-kvstore-gloo "
                    + "(Gloo through org.bytedeco:pytorch), see kvstore-gloo/README.md");
        }
        throw new IllegalStateException("no collective engine serves KVStore '" + type + "'"
                + (wanted != null ? " with KILN_KVSTORE_BACKEND=" + wanted : "") + "; found " + seen);
    }

    private static long bucketBytesFromEnv() {
        String v = System.getenv("KILN_KVSTORE_BUCKET_MB");
        if (v == null) {
            return DEFAULT_BUCKET_BYTES;
        }
        try {
            double mb = Double.parseDouble(v.trim());
            if (mb > 0 && mb <= 1024) {
                return Math.max(4, (long) (mb * (1 << 20)));
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException("KILN_KVSTORE_BUCKET_MB must be a number of MB in (0, 1024], got '" + v + "'");
    }

    /** The store's type. */
    public String type() {
        return type;
    }

    /** The number of worker processes (1 for the single-process stores). */
    public int numWorkers() {
        return group == null ? 1 : group.size();
    }

    /** This worker's rank in {@code [0, numWorkers())} (0 for the single-process stores). */
    public int rank() {
        return group == null ? 0 : group.rank();
    }

    /** Whether the store is a {@code dist_*} store. */
    public boolean isDistributed() {
        return group != null;
    }

    /** MXNet's {@code is_capable}: {@code "optimizer"} is true for every Kiln store (updates run in each worker). */
    public boolean isCapable(String capability) {
        if (!capability.equals("optimizer")) {
            throw new IllegalArgumentException("unknown KVStore capability '" + capability + "' (MXNet has 'optimizer')");
        }
        return true;
    }

    /** The collective of a distributed store, or null. */
    public Collective collective() {
        return group;
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("KVStore is closed");
        }
    }

    /**
     * Stores a copy of each value under its key (each key once). In a distributed store rank 0's
     * values win: they are broadcast to every worker, which also checks that every rank initialised
     * the same keys with the same shapes and types.
     */
    public void init(List<String> keys, List<NDArray> values) {
        open();
        check(keys.size() == values.size(), "init: " + keys.size() + " keys but " + values.size() + " values");
        for (int i = 0; i < keys.size(); i++) {
            String k = keys.get(i);
            check(!store.containsKey(k) && keys.indexOf(k) == i, "init: key '" + k + "' is already initialized");
        }
        List<NDArray> copies = new ArrayList<>();
        for (int i = 0; i < keys.size(); i++) {
            copies.add(values.get(i).copyTo(home).setName(keys.get(i)).detach());
        }
        try {
            if (group != null) {
                checkSameKeys(keys, copies);
                collect(keys, copies, "broadcast");
            }
        } catch (RuntimeException e) {
            copies.forEach(NDArray::close);
            throw e;
        }
        for (int i = 0; i < keys.size(); i++) {
            store.put(keys.get(i), copies.get(i));
        }
    }

    /** Whether {@code key} was initialized. */
    public boolean contains(String key) {
        return store.containsKey(key);
    }

    /**
     * Pushes, for each key, one value per device: their sum (over devices, then over workers) is the
     * gradient of the installed optimizer (all keys updated in one native call) or, without one, the
     * new stored value. A key listed more than once has all its values summed and is updated once.
     */
    public void push(List<String> keys, List<List<NDArray>> values) {
        open();
        check(keys.size() == values.size(), "push: " + keys.size() + " keys but " + values.size() + " value lists");
        if (new java.util.HashSet<>(keys).size() != keys.size()) {
            // a key given more than once: its values are summed together and it is updated once, as
            // MXNet groups them (GroupKVPairsPush)
            Map<String, List<NDArray>> grouped = new LinkedHashMap<>();
            for (int i = 0; i < keys.size(); i++) {
                grouped.computeIfAbsent(keys.get(i), k -> new ArrayList<>()).addAll(values.get(i));
            }
            keys = new ArrayList<>(grouped.keySet());
            values = new ArrayList<>(grouped.values());
        }
        List<NDArray> sums = new ArrayList<>(keys.size());
        List<NcclSum> viaNccl = new ArrayList<>();
        for (int i = 0; i < keys.size(); i++) {
            String k = keys.get(i);
            List<NDArray> vs = values.get(i);
            check(!vs.isEmpty(), "push: no values for key '" + k + "'");
            NDArray held = stored(k, "push");
            for (NDArray v : vs) {
                check(v.shape().equals(held.shape()), "push: key '" + k + "' holds " + held.shape() + " but a value is " + v.shape());
            }
            NDArray stored = place(k, held, vs);
            NDArray m = merged.computeIfAbsent(k, x -> NDArray.zeros(stored.shape(), stored.dtype(), stored.context()).detach());
            NcclSum viaDevices;
            if (compression != null && group == null) {
                sumCompressed(k, vs, m);
            } else if ((viaDevices = ncclSum(k, vs, stored, m)) != null) {
                viaNccl.add(viaDevices);  // summed below, with the push's other NCCL sums
            } else {
                NDArray.sumInto(vs, m);
            }
            sums.add(m);
        }
        sumWithNccl(viaNccl);
        if (group != null) {
            collect(keys, sums, compression != null ? "compressed" : "allreduce");
        }
        if (updater != null) {
            // one update call per device of the stored weights (as MXNet's updater runs where each
            // key lives): each call's fused update stays on one device, so a GPU's can replay a
            // CUDA graph
            Map<Context, List<Integer>> byDevice = new LinkedHashMap<>();
            for (int i = 0; i < keys.size(); i++) {
                byDevice.computeIfAbsent(store.get(keys.get(i)).context(), c -> new ArrayList<>()).add(i);
            }
            for (List<Integer> idx : byDevice.values()) {
                List<Object> ks = new ArrayList<>();
                List<NDArray> gs = new ArrayList<>(), ws = new ArrayList<>();
                for (int i : idx) {
                    ks.add(keys.get(i));
                    gs.add(sums.get(i));
                    ws.add(store.get(keys.get(i)));
                }
                updater.update(ks, gs, ws);
            }
        } else {
            for (int i = 0; i < keys.size(); i++) {
                sums.get(i).copyTo(store.get(keys.get(i)));
            }
        }
    }

    /**
     * The stored copy of {@code k} ({@code stored}), first moved to the values' GPU holding the
     * fewest bytes of keys so far when this is the key's first push in a {@code device} store and
     * every value is on a GPU (see the class comment).
     */
    private NDArray place(String k, NDArray stored, List<NDArray> vs) {
        if (!type.equals("device") || compression != null || !placed.add(k)) {
            return stored;
        }
        for (NDArray v : vs) {
            if (!v.context().isGpu()) {
                return stored;
            }
        }
        // the values' GPU holding the fewest bytes of keys so far (the first on a tie), as MXNet's
        // CommDevice spreads its merge buffers: weights, merge buffers, optimizer states and
        // updates are shared out over the GPUs instead of all landing on the first one
        Context target = vs.get(0).context();
        for (NDArray v : vs) {
            if (placedBytes.getOrDefault(v.context(), 0L) < placedBytes.getOrDefault(target, 0L)) {
                target = v.context();
            }
        }
        placedBytes.merge(target, stored.size() * stored.dtype().bytes(), Long::sum);
        NDArray moved = stored.copyTo(target).setName(k).detach();
        store.put(k, moved);
        stored.close();
        return moved;
    }

    /**
     * Copies the stored value of each key into every array of its output list. In a {@code device}
     * store, a key whose outputs are on distinct GPUs is copied once, into the output on its GPU (or
     * the first), and NCCL broadcasts it to the others: one batch per list of GPUs and dtype.
     */
    public void pull(List<String> keys, List<List<NDArray>> outs) {
        open();
        check(keys.size() == outs.size(), "pull: " + keys.size() + " keys but " + outs.size() + " output lists");
        Map<NcclBatch, List<Integer>> batches = new LinkedHashMap<>();
        for (int i = 0; i < keys.size(); i++) {
            NDArray stored = stored(keys.get(i), "pull");
            List<NDArray> os = outs.get(i);
            if (type.equals("device") && os.size() > 1 && onDistinctGpus(os, stored)) {
                batches.computeIfAbsent(NcclBatch.of(os), c -> new ArrayList<>()).add(i);
                continue;
            }
            for (NDArray o : os) {
                stored.copyTo(o);
            }
        }
        for (List<Integer> batch : batches.values()) {
            List<List<NDArray>> arrays = new ArrayList<>();
            int[] roots = new int[batch.size()];
            for (int b = 0; b < batch.size(); b++) {
                NDArray stored = store.get(keys.get(batch.get(b)));
                List<NDArray> os = outs.get(batch.get(b));
                for (int r = 0; r < os.size(); r++) {
                    if (os.get(r).context().equals(stored.context())) {
                        roots[b] = r;
                    }
                }
                stored.copyTo(os.get(roots[b]));
                arrays.add(os);
            }
            if (!Nccl.broadcastAll(arrays, roots)) {
                for (int b = 0; b < batch.size(); b++) {
                    NDArray stored = store.get(keys.get(batch.get(b)));
                    for (NDArray o : outs.get(batch.get(b))) {
                        stored.copyTo(o);
                    }
                }
            }
        }
    }

    /**
     * What the keys of one NCCL batch share: their arrays' GPUs, in order, and their dtype (so a
     * dtype NCCL lacks declines only its own keys).
     */
    private record NcclBatch(List<Context> devices, DType dtype) {
        static NcclBatch of(List<NDArray> arrays) {
            List<Context> c = new ArrayList<>(arrays.size());
            for (NDArray a : arrays) {
                c.add(a.context());
            }
            return new NcclBatch(c, arrays.get(0).dtype());
        }
    }

    /** True when every array is on its own GPU and has the stored value's dtype (NCCL's case). */
    private static boolean onDistinctGpus(List<NDArray> arrays, NDArray stored) {
        java.util.Set<Integer> ids = new java.util.HashSet<>();
        for (NDArray a : arrays) {
            if (!a.context().isGpu() || a.dtype() != stored.dtype() || !ids.add(a.context().devId())) {
                return false;
            }
        }
        return true;
    }

    /**
     * One key's sum through NCCL: its values, the buffer NCCL sums into ({@code into}) and the merge
     * buffer {@code m}; {@code into} is {@code m} when {@code m} is on one of the values' GPUs, else a
     * buffer on the first value's GPU, copied into {@code m} afterwards.
     */
    private record NcclSum(List<NDArray> values, NDArray into, NDArray m) {}

    /**
     * {@code device} store with values on several GPUs: the key's NCCL sum, or null when that does
     * not apply or NCCL is not available (the caller then sums through host copies).
     */
    private NcclSum ncclSum(String key, List<NDArray> vs, NDArray stored, NDArray m) {
        if (!type.equals("device") || vs.size() < 2 || !onDistinctGpus(vs, stored)) {
            return null;
        }
        for (NDArray v : vs) {
            if (m.context().equals(v.context())) {
                return new NcclSum(vs, m, m);  // the key lives on one of these GPUs: reduce straight into its merge buffer
            }
        }
        if (!Nccl.describe().startsWith("NCCL ")) {
            return null;  // no NCCL: no buffer on the GPU either
        }
        NDArray onDevice = mergedOnDevice.computeIfAbsent(key,
                x -> NDArray.zeros(stored.shape(), stored.dtype(), vs.get(0).context()).detach());
        if (!onDevice.context().equals(vs.get(0).context())) {
            return null;  // the devices changed since the first push: not worth a second buffer
        }
        return new NcclSum(vs, onDevice, m);
    }

    /**
     * The NCCL sums of a push, one batch per list of GPUs and dtype (one group call and one wait for
     * all its keys, instead of one per key); a batch NCCL declines is summed through host copies.
     * For two devices the result has the same bits as that sum; for more, NCCL's summation order
     * may differ in the last place.
     */
    private static void sumWithNccl(List<NcclSum> sums) {
        Map<NcclBatch, List<NcclSum>> batches = new LinkedHashMap<>();
        for (NcclSum s : sums) {
            batches.computeIfAbsent(NcclBatch.of(s.values()), c -> new ArrayList<>()).add(s);
        }
        for (List<NcclSum> batch : batches.values()) {
            List<List<NDArray>> parts = new ArrayList<>();
            List<NDArray> intos = new ArrayList<>();
            for (NcclSum s : batch) {
                parts.add(s.values());
                intos.add(s.into());
            }
            boolean done = Nccl.reduceSumAll(parts, intos);
            for (NcclSum s : batch) {
                if (!done) {
                    NDArray.sumInto(s.values(), s.m());
                } else if (s.into() != s.m()) {
                    s.into().copyTo(s.m());
                }
            }
        }
    }

    /** {@link #push} then {@link #pull} (MXNet's {@code pushpull}; Module's path for dense parameters). */
    public void pushPull(List<String> keys, List<List<NDArray>> values, List<List<NDArray>> outs) {
        push(keys, values);
        pull(keys, outs);
    }

    /** {@link #init} then {@link #pull}: rank 0's values reach every output of every worker. */
    public void broadcast(List<String> keys, List<NDArray> values, List<List<NDArray>> outs) {
        init(keys, values);
        pull(keys, outs);
    }

    /**
     * MXNet's {@code row_sparse_pull} into a dense array: the rows of {@code key}'s stored value named
     * by {@code rowIds} (integers, any order, repeats allowed) are copied into the same rows of
     * {@code out}, every other row of {@code out} is set to zero (the dense view of MXNet's
     * row-sparse result). Every worker holds the whole value, so no communication is needed.
     */
    public void rowSparsePull(String key, NDArray out, NDArray rowIds) {
        open();
        NDArray stored = stored(key, "row_sparse_pull");
        check(out.shape().equals(stored.shape()) && out.dtype() == stored.dtype(), "row_sparse_pull: key '" + key + "' holds "
                + stored.shape() + " " + stored.dtype() + ", out is " + out.shape() + " " + out.dtype());
        check(stored.shape().ndim() >= 1, "row_sparse_pull: key '" + key + "' is a scalar");
        long rows = stored.shape().dims()[0];
        int rowBytes = (int) (stored.size() / Math.max(1, rows) * stored.dtype().bytes());
        byte[] src = stored.toBytes();
        byte[] dst = new byte[src.length];
        for (double id : rowIds.toDoubleArray()) {
            check(id == Math.rint(id) && id >= 0 && id < rows, "row_sparse_pull: row id " + id + " of key '" + key
                    + "' is not an integer in [0, " + rows + ")");
            System.arraycopy(src, (int) id * rowBytes, dst, (int) id * rowBytes, rowBytes);
        }
        out.set(ByteBuffer.wrap(dst));
    }

    /** Waits until every worker has reached this call (no-op in the single-process stores). */
    public void barrier() {
        open();
        if (group != null) {
            group.barrier();
        }
    }

    /**
     * Turns on MXNet's 2-bit gradient compression ({@code type} "2bit", {@code threshold}, default 0.5)
     * for the {@code device} and {@code dist_*} stores. {@code device} quantizes each device's value
     * before summing; {@code dist_*} quantizes each worker's local sum (the residual stays on the
     * worker) and gathers the 16x smaller codes from all workers, which every worker dequantizes and
     * sums in rank order. Call it before the first push.
     */
    public void setGradientCompression(Map<String, ?> params) {
        open();
        if (type.equals("local")) {
            throw new IllegalArgumentException("gradient compression is not supported for KVStore 'local' (MXNet: device and dist stores only)");
        }
        compression = GradientCompression.parse(params);
    }

    /** Installs an optimizer: pushes now update the stored weights (keys are parameter names); every worker holds one. */
    public void setOptimizer(Optimizer optimizer) {
        open();
        if (updater != null) {
            updater.close();
        }
        updater = new Updater(optimizer);
    }

    /** The updater created by {@link #setOptimizer}, or null. */
    public Updater updater() {
        return updater;
    }

    /**
     * Writes the updater's states (MXNet's {@code .states} pickle), atomically. In a distributed store
     * every worker's states are equal; every worker writes its own copy (identical bytes), so a shared
     * file system and per-machine disks both work. MXNet refused this in {@code dist} mode.
     */
    public void saveOptimizerStates(Path file) throws IOException {
        open();
        check(updater != null, "saveOptimizerStates: no optimizer is installed in the KVStore");
        AtomicFiles.write(file, updater.getStates(false));
    }

    /** Reads states written by {@link #saveOptimizerStates} or by MXNet. */
    public void loadOptimizerStates(Path file) throws IOException {
        open();
        check(updater != null, "loadOptimizerStates: no optimizer is installed in the KVStore");
        updater.setStates(Files.readAllBytes(file));
    }

    private NDArray stored(String key, String op) {
        NDArray s = store.get(key);
        check(s != null, op + ": key '" + key + "' was not initialized");
        return s;
    }

    // ---- device-level compression ------------------------------------------------------------------

    /** {@code device} store with compression: out = the sum of each device value's dequantized codes. */
    private void sumCompressed(String key, List<NDArray> values, NDArray out) {
        check(out.dtype() == DType.FLOAT32, "gradient compression needs float32 values, key '" + key + "' is " + out.dtype());
        float[] acc = new float[(int) out.size()];
        IntBuffer codes = IntBuffer.allocate(GradientCompression.words(acc.length));
        for (int d = 0; d < values.size(); d++) {
            codes.clear();
            compression.quantize(key + "#" + d, values.get(d).toFloatArray(), codes);
            codes.flip();
            compression.dequantizeAdd(codes, acc);
        }
        out.set(acc);
    }

    // ---- collectives over buckets ------------------------------------------------------------------

    /** A run of consecutive keys of one dtype sent in one collective call. */
    private record Bucket(int from, int to, long bytes, DType dtype) {}

    private List<Bucket> plan(List<NDArray> arrays, boolean compressed) {
        List<Bucket> out = new ArrayList<>();
        int from = 0;
        long bytes = 0;
        for (int i = 0; i < arrays.size(); i++) {
            NDArray a = arrays.get(i);
            long b = compressed ? 4L * GradientCompression.words((int) a.size()) : a.size() * a.dtype().bytes();
            boolean split = i > from && (bytes + b > bucketBytes || a.dtype() != arrays.get(from).dtype());
            if (split) {
                out.add(new Bucket(from, i, bytes, arrays.get(from).dtype()));
                from = i;
                bytes = 0;
            }
            bytes += b;
        }
        if (from < arrays.size()) {
            out.add(new Bucket(from, arrays.size(), bytes, arrays.get(from).dtype()));
        }
        for (Bucket b : out) {
            check(b.bytes <= Integer.MAX_VALUE - 8, "KVStore: key '" + arrays.get(b.from).name() + "' is " + b.bytes
                    + " bytes; a collective call sends at most 2 GiB");
        }
        return out;
    }

    /** Buffer {@code i} of {@code cache}, grown to at least {@code bytes}, positioned at 0 with limit {@code bytes}. */
    private static ByteBuffer buffer(List<ByteBuffer> cache, int i, long bytes) {
        while (cache.size() <= i) {
            cache.add(null);
        }
        ByteBuffer b = cache.get(i);
        if (b == null || b.capacity() < bytes) {
            b = ByteBuffer.allocateDirect((int) bytes).order(ByteOrder.nativeOrder());
            cache.set(i, b);
        }
        b.clear().limit((int) bytes);
        return b;
    }

    /**
     * Runs {@code mode} ("broadcast" from rank 0, "allreduce" sum, or "compressed" 2-bit gather and
     * sum) over {@code arrays} in place: every bucket is packed and started before the first is
     * awaited, so packing overlaps with communication.
     */
    private void collect(List<String> keys, List<NDArray> arrays, String mode) {
        boolean compressed = mode.equals("compressed");
        List<Bucket> buckets = plan(arrays, compressed);
        List<Collective.Work> started = new ArrayList<>();
        List<ByteBuffer> gathered = new ArrayList<>();
        for (int bi = 0; bi < buckets.size(); bi++) {
            Bucket b = buckets.get(bi);
            ByteBuffer buf = buffer(bucketBuffers, bi, b.bytes);
            try {
                if (compressed) {
                    IntBuffer codes = buf.asIntBuffer();
                    for (int i = b.from; i < b.to; i++) {
                        compression.quantize(keys.get(i), floats(arrays.get(i), keys.get(i)), codes);
                    }
                    check(b.bytes * group.size() <= Integer.MAX_VALUE - 8, "KVStore: compressed bucket of " + b.bytes + " bytes x "
                            + group.size() + " workers is above 2 GiB");
                    ByteBuffer all = buffer(gatherBuffers, bi, b.bytes * group.size());
                    gathered.add(all);
                    started.add(group.allgather(buf, all));
                } else {
                    for (int i = b.from; i < b.to; i++) {
                        arrays.get(i).copyTo(buf);
                    }
                    buf.flip();
                    started.add(mode.equals("broadcast") ? group.broadcast(buf, 0) : group.allreduceSum(buf, checkSummable(b, keys)));
                }
            } catch (CollectiveException e) {
                throw failed(mode, b, keys, e);
            }
        }
        for (int bi = 0; bi < buckets.size(); bi++) {
            Bucket b = buckets.get(bi);
            try {
                started.get(bi).await();
            } catch (CollectiveException e) {
                throw failed(mode, b, keys, e);
            }
            if (compressed) {
                unpackCompressed(b, arrays, gathered.get(bi));
            } else {
                ByteBuffer buf = bucketBuffers.get(bi);
                int off = 0;
                for (int i = b.from; i < b.to; i++) {
                    int n = (int) (arrays.get(i).size() * arrays.get(i).dtype().bytes());
                    arrays.get(i).set(buf.slice(off, n).order(ByteOrder.nativeOrder()));
                    off += n;
                }
            }
        }
    }

    private void unpackCompressed(Bucket b, List<NDArray> arrays, ByteBuffer all) {
        List<float[]> acc = new ArrayList<>();
        for (int i = b.from; i < b.to; i++) {
            acc.add(new float[(int) arrays.get(i).size()]);
        }
        IntBuffer codes = all.asIntBuffer();
        for (int r = 0; r < group.size(); r++) {
            for (float[] a : acc) {
                compression.dequantizeAdd(codes, a);
            }
        }
        for (int i = b.from; i < b.to; i++) {
            arrays.get(i).set(acc.get(i - b.from));
        }
    }

    private static float[] floats(NDArray a, String key) {
        check(a.dtype() == DType.FLOAT32, "gradient compression needs float32 values, key '" + key + "' is " + a.dtype());
        return a.toFloatArray();
    }

    private static DType checkSummable(Bucket b, List<String> keys) {
        check(b.dtype == DType.FLOAT32 || b.dtype == DType.FLOAT64, "KVStore: the distributed sum takes float32 and float64 values; key '"
                + keys.get(b.from) + "' is " + b.dtype);
        return b.dtype;
    }

    private CollectiveException failed(String mode, Bucket b, List<String> keys, CollectiveException e) {
        String what = b.to - b.from == 1 ? "key '" + keys.get(b.from) + "'" : "keys '" + keys.get(b.from) + "' .. '" + keys.get(b.to - 1) + "'";
        return new CollectiveException("KVStore " + type + " rank " + rank() + "/" + numWorkers() + ": " + mode + " of " + what + " ("
                + b.bytes + " bytes) failed: " + e.getMessage(), e);
    }

    /** Checks, through one gather of a hash, that every rank has the same keys, shapes and types in the same order. */
    private void checkSameKeys(List<String> keys, List<NDArray> values) {
        StringBuilder sig = new StringBuilder();
        for (int i = 0; i < keys.size(); i++) {
            sig.append(keys.get(i)).append(Arrays.toString(values.get(i).shape().dims())).append(values.get(i).dtype()).append(';');
        }
        long h = fnv64(sig.toString());
        long[] all = group.allgatherLong(h);
        for (int r = 0; r < all.length; r++) {
            if (all[r] != h) {
                throw new IllegalStateException("KVStore " + type + ": rank " + r + " initialised different keys, shapes or types than rank "
                        + rank() + " (every worker must init the same parameters in the same order); rank " + rank() + " has " + keys.size()
                        + " keys: " + (sig.length() > 300 ? sig.substring(0, 300) + "..." : sig));
            }
        }
    }

    private static long fnv64(String s) {
        long h = 0xcbf29ce484222325L;
        for (int i = 0; i < s.length(); i++) {
            h = (h ^ s.charAt(i)) * 0x100000001b3L;
        }
        return h;
    }

    private static void check(boolean ok, String msg) {
        if (!ok) {
            throw new IllegalArgumentException(msg);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        store.values().forEach(NDArray::close);
        store.clear();
        merged.values().forEach(NDArray::close);
        merged.clear();
        mergedOnDevice.values().forEach(NDArray::close);
        mergedOnDevice.clear();
        bucketBuffers.clear();
        gatherBuffers.clear();
        if (updater != null) {
            updater.close();
        }
        if (ownsGroup) {
            group.close();
        }
    }
}
