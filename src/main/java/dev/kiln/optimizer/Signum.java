package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * Signum / signSGD, MXNet's {@code Signum(learning_rate=0.01, momentum=0.9, wd_lh=0.0, **base)}
 * (spec §5.3), through the native {@code signum_update} ({@code signsgd_update} without
 * momentum). Momentum: {@code m = mu*m - (1-mu)*(wd*w + clip(r*g)); w = (1 - lr*wd_lh)*w +
 * lr*sign(m)}; without: {@code w = (1 - lr*wd)*w - lr*sign(g)}. State: the momentum, or None.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class Signum extends Optimizer {
    private double momentum;
    private double wdLh;

    /** Signum with MXNet's defaults. */
    public Signum() {
        this(Map.of());
    }

    /**
     * Signum from MXNet keyword arguments ({@code momentum, wd_lh} and the base parameters).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public Signum(Map<String, ?> params) {
        this(new Params("signum", params));
    }

    private Signum(Params p) {
        super(p, 0.01);
        momentum = p.dbl("momentum", 0.9);
        wdLh = p.dbl("wd_lh", 0.0);
        p.finish();
    }

    /** @return the momentum */
    public double momentum() {
        return momentum;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return momentum != 0.0 ? zerosLike(weight) : null;
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        double lr = lr(index);
        double wd = wd(index);
        if (state != null) {
            step.add("signum_update", attrs("lr", lr, "momentum", momentum > 0 ? momentum : 0.0, "wd", wd,
                    "rescale_grad", rescaleGrad, "clip_gradient", kernelClip(), "wd_lh", wdLh != 0.0 ? wdLh : 0.0),
                    List.of(weight, grad, (NDArray) state), List.of(weight));
        } else {
            step.add("signsgd_update", attrs("lr", lr, "wd", wd, "rescale_grad", rescaleGrad, "clip_gradient",
                    kernelClip()), List.of(weight, grad), List.of(weight));
        }
    }

    @Override
    protected String pythonClassName() {
        return "Signum";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("momentum", momentum);
        out.put("wd_lh", wdLh);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        momentum = PyValues.dbl(in, "momentum", momentum);
        wdLh = PyValues.dbl(in, "wd_lh", wdLh);
    }
}
