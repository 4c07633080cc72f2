package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.List;

/**
 * Result of one time step of a cell ({@link BaseRNNCell#step}): the output and the next states.
 *
 * <p>Immutable and thread-safe; holds symbols only.
 *
 * @param output the step output, shape (batch, units)
 * @param states the states for the next step, in the order of {@link BaseRNNCell#stateInfo()}
 */
public record Step(Symbol output, List<Symbol> states) {
    /**
     * Creates the result, copying the state list.
     *
     * @param output the step output
     * @param states the next states
     */
    public Step {
        states = List.copyOf(states);
    }
}
