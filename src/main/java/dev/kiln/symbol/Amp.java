package dev.kiln.symbol;

import dev.kiln.ndarray.DType;
import dev.kiln.op.Ops;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Automatic mixed precision on symbols, as MXNet 1.9's {@code mx.contrib.amp.convert_symbol} and
 * {@code Symbol.remove_amp_cast} (its {@code ReducePrecision} graph pass).
 *
 * <p>{@link #convertSymbol} returns a new graph in which
 * <ul>
 *   <li>every input of a <em>target-dtype</em> operator (Convolution, Deconvolution,
 *       FullyConnected, RNN) goes through {@code amp_cast} to float16 (or bfloat16);</li>
 *   <li>every input of a <em>float32</em> operator (softmax and the losses, exp/log/power, sums
 *       and norms, LayerNorm, ...), and of Activation with {@code act_type=softrelu} and LeakyReLU
 *       with {@code elu}/{@code selu}, goes through {@code amp_cast} to float32;</li>
 *   <li>the inputs of a <em>widest-type</em> operator (elementwise and broadcast arithmetic,
 *       Concat, add_n, dot, where, ...) go through one {@code amp_multicast};</li>
 *   <li>every other operator (Activation, Pooling, BatchNorm, Flatten, Reshape, Dropout, ...) runs
 *       in whatever type reaches it.</li>
 * </ul>
 * A cast of one entry to one type is made once and shared. Weights stay float32 parameters: the
 * cast in front of a FullyConnected rounds its float32 weight each forward, and its backward casts
 * the gradient back to float32, so optimizers update float32 weights (no {@code multi_precision}
 * needed). Operators Kiln does not register are left out of the lists; unlisted operators run in
 * the incoming type, as in MXNet. The cast nodes are named as MXNet names them ({@code
 * <input>_amp_cast_float16}, {@code <input>_amp_multicast}). Use a {@code LossScaler} when training
 * in float16.
 *
 * <p>Stateless; thread-safe.
 */
public final class Amp {
    private Amp() {}

    /** MXNet's FP16_FUNCS: operators that run in the target type. */
    public static final Set<String> TARGET_DTYPE_OPS = known("Convolution", "Deconvolution", "FullyConnected", "RNN");

    /** MXNet's FP32_FUNCS (the ones Kiln has): operators that run in float32 whatever their inputs. */
    public static final Set<String> FP32_OPS = known(
            "arccos", "arcsin", "cosh", "erfinv", "sinh", "tan", "arctanh", "exp", "expm1", "log", "log10", "log2",
            "log1p", "broadcast_power", "power", "_power", "_power_scalar", "_rpower_scalar", "rsqrt", "rcbrt",
            "reciprocal", "_rdiv_scalar", "gamma", "gammaln", "square", "softmax", "log_softmax", "softmin",
            "SoftmaxOutput", "SoftmaxActivation", "LinearRegressionOutput", "LogisticRegressionOutput",
            "MAERegressionOutput", "SVMOutput", "MakeLoss", "smooth_l1", "norm", "sum", "sum_axis", "mean", "prod",
            "nansum", "nanprod", "cumsum", "LayerNorm", "InstanceNorm", "L2Normalization", "LRN", "topk", "argsort",
            "sort", "CTCLoss");

    /** MXNet's WIDEST_TYPE_CASTS (the ones Kiln has): operators whose inputs are cast to their widest type. */
    public static final Set<String> WIDEST_TYPE_OPS = known(
            "elemwise_add", "elemwise_sub", "elemwise_mul", "elemwise_div", "_plus", "_minus", "_mul", "_div",
            "_Plus", "_Minus", "_Mul", "_Div", "_maximum", "_minimum", "_mod", "_equal", "_not_equal", "_greater",
            "_greater_equal", "_lesser", "_lesser_equal", "broadcast_add", "broadcast_sub", "broadcast_mul",
            "broadcast_div", "broadcast_plus", "broadcast_minus", "broadcast_maximum", "broadcast_minimum",
            "broadcast_mod", "broadcast_equal", "broadcast_not_equal", "broadcast_greater", "broadcast_greater_equal",
            "broadcast_lesser", "broadcast_lesser_equal", "broadcast_logical_and", "broadcast_logical_or",
            "broadcast_logical_xor", "Concat", "ElementWiseSum", "stack", "dot", "batch_dot", "where", "_grad_add");

    /** MXNet's CONDITIONAL_FP32_FUNCS: (operator, parameter) to the values that make it run in float32. */
    public static final Map<String, Map<String, List<String>>> CONDITIONAL_FP32_OPS = Map.of(
            "Activation", Map.of("act_type", List.of("softrelu")),
            "LeakyReLU", Map.of("act_type", List.of("elu", "selu")));

    /** {@link #convertSymbol(Symbol, DType, Set, Set, Set, Map, Set)} with the default lists and no exclusions. */
    public static Symbol convertSymbol(Symbol sym, DType target) {
        return convertSymbol(sym, target, TARGET_DTYPE_OPS, FP32_OPS, WIDEST_TYPE_OPS, CONDITIONAL_FP32_OPS, Set.of());
    }

    /**
     * A copy of {@code sym} with {@code amp_cast} / {@code amp_multicast} nodes inserted (see the
     * class comment). {@code sym} is unchanged.
     *
     * @param sym the float32 symbol
     * @param target {@link DType#FLOAT16} or {@link DType#BFLOAT16}
     * @param targetOps operators run in {@code target}
     * @param fp32Ops operators run in float32
     * @param widestOps operators whose inputs are cast to their widest type
     * @param conditionalFp32Ops operators run in float32 when a parameter has one of the values
     * @param excludedNames node names left as they are
     * @return the converted symbol
     * @throws IllegalArgumentException for another target type, or a widest-type node without inputs
     */
    public static Symbol convertSymbol(Symbol sym, DType target, Set<String> targetOps, Set<String> fp32Ops,
            Set<String> widestOps, Map<String, Map<String, List<String>>> conditionalFp32Ops, Set<String> excludedNames) {
        if (target != DType.FLOAT16 && target != DType.BFLOAT16) {
            throw new IllegalArgumentException("AMP target dtype must be float16 or bfloat16, got " + target);
        }
        Set<String> tOps = canonical(targetOps), fOps = canonical(fp32Ops), wOps = canonical(widestOps);
        Map<String, Map<String, List<String>>> cOps = new HashMap<>();
        conditionalFp32Ops.forEach((k, v) -> cOps.put(canonicalName(k), v));
        Map<Node, Node> mirror = new IdentityHashMap<>();
        Map<NodeEntry, NodeEntry> to32 = new HashMap<>(), toLow = new HashMap<>();
        for (Node n : sym.topoOrder()) {
            List<NodeEntry> in = new ArrayList<>();
            List<Node> deps = new ArrayList<>();
            n.controlDeps.forEach(d -> deps.add(mirror.get(d)));
            String op = n.isVariable() ? null : canonicalName(n.op.name());
            boolean excluded = excludedNames.contains(n.name);
            if (op != null && !excluded && (fOps.contains(op) || conditionalFp32(cOps.get(op), n.attrs))) {
                for (NodeEntry e : n.inputs) {
                    in.add(cast(e, DType.FLOAT32, mirror, to32));
                }
            } else if (op != null && !excluded && tOps.contains(op)) {
                for (NodeEntry e : n.inputs) {
                    in.add(cast(e, target, mirror, toLow));
                }
            } else if (op != null && !excluded && wOps.contains(op)) {
                if (n.inputs.isEmpty()) {
                    throw new IllegalArgumentException("node '" + n.name + "' (" + op + ") has no inputs");
                }
                List<NodeEntry> src = new ArrayList<>();
                n.inputs.forEach(e -> src.add(mirrored(e, mirror)));
                NodeEntry first = n.inputs.get(0);
                Map<String, String> attrs = Map.of("num_outputs", Integer.toString(src.size()));
                Node mc = new Node(Ops.info("amp_multicast", attrs), first.node().name + suffix(first) + "_amp_multicast",
                        attrs, src, List.of());
                for (int i = 0; i < src.size(); i++) {
                    in.add(new NodeEntry(mc, i, n.inputs.get(i).version()));
                }
            } else {
                n.inputs.forEach(e -> in.add(mirrored(e, mirror)));
            }
            mirror.put(n, n.isVariable() ? n : new Node(n.op, n.name, n.attrs, in, deps));
        }
        List<NodeEntry> outs = new ArrayList<>();
        sym.outputEntries().forEach(e -> outs.add(mirrored(e, mirror)));
        return new Symbol(outs);
    }

    /**
     * A copy of {@code sym} without its {@code amp_cast} and {@code amp_multicast} nodes: each
     * reader of a cast reads the cast's input instead (MXNet's {@code Symbol.remove_amp_cast}, what
     * {@code save_checkpoint(remove_amp_cast=True)} writes).
     *
     * @param sym the symbol
     * @return the symbol without AMP casts ({@code sym} itself when it has none)
     */
    public static Symbol removeAmpCast(Symbol sym) {
        boolean any = false;
        for (Node n : sym.topoOrder()) {
            any = any || isAmpCast(n);
        }
        if (!any) {
            return sym;
        }
        Map<Node, Node> mirror = new IdentityHashMap<>();
        for (Node n : sym.topoOrder()) {
            if (n.isVariable() || isAmpCast(n)) {
                mirror.put(n, n.isVariable() ? n : null);
                continue;
            }
            List<NodeEntry> in = new ArrayList<>();
            n.inputs.forEach(e -> in.add(bypass(e, mirror)));
            List<Node> deps = new ArrayList<>();
            n.controlDeps.forEach(d -> deps.add(mirror.get(d)));
            mirror.put(n, new Node(n.op, n.name, n.attrs, in, deps));
        }
        List<NodeEntry> outs = new ArrayList<>();
        sym.outputEntries().forEach(e -> outs.add(bypass(e, mirror)));
        return new Symbol(outs);
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static boolean isAmpCast(Node n) {
        return !n.isVariable() && (n.op.name().equals("amp_cast") || n.op.name().equals("amp_multicast"));
    }

    /** The entry a reader of {@code e} reads once the casts are gone. */
    private static NodeEntry bypass(NodeEntry e, Map<Node, Node> mirror) {
        while (isAmpCast(e.node())) {
            e = e.node().inputs.get(e.node().op.name().equals("amp_cast") ? 0 : e.index());
        }
        return new NodeEntry(mirror.get(e.node()), e.index(), e.version());
    }

    private static NodeEntry mirrored(NodeEntry e, Map<Node, Node> mirror) {
        return new NodeEntry(mirror.get(e.node()), e.index(), e.version());
    }

    /** amp_cast of (the mirror of) e to t, made once per (entry, type). */
    private static NodeEntry cast(NodeEntry e, DType t, Map<Node, Node> mirror, Map<NodeEntry, NodeEntry> cache) {
        NodeEntry key = new NodeEntry(e.node(), e.index(), 0);
        NodeEntry c = cache.get(key);
        if (c == null) {
            Map<String, String> attrs = Map.of("dtype", t.mxName());
            Node n = new Node(Ops.info("amp_cast", attrs), e.node().name + suffix(e) + "_amp_cast_" + t.mxName(), attrs,
                    List.of(mirrored(e, mirror)), List.of());
            c = new NodeEntry(n, 0, 0);
            cache.put(key, c);
        }
        return new NodeEntry(c.node(), 0, e.version());
    }

    /** MXNet's name suffix of an entry: "" for a variable, "_<output name>" for an operator output. */
    private static String suffix(NodeEntry e) {
        Node n = e.node();
        if (n.isVariable()) {
            return "";
        }
        List<String> names = n.op.outputs();
        return "_" + (names.size() > 1 && e.index() < names.size() ? names.get(e.index()) : Integer.toString(e.index()));
    }

    private static boolean conditionalFp32(Map<String, List<String>> cond, Map<String, String> attrs) {
        if (cond == null) {
            return false;
        }
        for (Map.Entry<String, List<String>> c : cond.entrySet()) {
            String v = attrs.get(c.getKey());
            if (v != null && c.getValue().contains(v)) {
                return true;
            }
        }
        return false;
    }

    private static String canonicalName(String op) {
        return Ops.isSupported(op) ? Ops.info(op).name() : op;
    }

    private static Set<String> canonical(Set<String> ops) {
        Set<String> s = new LinkedHashSet<>();
        ops.forEach(o -> s.add(canonicalName(o)));
        return s;
    }

    /** The registered ones among {@code ops}, unmodifiable. */
    private static Set<String> known(String... ops) {
        Set<String> s = new LinkedHashSet<>();
        for (String o : ops) {
            if (Ops.isSupported(o)) {
                s.add(o);
            }
        }
        return java.util.Collections.unmodifiableSet(s);
    }
}
