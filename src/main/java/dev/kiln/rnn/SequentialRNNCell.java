package dev.kiln.rnn;

import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A stack of cells, MXNet's {@code mx.rnn.SequentialRNNCell}: each cell's outputs are the next
 * cell's inputs; the states are the cells' states concatenated in order.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class SequentialRNNCell extends BaseRNNCell {
    private final boolean overrideCellParams;
    private final List<BaseRNNCell> cells = new ArrayList<>();

    /** A stack without its own parameter container. */
    public SequentialRNNCell() {
        this(null);
    }

    /**
     * Creates the stack.
     *
     * @param params a container whose variables the added cells will share, or null
     */
    public SequentialRNNCell(RNNParams params) {
        super("", params);
        this.overrideCellParams = params != null;
    }

    /**
     * Appends a cell; during unroll it receives the previous cell's outputs.
     *
     * @param cell the cell
     * @return this stack
     * @throws IllegalStateException when this stack has its own params and the cell does not own
     *     its params ("Either specify params for SequentialRNNCell or child cells, not both.")
     */
    public SequentialRNNCell add(BaseRNNCell cell) {
        if (cell == null) {
            throw new IllegalArgumentException("SequentialRNNCell.add: cell is null");
        }
        if (overrideCellParams) {
            if (!cell.ownsParams()) {
                throw new IllegalStateException("Either specify params for SequentialRNNCell or child cells, not both.");
            }
            cell.params().putAll(paramsInternal());
        }
        paramsInternal().putAll(cell.params());
        cells.add(cell);
        return this;
    }

    /** @return the cells in order (unmodifiable) */
    public List<BaseRNNCell> cells() {
        return Collections.unmodifiableList(cells);
    }

    @Override
    List<BaseRNNCell> children() {
        return cells == null ? List.of() : cells;
    }

    @Override
    public List<StateInfo> stateInfo() {
        List<StateInfo> l = new ArrayList<>();
        for (BaseRNNCell c : cells) {
            l.addAll(c.stateInfo());
        }
        return l;
    }

    @Override
    public List<Symbol> beginState(StateFactory func) {
        checkNotModified();
        List<Symbol> l = new ArrayList<>();
        for (BaseRNNCell c : cells) {
            l.addAll(c.beginState(func));
        }
        return l;
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
        checkStates(states, "SequentialRNNCell");
        counter++;
        List<Symbol> next = new ArrayList<>();
        int p = 0;
        Symbol x = input;
        for (BaseRNNCell c : cells) {
            if (c instanceof BidirectionalCell) {
                throw new UnsupportedOperationException("SequentialRNNCell with a BidirectionalCell cannot be stepped; use unroll");
            }
            int n = c.stateInfo().size();
            Step s = c.step(x, states.subList(p, p + n));
            p += n;
            x = s.output();
            next.addAll(s.states());
        }
        return new Step(x, next);
    }

    @Override
    Unrolled unrollSeq(int length, Seq inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        checkLength(length);
        reset();
        if (cells.isEmpty()) {
            throw new IllegalStateException("SequentialRNNCell: no cells added");
        }
        List<Symbol> begin = beginState == null ? beginState() : checkStates(beginState, "SequentialRNNCell.unroll");
        int p = 0;
        List<Symbol> next = new ArrayList<>();
        Seq x = inputs;
        for (int i = 0; i < cells.size(); i++) {
            BaseRNNCell c = cells.get(i);
            int n = c.stateInfo().size();
            Unrolled u = c.unrollSeq(length, x, begin.subList(p, p + n), layout, i < cells.size() - 1 ? null : mergeOutputs);
            p += n;
            x = u.seq();
            next.addAll(u.states());
        }
        return new Unrolled(x, next);
    }
}
