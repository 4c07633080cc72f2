package dev.kiln.testutil;

import static dev.kiln.testutil.OpTesting.toDouble;
import static dev.kiln.testutil.OpTesting.toFloat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

import ai.djl.engine.Engine;
import ai.djl.mxnet.engine.MxGradientCollector;
import ai.djl.mxnet.engine.MxNDManager;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Assumptions;

/**
 * The glue of the operator tests that run one op in Kiln and in the real MXNet 1.9.1 (through DJL,
 * {@link MxOracle}) on the same inputs and compare: an imperative forward comparison, a Kiln
 * executor run (forward / backward with given head gradients) and the matching MXNet run
 * (imperative, with autograd for the backward: loss = sum_k sum(output_k * head_k)). Every native
 * array and executor created here is closed here; not thread-safe beyond what MXNet and Kiln allow
 * (tests call it from one thread).
 */
public final class MxCompare {
    private MxCompare() {}

    /**
     * What one run gives: every visible output and its shape, one gradient per argument of the
     * node (null where none was requested or no backward ran), and the inputs after the run (in the
     * order the inputs were given; aux states updated by a training forward show here).
     */
    public record Run(List<double[]> outputs, List<long[]> outShapes, List<double[]> grads, List<double[]> inputsAfter) {}

    /** What a forward comparison compared: outputs, elements and the largest relative error. */
    public record Compared(int outputs, int elements, double maxErr) {}

    // ---- forward, imperative ------------------------------------------------------------------

    /**
     * Runs {@code op} imperatively in Kiln (with {@code attrs}) and in MXNet 1.9.1 (with
     * {@code mxAttrs}, an equivalent spelling) on the same float32 inputs and asserts equal output
     * counts, shapes and values within {@code tol} ({@link #assertOutputsMatch}). An MXNet error is
     * a test failure, except, when {@code mkldnnMaySkip}, MKL-DNN's "could not create a descriptor"
     * (MXNet cannot run the case itself), which aborts the test as an assumption.
     */
    public static Compared forward(String op, Map<String, String> attrs, Map<String, String> mxAttrs, float[][] in,
            long[][] shapes, double tol, String what, boolean mkldnnMaySkip) {
        MxOracle.assumeAvailable();
        try (NDScope scope = NDScope.open(); MxNDManager m = MxOracle.newManager()) {
            NDArray[] kIn = new NDArray[in.length];
            ai.djl.ndarray.NDArray[] mIn = new ai.djl.ndarray.NDArray[in.length];
            for (int i = 0; i < in.length; i++) {
                kIn[i] = NDArray.create(in[i], shapes[i]);
                mIn[i] = MxOracle.create(m, in[i], shapes[i]);
            }
            NDList mOut;
            try {
                mOut = MxOracle.invoke(m, op, mxAttrs, mIn);
                for (int o = 0; o < mOut.size(); o++) {
                    mOut.get(o).toFloatArray(); // MXNet runs asynchronously: its errors surface here
                }
            } catch (RuntimeException e) {
                if (mkldnnMaySkip) {
                    // MXNet 1.9.1's MKL-DNN pooling cannot build some 'same'-convention windows
                    Assumptions.assumeFalse(String.valueOf(e.getMessage()).contains("could not create a descriptor"),
                            "MXNet 1.9.1 (MKL-DNN) cannot run this case itself: " + what);
                }
                fail("MXNet rejects the case itself: " + what + ": " + e.getMessage(), e);
                return null;
            }
            List<NDArray> kOut = NDArray.invoke(op, attrs, kIn);
            return assertOutputsMatch(mOut, kOut, tol, what);
        }
    }

    /**
     * MXNet's outputs against Kiln's, compared as float32: same count and shapes, and per element
     * equal (NaN matching NaN) or |kiln - mxnet| <= tol * max(1, |mxnet|). A float16 Kiln output is
     * cast to float32 with Kiln's Cast, so call this inside an open {@link NDScope}.
     */
    public static Compared assertOutputsMatch(NDList mOut, List<NDArray> kOut, double tol, String what) {
        assertEquals(mOut.size(), kOut.size(), what + ": number of outputs");
        double max = 0;
        int n = 0;
        for (int o = 0; o < kOut.size(); o++) {
            assertArrayEquals(mOut.get(o).getShape().getShape(), kOut.get(o).shape().dims(), what + ": shape of output " + o);
            float[] mv = mOut.get(o).toType(DataType.FLOAT32, false).toFloatArray();
            float[] kv = floats(kOut.get(o));
            assertEquals(mv.length, kv.length, what + ": size of output " + o);
            for (int i = 0; i < mv.length; i++) {
                if (Float.isNaN(mv[i]) && Float.isNaN(kv[i]) || mv[i] == kv[i]) {
                    continue;
                }
                double err = Math.abs((double) mv[i] - kv[i]) / Math.max(1.0, Math.abs(mv[i]));
                if (!(err <= tol)) {
                    fail(String.format(Locale.ROOT, "%s: output %d element %d: kiln %s, mxnet %s (err %.3e)", what, o, i,
                            kv[i], mv[i], err));
                }
                max = Math.max(max, err);
            }
            n += mv.length;
        }
        return new Compared(kOut.size(), n, max);
    }

    /** Values as float32; float16 arrays go through Kiln's own Cast (the core copy has no float16 path). */
    public static float[] floats(NDArray a) {
        if (a.dtype() != DType.FLOAT16) {
            return a.toFloatArray();
        }
        return NDArray.invoke("Cast", Map.of("dtype", "float32"), a).get(0).toFloatArray();
    }

    // ---- Kiln executor ------------------------------------------------------------------------

    /**
     * Binds {@code s} with the given shapes, types and requests, sets every input in {@code values}
     * (arguments or aux states, by name), then {@code steps} times runs forward(train) and, when
     * {@code heads} is not null, backward with head k on visible output k (zeros for outputs past
     * the list or with a null head).
     */
    public static Run kiln(Symbol s, Map<String, long[]> shapes, Map<String, DType> types, Map<String, GradReq> reqs,
            Map<String, double[]> values, boolean train, List<double[]> heads, int steps, Executor.Options opt) {
        try (Executor ex = Executor.simpleBind(s, Context.cpu(), shapes, types, reqs, opt)) {
            values.forEach((k, v) -> input(ex, k).set(v));
            for (int k = 0; k < steps; k++) {
                ex.forward(train);
                if (heads != null) {
                    backward(ex, heads);
                }
            }
            List<double[]> outs = new ArrayList<>();
            List<long[]> outShapes = new ArrayList<>();
            for (NDArray o : ex.outputs()) {
                outs.add(o.toDoubleArray());
                outShapes.add(o.shape().dims());
            }
            List<double[]> grads = new ArrayList<>();
            for (String a : s.listArguments()) {
                NDArray g = heads == null ? null : ex.gradDict().get(a);
                grads.add(g == null ? null : g.toDoubleArray());
            }
            List<double[]> after = new ArrayList<>();
            for (String k : values.keySet()) {
                after.add(input(ex, k).toDoubleArray());
            }
            return new Run(outs, outShapes, grads, after);
        }
    }

    private static NDArray input(Executor ex, String name) {
        NDArray a = ex.argDict().get(name);
        return a != null ? a : ex.auxDict().get(name);
    }

    /** One backward pass with head k on visible output k (zeros past the list or for a null head). */
    public static void backward(Executor ex, List<double[]> heads) {
        List<NDArray> hs = new ArrayList<>();
        try {
            for (int j = 0; j < ex.outputs().size(); j++) {
                NDArray o = ex.outputs().get(j);
                NDArray h = NDArray.zeros(o.shape(), o.dtype(), Context.cpu());
                hs.add(h);
                if (j < heads.size() && heads.get(j) != null) {
                    h.set(heads.get(j));
                }
            }
            ex.backward(hs.toArray(new NDArray[0]));
        } finally {
            hs.forEach(NDArray::close);
        }
    }

    // ---- MXNet 1.9.1 --------------------------------------------------------------------------

    /**
     * The same on MXNet 1.9.1 in float32, imperatively, {@code steps} times. Without heads a plain
     * invoke; with heads under autograd with loss = sum_k sum(output_k * head_k) (null heads and
     * outputs past the list are left out) and gradients for the inputs in {@code gradInputs} (null:
     * every input). {@code train} null leaves MXNet's mode as it is (training under autograd),
     * otherwise the forward runs in that mode. Grads are aligned with the inputs (null where none
     * was requested); inputsAfter are the inputs after the run.
     */
    public static Run mxnet(String op, Map<String, String> attrs, List<long[]> shapes, List<double[]> values,
            Boolean train, List<double[]> heads, Set<Integer> gradInputs, int steps) {
        MxOracle.assumeAvailable();
        try (MxNDManager m = MxOracle.newManager()) {
            ai.djl.ndarray.NDArray[] in = new ai.djl.ndarray.NDArray[values.size()];
            boolean[] wantGrad = new boolean[in.length];
            for (int i = 0; i < in.length; i++) {
                in[i] = MxOracle.create(m, toFloat(values.get(i)), shapes.get(i));
                wantGrad[i] = heads != null && (gradInputs == null || gradInputs.contains(i));
                if (wantGrad[i]) {
                    in[i].setRequiresGradient(true);
                }
            }
            NDList out = null;
            for (int k = 0; k < steps; k++) {
                if (heads == null) {
                    if (train == null) {
                        out = MxOracle.invoke(m, op, attrs, in);
                    } else {
                        boolean prev = MxGradientCollector.setTraining(train);
                        try {
                            out = MxOracle.invoke(m, op, attrs, in);
                        } finally {
                            MxGradientCollector.setTraining(prev);
                        }
                    }
                } else {
                    try (GradientCollector gc = Engine.getEngine("MXNet").newGradientCollector()) {
                        if (train != null && !train) {
                            MxGradientCollector.setTraining(false);
                        }
                        out = MxOracle.invoke(m, op, attrs, in);
                        ai.djl.ndarray.NDArray loss = null;
                        for (int j = 0; j < out.size() && j < heads.size(); j++) {
                            if (heads.get(j) == null) {
                                continue;
                            }
                            ai.djl.ndarray.NDArray h = MxOracle.create(m, toFloat(heads.get(j)), out.get(j).getShape().getShape());
                            ai.djl.ndarray.NDArray prod = MxOracle.invoke(m, "elemwise_mul", Map.of(), out.get(j), h).get(0);
                            ai.djl.ndarray.NDArray sj = MxOracle.invoke(m, "sum", Map.of(), prod).get(0);
                            loss = loss == null ? sj : MxOracle.invoke(m, "elemwise_add", Map.of(), loss, sj).get(0);
                        }
                        gc.backward(loss);
                    }
                }
            }
            List<double[]> outs = new ArrayList<>();
            List<long[]> outShapes = new ArrayList<>();
            for (ai.djl.ndarray.NDArray o : out) {
                outs.add(toDouble(o.toFloatArray()));
                outShapes.add(o.getShape().getShape());
            }
            List<double[]> grads = new ArrayList<>();
            List<double[]> after = new ArrayList<>();
            for (int i = 0; i < in.length; i++) {
                grads.add(wantGrad[i] ? toDouble(in[i].getGradient().toFloatArray()) : null);
                after.add(toDouble(in[i].toFloatArray()));
            }
            return new Run(outs, outShapes, grads, after);
        }
    }
}
