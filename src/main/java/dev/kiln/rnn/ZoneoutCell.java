package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.List;

/**
 * Zoneout (Krueger et al. 2016), MXNet's {@code mx.rnn.ZoneoutCell}: in training, each output
 * and state element keeps its previous value with probability {@code p} instead of taking the
 * new one: {@code where(Dropout(ones_like(new), p), new, old)} (Dropout scales kept ones by
 * 1/(1-p), which is non-zero, so {@code where} selects the new value). At inference Dropout is
 * the identity and the cell equals its base cell. The previous output of the first step is
 * zeros.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class ZoneoutCell extends ModifierCell {
    private final double zoneoutOutputs;
    private final double zoneoutStates;
    private Symbol prevOutput;

    /**
     * Wraps {@code baseCell}.
     *
     * @param baseCell a steppable cell (not fused, not bidirectional)
     * @param zoneoutOutputs probability of keeping the previous output element
     * @param zoneoutStates probability of keeping the previous state element
     */
    public ZoneoutCell(BaseRNNCell baseCell, double zoneoutOutputs, double zoneoutStates) {
        super(check(baseCell));
        if (!(zoneoutOutputs >= 0 && zoneoutOutputs < 1) || !(zoneoutStates >= 0 && zoneoutStates < 1)) {
            throw new IllegalArgumentException("ZoneoutCell: probabilities must be in [0, 1), got outputs=" + zoneoutOutputs
                    + " states=" + zoneoutStates);
        }
        this.zoneoutOutputs = zoneoutOutputs;
        this.zoneoutStates = zoneoutStates;
    }

    private static BaseRNNCell check(BaseRNNCell c) {
        if (c instanceof FusedRNNCell) {
            throw new IllegalArgumentException("FusedRNNCell doesn't support zoneout. Please unfuse first.");
        }
        if (c instanceof BidirectionalCell) {
            throw new IllegalArgumentException("BidirectionalCell doesn't support zoneout since it doesn't support step. "
                    + "Please add ZoneoutCell to the cells underneath instead.");
        }
        return c;
    }

    @Override
    public void reset() {
        super.reset();
        prevOutput = null;
    }

    private static Symbol mask(double p, Symbol like) {
        return Symbol.dropout(null, Symbol.builder("ones_like").input(like).build(), p);
    }

    private static Symbol where(Symbol cond, Symbol x, Symbol y) {
        return Symbol.builder("where").inputs(cond, x, y).build();
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        Step s = baseCell().step(input, states);
        Symbol prev = prevOutput != null ? prevOutput : Symbol.builder("zeros_like").input(s.output()).build();
        Symbol output = zoneoutOutputs != 0 ? where(mask(zoneoutOutputs, s.output()), s.output(), prev) : s.output();
        List<Symbol> next = s.states();
        if (zoneoutStates != 0) {
            next = new ArrayList<>();
            for (int i = 0; i < s.states().size(); i++) {
                Symbol n = s.states().get(i);
                next.add(where(mask(zoneoutStates, n), n, states.get(i)));
            }
        }
        prevOutput = output;
        return new Step(output, next);
    }
}
