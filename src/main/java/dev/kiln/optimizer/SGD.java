package dev.kiln.optimizer;

import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * Stochastic gradient descent with momentum and weight decay, MXNet's {@code SGD(momentum=0.0,
 * lazy_update=True, **base)} (spec §5.3), through the native {@code sgd_update} / {@code
 * sgd_mom_update} (and {@code mp_sgd_update} / {@code mp_sgd_mom_update} for float16 weights with
 * {@code multi_precision}).
 *
 * <ul>
 *   <li>no momentum: {@code w = (1 - lr*wd)*w - lr*clip(r*g)}; state None;
 *   <li>momentum {@code mu}: {@code m = mu*m - lr*wd*w - lr*clip(r*g); w += m}; state {@code m}
 *       (the negative velocity), a zero array like the weight;
 *   <li>multi-precision: state {@code (m or None, weight32)} (reverse of the base-class order).
 * </ul>
 * {@code clip_gradient} is applied only when truthy (0 = none). MXNet aggregates SGD updates
 * ({@code MXNET_OPTIMIZER_AGGREGATION_SIZE}, default 4), which fixes the order in which update
 * counts and learning rates are read (see {@link Optimizer#aggregateNum()}).
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class SGD extends Optimizer {
    private double momentum;
    private boolean lazyUpdate;
    private int aggregateNum;

    /** SGD with MXNet's defaults (learning rate 0.01, no momentum). */
    public SGD() {
        this(Map.of());
    }

    /**
     * SGD from MXNet keyword arguments: {@code momentum, lazy_update} and the base parameters.
     *
     * @param params the arguments (see {@link Params})
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public SGD(Map<String, ?> params) {
        this(new Params("sgd", params));
    }

    /**
     * For subclasses: reads SGD's parameters from {@code p} without finishing it.
     *
     * @param p the parameters
     * @param finish whether to reject unconsumed keys
     */
    protected SGD(Params p, boolean finish) {
        super(p, 0.01);
        this.momentum = p.dbl("momentum", 0.0);
        this.lazyUpdate = p.bool("lazy_update", true);
        this.aggregateNum = envAggregation("MXNET_OPTIMIZER_AGGREGATION_SIZE", 4);
        if (finish) {
            p.finish();
        }
    }

    private SGD(Params p) {
        this(p, true);
    }

    static int envAggregation(String var, int dflt) {
        String v = System.getenv(var);
        if (v == null || v.isBlank()) {
            return dflt;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("environment variable " + var + "='" + v + "' is not an integer");
        }
    }

    /** @return the momentum */
    public double momentum() {
        return momentum;
    }

    /** @param momentum the new momentum (states already created keep their form) */
    public void setMomentum(double momentum) {
        this.momentum = momentum;
    }

    /** @return the lazy_update flag (only meaningful for sparse gradients, which Kiln lacks) */
    public boolean lazyUpdate() {
        return lazyUpdate;
    }

    @Override
    protected int aggregateNum() {
        return aggregateNum;
    }

    /**
     * Sets the aggregation size (MXNet's {@code aggregate_num} attribute).
     *
     * @param n parameters per aggregated call, 0 = no aggregation
     */
    public void setAggregateNum(int n) {
        if (n < 0) {
            throw new IllegalArgumentException("aggregate_num must be >= 0, got " + n);
        }
        this.aggregateNum = n;
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

    /** The operator attributes shared by all four kernels. */
    Map<String, Object> kernelAttrs(Object index, boolean withMomentum) {
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
            Map<String, Object> a = kernelAttrs(index, true);
            a.put("lazy_update", lazyUpdate);
            step.add("sgd_mom_update", a, List.of(weight, grad, (NDArray) state), List.of(weight));
        } else {
            Map<String, Object> a = kernelAttrs(index, false);
            a.put("lazy_update", lazyUpdate);
            step.add("sgd_update", a, List.of(weight, grad), List.of(weight));
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
            Map<String, Object> a = kernelAttrs(index, true);
            a.put("lazy_update", lazyUpdate);
            step.add("mp_sgd_mom_update", a, List.of(weight, grad, mom, w32), List.of(weight));
        } else {
            Map<String, Object> a = kernelAttrs(index, false);
            a.put("lazy_update", lazyUpdate);
            step.add("mp_sgd_update", a, List.of(weight, grad, w32), List.of(weight));
        }
    }

    @Override
    protected String pythonClassName() {
        return "SGD";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        out.put("momentum", momentum);
        out.put("lazy_update", lazyUpdate);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        if (in.containsKey("momentum")) {
            momentum = PyValues.dbl(in.get("momentum"), "momentum");
        }
        if (in.containsKey("lazy_update")) {
            lazyUpdate = PyValues.bool(in.get("lazy_update"), "lazy_update");
        }
        if (in.containsKey("aggregate_num")) {
            aggregateNum = (int) Math.max(0, PyValues.lng(in.get("aggregate_num"), "aggregate_num"));
        }
    }
}
