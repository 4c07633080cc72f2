package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.List;

/**
 * Simple recurrent cell, MXNet's {@code mx.rnn.RNNCell}: {@code h_t = act(W_i x_t + b_i + W_h
 * h_{t-1} + b_h)} with parameters {@code <prefix>i2h_weight} (H, in), {@code i2h_bias} (H),
 * {@code h2h_weight} (H, H), {@code h2h_bias} (H); step nodes {@code <prefix>t<k>_i2h}, {@code
 * _h2h}, {@code _out}.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class RNNCell extends BaseRNNCell {
    private final int numHidden;
    private final String activation;
    private final Symbol iW;
    private final Symbol iB;
    private final Symbol hW;
    private final Symbol hB;

    /**
     * {@code RNNCell(num_hidden, activation='tanh', prefix='rnn_')}.
     *
     * @param numHidden number of units H
     */
    public RNNCell(int numHidden) {
        this(numHidden, "tanh", "rnn_", null);
    }

    /**
     * Creates the cell.
     *
     * @param numHidden number of units H
     * @param activation the {@code Activation} act_type, e.g. {@code "tanh"} or {@code "relu"}
     * @param prefix name prefix (MXNet default {@code "rnn_"})
     * @param params shared parameters, or null for a new container
     */
    public RNNCell(int numHidden, String activation, String prefix, RNNParams params) {
        super(prefix, params);
        if (numHidden < 1) {
            throw new IllegalArgumentException("RNNCell: num_hidden must be positive, got " + numHidden);
        }
        if (activation == null) {
            throw new IllegalArgumentException("RNNCell: activation is null");
        }
        this.numHidden = numHidden;
        this.activation = activation;
        this.iW = paramsInternal().get("i2h_weight");
        this.iB = paramsInternal().get("i2h_bias");
        this.hW = paramsInternal().get("h2h_weight");
        this.hB = paramsInternal().get("h2h_bias");
    }

    @Override
    int numHidden() {
        return numHidden;
    }

    /** @return the activation type */
    public String activation() {
        return activation;
    }

    @Override
    public List<StateInfo> stateInfo() {
        return List.of(new StateInfo(new long[] {0, numHidden}, "NC"));
    }

    @Override
    List<String> gateNames() {
        return List.of("");
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        checkStates(states, "RNNCell");
        counter++;
        String name = prefix() + "t" + counter + "_";
        Symbol i2h = Symbol.fullyConnected(name + "i2h", input, iW, iB, numHidden);
        Symbol h2h = Symbol.fullyConnected(name + "h2h", states.get(0), hW, hB, numHidden);
        Symbol out = Symbol.activation(name + "out", i2h.plus(h2h), activation);
        return new Step(out, List.of(out));
    }
}
