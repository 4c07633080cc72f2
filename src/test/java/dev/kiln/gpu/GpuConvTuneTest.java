package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How the GPU picks convolution algorithms: MXNet's {@code cudnn_tune} ('off': cuDNN's heuristics;
 * 'limited_workspace', MXNet's default: the algorithms timed at the first call, the fastest within
 * {@code workspace}; 'fastest') and {@code cudnn_off}, and the opt-in TF32 math
 * ({@link Engine#setCudaTf32}). Whatever is picked, results equal the CPU's; timing never
 * disturbs an output accumulated with {@code grad_req='add'}. Needs a {@code -Pcuda} build and a
 * CUDA device; skipped with the reason otherwise. On a GPU machine: {@code scripts/gpu-check.sh}.
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuConvTuneTest {
    @BeforeEach
    void needsGpu() {
        Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
    }

    /** One (cudnn_tune, workspace MB, cudnn_off) setting; tune null leaves MXNet's default. */
    private record Mode(String tune, int workspaceMb, boolean cudnnOff) {
        Map<String, String> attrs() {
            Map<String, String> a = new LinkedHashMap<>();
            if (tune != null) {
                a.put("cudnn_tune", tune);
            }
            a.put("workspace", Integer.toString(workspaceMb));
            a.put("cudnn_off", cudnnOff ? "True" : "False");
            return a;
        }

        @Override
        public String toString() {
            return "cudnn_tune=" + tune + " workspace=" + workspaceMb + " cudnn_off=" + cudnnOff;
        }
    }

    private static final List<Mode> MODES = List.of(new Mode("off", 1024, false), new Mode("limited_workspace", 1024, false),
            new Mode("limited_workspace", 0, false), new Mode("fastest", 1024, false), new Mode(null, 512, false),
            new Mode("fastest", 1024, true));

    private static Symbol layer(String op, Map<String, String> extra) {
        Map<String, String> a = new LinkedHashMap<>();
        if (op.equals("Convolution")) {
            a.put("kernel", "(3, 3)");
            a.put("pad", "(1, 1)");
            a.put("num_filter", "32");
        } else {
            a.put("kernel", "(4, 4)");
            a.put("stride", "(2, 2)");
            a.put("pad", "(1, 1)");
            a.put("num_filter", "8");
            a.put("no_bias", "False");
        }
        a.putAll(extra);
        return Symbol.create(op, "c", a, null, Symbol.variable("data"));
    }

    private static long[] dataShape(String op) {
        return op.equals("Convolution") ? new long[] {4, 16, 20, 20} : new long[] {4, 16, 10, 10};
    }

    /**
     * Forward and backward of one layer, twice under {@code grad_req='add'} (so the first call's
     * timing runs on an output that accumulates), with fixed random values and head gradient.
     */
    private static Map<String, double[]> run(Context ctx, String op, Map<String, String> attrs, GradReq req) {
        Symbol s = layer(op, attrs);
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : s.listArguments()) {
            reqs.put(a, req);
        }
        Map<String, double[]> out = new LinkedHashMap<>();
        try (Executor ex = Executor.simpleBind(s, ctx, Map.of("data", dataShape(op)), Map.of("data", DType.FLOAT32), reqs,
                new Executor.Options())) {
            Random r = new Random(11);
            for (Map.Entry<String, NDArray> e : ex.argDict().entrySet()) {
                fill(e.getValue(), r, 0.3);
            }
            int passes = req == GradReq.ADD ? 2 : 1;
            try (NDArray head = NDArray.zeros(ex.outputs().get(0).shape(), DType.FLOAT32, ctx)) {
                fill(head, r, 1.0);
                for (int i = 0; i < passes; i++) {
                    ex.forward(true);
                    ex.backward(head);
                }
            }
            out.putAll(GpuConsistencyTest.outputAndGradients(ex));
        }
        return out;
    }

    private static void fill(NDArray a, Random r, double scale) {
        double[] v = new double[(int) a.size()];
        for (int i = 0; i < v.length; i++) {
            v[i] = r.nextGaussian() * scale;
        }
        try (NDArray h = NDArray.create(v, a.shape().dims()); NDArray c = h.asType(a.dtype())) {
            c.copyTo(a);
        }
    }

    /** The number of cuDNN algorithm choices made by timing so far, -1 when cuDNN is not in use. */
    private static long timedChoices() {
        String d = Engine.cudaDescribe();
        if (!d.contains("use cuDNN")) {
            return -1;
        }
        Matcher t = Pattern.compile("algorithms: (\\d+) timed").matcher(d);
        return t.find() ? Long.parseLong(t.group(1)) : 0;
    }

    @Test
    void everyTuningModeMatchesTheCpu() {
        for (String op : List.of("Convolution", "Deconvolution")) {
            // 'add' first: the choices are cached per geometry and tuning, not per request, so only
            // the first run of each mode times, and that run must leave the accumulated gradients intact
            for (GradReq req : List.of(GradReq.ADD, GradReq.WRITE)) {
                Map<String, double[]> cpu = run(Context.cpu(), op, Map.of(), req);
                long timedBefore = timedChoices();
                for (Mode m : MODES) {
                    Map<String, double[]> gpu = run(Context.gpu(0), op, m.attrs(), req);
                    for (String k : cpu.keySet()) {
                        GradCheck.assertClose(cpu.get(k), gpu.get(k), 1e-4, 1e-4, op + " " + req + " " + m + " " + k);
                    }
                }
                long timedAfter = timedChoices();
                if (req == GradReq.ADD && timedBefore >= 0) {
                    assertTrue(timedAfter > timedBefore, op + ": cuDNN is loaded but no algorithm was timed under grad_req='add': "
                            + Engine.cudaDescribe());
                }
            }
        }
        System.out.println("after the tuning cases: " + Engine.cudaDescribe().replace('\n', ' '));
    }

    /** Float32 FullyConnected (cuBLAS) and Convolution (cuDNN), inference, graphs recorded. */
    private static Symbol tf32Net() {
        Symbol fc = Symbol.fullyConnected("fc", Symbol.variable("x"), 512);
        Map<String, String> a = new LinkedHashMap<>();
        a.put("kernel", "(3, 3)");
        a.put("pad", "(1, 1)");
        a.put("num_filter", "64");
        Symbol conv = Symbol.create("Convolution", "conv", a, null, Symbol.variable("img"));
        return Symbol.group(fc, conv);
    }

    private static double[][] forwardTwice(Executor ex) {
        ex.forward(false);
        ex.forward(false);  // the second pass is recorded (or replayed) as a CUDA graph
        double[][] out = new double[2][];
        for (int i = 0; i < 2; i++) {
            try (NDArray h = ex.outputs().get(i).copyTo(Context.cpu())) {
                out[i] = h.toDoubleArray();
            }
        }
        return out;
    }

    @Test
    void tf32IsOptInAndGraphsAreRecordedAgainWhenItChanges() {
        Symbol s = tf32Net();
        Map<String, long[]> shapes = Map.of("x", new long[] {256, 512}, "img", new long[] {8, 64, 16, 16});
        Map<String, DType> types = Map.of("x", DType.FLOAT32, "img", DType.FLOAT32);
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : s.listArguments()) {
            reqs.put(a, GradReq.NULL);
        }
        boolean before = Engine.cudaTf32();
        try (Executor cpu = Executor.simpleBind(s, Context.cpu(), shapes, types, reqs, new Executor.Options());
                Executor gpu = Executor.simpleBind(s, Context.gpu(0), shapes, types, reqs, new Executor.Options())) {
            Random r = new Random(5);
            for (String k : cpu.argDict().keySet()) {
                // data N(0, 1), weights N(0, 1 / fan_in): outputs of order 1
                double scale = k.equals("fc_weight") ? 1 / Math.sqrt(512) : k.equals("conv_weight") ? 1 / Math.sqrt(576) : 1.0;
                fill(cpu.argDict().get(k), r, scale);
                cpu.argDict().get(k).copyTo(gpu.argDict().get(k));
            }
            double[][] want = forwardTwice(cpu);
            Engine.setCudaTf32(false);
            double[][] exact = forwardTwice(gpu);
            Engine.setCudaTf32(true);
            double[][] tf32 = forwardTwice(gpu);
            Engine.setCudaTf32(false);
            double[][] again = forwardTwice(gpu);
            String describe = Engine.cudaDescribe();
            Matcher sm = Pattern.compile("sm_(\\d+)").matcher(describe);
            boolean ampere = sm.find() && Integer.parseInt(sm.group(1)) >= 80;  // TF32 tensor cores
            for (int i = 0; i < 2; i++) {
                String what = i == 0 ? "FullyConnected" : "Convolution";
                GradCheck.assertClose(want[i], exact[i], 1e-4, 1e-4, what + " float32 without TF32");
                // TF32 keeps 10 mantissa bits of each operand: errors of about 1e-3 on outputs of order 1
                GradCheck.assertClose(want[i], tf32[i], 2e-2, 2e-2, what + " float32 with TF32");
                assertArrayEquals(exact[i], again[i], what + ": TF32 off again gives the first bits (graph recorded again)");
                boolean differs = !java.util.Arrays.equals(exact[i], tf32[i]);
                System.out.println(what + ": TF32 changed the float32 results: " + differs);
                // cuBLAS takes tensor cores for a 256x512x512 product once allowed; cuDNN may time an
                // FMA kernel fastest for this small convolution, so only the product must change
                if (ampere && i == 0) {
                    assertTrue(differs, what + ": TF32 allowed on " + describe + " but the results are float32's bits");
                }
            }
        } finally {
            Engine.setCudaTf32(before);
        }
    }
}
