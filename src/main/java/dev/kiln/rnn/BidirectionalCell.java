package dev.kiln.rnn;

import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * Bidirectional wrapper, MXNet's {@code mx.rnn.BidirectionalCell}: the left cell runs forward
 * over the sequence, the right cell over the reversed sequence; step t's output is {@code
 * Concat(l_t, r_t)} on the feature axis (nodes {@code <output_prefix>t<k>}, or one node {@code
 * <output_prefix>out} when merged), where {@code r_t} is the right cell's output for input t. The
 * states are the left cell's states followed by the right cell's (flattened; MXNet nests them as
 * {@code [l_states, r_states]}). It cannot be stepped.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class BidirectionalCell extends BaseRNNCell {
    private final List<BaseRNNCell> cells;
    private final String outputPrefix;

    /**
     * {@code BidirectionalCell(l_cell, r_cell, output_prefix='bi_')}.
     *
     * @param lCell forward cell
     * @param rCell backward cell
     */
    public BidirectionalCell(BaseRNNCell lCell, BaseRNNCell rCell) {
        this(lCell, rCell, null, "bi_");
    }

    /**
     * Creates the cell.
     *
     * @param lCell forward cell
     * @param rCell backward cell
     * @param params a container whose variables both cells share, or null
     * @param outputPrefix prefix of the output Concat nodes
     * @throws IllegalStateException when {@code params} is given and a cell does not own its params
     */
    public BidirectionalCell(BaseRNNCell lCell, BaseRNNCell rCell, RNNParams params, String outputPrefix) {
        super("", params);
        if (lCell == null || rCell == null || outputPrefix == null) {
            throw new IllegalArgumentException("BidirectionalCell: l_cell, r_cell and output_prefix are required");
        }
        this.outputPrefix = outputPrefix;
        if (params != null) {
            if (!lCell.ownsParams() || !rCell.ownsParams()) {
                throw new IllegalStateException("Either specify params for BidirectionalCell or child cells, not both.");
            }
            lCell.params().putAll(paramsInternal());
            rCell.params().putAll(paramsInternal());
        }
        paramsInternal().putAll(lCell.params());
        paramsInternal().putAll(rCell.params());
        this.cells = List.of(lCell, rCell);
    }

    @Override
    List<BaseRNNCell> children() {
        return cells == null ? List.of() : cells;
    }

    @Override
    public Map<String, NDArray> unpackWeights(Map<String, NDArray> args) {
        return Chain.unpack(cells, args);
    }

    @Override
    public Map<String, NDArray> packWeights(Map<String, NDArray> args) {
        return Chain.pack(cells, args);
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        throw new UnsupportedOperationException("Bidirectional cannot be stepped. Please use unroll");
    }

    @Override
    public List<StateInfo> stateInfo() {
        List<StateInfo> l = new ArrayList<>(cells.get(0).stateInfo());
        l.addAll(cells.get(1).stateInfo());
        return l;
    }

    @Override
    public List<Symbol> beginState(StateFactory func) {
        checkNotModified();
        List<Symbol> l = new ArrayList<>(cells.get(0).beginState(func));
        l.addAll(cells.get(1).beginState(func));
        return l;
    }

    @Override
    Unrolled unrollSeq(int length, Seq inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        checkLength(length);
        reset();
        int axis = Seq.axis(layout);
        List<Symbol> in = Seq.normalize(length, inputs, layout, false).list();
        List<Symbol> states = beginState == null ? beginState() : checkStates(beginState, "BidirectionalCell.unroll");
        BaseRNNCell l = cells.get(0);
        BaseRNNCell r = cells.get(1);
        int nl = l.stateInfo().size();
        List<Symbol> rev = new ArrayList<>(in);
        Collections.reverse(rev);
        Unrolled lu = l.unrollSeq(length, Seq.of(in), states.subList(0, nl), layout, mergeOutputs);
        Unrolled ru = r.unrollSeq(length, Seq.of(rev), states.subList(nl, states.size()), layout, mergeOutputs);
        boolean merge = mergeOutputs != null ? mergeOutputs : lu.isMerged() && ru.isMerged();
        Seq lo = Seq.normalize(length, lu.seq(), layout, merge);
        Seq ro = Seq.reverse(Seq.normalize(length, ru.seq(), layout, merge), axis, length);
        List<Symbol> nextStates = new ArrayList<>(lu.states());
        nextStates.addAll(ru.states());
        if (merge) {
            Symbol o = Symbol.concat(outputPrefix + "out", 2, lo.merged(), ro.merged());
            return new Unrolled(Seq.of(o), nextStates);
        }
        List<Symbol> outs = new ArrayList<>();
        for (int i = 0; i < length; i++) {
            outs.add(Symbol.concat(outputPrefix + "t" + i, 1, lo.list().get(i), ro.list().get(i)));
        }
        return new Unrolled(Seq.of(outs), nextStates);
    }
}
