package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.List;

/**
 * Applies {@code Dropout(p)} to its inputs, MXNet 1.x's {@code mx.rnn.DropoutCell} (a stateless
 * cell usually placed between the layers of a {@link SequentialRNNCell}). With {@code dropout ==
 * 0} it passes the inputs through unchanged. A merged input sequence gets one Dropout node for
 * all steps.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class DropoutCell extends BaseRNNCell {
    private final double dropout;

    /**
     * {@code DropoutCell(dropout, prefix='dropout_')}.
     *
     * @param dropout fraction of elements to drop, in [0, 1)
     */
    public DropoutCell(double dropout) {
        this(dropout, "dropout_", null);
    }

    /**
     * Creates the cell.
     *
     * @param dropout fraction of elements to drop, in [0, 1)
     * @param prefix name prefix
     * @param params shared parameters (unused: the cell has none), or null
     */
    public DropoutCell(double dropout, String prefix, RNNParams params) {
        super(prefix, params);
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("DropoutCell: dropout probability must be in [0, 1), got " + dropout);
        }
        this.dropout = dropout;
    }

    /** @return the drop probability */
    public double dropout() {
        return dropout;
    }

    @Override
    public List<StateInfo> stateInfo() {
        return List.of();
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        Symbol out = dropout > 0 ? Symbol.dropout(null, input, dropout) : input;
        return new Step(out, states);
    }

    @Override
    Unrolled unrollSeq(int length, Seq inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        checkLength(length);
        reset();
        Seq in = Seq.normalize(length, inputs, layout, mergeOutputs);
        if (in.isMerged()) {
            return new Unrolled(Seq.of(step(in.merged(), List.of()).output()), List.of());
        }
        return super.unrollSeq(length, in, beginState, layout, mergeOutputs);
    }
}
