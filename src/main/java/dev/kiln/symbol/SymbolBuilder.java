package dev.kiln.symbol;

import dev.kiln.engine.KilnException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Composes one operator node of any registered operator, like calling {@code mx.sym.<Op>(...)}
 * in Python. Obtained from {@link Symbol#builder(String)}:
 *
 * <pre>{@code
 * Symbol bn = Symbol.builder("BatchNorm").name("bn1").input(conv)
 *         .param("fix_gamma", false).param("eps", 2e-5).attr("lr_mult", "2").build();
 * }</pre>
 *
 * Inputs are matched positionally, then by name, against the operator's input names; missing
 * inputs become variables named {@code <node name>_<input name>} (see {@link Symbol#create}).
 * Parameter values are written as MXNet writes Python values ({@link #format(Object)}); only the
 * parameters given are stored.
 *
 * <p>Thread-safety: a builder is a mutable, single-thread object; the {@link Symbol} it builds
 * is immutable.
 */
public final class SymbolBuilder {
    private final String op;
    private String hint;
    private String name;
    private final Map<String, String> attrs = new LinkedHashMap<>();
    private final List<Symbol> positional = new ArrayList<>();
    private final Map<String, Symbol> named = new LinkedHashMap<>();

    SymbolBuilder(String op) {
        if (op == null || op.isEmpty()) {
            throw new IllegalArgumentException("operator name is null or empty");
        }
        this.op = op;
    }

    /**
     * Sets the node name; null or empty gives an automatic name from the current {@link NameManager}.
     *
     * @param name the node name
     * @return this builder
     */
    public SymbolBuilder name(String name) {
        this.name = name;
        return this;
    }

    /** Sets the automatic-name hint (default: the lower-cased operator name). */
    SymbolBuilder hint(String hint) {
        this.hint = hint;
        return this;
    }

    /**
     * Appends a positional input.
     *
     * @param input a symbol with exactly one output
     * @return this builder
     */
    public SymbolBuilder input(Symbol input) {
        if (input == null) {
            throw new IllegalArgumentException(op + ": positional input " + positional.size() + " is null");
        }
        positional.add(input);
        return this;
    }

    /**
     * Appends positional inputs.
     *
     * @param inputs symbols with exactly one output each
     * @return this builder
     */
    public SymbolBuilder inputs(Symbol... inputs) {
        for (Symbol s : inputs) {
            input(s);
        }
        return this;
    }

    /**
     * Sets an input by the operator's input name (e.g. {@code "label"}); null leaves it to be
     * auto-created.
     *
     * @param inputName the operator's input name
     * @param input a symbol with exactly one output, or null
     * @return this builder
     */
    public SymbolBuilder input(String inputName, Symbol input) {
        if (inputName == null) {
            throw new IllegalArgumentException(op + ": input name is null");
        }
        if (input == null) {
            named.remove(inputName);
        } else {
            named.put(inputName, input);
        }
        return this;
    }

    /**
     * Sets an operator parameter; the value is formatted with {@link #format(Object)}. A null
     * value removes the parameter (so it takes its default).
     *
     * @param key the MXNet parameter name, e.g. {@code "num_hidden"}
     * @param value the value
     * @return this builder
     */
    public SymbolBuilder param(String key, Object value) {
        if (key == null || key.isEmpty()) {
            throw new IllegalArgumentException(op + ": parameter name is null or empty");
        }
        if (value == null) {
            attrs.remove(key);
        } else {
            attrs.put(key, format(value));
        }
        return this;
    }

    /**
     * Sets a hidden attribute such as {@code lr_mult}, {@code wd_mult} or {@code ctx_group}
     * (stored as {@code __lr_mult__} ...) or any {@code __name__} key. Auto-created input
     * variables inherit the node's attributes, so {@code attr("lr_mult", "0")} freezes them.
     *
     * @param key the attribute key
     * @param value the value
     * @return this builder
     */
    public SymbolBuilder attr(String key, String value) {
        if (value == null) {
            throw new IllegalArgumentException(op + ": attribute " + key + " has a null value");
        }
        attrs.put(SymbolAttrs.storedKey(key), value);
        return this;
    }

    /**
     * Creates the node and returns its visible outputs as a symbol.
     *
     * @return the new symbol
     * @throws KilnException "operator X is not supported", or the registry's message for bad parameters
     * @throws IllegalArgumentException for wrong inputs (unknown input name, too many, given twice,
     *     a multi-output symbol as input)
     */
    public Symbol build() {
        return Symbol.compose(op, hint, name, attrs, named, positional);
    }

    /**
     * Writes a Java value as MXNet stores Python values in attributes: {@code true} as {@code
     * True}, integers in decimal, doubles like Python's {@code repr} ({@code 2.0}, {@code
     * 1e-05}), {@code int[]}/{@code long[]}/collections as tuples ({@code (2, 2)}, {@code (3,)}),
     * {@code DType} as its name, other objects with {@code toString()}.
     *
     * @param value the value (null gives {@code "None"})
     * @return the attribute string
     */
    public static String format(Object value) {
        return SymbolAttrs.format(value);
    }
}
