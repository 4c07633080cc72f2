package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.BOTH;
import static dev.kiln.ops.shape.ShapeFixtures.assertAddAccumulates;
import static dev.kiln.ops.shape.ShapeFixtures.assertInferFails;
import static dev.kiln.ops.shape.ShapeFixtures.assertOut;
import static dev.kiln.ops.shape.ShapeFixtures.forward;
import static dev.kiln.ops.shape.ShapeFixtures.gradCheck;
import static dev.kiln.ops.shape.ShapeFixtures.random;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.testutil.OpTesting.shapes;
import static dev.kiln.testutil.OpTesting.size;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.DType;
import dev.kiln.symbol.InferResult;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Flatten, Reshape (special codes 0/-1/-2/-3/-4, reverse, legacy target_shape) and expand_dims. */
@ExtendWith(NoLeaks.class)
class ReshapeTest {

    /** Data is reinterpreted: same row-major values, new shape. */
    private static void checkReshape(Symbol sym, long[] in, long[] expected) {
        Map<String, long[]> s = shapes("data", in);
        InferResult r = sym.inferShape(s);
        assertArrayEquals(expected, r.outShapes().get(0), "inferred " + Arrays.toString(r.outShapes().get(0)));
        double[] x = random(3, in);
        for (DType t : BOTH) {
            assertOut(forward(sym, s, Map.of("data", x), t), 0, expected, x, t, sym.name());
        }
    }

    /** MXNet's Reshape docstring examples (src/operator/tensor/matrix_op.cc). */
    static Stream<Arguments> mxnetReshapeExamples() {
        return Stream.of(
                // 0 copies the input dim
                Arguments.of(shape(2, 3, 4), new int[] {4, 0, 2}, false, shape(4, 3, 2)),
                Arguments.of(shape(2, 3, 4), new int[] {2, 0, 0}, false, shape(2, 3, 4)),
                // -1 infers one dim
                Arguments.of(shape(2, 3, 4), new int[] {6, 1, -1}, false, shape(6, 1, 4)),
                Arguments.of(shape(2, 3, 4), new int[] {3, -1, 8}, false, shape(3, 1, 8)),
                Arguments.of(shape(2, 3, 4), new int[] {-1}, false, shape(24)),
                // -2 copies all remaining dims
                Arguments.of(shape(2, 3, 4), new int[] {-2}, false, shape(2, 3, 4)),
                Arguments.of(shape(2, 3, 4), new int[] {2, -2}, false, shape(2, 3, 4)),
                Arguments.of(shape(2, 3, 4), new int[] {-2, 1, 1}, false, shape(2, 3, 4, 1, 1)),
                // -3 merges two dims
                Arguments.of(shape(2, 3, 4), new int[] {-3, 4}, false, shape(6, 4)),
                Arguments.of(shape(2, 3, 4, 5), new int[] {-3, -3}, false, shape(6, 20)),
                Arguments.of(shape(2, 3, 4), new int[] {0, -3}, false, shape(2, 12)),
                Arguments.of(shape(2, 3, 4), new int[] {-3, -2}, false, shape(6, 4)),
                // -4 splits one dim in two (one may be -1)
                Arguments.of(shape(2, 3, 4), new int[] {-4, 1, 2, -2}, false, shape(1, 2, 3, 4)),
                Arguments.of(shape(2, 3, 4), new int[] {2, -4, -1, 3, -2}, false, shape(2, 1, 3, 4)),
                // reverse=True: codes applied right to left
                Arguments.of(shape(10, 5, 4), new int[] {-1, 0}, false, shape(40, 5)),
                Arguments.of(shape(10, 5, 4), new int[] {-1, 0}, true, shape(50, 4)),
                Arguments.of(shape(2, 3, 4), new int[] {-1, 0, 0}, true, shape(2, 3, 4)),
                Arguments.of(shape(2, 3, 4), new int[] {0, -1}, false, shape(2, 12)),
                Arguments.of(shape(2, 3, 4), new int[] {0, -1}, true, shape(3, 8)),
                Arguments.of(shape(2, 3, 4, 5), new int[] {-3, 0, 0}, false, shape(6, 4, 5)),
                Arguments.of(shape(2, 3, 4, 5), new int[] {-3, 0, 0}, true, shape(6, 4, 5)),
                Arguments.of(shape(2, 3, 4, 5), new int[] {0, 0, -3}, true, shape(2, 3, 20)),
                Arguments.of(shape(2, 3, 4), new int[] {-1, 2}, true, shape(12, 2)),
                // more combinations
                Arguments.of(shape(2, 3, 4), new int[] {-4, -1, 1, 0, 0}, false, shape(2, 1, 3, 4)),
                Arguments.of(shape(6, 4), new int[] {-4, 2, 3, -1}, false, shape(2, 3, 4)),
                Arguments.of(shape(24), new int[] {2, 3, 4}, false, shape(2, 3, 4)));
    }

    @ParameterizedTest(name = "{index}: {0} shape={1} reverse={2}")
    @MethodSource("mxnetReshapeExamples")
    void reshapeMatchesMxnetDocstring(long[] in, int[] spec, boolean reverse, long[] expected) {
        Symbol x = Symbol.variable("data");
        checkReshape(reverse ? Symbol.reshape("r", x, true, spec) : Symbol.reshape("r", x, spec), in, expected);
    }

    @Test
    void reshapeWithDeprecatedTargetShape() {
        Symbol x = Symbol.variable("data");
        checkReshape(Symbol.create("Reshape", "t", Map.of("target_shape", "(6, 0)"), null, x), shape(2, 3, 4), shape(6, 4));
        // keep_highest: the first dim is kept, the one 0 is inferred
        checkReshape(Symbol.create("Reshape", "k", Map.of("target_shape", "(0, 0)", "keep_highest", "True"), null, x),
                shape(2, 3, 4), shape(2, 12));
    }

    @Test
    void reshapeInfersTheInputFromAKnownOutput() {
        // the input's single unknown dim is completed from the output size (MXNet ReverseReshapeInferShape)
        Symbol r = Symbol.reshape("r", Symbol.variable("data"), 6, 4);
        InferResult res = r.inferShapePartial(shapes("data", shape(2, -1, 4)));
        assertArrayEquals(shape(2, 3, 4), res.argShapes().get(0));
        assertArrayEquals(shape(6, 4), res.outShapes().get(0));
    }

    @Test
    void reshapeGradient() {
        Symbol x = Symbol.variable("data");
        Map<String, long[]> s = shapes("data", shape(2, 3, 4));
        Map<String, double[]> v = Map.of("data", random(5, shape(2, 3, 4)));
        for (Symbol sym : List.of(Symbol.reshape("r1", x, -1, 0), Symbol.reshape("r2", x, true, -1, -3),
                Symbol.reshape("r3", x, -4, 1, 2, -2), Symbol.flatten("f", x), Symbol.expandDims("e", x, 1),
                Symbol.expandDims("e2", x, -1))) {
            gradCheck(sym, s, v, List.of("data"));
            assertAddAccumulates(sym, s, v, List.of("data"));
        }
    }

    @Test
    void reshapeErrors() {
        Symbol x = Symbol.variable("data");
        Map<String, long[]> s = shapes("data", shape(2, 3, 4));
        // size mismatch names both shapes
        assertInferFails(Symbol.reshape("r", x, 5, 5), s, "Target shape size is different to source", "(5,5)",
                "(2,3,4)", "25", "24");
        assertInferFails(Symbol.reshape("r", x, 7, -1), s, "(2,3,4)");
        assertInferFails(Symbol.reshape("r", x, -1, -1), s, "One and only one dim can be inferred");
        assertInferFails(Symbol.reshape("r", x, -4, -1, -1, 0, 0), s, "Split dims cannot both be -1");
        assertInferFails(Symbol.reshape("r", x, -4, 3, -1, 0, 0), s, "do not divide original dim 2");
        assertInferFails(Symbol.reshape("r", x, -3, -3), s, "-3");
        assertInferFails(Symbol.reshape("r", x, 0, 0, 0, 0), s, "code 0");
        assertInferFails(Symbol.reshape("r", x, 2, -5), s, "invalid code -5");
        assertInferFails(Symbol.reshape("r", x, 2, -4, 3), s, "-4");
        // -4 with reverse=True is unsupported in MXNet too (the reversed list puts -4 last): a clear error
        assertInferFails(Symbol.reshape("r", x, true, -4, 1, 2, -2), s, "code -4 must be followed by two dimensions",
                "reverse=True");
    }

    // ---- Flatten --------------------------------------------------------------------------

    @Test
    void flattenForward() {
        Symbol x = Symbol.variable("data");
        checkReshape(Symbol.flatten("f", x), shape(2, 3, 4), shape(2, 12));
        checkReshape(Symbol.create("flatten", "g", null, null, x), shape(2, 3, 4, 5), shape(2, 60));
        checkReshape(Symbol.flatten("f", x), shape(3, 5), shape(3, 5));
        checkReshape(Symbol.flatten("f", x), shape(7), shape(7, 1));
        // large enough for the parallel copy path
        checkReshape(Symbol.flatten("f", x), shape(4, 64, 65), shape(4, 64 * 65));
        // grad_req=add through the parallel accumulate path of the copy kernel
        Map<String, long[]> s = shapes("data", shape(4, 64, 65));
        assertAddAccumulates(Symbol.flatten("f", x), s, Map.of("data", random(8, shape(4, 64, 65))), List.of("data"));
    }

    // ---- expand_dims ----------------------------------------------------------------------

    @Test
    void expandDimsForward() {
        Symbol x = Symbol.variable("data");
        long[] in = shape(2, 3);
        checkReshape(Symbol.expandDims("e", x, 0), in, shape(1, 2, 3));
        checkReshape(Symbol.expandDims("e", x, 1), in, shape(2, 1, 3));
        checkReshape(Symbol.expandDims("e", x, 2), in, shape(2, 3, 1));
        checkReshape(Symbol.expandDims("e", x, -1), in, shape(2, 3, 1));
        checkReshape(Symbol.expandDims("e", x, -2), in, shape(2, 1, 3));
        checkReshape(Symbol.expandDims("e", x, -3), in, shape(1, 2, 3));
    }

    @Test
    void expandDimsAxisOutOfRange() {
        Symbol x = Symbol.variable("data");
        Map<String, long[]> s = shapes("data", shape(2, 3));
        assertInferFails(Symbol.expandDims("e", x, 3), s, "expand_dims", "axis must be in the range [-3, 2]",
                "(3 provided)", "(2,3)");
        assertInferFails(Symbol.expandDims("e", x, -4), s, "[-3, 2]", "(-4 provided)");
    }

    @Test
    void reshapeOfLargeArrayKeepsValues() {
        long[] in = shape(8, 50, 30);
        Symbol r = Symbol.reshape("r", Symbol.variable("data"), -1, 0, 10, 0);
        // (8,50,30) -> -1 consumes 8, 0 copies 50, 10 consumes 30, 0 copies nothing -> must fail
        assertThrows(KilnException.class, () -> r.inferShape(shapes("data", in)));
        checkReshape(Symbol.reshape("r", Symbol.variable("data"), -1, 0, 3, 10), in, shape(8, 50, 3, 10));
        checkReshape(Symbol.reshape("r", Symbol.variable("data"), true, 20, -1), in, shape(20, size(in) / 20));
    }
}
