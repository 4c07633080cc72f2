package dev.kiln.engine;

import dev.kiln.internal.KilnNative;
import dev.kiln.ndarray.NDArray;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The registry self-test, device reporting and the C boundary's handling of bad handles. */
@ExtendWith(NoLeaks.class)
class EngineTest {
    @Test
    void registrySelfTestPassesAndListsGpuGaps() {
        String report = Engine.registrySelfTest();
        assertTrue(report.contains("\"ok\":true"), report);
        assertTrue(report.contains("not_on_gpu_yet"), report);
        System.out.println("registry: " + report.substring(0, Math.min(200, report.length())) + "...");
    }

    @Test
    void cpuFeaturesAndThreads() {
        String isa = Engine.simdIsa();
        assertTrue(isa.equals("avx512f") || isa.equals("avx2") || isa.equals("scalar"), isa);
        assertTrue(Engine.blasConfig().contains("OpenBLAS"));
        int before = Engine.numThreads();
        Engine.setNumThreads(1);
        assertEquals(1, Engine.numThreads());
        Engine.setNumThreads(before);
        assertThrows(KilnException.class, () -> Engine.setNumThreads(0));
    }

    @Test
    void noCudaDeviceIsReportedCleanly() {
        if (Engine.cudaDeviceCount() == 0) {
            String d = Engine.cudaDescribe();
            assertTrue(d.startsWith("no CUDA device"), d);
        }
    }

    @Test
    void theGpuCacheCallsFailCleanlyWithoutADevice() {
        if (Engine.cudaDeviceCount() == 0) {
            for (int device : new int[] {0, 3, -1}) {
                KilnException a = assertThrows(KilnException.class, () -> Engine.cudaCache(device));
                KilnException b = assertThrows(KilnException.class, () -> Engine.cudaEmptyCache(device));
                for (KilnException e : new KilnException[] {a, b}) {
                    assertTrue(e.getMessage().contains("CUDA") || e.getMessage().contains("gpu(" + device + ")"), e.getMessage());
                }
            }
        } else {
            assertThrows(KilnException.class, () -> Engine.cudaCache(Engine.cudaDeviceCount()));
            assertThrows(KilnException.class, () -> Engine.cudaEmptyCache(-1));
        }
    }

    @Test
    void tf32IsOffByDefaultAndCanBeSwitched() {
        boolean before = Engine.cudaTf32();
        try {
            if (System.getenv("KILN_CUDA_TF32") == null) {
                assertFalse(before, "TF32 must be opt-in");
            }
            Engine.setCudaTf32(true);
            assertTrue(Engine.cudaTf32());
            Engine.setCudaTf32(false);
            assertFalse(Engine.cudaTf32());
        } finally {
            Engine.setCudaTf32(before);
        }
    }

    @Test
    void invalidHandlesNeverCrash() {
        assertNotEquals(0, KilnNative.kiln_nd_free(12345L));
        assertTrue(KilnNative.kiln_last_error().contains("invalid NDArray handle"));
        assertNotEquals(0, KilnNative.kiln_exec_forward(0L, 1));
        assertNotEquals(0, KilnNative.kiln_exec_free(999L));
        long[] info = new long[8];
        assertNotEquals(0, KilnNative.kiln_nd_info(42L, info, info.length));
        float[] small = new float[1];
        try (NDArray a = NDArray.zeros(2, 2)) {
            assertNotEquals(0, KilnNative.kiln_nd_read(a.handle(), small, 4L)); // size differs from the array: rejected
        }
        assertNotEquals(0, KilnNative.kiln_op_invoke("NoSuchOp", "{}", 0, new long[0], 1, new long[1], new int[1]));
        assertTrue(KilnNative.kiln_last_error().contains("operator NoSuchOp is not supported"));
    }

    @Test
    void registryReportsWhatEachBackwardReads() {
        String fc = dev.kiln.internal.Native.string(KilnNative.kiln_op_info("FullyConnected", "{\"num_hidden\":\"4\"}"), "");
        assertTrue(fc.contains("\"backward_reads\":[\"ograd:output\",\"input:data\",\"input:weight\"]"), fc);
        String relu = dev.kiln.internal.Native.string(KilnNative.kiln_op_info("Activation", "{\"act_type\":\"relu\"}"), "");
        assertTrue(relu.contains("\"backward_reads\":[\"ograd:output\",\"output:output\"]"), relu);
        String sm = dev.kiln.internal.Native.string(KilnNative.kiln_op_info("SoftmaxOutput", "{}"), "");
        assertTrue(sm.contains("\"backward_reads\":[\"output:output\",\"input:label\"]"), sm);
        String flat = dev.kiln.internal.Native.string(KilnNative.kiln_op_info("Flatten", "{}"), "");
        assertTrue(flat.contains("\"backward_reads\":[\"ograd:output\"]"), flat);
    }

    @Test
    void unsupportedOperatorsFailClearly() {
        String json = "{\"nodes\":[{\"op\":\"null\",\"name\":\"data\",\"inputs\":[]},"
                + "{\"op\":\"Convolution3000\",\"name\":\"c\",\"attrs\":{},\"inputs\":[[0,0,0]]}],"
                + "\"arg_nodes\":[0],\"heads\":[[1,0,0]]}";
        Exception e = assertThrows(RuntimeException.class, () -> Symbol.fromJson(json));
        assertTrue(e.getMessage().contains("operator Convolution3000 is not supported"), e.getMessage());
    }
}
