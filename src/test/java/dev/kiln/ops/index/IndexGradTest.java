package dev.kiln.ops.index;

import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.s;

import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * float64 numeric gradient checks of the index-family operators: f = sum p * out with random p;
 * every differentiable input is perturbed. Index inputs are fixed integer-valued doubles (with
 * repeats, so scatter-add accumulation is covered); ops with MXNet's zero gradient (argmax,
 * argmin, one_hot, argsort, topk indices/mask) must give exactly the numeric zero.
 */
@ExtendWith(NoLeaks.class)
class IndexGradTest {

    record G(String label, Symbol sym, GradCheck.Inputs in, Map<String, long[]> shapes, List<String> wrt, double eps, double tol) {
        G with(double e, double t) {
            return new G(label, sym, in, shapes, wrt, e, t);
        }
    }

    static Symbol op(String op, Map<String, String> attrs, String... inputs) {
        Symbol[] in = new Symbol[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            in[i] = Symbol.variable(inputs[i]);
        }
        return Symbol.create(op, "op", attrs, null, in);
    }

    /** float64 -> dtype -> float64 (head gradients are float64), so both backward casts run. */
    static Symbol roundTrip(String dtype) {
        Symbol mid = Symbol.create("Cast", "down", a("dtype", dtype), null, Symbol.variable("data"));
        return Symbol.create("Cast", "up", a("dtype", "float64"), null, mid);
    }

    /** Distinct values (no ties for the ordering ops), shuffled, spaced well above eps. */
    static double[] distinct(long seed, long[] shape) {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        List<Double> v = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            v.add(-1 + 2.0 * i / n + 0.01);
        }
        java.util.Collections.shuffle(v, new Random(seed));
        return v.stream().mapToDouble(Double::doubleValue).toArray();
    }

    static G g(String label, Symbol sym, List<String> wrt, Object... namesShapesValues) {
        GradCheck.Inputs in = new GradCheck.Inputs();
        Map<String, long[]> shapes = new LinkedHashMap<>();
        for (int i = 0; i < namesShapesValues.length; i += 3) {
            String name = (String) namesShapesValues[i];
            long[] shape = (long[]) namesShapesValues[i + 1];
            double[] v = (double[]) namesShapesValues[i + 2];
            in.put(name, shape, v != null ? v : distinct(label.hashCode() + i, shape));
            shapes.put(name, shape);
        }
        return new G(label, sym, in, shapes, wrt, 1e-5, 1e-6);
    }

    static List<G> cases() {
        List<G> c = new ArrayList<>();
        List<String> d = List.of("data");
        // Cast: float64 -> float64 exactly; float32 / float16 round, so a bigger step and tolerance
        c.add(g("Cast float64", op("Cast", a("dtype", "float64"), "data"), d, "data", s(3, 4), null));
        G f32 = g("Cast float32", roundTrip("float32"), d, "data", s(3, 4), null);
        c.add(f32.with(1e-2, 1e-4));
        G f16 = g("Cast float16", roundTrip("float16"), d, "data", s(3, 4), null);
        c.add(f16.with(0.25, 1e-2));
        // slice / slice_axis
        c.add(g("slice", op("slice", a("begin", "(1, None)", "end", "(3, None)", "step", "(1, 2)"), "data"), d, "data", s(4, 5), null));
        c.add(g("slice neg", op("slice", a("begin", "(None, 3, -1)", "end", "(None, 0, None)", "step", "(-1, -1, -2)"), "data"), d,
                "data", s(2, 4, 5), null));
        c.add(g("slice_axis", op("slice_axis", a("axis", "1", "begin", "1", "end", "-1"), "data"), d, "data", s(3, 5, 2), null));
        c.add(g("slice_axis None", op("slice_axis", a("axis", "0", "begin", "-2", "end", "None"), "data"), d, "data", s(3, 4), null));
        // take
        List<String> ta = List.of("a");
        for (String mode : List.of("clip", "wrap", "raise")) {
            double[] idx = mode.equals("raise") ? new double[] {0, 2, 2, 3, 1} : new double[] {-1, 2, 2, 7, 1};
            c.add(g("take " + mode, op("take", a("mode", mode), "a", "indices"), ta, "a", s(4, 3), null, "indices", s(5), idx));
            c.add(g("take axis1 " + mode, op("take", a("axis", "1", "mode", mode), "a", "indices"), ta, "a", s(2, 4, 3), null,
                    "indices", s(5), idx));
        }
        // pick
        c.add(g("pick", op("pick", a("axis", "1"), "data", "index"), d, "data", s(3, 4), null, "index", s(3), new double[] {0, 3, 9}));
        c.add(g("pick wrap keepdims", op("pick", a("axis", "0", "keepdims", "True", "mode", "wrap"), "data", "index"), d, "data",
                s(3, 4), null, "index", s(1, 4), new double[] {-1, 4, 2, 0}));
        // where
        c.add(g("where", op("where", a(), "condition", "x", "y"), List.of("x", "y"), "condition", s(2, 3), new double[] {1, 0, 0, 2, 0, -1},
                "x", s(2, 3), null, "y", s(2, 3), null));
        c.add(g("where 1-D cond", op("where", a(), "condition", "x", "y"), List.of("x", "y"), "condition", s(2), new double[] {0, 1},
                "x", s(2, 3), null, "y", s(2, 3), null));
        // tile / repeat / stack / batch_dot
        c.add(g("tile", op("tile", a("reps", "(2, 1, 3)"), "data"), d, "data", s(2, 3), null));
        c.add(g("tile short reps", op("tile", a("reps", "(2,)"), "data"), d, "data", s(2, 3), null));
        c.add(g("repeat", op("repeat", a("repeats", "2", "axis", "1"), "data"), d, "data", s(2, 3, 2), null));
        c.add(g("repeat flat", op("repeat", a("repeats", "3"), "data"), d, "data", s(2, 3), null));
        c.add(g("stack", op("stack", a("num_args", "2", "axis", "1"), "x0", "x1"), List.of("x0", "x1"), "x0", s(2, 3), null, "x1",
                s(2, 3), null));
        for (String tA : List.of("False", "True")) {
            for (String tB : List.of("False", "True")) {
                long[] l = tA.equals("True") ? s(2, 4, 3) : s(2, 3, 4);
                long[] r = tB.equals("True") ? s(2, 5, 4) : s(2, 4, 5);
                c.add(g("batch_dot " + tA + tB, op("batch_dot", a("transpose_a", tA, "transpose_b", tB), "lhs", "rhs"),
                        List.of("lhs", "rhs"), "lhs", l, null, "rhs", r, null));
            }
        }
        // topk / sort
        c.add(g("topk value", op("topk", a("ret_typ", "value", "k", "2"), "data"), d, "data", s(3, 5), null));
        c.add(g("topk both axis0", op("topk", a("ret_typ", "both", "k", "2", "axis", "0", "is_ascend", "True"), "data"), d, "data",
                s(4, 3), null));
        c.add(g("topk value flat", op("topk", a("ret_typ", "value", "k", "3", "axis", "None"), "data"), d, "data", s(3, 4), null));
        c.add(g("sort", op("sort", a(), "data"), d, "data", s(3, 5), null));
        c.add(g("sort desc axis0", op("sort", a("axis", "0", "is_ascend", "False"), "data"), d, "data", s(4, 2, 3), null));
        // zero-gradient ops
        c.add(g("argmax", op("argmax", a("axis", "1"), "data"), d, "data", s(3, 5), null));
        c.add(g("argmin", op("argmin", a(), "data"), d, "data", s(3, 5), null));
        c.add(g("argsort", op("argsort", a(), "data"), d, "data", s(3, 5), null));
        c.add(g("topk indices", op("topk", a("k", "2"), "data"), d, "data", s(3, 5), null));
        c.add(g("topk mask", op("topk", a("k", "2", "ret_typ", "mask"), "data"), d, "data", s(3, 5), null));
        c.add(g("one_hot", op("one_hot", a("depth", "4"), "indices"), List.of("indices"), "indices", s(3), new double[] {0.5, 2.5, 1.5}));
        return c;
    }

    @TestFactory
    Stream<DynamicTest> float64Gradients() {
        return cases().stream().map(c -> DynamicTest.dynamicTest(c.label(), () -> {
            GradCheck.check(c.sym(), c.in(), c.wrt(), c.eps(), c.tol(), c.tol() * 1e-2);
        }));
    }
}
