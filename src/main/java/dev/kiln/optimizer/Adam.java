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
public class Adam extends Optimizer {
    private double beta1;
    private double beta2;
    private double epsilon;
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
        super(p, 0.001);
        beta1 = p.dbl("beta1", 0.9);
        beta2 = p.dbl("beta2", 0.999);
        epsilon = p.dbl("epsilon", 1e-8);
        lazyUpdate = p.bool("lazy_update", true);
        p.finish();
    }

    /** @return beta1 */
    public double beta1() {
        return beta1;
    }

    /** @return beta2 */
    public double beta2() {
        return beta2;
    }

    /** @return epsilon */
    public double epsilon() {
        return epsilon;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        NDArray mean = zerosLike(weight);
        return tuple(mean, zerosLike(weight));
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        double lr = lr(index);
        double wd = wd(index);
        long t = updateCount(index);
        double coef1 = 1.0 - Math.pow(beta1, t);
        double coef2 = 1.0 - Math.pow(beta2, t);
        lr *= Math.sqrt(coef2) / coef1;
        List<?> s = (List<?>) state;
        step.add("adam_update", attrs("lr", lr, "beta1", beta1, "beta2", beta2, "epsilon", epsilon, "wd", wd,
                "rescale_grad", rescaleGrad, "clip_gradient", kernelClip(), "lazy_update", lazyUpdate),
                List.of(weight, grad, (NDArray) s.get(0), (NDArray) s.get(1)), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "Adam";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("beta1", beta1);
        out.put("beta2", beta2);
        out.put("epsilon", epsilon);
        out.put("lazy_update", lazyUpdate);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        beta1 = in.containsKey("beta1") ? PyValues.dbl(in.get("beta1"), "beta1") : beta1;
        beta2 = in.containsKey("beta2") ? PyValues.dbl(in.get("beta2"), "beta2") : beta2;
        epsilon = in.containsKey("epsilon") ? PyValues.dbl(in.get("epsilon"), "epsilon") : epsilon;
        lazyUpdate = in.containsKey("lazy_update") ? PyValues.bool(in.get("lazy_update"), "lazy_update") : lazyUpdate;
    }
}
