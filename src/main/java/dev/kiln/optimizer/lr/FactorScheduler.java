package dev.kiln.optimizer.lr;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Multiplies the rate by {@code factor} every {@code step} updates, MXNet's {@code
 * FactorScheduler}: after warm-up, {@code while num_update > count + step: count += step;
 * base_lr *= factor}, floored at {@code stopFactorLr}. The count starts at 0 and includes the
 * warm-up updates, and the comparison is strict, so with step 2 the rate changes at updates 3, 5,
 * 7, ... Each change is logged at INFO as MXNet logs it.
 *
 * <p>Thread-safety: not thread-safe (stateful, see {@link LRScheduler}).
 */
public class FactorScheduler extends LRScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(FactorScheduler.class);

    private final long step;
    private final double factor;
    private final double stopFactorLr;
    private long count;

    /**
     * {@code FactorScheduler(step, factor=1, stop_factor_lr=1e-8, base_lr=0.01)}, no warm-up.
     *
     * @param step updates between changes, {@code >= 1}
     * @param factor multiplier, {@code <= 1}
     */
    public FactorScheduler(long step, double factor) {
        this(step, factor, 1e-8, 0.01, 0, 0, WarmupMode.LINEAR);
    }

    /**
     * The full constructor.
     *
     * @param step updates between changes, {@code >= 1}
     * @param factor multiplier, {@code <= 1}
     * @param stopFactorLr the rate is never reduced below this
     * @param baseLr the initial rate
     * @param warmupSteps warm-up updates, {@code >= 0}
     * @param warmupBeginLr warm-up start rate
     * @param warmupMode warm-up mode
     * @throws IllegalArgumentException for {@code step < 1}, {@code factor > 1} or invalid warm-up
     *     settings
     */
    public FactorScheduler(long step, double factor, double stopFactorLr, double baseLr, int warmupSteps,
            double warmupBeginLr, WarmupMode warmupMode) {
        super(baseLr, warmupSteps, warmupBeginLr, warmupMode);
        if (step < 1) {
            throw new IllegalArgumentException("Schedule step must be greater or equal than 1 round, got " + step);
        }
        if (factor > 1.0) {
            throw new IllegalArgumentException("Factor must be no more than 1 to make lr reduce, got " + factor);
        }
        this.step = step;
        this.factor = factor;
        this.stopFactorLr = stopFactorLr;
    }

    @Override
    public double get(long numUpdate) {
        if (numUpdate < warmupSteps) {
            return warmupLr(numUpdate);
        }
        while (numUpdate > count + step) {
            count += step;
            baseLr *= factor;
            if (baseLr < stopFactorLr) {
                baseLr = stopFactorLr;
                LOG.info(String.format("Update[%d]: now learning rate arrived at %.5e, will not change in the future",
                        numUpdate, baseLr));
            } else {
                LOG.info(String.format("Update[%d]: Change learning rate to %.5e", numUpdate, baseLr));
            }
        }
        return baseLr;
    }

    /** @return updates between changes */
    public long step() {
        return step;
    }

    /** @return the multiplier */
    public double factor() {
        return factor;
    }

    /** @return the floor of the rate */
    public double stopFactorLr() {
        return stopFactorLr;
    }

    /** @return the update count of the last change (state) */
    public long count() {
        return count;
    }

    /**
     * Restores the state (used when loading a pickled optimizer).
     *
     * @param count the update count of the last change
     */
    public void setCount(long count) {
        this.count = count;
    }
}
