package dev.kiln.optimizer.lr;

/**
 * Cosine decay, MXNet's {@code CosineScheduler}: after warm-up and while {@code num_update <=
 * maxUpdate}, {@code base_lr = final + (base_orig - final) * (1 + cos(pi * (num_update - warmup) /
 * (maxUpdate - warmup))) / 2}; afterwards the last value is kept. {@code base_orig} is the base
 * rate given at construction.
 *
 * <p>Thread-safety: not thread-safe (stateful, see {@link LRScheduler}).
 */
public class CosineScheduler extends DecayScheduler {
    /**
     * {@code CosineScheduler(max_update, base_lr, final_lr)}, no warm-up.
     *
     * @param maxUpdate the update at which the final rate is reached, {@code >= 1}
     * @param baseLr the initial rate
     * @param finalLr the final rate
     */
    public CosineScheduler(long maxUpdate, double baseLr, double finalLr) {
        this(maxUpdate, baseLr, finalLr, 0, 0, WarmupMode.LINEAR);
    }

    /**
     * The full constructor.
     *
     * @param maxUpdate the update at which the final rate is reached, {@code >= 1}
     * @param baseLr the initial rate
     * @param finalLr the final rate
     * @param warmupSteps warm-up updates, below {@code maxUpdate}
     * @param warmupBeginLr warm-up start rate
     * @param warmupMode warm-up mode
     * @throws IllegalArgumentException for {@code maxUpdate < 1}, {@code warmupSteps >= maxUpdate} or
     *     invalid warm-up settings
     */
    public CosineScheduler(long maxUpdate, double baseLr, double finalLr, int warmupSteps, double warmupBeginLr,
            WarmupMode warmupMode) {
        super(maxUpdate, baseLr, finalLr, warmupSteps, warmupBeginLr, warmupMode);
    }

    @Override
    double decay(double span, long step) {
        return span * (1 + Math.cos(Math.PI * step / maxSteps)) / 2;
    }
}
