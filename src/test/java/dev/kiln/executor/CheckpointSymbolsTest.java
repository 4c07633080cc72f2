package dev.kiln.executor;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Real MXNet symbol files from ../shared/data/mxnet-checkpoints bind and run. */
@ExtendWith(NoLeaks.class)
class CheckpointSymbolsTest {
    static Path dir() {
        Path d = Path.of(System.getProperty("kiln.shared", "../shared"), "data", "mxnet-checkpoints");
        Assumptions.assumeTrue(Files.isDirectory(d), "shared data not found at " + d.toAbsolutePath());
        return d;
    }

    @Test
    void djlMlpSymbolBindsInfersAndRuns() throws Exception {
        Symbol s = Symbol.load(dir().resolve("djl-symbols/mlp-symbol.json"));
        InferResult r = s.inferShape(Map.of("data", new long[] {32, 784}));
        assertTrue(r.isComplete());
        List<String> args = s.listArguments();
        assertEquals("hybridsequential0_dense0_weight", args.get(1));
        assertEquals(List.of(128L, 784L), toList(r.argShapes().get(1)));
        assertEquals(List.of(32L, 10L), toList(r.outShapes().get(0)));
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        args.forEach(a -> reqs.put(a, a.equals("data") ? GradReq.NULL : GradReq.WRITE));
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), Map.of("data", new long[] {32, 784}), Map.of(), reqs,
                new Executor.Options());
                NDArray head = NDArray.zeros(32, 10)) {
            ex.argDict().get("hybridsequential0_dense2_bias").set(new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
            ex.forward(true);
            float[] out = ex.outputs().get(0).toFloatArray();
            // zero weights: every row equals the last bias
            for (int i = 0; i < 32; i++) {
                for (int c = 0; c < 10; c++) {
                    assertEquals(c, out[i * 10 + c], 0);
                }
            }
            head.fill(1);
            ex.backward(head);
            assertEquals(32.0, ex.gradDict().get("hybridsequential0_dense2_bias").toFloatArray()[3], 1e-5);
        }
    }

    @Test
    void cnnGraphsLoadAndUnknownOperatorsFailClearly() throws Exception {
        // save_000800.json (legacy 0.8 format) and the ResNet / SqueezeNet / LeNet graphs use
        // BatchNorm, Convolution and Pooling (issue 4); an operator Kiln lacks is named in the error
        Path base = dir();
        for (String f : List.of("apache-mxnet-fixtures/save_000800.json", "djl-symbols/resnet18_v1-symbol.json",
                "djl-symbols/squeezenet1.0-symbol.json", "weberlo-lenet/lenet-symbol.json")) {
            Symbol s = Symbol.load(base.resolve(f));
            assertTrue(s.listArguments().size() > 1, f);
        }
        String json = java.nio.file.Files.readString(base.resolve("weberlo-lenet/lenet-symbol.json"))
                .replaceFirst("\"Pooling\"", "\"NotAKilnOp\"");
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> Symbol.fromJson(json));
        assertTrue(e.getMessage().matches("(?s).*operator \\w+ is not supported.*"), e.getMessage());
    }

    private static List<Long> toList(long[] a) {
        List<Long> l = new java.util.ArrayList<>();
        for (long x : a) {
            l.add(x);
        }
        return l;
    }
}
