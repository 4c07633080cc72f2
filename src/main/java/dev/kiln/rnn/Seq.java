package dev.kiln.rnn;

import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A sequence given either as one symbol with a time axis or as a list of per-step symbols
 * (MXNet passes either a Symbol or a list). Internal; immutable.
 */
final class Seq {
    private final Symbol merged;
    private final List<Symbol> list;

    private Seq(Symbol merged, List<Symbol> list) {
        this.merged = merged;
        this.list = list;
    }

    static Seq of(Symbol merged) {
        if (merged == null) {
            throw new IllegalArgumentException("unroll: inputs is null (create the input variables before unrolling)");
        }
        return new Seq(merged, null);
    }

    static Seq of(List<Symbol> list) {
        if (list == null) {
            throw new IllegalArgumentException("unroll: inputs is null (create the input variables before unrolling)");
        }
        for (int i = 0; i < list.size(); i++) {
            if (list.get(i) == null) {
                throw new IllegalArgumentException("unroll: input step " + i + " is null");
            }
        }
        return new Seq(null, Collections.unmodifiableList(new ArrayList<>(list)));
    }

    boolean isMerged() {
        return merged != null;
    }

    Symbol merged() {
        return merged;
    }

    List<Symbol> list() {
        return list;
    }

    static int axis(String layout) {
        if (layout == null || layout.indexOf('T') < 0) {
            throw new IllegalArgumentException("unroll: layout must contain 'T' (e.g. NTC or TNC), got " + layout);
        }
        return layout.indexOf('T');
    }

    /**
     * MXNet's {@code _normalize_sequence}: with {@code merge == FALSE} a merged symbol is split
     * along the time axis into {@code length} squeezed steps; with {@code merge == TRUE} a list is
     * expanded and concatenated along the time axis; {@code null} keeps the form.
     */
    static Seq normalize(int length, Seq in, String layout, Boolean merge) {
        int axis = axis(layout);
        if (in.isMerged()) {
            if (Boolean.FALSE.equals(merge)) {
                return of(split(in.merged, axis, length));
            }
            return in;
        }
        if (in.list.size() != length) {
            throw new IllegalArgumentException("unroll: " + in.list.size() + " input steps given for length " + length);
        }
        if (Boolean.TRUE.equals(merge)) {
            return of(concat(in.list, axis));
        }
        return in;
    }

    /** {@code split(data, axis, num_outputs=length, squeeze_axis=1)} as a list. */
    static List<Symbol> split(Symbol data, int axis, int length) {
        if (data.numOutputs() != 1) {
            throw new IllegalArgumentException("unroll doesn't allow grouped symbol as input (" + data.listOutputs()
                    + "). Please convert to list first or let unroll handle splitting.");
        }
        Symbol s = Symbol.builder("split").input(data).param("axis", axis).param("num_outputs", length)
                .param("squeeze_axis", 1).build();
        List<Symbol> out = new ArrayList<>(length);
        for (int i = 0; i < length; i++) {
            out.add(s.get(i));
        }
        return out;
    }

    /** {@code Concat(*[expand_dims(x, axis) for x in list], dim=axis)}. */
    static Symbol concat(List<Symbol> steps, int axis) {
        Symbol[] e = new Symbol[steps.size()];
        for (int i = 0; i < e.length; i++) {
            e[i] = Symbol.expandDims(null, steps.get(i), axis);
        }
        return Symbol.concat(null, axis, e);
    }

    /** The sequence reversed in time, in the same form (merged: split, reversed, concatenated). */
    static Seq reverse(Seq in, int axis, int length) {
        List<Symbol> l = in.isMerged() ? split(in.merged, axis, length) : new ArrayList<>(in.list);
        List<Symbol> r = new ArrayList<>(l);
        Collections.reverse(r);
        return in.isMerged() ? of(concat(r, axis)) : of(r);
    }
}
