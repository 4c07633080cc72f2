package dev.kiln.optimizer;

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
public class SGD extends MomentumSGD {
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
        super(p);
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
    String momentumOp() {
        return "sgd_mom_update";
    }

    @Override
    void extraAttrs(Map<String, Object> a) {
        a.put("lazy_update", lazyUpdate);
    }

    @Override
    protected String pythonClassName() {
        return "SGD";
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
        if (in.containsKey("aggregate_num")) {
            aggregateNum = (int) Math.max(0, PyValues.lng(in.get("aggregate_num"), "aggregate_num"));
        }
    }
}
