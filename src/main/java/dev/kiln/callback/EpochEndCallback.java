package dev.kiln.callback;

import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.Map;

/**
 * Called by {@code fit} at the end of every epoch with the synchronised parameters, MXNet's
 * {@code epoch_end_callback(epoch, symbol, arg_params, aux_params)}.
 *
 * <p>Ownership: the symbol and the arrays belong to the module; a callback may read or save
 * them during the call but must neither close them nor keep them after it returns. Called from
 * the training thread only.
 */
@FunctionalInterface
public interface EpochEndCallback {
    /**
     * Handles the end of one epoch.
     *
     * @param epoch the 0-based epoch that just ended
     * @param symbol the module's symbol (may be null for modules without one)
     * @param argParams parameter name to CPU array (borrowed)
     * @param auxParams auxiliary-state name to CPU array (borrowed)
     */
    void invoke(int epoch, Symbol symbol, Map<String, NDArray> argParams, Map<String, NDArray> auxParams);
}
