package dev.kiln.callback;

import dev.kiln.metric.EvalMetric;
import dev.kiln.module.Checkpoints;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Factories for MXNet's function callbacks ({@code mx.callback.module_checkpoint},
 * {@code do_checkpoint}, {@code log_train_metric}), with MXNet 1.9.1's exact period rules and
 * log lines. Stateless; each returned callback is stateless too and thread-safe as far as the
 * module or metric it touches is.
 */
public final class Callbacks {
    private static final Logger LOG = LoggerFactory.getLogger(Callbacks.class);

    private Callbacks() {}

    /**
     * An epoch-end callback that checkpoints a module every {@code period} epochs: after epoch
     * {@code e} (0-based) when {@code (e + 1) % period == 0}, it calls
     * {@code mod.saveCheckpoint(prefix, e + 1, saveOptStates)}, so file names carry the 1-based
     * epoch ({@code prefix-0001.params} after the first epoch). The symbol and arrays passed to
     * the callback are ignored: the module saves its own.
     *
     * @param mod the module to save (kept by the callback)
     * @param prefix path prefix of the checkpoint files
     * @param period save every this many epochs; values below 1 mean 1 (MXNet: {@code max(1, period)})
     * @param saveOptStates also write {@code prefix-%04d.states}
     * @return the callback; an {@link IOException} while saving is rethrown as {@link UncheckedIOException}
     * @throws NullPointerException if mod or prefix is null
     */
    public static EpochEndCallback moduleCheckpoint(Checkpointable mod, String prefix, int period, boolean saveOptStates) {
        Objects.requireNonNull(mod, "moduleCheckpoint: mod");
        Objects.requireNonNull(prefix, "moduleCheckpoint: prefix");
        int p = Math.max(1, period);
        return (epoch, symbol, arg, aux) -> {
            if ((epoch + 1) % p == 0) {
                try {
                    mod.saveCheckpoint(prefix, epoch + 1, saveOptStates);
                } catch (IOException e) {
                    throw new UncheckedIOException("moduleCheckpoint: saving checkpoint " + prefix + " epoch " + (epoch + 1)
                            + " failed: " + e.getMessage(), e);
                }
            }
        };
    }

    /**
     * {@link #moduleCheckpoint(Checkpointable, String, int, boolean)} with MXNet's defaults:
     * every epoch, without optimizer states.
     *
     * @param mod the module
     * @param prefix path prefix
     * @return the callback
     */
    public static EpochEndCallback moduleCheckpoint(Checkpointable mod, String prefix) {
        return moduleCheckpoint(mod, prefix, 1, false);
    }

    /**
     * An epoch-end callback that saves the symbol and parameters it is given every
     * {@code period} epochs (MXNet's {@code do_checkpoint}): after epoch {@code e} when
     * {@code (e + 1) % period == 0} it calls {@link Checkpoints#save
     * Checkpoints.save(prefix, e + 1, symbol, arg, aux)}, writing {@code prefix-symbol.json}
     * (unless the symbol is null) and {@code prefix-%04d.params} with the 1-based epoch, and
     * logging {@code Saved checkpoint to "<file>"}.
     *
     * @param prefix path prefix of the checkpoint files
     * @param period save every this many epochs; values below 1 mean 1
     * @return the callback; an {@link IOException} while saving is rethrown as {@link UncheckedIOException}
     * @throws NullPointerException if prefix is null
     */
    public static EpochEndCallback doCheckpoint(String prefix, int period) {
        Objects.requireNonNull(prefix, "doCheckpoint: prefix");
        int p = Math.max(1, period);
        return (epoch, symbol, arg, aux) -> {
            if ((epoch + 1) % p == 0) {
                try {
                    Checkpoints.save(prefix, epoch + 1, symbol, arg, aux);
                } catch (IOException e) {
                    throw new UncheckedIOException("doCheckpoint: saving checkpoint " + prefix + " epoch " + (epoch + 1)
                            + " failed: " + e.getMessage(), e);
                }
            }
        };
    }

    /**
     * {@link #doCheckpoint(String, int)} every epoch.
     *
     * @param prefix path prefix
     * @return the callback
     */
    public static EpochEndCallback doCheckpoint(String prefix) {
        return doCheckpoint(prefix, 1);
    }

    /**
     * A batch-end callback that logs the metric's local values every {@code period} batches
     * (MXNet's {@code log_train_metric}): when {@code nbatch % period == 0} (so also at batch
     * 0) and the parameter has a metric, one INFO line per (name, value) pair,
     * {@code Iter[<epoch>] Batch[<nbatch>] Train-<name>=<%f>}; then, with {@code autoReset},
     * {@code resetLocal()} on the metric (the global values fit logs at the epoch end are kept).
     *
     * @param period log every this many batches, {@code >= 1}
     * @param autoReset reset the metric's local values after logging
     * @return the callback
     * @throws IllegalArgumentException if period is below 1 (MXNet fails with a modulo by zero)
     */
    public static BatchEndCallback logTrainMetric(int period, boolean autoReset) {
        return logTrainMetric(period, autoReset, LOG::info);
    }

    /**
     * {@link #logTrainMetric(int, boolean)} without reset (MXNet's default).
     *
     * @param period log every this many batches, {@code >= 1}
     * @return the callback
     */
    public static BatchEndCallback logTrainMetric(int period) {
        return logTrainMetric(period, false);
    }

    /** As {@link #logTrainMetric(int, boolean)}, writing the lines to {@code sink} (tests). */
    static BatchEndCallback logTrainMetric(int period, boolean autoReset, Consumer<String> sink) {
        if (period < 1) {
            throw new IllegalArgumentException("logTrainMetric: period must be >= 1, got " + period);
        }
        Objects.requireNonNull(sink, "sink");
        return param -> {
            EvalMetric m = param.evalMetric();
            if (param.nbatch() % period == 0 && m != null) {
                for (Map.Entry<String, Double> nv : m.getNameValue()) {
                    sink.accept(String.format(Locale.ROOT, "Iter[%d] Batch[%d] Train-%s=%s", param.epoch(), param.nbatch(),
                            nv.getKey(), Fmt.f(nv.getValue())));
                }
                if (autoReset) {
                    m.resetLocal();
                }
            }
        };
    }

    /** Lines {@code <prefix><name>=<%f>} joined by {@code sep}, for the multi-pair log formats. */
    static String pairs(List<Map.Entry<String, Double>> nameValue, String sep) {
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, Double> nv : nameValue) {
            b.append(sep).append(nv.getKey()).append('=').append(Fmt.f(nv.getValue()));
        }
        return b.toString();
    }
}
