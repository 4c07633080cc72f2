package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * AdaMax, MXNet's {@code Adamax(learning_rate=0.002, beta1=0.9, beta2=0.999, **base)} (spec
 * §5.3; Python in MXNet, the native {@code _kiln_adamax_update} in Kiln): {@code lr_t =
 * lr/(1-beta1^t)}; {@code G = clip(r*g + wd*w)} (whenever {@code clip_gradient} is not None);
 * {@code m = beta1*m + (1-beta1)*G; u = max(beta2*u, |G|); w -= lr_t*m/u}. State {@code (m, u)},
 * zero arrays like the weight.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class Adamax extends Optimizer {
    private double beta1;
    private double beta2;

    /** Adamax with MXNet's defaults. */
    public Adamax() {
        this(Map.of());
    }

    /**
     * Adamax from MXNet keyword arguments ({@code beta1, beta2} and the base parameters; {@code
     * learning_rate} defaults to 0.002).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public Adamax(Map<String, ?> params) {
        this(new Params("adamax", params));
    }

    private Adamax(Params p) {
        super(p, 0.002);
        beta1 = p.dbl("beta1", 0.9);
        beta2 = p.dbl("beta2", 0.999);
        p.finish();
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return zerosTuple(weight, 2);
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        step.add("_kiln_adamax_update", attrs("lr", lr(index), "t", updateCount(index), "beta1", beta1, "beta2", beta2,
                "wd", wd(index), "rescale_grad", rescaleGrad, "clip_gradient", pythonClip()),
                stateInputs(weight, grad, state), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "Adamax";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("beta1", beta1);
        out.put("beta2", beta2);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        beta1 = PyValues.dbl(in, "beta1", beta1);
        beta2 = PyValues.dbl(in, "beta2", beta2);
    }
}
