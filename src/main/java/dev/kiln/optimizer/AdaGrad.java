package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * AdaGrad, MXNet's {@code AdaGrad(eps=1e-7, **base)} (spec §5.3; MXNet computes the dense update
 * in Python, Kiln runs it as the native {@code _kiln_adagrad_update}): {@code G = clip(r*g)}
 * (clipping whenever {@code clip_gradient} is not None, so 0 clips to 0); {@code h += G^2};
 * {@code w -= lr*(G/sqrt(h + eps) + wd*w)} (weight decay not adapted). State: the history, a
 * zero array like the weight (MXNet always makes it float32, which equals the weight's type for
 * float32 weights; Kiln uses the weight's type so float64 weights work).
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class AdaGrad extends Optimizer {
    private double floatStableEps;

    /** AdaGrad with MXNet's defaults. */
    public AdaGrad() {
        this(Map.of());
    }

    /**
     * AdaGrad from MXNet keyword arguments ({@code eps} and the base parameters).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public AdaGrad(Map<String, ?> params) {
        this(new Params("adagrad", params));
    }

    private AdaGrad(Params p) {
        super(p, 0.01);
        floatStableEps = p.dbl("eps", 1e-7);
        p.finish();
    }

    /** @return the epsilon added to the history */
    public double eps() {
        return floatStableEps;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return zerosLike(weight);
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        step.add("_kiln_adagrad_update", attrs("lr", lr(index), "epsilon", floatStableEps, "wd", wd(index),
                "rescale_grad", rescaleGrad, "clip_gradient", pythonClip()),
                List.of(weight, grad, (NDArray) state), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "AdaGrad";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("float_stable_eps", floatStableEps);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        floatStableEps = PyValues.dbl(in, "float_stable_eps", floatStableEps);
    }
}
