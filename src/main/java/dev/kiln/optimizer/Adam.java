package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * Adam, MXNet's {@code Adam(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
 * lazy_update=True, **base)} (spec §5.3), through the native {@code adam_update}. With {@code t}
 * the index's update count: {@code lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t)}; {@code G = clip(r*g +
 * wd*w)} (weight decay inside the clip; clipping only when {@code clip_gradient} is truthy);
 * {@code m = beta1*m + (1-beta1)*G; v = beta2*v + (1-beta2)*G^2; w -= lr_t*m/(sqrt(v)+eps)}.
 * State {@code (mean, var)}, zero arrays like the weight.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class Adam extends MomentOptimizer {
    private boolean lazyUpdate;

    /** Adam with MXNet's defaults. */
    public Adam() {
        this(Map.of());
    }

    /**
     * Adam from MXNet keyword arguments ({@code beta1, beta2, epsilon, lazy_update} and the base
     * parameters; {@code learning_rate} defaults to 0.001).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public Adam(Map<String, ?> params) {
        this(new Params("adam", params));
    }

    private Adam(Params p) {
        super(p, 0.001, 0.9, 0.999, 1e-8);
        lazyUpdate = p.bool("lazy_update", true);
        p.finish();
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
        double coef1 = 1.0 - Math.pow(beta1, t);
        double coef2 = 1.0 - Math.pow(beta2, t);
        lr *= Math.sqrt(coef2) / coef1;
        step.add("adam_update", attrs("lr", lr, "beta1", beta1, "beta2", beta2, "epsilon", epsilon, "wd", wd,
                "rescale_grad", rescaleGrad, "clip_gradient", kernelClip(), "lazy_update", lazyUpdate),
                stateInputs(weight, grad, state), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "Adam";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        super.writeFields(out);
        out.put("lazy_update", lazyUpdate);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        super.readFields(in);
        lazyUpdate = PyValues.bool(in, "lazy_update", lazyUpdate);
    }
}
