package dev.kiln.optimizer.lr;

/**
 * Polynomial decay, MXNet's {@code PolyScheduler}: after warm-up and while {@code num_update <=
 * maxUpdate}, {@code base_lr = final + (base_orig - final) * (1 - (num_update - warmup) /
 * (maxUpdate - warmup))^pwr}; afterwards the last value is kept. {@code base_orig} is the base
 * rate given at construction (as in MXNet, an optimizer overwriting {@code base_lr} does not
 * change the curve).
 *
 * <p>Thread-safety: not thread-safe (stateful, see {@link LRScheduler}).
 */
public class PolyScheduler extends LRScheduler {
    private final long maxUpdate;
    private final double power;
    private final double baseLrOrig;
    private final double finalLr;
    private final long maxSteps;

    /**
     * {@code PolyScheduler(max_update, base_lr, pwr=2, final_lr=0)}, no warm-up.
     *
     * @param maxUpdate the update at which the final rate is reached, {@code >= 1}
     * @param baseLr the initial rate
     */
    public PolyScheduler(long maxUpdate, double baseLr) {
        this(maxUpdate, baseLr, 2, 0, 0, 0, WarmupMode.LINEAR);
    }

    /**
     * The full constructor.
     *
     * @param maxUpdate the update at which the final rate is reached, {@code >= 1}
     * @param baseLr the initial rate
     * @param pwr the power of the polynomial
     * @param finalLr the final rate
     * @param warmupSteps warm-up updates, below {@code maxUpdate}
     * @param warmupBeginLr warm-up start rate
     * @param warmupMode warm-up mode
     * @throws IllegalArgumentException for {@code maxUpdate < 1}, {@code warmupSteps >= maxUpdate} or
     *     invalid warm-up settings
     */
    public PolyScheduler(long maxUpdate, double baseLr, double pwr, double finalLr, int warmupSteps,
            double warmupBeginLr, WarmupMode warmupMode) {
        super(baseLr, warmupSteps, warmupBeginLr, warmupMode);
        if (maxUpdate < 1) {
            throw new IllegalArgumentException("maximum number of updates must be strictly positive, got " + maxUpdate);
        }
        if (warmupSteps >= maxUpdate) {
            // MXNet divides by max_update - warmup_steps (ZeroDivisionError at equality)
            throw new IllegalArgumentException("warmup_steps (" + warmupSteps + ") must be below max_update (" + maxUpdate + ")");
        }
        this.maxUpdate = maxUpdate;
        this.power = pwr;
        this.baseLrOrig = baseLr;
        this.finalLr = finalLr;
        this.maxSteps = maxUpdate - warmupSteps;
    }

    @Override
    public double get(long numUpdate) {
        if (numUpdate < warmupSteps) {
            return warmupLr(numUpdate);
        }
        if (numUpdate <= maxUpdate) {
            baseLr = finalLr + (baseLrOrig - finalLr)
                    * Math.pow(1 - (double) (numUpdate - warmupSteps) / (double) maxSteps, power);
        }
        return baseLr;
    }

    /** @return the update at which the final rate is reached */
    public long maxUpdate() {
        return maxUpdate;
    }

    /** @return the power */
    public double power() {
        return power;
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
