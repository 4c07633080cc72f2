package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.List;

/**
 * Adds the input to the base cell's output (Wu et al. 2016), MXNet's {@code
 * mx.rnn.ResidualCell}: {@code out_t = base(x_t) + x_t} via {@code elemwise_add} nodes named
 * {@code <output name>_plus_residual}. The base cell's output size must equal the input size.
 *
 * <p>Ownership and thread-safety: see {@link BaseRNNCell} (a single-thread builder of symbols).
 */
public class ResidualCell extends ModifierCell {
    /**
     * Wraps {@code baseCell}.
     *
     * @param baseCell the cell whose outputs get the residual connection
     */
    public ResidualCell(BaseRNNCell baseCell) {
        super(baseCell);
    }

    @Override
    public Step step(Symbol input, List<Symbol> states) {
        Step s = baseCell().step(input, states);
        Symbol out = Symbol.elemwiseAdd(s.output().name() + "_plus_residual", s.output(), input);
        return new Step(out, s.states());
    }

    @Override
    Unrolled unrollSeq(int length, Seq inputs, List<Symbol> beginState, String layout, Boolean mergeOutputs) {
        checkLength(length);
        reset();
        baseCell().modified = false;
        Unrolled u;
        try {
            u = baseCell().unrollSeq(length, inputs, beginState, layout, mergeOutputs);
        } finally {
            baseCell().modified = true;
        }
        boolean merge = mergeOutputs == null ? u.isMerged() : mergeOutputs;
        Seq in = Seq.normalize(length, inputs, layout, merge);
        Seq outs = Seq.normalize(length, u.seq(), layout, merge);
        if (merge) {
            Symbol o = outs.merged();
            return new Unrolled(Seq.of(Symbol.elemwiseAdd(o.name() + "_plus_residual", o, in.merged())), u.states());
        }
        List<Symbol> l = new ArrayList<>();
        for (int i = 0; i < length; i++) {
            Symbol o = outs.list().get(i);
            l.add(Symbol.elemwiseAdd(o.name() + "_plus_residual", o, in.list().get(i)));
        }
        return new Unrolled(Seq.of(l), u.states());
    }
}
