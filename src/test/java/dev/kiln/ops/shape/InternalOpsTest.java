package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertAddAccumulates;
import static dev.kiln.ops.shape.ShapeFixtures.assertInferFails;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.bind;
import static dev.kiln.ops.shape.ShapeFixtures.forward;
import static dev.kiln.ops.shape.ShapeFixtures.gradCheck;
import static dev.kiln.ops.shape.ShapeFixtures.grads;
import static dev.kiln.ops.shape.ShapeFixtures.head;
import static dev.kiln.ops.shape.ShapeFixtures.random;
import static dev.kiln.ops.shape.ShapeFixtures.randomValues;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.executor.MemoryReport;
import dev.kiln.internal.Json;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The internal ops: identity/_copy, BlockGrad/stop_gradient, zeros_like, ones_like, _zeros,
 * ElementWiseSum/add_n, _grad_add; gradient fan-in (ElementWiseSum below 8 contributions, a
 * _grad_add chain rewritten to add-to from 8 on) and zero-gradient propagation in the plan.
 */
@ExtendWith(NoLeaks.class)
class InternalOpsTest {

    private static final long[] S = shape(2, 3);

    // ---- identity / _copy -----------------------------------------------------------------

    @Test
    void identityAndCopy() {
        Map<String, long[]> s = shapes("x", S);
        Map<String, double[]> v = randomValues(s);
        for (Symbol sym : List.of(Symbol.identity("id", Symbol.variable("x")),
                Symbol.create("_copy", "cp", null, null, Symbol.variable("x")))) {
            for (DType t : BOTH) {
                assertOut(forward(sym, s, v, t), 0, S, v.get("x"), t, sym.name());
            }
            gradCheck(sym, s, v, List.of("x"));
            assertAddAccumulates(sym, s, v, List.of("x"));
        }
    }

    @Test
    void sameGradientEntryForTwoArgumentsIsCopied() {
        // y = a + b: both gradients are the head gradient itself, so the gradient pass routes them
        // through _copy nodes; each argument's request (write/add) applies to its own copy
        Symbol y = Symbol.elemwiseAdd("y", Symbol.variable("a"), Symbol.variable("b"));
        Map<String, long[]> s = shapes("a", S, "b", S);
        Map<String, double[]> v = randomValues(s);
        gradCheck(y, s, v, List.of("a", "b"));
        assertAddAccumulates(y, s, v, List.of("a", "b"));
        for (GradReq ra : GradReq.values()) {
            if (ra == GradReq.NULL) {
                continue;
            }
            Map<String, double[]> g = grads(y, s, v, List.of("a", "b"), ra, 1, DType.FLOAT32);
            GradCheck.assertClose(head(0, S), g.get("a"), 1e-6, 0, "d/da " + ra);
            GradCheck.assertClose(head(0, S), g.get("b"), 1e-6, 0, "d/db " + ra);
        }
    }

    @Test
    void gradReqAddOnAnEntryOtherBackwardNodesRead() {
        // y = (a + 3b) * 2 with grad_req a=add, b=write, two backward calls (head = 1):
        // d/da = 2 per call, d/db = 6 per call; b's gradient must not see a's accumulated buffer
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Symbol y = Symbol.elemwiseAdd("y", a, b.mul(3.0)).mul(2.0);
        Map<String, long[]> s = shapes("a", S, "b", S);
        Map<String, double[]> v = randomValues(s);
        try (Executor ex = bind(y, s, v, DType.FLOAT64, Map.of("a", GradReq.ADD, "b", GradReq.WRITE), null);
                NDArray ones = NDArray.create(new double[] {1, 1, 1, 1, 1, 1}, S)) {
            ex.forward(true);
            ex.backward(ones);
            ex.backward(ones);
            GradCheck.assertClose(new double[] {4, 4, 4, 4, 4, 4}, ex.gradDict().get("a").toDoubleArray(), 0, 0, "a (add)");
            GradCheck.assertClose(new double[] {6, 6, 6, 6, 6, 6}, ex.gradDict().get("b").toDoubleArray(), 0, 0, "b (write)");
        }
    }

    // ---- BlockGrad / stop_gradient --------------------------------------------------------

    @Test
    void blockGradStopsGradients() {
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Map<String, long[]> s = shapes("a", S, "b", S);
        Map<String, double[]> v = randomValues(s);
        double[] h = head(0, S);
        for (boolean alias : new boolean[] {false, true}) {
            Symbol blocked = alias ? Symbol.stopGradient(null, b) : Symbol.blockGrad("bg", b);
            if (alias) {
                assertTrue(blocked.name().startsWith("stop_gradient"), blocked.name());
                assertEquals("BlockGrad", Json.asObject(Json.asArray(Json.asObject(Json.parse(blocked.toJson()), "g").get("nodes"),
                        "nodes").get(1), "node").get("op"));
            }
            // forward: identity
            for (DType t : BOTH) {
                assertOut(forward(blocked, shapes("b", S), Map.of("b", v.get("b")), t), 0, S, v.get("b"), t, "BlockGrad forward");
            }
            // only the blocked path: gradient 0
            Map<String, double[]> g0 = grads(blocked.mul(3.0), shapes("b", S), Map.of("b", v.get("b")), List.of("b"),
                    GradReq.WRITE, 1, DType.FLOAT64);
            GradCheck.assertClose(new double[6], g0.get("b"), 0, 0, "blocked gradient");
            // also with grad_req=add (zeros_like adds nothing) over two calls
            Map<String, double[]> g0a = grads(blocked.mul(3.0), shapes("b", S), Map.of("b", v.get("b")), List.of("b"),
                    GradReq.ADD, 2, DType.FLOAT64);
            GradCheck.assertClose(new double[6], g0a.get("b"), 0, 0, "blocked gradient, grad_req=add");
            // y = a * stopgrad(b) + b: dy/da = b, dy/db = 1 (the product's path is cut)
            Symbol y = Symbol.elemwiseAdd("y", Symbol.elemwiseMul("m", a, blocked), b);
            Map<String, double[]> g = grads(y, s, v, List.of("a", "b"), GradReq.WRITE, 1, DType.FLOAT64);
            double[] ea = new double[6];
            for (int i = 0; i < 6; i++) {
                ea[i] = h[i] * v.get("b")[i];
            }
            GradCheck.assertClose(ea, g.get("a"), 1e-12, 0, "d/da");
            GradCheck.assertClose(h, g.get("b"), 1e-12, 0, "d/db (blocked path contributes nothing)");
        }
    }

    /** Ten chained data*data products (MXNet test_zero_prop, smaller input). */
    private static Symbol tenSquares(Symbol data) {
        Symbol d = data;
        for (int i = 0; i < 10; i++) {
            d = d.mul(d);
        }
        return d;
    }

    private static long planned(Symbol sym, Map<String, long[]> s, Map<String, GradReq> reqs) {
        Map<String, double[]> v = new LinkedHashMap<>();
        try (Executor ex = bind(sym, s, v, DType.FLOAT32, reqs, null)) {
            return ex.memoryReport().plannedBytes();
        }
    }

    @Test
    void zeroPropagationPlansLikeGradReqNull() {
        Map<String, long[]> s = shapes("data", shape(10, 3, 16, 16));
        Symbol net = tenSquares(Symbol.variable("data"));
        long big = planned(net, s, Map.of("data", GradReq.WRITE));
        long small1 = planned(net, s, Map.of("data", GradReq.NULL));
        long small2 = planned(Symbol.stopGradient(null, net), s, Map.of("data", GradReq.WRITE));
        assertTrue(big > small2, "training bind " + big + " should plan more than the stop_gradient bind " + small2);
        assertEquals(small1, small2, "stop_gradient should plan exactly like grad_req=null");
        // the blocked gradient is still written (zeros)
        try (Executor ex = bind(Symbol.stopGradient(null, net), s, Map.of("data", random(1, s.get("data"))), DType.FLOAT32,
                Map.of("data", GradReq.WRITE), null)) {
            ex.gradDict().get("data").fill(5);
            ex.forward(true);
            ex.backward();  // the head gradient is not read: nothing reaches it through stop_gradient
            for (double g : ex.gradDict().get("data").toDoubleArray()) {
                assertEquals(0.0, g);
            }
        }
    }

    @Test
    void stopGradientOnOneBranchPlansNoMoreThanGradReqNullOnThatBranch() {
        // out = chain(a) + stop_gradient(chain(b)); b's gradient is blocked
        Map<String, long[]> s = shapes("a", shape(4, 3, 8, 8), "b", shape(4, 3, 8, 8));
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Symbol ca = a.mul(a).mul(2.0).mul(a);
        Symbol cb = b.mul(b).mul(2.0).mul(b);
        Symbol blocked = Symbol.elemwiseAdd("out", ca, Symbol.stopGradient(null, cb));
        Symbol open = Symbol.elemwiseAdd("out", ca, cb);
        long withStop = planned(blocked, s, Map.of("a", GradReq.WRITE, "b", GradReq.WRITE));
        long withNull = planned(open, s, Map.of("a", GradReq.WRITE, "b", GradReq.NULL));
        long full = planned(open, s, Map.of("a", GradReq.WRITE, "b", GradReq.WRITE));
        assertTrue(withStop <= withNull, "stop_gradient branch " + withStop + " > grad_req null branch " + withNull);
        assertTrue(withNull < full, withNull + " vs " + full);
    }

    // ---- zeros_like / ones_like / _zeros --------------------------------------------------

    @Test
    void zerosLikeOnesLike() {
        Map<String, long[]> s = shapes("x", S);
        Map<String, double[]> v = randomValues(s);
        double[] ones = new double[6];
        java.util.Arrays.fill(ones, 1);
        for (DType t : BOTH) {
            assertOut(forward(Symbol.create("zeros_like", "z", null, null, Symbol.variable("x")), s, v, t), 0, S, new double[6],
                    t, "zeros_like");
            assertOut(forward(Symbol.create("ones_like", "o", null, null, Symbol.variable("x")), s, v, t), 0, S, ones, t,
                    "ones_like");
        }
        // no gradient flows through them (numerically 0 too)
        for (String op : List.of("zeros_like", "ones_like")) {
            Symbol sym = Symbol.elemwiseAdd("y", Symbol.create(op, "z", null, null, Symbol.variable("x")), Symbol.variable("w"));
            Map<String, long[]> s2 = shapes("x", S, "w", S);
            Map<String, double[]> v2 = randomValues(s2);
            gradCheck(sym, s2, v2, List.of("x", "w"));
            GradCheck.assertClose(new double[6], grads(sym, s2, v2, List.of("x"), GradReq.WRITE, 1, DType.FLOAT64).get("x"), 0, 0,
                    op + " gradient");
        }
    }

    @Test
    void zerosWithInferredShape() {
        // _zeros(shape=(2,3), dtype=float64) alone, and _zeros(shape=(0,3)) whose 0 is inferred from its consumer
        Symbol z = Symbol.create("_zeros", "z", Map.of("shape", "(2,3)", "dtype", "float64"), null);
        ExecTesting.Out out = forward(z, Map.of(), Map.of(), DType.FLOAT64);
        assertOut(out, 0, S, new double[6], DType.FLOAT64, "_zeros");
        Symbol begin = Symbol.create("_zeros", "begin_state", Map.of("shape", "(0,3)"), null);
        Symbol y = Symbol.elemwiseAdd("y", Symbol.variable("x"), begin);
        Map<String, long[]> s = shapes("x", S);
        Map<String, double[]> v = randomValues(s);
        assertArrayEquals(S, y.inferShape(s).outShapes().get(0));
        assertOut(forward(y, s, v, DType.FLOAT32), 0, S, v.get("x"), DType.FLOAT32, "x + _zeros");
        // _zeros has a fixed dtype (float32 by default, as in MXNet), so the float64 check names it
        Symbol begin64 = Symbol.create("_zeros", "begin_state", Map.of("shape", "(0,3)", "dtype", "float64"), null);
        gradCheck(Symbol.elemwiseAdd("y", Symbol.variable("x"), begin64), s, v, List.of("x"));
        // a float64 x against the float32 default is a type error naming both types
        assertInferTypeFails(y);
    }

    private static void assertInferTypeFails(Symbol y) {
        dev.kiln.engine.KilnException e = org.junit.jupiter.api.Assertions.assertThrows(dev.kiln.engine.KilnException.class,
                () -> y.inferType(Map.of("x", DType.FLOAT64)));
        OpTesting.assertContains(e.getMessage(), "Type inconsistent", "float32", "float64");
    }

    // ---- ElementWiseSum / add_n / _grad_add -----------------------------------------------

    private static Symbol sumOf(int n, boolean alias) {
        Symbol[] in = new Symbol[n];
        for (int i = 0; i < n; i++) {
            in[i] = Symbol.variable("x" + i);
        }
        return alias ? Symbol.addN("s", in) : Symbol.elementWiseSum("s", in);
    }

    private static Map<String, long[]> sumShapes(int n, long[] shape) {
        Map<String, long[]> s = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
            s.put("x" + i, shape);
        }
        return s;
    }

    @Test
    void elementWiseSumTwoToTen() {
        for (int n = 2; n <= 10; n++) {
            Map<String, long[]> s = sumShapes(n, S);
            Map<String, double[]> v = randomValues(s);
            double[] e = new double[6];
            for (double[] x : v.values()) {
                for (int i = 0; i < 6; i++) {
                    e[i] += x[i];
                }
            }
            List<String> wrt = new ArrayList<>(s.keySet());
            Symbol sym = sumOf(n, n % 2 == 0);
            for (DType t : BOTH) {
                assertOut(forward(sym, s, v, t), 0, S, e, t, "sum of " + n);
            }
            gradCheck(sym, s, v, wrt);
            assertAddAccumulates(sym, s, v, wrt);
        }
        // one input, and a large sum above the OpenMP threshold
        Map<String, long[]> one = sumShapes(1, S);
        Map<String, double[]> v1 = randomValues(one);
        assertOut(forward(sumOf(1, false), one, v1, DType.FLOAT64), 0, S, v1.get("x0"), DType.FLOAT64, "sum of 1");
        Map<String, long[]> big = sumShapes(3, shape(100, 400));
        Map<String, double[]> vb = randomValues(big);
        double[] eb = new double[40000];
        for (double[] x : vb.values()) {
            for (int i = 0; i < eb.length; i++) {
                eb[i] += x[i];
            }
        }
        assertOut(forward(sumOf(3, false), big, vb, DType.FLOAT32), 0, shape(100, 400), eb, DType.FLOAT32, "large sum");
    }

    @Test
    void elementWiseSumInPlaceOnFirstInput() {
        // s = add_n(x*2, y, x): the first input is an intermediate with one reader, so the sum may overwrite it
        Symbol x = Symbol.variable("x");
        Symbol y = Symbol.variable("y");
        Symbol sum = Symbol.addN("s", x.mul(2.0), y, x);
        Map<String, long[]> s = shapes("x", S, "y", S);
        Map<String, double[]> v = randomValues(s);
        double[] e = new double[6];
        for (int i = 0; i < 6; i++) {
            e[i] = 3 * v.get("x")[i] + v.get("y")[i];
        }
        for (DType t : BOTH) {
            try (Executor ex = bind(sum, s, v, t, Map.of(), null)) {
                ex.forward(false);
                assertOut(ShapeFixtures.outputs(ex), 0, S, e, t, "add_n in place");
                MemoryReport r = ex.memoryReport();
                Map<String, Object> out = r.entry("s_output");
                assertEquals("inplace", out.get("req"), r.json());
            }
        }
        gradCheck(sum, s, v, List.of("x", "y"));
    }

    @Test
    void gradAddForward() {
        Symbol g = Symbol.create("_grad_add", "ga", null, null, Symbol.variable("x0"), Symbol.variable("x1"));
        Map<String, long[]> s = sumShapes(2, S);
        Map<String, double[]> v = randomValues(s);
        double[] e = new double[6];
        for (int i = 0; i < 6; i++) {
            e[i] = v.get("x0")[i] + v.get("x1")[i];
        }
        for (DType t : BOTH) {
            assertOut(forward(g, s, v, t), 0, S, e, t, "_grad_add");
        }
        gradCheck(g, s, v, List.of("x0", "x1"));
    }

    @Test
    void elementWiseSumShapeMismatch() {
        Symbol sym = sumOf(3, false);
        assertInferFails(sym, shapes("x0", S, "x1", S, "x2", shape(3, 2)), "Shape inconsistent", "(3,2)", "(2,3)", "arg2");
        assertInferFails(sumOf(2, true), shapes("x0", S, "x1", shape(2, 3, 1)), "Shape inconsistent", "(2,3,1)", "(2,3)");
    }

    // ---- gradient fan-in ------------------------------------------------------------------

    /** x used by n consumers x*(k+1), summed by add_n; d out / dx = h * sum_k (k+1). */
    private static Symbol fanIn(int n) {
        Symbol x = Symbol.variable("x");
        Symbol[] c = new Symbol[n];
        for (int k = 0; k < n; k++) {
            c[k] = Symbol.mulScalar("c" + k, x, k + 1);
        }
        return Symbol.addN("out", c);
    }

    private static int countReq(MemoryReport r, String req, String op) {
        int c = 0;
        for (Map<String, Object> e : r.entries()) {
            if (req.equals(e.get("req")) && (op == null || op.equals(e.get("op")))) {
                c++;
            }
        }
        return c;
    }

    private static int countOp(MemoryReport r, String op) {
        int c = 0;
        for (Map<String, Object> e : r.entries()) {
            if (op.equals(e.get("op"))) {
                c++;
            }
        }
        return c;
    }

    @Test
    void gradientFanInOfTwoUsesElementWiseSum() {
        Map<String, long[]> s = shapes("x", shape(4, 5));
        Map<String, double[]> v = randomValues(s);
        Symbol net = fanIn(2);
        gradCheck(net, s, v, List.of("x"));
        assertAddAccumulates(net, s, v, List.of("x"));
        double[] h = head(0, shape(4, 5));
        double[] g = grads(net, s, v, List.of("x"), GradReq.WRITE, 1, DType.FLOAT64).get("x");
        for (int i = 0; i < h.length; i++) {
            assertEquals(3 * h[i], g[i], 1e-12);
        }
        try (Executor ex = bind(net, s, v, DType.FLOAT32, Map.of("x", GradReq.WRITE), null)) {
            MemoryReport r = ex.memoryReport();
            assertEquals(2, countOp(r, "ElementWiseSum"), "the forward add_n and one gradient sum: " + r.json());
            assertTrue(r.entry("x_sum_grad_output") != null, r.json());
            assertEquals(0, countOp(r, "_grad_add"), r.json());
        }
    }

    @Test
    void gradientFanInOfNineUsesAddTo() {
        int n = 9;
        long[] xs = shape(16, 32);
        Map<String, long[]> s = shapes("x", xs);
        Map<String, double[]> v = randomValues(s);
        Symbol net = fanIn(n);
        // numerically right (small input for the finite differences) ...
        Map<String, long[]> small = shapes("x", shape(2, 3));
        gradCheck(net, small, randomValues(small), List.of("x"));
        assertAddAccumulates(net, small, randomValues(small), List.of("x"));
        // ... and right against the closed form on the planned (add-to) executor
        double[] h = head(0, xs);
        for (DType t : BOTH) {
            double[] g = grads(net, s, v, List.of("x"), GradReq.WRITE, 1, t).get("x");
            for (int i = 0; i < h.length; i++) {
                assertEquals(45 * h[i], g[i], 1e-4, "d/dx[" + i + "] " + t);
            }
        }
        MemoryReport addTo;
        MemoryReport noInplace;
        try (Executor ex = bind(net, s, v, DType.FLOAT32, Map.of("x", GradReq.WRITE), null)) {
            addTo = ex.memoryReport();
        }
        try (Executor ex = bind(net, s, v, DType.FLOAT32, Map.of("x", GradReq.WRITE), new Executor.Options().optInplace(false))) {
            noInplace = ex.memoryReport();
        }
        // the chain: 8 _grad_add nodes and a final identity
        assertEquals(n - 1, countOp(addTo, "_grad_add"), addTo.json());
        assertTrue(addTo.entry("x_sum_grad_final_output") != null, addTo.json());
        // contributions 2..9 accumulate straight into the first one's buffer
        assertEquals(n - 1, countReq(addTo, "add", null), addTo.json());
        assertEquals(0, countReq(noInplace, "add", null), noInplace.json());
        // the skipped _grad_add nodes are not executed
        long steps = Json.asLong(Json.asObject(Json.parse(addTo.json()), "r").get("num_steps"), "num_steps");
        long stepsNo = Json.asLong(Json.asObject(Json.parse(noInplace.json()), "r").get("num_steps"), "num_steps");
        assertEquals(stepsNo - (n - 1), steps, "skipped _grad_add steps");
        // one accumulator instead of a buffer per partial sum
        assertTrue(addTo.numBlocks() < noInplace.numBlocks(), addTo.numBlocks() + " vs " + noInplace.numBlocks());
        assertTrue(addTo.plannedBytes() < noInplace.plannedBytes(), addTo + " vs " + noInplace);
    }

    @Test
    void gradientFanInThroughShapeOps() {
        // x (2,3,4) feeds nine shape-op consumers, each scaled so every path's gradient differs:
        // 8 non-zero contributions (split's two outputs meet in one _backward_SliceChannel, BlockGrad's
        // is zero) -> a chain of 7 _grad_add whose contributions come from _backward_reshape,
        // transpose, _mul_scalar (through identity), _backward_Concat, _backward_SliceChannel and dot
        Symbol x = Symbol.variable("x");
        Symbol sp = Symbol.sliceChannel("sp", x, 2, 2, false);
        List<Symbol> outs = List.of(
                Symbol.mulScalar("o0", Symbol.flatten("f", x), 1),
                Symbol.mulScalar("o1", Symbol.reshape("r", x, -1, 2), 2),
                Symbol.mulScalar("o2", Symbol.expandDims("e", x, 0), 3),
                Symbol.mulScalar("o3", Symbol.transpose("t", x, 2, 0, 1), 4),
                Symbol.mulScalar("o4", Symbol.identity("i", x), 5),
                Symbol.mulScalar("o5", sp.get(0), 6),
                Symbol.mulScalar("o6", sp.get(1), 7),
                Symbol.mulScalar("o7", Symbol.concat("c", 0, x, Symbol.variable("w")), 8),
                Symbol.dot("d", x, Symbol.variable("m")),
                Symbol.mulScalar("o9", Symbol.blockGrad("bg", x), 10));
        Symbol net = Symbol.group(outs);
        Map<String, long[]> s = shapes("x", shape(2, 3, 4), "w", shape(1, 3, 4), "m", shape(4, 2));
        Map<String, double[]> v = randomValues(s);
        gradCheck(Symbol.group(outs.subList(0, 9)), s, v, List.of("x", "w", "m"));
        assertAddAccumulates(net, s, v, List.of("x", "w", "m"));
        try (Executor ex = bind(net, s, v, DType.FLOAT32, Map.of("x", GradReq.WRITE), null)) {
            MemoryReport r = ex.memoryReport();
            assertEquals(7, countOp(r, "_grad_add"), r.json());
            assertEquals(7, countReq(r, "add", null), r.json());
        }
    }
}
