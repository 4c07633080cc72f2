package dev.kiln.symbol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.KilnException;
import dev.kiln.internal.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Symbol composition, naming, attributes and JSON writing, run against {@link FakeOpRegistry}
 * (MXNet's operator signatures in Java) so that it needs no native library. The same checks
 * against the native registry are in {@link SymbolNativeTest}.
 */
class SymbolTest {
    @BeforeAll
    static void fakeRegistry() {
        FakeOpRegistry.install();
    }

    @AfterAll
    static void nativeRegistry() {
        FakeOpRegistry.uninstall();
    }

    static Symbol mlp() {
        Symbol data = Symbol.variable("data");
        Symbol fc1 = Symbol.fullyConnected("fc1", data, 128);
        Symbol act1 = Symbol.activation("relu1", fc1, "relu");
        Symbol fc2 = Symbol.fullyConnected("fc2", act1, 10);
        return Symbol.softmaxOutput("softmax", fc2);
    }

    @Test
    void mlpArgumentOrderAndOutputs() {
        Symbol net = mlp();
        assertEquals(List.of("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "softmax_label"),
                net.listArguments());
        assertEquals(List.of("softmax_output"), net.listOutputs());
        assertEquals(List.of(), net.listAuxiliaryStates());
        assertEquals(net.listArguments(), net.listInputs());
        assertEquals("softmax", net.name());
        assertEquals("<Symbol softmax>", net.toString());
    }

    @Test
    void implicitVariablesCopyTheNodeAttributes() {
        Symbol net = Symbol.builder("FullyConnected").name("fc1").input(Symbol.variable("data"))
                .param("num_hidden", 4).attr("lr_mult", "0").build();
        Map<String, Map<String, String>> d = net.attrDict();
        assertEquals(Map.of("__lr_mult__", "0", "num_hidden", "4"), d.get("fc1_weight"));
        assertEquals(Map.of("__lr_mult__", "0", "num_hidden", "4"), d.get("fc1"));
        assertFalse(d.containsKey("data"));
        assertEquals("0", net.attr("lr_mult"));
        assertEquals("0", net.attr("__lr_mult__"));
        // an op called without parameters gives its implicit variables no attributes
        Symbol s = Symbol.softmaxOutput("softmax", Symbol.variable("x"));
        assertFalse(s.attrDict().containsKey("softmax_label"));
    }

    @Test
    void automaticNamesCountPerHintAndScope() {
        try (NameManager ignored = NameManager.scope()) {
            Symbol x = Symbol.variable("x");
            Symbol a = Symbol.fullyConnected(null, x, 3);
            Symbol b = Symbol.fullyConnected(null, a, 3);
            Symbol c = Symbol.activation(null, b, "relu");
            assertEquals("fullyconnected0", a.name());
            assertEquals("fullyconnected1", b.name());
            assertEquals("activation0", c.name());
            assertEquals(List.of("x", "fullyconnected0_weight", "fullyconnected0_bias", "fullyconnected1_weight",
                    "fullyconnected1_bias"), c.listArguments());
            try (NameManager inner = NameManager.scope()) {
                assertEquals("fullyconnected0", Symbol.fullyConnected("", x, 3).name());
            }
            assertEquals("fullyconnected2", Symbol.fullyConnected(null, x, 3).name());
        }
        try (NameManager p = NameManager.prefix("net_")) {
            Symbol x = Symbol.variable("x");
            assertEquals("net_fullyconnected0", Symbol.fullyConnected(null, x, 3).name());
            assertEquals("net_fc", Symbol.fullyConnected("fc", x, 3).name());
        }
    }

    @Test
    void namesAreCountedPerThread() throws Exception {
        AtomicReference<String> other = new AtomicReference<>();
        try (NameManager ignored = NameManager.scope()) {
            Symbol x = Symbol.variable("x");
            Symbol.activation(null, x, "relu");
            Thread t = new Thread(() -> other.set(Symbol.activation(null, Symbol.variable("y"), "relu").name()));
            t.start();
            t.join();
            assertEquals("activation1", Symbol.activation(null, x, "relu").name());
        }
        assertTrue(other.get().startsWith("activation"), other.get());
    }

    @Test
    void scopesMustCloseInOrder() {
        NameManager outer = NameManager.scope();
        NameManager inner = NameManager.scope();
        assertThrows(IllegalStateException.class, outer::close);
        inner.close();
        outer.close();
        outer.close(); // idempotent
    }

    @Test
    void arithmeticFollowsPythonOperators() {
        try (NameManager ignored = NameManager.scope()) {
            Symbol a = Symbol.variable("a");
            Symbol b = Symbol.variable("b");
            Symbol sum = a.plus(b);
            assertEquals("_plus0", sum.name());
            assertTrue(sum.toJson().contains("\"op\": \"elemwise_add\""));
            Symbol neg = a.negative();
            assertEquals("_mulscalar0", neg.name());
            assertEquals("-1.0", neg.listAttr().get("scalar"));
            assertEquals("_rminusscalar0", a.rminus(2).name());
            assertEquals("2.0", a.plus(2).listAttr().get("scalar"));
            assertEquals("_power0", a.pow(b).name());
            assertEquals(List.of("a", "b"), a.mul(b).div(a).minus(b).listArguments());
        }
    }

    @Test
    void attributeValuesAreWrittenAsMxnetWritesThem() {
        assertEquals("True", SymbolBuilder.format(true));
        assertEquals("False", SymbolBuilder.format(false));
        assertEquals("(2, 2)", SymbolBuilder.format(new int[] {2, 2}));
        assertEquals("(3,)", SymbolBuilder.format(new long[] {3}));
        assertEquals("()", SymbolBuilder.format(new int[0]));
        assertEquals("(1, 2)", SymbolBuilder.format(List.of(1, 2)));
        assertEquals("128", SymbolBuilder.format(128));
        assertEquals("2.0", SymbolBuilder.format(2.0));
        assertEquals("0.1", SymbolBuilder.format(0.1));
        assertEquals("0.0001", SymbolBuilder.format(1e-4));
        assertEquals("1e-05", SymbolBuilder.format(1e-5));
        assertEquals("2e-05", SymbolBuilder.format(2e-5));
        assertEquals("1.5e-07", SymbolBuilder.format(1.5e-7));
        assertEquals("1e+16", SymbolBuilder.format(1e16));
        assertEquals("1000000000000000.0", SymbolBuilder.format(1e15));
        assertEquals("123456.789", SymbolBuilder.format(123456.789));
        assertEquals("-0.5", SymbolBuilder.format(-0.5));
        assertEquals("0.1", SymbolBuilder.format(0.1f));
        assertEquals("-0.0", SymbolBuilder.format(-0.0));
        assertEquals("inf", SymbolBuilder.format(Double.POSITIVE_INFINITY));
        assertEquals("0.30000000000000004", SymbolBuilder.format(0.1 + 0.2));
        assertEquals("float16", SymbolBuilder.format(dev.kiln.ndarray.DType.FLOAT16));
    }

    @Test
    void variablesConvertPythonKeywords() {
        Symbol v = Symbol.variable("w", Map.of("shape", "(10, 784)", "dtype", "float16", "lr_mult", "0.1",
                "init", "[\"zero\", {}]", "stype", "row_sparse", "__layout__", "NC", "ctx_group", "dev1"));
        assertEquals(Map.of("__shape__", "(10, 784)", "__dtype__", "2", "__lr_mult__", "0.1", "__init__",
                "[\"zero\", {}]", "__storage_type__", "1", "__layout__", "NC", "__ctx_group__", "dev1"), v.listAttr());
        assertEquals("(10, 784)", v.attr("__shape__"));
        assertEquals("0.1", v.attr("lr_mult"));
        assertThrows(IllegalArgumentException.class, () -> Symbol.variable("w", Map.of("dtype", "complex64")));
        assertThrows(IllegalArgumentException.class, () -> Symbol.variable(""));
        assertThrows(IllegalArgumentException.class, () -> Symbol.variable("w", Map.of("weight_lr_mult", "1")));
    }

    @Test
    void setAttrReturnsACopy() {
        Symbol x = Symbol.variable("x");
        Symbol y = x.setAttr("lr_mult", "2");
        assertNull(x.attr("lr_mult"));
        assertEquals("2", y.attr("lr_mult"));
        assertEquals("x", y.name());
        Symbol fc = Symbol.fullyConnected("fc", x, 3);
        Symbol fc2 = fc.setAttr("wd_mult", "0");
        assertEquals(Map.of("num_hidden", "3"), fc.listAttr());
        assertEquals(Map.of("num_hidden", "3", "__wd_mult__", "0"), fc2.listAttr());
        assertEquals(fc.listArguments(), fc2.listArguments());
        assertThrows(IllegalStateException.class, () -> Symbol.group(x, fc).setAttr("a", "b"));
    }

    @Test
    void batchNormHasAuxStatesHiddenOutputsAndInitHints() {
        Symbol data = Symbol.variable("data");
        Symbol bn = Symbol.builder("BatchNorm").name("bn").input(data).param("eps", 0.001)
                .param("fix_gamma", false).attr("lr_mult", "2").build();
        assertEquals(List.of("data", "bn_gamma", "bn_beta"), bn.listArguments());
        assertEquals(List.of("bn_moving_mean", "bn_moving_var"), bn.listAuxiliaryStates());
        assertEquals(List.of("data", "bn_gamma", "bn_beta", "bn_moving_mean", "bn_moving_var"), bn.listInputs());
        assertEquals(List.of("bn_output"), bn.listOutputs());
        assertEquals(Map.of("__init__", "[\"zero\", {}]", "__lr_mult__", "2", "eps", "0.001", "fix_gamma", "False"),
                bn.attrDict().get("bn_moving_mean"));
        assertEquals("[\"one\", {}]", bn.attrDict().get("bn_moving_var").get("__init__"));
        assertEquals(List.of("data", "bn_gamma", "bn_beta", "bn_moving_mean", "bn_moving_var", "bn_output",
                "bn_mean", "bn_var"), bn.getInternals().listOutputs());
        String json = bn.toJson();
        assertTrue(json.contains("\"inputs\": [[0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 1], [4, 0, 1]]"), json);
        assertTrue(json.contains("\"node_row_ptr\": [0, 1, 2, 3, 4, 5, 8]"), json);
        Symbol withStats = Symbol.builder("BatchNorm").name("bn2").input(data).param("output_mean_var", true).build();
        assertEquals(List.of("bn2_output", "bn2_mean", "bn2_var"), withStats.listOutputs());
    }

    @Test
    void preluGammaGetsItsInitializer() {
        Symbol p = Symbol.leakyReLU("act", Symbol.variable("x"), "prelu");
        assertEquals(List.of("x", "act_gamma"), p.listArguments());
        assertEquals("[\"Constant\", {\"value\": 0.25}]", p.attrDict().get("act_gamma").get("__init__"));
    }

    @Test
    void multiOutputSymbols() {
        Symbol x = Symbol.variable("x");
        Symbol s = Symbol.sliceChannel("slice", x, 3);
        assertEquals(3, s.numOutputs());
        assertEquals(List.of("slice_output0", "slice_output1", "slice_output2"), s.listOutputs());
        assertNull(s.name());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Symbol.activation("a", s, "relu"));
        assertTrue(e.getMessage().contains("3 outputs"), e.getMessage());
        Symbol one = s.get(2);
        assertEquals(List.of("slice_output2"), one.listOutputs());
        assertEquals(List.of("slice_output1"), s.get("slice_output1").listOutputs());
        assertThrows(IllegalArgumentException.class, () -> s.get("nope"));
        assertThrows(IndexOutOfBoundsException.class, () -> s.get(3));
        Symbol sum = Symbol.activation("a", one, "relu");
        assertTrue(sum.toJson().contains("[[1, 2, 0]]"), sum.toJson());
    }

    @Test
    void concatSetsNumArgs() {
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Symbol c = Symbol.concat("c", 0, a, b, a);
        assertEquals(Map.of("num_args", "3", "dim", "0"), c.listAttr());
        assertEquals(List.of("a", "b"), c.listArguments());
        assertEquals("3", Symbol.elementWiseSum("s", a, b, a).listAttr().get("num_args"));
    }

    @Test
    void internalsGroupsAndChildren() {
        Symbol net = mlp();
        Symbol internals = net.getInternals();
        assertEquals(List.of("data", "fc1_weight", "fc1_bias", "fc1_output", "relu1_output", "fc2_weight", "fc2_bias",
                "fc2_output", "softmax_label", "softmax_output"), internals.listOutputs());
        Symbol fc1 = internals.get("fc1_output");
        assertEquals(List.of("data", "fc1_weight", "fc1_bias"), fc1.listArguments());
        Symbol g = Symbol.group(fc1, net);
        assertEquals(List.of("fc1_output", "softmax_output"), g.listOutputs());
        assertEquals("<Symbol group [fc1, softmax]>", g.toString());
        assertEquals(List.of("fc2_output", "softmax_label"), net.getChildren().listOutputs());
        assertNull(Symbol.variable("v").getChildren());
    }

    @Test
    void compositionErrors() {
        Symbol x = Symbol.variable("x");
        KilnException e = assertThrows(KilnException.class, () -> Symbol.builder("NoSuchOp").input(x).build());
        assertEquals("operator NoSuchOp is not supported", e.getMessage());
        IllegalArgumentException u = assertThrows(IllegalArgumentException.class,
                () -> Symbol.builder("FullyConnected").input(x).input("wieght", x).param("num_hidden", 2).build());
        assertTrue(u.getMessage().contains("unknown input 'wieght'"), u.getMessage());
        IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
                () -> Symbol.builder("FullyConnected").input(x).input("data", x).param("num_hidden", 2).build());
        assertTrue(twice.getMessage().contains("both by position and by name"), twice.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> Symbol.builder("Activation").inputs(x, x).param("act_type", "relu").build());
        assertThrows(KilnException.class, () -> Symbol.builder("FullyConnected").input(x).build());
    }

    @Test
    void explicitInputsAndNoBias() {
        Symbol x = Symbol.variable("x");
        Symbol w = Symbol.variable("shared_w");
        Symbol a = Symbol.fullyConnected("a", x, w, null, 4);
        Symbol b = Symbol.fullyConnected("b", a, w, null, 4);
        assertEquals(List.of("x", "shared_w"), b.listArguments());
        assertEquals("True", a.listAttr().get("no_bias"));
        Symbol lbl = Symbol.variable("lbl");
        Symbol s = Symbol.softmaxOutputBuilder().setData(b).optLabel(lbl).optName("sm").optGradScale(2)
                .optNormalization("batch").optUseIgnore(true).build();
        assertEquals(List.of("x", "shared_w", "lbl"), s.listArguments());
        assertEquals(Map.of("grad_scale", "2.0", "normalization", "batch", "use_ignore", "True"), s.listAttr());
        assertThrows(IllegalStateException.class, () -> Symbol.softmaxOutputBuilder().build());
    }

    @Test
    void typedFactoriesWriteOnlyGivenParameters() {
        Symbol x = Symbol.variable("x");
        assertEquals(Map.of("shape", "(-1, 200)"), Symbol.reshape("r", x, -1, 200).listAttr());
        assertEquals(Map.of("axis", "(0, 2)", "keepdims", "True", "exclude", "False"),
                Symbol.sum("s", x, new int[] {0, 2}, true, false).listAttr());
        assertEquals(Map.of("axis", "1", "keepdims", "False"), Symbol.mean("m", x, 1, false).listAttr());
        assertEquals(Map.of(), Symbol.max("m", x).listAttr());
        assertEquals(Map.of("a_min", "-1.0", "a_max", "1.0"), Symbol.clip("c", x, -1, 1).listAttr());
        assertEquals(Map.of("p", "0.3"), Symbol.dropout("d", x, 0.3).listAttr());
        assertEquals(Map.of("axes", "(1, 0)"), Symbol.transpose("t", x, 1, 0).listAttr());
        assertEquals(Map.of("transpose_a", "True", "transpose_b", "False"),
                Symbol.dot("d", x, x, true, false).listAttr());
        assertEquals(List.of("x", "lro_label"), Symbol.linearRegressionOutput("lro", x).listArguments());
        assertEquals(Map.of("grad_scale", "0.5"),
                Symbol.maeRegressionOutput("mae", x, null, 0.5).listAttr());
        try (NameManager ignored = NameManager.scope()) {
            assertEquals("stop_gradient0", Symbol.stopGradient(null, x).name());
            assertEquals("add_n0", Symbol.addN(null, x, x).name());
        }
    }

    @Test
    void toJsonMatchesMxnetLayout() {
        Symbol data = Symbol.variable("data");
        Symbol fc1 = Symbol.builder("FullyConnected").name("fc1").input(data).param("num_hidden", 4)
                .attr("lr_mult", "0").build();
        Symbol bn = Symbol.builder("BatchNorm").name("bn").input(fc1).build();
        String expected = String.join("\n",
                "{",
                "  \"nodes\": [",
                "    {",
                "      \"op\": \"null\", ",
                "      \"name\": \"data\", ",
                "      \"inputs\": []",
                "    }, ",
                "    {",
                "      \"op\": \"null\", ",
                "      \"name\": \"fc1_weight\", ",
                "      \"attrs\": {",
                "        \"__lr_mult__\": \"0\", ",
                "        \"num_hidden\": \"4\"",
                "      }, ",
                "      \"inputs\": []",
                "    }, ",
                "    {",
                "      \"op\": \"null\", ",
                "      \"name\": \"fc1_bias\", ",
                "      \"attrs\": {",
                "        \"__lr_mult__\": \"0\", ",
                "        \"num_hidden\": \"4\"",
                "      }, ",
                "      \"inputs\": []",
                "    }, ",
                "    {",
                "      \"op\": \"FullyConnected\", ",
                "      \"name\": \"fc1\", ",
                "      \"attrs\": {",
                "        \"__lr_mult__\": \"0\", ",
                "        \"num_hidden\": \"4\"",
                "      }, ",
                "      \"inputs\": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]",
                "    }, ",
                "    {",
                "      \"op\": \"null\", ",
                "      \"name\": \"bn_gamma\", ",
                "      \"inputs\": []",
                "    }, ",
                "    {",
                "      \"op\": \"null\", ",
                "      \"name\": \"bn_beta\", ",
                "      \"inputs\": []",
                "    }, ",
                "    {",
                "      \"op\": \"null\", ",
                "      \"name\": \"bn_moving_mean\", ",
                "      \"attrs\": {\"__init__\": \"[\\\"zero\\\", {}]\"}, ",
                "      \"inputs\": []",
                "    }, ",
                "    {",
                "      \"op\": \"null\", ",
                "      \"name\": \"bn_moving_var\", ",
                "      \"attrs\": {\"__init__\": \"[\\\"one\\\", {}]\"}, ",
                "      \"inputs\": []",
                "    }, ",
                "    {",
                "      \"op\": \"BatchNorm\", ",
                "      \"name\": \"bn\", ",
                "      \"inputs\": [[3, 0, 0], [4, 0, 0], [5, 0, 0], [6, 0, 1], [7, 0, 1]]",
                "    }",
                "  ], ",
                "  \"arg_nodes\": [0, 1, 2, 4, 5, 6, 7], ",
                "  \"node_row_ptr\": [0, 1, 2, 3, 4, 5, 6, 7, 8, 11], ",
                "  \"heads\": [[8, 0, 0]], ",
                "  \"attrs\": {\"mxnet_version\": [\"int\", 10900]}",
                "}");
        assertEquals(expected, bn.toJson());
    }

    @Test
    void longListsGoMultiLine() {
        Symbol[] in = new Symbol[11];
        for (int i = 0; i < in.length; i++) {
            in[i] = Symbol.variable("v" + i);
        }
        String json = Symbol.concat("c", in).toJson();
        assertTrue(json.contains("\"inputs\": [\n        [0, 0, 0], \n        [1, 0, 0], "), json);
        assertTrue(json.contains("\"arg_nodes\": [\n    0, \n    1, "), json);
        assertTrue(json.contains("\n        [10, 0, 0]\n      ]\n    }"), json);
    }

    @Test
    void jsonRoundTripIsIdempotent() {
        Symbol net = mlp();
        String json = net.toJson();
        Symbol back = Symbol.fromJson(json);
        assertEquals(json, back.toJson());
        assertEquals(net.listArguments(), back.listArguments());
        assertEquals(net.listOutputs(), back.listOutputs());
    }

    @Test
    void escapesOnlyWhatDmlcEscapes() {
        Symbol v = Symbol.variable("a\"b\\c\td\ne\u00e9");
        String json = v.toJson();
        assertTrue(json.contains("\"name\": \"a\\\"b\\\\c\\td\\ne\u00e9\""), json);
        assertEquals(v.listArguments(), Symbol.fromJson(json).listArguments());
    }

    @Test
    void deepGraphsNeedNoDeepStack() throws Exception {
        // run on a thread with a small stack: every graph walk must be iterative
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = new Thread(null, () -> {
            try {
                Symbol s = Symbol.variable("x");
                for (int i = 0; i < 20_000; i++) {
                    s = Symbol.activation("a" + i, s, "relu");
                }
                String json = s.toJson();
                Symbol back = Symbol.fromJson(json);
                assertEquals(List.of("x"), back.listArguments());
                assertEquals(20_001, back.getInternals().numOutputs());
                assertEquals(json, back.toJson());
            } catch (Throwable e) {
                failure.set(e);
            }
        }, "small-stack", 256 * 1024);
        t.start();
        t.join();
        if (failure.get() != null) {
            throw new AssertionError(failure.get());
        }
    }

    @Test
    void saveAndLoad(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("net-symbol.json");
        Symbol net = mlp();
        net.save(f);
        String text = Files.readString(f);
        assertEquals(net.toJson(), text);
        assertFalse(text.endsWith("\n"));
        assertEquals(net.listArguments(), Symbol.load(f).listArguments());
        net.save(f); // overwrite
        try (var s = Files.list(dir)) {
            assertEquals(1, s.count(), "no temporary files are left behind");
        }
        Files.writeString(f, "{\"nodes\": []");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Symbol.load(f));
        assertTrue(e.getMessage().contains("net-symbol.json"), e.getMessage());
    }

    // ---- malformed symbol JSON ----------------------------------------------------------------

    private static String graph(String nodes, String argNodes, String heads) {
        return "{\"nodes\": [" + nodes + "], \"arg_nodes\": " + argNodes + ", \"heads\": " + heads
                + ", \"attrs\": {\"mxnet_version\": [\"int\", 10900]}}";
    }

    private static final String VAR_X = "{\"op\": \"null\", \"name\": \"x\", \"inputs\": []}";

    private static void rejects(String json, String expectedPart) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Symbol.fromJson(json));
        assertTrue(e.getMessage().contains(expectedPart), "message \"" + e.getMessage() + "\" lacks \"" + expectedPart + "\"");
    }

    @Test
    void malformedSymbolJsonIsRejectedClearly() {
        rejects("", "malformed JSON at offset 0");
        rejects("[]", "expected a JSON object");
        rejects("{\"nodes\": [], \"heads\": []}", "missing field \"arg_nodes\"");
        rejects(graph("", "[]", "[]"), "\"nodes\" is empty");
        rejects("{\"nodes\": [" + VAR_X + "], \"arg_nodes\": [0], \"heads\": [[0,0,0]], \"extra\": 1}",
                "unknown top-level field \"extra\"");
        rejects(graph("{\"op\": \"null\", \"name\": \"x\", \"inputs\": [], \"color\": \"red\"}", "[0]", "[[0,0,0]]"),
                "unknown field \"color\"");
        rejects(graph("{\"op\": \"null\", \"inputs\": []}", "[0]", "[[0,0,0]]"), "missing field \"name\"");
        rejects(graph("{\"op\": \"null\", \"name\": 3, \"inputs\": []}", "[0]", "[[0,0,0]]"), "expected a JSON string");
        rejects(graph(VAR_X, "[0]", "[[1,0,0]]"), "does not exist");
        rejects(graph(VAR_X, "[0]", "[]"), "\"heads\" is empty");
        rejects(graph(VAR_X, "[5]", "[[0,0,0]]"), "arg_nodes lists node 5");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"attrs\": {\"act_type\": \"relu\"}, "
                + "\"inputs\": [[1, 0, 0]]}", "[0]", "[[1,0,0]]"), "forward reference or cycle");
        rejects(graph("{\"op\": \"Activation\", \"name\": \"a\", \"inputs\": [[1, 0, 0]]}, " + VAR_X, "[1]",
                "[[0,0,0]]"), "forward reference or cycle");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"inputs\": [[0, 3, 0]]}", "[0]",
                "[[1,0,0]]"), "refers to output 3 of 'x', which has 1 output(s)");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"inputs\": [[0, 0, 0]]}", "[1]",
                "[[1,0,0]]"), "which is not a variable");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"inputs\": [[0, 0, 0], [0, 0, 0]]}", "[0]",
                "[[1,0,0]]"), "Activation takes 1 inputs [data] but the node has 2");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"inputs\": [[0]]}", "[0]", "[[1,0,0]]"),
                "an entry must be [node, index]");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"inputs\": [[0, 0.5]]}", "[0]",
                "[[1,0,0]]"), "expected an integer");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"inputs\": [[-1, 0]]}", "[0]",
                "[[1,0,0]]"), "does not exist");
        rejects(graph("{\"op\": \"null\", \"name\": \"x\", \"inputs\": [[0, 0]]}", "[0]", "[[0,0,0]]"),
                "forward reference or cycle");
        rejects(graph(VAR_X + ", {\"op\": \"null\", \"name\": \"y\", \"inputs\": [[0, 0]]}", "[0]", "[[1,0,0]]"),
                "cannot have inputs");
        rejects(graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"attrs\": {\"act_type\": 1}, "
                + "\"inputs\": [[0, 0]]}", "[0]", "[[1,0,0]]"), "expected a JSON string");
        rejects(graph(VAR_X + ", {\"op\": \"_foreach\", \"name\": \"f\", \"inputs\": [[0, 0]], \"subgraphs\": [{}]}",
                "[0]", "[[1,0,0]]"), "subgraphs");
        rejects(graph(VAR_X, "[0]", "[[0,0,0]]").replace("[\"int\", 10900]", "[\"str\", \"1.9\"]"), "mxnet_version");
        rejects("[".repeat(100_000), "nesting deeper");
        KilnException e = assertThrows(KilnException.class, () -> Symbol.fromJson(graph(VAR_X
                + ", {\"op\": \"Convolution3000\", \"name\": \"c\", \"inputs\": [[0, 0]]}", "[0]", "[[1,0,0]]")));
        assertEquals("operator Convolution3000 is not supported", e.getMessage());
    }

    @Test
    void acceptsTwoElementEntriesAndControlDeps() {
        String json = graph(VAR_X + ", {\"op\": \"Activation\", \"name\": \"a\", \"attrs\": {\"act_type\": \"relu\"}, "
                + "\"inputs\": [[0, 0]]}, {\"op\": \"Activation\", \"name\": \"b\", \"attrs\": {\"act_type\": \"relu\"}, "
                + "\"inputs\": [[0, 0]], \"control_deps\": [1]}", "[0]", "[[1,0], [2,0]]");
        Symbol s = Symbol.fromJson(json);
        assertEquals(List.of("a_output", "b_output"), s.listOutputs());
        String out = s.toJson();
        assertTrue(out.contains("\"control_deps\": [1]"), out);
        assertEquals(out, Symbol.fromJson(out).toJson());
    }

    // ---- the real files ------------------------------------------------------------------------

    @Test
    void everyCheckpointSymbolParsesAndReemitsEquivalentJson() throws Exception {
        List<Path> files = SymbolFiles.all();
        for (Path f : files) {
            String text = Files.readString(f);
            Symbol s = Symbol.load(f);
            String out = s.toJson();
            if (SymbolFiles.isCurrentFormat(text)) {
                SymbolFiles.assertEquivalent(text, out, f.toString());
            }
            assertEquals(out, Symbol.fromJson(out).toJson(), "re-parsing our own output of " + f);
        }
    }

    @Test
    void mxnetWrittenFilesReemitByteForByte() throws Exception {
        for (Path f : SymbolFiles.all()) {
            String text = Files.readString(f).stripTrailing(); // MXNet writes no final newline; some copies have one
            if (!SymbolFiles.isCurrentFormat(text) || !text.contains("\"op\": \"null\", \n")) {
                continue; // reformatted by another tool (djl mlp) or legacy
            }
            String ours = SymbolFiles.withoutRowPtr(Symbol.fromJson(text).toJson());
            String theirs = SymbolFiles.withoutRowPtr(text.replaceAll("\"mxnet_version\": \\[\"int\", \\d+\\]",
                    "\"mxnet_version\": [\"int\", 10900]"));
            assertEquals(theirs, ours, f.toString());
        }
    }

    @Test
    void legacy080FileIsUpgradedAsMxnetDoes() throws Exception {
        Symbol s = Symbol.load(SymbolFiles.dir().resolve("apache-mxnet-fixtures/save_000800.json"));
        assertEquals(List.of("data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "fc3_weight", "fc3_bias",
                "batchnorm0_gamma", "batchnorm0_beta", "softmax_label"), s.listArguments());
        assertEquals(List.of("batchnorm0_moving_mean", "batchnorm0_moving_var"), s.listAuxiliaryStates());
        Map<String, Map<String, String>> d = s.attrDict();
        assertEquals(Map.of("__ctx_group__", "stage1", "__lr_mult__", "0.2"), d.get("data"));
        assertEquals(Map.of("__ctx_group__", "stage1", "__wd_mult__", "0.3", "__lr_mult__", "1.2",
                "weight_lr_mult", "1.2"), d.get("fc1_weight"));
        assertEquals(Map.of("__ctx_group__", "stage1", "__wd_mult__", "0.3", "no_bias", "False", "num_hidden", "128"),
                d.get("fc1"));
        assertEquals(Map.of("__ctx_group__", "stage2", "__lr_mult__", "0.01"), d.get("fc2_bias"));
        Map<String, String> mm = d.get("batchnorm0_moving_mean");
        assertEquals("[\"zero\", {}]", mm.get("__init__"));
        assertEquals("stage2", mm.get("__ctx_group__"));
        assertEquals("0.001", mm.get("eps"));
        assertEquals("[\"one\", {}]", d.get("batchnorm0_moving_var").get("__init__"));
        assertEquals(List.of("softmax_output"), s.listOutputs());
        String out = s.toJson();
        assertEquals(out, Symbol.fromJson(out).toJson());
        // the created aux variables come right after the BatchNorm's other inputs
        List<String> order = new ArrayList<>();
        for (Map.Entry<String, Map<String, String>> e : Symbol.fromJson(out).attrDict().entrySet()) {
            order.add(e.getKey());
        }
        assertTrue(order.indexOf("batchnorm0_moving_var") < order.indexOf("batchnorm0"), order.toString());
    }

    @Test
    void gluonExportsKeepTheirHiddenAttributes() throws Exception {
        Symbol s = Symbol.load(SymbolFiles.dir().resolve("weberlo-lenet/lenet-symbol.json"));
        assertEquals("(5, 0, 5, 5)", s.getInternals().get("hybridsequential0_conv0_weight").attr("__shape__"));
        assertEquals(List.of("hybridsequential0_dense1_fwd_output"), s.listOutputs());
        assertEquals(List.of(), s.listAuxiliaryStates());
        Map<String, Object> parsed = Json.asObject(Json.parse(s.toJson()), "json");
        assertEquals(List.of(List.of(18L, 0L, 0L)), parsed.get("heads"));
    }

    @Test
    void resnetHasAuxStatesInOrder() throws Exception {
        Symbol s = Symbol.load(SymbolFiles.dir().resolve("djl-symbols/resnet18_v1-symbol.json"));
        List<String> aux = s.listAuxiliaryStates();
        assertEquals(40, aux.size());
        assertTrue(aux.get(0).endsWith("_running_mean"), aux.get(0));
        assertTrue(aux.get(1).endsWith("_running_var"), aux.get(1));
        for (String a : aux) {
            assertFalse(s.listArguments().contains(a));
        }
    }
}
