package dev.kiln.ops.norm;

import static dev.kiln.testutil.OpTesting.rand;

import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * All four norm ops in one graph, so that their backward ops get internal gradient entries (and
 * may write dx in place over dy): float64 numeric gradients of the whole chain.
 */
@ExtendWith(NoLeaks.class)
class NormChainTest {

    @Test
    void chainGradients() {
        Symbol x = Symbol.variable("data");
        Symbol bn = Symbol.create("BatchNorm", "bn", Map.of("fix_gamma", "False"), null, x);
        Symbol t1 = Symbol.create("Activation", "a1", Map.of("act_type", "tanh"), null, bn);
        Symbol lrn = Symbol.create("LRN", "lrn", Map.of("nsize", "3", "alpha", "0.5"), null, t1);
        Symbol in = Symbol.create("InstanceNorm", "in", Map.of("eps", "0.01"), null, lrn);
        Symbol t2 = Symbol.create("Activation", "a2", Map.of("act_type", "tanh"), null, in);
        Symbol ln = Symbol.create("LayerNorm", "ln", Map.of("eps", "0.01"), null, t2);
        GradCheck.Inputs inputs = new GradCheck.Inputs()
                .put("data", new long[] {2, 3, 2, 2}, rand(24, -2, 2, 1))
                .put("bn_gamma", new long[] {3}, rand(3, 0.5, 1.5, 2))
                .put("bn_beta", new long[] {3}, rand(3, -0.5, 0.5, 3))
                .put("bn_moving_mean", new long[] {3}, new double[3])
                .put("bn_moving_var", new long[] {3}, new double[] {1, 1, 1})
                .put("in_gamma", new long[] {3}, rand(3, 0.5, 1.5, 4))
                .put("in_beta", new long[] {3}, rand(3, -0.5, 0.5, 5))
                .put("ln_gamma", new long[] {2}, rand(2, 0.5, 1.5, 6))
                .put("ln_beta", new long[] {2}, rand(2, -0.5, 0.5, 7));
        GradCheck.check(ln, inputs, List.of("data", "bn_gamma", "bn_beta", "in_gamma", "in_beta", "ln_gamma", "ln_beta"),
                1e-6, 1e-5, 1e-7);
    }
}
