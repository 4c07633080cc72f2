package dev.kiln.optimizer.lr;

import java.util.Locale;

/**
 * A learning-rate schedule, MXNet's {@code mx.lr_scheduler.LRScheduler}: {@link #get(long)} maps
 * the optimizer's update count ({@code num_update}, 1 on the first update) to a learning rate.
 *
 * <p>Schedulers are <b>stateful</b>, as in MXNet: a call may change {@link #baseLr()} (a factor
 * schedule multiplies it when a boundary is passed), so calls are expected with non-decreasing
 * update counts. The warm-up phase ({@code num_update < warmupSteps}) ramps from {@code
 * warmupBeginLr} to the {@code base_lr} given at construction ({@link #warmupFinalLr()}, which an
 * optimizer later overwriting {@code base_lr} does not change):
 * {@code linear}: {@code begin + (final - begin) * num_update / warmupSteps}; {@code constant}:
 * {@code begin}.
 *
 * <p>Thread-safety: not thread-safe (mutable state); an optimizer and its scheduler are used by
 * one thread at a time.
 */
public abstract class LRScheduler {
    /** Warm-up modes. */
    public enum WarmupMode {
        /** Linear ramp from the begin rate to the base rate. */
        LINEAR,
        /** The begin rate during the whole warm-up. */
        CONSTANT;

        /**
         * The MXNet name.
         *
         * @return {@code "linear"} or {@code "constant"}
         */
        public String mxName() {
            return name().toLowerCase(Locale.ROOT);
        }

        /**
         * Parses an MXNet mode name.
         *
         * @param s {@code "linear"} or {@code "constant"}
         * @return the mode
         * @throws IllegalArgumentException for any other name
         */
        public static WarmupMode of(String s) {
            if ("linear".equals(s)) {
                return LINEAR;
            }
            if ("constant".equals(s)) {
                return CONSTANT;
            }
            throw new IllegalArgumentException("Supports only linear and constant modes of warmup, got '" + s + "'");
        }
    }

    /** The current base learning rate (mutated by stateful schedules and by optimizers). */
    protected double baseLr;
    /** Number of warm-up updates (0 = none). */
    protected final int warmupSteps;
    /** The rate the warm-up starts from. */
    protected final double warmupBeginLr;
    /** The rate the warm-up ends at: {@code base_lr} at construction. */
    protected final double warmupFinalLr;
    /** Linear or constant warm-up. */
    protected final WarmupMode warmupMode;

    /**
     * Creates the base of a schedule.
     *
     * @param baseLr the base learning rate (MXNet default 0.01)
     * @param warmupSteps number of warm-up updates, {@code >= 0}
     * @param warmupBeginLr the warm-up start rate, {@code <= baseLr}
     * @param warmupMode linear or constant
     * @throws IllegalArgumentException for a negative warm-up count, a begin rate above the base
     *     rate or a null mode
     */
    protected LRScheduler(double baseLr, int warmupSteps, double warmupBeginLr, WarmupMode warmupMode) {
        if (warmupMode == null) {
            throw new IllegalArgumentException("Supports only linear and constant modes of warmup, got null");
        }
        if (warmupBeginLr > baseLr) {
            throw new IllegalArgumentException("Base lr has to be higher than warmup_begin_lr (base_lr " + baseLr
                    + ", warmup_begin_lr " + warmupBeginLr + ")");
        }
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("Warmup steps has to be positive or 0, got " + warmupSteps);
        }
        this.baseLr = baseLr;
        this.warmupSteps = warmupSteps;
        this.warmupBeginLr = warmupBeginLr;
        this.warmupFinalLr = baseLr;
        this.warmupMode = warmupMode;
    }

    /**
     * The learning rate for an update count (MXNet's {@code __call__}); may change the state.
     *
     * @param numUpdate the optimizer's update count (1 on the first update)
     * @return the learning rate
     */
    public abstract double get(long numUpdate);

    /**
     * The warm-up rate for {@code numUpdate < warmupSteps}.
     *
     * @param numUpdate the update count
     * @return the warm-up learning rate
     * @throws IllegalStateException if {@code numUpdate} is not inside the warm-up
     */
    protected double warmupLr(long numUpdate) {
        if (numUpdate >= warmupSteps) {
            throw new IllegalStateException("update " + numUpdate + " is past the " + warmupSteps + " warm-up steps");
        }
        if (warmupMode == WarmupMode.LINEAR) {
            double increase = (warmupFinalLr - warmupBeginLr) * (double) numUpdate / (double) warmupSteps;
            return warmupBeginLr + increase;
        }
        return warmupBeginLr;
    }

    /** @return the current base learning rate */
    public double baseLr() {
        return baseLr;
    }

    /**
     * Overwrites the base learning rate (what an optimizer does with its {@code learning_rate}).
     * The warm-up target stays the value given at construction.
     *
     * @param lr the new base rate
     */
    public void setBaseLr(double lr) {
        this.baseLr = lr;
    }

    /** @return the number of warm-up updates */
    public int warmupSteps() {
        return warmupSteps;
    }

    /** @return the warm-up start rate */
    public double warmupBeginLr() {
        return warmupBeginLr;
    }

    /** @return the warm-up end rate (the base rate at construction) */
    public double warmupFinalLr() {
        return warmupFinalLr;
    }

    /** @return the warm-up mode */
    public WarmupMode warmupMode() {
        return warmupMode;
    }
}
