package dev.kiln.symbol;

/**
 * Output {@code index} of {@code node}; {@code version} is MXNet's entry version (1 or more for
 * inputs an operator mutates, written as the third element of a JSON entry). Package-private.
 */
record NodeEntry(Node node, int index, int version) {
    NodeEntry {
        if (node == null) {
            throw new IllegalArgumentException("node is null");
        }
        if (index < 0 || index >= node.numOutputs()) {
            throw new IllegalArgumentException("output " + index + " of " + node.name + " does not exist ("
                    + node.numOutputs() + " outputs)");
        }
    }
}
