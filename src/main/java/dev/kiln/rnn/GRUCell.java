package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.List;

/**
 * Gated recurrent unit, MXNet's {@code mx.rnn.GRUCell} (the cuDNN variant: the reset gate
 * multiplies the recurrent projection after its bias). Gates r, z, n are consecutive blocks of
 * H rows of the fused matrices:
 *
 * <pre>
 * [ir, iz, in] = FC(x_t; i2h_weight (3H, in), i2h_bias)     (node &lt;prefix&gt;t&lt;k&gt;__i2h)
 * [hr, hz, hn] = FC(h_{t-1}; h2h_weight (3H, H), h2h_bias)  (node &lt;prefix&gt;t&lt;k&gt;__h2h)
 * r = sigmoid(ir + hr)    z = sigmoid(iz + hz)
 * n = tanh(in + r * hn)
 * h_t = (1 - z) * n + z * h_{t-1}                            (node &lt;prefix&gt;t&lt;k&gt;_out)
 * </pre>
 *
 * (The doubled underscore in {@code __i2h} is MXNet's.) One state h, (batch, H).
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class GRUCell extends BaseRNNCell {
    private final int numHidden;
    private final Symbol iW;
    private final Symbol iB;
    private final Symbol hW;
    private final Symbol hB;

    /**
     * {@code GRUCell(num_hidden, prefix='gru_')}.
     *
     * @param numHidden number of units H
     */
    public GRUCell(int numHidden) {
        this(numHidden, "gru_", null);
    }

    /**
     * Creates the cell.
     *
     * @param numHidden number of units H
     * @param prefix name prefix (MXNet default {@code "gru_"})
     * @param params shared parameters, or null for a new container
     */
    public GRUCell(int numHidden, String prefix, RNNParams params) {
        super(prefix, params);
        if (numHidden < 1) {
            throw new IllegalArgumentException("GRUCell: num_hidden must be positive, got " + numHidden);
        }
        this.numHidden = numHidden;
        this.iW = paramsInternal().get("i2h_weight");
        this.iB = paramsInternal().get("i2h_bias");
        this.hW = paramsInternal().get("h2h_weight");
        this.hB = paramsInternal().get("h2h_bias");
    }

    @Override
    int numHidden() {
        return numHidden;
    }

    @Override
    public List<StateInfo> stateInfo() {
        return List.of(new StateInfo(new long[] {0, numHidden}, "NC"));
    }

    @Override
    List<String> gateNames() {
        return List.of("_r", "_z", "_o");
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        checkStates(states, "GRUCell");
        counter++;
        String name = prefix() + "t" + counter + "_";
        Symbol prevH = states.get(0);
        Symbol i2h = Symbol.fullyConnected(name + "_i2h", input, iW, iB, numHidden * 3);
        Symbol h2h = Symbol.fullyConnected(name + "_h2h", prevH, hW, hB, numHidden * 3);
        Symbol is = Symbol.sliceChannel(name + "_i2h_slice", i2h, 3);
        Symbol hs = Symbol.sliceChannel(name + "_h2h_slice", h2h, 3);
        Symbol resetGate = Symbol.activation(name + "_r_act", is.get(0).plus(hs.get(0)), "sigmoid");
        Symbol updateGate = Symbol.activation(name + "_z_act", is.get(1).plus(hs.get(1)), "sigmoid");
        Symbol nextHTmp = Symbol.activation(name + "_h_act", is.get(2).plus(resetGate.mul(hs.get(2))), "tanh");
        Symbol nextH = Symbol.builder("_plus").name(name + "out")
                .inputs(updateGate.rminus(1.0).mul(nextHTmp), updateGate.mul(prevH)).build();
        return new Step(nextH, List.of(nextH));
    }
}
