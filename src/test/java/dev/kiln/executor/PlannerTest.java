package dev.kiln.executor;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The static memory planner against the worked example of the spec (section 1.6.9) and its rules. */
@ExtendWith(NoLeaks.class)
class PlannerTest {
    static Symbol mlp128() {
        Symbol data = Symbol.variable("data");
        Symbol fc1 = Symbol.fullyConnected("fc1", data, 128);
        Symbol relu1 = Symbol.activation("relu1", fc1, "relu");
        Symbol fc2 = Symbol.fullyConnected("fc2", relu1, 10);
        return Symbol.softmaxOutput("softmax", fc2);
    }

    static Map<String, GradReq> paramsWrite(Symbol s) {
        Map<String, GradReq> r = new LinkedHashMap<>();
        for (String a : s.listArguments()) {
            r.put(a, a.equals("data") || a.endsWith("_label") ? GradReq.NULL : GradReq.WRITE);
        }
        return r;
    }

    static Executor bindMlp(Executor.Options opt) {
        Symbol s = mlp128();
        return Executor.simpleBind(s, Context.cpu(), Map.of("data", new long[] {64, 784}), Map.of(), paramsWrite(s), opt);
    }

    @Test
    void workedExampleMatchesMxnetPlanExactly() {
        try (Executor ex = bindMlp(new Executor.Options().optMxnetCompatiblePlan(true))) {
            MemoryReport r = ex.memoryReport();
            // (3136 + 40 + 40 + 4 + 512) * N bytes with N = 64
            assertEquals(238_848, r.plannedBytes());
            assertEquals(238_848, r.mxnetPlannedBytes());
            assertEquals(5, r.numBlocks());
            List<List<String>> blocks = r.blockEntries();
            assertEquals(List.of("fc1_output", "relu1_output", "fc1_backward_data_grad"), blocks.get(0));
            assertEquals(List.of("fc2_output", "softmax_output"), blocks.get(1));
            assertEquals(List.of("fc2_backward_data_grad", "relu1_backward_data_grad"), blocks.get(4));
            assertEquals("inplace", r.entry("relu1_output").get("req"));
            assertEquals("inplace", r.entry("softmax_output").get("req"));
            assertEquals("null", r.entry("softmax_backward_label_grad").get("req"));
            assertEquals("null", r.entry("fc1_backward_data_grad").get("req"));
            assertEquals("write", r.entry("fc1_backward_weight_grad").get("req"));
            assertEquals("external", r.entry("fc1_backward_weight_grad").get("storage"));
        }
    }

    @Test
    void kilnPlanSavesTheNeverReadBuffers() {
        try (Executor ex = bindMlp(new Executor.Options())) {
            MemoryReport r = ex.memoryReport();
            // (512 + 40 + 40 + 512) * 64: outputs nobody reads get no memory
            assertEquals(1104 * 64, r.plannedBytes());
            assertEquals(238_848, r.mxnetPlannedBytes());
            assertTrue(r.naiveBytes() > r.mxnetPlannedBytes());
            assertEquals("none", r.entry("fc1_backward_data_grad").get("storage"));
            System.out.println("MLP 784-128-10 batch 64: " + r);
        }
    }

    @Test
    void matchRangeZeroGivesOneBlockPerNonInplaceEntry() {
        try (Executor ex = bindMlp(new Executor.Options().optMxnetCompatiblePlan(true).optMatchRange(0))) {
            MemoryReport r = ex.memoryReport();
            // fc1, fc2, softmax_backward (2 outputs), fc2_backward data, fc1_backward data: in place still applies
            assertEquals(6, r.numBlocks());
            assertTrue(r.plannedBytes() > 238_848);
        }
    }

    @Test
    void forwardOnlyBindNeedsFarLessMemory() {
        Symbol s = mlp128();
        Map<String, GradReq> none = new LinkedHashMap<>();
        s.listArguments().forEach(a -> none.put(a, GradReq.NULL));
        try (Executor train = bindMlp(new Executor.Options());
                Executor infer = Executor.simpleBind(s, Context.cpu(), Map.of("data", new long[] {64, 784}), Map.of(), none,
                        new Executor.Options())) {
            long t = train.memoryReport().plannedBytes();
            long i = infer.memoryReport().plannedBytes();
            assertTrue(i * 2 <= t, "inference " + i + " vs training " + t);
        }
    }

    @Test
    void inplaceTrapSigmoidChainKeepsSharedInput() {
        // B = sigmoid(A); C = sigmoid(B); F = B * 2: C must not overwrite B, which F still reads.
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.activation("b", a, "sigmoid");
        Symbol c = Symbol.activation("c", b, "sigmoid");
        Symbol f = Symbol.mulScalar("f", b, 2.0);
        Symbol g = Symbol.group(c, f);
        Map<String, GradReq> reqs = Map.of("a", GradReq.WRITE);
        try (Executor ex = Executor.simpleBind(g, Context.cpu(), Map.of("a", new long[] {3, 4}), Map.of("a", DType.FLOAT64), reqs,
                new Executor.Options())) {
            double[] av = new double[12];
            for (int i = 0; i < 12; i++) {
                av[i] = i * 0.3 - 1.5;
            }
            ex.argDict().get("a").set(av);
            ex.forward(false);
            double[] cv = ex.outputs().get(0).toDoubleArray();
            double[] fv = ex.outputs().get(1).toDoubleArray();
            for (int i = 0; i < 12; i++) {
                double bi = 1 / (1 + Math.exp(-av[i]));
                assertEquals(1 / (1 + Math.exp(-bi)), cv[i], 1e-12);
                assertEquals(2 * bi, fv[i], 1e-12);
            }
        }
    }

    @Test
    void gradReqAddAccumulatesAndNullAllocatesNothing() {
        Symbol s = mlp128();
        Map<String, GradReq> reqs = paramsWrite(s);
        reqs.put("fc1_weight", GradReq.ADD);
        reqs.put("fc2_bias", GradReq.NULL);
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), Map.of("data", new long[] {4, 784}), Map.of(), reqs,
                new Executor.Options())) {
            assertTrue(!ex.gradDict().containsKey("fc2_bias"));
            float[] x = new float[4 * 784];
            for (int i = 0; i < x.length; i++) {
                x[i] = (i % 13) / 13f;
            }
            float[] w = new float[128 * 784];
            for (int i = 0; i < w.length; i++) {
                w[i] = ((i * 7) % 17 - 8) / 100f;
            }
            ex.argDict().get("data").set(x);
            ex.argDict().get("fc1_weight").set(w);
            float[] w2 = new float[10 * 128];
            for (int i = 0; i < w2.length; i++) {
                w2[i] = ((i * 5) % 11 - 5) / 50f;
            }
            ex.argDict().get("fc2_weight").set(w2);
            ex.argDict().get("softmax_label").set(new float[] {1, 2, 3, 4});
            ex.forwardBackward();
            float[] once = ex.gradDict().get("fc1_weight").toFloatArray();
            float[] b1 = ex.gradDict().get("fc1_bias").toFloatArray();
            ex.forwardBackward();
            float[] twice = ex.gradDict().get("fc1_weight").toFloatArray();
            float[] b2 = ex.gradDict().get("fc1_bias").toFloatArray();
            double norm = 0;
            for (int i = 0; i < once.length; i++) {
                assertEquals(2 * once[i], twice[i], 1e-5 + 1e-5 * Math.abs(once[i]));
                norm += Math.abs(once[i]);
            }
            assertTrue(norm > 0);
            for (int i = 0; i < b1.length; i++) {
                assertEquals(b1[i], b2[i], 1e-6, "write gradients are overwritten, not accumulated");
            }
        }
    }

    @Test
    void sharedParameterFanInIsSummed() {
        // y = FC(x, W) + FC(x, W) with a shared weight: dW is twice that of one branch.
        Symbol x = Symbol.variable("x");
        Symbol w = Symbol.variable("w");
        Symbol b = Symbol.variable("b");
        Symbol y1 = Symbol.fullyConnected("fca", x, w, b, 3);
        Symbol y2 = Symbol.fullyConnected("fcb", x, w, b, 3);
        Symbol y = Symbol.linearRegressionOutput("out", y1.plus(y2));
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : y.listArguments()) {
            reqs.put(a, a.equals("w") ? GradReq.WRITE : GradReq.NULL);
        }
        try (Executor ex = Executor.simpleBind(y, Context.cpu(), Map.of("x", new long[] {2, 4}), Map.of(), reqs, new Executor.Options())) {
            ex.argDict().get("x").set(new float[] {1, 2, 3, 4, 5, 6, 7, 8});
            float[] wv = new float[12];
            for (int i = 0; i < 12; i++) {
                wv[i] = i / 10f;
            }
            ex.argDict().get("w").set(wv);
            ex.forwardBackward();
            float[] g = ex.gradDict().get("w").toFloatArray();
            // out = 2 x W^T ; linear regression grad: (out - 0)/1 per element; dW = 2 * d^T x, d = 2 x W^T
            float[] xv = {1, 2, 3, 4, 5, 6, 7, 8};
            for (int o = 0; o < 3; o++) {
                for (int k = 0; k < 4; k++) {
                    double e = 0;
                    for (int n = 0; n < 2; n++) {
                        double d = 0;
                        for (int j = 0; j < 4; j++) {
                            d += 2 * xv[n * 4 + j] * wv[o * 4 + j];
                        }
                        e += 2 * (d / 3.0) * xv[n * 4 + k]; // regression grad divided by outputs per sample (3)
                    }
                    assertEquals(e, g[o * 4 + k], 1e-3 * Math.max(1, Math.abs(e)));
                }
            }
        }
    }

    @Test
    void headGradientsRequiredForNonLossOutputs() {
        Symbol x = Symbol.variable("x");
        Symbol y = Symbol.activation("act", x, "tanh");
        try (Executor ex = Executor.simpleBind(y, Context.cpu(), Map.of("x", new long[] {2, 3}), Map.of(), Map.of("x", GradReq.WRITE),
                new Executor.Options());
                NDArray head = NDArray.create(new float[] {1, 1, 1, 1, 1, 1}, 2, 3)) {
            ex.forward(true);
            dev.kiln.engine.KilnException e = org.junit.jupiter.api.Assertions.assertThrows(dev.kiln.engine.KilnException.class,
                    () -> ex.backward());
            assertTrue(e.getMessage().contains("head gradient"), e.getMessage());
            ex.backward(head);
            float[] g = ex.gradDict().get("x").toFloatArray();
            for (float v : g) {
                assertEquals(1.0, v, 1e-6); // tanh'(0) = 1
            }
        }
    }
}
