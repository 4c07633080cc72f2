package dev.kiln.gpu;

import static dev.kiln.gpu.GpuCase.uniform;

import dev.kiln.ndarray.DType;
import dev.kiln.symbol.Symbol;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** GPU consistency cases of the NormConv operator family (see {@link GpuCase}). */
final class GpuNormConvCases implements GpuCases {
    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        norm(c);
        conv(c);
        return c;
    }

    // ---- norm: BatchNorm, LayerNorm, InstanceNorm, GroupNorm, L2Normalization, LRN (and their _backward_ ops) ----

    private static Symbol op(String op, String name, Map<String, String> attrs, Symbol in) {
        return Symbol.create(op, name, attrs, null, in);
    }

    private static Map<String, long[]> data(long... shape) {
        return Map.of("x", shape);
    }

    /** A BatchNorm case with positive moving variances. */
    private static GpuCase bn(String label, Map<String, String> attrs, long... shape) {
        return GpuCase.graph(label, op("BatchNorm", "bn", attrs, Symbol.variable("x")), data(shape))
                .input("bn_moving_var", uniform(0.25, 1.5));
    }

    static void norm(List<GpuCase> c) {
        Symbol x = Symbol.variable("x");
        // BatchNorm, training: per-channel kernel (inner > 1), real-net size, many partials per channel
        c.add(bn("BatchNorm 4-D N32 C64 16x16 training", Map.of("fix_gamma", "False"), 32, 64, 16, 16));
        // odd sizes, > 70k elements, kAddTo (two passes: moving statistics updated twice)
        c.add(bn("BatchNorm 4-D odd training addTo", Map.of("fix_gamma", "False", "momentum", "0.7"), 16, 23, 15, 13)
                .addTo());
        // fix_gamma (gamma written as 1, gamma grad 0), all three outputs visible
        c.add(bn("BatchNorm fix_gamma output_mean_var", Map.of("output_mean_var", "True", "eps", "1e-5"), 3, 5, 7, 9)
                .addTo());
        // a NaN inside channel 1 and +inf as channel 2's first element (the GPU's shift): NaN statistics
        // in both channels (moving_var NaN, moving_mean +inf in channel 2), as the CPU's two passes
        c.add(bn("BatchNorm NaN and inf channels", Map.of("fix_gamma", "False", "output_mean_var", "True"), 4, 3, 5)
                .input("x", (n, seed) -> {
                    double[] v = uniform(-2, 2).apply(n, seed);
                    v[5 + 3] = Double.NaN;  // (0, 1, 3)
                    v[10] = Double.POSITIVE_INFINITY;  // (0, 2, 0)
                    return v;
                }));
        // 2-D (N, C): channel-last reduction (inner == 1), small and with many row chunks
        c.add(bn("BatchNorm 2-D", Map.of("fix_gamma", "False"), 37, 70).addTo());
        c.add(bn("BatchNorm 2-D large", Map.of("fix_gamma", "False", "output_mean_var", "True"), 2001, 45));
        // channel axis last / first / middle
        c.add(bn("BatchNorm axis=-1", Map.of("fix_gamma", "False", "axis", "-1"), 5, 7, 33).addTo());
        c.add(bn("BatchNorm axis=0", Map.of("fix_gamma", "False", "axis", "0"), 6, 5, 7));
        c.add(bn("BatchNorm axis=2", Map.of("fix_gamma", "False", "axis", "2", "cudnn_off", "True"), 3, 4, 5, 6));
        // moving statistics instead of batch statistics: in training (with backward) and in inference
        c.add(bn("BatchNorm use_global_stats", Map.of("fix_gamma", "False", "use_global_stats", "True"), 4, 6, 5, 3)
                .addTo());
        c.add(bn("BatchNorm inference", Map.of("fix_gamma", "False", "output_mean_var", "True"), 4, 6, 5, 3)
                .inference());
        c.add(bn("BatchNorm training forward only", Map.of("fix_gamma", "False"), 4, 6, 5, 3).forwardOnly());

        // LayerNorm: warp per row (short rows), block per row (rows >= 2048), thread per row (axis not last)
        c.add(GpuCase.graph("LayerNorm axis=-1", op("LayerNorm", "ln", Map.of(), x), data(4, 37)).addTo());
        c.add(GpuCase.graph("LayerNorm many rows", op("LayerNorm", "ln", Map.of("output_mean_var", "True"), x),
                data(300, 257)));
        c.add(GpuCase.graph("LayerNorm long rows", op("LayerNorm", "ln", Map.of("eps", "1e-3"), x), data(6, 2500))
                .addTo());
        c.add(GpuCase.graph("LayerNorm axis=1", op("LayerNorm", "ln", Map.of("axis", "1"), x), data(3, 11, 5, 4))
                .addTo());
        c.add(GpuCase.graph("LayerNorm axis=0 large", op("LayerNorm", "ln", Map.of("axis", "0", "output_mean_var", "True"), x),
                data(7, 90, 113)));

        // InstanceNorm: warp per row, block per row (S >= 2048), S == 1 (channel-last gamma/beta sums)
        c.add(GpuCase.graph("InstanceNorm 4-D", op("InstanceNorm", "in", Map.of(), x), data(2, 3, 5, 7)).addTo());
        c.add(GpuCase.graph("InstanceNorm 3-D", op("InstanceNorm", "in", Map.of("eps", "1e-5"), x), data(3, 5, 9)));
        c.add(GpuCase.graph("InstanceNorm long rows", op("InstanceNorm", "in", Map.of(), x), data(4, 6, 40, 80))
                .addTo());
        c.add(GpuCase.graph("InstanceNorm S=1", op("InstanceNorm", "in", Map.of(), x), data(3, 4, 1)).addTo());

        // GroupNorm: the InstanceNorm kernels on [N * G, (C / G) * S] rows with the std statistic
        c.add(GpuCase.graph("GroupNorm 4-D", op("GroupNorm", "gn", Map.of("num_groups", "2", "output_mean_var", "True"), x),
                data(2, 4, 5, 7)).addTo());
        c.add(GpuCase.graph("GroupNorm long rows", op("GroupNorm", "gn", Map.of("num_groups", "3"), x), data(3, 6, 30, 40))
                .addTo());
        c.add(GpuCase.graph("GroupNorm one group", op("GroupNorm", "gn", Map.of("num_groups", "1", "eps", "0.1"), x),
                data(4, 3, 2)));

        // L2Normalization: rows (instance, spatial; warp and block per row) and strided columns (channel)
        for (String mode : new String[] {"instance", "channel", "spatial"}) {
            c.add(GpuCase.graph("L2Normalization " + mode, op("L2Normalization", "l2", Map.of("mode", mode), x),
                    data(3, 4, 5, 6)).addTo());
        }
        c.add(GpuCase.graph("L2Normalization instance long rows", op("L2Normalization", "l2", Map.of(), x), data(4, 30, 90)));
        c.add(GpuCase.graph("L2Normalization channel large", op("L2Normalization", "l2", Map.of("mode", "channel"), x),
                data(2, 16, 70, 33)));

        // LRN: window inside / clipped at the channel edges / wider than C / 1
        c.add(GpuCase.graph("LRN nsize=5", op("LRN", "lrn", Map.of("nsize", "5", "alpha", "0.5"), x), data(2, 7, 5, 3))
                .addTo());
        c.add(GpuCase.graph("LRN large", op("LRN", "lrn", Map.of("nsize", "3", "alpha", "0.3", "beta", "0.6", "knorm", "1.5"), x),
                data(4, 16, 33, 35)));
        c.add(GpuCase.graph("LRN nsize>C", op("LRN", "lrn", Map.of("nsize", "9", "alpha", "1"), x), data(2, 4, 3, 3))
                .addTo());
        c.add(GpuCase.graph("LRN nsize=1", op("LRN", "lrn", Map.of("nsize", "1"), x), data(1, 3, 2, 5)));

        // chains: internal gradients (the planner may put data grads in place over ograds) and an
        // inference BatchNorm whose data is an internal entry (may be written in place)
        Symbol chain = op("LayerNorm", "ln",  Map.of("eps", "0.01"),
                op("InstanceNorm", "in", Map.of("eps", "0.01"),
                        op("LRN", "lrn", Map.of("nsize", "3", "alpha", "0.5"),
                                op("BatchNorm", "bn", Map.of("fix_gamma", "False"), x))));
        c.add(GpuCase.graph("norm chain", chain, data(3, 6, 5, 4)).input("bn_moving_var", uniform(0.25, 1.5)).addTo());
        Symbol inf = op("BatchNorm", "bn", Map.of("fix_gamma", "False"), op("LayerNorm", "ln", Map.of(), x));
        c.add(GpuCase.graph("LayerNorm -> BatchNorm inference", inf, data(4, 5, 6)).input("bn_moving_var", uniform(0.25, 1.5))
                .inference());
        // float64 only: a large-offset input (the two-pass variance must not lose the spread)
        c.add(bn("BatchNorm offset data float64", Map.of("fix_gamma", "False"), 8, 3, 9, 7)
                .input("x", uniform(1000, 1001)).dtypes(DType.FLOAT64));
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
