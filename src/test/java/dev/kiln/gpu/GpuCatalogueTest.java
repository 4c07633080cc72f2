package dev.kiln.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.engine.Engine;
import dev.kiln.ndarray.Context;
import dev.kiln.op.Ops;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The GPU case catalogue, checked without a GPU: every registered operator is covered by a case,
 * every case runs (twice, giving equal results) on the CPU, so that on a GPU machine only the GPU
 * kernels are under test; and in a {@code -Pcuda} build every operator has a GPU kernel.
 */
@ExtendWith(NoLeaks.class)
class GpuCatalogueTest {
    @Test
    void everyRegisteredOperatorHasAGpuCase() {
        Set<String> registered = new TreeSet<>();
        for (String op : Ops.list()) {
            registered.add(GpuCase.canonical(op));
        }
        Set<String> covered = new TreeSet<>();
        for (GpuCases f : GpuCases.all()) {
            for (GpuCase c : f.cases()) {
                covered.addAll(c.covered());
            }
        }
        Set<String> missing = new TreeSet<>(registered);
        missing.removeAll(covered);
        assertTrue(missing.isEmpty(), "operators without a GPU case: " + missing);
    }

    @TestFactory
    Stream<DynamicTest> everyCaseRunsOnTheCpu() {
        List<DynamicTest> tests = new ArrayList<>();
        for (GpuCases f : GpuCases.all()) {
            for (GpuCase c : f.cases()) {
                if (!c.isCustom()) {
                    tests.add(DynamicTest.dynamicTest(c.label(), () -> c.check(Context.cpu(), Context.cpu())));
                }
            }
        }
        return tests.stream();
    }

    /**
     * The GPU fuzzer's harness, CPU against CPU: no problem, every output the same, and calls
     * refused on one side only cannot happen (both sides are one device).
     */
    @Test
    void theDifferentialFuzzerRunsOnTheCpu() {
        OpFuzz.Report r = OpFuzz.run(Context.cpu(), Context.cpu(), 0x5EED15L, 3);
        System.out.println("GpuCatalogueTest: " + r.summary());
        assertTrue(r.problems().isEmpty() && r.oneSided().isEmpty(), r.describe());
        assertTrue(r.bothRan() > 100, r.summary());
        OpFuzz.Report nan = OpFuzz.run(Context.cpu(), Context.cpu(), 0x7A75L, 4, 6);
        System.out.println("GpuCatalogueTest (NaN, inf): " + nan.summary());
        assertTrue(nan.problems().isEmpty() && nan.oneSided().isEmpty(), nan.describe());
        assertTrue(nan.bothRan() > 100, nan.summary());
    }

    /** The graph fuzzer's harness (GpuFuzzTest runs it against gpu(0)), CPU against CPU: same seed, fewer graphs. */
    @Test
    void theGraphFuzzerRunsOnTheCpu() {
        GpuGraphFuzz.Report r = GpuGraphFuzz.run(Context.cpu(), Context.cpu(), 0x6EA9F5L, 150);
        System.out.println("GpuCatalogueTest: " + r.summary());
        assertTrue(r.problems().isEmpty(), r.describe());
        assertTrue(r.bothRan() > 80, r.summary());
        GpuGraphFuzz.Report large = GpuGraphFuzz.run(Context.cpu(), Context.cpu(), 0x1A26EL, 40, 32);
        System.out.println("GpuCatalogueTest (large): " + large.summary());
        assertTrue(large.problems().isEmpty(), large.describe());
        assertTrue(large.bothRan() > 20, large.summary());
    }

    /** In a -Pcuda build the registry lists no operator without a GPU kernel (needs no device). */
    @Test
    void cudaBuildHasAKernelForEveryOperator() {
        String why = Engine.cudaDescribe();
        boolean cudaBuild = !why.contains("has no CUDA support");
        Matcher m = Pattern.compile("\"not_on_gpu_yet\":\"([^\"]*)\"").matcher(Engine.registrySelfTest());
        assertTrue(m.find(), "self-test report lacks not_on_gpu_yet");
        if (cudaBuild) {
            assertEquals("", m.group(1), "operators without a GPU kernel in this -Pcuda build");
        } else {
            System.out.println("GpuCatalogueTest: CPU-only build, GPU kernel coverage checked by mvn -Pcuda test");
        }
    }
}
