package dev.kiln.rnn;

import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.List;
import java.util.Map;

/**
 * Base of cells that wrap another cell and modify its steps (MXNet's {@code
 * mx.rnn.ModifierCell}); after wrapping, the base cell refuses to be used directly ({@link
 * IllegalStateException} from its {@code beginState}). Parameters, states and weight conversions
 * are the base cell's.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public abstract class ModifierCell extends BaseRNNCell {
    private final BaseRNNCell baseCell;

    /**
     * Wraps {@code baseCell}.
     *
     * @param baseCell the cell to modify
     */
    protected ModifierCell(BaseRNNCell baseCell) {
        super("", null);
        if (baseCell == null) {
            throw new IllegalArgumentException(getClass().getSimpleName() + ": base cell is null");
        }
        baseCell.modified = true;
        this.baseCell = baseCell;
    }

    /** @return the wrapped cell */
    public BaseRNNCell baseCell() {
        return baseCell;
    }

    @Override
    List<BaseRNNCell> children() {
        return baseCell == null ? List.of() : List.of(baseCell);
    }

    @Override
    public RNNParams params() {
        return baseCell.params();
    }

    @Override
    public List<StateInfo> stateInfo() {
        return baseCell.stateInfo();
    }

    @Override
    public List<Symbol> beginState(StateFactory func) {
        checkNotModified();
        baseCell.modified = false;
        try {
            return baseCell.beginState(func);
        } finally {
            baseCell.modified = true;
        }
    }

    @Override
    public Map<String, NDArray> unpackWeights(Map<String, NDArray> args) {
        return baseCell.unpackWeights(args);
    }

    @Override
    public Map<String, NDArray> packWeights(Map<String, NDArray> args) {
        return baseCell.packWeights(args);
    }
}
