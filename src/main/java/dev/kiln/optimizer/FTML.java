package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * FTML (Follow The Moving Leader), MXNet's {@code FTML(beta1=0.6, beta2=0.999, epsilon=1e-8,
 * **base)} (spec §5.3), through the native {@code ftml_update}. {@code G = clip(r*g + wd*w)};
 * {@code v = beta2*v + (1-beta2)*G^2; d_t = (1-beta1^t)/lr*(sqrt(v/(1-beta2^t)) + eps); z =
 * beta1*z + (1-beta1)*G - (d_t - beta1*d)*w; d = d_t; w = -z/d_t}. State {@code (d, v, z)}, zero
 * arrays like the weight.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class FTML extends MomentOptimizer {
    /** FTML with MXNet's defaults. */
    public FTML() {
        this(Map.of());
    }

    /**
     * FTML from MXNet keyword arguments ({@code beta1, beta2, epsilon} and the base parameters).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public FTML(Map<String, ?> params) {
        this(new Params("ftml", params));
    }

    private FTML(Params p) {
        super(p, 0.01, 0.6, 0.999, 1e-8);
        p.finish();
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return zerosTuple(weight, 3);
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        step.add("ftml_update", attrs("lr", lr(index), "beta1", beta1, "beta2", beta2, "epsilon", epsilon,
                "t", updateCount(index), "wd", wd(index), "rescale_grad", rescaleGrad, "clip_grad", kernelClip()),
                stateInputs(weight, grad, state), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "FTML";
    }
}
