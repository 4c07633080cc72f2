package dev.kiln.testutil;

import dev.kiln.engine.KilnException;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.op.Ops;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.BiPredicate;
import java.util.stream.Stream;

/**
 * Random graphs for the differential fuzzers (dev.kiln.mxnet.MxOpFuzz: Kiln's executor against
 * MXNet's; dev.kiln.gpu.GpuGraphFuzz: the CPU's against the GPU's): chains of 2 to 5 random
 * operators from a pool, sometimes with a skip connection (an earlier node as a second input), and
 * sometimes two outputs (the last node and an earlier one), with seeded inputs, head gradients,
 * gradient requests and one or two passes. {@link #run} binds one in Kiln's executor on a device.
 *
 * <p>Graphs avoid what would only compare rounding: a loss's label or a divisor fed by a skip
 * connection (x / x), empty or too-large shapes, and NaN, infinite or huge values inside
 * ({@link #finiteInside}). Softmax labels are class 0. Not thread-safe (one Random).
 */
public final class FuzzGraphs {
    /** Outputs of a graph larger than this many elements are not built. */
    public static final long MAX_OUT = 1 << 16;

    private FuzzGraphs() {}

    /** One bound input: shape, dtype, values. */
    public record Arr(long[] shape, DType type, double[] values) {}

    /**
     * A random graph: its symbol and description, every argument's and auxiliary state's values (by
     * name), one head gradient per output, gradient requests (write, add or null per argument) and
     * the number of forward + backward passes.
     */
    public record Graph(Symbol symbol, String description, Map<String, Arr> inputs, List<Arr> heads, Map<String, GradReq> reqs,
            int passes, DType type) {
        /** The requests with add replaced by write. */
        public Map<String, GradReq> written() {
            Map<String, GradReq> w = new LinkedHashMap<>();
            reqs.forEach((name, req) -> w.put(name, req == GradReq.ADD ? GradReq.WRITE : req));
            return w;
        }
    }

    /**
     * What a pass gave, by name: outputs ("out0", ...; after the last pass; "inference out0", ...: of
     * a forward pass in inference mode after the training passes), the gradient of every
     * argument with a request, the auxiliary states; null with the error when the engine refused.
     */
    public record Run(Map<String, double[]> outputs, Map<String, double[]> grads, Map<String, double[]> aux, String error) {
        public static Run refused(String error) {
            return new Run(null, null, null, error);
        }
    }

    /**
     * Builds a random graph from {@code pool} with attributes from {@code gen}; {@code allowed}
     * filters operator calls (op, attributes). Null when no graph of at least two operators came out.
     */
    public static Graph build(FuzzGen gen, Random r, List<String> pool, BiPredicate<String, Map<String, String>> allowed) {
        long[] dataShape = gen.shape();
        DType t = r.nextInt(4) == 0 ? DType.FLOAT64 : DType.FLOAT32;
        List<Symbol> nodes = new ArrayList<>();
        nodes.add(Symbol.variable("data"));
        StringBuilder what = new StringBuilder("graph data " + Arrays.toString(dataShape) + " " + t);
        int depth = 2 + r.nextInt(4), made = 0;
        Set<String> classLabels = new HashSet<>();
        for (int tries = 0; made < depth && tries < depth * 10; tries++) {
            String op = pool.get(r.nextInt(pool.size()));
            Map<String, String> attrs = gen.attrs(op);
            if (attrs == null || !allowed.test(op, attrs)) {
                continue;
            }
            List<Symbol> given = new ArrayList<>(List.of(nodes.get(nodes.size() - 1)));
            // a skip connection, but not into a loss's label (MXNet leaves its gradient unwritten) nor
            // a divisor (x / x is 1 up to rounding that the next operator may amplify without bound)
            boolean loss = op.endsWith("Output") || op.equals("Softmax");
            boolean division = op.toLowerCase().contains("div");
            if (!loss && !division && r.nextInt(5) < 2) {
                given.add(nodes.get(r.nextInt(nodes.size())));
            }
            try {
                Symbol n = Symbol.create(op, "n" + made, Ops.withInputCount(op, attrs, given.size()), null, given.toArray(new Symbol[0]));
                if (n.numOutputs() > 1) {
                    n = n.get(r.nextInt(n.numOutputs()));
                }
                InferResult res = n.inferShape(Map.of("data", dataShape));
                if (Stream.concat(res.argShapes().stream(), res.outShapes().stream())
                        .anyMatch(x -> x == null || FuzzGen.size(x) == 0 || FuzzGen.size(x) > MAX_OUT)) {
                    continue;
                }
                nodes.add(n);
                if (op.equals("SoftmaxOutput") || op.equals("Softmax")) {
                    classLabels.add("n" + made + "_label");
                }
                made++;
                what.append(" -> ").append(op).append(' ').append(attrs).append(given.size() > 1 ? " (skip)" : "");
            } catch (KilnException | IllegalArgumentException e) {
                // attributes or shapes this chain cannot take: try another operator
            }
        }
        if (made < 2) {
            return null;
        }
        Symbol last = nodes.get(nodes.size() - 1);
        Symbol out = nodes.size() > 3 && r.nextBoolean() ? Symbol.group(last, nodes.get(1 + r.nextInt(nodes.size() - 2))) : last;
        InferResult res;
        try {
            res = out.inferShape(Map.of("data", dataShape));
        } catch (KilnException | IllegalArgumentException e) {
            return null;
        }
        Map<String, Arr> in = new LinkedHashMap<>();
        List<String> argNames = out.listArguments(), auxNames = out.listAuxiliaryStates();
        for (int i = 0; i < argNames.size(); i++) {
            long[] sh = res.argShapes().get(i);
            in.put(argNames.get(i), new Arr(sh, t, classLabels.contains(argNames.get(i)) ? new double[(int) FuzzGen.size(sh)]
                    : values(r, sh, -2, 2)));
        }
        for (int i = 0; i < auxNames.size(); i++) {  // moving statistics: positive variances
            in.put(auxNames.get(i), new Arr(res.auxShapes().get(i), t, values(r, res.auxShapes().get(i), 0.5, 1.5)));
        }
        List<Arr> heads = new ArrayList<>();
        for (long[] sh : res.outShapes()) {
            double[] h = new double[(int) FuzzGen.size(sh)];
            for (int j = 0; j < h.length; j++) {
                h[j] = (r.nextInt(9) - 4) / 4.0;
            }
            heads.add(new Arr(sh, t, h));
        }
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String name : argNames) {
            int x = r.nextInt(10);
            reqs.put(name, x < 6 ? GradReq.WRITE : x < 8 ? GradReq.ADD : GradReq.NULL);
        }
        int passes = 1 + r.nextInt(2);
        return new Graph(out, what.toString(), in, heads, reqs, passes, t);
    }

    private static double[] values(Random r, long[] shape, double lo, double hi) {
        double[] v = new double[(int) FuzzGen.size(shape)];
        for (int j = 0; j < v.length; j++) {
            v[j] = Math.round((lo + r.nextDouble() * (hi - lo)) * 256) / 256.0;
        }
        return v;
    }

    /**
     * Binds the graph in Kiln's executor on {@code ctx} with {@code reqs}, runs its passes (forward
     * in training mode, backward with the heads) and reads everything back to the host.
     */
    public static Run run(Graph g, Context ctx, Map<String, GradReq> reqs) {
        Map<String, long[]> shp = new LinkedHashMap<>();
        Map<String, DType> ts = new LinkedHashMap<>();
        Map<String, GradReq> given = new LinkedHashMap<>();
        List<String> aux = g.symbol.listAuxiliaryStates();
        g.inputs.forEach((name, a) -> {
            shp.put(name, a.shape);
            ts.put(name, a.type);
            if (!aux.contains(name)) {
                given.put(name, reqs.getOrDefault(name, GradReq.WRITE));
            }
        });
        try (NDScope scope = NDScope.open();
                Executor ex = Executor.simpleBind(g.symbol, ctx, shp, ts, given, null)) {
            g.inputs.forEach((name, a) -> NDArray.create(a.values, a.shape).asType(a.type)
                    .copyTo(aux.contains(name) ? ex.auxDict().get(name) : ex.argDict().get(name)));
            NDArray[] h = new NDArray[g.heads.size()];
            for (int j = 0; j < h.length; j++) {
                h[j] = NDArray.create(g.heads.get(j).values, g.heads.get(j).shape).asType(g.heads.get(j).type).copyTo(ctx);
            }
            Map<String, double[]> outs = new LinkedHashMap<>();
            for (int pass = 0; pass < g.passes; pass++) {
                ex.forward(true);
                for (int j = 0; j < ex.outputs().size(); j++) {
                    outs.put("out" + j, host(ex.outputs().get(j)));
                }
                ex.backward(h);
            }
            ex.forward(false);  // inference after training: moving statistics, no backward
            for (int j = 0; j < ex.outputs().size(); j++) {
                outs.put("inference out" + j, host(ex.outputs().get(j)));
            }
            Map<String, double[]> grads = new LinkedHashMap<>(), x = new LinkedHashMap<>();
            ex.gradDict().forEach((name, arr) -> grads.put(name, host(arr)));
            ex.auxDict().forEach((name, arr) -> x.put(name, host(arr)));
            return new Run(outs, grads, x, null);
        } catch (KilnException | IllegalArgumentException e) {
            return Run.refused(e.getMessage());
        }
    }

    private static double[] host(NDArray a) {
        if (!a.context().isGpu()) {
            return a.toDoubleArray();
        }
        try (NDArray h = a.copyTo(Context.cpu())) {
            return h.toDoubleArray();
        }
    }

    /**
     * Whether every value the graph computes (every node's output, in a training forward) is finite
     * and below 1e6 in magnitude on the CPU: larger values (exp of a quotient) make the next
     * normalization or sum compare only the two engines' rounding.
     */
    public static boolean finiteInside(Graph g) {
        Symbol internals = g.symbol.getInternals();
        Map<String, long[]> shp = new LinkedHashMap<>();
        Map<String, DType> ts = new LinkedHashMap<>();
        g.inputs.forEach((name, a) -> {
            shp.put(name, a.shape);
            ts.put(name, a.type);
        });
        List<String> aux = internals.listAuxiliaryStates();
        try (NDScope scope = NDScope.open();
                Executor ex = Executor.simpleBind(internals, Context.cpu(), shp, ts, null, null)) {
            g.inputs.forEach((name, a) -> NDArray.create(a.values, a.shape).asType(a.type)
                    .copyTo(aux.contains(name) ? ex.auxDict().get(name) : ex.argDict().get(name)));
            ex.forward(true);
            for (NDArray o : ex.outputs()) {
                for (double v : o.toDoubleArray()) {
                    if (!(Math.abs(v) < 1e6)) {
                        return false;
                    }
                }
            }
            return true;
        } catch (KilnException | IllegalArgumentException e) {
            return true;  // the comparison run reports it
        }
    }

    /**
     * Kiln's add requests accumulate: after the passes, an add gradient (from zero) must be passes x
     * the written one and the others as written. Returns the first difference, or null.
     */
    public static String checkAdd(Run added, Run written, Map<String, GradReq> reqs, int passes, double tol) {
        if (added.error != null) {
            return "refused: " + added.error;
        }
        for (Map.Entry<String, double[]> e : added.grads.entrySet()) {
            double[] w = written.grads.get(e.getKey()), y = e.getValue();
            double k = reqs.get(e.getKey()) == GradReq.ADD ? passes : 1;
            for (int j = 0; w != null && j < w.length; j++) {
                double x = w[j] * k;
                if (Double.compare(x, y[j]) != 0 && !(Math.abs(x - y[j]) <= tol + tol * Math.abs(x))) {
                    return "gradient of " + e.getKey() + "[" + j + "] is " + y[j] + ", " + k + " x the written one is " + x;
                }
            }
        }
        return null;
    }
}
