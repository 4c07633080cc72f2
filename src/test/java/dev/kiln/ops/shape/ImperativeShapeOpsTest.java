package dev.kiln.ops.shape;

import static dev.kiln.ops.shape.ShapeFixtures.concatRef;
import static dev.kiln.ops.shape.ShapeFixtures.random;
import static dev.kiln.ops.shape.ShapeFixtures.shape;
import static dev.kiln.ops.shape.ShapeFixtures.splitRef;
import static dev.kiln.ops.shape.ShapeFixtures.transposeRef;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.kiln.engine.KilnException;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.NDScope;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;
import dev.kiln.testutil.OpTesting;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** The same ops run imperatively (NDArray.invoke): shapes, values and errors. */
@ExtendWith(NoLeaks.class)
class ImperativeShapeOpsTest {

    private static void check(NDArray a, long[] shape, double[] values, String what) {
        assertArrayEquals(shape, a.shape().dims(), what + " shape");
        GradCheck.assertClose(values, a.toDoubleArray(), 1e-6, 1e-6, what);
    }

    @Test
    void reshapeFamily() {
        double[] v = random(1, shape(2, 3, 4));
        try (NDScope scope = NDScope.open()) {
            NDArray x = scope.attach(NDArray.create(v, 2, 3, 4));
            check(scope.attach(NDArray.invoke("Reshape", Map.of("shape", new int[] {4, 0, 2}), x).get(0)), shape(4, 3, 2), v,
                    "reshape (4,0,2)");
            check(scope.attach(NDArray.invoke("reshape", Map.of("shape", new int[] {-1, 0}, "reverse", true), x).get(0)),
                    shape(6, 4), v, "reshape reverse");
            check(scope.attach(NDArray.invoke("Flatten", Map.of(), x).get(0)), shape(2, 12), v, "flatten");
            check(scope.attach(NDArray.invoke("expand_dims", Map.of("axis", -1), x).get(0)), shape(2, 3, 4, 1), v, "expand_dims");
            check(scope.attach(NDArray.invoke("identity", Map.of(), x).get(0)), shape(2, 3, 4), v, "identity");
            check(scope.attach(NDArray.invoke("stop_gradient", Map.of(), x).get(0)), shape(2, 3, 4), v, "stop_gradient");
            check(scope.attach(NDArray.invoke("zeros_like", Map.of(), x).get(0)), shape(2, 3, 4), new double[24], "zeros_like");
            KilnException e = assertThrows(KilnException.class,
                    () -> NDArray.invoke("Reshape", Map.of("shape", new int[] {5, 5}), x));
            OpTesting.assertContains(e.getMessage(), "(5,5)", "(2,3,4)");
        }
    }

    @Test
    void concatSplitTransposeDotSum() {
        double[] a = random(1, shape(2, 3));
        double[] b = random(2, shape(2, 2));
        double[] m = random(3, shape(3, 5));
        try (NDScope scope = NDScope.open()) {
            NDArray xa = scope.attach(NDArray.create(a, 2, 3));
            NDArray xb = scope.attach(NDArray.create(b, 2, 2));
            NDArray xm = scope.attach(NDArray.create(m, 3, 5));
            check(scope.attach(NDArray.invoke("Concat", Map.of("num_args", 2, "dim", 1), xa, xb).get(0)), shape(2, 5),
                    concatRef(List.of(a, b), List.of(shape(2, 3), shape(2, 2)), 1), "concat");
            List<NDArray> parts = NDArray.invoke("split", Map.of("num_outputs", 3, "axis", 0), xm);
            parts.forEach(scope::attach);
            assertEquals(3, parts.size());
            for (int p = 0; p < 3; p++) {
                check(parts.get(p), shape(1, 5), splitRef(m, shape(3, 5), 0, 3, p), "split piece " + p);
            }
            check(scope.attach(xm.transpose()), shape(5, 3), transposeRef(m, shape(3, 5), new int[] {1, 0}), "transpose");
            DotTest.Ref ref = new DotTest.Ref(shape(2, 3), shape(3, 5), false, false);
            check(scope.attach(xa.dot(xm)), shape(2, 5), ref.forward(a, m), "dot");
            double[] sum = new double[6];
            for (int i = 0; i < 6; i++) {
                sum[i] = 3 * a[i];
            }
            check(scope.attach(NDArray.invoke("add_n", Map.of("num_args", 3), xa, xa, xa).get(0)), shape(2, 3), sum, "add_n");
            KilnException e = assertThrows(KilnException.class, () -> xa.dot(xb));
            OpTesting.assertContains(e.getMessage(), "dot shape error", "(2,3)", "(2,2)");
            KilnException e2 = assertThrows(KilnException.class,
                    () -> NDArray.invoke("split", Map.of("num_outputs", 2, "axis", 0), xm));
            OpTesting.assertContains(e2.getMessage(), "does not evenly divide 3");
        }
    }
}
