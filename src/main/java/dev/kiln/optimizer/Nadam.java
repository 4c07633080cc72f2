package dev.kiln.optimizer;

import dev.kiln.ndarray.NDArray;

import java.util.List;
import java.util.Map;

/**
 * Nesterov Adam, MXNet's {@code Nadam(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
 * schedule_decay=0.004, **base)} (spec §5.3; Python in MXNet, the native {@code
 * _kiln_nadam_update} in Kiln). The momentum schedule {@code S} is <b>one scalar on the
 * optimizer</b>, multiplied by {@code mu_t = beta1*(1 - 0.5*0.96^(t*sd))} on every update of
 * every parameter (so the parameters of one step see different values, in update order); with
 * {@code mu_t1} the same at {@code t+1} and {@code G = clip(r*g + wd*w)}: {@code m = beta1*m +
 * (1-beta1)*G; v = beta2*v + (1-beta2)*G^2; mbar = (1-mu_t)*G/(1-S) + mu_t1*m/(1-S*mu_t1); w -=
 * lr*mbar/(sqrt(v/(1-beta2^t)) + eps)}. State {@code (m, v)}, zero arrays like the weight.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
public class Nadam extends MomentOptimizer {
    private double scheduleDecay;
    private double mSchedule = 1.0;

    /** Nadam with MXNet's defaults. */
    public Nadam() {
        this(Map.of());
    }

    /**
     * Nadam from MXNet keyword arguments ({@code beta1, beta2, epsilon, schedule_decay} and the
     * base parameters; {@code learning_rate} defaults to 0.001).
     *
     * @param params the arguments
     * @throws IllegalArgumentException for unknown parameters or wrong types
     */
    public Nadam(Map<String, ?> params) {
        this(new Params("nadam", params));
    }

    private Nadam(Params p) {
        super(p, 0.001, 0.9, 0.999, 1e-8);
        scheduleDecay = p.dbl("schedule_decay", 0.004);
        p.finish();
    }

    /** @return the momentum schedule product {@code m_schedule} (state; 1 initially) */
    public double mSchedule() {
        return mSchedule;
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
        double momentumT = beta1 * (1. - 0.5 * Math.pow(0.96, t * scheduleDecay));
        double momentumT1 = beta1 * (1. - 0.5 * Math.pow(0.96, (t + 1) * scheduleDecay));
        mSchedule = mSchedule * momentumT;
        step.add("_kiln_nadam_update", attrs("lr", lr, "t", t, "momentum_t", momentumT, "momentum_t_1", momentumT1,
                "m_schedule", mSchedule, "beta1", beta1, "beta2", beta2, "epsilon", epsilon, "wd", wd,
                "rescale_grad", rescaleGrad, "clip_gradient", pythonClip()),
                stateInputs(weight, grad, state), List.of(weight));
    }

    @Override
    protected String pythonClassName() {
        return "Nadam";
    }

    @Override
    protected void writeFields(Map<String, Object> out) {
        super.writeFields(out);
        out.put("schedule_decay", scheduleDecay);
        out.put("m_schedule", mSchedule);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        super.readFields(in);
        scheduleDecay = PyValues.dbl(in, "schedule_decay", scheduleDecay);
        mSchedule = PyValues.dbl(in, "m_schedule", mSchedule);
    }
}
