package dev.kiln.gpu;

import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Every operator computes in float16 and bfloat16 (kiln/low_precision.h): each float32 case of the
 * GPU catalogue runs on the CPU in the low-precision type, and its outputs, gradients and
 * auxiliary states are compared with a float32 run on the same (rounded) input values. The
 * tolerances are a few units in the last place of the low-precision type, since each operator
 * output is rounded once and a multi-operator case compounds a few roundings.
 */
@ExtendWith(NoLeaks.class)
class LowPrecisionOpsTest {
    /** Cases whose results legitimately differ from float32 on rounded inputs, and why. */
    static final Map<String, String> EXCLUDED = Map.of(
            "_zeros", "the graph adds a float32 _zeros (its dtype parameter) to x: mixed types are refused, as in MXNet",
            "_arange", "the graph multiplies x by a float32 _arange: mixed types are refused, as in MXNet",
            "_arange int32 to float32", "the graph adds a Cast to float32 to x: mixed types are refused, as in MXNet",
            "Embedding float32", "the dtype parameter pins the weight to float32 (the float16/bfloat16 cases set it)",
            "Embedding large", "the dtype parameter's default pins the weight to float32",
            "norm chain", "d beta of a normalization followed by another is a cancellation of O(1) terms to ~1e-6; "
                    + "its rounding error is O(eps) of the terms, not of the result (checked in float32/float64)",
            "box_nms_large", "box_nms records input rows (up to 6000) in its hidden output in the data type, as MXNet: "
                    + "float16 / bfloat16 cannot hold them (the small box_nms cases run)");

    static double[] tol(DType t) {
        return t == DType.FLOAT16 ? new double[] {1e-2, 1e-2} : new double[] {6e-2, 6e-2};
    }

    static void compare(GpuCase c, DType low, Context ctx) {
        Map<String, double[]> ref = c.run(Context.cpu(), DType.FLOAT32, low);
        Map<String, double[]> got = c.run(ctx, low, null);
        if (!ref.keySet().equals(got.keySet())) {
            throw new AssertionError(c.label() + " " + low + ": results " + got.keySet() + " vs float32 " + ref.keySet());
        }
        double[] tol = tol(low);
        for (String k : ref.keySet()) {
            GradCheck.assertClose(ref.get(k), got.get(k), tol[0], tol[1], c.label() + " " + low + " " + k + " (" + ctx
                    + " vs float32 on the CPU)");
        }
    }

    static Stream<DynamicTest> cases(Context ctx) {
        List<DynamicTest> tests = new ArrayList<>();
        for (GpuCases f : GpuCases.all()) {
            for (GpuCase c : f.cases()) {
                if (c.isCustom() || !c.runsIn(DType.FLOAT32) || EXCLUDED.containsKey(c.label())) {
                    continue;
                }
                for (DType low : List.of(DType.FLOAT16, DType.BFLOAT16)) {
                    tests.add(DynamicTest.dynamicTest(c.label() + " " + low, () -> compare(c, low, ctx)));
                }
            }
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> everyFloatCaseRunsInFloat16AndBfloat16() {
        return cases(Context.cpu());
    }
}
