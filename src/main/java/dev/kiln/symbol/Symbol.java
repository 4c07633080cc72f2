package dev.kiln.symbol;

import dev.kiln.engine.KilnException;
import dev.kiln.internal.Json;
import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;
import dev.kiln.ndarray.DType;
import dev.kiln.op.OpInfo;
import dev.kiln.op.Ops;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * A symbolic computation graph, MXNet's {@code mx.sym.Symbol}: an ordered list of outputs of
 * operator nodes and variables. Symbols are composed from variables and operators
 * ({@link #variable(String)}, {@link #fullyConnected(String, Symbol, int)}, {@link
 * #create(String, String, Map, Map, Symbol...)}, {@link #builder(String)}), combined with
 * {@link #group(Symbol...)}, saved and loaded as MXNet symbol JSON ({@link #toJson()}, {@link
 * #fromJson(String)}), and bound by an executor.
 *
 * <pre>{@code
 * Symbol data = Symbol.variable("data");
 * Symbol fc1 = Symbol.fullyConnected("fc1", data, 128);
 * Symbol act1 = Symbol.activation("relu1", fc1, "relu");
 * Symbol fc2 = Symbol.fullyConnected("fc2", act1, 10);
 * Symbol net = Symbol.softmaxOutput("softmax", fc2);
 * net.listArguments();  // [data, fc1_weight, fc1_bias, fc2_weight, fc2_bias, softmax_label]
 * }</pre>
 *
 * <p>Naming follows MXNet: an unnamed node gets {@code <lower-cased op><counter>} from the
 * current {@link NameManager}; inputs left out are created as variables {@code <node>_<input>}
 * ({@code fc1_weight}, {@code softmax_label}) that copy the node's attributes; outputs are
 * named {@code <node>_<output>} ({@code fc1_output}).
 *
 * <p>Thread-safety: symbols are immutable and thread-safe. Unlike MXNet, {@link
 * #setAttr(String, String)} returns a new symbol instead of changing this one. Symbols hold no
 * native resources and need no closing.
 */
public final class Symbol {
    /** MXNet version written into symbol JSON ({@code 1.9.0}). */
    public static final int MXNET_VERSION = 10900;

    private final List<NodeEntry> outputs;
    /** Lazily computed post-order node list (benign race: recomputation gives the same list). */
    private volatile List<Node> topo;

    Symbol(List<NodeEntry> outputs) {
        this.outputs = List.copyOf(outputs);
    }

    List<NodeEntry> outputEntries() {
        return outputs;
    }

    /** Nodes in post-order DFS from the outputs (the order of symbol JSON and argument lists). */
    List<Node> topoOrder() {
        List<Node> t = topo;
        if (t == null) {
            t = Collections.unmodifiableList(Node.postOrder(outputs));
            topo = t;
        }
        return t;
    }

    // =========================================================================================
    // Creation
    // =========================================================================================

    /**
     * Creates a variable (a placeholder for an argument or auxiliary state), MXNet's {@code
     * mx.sym.Variable(name)}.
     *
     * @param name the variable name, e.g. {@code "data"}
     * @return a symbol with one output named {@code name}
     * @throws IllegalArgumentException if the name is null or empty
     */
    public static Symbol variable(String name) {
        return variable(name, Map.of());
    }

    /**
     * Creates a variable with attributes, MXNet's {@code mx.sym.Variable(name, shape=..., ...)}.
     * Keys {@code shape}, {@code dtype} (a name such as {@code "float16"}, stored as the numeric
     * flag), {@code init}, {@code lr_mult}, {@code wd_mult}, {@code stype}, {@code ctx_group}
     * become the hidden attributes {@code __shape__}, {@code __dtype__}, {@code __init__},
     * {@code __lr_mult__}, {@code __wd_mult__}, {@code __storage_type__}, {@code __ctx_group__};
     * {@code __x__} keys and other keys are stored as given.
     *
     * <pre>{@code Symbol w = Symbol.variable("w", Map.of("shape", "(10, 784)", "lr_mult", "0.1"));}</pre>
     *
     * @param name the variable name
     * @param attrs attributes (may be empty)
     * @return the variable symbol
     * @throws IllegalArgumentException for an empty name, null values, an unknown dtype or stype
     */
    public static Symbol variable(String name, Map<String, String> attrs) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("variable name is null or empty");
        }
        Map<String, String> a = new LinkedHashMap<>();
        if (attrs != null) {
            for (Map.Entry<String, String> e : attrs.entrySet()) {
                SymbolAttrs.putVariableAttr(a, e.getKey(), e.getValue());
            }
        }
        return new Symbol(List.of(new NodeEntry(Node.variable(name, a), 0, 0)));
    }

    /**
     * Starts composing a node of any registered operator (see {@link SymbolBuilder}).
     *
     * @param op operator name or alias, e.g. {@code "BatchNorm"}
     * @return a new builder
     */
    public static SymbolBuilder builder(String op) {
        return new SymbolBuilder(op);
    }

    /**
     * Composes one operator node, like {@code mx.sym.<op>(*positional, name=name, **attrs,
     * **namedInputs)}.
     *
     * <p>Positional inputs fill the operator's inputs ({@link OpInfo#inputs()}) from the first;
     * named inputs are then matched by input name. Each remaining input is created as a variable
     * named {@code <node name>_<input name>} carrying a copy of the node's attributes (MXNet
     * copies the whole attribute map, so {@code __lr_mult__} propagates); BatchNorm's
     * {@code moving_mean}/{@code moving_var} also get the {@code __init__} hints {@code ["zero",
     * {}]}/{@code ["one", {}]} and LeakyReLU's prelu {@code gamma} {@code ["Constant", {"value":
     * 0.25}]}. For Concat/ElementWiseSum/add_n/stack/UpSampling/khatri_rao/Crop, {@code num_args}
     * defaults to the number of positional inputs. Attribute keys {@code lr_mult}, {@code wd_mult}, {@code ctx_group} ...
     * are stored as {@code __lr_mult__} ...
     *
     * @param op operator name or alias (the JSON stores the canonical name)
     * @param name node name, or null for an automatic one from {@link NameManager#current()}
     * @param attrs parameters and hidden attributes as MXNet strings (may be null)
     * @param namedInputs inputs by input name (may be null)
     * @param positionalInputs inputs in order; each must have exactly one output
     * @return the node's visible outputs
     * @throws KilnException "operator X is not supported", or a parameter error from the registry
     * @throws IllegalArgumentException for unknown input names, too many inputs, an input given
     *     twice, or a multi-output symbol as input
     */
    public static Symbol create(String op, String name, Map<String, String> attrs, Map<String, Symbol> namedInputs,
            Symbol... positionalInputs) {
        List<Symbol> pos = new ArrayList<>();
        if (positionalInputs != null) {
            for (int i = 0; i < positionalInputs.length; i++) {
                if (positionalInputs[i] == null) {
                    throw new IllegalArgumentException(op + ": positional input " + i + " is null");
                }
                pos.add(positionalInputs[i]);
            }
        }
        Map<String, String> a = new LinkedHashMap<>();
        if (attrs != null) {
            for (Map.Entry<String, String> e : attrs.entrySet()) {
                if (e.getValue() == null) {
                    throw new IllegalArgumentException(op + ": attribute " + e.getKey() + " has a null value");
                }
                a.put(SymbolAttrs.storedKey(e.getKey()), e.getValue());
            }
        }
        return compose(op, null, name, a, namedInputs == null ? Map.of() : namedInputs, pos);
    }

    static Symbol compose(String op, String hint, String name, Map<String, String> attrs, Map<String, Symbol> named,
            List<Symbol> positional) {
        if (op == null || op.isEmpty()) {
            throw new IllegalArgumentException("operator name is null or empty");
        }
        if ("null".equals(op)) {
            throw new IllegalArgumentException("use Symbol.variable to create variables");
        }
        Map<String, String> a = Ops.withInputCount(op, attrs, positional.size());
        OpInfo info = Ops.info(op, a);
        for (OpInfo.Param p : info.params()) {
            // MXNet rejects a missing required parameter when the symbol is composed
            if (p.isRequired() && !a.containsKey(p.name())) {
                throw new IllegalArgumentException("operator " + info.name() + (name != null ? " '" + name + "'" : "")
                        + ": required parameter '" + p.name() + "' is missing (" + p.description() + ")");
            }
        }
        String nodeName = NameManager.current().get(name, hint != null ? hint : op.toLowerCase(Locale.ROOT));
        List<String> inNames = info.inputs();
        NodeEntry[] slots = new NodeEntry[inNames.size()];
        if (positional.size() > slots.length) {
            throw new IllegalArgumentException(info.name() + " '" + nodeName + "': " + positional.size()
                    + " positional inputs given, but it takes " + slots.length + " " + inNames);
        }
        for (int i = 0; i < positional.size(); i++) {
            slots[i] = single(positional.get(i), info, nodeName, inNames.get(i));
        }
        for (Map.Entry<String, Symbol> e : named.entrySet()) {
            int idx = inNames.indexOf(e.getKey());
            if (idx < 0) {
                throw new IllegalArgumentException(info.name() + " '" + nodeName + "': unknown input '" + e.getKey()
                        + "'; its inputs are " + inNames);
            }
            if (slots[idx] != null) {
                throw new IllegalArgumentException(info.name() + " '" + nodeName + "': input '" + e.getKey()
                        + "' is given both by position and by name");
            }
            if (e.getValue() == null) {
                continue;
            }
            slots[idx] = single(e.getValue(), info, nodeName, e.getKey());
        }
        Set<Integer> mutate = new HashSet<>(info.mutateInputs());
        for (int i = 0; i < slots.length; i++) {
            if (slots[i] == null) {
                Map<String, String> varAttrs = new LinkedHashMap<>(a);
                applyInputVarHook(info.name(), i, varAttrs);
                Node v = Node.variable(nodeName + "_" + inNames.get(i), varAttrs);
                slots[i] = new NodeEntry(v, 0, mutate.contains(i) ? 1 : 0);
            } else if (mutate.contains(i) && slots[i].node().isVariable()) {
                slots[i] = new NodeEntry(slots[i].node(), 0, 1 + maxVersion(slots, slots[i].node()));
            }
        }
        Node n = new Node(info, nodeName, a, List.of(slots), List.of());
        List<NodeEntry> outs = new ArrayList<>();
        for (int i = 0; i < info.numVisibleOutputs(); i++) {
            outs.add(new NodeEntry(n, i, 0));
        }
        return new Symbol(outs);
    }

    private static NodeEntry single(Symbol s, OpInfo info, String nodeName, String inputName) {
        if (s.outputs.size() != 1) {
            throw new IllegalArgumentException(info.name() + " '" + nodeName + "': input '" + inputName
                    + "' is a symbol with " + s.outputs.size() + " outputs " + s.listOutputs()
                    + "; select one with get(i)");
        }
        NodeEntry e = s.outputs.get(0);
        return new NodeEntry(e.node(), e.index(), 0);
    }

    /** Highest version of an entry already pointing at variable {@code v} in the graph of {@code slots}. */
    private static int maxVersion(NodeEntry[] slots, Node v) {
        List<NodeEntry> heads = new ArrayList<>();
        for (NodeEntry e : slots) {
            if (e != null) {
                heads.add(e);
            }
        }
        int max = 0;
        for (Node n : Node.postOrder(heads)) {
            for (NodeEntry e : n.inputs) {
                if (e.node() == v) {
                    max = Math.max(max, e.version());
                }
            }
        }
        return max;
    }

    /**
     * MXNet's FSetInputVarAttrOnCompose hooks: initializer hints on input variables (applied to
     * auto-created variables and when upgrading pre-0.9.4 files).
     */
    static void applyInputVarHook(String op, int index, Map<String, String> varAttrs) {
        if (varAttrs.containsKey("__init__")) {
            return;
        }
        switch (op) {
            case "BatchNorm":
            case "CuDNNBatchNorm":
            case "_contrib_SyncBatchNorm":
            case "BatchNorm_v1":
                if (index == 3) {
                    varAttrs.put("__init__", "[\"zero\", {}]");
                } else if (index == 4) {
                    varAttrs.put("__init__", "[\"one\", {}]");
                }
                break;
            case "LeakyReLU":
                if (index == 1) {
                    varAttrs.put("__init__", "[\"Constant\", {\"value\": 0.25}]");
                }
                break;
            default:
                break;
        }
    }

    /**
     * Groups symbols into one symbol whose outputs are all their outputs in order ({@code
     * mx.sym.Group}).
     *
     * @param symbols the symbols
     * @return the grouped symbol
     * @throws IllegalArgumentException if no symbol or a null symbol is given
     */
    public static Symbol group(Symbol... symbols) {
        return group(symbols == null ? null : java.util.Arrays.asList(symbols));
    }

    /**
     * Groups symbols (see {@link #group(Symbol...)}).
     *
     * @param symbols the symbols
     * @return the grouped symbol
     */
    public static Symbol group(List<Symbol> symbols) {
        if (symbols == null || symbols.isEmpty()) {
            throw new IllegalArgumentException("group needs at least one symbol");
        }
        List<NodeEntry> outs = new ArrayList<>();
        for (Symbol s : symbols) {
            if (s == null) {
                throw new IllegalArgumentException("group: null symbol");
            }
            outs.addAll(s.outputs);
        }
        return new Symbol(outs);
    }

    // =========================================================================================
    // JSON
    // =========================================================================================

    /**
     * Parses MXNet symbol JSON: the current format (1.x, {@code [node, index, version]} entries)
     * and older ones, upgraded as MXNet does (0.8 files with {@code param}/{@code attr}/{@code
     * backward_source_id} and without auxiliary-state variables, plain {@code lr_mult}-style
     * keys, pre-0.9.4 initializer hints).
     *
     * @param json the JSON text
     * @return the symbol (its heads as outputs)
     * @throws IllegalArgumentException for malformed JSON, missing or unknown fields, bad indices
     *     (out of range, forward references), wrong input counts
     * @throws KilnException "operator X is not supported" for operators the native registry lacks
     */
    public static Symbol fromJson(String json) {
        return SymbolJson.parse(json);
    }

    /**
     * Loads a symbol JSON file ({@code <prefix>-symbol.json}).
     *
     * @param path the file
     * @return the symbol
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException if the content is not a valid symbol (message names the file)
     */
    public static Symbol load(Path path) throws IOException {
        String text;
        try {
            text = Files.readString(path, StandardCharsets.UTF_8);
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IOException(path + ": not a UTF-8 text file (" + e.getMessage() + ")", e);
        }
        try {
            return fromJson(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(path + ": " + e.getMessage(), e);
        } catch (KilnException e) {
            throw new KilnException(path + ": " + e.getMessage(), e);
        }
    }

    /**
     * This symbol without its {@code amp_cast} / {@code amp_multicast} nodes (MXNet's {@code
     * remove_amp_cast}); see {@link Amp#removeAmpCast(Symbol)}.
     *
     * @return the symbol without AMP casts (this symbol when it has none)
     */
    public Symbol removeAmpCast() {
        return Amp.removeAmpCast(this);
    }

    /**
     * Writes this symbol as MXNet 1.9 writes it ({@code sym.tojson()}): same keys, key order,
     * layout and whitespace, {@code "mxnet_version": ["int", 10900]}, no trailing newline.
     *
     * @return the JSON text
     */
    public String toJson() {
        return SymbolJson.emit(this);
    }

    /**
     * Saves {@link #toJson()} to a file atomically (temporary file in the same folder, flushed to
     * disk, then renamed over the target).
     *
     * @param path the file
     * @throws IOException if writing fails (the target is then unchanged)
     */
    public void save(Path path) throws IOException {
        SymbolJson.writeAtomically(path, toJson().getBytes(StandardCharsets.UTF_8));
    }

    // =========================================================================================
    // Queries
    // =========================================================================================

    /**
     * The node name of a single-output symbol ({@code sym.name}).
     *
     * @return the name, or null for a group of several outputs
     */
    public String name() {
        return outputs.size() == 1 ? outputs.get(0).node().name : null;
    }

    /** @return the number of outputs */
    public int numOutputs() {
        return outputs.size();
    }

    /**
     * Selects one output ({@code sym[i]}).
     *
     * @param index output index
     * @return a single-output symbol
     * @throws IndexOutOfBoundsException if out of range
     */
    public Symbol get(int index) {
        if (index < 0 || index >= outputs.size()) {
            throw new IndexOutOfBoundsException("output " + index + " out of range: the symbol has "
                    + outputs.size() + " outputs " + listOutputs());
        }
        return new Symbol(List.of(outputs.get(index)));
    }

    /**
     * Selects the output with the given name ({@code sym['fc1_output']}), as listed by
     * {@link #listOutputs()}.
     *
     * @param outputName the output name
     * @return a single-output symbol
     * @throws IllegalArgumentException if no output or several outputs have that name
     */
    public Symbol get(String outputName) {
        List<String> names = listOutputs();
        int idx = -1;
        for (int i = 0; i < names.size(); i++) {
            if (names.get(i).equals(outputName)) {
                if (idx >= 0) {
                    throw new IllegalArgumentException("there are multiple outputs with name \"" + outputName + "\"");
                }
                idx = i;
            }
        }
        if (idx < 0) {
            throw new IllegalArgumentException("cannot find output that matches name \"" + outputName
                    + "\"; outputs are " + (names.size() > 50 ? names.subList(0, 50) + "..." : names));
        }
        return get(idx);
    }

    /**
     * All outputs of all nodes, in graph order ({@code sym.get_internals()}): each variable, then
     * each output of each operator including hidden ones, named as in {@link #listOutputs()}
     * ({@code data}, {@code fc1_weight}, {@code fc1_output}, ...).
     *
     * @return the grouped internal outputs
     */
    public Symbol getInternals() {
        List<NodeEntry> outs = new ArrayList<>();
        for (Node n : topoOrder()) {
            for (int i = 0; i < n.numOutputs(); i++) {
                outs.add(new NodeEntry(n, i, 0));
            }
        }
        return new Symbol(outs);
    }

    /**
     * The inputs of this symbol's output node as one grouped symbol ({@code sym.get_children()}).
     *
     * @return the children, or null for a variable
     * @throws IllegalStateException for a group of several outputs
     */
    public Symbol getChildren() {
        Node n = headNode("getChildren");
        if (n.inputs.isEmpty()) {
            return null;
        }
        return new Symbol(n.inputs);
    }

    /**
     * Argument names: variables no operator mutates, in graph order ({@code list_arguments()}).
     *
     * @return e.g. {@code [data, fc1_weight, fc1_bias, ..., softmax_label]}
     */
    public List<String> listArguments() {
        return variables(false, true);
    }

    /**
     * Auxiliary-state names: variables some operator mutates, e.g. BatchNorm's moving statistics
     * ({@code list_auxiliary_states()}).
     *
     * @return e.g. {@code [bn_moving_mean, bn_moving_var]}
     */
    public List<String> listAuxiliaryStates() {
        return variables(true, false);
    }

    /**
     * All variable names, arguments and auxiliary states interleaved in graph order ({@code
     * list_inputs()}).
     *
     * @return the names
     */
    public List<String> listInputs() {
        return variables(true, true);
    }

    private List<String> variables(boolean aux, boolean args) {
        List<Node> order = topoOrder();
        Set<Node> mutated = mutatedVariables(order);
        List<String> out = new ArrayList<>();
        for (Node n : order) {
            if (n.isVariable()) {
                boolean isAux = mutated.contains(n);
                if ((isAux && aux) || (!isAux && args)) {
                    out.add(n.name);
                }
            }
        }
        return out;
    }

    static Set<Node> mutatedVariables(List<Node> order) {
        Set<Node> mutated = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Node n : order) {
            if (!n.isVariable()) {
                for (int m : n.op.mutateInputs()) {
                    if (m < n.inputs.size()) {
                        mutated.add(n.inputs.get(m).node());
                    }
                }
            }
        }
        return mutated;
    }

    /**
     * Output names ({@code list_outputs()}): a variable's own name, else {@code <node>_<output>}
     * ({@code fc1_output}, {@code slice_output2}).
     *
     * @return the names
     */
    public List<String> listOutputs() {
        List<String> out = new ArrayList<>();
        for (NodeEntry e : outputs) {
            out.add(e.node().outputName(e.index()));
        }
        return out;
    }

    /**
     * An attribute of this symbol's output node ({@code sym.attr(key)}); {@code lr_mult},
     * {@code wd_mult}, {@code ctx_group} ... are looked up as {@code __lr_mult__} ...
     *
     * @param key the attribute key
     * @return the value, or null when absent or when the symbol groups several outputs
     */
    public String attr(String key) {
        if (outputs.size() != 1) {
            return null;
        }
        Map<String, String> a = outputs.get(0).node().attrs;
        String v = a.get(key);
        if (v == null && SymbolAttrs.HIDDEN_KEYS.contains(key)) {
            v = a.get("__" + key + "__");
        }
        return v;
    }

    /**
     * The attributes of this symbol's output node ({@code sym.list_attr()}), sorted by key.
     *
     * @return an unmodifiable map
     * @throws IllegalStateException for a group of several outputs
     */
    public Map<String, String> listAttr() {
        return headNode("listAttr").attrs;
    }

    /**
     * The attributes of every node that has any, by node name, in graph order ({@code
     * sym.attr_dict()}); operator parameters are included.
     *
     * @return an unmodifiable map of unmodifiable maps
     */
    public Map<String, Map<String, String>> attrDict() {
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        for (Node n : topoOrder()) {
            if (!n.attrs.isEmpty()) {
                out.put(n.name, n.attrs);
            }
        }
        return Collections.unmodifiableMap(out);
    }

    /**
     * Returns a copy of this symbol whose output node has one more attribute ({@code
     * sym._set_attr(key=value)}). Unlike MXNet this does not change this symbol or any other
     * symbol sharing the node: the output node is replaced by a copy in the returned symbol
     * only. Keys {@code lr_mult}, {@code wd_mult}, {@code ctx_group} ... are stored as {@code
     * __lr_mult__} ...; keys such as {@code weight_lr_mult} are rejected as in MXNet.
     *
     * @param key the key
     * @param value the value
     * @return the new symbol
     * @throws IllegalStateException for a group of several outputs
     * @throws KilnException if a changed operator parameter is invalid or changes the input count
     */
    public Symbol setAttr(String key, String value) {
        return setAttr(Map.of(key, value));
    }

    /**
     * Returns a copy with several attributes set on the output node (see {@link #setAttr(String, String)}).
     *
     * @param attrs the attributes
     * @return the new symbol
     */
    public Symbol setAttr(Map<String, String> attrs) {
        Node n = headNode("setAttr");
        Map<String, String> a = new LinkedHashMap<>(n.attrs);
        for (Map.Entry<String, String> e : attrs.entrySet()) {
            if (e.getValue() == null) {
                throw new IllegalArgumentException("setAttr: attribute " + e.getKey() + " has a null value");
            }
            a.put(SymbolAttrs.storedKey(e.getKey()), e.getValue());
        }
        OpInfo info = n.op;
        if (info != null) {
            info = Ops.info(n.op.name(), a);
            if (info.inputs().size() != n.inputs.size()) {
                throw new KilnException("setAttr on '" + n.name + "': the new attributes change the inputs of "
                        + info.name() + " to " + info.inputs() + " but the node has " + n.inputs.size() + " inputs");
            }
        }
        Node copy = new Node(info, n.name, a, n.inputs, n.controlDeps);
        List<NodeEntry> outs = new ArrayList<>();
        for (NodeEntry e : outputs) {
            outs.add(new NodeEntry(copy, e.index(), e.version()));
        }
        return new Symbol(outs);
    }

    private Node headNode(String what) {
        if (outputs.size() != 1) {
            throw new IllegalStateException(what + " only works on a symbol with one output; this one has "
                    + outputs.size() + " " + listOutputs());
        }
        return outputs.get(0).node();
    }

    // =========================================================================================
    // Shape and type inference
    // =========================================================================================

    /**
     * Infers all shapes from the shapes of some inputs ({@code sym.infer_shape(**shapes)}).
     * Types are inferred too (float32 where nothing else is known).
     *
     * @param shapes known shapes by argument or auxiliary-state name
     * @return shapes of arguments, outputs and auxiliary states; check {@link InferResult#isComplete()}
     * @throws IllegalArgumentException if a name is not an input of this symbol
     * @throws KilnException for inconsistent shapes (message names the node and both shapes)
     */
    public InferResult inferShape(Map<String, long[]> shapes) {
        return infer(shapes, null, false);
    }

    /**
     * Like {@link #inferShape(Map)} but tolerates what cannot be inferred ({@code
     * infer_shape_partial}): unknown dims are -1, unknown ranks null.
     *
     * @param shapes known shapes by input name
     * @return the partial result
     */
    public InferResult inferShapePartial(Map<String, long[]> shapes) {
        return infer(shapes, null, true);
    }

    /**
     * Infers all types from the types of some inputs ({@code sym.infer_type(**types)}).
     *
     * @param types known types by input name
     * @return the result; types in {@link InferResult#argTypes()} etc., null where unknown
     */
    public InferResult inferType(Map<String, DType> types) {
        return infer(null, types, true);
    }

    /**
     * Shape and type inference in one call (native {@code kiln_infer}).
     *
     * @param shapes known shapes by input name (may be null)
     * @param types known types by input name (may be null)
     * @param partial whether unknown results are tolerated
     * @return the result
     * @throws IllegalArgumentException if a name is not an input of this symbol
     * @throws KilnException for inconsistent shapes or types
     */
    public InferResult infer(Map<String, long[]> shapes, Map<String, DType> types, boolean partial) {
        List<String> inputs = listInputs();
        Set<String> inputSet = new HashSet<>(inputs);
        Map<String, Object> known = new LinkedHashMap<>();
        Map<String, Object> s = new LinkedHashMap<>();
        if (shapes != null) {
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                checkInput(inputSet, inputs, e.getKey(), "inferShape");
                if (e.getValue() == null) {
                    throw new IllegalArgumentException("inferShape: shape of " + e.getKey() + " is null");
                }
                s.put(e.getKey(), e.getValue());
            }
        }
        Map<String, Object> t = new LinkedHashMap<>();
        if (types != null) {
            for (Map.Entry<String, DType> e : types.entrySet()) {
                checkInput(inputSet, inputs, e.getKey(), "inferType");
                if (e.getValue() == null) {
                    throw new IllegalArgumentException("inferType: type of " + e.getKey() + " is null");
                }
                t.put(e.getKey(), e.getValue().mxName());
            }
        }
        known.put("shapes", s);
        known.put("types", t);
        known.put("partial", partial);
        String result = Native.string(KilnNative.kiln_infer(toJson(), Json.write(known)),
                shapes != null ? "infer_shape" : "infer_type");
        return parseInferResult(result);
    }

    private static void checkInput(Set<String> inputSet, List<String> inputs, String name, String what) {
        if (!inputSet.contains(name)) {
            throw new IllegalArgumentException(what + ": '" + name + "' is not an argument or auxiliary state of "
                    + "the symbol; candidates are " + inputs);
        }
    }

    InferResult parseInferResult(String json) {
        Map<String, Object> o;
        try {
            o = Json.asObject(Json.parse(json), "infer result");
        } catch (IllegalArgumentException e) {
            throw new KilnException("infer: the native pass returned unreadable JSON: " + e.getMessage(), e);
        }
        List<String> args = listArguments();
        List<String> outs = listOutputs();
        List<String> aux = listAuxiliaryStates();
        boolean complete = o.get("complete") instanceof Boolean && (Boolean) o.get("complete");
        return new InferResult(args, outs, aux,
                shapes(o.get("arg_shapes"), args.size(), "arg_shapes"),
                shapes(o.get("out_shapes"), outs.size(), "out_shapes"),
                shapes(o.get("aux_shapes"), aux.size(), "aux_shapes"),
                types(o.get("arg_types"), args.size(), "arg_types"),
                types(o.get("out_types"), outs.size(), "out_types"),
                types(o.get("aux_types"), aux.size(), "aux_types"),
                complete);
    }

    private static List<long[]> shapes(Object v, int n, String what) {
        List<long[]> out = new ArrayList<>();
        if (v == null) {
            for (int i = 0; i < n; i++) {
                out.add(null);
            }
            return out;
        }
        List<Object> l = Json.asArray(v, "infer result." + what);
        if (l.size() != n) {
            throw new KilnException("infer: the native pass returned " + l.size() + " " + what + " for " + n + " entries");
        }
        for (Object s : l) {
            if (s == null) {
                out.add(null);
                continue;
            }
            List<Object> dims = Json.asArray(s, "infer result." + what + "[]");
            long[] shape = new long[dims.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = Json.asLong(dims.get(i), "infer result." + what + "[][]");
            }
            out.add(shape);
        }
        return out;
    }

    private static List<DType> types(Object v, int n, String what) {
        List<DType> out = new ArrayList<>();
        if (v == null) {
            for (int i = 0; i < n; i++) {
                out.add(null);
            }
            return out;
        }
        List<Object> l = Json.asArray(v, "infer result." + what);
        if (l.size() != n) {
            throw new KilnException("infer: the native pass returned " + l.size() + " " + what + " for " + n + " entries");
        }
        for (Object s : l) {
            DType d = null;
            if (s instanceof String) {
                try {
                    d = DType.fromName((String) s);
                } catch (IllegalArgumentException unknown) {
                    d = null;
                }
            } else if (s instanceof Long) {
                try {
                    d = DType.fromId((int) (long) (Long) s);
                } catch (IllegalArgumentException unknown) {
                    d = null;
                }
            }
            out.add(d);
        }
        return out;
    }

    // =========================================================================================
    // Arithmetic (Python operators on symbols)
    // =========================================================================================

    /**
     * {@code this + other} (Python {@code a + b}: {@code elemwise_add}, auto name {@code _plus<n>}).
     *
     * @param other same-shape operand
     * @return the sum
     */
    public Symbol plus(Symbol other) {
        return builder("elemwise_add").hint("_plus").input(this).input(other).build();
    }

    /**
     * {@code this + scalar} ({@code _plus_scalar}, auto name {@code _plusscalar<n>}).
     *
     * @param scalar the scalar
     * @return the result
     */
    public Symbol plus(double scalar) {
        return builder("_plus_scalar").hint("_plusscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code this - other} ({@code elemwise_sub}, auto name {@code _minus<n>}).
     *
     * @param other same-shape operand
     * @return the difference
     */
    public Symbol minus(Symbol other) {
        return builder("elemwise_sub").hint("_minus").input(this).input(other).build();
    }

    /**
     * {@code this - scalar} ({@code _minus_scalar}).
     *
     * @param scalar the scalar
     * @return the result
     */
    public Symbol minus(double scalar) {
        return builder("_minus_scalar").hint("_minusscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code scalar - this} (Python {@code 2 - a}: {@code _rminus_scalar}).
     *
     * @param scalar the scalar
     * @return the result
     */
    public Symbol rminus(double scalar) {
        return builder("_rminus_scalar").hint("_rminusscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code this * other} ({@code elemwise_mul}, auto name {@code _mul<n>}).
     *
     * @param other same-shape operand
     * @return the product
     */
    public Symbol mul(Symbol other) {
        return builder("elemwise_mul").hint("_mul").input(this).input(other).build();
    }

    /**
     * {@code this * scalar} ({@code _mul_scalar}, auto name {@code _mulscalar<n>}).
     *
     * @param scalar the scalar
     * @return the result
     */
    public Symbol mul(double scalar) {
        return builder("_mul_scalar").hint("_mulscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code this / other} ({@code elemwise_div}, auto name {@code _div<n>}).
     *
     * @param other same-shape operand
     * @return the quotient
     */
    public Symbol div(Symbol other) {
        return builder("elemwise_div").hint("_div").input(this).input(other).build();
    }

    /**
     * {@code this / scalar} ({@code _div_scalar}).
     *
     * @param scalar the scalar
     * @return the result
     */
    public Symbol div(double scalar) {
        return builder("_div_scalar").hint("_divscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code scalar / this} ({@code _rdiv_scalar}).
     *
     * @param scalar the scalar
     * @return the result
     */
    public Symbol rdiv(double scalar) {
        return builder("_rdiv_scalar").hint("_rdivscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code this ** other} ({@code _power}, auto name {@code _power<n>}).
     *
     * @param other same-shape exponent
     * @return the power
     */
    public Symbol pow(Symbol other) {
        return builder("_power").hint("_power").input(this).input(other).build();
    }

    /**
     * {@code this ** scalar} ({@code _power_scalar}).
     *
     * @param scalar the exponent
     * @return the result
     */
    public Symbol pow(double scalar) {
        return builder("_power_scalar").hint("_powerscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code scalar ** this} ({@code _rpower_scalar}).
     *
     * @param scalar the base
     * @return the result
     */
    public Symbol rpow(double scalar) {
        return builder("_rpower_scalar").hint("_rpowerscalar").input(this).param("scalar", scalar).build();
    }

    /**
     * {@code -this}; as in MXNet's Python {@code __neg__} this is {@code this * -1.0}
     * ({@code _mul_scalar}). Use {@link #negative(String, Symbol)} for the {@code negative} op.
     *
     * @return the negation
     */
    public Symbol negative() {
        return mul(-1.0);
    }

    // =========================================================================================
    // Typed operator factories. In all of them `name` may be null for an automatic name.
    // =========================================================================================

    /**
     * FullyConnected: {@code Y = X·Wᵀ + b}; creates {@code <name>_weight} and {@code <name>_bias}.
     *
     * @param name node name or null
     * @param data input, {@code (N, ...)} flattened to {@code (N, D)}
     * @param numHidden number of outputs ({@code num_hidden})
     * @return output {@code (N, num_hidden)}
     */
    public static Symbol fullyConnected(String name, Symbol data, int numHidden) {
        return builder("FullyConnected").name(name).input(data).param("num_hidden", numHidden).build();
    }

    /**
     * FullyConnected with {@code no_bias}.
     *
     * @param name node name or null
     * @param data input
     * @param numHidden {@code num_hidden}
     * @param noBias {@code no_bias}: true for no bias input
     * @return the output
     */
    public static Symbol fullyConnected(String name, Symbol data, int numHidden, boolean noBias) {
        return builder("FullyConnected").name(name).input(data).param("num_hidden", numHidden)
                .param("no_bias", noBias).build();
    }

    /**
     * FullyConnected with {@code no_bias} and {@code flatten}.
     *
     * @param name node name or null
     * @param data input
     * @param numHidden {@code num_hidden}
     * @param noBias {@code no_bias}
     * @param flatten {@code flatten}: false applies the layer to the last axis only
     * @return the output
     */
    public static Symbol fullyConnected(String name, Symbol data, int numHidden, boolean noBias, boolean flatten) {
        return builder("FullyConnected").name(name).input(data).param("num_hidden", numHidden)
                .param("no_bias", noBias).param("flatten", flatten).build();
    }

    /**
     * FullyConnected with explicit weight and bias symbols (shared weights).
     *
     * @param name node name or null
     * @param data input
     * @param weight weight {@code (num_hidden, D)}
     * @param bias bias {@code (num_hidden,)}, or null for {@code no_bias=True}
     * @param numHidden {@code num_hidden}
     * @return the output
     */
    public static Symbol fullyConnected(String name, Symbol data, Symbol weight, Symbol bias, int numHidden) {
        SymbolBuilder b = builder("FullyConnected").name(name).input(data).input(weight).param("num_hidden", numHidden);
        if (bias == null) {
            b.param("no_bias", true);
        } else {
            b.input(bias);
        }
        return b.build();
    }

    /**
     * Activation: element-wise {@code relu}, {@code sigmoid}, {@code tanh}, {@code softrelu}
     * or {@code softsign}.
     *
     * @param name node name or null
     * @param data input
     * @param actType {@code act_type}
     * @return same shape as data
     */
    public static Symbol activation(String name, Symbol data, String actType) {
        return builder("Activation").name(name).input(data).param("act_type", actType).build();
    }

    /**
     * Convolution (NCW / NCHW) with {@code num_filter} filters of size {@code kernel}; creates
     * {@code <name>_weight} and {@code <name>_bias}.
     *
     * @param name node name or null
     * @param data input {@code (N, C, [H,] W)}
     * @param kernel {@code kernel}, e.g. {@code {5, 5}}
     * @param numFilter {@code num_filter}
     * @param stride {@code stride} or null (1 per axis)
     * @param pad {@code pad} or null (0 per axis)
     * @return {@code (N, num_filter, [oh,] ow)}
     */
    public static Symbol convolution(String name, Symbol data, long[] kernel, int numFilter, long[] stride, long[] pad) {
        return builder("Convolution").name(name).input(data).param("kernel", kernel).param("num_filter", numFilter)
                .param("stride", stride).param("pad", pad).build();
    }

    /**
     * Convolution without bias ({@code no_bias=True}) and with {@code num_group} groups (the
     * usual block of ResNets; {@code num_group == C} is depthwise).
     *
     * @param name node name or null
     * @param data input
     * @param kernel {@code kernel}
     * @param numFilter {@code num_filter}
     * @param stride {@code stride} or null
     * @param pad {@code pad} or null
     * @param numGroup {@code num_group}
     * @return the output
     */
    public static Symbol convolutionNoBias(String name, Symbol data, long[] kernel, int numFilter, long[] stride, long[] pad,
            int numGroup) {
        return builder("Convolution").name(name).input(data).param("kernel", kernel).param("num_filter", numFilter)
                .param("stride", stride).param("pad", pad).param("num_group", numGroup).param("no_bias", true).build();
    }

    /**
     * Pooling of type {@code max}, {@code avg}, {@code sum} or {@code lp}.
     *
     * @param name node name or null
     * @param data input {@code (N, C, [H,] W)}
     * @param poolType {@code pool_type}
     * @param kernel {@code kernel}
     * @param stride {@code stride} or null (1 per axis)
     * @param pad {@code pad} or null
     * @return the pooled output
     */
    public static Symbol pooling(String name, Symbol data, String poolType, long[] kernel, long[] stride, long[] pad) {
        return builder("Pooling").name(name).input(data).param("pool_type", poolType).param("kernel", kernel)
                .param("stride", stride).param("pad", pad).build();
    }

    /**
     * Global pooling ({@code global_pool=True}): one value per channel, {@code (N, C, 1, 1)}.
     *
     * @param name node name or null
     * @param data input
     * @param poolType {@code pool_type}
     * @return {@code (N, C, 1[, 1])}
     */
    public static Symbol globalPooling(String name, Symbol data, String poolType) {
        return builder("Pooling").name(name).input(data).param("pool_type", poolType).param("kernel", new long[] {1, 1})
                .param("global_pool", true).build();
    }

    /**
     * {@code _contrib_BilinearResize2D} to a fixed size ({@code mode=size}): bilinear interpolation of
     * {@code (N, C, H, W)} to {@code (N, C, height, width)}.
     *
     * @param name node name or null
     * @param data input {@code (N, C, H, W)}
     * @param height output height (1 to 10000)
     * @param width output width (1 to 10000)
     * @param alignCorners {@code align_corners}: map the corner pixels onto each other (MXNet's default true)
     *     or scale the whole range (in / out)
     * @return {@code (N, C, height, width)}
     */
    public static Symbol bilinearResize2D(String name, Symbol data, int height, int width, boolean alignCorners) {
        return builder("_contrib_BilinearResize2D").name(name).input(data).param("height", height).param("width", width)
                .param("align_corners", alignCorners).build();
    }

    /**
     * {@code _contrib_BilinearResize2D} with {@code mode=like}: bilinear interpolation of {@code data}
     * to the height and width of {@code like} (which gets no gradient).
     *
     * @param name node name or null
     * @param data input {@code (N, C, H, W)}
     * @param like any 4-D input {@code (*, *, OH, OW)}
     * @param alignCorners {@code align_corners}
     * @return {@code (N, C, OH, OW)}
     */
    public static Symbol bilinearResize2DLike(String name, Symbol data, Symbol like, boolean alignCorners) {
        return builder("_contrib_BilinearResize2D").name(name).input(data).input(like).param("mode", "like")
                .param("align_corners", alignCorners).build();
    }

    /**
     * {@code _contrib_AdaptiveAvgPooling2D}: average pooling of {@code (N, C, H, W)} to a fixed output
     * size; output {@code (i, j)} averages rows {@code [floor(i*H/oh), ceil((i+1)*H/oh))} and the
     * same columns.
     *
     * @param name node name or null
     * @param data input {@code (N, C, H, W)}
     * @param outputSize {@code output_size}: none for 1x1, one size s for s x s, or (oh, ow)
     * @return {@code (N, C, oh, ow)}
     */
    public static Symbol adaptiveAvgPooling2D(String name, Symbol data, long... outputSize) {
        return builder("_contrib_AdaptiveAvgPooling2D").name(name).input(data).param("output_size", outputSize).build();
    }

    /**
     * {@code ROIPooling}: max pooling of each region of interest to a fixed size (Fast R-CNN). The
     * hidden second output (the positions of the maxima) is not visible.
     *
     * @param name node name or null
     * @param data feature map {@code (N, C, H, W)}
     * @param rois {@code (R, 5)}: {@code [batch_index, x1, y1, x2, y2]} in image coordinates
     * @param pooledHeight output height
     * @param pooledWidth output width
     * @param spatialScale {@code spatial_scale} in [0, 1]: feature map size over image size
     * @return {@code (R, C, pooledHeight, pooledWidth)}
     */
    public static Symbol roiPooling(String name, Symbol data, Symbol rois, int pooledHeight, int pooledWidth,
            double spatialScale) {
        return builder("ROIPooling").name(name).input(data).input(rois)
                .param("pooled_size", new long[] {pooledHeight, pooledWidth}).param("spatial_scale", spatialScale).build();
    }

    /**
     * {@code _contrib_box_iou}: intersection over union of every box of {@code lhs} with every box of
     * {@code rhs}. Zero gradients.
     *
     * @param name node name or null
     * @param lhs boxes {@code (.., 4)}
     * @param rhs boxes {@code (.., 4)}
     * @param format {@code "corner"} (xmin, ymin, xmax, ymax) or {@code "center"} (x, y, width, height)
     * @return {@code (lhs dims.., rhs dims..)}
     */
    public static Symbol boxIou(String name, Symbol lhs, Symbol rhs, String format) {
        return builder("_contrib_box_iou").name(name).input(lhs).input(rhs).param("format", format).build();
    }

    /**
     * {@code _contrib_box_nms} on rows {@code [id, score, xmin, ymin, xmax, ymax, ..]} (MXNet's default
     * layout, corner format): per batch the kept boxes by descending score, then rows of -1. The
     * gradient of each kept row goes to its input row.
     *
     * @param name node name or null
     * @param data {@code (.., N, W)} detections
     * @param overlapThresh {@code overlap_thresh}: a box is suppressed above this IoU with a kept box
     * @param validThresh {@code valid_thresh}: only boxes scoring above it take part
     * @param topk {@code topk}: the best topk candidates take part, -1 for all
     * @param forceSuppress {@code force_suppress}: suppress across classes (else within the class in column 0)
     * @return {@code (.., N, W)}
     */
    public static Symbol boxNms(String name, Symbol data, double overlapThresh, double validThresh, int topk,
            boolean forceSuppress) {
        return builder("_contrib_box_nms").name(name).input(data).param("overlap_thresh", overlapThresh)
                .param("valid_thresh", validThresh).param("topk", topk).param("id_index", 0)
                .param("force_suppress", forceSuppress).build();
    }

    /**
     * {@code _contrib_bipartite_matching}: greedy matching of a score matrix, best scores first. Its
     * two outputs are the matched column of every row and the matched row of every column (-1 for
     * none).
     *
     * @param name node name or null
     * @param data scores {@code (.., N, M)}
     * @param threshold {@code threshold}: entries at or below it are never matched
     * @return outputs {@code (.., N)} and {@code (.., M)}
     */
    public static Symbol bipartiteMatching(String name, Symbol data, double threshold) {
        return builder("_contrib_bipartite_matching").name(name).input(data).param("threshold", threshold).build();
    }

    /**
     * {@code _contrib_box_decode}: offsets {@code (B, N, 4)} against anchors {@code (1, N, 4)} to
     * corner boxes. Zero gradients.
     *
     * @param name node name or null
     * @param data offsets {@code (B, N, 4)}
     * @param anchors {@code (1, N, 4)}
     * @param stds the four {@code std0..std3}
     * @param clip {@code clip}: the width/height offsets are clipped to it when positive
     * @param format the anchors' {@code "corner"} or {@code "center"} format
     * @return {@code (B, N, 4)}
     */
    public static Symbol boxDecode(String name, Symbol data, Symbol anchors, double[] stds, double clip, String format) {
        return builder("_contrib_box_decode").name(name).input(data).input(anchors).param("std0", stds[0]).param("std1", stds[1])
                .param("std2", stds[2]).param("std3", stds[3]).param("clip", clip).param("format", format).build();
    }

    /**
     * {@code gather_nd}: slices of {@code data} addressed by coordinate tuples. With
     * {@code M = indices.shape[0]}, {@code out[y...][x...] = data[indices[0][y...], ..., indices[M-1][y...]][x...]};
     * a coordinate {@code v} along an axis of size {@code S} must lie in {@code [-S, S-1]} (negative values
     * count from the end), anything else fails with the value and the axis named.
     *
     * @param name node name or null
     * @param data {@code (X0, ..., X_{D-1})}
     * @param indices {@code (M, Y...)} with at least one Y, any dtype, {@code 1 <= M <= min(D, 10)}
     * @return {@code (Y..., X_M, ..., X_{D-1})}; its gradient to data is the scatter-add of the output gradient
     */
    public static Symbol gatherNd(String name, Symbol data, Symbol indices) {
        return builder("gather_nd").name(name).input(data).input(indices).build();
    }

    /**
     * {@code scatter_nd}: the inverse of {@link #gatherNd}: a new array of {@code shape}, zero except at the
     * addressed slices, which get {@code data}. With repeated coordinates the last one in index order wins.
     *
     * @param name node name or null
     * @param data {@code (Y..., shape[M], ..., shape[-1])}
     * @param indices {@code (M, Y...)}, coordinates as in {@link #gatherNd}
     * @param shape the output shape
     * @return {@code shape}; the gradient to data is {@code gather_nd(ograd, indices)}
     */
    public static Symbol scatterNd(String name, Symbol data, Symbol indices, long... shape) {
        return builder("scatter_nd").name(name).input(data).input(indices).param("shape", shape).build();
    }

    /**
     * {@code batch_take}: {@code out[i] = a[i, indices[i]]} with {@code a} viewed as {@code (n, a.shape[-1])};
     * indices are int32 and clipped into range.
     *
     * @param name node name or null
     * @param a data, rank at least 2
     * @param indices int32, {@code n} elements
     * @return indices' shape
     */
    public static Symbol batchTake(String name, Symbol a, Symbol indices) {
        return builder("batch_take").name(name).input(a).input(indices).build();
    }

    /**
     * {@code argmax_channel}: the index of the maximum along axis 1, the channels (as a value of the data's type).
     *
     * @param name node name or null
     * @param data input, rank at least 2
     * @return data's shape without axis 1
     */
    public static Symbol argmaxChannel(String name, Symbol data) {
        return builder("argmax_channel").name(name).input(data).build();
    }

    /**
     * {@code khatri_rao}: the column-wise Kronecker product of matrices with one column count, the first
     * input's row index varying slowest.
     *
     * @param name node name or null
     * @param matrices {@code (r_j, k)} each
     * @return {@code (prod r_j, k)}
     */
    public static Symbol khatriRao(String name, Symbol... matrices) {
        SymbolBuilder b = builder("khatri_rao").name(name).param("num_args", matrices.length);
        for (Symbol m : matrices) {
            b.input(m);
        }
        return b.build();
    }

    /**
     * {@code softmax_cross_entropy}: the cross entropy of softmax(data) and the labels, summed over the batch.
     *
     * @param name node name or null
     * @param data {@code (N, C)} scores
     * @param label {@code (N,)} class numbers in [0, C) (truncated toward zero)
     * @return {@code (1,)}; its gradient to data is {@code g * (softmax(data) - one_hot(label))}
     */
    public static Symbol softmaxCrossEntropy(String name, Symbol data, Symbol label) {
        return builder("softmax_cross_entropy").name(name).input(data).input(label).build();
    }

    /**
     * {@code SVMOutput}: a loss layer; the output is data, the backward (without a head gradient) is the gradient
     * of {@code c * sum max(0, margin - x_label) + max(0, margin + x_other)} (squared unless {@code useLinear}).
     *
     * @param name node name or null
     * @param data scores, rank at least 2, one row per label along the last axis
     * @param label {@code data.shape[:-1]} class numbers (outside the classes: no target)
     * @param margin the hinge's margin
     * @param regularizationCoefficient c
     * @param useLinear L1 hinge instead of the squared one
     * @return data
     */
    public static Symbol svmOutput(String name, Symbol data, Symbol label, double margin, double regularizationCoefficient,
            boolean useLinear) {
        return builder("SVMOutput").name(name).input(data).input(label).param("margin", margin)
                .param("regularization_coefficient", regularizationCoefficient).param("use_linear", useLinear).build();
    }

    /**
     * {@code cumsum} (MXNet's {@code _np_cumsum}): running sums along {@code axis}, summed in order in the output type.
     *
     * @param name node name or null
     * @param data input
     * @param axis the axis, or null for the flattened array (a 1-D result)
     * @param dtype output and accumulator type ({@code "float64"}, {@code "int32"}, ...), or null for data's type
     * @return data's shape (1-D with axis null)
     */
    public static Symbol cumsum(String name, Symbol data, Integer axis, String dtype) {
        return builder("cumsum").name(name).input(data).param("axis", axis).param("dtype", dtype).build();
    }

    /**
     * {@code moments}: the mean and the (population) variance of data over {@code axes}.
     *
     * @param name node name or null
     * @param data input
     * @param keepdims keep the reduced axes as 1
     * @param axes the axes to reduce (none given: all)
     * @return two outputs, {@code mean} and {@code var}, of the reduced shape
     */
    public static Symbol moments(String name, Symbol data, boolean keepdims, long... axes) {
        SymbolBuilder b = builder("moments").name(name).input(data).param("keepdims", keepdims);
        if (axes.length > 0) {
            b.param("axes", axes);
        }
        return b.build();
    }

    /**
     * {@code diag}: a 1-D input becomes the square matrix with it on the {@code k}-th diagonal; a higher-rank
     * input gives the {@code k}-th diagonals of its ({@code axis1}, {@code axis2}) planes, as a last axis.
     *
     * @param name node name or null
     * @param data input, rank at least 1
     * @param k the diagonal: 0 main, above it when positive, below when negative
     * @param axis1 first axis of the planes (ignored for 1-D data)
     * @param axis2 second axis of the planes (ignored for 1-D data)
     * @return {@code (n + |k|, n + |k|)} for 1-D data; else data's shape without axis1 and axis2, then the
     *         diagonal's length
     */
    public static Symbol diag(String name, Symbol data, int k, int axis1, int axis2) {
        return builder("diag").name(name).input(data).param("k", k).param("axis1", axis1).param("axis2", axis2).build();
    }

    /**
     * {@code ravel_multi_index}: coordinate tuples ({@code (M, N)}, one column per position) to flat positions in an
     * array of {@code shape} (MXNet's arithmetic, no range check).
     *
     * @param name node name or null
     * @param data {@code (M, N)}, {@code M = shape.length}
     * @param shape the array's shape (positive entries)
     * @return {@code (N,)}, data's type
     */
    public static Symbol ravelMultiIndex(String name, Symbol data, long... shape) {
        return builder("ravel_multi_index").name(name).input(data).param("shape", shape).build();
    }

    /**
     * {@code unravel_index}: flat positions to coordinate tuples in an array of {@code shape}; the leading
     * coordinate is what remains after the others (so it may exceed {@code shape[0]}).
     *
     * @param name node name or null
     * @param data {@code (N,)}
     * @param shape the array's shape (positive entries)
     * @return {@code (shape.length, N)}, data's type
     */
    public static Symbol unravelIndex(String name, Symbol data, long... shape) {
        return builder("unravel_index").name(name).input(data).param("shape", shape).build();
    }

    /**
     * {@code _contrib_arange_like}: {@code start + (i / repeat) * step} shaped like {@code data} (only its shape
     * is read), in data's type.
     *
     * @param name node name or null
     * @param data gives the shape
     * @param start first value
     * @param step spacing
     * @param repeat how many times each value repeats (positive)
     * @param axis null: data's shape; else {@code (data.shape[axis],)}
     * @return the range
     */
    public static Symbol arangeLike(String name, Symbol data, double start, double step, int repeat, Integer axis) {
        SymbolBuilder b = builder("_contrib_arange_like").name(name).input(data).param("start", start).param("step", step)
                .param("repeat", repeat);
        if (axis != null) {
            b.param("axis", axis);
        }
        return b.build();
    }

    /**
     * {@code _contrib_div_sqrt_dim}: {@code data / sqrt(data.shape[-1])} (attention score scaling).
     *
     * @param name node name or null
     * @param data input, rank at least 1
     * @return same shape
     */
    public static Symbol divSqrtDim(String name, Symbol data) {
        return builder("_contrib_div_sqrt_dim").name(name).input(data).build();
    }

    /**
     * {@code _contrib_gradientmultiplier}: identity forward, gradient multiplied by {@code scalar} (a negative
     * scalar gives a gradient reversal layer).
     *
     * @param name node name or null
     * @param data input
     * @param scalar gradient factor
     * @return data unchanged
     */
    public static Symbol gradientMultiplier(String name, Symbol data, double scalar) {
        return builder("_contrib_gradientmultiplier").name(name).input(data).param("scalar", scalar).build();
    }

    /**
     * {@code _contrib_round_ste}: {@code round(data)} (halves away from zero) with a straight-through gradient
     * (the output gradient passes unchanged).
     *
     * @param name node name or null
     * @param data input
     * @return same shape
     */
    public static Symbol roundSte(String name, Symbol data) {
        return builder("_contrib_round_ste").name(name).input(data).build();
    }

    /**
     * {@code _contrib_sign_ste}: {@code sign(data)} with a straight-through gradient.
     *
     * @param name node name or null
     * @param data input
     * @return same shape
     */
    public static Symbol signSte(String name, Symbol data) {
        return builder("_contrib_sign_ste").name(name).input(data).build();
    }

    /**
     * BatchNorm over axis 1 with MXNet's defaults except {@code fix_gamma}; creates
     * {@code <name>_gamma}, {@code <name>_beta} and the aux states {@code <name>_moving_mean},
     * {@code <name>_moving_var}.
     *
     * @param name node name or null
     * @param data input
     * @param fixGamma {@code fix_gamma} (MXNet's default is true: gamma stays 1)
     * @return same shape as data
     */
    public static Symbol batchNorm(String name, Symbol data, boolean fixGamma) {
        return builder("BatchNorm").name(name).input(data).param("fix_gamma", fixGamma).build();
    }

    /**
     * GroupNorm: the channels of data (N, C, ...) in {@code numGroups} groups, each normalized over its
     * channels and positions. As in MXNet 1.x, the auto-created {@code gamma} and {@code beta} are
     * {@code (numGroups,)}.
     *
     * @param name node name or null
     * @param data input (N, C, spatial...), C divisible by numGroups
     * @param numGroups {@code num_groups}
     * @param eps {@code eps} (MXNet's default 1e-5)
     * @return same shape as data
     */
    public static Symbol groupNorm(String name, Symbol data, int numGroups, double eps) {
        return builder("GroupNorm").name(name).input(data).param("num_groups", numGroups).param("eps", eps).build();
    }

    /**
     * L2Normalization: data divided by its L2 norm {@code sqrt(Σ x² + eps)}, over each instance
     * ({@code "instance"}), across channels at each position ({@code "channel"}) or over the positions
     * of each channel ({@code "spatial"}).
     *
     * @param name node name or null
     * @param data input
     * @param mode {@code mode}
     * @param eps {@code eps} (MXNet's default 1e-10)
     * @return same shape as data
     */
    public static Symbol l2Normalization(String name, Symbol data, String mode, double eps) {
        return builder("L2Normalization").name(name).input(data).param("mode", mode).param("eps", eps).build();
    }

    /**
     * LeakyReLU with the given {@code act_type} ({@code leaky}, {@code prelu}, {@code elu},
     * {@code rrelu}, {@code selu}, {@code gelu}); prelu creates {@code <name>_gamma}. rrelu has a
     * second output, its mask of slopes, as in MXNet: compose with {@code get(0)}.
     *
     * @param name node name or null
     * @param data input
     * @param actType {@code act_type}
     * @return same shape as data (rrelu: the output and the mask, both data-shaped)
     */
    public static Symbol leakyReLU(String name, Symbol data, String actType) {
        return builder("LeakyReLU").name(name).input(data).param("act_type", actType).build();
    }

    /**
     * LeakyReLU with {@code slope} (leaky, elu).
     *
     * @param name node name or null
     * @param data input
     * @param actType {@code act_type}
     * @param slope {@code slope} (default 0.25)
     * @return same shape as data
     */
    public static Symbol leakyReLU(String name, Symbol data, String actType, double slope) {
        return builder("LeakyReLU").name(name).input(data).param("act_type", actType).param("slope", slope).build();
    }

    /**
     * LeakyReLU with all parameters.
     *
     * @param name node name or null
     * @param data input
     * @param actType {@code act_type}
     * @param slope {@code slope}
     * @param lowerBound {@code lower_bound} for rrelu (default 0.125)
     * @param upperBound {@code upper_bound} for rrelu (default 0.334)
     * @return same shape as data
     */
    public static Symbol leakyReLU(String name, Symbol data, String actType, double slope, double lowerBound,
            double upperBound) {
        return builder("LeakyReLU").name(name).input(data).param("act_type", actType).param("slope", slope)
                .param("lower_bound", lowerBound).param("upper_bound", upperBound).build();
    }

    /**
     * SoftmaxOutput (softmax forward, cross-entropy gradient); creates {@code <name>_label}.
     *
     * @param name node name or null (MXNet scripts use {@code "softmax"})
     * @param data scores {@code (N, K)}
     * @return probabilities, same shape as data
     */
    public static Symbol softmaxOutput(String name, Symbol data) {
        return builder("SoftmaxOutput").name(name).input(data).build();
    }

    /**
     * SoftmaxOutput with an explicit label symbol.
     *
     * @param name node name or null
     * @param data scores
     * @param label labels {@code (N,)} (or null to create {@code <name>_label})
     * @return probabilities
     */
    public static Symbol softmaxOutput(String name, Symbol data, Symbol label) {
        return builder("SoftmaxOutput").name(name).input(data).input("label", label).build();
    }

    /**
     * Starts a SoftmaxOutput with optional parameters ({@code grad_scale}, {@code ignore_label},
     * {@code use_ignore}, {@code normalization}, {@code multi_output}, {@code preserve_shape},
     * {@code out_grad}, {@code smooth_alpha}).
     *
     * @return a new builder
     */
    public static SoftmaxOutputBuilder softmaxOutputBuilder() {
        return new SoftmaxOutputBuilder();
    }

    /**
     * Builder for SoftmaxOutput: {@code setData} is required; {@code optX} are optional and only
     * the ones called are stored. Thread-safety: single-thread use.
     */
    public static final class SoftmaxOutputBuilder {
        private final SymbolBuilder b = builder("SoftmaxOutput");
        private Symbol data;

        private SoftmaxOutputBuilder() {}

        /**
         * Sets the data.
         *
         * @param data scores (required)
         * @return this
         */
        public SoftmaxOutputBuilder setData(Symbol data) {
            this.data = data;
            return this;
        }

        /**
         * Sets the label.
         *
         * @param label labels; default: a variable {@code <name>_label}
         * @return this
         */
        public SoftmaxOutputBuilder optLabel(Symbol label) {
            b.input("label", label);
            return this;
        }

        /**
         * Sets the name.
         *
         * @param name node name
         * @return this
         */
        public SoftmaxOutputBuilder optName(String name) {
            b.name(name);
            return this;
        }

        /**
         * Sets {@code grad_scale}.
         *
         * @param v {@code grad_scale} (default 1)
         * @return this
         */
        public SoftmaxOutputBuilder optGradScale(double v) {
            b.param("grad_scale", v);
            return this;
        }

        /**
         * Sets {@code ignore_label}.
         *
         * @param v {@code ignore_label} (default -1)
         * @return this
         */
        public SoftmaxOutputBuilder optIgnoreLabel(double v) {
            b.param("ignore_label", v);
            return this;
        }

        /**
         * Sets {@code use_ignore}.
         *
         * @param v {@code use_ignore} (default false)
         * @return this
         */
        public SoftmaxOutputBuilder optUseIgnore(boolean v) {
            b.param("use_ignore", v);
            return this;
        }

        /**
         * Sets {@code normalization}.
         *
         * @param v {@code normalization}: {@code null}, {@code batch} or {@code valid}
         * @return this
         */
        public SoftmaxOutputBuilder optNormalization(String v) {
            b.param("normalization", v);
            return this;
        }

        /**
         * Sets {@code multi_output}.
         *
         * @param v {@code multi_output} (default false)
         * @return this
         */
        public SoftmaxOutputBuilder optMultiOutput(boolean v) {
            b.param("multi_output", v);
            return this;
        }

        /**
         * Sets {@code preserve_shape}.
         *
         * @param v {@code preserve_shape} (default false)
         * @return this
         */
        public SoftmaxOutputBuilder optPreserveShape(boolean v) {
            b.param("preserve_shape", v);
            return this;
        }

        /**
         * Sets {@code out_grad}.
         *
         * @param v {@code out_grad} (default false)
         * @return this
         */
        public SoftmaxOutputBuilder optOutGrad(boolean v) {
            b.param("out_grad", v);
            return this;
        }

        /**
         * Sets {@code smooth_alpha}.
         *
         * @param v {@code smooth_alpha} in [0, 1] (default 0)
         * @return this
         */
        public SoftmaxOutputBuilder optSmoothAlpha(double v) {
            b.param("smooth_alpha", v);
            return this;
        }

        /**
         * Creates the node.
         *
         * @return the SoftmaxOutput symbol
         * @throws IllegalStateException if {@code setData} was not called
         */
        public Symbol build() {
            if (data == null) {
                throw new IllegalStateException("SoftmaxOutput: setData is required");
            }
            return b.input(data).build();
        }
    }

    /**
     * LinearRegressionOutput (identity forward, L2 gradient); creates {@code <name>_label}.
     *
     * @param name node name or null
     * @param data predictions
     * @return the predictions
     */
    public static Symbol linearRegressionOutput(String name, Symbol data) {
        return regression("LinearRegressionOutput", name, data, null, null);
    }

    /**
     * LinearRegressionOutput with a label and {@code grad_scale}.
     *
     * @param name node name or null
     * @param data predictions
     * @param label labels, or null to create {@code <name>_label}
     * @param gradScale {@code grad_scale}
     * @return the predictions
     */
    public static Symbol linearRegressionOutput(String name, Symbol data, Symbol label, double gradScale) {
        return regression("LinearRegressionOutput", name, data, label, gradScale);
    }

    /**
     * LogisticRegressionOutput (sigmoid forward, cross-entropy gradient); creates {@code <name>_label}.
     *
     * @param name node name or null
     * @param data logits
     * @return the probabilities
     */
    public static Symbol logisticRegressionOutput(String name, Symbol data) {
        return regression("LogisticRegressionOutput", name, data, null, null);
    }

    /**
     * LogisticRegressionOutput with a label and {@code grad_scale}.
     *
     * @param name node name or null
     * @param data logits
     * @param label labels, or null
     * @param gradScale {@code grad_scale}
     * @return the probabilities
     */
    public static Symbol logisticRegressionOutput(String name, Symbol data, Symbol label, double gradScale) {
        return regression("LogisticRegressionOutput", name, data, label, gradScale);
    }

    /**
     * MAERegressionOutput (identity forward, L1 gradient); creates {@code <name>_label}.
     *
     * @param name node name or null
     * @param data predictions
     * @return the predictions
     */
    public static Symbol maeRegressionOutput(String name, Symbol data) {
        return regression("MAERegressionOutput", name, data, null, null);
    }

    /**
     * MAERegressionOutput with a label and {@code grad_scale}.
     *
     * @param name node name or null
     * @param data predictions
     * @param label labels, or null
     * @param gradScale {@code grad_scale}
     * @return the predictions
     */
    public static Symbol maeRegressionOutput(String name, Symbol data, Symbol label, double gradScale) {
        return regression("MAERegressionOutput", name, data, label, gradScale);
    }

    private static Symbol regression(String op, String name, Symbol data, Symbol label, Double gradScale) {
        return builder(op).name(name).input(data).input("label", label).param("grad_scale", gradScale).build();
    }

    /**
     * softmax along the last axis.
     *
     * @param name node name or null
     * @param data input
     * @return same shape as data
     */
    public static Symbol softmax(String name, Symbol data) {
        return builder("softmax").name(name).input(data).build();
    }

    /**
     * softmax along {@code axis}.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis} (default -1)
     * @return same shape as data
     */
    public static Symbol softmax(String name, Symbol data, int axis) {
        return builder("softmax").name(name).input(data).param("axis", axis).build();
    }

    /**
     * softmin along {@code axis}: {@code exp(-x/T) / Σ exp(-x/T)}.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param temperature {@code temperature} (1 for none)
     * @return same shape as data
     */
    public static Symbol softmin(String name, Symbol data, int axis, double temperature) {
        return builder("softmin").name(name).input(data).param("axis", axis).param("temperature", temperature).build();
    }

    /**
     * softmax along {@code axis} with a temperature: {@code exp(x/T) / Σ exp(x/T)}.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param temperature {@code temperature} (default 1)
     * @return same shape as data
     */
    public static Symbol softmax(String name, Symbol data, int axis, double temperature) {
        return builder("softmax").name(name).input(data).param("axis", axis).param("temperature", temperature).build();
    }

    /**
     * log_softmax along the last axis.
     *
     * @param name node name or null
     * @param data input
     * @return same shape as data
     */
    public static Symbol logSoftmax(String name, Symbol data) {
        return builder("log_softmax").name(name).input(data).build();
    }

    /**
     * log_softmax along {@code axis}.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @return same shape as data
     */
    public static Symbol logSoftmax(String name, Symbol data, int axis) {
        return builder("log_softmax").name(name).input(data).param("axis", axis).build();
    }

    /**
     * log_softmax along {@code axis} with a temperature.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param temperature {@code temperature}
     * @return same shape as data
     */
    public static Symbol logSoftmax(String name, Symbol data, int axis, double temperature) {
        return builder("log_softmax").name(name).input(data).param("axis", axis).param("temperature", temperature)
                .build();
    }

    /**
     * SoftmaxActivation (deprecated in MXNet in favour of softmax), {@code mode=instance}.
     *
     * @param name node name or null
     * @param data input
     * @return same shape as data
     */
    public static Symbol softmaxActivation(String name, Symbol data) {
        return builder("SoftmaxActivation").name(name).input(data).build();
    }

    /**
     * SoftmaxActivation with {@code mode} ({@code instance} or {@code channel}).
     *
     * @param name node name or null
     * @param data input
     * @param mode {@code mode}
     * @return same shape as data
     */
    public static Symbol softmaxActivation(String name, Symbol data, String mode) {
        return builder("SoftmaxActivation").name(name).input(data).param("mode", mode).build();
    }

    /**
     * Flatten: {@code (N, d1, ..., dk)} to {@code (N, d1·...·dk)}.
     *
     * @param name node name or null
     * @param data input
     * @return the flattened input
     */
    public static Symbol flatten(String name, Symbol data) {
        return builder("Flatten").name(name).input(data).build();
    }

    /**
     * Reshape with MXNet's special codes (0 copy, -1 infer, -2 copy rest, -3 merge two, -4 split).
     *
     * @param name node name or null
     * @param data input
     * @param shape target {@code shape}, e.g. {@code -1, 200}
     * @return the reshaped input
     */
    public static Symbol reshape(String name, Symbol data, int... shape) {
        return builder("Reshape").name(name).input(data).param("shape", shape).build();
    }

    /**
     * Reshape applying the special codes right to left ({@code reverse}).
     *
     * @param name node name or null
     * @param data input
     * @param reverse {@code reverse}
     * @param shape target {@code shape}
     * @return the reshaped input
     */
    public static Symbol reshape(String name, Symbol data, boolean reverse, int... shape) {
        return builder("Reshape").name(name).input(data).param("shape", shape).param("reverse", reverse).build();
    }

    private static Symbol binary(String op, String name, Symbol lhs, Symbol rhs) {
        return builder(op).name(name).input(lhs).input(rhs).build();
    }

    private static Symbol unary(String op, String name, Symbol data) {
        return builder(op).name(name).input(data).build();
    }

    /**
     * elemwise_add: same-shape sum.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs + rhs
     */
    public static Symbol elemwiseAdd(String name, Symbol lhs, Symbol rhs) {
        return binary("elemwise_add", name, lhs, rhs);
    }

    /**
     * elemwise_sub.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs - rhs
     */
    public static Symbol elemwiseSub(String name, Symbol lhs, Symbol rhs) {
        return binary("elemwise_sub", name, lhs, rhs);
    }

    /**
     * elemwise_mul.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs * rhs
     */
    public static Symbol elemwiseMul(String name, Symbol lhs, Symbol rhs) {
        return binary("elemwise_mul", name, lhs, rhs);
    }

    /**
     * elemwise_div.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs / rhs
     */
    public static Symbol elemwiseDiv(String name, Symbol lhs, Symbol rhs) {
        return binary("elemwise_div", name, lhs, rhs);
    }

    /**
     * _maximum: same-shape element-wise maximum.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return max(lhs, rhs)
     */
    public static Symbol maximum(String name, Symbol lhs, Symbol rhs) {
        return binary("_maximum", name, lhs, rhs);
    }

    /**
     * _minimum.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return min(lhs, rhs)
     */
    public static Symbol minimum(String name, Symbol lhs, Symbol rhs) {
        return binary("_minimum", name, lhs, rhs);
    }

    /**
     * _power.
     *
     * @param name node name or null
     * @param lhs base
     * @param rhs exponent
     * @return lhs ** rhs
     */
    public static Symbol power(String name, Symbol lhs, Symbol rhs) {
        return binary("_power", name, lhs, rhs);
    }

    /**
     * broadcast_add (NumPy broadcasting).
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs + rhs
     */
    public static Symbol broadcastAdd(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_add", name, lhs, rhs);
    }

    /**
     * broadcast_sub.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs - rhs
     */
    public static Symbol broadcastSub(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_sub", name, lhs, rhs);
    }

    /**
     * broadcast_mul.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs * rhs
     */
    public static Symbol broadcastMul(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_mul", name, lhs, rhs);
    }

    /**
     * broadcast_div.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs / rhs
     */
    public static Symbol broadcastDiv(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_div", name, lhs, rhs);
    }

    /**
     * broadcast_maximum.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return max(lhs, rhs)
     */
    public static Symbol broadcastMaximum(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_maximum", name, lhs, rhs);
    }

    /**
     * broadcast_minimum.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return min(lhs, rhs)
     */
    public static Symbol broadcastMinimum(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_minimum", name, lhs, rhs);
    }

    /**
     * broadcast_power.
     *
     * @param name node name or null
     * @param lhs base
     * @param rhs exponent
     * @return lhs ** rhs
     */
    public static Symbol broadcastPower(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_power", name, lhs, rhs);
    }

    private static Symbol scalarOp(String op, String name, Symbol data, double scalar) {
        return builder(op).name(name).input(data).param("scalar", scalar).build();
    }

    /**
     * _plus_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return data + scalar
     */
    public static Symbol plusScalar(String name, Symbol data, double scalar) {
        return scalarOp("_plus_scalar", name, data, scalar);
    }

    /**
     * _minus_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return data - scalar
     */
    public static Symbol minusScalar(String name, Symbol data, double scalar) {
        return scalarOp("_minus_scalar", name, data, scalar);
    }

    /**
     * _rminus_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return scalar - data
     */
    public static Symbol rminusScalar(String name, Symbol data, double scalar) {
        return scalarOp("_rminus_scalar", name, data, scalar);
    }

    /**
     * _mul_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return data * scalar
     */
    public static Symbol mulScalar(String name, Symbol data, double scalar) {
        return scalarOp("_mul_scalar", name, data, scalar);
    }

    /**
     * _div_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return data / scalar
     */
    public static Symbol divScalar(String name, Symbol data, double scalar) {
        return scalarOp("_div_scalar", name, data, scalar);
    }

    /**
     * _rdiv_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return scalar / data
     */
    public static Symbol rdivScalar(String name, Symbol data, double scalar) {
        return scalarOp("_rdiv_scalar", name, data, scalar);
    }

    /**
     * _power_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return data ** scalar
     */
    public static Symbol powerScalar(String name, Symbol data, double scalar) {
        return scalarOp("_power_scalar", name, data, scalar);
    }

    /**
     * _rpower_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return scalar ** data
     */
    public static Symbol rpowerScalar(String name, Symbol data, double scalar) {
        return scalarOp("_rpower_scalar", name, data, scalar);
    }

    /**
     * _maximum_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return max(data, scalar)
     */
    public static Symbol maximumScalar(String name, Symbol data, double scalar) {
        return scalarOp("_maximum_scalar", name, data, scalar);
    }

    /**
     * _minimum_scalar.
     *
     * @param name node name or null
     * @param data input
     * @param scalar {@code scalar}
     * @return min(data, scalar)
     */
    public static Symbol minimumScalar(String name, Symbol data, double scalar) {
        return scalarOp("_minimum_scalar", name, data, scalar);
    }

    /**
     * negative (the op; compare {@link #negative()}).
     *
     * @param name node name or null
     * @param data input
     * @return -data
     */
    public static Symbol negative(String name, Symbol data) {
        return unary("negative", name, data);
    }

    /**
     * exp.
     *
     * @param name node name or null
     * @param data input
     * @return e^data
     */
    public static Symbol exp(String name, Symbol data) {
        return unary("exp", name, data);
    }

    /**
     * log (natural).
     *
     * @param name node name or null
     * @param data input
     * @return ln(data)
     */
    public static Symbol log(String name, Symbol data) {
        return unary("log", name, data);
    }

    /**
     * sqrt.
     *
     * @param name node name or null
     * @param data input
     * @return √data
     */
    public static Symbol sqrt(String name, Symbol data) {
        return unary("sqrt", name, data);
    }

    /**
     * square.
     *
     * @param name node name or null
     * @param data input
     * @return data²
     */
    public static Symbol square(String name, Symbol data) {
        return unary("square", name, data);
    }

    /**
     * abs.
     *
     * @param name node name or null
     * @param data input
     * @return |data|
     */
    public static Symbol abs(String name, Symbol data) {
        return unary("abs", name, data);
    }

    /**
     * clip to {@code [a_min, a_max]}.
     *
     * @param name node name or null
     * @param data input
     * @param aMin {@code a_min}
     * @param aMax {@code a_max}
     * @return the clipped input
     */
    public static Symbol clip(String name, Symbol data, double aMin, double aMax) {
        return builder("clip").name(name).input(data).param("a_min", aMin).param("a_max", aMax).build();
    }

    // ---- math ops of one input (kiln/elemwise_math.h) ----

    /**
     * relu, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return max(data, 0); NaN passes through
     */
    public static Symbol relu(String name, Symbol data) {
        return unary("relu", name, data);
    }

    /**
     * sigmoid, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return 1 / (1 + e^-data)
     */
    public static Symbol sigmoid(String name, Symbol data) {
        return unary("sigmoid", name, data);
    }

    /**
     * tanh, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return tanh(data)
     */
    public static Symbol tanh(String name, Symbol data) {
        return unary("tanh", name, data);
    }

    /**
     * softsign, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return data / (1 + |data|)
     */
    public static Symbol softsign(String name, Symbol data) {
        return unary("softsign", name, data);
    }

    /**
     * sin, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return sin(data) (radians)
     */
    public static Symbol sin(String name, Symbol data) {
        return unary("sin", name, data);
    }

    /**
     * cos, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return cos(data) (radians)
     */
    public static Symbol cos(String name, Symbol data) {
        return unary("cos", name, data);
    }

    /**
     * tan, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return tan(data) (radians)
     */
    public static Symbol tan(String name, Symbol data) {
        return unary("tan", name, data);
    }

    /**
     * arcsin, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return asin(data)
     */
    public static Symbol arcsin(String name, Symbol data) {
        return unary("arcsin", name, data);
    }

    /**
     * arccos, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return acos(data)
     */
    public static Symbol arccos(String name, Symbol data) {
        return unary("arccos", name, data);
    }

    /**
     * arctan, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return atan(data)
     */
    public static Symbol arctan(String name, Symbol data) {
        return unary("arctan", name, data);
    }

    /**
     * sinh, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return sinh(data)
     */
    public static Symbol sinh(String name, Symbol data) {
        return unary("sinh", name, data);
    }

    /**
     * cosh, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return cosh(data)
     */
    public static Symbol cosh(String name, Symbol data) {
        return unary("cosh", name, data);
    }

    /**
     * arcsinh, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return asinh(data)
     */
    public static Symbol arcsinh(String name, Symbol data) {
        return unary("arcsinh", name, data);
    }

    /**
     * arccosh, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return acosh(data)
     */
    public static Symbol arccosh(String name, Symbol data) {
        return unary("arccosh", name, data);
    }

    /**
     * arctanh, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return atanh(data)
     */
    public static Symbol arctanh(String name, Symbol data) {
        return unary("arctanh", name, data);
    }

    /**
     * degrees, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return data * 180 / pi
     */
    public static Symbol degrees(String name, Symbol data) {
        return unary("degrees", name, data);
    }

    /**
     * radians, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return data * pi / 180
     */
    public static Symbol radians(String name, Symbol data) {
        return unary("radians", name, data);
    }

    /**
     * reciprocal, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return 1 / data
     */
    public static Symbol reciprocal(String name, Symbol data) {
        return unary("reciprocal", name, data);
    }

    /**
     * rsqrt, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return 1 / sqrt(data)
     */
    public static Symbol rsqrt(String name, Symbol data) {
        return unary("rsqrt", name, data);
    }

    /**
     * cbrt, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the cube root of data
     */
    public static Symbol cbrt(String name, Symbol data) {
        return unary("cbrt", name, data);
    }

    /**
     * rcbrt, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return 1 / cbrt(data)
     */
    public static Symbol rcbrt(String name, Symbol data) {
        return unary("rcbrt", name, data);
    }

    /**
     * log10, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return log10(data)
     */
    public static Symbol log10(String name, Symbol data) {
        return unary("log10", name, data);
    }

    /**
     * log2, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return log2(data)
     */
    public static Symbol log2(String name, Symbol data) {
        return unary("log2", name, data);
    }

    /**
     * log1p, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return ln(1 + data), accurate for small data
     */
    public static Symbol log1p(String name, Symbol data) {
        return unary("log1p", name, data);
    }

    /**
     * expm1, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return e^data - 1, accurate for small data
     */
    public static Symbol expm1(String name, Symbol data) {
        return unary("expm1", name, data);
    }

    /**
     * erf, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the Gauss error function of data
     */
    public static Symbol erf(String name, Symbol data) {
        return unary("erf", name, data);
    }

    /**
     * erfinv, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the inverse error function of data
     */
    public static Symbol erfinv(String name, Symbol data) {
        return unary("erfinv", name, data);
    }

    /**
     * gamma, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the gamma function of data
     */
    public static Symbol gamma(String name, Symbol data) {
        return unary("gamma", name, data);
    }

    /**
     * gammaln, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return ln|gamma(data)|
     */
    public static Symbol gammaln(String name, Symbol data) {
        return unary("gammaln", name, data);
    }

    /**
     * floor, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the largest integer <= data (zero gradient)
     */
    public static Symbol floor(String name, Symbol data) {
        return unary("floor", name, data);
    }

    /**
     * ceil, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the smallest integer >= data (zero gradient)
     */
    public static Symbol ceil(String name, Symbol data) {
        return unary("ceil", name, data);
    }

    /**
     * round, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the nearest integer, halves away from zero (zero gradient)
     */
    public static Symbol round(String name, Symbol data) {
        return unary("round", name, data);
    }

    /**
     * rint, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the nearest integer, n.5 to n as MXNet (zero gradient)
     */
    public static Symbol rint(String name, Symbol data) {
        return unary("rint", name, data);
    }

    /**
     * fix, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the integer part, toward zero (zero gradient)
     */
    public static Symbol fix(String name, Symbol data) {
        return unary("fix", name, data);
    }

    /**
     * trunc, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return the integer part, toward zero (zero gradient)
     */
    public static Symbol trunc(String name, Symbol data) {
        return unary("trunc", name, data);
    }

    /**
     * sign, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return -1, 0 or 1 (0 for NaN, as MXNet; zero gradient)
     */
    public static Symbol sign(String name, Symbol data) {
        return unary("sign", name, data);
    }

    /**
     * logical_not, element-wise.
     *
     * @param name node name or null
     * @param data input
     * @return 1 where data == 0, else 0 (zero gradient)
     */
    public static Symbol logicalNot(String name, Symbol data) {
        return unary("logical_not", name, data);
    }

    /**
     * hard_sigmoid, element-wise: {@code max(0, min(1, alpha * data + beta))}.
     *
     * @param name node name or null
     * @param data input
     * @param alpha slope (MXNet's default 0.2)
     * @param beta offset (MXNet's default 0.5)
     * @return the hard sigmoid of data
     */
    public static Symbol hardSigmoid(String name, Symbol data, double alpha, double beta) {
        return builder("hard_sigmoid").name(name).input(data).param("alpha", alpha).param("beta", beta).build();
    }

    /**
     * smooth_l1, element-wise: {@code 0.5 (sigma x)^2} where {@code |x| < 1 / sigma^2}, else {@code |x| - 0.5 / sigma^2}.
     *
     * @param name node name or null
     * @param data input
     * @param sigma MXNet's {@code scalar}
     * @return the smooth L1 loss of each element
     */
    public static Symbol smoothL1(String name, Symbol data, double sigma) {
        return scalarOp("smooth_l1", name, data, sigma);
    }

    // ---- comparisons, logical ops, mod, hypot (NumPy broadcasting) ----

    /**
     * broadcast_equal.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where lhs == rhs, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastEqual(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_equal", name, lhs, rhs);
    }

    /**
     * broadcast_not_equal.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where lhs != rhs, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastNotEqual(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_not_equal", name, lhs, rhs);
    }

    /**
     * broadcast_greater.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where lhs > rhs, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastGreater(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_greater", name, lhs, rhs);
    }

    /**
     * broadcast_greater_equal.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where lhs >= rhs, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastGreaterEqual(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_greater_equal", name, lhs, rhs);
    }

    /**
     * broadcast_lesser.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where lhs < rhs, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastLesser(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_lesser", name, lhs, rhs);
    }

    /**
     * broadcast_lesser_equal.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where lhs <= rhs, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastLesserEqual(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_lesser_equal", name, lhs, rhs);
    }

    /**
     * broadcast_logical_and.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where both are nonzero, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastLogicalAnd(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_logical_and", name, lhs, rhs);
    }

    /**
     * broadcast_logical_or.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where either is nonzero, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastLogicalOr(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_logical_or", name, lhs, rhs);
    }

    /**
     * broadcast_logical_xor.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return 1 where exactly one is nonzero, else 0 (zero gradient), in the inputs' dtype
     */
    public static Symbol broadcastLogicalXor(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_logical_xor", name, lhs, rhs);
    }

    /**
     * broadcast_mod.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return lhs mod rhs with the sign of rhs (Python's %), 0 where rhs is 0, in the inputs' dtype
     */
    public static Symbol broadcastMod(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_mod", name, lhs, rhs);
    }

    /**
     * broadcast_hypot.
     *
     * @param name node name or null
     * @param lhs first input
     * @param rhs second input, broadcastable with lhs
     * @return sqrt(lhs^2 + rhs^2), in the inputs' dtype
     */
    public static Symbol broadcastHypot(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_hypot", name, lhs, rhs);
    }

    private static Symbol reduce(String op, String name, Symbol data, Object axis, Boolean keepdims, Boolean exclude) {
        return builder(op).name(name).input(data).param("axis", axis).param("keepdims", keepdims)
                .param("exclude", exclude).build();
    }

    /**
     * prod over several axes (all when {@code axes} is null or empty).
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axis} tuple, or null
     * @param keepdims {@code keepdims}
     * @return the product of the elements of each reduced group
     */
    public static Symbol prod(String name, Symbol data, int[] axes, boolean keepdims) {
        return reduce("prod", name, data, axes, keepdims, null);
    }

    /**
     * nansum over several axes (all when {@code axes} is null or empty): NaN counts as 0.
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axis} tuple, or null
     * @param keepdims {@code keepdims}
     * @return the sum of the non-NaN elements of each reduced group
     */
    public static Symbol nansum(String name, Symbol data, int[] axes, boolean keepdims) {
        return reduce("nansum", name, data, axes, keepdims, null);
    }

    /**
     * nanprod over several axes (all when {@code axes} is null or empty): NaN counts as 1.
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axis} tuple, or null
     * @param keepdims {@code keepdims}
     * @return the product of the non-NaN elements of each reduced group
     */
    public static Symbol nanprod(String name, Symbol data, int[] axes, boolean keepdims) {
        return reduce("nanprod", name, data, axes, keepdims, null);
    }

    /**
     * norm: the L1 ({@code ord = 1}) or L2 ({@code ord = 2}) norm over several axes (all when
     * {@code axes} is null or empty).
     *
     * @param name node name or null
     * @param data input
     * @param ord 1 or 2
     * @param axes {@code axis} tuple, or null
     * @param keepdims {@code keepdims}
     * @return the norm of each reduced group
     */
    public static Symbol norm(String name, Symbol data, int ord, int[] axes, boolean keepdims) {
        return builder("norm").name(name).input(data).param("ord", ord).param("axis", axes).param("keepdims", keepdims)
                .build();
    }

    /**
     * sum over all elements.
     *
     * @param name node name or null
     * @param data input
     * @return shape (1,)
     */
    public static Symbol sum(String name, Symbol data) {
        return reduce("sum", name, data, null, null, null);
    }

    /**
     * sum over one axis.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param keepdims {@code keepdims}: keep the reduced axis with size 1
     * @return the reduction
     */
    public static Symbol sum(String name, Symbol data, int axis, boolean keepdims) {
        return reduce("sum", name, data, axis, keepdims, null);
    }

    /**
     * sum over several axes.
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axis} tuple
     * @param keepdims {@code keepdims}
     * @param exclude {@code exclude}: reduce over the axes not listed
     * @return the reduction
     */
    public static Symbol sum(String name, Symbol data, int[] axes, boolean keepdims, boolean exclude) {
        return reduce("sum", name, data, axes, keepdims, exclude);
    }

    /**
     * mean over all elements.
     *
     * @param name node name or null
     * @param data input
     * @return shape (1,)
     */
    public static Symbol mean(String name, Symbol data) {
        return reduce("mean", name, data, null, null, null);
    }

    /**
     * mean over one axis.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param keepdims {@code keepdims}
     * @return the reduction
     */
    public static Symbol mean(String name, Symbol data, int axis, boolean keepdims) {
        return reduce("mean", name, data, axis, keepdims, null);
    }

    /**
     * mean over several axes.
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axis}
     * @param keepdims {@code keepdims}
     * @param exclude {@code exclude}
     * @return the reduction
     */
    public static Symbol mean(String name, Symbol data, int[] axes, boolean keepdims, boolean exclude) {
        return reduce("mean", name, data, axes, keepdims, exclude);
    }

    /**
     * max over all elements.
     *
     * @param name node name or null
     * @param data input
     * @return shape (1,)
     */
    public static Symbol max(String name, Symbol data) {
        return reduce("max", name, data, null, null, null);
    }

    /**
     * max over one axis.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param keepdims {@code keepdims}
     * @return the reduction
     */
    public static Symbol max(String name, Symbol data, int axis, boolean keepdims) {
        return reduce("max", name, data, axis, keepdims, null);
    }

    /**
     * max over several axes.
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axis}
     * @param keepdims {@code keepdims}
     * @param exclude {@code exclude}
     * @return the reduction
     */
    public static Symbol max(String name, Symbol data, int[] axes, boolean keepdims, boolean exclude) {
        return reduce("max", name, data, axes, keepdims, exclude);
    }

    /**
     * min over all elements.
     *
     * @param name node name or null
     * @param data input
     * @return shape (1,)
     */
    public static Symbol min(String name, Symbol data) {
        return reduce("min", name, data, null, null, null);
    }

    /**
     * min over one axis.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param keepdims {@code keepdims}
     * @return the reduction
     */
    public static Symbol min(String name, Symbol data, int axis, boolean keepdims) {
        return reduce("min", name, data, axis, keepdims, null);
    }

    /**
     * min over several axes.
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axis}
     * @param keepdims {@code keepdims}
     * @param exclude {@code exclude}
     * @return the reduction
     */
    public static Symbol min(String name, Symbol data, int[] axes, boolean keepdims, boolean exclude) {
        return reduce("min", name, data, axes, keepdims, exclude);
    }

    /**
     * Dropout with p = 0.5 (active in training only).
     *
     * @param name node name or null
     * @param data input
     * @return same shape
     */
    public static Symbol dropout(String name, Symbol data) {
        return builder("Dropout").name(name).input(data).build();
    }

    /**
     * Dropout with drop probability {@code p}.
     *
     * @param name node name or null
     * @param data input
     * @param p {@code p} in [0, 1]
     * @return same shape
     */
    public static Symbol dropout(String name, Symbol data, double p) {
        return builder("Dropout").name(name).input(data).param("p", p).build();
    }

    /**
     * Dropout with {@code p} and {@code mode} ({@code training} or {@code always}).
     *
     * @param name node name or null
     * @param data input
     * @param p {@code p}
     * @param mode {@code mode}
     * @return same shape
     */
    public static Symbol dropout(String name, Symbol data, double p, String mode) {
        return builder("Dropout").name(name).input(data).param("p", p).param("mode", mode).build();
    }

    // ---- creation and random sampling (ops/index/creation.cc, ops/random/random.cc) -------------

    /**
     * {@code _ones}: an array of ones; a 0 dimension is inferred from the consumers.
     *
     * @param name node name or null
     * @param dtype output type (DType or its MXNet name), or null for float32
     * @param shape the output's shape
     * @return the array
     */
    public static Symbol ones(String name, Object dtype, long... shape) {
        return builder("_ones").name(name).param("shape", shape).param("dtype", dtype).build();
    }

    /**
     * {@code _full}: an array filled with {@code value} (converted to the output type).
     *
     * @param name node name or null
     * @param value the fill value
     * @param dtype output type (DType or its MXNet name), or null for float32
     * @param shape the output's shape
     * @return the array
     */
    public static Symbol full(String name, double value, Object dtype, long... shape) {
        return builder("_full").name(name).param("value", value).param("shape", shape).param("dtype", dtype).build();
    }

    /**
     * {@code _eye}: an {@code n x m} array with ones on diagonal {@code k} (above the main one for
     * k &gt; 0, below for k &lt; 0) and zeros elsewhere.
     *
     * @param name node name or null
     * @param n rows
     * @param m columns, 0 for {@code n}
     * @param k the diagonal
     * @param dtype output type (DType or its MXNet name), or null for float32
     * @return [n, m]
     */
    public static Symbol eye(String name, long n, long m, long k, Object dtype) {
        return builder("_eye").name(name).param("N", n).param("M", m).param("k", k).param("dtype", dtype).build();
    }

    /**
     * {@code _linspace}: {@code num} evenly spaced values from {@code start}, reaching {@code stop}
     * with the endpoint, stopping one step short of it without.
     *
     * @param name node name or null
     * @param start first value
     * @param stop last value (endpoint) or end of the interval
     * @param num number of values (&gt;= 0)
     * @param endpoint whether stop is included
     * @param dtype output type (DType or its MXNet name), or null for float32
     * @return [num]
     */
    public static Symbol linspace(String name, double start, double stop, long num, boolean endpoint, Object dtype) {
        return builder("_linspace").name(name).param("start", start).param("stop", stop).param("num", num)
                .param("endpoint", endpoint).param("dtype", dtype).build();
    }

    /**
     * {@code _random_uniform}: samples uniform in [low, high), from the executor's seeded generator.
     *
     * @param name node name or null
     * @param low lower bound
     * @param high upper bound (&gt;= low)
     * @param dtype float16/float32/float64 (DType or name), or null for float32
     * @param shape the output's shape
     * @return the samples
     */
    public static Symbol randomUniform(String name, double low, double high, Object dtype, long... shape) {
        return builder("_random_uniform").name(name).param("low", low).param("high", high).param("shape", shape)
                .param("dtype", dtype).build();
    }

    /**
     * {@code _random_normal}: normal samples of mean {@code loc} and standard deviation {@code scale}.
     *
     * @param name node name or null
     * @param loc mean
     * @param scale standard deviation (&gt; 0)
     * @param dtype float16/float32/float64 (DType or name), or null for float32
     * @param shape the output's shape
     * @return the samples
     */
    public static Symbol randomNormal(String name, double loc, double scale, Object dtype, long... shape) {
        return builder("_random_normal").name(name).param("loc", loc).param("scale", scale).param("shape", shape)
                .param("dtype", dtype).build();
    }

    /**
     * {@code _random_randint}: integers uniform in [low, high).
     *
     * @param name node name or null
     * @param low lower bound
     * @param high upper bound (&gt; low)
     * @param dtype int32 or int64 (DType or name), or null for int32
     * @param shape the output's shape
     * @return the samples
     */
    public static Symbol randomRandint(String name, long low, long high, Object dtype, long... shape) {
        return builder("_random_randint").name(name).param("low", low).param("high", high).param("shape", shape)
                .param("dtype", dtype).build();
    }

    /**
     * {@code _random_exponential}: exponential samples of rate {@code lam} (mean 1 / lam).
     *
     * @param name node name or null
     * @param lam rate (&gt; 0)
     * @param dtype float16/float32/float64 (DType or name), or null for float32
     * @param shape the output's shape
     * @return the samples
     */
    public static Symbol randomExponential(String name, double lam, Object dtype, long... shape) {
        return builder("_random_exponential").name(name).param("lam", lam).param("shape", shape).param("dtype", dtype).build();
    }

    /**
     * {@code _random_gamma}: gamma samples of shape {@code alpha} and scale {@code beta} (mean alpha * beta).
     *
     * @param name node name or null
     * @param alpha shape (&gt; 0)
     * @param beta scale (&gt; 0)
     * @param dtype float16/float32/float64 (DType or name), or null for float32
     * @param shape the output's shape
     * @return the samples
     */
    public static Symbol randomGamma(String name, double alpha, double beta, Object dtype, long... shape) {
        return builder("_random_gamma").name(name).param("alpha", alpha).param("beta", beta).param("shape", shape)
                .param("dtype", dtype).build();
    }

    /**
     * {@code _random_poisson}: Poisson samples of rate {@code lam}, as floating point values.
     *
     * @param name node name or null
     * @param lam rate (&gt;= 0)
     * @param dtype float16/float32/float64 (DType or name), or null for float32
     * @param shape the output's shape
     * @return the samples
     */
    public static Symbol randomPoisson(String name, double lam, Object dtype, long... shape) {
        return builder("_random_poisson").name(name).param("lam", lam).param("shape", shape).param("dtype", dtype).build();
    }

    /**
     * {@code _random_uniform_like}: uniform samples in [low, high) with the shape and type of
     * {@code data} (whose values are not read; its gradient is zero).
     *
     * @param name node name or null
     * @param data the array whose shape and type the samples take
     * @param low lower bound
     * @param high upper bound (&gt;= low)
     * @return the samples
     */
    public static Symbol randomUniformLike(String name, Symbol data, double low, double high) {
        return builder("_random_uniform_like").name(name).input(data).param("low", low).param("high", high).build();
    }

    /**
     * {@code _random_normal_like}: normal samples with the shape and type of {@code data}.
     *
     * @param name node name or null
     * @param data the array whose shape and type the samples take
     * @param loc mean
     * @param scale standard deviation (&gt; 0)
     * @return the samples
     */
    public static Symbol randomNormalLike(String name, Symbol data, double loc, double scale) {
        return builder("_random_normal_like").name(name).input(data).param("loc", loc).param("scale", scale).build();
    }

    /**
     * {@code _shuffle}: the rows of {@code data} (axis 0) in a random order; not differentiable.
     *
     * @param name node name or null
     * @param data input
     * @return same shape and type
     */
    public static Symbol shuffle(String name, Symbol data) {
        return builder("_shuffle").name(name).input(data).build();
    }

    /**
     * BlockGrad: identity forward, zero gradient.
     *
     * @param name node name or null
     * @param data input
     * @return data
     */
    public static Symbol blockGrad(String name, Symbol data) {
        return unary("BlockGrad", name, data);
    }

    /**
     * stop_gradient (alias of BlockGrad; auto name {@code stop_gradient<n>}).
     *
     * @param name node name or null
     * @param data input
     * @return data
     */
    public static Symbol stopGradient(String name, Symbol data) {
        return builder("BlockGrad").hint("stop_gradient").name(name).input(data).build();
    }

    /**
     * identity (copy).
     *
     * @param name node name or null
     * @param data input
     * @return data
     */
    public static Symbol identity(String name, Symbol data) {
        return unary("identity", name, data);
    }

    /**
     * Concat along axis 1; {@code num_args} is set to the number of inputs.
     *
     * @param name node name or null
     * @param inputs the inputs (same shape except on the axis)
     * @return the concatenation
     */
    public static Symbol concat(String name, Symbol... inputs) {
        return builder("Concat").name(name).inputs(inputs).build();
    }

    /**
     * Concat along {@code dim}.
     *
     * @param name node name or null
     * @param dim {@code dim}
     * @param inputs the inputs
     * @return the concatenation
     */
    public static Symbol concat(String name, int dim, Symbol... inputs) {
        return builder("Concat").name(name).inputs(inputs).param("dim", dim).build();
    }

    /**
     * SliceChannel: splits along axis 1 into {@code num_outputs} equal parts (outputs {@code
     * <name>_output0...}).
     *
     * @param name node name or null
     * @param data input
     * @param numOutputs {@code num_outputs}
     * @return a symbol with {@code numOutputs} outputs
     */
    public static Symbol sliceChannel(String name, Symbol data, int numOutputs) {
        return builder("SliceChannel").name(name).input(data).param("num_outputs", numOutputs).build();
    }

    /**
     * SliceChannel along {@code axis}, optionally dropping it ({@code squeeze_axis}).
     *
     * @param name node name or null
     * @param data input
     * @param numOutputs {@code num_outputs}
     * @param axis {@code axis}
     * @param squeezeAxis {@code squeeze_axis}
     * @return a symbol with {@code numOutputs} outputs
     */
    public static Symbol sliceChannel(String name, Symbol data, int numOutputs, int axis, boolean squeezeAxis) {
        return builder("SliceChannel").name(name).input(data).param("num_outputs", numOutputs).param("axis", axis)
                .param("squeeze_axis", squeezeAxis).build();
    }

    /**
     * ElementWiseSum of same-shape inputs; {@code num_args} is set automatically.
     *
     * @param name node name or null
     * @param inputs the inputs
     * @return their sum
     */
    public static Symbol elementWiseSum(String name, Symbol... inputs) {
        return builder("ElementWiseSum").name(name).inputs(inputs).build();
    }

    /**
     * add_n (alias of ElementWiseSum; auto name {@code add_n<n>}).
     *
     * @param name node name or null
     * @param inputs the inputs
     * @return their sum
     */
    public static Symbol addN(String name, Symbol... inputs) {
        return builder("add_n").name(name).inputs(inputs).build();
    }

    /**
     * transpose reversing the axes.
     *
     * @param name node name or null
     * @param data input
     * @return the transpose
     */
    public static Symbol transpose(String name, Symbol data) {
        return builder("transpose").name(name).input(data).build();
    }

    /**
     * transpose with an axis permutation.
     *
     * @param name node name or null
     * @param data input
     * @param axes {@code axes}
     * @return the permuted input
     */
    public static Symbol transpose(String name, Symbol data, int... axes) {
        return builder("transpose").name(name).input(data).param("axes", axes).build();
    }

    /**
     * expand_dims: inserts an axis of size 1.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @return the input with one more axis
     */
    public static Symbol expandDims(String name, Symbol data, int axis) {
        return builder("expand_dims").name(name).input(data).param("axis", axis).build();
    }

    /**
     * broadcast_to: broadcasts size-1 dims to {@code shape} (same rank; 0 keeps a dim).
     *
     * @param name node name or null
     * @param data input
     * @param shape {@code shape}, e.g. {@code 4, 0, 3}
     * @return the broadcast input
     */
    public static Symbol broadcastTo(String name, Symbol data, long... shape) {
        return builder("broadcast_to").name(name).input(data).param("shape", shape).build();
    }

    /**
     * broadcast_like: broadcasts {@code lhs} to the shape of {@code rhs} (same rank).
     *
     * @param name node name or null
     * @param lhs input
     * @param rhs array lending its shape (its values are not read; it gets a zero gradient)
     * @return lhs broadcast to rhs's shape
     */
    public static Symbol broadcastLike(String name, Symbol lhs, Symbol rhs) {
        return binary("broadcast_like", name, lhs, rhs);
    }

    /**
     * broadcast_like on chosen axes: lhs axis {@code lhsAxes[k]} (of size 1) takes the size of rhs
     * axis {@code rhsAxes[k]}.
     *
     * @param name node name or null
     * @param lhs input
     * @param rhs array lending its shape
     * @param lhsAxes {@code lhs_axes}
     * @param rhsAxes {@code rhs_axes}
     * @return the broadcast lhs
     */
    public static Symbol broadcastLike(String name, Symbol lhs, Symbol rhs, int[] lhsAxes, int[] rhsAxes) {
        return builder("broadcast_like").name(name).input(lhs).input(rhs).param("lhs_axes", lhsAxes)
                .param("rhs_axes", rhsAxes).build();
    }

    /**
     * broadcast_axis (broadcast_axes): axis {@code axis[k]} (of size 1) becomes {@code size[k]}.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @param size {@code size}
     * @return the broadcast input
     */
    public static Symbol broadcastAxis(String name, Symbol data, int[] axis, long[] size) {
        return builder("broadcast_axis").name(name).input(data).param("axis", axis).param("size", size).build();
    }

    /**
     * squeeze: removes every size-1 dim ({@code (1, 1)} gives {@code (1,)}).
     *
     * @param name node name or null
     * @param data input
     * @return the input without its size-1 dims
     */
    public static Symbol squeeze(String name, Symbol data) {
        return unary("squeeze", name, data);
    }

    /**
     * squeeze of chosen size-1 dims ({@code axis}; a dim of another size is an error).
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}, negative values from the end
     * @return the input without those dims
     */
    public static Symbol squeeze(String name, Symbol data, int... axis) {
        return builder("squeeze").name(name).input(data).param("axis", axis).build();
    }

    /**
     * SwapAxis (swapaxes): interchanges two axes.
     *
     * @param name node name or null
     * @param data input
     * @param dim1 {@code dim1}, negative values from the end
     * @param dim2 {@code dim2}, negative values from the end
     * @return the input with the two axes exchanged
     */
    public static Symbol swapaxes(String name, Symbol data, int dim1, int dim2) {
        return builder("SwapAxis").name(name).input(data).param("dim1", dim1).param("dim2", dim2).build();
    }

    /**
     * reverse: the elements in reverse order along {@code axis} (an axis named twice is not reversed).
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}, negative values from the end
     * @return the reversed input
     */
    public static Symbol reverse(String name, Symbol data, int... axis) {
        return builder("reverse").name(name).input(data).param("axis", axis).build();
    }

    /**
     * flip: MXNet's alias of {@link #reverse}.
     *
     * @param name node name or null
     * @param data input
     * @param axis {@code axis}
     * @return the reversed input
     */
    public static Symbol flip(String name, Symbol data, int... axis) {
        return reverse(name, data, axis);
    }

    /**
     * reshape_like: {@code lhs} with the shape of {@code rhs} (same element count).
     *
     * @param name node name or null
     * @param lhs input
     * @param rhs array lending its shape (its values are not read; it gets a zero gradient)
     * @return the reshaped lhs
     */
    public static Symbol reshapeLike(String name, Symbol lhs, Symbol rhs) {
        return binary("reshape_like", name, lhs, rhs);
    }

    /**
     * reshape_like of part of the dims: lhs dims [lhsBegin, lhsEnd) become rhs dims [rhsBegin,
     * rhsEnd); null leaves a bound at its default (0 or the rank), negative values count from the end.
     *
     * @param name node name or null
     * @param lhs input
     * @param rhs array lending its shape
     * @param lhsBegin {@code lhs_begin} or null
     * @param lhsEnd {@code lhs_end} or null
     * @param rhsBegin {@code rhs_begin} or null
     * @param rhsEnd {@code rhs_end} or null
     * @return the reshaped lhs
     */
    public static Symbol reshapeLike(String name, Symbol lhs, Symbol rhs, Integer lhsBegin, Integer lhsEnd,
            Integer rhsBegin, Integer rhsEnd) {
        return builder("reshape_like").name(name).input(lhs).input(rhs).param("lhs_begin", lhsBegin)
                .param("lhs_end", lhsEnd).param("rhs_begin", rhsBegin).param("rhs_end", rhsEnd).build();
    }

    /**
     * slice_like: the leading part of {@code data} as large as {@code shapeLike} on {@code axes}
     * (every axis when none are given; the ranks must then match).
     *
     * @param name node name or null
     * @param data input
     * @param shapeLike array lending its shape (its values are not read; it gets a zero gradient)
     * @param axes {@code axes}, negative values from the end
     * @return the sliced data
     */
    public static Symbol sliceLike(String name, Symbol data, Symbol shapeLike, int... axes) {
        return builder("slice_like").name(name).input(data).input(shapeLike).param("axes", axes).build();
    }

    /**
     * shape_array: the shape of {@code data} as an int64 array of shape {@code (ndim,)} (no gradient
     * flows through it).
     *
     * @param name node name or null
     * @param data input (only its shape is read)
     * @return the shape
     */
    public static Symbol shapeArray(String name, Symbol data) {
        return unary("shape_array", name, data);
    }

    /**
     * size_array: the element count of {@code data} as an int64 array of shape {@code (1,)}.
     *
     * @param name node name or null
     * @param data input (only its shape is read)
     * @return the size
     */
    public static Symbol sizeArray(String name, Symbol data) {
        return unary("size_array", name, data);
    }

    /**
     * depth_to_space (NCHW, MXNet's DCR order): {@code (N, C, H, W)} to
     * {@code (N, C / b², H·b, W·b)}.
     *
     * @param name node name or null
     * @param data input
     * @param blockSize {@code block_size}
     * @return the rearranged input
     */
    public static Symbol depthToSpace(String name, Symbol data, int blockSize) {
        return builder("depth_to_space").name(name).input(data).param("block_size", blockSize).build();
    }

    /**
     * space_to_depth (NCHW, the inverse of depth_to_space): {@code (N, C, H, W)} to
     * {@code (N, C·b², H / b, W / b)}.
     *
     * @param name node name or null
     * @param data input
     * @param blockSize {@code block_size}
     * @return the rearranged input
     */
    public static Symbol spaceToDepth(String name, Symbol data, int blockSize) {
        return builder("space_to_depth").name(name).input(data).param("block_size", blockSize).build();
    }

    /**
     * dot (matrix product).
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @return lhs · rhs
     */
    public static Symbol dot(String name, Symbol lhs, Symbol rhs) {
        return binary("dot", name, lhs, rhs);
    }

    /**
     * dot with transposed operands.
     *
     * @param name node name or null
     * @param lhs left
     * @param rhs right
     * @param transposeA {@code transpose_a}
     * @param transposeB {@code transpose_b}
     * @return the product
     */
    public static Symbol dot(String name, Symbol lhs, Symbol rhs, boolean transposeA, boolean transposeB) {
        return builder("dot").name(name).input(lhs).input(rhs).param("transpose_a", transposeA)
                .param("transpose_b", transposeB).build();
    }

    /**
     * MakeLoss: marks {@code data} as a loss (gradient 1·grad_scale).
     *
     * @param name node name or null
     * @param data the loss
     * @return data
     */
    public static Symbol makeLoss(String name, Symbol data) {
        return unary("MakeLoss", name, data);
    }

    /**
     * MakeLoss with {@code grad_scale} and {@code normalization} ({@code null}, {@code batch}, {@code valid}).
     *
     * @param name node name or null
     * @param data the loss
     * @param gradScale {@code grad_scale}
     * @param normalization {@code normalization}, or null for the default
     * @return data
     */
    public static Symbol makeLoss(String name, Symbol data, double gradScale, String normalization) {
        return builder("MakeLoss").name(name).input(data).param("grad_scale", gradScale)
                .param("normalization", normalization).build();
    }

    // =========================================================================================

    /**
     * MXNet's repr: {@code <Symbol fc1>} or {@code <Symbol group [a, b]>}.
     *
     * @return the description
     */
    @Override
    public String toString() {
        if (outputs.size() == 1) {
            return "<Symbol " + outputs.get(0).node().name + ">";
        }
        List<String> names = new ArrayList<>();
        for (NodeEntry e : outputs) {
            names.add(e.node().name);
        }
        return "<Symbol group " + names + ">";
    }
}
