package dev.kiln.gpu;

import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** GPU consistency cases of the NormConv operator family (see {@link GpuCase}). */
final class GpuNormConvCases implements GpuCases {
    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        conv(c);
        return c;
    }

    /**
     * Convolution and Deconvolution (cuDNN on the GPU, or im2col + cuBLAS when cuDNN is absent or
     * KILN_CUDNN=0): float32 tolerances allow for GEMM reductions in another order.
     */
    static void conv(List<GpuCase> c) {
        Symbol data = Symbol.variable("data");
        double r32 = 1e-3, a32 = 1e-4, r64 = 1e-9, a64 = 1e-10;
        // 2-D, grouped, strided, padded, dilated, with bias; gradients also accumulated (kAddTo)
        c.add(GpuCase.graph("Convolution 2d groups stride pad dilate",
                Symbol.create("Convolution", "c", Map.of("kernel", "(3, 2)", "num_filter", "6", "num_group", "2",
                        "stride", "(2, 1)", "pad", "(1, 2)", "dilate", "(1, 2)"), null, data),
                Map.of("data", new long[] {3, 4, 9, 8})).tol(r32, a32, r64, a64).addTo());
        // 1-D, strided, dilated
        c.add(GpuCase.graph("Convolution 1d stride pad dilate",
                Symbol.create("Convolution", "c", Map.of("kernel", "(4,)", "num_filter", "5", "stride", "(3,)",
                        "pad", "(2,)", "dilate", "(2,)"), null, data),
                Map.of("data", new long[] {3, 3, 17})).tol(r32, a32, r64, a64).addTo());
        // 3-D (the CPU has no dilated 3-D convolution)
        c.add(GpuCase.graph("Convolution 3d stride pad",
                Symbol.create("Convolution", "c", Map.of("kernel", "(2, 3, 2)", "num_filter", "3", "stride", "(2, 1, 1)",
                        "pad", "(1, 0, 1)"), null, data),
                Map.of("data", new long[] {2, 2, 5, 6, 4})).tol(r32, a32, r64, a64).addTo());
        // no bias, > 70k elements in and out (many blocks, several images per im2col chunk)
        c.add(GpuCase.graph("Convolution 2d no_bias large",
                Symbol.create("Convolution", "c", Map.of("kernel", "(3, 3)", "num_filter", "8", "pad", "(1, 1)",
                        "no_bias", "True"), null, data),
                Map.of("data", new long[] {4, 8, 48, 48})).tol(r32, a32, r64, a64));
        // depthwise (num_group = channels), odd sizes, 1x1 output channels per group
        c.add(GpuCase.graph("Convolution 2d depthwise stride",
                Symbol.create("Convolution", "c", Map.of("kernel", "(3, 3)", "num_filter", "5", "num_group", "5",
                        "stride", "(2, 2)", "pad", "(1, 1)"), null, data),
                Map.of("data", new long[] {2, 5, 13, 11})).tol(r32, a32, r64, a64));
        // inference forward only (no backward graph)
        c.add(GpuCase.graph("Convolution 2d inference",
                Symbol.create("Convolution", "c", Map.of("kernel", "(1, 1)", "num_filter", "7"), null, data),
                Map.of("data", new long[] {3, 6, 5, 9})).tol(r32, a32, r64, a64).inference());
        // Deconvolution 2-D: grouped, strided, padded, adj, with bias, kAddTo
        c.add(GpuCase.graph("Deconvolution 2d groups stride pad adj bias",
                Symbol.create("Deconvolution", "d", Map.of("kernel", "(3, 3)", "num_filter", "6", "num_group", "2",
                        "stride", "(2, 2)", "pad", "(1, 1)", "adj", "(1, 0)", "no_bias", "False"), null, data),
                Map.of("data", new long[] {2, 4, 5, 6})).tol(r32, a32, r64, a64).addTo());
        // Deconvolution 1-D with target_shape (pad and adj derived), no bias (the default)
        c.add(GpuCase.graph("Deconvolution 1d target_shape",
                Symbol.create("Deconvolution", "d", Map.of("kernel", "(4,)", "num_filter", "4", "stride", "(2,)",
                        "target_shape", "(15,)"), null, data),
                Map.of("data", new long[] {2, 3, 7})).tol(r32, a32, r64, a64).addTo());
        // Deconvolution 2-D dilated, larger (> 70k output elements)
        c.add(GpuCase.graph("Deconvolution 2d dilate large",
                Symbol.create("Deconvolution", "d", Map.of("kernel", "(3, 2)", "num_filter", "4", "dilate", "(2, 2)",
                        "stride", "(1, 2)", "pad", "(2, 1)", "no_bias", "False"), null, data),
                Map.of("data", new long[] {4, 6, 60, 40})).tol(r32, a32, r64, a64));
    }
}
