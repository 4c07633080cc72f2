package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.assertAddAccumulates;
import static dev.kiln.ops.elemwise.ElemTesting.assertInferFails;
import static dev.kiln.ops.elemwise.ElemTesting.assertShape;
import static dev.kiln.ops.elemwise.ElemTesting.assertValues;
import static dev.kiln.ops.elemwise.ElemTesting.forward;
import static dev.kiln.ops.elemwise.ElemTesting.gradCheck;
import static dev.kiln.ops.elemwise.ElemTesting.grads;
import static dev.kiln.ops.elemwise.ElemTesting.keptShape;
import static dev.kiln.ops.elemwise.ElemTesting.operandIndex;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.reducedAxes;
import static dev.kiln.ops.elemwise.ElemTesting.reducedShape;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.ops.elemwise.ElemTesting.values;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static dev.kiln.testutil.OpTesting.unravel;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * prod, nansum, nanprod and norm (ord 1 and 2): forward against a sequential Java reference over
 * every axis combination, exact gradients (a product's gradient with zeros in the group, NaN
 * skipped by the nan* ops, norm's at zero), float64 numeric gradients, grad_req=add and errors.
 */
@ExtendWith(NoLeaks.class)
class ProductNormOpsTest {

    /** An op with its extra attributes (norm's ord). */
    record Op(String name, Map<String, String> attrs) {
        @Override
        public String toString() {
            return attrs.isEmpty() ? name : name + attrs;
        }
    }

    static Stream<Op> ops() {
        return Stream.of(new Op("prod", Map.of()), new Op("nansum", Map.of()), new Op("nanprod", Map.of()),
                new Op("norm", Map.of()), new Op("norm", Map.of("ord", "1")));
    }

    private static Symbol sym(Op op, int[] axes, boolean keepdims, boolean exclude) {
        Map<String, String> a = new LinkedHashMap<>(op.attrs());
        if (axes != null) {
            a.put("axis", Arrays.toString(axes).replace('[', '(').replace(']', ')'));
        }
        a.put("keepdims", keepdims ? "True" : "False");
        if (exclude) {
            a.put("exclude", "True");
        }
        return Symbol.create(op.name(), "y", a, null, Symbol.variable("x"));
    }

    /** The reduction of x over `red`, sequentially in double, and the gradient of each element for head g (if given). */
    static double[][] reference(Op op, double[] x, long[] s, boolean[] red, double[] g) {
        long[] k = keptShape(s, red);
        int m = size(k);
        int[] group = new int[x.length];
        for (int i = 0; i < x.length; i++) {
            group[i] = operandIndex(unravel(i, s), k);
        }
        boolean nan = op.name().startsWith("nan");
        double[] y = new double[m];
        boolean product = op.name().endsWith("prod");
        if (product) {
            Arrays.fill(y, 1);
        }
        int ord = Integer.parseInt(op.attrs().getOrDefault("ord", "2"));
        for (int i = 0; i < x.length; i++) {
            double v = x[i];
            int j = group[i];
            if (nan && Double.isNaN(v)) {
                continue;
            }
            switch (op.name()) {
                case "norm" -> y[j] += ord == 1 ? Math.abs(v) : v * v;
                default -> y[j] = product ? y[j] * v : y[j] + v;
            }
        }
        if (op.name().equals("norm") && ord == 2) {
            for (int j = 0; j < m; j++) {
                y[j] = Math.sqrt(y[j]);
            }
        }
        double[] dx = new double[x.length];
        for (int i = 0; g != null && i < x.length; i++) {
            int j = group[i];
            double v = x[i];
            dx[i] = switch (op.name()) {
                case "nansum" -> Double.isNaN(v) ? 0 : g[j];
                case "norm" -> ord == 1 ? g[j] * Math.signum(v) : (y[j] == 0 ? 0 : g[j] * v / y[j]);
                default -> {  // the product of the other elements of the group, NaN read as 1 by nanprod
                    if (nan && Double.isNaN(v)) {
                        yield 0;
                    }
                    double p = 1;
                    for (int q = 0; q < x.length; q++) {
                        if (q != i && group[q] == j && !(nan && Double.isNaN(x[q]))) {
                            p *= x[q];
                        }
                    }
                    yield g[j] * p;
                }
            };
        }
        return new double[][] {y, dx};
    }

    /** Values in [-1.5, 1.5] with a few zeros (two in some groups) and, for the nan* ops, NaN. */
    private static double[] inputs(Op op, int n, long seed) {
        double[] x = rand(n, -1.5, 1.5, 0.2, seed);
        for (int i = 0; i < n; i += 7) {
            x[i] = 0;
        }
        if (op.name().startsWith("nan")) {
            for (int i = 3; i < n; i += 5) {
                x[i] = Double.NaN;
            }
        }
        return x;
    }

    static final int[][] AXES = {null, {0}, {1}, {-1}, {0, 2}, {1, 2}};

    @ParameterizedTest(name = "{0}")
    @MethodSource("ops")
    void forwardAndBackwardMatchTheReference(Op op) {
        long[] s = shape(3, 4, 5);
        double[] x = inputs(op, size(s), 1);
        for (int[] axes : AXES) {
            for (boolean keepdims : new boolean[] {false, true}) {
                for (boolean exclude : op.name().equals("norm") ? new boolean[] {false} : new boolean[] {false, true}) {
                    if (exclude && axes == null) {
                        continue;
                    }
                    boolean[] red = reducedAxes(3, axes, exclude);
                    long[] k = keptShape(s, red);
                    double[] g = rand(size(k), -1, 1, 0, 2);
                    double[][] ref = reference(op, x, s, red, g);
                    String what = op + " axes " + Arrays.toString(axes) + " keepdims " + keepdims + " exclude " + exclude;
                    Symbol sym = sym(op, axes, keepdims, exclude);
                    for (DType t : BOTH) {
                        var out = forward(sym, shapes("x", s), values("x", x), t);
                        assertShape(reducedShape(s, red, keepdims), out.s(0), what);
                        assertValues(ref[0], out.v(0), t, 1, what);
                        Map<String, double[]> gr = grads(sym, shapes("x", s), values("x", x), List.of("x"), GradReq.WRITE, 1,
                                t, List.of(g));
                        assertValues(ref[1], gr.get("x"), t, 1, what + " d/dx");
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ops")
    void largeInputs(Op op) {
        long[] s = shape(7, 3001);
        double[] x = rand(size(s), 0.9, 1.1, 0, 3);  // products stay near 1
        if (op.name().startsWith("nan")) {
            x[17] = Double.NaN;
        }
        for (int[] axes : new int[][] {{1}, {0}, null}) {
            boolean[] red = reducedAxes(2, axes, false);
            long[] k = keptShape(s, red);
            double[] g = rand(size(k), -1, 1, 0, 4);
            // the products' O(n^2) gradient reference stays with the small shapes
            double[][] ref = reference(op, x, s, red, op.name().endsWith("prod") ? null : g);
            Symbol sym = sym(op, axes, false, false);
            for (DType t : BOTH) {
                assertValues(ref[0], forward(sym, shapes("x", s), values("x", x), t).v(0), t, 1, op + " large");
            }
            if (!op.name().endsWith("prod")) {
                Map<String, double[]> gr = grads(sym, shapes("x", s), values("x", x), List.of("x"), GradReq.WRITE, 1,
                        DType.FLOAT64, List.of(g));
                assertValues(ref[1], gr.get("x"), DType.FLOAT64, 1, op + " large d/dx");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ops")
    void numericGradientAndAddRequests(Op op) {
        long[] s = shape(2, 3, 4);
        double[] x = rand(size(s), -1.5, 1.5, 0.2, 5);  // no zero, no NaN: central differences need smoothness
        for (int[] axes : new int[][] {null, {1}, {0, 2}}) {
            gradCheck(sym(op, axes, false, false), shapes("x", s), values("x", x), List.of("x"));
            assertAddAccumulates(sym(op, axes, true, false), shapes("x", s), values("x", x), List.of("x"));
        }
    }

    @Test
    void productGradientWithZerosIsExact() {
        // one zero: it gets the product of the others, the rest 0; two zeros: all 0
        double[] x = {2, 0, 3, 0, 0, 5};
        Symbol sym = sym(new Op("prod", Map.of()), new int[] {1}, false, false);
        for (DType t : BOTH) {
            Map<String, double[]> gr = grads(sym, shapes("x", shape(2, 3)), values("x", x), List.of("x"), GradReq.WRITE, 1, t,
                    List.of(new double[] {1, 1}));
            assertArrayEquals(new double[] {0, 6, 0, 0, 0, 0}, gr.get("x"), "prod gradient " + t);
        }
    }

    @Test
    void integersAndErrors() {
        try (NDScope scope = NDScope.open()) {
            NDArray a = NDArray.create(new double[] {3, 4, -2, 5}, 2, 2).asType(DType.INT32);
            assertArrayEquals(new double[] {5, 5}, NDArray.invoke("norm", Map.of("axis", 1), a).get(0).toDoubleArray(),
                    "int32 norm truncates sqrt(25) and sqrt(29)");
            assertArrayEquals(new double[] {12, -10}, NDArray.invoke("prod", Map.of("axis", 1), a).get(0).toDoubleArray());
        }
        Symbol x = Symbol.variable("x");
        assertThrowsMessage(() -> Symbol.create("norm", "y", Map.of("ord", "3"), null, x), "norm", "ord");
        assertThrowsMessage(() -> Symbol.create("norm", "y", Map.of("exclude", "True"), null, x), "norm", "exclude");
        assertInferFails(Symbol.create("prod", "y", Map.of("axis", "(3,)"), null, x), shapes("x", shape(2, 3)), "(3,)");
        assertInferFails(Symbol.create("nansum", "y", Map.of("axis", "(1, 1)"), null, x), shapes("x", shape(2, 3)),
                "duplicates");
        Symbol n = Symbol.create("norm", "y", Map.of("out_dtype", "float64"), null, x);
        assertThrowsMessage(() -> n.inferType(Map.of("x", DType.FLOAT32)), "out_dtype=float64", "float32");
    }
}
