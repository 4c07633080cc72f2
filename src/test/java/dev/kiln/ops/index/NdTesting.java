package dev.kiln.ops.index;

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

/**
 * Executor glue for the index tests whose inputs have different dtypes (float data, integer
 * indices): bind with per-input types, set values, run forward (and backward with given heads)
 * and read outputs and gradients. Everything created here is closed here.
 */
final class NdTesting {
    private NdTesting() {}

    /** Outputs of the forward pass and gradients (by argument name; null where none was requested). */
    record Result(List<double[]> outputs, List<long[]> shapes, Map<String, double[]> grads) {
        double[] out(int i) {
            return outputs.get(i);
        }
    }

    /** One input: shape, dtype, values, gradient request (null: none). */
    record In(long[] shape, DType type, double[] values, GradReq req) {}

    static In in(long[] shape, DType type, double[] values) {
        return new In(shape, type, values, null);
    }

    static In in(long[] shape, DType type, double[] values, GradReq req) {
        return new In(shape, type, values, req);
    }

    /**
     * Binds {@code sym} (inputs by name), runs forward in training mode, then {@code backwards}
     * backward passes with head k on output k ({@code heads} may be null: no backward).
     */
    static Result run(Symbol sym, Map<String, In> inputs, List<double[]> heads, int backwards) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<String, DType> types = new LinkedHashMap<>();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        inputs.forEach((k, v) -> {
            shapes.put(k, v.shape());
            types.put(k, v.type());
            reqs.put(k, v.req() == null ? GradReq.NULL : v.req());
        });
        try (Executor ex = Executor.simpleBind(sym, Context.cpu(), shapes, types, reqs, new Executor.Options())) {
            inputs.forEach((k, v) -> ex.argDict().get(k).set(v.values()));
            ex.forward(heads != null);
            List<double[]> outs = new ArrayList<>();
            List<long[]> outShapes = new ArrayList<>();
            for (NDArray o : ex.outputs()) {
                outs.add(o.toDoubleArray());
                outShapes.add(o.shape().dims());
            }
            Map<String, double[]> grads = new LinkedHashMap<>();
            if (heads != null) {
                List<NDArray> hs = new ArrayList<>();
                try {
                    for (int j = 0; j < ex.outputs().size(); j++) {
                        NDArray o = ex.outputs().get(j);
                        NDArray h = NDArray.zeros(o.shape(), o.dtype(), Context.cpu());
                        hs.add(h);
                        h.set(heads.get(j));
                    }
                    for (int c = 0; c < backwards; c++) {
                        ex.backward(hs.toArray(new NDArray[0]));
                    }
                } finally {
                    hs.forEach(NDArray::close);
                }
                inputs.forEach((k, v) -> {
                    if (v.req() != null && v.req() != GradReq.NULL) {
                        grads.put(k, ex.gradDict().get(k).toDoubleArray());
                    }
                });
            }
            return new Result(outs, outShapes, grads);
        }
    }

    static Symbol op(String op, Map<String, String> attrs, String... inputs) {
        Symbol[] in = new Symbol[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            in[i] = Symbol.variable(inputs[i]);
        }
        return Symbol.create(op, "op", attrs, null, in);
    }

    static int size(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return (int) n;
    }

    /** Values uniform in [-1, 1), multiples of 1/64 (exact in float16/32/64). */
    static double[] values(int n, long seed) {
        java.util.Random r = new java.util.Random(seed);
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = (r.nextInt(128) - 64) / 64.0;
        }
        return v;
    }
}
