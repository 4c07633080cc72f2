package dev.kiln.callback;

import dev.kiln.metric.EvalMetric;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * Logs the training speed and the metric every {@code frequent} batches (MXNet's
 * {@code mx.callback.Speedometer}, same state machine and INFO lines):
 *
 * <pre>
 * Epoch[0] Batch [0-50]\tSpeed: 3842.26 samples/sec\taccuracy=0.250000     (autoReset, the default)
 * Epoch[0] Batch [0-100]\tSpeed: 3842.26 samples/sec\taccuracy=0.250000    (autoReset false)
 * Iter[0] Batch [100]\tSpeed: 3842.26 samples/sec                            (no metric)
 * </pre>
 *
 * <p>State: on each call with {@code count = nbatch}, a count lower than the previous one means a
 * new epoch started and the meter re-initialises; the first call after (re-)initialisation only
 * starts the clock. Later calls with {@code count % frequent == 0} log
 * {@code speed = frequent * batchSize / seconds since the last log} (infinite, printed
 * {@code inf}, for a zero interval) and restart the clock. With {@code autoReset} the metric's
 * local values are read and then {@link EvalMetric#resetLocal() reset}, so each line covers the
 * batches since the previous line (the first one, as in MXNet, also includes batch 0); the
 * global values fit prints at the end of the epoch are not affected. Metric names are printed
 * without a {@code Train-} prefix (MXNet 1.9.1), separators are TABs, numbers use Python's
 * {@code %.2f}/{@code %f} with a {@code .} decimal point in every locale.
 *
 * <p>Time comes from {@link System#nanoTime()}. Thread-safety: not thread-safe (one instance per
 * training loop, as in MXNet). Ownership: holds no resources.
 */
public final class Speedometer implements BatchEndCallback {
    private static final Logger LOG = LoggerFactory.getLogger(Speedometer.class);

    private final int batchSize;
    private final int frequent;
    private final boolean autoReset;
    private final LongSupplier nanoTime;
    private final Consumer<String> sink;

    private boolean init;
    private long tic;
    private int lastCount;

    /**
     * A speedometer logging every 50 batches with auto reset (MXNet's defaults).
     *
     * @param batchSize samples per batch, {@code >= 1}
     */
    public Speedometer(int batchSize) {
        this(batchSize, 50, true);
    }

    /**
     * A speedometer with auto reset.
     *
     * @param batchSize samples per batch, {@code >= 1}
     * @param frequent log every this many batches, {@code >= 1}
     */
    public Speedometer(int batchSize, int frequent) {
        this(batchSize, frequent, true);
    }

    /**
     * A speedometer.
     *
     * @param batchSize samples per batch, {@code >= 1}
     * @param frequent log every this many batches, {@code >= 1}
     * @param autoReset reset the metric's local values after each line
     * @throws IllegalArgumentException if batchSize or frequent is below 1
     */
    public Speedometer(int batchSize, int frequent, boolean autoReset) {
        this(batchSize, frequent, autoReset, System::nanoTime, LOG::info);
    }

    /** Test hook: an injectable clock (nanoseconds) and line sink. */
    Speedometer(int batchSize, int frequent, boolean autoReset, LongSupplier nanoTime, Consumer<String> sink) {
        if (batchSize < 1) {
            throw new IllegalArgumentException("Speedometer: batchSize must be >= 1, got " + batchSize);
        }
        if (frequent < 1) {
            throw new IllegalArgumentException("Speedometer: frequent must be >= 1, got " + frequent);
        }
        this.batchSize = batchSize;
        this.frequent = frequent;
        this.autoReset = autoReset;
        this.nanoTime = Objects.requireNonNull(nanoTime, "nanoTime");
        this.sink = Objects.requireNonNull(sink, "sink");
    }

    /**
     * Updates the meter for one batch and logs a line every {@code frequent} batches.
     *
     * @param param the batch (its metric may be null)
     */
    @Override
    public void invoke(BatchEndParam param) {
        int count = param.nbatch();
        if (lastCount > count) {
            init = false;
        }
        lastCount = count;

        if (!init) {
            init = true;
            tic = nanoTime.getAsLong();
            return;
        }
        if (count % frequent != 0) {
            return;
        }
        long elapsed = nanoTime.getAsLong() - tic;
        double speed = elapsed <= 0 ? Double.POSITIVE_INFINITY : (double) frequent * batchSize / (elapsed / 1e9);
        EvalMetric metric = param.evalMetric();
        if (metric != null) {
            List<Map.Entry<String, Double>> nameValue = metric.getNameValue();
            if (autoReset) {
                metric.resetLocal();
                sink.accept(String.format(Locale.ROOT, "Epoch[%d] Batch [%d-%d]\tSpeed: %s samples/sec", param.epoch(),
                        count - frequent, count, Fmt.f(speed, 2)) + Callbacks.pairs(nameValue, "\t"));
            } else {
                sink.accept(String.format(Locale.ROOT, "Epoch[%d] Batch [0-%d]\tSpeed: %s samples/sec", param.epoch(),
                        count, Fmt.f(speed, 2)) + Callbacks.pairs(nameValue, "\t"));
            }
        } else {
            sink.accept(String.format(Locale.ROOT, "Iter[%d] Batch [%d]\tSpeed: %s samples/sec", param.epoch(), count,
                    Fmt.f(speed, 2)));
        }
        tic = nanoTime.getAsLong();
    }
}
