package dev.kiln.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.Engine;
import dev.kiln.ndarray.Context;
import dev.kiln.testutil.NoLeaks;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The differential operator fuzzer ({@link OpFuzz}) with gpu(0) against the CPU: no call may break
 * the device (a sticky CUDA error), throw anything but the C boundary's exceptions, run on one side
 * only, or give results that differ from the CPU's. Skipped with the reason without a GPU;
 * GpuCatalogueTest runs the harness CPU against CPU.
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuFuzzTest {
    @BeforeEach
    void needsGpu() {
        Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
    }

    @Test
    void randomCallsOfEveryOperatorKeepTheDeviceHealthyAndAgreeWithTheCpu() {
        OpFuzz.Report r = OpFuzz.run(Context.cpu(), Context.gpu(0), 0x5EED15L, 6);
        System.out.println("GpuFuzzTest: " + r.describe());
        assertTrue(r.problems().isEmpty(), r.describe());
        assertTrue(r.bothRan() > 100, r.summary());
    }

    @Test
    void nanAndInfiniteInputsGiveTheCpusResults() {
        // one float input value in 6 is NaN or an infinity: the NaN rules of every GPU kernel
        OpFuzz.Report r = OpFuzz.run(Context.cpu(), Context.gpu(0), 0x7A75L, 4, 6);
        System.out.println("GpuFuzzTest (NaN, inf): " + r.describe());
        assertTrue(r.problems().isEmpty(), r.describe());
        assertTrue(r.bothRan() > 100, r.summary());
    }

    @Test
    void randomGraphsGiveTheCpusResults() {
        GpuGraphFuzz.Report r = GpuGraphFuzz.run(Context.cpu(), Context.gpu(0), 0x6EA9F5L, 400);
        System.out.println("GpuFuzzTest: " + r.describe());
        assertTrue(r.problems().isEmpty(), r.describe());
        assertTrue(r.bothRan() > 200, r.summary());
    }

    @Test
    void randomLargeGraphsGiveTheCpusResults() {
        GpuGraphFuzz.Report r = GpuGraphFuzz.run(Context.cpu(), Context.gpu(0), 0x1A26EL, 160, 32);
        System.out.println("GpuFuzzTest (large): " + r.describe());
        assertTrue(r.problems().isEmpty(), r.describe());
        assertTrue(r.bothRan() > 60, r.summary());
    }
}
