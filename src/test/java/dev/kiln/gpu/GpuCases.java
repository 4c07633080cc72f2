package dev.kiln.gpu;

import java.util.List;

/**
 * The GPU consistency cases of one operator family. Every registered operator appears in some
 * family's list ({@link GpuCatalogueTest} checks it); {@link GpuOpsTest} runs them all on a GPU.
 */
public interface GpuCases {
    /** The family's cases; built fresh on each call (they hold symbols). */
    List<GpuCase> cases();

    /** Every family, in the order the tests run them. */
    static List<GpuCases> all() {
        return List.of(new GpuTensorCases(), new GpuShapeCases(), new GpuNnCases(), new GpuNormConvCases(),
                new GpuOptimizerCases(), new GpuRnnCases());
    }
}
