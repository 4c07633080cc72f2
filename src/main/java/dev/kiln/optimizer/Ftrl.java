package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * FTRL-proximal, MXNet's {@code Ftrl(lamda1=0.01, learning_rate=0.1, beta=1, **base)} (spec
 * §5.3), through the native {@code ftrl_update}. {@code G = clip(r*g)}; {@code z += G -
 * (sqrt(n + G^2) - sqrt(n))*w/lr; n += G^2; w = (sign(z)*lamda1 - z)/((beta + sqrt(n))/lr + wd)}
 * where {@code |z| > lamda1}, else 0. State {@code (z, n)}, zero arrays like the weight.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class Ftrl extends Optimizer {
    private double lamda1;
    private double beta;

    /** Ftrl with MXNet's defaults. */
    public Ftrl() {
        this(Map.of());
    }

    /**
     * Ftrl from MXNet keyword arguments ({@code lamda1, beta} and the base parameters; {@code
     * learning_rate} defaults to 0.1).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public Ftrl(Map<String, ?> params) {
        this(new Params("ftrl", params));
    }

    private Ftrl(Params p) {
        super(p, 0.1);
        lamda1 = p.dbl("lamda1", 0.01);
        beta = p.dbl("beta", 1.0);
        p.finish();
    }

    /** @return the L1 coefficient */
    public double lamda1() {
        return lamda1;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return zerosTuple(weight, 2);
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        double wd = wd(index);
        double lr = lr(index);
        step.add("ftrl_update", attrs("lr", lr, "lamda1", lamda1, "beta", beta, "wd", wd, "rescale_grad", rescaleGrad,
                "clip_gradient", kernelClip()), stateInputs(weight, grad, state), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "Ftrl";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("lamda1", lamda1);
        out.put("beta", beta);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        lamda1 = PyValues.dbl(in, "lamda1", lamda1);
        beta = PyValues.dbl(in, "beta", beta);
    }
}
