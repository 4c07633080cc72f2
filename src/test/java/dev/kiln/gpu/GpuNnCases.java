package dev.kiln.gpu;

import java.util.ArrayList;
import java.util.List;

/** GPU consistency cases of the Nn operator family (see {@link GpuCase}). */
final class GpuNnCases implements GpuCases {
    @Override
    public List<GpuCase> cases() {
        List<GpuCase> c = new ArrayList<>();
        return c;
    }
}
