package dev.kiln.ops.conv;

import static dev.kiln.testutil.OpTesting.rand;
import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.toFloat;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.mxnet.MxOracle;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.MxCompare;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/** Helpers shared by the Convolution / Deconvolution tests: attrs, random inputs, the MXNet oracle, errors. */
final class ConvTesting {
    private ConvTesting() {}

    /**
     * Runs {@code op} imperatively in Kiln and in MXNet 1.9.1 on the same float32 inputs; asserts
     * the output shape and values agree to {@code tol} (relative above 1). Returns the max error.
     */
    static double checkAgainstMxnet(String op, Map<String, String> attrs, long[]... shapes) {
        return checkAgainstMxnet(op, attrs, attrs, shapes);
    }

    /** As above, MXNet running with {@code mxAttrs} (an equivalent spelling of {@code attrs}). */
    static double checkAgainstMxnet(String op, Map<String, String> attrs, Map<String, String> mxAttrs, long[]... shapes) {
        MxOracle.assumeAvailable();
        Random rng = new Random(attrs.hashCode() * 31L + java.util.Arrays.deepHashCode(shapes));
        float[][] in = new float[shapes.length][];
        for (int i = 0; i < in.length; i++) {
            in[i] = toFloat(rand(size(shapes[i]), -1, 1, rng.nextLong()));
        }
        MxCompare.Compared c = MxCompare.forward(op, attrs, mxAttrs, in, shapes, 1e-4, op + " " + attrs, false);
        assertEquals(1, c.outputs());
        return c.maxErr();
    }

    /** Binds with the given shapes in float32 and runs a forward pass (to provoke bind/inference errors). */
    static void bindAndRun(Symbol sym, Map<String, long[]> shapes) {
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String k : shapes.keySet()) {
            types.put(k, DType.FLOAT32);
        }
        for (String arg : sym.listArguments()) {
            reqs.put(arg, GradReq.NULL);
        }
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, new Executor.Options().optSeed(1))) {
            ex.forward(false);
        }
    }
}
