package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.List;

/**
 * Result of {@link BaseRNNCell#unroll}: the outputs, either merged into one symbol of shape
 * (batch, length, units) for layout NTC / (length, batch, units) for TNC, or as one symbol per
 * time step; and the final states (flattened in {@link BaseRNNCell#stateInfo()} order).
 *
 * <p>Immutable and thread-safe; holds symbols only.
 */
public final class Unrolled {
    private final Seq outputs;
    private final List<Symbol> states;

    Unrolled(Seq outputs, List<Symbol> states) {
        this.outputs = outputs;
        this.states = List.copyOf(states);
    }

    Seq seq() {
        return outputs;
    }

    /** @return true when the outputs are one merged symbol (see {@link #merged()}) */
    public boolean isMerged() {
        return outputs.isMerged();
    }

    /**
     * The merged outputs.
     *
     * @return one symbol holding all time steps
     * @throws IllegalStateException when the outputs are a per-step list (unroll with {@code
     *     mergeOutputs = true} to get one symbol)
     */
    public Symbol merged() {
        if (!outputs.isMerged()) {
            throw new IllegalStateException("unroll returned a list of " + outputs.list().size()
                    + " per-step outputs, not a merged symbol; pass mergeOutputs = true");
        }
        return outputs.merged();
    }

    /**
     * The per-step outputs.
     *
     * @return one symbol per time step
     * @throws IllegalStateException when the outputs are merged (use {@link #merged()}, or unroll
     *     with {@code mergeOutputs = false})
     */
    public List<Symbol> outputs() {
        if (outputs.isMerged()) {
            throw new IllegalStateException("unroll returned merged outputs; use merged() or pass mergeOutputs = false");
        }
        return outputs.list();
    }

    /** @return the final states, flattened (for a bidirectional cell: left states then right states) */
    public List<Symbol> states() {
        return states;
    }
}
