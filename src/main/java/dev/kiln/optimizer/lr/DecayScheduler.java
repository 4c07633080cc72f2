package dev.kiln.optimizer.lr;

/**
 * The shared part of {@link PolyScheduler} and {@link CosineScheduler}: after the warm-up and
 * while {@code num_update <= maxUpdate}, {@code base_lr = final + decay(base_orig - final,
 * num_update - warmup)}, with {@code decay} falling from the whole span at 0 to 0 at {@code
 * maxUpdate - warmup}; afterwards the last value is kept. {@code base_orig} is the base rate
 * given at construction (an optimizer overwriting {@code base_lr} does not change the curve).
 *
 * <p>Thread-safety: not thread-safe (stateful, see {@link LRScheduler}).
 */
public abstract class DecayScheduler extends LRScheduler {
    private final long maxUpdate;
    private final double baseLrOrig;
    private final double finalLr;
    /** {@code maxUpdate - warmupSteps}: the length of the decay, {@code >= 1}. */
    final long maxSteps;

    DecayScheduler(long maxUpdate, double baseLr, double finalLr, int warmupSteps, double warmupBeginLr,
            WarmupMode warmupMode) {
        super(baseLr, warmupSteps, warmupBeginLr, warmupMode);
        if (maxUpdate < 1) {
            throw new IllegalArgumentException("maximum number of updates must be strictly positive, got " + maxUpdate);
        }
        if (warmupSteps >= maxUpdate) {
            // MXNet divides by max_update - warmup_steps (ZeroDivisionError at equality)
            throw new IllegalArgumentException("warmup_steps (" + warmupSteps + ") must be below max_update (" + maxUpdate + ")");
        }
        this.maxUpdate = maxUpdate;
        this.baseLrOrig = baseLr;
        this.finalLr = finalLr;
        this.maxSteps = maxUpdate - warmupSteps;
    }

    /**
     * The decayed part of the rate, in MXNet's operation order.
     *
     * @param span {@code base_orig - final}
     * @param step {@code num_update - warmup}, in {@code [0, maxSteps]}
     * @return what is added to the final rate
     */
    abstract double decay(double span, long step);

    @Override
    public double get(long numUpdate) {
        if (numUpdate < warmupSteps) {
            return warmupLr(numUpdate);
        }
        if (numUpdate <= maxUpdate) {
            baseLr = finalLr + decay(baseLrOrig - finalLr, numUpdate - warmupSteps);
        }
        return baseLr;
    }

    /** @return the update at which the final rate is reached */
    public long maxUpdate() {
        return maxUpdate;
    }

    /** @return the base rate at construction */
    public double baseLrOrig() {
        return baseLrOrig;
    }

    /** @return the final rate */
    public double finalLr() {
        return finalLr;
    }
}
