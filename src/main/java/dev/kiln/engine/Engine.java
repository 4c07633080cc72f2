package dev.kiln.engine;

import dev.kiln.internal.KilnNative;
import dev.kiln.internal.Native;
import dev.kiln.ndarray.Context;

/**
 * Process-wide native engine settings and diagnostics: thread count, SIMD path, OpenBLAS
 * configuration, allocator statistics and CUDA availability. All methods are thread-safe.
 */
public final class Engine {
    static {
        Native.check(KilnNative.kiln_init(), "native initialisation");
    }

    private Engine() {}

    /** Loads the native library and builds the operator registry (idempotent). */
    public static void init() {
        // the static initializer does the work
    }

    /**
     * Sets the number of threads CPU kernels use (OpenMP and OpenBLAS), for all executors.
     * Results are bit-for-bit repeatable for a fixed thread count.
     */
    public static void setNumThreads(int n) {
        Native.check(KilnNative.kiln_set_num_threads(n), "setNumThreads");
    }

    /** Threads CPU kernels use. */
    public static int numThreads() {
        int[] out = new int[1];
        Native.check(KilnNative.kiln_get_num_threads(out), "numThreads");
        return out[0];
    }

    /** Convolution kernel families {@link #setConvolutionAlgorithm} chooses between. */
    public enum ConvAlgorithm {
        /**
         * The measured best per layer and pass: Winograd F(4x4, 3x3) for 3x3 stride-1 layers whose
         * channel counts are multiples of 16 (all three passes, on images of 3x3 and up except 5x5,
         * AVX-512 CPUs); the direct forward kernel for thin layers (few input channels x taps);
         * Winograd F(2x2, 3x3) for other 3x3 layers with >= 16 channels (forward and data gradient
         * on images of >= 16 tiles of 2x2, weight gradient on smaller ones); im2col + GEMM otherwise,
         * and wherever a batch has fewer than 128 output pixels (Winograd transforms the weights on
         * every call).
         */
        AUTO,
        /** im2col + OpenBLAS GEMM everywhere. */
        IM2COL,
        /** The direct AVX-512 kernels wherever they apply (float32, one group, stride 1, no dilation). */
        DIRECT,
        /** Winograd F(2x2, 3x3) for all three passes wherever it applies (float32 3x3, one group, stride 1, no dilation). */
        WINOGRAD,
        /**
         * Winograd F(4x4, 3x3) for all three passes wherever it applies (as {@link #WINOGRAD}, plus
         * channel counts that are multiples of 16 and an AVX-512 CPU), else as {@link #WINOGRAD}.
         * Its float32 results differ from im2col's by up to about 2e-5 of the outputs' magnitude
         * (ResNet-18's layers, 64 to 512 channels).
         */
        WINOGRAD4
    }

    /**
     * Chooses the CPU convolution kernels for all executors. For benchmarks and A/B checks:
     * {@code AUTO} is the measured best (JMH {@code ConvAlgoBench}, the per-pass table in
     * conv_winograd.cc). Workspace is sized at bind time for the choice then current; switching
     * later works but allocates scratch per call.
     */
    public static void setConvolutionAlgorithm(ConvAlgorithm algo) {
        Native.check(KilnNative.kiln_set_conv_algo(algo.ordinal()), "setConvolutionAlgorithm");
    }

    /** The current {@link #setConvolutionAlgorithm} choice. */
    public static ConvAlgorithm convolutionAlgorithm() {
        int[] out = new int[1];
        Native.check(KilnNative.kiln_get_conv_algo(out), "convolutionAlgorithm");
        return ConvAlgorithm.values()[out[0]];
    }

    /** The vector instruction set the elementwise kernels use here: avx512f, avx2 or scalar. */
    public static String simdIsa() {
        return Native.string(KilnNative.kiln_simd_isa(), "simdIsa");
    }

    /** OpenBLAS's configuration string (version, kernel, thread limit). */
    public static String blasConfig() {
        return Native.string(KilnNative.kiln_blas_config(), "blasConfig");
    }

    /** Byte accounting of the native allocator of one device. */
    public static MemoryStats memory(Context ctx) {
        long[] out = new long[4];
        Native.check(KilnNative.kiln_memory_stats(ctx.devType(), ctx.devId(), out), "memory");
        return new MemoryStats(out[0], out[1], out[2], out[3]);
    }

    /** Resets the peak of {@link #memory(Context)} to the current value. */
    public static void resetPeak(Context ctx) {
        Native.check(KilnNative.kiln_memory_reset_peak(ctx.devType(), ctx.devId()), "resetPeak");
    }

    /** Number of live native handles (arrays and executors) in the process. */
    public static long liveHandles() {
        long[] out = new long[1];
        Native.check(KilnNative.kiln_live_handles(out), "liveHandles");
        return out[0];
    }

    /** Number of usable CUDA devices (0 without a GPU, a driver or a {@code -Pcuda} build). */
    public static int cudaDeviceCount() {
        int[] out = new int[1];
        Native.check(KilnNative.kiln_cuda_device_count(out), "cudaDeviceCount");
        return out[0];
    }

    /** The CUDA devices, or why there are none (e.g. "no CUDA device: ..."). */
    public static String cudaDescribe() {
        return Native.string(KilnNative.kiln_cuda_describe(), "cudaDescribe");
    }

    /**
     * Allows or forbids TF32 tensor-core math for float32 convolutions (cuDNN) and matrix products
     * (cuBLAS) on GPUs that have it (Ampere and later), as PyTorch's {@code
     * torch.backends.cudnn.allow_tf32} and {@code torch.backends.cuda.matmul.allow_tf32} together.
     * Off by default (unless the environment sets {@code KILN_CUDA_TF32=1}): float32 then matches
     * the CPU to about 1e-6 relative; with TF32 the operands of those products keep 10 mantissa
     * bits (about 1e-3 relative), for roughly twice the speed. Takes effect at the next call;
     * executors record their CUDA graphs again. No effect on the CPU, on float16/bfloat16 (always
     * tensor cores) or on float64. Thread-safe (one process-wide setting).
     *
     * @param allow whether float32 may use TF32
     */
    public static void setCudaTf32(boolean allow) {
        Native.check(KilnNative.kiln_cuda_set_tf32(allow ? 1 : 0), "setCudaTf32");
    }

    /** Whether float32 GPU convolutions and matrix products may use TF32 (see {@link #setCudaTf32}). */
    public static boolean cudaTf32() {
        int[] out = new int[1];
        Native.check(KilnNative.kiln_cuda_tf32(out), "cudaTf32");
        return out[0] != 0;
    }

    /**
     * The caching allocator of GPU {@code device} (as PyTorch's {@code torch.cuda.memory_allocated}
     * and {@code memory_reserved}): device blocks are not returned to the driver when an array or
     * executor is closed but kept for reuse, and returned only when an allocation would otherwise
     * fail or {@link #cudaEmptyCache} is called. Thread-safe.
     *
     * @param device the GPU's ordinal
     * @return the allocator's figures now
     * @throws KilnException without CUDA support or when the device does not exist
     */
    public static CudaCache cudaCache(int device) {
        long[] out = new long[4];
        Native.check(KilnNative.kiln_cuda_cache_stats(device, out), "cudaCache");
        return new CudaCache(out[0], out[1], out[2], out[3]);
    }

    /**
     * Returns every cached (free) device block of GPU {@code device} to the driver, as PyTorch's
     * {@code torch.cuda.empty_cache}: arrays in use are untouched, and the next allocations of
     * those sizes call {@code cudaMalloc} again. Useful before handing the GPU to another process
     * or library. Waits for CUDA graph recordings of other threads on the device to end.
     * Thread-safe.
     *
     * @param device the GPU's ordinal
     * @throws KilnException without CUDA support or when the device does not exist
     */
    public static void cudaEmptyCache(int device) {
        Native.check(KilnNative.kiln_cuda_empty_cache(device), "cudaEmptyCache");
    }

    /**
     * Checks that every registered operator is complete (shape function, CPU kernel, gradient or
     * an explicit non-differentiable mark, described parameters) and returns the JSON report,
     * which also lists the operators without a GPU kernel yet. Throws when an operator is incomplete.
     */
    public static String registrySelfTest() {
        return Native.string(KilnNative.kiln_registry_selftest(), "registry self-test");
    }

    /** Allocator statistics of one device. */
    public record MemoryStats(long currentBytes, long peakBytes, long outstandingBlocks, long totalBlocks) {}

    /**
     * The GPU caching allocator's figures ({@link #cudaCache}). Immutable; thread-safe.
     *
     * @param heldBytes bytes of device blocks in use (rounded up to the allocator's size buckets)
     * @param cachedBytes bytes of free blocks kept for reuse
     * @param peakHeldBytes the largest {@code heldBytes} so far
     * @param driverAllocations {@code cudaMalloc} calls made so far (a cache miss each)
     */
    public record CudaCache(long heldBytes, long cachedBytes, long peakHeldBytes, long driverAllocations) {}
}
