package dev.kiln.gpu;

import dev.kiln.engine.Engine;
import dev.kiln.engine.KilnException;
import dev.kiln.engine.KilnOutOfMemoryException;
import dev.kiln.examples.MnistMlp;
import dev.kiln.executor.Executor;
import dev.kiln.executor.GradReq;
import dev.kiln.ndarray.Context;
import dev.kiln.ndarray.DType;
import dev.kiln.ndarray.NDArray;
import dev.kiln.ndarray.Shape;
import dev.kiln.symbol.Symbol;
import dev.kiln.testutil.NoLeaks;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad requests on a GPU are clean Java exceptions that name the device and the sizes, and the
 * device stays usable after them: allocations over the device's memory or over the 1 TiB limit, an
 * executor whose plan does not fit, a device that does not exist, operands on two devices, a
 * closed device array. Needs a {@code -Pcuda} build and a CUDA device; skipped with the reason
 * otherwise. On a GPU machine: {@code scripts/gpu-check.sh}.
 */
@Tag("gpu")
@ExtendWith(NoLeaks.class)
class GpuRobustnessTest {
    @BeforeEach
    void needsGpu() {
        Assumptions.assumeTrue(Engine.cudaDeviceCount() > 0, "GPU test skipped: " + Engine.cudaDescribe());
    }

    /** A small computation on gpu(0), read back: the device still works. */
    private static void deviceStillWorks() {
        try (NDArray a = NDArray.full(new Shape(4), 1.5, DType.FLOAT32, Context.gpu(0));
                NDArray b = a.mul(2.0); NDArray h = b.copyTo(Context.cpu())) {
            assertArrayEquals(new double[] {3, 3, 3, 3}, h.toDoubleArray());
        }
    }

    @Test
    void allocationsThatCannotFitAreCleanErrors() {
        // 400 GB: more than any GPU has, under the 1 TiB limit (so cudaMalloc itself refuses)
        KilnOutOfMemoryException big = assertThrows(KilnOutOfMemoryException.class,
                () -> NDArray.zeros(new Shape(100_000_000_000L), DType.FLOAT32, Context.gpu(0)).close());
        assertTrue(big.getMessage().contains("gpu(0)") && big.getMessage().contains("400000000000"), big.getMessage());
        deviceStillWorks();
        // 4 TB: over the limit, refused before the driver is asked
        KilnOutOfMemoryException huge = assertThrows(KilnOutOfMemoryException.class,
                () -> NDArray.zeros(new Shape(1L << 40), DType.FLOAT32, Context.gpu(0)).close());
        assertTrue(huge.getMessage().contains("1 TiB"), huge.getMessage());
        deviceStillWorks();
    }

    @Test
    void anExecutorWhosePlanDoesNotFitIsACleanError() {
        Symbol net = MnistMlp.network();
        Map<String, GradReq> reqs = new LinkedHashMap<>();
        for (String a : net.listArguments()) {
            reqs.put(a, a.equals("data") || a.equals("softmax_label") ? GradReq.NULL : GradReq.WRITE);
        }
        long batch = 1L << 27;  // data alone 128 Mi x 784 floats = 420 GB
        KilnException e = assertThrows(KilnException.class, () -> Executor.simpleBind(net, Context.gpu(0),
                Map.of("data", new long[] {batch, 784}, "softmax_label", new long[] {batch}),
                Map.of("data", DType.FLOAT32, "softmax_label", DType.FLOAT32), reqs, new Executor.Options()).close());
        assertTrue(e.getMessage().contains("gpu(0)"), e.getMessage());
        deviceStillWorks();
        try (Executor ok = Executor.simpleBind(net, Context.gpu(0),
                Map.of("data", new long[] {8, 784}, "softmax_label", new long[] {8}),
                Map.of("data", DType.FLOAT32, "softmax_label", DType.FLOAT32), reqs, new Executor.Options())) {
            ok.forwardBackward();
            try (NDArray h = ok.outputs().get(0).copyTo(Context.cpu())) {
                assertTrue(Double.isFinite(h.toDoubleArray()[0]), "a bind of a sane size still runs");
            }
        }
    }

    /** Freed device blocks stay cached for reuse until {@link Engine#cudaEmptyCache} returns them to the driver. */
    @Test
    void theCacheKeepsFreedBlocksUntilEmptied() {
        long bytes = 256L << 20;
        Shape shape = new Shape(bytes / 4);
        Engine.CudaCache before = Engine.cudaCache(0);
        Engine.CudaCache inUse;
        try (NDArray a = NDArray.zeros(shape, DType.FLOAT32, Context.gpu(0))) {
            inUse = Engine.cudaCache(0);
            assertTrue(inUse.heldBytes() >= before.heldBytes() + bytes, before + " -> " + inUse);
            assertTrue(inUse.peakHeldBytes() >= inUse.heldBytes(), inUse.toString());
        }
        Engine.CudaCache freed = Engine.cudaCache(0);
        assertTrue(inUse.heldBytes() - freed.heldBytes() >= bytes, inUse + " -> " + freed);
        assertTrue(freed.cachedBytes() >= bytes, "the freed block is cached: " + freed);
        // reused: no cudaMalloc
        try (NDArray b = NDArray.zeros(shape, DType.FLOAT32, Context.gpu(0))) {
            assertEquals(freed.driverAllocations(), Engine.cudaCache(0).driverAllocations(), "the cached block is reused");
        }
        Engine.cudaEmptyCache(0);
        Engine.CudaCache emptied = Engine.cudaCache(0);
        assertEquals(0, emptied.cachedBytes(), emptied.toString());
        try (NDArray c = NDArray.zeros(shape, DType.FLOAT32, Context.gpu(0))) {
            assertEquals(emptied.driverAllocations() + 1, Engine.cudaCache(0).driverAllocations(), "a new cudaMalloc after emptying");
        }
        KilnException e = assertThrows(KilnException.class, () -> Engine.cudaCache(Engine.cudaDeviceCount()));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        deviceStillWorks();
    }

    @Test
    void aDeviceThatDoesNotExistIsNamed() {
        int n = Engine.cudaDeviceCount();
        KilnException e = assertThrows(KilnException.class,
                () -> NDArray.zeros(new Shape(2), DType.FLOAT32, Context.gpu(n)).close());
        assertTrue(e.getMessage().contains("gpu(" + n + ")") && e.getMessage().contains("does not exist"), e.getMessage());
        deviceStillWorks();
    }

    @Test
    void operandsOnTwoDevicesAndClosedArraysAreCleanErrors() {
        try (NDArray g = NDArray.full(new Shape(3), 1.0, DType.FLOAT32, Context.gpu(0));
                NDArray c = NDArray.full(new Shape(3), 1.0, DType.FLOAT32, Context.cpu())) {
            RuntimeException e = assertThrows(RuntimeException.class, () -> g.add(c).close());
            assertTrue(e.getMessage() != null && !e.getMessage().isEmpty(), "the error says why");
        }
        NDArray closed = NDArray.full(new Shape(3), 1.0, DType.FLOAT32, Context.gpu(0));
        closed.close();
        closed.close();  // idempotent
        assertThrows(IllegalStateException.class, closed::toDoubleArray);
        assertThrows(IllegalStateException.class, () -> closed.copyTo(Context.cpu()));
        deviceStillWorks();
    }

    @Test
    void headGradientsOfAnotherTypeAreConvertedFromTheHostAndTheDevice() {
        dev.kiln.symbol.Symbol y = dev.kiln.symbol.Symbol.create("square", "sq", java.util.Map.of(), null,
                dev.kiln.symbol.Symbol.variable("x"));
        try (dev.kiln.ndarray.NDScope scope = dev.kiln.ndarray.NDScope.open();
                dev.kiln.executor.Executor ex = dev.kiln.executor.Executor.simpleBind(y, Context.gpu(0),
                        java.util.Map.of("x", new long[] {4}), java.util.Map.of("x", DType.FLOAT16),
                        java.util.Map.of("x", dev.kiln.executor.GradReq.WRITE), null)) {
            NDArray.create(new double[] {0.5, -1.25, 2, 3}, 4).asType(DType.FLOAT16).copyTo(ex.argDict().get("x"));
            NDArray head = NDArray.create(new double[] {1, 0.5, -2, 0.25}, 4);  // float64 on the host
            for (NDArray h : new NDArray[] {head, head.asType(DType.FLOAT32).copyTo(Context.gpu(0))}) {
                ex.forward(true);
                ex.backward(h);
                try (NDArray g = ex.gradDict().get("x").copyTo(Context.cpu())) {
                    assertArrayEquals(new double[] {1, -1.25, -8, 1.5}, g.toDoubleArray(), 1e-3, "from " + h.context());
                }
            }
        }
        deviceStillWorks();
    }
}
