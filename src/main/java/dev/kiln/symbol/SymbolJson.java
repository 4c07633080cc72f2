package dev.kiln.symbol;

import dev.kiln.internal.Json;
import dev.kiln.op.OpInfo;
import dev.kiln.op.Ops;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads and writes MXNet symbol JSON (module-api spec §7.1). Package-private; used through
 * {@link Symbol#fromJson(String)} and {@link Symbol#toJson()}. Stateless and thread-safe.
 *
 * <p>Reading follows nnvm's {@code LoadJSON} plus MXNet's {@code LoadLegacyJSON} upgrades:
 * <ul>
 *   <li>top-level fields {@code nodes}, {@code arg_nodes}, {@code heads} required,
 *       {@code node_row_ptr}, {@code attrs} optional, anything else rejected;</li>
 *   <li>node fields {@code op}, {@code name}, {@code inputs} required; {@code attrs}, {@code
 *       attr}, {@code param} merged into the attributes; {@code control_deps}, {@code
 *       backward_source_id} optional; {@code subgraphs} rejected (control-flow operators are
 *       not supported); anything else rejected;</li>
 *   <li>entries {@code [node, index]} or {@code [node, index, version]}; an input must refer to
 *       an earlier node (files are in post-order), which also rules out cycles;</li>
 *   <li>missing {@code mxnet_version} means 0.8.0; files older than 1.9.0 get the hidden-key fix
 *       ({@code lr_mult} to {@code __lr_mult__}, {@code weight_lr_mult} on an operator moved to
 *       its weight variable), pre-0.9.0 files get their missing auxiliary-state variables,
 *       pre-0.9.4 files the initializer hints, pre-0.9.5 files lose argmax/argmin
 *       {@code axis=-1}.</li>
 * </ul>
 */
final class SymbolJson {
    private SymbolJson() {}

    private static final Set<String> TOP_KEYS = Set.of("nodes", "arg_nodes", "node_row_ptr", "heads", "attrs");
    private static final Set<String> NODE_KEYS = Set.of("op", "name", "inputs", "attrs", "attr", "param",
            "control_deps", "subgraphs", "backward_source_id");

    private static final class RawEntry {
        final RawNode node;
        final int index;
        final int version;

        RawEntry(RawNode node, int index, int version) {
            this.node = node;
            this.index = index;
            this.version = version;
        }
    }

    private static final class RawNode {
        final int id; // -1 for variables created by the upgrade
        final String op;
        final String name;
        final Map<String, String> attrs = new LinkedHashMap<>();
        final List<RawEntry> inputs = new ArrayList<>();
        final List<RawNode> controlDeps = new ArrayList<>();
        OpInfo info;
        Node built;

        RawNode(int id, String op, String name) {
            this.id = id;
            this.op = op;
            this.name = name;
        }

        boolean isVariable() {
            return "null".equals(op);
        }

        String what() {
            return id >= 0 ? "symbol JSON: node " + id + " ('" + name + "')" : "symbol JSON: variable '" + name + "'";
        }
    }

    // =========================================================================================
    // Reading
    // =========================================================================================

    static Symbol parse(String text) {
        Map<String, Object> top = Json.asObject(Json.parse(text), "symbol JSON");
        for (String k : top.keySet()) {
            if (!TOP_KEYS.contains(k)) {
                throw new IllegalArgumentException("symbol JSON: unknown top-level field \"" + k
                        + "\" (expected nodes, arg_nodes, node_row_ptr, heads, attrs)");
            }
        }
        for (String k : List.of("nodes", "arg_nodes", "heads")) {
            if (!top.containsKey(k)) {
                throw new IllegalArgumentException("symbol JSON: missing field \"" + k + "\"");
            }
        }
        int version = readVersion(top.get("attrs"));

        List<Object> nodesJson = Json.asArray(top.get("nodes"), "symbol JSON: nodes");
        if (nodesJson.isEmpty()) {
            throw new IllegalArgumentException("symbol JSON: \"nodes\" is empty");
        }
        List<RawNode> raw = new ArrayList<>(nodesJson.size());
        for (int i = 0; i < nodesJson.size(); i++) {
            raw.add(parseNode(i, nodesJson.get(i), raw, nodesJson.size()));
        }

        for (Object o : Json.asArray(top.get("arg_nodes"), "symbol JSON: arg_nodes")) {
            long id = Json.asLong(o, "symbol JSON: arg_nodes entry");
            if (id < 0 || id >= raw.size()) {
                throw new IllegalArgumentException("symbol JSON: arg_nodes lists node " + id + ", which does not exist ("
                        + raw.size() + " nodes)");
            }
            RawNode n = raw.get((int) id);
            if (!n.isVariable()) {
                throw new IllegalArgumentException("symbol JSON: arg_nodes lists node " + id + " ('" + n.name
                        + "'), which is not a variable (op " + n.op + ")");
            }
        }
        if (top.get("node_row_ptr") != null) {
            for (Object o : Json.asArray(top.get("node_row_ptr"), "symbol JSON: node_row_ptr")) {
                Json.asLong(o, "symbol JSON: node_row_ptr entry");
            }
        }
        List<RawEntry> heads = new ArrayList<>();
        for (Object o : Json.asArray(top.get("heads"), "symbol JSON: heads")) {
            heads.add(parseEntry(o, raw, raw.size(), raw.size(), "symbol JSON: heads"));
        }
        if (heads.isEmpty()) {
            throw new IllegalArgumentException("symbol JSON: \"heads\" is empty");
        }

        upgradeAndResolve(raw, version);

        List<NodeEntry> outs = new ArrayList<>();
        for (RawNode n : raw) {
            build(n);
        }
        for (RawEntry h : heads) {
            outs.add(entry(h, "symbol JSON: heads"));
        }
        return new Symbol(outs);
    }

    private static int readVersion(Object attrs) {
        if (attrs == null) {
            return 800;
        }
        Map<String, Object> a = Json.asObject(attrs, "symbol JSON: attrs");
        Object v = a.get("mxnet_version");
        if (v == null) {
            return 800;
        }
        List<Object> typed = Json.asArray(v, "symbol JSON: attrs.mxnet_version");
        if (typed.size() != 2 || !"int".equals(typed.get(0))) {
            throw new IllegalArgumentException("symbol JSON: attrs.mxnet_version must be [\"int\", N], got " + Json.write(typed));
        }
        long ver = Json.asLong(typed.get(1), "symbol JSON: attrs.mxnet_version");
        if (ver < 0 || ver > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("symbol JSON: attrs.mxnet_version " + ver + " is out of range");
        }
        return (int) ver;
    }

    private static RawNode parseNode(int id, Object json, List<RawNode> earlier, int total) {
        String where = "symbol JSON: node " + id;
        Map<String, Object> o = Json.asObject(json, where);
        for (String k : o.keySet()) {
            if (!NODE_KEYS.contains(k)) {
                throw new IllegalArgumentException(where + ": unknown field \"" + k + "\"");
            }
        }
        for (String k : List.of("op", "name", "inputs")) {
            if (!o.containsKey(k)) {
                throw new IllegalArgumentException(where + ": missing field \"" + k + "\"");
            }
        }
        String op = Json.asString(o.get("op"), where + ".op");
        String name = Json.asString(o.get("name"), where + ".name");
        if (op.isEmpty()) {
            throw new IllegalArgumentException(where + " ('" + name + "'): empty op name");
        }
        RawNode n = new RawNode(id, op, name);
        String what = n.what();
        Map<String, String> param = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : o.entrySet()) {
            switch (e.getKey()) {
                case "attrs":
                case "attr":
                    n.attrs.putAll(stringMap(e.getValue(), what + "." + e.getKey()));
                    break;
                case "param":
                    param.putAll(stringMap(e.getValue(), what + ".param"));
                    break;
                case "backward_source_id":
                    Json.asLong(e.getValue(), what + ".backward_source_id");
                    break;
                case "subgraphs":
                    if (!Json.asArray(e.getValue(), what + ".subgraphs").isEmpty()) {
                        throw new IllegalArgumentException(what + ": subgraphs (control-flow operators such as "
                                + op + ") are not supported");
                    }
                    break;
                case "control_deps":
                    for (Object d : Json.asArray(e.getValue(), what + ".control_deps")) {
                        long dep = Json.asLong(d, what + ".control_deps entry");
                        n.controlDeps.add(earlier.get(checkRef(dep, id, total, what + ": control dependency")));
                    }
                    break;
                default:
                    break;
            }
        }
        for (Map.Entry<String, String> e : param.entrySet()) {
            n.attrs.putIfAbsent(e.getKey(), e.getValue());
        }
        for (Object in : Json.asArray(o.get("inputs"), what + ".inputs")) {
            n.inputs.add(parseEntry(in, earlier, id, total, what));
        }
        return n;
    }

    private static Map<String, String> stringMap(Object v, String what) {
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : Json.asObject(v, what).entrySet()) {
            out.put(e.getKey(), Json.asString(e.getValue(), what + "." + e.getKey()));
        }
        return out;
    }

    private static int checkRef(long ref, int selfId, int total, String what) {
        if (ref < 0 || ref >= total) {
            throw new IllegalArgumentException(what + " refers to node " + ref + ", which does not exist (" + total
                    + " nodes)");
        }
        if (ref >= selfId) {
            throw new IllegalArgumentException(what + " refers to node " + ref
                    + ", which does not come before it (forward reference or cycle)");
        }
        return (int) ref;
    }

    private static RawEntry parseEntry(Object json, List<RawNode> earlier, int selfId, int total, String what) {
        List<Object> l = Json.asArray(json, what + ": input entry");
        if (l.size() < 2 || l.size() > 3) {
            throw new IllegalArgumentException(what + ": an entry must be [node, index] or [node, index, version], got "
                    + Json.write(l));
        }
        long ref = Json.asLong(l.get(0), what + ": entry node");
        long index = Json.asLong(l.get(1), what + ": entry index");
        long version = l.size() == 3 ? Json.asLong(l.get(2), what + ": entry version") : 0;
        int nid = checkRef(ref, selfId, total, what + ": entry " + Json.write(l));
        if (index < 0 || index > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + ": entry " + Json.write(l) + " has an invalid output index");
        }
        if (version < 0 || version > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(what + ": entry " + Json.write(l) + " has an invalid version");
        }
        return new RawEntry(earlier.get(nid), (int) index, (int) version);
    }

    /** Attributes the operator's parameter parser sees: no hidden keys, no legacy hidden-key patterns. */
    private static Map<String, String> paramAttrs(Map<String, String> attrs) {
        Map<String, String> p = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : attrs.entrySet()) {
            if (!Ops.isHiddenKey(e.getKey()) && !SymbolAttrs.isLegacyHiddenPattern(e.getKey())) {
                p.put(e.getKey(), e.getValue());
            }
        }
        return p;
    }

    private static void upgradeAndResolve(List<RawNode> raw, int version) {
        boolean fixParsing = version < Symbol.MXNET_VERSION;
        for (RawNode n : raw) {
            List<Map.Entry<String, String>> hidden = new ArrayList<>();
            if (fixParsing) {
                for (Map.Entry<String, String> e : new ArrayList<>(n.attrs.entrySet())) {
                    if (!Ops.isHiddenKey(e.getKey()) && SymbolAttrs.isLegacyHiddenPattern(e.getKey())) {
                        hidden.add(Map.entry(e.getKey(), e.getValue()));
                        n.attrs.remove(e.getKey());
                    }
                }
            }
            if (!n.isVariable()) {
                n.info = Ops.info(n.op, paramAttrs(n.attrs));
            }
            for (Map.Entry<String, String> kv : hidden) {
                if (!restoreHiddenKey(n, kv.getKey(), kv.getValue())) {
                    n.attrs.put(kv.getKey(), kv.getValue());
                }
            }
        }
        if (version < 900) {
            // aux variables are not stored in json before 0.9.0
            for (RawNode n : raw) {
                if (n.isVariable()) {
                    continue;
                }
                List<String> argNames = n.info.inputs();
                for (int i = n.inputs.size(); i < argNames.size(); i++) {
                    String varName = n.name.isEmpty() ? argNames.get(i) : n.name + "_" + argNames.get(i);
                    RawNode v = new RawNode(-1, "null", varName);
                    v.attrs.putAll(n.attrs);
                    n.inputs.add(new RawEntry(v, 0, 0));
                }
            }
        }
        if (version < 904) {
            for (RawNode n : raw) {
                if (n.isVariable()) {
                    continue;
                }
                for (int i = 0; i < n.inputs.size(); i++) {
                    RawNode in = n.inputs.get(i).node;
                    if (in.isVariable()) {
                        Symbol.applyInputVarHook(n.info.name(), i, in.attrs);
                    }
                }
            }
        }
        if (version < 905) {
            for (RawNode n : raw) {
                if (!n.isVariable() && ("argmax".equals(n.info.name()) || "argmin".equals(n.info.name()))
                        && "-1".equals(n.attrs.get("axis"))) {
                    n.attrs.remove("axis");
                    n.info = Ops.info(n.op, paramAttrs(n.attrs));
                }
            }
        }
    }

    /** MXNet's UpgradeJSON_FixParsing "add back removed hidden keys" step; false = keep the key as is. */
    private static boolean restoreHiddenKey(RawNode n, String k, String v) {
        for (String key : SymbolAttrs.HIDDEN_KEYS) {
            int pos = k.lastIndexOf(key);
            if (pos == 0 && key.length() == k.length()) {
                n.attrs.put("__" + key + "__", v);
                return true;
            } else if (pos > 1 && pos == k.length() - key.length()) {
                if (n.isVariable()) {
                    return false;
                }
                String argName = k.substring(0, pos - 1);
                int idx = n.info.inputs().indexOf(argName);
                if (idx >= 0 && idx < n.inputs.size() && n.inputs.get(idx).node.isVariable()) {
                    n.inputs.get(idx).node.attrs.put("__" + key + "__", v);
                    return true;
                }
                return false;
            }
        }
        return false;
    }

    private static Node build(RawNode n) {
        if (n.built != null) {
            return n.built;
        }
        List<Node> deps = new ArrayList<>();
        for (RawNode d : n.controlDeps) {
            deps.add(build(d)); // earlier node: already built, no recursion depth
        }
        if (n.isVariable()) {
            if (!n.inputs.isEmpty()) {
                throw new IllegalArgumentException(n.what() + ": a variable (op \"null\") cannot have inputs");
            }
            n.built = new Node(null, n.name, n.attrs, List.of(), deps);
            return n.built;
        }
        List<String> expected = n.info.inputs();
        if (n.inputs.size() != expected.size()) {
            throw new IllegalArgumentException(n.what() + ": " + n.info.name() + " takes " + expected.size()
                    + " inputs " + expected + " but the node has " + n.inputs.size());
        }
        List<NodeEntry> entries = new ArrayList<>();
        for (int i = 0; i < n.inputs.size(); i++) {
            RawEntry e = n.inputs.get(i);
            if (e.node.built == null) {
                if (e.node.id >= 0) {
                    throw new IllegalStateException("node " + e.node.id + " not built before node " + n.id);
                }
                build(e.node); // an upgrade-created variable: no inputs
            }
            entries.add(entry(e, n.what() + ": input " + i + " (" + expected.get(i) + ")"));
        }
        n.built = new Node(n.info, n.name, n.attrs, entries, deps);
        return n.built;
    }

    private static NodeEntry entry(RawEntry e, String what) {
        Node src = e.node.built;
        if (e.index >= src.numOutputs()) {
            throw new IllegalArgumentException(what + " refers to output " + e.index + " of '" + src.name + "', which has "
                    + src.numOutputs() + " output(s)");
        }
        return new NodeEntry(src, e.index, e.version);
    }

    // =========================================================================================
    // Writing (dmlc JSONWriter layout)
    // =========================================================================================

    static String emit(Symbol s) {
        List<Node> order = s.topoOrder();
        IdentityHashMap<Node, Integer> ids = new IdentityHashMap<>();
        for (int i = 0; i < order.size(); i++) {
            ids.put(order.get(i), i);
        }
        List<Long> argNodes = new ArrayList<>();
        List<Long> rowPtr = new ArrayList<>();
        long rows = 0;
        rowPtr.add(0L);
        for (int i = 0; i < order.size(); i++) {
            Node n = order.get(i);
            if (n.isVariable()) {
                argNodes.add((long) i);
            }
            rows += n.numOutputs();
            rowPtr.add(rows);
        }
        StringBuilder sb = new StringBuilder(256 + 160 * order.size());
        sb.append('{');
        newline(sb, 1);
        sb.append("\"nodes\": [");
        for (int i = 0; i < order.size(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            newline(sb, 2);
            writeNode(sb, order.get(i), ids, 2);
        }
        newline(sb, 1);
        sb.append(']');
        sb.append(", ");
        newline(sb, 1);
        sb.append("\"arg_nodes\": ");
        writeLongs(sb, argNodes, 1);
        sb.append(", ");
        newline(sb, 1);
        sb.append("\"node_row_ptr\": ");
        writeLongs(sb, rowPtr, 1);
        sb.append(", ");
        newline(sb, 1);
        sb.append("\"heads\": ");
        writeEntries(sb, s.outputEntries(), ids, 1);
        sb.append(", ");
        newline(sb, 1);
        sb.append("\"attrs\": {\"mxnet_version\": [\"int\", ").append(Symbol.MXNET_VERSION).append("]}");
        newline(sb, 0);
        sb.append('}');
        return sb.toString();
    }

    private static void writeNode(StringBuilder sb, Node n, IdentityHashMap<Node, Integer> ids, int level) {
        sb.append('{');
        newline(sb, level + 1);
        sb.append("\"op\": ");
        writeString(sb, n.opName());
        sb.append(", ");
        newline(sb, level + 1);
        sb.append("\"name\": ");
        writeString(sb, n.name);
        if (!n.attrs.isEmpty()) {
            sb.append(", ");
            newline(sb, level + 1);
            sb.append("\"attrs\": ");
            writeStringMap(sb, n.attrs, level + 1);
        }
        sb.append(", ");
        newline(sb, level + 1);
        sb.append("\"inputs\": ");
        writeEntries(sb, n.inputs, ids, level + 1);
        if (!n.controlDeps.isEmpty()) {
            List<Long> deps = new ArrayList<>();
            for (Node d : n.controlDeps) {
                deps.add((long) ids.get(d));
            }
            sb.append(", ");
            newline(sb, level + 1);
            sb.append("\"control_deps\": ");
            writeLongs(sb, deps, level + 1);
        }
        newline(sb, level);
        sb.append('}');
    }

    private static void writeStringMap(StringBuilder sb, Map<String, String> m, int level) {
        boolean multi = m.size() > 1;
        sb.append('{');
        boolean first = true;
        for (Map.Entry<String, String> e : m.entrySet()) {
            if (!first) {
                sb.append(", ");
            }
            first = false;
            if (multi) {
                newline(sb, level + 1);
            }
            writeString(sb, e.getKey());
            sb.append(": ");
            writeString(sb, e.getValue());
        }
        if (multi) {
            newline(sb, level);
        }
        sb.append('}');
    }

    private static void writeLongs(StringBuilder sb, List<Long> values, int level) {
        boolean multi = values.size() > 10;
        sb.append('[');
        for (int i = 0; i < values.size(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            if (multi) {
                newline(sb, level + 1);
            }
            sb.append(values.get(i));
        }
        if (multi) {
            newline(sb, level);
        }
        sb.append(']');
    }

    private static void writeEntries(StringBuilder sb, List<NodeEntry> entries, IdentityHashMap<Node, Integer> ids,
            int level) {
        boolean multi = entries.size() > 10;
        sb.append('[');
        for (int i = 0; i < entries.size(); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            if (multi) {
                newline(sb, level + 1);
            }
            NodeEntry e = entries.get(i);
            sb.append('[').append(ids.get(e.node())).append(", ").append(e.index()).append(", ").append(e.version())
                    .append(']');
        }
        if (multi) {
            newline(sb, level);
        }
        sb.append(']');
    }

    private static void newline(StringBuilder sb, int level) {
        sb.append('\n');
        for (int i = 0; i < level; i++) {
            sb.append("  ");
        }
    }

    /**
     * dmlc's WriteString escapes only CR, LF, backslash, tab and the double quote; other control
     * characters (never seen in practice) are written as {@code \}{@code u00XX} so that the text
     * stays valid JSON.
     */
    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '\r': sb.append("\\r"); break;
                case '\n': sb.append("\\n"); break;
                case '\\': sb.append("\\\\"); break;
                case '\t': sb.append("\\t"); break;
                case '"': sb.append("\\\""); break;
                default:
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
            }
        }
        sb.append('"');
    }

    // =========================================================================================
    // Files
    // =========================================================================================

    /** Writes bytes atomically (see {@link dev.kiln.internal.AtomicFiles#write}). */
    static void writeAtomically(Path path, byte[] bytes) throws IOException {
        dev.kiln.internal.AtomicFiles.write(path, bytes);
    }
}
