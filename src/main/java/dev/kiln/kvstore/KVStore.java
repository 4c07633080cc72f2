package dev.kiln.kvstore;

import dev.kiln.internal.AtomicFiles;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.Updater;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A single-process key-value store for data-parallel training over several devices (MXNet's
 * {@code local} and {@code device} stores). {@link #push} sums the values given for a key (one
 * per device); with an optimizer installed ({@link #setOptimizer}) the sum is the gradient and the
 * store updates its own copy of the weight, all keys of a push in one fused native call; without
 * one the sum replaces the stored value. {@link #pull} copies the stored value to every output.
 *
 * <p>Ownership: the store owns its copies, its merge buffers and the updater's states;
 * {@link #close()} frees them (idempotent). Values passed in are only read. Thread-safety: not
 * thread-safe.
 */
public final class KVStore implements AutoCloseable {
    private final String type;
    private final Context home = Context.cpu(0);
    private final Map<String, NDArray> store = new LinkedHashMap<>();
    private final Map<String, NDArray> merged = new LinkedHashMap<>();
    private Updater updater;
    private boolean closed;

    private KVStore(String type) {
        this.type = type;
    }

    /** Creates a store: {@code "local"} or {@code "device"} (the {@code dist_*} types need several machines; see issue 9). */
    public static KVStore create(String type) {
        if (!type.equals("local") && !type.equals("device")) {
            throw new IllegalArgumentException("unknown KVStore type '" + type + "': Kiln has 'local' and 'device'");
        }
        return new KVStore(type);
    }

    /** The store's type. */
    public String type() {
        return type;
    }

    /** 1 for the single-process stores. */
    public int numWorkers() {
        return 1;
    }

    /** 0 for the single-process stores. */
    public int rank() {
        return 0;
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("KVStore is closed");
        }
    }

    /** Stores a copy of each value under its key (each key once). */
    public void init(List<String> keys, List<NDArray> values) {
        open();
        check(keys.size() == values.size(), "init: " + keys.size() + " keys but " + values.size() + " values");
        for (int i = 0; i < keys.size(); i++) {
            String k = keys.get(i);
            check(!store.containsKey(k), "init: key '" + k + "' is already initialized");
            NDArray v = values.get(i);
            store.put(k, v.copyTo(home).setName(k).detach());
        }
    }

    /** Whether {@code key} was initialized. */
    public boolean contains(String key) {
        return store.containsKey(key);
    }

    /**
     * Pushes, for each key, one value per device: their sum is the gradient of the installed
     * optimizer (all keys updated in one native call) or, without one, the new stored value.
     */
    public void push(List<String> keys, List<List<NDArray>> values) {
        open();
        check(keys.size() == values.size(), "push: " + keys.size() + " keys but " + values.size() + " value lists");
        List<NDArray> sums = new ArrayList<>(keys.size());
        for (int i = 0; i < keys.size(); i++) {
            String k = keys.get(i);
            NDArray stored = store.get(k);
            check(stored != null, "push: key '" + k + "' was not initialized");
            List<NDArray> vs = values.get(i);
            check(!vs.isEmpty(), "push: no values for key '" + k + "'");
            NDArray m = merged.computeIfAbsent(k, x -> NDArray.zeros(stored.shape(), stored.dtype(), home).detach());
            NDArray.sumInto(vs, m);
            sums.add(m);
        }
        if (updater != null) {
            List<Object> ks = new ArrayList<>(keys);
            List<NDArray> ws = new ArrayList<>();
            keys.forEach(k -> ws.add(store.get(k)));
            updater.update(ks, sums, ws);
        } else {
            for (int i = 0; i < keys.size(); i++) {
                sums.get(i).copyTo(store.get(keys.get(i)));
            }
        }
    }

    /** Copies the stored value of each key into every array of its output list. */
    public void pull(List<String> keys, List<List<NDArray>> outs) {
        open();
        check(keys.size() == outs.size(), "pull: " + keys.size() + " keys but " + outs.size() + " output lists");
        for (int i = 0; i < keys.size(); i++) {
            NDArray stored = store.get(keys.get(i));
            check(stored != null, "pull: key '" + keys.get(i) + "' was not initialized");
            for (NDArray o : outs.get(i)) {
                stored.copyTo(o);
            }
        }
    }

    /** Installs an optimizer: pushes now update the stored weights (keys are parameter names). */
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

    /** Writes the updater's states (MXNet's {@code .states} pickle), atomically. */
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
        if (updater != null) {
            updater.close();
        }
    }
}
