package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * RMSProp, MXNet's {@code RMSProp(learning_rate=0.001, gamma1=0.9, gamma2=0.9, epsilon=1e-8,
 * centered=False, clip_weights=None, **base)} (spec §5.3), through the native {@code
 * rmsprop_update} (Tieleman &amp; Hinton) or, centered, {@code rmspropalex_update} (Graves).
 * {@code G = clip(r*g + wd*w)}; plain: {@code n = (1-g1)*G^2 + g1*n; w -= lr*G/sqrt(n + eps)};
 * centered: also {@code gbar = (1-g1)*G + g1*gbar; delta = g2*delta - lr*G/sqrt(n - gbar^2 +
 * eps); w += delta}; then {@code w} is clipped to {@code +-clip_weights} when that is truthy.
 * State {@code (n,)} or {@code (n, gbar, delta)}, zero arrays like the weight.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class RMSProp extends Optimizer {
    private double gamma1;
    private double gamma2;
    private double epsilon;
    private boolean centered;
    private Double clipWeights;

    /** RMSProp with MXNet's defaults. */
    public RMSProp() {
        this(Map.of());
    }

    /**
     * RMSProp from MXNet keyword arguments ({@code gamma1, gamma2, epsilon, centered,
     * clip_weights} and the base parameters; {@code learning_rate} defaults to 0.001).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public RMSProp(Map<String, ?> params) {
        this(new Params("rmsprop", params));
    }

    private RMSProp(Params p) {
        super(p, 0.001);
        gamma1 = p.dbl("gamma1", 0.9);
        gamma2 = p.dbl("gamma2", 0.9);
        epsilon = p.dbl("epsilon", 1e-8);
        centered = p.bool("centered", false);
        clipWeights = p.nullableDbl("clip_weights");
        p.finish();
    }

    /** @return whether the centered (Graves) variant is used */
    public boolean centered() {
        return centered;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return zerosTuple(weight, centered ? 3 : 1);  // (n, g, delta) or (n,)
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        List<?> s = (List<?>) state;
        double cw = clipWeights != null && clipWeights != 0.0 ? clipWeights : -1.0;
        if (s.size() == 1) {
            step.add("rmsprop_update", attrs("lr", lr(index), "gamma1", gamma1, "epsilon", epsilon, "wd", wd(index),
                    "rescale_grad", rescaleGrad, "clip_gradient", kernelClip(), "clip_weights", cw),
                    stateInputs(weight, grad, state), List.of(weight));
        } else {
            step.add("rmspropalex_update", attrs("lr", lr(index), "gamma1", gamma1, "gamma2", gamma2, "epsilon", epsilon,
                    "wd", wd(index), "rescale_grad", rescaleGrad, "clip_gradient", kernelClip(), "clip_weights", cw),
                    stateInputs(weight, grad, state), List.of(weight));
        }
    }

    @Override
    protected String pythonClassName() {
        return "RMSProp";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("gamma1", gamma1);
        out.put("gamma2", gamma2);
        out.put("centered", centered);
        out.put("epsilon", epsilon);
        out.put("clip_weights", clipWeights);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        gamma1 = PyValues.dbl(in, "gamma1", gamma1);
        gamma2 = PyValues.dbl(in, "gamma2", gamma2);
        epsilon = PyValues.dbl(in, "epsilon", epsilon);
        centered = PyValues.bool(in, "centered", centered);
        clipWeights = PyValues.nullableDbl(in, "clip_weights", clipWeights);
    }
}
