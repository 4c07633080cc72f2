package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.LARGE;
import static dev.kiln.ops.elemwise.ElemTesting.assertValues;
import static dev.kiln.ops.elemwise.ElemTesting.forward;
import static dev.kiln.ops.elemwise.ElemTesting.gradCheck;
import static dev.kiln.ops.elemwise.ElemTesting.grads;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.ops.elemwise.ElemTesting.values;
import static dev.kiln.ops.elemwise.ElemTesting.zip;
import static dev.kiln.testutil.OpTesting.shapes;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The memory planner's in-place pairs on elementwise ops: an entry read by several nodes (or by a
 * backward node) must not be overwritten by an in-place-able op. Every graph is also run with
 * in-place reuse disabled, which must give the same bits.
 */
@ExtendWith(NoLeaks.class)
class InplaceGraphTest {

    private static final Executor.Options NO_INPLACE = new Executor.Options().optInplace(false);
    private static final Executor.Options NO_REUSE = new Executor.Options().optInplace(false).optMatchRange(0);

    static Stream<UnaryOpsTest.Case> unary() {
        return UnaryOpsTest.cases();
    }

    /** Forward outputs with default planning; asserts the same bits without in-place / without any reuse. */
    private static ExecTesting.Out run(Symbol s, Map<String, long[]> sh, Map<String, double[]> v, DType t) {
        ExecTesting.Out a = forward(s, sh, v, t);
        for (Executor.Options o : List.of(NO_INPLACE, NO_REUSE)) {
            ExecTesting.Out b = forward(s, sh, v, t, o);
            for (int i = 0; i < a.values().size(); i++) {
                assertArrayEquals(b.v(i), a.v(i), "output " + i + " with and without in-place reuse " + t);
            }
        }
        return a;
    }

    @Test
    void variableFeedsExpAndAnotherReader() {
        // y = exp(x); z = x * 2: both outputs, x an argument
        Symbol x = Symbol.variable("x");
        Symbol s = Symbol.group(Symbol.exp("y", x), Symbol.mulScalar("z", x, 2));
        double[] v = rand(LARGE, -3, 3, 0, 1);
        for (DType t : BOTH) {
            ExecTesting.Out out = run(s, shapes("x", shape(LARGE)), values("x", v), t);
            assertValues(ElemTesting.map(v, Math::exp), out.v(0), t, "exp(x)");
            assertValues(ElemTesting.map(v, a -> 2 * a), out.v(1), t, "x * 2");
        }
        gradCheck(s, shapes("x", shape(2, 3)), values("x", rand(6, -2, 2, 0, 2)), List.of("x"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("unary")
    void intermediateFeedsAnInPlaceOpAndAnotherReader(UnaryOpsTest.Case c) {
        // t = a + b is an intermediate: u(t) may run in place only if no other node still reads t
        Symbol a = Symbol.variable("a");
        Symbol b = Symbol.variable("b");
        Symbol t0 = Symbol.elemwiseAdd("t", a, b);
        Symbol y = c.sym().apply(t0);
        Symbol z = Symbol.elemwiseMul("z", t0, b);
        double[] va = c.x(LARGE, 11);  // t = a + b with b small stays in the op's domain
        double[] vb = rand(LARGE, 0.001, 0.01, 0, 12);
        Map<String, long[]> sh = shapes("a", shape(LARGE), "b", shape(LARGE));
        // both output orders (the planner visits the readers of t in a different order)
        for (Symbol s : List.of(Symbol.group(y, z), Symbol.group(z, y))) {
            boolean yFirst = s.listOutputs().get(0).startsWith("y");
            for (DType dt : BOTH) {
                // the reference starts from t as the kernel holds it (rounded to float32 there)
                double[] tv = zip(va, vb, (p, q) -> ElemTesting.asType(p + q, dt));
                double[] ey = ElemTesting.map(tv, c.f());
                double[] ez = zip(tv, vb, (p, q) -> p * q);
                ExecTesting.Out out = run(s, sh, values("a", va, "b", vb), dt);
                assertValues(ey, out.v(yFirst ? 0 : 1), dt, 1e-2, c.op() + "(t)");
                assertValues(ez, out.v(yFirst ? 1 : 0), dt, 1e-2, "t * b after " + c.op() + "(t)");
            }
        }
        gradCheck(Symbol.group(y, z), shapes("a", shape(3, 4), "b", shape(3, 4)),
                values("a", c.gx(12, 13), "b", rand(12, 0.001, 0.01, 0, 14)), List.of("a", "b"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("unary")
    void backwardInputSurvivesALaterInPlaceOp(UnaryOpsTest.Case c) {
        // t = x * 1 (an intermediate), y = u(t): the backward reads t (log, square, abs, clip) or y (exp, sqrt);
        // negative(y) and t + 1 are in-place candidates that must not clobber what the backward reads
        Symbol x = Symbol.variable("x");
        Symbol t = Symbol.mulScalar("t", x, 1.0);
        Symbol y = c.sym().apply(t);
        Symbol w = Symbol.negative("w", y);
        Symbol v = Symbol.plusScalar("v", t, 1);
        Symbol s = Symbol.group(w, v);
        double[] xv = c.gx(24, 21);
        gradCheck(s, shapes("x", shape(2, 3, 4)), values("x", xv), List.of("x"));
        // analytic, large, both dtypes: dx = -g0 * u'(x) + g1
        double[] big = c.x(LARGE, 22);
        double[] g0 = rand(LARGE, -1, 1, 0, 23);
        double[] g1 = rand(LARGE, -1, 1, 0, 24);
        double[] expected = new double[LARGE];
        for (int i = 0; i < LARGE; i++) {
            expected[i] = -g0[i] * c.df().applyAsDouble(big[i]) + g1[i];
        }
        for (DType dt : BOTH) {
            Map<String, double[]> g = grads(s, shapes("x", shape(LARGE)), values("x", big), List.of("x"), GradReq.WRITE, 1, dt,
                    List.of(g0, g1));
            assertValues(expected, g.get("x"), dt, 1, c.op() + " then in-place consumers: d/dx");
        }
    }

    @Test
    void useOutOpsFollowedByInPlaceChains() {
        // exp, sqrt and _rpower_scalar keep their output for the backward; a chain of in-place unary ops
        // after each must leave that output intact
        Symbol x = Symbol.variable("x");
        Symbol[] heads = {
            Symbol.abs("a1", Symbol.negative("n1", Symbol.exp("e", x))),
            Symbol.square("a2", Symbol.plusScalar("p2", Symbol.sqrt("s", Symbol.plusScalar("p0", x, 3)), 1)),
            Symbol.negative("a3", Symbol.mulScalar("m3", Symbol.rpowerScalar("r", x, 1.7), 2)),
            Symbol.negative("a4", Symbol.max("mx", Symbol.exp("e4", x), 1, false)),
        };
        Map<String, long[]> sh = shapes("x", shape(3, 4));
        double[] v = rand(12, -2, 2, 0, 31);
        for (Symbol h : heads) {
            gradCheck(h, sh, values("x", v), List.of("x"));
        }
        gradCheck(Symbol.group(heads), sh, values("x", v), List.of("x"));
    }

    @Test
    void longInPlaceChainOnALargeArray() {
        // clip(abs(negative(square(exp(x * 0.5) - 1)))...) all in place on one buffer
        Symbol x = Symbol.variable("x");
        Symbol s = Symbol.clip("c", Symbol.abs("ab", Symbol.negative("ng",
                Symbol.square("sq", Symbol.minusScalar("ms", Symbol.exp("ex", Symbol.mulScalar("h", x, 0.5)), 1)))), 0.25, 4);
        double[] v = rand(LARGE, -3, 3, 0, 41);
        double[] expected = ElemTesting.map(v, a -> {
            double q = Math.exp(a * 0.5) - 1;
            double r = Math.abs(-(q * q));
            return r > 4 ? 4 : r < 0.25 ? 0.25 : r;
        });
        for (DType t : BOTH) {
            ExecTesting.Out out = run(s, shapes("x", shape(LARGE)), values("x", v), t);
            assertValues(expected, out.v(0), t, 1, "in-place chain");
        }
        // the plan really did reuse: fewer bytes than without in-place
        try (Executor a = ElemTesting.bind(s, shapes("x", shape(LARGE)), values("x", v), DType.FLOAT32, Map.of(), null);
                Executor b = ElemTesting.bind(s, shapes("x", shape(LARGE)), values("x", v), DType.FLOAT32, Map.of(), NO_REUSE)) {
            long with = a.memoryReport().plannedBytes();
            long without = b.memoryReport().plannedBytes();
            assertTrue(with < without, "in-place planning should use less memory: " + with + " vs " + without);
        }
    }

    @Test
    void sameIntermediateTwiceIntoABinaryOp() {
        // t = exp(x); y = t * t: both operands are the same entry (in-place pairs {0,0} and {1,0})
        Symbol x = Symbol.variable("x");
        Symbol t = Symbol.exp("t", x);
        Symbol s = Symbol.group(Symbol.elemwiseMul("y", t, t), Symbol.broadcastAdd("z", t, t));
        double[] v = rand(LARGE, -2, 2, 0, 51);
        for (DType dt : BOTH) {
            ExecTesting.Out out = run(s, shapes("x", shape(LARGE)), values("x", v), dt);
            assertValues(ElemTesting.map(v, a -> Math.exp(2 * a)), out.v(0), dt, "exp(x)^2");
            assertValues(ElemTesting.map(v, a -> 2 * Math.exp(a)), out.v(1), dt, "exp(x)+exp(x)");
        }
        gradCheck(s, shapes("x", shape(2, 3)), values("x", rand(6, -1, 1, 0, 52)), List.of("x"));
    }

    @Test
    void broadcastOutputMayReuseOnlyTheFullOperand() {
        // t = x + 0 (full), r = row (broadcast operand): y = broadcast_sub(t, r) may run in place on t;
        // u = broadcast_mul(r2, t) with the broadcast operand first
        Symbol x = Symbol.variable("x");
        Symbol r = Symbol.variable("r");
        Symbol t = Symbol.plusScalar("t", x, 0.5);
        Symbol r2 = Symbol.mulScalar("r2", r, 2);
        Symbol s = Symbol.group(Symbol.broadcastSub("y", t, r2), Symbol.broadcastMul("u", r2, Symbol.negative("n", t)));
        long[] xs = shape(331, 317);
        long[] rs = shape(317);
        double[] xv = rand(xs, -2, 2, 61);
        double[] rv = rand(rs, -2, 2, 62);
        double[] ey = ElemTesting.broadcastRef(xs, ElemTesting.map(xv, a -> a + 0.5), rs, ElemTesting.map(rv, a -> 2 * a),
                (p, q) -> p - q);
        double[] eu = ElemTesting.broadcastRef(rs, ElemTesting.map(rv, a -> 2 * a), xs, ElemTesting.map(xv, a -> -(a + 0.5)),
                (p, q) -> p * q);
        for (DType dt : BOTH) {
            ExecTesting.Out out = run(s, shapes("x", xs, "r", rs), values("x", xv, "r", rv), dt);
            // x + 0.5 is rounded in float32 before the subtraction: absolute tolerance on the operands' scale
            assertValues(ey, out.v(0), dt, 4, "broadcast_sub");
            assertValues(eu, out.v(1), dt, 4, "broadcast_mul");
        }
        gradCheck(s, shapes("x", shape(3, 4), "r", shape(4)), values("x", rand(12, -2, 2, 0, 63), "r", rand(4, -2, 2, 0, 64)),
                List.of("x", "r"));
    }

    static Stream<String> broadcastOps() {
        return BroadcastOpsTest.ops();
    }

    @ParameterizedTest
    @MethodSource("broadcastOps")
    void broadcastBackwardWithInternalGradientEntries(String op) {
        // both operands and the output gradient are intermediates, so the planner may apply the
        // backward op's in-place pairs (ograd -> lhs_grad / rhs_grad) where the sizes allow it
        BinaryOpsTest.Case c = BinaryOpsTest.CASES.get(BroadcastOpsTest.SAME_SHAPE.get(op));
        long[][][] pairs = {{shape(3, 1), shape(1, 4)}, {shape(1, 4), shape(3, 4)}, {shape(3, 4), shape(4)},
            {shape(2, 3), shape(2, 3)}, {shape(2, 3, 4), shape(3, 1)}};
        long seed = 80;
        for (long[][] p : pairs) {
            Symbol a = Symbol.mulScalar("a", Symbol.variable("a0"), 1.0);
            Symbol b = Symbol.mulScalar("b", Symbol.variable("b0"), 1.0);
            Symbol y = BroadcastOpsTest.FACTORY.get(op).apply(a, b);
            Symbol s = Symbol.group(Symbol.negative("w", Symbol.square("z", y)), Symbol.sum("r", Symbol.exp("e", y), 0, false));
            gradCheck(s, shapes("a0", p[0], "b0", p[1]),
                    values("a0", c.lhs(OpTesting.size(p[0]), seed++), "b0", c.rhs(OpTesting.size(p[1]), seed++)),
                    List.of("a0", "b0"));
        }
    }

    @Test
    void gradReqAddOnAGraphWithFanOut() {
        // x feeds three branches; grad_req=add over two backward calls doubles the summed gradient
        Symbol x = Symbol.variable("x");
        Symbol w = Symbol.variable("w");
        Symbol s = Symbol.group(Symbol.sum("s", Symbol.elemwiseMul("m", x, w), 1, false), Symbol.exp("e", x),
                Symbol.broadcastAdd("b", x, Symbol.sum("sw", w, 0, true)));
        ElemTesting.assertAddAccumulates(s, shapes("x", shape(3, 4), "w", shape(3, 4)),
                values("x", rand(12, -1, 1, 0, 71), "w", rand(12, -1, 1, 0, 72)), List.of("x", "w"));
    }
}
