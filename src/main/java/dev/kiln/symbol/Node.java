package dev.kiln.symbol;

import dev.kiln.op.OpInfo;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One graph node: an operator application, or a variable when {@link #op} is null. Immutable;
 * nodes are shared between symbols and compared by identity. Package-private.
 */
final class Node {
    /** The operator as described for this node's attributes; null for a variable. */
    final OpInfo op;
    final String name;
    /** Attributes sorted by key (the order MXNet writes them), unmodifiable. */
    final Map<String, String> attrs;
    /** Inputs in the operator's input order, unmodifiable. */
    final List<NodeEntry> inputs;
    /** Nodes that must run first although no data flows (rare in forward graphs), unmodifiable. */
    final List<Node> controlDeps;

    Node(OpInfo op, String name, Map<String, String> attrs, List<NodeEntry> inputs, List<Node> controlDeps) {
        this.op = op;
        this.name = name;
        this.attrs = Collections.unmodifiableMap(new LinkedHashMap<>(new TreeMap<>(attrs)));
        this.inputs = List.copyOf(inputs);
        this.controlDeps = List.copyOf(controlDeps);
    }

    static Node variable(String name, Map<String, String> attrs) {
        return new Node(null, name, attrs, List.of(), List.of());
    }

    boolean isVariable() {
        return op == null;
    }

    /** "null" for variables, as in symbol JSON. */
    String opName() {
        return op == null ? "null" : op.name();
    }

    /** Total outputs, hidden ones included (1 for a variable). */
    int numOutputs() {
        return op == null ? 1 : op.numOutputs();
    }

    /** MXNet's output name: the variable's name, or {@code <node>_<output name>}. */
    String outputName(int index) {
        return op == null ? name : name + "_" + op.outputs().get(index);
    }

    /**
     * Post-order depth-first traversal from the given heads: inputs in order, then control
     * dependencies; each node once, after everything it reads. Iterative (no recursion), so
     * arbitrarily deep graphs are fine.
     */
    static List<Node> postOrder(List<NodeEntry> heads) {
        List<Node> order = new ArrayList<>();
        IdentityHashMap<Node, Boolean> seen = new IdentityHashMap<>();
        Deque<Node> nodes = new ArrayDeque<>();
        Deque<int[]> next = new ArrayDeque<>();
        for (NodeEntry h : heads) {
            if (seen.put(h.node(), Boolean.TRUE) != null) {
                continue;
            }
            nodes.push(h.node());
            next.push(new int[] {0});
            while (!nodes.isEmpty()) {
                Node n = nodes.peek();
                int[] i = next.peek();
                int nin = n.inputs.size();
                if (i[0] < nin + n.controlDeps.size()) {
                    Node c = i[0] < nin ? n.inputs.get(i[0]).node() : n.controlDeps.get(i[0] - nin);
                    i[0]++;
                    if (seen.put(c, Boolean.TRUE) == null) {
                        nodes.push(c);
                        next.push(new int[] {0});
                    }
                } else {
                    nodes.pop();
                    next.pop();
                    order.add(n);
                }
            }
        }
        return order;
    }

    @Override
    public String toString() {
        return (op == null ? "Variable:" : op.name() + ":") + name;
    }
}
