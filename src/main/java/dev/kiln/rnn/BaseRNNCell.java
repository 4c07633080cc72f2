package dev.kiln.rnn;

import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Abstract recurrent cell, MXNet's {@code mx.rnn.BaseRNNCell}: builds the symbol of one time step
 * ({@link #step}) and unrolls it over a sequence ({@link #unroll}); parameters come from a shared
 * {@link RNNParams} so that all steps use the same weights.
 *
 * <p>Names follow MXNet: parameters {@code <prefix>i2h_weight} ..., step nodes {@code
 * <prefix>t<k>_...}, begin states {@code <prefix>begin_state_<k>}. The step counter restarts at
 * {@link #reset()} (every {@code unroll} resets).
 *
 * <p>Ownership: builds symbols only; {@link #packWeights}/{@link #unpackWeights} return new
 * arrays owned by the caller and never close or modify the arrays passed in.
 *
 * <p>Thread-safety: a cell is a mutable builder (counters, shared parameter container); use it
 * from one thread at a time. The symbols it returns are immutable.
 */
public abstract class BaseRNNCell {
    /**
     * Creates the initial state symbols in {@link #beginState(StateFactory)}. Implementations
     * should be stateless (the built-in ones are immutable and thread-safe).
     */
    @FunctionalInterface
    public interface StateFactory {
        /**
         * Creates one initial state.
         *
         * @param name the state name, {@code <prefix>begin_state_<k>}
         * @param info its shape (0 = batch, inferred) and layout
         * @return the state symbol
         */
        Symbol create(String name, StateInfo info);

        /**
         * MXNet's default {@code symbol.zeros}: a {@code _zeros} node with {@code shape=(0, H)},
         * {@code dtype=float32} and the {@code __layout__} attribute; the batch size is inferred.
         *
         * @return the factory
         */
        static StateFactory zeros() {
            return (name, info) -> {
                Map<String, String> a = new LinkedHashMap<>();
                a.put("shape", info.shapeString());
                a.put("dtype", "float32");
                a.put("__layout__", info.layout());
                return Symbol.create("_zeros", name, a, null);
            };
        }

        /**
         * MXNet's {@code begin_state(func=mx.sym.Variable)}: a variable per state (fed by the
         * caller), carrying the {@code __shape__} and {@code __layout__} attributes.
         *
         * @return the factory
         */
        static StateFactory variables() {
            return (name, info) -> {
                Map<String, String> a = new LinkedHashMap<>();
                a.put("shape", info.shapeString());
                a.put("__layout__", info.layout());
                return Symbol.variable(name, a);
            };
        }
    }

    private final String prefix;
    private final RNNParams params;
    private boolean ownParams;
    boolean modified;
    /** Begin-state counter ({@code _init_counter}). */
    int initCounter;
    /** Step counter ({@code _counter}). */
    int counter;

    /**
     * Creates the cell.
     *
     * @param prefix prefix of node names (and of parameter names when {@code params} is null)
     * @param params shared parameters, or null for a new container with {@code prefix}
     */
    protected BaseRNNCell(String prefix, RNNParams params) {
        if (prefix == null) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": prefix is null");
        }
        this.prefix = prefix;
        this.ownParams = params == null;
        this.params = params == null ? new RNNParams(prefix) : params;
        reset();
    }

    /** @return the name prefix */
    public String prefix() {
        return prefix;
    }

    /**
     * The parameter container. As in MXNet, handing it out means the cell no longer owns it
     * exclusively (a {@link SequentialRNNCell} with its own params then refuses the cell).
     *
     * @return the shared parameters
     */
    public RNNParams params() {
        ownParams = false;
        return params;
    }

    /** The container without giving up ownership (for use inside constructors). */
    RNNParams paramsInternal() {
        return params;
    }

    boolean ownsParams() {
        return ownParams;
    }

    /** Child cells (reset with this one). */
    List<BaseRNNCell> children() {
        return List.of();
    }

    /** Resets the step and begin-state counters (of this cell and its children) before building another graph. */
    public void reset() {
        initCounter = -1;
        counter = -1;
        for (BaseRNNCell c : children()) {
            c.reset();
        }
    }

    /**
     * Shapes and layouts of the states, in order.
     *
     * @return the state descriptions
     */
    public abstract List<StateInfo> stateInfo();

    /** @return the state shapes (0 = inferred batch) */
    public List<long[]> stateShapes() {
        List<long[]> l = new ArrayList<>();
        for (StateInfo s : stateInfo()) {
            l.add(s.shape());
        }
        return l;
    }

    /** Gate name suffixes for pack/unpack, e.g. {@code _i _f _c _o}; empty: nothing to split. */
    List<String> gateNames() {
        return List.of();
    }

    /** Hidden size for pack/unpack (cells with gates). */
    int numHidden() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " has no hidden size");
    }

    /**
     * One time step, MXNet's {@code cell(inputs, states)}.
     *
     * @param input the step input, shape (batch, features)
     * @param states the previous states (from {@link #beginState()} or the last step)
     * @return the output and next states
     * @throws UnsupportedOperationException for cells that can only be unrolled
     */
    public abstract Step step(Symbol input, List<Symbol> states);

    void checkNotModified() {
        if (modified) {
            throw new IllegalStateException("After applying modifier cells (e.g. ZoneoutCell) the base cell cannot be "
                    + "called directly. Call the modifier cell instead.");
        }
    }

    /**
     * Initial states made of zeros whose batch size is inferred (MXNet's {@code begin_state()}).
     *
     * @return one symbol per state
     */
    public List<Symbol> beginState() {
        return beginState(StateFactory.zeros());
    }

    /**
     * Initial states made by {@code func}, named {@code <prefix>begin_state_<k>} with {@code k}
     * counting from the last {@link #reset()}.
     *
     * @param func the factory, e.g. {@link StateFactory#variables()}
     * @return one symbol per state
     */
    public List<Symbol> beginState(StateFactory func) {
        checkNotModified();
        List<Symbol> states = new ArrayList<>();
        for (StateInfo info : stateInfo()) {
            initCounter++;
            states.add(func.create(prefix + "begin_state_" + initCounter, info));
        }
        return states;
    }

    /**
     * Unrolls over a sequence held in one symbol: (batch, length, ...) for layout {@code NTC},
     * (length, batch, ...) for {@code TNC}; zero begin states; outputs in whatever form is natural
     * for the cell (a list for step cells).
     *
     * @param length number of time steps
     * @param inputs the sequence
     * @return outputs and final states
     */
    public Unrolled unroll(int length, Symbol inputs) {
        return unroll(length, inputs, null, "NTC", null);
    }

    /**
     * Unrolls over per-step inputs, each (batch, ...), with zero begin states; outputs as a
     * per-step list for step cells.
     *
     * @param length number of time steps (must equal {@code inputs.size()})
     * @param inputs the steps
     * @return outputs and final states
     */
    public Unrolled unroll(int length, List<Symbol> inputs) {
        return unroll(length, inputs, null, "NTC", null);
    }

    /**
     * Unrolls over a sequence held in one symbol.
     *
     * @param length number of time steps
     * @param inputs (batch, length, ...) for NTC or (length, batch, ...) for TNC
     * @param beginState initial states, or null for {@link #beginState()}
     * @param layout {@code "NTC"} or {@code "TNC"}
     * @param mergeOutputs true: one output symbol; false: one per step; null: whatever is faster
     * @return outputs and final states
     */
    public Unrolled unroll(int length, Symbol inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        return unrollSeq(length, Seq.of(inputs), beginState, layout, mergeOutputs);
    }

    /**
     * Unrolls over per-step inputs, each (batch, ...).
     *
     * @param length number of time steps (must equal {@code inputs.size()})
     * @param inputs the steps
     * @param beginState initial states, or null for {@link #beginState()}
     * @param layout layout of merged outputs, {@code "NTC"} or {@code "TNC"}
     * @param mergeOutputs true: one output symbol; false: one per step; null: whatever is faster
     * @return outputs and final states
     */
    public Unrolled unroll(int length, List<Symbol> inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        return unrollSeq(length, Seq.of(inputs), beginState, layout, mergeOutputs);
    }

    Unrolled unrollSeq(int length, Seq inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        checkLength(length);
        reset();
        List<Symbol> in = Seq.normalize(length, inputs, layout, false).list();
        List<Symbol> states = beginState == null ? beginState() : beginState;
        List<Symbol> outputs = new ArrayList<>();
        for (int i = 0; i < length; i++) {
            Step s = step(in.get(i), states);
            outputs.add(s.output());
            states = s.states();
        }
        return new Unrolled(Seq.normalize(length, Seq.of(outputs), layout, mergeOutputs), states);
    }

    static void checkLength(int length) {
        if (length < 1) {
            throw new IllegalArgumentException("unroll: length must be at least 1, got " + length);
        }
    }

    List<Symbol> checkStates(List<Symbol> states, String who) {
        int n = stateInfo().size();
        if (states == null || states.size() != n) {
            throw new IllegalArgumentException(who + ": expected " + n + " states " + stateInfo() + ", got "
                    + (states == null ? "null" : states.size()));
        }
        return states;
    }

    /**
     * Splits the fused gate matrices of this cell into one array per gate, MXNet's {@code
     * unpack_weights}: {@code <prefix>i2h_weight} (G·H rows) becomes {@code <prefix>i2h_i_weight},
     * {@code <prefix>i2h_f_weight}, ... (LSTM gates {@code _i _f _c _o}, GRU {@code _r _z _o};
     * plain RNN cells have one gate named {@code ""}, so names stay unchanged), likewise for the
     * biases and {@code h2h}.
     *
     * @param args arrays by name (not modified)
     * @return a new map: the input entries except those unpacked, plus new per-gate arrays owned
     *     by the caller
     * @throws IllegalArgumentException if a needed array is missing or has the wrong number of rows
     */
    public Map<String, NDArray> unpackWeights(Map<String, NDArray> args) {
        Map<String, NDArray> out = new LinkedHashMap<>(args);
        List<String> gates = gateNames();
        if (gates.isEmpty()) {
            return out;
        }
        long h = numHidden();
        for (String group : List.of("i2h", "h2h")) {
            NDArray w = take(out, prefix + group + "_weight");
            NDArray b = take(out, prefix + group + "_bias");
            checkRows(w, gates.size() * h, prefix + group + "_weight");
            checkRows(b, gates.size() * h, prefix + group + "_bias");
            Weights.Source ws = new Weights.Source(w);
            Weights.Source bs = new Weights.Source(b);
            for (int j = 0; j < gates.size(); j++) {
                String g = gates.get(j);
                out.put(prefix + group + g + "_weight", ws.rows(j * h, (j + 1) * h, "unpack_weights"));
                out.put(prefix + group + g + "_bias", bs.rows(j * h, (j + 1) * h, "unpack_weights"));
            }
        }
        return out;
    }

    /**
     * Concatenates per-gate arrays into the fused matrices, MXNet's {@code pack_weights} (the
     * inverse of {@link #unpackWeights}).
     *
     * @param args arrays by name (not modified)
     * @return a new map: the input entries except those packed, plus new fused arrays owned by the caller
     * @throws IllegalArgumentException if a needed array is missing
     */
    public Map<String, NDArray> packWeights(Map<String, NDArray> args) {
        Map<String, NDArray> out = new LinkedHashMap<>(args);
        List<String> gates = gateNames();
        if (gates.isEmpty()) {
            return out;
        }
        for (String group : List.of("i2h", "h2h")) {
            for (String kind : List.of("_weight", "_bias")) {
                List<NDArray> parts = new ArrayList<>();
                long rows = 0;
                for (String g : gates) {
                    NDArray p = take(out, prefix + group + g + kind);
                    parts.add(p);
                    rows += p.shape().get(0);
                }
                long[] shape = parts.get(0).shape().dims();
                shape[0] = rows;
                out.put(prefix + group + kind, Weights.concat(parts, shape, "pack_weights " + prefix + group + kind));
            }
        }
        return out;
    }

    static NDArray take(Map<String, NDArray> m, String name) {
        NDArray a = m.remove(name);
        if (a == null) {
            throw new IllegalArgumentException("weight '" + name + "' is missing; have " + m.keySet());
        }
        return a;
    }

    private static void checkRows(NDArray a, long rows, String name) {
        if (a.shape().ndim() < 1 || a.shape().get(0) != rows) {
            throw new IllegalArgumentException("weight '" + name + "' has shape " + a.shape() + ", expected " + rows + " rows");
        }
    }
}
