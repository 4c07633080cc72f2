package dev.kiln.optimizer;

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
public class NAG extends MomentumSGD {
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
        super(p);
        p.finish();
    }

    @Override
    String momentumOp() {
        return "nag_mom_update";
    }

    @Override
    protected String pythonClassName() {
        return "NAG";
    }
}
