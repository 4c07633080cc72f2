package dev.kiln.executor;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.Context;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Executor.setLossScale: every loss operator (SoftmaxOutput with class and probability labels,
 * the four regression outputs, MakeLoss) multiplies its gradient by the scale, so all gradients
 * are exactly 8x at scale 8 (a power of two) and exactly back at scale 1; bad scales and use
 * after close throw. {@link #checkOn} is also run on the GPU (GpuConsistencyTest).
 */
@ExtendWith(NoLeaks.class)
public class LossScaleTest {
    @Test
    void everyLossOperatorScalesItsGradient() {
        checkOn(Context.cpu());
    }

    /** The loss heads over one FullyConnected layer: data [4, 5] -> fc [4, 3] -> loss. */
    static List<Symbol> heads() {
        Symbol fc = Symbol.create("FullyConnected", "fc", Map.of("num_hidden", "3"), null, Symbol.variable("data"));
        Symbol label = Symbol.variable("label");
        return List.of(
                Symbol.create("SoftmaxOutput", "so", Map.of("grad_scale", "0.5"), Map.of("data", fc, "label", label), null),
                Symbol.create("SoftmaxOutput", "so_prob", Map.of(), Map.of("data", fc, "label", Symbol.variable("plabel")), null),
                Symbol.create("LinearRegressionOutput", "lro", Map.of(), Map.of("data", fc, "label", Symbol.variable("rlabel")), null),
                Symbol.create("LogisticRegressionOutput", "lgo", Map.of(), Map.of("data", fc, "label", Symbol.variable("rlabel")), null),
                Symbol.create("MAERegressionOutput", "mae", Map.of(), Map.of("data", fc, "label", Symbol.variable("rlabel")), null),
                Symbol.create("MakeLoss", "ml", Map.of("grad_scale", "2"), null, Symbol.create("square", "sq", Map.of(), null, fc)));
    }

    public static void checkOn(Context ctx) {
        Random r = new Random(4);
        for (Symbol head : heads()) {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("data", new long[] {4, 5});
            for (String a : head.listArguments()) {
                switch (a) {
                    case "label" -> shapes.put(a, new long[] {4});
                    case "plabel", "rlabel" -> shapes.put(a, new long[] {4, 3});
                    default -> { }
                }
            }
            Map<String, GradReq> reqs = Map.of("data", GradReq.WRITE, "fc_weight", GradReq.WRITE, "fc_bias", GradReq.WRITE);
            try (Executor ex = Executor.simpleBind(head, ctx, shapes, Map.of(), reqs, new Executor.Options())) {
                fillArguments(ex, r);
                assertEquals(1.0, ex.lossScale());
                Map<String, float[]> g1 = grads(ex);
                ex.setLossScale(8);
                assertEquals(8.0, ex.lossScale());
                Map<String, float[]> g8 = grads(ex);
                ex.setLossScale(1);
                Map<String, float[]> back = grads(ex);
                assertScaledBy8(g1, g8, back, head.listOutputs() + " on " + ctx);
                for (double bad : new double[] {0, -1, Double.NaN, Double.POSITIVE_INFINITY}) {
                    assertThrows(KilnException.class, () -> ex.setLossScale(bad), "scale " + bad);
                }
                assertEquals(1.0, ex.lossScale(), "a refused scale leaves the old one");
                ex.close();
                assertThrows(RuntimeException.class, () -> ex.setLossScale(2));
            }
        }
    }

    /**
     * Outputs that are not losses: the head gradients passed to backward get the scale too (so the
     * update's division by it is right), those of a loss output next to them do not (its operator
     * applies it). A plain square(fc) head, and square(fc) grouped with a SoftmaxOutput.
     */
    @Test
    void headGradientsOfOutputsThatAreNotLossesAreScaled() {
        checkHeadsOn(Context.cpu());
    }

    public static void checkHeadsOn(Context ctx) {
        Symbol fc = Symbol.create("FullyConnected", "fc", Map.of("num_hidden", "3"), null, Symbol.variable("data"));
        Symbol sq = Symbol.create("square", "sq", Map.of(), null, fc);
        Symbol so = Symbol.create("SoftmaxOutput", "so", Map.of(), Map.of("data", fc, "label", Symbol.variable("label")), null);
        Random r = new Random(6);
        for (Symbol net : List.of(sq, Symbol.group(so, sq))) {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("data", new long[] {4, 5});
            if (net.listArguments().contains("label")) {
                shapes.put("label", new long[] {4});
            }
            Map<String, GradReq> reqs = Map.of("data", GradReq.WRITE, "fc_weight", GradReq.WRITE, "fc_bias", GradReq.WRITE);
            try (Executor ex = Executor.simpleBind(net, ctx, shapes, Map.of(), reqs, new Executor.Options())) {
                fillArguments(ex, r);
                int outs = net.listOutputs().size();
                dev.kiln.ndarray.NDArray[] heads = new dev.kiln.ndarray.NDArray[outs];
                try {
                    for (int o = 0; o < outs; o++) {
                        float[] h = new float[12];
                        for (int i = 0; i < h.length; i++) {
                            h[i] = r.nextFloat() - 0.5f;
                        }
                        try (dev.kiln.ndarray.NDArray host = dev.kiln.ndarray.NDArray.create(h, 4, 3)) {
                            heads[o] = host.copyTo(ctx);
                        }
                    }
                    Map<String, float[]> g1 = grads(ex, heads);
                    float[] given = heads[outs - 1].toFloatArray();
                    ex.setLossScale(8);
                    Map<String, float[]> g8 = grads(ex, heads);
                    assertArrayEquals(given, heads[outs - 1].toFloatArray(), "the caller's head gradient is not changed");
                    ex.setLossScale(1);
                    Map<String, float[]> back = grads(ex, heads);
                    assertScaledBy8(g1, g8, back, net.listOutputs() + " on " + ctx);
                } finally {
                    for (dev.kiln.ndarray.NDArray h : heads) {
                        if (h != null) {
                            h.close();
                        }
                    }
                }
            }
        }
    }

    /** Every argument random: labels class indices 0..2, the rest in [-0.25, 0.75). */
    private static void fillArguments(Executor ex, Random r) {
        for (Map.Entry<String, dev.kiln.ndarray.NDArray> e : ex.argDict().entrySet()) {
            float[] v = new float[(int) e.getValue().size()];
            for (int i = 0; i < v.length; i++) {
                v[i] = e.getKey().equals("label") ? r.nextInt(3) : r.nextFloat() - 0.25f;
            }
            e.getValue().set(v);
        }
    }

    /** Each gradient at scale 8 is exactly 8 times the one at scale 1, and back at scale 1 the same bits again. */
    private static void assertScaledBy8(Map<String, float[]> g1, Map<String, float[]> g8, Map<String, float[]> back, String what) {
        for (String k : g1.keySet()) {
            float[] want = g1.get(k).clone();
            for (int i = 0; i < want.length; i++) {
                want[i] *= 8;
            }
            assertArrayEquals(want, g8.get(k), what + " " + k + " at scale 8");
            assertArrayEquals(g1.get(k), back.get(k), what + " " + k + " back at scale 1");
        }
    }

    private static Map<String, float[]> grads(Executor ex, dev.kiln.ndarray.NDArray... heads) {
        ex.forward(true);
        ex.backward(heads);
        Map<String, float[]> out = new LinkedHashMap<>();
        ex.gradDict().forEach((k, v) -> {
            if (v != null) {
                out.put(k, v.toFloatArray());
            }
        });
        return out;
    }
}
