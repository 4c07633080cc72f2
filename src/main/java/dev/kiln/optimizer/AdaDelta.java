package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * AdaDelta, MXNet's {@code AdaDelta(rho=0.90, epsilon=1e-5, **base)} (spec §5.3; Python in MXNet,
 * the native {@code _kiln_adadelta_update} in Kiln). <b>The learning rate is not used.</b> As in
 * MXNet the gradient array is scaled <b>in place</b> by {@code rescale_grad}; then {@code G =
 * clip(g)} (whenever {@code clip_gradient} is not None); {@code acc_g = rho*acc_g +
 * (1-rho)*G^2; d = sqrt(acc_delta + eps)/sqrt(acc_g + eps)*G; acc_delta = rho*acc_delta +
 * (1-rho)*d^2; w -= d + wd*w}. State {@code (acc_g, acc_delta)}, zero arrays like the weight.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}; note the gradient is
 * modified.
 */
public class AdaDelta extends Optimizer {
    private double rho;
    private double epsilon;

    /** AdaDelta with MXNet's defaults. */
    public AdaDelta() {
        this(Map.of());
    }

    /**
     * AdaDelta from MXNet keyword arguments ({@code rho, epsilon} and the base parameters).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public AdaDelta(Map<String, ?> params) {
        this(new Params("adadelta", params));
    }

    private AdaDelta(Params p) {
        super(p, 0.01);
        rho = p.dbl("rho", 0.9);
        epsilon = p.dbl("epsilon", 1e-5);
        p.finish();
    }

    /** @return rho */
    public double rho() {
        return rho;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return zerosTuple(weight, 2);
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        step.add("_kiln_adadelta_update", attrs("rho", rho, "epsilon", epsilon, "wd", wd(index),
                "rescale_grad", rescaleGrad, "clip_gradient", pythonClip()),
                stateInputs(weight, grad, state), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "AdaDelta";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("rho", rho);
        out.put("epsilon", epsilon);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        rho = PyValues.dbl(in, "rho", rho);
        epsilon = PyValues.dbl(in, "epsilon", epsilon);
    }
}
