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
public class PolyScheduler extends DecayScheduler {
    private final double power;

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
        super(maxUpdate, baseLr, finalLr, warmupSteps, warmupBeginLr, warmupMode);
        this.power = pwr;
    }

    @Override
    double decay(double span, long step) {
        return span * Math.pow(1 - (double) step / (double) maxSteps, power);
    }

    /** @return the power */
    public double power() {
        return power;
    }
}
