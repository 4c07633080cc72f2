package dev.kiln.gpu;

import java.util.ArrayList;
import java.util.List;

/** GPU consistency cases of the Optimizer operator family (see {@link GpuCase}). */
final class GpuOptimizerCases implements GpuCases {
    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        return c;
    }
}
