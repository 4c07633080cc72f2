package dev.kiln.symbol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.kiln.internal.Json;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** The real symbol files under {@code shared/data/mxnet-checkpoints} and a structural JSON comparison. */
final class SymbolFiles {
    private SymbolFiles() {}

    static Path dir() {
        Path p = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "mxnet-checkpoints");
        assumeTrue(Files.isDirectory(p), "shared data folder missing: " + p);
        return p;
    }

    /** Every {@code *.json} file (all are symbol files). */
    static List<Path> all() throws IOException {
        try (Stream<Path> s = Files.walk(dir())) {
            List<Path> l = s.filter(f -> f.getFileName().toString().endsWith(".json")).sorted().collect(Collectors.toList());
            assumeTrue(!l.isEmpty(), "no symbol files");
            return l;
        }
    }

    /** A 1.x file (entries with versions, no 0.8 fields), which MXNet would re-save unchanged. */
    static boolean isCurrentFormat(String text) {
        return text.contains("\"mxnet_version\"") && !text.contains("\"backward_source_id\"")
                && !text.contains("\"param\"");
    }

    /** Same nodes (op, name, attrs, inputs), arg_nodes, node_row_ptr (when the original has one) and heads. */
    static void assertEquivalent(String original, String ours, String what) {
        Map<String, Object> a = Json.asObject(Json.parse(original), what);
        Map<String, Object> b = Json.asObject(Json.parse(ours), what);
        List<Object> na = Json.asArray(a.get("nodes"), "nodes");
        List<Object> nb = Json.asArray(b.get("nodes"), "nodes");
        assertEquals(na.size(), nb.size(), what + ": node count");
        for (int i = 0; i < na.size(); i++) {
            assertEquals(node(na.get(i)), node(nb.get(i)), what + ": node " + i);
        }
        assertEquals(a.get("arg_nodes"), b.get("arg_nodes"), what + ": arg_nodes");
        // node_row_ptr is not compared: it counts each op's outputs in the writing build (MXNet's
        // MKL-DNN builds give Pooling a hidden workspace output), and MXNet ignores it when loading.
        // Ours must be consistent with the graph we emitted.
        List<Object> rows = Json.asArray(b.get("node_row_ptr"), "node_row_ptr");
        assertEquals(nb.size() + 1, rows.size(), what + ": node_row_ptr length");
        assertEquals(0L, rows.get(0));
        assertEquals(entries(a.get("heads")), entries(b.get("heads")), what + ": heads");
        assertEquals(List.of("int", 10900L), Json.asObject(b.get("attrs"), "attrs").get("mxnet_version"));
    }

    /** The text with the value of "node_row_ptr" (single- or multi-line) replaced by a placeholder. */
    static String withoutRowPtr(String json) {
        return json.replaceAll("\"node_row_ptr\": \\[[^\\]]*\\]", "\"node_row_ptr\": ...");
    }

    private static Map<String, Object> node(Object n) {
        Map<String, Object> m = Json.asObject(n, "node");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("op", m.get("op"));
        out.put("name", m.get("name"));
        out.put("attrs", m.getOrDefault("attrs", Map.of()));
        out.put("inputs", entries(m.get("inputs")));
        out.put("control_deps", m.getOrDefault("control_deps", List.of()));
        return out;
    }

    private static List<List<Object>> entries(Object l) {
        List<List<Object>> out = new ArrayList<>();
        for (Object e : Json.asArray(l, "entries")) {
            List<Object> x = new ArrayList<>(Json.asArray(e, "entry"));
            if (x.size() == 2) {
                x.add(0L);
            }
            out.add(x);
        }
        return out;
    }
}
