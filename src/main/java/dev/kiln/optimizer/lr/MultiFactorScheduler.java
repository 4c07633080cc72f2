package dev.kiln.optimizer.lr;

import java.util.Arrays;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Multiplies the rate by {@code factor} once each listed boundary is passed, MXNet's {@code
 * MultiFactorScheduler}: after warm-up, for each boundary {@code s} not yet passed, {@code
 * num_update > s} multiplies {@code base_lr} by {@code factor}. With boundaries [2, 5] the rate
 * changes at updates 3 and 6.
 *
 * <p>Thread-safety: not thread-safe (stateful, see {@link LRScheduler}).
 */
public class MultiFactorScheduler extends LRScheduler {
    private static final Logger LOG = LoggerFactory.getLogger(MultiFactorScheduler.class);

    private final long[] steps;
    private final double factor;
    private int curStepInd;
    private long count;

    /**
     * {@code MultiFactorScheduler(step, factor, base_lr=0.01)}, no warm-up.
     *
     * @param steps strictly increasing boundaries, each {@code >= 1}
     * @param factor multiplier, {@code <= 1}
     */
    public MultiFactorScheduler(long[] steps, double factor) {
        this(steps, factor, 0.01, 0, 0, WarmupMode.LINEAR);
    }

    /**
     * The full constructor.
     *
     * @param steps strictly increasing boundaries, each {@code >= 1} (copied)
     * @param factor multiplier, {@code <= 1}
     * @param baseLr the initial rate
     * @param warmupSteps warm-up updates
     * @param warmupBeginLr warm-up start rate
     * @param warmupMode warm-up mode
     * @throws IllegalArgumentException for an empty, non-increasing or non-positive boundary list,
     *     {@code factor > 1} or invalid warm-up settings
     */
    public MultiFactorScheduler(long[] steps, double factor, double baseLr, int warmupSteps, double warmupBeginLr,
            WarmupMode warmupMode) {
        super(baseLr, warmupSteps, warmupBeginLr, warmupMode);
        if (steps == null || steps.length < 1) {
            throw new IllegalArgumentException("MultiFactorScheduler needs a non-empty step list");
        }
        for (int i = 0; i < steps.length; i++) {
            if (i != 0 && steps[i] <= steps[i - 1]) {
                throw new IllegalArgumentException("Schedule step must be an increasing integer list, got "
                        + Arrays.toString(steps));
            }
            if (steps[i] < 1) {
                throw new IllegalArgumentException("Schedule step must be greater or equal than 1 round, got "
                        + Arrays.toString(steps));
            }
        }
        if (factor > 1.0) {
            throw new IllegalArgumentException("Factor must be no more than 1 to make lr reduce, got " + factor);
        }
        this.steps = steps.clone();
        this.factor = factor;
    }

    @Override
    public double get(long numUpdate) {
        if (numUpdate < warmupSteps) {
            return warmupLr(numUpdate);
        }
        while (curStepInd <= steps.length - 1) {
            if (numUpdate > steps[curStepInd]) {
                count = steps[curStepInd];
                curStepInd++;
                baseLr *= factor;
                LOG.info(String.format("Update[%d]: Change learning rate to %.5e", numUpdate, baseLr));
            } else {
                return baseLr;
            }
        }
        return baseLr;
    }

    /** @return a copy of the boundaries */
    public long[] steps() {
        return steps.clone();
    }

    /** @return the multiplier */
    public double factor() {
        return factor;
    }

    /** @return the number of boundaries passed (state) */
    public int curStepInd() {
        return curStepInd;
    }

    /** @return the last boundary passed (state) */
    public long count() {
        return count;
    }

    /**
     * Restores the state (used when loading a pickled optimizer).
     *
     * @param curStepInd boundaries passed, in [0, steps.length]
     * @param count the last boundary passed
     * @throws IllegalArgumentException if {@code curStepInd} is out of range
     */
    public void setState(int curStepInd, long count) {
        if (curStepInd < 0 || curStepInd > steps.length) {
            throw new IllegalArgumentException("cur_step_ind " + curStepInd + " is outside [0, " + steps.length + "]");
        }
        this.curStepInd = curStepInd;
        this.count = count;
    }
}
