package dev.kiln.ops.elemwise;

import static dev.kiln.ops.elemwise.ElemTesting.BOTH;
import static dev.kiln.ops.elemwise.ElemTesting.LARGE;
import static dev.kiln.ops.elemwise.ElemTesting.asType;
import static dev.kiln.ops.elemwise.ElemTesting.assertAddAccumulates;
import static dev.kiln.ops.elemwise.ElemTesting.assertShape;
import static dev.kiln.ops.elemwise.ElemTesting.assertValues;
import static dev.kiln.ops.elemwise.ElemTesting.forward;
import static dev.kiln.ops.elemwise.ElemTesting.gradCheck;
import static dev.kiln.ops.elemwise.ElemTesting.grads;
import static dev.kiln.ops.elemwise.ElemTesting.rand;
import static dev.kiln.ops.elemwise.ElemTesting.shape;
import static dev.kiln.ops.elemwise.ElemTesting.values;
import static dev.kiln.testutil.OpTesting.assertThrowsMessage;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.ExecTesting;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.DoubleBinaryOperator;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Array-with-scalar ops: _plus_scalar ... _rpower_scalar. The scalar is applied in the data's dtype. */
@ExtendWith(NoLeaks.class)
class ScalarOpsTest {

    /**
     * One op and scalar: f(x, s), df/dx(x, s), the input domain (away from poles and kinks), and
     * the Symbol factory.
     */
    record Case(String op, double s, DoubleBinaryOperator f, DoubleBinaryOperator df, double lo, double hi,
            double minAbs, BiFunction<Symbol, Double, Symbol> factory) {
        double[] x(int n, long seed) {
            return rand(n, lo, hi, minAbs, seed);
        }

        Symbol sym() {
            return factory.apply(Symbol.variable("x"), s);
        }

        @Override
        public String toString() {
            return op + "(" + s + ")";
        }
    }

    static Stream<Case> cases() {
        List<Case> c = new ArrayList<>();
        c.add(new Case("_plus_scalar", 0.75, (x, s) -> x + s, (x, s) -> 1, -2, 2, 0, (d, s) -> Symbol.plusScalar("y", d, s)));
        c.add(new Case("_minus_scalar", 1.25, (x, s) -> x - s, (x, s) -> 1, -2, 2, 0, (d, s) -> Symbol.minusScalar("y", d, s)));
        c.add(new Case("_rminus_scalar", 2.5, (x, s) -> s - x, (x, s) -> -1, -2, 2, 0, (d, s) -> Symbol.rminusScalar("y", d, s)));
        c.add(new Case("_mul_scalar", -1.5, (x, s) -> x * s, (x, s) -> s, -2, 2, 0, (d, s) -> Symbol.mulScalar("y", d, s)));
        // 0.3 is not a float: the float32 run divides by (float) 0.3 (MXNet's DType(scalar))
        c.add(new Case("_mul_scalar", 0.3, (x, s) -> x * s, (x, s) -> s, -2, 2, 0, (d, s) -> Symbol.mulScalar("y", d, s)));
        c.add(new Case("_div_scalar", 0.3, (x, s) -> x / s, (x, s) -> 1 / s, -2, 2, 0, (d, s) -> Symbol.divScalar("y", d, s)));
        c.add(new Case("_div_scalar", -4, (x, s) -> x / s, (x, s) -> 1 / s, -2, 2, 0, (d, s) -> Symbol.divScalar("y", d, s)));
        c.add(new Case("_rdiv_scalar", 2, (x, s) -> s / x, (x, s) -> -s / (x * x), -2, 2, 0.25,
                (d, s) -> Symbol.rdivScalar("y", d, s)));
        c.add(new Case("_maximum_scalar", 0.1, (x, s) -> x > s ? x : s, (x, s) -> x >= s ? 1 : 0, -2, 2, 0,
                (d, s) -> Symbol.maximumScalar("y", d, s)));
        c.add(new Case("_minimum_scalar", -0.2, (x, s) -> x < s ? x : s, (x, s) -> x <= s ? 1 : 0, -2, 2, 0,
                (d, s) -> Symbol.minimumScalar("y", d, s)));
        // _power_scalar: s = 2 and s = 1 take dedicated exact paths, other exponents libm pow
        c.add(new Case("_power_scalar", 2.5, Math::pow, (x, s) -> s * Math.pow(x, s - 1), 0.25, 3, 0,
                (d, s) -> Symbol.powerScalar("y", d, s)));
        c.add(new Case("_power_scalar", 2, Math::pow, (x, s) -> s * Math.pow(x, s - 1), -3, 3, 0,
                (d, s) -> Symbol.powerScalar("y", d, s)));
        c.add(new Case("_power_scalar", 1, Math::pow, (x, s) -> 1, -3, 3, 0, (d, s) -> Symbol.powerScalar("y", d, s)));
        c.add(new Case("_power_scalar", 3, Math::pow, (x, s) -> s * Math.pow(x, s - 1), -2, 2, 0,
                (d, s) -> Symbol.powerScalar("y", d, s)));
        c.add(new Case("_power_scalar", -0.5, Math::pow, (x, s) -> s * Math.pow(x, s - 1), 0.25, 3, 0,
                (d, s) -> Symbol.powerScalar("y", d, s)));
        c.add(new Case("_rpower_scalar", 1.7, (x, s) -> Math.pow(s, x), (x, s) -> Math.pow(s, x) * Math.log(s), -3, 3, 0,
                (d, s) -> Symbol.rpowerScalar("y", d, s)));
        c.add(new Case("_rpower_scalar", 0.5, (x, s) -> Math.pow(s, x), (x, s) -> Math.pow(s, x) * Math.log(s), -3, 3, 0,
                (d, s) -> Symbol.rpowerScalar("y", d, s)));
        return c.stream();
    }

    private static final List<long[]> SHAPES = List.of(shape(1), shape(13), shape(2, 3, 4), shape(LARGE));

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardMatchesReference(Case c) {
        Symbol s = c.sym();
        long seed = 1;
        for (long[] sh : SHAPES) {
            double[] x = c.x(size(sh), seed++);
            for (DType t : BOTH) {
                double st = asType(c.s(), t);
                double[] expected = ElemTesting.map(x, v -> c.f().applyAsDouble(v, st));
                ExecTesting.Out out = forward(s, shapes("x", sh), values("x", x), t);
                assertShape(sh, out.s(0), c.toString());
                assertValues(expected, out.v(0), t, c.toString());
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void backwardMatchesAnalyticDerivative(Case c) {
        Symbol s = c.sym();
        for (long[] sh : List.of(shape(2, 3, 4), shape(LARGE))) {
            int n = size(sh);
            double[] x = c.x(n, 11);
            double[] g = rand(n, -1, 1, 0, 12);
            for (DType t : BOTH) {
                double st = asType(c.s(), t);
                double[] expected = new double[n];
                for (int i = 0; i < n; i++) {
                    expected[i] = g[i] * c.df().applyAsDouble(x[i], st);
                }
                Map<String, double[]> gr = grads(s, shapes("x", sh), values("x", x), List.of("x"), GradReq.WRITE, 1, t,
                        List.of(g));
                assertValues(expected, gr.get("x"), t, c + " d/dx");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void numericGradient(Case c) {
        gradCheck(c.sym(), shapes("x", shape(3, 4)), values("x", c.x(12, 21)), List.of("x"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gradReqAddAccumulates(Case c) {
        assertAddAccumulates(c.sym(), shapes("x", shape(2, 5)), values("x", c.x(10, 31)), List.of("x"));
    }

    @Test
    void maximumMinimumScalarTiesPassTheGradient() {
        // MXNet: _backward_maximum_scalar = g * (x >= s), _backward_minimum_scalar = g * (x <= s)
        double[] x = {0.5, 1, 2, -1};
        double[] g = {1, 2, 3, 4};
        Map<String, long[]> sh = shapes("x", shape(4));
        for (DType t : BOTH) {
            assertValues(new double[] {0, 2, 3, 0}, grads(Symbol.maximumScalar("y", Symbol.variable("x"), 1), sh,
                    values("x", x), List.of("x"), GradReq.WRITE, 1, t, List.of(g)).get("x"), t, "_maximum_scalar tie");
            assertValues(new double[] {1, 2, 0, 4}, grads(Symbol.minimumScalar("y", Symbol.variable("x"), 1), sh,
                    values("x", x), List.of("x"), GradReq.WRITE, 1, t, List.of(g)).get("x"), t, "_minimum_scalar tie");
        }
    }

    @Test
    void missingScalarDefaultsToOneAsMxnet19() {
        // MXNet 1.9.1 (NumpyBinaryScalarParam): scalar defaults to 1, is_int to True (checked with the oracle:
        // _plus_scalar without scalar gives x + 1)
        Symbol x = Symbol.variable("x");
        double[] v = {0.5, 2, -3};
        Map<String, double[]> expectedWithOne = new LinkedHashMap<>();
        expectedWithOne.put("_plus_scalar", new double[] {1.5, 3, -2});
        expectedWithOne.put("_minus_scalar", new double[] {-0.5, 1, -4});
        expectedWithOne.put("_rminus_scalar", new double[] {0.5, -1, 4});
        expectedWithOne.put("_mul_scalar", v);
        expectedWithOne.put("_div_scalar", v);
        expectedWithOne.put("_rdiv_scalar", new double[] {2, 0.5, -1.0 / 3});
        expectedWithOne.put("_maximum_scalar", new double[] {1, 2, 1});
        expectedWithOne.put("_minimum_scalar", new double[] {0.5, 1, -3});
        expectedWithOne.put("_power_scalar", v);
        expectedWithOne.put("_rpower_scalar", new double[] {1, 1, 1});
        for (Map.Entry<String, double[]> e : expectedWithOne.entrySet()) {
            String op = e.getKey();
            double[] expected = e.getValue();
            Symbol s = Symbol.create(op, "y", Map.of(), null, x);
            for (DType t : BOTH) {
                assertValues(expected, forward(s, shapes("x", shape(3)), values("x", v), t).v(0), t, op + " without scalar");
            }
            try (NDScope scope = NDScope.open()) {
                NDArray a = NDArray.create(v, 3);
                assertValues(expected, NDArray.invoke(op, Map.of(), a).get(0).toDoubleArray(), DType.FLOAT64,
                        op + " imperative without scalar");
            }
        }
        // the is_int flag of MXNet 1.9 symbol files is accepted
        Symbol s = Symbol.create("_mul_scalar", "y", Map.of("scalar", "3", "is_int", "True"), null, x);
        assertValues(new double[] {1.5, 6, -9}, forward(s, shapes("x", shape(3)), values("x", v), DType.FLOAT64).v(0),
                DType.FLOAT64, "is_int");
    }

    @Test
    void badScalarIsRejected() {
        Symbol x = Symbol.variable("x");
        for (String op : List.of("_plus_scalar", "_minus_scalar", "_rminus_scalar", "_mul_scalar", "_div_scalar",
                "_rdiv_scalar", "_maximum_scalar", "_minimum_scalar", "_power_scalar", "_rpower_scalar")) {
            assertThrowsMessage(() -> Symbol.create(op, "y", Map.of("scalar", "abc"), null, x), op, "scalar", "abc");
            assertThrowsMessage(() -> Symbol.create(op, "y", Map.of("scalar", "2", "scalr", "1"), null, x), op, "scalr");
            try (NDScope scope = NDScope.open()) {
                NDArray a = NDArray.create(new double[] {1, 2}, 2);
                assertThrowsMessage(() -> NDArray.invoke(op, Map.of("scalar", "1x"), a), op, "scalar", "1x");
            }
        }
    }

    @Test
    void pythonStyleOperators() {
        Symbol x = Symbol.variable("x");
        double[] v = rand(12, 0.25, 3, 0, 41);
        Object[][] cases = {
            {x.plus(1.5), (DoubleBinaryOperator) (a, b) -> a + 1.5},
            {x.minus(1.5), (DoubleBinaryOperator) (a, b) -> a - 1.5},
            {x.rminus(1.5), (DoubleBinaryOperator) (a, b) -> 1.5 - a},
            {x.mul(1.5), (DoubleBinaryOperator) (a, b) -> a * 1.5},
            {x.div(1.5), (DoubleBinaryOperator) (a, b) -> a / 1.5},
            {x.rdiv(1.5), (DoubleBinaryOperator) (a, b) -> 1.5 / a},
            {x.pow(1.5), (DoubleBinaryOperator) (a, b) -> Math.pow(a, 1.5)},
            {x.rpow(1.5), (DoubleBinaryOperator) (a, b) -> Math.pow(1.5, a)},
            {x.negative(), (DoubleBinaryOperator) (a, b) -> -a},
        };
        for (Object[] cs : cases) {
            Symbol s = (Symbol) cs[0];
            double[] expected = ElemTesting.map(v, a -> ((DoubleBinaryOperator) cs[1]).applyAsDouble(a, 0));
            for (DType t : BOTH) {
                assertValues(expected, forward(s, shapes("x", shape(3, 4)), values("x", v), t).v(0), t, s.toJson());
            }
        }
    }

    @Test
    void imperativeMatchesSymbolicBitForBit() {
        double[] v = rand(LARGE, 0.25, 3, 0, 51);
        long[] sh = shape(LARGE);
        try (NDScope scope = NDScope.open()) {
            for (DType t : BOTH) {
                NDArray x = NDArray.create(v, sh).asType(t);
                Object[][] cases = {
                    {x.add(0.75), Symbol.plusScalar("y", Symbol.variable("x"), 0.75)},
                    {x.sub(1.25), Symbol.minusScalar("y", Symbol.variable("x"), 1.25)},
                    {x.rsub(2.5), Symbol.rminusScalar("y", Symbol.variable("x"), 2.5)},
                    {x.mul(0.3), Symbol.mulScalar("y", Symbol.variable("x"), 0.3)},
                    {x.div(0.3), Symbol.divScalar("y", Symbol.variable("x"), 0.3)},
                    {x.rdiv(2), Symbol.rdivScalar("y", Symbol.variable("x"), 2)},
                    {x.pow(2.5), Symbol.powerScalar("y", Symbol.variable("x"), 2.5)},
                    {x.pow(2), Symbol.powerScalar("y", Symbol.variable("x"), 2)},
                    {x.mul(1e-5), Symbol.mulScalar("y", Symbol.variable("x"), 1e-5)},  // "1.0E-5"
                    {x.mul(1e10), Symbol.mulScalar("y", Symbol.variable("x"), 1e10)},  // "1.0E10"
                };
                for (Object[] cs : cases) {
                    Symbol s = (Symbol) cs[1];
                    double[] got = ((NDArray) cs[0]).toDoubleArray();
                    double[] symbolic = forward(s, shapes("x", sh), values("x", v), t).v(0);
                    assertArrayEquals(symbolic, got, "imperative vs symbolic " + s.toJson() + " " + t);
                }
                // and against the reference for the formatted scalars
                assertValues(ElemTesting.map(v, a -> a * asType(1e-5, t)), x.mul(1e-5).toDoubleArray(), t, "x * 1e-5");
                assertValues(ElemTesting.map(v, a -> a * asType(1e10, t)), x.mul(1e10).toDoubleArray(), t, "x * 1e10");
            }
        }
    }

    @Test
    void imperativeInPlace() {
        double[] v = rand(LARGE, -2, 2, 0, 61);
        for (DType t : BOTH) {
            try (NDScope scope = NDScope.open()) {
                NDArray x = NDArray.create(v, LARGE).asType(t);
                NDArray.invokeInto("_rminus_scalar", Map.of("scalar", 2.5), x, x);
                assertValues(ElemTesting.map(v, a -> 2.5 - a), x.toDoubleArray(), t, "_rminus_scalar in place");
            }
        }
    }
}
