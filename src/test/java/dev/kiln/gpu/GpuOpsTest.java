package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import dev.kiln.ndarray.Context;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.stream.Stream;

/**
 * Every operator on the GPU against the CPU: each case of {@link GpuCases#all()} runs on
 * {@code cpu(0)} and {@code gpu(0)} and compares outputs, gradients (write and add) and auxiliary
 * states. Needs a {@code -Pcuda} build and a CUDA device; skipped with the reason otherwise
 * ({@code scripts/gpu-check.sh} runs it on a GPU machine).
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuOpsTest {
    @TestFactory
    Stream<DynamicTest> everyOperatorMatchesTheCpu() {
        return GpuCases.all().stream().flatMap(f -> f.cases().stream()).map(c -> DynamicTest.dynamicTest(c.label(), () -> {
            Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
            c.check(Context.cpu(), Context.gpu(0));
        }));
    }
}
