package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;

import java.util.List;
import java.util.Map;

/**
 * LAMB, MXNet's {@code LAMB(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-6,
 * lower_bound=None, upper_bound=None, bias_correction=True, **base)} (spec §5.3), through the
 * native {@code lamb_update_phase1}, the two L2 norms (as {@code square}, {@code sum}, {@code sqrt})
 * and {@code lamb_update_phase2}. Phase 1: {@code
 * G = clip(r*g); m = beta1*m + (1-beta1)*G; v = beta2*v + (1-beta2)*G^2; u = mhat/(sqrt(vhat) +
 * eps) + wd*w} (bias-corrected with {@code t} when {@code bias_correction}); phase 2: {@code r1 =
 * ||w||} clamped to the truthy bounds, {@code r2 = ||u||}, {@code w -= lr*(r1/r2 or 1)*u}. State
 * {@code (mean, var)}; the direction {@code u}, the squares and the two norms live in scratch arrays of the
 * {@link Updater}. MXNet aggregates LAMB updates ({@code MXNET_OPTIMIZER_AGGREGATION_SIZE},
 * default 45, clamped to [1, 45]).
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class LAMB extends MomentOptimizer {
    private Double lowerBound;
    private Double upperBound;
    private boolean biasCorrection;
    private int aggregateNum;

    /** LAMB with MXNet's defaults. */
    public LAMB() {
        this(Map.of());
    }

    /**
     * LAMB from MXNet keyword arguments ({@code beta1, beta2, epsilon, lower_bound, upper_bound,
     * bias_correction} and the base parameters; {@code learning_rate} defaults to 0.001).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public LAMB(Map<String, ?> params) {
        this(new Params("lamb", params));
    }

    private LAMB(Params p) {
        super(p, 0.001, 0.9, 0.999, 1e-6);
        lowerBound = p.nullableDbl("lower_bound");
        upperBound = p.nullableDbl("upper_bound");
        biasCorrection = p.bool("bias_correction", true);
        aggregateNum = Math.max(1, Math.min(45, SGD.envAggregation("MXNET_OPTIMIZER_AGGREGATION_SIZE", 45)));
        p.finish();
    }

    @Override
    protected int aggregateNum() {
        return aggregateNum;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return zerosTuple(weight, 2);
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        double lr = lr(index);
        double wd = wd(index);
        long t = updateCount(index);
        NDArray g = step.scratch(weight.shape(), weight.dtype(), weight.context());
        step.add("lamb_update_phase1", attrs("beta1", beta1, "beta2", beta2, "epsilon", epsilon, "t", t,
                "bias_correction", biasCorrection, "wd", wd, "rescale_grad", rescaleGrad, "clip_gradient", kernelClip()),
                stateInputs(weight, grad, state), List.of(g));
        NDArray r1 = step.scratch(new Shape(1), weight.dtype(), weight.context());
        NDArray r2 = step.scratch(new Shape(1), weight.dtype(), weight.context());
        NDArray sq = step.scratch(weight.shape(), weight.dtype(), weight.context());
        l2norm(step, weight, sq, r1);
        l2norm(step, g, sq, r2);
        double lb = lowerBound != null && lowerBound != 0.0 ? lowerBound : -1.0;
        double ub = upperBound != null && upperBound != 0.0 ? upperBound : -1.0;
        step.add("lamb_update_phase2", attrs("lr", lr, "lower_bound", lb, "upper_bound", ub),
                List.of(weight, g, r1, r2), List.of(weight));
    }

    /** {@code out = sqrt(sum(x^2))} (MXNet's {@code x.norm()}, shape (1,)); {@code sq} is a temporary like x. */
    private static void l2norm(UpdateStep step, NDArray x, NDArray sq, NDArray out) {
        step.add("square", attrs(), List.of(x), List.of(sq));
        step.add("sum", attrs(), List.of(sq), List.of(out));
        step.add("sqrt", attrs(), List.of(out), List.of(out));
    }

    @Override
    protected String pythonClassName() {
        return "LAMB";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        super.writeFields(out);
        out.put("lower_bound", lowerBound);
        out.put("upper_bound", upperBound);
        out.put("bias_correction", biasCorrection);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        super.readFields(in);
        lowerBound = PyValues.nullableDbl(in, "lower_bound", lowerBound);
        upperBound = PyValues.nullableDbl(in, "upper_bound", upperBound);
        biasCorrection = PyValues.bool(in, "bias_correction", biasCorrection);
        if (in.containsKey("aggregate_num")) {
            aggregateNum = (int) Math.max(1, Math.min(45, PyValues.lng(in.get("aggregate_num"), "aggregate_num")));
        }
    }
}
