package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.testutil.GradCheck;
import dev.kiln.testutil.NoLeaks;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Every float32 case of the GPU catalogue in float16 and bfloat16 on {@code gpu(0)} against the
 * same case in the same type on the CPU: FullyConnected (cublasGemmEx), Convolution (cuDNN with
 * tensor-op math), BatchNorm, Pooling, Activation, the elementwise and scalar arithmetic of elemwise.cu and
 * ElementWiseSum / _grad_add, Cast / amp_cast / amp_multicast take the 16-bit types natively
 * (computed in float32 or double, each output rounded once, as the CPU's promoted kernels), every
 * other operator runs widened to float32 on the device. Tolerances are a few units in the last place of the type (the GPU's
 * float accumulation order differs from the CPU's, so a rounded output may land one unit away).
 * Needs a {@code -Pcuda} build and a CUDA device; skipped with the reason otherwise.
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuLowPrecisionTest {
    @TestFactory
    Stream<DynamicTest> everyFloatCaseMatchesTheCpuInFloat16AndBfloat16() {
        List<DynamicTest> tests = new ArrayList<>();
        for (GpuCases f : GpuCases.all()) {
            for (GpuCase c : f.cases()) {
                if (c.isCustom() || !c.runsIn(DType.FLOAT32) || LowPrecisionOpsTest.EXCLUDED.containsKey(c.label())) {
                    continue;
                }
                for (DType low : List.of(DType.FLOAT16, DType.BFLOAT16)) {
                    tests.add(DynamicTest.dynamicTest(c.label() + " " + low, () -> {
                        Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
                        Map<String, double[]> cpu = c.run(Context.cpu(), low, null);
                        Map<String, double[]> gpu = c.run(Context.gpu(0), low, null);
                        if (!cpu.keySet().equals(gpu.keySet())) {
                            throw new AssertionError(c.label() + " " + low + ": results " + gpu.keySet() + " vs " + cpu.keySet());
                        }
                        double[] tol = LowPrecisionOpsTest.tol(low);
                        for (String k : cpu.keySet()) {
                            GradCheck.assertClose(cpu.get(k), gpu.get(k), tol[0], tol[1], c.label() + " " + low + " " + k
                                    + " (cpu(0) vs gpu(0))");
                        }
                    }));
                }
            }
        }
        return tests.stream();
    }
}
