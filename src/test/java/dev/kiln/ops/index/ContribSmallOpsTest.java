package dev.kiln.ops.index;

import static dev.kiln.ops.index.GatherNdTest.inputs;
import static dev.kiln.ops.index.NdTesting.in;
import static dev.kiln.ops.index.NdTesting.op;
import static dev.kiln.ops.index.NdTesting.size;
import static dev.kiln.ops.index.NdTesting.values;
import static dev.kiln.testutil.OpTesting.a;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.s;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.List;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The small contrib ops: _contrib_div_sqrt_dim (numeric gradient), _contrib_gradientmultiplier and
 * the straight-through estimators _contrib_round_ste / _contrib_sign_ste (whose gradients differ
 * from the numeric ones on purpose: checked against their definitions), and _contrib_arange_like;
 * forward against Java references in several dtypes, gradients, grad_req=add, large cases, errors.
 */
@ExtendWith(NoLeaks.class)
class ContribSmallOpsTest {

    static double[] map(double[] x, DoubleUnaryOperator f) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = f.applyAsDouble(x[i]);
        }
        return y;
    }

    /** Forward and one backward with head h; checks out = f(x) and dx = g(h) (and twice that under grad_req=add). */
    static void unary(String opName, Map<String, String> attrs, long[] shape, DType t, DoubleUnaryOperator f,
            DoubleUnaryOperator g, double tol) {
        Symbol sym = op(opName, attrs, "data");
        double[] x = map(values(size(shape), 1), v -> v * 3);
        double[] h = values(size(shape), 2);
        NdTesting.Result r = NdTesting.run(sym, inputs("data", in(shape, t, x, GradReq.WRITE)), List.of(h), 1);
        assertArrayEquals(shape, r.shapes().get(0));
        assertArrayEquals(map(x, f), r.out(0), tol, opName + " forward " + t);
        assertArrayEquals(map(h, g), r.grads().get("data"), tol, opName + " gradient " + t);
        NdTesting.Result add = NdTesting.run(sym, inputs("data", in(shape, t, x, GradReq.ADD)), List.of(h), 2);
        assertArrayEquals(map(h, v -> 2 * g.applyAsDouble(v)), add.grads().get("data"), tol, opName + " grad_req=add " + t);
    }

    static double roundAway(double v) {
        return Math.signum(v) * Math.floor(Math.abs(v) + 0.5);
    }

    @Test
    void divSqrtDim() {
        for (long[] shape : new long[][] {s(3, 5), s(2, 3, 16), s(7), s(300, 400)}) {
            double root = Math.sqrt(shape[shape.length - 1]);
            unary("_contrib_div_sqrt_dim", a(), shape, DType.FLOAT64, v -> v / root, v -> v / root, 1e-15);
            unary("_contrib_div_sqrt_dim", a(), shape, DType.FLOAT32, v -> v / root, v -> v / root, 1e-6);
        }
        GradCheck.check(op("_contrib_div_sqrt_dim", a(), "data"), new GradCheck.Inputs().random("data", s(3, 7), -2, 2, 3),
                List.of("data"), 1e-5, 1e-6, 1e-8);
        // integer data divides by the truncated root (MXNet converts the divisor to the data's type)
        NdTesting.Result r = NdTesting.run(op("_contrib_div_sqrt_dim", a(), "data"),
                inputs("data", in(s(1, 5), DType.INT32, new double[] {7, -7, 4, 1, 100})), null, 0);
        assertArrayEquals(new double[] {3, -3, 2, 0, 50}, r.out(0));
        ExecTesting.assertInferFails(op("_contrib_div_sqrt_dim", a(), "data"), Map.of("data", s()), "at least one dimension");
    }

    @Test
    void gradientMultiplier() {
        for (String scalar : new String[] {"2.5", "-1", "0"}) {
            double k = Double.parseDouble(scalar);
            unary("_contrib_gradientmultiplier", a("scalar", scalar), s(4, 6), DType.FLOAT64, v -> v, v -> k * v, 0);
            unary("_contrib_gradientmultiplier", a("scalar", scalar), s(500, 300), DType.FLOAT32, v -> v, v -> k * v, 1e-6);
        }
        assertThrowsMessage(() -> NdTesting.run(op("_contrib_gradientmultiplier", a("scalar", "x"), "data"),
                inputs("data", in(s(2), DType.FLOAT32, new double[2])), null, 0), "scalar");
    }

    @Test
    void straightThroughEstimators() {
        for (DType t : new DType[] {DType.FLOAT64, DType.FLOAT32}) {
            for (long[] shape : new long[][] {s(5, 7), s(600, 300)}) {
                unary("_contrib_round_ste", a(), shape, t, ContribSmallOpsTest::roundAway, v -> v, 0);
                unary("_contrib_sign_ste", a(), shape, t, Math::signum, v -> v, 0);
            }
        }
        // halves away from zero
        NdTesting.Result r = NdTesting.run(op("_contrib_round_ste", a(), "data"),
                inputs("data", in(s(4), DType.FLOAT32, new double[] {-2.5, -0.5, 0.5, 1.5})), null, 0);
        assertArrayEquals(new double[] {-3, -1, 1, 2}, r.out(0));
        r = NdTesting.run(op("_contrib_sign_ste", a(), "data"),
                inputs("data", in(s(3), DType.INT32, new double[] {-4, 0, 9})), null, 0);
        assertArrayEquals(new double[] {-1, 0, 1}, r.out(0));
    }

    static double[] rangeRef(int n, double start, double step, int repeat) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = start + (i / repeat) * step;
        }
        return v;
    }

    @Test
    void arangeLike() {
        Symbol sym = op("_contrib_arange_like", a("start", "1.5", "step", "0.25", "repeat", "2"), "data");
        NdTesting.Result r = NdTesting.run(sym, inputs("data", in(s(2, 3), DType.FLOAT64, values(6, 1), GradReq.WRITE)),
                List.of(values(6, 2)), 1);
        assertArrayEquals(s(2, 3), r.shapes().get(0));
        assertArrayEquals(rangeRef(6, 1.5, 0.25, 2), r.out(0));
        assertArrayEquals(new double[6], r.grads().get("data"), "zero gradient");
        r = NdTesting.run(op("_contrib_arange_like", a("axis", "-2", "step", "3"), "data"),
                inputs("data", in(s(4, 5, 2), DType.INT32, new double[40])), null, 0);
        assertArrayEquals(s(5), r.shapes().get(0));
        assertArrayEquals(rangeRef(5, 0, 3, 1), r.out(0));
        r = NdTesting.run(op("_contrib_arange_like", a("start", "-3", "repeat", "7"), "data"),
                inputs("data", in(s(700, 300), DType.FLOAT32, new double[210000])), null, 0);
        assertArrayEquals(rangeRef(210000, -3, 1, 7), r.out(0));
        ExecTesting.assertInferFails(op("_contrib_arange_like", a("axis", "2"), "data"), Map.of("data", s(4, 5)),
                "axis=2 is out of range");
        ExecTesting.assertInferFails(op("_contrib_arange_like", a("repeat", "0"), "data"), Map.of("data", s(4, 5)),
                "repeat must be positive");
    }
}
