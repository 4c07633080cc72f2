package dev.kiln.rnn;

import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.symbol.SymbolBuilder;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * All layers and time steps in one fused {@code RNN} operator, MXNet's {@code
 * mx.rnn.FusedRNNCell}. Its weights are one flat variable {@code <prefix>parameters} in MXNet's
 * (cuDNN's) packed layout, with G gates (1 for rnn_relu/rnn_tanh, 4 for lstm: i, f, c, o, 3 for
 * gru: r, z, n), D directions (l, then r if bidirectional), H hidden units, layer input size
 * {@code in_0} = input size and {@code in_k} = D·H for k &gt; 0:
 *
 * <pre>
 * for layer k, for direction d:  i2h weight [G·H, in_k], then h2h weight [G·H, H]   (all weights first)
 * for layer k, for direction d:  i2h bias [G·H], then h2h bias [G·H]
 * total = (in_0 + H + 2)·G·H·D + (L - 1)·(D·H + H + 2)·G·H·D
 * </pre>
 *
 * {@link #unpackWeights}/{@link #packWeights} convert, exactly as MXNet, between that vector and
 * per-gate arrays {@code <prefix><d><k>_i2h<gate>_weight} (e.g. {@code lstm_l0_i2h_f_weight}, shape
 * (H, in_k)); {@link #unpackToCells}/{@link #packFromCells} convert between the vector and the
 * arrays of the equivalent unfused stack from {@link #unfuse()} ({@code lstm_l0_i2h_weight}, shape
 * (G·H, in_0), ...), i.e. {@code unfuse().pack_weights(unpack_weights(args))} in MXNet.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols;
 * the conversions return new arrays owned by the caller).
 */
public class FusedRNNCell extends BaseRNNCell {
    static {
        FusedRNN.register();
    }

    private final int numHidden;
    private final int numLayers;
    private final String mode;
    private final boolean bidirectional;
    private final double dropout;
    private final boolean getNextState;
    private final double forgetBias;
    private final Symbol parameter;
    private final List<String> directions;

    /**
     * {@code FusedRNNCell(num_hidden, num_layers, mode)} with the other MXNet defaults
     * (unidirectional, no dropout, no next state, forget_bias 1.0, prefix {@code <mode>_}).
     *
     * @param numHidden hidden units H
     * @param numLayers layers L
     * @param mode {@code rnn_relu}, {@code rnn_tanh}, {@code lstm} or {@code gru}
     */
    public FusedRNNCell(int numHidden, int numLayers, String mode) {
        this(numHidden, numLayers, mode, false, 0.0, false, 1.0, null, null);
    }

    /**
     * Creates the cell.
     *
     * @param numHidden hidden units H
     * @param numLayers layers L
     * @param mode {@code rnn_relu}, {@code rnn_tanh}, {@code lstm} or {@code gru}
     * @param bidirectional also run a reversed direction (output size 2H)
     * @param dropout dropout between layers (the op's {@code p})
     * @param getNextState return the final states ({@code state_outputs})
     * @param forgetBias initial LSTM forget-gate bias (through the {@code fusedrnn} initializer)
     * @param prefix name prefix, or null for {@code <mode>_}
     * @param params shared parameters, or null
     */
    public FusedRNNCell(int numHidden, int numLayers, String mode, boolean bidirectional, double dropout,
            boolean getNextState, double forgetBias, String prefix, RNNParams params) {
        super(prefix == null ? mode + "_" : prefix, params);
        if (numHidden < 1 || numLayers < 1) {
            throw new IllegalArgumentException("FusedRNNCell: num_hidden and num_layers must be positive, got " + numHidden
                    + " and " + numLayers);
        }
        gates(mode);
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("FusedRNNCell: dropout must be in [0, 1), got " + dropout);
        }
        this.numHidden = numHidden;
        this.numLayers = numLayers;
        this.mode = mode;
        this.bidirectional = bidirectional;
        this.dropout = dropout;
        this.getNextState = getNextState;
        this.forgetBias = forgetBias;
        this.directions = bidirectional ? List.of("l", "r") : List.of("l");
        FusedRNN init = new FusedRNN(null, numHidden, numLayers, mode, bidirectional, forgetBias);
        this.parameter = paramsInternal().get("parameters", Map.of("init", init.dumps()));
    }

    static List<String> gates(String mode) {
        if (mode == null) {
            throw new IllegalArgumentException("FusedRNNCell: mode is null");
        }
        switch (mode) {
            case "rnn_relu":
            case "rnn_tanh":
                return List.of("");
            case "lstm":
                return List.of("_i", "_f", "_c", "_o");
            case "gru":
                return List.of("_r", "_z", "_o");
            default:
                throw new IllegalArgumentException("FusedRNNCell: mode must be rnn_relu, rnn_tanh, lstm or gru, got '" + mode + "'");
        }
    }

    /** @return the packed parameter variable {@code <prefix>parameters} */
    public Symbol parameter() {
        return parameter;
    }

    @Override
    int numHidden() {
        return numHidden;
    }

    /** @return the mode */
    public String mode() {
        return mode;
    }

    /** @return the number of layers */
    public int numLayers() {
        return numLayers;
    }

    /** @return whether the cell is bidirectional */
    public boolean bidirectional() {
        return bidirectional;
    }

    @Override
    public List<StateInfo> stateInfo() {
        int b = bidirectional ? 2 : 1;
        int n = "lstm".equals(mode) ? 2 : 1;
        List<StateInfo> l = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            l.add(new StateInfo(new long[] {(long) b * numLayers, 0, numHidden}, "LNC"));
        }
        return l;
    }

    @Override
    List<String> gateNames() {
        return gates(mode);
    }

    /**
     * Number of elements of the packed vector for input size {@code numInput}: {@code (in + H +
     * 2)·G·H·D + (L - 1)·(D·H + H + 2)·G·H·D}.
     *
     * @param numInput input feature size
     * @return the length of {@code <prefix>parameters}
     */
    public long parameterSize(long numInput) {
        long b = directions.size();
        long m = gateNames().size();
        long h = numHidden;
        return (numInput + h + 2) * h * m * b + (numLayers - 1L) * m * h * (h + b * h + 2) * b;
    }

    /** One slice of the packed vector: name, element offset, shape. */
    record Slice(String name, long offset, long[] shape) {
        long size() {
            long s = 1;
            for (long d : shape) {
                s *= d;
            }
            return s;
        }
    }

    /** MXNet's {@code _slice_weights}: the per-gate slices in packed order. */
    List<Slice> sliceWeights(long li, long lh) {
        List<Slice> out = new ArrayList<>();
        List<String> gateNames = gateNames();
        long b = directions.size();
        long p = 0;
        for (int layer = 0; layer < numLayers; layer++) {
            for (String d : directions) {
                for (String g : gateNames) {
                    long[] shape = layer > 0 ? new long[] {lh, b * lh} : new long[] {lh, li};
                    out.add(new Slice(prefix() + d + layer + "_i2h" + g + "_weight", p, shape));
                    p += shape[0] * shape[1];
                }
                for (String g : gateNames) {
                    out.add(new Slice(prefix() + d + layer + "_h2h" + g + "_weight", p, new long[] {lh, lh}));
                    p += lh * lh;
                }
            }
        }
        for (int layer = 0; layer < numLayers; layer++) {
            for (String d : directions) {
                for (String g : gateNames) {
                    out.add(new Slice(prefix() + d + layer + "_i2h" + g + "_bias", p, new long[] {lh}));
                    p += lh;
                }
                for (String g : gateNames) {
                    out.add(new Slice(prefix() + d + layer + "_h2h" + g + "_bias", p, new long[] {lh}));
                    p += lh;
                }
            }
        }
        return out;
    }

    /**
     * Splits {@code <prefix>parameters} into per-gate arrays, MXNet's {@code
     * FusedRNNCell.unpack_weights}: {@code <prefix>l0_i2h_i_weight} (H, in), {@code
     * <prefix>l0_h2h_i_weight} (H, H), ..., {@code <prefix>l0_i2h_i_bias} (H), ... (gate suffix
     * empty for rnn modes).
     *
     * @param args arrays by name, holding {@code <prefix>parameters} (not modified)
     * @return a new map: the other input entries plus the new per-gate arrays (owned by the caller)
     * @throws IllegalArgumentException if the vector is missing or its length fits no input size
     */
    @Override
    public Map<String, NDArray> unpackWeights(Map<String, NDArray> args) {
        Map<String, NDArray> out = new LinkedHashMap<>(args);
        NDArray arr = take(out, parameter.name());
        long b = directions.size();
        long m = gateNames().size();
        long h = numHidden;
        long numInput = arr.size() / b / h / m - (numLayers - 1L) * (h + b * h + 2) - h - 2;
        if (numInput < 1 || parameterSize(numInput) != arr.size()) {
            throw new IllegalArgumentException("FusedRNNCell.unpack_weights: " + parameter.name() + " has " + arr.size()
                    + " elements (shape " + arr.shape() + "), which is no valid parameter size for mode " + mode + ", "
                    + numLayers + " layers, " + h + " hidden, " + b + " directions. Invalid parameters size for FusedRNNCell");
        }
        Weights.Source src = new Weights.Source(arr);
        for (Slice s : sliceWeights(numInput, h)) {
            out.put(s.name(), src.range(s.offset(), s.size(), s.shape(), "unpack_weights " + s.name()));
        }
        return out;
    }

    /**
     * Packs per-gate arrays into {@code <prefix>parameters}, MXNet's {@code
     * FusedRNNCell.pack_weights} (the inverse of {@link #unpackWeights}); the input size is read
     * from {@code <prefix>l0_i2h<gate0>_weight}'s second dimension.
     *
     * @param args arrays by name (not modified)
     * @return a new map: the other input entries plus the new packed vector (owned by the caller)
     * @throws IllegalArgumentException if an array is missing or has the wrong shape
     */
    @Override
    public Map<String, NDArray> packWeights(Map<String, NDArray> args) {
        Map<String, NDArray> out = new LinkedHashMap<>(args);
        String w0name = prefix() + "l0_i2h" + gateNames().get(0) + "_weight";
        NDArray w0 = out.get(w0name);
        if (w0 == null || w0.shape().ndim() != 2) {
            throw new IllegalArgumentException("FusedRNNCell.pack_weights: 2-D weight '" + w0name + "' is missing; have "
                    + out.keySet());
        }
        long numInput = w0.shape().get(1);
        List<NDArray> parts = new ArrayList<>();
        for (Slice s : sliceWeights(numInput, numHidden)) {
            NDArray a = take(out, s.name());
            if (!java.util.Arrays.equals(a.shape().dims(), s.shape())) {
                throw new IllegalArgumentException("FusedRNNCell.pack_weights: '" + s.name() + "' has shape " + a.shape()
                        + ", expected " + new dev.kiln.ndarray.Shape(s.shape()));
            }
            parts.add(a);
        }
        out.put(parameter.name(), Weights.concat(parts, new long[] {parameterSize(numInput)}, "pack_weights"));
        return out;
    }

    /**
     * Converts {@code <prefix>parameters} into the arrays of the unfused stack {@link #unfuse()}
     * uses: {@code <prefix>l0_i2h_weight} (G·H, in), {@code <prefix>l0_i2h_bias} (G·H), {@code
     * <prefix>l0_h2h_weight} (G·H, H), ... and {@code <prefix>r0_...} when bidirectional. MXNet:
     * {@code cell.unfuse().pack_weights(cell.unpack_weights(args))}.
     *
     * @param args arrays by name, holding {@code <prefix>parameters} (not modified)
     * @return a new map: the other input entries plus new arrays owned by the caller
     */
    public Map<String, NDArray> unpackToCells(Map<String, NDArray> args) {
        Map<String, NDArray> gates = unpackWeights(args);
        Map<String, NDArray> cells = unfuse().packWeights(gates);
        closeIntermediate(args, gates, cells);
        return cells;
    }

    /**
     * The inverse of {@link #unpackToCells}: packs the unfused stack's arrays into {@code
     * <prefix>parameters}. MXNet: {@code cell.pack_weights(cell.unfuse().unpack_weights(args))}.
     *
     * @param args arrays by name (not modified)
     * @return a new map: the other input entries plus the new packed vector (owned by the caller)
     */
    public Map<String, NDArray> packFromCells(Map<String, NDArray> args) {
        Map<String, NDArray> gates = unfuse().unpackWeights(args);
        Map<String, NDArray> packed = packWeights(gates);
        closeIntermediate(args, gates, packed);
        return packed;
    }

    private static void closeIntermediate(Map<String, NDArray> callers, Map<String, NDArray> mid, Map<String, NDArray> result) {
        Set<NDArray> c = Collections.newSetFromMap(new IdentityHashMap<>());
        c.addAll(callers.values());
        Chain.closeDropped(mid, result, c);
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        throw new UnsupportedOperationException("FusedRNNCell cannot be stepped. Please use unroll");
    }

    @Override
    Unrolled unrollSeq(int length, Seq inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        checkLength(length);
        reset();
        int axis = Seq.axis(layout);
        Symbol data = Seq.normalize(length, inputs, layout, true).merged();
        if (axis == 1) {
            data = Symbol.transpose(null, data, 1, 0, 2);   // MXNet: swapaxes(dim1=0, dim2=1) of (N, T, C)
        } else if (axis != 0) {
            throw new IllegalArgumentException("FusedRNNCell: Unsupported layout " + layout);
        }
        List<Symbol> states = beginState == null ? beginState() : checkStates(beginState, "FusedRNNCell.unroll");
        SymbolBuilder b = Symbol.builder("RNN").name(prefix() + "rnn").input("data", data).input("parameters", parameter)
                .input("state", states.get(0));
        if ("lstm".equals(mode)) {
            b.input("state_cell", states.get(1));
        }
        Symbol rnn = b.param("state_size", numHidden).param("num_layers", numLayers).param("bidirectional", bidirectional)
                .param("p", dropout).param("state_outputs", getNextState).param("mode", mode).build();
        Symbol outputs;
        List<Symbol> next;
        if (!getNextState) {
            outputs = rnn.numOutputs() == 1 ? rnn : rnn.get(0);
            next = List.of();
        } else if ("lstm".equals(mode)) {
            outputs = rnn.get(0);
            next = List.of(rnn.get(1).setAttr("__layout__", "LNC"), rnn.get(2).setAttr("__layout__", "LNC"));
        } else {
            outputs = rnn.get(0);
            next = List.of(rnn.get(1).setAttr("__layout__", "LNC"));
        }
        if (axis == 1) {
            outputs = Symbol.transpose(null, outputs, 1, 0, 2);
        }
        return new Unrolled(Seq.normalize(length, Seq.of(outputs), layout, mergeOutputs), next);
    }

    /**
     * The equivalent stack of step cells, MXNet's {@code unfuse()}: per layer k an {@link
     * RNNCell}/{@link LSTMCell}/{@link GRUCell} with prefix {@code <prefix>l<k>_} (bidirectional:
     * a {@link BidirectionalCell} of {@code <prefix>l<k>_} and {@code <prefix>r<k>_} cells with
     * output prefix {@code <prefix>bi_l<k>_}), and a {@link DropoutCell} {@code
     * <prefix>_dropout<k>_} between layers when dropout &gt; 0. LSTM cells get this cell's forget bias.
     *
     * @return a new stack (its own parameter variables, same names as the unpacked weights)
     */
    public SequentialRNNCell unfuse() {
        SequentialRNNCell stack = new SequentialRNNCell();
        for (int i = 0; i < numLayers; i++) {
            if (bidirectional) {
                stack.add(new BidirectionalCell(cell(prefix() + "l" + i + "_"), cell(prefix() + "r" + i + "_"), null,
                        prefix() + "bi_l" + i + "_"));
            } else {
                stack.add(cell(prefix() + "l" + i + "_"));
            }
            if (dropout > 0 && i != numLayers - 1) {
                stack.add(new DropoutCell(dropout, prefix() + "_dropout" + i + "_", null));
            }
        }
        return stack;
    }

    private BaseRNNCell cell(String p) {
        switch (mode) {
            case "rnn_relu":
                return new RNNCell(numHidden, "relu", p, null);
            case "rnn_tanh":
                return new RNNCell(numHidden, "tanh", p, null);
            case "lstm":
                return new LSTMCell(numHidden, p, null, forgetBias);
            default:
                return new GRUCell(numHidden, p, null);
        }
    }
}
