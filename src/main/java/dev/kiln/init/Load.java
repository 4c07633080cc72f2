package dev.kiln.init;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.ParamsFile;
import dev.kiln.ndarray.Shape;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Initialises parameters from saved values (MXNet's {@code mx.init.Load}): a {@code .params} file
 * (MXNet's NDArray-list format, any version) or a map of arrays. The {@code arg:}/{@code aux:}
 * prefixes of the saved names are dropped. A parameter found there must have the same shape
 * (else {@link IllegalArgumentException}) and gets the saved values, converted to its dtype; a
 * parameter not found goes to {@code defaultInit} (its full dispatch), or fails when there is none.
 *
 * <p>Ownership: the values are copied into Java memory when the Load is constructed (file or map:
 * the map's arrays are read, not kept — MXNet keeps references, so later changes to them are
 * seen there but not here); a Load holds no native memory and needs no closing.
 *
 * <p>Not registered and not serialisable ({@link #dumps()} throws), as in MXNet. Equality is
 * identity. Immutable; thread-safe if its default initializer is.
 */
public final class Load extends Initializer {
    private static final Logger LOG = LoggerFactory.getLogger(Load.class);

    private record Saved(DType dtype, long[] shape, byte[] data) {}

    private final Map<String, Saved> params;
    private final Initializer defaultInit;
    private final boolean verboseLoad;

    /**
     * Loads a {@code .params} file; names not in the file fail.
     *
     * @param file the file
     * @throws IOException if the file cannot be read or is not a .params file
     */
    public Load(Path file) throws IOException {
        this(file, null, false);
    }

    /**
     * Loads a {@code .params} file.
     *
     * @param file the file
     * @param defaultInit the initializer for names not in the file, or null
     * @param verbose log {@code Initialized <name> by loading} / {@code by default} at INFO
     * @throws IOException if the file cannot be read or is not a .params file
     * @throws IllegalArgumentException if the file holds an unnamed list of arrays
     */
    public Load(Path file, Initializer defaultInit, boolean verbose) throws IOException {
        super();
        Map<String, Saved> m = new LinkedHashMap<>();
        for (ParamsFile.Entry e : ParamsFile.read(file)) {
            if (e.name().isEmpty()) {
                throw new IllegalArgumentException("Load: " + file + " holds an unnamed list of arrays; names are needed");
            }
            m.put(strip(e.name()), new Saved(e.dtype(), e.shape() == null ? null : e.shape().clone(), e.data()));
        }
        this.params = Collections.unmodifiableMap(m);
        this.defaultInit = defaultInit;
        this.verboseLoad = verbose;
    }

    /**
     * Takes values from arrays (read now, not kept).
     *
     * @param params name → array (names may carry {@code arg:}/{@code aux:} prefixes)
     * @param defaultInit the initializer for other names, or null
     * @param verbose log where each value came from
     * @throws IllegalArgumentException if the map or one of its arrays is null
     */
    public Load(Map<String, NDArray> params, Initializer defaultInit, boolean verbose) {
        super();
        if (params == null) {
            throw new IllegalArgumentException("Load: params is null");
        }
        Map<String, Saved> m = new LinkedHashMap<>();
        for (Map.Entry<String, NDArray> e : params.entrySet()) {
            if (e.getKey() == null || e.getValue() == null) {
                throw new IllegalArgumentException("Load: null name or array for " + e.getKey());
            }
            NDArray a = e.getValue();
            m.put(strip(e.getKey()), new Saved(a.dtype(), a.shape().dims(), a.toBytes()));
        }
        this.params = Collections.unmodifiableMap(m);
        this.defaultInit = defaultInit;
        this.verboseLoad = verbose;
    }

    /**
     * Takes values from arrays, without a default initializer.
     *
     * @param params name → array
     */
    public Load(Map<String, NDArray> params) {
        this(params, null, false);
    }

    private static String strip(String name) {
        return name.startsWith("arg:") || name.startsWith("aux:") ? name.substring(4) : name;
    }

    /** @return the parameter names available (prefixes dropped), unmodifiable */
    public Set<String> names() {
        return params.keySet();
    }

    /** @return the default initializer, or null */
    public Initializer defaultInit() {
        return defaultInit;
    }

    /**
     * Copies the saved value of {@code desc.name()} into {@code arr}, or defers to the default initializer.
     *
     * @throws IllegalArgumentException on a shape mismatch, or a missing name without default
     */
    @Override
    public void init(InitDesc desc, NDArray arr) {
        if (!load(desc.name(), arr)) {
            defaultInit(desc.name()).init(desc, arr);
            if (verboseLoad) {
                LOG.info("Initialized {} by default", desc.name());
            }
        }
    }

    /** As {@link #init(InitDesc, NDArray)}, with the default initializer's legacy path. */
    @Override
    public void initLegacy(String name, NDArray arr) {
        if (name == null) {
            throw new IllegalArgumentException("name must be a string, got null");
        }
        if (!load(name, arr)) {
            defaultInit(name).initLegacy(name, arr);
            if (verboseLoad) {
                LOG.info("Initialized {} by default", name);
            }
        }
    }

    /** Loads by name (used only if Load is reached as a weight rule). */
    @Override
    protected void initWeight(InitDesc desc, NDArray arr) {
        init(desc, arr);
    }

    private Initializer defaultInit(String name) {
        if (defaultInit == null) {
            throw new IllegalArgumentException("Cannot Initialize " + name + ". Not found in loaded param "
                    + "and no default Initializer is provided.");
        }
        return defaultInit;
    }

    private boolean load(String name, NDArray arr) {
        Saved s = params.get(name);
        if (s == null) {
            return false;
        }
        if (s.shape == null || !Arrays.equals(s.shape, arr.shape().dims())) {
            throw new IllegalArgumentException("Parameter " + name + " cannot be initialized from loading. "
                    + "Shape mismatch, target " + Shapes.py(arr.shape().dims()) + " vs loaded " + Shapes.py(s.shape));
        }
        try (NDArray tmp = NDArray.fromBytes(s.data, new Shape(s.shape), s.dtype, Context.cpu())) {
            Fill.fromCpu(arr, tmp);
        }
        if (verboseLoad) {
            LOG.info("Initialized {} by loading", name);
        }
        return true;
    }

    /** @throws UnsupportedOperationException always: Load is not serialisable */
    @Override
    public String dumps() {
        throw new UnsupportedOperationException("Load initializers cannot be serialised (MXNet does not register them)");
    }

    @Override
    public boolean equals(Object o) {
        return this == o;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(this);
    }

    @Override
    public String toString() {
        return "Load" + params.keySet() + (defaultInit != null ? " default " + defaultInit : "");
    }
}
