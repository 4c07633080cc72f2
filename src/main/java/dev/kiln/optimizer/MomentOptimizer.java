package dev.kiln.optimizer;

import java.util.Map;

/**
 * What Adam, Nadam, LAMB and FTML share: MXNet's {@code beta1, beta2, epsilon} (the decay rates
 * of the moment estimates and the constant for numerical stability), read from the keyword
 * arguments after the base parameters and written to the pickled {@code __dict__} before the
 * subclass's fields.
 *
 * <p>Thread-safety: not thread-safe. Ownership: see {@link Optimizer}.
 */
abstract class MomentOptimizer extends Optimizer {
    double beta1;
    double beta2;
    double epsilon;

    MomentOptimizer(Params p, double defaultLearningRate, double beta1, double beta2, double epsilon) {
        super(p, defaultLearningRate);
        this.beta1 = p.dbl("beta1", beta1);
        this.beta2 = p.dbl("beta2", beta2);
        this.epsilon = p.dbl("epsilon", epsilon);
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
    protected void writeFields(Map<String, Object> out) {
        out.put("beta1", beta1);
        out.put("beta2", beta2);
        out.put("epsilon", epsilon);
    }

    @Override
    protected void readFields(Map<String, Object> in) {
        beta1 = PyValues.dbl(in, "beta1", beta1);
        beta2 = PyValues.dbl(in, "beta2", beta2);
        epsilon = PyValues.dbl(in, "epsilon", epsilon);
    }
}
