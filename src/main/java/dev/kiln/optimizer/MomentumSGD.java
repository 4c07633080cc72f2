package dev.kiln.optimizer;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * What {@link SGD} and {@link NAG} share: the {@code momentum}, a state of None (no momentum) or
 * the momentum array, under multi-precision {@code (m or None, weight32)} (the reverse of the
 * base-class order), and the operator calls: {@code sgd_update} without momentum, the subclass's
 * momentum operator with it, both {@code mp_}-prefixed for a float16 weight with {@code
 * multi_precision}. The operator attributes are {@code lr, [momentum,] wd, rescale_grad,
 * clip_gradient} and then the subclass's {@link #extraAttrs}.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
abstract class MomentumSGD extends Optimizer {
    private double momentum;

    MomentumSGD(Params p) {
        super(p, 0.01);
        this.momentum = p.dbl("momentum", 0.0);
    }

    /** @return the momentum */
    public double momentum() {
        return momentum;
    }

    /** @param momentum the new momentum (states already created keep their form) */
    public void setMomentum(double momentum) {
        this.momentum = momentum;
    }

    /** @return the operator with momentum, e.g. {@code "sgd_mom_update"} ({@code mp_} is prepended for multi-precision) */
    abstract String momentumOp();

    /**
     * Adds the subclass's attributes after the shared ones.
     *
     * @param a the attributes of one call
     */
    void extraAttrs(Map<String, Object> a) {}

    @Override
    protected Object createState(Object index, NDArray weight) {
        return momentum != 0.0 ? zerosLike(weight) : null;
    }

    @Override
    protected Object createStateMultiPrecision(Object index, NDArray weight) {
        return createStateMultiPrecision(index, weight, false);
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        addUpdate(step, "", index, weight, grad, state, state != null);
    }

    @Override
    protected void updateMultiPrecision(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        if (multiPrecision && weight.dtype().isLowPrecision()) {
            addUpdate(step, "mp_", index, weight, grad, state, ((List<?>) state).get(0) != null);
        } else {
            update(step, index, weight, grad, state);
        }
    }

    private void addUpdate(UpdateStep step, String prefix, Object index, NDArray weight, NDArray grad, Object state,
            boolean withMomentum) {
        Map<String, Object> a = attrs("lr", lr(index));
        if (withMomentum) {
            a.put("momentum", momentum > 0 ? momentum : 0.0);
        }
        a.put("wd", wd(index));
        a.put("rescale_grad", rescaleGrad);
        a.put("clip_gradient", kernelClip());
        extraAttrs(a);
        step.add(prefix + (withMomentum ? momentumOp() : "sgd_update"), a, stateInputs(weight, grad, state),
                List.of(weight));
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("momentum", momentum);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        momentum = PyValues.dbl(in, "momentum", momentum);
    }
}
