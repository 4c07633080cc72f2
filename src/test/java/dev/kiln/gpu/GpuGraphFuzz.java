package dev.kiln.gpu;

import dev.kiln.engine.KilnException;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.op.Ops;
import dev.kiln.testutil.FuzzGen;
import dev.kiln.testutil.FuzzGraphs;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Random graphs ({@link FuzzGraphs}: chains of 2 to 5 operators with skip connections, two outputs,
 * random write/add/null requests, one or two passes) bound on a reference context and on a test
 * context: outputs, gradients and auxiliary states must agree (float32 to {@code 2e-3}, float64 to
 * {@code 1e-6}, relative and absolute), both must refuse the same graphs, and add requests must
 * accumulate (passes x the written gradient) on the test device. The executor's whole GPU path:
 * planning, in-place and shared memory, CUDA-graph replay of the second pass, gradient accumulation.
 *
 * <p>Not thread-safe; arrays live in scopes (no leaks).
 */
final class GpuGraphFuzz {
    /** What a run found. */
    record Report(int graphs, int bothRan, int bothRefused, List<String> problems) {
        String summary() {
            return "graph fuzz: " + graphs + " graphs, " + bothRan + " ran on both, " + bothRefused + " refused by both, "
                    + problems.size() + " problems";
        }

        String describe() {
            StringBuilder b = new StringBuilder(summary());
            for (String p : problems.subList(0, Math.min(20, problems.size()))) {
                b.append("\n  PROBLEM ").append(p);
            }
            return b.toString();
        }
    }

    private static final FuzzGen.Policy POLICY = new FuzzGen.Policy(
            new String[] {"-1", "0", "1", "1", "2", "2", "3", "4", "5"}, new String[] {"0", "1", "0.5", "-0.5", "-1", "2", "0.9"},
            new String[0], new String[] {"None", "float32"}, 10, 4, false, new DType[] {DType.FLOAT32}, 4, false, 256);

    private GpuGraphFuzz() {}

    /** {@code count} random graphs on {@code ref} and {@code test}. */
    static Report run(Context ref, Context test, long seed, int count) {
        return run(ref, test, seed, count, 5);
    }

    /**
     * {@code count} random graphs on {@code ref} and {@code test} with input dimensions up to
     * {@code dimMax} (large ones reach the kernels' multi-block grids and the CPU's threaded paths).
     */
    static Report run(Context ref, Context test, long seed, int count, int dimMax) {
        Random r = new Random(seed);
        FuzzGen gen = new FuzzGen(r, POLICY).withDimMax(dimMax);
        List<String> pool = new ArrayList<>();
        for (String op : Ops.list()) {
            try {
                if (!Ops.info(op).inputs().isEmpty()) {
                    pool.add(op);
                }
            } catch (KilnException e) {
                pool.add(op);  // variable inputs (num_args)
            }
        }
        int graphs = 0, both = 0, refused = 0;
        List<String> problems = new ArrayList<>();
        for (int i = 0; i < count && problems.size() < 50; i++) {
            FuzzGraphs.Graph g = FuzzGraphs.build(gen, r, pool, GpuGraphFuzz::deterministic);
            if (g == null || !FuzzGraphs.finiteInside(g)) {
                continue;
            }
            graphs++;
            String what = g.description() + " reqs " + g.reqs() + (g.passes() > 1 ? " x2" : "");
            FuzzGraphs.Run a = FuzzGraphs.run(g, ref, g.written());
            FuzzGraphs.Run b = FuzzGraphs.run(g, test, g.written());
            if (a.error() != null && b.error() != null) {
                refused++;
                continue;
            }
            if (a.error() != null || b.error() != null) {
                problems.add(what + ": " + (a.error() != null ? ref + " refused: " + a.error() : test + " refused: " + b.error()));
                continue;
            }
            both++;
            double tol = g.type() == DType.FLOAT64 ? 1e-6 : 2e-3;
            compare(problems, what + ": output ", a.outputs(), b.outputs(), tol);
            compare(problems, what + ": gradient of ", a.grads(), b.grads(), tol);
            compare(problems, what + ": auxiliary state ", a.aux(), b.aux(), tol);
            if (g.reqs().containsValue(GradReq.ADD)) {
                String bad = FuzzGraphs.checkAdd(FuzzGraphs.run(g, test, g.reqs()), b, g.reqs(), g.passes(), tol);
                if (bad != null) {
                    problems.add(what + " on " + test + " with add requests: " + bad);
                }
            }
        }
        return new Report(graphs, both, refused, problems);
    }

    /** Deterministic calls only (no random or mutating operators; RNN's p drops out between layers). */
    private static boolean deterministic(String op, Map<String, String> attrs) {
        if (FuzzGen.isRandom(op, attrs) || op.toLowerCase().contains("update") || op.equals("_grad_add")) {
            return false;
        }
        // all_finite without init_output=True only lowers its output: it keeps what the buffer held
        if ((op.equals("all_finite") || op.equals("multi_all_finite")) && !"True".equals(attrs.getOrDefault("init_output", "True"))) {
            return false;
        }
        return !(op.equals("RNN") && !"0".equals(attrs.getOrDefault("p", "0")));
    }

    private static void compare(List<String> problems, String prefix, Map<String, double[]> x, Map<String, double[]> y, double tol) {
        for (Map.Entry<String, double[]> e : x.entrySet()) {
            double[] a = e.getValue(), b = y.get(e.getKey());
            if (b == null || a.length != b.length) {
                problems.add(prefix + e.getKey() + ": missing or resized on one side");
                continue;
            }
            for (int j = 0; j < a.length; j++) {
                if (Double.compare(a[j], b[j]) != 0 && !(Math.abs(a[j] - b[j]) <= tol + tol * Math.abs(a[j]))) {
                    problems.add(prefix + e.getKey() + "[" + j + "] is " + a[j] + " on the reference, " + b[j] + " on the test device");
                    break;
                }
            }
        }
    }
}
