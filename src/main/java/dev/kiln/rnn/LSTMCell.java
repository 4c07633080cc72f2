package dev.kiln.rnn;

import dev.kiln.init.LSTMBias;
import dev.kiln.symbol.Symbol;

import java.util.List;
import java.util.Map;

/**
 * Long short-term memory cell, MXNet's {@code mx.rnn.LSTMCell}. One step, with the four gates
 * in MXNet's order i, f, c, o as consecutive blocks of H rows of the fused matrices:
 *
 * <pre>
 * gates = FC(x_t; i2h_weight (4H, in), i2h_bias) + FC(h_{t-1}; h2h_weight (4H, H), h2h_bias)
 * i = sigmoid(gates[0:H])    f = sigmoid(gates[H:2H])
 * c~ = tanh(gates[2H:3H])    o = sigmoid(gates[3H:4H])
 * c_t = f * c_{t-1} + i * c~          (node &lt;prefix&gt;t&lt;k&gt;_state)
 * h_t = o * tanh(c_t)                 (node &lt;prefix&gt;t&lt;k&gt;_out)
 * </pre>
 *
 * States: [h, c], each (batch, H). The forget bias is not added in the graph: as in MXNet,
 * {@code i2h_bias} carries the initializer attribute {@code __init__ = ["lstmbias",
 * {"forget_bias": 1.0}]} ({@link LSTMBias}), which sets the f block to {@code forget_bias} when
 * parameters are initialized.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class LSTMCell extends BaseRNNCell {
    private final int numHidden;
    private final double forgetBias;
    private final Symbol iW;
    private final Symbol iB;
    private final Symbol hW;
    private final Symbol hB;

    /**
     * {@code LSTMCell(num_hidden, prefix='lstm_', forget_bias=1.0)}.
     *
     * @param numHidden number of units H
     */
    public LSTMCell(int numHidden) {
        this(numHidden, "lstm_", null, 1.0);
    }

    /**
     * Creates the cell.
     *
     * @param numHidden number of units H
     * @param prefix name prefix (MXNet default {@code "lstm_"})
     * @param params shared parameters, or null for a new container
     * @param forgetBias initial value of the forget-gate bias (MXNet default 1.0)
     */
    public LSTMCell(int numHidden, String prefix, RNNParams params, double forgetBias) {
        super(prefix, params);
        if (numHidden < 1) {
            throw new IllegalArgumentException("LSTMCell: num_hidden must be positive, got " + numHidden);
        }
        this.numHidden = numHidden;
        this.forgetBias = forgetBias;
        this.iW = paramsInternal().get("i2h_weight");
        this.hW = paramsInternal().get("h2h_weight");
        this.iB = paramsInternal().get("i2h_bias", Map.of("init", new LSTMBias(forgetBias).dumps()));
        this.hB = paramsInternal().get("h2h_bias");
    }

    @Override
    int numHidden() {
        return numHidden;
    }

    /** @return the forget-gate bias written by the initializer */
    public double forgetBias() {
        return forgetBias;
    }

    @Override
    public List<StateInfo> stateInfo() {
        return List.of(new StateInfo(new long[] {0, numHidden}, "NC"), new StateInfo(new long[] {0, numHidden}, "NC"));
    }

    @Override
    List<String> gateNames() {
        return List.of("_i", "_f", "_c", "_o");
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        checkStates(states, "LSTMCell");
        counter++;
        String name = prefix() + "t" + counter + "_";
        Symbol i2h = Symbol.fullyConnected(name + "i2h", input, iW, iB, numHidden * 4);
        Symbol h2h = Symbol.fullyConnected(name + "h2h", states.get(0), hW, hB, numHidden * 4);
        Symbol gates = i2h.plus(h2h);
        Symbol slice = Symbol.sliceChannel(name + "slice", gates, 4);
        Symbol inGate = Symbol.activation(name + "i", slice.get(0), "sigmoid");
        Symbol forgetGate = Symbol.activation(name + "f", slice.get(1), "sigmoid");
        Symbol inTransform = Symbol.activation(name + "c", slice.get(2), "tanh");
        Symbol outGate = Symbol.activation(name + "o", slice.get(3), "sigmoid");
        Symbol nextC = Symbol.builder("_plus").name(name + "state")
                .inputs(forgetGate.mul(states.get(1)), inGate.mul(inTransform)).build();
        Symbol nextH = Symbol.builder("_mul").name(name + "out")
                .inputs(outGate, Symbol.activation(null, nextC, "tanh")).build();
        return new Step(nextH, List.of(nextH, nextC));
    }
}
