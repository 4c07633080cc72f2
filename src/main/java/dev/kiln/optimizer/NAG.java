package dev.kiln.optimizer;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * Nesterov accelerated SGD, MXNet's {@code NAG(momentum=0.0, **base)} (spec §5.3), through the
 * native {@code nag_mom_update} ({@code sgd_update} without momentum; {@code mp_nag_mom_update} /
 * {@code mp_sgd_update} for float16 weights with {@code multi_precision}). With {@code G =
 * clip(r*g) + wd*w}: {@code w += mu^2*m - (1+mu)*lr*G; m = mu*m - lr*G}. State: None without
 * momentum, else the momentum; multi-precision {@code (m or None, weight32)}.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class NAG extends Optimizer {
    private double momentum;

    /** NAG with MXNet's defaults. */
    public NAG() {
        this(Map.of());
    }

    /**
     * NAG from MXNet keyword arguments ({@code momentum} and the base parameters).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public NAG(Map<String, ?> params) {
        this(new Params("nag", params));
    }

    private NAG(Params p) {
        super(p, 0.01);
        this.momentum = p.dbl("momentum", 0.0);
        p.finish();
    }

    /** @return the momentum */
    public double momentum() {
        return momentum;
    }

    /** @param momentum the new momentum (states already created keep their form) */
    public void setMomentum(double momentum) {
        this.momentum = momentum;
    }

    @Override
    protected Object createState(Object index, NDArray weight) {
        return momentum != 0.0 ? zerosLike(weight) : null;
    }

    @Override
    protected Object createStateMultiPrecision(Object index, NDArray weight) {
        if (multiPrecision && weight.dtype() == DType.FLOAT16) {
            NDArray w32 = HalfFloats.toFloat32(weight);
            try {
                return tuple(createState(index, w32), w32);
            } catch (RuntimeException e) {
                w32.close();
                throw e;
            }
        }
        if (weight.dtype() == DType.FLOAT16) {
            warnFloat16();
        }
        return createState(index, weight);
    }

    private Map<String, Object> kernelAttrs(Object index, boolean withMomentum) {
        Map<String, Object> a = attrs("lr", lr(index));
        if (withMomentum) {
            a.put("momentum", momentum > 0 ? momentum : 0.0);
        }
        a.put("wd", wd(index));
        a.put("rescale_grad", rescaleGrad);
        a.put("clip_gradient", kernelClip());
        return a;
    }

    @Override
    protected void update(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        if (state != null) {
            step.add("nag_mom_update", kernelAttrs(index, true), List.of(weight, grad, (NDArray) state), List.of(weight));
        } else {
            step.add("sgd_update", kernelAttrs(index, false), List.of(weight, grad), List.of(weight));
        }
    }

    @Override
    protected void updateMultiPrecision(UpdateStep step, Object index, NDArray weight, NDArray grad, Object state) {
        if (!(multiPrecision && weight.dtype() == DType.FLOAT16)) {
            update(step, index, weight, grad, state);
            return;
        }
        List<?> st = (List<?>) state;
        NDArray mom = (NDArray) st.get(0);
        NDArray w32 = (NDArray) st.get(1);
        if (mom != null) {
            step.add("mp_nag_mom_update", kernelAttrs(index, true), List.of(weight, grad, mom, w32), List.of(weight));
        } else {
            step.add("mp_sgd_update", kernelAttrs(index, false), List.of(weight, grad, w32), List.of(weight));
        }
    }

    @Override
    protected String pythonClassName() {
        return "NAG";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("momentum", momentum);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        if (in.containsKey("momentum")) {
            momentum = PyValues.dbl(in.get("momentum"), "momentum");
        }
    }
}
