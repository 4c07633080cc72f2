package dev.kiln.module;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * MXNet checkpoint files (module-api spec §7.3, MXNet's {@code model.save_checkpoint} /
 * {@code load_checkpoint}): {@code <prefix>-symbol.json} and {@code <prefix>-%04d.params}, the
 * latter an NDArray list file whose names are {@code arg:<param>} for every argument parameter
 * followed by {@code aux:<state>} for every auxiliary state. Both files are written atomically
 * (temporary file, fsync, rename), so a crash leaves the previous checkpoint intact.
 *
 * <p>Thread-safety: stateless; concurrent saves to the same prefix each produce a complete file
 * (the last rename wins).
 */
public final class Checkpoints {
    private static final Logger LOG = LoggerFactory.getLogger(Checkpoints.class);

    private Checkpoints() {}

    /**
     * A loaded checkpoint. The arrays are on cpu(0) and belong to the record (and to the
     * {@link dev.kiln.ndarray.NDScope} open when it was loaded): {@link #close()} closes them.
     *
     * @param symbol the symbol, or null when only the parameters were loaded
     * @param argParams parameter name (without {@code arg:}) to array, in file order
     * @param auxParams auxiliary-state name (without {@code aux:}) to array, in file order
     */
    public record Checkpoint(Symbol symbol, Map<String, NDArray> argParams, Map<String, NDArray> auxParams)
            implements AutoCloseable {
        /** Closes every array (idempotent). */
        @Override
        public void close() {
            argParams.values().forEach(NDArray::close);
            auxParams.values().forEach(NDArray::close);
        }
    }

    /**
     * The symbol file of a prefix.
     *
     * @param prefix the path prefix
     * @return {@code <prefix>-symbol.json}
     */
    public static Path symbolFile(String prefix) {
        return Path.of(Objects.requireNonNull(prefix, "prefix") + "-symbol.json");
    }

    /**
     * The parameter file of a prefix and epoch.
     *
     * @param prefix the path prefix
     * @param epoch the epoch ({@code >= 0})
     * @return {@code <prefix>-%04d.params}
     */
    public static Path paramsFile(String prefix, int epoch) {
        checkEpoch(epoch);
        return Path.of(String.format(Locale.ROOT, "%s-%04d.params", Objects.requireNonNull(prefix, "prefix"), epoch));
    }

    /** The optimizer-state file of a prefix and epoch: {@code <prefix>-%04d.states}. */
    static Path statesFile(String prefix, int epoch) {
        return Path.of(String.format(Locale.ROOT, "%s-%04d.states", prefix, epoch));
    }

    /**
     * Saves a checkpoint: the symbol (when not null) to {@code <prefix>-symbol.json}, the
     * parameters to {@code <prefix>-%04d.params} ({@code arg:} entries in map order, then
     * {@code aux:} entries; arrays on another device are copied to the CPU and saved with a CPU
     * context, as MXNet does), then logs {@code Saved checkpoint to "<params file>"}.
     *
     * @param prefix path prefix; its folder must exist
     * @param epoch the epoch written in the file name ({@code >= 0}; Module and the callbacks pass
     *     the 1-based epoch)
     * @param symbol the symbol, or null to write only the parameters
     * @param argParams parameter arrays (borrowed, not closed)
     * @param auxParams auxiliary-state arrays (borrowed, not closed)
     * @throws IOException if a file cannot be written (the previous file is then unchanged)
     * @throws IllegalArgumentException if epoch is negative
     * @throws IllegalStateException if an array is closed
     */
    public static void save(String prefix, int epoch, Symbol symbol, Map<String, NDArray> argParams,
                            Map<String, NDArray> auxParams) throws IOException {
        save(prefix, epoch, symbol, argParams, auxParams, true);
    }

    /**
     * As {@link #save(String, int, Symbol, Map, Map)}; with {@code removeAmpCast} the symbol is
     * written without its {@code amp_cast} / {@code amp_multicast} nodes ({@link Symbol#removeAmpCast()},
     * MXNet's {@code remove_amp_cast=True}, the default there and in the overload above).
     */
    public static void save(String prefix, int epoch, Symbol symbol, Map<String, NDArray> argParams,
                            Map<String, NDArray> auxParams, boolean removeAmpCast) throws IOException {
        Objects.requireNonNull(argParams, "argParams");
        Objects.requireNonNull(auxParams, "auxParams");
        Path params = paramsFile(prefix, epoch);
        if (symbol != null) {
            (removeAmpCast ? symbol.removeAmpCast() : symbol).save(symbolFile(prefix));
        }
        saveParams(params, argParams, auxParams);
        LOG.info("Saved checkpoint to \"{}\"", params);
    }

    /**
     * Writes {@code arg:<name>} and {@code aux:<name>} entries to one {@code .params} file
     * (MXNet's {@code save_params}), atomically; arrays not on cpu(0) are copied there first.
     *
     * @param file the file
     * @param argParams parameter arrays (borrowed, not closed)
     * @param auxParams auxiliary-state arrays (borrowed, not closed)
     * @throws IOException if the file cannot be written (the previous file is then unchanged)
     */
    public static void saveParams(Path file, Map<String, NDArray> argParams, Map<String, NDArray> auxParams) throws IOException {
        Objects.requireNonNull(argParams, "argParams");
        Objects.requireNonNull(auxParams, "auxParams");
        Map<String, NDArray> all = new LinkedHashMap<>();
        List<NDArray> copies = new ArrayList<>();
        try {
            put(all, copies, "arg:", argParams);
            put(all, copies, "aux:", auxParams);
            NDArray.save(file, all);
        } finally {
            copies.forEach(NDArray::close);
        }
    }

    private static void put(Map<String, NDArray> all, List<NDArray> copies, String kind, Map<String, NDArray> src) {
        for (Map.Entry<String, NDArray> e : src.entrySet()) {
            NDArray a = Objects.requireNonNull(e.getValue(), () -> kind + e.getKey() + " is null");
            if (!a.context().equals(Context.cpu())) {
                a = a.copyTo(Context.cpu());
                copies.add(a);
            }
            all.put(kind + e.getKey(), a);
        }
    }

    /**
     * Loads {@code <prefix>-symbol.json} and {@code <prefix>-%04d.params} (MXNet's
     * {@code load_checkpoint}).
     *
     * @param prefix the path prefix
     * @param epoch the epoch in the file name
     * @return symbol and parameters; the caller closes it
     * @throws IOException if a file cannot be read or is not valid
     */
    public static Checkpoint load(String prefix, int epoch) throws IOException {
        Symbol symbol = Symbol.load(symbolFile(prefix));
        Checkpoint p = loadParams(prefix, epoch);
        return new Checkpoint(symbol, p.argParams(), p.auxParams());
    }

    /**
     * Loads only {@code <prefix>-%04d.params} (MXNet's {@code model.load_params}): each name is
     * split at its first {@code ':'}; {@code arg} entries go to {@code argParams}, {@code aux}
     * entries to {@code auxParams}, anything else (another prefix, no colon) is dropped with a
     * warning and its array closed. An empty file gives two empty maps and a warning.
     *
     * @param prefix the path prefix
     * @param epoch the epoch in the file name
     * @return the parameters with a null symbol; the caller closes it
     * @throws IOException if the file cannot be read or is not a list file
     */
    public static Checkpoint loadParams(String prefix, int epoch) throws IOException {
        return loadParams(paramsFile(prefix, epoch), false);
    }

    /**
     * Loads a {@code .params} file of {@code arg:}/{@code aux:} entries. Other names are dropped
     * with a warning (MXNet's {@code model.load_params}) or, when {@code strict}, rejected with an
     * {@code IllegalArgumentException} and every loaded array closed (MXNet's
     * {@code Module.load_params}).
     *
     * @param file the file
     * @param strict reject names without an {@code arg:}/{@code aux:} prefix
     * @return the parameters with a null symbol; the caller closes it
     * @throws IOException if the file cannot be read or is not a list file
     */
    public static Checkpoint loadParams(Path file, boolean strict) throws IOException {
        Map<String, NDArray> loaded = NDArray.load(file);
        Map<String, NDArray> arg = new LinkedHashMap<>();
        Map<String, NDArray> aux = new LinkedHashMap<>();
        if (loaded.isEmpty()) {
            LOG.warn("Params file '{}' is empty", file);
        }
        for (Map.Entry<String, NDArray> e : loaded.entrySet()) {
            String key = e.getKey();
            int colon = key.indexOf(':');
            String tp = colon < 0 ? "" : key.substring(0, colon);
            String name = colon < 0 ? key : key.substring(colon + 1);
            if (tp.equals("arg")) {
                arg.put(name, e.getValue().setName(name));
            } else if (tp.equals("aux")) {
                aux.put(name, e.getValue().setName(name));
            } else if (strict) {
                loaded.values().forEach(NDArray::close);
                throw new IllegalArgumentException("Invalid param file " + file + ": key '" + key + "' has no arg:/aux: prefix");
            } else {
                LOG.warn("Params file '{}': ignoring entry '{}' (neither arg: nor aux:)", file, key);
                e.getValue().close();
            }
        }
        return new Checkpoint(null, Collections.unmodifiableMap(arg), Collections.unmodifiableMap(aux));
    }

    private static void checkEpoch(int epoch) {
        if (epoch < 0) {
            throw new IllegalArgumentException("checkpoint epoch must be >= 0, got " + epoch);
        }
    }
}
