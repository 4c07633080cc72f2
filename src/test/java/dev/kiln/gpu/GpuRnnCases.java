package dev.kiln.gpu;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * GPU consistency cases of the Rnn operator family (see {@link GpuCase}): the fused RNN op (and,
 * through every graph case with backward, _backward_RNN) in each mode, one and two layers,
 * bidirectional, with and without state outputs, at odd sizes (T=5, N=3, I=4, H=6) and at a larger
 * size (T=20, N=16, I=32, H=64); dropout between layers in inference (deterministic) and, on the
 * GPU only, in training (a custom case: the mask's values, its rate and the backward's use of it).
 */
final class GpuRnnCases implements GpuCases {
    private static final String[] MODES = {"lstm", "gru", "rnn_relu", "rnn_tanh"};

    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        for (String m : MODES) {
            // one layer, one direction, only the output
            c.add(rnn("rnn_" + m + "_l1", m, 1, false, false, 0, 5, 3, 4, 6).addTo());
            // two layers, bidirectional, state outputs
            c.add(rnn("rnn_" + m + "_l2_bi_states", m, 2, true, true, 0, 5, 3, 4, 6).addTo());
        }
        // two layers, one direction, state outputs; one layer bidirectional without
        c.add(rnn("rnn_lstm_l2_states", "lstm", 2, false, true, 0, 5, 3, 4, 6));
        c.add(rnn("rnn_gru_l1_bi", "gru", 1, true, false, 0, 5, 3, 4, 6));
        c.add(rnn("rnn_tanh_l3_bi_states", "rnn_tanh", 3, true, true, 0, 4, 2, 3, 5));
        // p > 0: no dropout after the last (here only) layer, so training is deterministic
        c.add(rnn("rnn_gru_l1_p", "gru", 1, false, true, 0.5, 5, 3, 4, 6));
        // p > 0 in inference: the masks are ones
        for (String m : MODES) {
            c.add(rnn("rnn_" + m + "_l2_bi_p_inference", m, 2, true, true, 0.5, 5, 3, 4, 6).inference());
        }
        // larger: long GEMMs over T*N rows, the bias kernel over T*N*G*H = 81920 elements (lstm); small
        // weights keep the 20-step recurrences away from saturation and overflow
        GpuCase.Gen small = (n, seed) -> {
            Random r = new Random(seed);
            double[] v = new double[n];
            for (int i = 0; i < n; i++) {
                v[i] = (float) (0.2 * r.nextDouble() - 0.1);
            }
            return v;
        };
        c.add(rnn("rnn_lstm_large", "lstm", 2, true, true, 0, 20, 16, 32, 64)
                .input("parameters", small).tol(2e-4, 2e-5, 1e-9, 1e-11));
        c.add(rnn("rnn_gru_large", "gru", 2, false, true, 0, 20, 16, 32, 64)
                .input("parameters", small).tol(2e-4, 2e-5, 1e-9, 1e-11));
        c.add(rnn("rnn_relu_large", "rnn_relu", 1, true, false, 0, 20, 16, 32, 64)
                .input("parameters", small).tol(2e-4, 2e-5, 1e-9, 1e-11));
        // wide: N*H > 70k, so every per-step kernel runs many blocks (grid-stride loops); float32 only
        // (float64 runs the same kernels in the cases above)
        c.add(rnn("rnn_lstm_wide", "lstm", 1, false, true, 0, 2, 256, 8, 288)
                .input("parameters", small).tol(2e-4, 5e-5, 1e-9, 1e-11).dtypes(DType.FLOAT32));
        c.add(rnn("rnn_gru_wide", "gru", 1, false, false, 0, 2, 256, 8, 288)
                .input("parameters", small).tol(2e-4, 5e-5, 1e-9, 1e-11).dtypes(DType.FLOAT32));
        c.add(rnn("rnn_tanh_wide", "rnn_tanh", 1, true, false, 0, 2, 256, 8, 288)
                .input("parameters", small).tol(2e-4, 5e-5, 1e-9, 1e-11).dtypes(DType.FLOAT32));
        c.add(GpuCase.custom("rnn_dropout_training", GpuRnnCases::dropoutTraining, "RNN"));
        return c;
    }

    static Map<String, String> attrs(String mode, int layers, boolean bi, boolean states, double p, int hidden) {
        Map<String, String> a = new LinkedHashMap<>();
        a.put("state_size", Integer.toString(hidden));
        a.put("num_layers", Integer.toString(layers));
        a.put("mode", mode);
        a.put("bidirectional", bi ? "True" : "False");
        a.put("state_outputs", states ? "True" : "False");
        if (p != 0) {
            a.put("p", Double.toString(p));
        }
        return a;
    }

    static Symbol node(Map<String, String> attrs) {
        Map<String, Symbol> named = new LinkedHashMap<>();
        named.put("data", Symbol.variable("data"));
        named.put("parameters", Symbol.variable("parameters"));
        named.put("state", Symbol.variable("state"));
        if (attrs.get("mode").equals("lstm")) {
            named.put("state_cell", Symbol.variable("state_cell"));
        }
        return Symbol.create("RNN", "rnn", attrs, named);
    }

    static long paramSize(String mode, int layers, boolean bi, int input, int hidden) {
        long g = mode.equals("lstm") ? 4 : mode.equals("gru") ? 3 : 1;
        long d = bi ? 2 : 1;
        long size = hidden * d * g;
        return (input + hidden + 2) * size + (layers - 1) * (hidden * d + hidden + 2) * size;
    }

    static GpuCase rnn(String label, String mode, int layers, boolean bi, boolean states, double p, int seq, int batch,
            int input, int hidden) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        long[] st = {(long) layers * (bi ? 2 : 1), batch, hidden};
        shapes.put("data", new long[] {seq, batch, input});
        shapes.put("parameters", new long[] {paramSize(mode, layers, bi, input, hidden)});
        shapes.put("state", st);
        if (mode.equals("lstm")) {
            shapes.put("state_cell", st);
        }
        return GpuCase.graph(label, node(attrs(mode, layers, bi, states, p, hidden)), shapes);
    }

    // ---- dropout in training (GPU only) ----------------------------------------------------------------

    /**
     * A two-layer rnn_relu whose output is the dropout mask between its layers: layer 0 has zero
     * weights and b_x = 1 (its output is all ones), layer 1 has W_x = identity and no other
     * weights, so output = relu(mask * 1) = mask. Checks the mask values (0 or 1/(1-p)), the drop
     * rate, that the backward uses the same mask (with head gradient ones, d b_x of layer 0 is the
     * column sum of the mask), that two training passes draw different masks and that inference
     * gives ones.
     */
    static void dropoutTraining(Context ctx) {
        final int seq = 20, batch = 16, input = 4, hidden = 64;
        final double p = 0.3;
        for (DType t : List.of(DType.FLOAT32, DType.FLOAT64)) {
            Map<String, String> a = attrs("rnn_relu", 2, false, false, p, hidden);
            long np = paramSize("rnn_relu", 2, false, input, hidden);
            double[] w = new double[(int) np];
            int h = hidden;
            int wx1 = h * (input + h);                       // layer 1 W_x [H, H]
            int pw = h * (input + h) + 2 * h * h;            // biases start
            for (int k = 0; k < h; k++) {
                w[wx1 + k * h + k] = 1;                      // W_x of layer 1 = identity
                w[pw + k] = 1;                               // b_x of layer 0 = 1
            }
            Map<String, long[]> shapes = new LinkedHashMap<>();
            shapes.put("data", new long[] {seq, batch, input});
            shapes.put("parameters", new long[] {np});
            shapes.put("state", new long[] {2, batch, hidden});
            Map<String, DType> types = new LinkedHashMap<>();
            Map<String, GradReq> reqs = new LinkedHashMap<>();
            for (String n : shapes.keySet()) {
                types.put(n, t);
                reqs.put(n, GradReq.WRITE);
            }
            String what = "rnn_dropout_training " + t + " on " + ctx + ": ";
            try (Executor ex = Executor.simpleBind(node(a), ctx, shapes, types, reqs, new Executor.Options())) {
                Random r = new Random(5);
                double[] x = new double[seq * batch * input];
                for (int i = 0; i < x.length; i++) {
                    x[i] = 2 * r.nextDouble() - 1;
                }
                set(ex.argDict().get("data"), x);
                set(ex.argDict().get("parameters"), w);
                set(ex.argDict().get("state"), new double[2 * batch * hidden]);
                ex.forward(true);
                double[] mask = host(ex.outputs().get(0));
                double scale = 1 / (1 - p);
                double tol = t == DType.FLOAT32 ? 1e-6 : 1e-12;
                int zeros = 0;
                for (double v : mask) {
                    if (v == 0) {
                        zeros++;
                    } else if (Math.abs(v - scale) > tol * scale) {
                        throw new AssertionError(what + "mask value " + v + " is neither 0 nor " + scale);
                    }
                }
                double rate = zeros / (double) mask.length;
                if (Math.abs(rate - p) > 0.03) {
                    throw new AssertionError(what + "drop rate " + rate + ", expected about " + p);
                }
                // backward with head gradient ones: d b_x(layer 0)[k] = sum over (t, n) of mask[t, n, k]
                try (NDArray head = NDArray.zeros(ex.outputs().get(0).shape(), t, ctx).detach()) {
                    double[] ones = new double[mask.length];
                    java.util.Arrays.fill(ones, 1);
                    set(head, ones);
                    ex.backward(head);
                }
                double[] dw = host(ex.gradDict().get("parameters"));
                for (int k = 0; k < h; k++) {
                    double sum = 0;
                    for (int i = 0; i < seq * batch; i++) {
                        sum += mask[i * h + k];
                    }
                    if (Math.abs(dw[pw + k] - sum) > 1e-4 * Math.abs(sum) + 1e-6) {
                        throw new AssertionError(what + "d b_x[" + k + "] = " + dw[pw + k] + ", mask column sum " + sum);
                    }
                }
                // a second training pass draws another mask
                ex.forward(true);
                if (java.util.Arrays.equals(mask, host(ex.outputs().get(0)))) {
                    throw new AssertionError(what + "two training passes drew the same mask");
                }
                // inference: no dropout
                ex.forward(false);
                for (double v : host(ex.outputs().get(0))) {
                    if (v != 1) {
                        throw new AssertionError(what + "inference output " + v + ", expected 1");
                    }
                }
            }
        }
    }

    private static double[] host(NDArray a) {
        try (NDArray c = a.copyTo(Context.cpu())) {
            return c.toDoubleArray();
        }
    }

    private static void set(NDArray dst, double[] v) {
        try (NDArray h = NDArray.create(v, dst.shape().dims()); NDArray c = h.asType(dst.dtype())) {
            c.copyTo(dst);
        }
    }
}
